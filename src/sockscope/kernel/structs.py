"""Decoders of the kernel's structures in inet_diag attributes (bytes only, no ss policy).

Each turns the payload of an ``INET_DIAG_*`` attribute into a named tuple with the C
field names of the UAPI structure (``struct tcp_info`` of ``linux/tcp.h``, ``struct
mptcp_info``, ``struct sctp_info``, ``struct tcp_bbr_info``, ``struct
tcp_diag_md5sig`` ...). A payload shorter than the structure (an older kernel) is
zero-filled; a longer one (a newer kernel) is read up to the size known here, as ss
does. :data:`DECODERS` maps an INET_DIAG attribute type to its decoder.
"""

from __future__ import annotations

import struct
import sys
from collections import namedtuple

from sockscope.kernel import abi, netlink

Spans = dict[int, tuple[int, int]]


def padded(buf: bytes, start: int, end: int, size: int) -> tuple[bytes, int]:
    """The payload as a buffer of at least ``size`` bytes (zero-filled) and its offset."""
    if end - start >= size:
        return buf, start
    return bytes(buf[start:end]) + bytes(size - (end - start)), 0


def nested(buf: bytes, start: int, end: int, maxtype: int) -> Spans:
    """Port of lib/libnetlink.c:parse_rtattr_nested (parse_rtattr_flags, NLA_F_NESTED).

    The first attribute of a type wins; the NLA_F_NESTED bit is masked off, other
    types above ``maxtype`` (NLA_F_NET_BYTEORDER set, say) are ignored.
    """
    return netlink.attrs(buf, start, end, abi.SS_TYPE_MASK, maxtype)


def cstr(buf: bytes, start: int, end: int) -> str:
    """rta_getattr_str: the text up to the first NUL."""
    nul = buf.find(b"\0", start, end)
    return buf[start : end if nul < 0 else nul].decode("latin-1")


# --- struct tcp_info -------------------------------------------------------------------

#: struct tcp_info (include/uapi/linux/tcp.h, iproute2 7.1), 280 bytes
TCP_INFO = struct.Struct("=8B24I4Q6IQ3Q2I2Q6I2H9I")
TCP_INFO_SIZE = TCP_INFO.size
LITTLE = sys.byteorder == "little"

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


def tcp_raw(buf: bytes, start: int, end: int) -> tuple[int, ...]:
    """The 67 raw values of struct tcp_info (bit-field bytes/words unsplit)."""
    if end - start >= TCP_INFO_SIZE:
        return TCP_INFO.unpack_from(buf, start)
    return TCP_INFO.unpack(bytes(buf[start:end]) + bytes(TCP_INFO_SIZE - (end - start)))


def decode_tcp_info(data: bytes) -> TcpInfo:
    """Decode an INET_DIAG_INFO payload of a TCP (or DCCP) socket."""
    raw = tcp_raw(data, 0, len(data))
    wscale, flags, ecn = raw[6], raw[7], raw[66]
    if LITTLE:
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
SOCKADDR_STORAGE = 128


def _decode(st: struct.Struct, cls: type, data: bytes) -> tuple[int, ...]:
    buf, off = padded(data, 0, len(data), st.size)
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
        fam, plen, klen, addr, key = TCP_DIAG_MD5SIG.unpack(chunk(data, off, size))
        alen = 16 if fam == abi.AF_INET6 else 4
        out.append(Md5Sig(fam, plen, klen, addr[:alen], key[: min(klen, 80)]))
    return out


def chunk(data: bytes, off: int, size: int) -> bytes:
    part = bytes(data[off : off + size])
    return part + bytes(size - len(part))


