"""The process map behind ``-p``/``-T``/``-Z``/``-z``: socket inode -> owning tasks.

Port of ss.c's ``user_ent_hash_build``, ``user_ent_hash_build_task`` and
``find_entry`` (iproute2 7.1). ss walks ``$PROC_ROOT`` (default ``/proc/``) in readdir
order: every numeric entry is a pid; its ``fd/`` links of the form ``socket:[INODE]``
are recorded with the task name from ``<pid>/stat`` (the comm cut at the first ``)``
and escaped). With ``-T`` each other thread ``<pid>/task/<tid>`` is scanned again
through ``$PROC_ROOT/<tid>/``. ss prepends every entry to a hash chain, so a socket's
owners print in reverse discovery order: highest pid first, within a pid the last
thread first, within a task the highest fd first.

Here the map is a dict keyed by inode (ss's 256-bucket chains make its lookups
quadratic on big hosts); each value is one entry text or a list of them in discovery
order, and :meth:`ProcessMap.users` joins them reversed.
"""

from __future__ import annotations

import errno
import os

from sockscope.accel import core as compiled_core
from sockscope.kernel.libc import int32
from sockscope.tables.common import Owner

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from sockscope.options import Options

_UNAVAILABLE = "unavailable"
#: lib/escape.c:esc_all with ss's (never set) C locale: controls -> '.', high bytes -> '?'
_ESCAPE = bytes((0x2E if c < 0x20 or c == 0x7F else 0x3F if c >= 0x80 else c) for c in range(256))
#: a process out of descriptors (RLIMIT_NOFILE), a system out of files
_SHORT = (errno.EMFILE, errno.ENFILE)
_O_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


def scan_int(text: str) -> int | None:
    """sscanf(text, "%d%*c", &n) == 1: a leading decimal int (blanks and sign allowed)."""
    if text.isdigit() and text.isascii():
        return int32(int(text))
    i, n = 0, len(text)
    while i < n and text[i] in " \t\n\v\f\r":
        i += 1
    j = i
    if j < n and text[j] in "+-":
        j += 1
    k = j
    while k < n and "0" <= text[k] <= "9":
        k += 1
    if k == j:
        return None
    value = int(text[i:k])
    # glibc converts through strtol (saturating at the long range), then truncates to int
    value = max(-(1 << 63), min(value, (1 << 63) - 1))
    return int32(value)


def task_name(stat: bytes) -> str:
    """``fscanf(fp, "%*d (%[^)])", name)`` then escape_str into ``char task[20]``.

    An unparsable stat (or a comm starting with ``)``) gives the empty name.
    """
    i, n = 0, len(stat)
    while i < n and stat[i] in b" \t\n\v\f\r":
        i += 1
    if i < n and stat[i] in b"+-":
        i += 1
    j = i
    while j < n and 0x30 <= stat[j] <= 0x39:
        j += 1
    if j == i:
        return ""
    while j < n and stat[j] in b" \t\n\v\f\r":
        j += 1
    if j >= n or stat[j] != 0x28:  # '('
        return ""
    end = stat.find(b")", j + 1)
    name = stat[j + 1 : n if end < 0 else end]
    if not name:
        return ""
    name = name.split(b"\0", 1)[0][:19]  # a C string copied by strlcpy into task[20]
    return name.translate(_ESCAPE).decode("latin-1")


#: libselinux's SELINUXMNT and OLDSELINUXMNT, tried first
_SELINUX_MOUNTS = ("/sys/fs/selinux", "/selinux")


