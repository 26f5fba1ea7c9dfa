"""The -i text of MPTCP and SCTP sockets: ports of ss.c's ``mptcp_stats_print`` and
``sctp_show_info``/``sctp_stats_print`` (iproute2 7.1).

Imported by :mod:`sockscope.tables.inet.tcpinfo` at the first row of either protocol,
off the start-up of ``-tani``.
"""

from __future__ import annotations

import struct

from sockscope.kernel import abi
from sockscope.kernel.libc import int32
from sockscope.kernel.structs import (
    MPTCP_INFO,
    SCTP_INFO,
    SOCKADDR_STORAGE,
    Spans,
    padded,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from sockscope.tables.inet.row import InetRows

#: a sockaddr's family
_U16 = struct.Struct("=H")

_MPTCP_ITEMS = (
    (0, " subflows:%u"),
    (1, " add_addr_signal:%u"),
    (2, " add_addr_accepted:%u"),
    (3, " subflows_max:%u"),
    (4, " add_addr_signal_max:%u"),
    (5, " add_addr_accepted_max:%u"),
)
_MPTCP_TAIL = (
    (7, " token:%x"),
    (8, " write_seq:%u"),
    (9, " snd_una:%u"),
    (10, " rcv_nxt:%u"),
    (11, " local_addr_used:%u"),
    (12, " local_addr_max:%u"),
    (13, " csum_enabled:%u"),
    (14, " retransmits:%u"),
    (15, " bytes_retrans:%u"),
    (16, " bytes_sent:%u"),
    (17, " bytes_received:%u"),
    (18, " bytes_acked:%u"),
    (19, " subflows_total:%u"),
    (20, " endp_laminar_max:%u"),
    (23, " last_data_sent:%u"),
    (24, " last_data_recv:%u"),
    (25, " last_ack_recv:%u"),
)


def mptcp_stats(buf: bytes, start: int, end: int) -> str:
    """mptcp_show_info's INET_DIAG_INFO part: port of ss.c:mptcp_stats_print."""
    data, off = padded(buf, start, end, MPTCP_INFO.size)
    v = MPTCP_INFO.unpack_from(data, off)
    out = "".join(fmt % v[i] for i, fmt in _MPTCP_ITEMS if v[i])
    if v[6] & 1:
        out += " fallback"
    if v[6] & 2:
        out += " remote_key"
    return out + "".join(fmt % v[i] for i, fmt in _MPTCP_TAIL if v[i])


# --- SCTP ------------------------------------------------------------------------------

_SCTP_STATES = abi.SCTP_STATE_NAMES
_SCTP_ITEMS = (
    (0, " tag:%x"),
    (1, None),
    (2, " rwnd:%d"),
    (3, " unackdata:%d"),
    (4, " penddata:%d"),
    (5, " instrms:%d"),
    (6, " outstrms:%d"),
    (8, " inqueue:%d"),
    (9, " outqueue:%d"),
    (10, " overerr:%d"),
    (11, " maxburst:%d"),
    (12, " maxseg:%d"),
    (13, " prwnd:%d"),
    (14, " ptag:%x"),
    (15, " pcapable:%d"),
    (16, " psack:%d"),
    (46, " autoclose:%d"),
    (47, " adapind:%d"),
    (48, " pdpoint:%d"),
    (49, " nodelay:%d"),
    (50, " nofrag:%d"),
    (51, " v4mapped:%d"),
    (52, " fraginl:%d"),
)
_SIGNED_D = frozenset({2, 8, 9, 10, 11, 12, 13, 46, 47, 48})


def sctp_stats(buf: bytes, start: int, end: int) -> str:
    """Port of ss.c:sctp_stats_print (each item only if nonzero)."""
    data, off = padded(buf, start, end, SCTP_INFO.size)
    v = SCTP_INFO.unpack_from(data, off)
    out = ""
    for i, fmt in _SCTP_ITEMS:
        val = v[i]
        if not val:
            continue
        if fmt is None:
            # sctp_sstate_name[] has 8 entries; ss reads past it for other values
            out += " state:" + (_SCTP_STATES[val] if val < len(_SCTP_STATES) else "(null)")
        else:
            out += fmt % (int32(val) if i in _SIGNED_D else val)
    return out


def _sockaddr_host(p: InetRows, buf: bytes, off: int) -> str:
    """format_host_sa: the address of a sockaddr_in/sockaddr_in6 (no port, no brackets)."""
    family = _U16.unpack_from(buf, off)[0]
    if family == abi.AF_INET:
        return p.resolver.host(family, bytes(buf[off + 4 : off + 8]))
    if family == abi.AF_INET6:
        return p.resolver.host(family, bytes(buf[off + 8 : off + 24]))
    return ""


def _sctp_addrs(p: InetRows, label: str, buf: bytes, span: tuple[int, int]) -> str:
    start, end = span
    # sctp_show_info reads whole sockaddr_storages: a short last one is read through
    # into the bytes that follow the attribute (zeros past what the buffer holds)
    size = max(1, -(-(end - start) // SOCKADDR_STORAGE)) * SOCKADDR_STORAGE
    data = bytes(buf[start : start + size])
    data += bytes(size - len(data))
    hosts = [_sockaddr_host(p, data, off) for off in range(0, len(data), SOCKADDR_STORAGE)]
    return " %s:%s" % (label, ",".join(hosts))


def sctp_show_info(p: InetRows, buf: bytes, attrs: Spans) -> str:
    """sctp_show_info after print_skmeminfo: locals, peers, then sctp_stats_print."""
    out = ""
    span = attrs.get(abi.INET_DIAG_LOCALS)
    if span is not None:
        out += _sctp_addrs(p, "locals", buf, span)
    span = attrs.get(abi.INET_DIAG_PEERS)
    if span is not None:
        out += _sctp_addrs(p, "peers", buf, span)
    span = attrs.get(abi.INET_DIAG_INFO)
    if span is not None:
        out += sctp_stats(buf, span[0], span[1])
    return out


__all__ = ["mptcp_stats", "sctp_show_info", "sctp_stats"]
