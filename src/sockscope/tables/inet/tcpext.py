"""The TCP attributes past tcp_info in the -i text: md5 keys and the upper-layer protocol.

Ports of ss.c's ``print_md5sig`` (INET_DIAG_MD5SIG, with ss's read-through of damaged
keys: see :func:`md5sig_text`), and of the INET_DIAG_ULP_INFO part of ``tcp_show_info``:
``tcp_tls_*`` (kTLS) and ``mptcp_subflow_info`` (iproute2 7.1). Rare attributes (root
only, or a ULP set on the socket): imported by :mod:`sockscope.tables.inet.tcpinfo` at
their first row, off the start-up of ``-tani``.
"""

from __future__ import annotations

from sockscope.kernel import abi
from sockscope.kernel.netlink import through
from sockscope.kernel.structs import (
    SF_MAX,
    TCP_DIAG_MD5SIG,
    TLS_INFO_MAX,
    Spans,
    cstr,
    nested,
    sf_value,
    u16,
    u32,
    u64,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from sockscope.tables.inet.row import InetRows

#: isprint() in the C locale, minus the backslash and ss's escape set (" ,")
_KEY_ESCAPE = tuple(
    chr(c) if 0x20 < c < 0x7F and c not in (0x5C, 0x2C) else "\\%03o" % c for c in range(256)
)


#: ss's smallest message buffer, counted from the message's start where a recorded dump's
#: record begins (tcp_show_netlink_file's 16 KiB on its stack; a live dump's is 32 KiB or
#: more, from the datagram's start)
_SS_BUFFER = 16384


def md5sig_text(p: InetRows, buf: bytes, start: int, end: int) -> str:
    """`` md5keys:`` + print_md5sig of each struct tcp_diag_md5sig, joined by ``,``."""
    size = TCP_DIAG_MD5SIG.size
    parts = []
    off = start
    while True:
        # each struct is read whole, through the payload's end (RTA_PAYLOAD is not checked)
        fam, plen, klen, addr, _key = TCP_DIAG_MD5SIG.unpack_from(*through(buf, off, size))
        if fam == abi.AF_INET:
            host = p.resolver.host(fam, addr[:4])
        elif fam == abi.AF_INET6:
            host = p.resolver.host(fam, addr)
        else:
            host = "???"
        # ss prints tcpm_keylen bytes from tcpm_key (past the array if keylen > 80), into
        # the bytes that follow in its buffer; none past that buffer's end (where ss reads
        # its stack: garbage, or a crash for the longest keys)
        klen = max(0, min(klen, max(len(buf), _SS_BUFFER) - (off + 20)))
        data, at = through(buf, off + 20, klen)
        raw = bytes(data[at : at + klen])
        parts.append("%s/%d=%s" % (host, plen, "".join(_KEY_ESCAPE[b] for b in raw)))
        off += size
        if end - off <= 0:
            break
    return " md5keys:" + ",".join(parts)


_TLS_VERSIONS = {0x0303: " version: 1.2", 0x0304: " version: 1.3"}
_TLS_CIPHERS = {51: " cipher: aes-gcm-128", 52: " cipher: aes-gcm-256"}
_TLS_CONF = {1: "none", 2: "sw", 3: "hw", 4: "hw-record"}
_SF_FLAGS = "MmJjBbecv"
#: the sequence numbers mptcp_subflow_info prints after the tokens, in its order
_SF_COUNTERS = (
    (abi.MPTCP_SUBFLOW_ATTR_MAP_SEQ, " seq:%u"),
    (abi.MPTCP_SUBFLOW_ATTR_MAP_SFSEQ, " sfseq:%u"),
    (abi.MPTCP_SUBFLOW_ATTR_SSN_OFFSET, " ssnoff:%u"),
    (abi.MPTCP_SUBFLOW_ATTR_MAP_DATALEN, " maplen:%u"),
)


def ulp_text(buf: bytes, start: int, end: int) -> str:
    """The INET_DIAG_ULP_INFO part of tcp_show_info: name, then TLS or MPTCP subflow."""
    ulp = nested(buf, start, end, abi.INET_ULP_INFO_MPTCP)
    out = ""
    span = ulp.get(abi.INET_ULP_INFO_NAME)
    if span is not None:
        # rta_getattr_str: up to the first NUL, not the attribute's end; a damaged name
        # reads on through what follows in ss's buffer (``buf`` holds that much of it)
        out += " tcp-ulp-" + cstr(buf, span[0], len(buf))
    span = ulp.get(abi.INET_ULP_INFO_TLS)
    if span is not None:
        out += _tls_text(buf, nested(buf, span[0], span[1], TLS_INFO_MAX))
    span = ulp.get(abi.INET_ULP_INFO_MPTCP)
    if span is not None:
        out += _subflow_text(buf, nested(buf, span[0], span[1], SF_MAX))
    return out


def _tls_text(buf: bytes, tls: Spans) -> str:
    """tcp_tls_version, tcp_tls_cipher, tcp_tls_conf (rx, tx), zc_ro_tx, no_pad_rx."""
    out = ""
    span = tls.get(abi.TLS_INFO_VERSION)
    if span is not None:
        val = u16(buf, span)
        out += _TLS_VERSIONS.get(val) or " version: unknown(%u)" % val
    span = tls.get(abi.TLS_INFO_CIPHER)
    if span is not None:
        out += _TLS_CIPHERS.get(u16(buf, span), "")
    for name, kind in (("rxconf", abi.TLS_INFO_RXCONF), ("txconf", abi.TLS_INFO_TXCONF)):
        span = tls.get(kind)
        if span is not None:
            val = u16(buf, span)
            out += " %s: %s" % (name, _TLS_CONF.get(val) or "unknown(%u)" % val)
    if abi.TLS_INFO_ZC_RO_TX in tls:
        out += " zc_ro_tx"
    if abi.TLS_INFO_RX_NO_PAD in tls:
        out += " no_pad_rx"
    return out


def _subflow_text(buf: bytes, sf: Spans) -> str:
    """Port of ss.c:mptcp_subflow_info (7.1: decimal seq/sfseq/ssnoff/maplen)."""
    out = ""
    span = sf.get(abi.MPTCP_SUBFLOW_ATTR_FLAGS)
    if span is not None:
        flags = u32(buf, span)
        if flags:
            out += " flags:" + "".join(c for i, c in enumerate(_SF_FLAGS) if flags >> i & 1)
    rem, loc = abi.MPTCP_SUBFLOW_ATTR_TOKEN_REM, abi.MPTCP_SUBFLOW_ATTR_TOKEN_LOC
    id_rem, id_loc = abi.MPTCP_SUBFLOW_ATTR_ID_REM, abi.MPTCP_SUBFLOW_ATTR_ID_LOC
    if rem in sf and loc in sf and id_rem in sf and id_loc in sf:
        out += " token:%04x(id:%u)/%04x(id:%u)" % (
            u32(buf, sf[rem]),
            sf_value(buf, sf[id_rem], id_rem),
            u32(buf, sf[loc]),
            sf_value(buf, sf[id_loc], id_loc),
        )
    for kind, fmt in _SF_COUNTERS:
        span = sf.get(kind)
        if span is not None:
            out += fmt % (
                u64(buf, span) if kind == abi.MPTCP_SUBFLOW_ATTR_MAP_SEQ else u32(buf, span)
            )
    return out


__all__ = ["md5sig_text", "ulp_text"]
