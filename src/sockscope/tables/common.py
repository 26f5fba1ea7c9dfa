"""The non-inet tables (UNIX, PACKET, NETLINK, VSOCK, TIPC, XDP): dispatch and shared parts.

Each family lives in its own module (:mod:`~sockscope.unixsock`,
:mod:`~sockscope.packetsock`, :mod:`~sockscope.nlsock`, :mod:`~sockscope.vsock`,
:mod:`~sockscope.tipcsock`, :mod:`~sockscope.xdpsock`) with the same two entry points:

* ``records(ctx)``: the matching sockets of the table, from the source ss would use (a
  sock_diag dump, or the ``/proc/net`` file when the dump fails or ``PROC_ROOT`` /
  ``PROC_NET_*`` is set), with the user-space filter applied;
* ``row_fn(printer, ctx)``: a function turning one record into the row cells ss prints.

This module holds what they share: the sock_diag dump with ss's error rules
(``handle_netlink_request`` + ``rtnl_dump_filter``), first-wins attribute parsing
(``parse_rtattr``), the ``skmem:(...)`` text (``print_skmeminfo``), and the C library
behaviours the ``/proc`` parsers depend on (``fgets`` into a 256-byte buffer, ``sscanf``).
"""

from __future__ import annotations

import os
import struct
from importlib import import_module
from operator import itemgetter

from sockscope.errors import NetlinkError
from sockscope.kernel import abi, netlink
from sockscope.tables import MODULES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import TypeVar

    _R = TypeVar("_R")

    from sockscope.ops.namespaces import Namespace
    from sockscope.render.printer import Printer
    from sockscope.render.view import View
    from sockscope.tables.context import Context


def _module(name: str):  # type: ignore[no-untyped-def]
    return import_module(f".{MODULES[name]}", __package__)


def row_fn(name: str, printer: Printer, ctx: Context) -> Callable[[object], tuple[str, ...]]:
    """The row function of one non-inet table (the ``*_show()`` printers of ss.c)."""
    return _module(name).row_fn(printer, ctx)  # type: ignore[no-any-return]


def records(name: str, ctx: Context) -> Iterator[object]:
    """The matching sockets of one non-inet table (the library's and --json's data path)."""
    if name not in MODULES:
        return iter(())
    return _module(name).records(ctx)  # type: ignore[no-any-return]


# --- records ---------------------------------------------------------------------------
class Owner:
    """A process holding a socket, as ``ss -p`` lists it: the command name (``comm``),
    the pid, the file descriptor, and the thread id with ``-T``. ``uid`` and ``user``
    (the owner of ``/proc/PID``, by name) are looked up when first read."""

    __slots__ = ("_uid", "command", "fd", "pid", "tid")

    def __init__(self, command: str, pid: int, fd: int, tid: int | None = None) -> None:
        self.command = command
        self.pid = pid
        self.fd = fd
        self.tid = tid
        self._uid: int | None = None

    @property
    def name(self) -> str:
        """``command`` under the name ``--json`` gives it."""
        return self.command

    @property
    def uid(self) -> int | None:
        """The real uid of the process (None when it is gone)."""
        if self._uid is None:
            try:
                self._uid = os.stat(f"/proc/{self.pid}").st_uid
            except OSError:
                return None
        return self._uid

    @property
    def user(self) -> str | None:
        """The user name of :attr:`uid` (its number as text when it has no name)."""
        uid = self.uid
        if uid is None:
            return None
        import pwd

        try:
            return pwd.getpwuid(uid).pw_name
        except KeyError:
            return str(uid)

    def to_dict(self) -> dict[str, object]:
        """One entry of ``users`` in ``--json -p`` (``-T`` adds ``tid``)."""
        if self.tid is None:
            return {"name": self.command, "pid": self.pid, "fd": self.fd}
        return {"name": self.command, "pid": self.pid, "tid": self.tid, "fd": self.fd}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Owner):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        tid = "" if self.tid is None else f", tid={self.tid}"
        return f"Owner({self.command!r}, pid={self.pid}{tid}, fd={self.fd})"


