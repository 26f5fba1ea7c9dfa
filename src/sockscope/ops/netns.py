"""``ss -N NAME``: moving into a named network namespace.

:func:`switch` is the CLI's ``-N``: a port of iproute2's ``netns_switch``
(lib/namespace.c, 7.1). It opens ``/var/run/netns/NAME`` (or, sockscope's additions
when no such name exists, ``pid:PID`` or a namespace file's path: see :func:`target`),
joins that namespace, then, like ``ip netns exec``, takes a private mount namespace,
makes ``/`` a recursive slave, mounts a ``/sys`` that describes the new namespace and
bind-mounts every ``/etc/netns/NAME/*`` over ``/etc/*``. It changes the whole process for
good, as ss does. Failures raise :class:`SockscopeError` with ss's message and status 1.

:func:`entered` is the library's ``netns=``: a context manager that joins the network
namespace only (no mounts) for the calling thread and returns to the previous one on
exit. Sockets opened inside keep their namespace after it.

``os.setns``/``os.unshare`` exist from Python 3.12; on 3.11 libc's are called via ctypes.
"""

from __future__ import annotations

import contextlib
import errno
import functools  # (contextlib imports it already)
import os
from itertools import islice

from sockscope.errors import NamespaceError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import TypeVar

    T = TypeVar("T")

#: NETNS_RUN_DIR and NETNS_ETC_DIR of iproute2's build
NETNS_RUN_DIR = "/var/run/netns"
NETNS_ETC_DIR = "/etc/netns"

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_BIND = 4096
MS_REC = 16384
MS_SLAVE = 1 << 19
MNT_DETACH = 2
#: NAME_MAX and PATH_MAX of <limits.h>
NAME_MAX = 255
PATH_MAX = 4096


class _Libc:
    """The few libc calls needed, through ctypes (loaded on first use)."""

    def __init__(self) -> None:
        import ctypes
        import ctypes.util

        self._ctypes = ctypes
        self.lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

    def _check(self, ret: int) -> None:
        if ret < 0:
            err = self._ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    def setns(self, fd: int, nstype: int) -> None:
        self._check(self.lib.setns(fd, nstype))

    def unshare(self, flags: int) -> None:
        self._check(self.lib.unshare(flags))

    def mount(self, source: str, target: str, fstype: str, flags: int) -> None:
        c = self._ctypes
        self._check(
            self.lib.mount(
                os.fsencode(source),
                os.fsencode(target),
                os.fsencode(fstype),
                c.c_ulong(flags),
                None,
            )
        )

    def umount2(self, target: str, flags: int) -> None:
        self._check(self.lib.umount2(os.fsencode(target), flags))


@functools.cache  # one CDLL for the process: loading libc again would only cost time
def _libc() -> _Libc:
    return _Libc()


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    """setns(2): os.setns where it exists (3.12+), else libc's."""
    if hasattr(os, "setns"):
        os.setns(fd, nstype)
    else:
        _libc().setns(fd, nstype)


def call_there(enter: Callable[[], None], back: int, fn: Callable[[], T]) -> T:
    """``fn()`` with the calling thread moved by ``enter()`` (a setns into a namespace)
    and brought back to the namespace of fd ``back`` after, however it ends.

    The one place where a visit's way back is written. A signal handler that raises
    (KeyboardInterrupt, the long-running modes' SIGTERM exception) runs at the start of
    any Python call or just after a C call returns, so it can land just after the setns
    into the namespace or just before the setns home: the first case is inside the
    ``try``, and in the second the setns home is made again (entering the namespace the
    thread is already in is harmless) before the exception goes on. A ``with`` block
    cannot promise this (the handler can land before ``__exit__`` has done anything), so
    walks that must always come home call this instead. Without it a process that goes
    on after the exception (a library caller, a test) would do all later dumps in the
    visited namespace.
    """
    moved = False
    try:
        enter()
        moved = True
        return fn()
    finally:
        try:
            setns(back, CLONE_NEWNET)
        except OSError:
            # enter() failed (no privilege, the namespace gone) and the thread never
            # moved: an unprivileged caller cannot setns even into its own namespace
            if moved:
                raise
        except BaseException:
            setns(back, CLONE_NEWNET)
            raise