def decode_ulp(data: bytes) -> dict[str, object]:
    """INET_DIAG_ULP_INFO: ``{"name": ..., "tls": {...}, "mptcp": {...}}`` (present keys only)."""
    out: dict[str, object] = {}
    ulp = nested(data, 0, len(data), abi.INET_ULP_INFO_MPTCP)
    span = ulp.get(abi.INET_ULP_INFO_NAME)
    if span:
        out["name"] = cstr(data, *span)
    span = ulp.get(abi.INET_ULP_INFO_TLS)
    if span:
        tls = nested(data, span[0], span[1], TLS_INFO_MAX)
        out["tls"] = {
            name: (u16(data, tls[i]) if i < 5 else True)
            for i, name in enumerate(TLS_NAMES)
            if i and i in tls
        }
    span = ulp.get(abi.INET_ULP_INFO_MPTCP)
    if span:
        sf = nested(data, span[0], span[1], SF_MAX)
        out["mptcp"] = {name: sf_value(data, sf[i], i) for i, name in SF_NAMES.items() if i in sf}
    return out


# --- INET_DIAG_ULP_INFO -------------------------------------------------------------

TLS_INFO_MAX = 7
TLS_NAMES = ("", "version", "cipher", "txconf", "rxconf", "zc_ro_tx", "rx_no_pad")
SF_MAX = 10
SF_NAMES = {
    abi.MPTCP_SUBFLOW_ATTR_TOKEN_REM: "token_rem",
    abi.MPTCP_SUBFLOW_ATTR_TOKEN_LOC: "token_loc",
    abi.MPTCP_SUBFLOW_ATTR_RELWRITE_SEQ: "relwrite_seq",
    abi.MPTCP_SUBFLOW_ATTR_MAP_SEQ: "map_seq",
    abi.MPTCP_SUBFLOW_ATTR_MAP_SFSEQ: "map_sfseq",
    abi.MPTCP_SUBFLOW_ATTR_SSN_OFFSET: "ssn_offset",
    abi.MPTCP_SUBFLOW_ATTR_MAP_DATALEN: "map_datalen",
    abi.MPTCP_SUBFLOW_ATTR_FLAGS: "flags",
    abi.MPTCP_SUBFLOW_ATTR_ID_REM: "id_rem",
    abi.MPTCP_SUBFLOW_ATTR_ID_LOC: "id_loc",
}
#: the subflow attributes ss reads as u64 and as u8 (the others are u32)
_SF_U64 = (abi.MPTCP_SUBFLOW_ATTR_RELWRITE_SEQ, abi.MPTCP_SUBFLOW_ATTR_MAP_SEQ)
_SF_U8 = (abi.MPTCP_SUBFLOW_ATTR_ID_REM, abi.MPTCP_SUBFLOW_ATTR_ID_LOC)
_U8 = struct.Struct("=B")
_U16 = struct.Struct("=H")
_U32 = struct.Struct("=I")
_U64 = struct.Struct("=Q")


def u16(buf: bytes, span: tuple[int, int]) -> int:
    data, off = padded(buf, span[0], span[1], 2)
    return int(_U16.unpack_from(data, off)[0])


def u32(buf: bytes, span: tuple[int, int]) -> int:
    data, off = padded(buf, span[0], span[1], 4)
    return int(_U32.unpack_from(data, off)[0])


def u64(buf: bytes, span: tuple[int, int]) -> int:
    data, off = padded(buf, span[0], span[1], 8)
    return int(_U64.unpack_from(data, off)[0])


def sf_value(buf: bytes, span: tuple[int, int], kind: int) -> int:
    if kind in _SF_U64:
        return u64(buf, span)
    if kind in _SF_U8:
        return buf[span[0]] if span[1] > span[0] else 0
    return u32(buf, span)


#: INET_DIAG attribute type -> the decoder of its payload (the record's typed views)
DECODERS = {
    abi.INET_DIAG_INFO: decode_tcp_info,
    abi.INET_DIAG_SKMEMINFO: decode_skmeminfo,
    abi.INET_DIAG_MEMINFO: decode_meminfo,
    abi.INET_DIAG_VEGASINFO: decode_vegas,
    abi.INET_DIAG_DCTCPINFO: decode_dctcp,
    abi.INET_DIAG_BBRINFO: decode_bbr,
    abi.INET_DIAG_MD5SIG: decode_md5sig,
    abi.INET_DIAG_ULP_INFO: decode_ulp,
}
