"""TCP internal information (``-m`` and ``-i``): the text of tcp_info and its kin.

The printers are ports of ss.c's ``print_skmeminfo``, ``tcp_show_info`` and
``tcp_stats_print`` (iproute2 7.1), with the congestion-control blocks (vegas, dctcp,
bbr) and the /proc form of a TCP row. The TCP path is the hot one (``ss -tani`` over
100,000 sockets): it unpacks ``struct tcp_info`` with one precompiled
:class:`struct.Struct` call and tests the fields as locals, in ss's order. The rarer
parts are modules of their own, imported at their first row: md5 keys and the ULP
(TLS, MPTCP subflow) in :mod:`sockscope.tables.inet.tcpext`, the MPTCP and SCTP
blocks in :mod:`sockscope.tables.inet.protoinfo`.
"""

from __future__ import annotations

import struct

from sockscope.kernel import abi
from sockscope.kernel.netlink import through
from sockscope.kernel.structs import (
    INET_DIAG_MEMINFO,
    LITTLE,
    SK_MEMINFO,
    TCP_BBR_INFO,
    TCP_DCTCP_INFO,
    TCPVEGAS_INFO,
    Spans,
    cstr,
    padded,
)
from sockscope.tables.inet.layout import BUF, PROC_EXTRA, PROTOCOL, RETRANS, STATE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from sockscope.tables.inet.record import InetSocket
    from sockscope.tables.inet.row import InetRows


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
    data, off = through(buf, span[0], 16)  # read through, as ss does
    return " mem:(r%u,w%u,f%u,t%u)" % INET_DIAG_MEMINFO.unpack_from(data, off)


# --- the inet block --------------------------------------------------------------------


def info_block(p: InetRows, s: InetSocket, attrs: Spans) -> str:
    """The text after ``\\n\\t`` for -m/-i on an inet row (the show_info of its protocol)."""
    return bind_info_block(p)(s, attrs)


def bind_info_block(p: InetRows) -> Callable[[InetSocket, Spans], str]:
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
    stats = text_of(p).stats

    def block(s: InetSocket, attrs: Spans) -> str:
        buf = s[BUF]
        span = attrs.get(skmem_id)
        if span is None:
            out = _mem_text(buf, attrs)
        elif span[1] - span[0] >= 36:
            out = " skmem:(r%u,rb%u,t%u,tb%u,f%u,w%u,o%u,bl%u,d%u)" % skmem_unpack(buf, span[0])
        else:
            out = skmem_text(buf, span[0], span[1])
        proto = s[PROTOCOL]
        # (the rarer printers are imported at their first row: off -tani's start-up)
        if proto == sctp:
            from sockscope.tables.inet.protoinfo import sctp_show_info

            return out + sctp_show_info(p, buf, attrs)
        span = attrs.get(info_id)
        if proto == mptcp:
            if span is None:
                return out
            from sockscope.tables.inet.protoinfo import mptcp_stats

            return out + mptcp_stats(buf, span[0], span[1])
        if span is not None:
            out += stats(s[STATE], buf, span[0], span[1], attrs, show_options, numeric)
        if md5_id in attrs or ulp_id in attrs:
            from sockscope.tables.inet.tcpext import md5sig_text, ulp_text

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
#: the most entries a memo table of :class:`TcpText` keeps (a long-running mode keeps
#: its printer, and rates and rtts take many values)
_CACHE_MAX = 1 << 16
#: rates below this (in bytes/s) times 8 are exact in a double: ``%.0f`` is the integer
_EXACT = 1 << 50


def _tcp_format(formats: dict[int, str], key: int) -> str:
    fmt = "".join(item for bit, item in enumerate(_TCP_ITEMS) if key >> bit & 1)
    if len(formats) < _CACHE_MAX:
        formats[key] = fmt
    return fmt


def _ms(memo: dict[int, str], usec: int) -> str:
    """``%g`` of a count of microseconds in milliseconds (rto, rtt, ato, minrtt ...)."""
    text = memo.get(usec)
    if text is None:
        text = "%g" % (usec / 1000)
        if len(memo) < _CACHE_MAX:
            memo[usec] = text
    return text


def _gain(memo: dict[int, str], value: int) -> str:
    """``%g`` of a bbr gain (a 8.8 fixed-point factor)."""
    text = memo.get(value)
    if text is None:
        text = "%g" % (value / 256.0)
        if len(memo) < _CACHE_MAX:
            memo[value] = text
    return text


def _rate(memo: dict[int, str], value: int, numeric: bool) -> object:
    """A rate of ``value`` bytes/s as ss prints it in bit/s (``%.0f`` or sprint_bw);
    ``memo`` holds the sprint_bw texts (without -n)."""
    if numeric:
        return value * 8 if value < _EXACT else "%.0f" % (value * 8.0)
    text = memo.get(value)
    if text is None:
        text = sprint_bw(value * 8.0, False)
        if len(memo) < _CACHE_MAX:
            memo[value] = text
    return text


