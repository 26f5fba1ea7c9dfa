"""TCP/MPTCP/SCTP internal information (``-m`` and ``-i``): decoders and printers.

Decoders turn the payload of an ``INET_DIAG_*`` attribute into a named tuple with the
C field names of the kernel's UAPI structures (``struct tcp_info``, ``struct
mptcp_info``, ``struct sctp_info``, ``struct tcp_bbr_info`` ...). A payload shorter than
the structure (an older kernel) is zero-filled, a longer one (a newer kernel) is read
up to the size ss knows, as ss does.

The printers are ports of ss.c's ``print_skmeminfo``, ``tcp_show_info``,
``tcp_stats_print``, ``mptcp_show_info``, ``mptcp_stats_print``, ``sctp_show_info``,
``sctp_stats_print``, ``print_md5sig``, ``tcp_tls_*`` and ``mptcp_subflow_info``
(iproute2 7.1). The TCP path is the hot one (``ss -tani`` over 100,000 sockets): it
unpacks ``struct tcp_info`` with one precompiled :class:`struct.Struct` call and tests
the fields as locals, in ss's order.
"""

from __future__ import annotations

import struct
import sys
from collections import namedtuple

from sockscope.kernel import abi

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from sockscope.tables.inet.record import InetSocket
    from sockscope.render.printer import Printer

Spans = dict[int, tuple[int, int]]

# --- C printf helpers ------------------------------------------------------------------


def c_g(value: float) -> str:
    """C's ``%g`` of a double (glibc and CPython both round correctly, so ``%`` agrees)."""
    return "%g" % value


def sprint_bw(bw: float, numeric: bool) -> str:
    """Port of ss.c:sprint_bw: a rate in bit/s, ``%.0f`` with -n, else k/M/G/T with 3 digits."""
    if numeric:
        return "%.0f" % bw
    if bw >= 1e12:
        return "%.3gT" % (bw / 1e12)
    if bw >= 1e9:
        return "%.3gG" % (bw / 1e9)
    if bw >= 1e6:
        return "%.3gM" % (bw / 1e6)
    if bw >= 1e3:
        return "%.3gk" % (bw / 1e3)
    return "%g" % bw


def _s32(value: int) -> int:
    """A u32 printed with ``%d`` (ss keeps these fields in ``int``)."""
    return value - ((value & 0x80000000) << 1)


def _padded(buf: bytes, start: int, end: int, size: int) -> tuple[bytes, int]:
    """The payload as a buffer of at least ``size`` bytes (zero-filled) and its offset."""
    if end - start >= size:
        return buf, start
    return bytes(buf[start:end]) + bytes(size - (end - start)), 0


def nested(buf: bytes, start: int, end: int, maxtype: int) -> Spans:
    """Port of lib/libnetlink.c:parse_rtattr_nested (parse_rtattr_flags, NLA_F_NESTED).

    The first attribute of a type wins; the NLA_F_NESTED bit is masked off, other
    types above ``maxtype`` (NLA_F_NET_BYTEORDER set, say) are ignored.
    """
    out: Spans = {}
    unpack = abi.RTATTR.unpack_from
    while end - start >= 4:
        length, rtype = unpack(buf, start)
        if length < 4 or length > end - start:
            break
        rtype &= 0x7FFF
        if rtype <= maxtype and rtype not in out:
            out[rtype] = (start + 4, start + length)
        start += (length + 3) & ~3
    return out


def _cstr(buf: bytes, start: int, end: int) -> str:
    """rta_getattr_str: the text up to the first NUL."""
    nul = buf.find(b"\0", start, end)
    return buf[start : end if nul < 0 else nul].decode("latin-1")


# --- struct tcp_info -------------------------------------------------------------------

#: struct tcp_info (include/uapi/linux/tcp.h, iproute2 7.1), 280 bytes
TCP_INFO = struct.Struct("=8B24I4Q6IQ3Q2I2Q6I2H9I")
TCP_INFO_SIZE = TCP_INFO.size
_LITTLE = sys.byteorder == "little"

TcpInfo = namedtuple(
    "TcpInfo",
    "tcpi_state tcpi_ca_state tcpi_retransmits tcpi_probes tcpi_backoff tcpi_options"
    " tcpi_snd_wscale tcpi_rcv_wscale tcpi_delivery_rate_app_limited"
    " tcpi_fastopen_client_fail"
    " tcpi_rto tcpi_ato tcpi_snd_mss tcpi_rcv_mss tcpi_unacked tcpi_sacked tcpi_lost"
    " tcpi_retrans tcpi_fackets tcpi_last_data_sent tcpi_last_ack_sent"
    " tcpi_last_data_recv tcpi_last_ack_recv tcpi_pmtu tcpi_rcv_ssthresh tcpi_rtt"
    " tcpi_rttvar tcpi_snd_ssthresh tcpi_snd_cwnd tcpi_advmss tcpi_reordering"
    " tcpi_rcv_rtt tcpi_rcv_space tcpi_total_retrans tcpi_pacing_rate"
    " tcpi_max_pacing_rate tcpi_bytes_acked tcpi_bytes_received tcpi_segs_out"
    " tcpi_segs_in tcpi_notsent_bytes tcpi_min_rtt tcpi_data_segs_in"
    " tcpi_data_segs_out tcpi_delivery_rate tcpi_busy_time tcpi_rwnd_limited"
    " tcpi_sndbuf_limited tcpi_delivered tcpi_delivered_ce tcpi_bytes_sent"
    " tcpi_bytes_retrans tcpi_dsack_dups tcpi_reord_seen tcpi_rcv_ooopack"
    " tcpi_snd_wnd tcpi_rcv_wnd tcpi_rehash tcpi_total_rto"
    " tcpi_total_rto_recoveries tcpi_total_rto_time tcpi_received_ce"
    " tcpi_delivered_e1_bytes tcpi_delivered_e0_bytes tcpi_delivered_ce_bytes"
    " tcpi_received_e1_bytes tcpi_received_e0_bytes tcpi_received_ce_bytes"
    " tcpi_ecn_mode tcpi_accecn_opt_seen tcpi_accecn_fail_mode tcpi_options2",
)
TcpInfo.__doc__ = "struct tcp_info with its C field names (bit-fields split out)."