def selinux_enabled(
    mounts: str = "/proc/mounts",
    filesystems: str = "/proc/filesystems",
    config: str = "/etc/selinux/config",
) -> bool:
    """libselinux's is_selinux_enabled() (3.x, which ss 7.1 links for -Z/-z).

    SELinux counts as enabled when init_selinuxmnt found a selinuxfs mounted read-write
    and ``/etc/selinux/config`` exists (has_selinux_config). init_selinuxmnt looks at
    /sys/fs/selinux, then /selinux, and stops at the first that is a selinuxfs (one
    mounted read-only means disabled); otherwise, when /proc/filesystems knows
    selinuxfs, at the first selinuxfs of /proc/mounts. libselinux asks statfs(2) for the
    filesystem type and statvfs(2) for ST_RDONLY at each place; here the mount table
    answers (the last mount on a directory is the one statfs sees), which needs no
    ctypes and gives the same answer for mount points.
    """
    try:
        with open(mounts, "rb") as f:
            table = [line.split(b" ")[1:4] for line in f.read().splitlines()]
    except OSError:
        return False
    table = [entry for entry in table if len(entry) == 3]
    top = {point: (fstype, options) for point, fstype, options in table}

    def verified(point: bytes) -> bool | None:
        """verify_selinuxmnt: None when not a selinuxfs, else whether it is read-write."""
        fstype, options = top.get(point, (b"", b""))
        if fstype != b"selinuxfs":
            return None
        return b"ro" not in options.split(b",")

    found: bool | None = None
    for point in _SELINUX_MOUNTS:
        found = verified(os.fsencode(point))
        if found is not None:
            break
    else:
        try:
            with open(filesystems, "rb") as f:
                known = b"selinuxfs" in f.read()
        except OSError:
            known = False
        if known:
            first = next((point for point, fstype, _o in table if fstype == b"selinuxfs"), None)
            found = None if first is None else verified(first)
    return bool(found) and os.access(config, os.F_OK)


def _selinux_ctx(path: str) -> str:
    """getfilecon: the security.selinux attribute, or ``unavailable``."""
    try:
        value = os.getxattr(path, "security.selinux")
    except (OSError, AttributeError):
        return _UNAVAILABLE
    return value.rstrip(b"\0").decode("latin-1") or _UNAVAILABLE


def _pid_ctx(tid: int) -> str:
    """getpidcon: ``/proc/<tid>/attr/current``, or ``unavailable``."""
    try:
        with open(f"/proc/{tid}/attr/current", "rb") as f:
            value = f.read()
    except OSError:
        return _UNAVAILABLE
    return value.rstrip(b"\0\n").decode("latin-1") or _UNAVAILABLE