def _send(memo: dict[int, str], cwnd_mss: int, rtt: int, numeric: bool) -> str:
    """The ``send`` rate; ``memo`` is keyed by (cwnd * mss) << 32 | rtt, one per -n."""
    key = cwnd_mss << 32 | rtt
    text = memo.get(key)
    if text is None:
        rate = cwnd_mss * 8000000.0 / rtt
        text = "%.0f" % rate if numeric else sprint_bw(rate, False)
        if len(memo) < _CACHE_MAX:
            memo[key] = text
    return text


def _opt_names(options: int) -> str:
    """The TCPI_OPT_* words of tcp_stats_print (7.1 order: usec_ts right after ts)."""
    out = ""
    for bit, name in ((1, " ts"), (64, " usec_ts"), (2, " sack"), (8, " ecn"), (16, " ecnseen")):
        if options & bit:
            out += name
    return out + (" fastopen" if options & 32 else "")


_OPT_NAMES = tuple(_opt_names(i) for i in range(256))
_WSCALE = tuple(((w & 15, w >> 4) if LITTLE else (w >> 4, w & 15)) for w in range(256))
_APP_LIMITED = 1 if LITTLE else 0x80
_U64_MAX = 0xFFFFFFFFFFFFFFFF

#: the fields of struct tcp_info that tcp_stats_print reads, up to tcpi_rehash (the
#: others are skipped with pad bytes): one unpack_from makes the locals of TcpText.text
TCP_HOT = struct.Struct("=4x4B4I5II4xII8I3I4Q6IQ3Q2I2Q6I")
TCP_HOT_SIZE = TCP_HOT.size
_HOT_UNPACK = TCP_HOT.unpack_from


def tcp_hot(buf: bytes, start: int, end: int) -> tuple[int, ...]:
    """The :data:`TCP_HOT` fields of a struct tcp_info payload (zero-filled if short)."""
    if end - start >= TCP_HOT_SIZE:
        return _HOT_UNPACK(buf, start)
    return _HOT_UNPACK(bytes(buf[start:end]) + bytes(TCP_HOT_SIZE - (end - start)))