class Endpoints:
    """The data view's names for a record's two ends, as properties: the values its
    ``to_dict()`` (and ``--json``) gives, None where it gives none. The same names as
    :class:`~sockscope.tables.inet.record.InetSocket`'s. Also where the library keeps
    the processes holding the socket (``Query(processes=True)``)."""

    __slots__ = ("_netns", "_owners", "_view")

    @property
    def owners(self) -> tuple[Owner, ...] | None:
        """The processes holding the socket, in ss's order, when they were asked for."""
        return getattr(self, "_owners", None)

    @property
    def attached_view(self) -> View | None:
        """The data view of the query that yielded the record (what ``to_dict()`` uses
        when given none), or None."""
        return getattr(self, "_view", None)

    @property
    def netns(self) -> Namespace | None:
        """The network namespace the record was listed in (``sockets(netns=...)``), or
        None for the caller's own."""
        return getattr(self, "_netns", None)

    def attach(
        self,
        view: View,
        owners: tuple[Owner, ...] | None = None,
        netns: Namespace | None = None,
    ) -> None:
        """Keep the query's data view and, with ``processes``, the socket's owners; with
        ``netns``, the namespace it was listed in."""
        self._view = view
        if owners is not None:
            self._owners = owners
        if netns is not None:
            self._netns = netns

    def to_dict(self, view: View | None = None) -> dict[str, object]:
        raise NotImplementedError

    def _end(self, key: str) -> str | int | None:
        value = self.to_dict().get(key)
        return value if isinstance(value, (str, int)) else None

    @property
    def local_address(self) -> str | int | None:
        return self._end("local_address")

    @property
    def local_port(self) -> str | int | None:
        return self._end("local_port")

    @property
    def peer_address(self) -> str | int | None:
        return self._end("peer_address")

    @property
    def peer_port(self) -> str | int | None:
        return self._end("peer_port")


# --- filter ------------------------------------------------------------------------------
def apply_filter(recs: Iterable[object], ctx: Context) -> Iterator[object]:
    """run_ssfilter on every record (ss applies the expression in user space)."""
    match = ctx.matcher
    if match is None:
        yield from recs
        return
    for rec in recs:
        if match(rec):
            yield rec


# --- sock_diag dumps -------------------------------------------------------------------------
class DumpFailed(Exception):
    """A sock_diag dump failed as a whole: ss then tries the table's /proc file."""


def diag_request(payload: bytes) -> bytes:
    """DIAG_REQUEST of ss.c: nlmsghdr (SOCK_DIAG_BY_FAMILY, dump, MAGIC_SEQ) + request."""
    return netlink.message(abi.SOCK_DIAG_BY_FAMILY, abi.NLM_F_REQUEST | abi.NLM_F_DUMP, payload)


def diag_dump(ctx: Context, request: bytes) -> Iterator[netlink.Message]:
    """handle_netlink_request: the reply messages of one dump.

    Raises :class:`DumpFailed` where the dump fails. ENOENT and EOPNOTSUPP (the kernel
    lacks the diag module) are silent; other errors print ``RTNETLINK answers: ...`` as
    libnetlink's perror does (these dumps do not suppress errors, unlike the inet ones).
    """
    shared = ctx.diag_sock
    if shared is not None:
        sock = shared
    else:
        try:
            sock = netlink.open_diag()
        except OSError as e:
            ctx.warn(f"Cannot open netlink socket: {e.strerror}")
            raise DumpFailed from None
    state = netlink.DumpState()
    try:
        yield from netlink.dump(sock, request, None, state)
    except (NetlinkError, OSError) as e:
        text = netlink.failure_text(e)
        if text is not None:
            ctx.warn(text)
        raise DumpFailed from None
    finally:
        if shared is None:
            sock.close()
        else:  # kept for the next dump (--watch): nothing of this one may be left in it
            netlink.drain(sock)
    if state.interrupted:
        ctx.warn("Dump was interrupted and may be inconsistent.")


def decoded(
    messages: Iterable[netlink.Message],
    decode: Callable[[bytes, int, int], _R | None],
    dbs: int = -1,
    type_db: dict[int, int] | None = None,
) -> Iterator[_R]:
    """The records of one dump (``diag_dump``'s messages): every message decoded; with
    ``type_db`` (socket type -> table), sockets of tables not in ``dbs`` are dropped (ss
    checks the types in user space)."""
    hdr = abi.NLMSGHDR.size
    for _mtype, buf, off, length in messages:
        rec = decode(buf, off + hdr, off + length)
        if rec is None:
            continue
        if type_db is not None:
            db = type_db.get(rec.type)  # type: ignore[attr-defined]
            if db is not None and not dbs >> db & 1:
                continue
        yield rec


