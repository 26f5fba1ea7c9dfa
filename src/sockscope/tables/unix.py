"""UNIX domain sockets (``u_str``, ``u_dgr``, ``u_seq``): records, sources, rows.

Ports of ss.c's ``unix_show``, ``unix_show_netlink``, ``unix_show_sock``,
``unix_type_skip`` and ``unix_stats_print`` (iproute2 7.1). The sockets come from a
``unix_diag`` dump; when it fails, or ``PROC_ROOT``/``PROC_NET_UNIX`` is set, from
``/proc/net/unix``, which ss reads with its own quirks (see :func:`proc_records`).
"""

from __future__ import annotations

import os
import struct

from sockscope.kernel import abi
from sockscope.kernel.iproute import proc_path
from sockscope.kernel.libc import int32, open_fgets, scanf
from sockscope.render.printer import state_text_of
from sockscope.tables.common import (
    Endpoints,
    add_owners,
    decoded,
    diag_dump,
    diag_request,
    dump_else_proc,
    meminfo,
    parse_attrs,
    picker,
    skmem_dict,
    skmem_text,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sockscope.render.printer import Printer
    from sockscope.render.view import View
    from sockscope.tables.context import Context

_STATES = abi.STATE_NAMES
_NETIDS = {abi.SOCK_STREAM: "u_str", abi.SOCK_SEQPACKET: "u_seq"}
#: unix_type_skip: socket type -> the table that must be selected
_TYPE_DB = {
    abi.SOCK_STREAM: abi.UNIX_ST_DB,
    abi.SOCK_DGRAM: abi.UNIX_DG_DB,
    abi.SOCK_SEQPACKET: abi.UNIX_SQ_DB,
}
#: unix_state_map of unix_show: the /proc "St" column (1..4) -> state
_PROC_STATES = (abi.SS_CLOSE, abi.SS_SYN_SENT, abi.SS_ESTABLISHED, abi.SS_CLOSING)
#: __SO_ACCEPTCON in the /proc "Flags" column: a listener
_ACCEPTCON = 1 << 16
#: MAX_UNIX_REMEMBER: 1 MiB / sizeof(struct sockstat) (624 bytes on 64-bit)
MAX_UNIX_REMEMBER = (1024 * 1024) // 624
_U32 = struct.Struct("=I")


def netid_name(sock_type: int) -> str:
    """unix_netid_name: u_str, u_seq, and u_dgr for every other type."""
    return _NETIDS.get(sock_type, "u_dgr")


#: A stand-in for the char * that ss keeps in sockstat.local.data for a named socket: what
#: a user-space stack/heap address looks like (non-zero low bytes, 0x7f.. high bytes).
_NAME_POINTER = bytes((0x30, 0xB2, 0x5E, 0xD6, 0xFC, 0x7F, 0, 0))


class UnixSocket(Endpoints):
    """One AF_UNIX socket.

    ``name`` is the bound name as ss shows it (abstract names begin with ``@`` and every
    NUL byte is an ``@``), None when unbound; ``name_bytes`` the same as raw bytes.
    ``inode``/``peer_inode`` are what the Port columns show. The filter view (``lport``,
    ``rport``, ``local_data`` ...) follows ss: from netlink, the inode and peer inode;
    from ``/proc/net/unix``, zeros.
    """

    __slots__ = (
        "cookie",
        "from_proc",
        "icons",
        "inode",
        "mem",
        "name_bytes",
        "peer_inode",
        "peer_name_bytes",
        "recv_q",
        "send_q",
        "shutdown",
        "state",
        "type",
        "uid",
        "vfs",
    )

    family = abi.AF_UNIX
    iface = 0
    mark = 0
    cgroup_id = 0

    def __init__(
        self,
        sock_type: int,
        state: int,
        inode: int,
        name_bytes: bytes | None = None,
        peer_inode: int = 0,
        recv_q: int = 0,
        send_q: int = 0,
        cookie: int = 0,
    ) -> None:
        self.type = sock_type
        self.state = state
        self.inode = inode
        self.name_bytes = name_bytes
        self.peer_inode = peer_inode
        self.peer_name_bytes: bytes | None = None
        self.recv_q = recv_q
        self.send_q = send_q
        self.cookie = cookie
        self.from_proc = False
        #: UNIX_DIAG_MEMINFO words (-m), UNIX_DIAG_SHUTDOWN mask, UNIX_DIAG_VFS (ino, dev),
        #: UNIX_DIAG_ICONS (pending connections), UNIX_DIAG_UID
        self.mem: tuple[int, ...] | None = None
        self.shutdown: int | None = None
        self.vfs: tuple[int, int] | None = None
        self.icons: tuple[int, ...] | None = None
        self.uid: int | None = None

    # -- friendly view ----------------------------------------------------------------
    @property
    def netid(self) -> str:
        return netid_name(self.type)

    @property
    def state_name(self) -> str:
        return _STATES[self.state] if 0 <= self.state < len(_STATES) else "UNKNOWN"

    @property
    def name(self) -> str | None:
        """The name as text (file-system encoding), None when unbound."""
        return None if self.name_bytes is None else os.fsdecode(self.name_bytes)

    @property
    def peer_name(self) -> str | None:
        return None if self.peer_name_bytes is None else os.fsdecode(self.peer_name_bytes)

    local_addr = name

    # -- filter view (struct sockstat as unix_show_sock / unix_show fill it) ----------------
    @property
    def lport(self) -> int:
        return 0 if self.from_proc else int32(self.inode)

    @property
    def rport(self) -> int:
        return 0 if self.from_proc else int32(self.peer_inode)

    @property
    def local_data(self) -> bytes:
        # ss copies the name *pointer* into local.data (NULL when unbound), so an inet
        # host operand compares its bits with an address: unbound sockets match
        # 0.0.0.0 and [::], named ones (practically) never do.
        return b"" if self.name_bytes is None else _NAME_POINTER

    @property
    def remote_data(self) -> bytes:
        # Only unix_show (/proc) copies the peer name pointer, and not for "*".
        if self.from_proc and self.peer_name_bytes not in (None, b"*"):
            return _NAME_POINTER
        return b""

    def to_dict(self, view: View | None = None) -> dict[str, object]:
        """The data view (``--json``, library)."""
        if view is None:
            view = self.attached_view
        # the names as UTF-8 whatever the locale (os.fsdecode under a latin-1 one would
        # turn UTF-8 names into mojibake, and hide the bytes that are not UTF-8 from
        # --json's lossless rule): the same data under every LANG
        name, peer = self.name_bytes, self.peer_name_bytes
        out: dict[str, object] = {
            "netid": self.netid,
            "state": self.state_name,
            "recv_q": self.recv_q,
            "send_q": self.send_q,
            "local_address": "*" if name is None else name.decode("utf-8", "surrogateescape"),
            "local_port": self.inode,
            "peer_address": "*" if peer is None else peer.decode("utf-8", "surrogateescape"),
            "peer_port": self.peer_inode,
            "family": "unix",
        }
        want_details = view is None or view.details
        if want_details:
            if self.shutdown is not None:
                mask = self.shutdown
                out["shutdown"] = {"receive": bool(mask & 1), "send": bool(mask & 2)}
            if self.vfs is not None:
                out["vfs"] = {"inode": self.vfs[0], "dev": self.vfs[1]}
            if self.icons is not None:
                out["pending_peers"] = list(self.icons)
        if (view is None or view.mem) and self.mem is not None:
            out["skmem"] = skmem_dict(self.mem)
        add_owners(view, self.inode, out, self.owners)
        return out

    def __repr__(self) -> str:
        name = self.name if self.name_bytes is not None else "*"
        return (
            f"UnixSocket({self.netid} {self.state_name} {name}"
            f" ino={self.inode} peer={self.peer_inode})"
        )


# --- gathering -------------------------------------------------------------------------------
def records(ctx: Context) -> Iterator[UnixSocket]:
    """Port of unix_show: the netlink dump, else /proc/net/unix."""
    if not ctx.sel.families & (1 << abi.AF_UNIX):
        return iter(())
    return dump_else_proc(ctx, "PROC_NET_UNIX", netlink_records, proc_records)


def request(states: int, show_mem: bool, show_details: bool) -> bytes:
    """unix_show_netlink's request: names, peers, queue lengths (+ -m, -e extras)."""
    show = abi.UDIAG_SHOW_NAME | abi.UDIAG_SHOW_PEER | abi.UDIAG_SHOW_RQLEN
    if show_mem:
        show |= abi.UDIAG_SHOW_MEMINFO
    if show_details:
        show |= abi.UDIAG_SHOW_VFS | abi.UDIAG_SHOW_ICONS
    return diag_request(abi.UNIX_DIAG_REQ.pack(abi.AF_UNIX, 0, 0, states, 0, show, 0, 0))


def netlink_records(ctx: Context) -> Iterator[UnixSocket]:
    """Every socket of the dump whose type is selected (before the filter)."""
    opts = ctx.opts
    req = request(ctx.sel.states, bool(opts.show_mem), bool(opts.show_details))
    return decoded(diag_dump(ctx, req), decode, ctx.sel.dbs, _TYPE_DB)


def decode(buf: bytes, body: int, end: int) -> UnixSocket | None:
    """unix_show_sock: one unix_diag_msg and its attributes."""
    if end - body < abi.UNIX_DIAG_MSG.size:
        return None
    _family, sock_type, state, ino, c0, c1 = abi.UNIX_DIAG_MSG.unpack_from(buf, body)
    tb = parse_attrs(buf, body + abi.UNIX_DIAG_MSG.size, end)
    rec = UnixSocket(sock_type, state, ino, cookie=(c1 << 32) | c0)
    span = tb.get(abi.UNIX_DIAG_RQLEN)
    if span is not None:
        rec.recv_q, rec.send_q = _pair(buf, span)
    span = tb.get(abi.UNIX_DIAG_NAME)
    if span is not None:
        rec.name_bytes = display_name(buf[span[0] : span[1]])
    span = tb.get(abi.UNIX_DIAG_PEER)
    if span is not None:
        rec.peer_inode = _u32(buf, span)
    rec.mem = meminfo(buf, tb.get(abi.UNIX_DIAG_MEMINFO))
    span = tb.get(abi.UNIX_DIAG_SHUTDOWN)
    if span is not None:
        rec.shutdown = buf[span[0]] if span[1] > span[0] else 0
    span = tb.get(abi.UNIX_DIAG_VFS)
    if span is not None:
        rec.vfs = _pair(buf, span)
    span = tb.get(abi.UNIX_DIAG_ICONS)
    if span is not None:
        n = (span[1] - span[0]) // 4
        rec.icons = struct.unpack_from(f"={n}I", buf, span[0])
    span = tb.get(abi.UNIX_DIAG_UID)
    if span is not None:
        rec.uid = _u32(buf, span)
    return rec


def display_name(raw: bytes) -> bytes:
    """The name cell: a C string, except abstract names, where every NUL becomes ``@``."""
    raw = raw[:127]
    if raw[:1] == b"\0":
        return raw.replace(b"\0", b"@")
    nul = raw.find(b"\0")
    return raw if nul < 0 else raw[:nul]


def _u32(buf: bytes, span: tuple[int, int]) -> int:
    data = buf[span[0] : span[0] + 4].ljust(4, b"\0")
    return int(_U32.unpack(data)[0])


def _pair(buf: bytes, span: tuple[int, int]) -> tuple[int, int]:
    data = buf[span[0] : span[0] + 8].ljust(8, b"\0")
    rqueue, wqueue = abi.UNIX_DIAG_RQLEN_S.unpack(data)
    return rqueue, wqueue


def proc_records(ctx: Context) -> Iterator[UnixSocket]:
    """The /proc/net/unix half of unix_show.

    Each line is read with ``sscanf("%x: %x %x %x %x %x %d %s")`` into a 256-byte
    buffer. Quirks kept: a listener is ``Flags & __SO_ACCEPTCON``; an unconnected datagram
    socket whose first column (the kernel address, printed for root) is non-zero shows
    as ESTAB; the modern file has no peer column, so queues and peers are 0; types and
    states are filtered here; the filter sees only the name; rows come out sorted by
    type then inode, in batches of MAX_UNIX_REMEMBER + 1.
    """
    try:
        lines = open_fgets(proc_path("net/unix", "PROC_NET_UNIX", ctx.environ))
    except OSError:
        return
    header = next(lines, None)
    if header is None:
        return
    newformat = header.startswith(b"Peer")
    batch: list[UnixSocket] = []
    flags = 0
    for line in lines:
        rec, flags = _proc_line(line, flags, newformat, ctx, batch)
        if rec is None:
            continue
        batch.append(rec)
        if len(batch) > MAX_UNIX_REMEMBER:
            yield from _sorted(batch)
            batch = []
    yield from _sorted(batch)


def _sorted(batch: list[UnixSocket]) -> list[UnixSocket]:
    return sorted(batch, key=lambda r: (r.type, r.inode))


def _proc_line(
    line: bytes, flags: int, newformat: bool, ctx: Context, batch: list[UnixSocket]
) -> tuple[UnixSocket | None, int]:
    """One line of /proc/net/unix: the record (None if dropped) and the Flags value."""
    vals = scanf(line, "%x: %x %x %x %x %x %d %s")
    ints = [v for v in vals[:7] if isinstance(v, int)]
    ints += [0] * (7 - len(ints))
    if len(vals) > 3:
        flags = ints[3]  # an uninitialised local in ss: it keeps the last value read
    rport, rq, wq, _f, sock_type, state, ino = ints
    name = vals[7] if len(vals) >= 8 else b""
    state = int32(state)
    if flags & _ACCEPTCON:
        state = abi.SS_LISTEN
    elif 0 < state <= len(_PROC_STATES):
        state = _PROC_STATES[state - 1]
        if sock_type == abi.SOCK_DGRAM and state == abi.SS_CLOSE and rport:
            state = abi.SS_ESTABLISHED
    db = _TYPE_DB.get(sock_type)
    sel = ctx.sel
    if db is not None and not sel.dbs >> db & 1:
        return None, flags
    if not sel.states >> (state & 31) & 1:
        return None, flags
    if not newformat:
        rport = rq = wq = 0
    rec = UnixSocket(sock_type, state, ino & 0xFFFFFFFF, name or None, rport, rq, wq)  # type: ignore[arg-type]
    rec.from_proc = True
    if rport:
        peer = next((p for p in batch if p.inode == rport), None)
        rec.peer_name_bytes = b"?" if peer is None else (peer.name_bytes or b"*")
    if ctx.matcher is not None and not ctx.matcher(rec):
        return None, flags
    return rec, flags


# --- rows ------------------------------------------------------------------------------------
def row_fn(printer: Printer, ctx: Context) -> Callable[[UnixSocket], tuple[str, ...]]:
    """unix_stats_print plus the -m/-e items of unix_show_sock (netlink records only)."""
    opts = printer.opts
    pick = picker(printer)
    queue = printer.queue
    show_mem = bool(opts.show_mem)
    show_details = bool(opts.show_details)
    show_proc = printer.show_proc
    process = printer.process

    def row(s: UnixSocket) -> tuple[str, ...]:
        state = s.state
        name = s.name_bytes
        peer = s.peer_name_bytes
        ext = "" if s.from_proc else _extra(s, show_mem, show_details)
        return pick((
            netid_name(s.type),
            _STATES[state] if 0 <= state < len(_STATES) else state_text_of(state),
            queue(s.recv_q),
            queue(s.send_q),
            ("*" if name is None else name.decode("latin-1")) + " ",
            str(s.inode),
            ("*" if peer is None else peer.decode("latin-1")) + " ",
            str(s.peer_inode),
            process(s.inode) if show_proc else "",
            ext,
        ))  # fmt: skip

    return row


def _extra(s: UnixSocket, show_mem: bool, show_details: bool) -> str:
    out = skmem_text(s.mem) if show_mem else ""
    if show_details:
        if s.shutdown is not None:
            mask = s.shutdown
            out += " {}-{}".format("-" if mask & 1 else "<", "-" if mask & 2 else ">")
        if s.vfs is not None:
            ino, dev = s.vfs
            out += f" ino:{ino} dev:{_major(dev)}/{_minor(dev)}"
        if s.icons is not None:
            out += " peers:" + "".join(f" {p}" for p in s.icons)
    return out


def _major(dev: int) -> int:
    """glibc major() of the 32-bit value the kernel sends (its own dev_t encoding)."""
    return (dev >> 8) & 0xFFF


def _minor(dev: int) -> int:
    """glibc minor() of the 32-bit value the kernel sends."""
    return (dev & 0xFF) | ((dev >> 12) & 0xFFF00)