def _tcp_raw(buf: bytes, start: int, end: int) -> tuple[int, ...]:
    """The 67 raw values of struct tcp_info (bit-field bytes/words unsplit)."""
    if end - start >= TCP_INFO_SIZE:
        return TCP_INFO.unpack_from(buf, start)
    return TCP_INFO.unpack(bytes(buf[start:end]) + bytes(TCP_INFO_SIZE - (end - start)))


def decode_tcp_info(data: bytes) -> TcpInfo:
    """Decode an INET_DIAG_INFO payload of a TCP (or DCCP) socket."""
    raw = _tcp_raw(data, 0, len(data))
    wscale, flags, ecn = raw[6], raw[7], raw[66]
    if _LITTLE:
        split = (wscale & 15, wscale >> 4, flags & 1, (flags >> 1) & 3)
        tail = (ecn & 3, (ecn >> 2) & 3, (ecn >> 4) & 15, ecn >> 8)
    else:  # big-endian ABIs allocate bit-fields from the most significant bit
        split = (wscale >> 4, wscale & 15, flags >> 7, (flags >> 5) & 3)
        tail = (ecn >> 30, (ecn >> 28) & 3, (ecn >> 24) & 15, ecn & 0xFFFFFF)
    return TcpInfo._make((*raw[:6], *split, *raw[8:66], *tail))


# --- small structures ------------------------------------------------------------------

SK_MEMINFO = struct.Struct("=9I")
SkMemInfo = namedtuple(
    "SkMemInfo", "rmem_alloc rcvbuf wmem_alloc sndbuf fwd_alloc wmem_queued optmem backlog drops"
)
SkMemInfo.__doc__ = "INET_DIAG_SKMEMINFO (SK_MEMINFO_*); backlog/drops are None on old kernels."

INET_DIAG_MEMINFO = struct.Struct("=4I")
MemInfo = namedtuple("MemInfo", "idiag_rmem idiag_wmem idiag_fmem idiag_tmem")

TCPVEGAS_INFO = struct.Struct("=4I")
VegasInfo = namedtuple("VegasInfo", "tcpv_enabled tcpv_rttcnt tcpv_rtt tcpv_minrtt")
TCP_DCTCP_INFO = struct.Struct("=HHIII")
DctcpInfo = namedtuple(
    "DctcpInfo", "dctcp_enabled dctcp_ce_state dctcp_alpha dctcp_ab_ecn dctcp_ab_tot"
)
TCP_BBR_INFO = struct.Struct("=5I")
BbrInfo = namedtuple("BbrInfo", "bbr_bw_lo bbr_bw_hi bbr_min_rtt bbr_pacing_gain bbr_cwnd_gain")
TCP_DIAG_MD5SIG = struct.Struct("=BBH16s80s")
Md5Sig = namedtuple("Md5Sig", "tcpm_family tcpm_prefixlen tcpm_keylen tcpm_addr tcpm_key")

MPTCP_INFO = struct.Struct("=6BxxIIQQQBBBxIQQQQBBBBIII")
MptcpInfo = namedtuple(
    "MptcpInfo",
    "mptcpi_subflows mptcpi_add_addr_signal mptcpi_add_addr_accepted"
    " mptcpi_subflows_max mptcpi_add_addr_signal_max mptcpi_add_addr_accepted_max"
    " mptcpi_flags mptcpi_token mptcpi_write_seq mptcpi_snd_una mptcpi_rcv_nxt"
    " mptcpi_local_addr_used mptcpi_local_addr_max mptcpi_csum_enabled"
    " mptcpi_retransmits mptcpi_bytes_retrans mptcpi_bytes_sent mptcpi_bytes_received"
    " mptcpi_bytes_acked mptcpi_subflows_total mptcpi_endp_laminar_max"
    " mptcpi_endp_fullmesh_max reserved mptcpi_last_data_sent mptcpi_last_data_recv"
    " mptcpi_last_ack_recv",
)

SCTP_INFO = struct.Struct("=3I4HI7IBBH14Q128si10IHH3I4BII")
SctpInfo = namedtuple(
    "SctpInfo",
    "sctpi_tag sctpi_state sctpi_rwnd sctpi_unackdata sctpi_penddata sctpi_instrms"
    " sctpi_outstrms sctpi_fragmentation_point sctpi_inqueue sctpi_outqueue"
    " sctpi_overall_error sctpi_max_burst sctpi_maxseg sctpi_peer_rwnd sctpi_peer_tag"
    " sctpi_peer_capable sctpi_peer_sack reserved1 sctpi_isacks sctpi_osacks"
    " sctpi_opackets sctpi_ipackets sctpi_rtxchunks sctpi_outofseqtsns"
    " sctpi_idupchunks sctpi_gapcnt sctpi_ouodchunks sctpi_iuodchunks"
    " sctpi_oodchunks sctpi_iodchunks sctpi_octrlchunks sctpi_ictrlchunks"
    " sctpi_p_address sctpi_p_state sctpi_p_cwnd sctpi_p_srtt sctpi_p_rto"
    " sctpi_p_hbinterval sctpi_p_pathmaxrxt sctpi_p_sackdelay sctpi_p_sackfreq"
    " sctpi_p_ssthresh sctpi_p_partial_bytes_acked sctpi_p_flight_size sctpi_p_error"
    " reserved2 sctpi_s_autoclose sctpi_s_adaptation_ind sctpi_s_pd_point"
    " sctpi_s_nodelay sctpi_s_disable_fragments sctpi_s_v4mapped"
    " sctpi_s_frag_interleave sctpi_s_type reserved3",
)
_SOCKADDR_STORAGE = 128


