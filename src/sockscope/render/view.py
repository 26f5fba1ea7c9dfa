"""The data view of socket records: what ``record.to_dict()`` contains.

A record's ``to_dict(view)`` is the object ``--json`` and ``--json-lines`` print for that
socket, and what library users get. Field names are plain, carry their unit when there
is one (``expires_ms``, ``rcvbuf_bytes``) and follow jc's ``ss`` parser where a field
means the same thing (``netid``, ``state``, ``recv_q``, ``send_q``, ``local_address``,
``local_port``, ``peer_address``, ``peer_port``, ``interface``). Information the kernel
did not send is left out, never filled with a default.

A :class:`View` says which sections go in (they follow ss's options: ``-o`` timers, ``-e``
details, ``-m`` memory, ``-i`` tcp_info, ``--tos``, ``--cgroup``, ``--inet-sockopt``, ``-p``
owners) and holds the lookups a section needs (interface names, cgroup paths, process
owners, service names). The schema of the result is ``schema/sockscope.schema.json``.
No ``json`` import here: the text path may load this module for free.
"""

from __future__ import annotations

import socket
import struct
from bisect import bisect_right

from sockscope.kernel import abi

from sockscope.kernel import netlink
from sockscope.tables.inet.extinfo import _SOCKOPT_FLAGS as SOCKOPT_FLAGS  # INET_DIAG_SOCKOPT bits, bit order
from sockscope.tables.inet.extinfo import _TIMER_NAMES as TIMER_NAMES
from sockscope.tables.inet.record import PROTO_NAMES, SWAP16

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from sockscope.options import Options

#: the version of the JSON schema this module produces (see docs/json.md for the policy)
SCHEMA_VERSION = "1.0"

FAMILY_NAMES = {abi.AF_INET: "inet", abi.AF_INET6: "inet6"}

#: INET_DIAG_SKMEMINFO / *_DIAG_MEMINFO u32 array, in SK_MEMINFO_* order
SKMEM_FIELDS = (
    "rmem_alloc_bytes",
    "rcvbuf_bytes",
    "wmem_alloc_bytes",
    "sndbuf_bytes",
    "fwd_alloc_bytes",
    "wmem_queued_bytes",
    "optmem_bytes",
    "backlog_bytes",
    "drops",
)
#: struct inet_diag_meminfo (old kernels without SKMEMINFO)
MEMINFO_FIELDS = ("rmem_bytes", "wmem_bytes", "fmem_bytes", "tmem_bytes")


_U32 = struct.Struct("=I")
_U64 = struct.Struct("=Q")


def _default_ifname(index: int) -> str:
    try:
        return socket.if_indextoname(index)
    except OSError:
        return f"if{index}"


class View:
    """Which sections ``to_dict()`` fills, and the lookups they use.

    The default view (the library's) fills every section the record has data for and
    resolves nothing but interface names.
    """

    __slots__ = (
        "_addrs",
        "cgroup",
        "cgroup_path",
        "details",
        "ifname",
        "info",
        "mem",
        "owners",
        "service",
        "sockopt",
        "threads",
        "timer",
        "tos",
    )

    def __init__(self) -> None:
        self.timer = True
        self.details = True
        self.mem = True
        self.info = True
        self.tos = True
        self.cgroup = True
        self.sockopt = True
        self.threads = False
        #: inode -> [(name, pid, fd)] or [(name, pid, tid, fd)] with threads; None: no owners
        self.owners: Callable[[int], list[tuple[object, ...]]] | None = None
        self.ifname: Callable[[int], str] = _default_ifname
        #: cgroup id -> path text; None leaves the path out (the id is always given)
        self.cgroup_path: Callable[[int], str] | None = None
        #: (port, table) -> the service name the text shows; None: no names
        self.service: Callable[[int], str] | None = None
        self._addrs: dict[bytes, str] = {}

    def address(self, family: int, data: bytes) -> str:
        """inet_ntop text of an address, memoised (most hosts have few addresses)."""
        if family != abi.AF_INET and family != abi.AF_INET6:
            from sockscope.render.names import addr_text

            return addr_text(family, data)  # a damaged dump: any family
        text = self._addrs.get(data)
        if text is None:
            text = socket.inet_ntop(family, data)
            if len(self._addrs) < 1 << 16:
                self._addrs[data] = text
        return text

    @property
    def wants_attrs(self) -> bool:
        """Whether any section reads the netlink attributes."""
        return bool(
            self.details or self.cgroup or self.tos or self.sockopt or self.mem or self.info
        )

    @classmethod
    def from_options(cls, opts: Options) -> View:
        """The sections ss's options ask for (what the text output would show)."""
        v = cls()
        v.timer = bool(opts.show_options)
        v.details = bool(opts.show_details)
        v.mem = bool(opts.show_mem)
        v.info = bool(opts.show_tcpinfo)
        v.tos = bool(opts.show_tos)
        v.cgroup = bool(opts.show_cgroup or opts.show_details)
        v.sockopt = bool(opts.show_inet_sockopt)
        v.threads = bool(opts.show_threads)
        return v


# -- helpers shared by every family --------------------------------------------------------
def u32(buf: bytes, span: tuple[int, int] | None) -> int | None:
    if not span or span[1] - span[0] < 4:
        return None
    return int(_U32.unpack_from(buf, span[0])[0])


def u64(buf: bytes, span: tuple[int, int] | None) -> int | None:
    if not span or span[1] - span[0] < 8:
        return None
    return int(_U64.unpack_from(buf, span[0])[0])


