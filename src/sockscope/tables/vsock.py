"""AF_VSOCK sockets (``v_str``, ``v_dgr``): records, source, rows.

Ports of ss.c's ``vsock_show``, ``vsock_show_sock``, ``vsock_type_skip``,
``vsock_addr_print`` and ``vsock_stats_print`` (iproute2 7.1). There is no ``/proc``
fallback: without the ``vsock_diag`` module the dump fails silently and nothing is
listed. Rows carry no queues (always 0) and no extra information but ``users:``.
"""

from __future__ import annotations

import struct

from sockscope.kernel import abi
from sockscope.kernel.libc import int32
from sockscope.tables.common import (
    DumpFailed,
    Endpoints,
    add_owners,
    apply_filter,
    decoded,
    diag_dump,
    diag_request,
    picker,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sockscope.render.printer import Printer
    from sockscope.render.view import View
    from sockscope.tables.context import Context

VMADDR_ANY = 0xFFFFFFFF
_NETIDS = {abi.SOCK_STREAM: "v_str", abi.SOCK_DGRAM: "v_dgr"}
_TYPE_DB = {abi.SOCK_STREAM: abi.VSOCK_ST_DB, abi.SOCK_DGRAM: abi.VSOCK_DG_DB}


class VsockSocket(Endpoints):
    """One AF_VSOCK socket: (CID, port) at each end, ``0xffffffff`` meaning any."""

    __slots__ = (
        "cookie",
        "dst_cid",
        "dst_port",
        "inode",
        "shutdown",
        "src_cid",
        "src_port",
        "state",
        "type",
    )

    family = abi.AF_VSOCK
    recv_q = 0
    send_q = 0
    iface = 0
    mark = 0
    cgroup_id = 0
    name = None

    def __init__(
        self,
        sock_type: int,
        state: int,
        src: tuple[int, int],
        dst: tuple[int, int],
        inode: int = 0,
        shutdown: int = 0,
        cookie: int = 0,
    ) -> None:
        self.type = sock_type
        self.state = state
        self.src_cid, self.src_port = src
        self.dst_cid, self.dst_port = dst
        self.inode = inode
        self.shutdown = shutdown
        self.cookie = cookie

    @property
    def netid(self) -> str:
        return _NETIDS.get(self.type, "???")

    @property
    def state_name(self) -> str:
        states = abi.STATE_NAMES
        return states[self.state] if self.state < len(states) else "UNKNOWN"

    # -- filter view (vsock_show_sock: ports as C ints, the CIDs as the addresses) --------
    @property
    def lport(self) -> int:
        return int32(self.src_port)

    @property
    def rport(self) -> int:
        return int32(self.dst_port)

    @property
    def local_data(self) -> bytes:
        return struct.pack("=I", self.src_cid)

    @property
    def remote_data(self) -> bytes:
        return struct.pack("=I", self.dst_cid)

    def to_dict(self, view: View | None = None) -> dict[str, object]:
        if view is None:
            view = self.attached_view
        out: dict[str, object] = {
            "netid": self.netid,
            "state": self.state_name,
            "recv_q": 0,
            "send_q": 0,
            "local_address": self.src_cid,
            "local_port": self.src_port,
            "peer_address": self.dst_cid,
            "peer_port": self.dst_port,
            "family": "vsock",
        }
        add_owners(view, self.inode, out, self.owners)
        return out

    def __repr__(self) -> str:
        return (
            f"VsockSocket({self.netid} {self.state_name} {self.src_cid}:{self.src_port}"
            f" -> {self.dst_cid}:{self.dst_port} ino={self.inode})"
        )


def records(ctx: Context) -> Iterator[VsockSocket]:
    """Port of vsock_show (no fallback: a failed dump lists nothing)."""
    if not ctx.sel.families & (1 << abi.AF_VSOCK):
        return
    try:
        yield from apply_filter(netlink_records(ctx), ctx)  # type: ignore[misc]
    except DumpFailed:
        return


def request(states: int) -> bytes:
    """vsock_show's request: the state mask, nothing else."""
    return diag_request(abi.VSOCK_DIAG_REQ.pack(abi.AF_VSOCK, 0, 0, states, 0, 0, 0, 0))


def netlink_records(ctx: Context) -> Iterator[VsockSocket]:
    return decoded(diag_dump(ctx, request(ctx.sel.states)), decode, ctx.sel.dbs, _TYPE_DB)


def decode(buf: bytes, body: int, end: int) -> VsockSocket | None:
    """vsock_show_sock: one vsock_diag_msg (it has no attributes)."""
    if end - body < abi.VSOCK_DIAG_MSG.size:
        return None
    (_family, sock_type, state, shutdown, scid, sport, dcid, dport, ino, c0, c1) = (
        abi.VSOCK_DIAG_MSG.unpack_from(buf, body)
    )
    cookie = (c1 << 32) | c0
    return VsockSocket(sock_type, state, (scid, sport), (dcid, dport), ino, shutdown, cookie)


def _endpoint(value: int) -> str:
    return "*" if value == VMADDR_ANY else str(value)


def row_fn(printer: Printer, ctx: Context) -> Callable[[VsockSocket], tuple[str, ...]]:
    """vsock_stats_print: ``cid:port`` on both sides, then users."""
    pick = picker(printer)
    zero = printer.queue(0)
    show_proc = printer.show_proc
    process = printer.process
    states = abi.STATE_NAMES

    def row(s: VsockSocket) -> tuple[str, ...]:
        return pick((
            _NETIDS.get(s.type, "???"),
            states[s.state] if s.state < len(states) else "UNKNOWN",
            zero,
            zero,
            _endpoint(s.src_cid) + ":",
            _endpoint(s.src_port),
            _endpoint(s.dst_cid) + ":",
            _endpoint(s.dst_port),
            process(s.inode) if show_proc else "",
            "",
        ))  # fmt: skip

    return row