def _decode(st: struct.Struct, cls: type, data: bytes) -> tuple[int, ...]:
    buf, off = _padded(data, 0, len(data), st.size)
    return cls(*st.unpack_from(buf, off))  # type: ignore[no-any-return]


def decode_skmeminfo(data: bytes) -> SkMemInfo:
    """INET_DIAG_SKMEMINFO (also UNIX/PACKET/NETLINK_DIAG_MEMINFO): the u32 array."""
    vals = list(SK_MEMINFO.unpack(bytes(data[:36]) + bytes(max(0, 36 - len(data)))))
    if len(data) < 36:
        vals[8] = None
    if len(data) < 32:
        vals[7] = None
    return SkMemInfo(*vals)


def decode_meminfo(data: bytes) -> MemInfo:
    """INET_DIAG_MEMINFO (struct inet_diag_meminfo), the pre-SKMEMINFO fallback."""
    return _decode(INET_DIAG_MEMINFO, MemInfo, data)  # type: ignore[return-value]


def decode_vegas(data: bytes) -> VegasInfo:
    return _decode(TCPVEGAS_INFO, VegasInfo, data)  # type: ignore[return-value]


def decode_dctcp(data: bytes) -> DctcpInfo:
    return _decode(TCP_DCTCP_INFO, DctcpInfo, data)  # type: ignore[return-value]


def decode_bbr(data: bytes) -> BbrInfo:
    return _decode(TCP_BBR_INFO, BbrInfo, data)  # type: ignore[return-value]


def decode_mptcp_info(data: bytes) -> MptcpInfo:
    return _decode(MPTCP_INFO, MptcpInfo, data)  # type: ignore[return-value]


def decode_sctp_info(data: bytes) -> SctpInfo:
    return _decode(SCTP_INFO, SctpInfo, data)  # type: ignore[return-value]


def decode_md5sig(data: bytes) -> list[Md5Sig]:
    """INET_DIAG_MD5SIG: an array of struct tcp_diag_md5sig (key cut to tcpm_keylen)."""
    size = TCP_DIAG_MD5SIG.size
    out = []
    for off in range(0, max(len(data), 1), size):
        fam, plen, klen, addr, key = TCP_DIAG_MD5SIG.unpack(_chunk(data, off, size))
        alen = 16 if fam == abi.AF_INET6 else 4
        out.append(Md5Sig(fam, plen, klen, addr[:alen], key[: min(klen, 80)]))
    return out


def _chunk(data: bytes, off: int, size: int) -> bytes:
    part = bytes(data[off : off + size])
    return part + bytes(size - len(part))


def decode_ulp(data: bytes) -> dict[str, object]:
    """INET_DIAG_ULP_INFO: ``{"name": ..., "tls": {...}, "mptcp": {...}}`` (present keys only)."""
    out: dict[str, object] = {}
    ulp = nested(data, 0, len(data), abi.INET_ULP_INFO_MPTCP)
    span = ulp.get(1)
    if span:
        out["name"] = _cstr(data, *span)
    span = ulp.get(2)
    if span:
        tls = nested(data, span[0], span[1], _TLS_INFO_MAX)
        out["tls"] = {
            name: (_u16(data, tls[i]) if i < 5 else True)
            for i, name in enumerate(_TLS_NAMES)
            if i and i in tls
        }
    span = ulp.get(abi.INET_ULP_INFO_MPTCP)
    if span:
        sf = nested(data, span[0], span[1], _SF_MAX)
        out["mptcp"] = {name: _sf_value(data, sf[i], i) for i, name in _SF_NAMES.items() if i in sf}
    return out


# --- print_skmeminfo -------------------------------------------------------------------


def skmem_text(buf: bytes, start: int, end: int) -> str:
    """Port of ss.c:print_skmeminfo for a SKMEMINFO payload: `` skmem:(r..,d..)``."""
    size = end - start
    if size >= 36:
        vals = SK_MEMINFO.unpack_from(buf, start)
        return " skmem:(r%u,rb%u,t%u,tb%u,f%u,w%u,o%u,bl%u,d%u)" % vals
    # print_skmeminfo reads the seven first counters whatever the payload's length: a
    # short one is read through into what follows it in the buffer (zeros past its end)
    data = bytes(buf[start : start + 28]) if size >= 0 else b""
    vals = SK_MEMINFO.unpack(
        (data + bytes(28 - len(data)))[:28] + bytes(buf[start + 28 : end]).ljust(8, b"\0")[:8]
    )
    text = " skmem:(r%u,rb%u,t%u,tb%u,f%u,w%u,o%u" % vals[:7]
    if size >= 32:
        text += ",bl%u" % vals[7]
    return text + ")"


def _mem_text(buf: bytes, attrs: Spans) -> str:
    """print_skmeminfo(tb, INET_DIAG_SKMEMINFO) with the old MEMINFO fallback."""
    span = attrs.get(abi.INET_DIAG_SKMEMINFO)
    if span is not None:
        return skmem_text(buf, span[0], span[1])
    span = attrs.get(abi.INET_DIAG_MEMINFO)
    if span is None:
        return ""
    data, off = _padded(buf, span[0], span[1], 16)
    return " mem:(r%u,w%u,f%u,t%u)" % INET_DIAG_MEMINFO.unpack_from(data, off)


# --- the inet block --------------------------------------------------------------------


def info_block(p: Printer, s: InetSocket, attrs: Spans) -> str:
    """The text after ``\\n\\t`` for -m/-i on an inet row (the show_info of its protocol)."""
    return bind_info_block(p)(s, attrs)