def unshare(flags: int) -> None:
    """unshare(2): os.unshare where it exists (3.12+), else libc's."""
    if hasattr(os, "unshare"):
        os.unshare(flags)
    else:
        _libc().unshare(flags)


def _path(name: str) -> str:
    """snprintf(net_path, PATH_MAX, "%s/%s", NETNS_RUN_DIR, name): cut to PATH_MAX - 1 bytes."""
    raw = os.fsencode(f"{NETNS_RUN_DIR}/{name}")[: PATH_MAX - 1]
    return os.fsdecode(raw)


def _strerror(e: OSError) -> str:
    return os.strerror(e.errno or 0)


def target(spec: str) -> tuple[str, str]:
    """What a ``-N``/``netns=`` argument names: ``(kind, file)``.

    * a name under /var/run/netns (as ss takes it): ``("name", "/var/run/netns/NAME")``;
      whenever that file exists the argument is a name, so everything ss opens, this opens;
    * otherwise ``pid:PID``: the namespace of a process, ``("pid", "/proc/PID/ns/net")``;
    * otherwise an argument with a ``/``: a namespace file (``/proc/PID/ns/net``, a bind
      mount), ``("path", spec)``;
    * otherwise a name again (which then does not exist: ss's message).

    Raises NamespaceError (EINVAL) for a ``pid:`` that is not a process id.
    """
    named = _path(spec)
    if spec.startswith("pid:") and not os.path.lexists(named):
        digits = spec[4:]
        if not (digits.isascii() and digits.isdigit()) or not 0 < int(digits) < 1 << 22:
            raise NamespaceError(
                f'Cannot open network namespace "{spec}": "{digits}" is not a process id',
                errno.EINVAL,
            )
        return "pid", f"/proc/{int(digits)}/ns/net"
    if "/" in spec and not os.path.lexists(named):
        return "path", spec
    return "name", named


def open_netns(spec: str) -> int:
    """Open the namespace file ``spec`` names (see :func:`target`); ss's message when it
    cannot be opened (``No such process`` for a ``pid:`` that does not exist)."""
    kind, path = target(spec)
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        reason = _strerror(e)
        if kind == "pid" and e.errno == errno.ENOENT:
            reason = os.strerror(errno.ESRCH)
        raise NamespaceError(
            f'Cannot open network namespace "{spec}": {reason}', e.errno or 0
        ) from None


def switch(name: str, warn: Callable[[str], None] | None = None) -> None:
    """Port of lib/namespace.c:netns_switch (iproute2 7.1) for ``-N NAME``.

    ``warn`` receives the non-fatal ``Bind A -> B failed: ...`` messages of the
    /etc/netns bind mounts. Raises SockscopeError (status 1) on the fatal failures.
    """
    fd = open_netns(name)
    try:
        _join(fd, name)
    finally:
        os.close(fd)
    try:
        unshare(CLONE_NEWNS)
    except OSError as e:
        raise NamespaceError(f"unshare failed: {_strerror(e)}", e.errno or 0) from None
    libc = _libc()
    try:
        libc.mount("", "/", "none", MS_SLAVE | MS_REC)
    except OSError as e:
        raise NamespaceError(
            f'"mount --make-rslave /" failed: {_strerror(e)}', e.errno or 0
        ) from None
    mountflags = 0
    try:
        libc.umount2("/sys", MNT_DETACH)
    except OSError:
        # no sysfs mounted, or it cannot go: overlay it (read-only stays read-only)
        with contextlib.suppress(OSError):
            if os.statvfs("/sys").f_flag & os.ST_RDONLY:
                mountflags = MS_RDONLY
    try:
        libc.mount(name, "/sys", "sysfs", mountflags)
    except OSError as e:
        raise NamespaceError(f"mount of /sys failed: {_strerror(e)}", e.errno or 0) from None
    if target(name)[0] == "name":
        bind_etc(name, warn)


