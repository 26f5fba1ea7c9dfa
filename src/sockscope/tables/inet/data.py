"""The data view of an inet socket: what ``InetSocket.to_dict()`` and ``--json`` give.

The sections follow the :class:`~sockscope.render.view.View` (``-o`` timer, ``-e``
details, ``-m`` memory, ``-i`` tcp_info and the congestion-control data, ``--tos``,
``--cgroup``, ``--inet-sockopt``, ``-p`` owners); the field names and units are those
of ``schema/sockscope.schema.json``.
"""

from __future__ import annotations

import functools  # (the JSON output imports it already: json, re, enum)
import struct
from bisect import bisect_right

from sockscope.kernel import abi, netlink
from sockscope.kernel.abi import PROTO_NAMES, SOCKOPT_FLAGS, SWAP16
from sockscope.render.view import (
    FAMILY_NAMES,
    MEMINFO_FIELDS,
    View,
    cgroup,
    skmem,
    timer,
    u32,
    u64,
)
from sockscope.tables.common import add_owners
from sockscope.tables.inet.layout import (
    ATTR_END,
    ATTR_START,
    BUF,
    COOKIE_HI,
    COOKIE_LO,
    DPORT,
    DST,
    EXPIRES,
    FAMILY,
    IFINDEX,
    INODE,
    PROC_EXTRA,
    PROTOCOL,
    RETRANS,
    RQUEUE,
    SPORT,
    SRC,
    STATE,
    TIMER,
    UID,
    WQUEUE,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from sockscope.tables.inet.record import InetSocket

_SHUTDOWN_BITS = (("receive", 1), ("send", 2))
_U32 = struct.Struct("=I")
_U64 = struct.Struct("=Q")


def inet(s: InetSocket, view: View) -> dict[str, object]:
    """The dict of an :class:`~sockscope.records.InetSocket` (``InetSocket.to_dict``)."""
    family, state, proto = s[FAMILY], s[STATE], s[PROTOCOL]
    lport, rport = SWAP16[s[SPORT]], SWAP16[s[DPORT]]
    alen = 4 if family == abi.AF_INET else 16
    address = view.address
    out: dict[str, object] = {
        "netid": PROTO_NAMES.get(proto, "???"),
        "state": abi.STATE_NAMES[state] if state < len(abi.STATE_NAMES) else "UNKNOWN",
        "recv_q": s[RQUEUE],
        "send_q": s[WQUEUE],
        "local_address": address(family, s[SRC][:alen]),
        "local_port": lport,
        "peer_address": address(family, s[DST][:alen]),
        "peer_port": rport,
        "family": FAMILY_NAMES.get(family, str(family)),
        "protocol": proto,
    }
    if s[IFINDEX]:
        out["interface"] = view.ifname(s[IFINDEX])
        out["ifindex"] = s[IFINDEX]
    if view.service is not None:
        for key, port in (("local_service", lport), ("peer_service", rport)):
            name = view.service(port) if port else None
            if name and name != str(port):
                out[key] = name
    buf = s[BUF]
    attrs = (
        netlink.attrs(buf, s[ATTR_START], s[ATTR_END])
        if buf is not None and view.wants_attrs
        else {}
    )
    if view.timer and s[TIMER]:
        out["timer"] = timer(s[TIMER], s[EXPIRES], s[RETRANS], proto == abi.IPPROTO_SCTP)
    if view.details:
        _inet_details(s, view, buf, attrs, out)
    elif view.cgroup and buf is not None:
        cgroup(view, out, u64(buf, attrs.get(abi.INET_DIAG_CGROUP_ID)))
    if buf is not None:
        _inet_attrs(view, buf, attrs, out)
    add_owners(view, s[INODE], out, s.owners)
    # ss's -m/-i block: with either option, whatever memory and TCP information the
    # socket came with (a recorded dump may hold more than was asked for)
    if view.mem or (view.info and proto != abi.IPPROTO_UDP):
        if buf is not None:
            _inet_mem(buf, attrs, out)
        _inet_info(s, view, buf, attrs, out)
    return out


def _inet_details(
    s: tuple,  # type: ignore[type-arg]
    view: View,
    buf: bytes | None,
    attrs: dict[int, tuple[int, int]],
    out: dict[str, object],
) -> None:
    """``-e``: sock_details_print and the v6only/shutdown items of inet_show_sock."""
    out["uid"] = s[UID]
    out["inode"] = s[INODE]
    out["cookie"] = (s[COOKIE_HI] << 32) | s[COOKIE_LO]
    if buf is None:
        return
    # read as parse_diag_msg reads them: by their exact type
    a, b = s[ATTR_START], s[ATTR_END]
    mark = u32(buf, netlink.exact(buf, attrs, a, b, abi.INET_DIAG_MARK))
    if mark is not None:
        out["mark"] = mark
    cgroup(view, out, u64(buf, netlink.exact(buf, attrs, a, b, abi.INET_DIAG_CGROUP_ID)))
    span = attrs.get(abi.INET_DIAG_SKV6ONLY)
    if span and span[1] > span[0] and s[FAMILY] == abi.AF_INET6:
        out["v6only"] = bool(buf[span[0]])
    span = attrs.get(abi.INET_DIAG_SHUTDOWN)
    if span and span[1] > span[0]:
        mask = buf[span[0]]
        out["shutdown"] = {name: bool(mask & bit) for name, bit in _SHUTDOWN_BITS}


def _inet_attrs(
    view: View, buf: bytes, attrs: dict[int, tuple[int, int]], out: dict[str, object]
) -> None:
    """``--tos`` and ``--inet-sockopt`` from the netlink attributes."""
    if view.tos:
        for key, kind in (("tos", abi.INET_DIAG_TOS), ("tclass", abi.INET_DIAG_TCLASS)):
            span = attrs.get(kind)
            if span and span[1] > span[0]:
                out[key] = buf[span[0]]
        class_id = u32(buf, attrs.get(abi.INET_DIAG_CLASS_ID))
        if class_id is not None:
            out["class_id"] = class_id
    if view.sockopt:
        span = attrs.get(abi.INET_DIAG_SOCKOPT)
        if span and span[1] - span[0] >= 2:
            bits = int.from_bytes(buf[span[0] : span[0] + 2], "little")
            out["inet_sockopt"] = {n: bool(bits >> i & 1) for i, n in enumerate(SOCKOPT_FLAGS)}


def _inet_mem(buf: bytes, attrs: dict[int, tuple[int, int]], out: dict[str, object]) -> None:
    """skmem (or the old kernels' meminfo), as print_skmeminfo finds them."""
    span = attrs.get(abi.INET_DIAG_SKMEMINFO)
    if span:
        out["skmem"] = skmem(buf, span)
        return
    span = attrs.get(abi.INET_DIAG_MEMINFO)
    if span and span[1] - span[0] >= 16:
        words = abi.INET_DIAG_MEMINFO_S.unpack_from(buf, span[0])
        out["mem"] = dict(zip(MEMINFO_FIELDS, words, strict=True))


def _inet_info(
    s: tuple,  # type: ignore[type-arg]
    view: View,
    buf: bytes | None,
    attrs: dict[int, tuple[int, int]],
    out: dict[str, object],
) -> None:
    """``-i``: tcp_info, congestion control and ULP (tcp_show_info's data)."""
    if buf is None:
        if s[PROTOCOL] == abi.IPPROTO_TCP and len(s) > 20:
            out["tcp_info"] = _proc_tcp_info(s[PROC_EXTRA:])
        return
    from sockscope.kernel import structs as tcpinfo

    proto = s[PROTOCOL]
    span = attrs.get(abi.INET_DIAG_INFO)
    data = buf[span[0] : span[1]] if span else None
    if proto == abi.IPPROTO_MPTCP:
        if data:
            out["mptcp_info"] = plain(tcpinfo.decode_mptcp_info(data), "mptcpi_")
        return
    if proto == abi.IPPROTO_SCTP:
        if data:
            out["sctp_info"] = plain(tcpinfo.decode_sctp_info(data), "sctpi_")
        return
    congestion(buf, attrs, out)
    info = tcp_info(data) if data else None
    if info:
        rate = send_bps(info, out.get("vegas"))  # type: ignore[arg-type]
        if rate is not None:
            info["send_bps"] = rate
        out["tcp_info"] = info
    span = attrs.get(abi.INET_DIAG_ULP_INFO)
    if span:
        found = tcpinfo.decode_ulp(buf[span[0] : span[1]])
        if found:
            out["ulp"] = found


def _proc_tcp_info(extra: tuple) -> dict[str, object]:  # type: ignore[type-arg]
    """What /proc/net/tcp tells of tcp_info: (refcnt, rto s, ato s, qack, cwnd, ssthresh)."""
    _refcnt, rto, ato, qack, cwnd, ssthresh = extra[:6]
    info: dict[str, object] = {}
    if rto:
        info["rto_us"] = round(rto * 1000000)
    if ato:
        info["ato_us"] = round(ato * 1000000)
    info["qack"] = qack
    info["snd_cwnd"] = cwnd
    if ssthresh:
        info["snd_ssthresh"] = ssthresh
    return info


# -- tcp_info (-i) -------------------------------------------------------------------------
#: struct tcp_info after its eight u8 fields, in order: (C field, JSON name, size, scale).
#: The JSON name carries the unit; scale 8 turns the kernel's bytes per second into bits
#: per second, as ss prints rates. The values come from :func:`tcpinfo.decode_tcp_info`;
#: a field is given only if the kernel's tcp_info is long enough to hold it.
TCP_INFO_FIELDS: tuple[tuple[str, str, int, int], ...] = (
    ("tcpi_rto", "rto_us", 4, 1),
    ("tcpi_ato", "ato_us", 4, 1),
    ("tcpi_snd_mss", "snd_mss_bytes", 4, 1),
    ("tcpi_rcv_mss", "rcv_mss_bytes", 4, 1),
    ("tcpi_unacked", "unacked", 4, 1),
    ("tcpi_sacked", "sacked", 4, 1),
    ("tcpi_lost", "lost", 4, 1),
    ("tcpi_retrans", "retrans", 4, 1),
    ("tcpi_fackets", "fackets", 4, 1),
    ("tcpi_last_data_sent", "last_data_sent_ms", 4, 1),
    ("tcpi_last_ack_sent", "last_ack_sent_ms", 4, 1),
    ("tcpi_last_data_recv", "last_data_recv_ms", 4, 1),
    ("tcpi_last_ack_recv", "last_ack_recv_ms", 4, 1),
    ("tcpi_pmtu", "pmtu_bytes", 4, 1),
    ("tcpi_rcv_ssthresh", "rcv_ssthresh_bytes", 4, 1),
    ("tcpi_rtt", "rtt_us", 4, 1),
    ("tcpi_rttvar", "rttvar_us", 4, 1),
    ("tcpi_snd_ssthresh", "snd_ssthresh", 4, 1),
    ("tcpi_snd_cwnd", "snd_cwnd", 4, 1),
    ("tcpi_advmss", "advmss_bytes", 4, 1),
    ("tcpi_reordering", "reordering", 4, 1),
    ("tcpi_rcv_rtt", "rcv_rtt_us", 4, 1),
    ("tcpi_rcv_space", "rcv_space_bytes", 4, 1),
    ("tcpi_total_retrans", "total_retrans", 4, 1),
    ("tcpi_pacing_rate", "pacing_rate_bps", 8, 8),
    ("tcpi_max_pacing_rate", "max_pacing_rate_bps", 8, 8),
    ("tcpi_bytes_acked", "bytes_acked", 8, 1),
    ("tcpi_bytes_received", "bytes_received", 8, 1),
    ("tcpi_segs_out", "segs_out", 4, 1),
    ("tcpi_segs_in", "segs_in", 4, 1),
    ("tcpi_notsent_bytes", "notsent_bytes", 4, 1),
    ("tcpi_min_rtt", "min_rtt_us", 4, 1),
    ("tcpi_data_segs_in", "data_segs_in", 4, 1),
    ("tcpi_data_segs_out", "data_segs_out", 4, 1),
    ("tcpi_delivery_rate", "delivery_rate_bps", 8, 8),
    ("tcpi_busy_time", "busy_time_us", 8, 1),
    ("tcpi_rwnd_limited", "rwnd_limited_us", 8, 1),
    ("tcpi_sndbuf_limited", "sndbuf_limited_us", 8, 1),
    ("tcpi_delivered", "delivered", 4, 1),
    ("tcpi_delivered_ce", "delivered_ce", 4, 1),
    ("tcpi_bytes_sent", "bytes_sent", 8, 1),
    ("tcpi_bytes_retrans", "bytes_retrans", 8, 1),
    ("tcpi_dsack_dups", "dsack_dups", 4, 1),
    ("tcpi_reord_seen", "reord_seen", 4, 1),
    ("tcpi_rcv_ooopack", "rcv_ooopack", 4, 1),
    ("tcpi_snd_wnd", "snd_wnd_bytes", 4, 1),
    ("tcpi_rcv_wnd", "rcv_wnd_bytes", 4, 1),
    ("tcpi_rehash", "rehash", 4, 1),
    ("tcpi_total_rto", "total_rto", 2, 1),
    ("tcpi_total_rto_recoveries", "total_rto_recoveries", 2, 1),
    ("tcpi_total_rto_time", "total_rto_time_ms", 4, 1),
    ("tcpi_received_ce", "received_ce", 4, 1),
    ("tcpi_delivered_e1_bytes", "delivered_e1_bytes", 4, 1),
    ("tcpi_delivered_e0_bytes", "delivered_e0_bytes", 4, 1),
    ("tcpi_delivered_ce_bytes", "delivered_ce_bytes", 4, 1),
    ("tcpi_received_e1_bytes", "received_e1_bytes", 4, 1),
    ("tcpi_received_e0_bytes", "received_e0_bytes", 4, 1),
    ("tcpi_received_ce_bytes", "received_ce_bytes", 4, 1),
)


# built on the first tcp_info decoded, not at import (it needs kernel.structs, off the
# listing's path), then read-only: a cached pure function of constants
@functools.cache
def _tcp_info_layout() -> tuple[tuple[int, ...], tuple[str, ...], tuple[int, ...]]:
    """(end offsets, JSON names, TcpInfo indexes) of TCP_INFO_FIELDS, C alignment."""
    from sockscope.kernel.structs import TcpInfo

    ends, names, index = [], [], []
    off = 8
    for cname, name, size, _scale in TCP_INFO_FIELDS:
        off = (off + size - 1) // size * size + size
        ends.append(off)
        names.append(name)
        index.append(TcpInfo._fields.index(cname))
    return tuple(ends), tuple(names), tuple(index)


_SCALED = tuple(name for _c, name, _size, scale in TCP_INFO_FIELDS if scale != 1)

#: TCPI_OPT_* bits as ss names them (ts, sack, ecn, ...), in bit order
TCP_OPTIONS = ("ts", "sack", "wscale", "ecn", "ecnseen", "fastopen", "usec_ts")
_TCPI_OPT_WSCALE = 4
#: values the kernel uses for "none": infinite ssthresh, unknown min_rtt, unlimited rate
_SENTINELS = {
    "snd_ssthresh": 0x7FFFFFFF,
    "min_rtt_us": 0xFFFFFFFF,
    "pacing_rate_bps": 0xFFFFFFFFFFFFFFFF * 8,
    "max_pacing_rate_bps": 0xFFFFFFFFFFFFFFFF * 8,
}


def tcp_info(data: bytes) -> dict[str, object]:
    """An INET_DIAG_INFO payload (struct tcp_info) as a dict: only the fields sent."""
    from sockscope.kernel.structs import decode_tcp_info

    if len(data) < 8:
        return {}
    ti = decode_tcp_info(data)
    opts = ti.tcpi_options
    out: dict[str, object] = {
        "state": ti.tcpi_state,
        "ca_state": ti.tcpi_ca_state,
        "retransmits": ti.tcpi_retransmits,
        "probes": ti.tcpi_probes,
        "backoff": ti.tcpi_backoff,
        "options": [name for i, name in enumerate(TCP_OPTIONS) if opts >> i & 1],
    }
    if opts & _TCPI_OPT_WSCALE:
        out["snd_wscale"] = ti.tcpi_snd_wscale
        out["rcv_wscale"] = ti.tcpi_rcv_wscale
    out["delivery_rate_app_limited"] = bool(ti.tcpi_delivery_rate_app_limited)
    out["fastopen_client_fail"] = ti.tcpi_fastopen_client_fail
    ends, names, index = _tcp_info_layout()
    size = len(data)
    n = bisect_right(ends, size)
    out.update(zip(names[:n], [ti[i] for i in index[:n]], strict=True))
    for name in _SCALED:
        if name in out:
            out[name] *= 8  # type: ignore[operator]
    for name, sentinel in _SENTINELS.items():
        if out.get(name) == sentinel:
            del out[name]
    if size >= 280:
        out["ecn_mode"] = ti.tcpi_ecn_mode
        out["accecn_opt_seen"] = ti.tcpi_accecn_opt_seen
        out["accecn_fail_mode"] = ti.tcpi_accecn_fail_mode
    return out


def send_bps(info: dict[str, object], vegas: dict[str, object] | None) -> float | None:
    """ss's ``send`` rate: cwnd * mss * 8 / rtt (the vegas rtt when vegas is enabled)."""
    rtt = info.get("rtt_us")
    if vegas and vegas.get("enabled") and vegas.get("rtt_us") not in (0, 0x7FFFFFFF):
        rtt = vegas["rtt_us"]
    mss, cwnd = info.get("snd_mss_bytes"), info.get("snd_cwnd")
    if not (rtt and mss and cwnd):
        return None
    return float(cwnd * mss * 8000000.0 / rtt)  # type: ignore[operator]


def congestion(buf: bytes, attrs: dict[int, tuple[int, int]], out: dict[str, object]) -> None:
    """INET_DIAG_CONG and the algorithm's own information (bbr, dctcp, vegas)."""
    from sockscope.kernel import structs as tcpinfo

    span = attrs.get(abi.INET_DIAG_CONG)
    if span:
        out["congestion_control"] = tcpinfo.cstr(buf, *span)
    span = attrs.get(abi.INET_DIAG_BBRINFO)
    if span:
        bbr = tcpinfo.decode_bbr(buf[span[0] : span[1]])
        out["bbr"] = {
            "bw_bps": ((bbr.bbr_bw_hi << 32) | bbr.bbr_bw_lo) * 8,
            "min_rtt_us": bbr.bbr_min_rtt,
            "pacing_gain": bbr.bbr_pacing_gain / 256,
            "cwnd_gain": bbr.bbr_cwnd_gain / 256,
        }
    span = attrs.get(abi.INET_DIAG_DCTCPINFO)
    if span:
        dc = tcpinfo.decode_dctcp(buf[span[0] : span[1]])
        out["dctcp"] = {
            "enabled": bool(dc.dctcp_enabled),
            "ce_state": dc.dctcp_ce_state,
            "alpha": dc.dctcp_alpha,
            "ab_ecn": dc.dctcp_ab_ecn,
            "ab_tot": dc.dctcp_ab_tot,
        }
    span = attrs.get(abi.INET_DIAG_VEGASINFO)
    if span:
        vg = tcpinfo.decode_vegas(buf[span[0] : span[1]])
        out["vegas"] = {
            "enabled": bool(vg.tcpv_enabled),
            "rtt_cnt": vg.tcpv_rttcnt,
            "rtt_us": vg.tcpv_rtt,
            "min_rtt_us": vg.tcpv_minrtt,
        }


def plain(info: tuple, prefix: str) -> dict[str, object]:  # type: ignore[type-arg]
    """A decoded UAPI struct (named tuple) by its C names without ``prefix``; the
    reserved words and byte strings (sockaddrs) left out."""
    n = len(prefix)
    return {
        k[n:]: v
        for k, v in zip(info._fields, info, strict=True)  # type: ignore[attr-defined]
        if k.startswith(prefix) and isinstance(v, int)
    }
