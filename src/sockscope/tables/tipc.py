"""AF_TIPC sockets (``ti_st``, ``ti_dg``, ``ti_rd``, ``ti_sq``): records, source, rows.

Ports of ss.c's ``tipc_show``, ``tipc_show_sock`` and ``tipc_sock_addr_print``
(iproute2 7.1). ss asks sock_diag (not genetlink) with a ``tipc_sock_diag_req``; each
reply is a bare attribute list whose ``TIPC_NLA_SOCK`` nest holds the socket. Two quirks
are kept: the filter expression is not applied to TIPC sockets at all, and ``-e``
details are written *before* the users text, into the Process column, so they are lost
without ``-p``. ``--tipcinfo`` goes to the extra-information column.
"""

from __future__ import annotations

from sockscope.kernel import abi
from sockscope.tables.common import (
    DumpFailed,
    Endpoints,
    decoded,
    details_text,
    diag_dump,
    diag_request,
    parse_attrs,
    picker,
    u32_at,
    u64_at,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sockscope.render.printer import Printer
    from sockscope.render.view import View
    from sockscope.tables.context import Context

_NETIDS = {
    abi.SOCK_STREAM: "ti_st",
    abi.SOCK_DGRAM: "ti_dg",
    abi.SOCK_RDM: "ti_rd",
    abi.SOCK_SEQPACKET: "ti_sq",
}
#: stype_nameg[] of ss.c (index 3, SOCK_RAW, is a NULL that glibc prints as "(null)")
_TYPE_NAMES = ("UNKNOWN", "STREAM", "DGRAM", "(null)", "RDM", "SEQPACKET")


class TipcSocket(Endpoints):
    """One AF_TIPC socket: ``node:ref`` locally; ``con_node:con_sock`` when connected."""

    __slots__ = (
        "con",
        "con_name",
        "conn_cong",
        "cookie",
        "drop",
        "has_publ",
        "inode",
        "link_cong",
        "node",
        "recv_q",
        "ref",
        "send_q",
        "state",
        "type",
        "uid",
    )

    family = abi.AF_TIPC

    def __init__(self, sock_type: int, state: int, node: int, ref: int) -> None:
        self.type = sock_type
        self.state = state
        self.node = node
        self.ref = ref
        self.uid = 0
        self.inode = 0
        self.cookie = 0
        self.recv_q = 0
        self.send_q = 0
        #: (node, sock) of the peer when the TIPC_NLA_SOCK_CON nest is present
        self.con: tuple[int, int] | None = None
        #: (type, instance) of the connection's service name when TIPC_NLA_CON_FLAG is set
        self.con_name: tuple[int, int] | None = None
        self.has_publ = False
        self.link_cong = False
        self.conn_cong = False
        self.drop = 0

    @property
    def netid(self) -> str:
        return _NETIDS.get(self.type, "???")

    @property
    def state_name(self) -> str:
        states = abi.STATE_NAMES
        return states[self.state] if self.state < len(states) else "UNKNOWN"

    def to_dict(self, view: View | None = None) -> dict[str, object]:
        if view is None:
            view = self.attached_view
        out: dict[str, object] = {
            "netid": self.netid,
            "state": self.state_name,
            "recv_q": self.recv_q,
            "send_q": self.send_q,
            "local_address": self.node,
            "local_port": self.ref,
            "family": "tipc",
        }
        if self.con is not None:
            out["peer_address"], out["peer_port"] = self.con
        if view is None or view.details:
            out["uid"] = self.uid
            out["inode"] = self.inode
            out["cookie"] = self.cookie
        return out

    def __repr__(self) -> str:
        return f"TipcSocket({self.netid} {self.state_name} {self.node}:{self.ref} ino={self.inode})"


def records(ctx: Context) -> Iterator[TipcSocket]:
    """Port of tipc_show: no family check, no filter, no fallback."""
    try:
        yield from netlink_records(ctx)
    except DumpFailed:
        return


def request(states: int) -> bytes:
    return diag_request(abi.TIPC_SOCK_DIAG_REQ.pack(abi.AF_TIPC, 0, 0, states))


def netlink_records(ctx: Context) -> Iterator[TipcSocket]:
    return decoded(diag_dump(ctx, request(ctx.sel.states)), decode)


def decode(buf: bytes, body: int, end: int) -> TipcSocket | None:
    """tipc_show_sock: the TIPC_NLA_SOCK nest (missing attributes read as 0)."""
    info = parse_attrs(buf, body, end)
    span = info.get(abi.TIPC_NLA_SOCK)
    if span is None:
        return None
    attrs = parse_attrs(buf, *span)
    st = attrs.get(abi.TIPC_NLA_SOCK_STAT)
    stat = parse_attrs(buf, *st) if st is not None else {}
    rec = TipcSocket(
        u32_at(buf, attrs.get(abi.TIPC_NLA_SOCK_TYPE)),
        u32_at(buf, attrs.get(abi.TIPC_NLA_SOCK_TIPC_STATE)),
        u32_at(buf, attrs.get(abi.TIPC_NLA_SOCK_ADDR)),
        u32_at(buf, attrs.get(abi.TIPC_NLA_SOCK_REF)),
    )
    rec.uid = u32_at(buf, attrs.get(abi.TIPC_NLA_SOCK_UID))
    rec.inode = u32_at(buf, attrs.get(abi.TIPC_NLA_SOCK_INO))
    rec.cookie = u64_at(buf, attrs.get(abi.TIPC_NLA_SOCK_COOKIE))
    rec.recv_q = u32_at(buf, stat.get(abi.TIPC_NLA_SOCK_STAT_RCVQ))
    rec.send_q = u32_at(buf, stat.get(abi.TIPC_NLA_SOCK_STAT_SENDQ))
    rec.link_cong = abi.TIPC_NLA_SOCK_STAT_LINK_CONG in stat
    rec.conn_cong = abi.TIPC_NLA_SOCK_STAT_CONN_CONG in stat
    rec.drop = u32_at(buf, stat.get(abi.TIPC_NLA_SOCK_STAT_DROP))
    rec.has_publ = abi.TIPC_NLA_SOCK_HAS_PUBL in attrs
    span = attrs.get(abi.TIPC_NLA_SOCK_CON)
    if span is not None:
        con = parse_attrs(buf, *span)
        rec.con = (
            u32_at(buf, con.get(abi.TIPC_NLA_CON_NODE)),
            u32_at(buf, con.get(abi.TIPC_NLA_CON_SOCK)),
        )
        if abi.TIPC_NLA_CON_FLAG in con:
            rec.con_name = (
                u32_at(buf, con.get(abi.TIPC_NLA_CON_TYPE)),
                u32_at(buf, con.get(abi.TIPC_NLA_CON_INST)),
            )
    return rec


def type_name(sock_type: int) -> str:
    return _TYPE_NAMES[sock_type] if 0 <= sock_type < len(_TYPE_NAMES) else "(null)"


def row_fn(printer: Printer, ctx: Context) -> Callable[[TipcSocket], tuple[str, ...]]:
    """tipc_show_sock's printing: addresses, -e (slot 8), users, --tipcinfo (slot 9)."""
    opts = printer.opts
    pick = picker(printer)
    queue = printer.queue
    show_proc = printer.show_proc
    process = printer.process
    details = bool(opts.show_details)
    tipcinfo = bool(opts.show_tipcinfo)
    lead = " " if opts.oneline else "\n "
    states = abi.STATE_NAMES

    def row(s: TipcSocket) -> tuple[str, ...]:
        slot8 = ""
        if show_proc:
            if details:
                slot8 = details_text(s.uid, s.inode, s.cookie)
            slot8 += process(s.inode)
        ext = ""
        if tipcinfo:
            cong = "link" if s.link_cong else "conn" if s.conn_cong else "none"
            drop = s.drop - (1 << 32) if s.drop & 0x80000000 else s.drop
            ext = f"{lead}type:{type_name(s.type)} cong:{cong}  drop:{drop} "
            if s.has_publ:
                ext += " publ"
            if s.con_name is not None:
                ext += " via {{{},{}}} ".format(*s.con_name)
        if s.con is not None:
            raddr, rport = f"{s.con[0]}:", str(s.con[1])
        else:
            raddr, rport = "-", ""
        return pick((
            _NETIDS.get(s.type, "???"),
            states[s.state] if s.state < len(states) else "UNKNOWN",
            queue(s.recv_q),
            queue(s.send_q),
            f"{s.node}:",
            str(s.ref),
            raddr,
            rport,
            slot8,
            ext,
        ))  # fmt: skip

    return row