def bind_etc(name: str, warn: Callable[[str], None] | None = None) -> None:
    """Port of lib/namespace.c:bind_etc: /etc/netns/NAME/* over /etc/*, errors reported."""
    if len(os.fsencode(name)) >= NAME_MAX:
        return
    etc_netns = f"{NETNS_ETC_DIR}/{name}"
    try:
        entries = os.listdir(etc_netns)
    except OSError:
        return
    libc = _libc()
    for entry in entries:
        source = f"{etc_netns}/{entry}"
        target = f"/etc/{entry}"
        try:
            libc.mount(source, target, "none", MS_BIND)
        except OSError as e:
            if warn is not None:
                warn(f"Bind {source} -> {target} failed: {_strerror(e)}")


def current() -> int:
    """An fd on the calling thread's network namespace, to come back to."""
    try:
        return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def _join(fd: int, name: str) -> None:
    try:
        setns(fd, CLONE_NEWNET)
    except OSError as e:
        why = _strerror(e)
        if e.errno == errno.EINVAL and target(name)[0] != "name":
            why += " (not a network namespace file)"
        raise NamespaceError(
            f'setting the network namespace "{name}" failed: {why}', e.errno or 0
        ) from None


def _home_or_close(fd: int) -> int:
    """The caller's namespace (:func:`current`); when it cannot be opened (EMFILE near
    RLIMIT_NOFILE), ``fd`` (the namespace to visit) is closed before the error goes on."""
    try:
        return current()
    except BaseException:
        os.close(fd)
        raise


def visit(name: str, fn: Callable[[], T]) -> T:
    """Library: ``fn()`` run in network namespace NAME (this thread only, no mounts),
    the thread back in its own namespace after, however it ends.

    Raises SockscopeError like ``-N`` when the namespace cannot be opened or joined.
    Unlike a ``with`` :func:`entered` block, the way home is :func:`call_there`'s, so a
    signal's exception that lands just after the namespace was joined cannot leave the
    thread inside it.
    """
    fd = open_netns(name)
    back = _home_or_close(fd)
    try:
        return call_there(lambda: _join(fd, name), back, fn)
    finally:
        os.close(fd)
        os.close(back)


@contextlib.contextmanager
def entered(name: str) -> Iterator[None]:
    """Library: run the body in network namespace NAME (this thread only, no mounts).

    Raises SockscopeError like ``-N`` when the namespace cannot be opened or joined.
    Do not wrap a generator's ``yield`` in it (the consumer would run inside the
    namespace too): use :func:`iterate`. ``/proc/net`` follows the namespace of the
    process's main thread, so use this from the main thread when ``/proc`` matters.
    """
    fd = open_netns(name)
    back = _home_or_close(fd)
    try:
        try:
            try:
                _join(fd, name)
            finally:
                os.close(fd)
            yield
        finally:
            setns(back, CLONE_NEWNET)
    finally:
        os.close(back)


def iterate(name: str, make: Callable[[], Iterable[T]], batch: int = 1) -> Iterator[T]:
    """Library: the items of ``make()``, produced inside network namespace NAME.

    Unlike wrapping a generator in :func:`entered`, the caller's code between items runs
    in its own namespace again: the namespace is entered around each pull of up to
    ``batch`` items (a setns pair costs some microseconds, so listings use batches; a
    blocking source such as events uses 1).
    """
    fd = open_netns(name)
    back = _home_or_close(fd)
    inner: Iterator[T] | None = None

    def enter() -> None:
        _join(fd, name)

    def pull() -> list[T]:
        nonlocal inner
        if inner is None:
            inner = iter(make())
        return list(islice(inner, batch))

    try:
        while True:
            items = call_there(enter, back, pull)
            yield from items
            if len(items) < batch:
                return
    finally:
        close = getattr(inner, "close", None)
        if close is not None:
            call_there(enter, back, close)
        os.close(fd)
        os.close(back)