def bind_info_block(p: Printer) -> Callable[[InetSocket, Spans], str]:
    """:func:`info_block` for one run's options, as a closure (the per-row hot path)."""
    show_options = bool(p.opts.show_options)
    numeric = bool(p.opts.numeric)
    skmem_unpack = SK_MEMINFO.unpack_from
    skmem_id, info_id, md5_id, ulp_id = (
        abi.INET_DIAG_SKMEMINFO,
        abi.INET_DIAG_INFO,
        abi.INET_DIAG_MD5SIG,
        abi.INET_DIAG_ULP_INFO,
    )
    mptcp, sctp = abi.IPPROTO_MPTCP, abi.IPPROTO_SCTP

    def block(s: InetSocket, attrs: Spans) -> str:
        buf = s[17]
        span = attrs.get(skmem_id)
        if span is None:
            out = _mem_text(buf, attrs)
        elif span[1] - span[0] >= 36:
            out = " skmem:(r%u,rb%u,t%u,tb%u,f%u,w%u,o%u,bl%u,d%u)" % skmem_unpack(buf, span[0])
        else:
            out = skmem_text(buf, span[0], span[1])
        proto = s[16]
        if proto == sctp:
            return out + _sctp_show_info(p, buf, attrs)
        span = attrs.get(info_id)
        if proto == mptcp:
            return out if span is None else out + mptcp_stats(buf, span[0], span[1])
        if span is not None:
            out += tcp_stats(s[1], buf, span[0], span[1], attrs, show_options, numeric)
        if md5_id in attrs:
            out += md5sig_text(p, buf, *attrs[md5_id])
        if ulp_id in attrs:
            out += ulp_text(buf, *attrs[ulp_id])
        return out

    return block


#: tcp_stats_print's items in order. Each present item sets its bit in a key and
#: appends its values; the formats of a key are joined once and cached, so a row costs
#: one ``%`` however many items it has. Every ``%g`` and rate (``%.0f`` with -n, or
#: sprint_bw) is rendered before, from small caches: most values repeat (rto 204, ato
#: 40, the gains of bbr, the rtt of a link), and ``%g`` of a float costs more than a
#: dictionary look-up.
_TCP_ITEMS: tuple[str, ...] = (
    "%s",  # 0 ts usec_ts sack ecn ecnseen fastopen
    " %s",  # 1 congestion control name
    " wscale:%d,%d",  # 2
    " rto:%s",  # 3 %g
    " backoff:%u",  # 4
    " rtt:%s/%s",  # 5 %g/%g
    " ato:%s",  # 6 %g
    " mss:%d",  # 7
    " pmtu:%u",  # 8
    " rcvmss:%d",  # 9
    " advmss:%d",  # 10
    " cwnd:%u",  # 11
    " ssthresh:%d",  # 12
    " bytes_sent:%u",  # 13
    " bytes_retrans:%u",  # 14
    " bytes_acked:%u",  # 15
    " bytes_received:%u",  # 16
    " segs_out:%u",  # 17
    " segs_in:%u",  # 18
    " data_segs_out:%u",  # 19
    " data_segs_in:%u",  # 20
    "%s",  # 21 dctcp
    " bbr:(bw:%sbps,mrtt:%s",  # 22 rate, %g
    ",pacing_gain:%s",  # 23 %g
    ",cwnd_gain:%s",  # 24 %g
    ")",  # 25
    " send %sbps",  # 26 rate
    " lastsnd:%u",  # 27
    " lastrcv:%u",  # 28
    " lastack:%u",  # 29
    " pacing_rate %sbps",  # 30 rate
    "/%sbps",  # 31 rate
    " delivery_rate %sbps",  # 32 rate
    " delivered:%u",  # 33
    " delivered_ce:%u",  # 34
    " app_limited",  # 35
    " busy:%ums",  # 36
    " rwnd_limited:%ums(%.1f%%)",  # 37
    " sndbuf_limited:%ums(%.1f%%)",  # 38
    " unacked:%u",  # 39
    " retrans:%u/%u",  # 40
    " lost:%u",  # 41
    " sacked:%u",  # 42
    " dsack_dups:%u",  # 43
    " fackets:%u",  # 44
    " reordering:%d",  # 45
    " reord_seen:%d",  # 46
    " rcv_rtt:%s",  # 47 %g
    " rcv_space:%d",  # 48
    " rcv_ssthresh:%u",  # 49
    " notsent:%u",  # 50
    " minrtt:%s",  # 51 %g
    " rcv_ooopack:%u",  # 52
    " snd_wnd:%u",  # 53
    " rcv_wnd:%u",  # 54
    " rehash:%u",  # 55
)
# The dictionaries below are memo tables of pure functions (a value -> its C-formatted
# text), bounded in size: like functools.lru_cache they hold no state of a run, which
# lives on the Printer. They exist because -i formats the same few values ~25 times per
# socket at 100,000 sockets.
_FORMATS: dict[int, str] = {}
_CACHE_MAX = 1 << 16


def _tcp_format(key: int) -> str:
    fmt = "".join(item for bit, item in enumerate(_TCP_ITEMS) if key >> bit & 1)
    if len(_FORMATS) < 4096:
        _FORMATS[key] = fmt
    return fmt


#: ``%g`` of a count of microseconds in milliseconds (rto, rtt, ato, minrtt ...)
_MS: dict[int, str] = {}
#: ``%g`` of a bbr gain (a 8.8 fixed-point factor)
_GAIN: dict[int, str] = {}
#: sprint_bw of a rate in bytes/s (x8), without -n
_BW: dict[int, str] = {}
#: the ``send`` rate, keyed by (cwnd * mss) << 32 | rtt: with -n, and without
_SEND_N: dict[int, str] = {}
_SEND_H: dict[int, str] = {}
#: rates below this (in bytes/s) times 8 are exact in a double: ``%.0f`` is the integer
_EXACT = 1 << 50