class ProcessMap:
    """Socket inode -> the ``users:(...)`` entries of the tasks holding it."""

    __slots__ = ("_fast", "entries", "kind", "threads")

    #: entry kinds of find_entry
    USERS, PROC_CTX, PROC_SOCK_CTX = 0, 1, 2

    def __init__(self, kind: int = 0, threads: bool = False) -> None:
        self.entries: dict[int, str | list[str]] = {}
        self.kind = kind
        self.threads = threads
        core = compiled_core()
        #: the compiled fd loop (None: pure Python); it declines what is not plain
        self._fast: Callable[[int], list[tuple[int, int]] | None] | None = getattr(
            core, "fd_sockets", None
        )

    @classmethod
    def build(cls, environ: dict[str, str], opts: Options) -> ProcessMap:
        """user_ent_hash_build over ``$PROC_ROOT`` with the entry format the options ask."""
        if opts.show_proc_ctx or opts.show_sock_ctx:
            both = opts.show_proc_ctx and opts.show_sock_ctx
            kind = cls.PROC_SOCK_CTX if both else cls.PROC_CTX
        else:
            kind = cls.USERS
        pmap = cls(kind, bool(opts.show_threads))
        root = environ.get("PROC_ROOT")
        if root is None:
            root = "/proc/"
        if not root.endswith("/"):
            root += "/"
        pmap.scan(root)
        return pmap

    # -- building ---------------------------------------------------------------------
    def scan(self, root: str) -> None:
        """Walk ``root`` as user_ent_hash_build does.

        Each directory ss walks stays open (a descriptor) while it works inside it, and
        where RLIMIT_NOFILE leaves few descriptors, which ones could be opened decides
        what ss shows (at 4, no process at all; at 5, entries with an empty name). So a
        placeholder descriptor is held where ss holds a ``DIR``: the names are read
        first (one descriptor, closed at once), then the directory is opened again and
        kept, and the same opens succeed or fail as in ss.
        """
        try:
            names = os.listdir(root)
            held = os.open(root, _O_DIR)  # ss's opendir(root), kept to the end
        except OSError:
            return
        try:
            self._scan_pids(root, names)
        finally:
            os.close(held)

    def _scan_pids(self, root: str, names: list[str]) -> None:
        threads = self.threads
        for name in names:
            pid = scan_int(name)
            if pid is None:
                continue
            self.scan_task(root, pid, pid)
            if not threads:
                continue
            task_dir = f"{root}{pid}/task/"
            try:
                tids = os.listdir(task_dir)
                held = os.open(task_dir, _O_DIR)  # ss's task_dir, kept for the loop
            except OSError:
                continue
            try:
                for tname in tids:
                    tid = scan_int(tname)
                    if tid is None or tid == pid:
                        continue
                    self.scan_task(root, pid, tid)
            finally:
                os.close(held)

    def scan_task(self, root: str, pid: int, tid: int) -> None:
        """user_ent_hash_build_task: the socket fds of ``root/<tid>/fd/``."""
        base = f"{root}{tid}/"
        pctx = _pid_ctx(tid) if self.kind != self.USERS else ""  # getpidcon comes first
        path = base + "fd/"
        try:
            dfd = os.open(path, _O_DIR)  # ss's opendir, held while the task's name is read
        except OSError:
            return
        try:
            try:
                found = None if self._fast is None else self._fast(dfd)
                if found is None:
                    found = _fd_sockets(dfd)
            except OSError as e:
                if e.errno not in _SHORT:
                    return  # the task ended meanwhile: ss's readdir ends the same way
                # listing by descriptor takes a second one (fdopendir of a dup), where
                # ss's DIR needs none: with none to spare, list by name in the slot the
                # held descriptor frees, then hold it again
                os.close(dfd)
                dfd = -1
                try:
                    found = _fd_sockets(path)
                    dfd = os.open(path, _O_DIR)
                except OSError:
                    return
            if found:
                self._add_task(base, pid, tid, found, pctx)
        finally:
            if dfd >= 0:
                os.close(dfd)

    def _add_task(
        self, base: str, pid: int, tid: int, found: list[tuple[int, int]], pctx: str
    ) -> None:
        try:
            with open(base + "stat", "rb") as f:
                task = task_name(f.read())
        except OSError:
            task = ""
        thread = f"tid={tid}," if self.threads else ""
        entries = self.entries
        if self.kind == self.USERS:
            head = f'("{task}",pid={pid},{thread}fd='
            texts = [(ino, f"{head}{fd})") for fd, ino in found]
        else:
            head = f'("{task}",pid={pid},{thread}proc_ctx={pctx},fd='
            if self.kind == self.PROC_CTX:
                texts = [(ino, f"{head}{fd})") for fd, ino in found]
            else:
                texts = [
                    (ino, f"{head}{fd},sock_ctx={_selinux_ctx(f'{base}fd/{fd}')})")
                    for fd, ino in found
                ]
        for ino, text in texts:
            have = entries.get(ino)
            if have is None:
                entries[ino] = text
            elif type(have) is str:
                entries[ino] = [have, text]
            else:
                have.append(text)  # type: ignore[union-attr]

    # -- lookups ----------------------------------------------------------------------
    def users(self, inode: int) -> str:
        """find_entry: the entries for ``inode`` joined by ``,``, newest first ('' if none)."""
        if not inode:
            return ""
        have = self.entries.get(inode)
        if have is None:
            return ""
        if type(have) is str:
            return have
        return ",".join(reversed(have))

    def owner_records(self, inode: int) -> tuple[Owner, ...]:
        """The entries for ``inode`` in :meth:`users` order, as
        :class:`~sockscope.tables.common.Owner` records (``tid`` with threads)."""
        text = self.users(inode)
        out = []
        for entry in text[1:-1].split("),(") if text else ():
            name, _sep, rest = entry.rpartition('",pid=')
            values = dict(item.partition("=")[::2] for item in ("pid=" + rest).split(","))
            tid = int(values["tid"]) if self.threads else None
            out.append(Owner(name[1:], int(values["pid"]), int(values["fd"]), tid))
        return tuple(out)

    def owners(self, inode: int) -> list[tuple[object, ...]]:
        """The entries for ``inode`` as data, in :meth:`users` order: ``(name, pid, fd)``,
        or ``(name, pid, tid, fd)`` with threads (what ``--json`` prints as ``users``)."""
        return [tuple(o.to_dict().values()) for o in self.owner_records(inode)]

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, inode: object) -> bool:
        return inode in self.entries


