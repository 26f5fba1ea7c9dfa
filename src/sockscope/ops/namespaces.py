"""Every network namespace of the host (``--all-netns``, ``sockscope.namespaces()``).

A namespace is known by its nsfs file: ``(st_dev, st_ino)`` of ``/proc/PID/ns/net`` or of
a bind mount of it. :func:`discover` collects them from three places and deduplicates by
that key:

* the names under ``/var/run/netns`` (``ip netns add``), in name order;
* the other nsfs bind mounts of the mount table (``/proc/self/mountinfo``: Docker's
  ``/run/docker/netns/*``, a namespace pinned with ``mount --bind``), as ``paths``;
* every process's ``/proc/PID/ns/net`` (its ``pids``), and the threads of the
  multi-threaded ones (``/proc/PID/task/TID/ns/net``): a namespace that only a thread is
  in (it called ``unshare(CLONE_NEWNET)`` or ``setns``) has ``threads`` and no ``pids``
  (one directory read per process, a stat per thread of multi-threaded processes:
  about 0.6 ms more for 150 processes here).

Each namespace is then attributed (:mod:`sockscope.ops.containers`) from its processes'
cgroup paths; the namespace of pid 1 (the host's) only from pid 1's. They come out
ordered by inode, which puts the host's, the oldest, first.

:func:`call_inside` runs a function in one for the calling thread and comes back (also on
an exception, e.g. KeyboardInterrupt from a signal handler wherever it lands: not a
``with`` block, see :func:`sockscope.ops.netns.call_there`); a namespace whose every handle has gone
(its processes exited, its name was deleted) raises :class:`NamespaceGone`. The current
namespace is never entered (so an unprivileged caller can list its own).
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
from itertools import islice

from sockscope.errors import NamespaceError, SockscopeError
from sockscope.ops import containers
from sockscope.ops.netns import (
    CLONE_NEWNET,
    NETNS_RUN_DIR,
    call_there,
    iterate,
    open_netns,
    setns,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import TypeVar

    from sockscope.ops.containers import Container

    T = TypeVar("T")
    U = TypeVar("U")

_O_NS = os.O_RDONLY | os.O_CLOEXEC


class NamespaceGone(NamespaceError):
    """The namespace no longer exists (no name, mount or process holds it any more)."""


class NamespaceDenied(NamespaceError):
    """The namespace exists but cannot be entered (``errno``: EPERM without CAP_SYS_ADMIN)."""


class Namespace:
    """One network namespace: its nsfs inode and what holds it.

    * ``inode``, ``dev``: the nsfs key (``ls -l /proc/PID/ns/net`` shows ``net:[inode]``);
    * ``names``: its names under ``/var/run/netns``; ``paths``: other bind mounts of it;
    * ``pids``: the processes in it, ascending (empty when only a name or mount holds it);
    * ``container``: a :class:`~sockscope.ops.containers.Container` when a process's cgroup
      path names one; ``unit``: the systemd unit of that process (or of the first one);
      ``cgroup``: the cgroup path the attribution was read from;
    * ``current``: whether it is the namespace the caller was in when discovered.
    """

    __slots__ = (
        "cgroup",
        "container",
        "current",
        "dev",
        "inode",
        "names",
        "paths",
        "pids",
        "threads",
        "unit",
    )

    def __init__(self, dev: int, inode: int) -> None:
        self.dev = dev
        self.inode = inode
        self.names: tuple[str, ...] = ()
        self.paths: tuple[str, ...] = ()
        self.pids: tuple[int, ...] = ()
        #: (pid, tid) of threads in it whose process is not (a thread that unshared
        #: CLONE_NEWNET or called setns); empty for most namespaces
        self.threads: tuple[tuple[int, int], ...] = ()
        self.container: Container | None = None
        self.unit: str | None = None
        self.cgroup: str | None = None
        self.current = False

    @property
    def key(self) -> tuple[int, int]:
        return (self.dev, self.inode)

    @property
    def name(self) -> str | None:
        """The first name under /var/run/netns, if it has one."""
        return self.names[0] if self.names else None

    def __repr__(self) -> str:
        return f"<Namespace net:[{self.inode}] names={self.names} pids={len(self.pids)}>"

    def handles(self) -> Iterator[str]:
        """Files that open it: names, bind mounts, then its processes' ns/net."""
        for name in self.names:
            yield f"{NETNS_RUN_DIR}/{name}"
        yield from self.paths
        for pid in self.pids:
            yield f"/proc/{pid}/ns/net"
        for pid, tid in self.threads:
            yield f"/proc/{pid}/task/{tid}/ns/net"

    def open(self) -> int:
        """An fd on the namespace, checked to be this one (pids are reused).

        Raises :class:`NamespaceGone` when no handle opens it any more.
        """
        denied: OSError | None = None
        for path in self.handles():
            try:
                fd = os.open(path, _O_NS)
            except OSError as e:
                if e.errno in (_errno.EACCES, _errno.EPERM):
                    denied = e
                continue
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) == self.key:
                return fd
            os.close(fd)
        if denied is not None:
            raise NamespaceDenied(
                f"cannot open network namespace {self.label}: {os.strerror(denied.errno or 0)}",
                denied.errno or 0,
            )
        raise NamespaceGone(f"network namespace {self.label} has gone", _errno.ENOENT)

    @property
    def label(self) -> str:
        return f"net:[{self.inode}]"

    def header(self) -> str:
        """The line ``--all-netns`` prints before the namespace's output (no newline).

        ``# netns net:[INODE] name=NAME path=PATH pid=PID container=RUNTIME:ID pod=UID
        unit=UNIT``, each field present when known; ``pid=none`` when no process is in it.
        """
        out = [f"# netns {self.label}"]
        if self.names:
            out.append("name=" + ",".join(self.names))
        if self.paths:
            out.append("path=" + ",".join(self.paths))
        out.append(f"pid={self.pids[0]}" if self.pids else "pid=none")
        if self.threads and not self.pids:
            out.append(f"tid={self.threads[0][1]}")
        if self.container is not None:
            out.append(self.container.text())
        elif self.unit:
            out.append(f"unit={self.unit}")
        return " ".join(out)

    def to_dict(self) -> dict[str, object]:
        """The ``netns`` object of ``--json``: inode, name(s), paths, pids, container."""
        d: dict[str, object] = {"inode": self.inode}
        if self.names:
            d["name"] = self.names[0]
            if len(self.names) > 1:
                d["names"] = list(self.names)
        if self.paths:
            d["paths"] = list(self.paths)
        d["pids"] = list(self.pids)
        if self.threads:
            d["tids"] = [tid for _pid, tid in self.threads]
        if self.container is not None:
            d["container"] = self.container.to_dict()
        if self.unit:
            d["unit"] = self.unit
        if self.cgroup is not None:
            d["cgroup"] = self.cgroup
        return d