def _ms(usec: int) -> str:
    text = _MS.get(usec)
    if text is None:
        text = "%g" % (usec / 1000)
        if len(_MS) < _CACHE_MAX:
            _MS[usec] = text
    return text


def _gain(value: int) -> str:
    text = _GAIN.get(value)
    if text is None:
        text = "%g" % (value / 256.0)
        if len(_GAIN) < _CACHE_MAX:
            _GAIN[value] = text
    return text


def _rate(value: int, numeric: bool) -> object:
    """A rate of ``value`` bytes/s as ss prints it in bit/s (``%.0f`` or sprint_bw)."""
    if numeric:
        return value * 8 if value < _EXACT else "%.0f" % (value * 8.0)
    text = _BW.get(value)
    if text is None:
        text = sprint_bw(value * 8.0, False)
        if len(_BW) < _CACHE_MAX:
            _BW[value] = text
    return text


def _send(cwnd_mss: int, rtt: int, numeric: bool) -> str:
    cache = _SEND_N if numeric else _SEND_H
    key = cwnd_mss << 32 | rtt
    text = cache.get(key)
    if text is None:
        rate = cwnd_mss * 8000000.0 / rtt
        text = "%.0f" % rate if numeric else sprint_bw(rate, False)
        if len(cache) < _CACHE_MAX:
            cache[key] = text
    return text


def _opt_names(options: int) -> str:
    """The TCPI_OPT_* words of tcp_stats_print (7.1 order: usec_ts right after ts)."""
    out = ""
    for bit, name in ((1, " ts"), (64, " usec_ts"), (2, " sack"), (8, " ecn"), (16, " ecnseen")):
        if options & bit:
            out += name
    return out + (" fastopen" if options & 32 else "")


_OPT_NAMES = tuple(_opt_names(i) for i in range(256))
_CONG: dict[bytes, str] = {}
_WSCALE = tuple(((w & 15, w >> 4) if _LITTLE else (w >> 4, w & 15)) for w in range(256))
_APP_LIMITED = 1 if _LITTLE else 0x80
_U64_MAX = 0xFFFFFFFFFFFFFFFF

#: the fields of struct tcp_info that tcp_stats_print reads, up to tcpi_rehash (the
#: others are skipped with pad bytes): one unpack_from makes the locals of tcp_text
TCP_HOT = struct.Struct("=4x4B4I5II4xII8I3I4Q6IQ3Q2I2Q6I")
TCP_HOT_SIZE = TCP_HOT.size
_HOT_UNPACK = TCP_HOT.unpack_from


def tcp_hot(buf: bytes, start: int, end: int) -> tuple[int, ...]:
    """The :data:`TCP_HOT` fields of a struct tcp_info payload (zero-filled if short)."""
    if end - start >= TCP_HOT_SIZE:
        return _HOT_UNPACK(buf, start)
    return _HOT_UNPACK(bytes(buf[start:end]) + bytes(TCP_HOT_SIZE - (end - start)))


def cong_name(raw: bytes) -> str:
    """INET_DIAG_CONG's text as ss prints it (``%s`` of a 16-byte buffer: 15 chars)."""
    cong = _CONG.get(raw)
    if cong is None:
        cong = _cstr(raw, 0, len(raw))[:15]
        if len(_CONG) < 1024:
            _CONG[raw] = cong
    return cong


def tcp_stats(
    state: int,
    buf: bytes,
    start: int,
    end: int,
    attrs: Spans,
    show_options: bool,
    numeric: bool,
) -> str:
    """tcp_show_info's struct tcp_info part + tcp_stats_print (7.1's items and order)."""
    span = attrs.get(4)  # INET_DIAG_CONG
    # strncpy(cong_alg, RTA_DATA, 15): a name without its NUL is read through the buffer
    cong = "" if span is None else cong_name(bytes(buf[span[0] : span[0] + 15]))
    vegas_rtt = 0
    dctcp = ""
    if 3 in attrs or 9 in attrs:  # INET_DIAG_VEGASINFO, INET_DIAG_DCTCPINFO
        vegas_rtt, dctcp = _vegas_dctcp(buf, attrs)
    span = attrs.get(16)  # INET_DIAG_BBRINFO
    bbr = None
    if span is not None:
        if span[1] - span[0] >= 20:
            bbr = TCP_BBR_INFO.unpack_from(buf, span[0])
        else:
            bbr = TCP_BBR_INFO.unpack_from(*_padded(buf, span[0], span[1], 20))
    return tcp_text(
        state, tcp_hot(buf, start, end), cong, bbr, vegas_rtt, dctcp, show_options, numeric
    )


