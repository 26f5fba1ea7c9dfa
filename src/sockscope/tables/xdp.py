"""AF_XDP sockets (``xdp``): records, source, rows.

Ports of ss.c's ``xdp_show``, ``xdp_show_sock``, ``xdp_stats_print``,
``xdp_show_ring``, ``xdp_show_umem`` and ``xdp_show_stats`` (iproute2 7.1). No
``/proc`` fallback: without ``xsk_diag`` nothing is listed. Quirk kept: with ``-O`` the
umem block is introduced by `` tumem(`` (a stray ``t`` from the ``\\t`` of the multi-line
form).
"""

from __future__ import annotations

from sockscope.kernel import abi
from sockscope.kernel.libc import int32
from sockscope.tables.common import (
    DumpFailed,
    Endpoints,
    apply_filter,
    decoded,
    details_text,
    diag_dump,
    diag_request,
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

REQUEST_SHOW = (
    abi.XDP_SHOW_INFO
    | abi.XDP_SHOW_RING_CFG
    | abi.XDP_SHOW_UMEM
    | abi.XDP_SHOW_MEMINFO
    | abi.XDP_SHOW_STATS
)
_UMEM_KEYS = (
    "size", "id", "num_pages", "chunk_size", "headroom", "ifindex", "queue_id", "flags", "refs",
)  # fmt: skip
_STATS_KEYS = (
    "rx_dropped", "rx_invalid", "rx_queue_full", "rx_fill_ring_empty", "tx_invalid",
    "tx_ring_empty",
)  # fmt: skip


class XdpSocket(Endpoints):
    """One AF_XDP socket, bound to queue ``queue_id`` of interface ``ifindex`` (0: unbound).

    Ring sizes are entry counts (None when the ring is not set up); ``umem`` is
    xdp_diag_umem (size, id, num_pages, chunk_size, headroom, ifindex, queue_id, flags,
    refs) and ``stats`` xdp_diag_stats.
    """

    __slots__ = (
        "cookie",
        "cr",
        "fr",
        "ifindex",
        "inode",
        "mem",
        "queue_id",
        "recv_q",
        "rx",
        "stats",
        "tx",
        "type",
        "uid",
        "umem",
    )

    family = abi.AF_XDP
    state = abi.SS_CLOSE
    send_q = 0
    rport = 0
    mark = 0
    cgroup_id = 0
    name = None
    local_data = b""
    remote_data = b""

    def __init__(self, sock_type: int, inode: int, ifindex: int = 0, queue_id: int = 0) -> None:
        self.type = sock_type
        self.inode = inode
        self.ifindex = ifindex
        self.queue_id = queue_id
        self.cookie = 0
        self.uid = 0
        self.recv_q = 0
        self.rx: int | None = None
        self.tx: int | None = None
        self.fr: int | None = None
        self.cr: int | None = None
        self.umem: tuple[int, ...] | None = None
        self.stats: tuple[int, ...] | None = None
        self.mem: tuple[int, ...] | None = None

    @property
    def netid(self) -> str:
        return "xdp"

    @property
    def state_name(self) -> str:
        return "UNCONN"

    # -- filter view (xdp_show_sock: lport = queue id, iface = ifindex) ----------------------
    @property
    def lport(self) -> int:
        return int32(self.queue_id)

    @property
    def iface(self) -> int:
        return self.ifindex

    def to_dict(self, view: View | None = None) -> dict[str, object]:
        if view is None:
            view = self.attached_view
        out: dict[str, object] = {
            "netid": "xdp",
            "state": "UNCONN",
            "recv_q": self.recv_q,
            "send_q": 0,
            "family": "xdp",
        }
        if self.ifindex:
            out["ifindex"] = self.ifindex
            out["queue_id"] = self.queue_id
        if view is None or view.details:
            out["uid"] = self.uid
            out["inode"] = self.inode
            out["cookie"] = self.cookie
            for key in ("rx", "tx", "fr", "cr"):
                value = getattr(self, key)
                if value is not None:
                    out[key + "_entries"] = value
            if self.umem is not None:
                out["umem"] = dict(zip(_UMEM_KEYS, self.umem, strict=True))
            if self.stats is not None:
                out["stats"] = dict(zip(_STATS_KEYS, self.stats, strict=True))
        if (view is None or view.mem) and self.mem is not None:
            out["skmem"] = skmem_dict(self.mem)
        return out

    def __repr__(self) -> str:
        return f"XdpSocket(if={self.ifindex} q={self.queue_id} ino={self.inode})"


def records(ctx: Context) -> Iterator[XdpSocket]:
    """Port of xdp_show (no fallback: a failed dump lists nothing)."""
    sel = ctx.sel
    if not sel.families & (1 << abi.AF_XDP) or not sel.states & (1 << abi.SS_CLOSE):
        return
    try:
        yield from apply_filter(netlink_records(ctx), ctx)  # type: ignore[misc]
    except DumpFailed:
        return


def request() -> bytes:
    return diag_request(abi.XDP_DIAG_REQ.pack(abi.AF_XDP, 0, 0, 0, REQUEST_SHOW, 0, 0))


def netlink_records(ctx: Context) -> Iterator[XdpSocket]:
    return decoded(diag_dump(ctx, request()), decode)


def _ring(buf: bytes, span: tuple[int, int] | None) -> int | None:
    return None if span is None else u32_at(buf, span)


def decode(buf: bytes, body: int, end: int) -> XdpSocket | None:
    """xdp_show_sock: one xdp_diag_msg and its attributes."""
    if end - body < abi.XDP_DIAG_MSG.size:
        return None
    _family, sock_type, ino, c0, c1 = abi.XDP_DIAG_MSG.unpack_from(buf, body)
    tb = parse_attrs(buf, body + abi.XDP_DIAG_MSG.size, end)
    rec = XdpSocket(sock_type, ino)
    rec.cookie = (c1 << 32) | c0
    span = tb.get(abi.XDP_DIAG_INFO)
    if span is not None:
        rec.ifindex, rec.queue_id = struct_at(abi.XDP_DIAG_INFO_S, buf, span)
    span = tb.get(abi.XDP_DIAG_UID)
    if span is not None:
        rec.uid = u32_at(buf, span)
    rec.rx = _ring(buf, tb.get(abi.XDP_DIAG_RX_RING))
    rec.tx = _ring(buf, tb.get(abi.XDP_DIAG_TX_RING))
    rec.fr = _ring(buf, tb.get(abi.XDP_DIAG_UMEM_FILL_RING))
    rec.cr = _ring(buf, tb.get(abi.XDP_DIAG_UMEM_COMPLETION_RING))
    span = tb.get(abi.XDP_DIAG_UMEM)
    if span is not None:
        rec.umem = struct_at(abi.XDP_DIAG_UMEM_S, buf, span)
    span = tb.get(abi.XDP_DIAG_STATS)
    if span is not None:
        rec.stats = struct_at(abi.XDP_DIAG_STATS_S, buf, span)
    rec.mem = meminfo(buf, tb.get(abi.XDP_DIAG_MEMINFO))
    if rec.mem:
        rec.recv_q = rec.mem[abi.SK_MEMINFO_RMEM_ALLOC]
    return rec


def row_fn(printer: Printer, ctx: Context) -> Callable[[XdpSocket], tuple[str, ...]]:
    """xdp_stats_print, then the -e and -m items of xdp_show_sock."""
    opts = printer.opts
    pick = picker(printer)
    queue = printer.queue
    zero = queue(0)
    ifname = printer.resolver.ifname
    show_proc = printer.show_proc
    process = printer.process
    details = bool(opts.show_details)
    mem = bool(opts.show_mem)
    oneline = bool(opts.oneline)

    def row(s: XdpSocket) -> tuple[str, ...]:
        if s.ifindex:
            laddr, lport = ifname(s.ifindex) + ":", f"q{int32(s.queue_id)}"
        else:
            laddr, lport = "*", ""
        ext = ""
        if details:
            ext = details_text(s.uid, s.inode, s.cookie) + _details(s, oneline)
        if mem:
            ext += skmem_text(s.mem)
        return pick((
            "xdp", "UNCONN", queue(s.recv_q), zero, laddr, lport, "*", "",
            process(s.inode) if show_proc else "", ext,
        ))  # fmt: skip

    return row


def _details(s: XdpSocket, oneline: bool) -> str:
    """The rings, umem and stats blocks of xdp_show_sock."""
    nl = " " if oneline else "\n\t"
    out = ""
    for label, value in (("rx", s.rx), ("tx", s.tx)):
        if value is not None:
            out += f"{nl}{label}(entries:{value})"
    if s.umem is not None:
        size, uid, pages, chunk, head, ifindex, qid, flags, refs = s.umem
        out += (" tumem(" if oneline else "\n\tumem(") + (
            f"id:{uid},size:{size},num_pages:{pages},chunk_size:{chunk},headroom:{head},"
            f"ifindex:{ifindex},qid:{qid},zc:{flags & abi.XDP_DU_F_ZEROCOPY},refs:{refs})"
        )
        for label, value in (("fr", s.fr), ("cr", s.cr)):
            if value is not None:
                out += f"{nl}{label}(entries:{value})"
    if s.stats is not None:
        out += (
            f"{nl}stats(rx dropped:%d,rx invalid:%d,rx queue full:%d,rx fill ring empty:%d,"
            "tx invalid:%d,tx ring empty:%d)" % s.stats
        )
    return out