def _text(
    memo: TcpText,
    state: int,
    hot: tuple[int, ...],
    cong: str,
    bbr: tuple[int, ...] | None,
    vegas_rtt: int,
    dctcp: str,
    show_options: bool,
    numeric: bool,
) -> str:
    """tcp_stats_print over the :data:`TCP_HOT` fields and the decoded side attributes,
    as :meth:`TcpText.text` (bound to ``memo``, whose tables it fills).

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
    ms = memo.ms
    bws = memo.bw
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
        put(ms.get(rto) or _ms(ms, rto))
    if backoff:
        key |= 16
        put(backoff)
    if rtt:
        key |= 32
        put(ms.get(rtt) or _ms(ms, rtt))
        put(ms.get(rttvar) or _ms(ms, rttvar))
    if ato:
        key |= 64
        put(ms.get(ato) or _ms(ms, ato))
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
        put(bw * 8 if numeric and bw < _EXACT else _rate(bws, bw, numeric))
        put(ms.get(bbr_rtt) or _ms(ms, bbr_rtt))
        if pacing_gain:
            key |= 1 << 23
            put(memo.gain.get(pacing_gain) or _gain(memo.gain, pacing_gain))
        if cwnd_gain:
            key |= 1 << 24
            put(memo.gain.get(cwnd_gain) or _gain(memo.gain, cwnd_gain))
    send_rtt = vegas_rtt or rtt
    if send_rtt and mss and cwnd:
        key |= 1 << 26
        send = cwnd * mss << 32 | send_rtt
        sends = memo.send_n if numeric else memo.send_h
        put(sends.get(send) or _send(sends, cwnd * mss, send_rtt, numeric))
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
        put(pacing * 8 if numeric and pacing < _EXACT else _rate(bws, pacing, numeric))
        if max_pacing and max_pacing != _U64_MAX:
            key |= 1 << 31
            put(_rate(bws, max_pacing, numeric))
    if delivery_rate:
        key |= 1 << 32
        rate = delivery_rate
        put(rate * 8 if numeric and rate < _EXACT else _rate(bws, rate, numeric))
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
        put(ms.get(rcv_rtt) or _ms(ms, rcv_rtt))
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
        put(ms.get(min_rtt) or _ms(ms, min_rtt))
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
    fmt = memo.formats.get(key)
    if fmt is None:
        fmt = _tcp_format(memo.formats, key)
    return fmt % tuple(vals)


class TcpText:
    """tcp_stats_print's text, with the memo tables of one run (on its :class:`InetRows`).

    The tables map a value to its C-formatted text (pure functions), bounded in size.
    They exist because -i formats the same few values ~25 times per socket at 100,000
    sockets; they live with the run's printer, not the module, so that the threads of
    an exporter and the snapshots of separate runs share nothing.
    """

    __slots__ = ("bw", "cong", "formats", "gain", "ms", "send_h", "send_n")

    def __init__(self) -> None:
        #: a bitmask of the items present -> their formats joined
        self.formats: dict[int, str] = {}
        #: microseconds -> ``%g`` in milliseconds
        self.ms: dict[int, str] = {}
        #: bbr gain (8.8 fixed point) -> ``%g``
        self.gain: dict[int, str] = {}
        #: a rate in bytes/s -> sprint_bw of it in bit/s (without -n)
        self.bw: dict[int, str] = {}
        #: the ``send`` rate, keyed by (cwnd * mss) << 32 | rtt: with -n, and without
        self.send_n: dict[int, str] = {}
        self.send_h: dict[int, str] = {}
        #: INET_DIAG_CONG's first 15 bytes -> the name ss prints
        self.cong: dict[bytes, str] = {}

    def cong_name(self, raw: bytes) -> str:
        """INET_DIAG_CONG's text as ss prints it (``%s`` of a 16-byte buffer: 15 chars)."""
        cong = self.cong.get(raw)
        if cong is None:
            cong = cstr(raw, 0, len(raw))[:15]
            if len(self.cong) < _CACHE_MAX:
                self.cong[raw] = cong
        return cong

    def stats(
        self,
        state: int,
        buf: bytes,
        start: int,
        end: int,
        attrs: Spans,
        show_options: bool,
        numeric: bool,
    ) -> str:
        """tcp_show_info's struct tcp_info part + tcp_stats_print (7.1's items and order)."""
        span = attrs.get(abi.INET_DIAG_CONG)
        # strncpy(cong_alg, RTA_DATA, 15): a name without its NUL is read through the buffer
        cong = "" if span is None else self.cong_name(bytes(buf[span[0] : span[0] + 15]))
        vegas_rtt = 0
        dctcp = ""
        if abi.INET_DIAG_VEGASINFO in attrs or abi.INET_DIAG_DCTCPINFO in attrs:
            vegas_rtt, dctcp = _vegas_dctcp(buf, attrs)
        span = attrs.get(abi.INET_DIAG_BBRINFO)
        bbr = None
        if span is not None:
            if span[1] - span[0] >= 20:
                bbr = TCP_BBR_INFO.unpack_from(buf, span[0])
            else:
                bbr = TCP_BBR_INFO.unpack_from(*padded(buf, span[0], span[1], 20))
        return _text(
            self,
            state,
            tcp_hot(buf, start, end),
            cong,
            bbr,
            vegas_rtt,
            dctcp,
            show_options,
            numeric,
        )

    #: tcp_stats_print over the :data:`TCP_HOT` fields and the decoded side attributes
    text = _text


def text_of(p: InetRows) -> TcpText:
    """The :class:`TcpText` of the run ``p`` prints (made on first use)."""
    texts = p.tcp_texts
    if texts is None:
        texts = p.tcp_texts = TcpText()
    return texts


def _vegas_dctcp(buf: bytes, attrs: Spans) -> tuple[int, str]:
    """VEGASINFO (the rtt ``send`` uses, 0 if none) and the dctcp item of tcp_stats_print."""
    rtt = 0
    out = ""
    span = attrs.get(abi.INET_DIAG_VEGASINFO)
    if span is not None:
        data, off = through(buf, span[0], 16)  # RTA_DATA, read through
        enabled, _cnt, vrtt, _min = TCPVEGAS_INFO.unpack_from(data, off)
        if enabled and vrtt and vrtt != 0x7FFFFFFF:
            rtt = vrtt
    span = attrs.get(abi.INET_DIAG_DCTCPINFO)
    if span is not None:
        data, off = through(buf, span[0], TCP_DCTCP_INFO.size)  # RTA_DATA, read through
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


def proc_info(p: InetRows, s: InetSocket) -> str:
    """tcp_stats_print for a /proc TCP row (tcp_show_line): the few fields /proc has.

    Everything ss does not parse from /proc stays zero, so ``reordering`` (0, not 3)
    is always printed.
    """
    extra = s[PROC_EXTRA:]
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
    if s[RETRANS]:  # the record's retrans: /proc's retransmits (timer on) or probes
        out += " retrans:%u/0" % (s[RETRANS] & 0xFFFFFFFF)
    return out + " reordering:0"


__all__ = [
    "bind_info_block",
    "c_g",
    "info_block",
    "proc_info",
    "skmem_text",
    "sprint_bw",
    "text_of",
]