def dump_else_proc(
    ctx: Context,
    env_var: str,
    dump: Callable[[Context], Iterator[_R]],
    proc: Callable[[Context], Iterator[_R]],
) -> Iterator[_R]:
    """The shape of unix_show, packet_show and netlink_show: the sock_diag dump through
    the filter, or the /proc reader when ``$env_var`` or ``$PROC_ROOT`` is set or the
    dump fails as a whole (rows already produced stay, as ss's already-printed rows do).
    ``proc`` applies the filter itself."""
    env = ctx.environ
    if env_var not in env and "PROC_ROOT" not in env:
        try:
            yield from apply_filter(dump(ctx), ctx)  # type: ignore[misc]
            return
        except DumpFailed:
            pass
    yield from proc(ctx)


def parse_attrs(buf: bytes, off: int, end: int) -> dict[int, tuple[int, int]]:
    """parse_rtattr (no flag bits cleared): :func:`sockscope.kernel.netlink.attrs`."""
    return netlink.attrs(buf, off, end, 0xFFFF)


def u32_at(buf: bytes, span: tuple[int, int] | None) -> int:
    """rta_getattr_u32, 0 for a missing or short attribute."""
    if span is None or span[1] - span[0] < 4:
        return 0
    return int.from_bytes(buf[span[0] : span[0] + 4], "little")


def u64_at(buf: bytes, span: tuple[int, int] | None) -> int:
    """rta_getattr_u64, 0 for a missing or short attribute."""
    if span is None or span[1] - span[0] < 8:
        return 0
    return int.from_bytes(buf[span[0] : span[0] + 8], "little")


def struct_at(layout: struct.Struct, buf: bytes, span: tuple[int, int]) -> tuple[int, ...]:
    """RTA_DATA cast to a struct: a short payload reads as zero-filled."""
    data = buf[span[0] : span[1]]
    if len(data) < layout.size:
        data = data.ljust(layout.size, b"\0")
    return layout.unpack_from(data)


def meminfo(buf: bytes, span: tuple[int, int] | None) -> tuple[int, ...] | None:
    """An SK_MEMINFO_* u32 array (as many words as were sent), None when absent."""
    if span is None:
        return None
    n = (span[1] - span[0]) // 4
    return struct.unpack_from(f"={n}I", buf, span[0])


def skmem_text(words: tuple[int, ...] | None) -> str:
    """print_skmeminfo: `` skmem:(r..,rb..,t..,tb..,f..,w..,o..[,bl..][,d..])``."""
    if words is None:
        return ""
    w = list(words[:9]) + [0] * (7 - len(words))
    text = " skmem:(r{},rb{},t{},tb{},f{},w{},o{}".format(*w[:7])
    if len(words) > abi.SK_MEMINFO_BACKLOG:
        text += f",bl{words[abi.SK_MEMINFO_BACKLOG]}"
    if len(words) > abi.SK_MEMINFO_DROPS:
        text += f",d{words[abi.SK_MEMINFO_DROPS]}"
    return text + ")"


def skmem_dict(words: tuple[int, ...]) -> dict[str, int]:
    """An SK_MEMINFO array as the data view's ``skmem`` object."""
    from sockscope.render.view import skmem

    return skmem(struct.pack(f"={len(words)}I", *words), (0, 4 * len(words)))


def add_owners(
    view: View | None, inode: int, out: dict[str, object], attached: tuple[Owner, ...] | None
) -> None:
    """``users`` of the data view (``-p``): from the view's lookup when it has one, else
    the owners the library attached to the record (``Query(processes=True)``)."""
    if view is not None and view.owners is not None:
        from sockscope.render.view import owners

        users = owners(view, inode)
    elif attached:
        users = [owner.to_dict() for owner in attached]
    else:
        users = None
    if users:
        out["users"] = users


def details_text(uid: int, inode: int, cookie: int) -> str:
    """sock_details_print for the families without mark/cgroup (packet, xdp, tipc)."""
    return (f" uid:{uid}" if uid else "") + f" ino:{inode} sk:{cookie:x}"


# --- rows ------------------------------------------------------------------------------------
def picker(printer: Printer) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
    """Select the enabled slots from a full 10-cell row (Netid .. extra information)."""
    return itemgetter(*printer.enabled)