class Discovery:
    """The result of a scan: the namespaces and what could not be looked at."""

    __slots__ = ("denied_pids", "namespaces")

    def __init__(self) -> None:
        self.namespaces: list[Namespace] = []
        #: processes whose ns/net could not be read (EACCES: another user's, no ptrace)
        self.denied_pids = 0


def _key(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _unescape(field: str) -> str:
    """A mountinfo path field: ``\\040`` and friends are octal escapes."""
    if "\\" not in field:
        return field
    raw = os.fsencode(field)
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x5C and raw[i + 1 : i + 4].isdigit() and len(raw[i + 1 : i + 4]) == 3:
            out.append(int(raw[i + 1 : i + 4], 8) & 0xFF)
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return os.fsdecode(bytes(out))


def nsfs_mounts(mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    """Mount points of network-namespace files (nsfs mounts of a ``net:[N]``)."""
    try:
        with open(mountinfo, "rb") as f:
            text = f.read().decode("utf-8", "surrogateescape")
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        head, sep, tail = line.partition(" - ")
        if not sep or not tail.startswith("nsfs "):
            continue
        fields = head.split(" ")
        if len(fields) >= 5 and fields[3].startswith("net:["):
            found.append(_unescape(fields[4]))
    return found


def discover(proc: str = "/proc", threads_too: bool = True) -> Discovery:
    """Scan the host for network namespaces (see the module's docstring).

    With ``threads_too``, the threads of every multi-threaded process are looked at too
    (``/proc/PID/task/TID/ns/net``): a namespace that only a thread is in (it unshared
    or joined one; its process is elsewhere) is found, with ``threads``. The cost is one
    directory read per process plus a stat per thread of multi-threaded processes.
    """
    result = Discovery()
    found: dict[tuple[int, int], Namespace] = {}
    here = _key(f"{proc}/thread-self/ns/net") or _key(f"{proc}/self/ns/net")

    def get(key: tuple[int, int]) -> Namespace:
        ns = found.get(key)
        if ns is None:
            ns = found[key] = Namespace(*key)
        return ns

    names: dict[tuple[int, int], list[str]] = {}
    try:
        entries = sorted(os.listdir(NETNS_RUN_DIR))
    except OSError:
        entries = []
    nsfs_dev = here[0] if here else None
    for name in entries:
        key = _key(f"{NETNS_RUN_DIR}/{name}")
        if key is not None and key[0] == nsfs_dev:  # a name whose mount is gone: skipped
            names.setdefault(key, []).append(name)
    run_dir = os.path.realpath(NETNS_RUN_DIR) + "/"
    paths: dict[tuple[int, int], list[str]] = {}
    for mnt in nsfs_mounts(f"{proc}/self/mountinfo"):
        if mnt.startswith((run_dir, NETNS_RUN_DIR + "/")):
            continue
        key = _key(mnt)
        if key is not None and mnt not in paths.get(key, ()):
            paths.setdefault(key, []).append(mnt)
    pids: dict[tuple[int, int], list[int]] = {}
    threads: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"{proc}/{entry}/ns/net")
        except OSError as e:
            if e.errno in (_errno.EACCES, _errno.EPERM):
                result.denied_pids += 1
            continue
        key = (st.st_dev, st.st_ino)
        pids.setdefault(key, []).append(int(entry))
        if threads_too:
            _threads(proc, entry, key, threads)
    for key, named in names.items():
        get(key).names = tuple(named)
    for key, mounts in paths.items():
        get(key).paths = tuple(mounts)
    host = _key(f"{proc}/1/ns/net")
    for key, members in pids.items():
        get(key).pids = tuple(sorted(members))
    for key, held in threads.items():
        if key not in pids:  # a namespace only threads are in
            get(key).threads = tuple(sorted(held))
    for key, ns in found.items():
        ns.current = key == here
        if ns.pids:
            people = ns.pids[:1] if key == host and ns.pids[0] == 1 else ns.pids
        elif ns.threads:
            people = tuple(pid for pid, _tid in ns.threads)
        else:
            continue
        attr = containers.attribute(people, lambda p: containers.read_cgroup(p, proc))
        ns.container, ns.unit, ns.cgroup = attr.container, attr.unit, attr.cgroup
    result.namespaces = sorted(found.values(), key=lambda n: (n.inode, n.dev))
    return result


def _threads(
    proc: str, pid: str, key: tuple[int, int], out: dict[tuple[int, int], list[tuple[int, int]]]
) -> None:
    """The threads of process ``pid`` whose namespace is not its (``key``)."""
    try:
        tids = os.listdir(f"{proc}/{pid}/task")
    except OSError:
        return
    if len(tids) < 2:
        return
    for tid in tids:
        if tid == pid:
            continue
        try:
            st = os.stat(f"{proc}/{pid}/task/{tid}/ns/net")
        except OSError:
            continue
        there = (st.st_dev, st.st_ino)
        if there != key:
            out.setdefault(there, []).append((int(pid), int(tid)))


def namespaces() -> Iterator[Namespace]:
    """Library: every network namespace of the host (``sockscope.namespaces()``)."""
    yield from discover().namespaces


def describe(key: tuple[int, int]) -> Namespace:
    """The namespace with this nsfs key as a scan sees it (bare if the scan misses it)."""
    for ns in discover().namespaces:
        if ns.key == key:
            return ns
    return Namespace(*key)


def listing(
    spec: str, make: Callable[[], Iterable[T]], batch: int = 1024
) -> Iterator[tuple[Namespace, T]]:
    """Library: ``(namespace, item)`` for ``sockets(netns=spec)``.

    ``spec`` is ``"all"`` (every namespace, see :func:`each`) or what ``-N`` takes (a
    name, a path, ``pid:PID``: :func:`sockscope.ops.netns.target`), with ``-N``'s errors.
    """
    if spec == "all":
        yield from each(discover().namespaces, make, batch)
        return
    fd = open_netns(spec)
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    ns = describe((st.st_dev, st.st_ino))
    for item in iterate(spec, make, batch):
        yield ns, item


def current_key() -> tuple[int, int] | None:
    """The calling thread's namespace key."""
    return _key("/proc/thread-self/ns/net") or _key("/proc/self/ns/net")


def _home() -> int:
    try:
        return os.open("/proc/thread-self/ns/net", _O_NS)
    except OSError:
        return os.open("/proc/self/ns/net", _O_NS)


def _enter(fd: int, ns: Namespace) -> None:
    try:
        setns(fd, CLONE_NEWNET)
    except OSError as e:
        raise NamespaceDenied(
            f"cannot enter network namespace {ns.label}: {os.strerror(e.errno or 0)}",
            e.errno or 0,
        ) from None


@contextlib.contextmanager
def _held(ns: Namespace) -> Iterator[tuple[int, int] | None]:
    """(namespace fd, home fd) while the body runs; None for the caller's own namespace."""
    if ns.key == current_key():
        yield None
        return
    fd = ns.open()
    try:
        back = _home()
        try:
            yield fd, back
        finally:
            os.close(back)
    finally:
        os.close(fd)


def call_inside(ns: Namespace, fn: Callable[[], T]) -> T:
    """``fn()`` run in ``ns`` (this thread only), the thread's namespace restored after
    whatever happens, a signal handler raising at any point included
    (:func:`sockscope.ops.netns.call_there`; :func:`inside`, a ``with`` block, has a
    window of a few instructions where such an exception skips the way back). Raises
    :class:`NamespaceGone` or :class:`NamespaceDenied` before ``fn`` runs."""
    with _held(ns) as fds:
        if fds is None:
            return fn()
        return call_there(lambda: _enter(fds[0], ns), fds[1], fn)


class Visit:
    """A namespace held open to be entered again and again (``-E --all-netns`` handles
    each namespace's events inside it): its fd and the caller's are kept, so a namespace
    whose last process exits can still be entered while the visit lasts. The caller's
    own namespace needs no fds and no privilege. Raises like :meth:`Namespace.open`."""

    __slots__ = ("_back", "_fd", "ns")

    def __init__(self, ns: Namespace) -> None:
        self.ns = ns
        self._fd = self._back = -1
        if ns.key != current_key():
            self._fd = ns.open()
            try:
                self._back = _home()
            except OSError:
                os.close(self._fd)
                raise

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` run inside the namespace, the thread's namespace restored after
        whatever happens (see :func:`call_inside`)."""
        if self._fd < 0:
            return fn()
        return call_there(lambda: _enter(self._fd, self.ns), self._back, fn)

    def close(self) -> None:
        for fd in (self._fd, self._back):
            if fd >= 0:
                os.close(fd)
        self._fd = self._back = -1


def each(
    spaces: Iterable[Namespace],
    make: Callable[[], Iterable[T]],
    batch: int = 1024,
    on_skip: Callable[[Namespace, SockscopeError], None] | None = None,
) -> Iterator[tuple[Namespace, T]]:
    """Library: ``(namespace, item)`` for the items ``make()`` produces inside each one.

    Like :func:`sockscope.ops.netns.iterate`, the namespace is entered around each pull
    of up to ``batch`` items, so the caller's code runs at home between them. A
    namespace that has gone or cannot be entered goes to ``on_skip`` (default: skipped
    silently).
    """
    for ns in spaces:
        try:
            with _held(ns) as fds:
                yield from _pull(ns, fds, make, batch)
        except (NamespaceGone, NamespaceDenied) as e:
            if on_skip is not None:
                on_skip(ns, e)


def _pull(
    ns: Namespace,
    fds: tuple[int, int] | None,
    make: Callable[[], Iterable[T]],
    batch: int,
) -> Iterator[tuple[Namespace, T]]:
    inner: Iterator[T] | None = None

    def pull() -> list[T]:
        nonlocal inner
        if inner is None:
            inner = iter(make())
        return list(islice(inner, batch))

    def there(fn: Callable[[], U]) -> U:
        if fds is None:
            return fn()
        return call_there(lambda: _enter(fds[0], ns), fds[1], fn)

    try:
        while True:
            items = there(pull)
            for item in items:
                yield ns, item
            if len(items) < batch:
                return
    finally:
        close = getattr(inner, "close", None)
        if close is not None:
            there(close)