def skmem(buf: bytes, span: tuple[int, int]) -> dict[str, int]:
    """An SK_MEMINFO u32 array as a dict (only the words the kernel sent)."""
    from sockscope.tables.inet.tcpinfo import decode_skmeminfo

    words = decode_skmeminfo(buf[span[0] : span[1]])
    return {k: v for k, v in zip(SKMEM_FIELDS, words, strict=True) if v is not None}


def timer(kind: int, expires_ms: int, retrans: int, sctp: bool = False) -> dict[str, object]:
    """idiag_timer/expires/retrans as ss's ``timer:(name,expire,retrans)`` means them."""
    if sctp:
        name = "T3_RTX"
    else:
        name = TIMER_NAMES[kind] if kind < len(TIMER_NAMES) else "unknown"
    return {"name": name, "expires_ms": expires_ms, "retrans": retrans}


def owners(view: View, inode: int) -> list[dict[str, object]] | None:
    """The processes holding ``inode`` (``-p``), as ss lists them; None when not asked."""
    if view.owners is None or not inode:
        return None
    keys = ("name", "pid", "tid", "fd") if view.threads else ("name", "pid", "fd")
    found = [dict(zip(keys, entry, strict=True)) for entry in view.owners(inode)]
    return found or None


def cgroup(view: View, out: dict[str, object], cgroup_id: int | None) -> None:
    """``cgroup_id`` and, when it can be resolved, ``cgroup`` (the path ss prints)."""
    if not cgroup_id:
        return
    out["cgroup_id"] = cgroup_id
    if view.cgroup_path is not None:
        out["cgroup"] = view.cgroup_path(cgroup_id)


# -- inet ----------------------------------------------------------------------------------
_SHUTDOWN_BITS = (("receive", 1), ("send", 2))


def inet(s: tuple, view: View) -> dict[str, object]:  # type: ignore[type-arg]
    """The dict of an :class:`~sockscope.records.InetSocket` (``InetSocket.to_dict``)."""
    family, state, proto = s[0], s[1], s[16]
    lport, rport = SWAP16[s[4]], SWAP16[s[5]]
    alen = 4 if family == abi.AF_INET else 16
    address = view.address
    out: dict[str, object] = {
        "netid": PROTO_NAMES.get(proto, "???"),
        "state": abi.STATE_NAMES[state] if state < len(abi.STATE_NAMES) else "UNKNOWN",
        "recv_q": s[12],
        "send_q": s[13],
        "local_address": address(family, s[6][:alen]),
        "local_port": lport,
        "peer_address": address(family, s[7][:alen]),
        "peer_port": rport,
        "family": FAMILY_NAMES.get(family, str(family)),
        "protocol": proto,
    }
    if s[8]:
        out["interface"] = view.ifname(s[8])
        out["ifindex"] = s[8]
    if view.service is not None:
        for key, port in (("local_service", lport), ("peer_service", rport)):
            name = view.service(port) if port else None
            if name and name != str(port):
                out[key] = name
    buf = s[17]
    attrs = netlink.attrs(buf, s[18], s[19]) if buf is not None and view.wants_attrs else {}
    if view.timer and s[2]:
        out["timer"] = timer(s[2], s[11], s[3], proto == abi.IPPROTO_SCTP)
    if view.details:
        _inet_details(s, view, buf, attrs, out)
    elif view.cgroup and buf is not None:
        cgroup(view, out, u64(buf, attrs.get(abi.INET_DIAG_CGROUP_ID)))
    if buf is not None:
        _inet_attrs(view, buf, attrs, out)
    users = owners(view, s[15])
    if users:
        out["users"] = users
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
    out["uid"] = s[14]
    out["inode"] = s[15]
    out["cookie"] = (s[10] << 32) | s[9]
    if buf is None:
        return
    mark = u32(buf, attrs.get(abi.INET_DIAG_MARK))
    if mark is not None:
        out["mark"] = mark
    cgroup(view, out, u64(buf, attrs.get(abi.INET_DIAG_CGROUP_ID)))
    span = attrs.get(abi.INET_DIAG_SKV6ONLY)
    if span and span[1] > span[0] and s[0] == abi.AF_INET6:
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
        if s[16] == abi.IPPROTO_TCP and len(s) > 20:
            out["tcp_info"] = _proc_tcp_info(s[20:])
        return
    from sockscope.tables.inet import tcpinfo

    proto = s[16]
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


def _tcp_info_layout() -> tuple[tuple[int, ...], tuple[str, ...], tuple[int, ...]]:
    """(end offsets, JSON names, TcpInfo indexes) of TCP_INFO_FIELDS, C alignment."""
    from sockscope.tables.inet.tcpinfo import TcpInfo

    ends, names, index = [], [], []
    off = 8
    for cname, name, size, _scale in TCP_INFO_FIELDS:
        off = (off + size - 1) // size * size + size
        ends.append(off)
        names.append(name)
        index.append(TcpInfo._fields.index(cname))
    return tuple(ends), tuple(names), tuple(index)


#: filled on the first tcp_info decoded (keeps tcpinfo off the import path)
_LAYOUT: list[tuple[tuple[int, ...], tuple[str, ...], tuple[int, ...]]] = []
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
    from sockscope.tables.inet.tcpinfo import decode_tcp_info

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
    if not _LAYOUT:
        _LAYOUT.append(_tcp_info_layout())
    ends, names, index = _LAYOUT[0]
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
    from sockscope.tables.inet import tcpinfo

    span = attrs.get(abi.INET_DIAG_CONG)
    if span:
        out["congestion_control"] = tcpinfo._cstr(buf, *span)
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