def tcp_text(
    state: int,
    hot: tuple[int, ...],
    cong: str,
    bbr: tuple[int, ...] | None,
    vegas_rtt: int,
    dctcp: str,
    show_options: bool,
    numeric: bool,
) -> str:
    """tcp_stats_print over the :data:`TCP_HOT` fields and the decoded side attributes.

    ``vegas_rtt`` is the rtt of an enabled VEGASINFO (0 if none) and ``dctcp`` the
    DCTCPINFO text; ``bbr`` the raw struct tcp_bbr_info.
    """
    (
        backoff, options, wscale, applim,
        rto, ato, mss, rcv_mss, unacked, sacked, lost, retrans, fackets,
        lastsnd, lastrcv, lastack, pmtu, rcv_ssthresh, rtt, rttvar,
        ssthresh, cwnd, advmss, reordering, rcv_rtt, rcv_space, total_retrans,
        pacing, max_pacing, bytes_acked, bytes_received,
        segs_out, segs_in, notsent, min_rtt, dsegs_in, dsegs_out,
        delivery_rate, busy, rwnd_limited, sndbuf_limited, delivered, delivered_ce,
        bytes_sent, bytes_retrans, dsack_dups, reord_seen, rcv_ooopack, snd_wnd,
        rcv_wnd, rehash,
    ) = hot  # fmt: skip
    ms = _MS
    vals: list[object] = []
    put = vals.append
    key = 0
    if show_options and options & 0x7B:
        key = 1
        put(_OPT_NAMES[options])
    if cong:
        key |= 2
        put(cong)
    if options & 4:
        key |= 4
        vals += _WSCALE[wscale]
    if rto and rto != 3000000:
        key |= 8
        put(ms.get(rto) or _ms(rto))
    if backoff:
        key |= 16
        put(backoff)
    if rtt:
        key |= 32
        put(ms.get(rtt) or _ms(rtt))
        put(ms.get(rttvar) or _ms(rttvar))
    if ato:
        key |= 64
        put(ms.get(ato) or _ms(ato))
    # runs of items that are usually all there are tested at once (the same bits and
    # values as their items one by one, which follow for the other rows)
    if mss and pmtu and rcv_mss and advmss and cwnd and (mss | rcv_mss | advmss) < 0x80000000:
        key |= 128 | 256 | 512 | 1024 | 2048
        vals += (mss, pmtu, rcv_mss, advmss, cwnd)
    else:
        if mss:
            key |= 128
            put(mss if mss < 0x80000000 else mss - 0x100000000)
        if pmtu:
            key |= 256
            put(pmtu)
        if rcv_mss:
            key |= 512
            put(rcv_mss if rcv_mss < 0x80000000 else rcv_mss - 0x100000000)
        if advmss:
            key |= 1024
            put(advmss if advmss < 0x80000000 else advmss - 0x100000000)
        if cwnd:
            key |= 2048
            put(cwnd)
    if ssthresh and ssthresh < 0xFFFF:
        key |= 4096
        put(ssthresh)
    if bytes_sent:
        key |= 1 << 13
        put(bytes_sent)
    if bytes_retrans:
        key |= 1 << 14
        put(bytes_retrans)
    if bytes_acked:
        key |= 1 << 15
        put(bytes_acked)
    if bytes_received:
        key |= 1 << 16
        put(bytes_received)
    if segs_out and segs_in:
        key |= (1 << 17) | (1 << 18)
        vals += (segs_out, segs_in)
    else:
        if segs_out:
            key |= 1 << 17
            put(segs_out)
        if segs_in:
            key |= 1 << 18
            put(segs_in)
    if dsegs_out:
        key |= 1 << 19
        put(dsegs_out)
    if dsegs_in:
        key |= 1 << 20
        put(dsegs_in)
    if dctcp:
        key |= 1 << 21
        put(dctcp)
    if bbr is not None:
        bw_lo, bw_hi, bbr_rtt, pacing_gain, cwnd_gain = bbr
        key |= (1 << 22) | (1 << 25)
        bw = (bw_hi << 32) | bw_lo
        put(bw * 8 if numeric and bw < _EXACT else _rate(bw, numeric))
        put(ms.get(bbr_rtt) or _ms(bbr_rtt))
        if pacing_gain:
            key |= 1 << 23
            put(_GAIN.get(pacing_gain) or _gain(pacing_gain))
        if cwnd_gain:
            key |= 1 << 24
            put(_GAIN.get(cwnd_gain) or _gain(cwnd_gain))
    send_rtt = vegas_rtt or rtt
    if send_rtt and mss and cwnd:
        key |= 1 << 26
        send = cwnd * mss << 32 | send_rtt
        put((_SEND_N if numeric else _SEND_H).get(send) or _send(cwnd * mss, send_rtt, numeric))
    if lastsnd and lastrcv and lastack:
        key |= (1 << 27) | (1 << 28) | (1 << 29)
        vals += (lastsnd, lastrcv, lastack)
    else:
        if lastsnd:
            key |= 1 << 27
            put(lastsnd)
        if lastrcv:
            key |= 1 << 28
            put(lastrcv)
        if lastack:
            key |= 1 << 29
            put(lastack)
    if pacing and pacing != _U64_MAX:
        key |= 1 << 30
        put(pacing * 8 if numeric and pacing < _EXACT else _rate(pacing, numeric))
        if max_pacing and max_pacing != _U64_MAX:
            key |= 1 << 31
            put(_rate(max_pacing, numeric))
    if delivery_rate:
        key |= 1 << 32
        rate = delivery_rate
        put(rate * 8 if numeric and rate < _EXACT else _rate(rate, numeric))
    if delivered:
        key |= 1 << 33
        put(delivered)
    if delivered_ce:
        key |= 1 << 34
        put(delivered_ce)
    if applim & _APP_LIMITED:
        key |= 1 << 35
    if busy:
        key |= 1 << 36
        put(busy // 1000)
        if rwnd_limited:
            key |= 1 << 37
            put(rwnd_limited // 1000)
            put(100.0 * rwnd_limited / busy)
        if sndbuf_limited:
            key |= 1 << 38
            put(sndbuf_limited // 1000)
            put(100.0 * sndbuf_limited / busy)
    if unacked:
        key |= 1 << 39
        put(unacked)
    if retrans or total_retrans:
        key |= 1 << 40
        put(retrans)
        put(total_retrans)
    if lost:
        key |= 1 << 41
        put(lost)
    if sacked and state != 10:  # SS_LISTEN
        key |= 1 << 42
        put(sacked)
    if dsack_dups:
        key |= 1 << 43
        put(dsack_dups)
    if fackets:
        key |= 1 << 44
        put(fackets)
    if reordering != 3:
        key |= 1 << 45
        put(reordering if reordering < 0x80000000 else reordering - 0x100000000)
    if reord_seen:
        key |= 1 << 46
        put(reord_seen if reord_seen < 0x80000000 else reord_seen - 0x100000000)
    if rcv_rtt:
        key |= 1 << 47
        put(ms.get(rcv_rtt) or _ms(rcv_rtt))
    if rcv_ssthresh and rcv_space and rcv_space < 0x80000000:
        key |= (1 << 48) | (1 << 49)
        vals += (rcv_space, rcv_ssthresh)
    else:
        if rcv_space:
            key |= 1 << 48
            put(rcv_space if rcv_space < 0x80000000 else rcv_space - 0x100000000)
        if rcv_ssthresh:
            key |= 1 << 49
            put(rcv_ssthresh)
    if notsent:
        key |= 1 << 50
        put(notsent)
    if min_rtt and min_rtt != 0xFFFFFFFF:
        key |= 1 << 51
        put(ms.get(min_rtt) or _ms(min_rtt))
    if rcv_ooopack:
        key |= 1 << 52
        put(rcv_ooopack)
    if snd_wnd and rcv_wnd:
        key |= (1 << 53) | (1 << 54)
        vals += (snd_wnd, rcv_wnd)
    else:
        if snd_wnd:
            key |= 1 << 53
            put(snd_wnd)
        if rcv_wnd:
            key |= 1 << 54
            put(rcv_wnd)
    if rehash:
        key |= 1 << 55
        put(rehash)
    fmt = _FORMATS.get(key)
    if fmt is None:
        fmt = _tcp_format(key)
    return fmt % tuple(vals)


def _vegas_dctcp(buf: bytes, attrs: Spans) -> tuple[int, str]:
    """VEGASINFO (the rtt ``send`` uses, 0 if none) and the dctcp item of tcp_stats_print."""
    rtt = 0
    out = ""
    span = attrs.get(abi.INET_DIAG_VEGASINFO)
    if span is not None:
        data, off = _padded(buf, span[0], span[1], 16)
        enabled, _cnt, vrtt, _min = TCPVEGAS_INFO.unpack_from(data, off)
        if enabled and vrtt and vrtt != 0x7FFFFFFF:
            rtt = vrtt
    span = attrs.get(abi.INET_DIAG_DCTCPINFO)
    if span is not None:
        data, off = _padded(buf, span[0], span[1], 16)
        enabled, ce_state, alpha, ab_ecn, ab_tot = TCP_DCTCP_INFO.unpack_from(data, off)
        if enabled:
            out = " dctcp:(ce_state:%u,alpha:%u,ab_ecn:%u,ab_tot:%u)" % (
                ce_state,
                alpha,
                ab_ecn,
                ab_tot,
            )
        else:
            out = " dctcp:fallback_mode"
    return rtt, out


def proc_info(p: Printer, s: InetSocket) -> str:
    """tcp_stats_print for a /proc TCP row (tcp_show_line): the few fields /proc has.

    Everything ss does not parse from /proc stays zero, so ``reordering`` (0, not 3)
    is always printed.
    """
    extra = s[20:]
    if len(extra) < 6:
        extra = (0, 0, 0, 0, 0, 0)
    _refcnt, rto, ato, qack, cwnd, ssthresh = extra[:6]
    out = ""
    if rto:
        out += " rto:%g" % rto
    if ato:
        out += " ato:%g" % ato
    if qack:
        out += " qack:%d" % qack
    if qack & 1:
        out += " bidir"
    if cwnd:
        out += " cwnd:%u" % (cwnd & 0xFFFFFFFF)
    if ssthresh:
        out += " ssthresh:%d" % ssthresh
    if s[3]:  # the record's retrans: /proc's retransmits (timer on) or probes
        out += " retrans:%u/0" % (s[3] & 0xFFFFFFFF)
    return out + " reordering:0"


# --- md5 keys and ULP ------------------------------------------------------------------

#: isprint() in the C locale, minus the backslash and ss's escape set (" ,")
_KEY_ESCAPE = tuple(
    chr(c) if 0x20 < c < 0x7F and c not in (0x5C, 0x2C) else "\\%03o" % c for c in range(256)
)


def md5sig_text(p: Printer, buf: bytes, start: int, end: int) -> str:
    """`` md5keys:`` + print_md5sig of each struct tcp_diag_md5sig, joined by ``,``."""
    size = TCP_DIAG_MD5SIG.size
    parts = []
    off = start
    while True:
        fam, plen, klen, addr, _key = TCP_DIAG_MD5SIG.unpack(
            _chunk(buf[off : min(off + size, end)], 0, size)
        )
        if fam == abi.AF_INET:
            host = p.resolver.host(fam, addr[:4])
        elif fam == abi.AF_INET6:
            host = p.resolver.host(fam, addr)
        else:
            host = "???"
        # ss prints tcpm_keylen bytes from tcpm_key (past the array if keylen > 80)
        raw = bytes(buf[off + 20 : min(off + 20 + klen, end)])
        parts.append("%s/%d=%s" % (host, plen, "".join(_KEY_ESCAPE[b] for b in raw)))
        off += size
        if end - off <= 0:
            break
    return " md5keys:" + ",".join(parts)


_TLS_INFO_MAX = 7
_TLS_NAMES = ("", "version", "cipher", "txconf", "rxconf", "zc_ro_tx", "rx_no_pad")
_TLS_VERSIONS = {0x0303: " version: 1.2", 0x0304: " version: 1.3"}
_TLS_CIPHERS = {51: " cipher: aes-gcm-128", 52: " cipher: aes-gcm-256"}
_TLS_CONF = {1: "none", 2: "sw", 3: "hw", 4: "hw-record"}
_SF_MAX = 10
_SF_NAMES = {
    1: "token_rem",
    2: "token_loc",
    3: "relwrite_seq",
    4: "map_seq",
    5: "map_sfseq",
    6: "ssn_offset",
    7: "map_datalen",
    8: "flags",
    9: "id_rem",
    10: "id_loc",
}
_SF_FLAGS = "MmJjBbecv"
_U8 = struct.Struct("=B")
_U16 = struct.Struct("=H")
_U32 = struct.Struct("=I")
_U64 = struct.Struct("=Q")


def _u16(buf: bytes, span: tuple[int, int]) -> int:
    data, off = _padded(buf, span[0], span[1], 2)
    return int(_U16.unpack_from(data, off)[0])


def _u32(buf: bytes, span: tuple[int, int]) -> int:
    data, off = _padded(buf, span[0], span[1], 4)
    return int(_U32.unpack_from(data, off)[0])


def _u64(buf: bytes, span: tuple[int, int]) -> int:
    data, off = _padded(buf, span[0], span[1], 8)
    return int(_U64.unpack_from(data, off)[0])


def _sf_value(buf: bytes, span: tuple[int, int], kind: int) -> int:
    if kind in (3, 4):
        return _u64(buf, span)
    if kind in (9, 10):
        return buf[span[0]] if span[1] > span[0] else 0
    return _u32(buf, span)


def ulp_text(buf: bytes, start: int, end: int) -> str:
    """The INET_DIAG_ULP_INFO part of tcp_show_info: name, then TLS or MPTCP subflow."""
    ulp = nested(buf, start, end, 3)
    out = ""
    span = ulp.get(1)
    if span is not None:
        out += " tcp-ulp-" + _cstr(buf, *span)
    span = ulp.get(2)
    if span is not None:
        out += _tls_text(buf, nested(buf, span[0], span[1], _TLS_INFO_MAX))
    span = ulp.get(3)
    if span is not None:
        out += _subflow_text(buf, nested(buf, span[0], span[1], _SF_MAX))
    return out


def _tls_text(buf: bytes, tls: Spans) -> str:
    """tcp_tls_version, tcp_tls_cipher, tcp_tls_conf (rx, tx), zc_ro_tx, no_pad_rx."""
    out = ""
    span = tls.get(1)
    if span is not None:
        val = _u16(buf, span)
        out += _TLS_VERSIONS.get(val) or " version: unknown(%u)" % val
    span = tls.get(2)
    if span is not None:
        out += _TLS_CIPHERS.get(_u16(buf, span), "")
    for name, kind in (("rxconf", 4), ("txconf", 3)):
        span = tls.get(kind)
        if span is not None:
            val = _u16(buf, span)
            out += " %s: %s" % (name, _TLS_CONF.get(val) or "unknown(%u)" % val)
    if 5 in tls:
        out += " zc_ro_tx"
    if 6 in tls:
        out += " no_pad_rx"
    return out


def _subflow_text(buf: bytes, sf: Spans) -> str:
    """Port of ss.c:mptcp_subflow_info (7.1: decimal seq/sfseq/ssnoff/maplen)."""
    out = ""
    span = sf.get(8)
    if span is not None:
        flags = _u32(buf, span)
        if flags:
            out += " flags:" + "".join(c for i, c in enumerate(_SF_FLAGS) if flags >> i & 1)
    if 1 in sf and 2 in sf and 9 in sf and 10 in sf:
        out += " token:%04x(id:%u)/%04x(id:%u)" % (
            _u32(buf, sf[1]),
            _sf_value(buf, sf[9], 9),
            _u32(buf, sf[2]),
            _sf_value(buf, sf[10], 10),
        )
    for kind, fmt in ((4, " seq:%u"), (5, " sfseq:%u"), (6, " ssnoff:%u"), (7, " maplen:%u")):
        span = sf.get(kind)
        if span is not None:
            out += fmt % (_u64(buf, span) if kind == 4 else _u32(buf, span))
    return out


# --- MPTCP -----------------------------------------------------------------------------

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
    data, off = _padded(buf, start, end, MPTCP_INFO.size)
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
    data, off = _padded(buf, start, end, SCTP_INFO.size)
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
            out += fmt % (_s32(val) if i in _SIGNED_D else val)
    return out


def _sockaddr_host(p: Printer, buf: bytes, off: int) -> str:
    """format_host_sa: the address of a sockaddr_in/sockaddr_in6 (no port, no brackets)."""
    family = _U16.unpack_from(buf, off)[0]
    if family == abi.AF_INET:
        return p.resolver.host(family, bytes(buf[off + 4 : off + 8]))
    if family == abi.AF_INET6:
        return p.resolver.host(family, bytes(buf[off + 8 : off + 24]))
    return ""


def _sctp_addrs(p: Printer, label: str, buf: bytes, span: tuple[int, int]) -> str:
    start, end = span
    data = bytes(buf[start:end])
    if len(data) % _SOCKADDR_STORAGE or not data:
        data += bytes(_SOCKADDR_STORAGE - len(data) % _SOCKADDR_STORAGE)
    hosts = [_sockaddr_host(p, data, off) for off in range(0, len(data), _SOCKADDR_STORAGE)]
    return " %s:%s" % (label, ",".join(hosts))


def _sctp_show_info(p: Printer, buf: bytes, attrs: Spans) -> str:
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


__all__ = [
    "TCP_INFO",
    "BbrInfo",
    "DctcpInfo",
    "Md5Sig",
    "MemInfo",
    "MptcpInfo",
    "SctpInfo",
    "SkMemInfo",
    "TcpInfo",
    "VegasInfo",
    "c_g",
    "decode_bbr",
    "decode_dctcp",
    "decode_md5sig",
    "decode_meminfo",
    "decode_mptcp_info",
    "decode_sctp_info",
    "decode_skmeminfo",
    "decode_tcp_info",
    "decode_ulp",
    "decode_vegas",
    "info_block",
    "proc_info",
    "skmem_text",
    "sprint_bw",
]
