"""AF_PACKET sockets (``p_raw``, ``p_dgr``): records, sources, rows.

Ports of ss.c's ``packet_show``, ``packet_show_netlink``, ``packet_show_sock``,
``packet_show_line``, ``packet_stats_print`` and ``packet_show_ring``, and of
lib/ll_proto.c's protocol names (iproute2 7.1). Quirks kept: the netlink path does not
look at the socket type (``-A packet_raw`` lists dgram sockets too), while the
``/proc/net/packet`` path does; a reply without ``PACKET_DIAG_MEMINFO`` abandons the dump
for ``/proc/net/packet`` (rows already printed stay).
"""

from __future__ import annotations

import socket
import struct

from sockscope.kernel import abi
from sockscope.kernel.iproute import LL_PROTO_NAMES, proc_path
from sockscope.kernel.libc import int32, open_fgets, scanf
from sockscope.tables.common import (
    DumpFailed,
    Endpoints,
    add_owners,
    details_text,
    diag_dump,
    diag_request,
    dump_else_proc,
    meminfo,
    parse_attrs,
    picker,
    skmem_dict,
    skmem_text,
    struct_at,
    u32_at,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sockscope.render.printer import Printer
    from sockscope.render.view import View
    from sockscope.tables.context import Context

#: ll_proto_n2a's lookup: the first name of each protocol number in lib/ll_proto.c's table
#: (a later duplicate never wins; read-only)
_LL_NAMES: dict[int, str] = dict(reversed(LL_PROTO_NAMES))

_FANOUT_TYPES = ("hash", "lb", "cpu", "roll", "random", "qm")
_PDI_FLAGS = (
    (abi.PDI_AUXDATA, " auxdata"),
    (abi.PDI_ORIGDEV, " origdev"),
    (abi.PDI_VNETHDR, " vnethdr"),
    (abi.PDI_LOSS, " loss"),
)


def ll_proto_name(protocol: int, numeric: bool = False) -> str:
    """ll_proto_n2a: the name from lib/ll_proto.c's table, ``[N]`` if unknown or -n."""
    name = None if numeric else _LL_NAMES.get(protocol)
    return f"[{protocol}]" if name is None else name


class PacketSocket(Endpoints):
    """One AF_PACKET socket.

    ``protocol`` is the bound ethertype (host order), ``ifindex`` the bound interface (0:
    any). ``info`` is PACKET_DIAG_INFO (index, version, reserve, copy_thresh, tstamp,
    flags), ``rx_ring``/``tx_ring`` PACKET_DIAG_*_RING, ``fanout`` the raw u32 (id |
    type << 16), ``bpf`` the classic BPF program as (code, jt, jf, k) tuples.
    """

    __slots__ = (
        "bpf",
        "cookie",
        "fanout",
        "ifindex",
        "info",
        "inode",
        "mem",
        "protocol",
        "recv_q",
        "rx_ring",
        "tx_ring",
        "type",
        "uid",
    )

    family = abi.AF_PACKET
    state = abi.SS_CLOSE
    send_q = 0
    rport = 0
    mark = 0
    cgroup_id = 0
    name = None
    remote_data = b""

    def __init__(
        self, sock_type: int, protocol: int, inode: int, ifindex: int = 0, recv_q: int = 0
    ) -> None:
        self.type = sock_type
        self.protocol = protocol & 0xFFFF
        self.inode = inode
        self.ifindex = ifindex
        self.recv_q = recv_q
        self.uid = 0
        self.cookie = 0
        self.info: tuple[int, ...] | None = None
        self.rx_ring: tuple[int, ...] | None = None
        self.tx_ring: tuple[int, ...] | None = None
        self.fanout: int | None = None
        self.bpf: list[tuple[int, int, int, int]] | None = None
        self.mem: tuple[int, ...] | None = None

    @property
    def netid(self) -> str:
        return "p_raw" if self.type == abi.SOCK_RAW else "p_dgr"

    @property
    def state_name(self) -> str:
        return "UNCONN"

    # -- filter view (packet_stats_print: local.data[0] = prot, lport = iface) -------------
    @property
    def iface(self) -> int:
        return self.ifindex

    @property
    def lport(self) -> int:
        return int32(self.ifindex)

    @property
    def local_data(self) -> bytes:
        return struct.pack("=I", self.protocol)

    def to_dict(self, view: View | None = None) -> dict[str, object]:
        """The data view (``--json``, library)."""
        if view is None:
            view = self.attached_view
        out: dict[str, object] = {
            "netid": self.netid,
            "state": "UNCONN",
            "recv_q": self.recv_q,
            "send_q": 0,
            "local_address": (
                "*" if self.protocol == abi.ETH_P_ALL else ll_proto_name(self.protocol)
            ),
            "protocol": self.protocol,
            "family": "packet",
        }
        if self.ifindex:
            ifname = view.ifname if view is not None else _ifname
            out["interface"] = ifname(self.ifindex)
            out["ifindex"] = self.ifindex
        if view is None or view.details:
            out["uid"] = self.uid
            out["inode"] = self.inode
            out["cookie"] = self.cookie
            if self.info is not None:
                _idx, ver, _res, thresh, _ts, flags = self.info
                out["version"] = ver
                out["copy_thresh"] = thresh
                out["flags"] = flags
            for key, ring in (("rx_ring", self.rx_ring), ("tx_ring", self.tx_ring)):
                if ring is not None:
                    out[key] = dict(zip(_RING_KEYS, ring, strict=True))
            if self.fanout is not None:
                out["fanout"] = {"id": self.fanout & 0xFFFF, "type": fanout_type(self.fanout)}
            if self.bpf is not None:
                out["bpf"] = [list(ins) for ins in self.bpf]
        if (view is None or view.mem) and self.mem is not None:
            out["skmem"] = skmem_dict(self.mem)
        add_owners(view, self.inode, out, self.owners)
        return out

    def __repr__(self) -> str:
        return (
            f"PacketSocket({self.netid} proto={self.protocol:#06x}"
            f" if={self.ifindex} ino={self.inode})"
        )


_RING_KEYS = (
    "block_size", "block_nr", "frame_size", "frame_nr", "retire_tmo", "sizeof_priv", "features",
)  # fmt: skip


def _ifname(index: int) -> str:
    try:
        return socket.if_indextoname(index)
    except OSError:
        return f"if{index}"


def fanout_type(fanout: int) -> str:
    """The fanout type word of packet_show_sock (``0x%x`` when unknown)."""
    kind = (fanout >> 16) & 0xFFFF
    return _FANOUT_TYPES[kind] if kind < len(_FANOUT_TYPES) else f"0x{kind:x}"


# --- gathering -------------------------------------------------------------------------------
def records(ctx: Context) -> Iterator[PacketSocket]:
    """Port of packet_show: the netlink dump, else /proc/net/packet."""
    sel = ctx.sel
    if not sel.families & (1 << abi.AF_PACKET) or not sel.states & (1 << abi.SS_CLOSE):
        return iter(())
    return dump_else_proc(ctx, "PROC_NET_PACKET", netlink_records, proc_records)


REQUEST_SHOW = (
    abi.PACKET_SHOW_INFO
    | abi.PACKET_SHOW_MEMINFO
    | abi.PACKET_SHOW_FILTER
    | abi.PACKET_SHOW_RING_CFG
    | abi.PACKET_SHOW_FANOUT
)


def request() -> bytes:
    """packet_show_netlink's request (no PACKET_SHOW_MCLIST)."""
    return diag_request(abi.PACKET_DIAG_REQ.pack(abi.AF_PACKET, 0, 0, 0, REQUEST_SHOW, 0, 0))


def netlink_records(ctx: Context) -> Iterator[PacketSocket]:
    """Every socket of the dump (no type check). Raises DumpFailed like a failed dump
    when a reply lacks PACKET_DIAG_MEMINFO (packet_show_sock returns -1)."""
    for _mtype, buf, off, length in diag_dump(ctx, request()):
        rec = decode(buf, off + abi.NLMSGHDR.size, off + length)
        if rec is None:
            raise DumpFailed
        yield rec


def decode(buf: bytes, body: int, end: int) -> PacketSocket | None:
    """packet_show_sock: one packet_diag_msg; None when PACKET_DIAG_MEMINFO is missing."""
    if end - body < abi.PACKET_DIAG_MSG.size:
        data = buf[body:end].ljust(abi.PACKET_DIAG_MSG.size, b"\0")
        fields = abi.PACKET_DIAG_MSG.unpack(data)
    else:
        fields = abi.PACKET_DIAG_MSG.unpack_from(buf, body)
    _family, sock_type, num, ino, c0, c1 = fields
    tb = parse_attrs(buf, body + abi.PACKET_DIAG_MSG.size, end)
    mem = meminfo(buf, tb.get(abi.PACKET_DIAG_MEMINFO))
    if mem is None:
        return None
    rec = PacketSocket(sock_type, num, ino)
    rec.cookie = (c1 << 32) | c0
    rec.mem = mem
    rec.recv_q = mem[0] if mem else 0
    span = tb.get(abi.PACKET_DIAG_INFO)
    if span is not None:
        rec.info = struct_at(abi.PACKET_DIAG_INFO_S, buf, span)
        rec.ifindex = rec.info[0]
    span = tb.get(abi.PACKET_DIAG_UID)
    if span is not None:
        rec.uid = u32_at(buf, span)
    span = tb.get(abi.PACKET_DIAG_RX_RING)
    if span is not None:
        rec.rx_ring = struct_at(abi.PACKET_DIAG_RING_S, buf, span)
    span = tb.get(abi.PACKET_DIAG_TX_RING)
    if span is not None:
        rec.tx_ring = struct_at(abi.PACKET_DIAG_RING_S, buf, span)
    span = tb.get(abi.PACKET_DIAG_FANOUT)
    if span is not None:
        rec.fanout = u32_at(buf, span)
    span = tb.get(abi.PACKET_DIAG_FILTER)
    if span is not None:
        size = abi.SOCK_FILTER.size
        rec.bpf = [
            abi.SOCK_FILTER.unpack_from(buf, pos)
            for pos in range(span[0], span[0] + (span[1] - span[0]) // size * size, size)
        ]
    return rec


def proc_records(ctx: Context) -> Iterator[PacketSocket]:
    """packet_show_line over /proc/net/packet (``sk RefCnt Type Proto Iface R Rmem User
    Inode``), read through generic_record_read: the header is skipped and the read stops
    at a line that does not end in a newline (or is longer than 255 bytes)."""
    try:
        lines = open_fgets(proc_path("net/packet", "PROC_NET_PACKET", ctx.environ))
    except OSError:
        return
    dbs = ctx.sel.dbs
    match = ctx.matcher
    if next(lines, None) is None:
        return
    # packet_show_line's locals are not initialised: a short line keeps what the line
    # before left in them (zeros before the first line, as 7.1 shows)
    vals: list[int] = [0] * 8
    for line in lines:
        nul = line.find(b"\0")
        if nul >= 0 or not line.endswith(b"\n"):
            return  # strlen() does not end at the newline: generic_record_read fails
        got = scanf(line[:-1], "%llx %*d %d %x %d %d %u %u %u")
        vals[: len(got)] = got  # type: ignore[assignment]
        _sk, sock_type, prot, iface, _state, rq, uid, ino = vals
        if sock_type == abi.SOCK_RAW and not dbs >> abi.PACKET_R_DB & 1:
            continue
        if sock_type == abi.SOCK_DGRAM and not dbs >> abi.PACKET_DG_DB & 1:
            continue
        rec = PacketSocket(sock_type & 0xFFFFFFFF, prot, ino, iface & 0xFFFFFFFF, rq)
        rec.uid = uid
        if match is None or match(rec):
            yield rec


# --- rows ------------------------------------------------------------------------------------
def row_fn(printer: Printer, ctx: Context) -> Callable[[PacketSocket], tuple[str, ...]]:
    """packet_stats_print, then the -e, -b and -m items of packet_show_sock."""
    opts = printer.opts
    pick = picker(printer)
    queue = printer.queue
    numeric = bool(opts.numeric)
    ifname = printer.resolver.ifname
    show_proc = printer.show_proc
    process = printer.process
    details = bool(opts.show_details)
    bpf = bool(opts.show_bpf)
    mem = bool(opts.show_mem)
    nl = " " if opts.oneline else "\n\t"
    zero = queue(0)

    def row(s: PacketSocket) -> tuple[str, ...]:
        proto = s.protocol
        addr = "*" if proto == abi.ETH_P_ALL else ll_proto_name(proto, numeric)
        ext = details_text(s.uid, s.inode, s.cookie) + _diag_details(s, nl) if details else ""
        if bpf and s.bpf is not None:
            ext += f"{nl}bpf filter ({len(s.bpf)}): " + "".join(
                f" 0x{code:02x} {jt} {jf} {k}," for code, jt, jf, k in s.bpf
            )
        if mem:
            ext += skmem_text(s.mem)
        return pick((
            "p_raw" if s.type == abi.SOCK_RAW else "p_dgr",
            "UNCONN",
            queue(s.recv_q),
            zero,
            addr + ":",
            ifname(s.ifindex) if s.ifindex else "*",
            "*",
            "",
            process(s.inode) if show_proc else "",
            ext,
        ))  # fmt: skip

    return row


def _diag_details(s: PacketSocket, nl: str) -> str:
    """The -e items only the netlink path has: version/flags, rings, fanout."""
    out = ""
    if s.info is not None:
        _idx, ver, _res, thresh, _ts, flags = s.info
        out += f"{nl}ver:{int32(ver)} cpy_thresh:{int32(thresh)} flags( "
        if flags & abi.PDI_RUNNING:
            out += "running"
        out += "".join(text for bit, text in _PDI_FLAGS if flags & bit)
        if not flags:
            out += "0"
        out += " )"
    for label, ring in (("ring_rx", s.rx_ring), ("ring_tx", s.tx_ring)):
        if ring is not None:
            bs, bn, fs, fn, tmo, _priv, feat = ring
            out += (
                f"{nl}{label}(blk_size:{int32(bs)},blk_nr:{int32(bn)},"
                f"frm_size:{int32(fs)},frm_nr:{int32(fn)},"
                f"tmo:{int32(tmo)},features:0x{feat:x})"
            )
    if s.fanout is not None:
        out += f"{nl}fanout(id:{s.fanout & 0xFFFF},type:{fanout_type(s.fanout)})"
    return out