def _fd_sockets(where: int | str) -> list[tuple[int, int]]:
    """(fd, socket inode) of the fd directory ``where`` (a descriptor, or a path ending
    in ``/``), in readdir order: the loop of user_ent_hash_build_task (the reference;
    ``_core.fd_sockets`` does the plain forms of it in C)."""
    names = os.listdir(where)
    readlink = os.readlink
    found: list[tuple[int, int]] = []
    for name in names:
        if name.isdigit() and name.isascii():
            fd = int(name)
            if fd > 0x7FFFFFFF:
                fd = int32(fd)
        else:
            fd = scan_int(name)  # type: ignore[assignment]
            if fd is None:
                continue
        try:
            if isinstance(where, int):
                link = readlink(str(fd), dir_fd=where)
            else:
                link = readlink(where + str(fd))
        except OSError:
            continue
        if link[:8] != "socket:[":
            continue
        ino = _socket_inode(link)
        if ino is not None:
            found.append((fd, ino))
    return found


def _socket_inode(link: str) -> int | None:
    """``sscanf(lnk, "socket:[%u]", &ino)`` on a link cut to 63 bytes."""
    body = link[8:63]
    close = body.find("]")
    digits = body if close < 0 else body[:close]
    if digits.isdigit() and digits.isascii():
        return int(digits) & 0xFFFFFFFF
    value = scan_int(body)
    return None if value is None else value & 0xFFFFFFFF


class PendingMap:
    """A :class:`ProcessMap` being built by a thread while the kernel dumps the sockets.

    Work ss does not do: its /proc scan runs before the first dump request. Here the
    scan (``ProcessMap.build``) runs in a background thread; the first lookup waits for
    it, then every name is the built map's. The listing's receive threads keep reading
    the dumps meanwhile, so the scan and the kernel's work overlap. The map's contents,
    hence the output, are the same. Under a memory cap, or where no thread can be
    started, the map is built at once, in the caller's thread.
    """

    __slots__ = ("_done", "_error", "_map")

    def __init__(self, environ: dict[str, str], opts: Options) -> None:
        import _thread

        from sockscope.kernel.rlimit import memory_capped

        self._map: ProcessMap | None = None
        self._error: BaseException | None = None
        self._done = _thread.allocate_lock()
        self._done.acquire()
        if memory_capped():
            # under RLIMIT_AS/RLIMIT_DATA a thread costs a stack of the cap, and one that
            # runs out of memory may never return (see kernel.rlimit): scan it now
            self._build(environ, opts)
            return
        try:
            _thread.start_new_thread(self._build, (environ, opts))
        except (RuntimeError, MemoryError):  # no thread to spare (RLIMIT_NPROC): scan it now
            self._build(environ, opts)

    def _build(self, environ: dict[str, str], opts: Options) -> None:
        try:
            self._map = ProcessMap.build(environ, opts)
        except BaseException as e:  # raised again at the first lookup
            self._error = e
        finally:
            self._done.release()

    def result(self) -> ProcessMap:
        """The built map (waits for the scan; raises what the scan raised)."""
        if self._map is None:
            with self._done:
                pass
            if self._error is not None:
                raise self._error
        assert self._map is not None
        return self._map

    def users(self, inode: int) -> str:
        return self.result().users(inode)

    def owners(self, inode: int) -> list[tuple[object, ...]]:
        return self.result().owners(inode)

    def owner_records(self, inode: int) -> tuple[Owner, ...]:
        return self.result().owner_records(inode)

    def __len__(self) -> int:
        return len(self.result())

    def __contains__(self, inode: object) -> bool:
        return inode in self.result()
