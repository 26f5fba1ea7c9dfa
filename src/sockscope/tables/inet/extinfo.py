"""The extra-information cell of inet rows: ``-o -e --tos --cgroup --inet-sockopt -m -i``.

Ports of ss.c's ``tcp_timer_print``, ``print_ms_timer``, ``sock_details_print`` and the
option blocks of ``inet_show_sock`` (iproute2 7.1). Each returns the text ss appends to
the extra-information slot, every item with its leading blank.
"""

from __future__ import annotations

import _struct as struct  # the C module: struct.py only re-exports it (a module less to start)

from sockscope.kernel import abi, netlink
from sockscope.kernel.abi import SOCKOPT_FLAGS, TIMER_NAMES
from sockscope.kernel.netlink import through
from sockscope.tables.inet.layout import (
    ATTR_END,
    ATTR_START,
    BUF,
    COOKIE_HI,
    COOKIE_LO,
    EXPIRES,
    FAMILY,
    INODE,
    PROC_EXTRA,
    PROC_OPT,
    PROTOCOL,
    RETRANS,
    STATE,
    TIMER,
    UID,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from sockscope.tables.inet.record import InetSocket
    from sockscope.tables.inet.row import InetRows

_SCTP_STATES = abi.SCTP_STATE_NAMES
_U8 = struct.Struct("=B")
_U32 = struct.Struct("=I")
_U64 = struct.Struct("=Q")


def ms_timer(ms: int) -> str:
    """Port of ss.c:print_ms_timer (7.1: ``1.396sec``, ``003ms``, ``1min21sec``)."""
    secs, msecs = divmod(ms, 1000)
    minutes, secs = divmod(secs, 60)
    out = ""
    if minutes:
        msecs = 0
        out = "%dmin" % minutes
        if minutes > 9:
            secs = 0
    if secs:
        if secs > 9:
            msecs = 0
        out += "%d%s" % (secs, "." if msecs else "sec")
    if msecs:
        out += "%03d%s" % (msecs, "sec" if secs else "ms")
    return out


def timer_text(timer: int, expires: int, retrans: int, sctp: bool = False) -> str:
    """tcp_timer_print / sctp_timer_print: `` timer:(name,expire,retrans)``."""
    if not timer:
        return ""
    if sctp:
        name = "T3_RTX"
    else:
        name = TIMER_NAMES[timer] if timer < len(TIMER_NAMES) else "unknown"
    return f" timer:({name},{ms_timer(expires)},{retrans})"


def sctp_state_name(sock: InetSocket) -> str:
    """The SCTP association state word drawn after `` `- ``."""
    state = sock[STATE]
    return _SCTP_STATES[state] if state < len(_SCTP_STATES) else "UNDEF"


def details(p: InetRows, uid: int, inode: int, cookie: int, mark: int, cgroup_id: int) -> str:
    """Port of ss.c:sock_details_print."""
    out = f" uid:{uid}" if uid else ""
    out += f" ino:{inode} sk:{cookie:x}"
    if mark:
        out += f" fwmark:0x{mark:x}"
    if cgroup_id:
        out += " cgroup:" + p.cgroups().path(cgroup_id)
    return out


def _hash_x(value: int) -> str:
    """C's ``%#x``: ``0`` for zero, ``0x..`` otherwise."""
    return "%#x" % value if value else "0"


def inet(p: InetRows, s: InetSocket, v6only: bool) -> str:
    """The extra-information text of one inet row (inet_show_sock after the address)."""
    row = p.ext_row
    if row is None:
        # made once per printer (its options do not change during a run)
        row = p.ext_row = _bind(p)
    return row(s, v6only)


#: attribute types the -i/-m text of a TCP row reads besides INFO, CONG, BBRINFO and
#: SKMEMINFO (the ones the fast path decodes): a layout with one of them, or with the
#: old MEMINFO but no SKMEMINFO, is left to the general path, as are the options that
#: read other attributes (--tos, --cgroup, --inet-sockopt)
_SLOW_TYPES = frozenset(
    {
        abi.INET_DIAG_VEGASINFO,
        abi.INET_DIAG_DCTCPINFO,
        abi.INET_DIAG_MD5SIG,
        abi.INET_DIAG_ULP_INFO,
    }
)
#: the most layouts (one per attribute-block length) a run remembers
_MAX_LAYOUTS = 256
#: a layout: (unpack_from of its rtattr headers, their values, then the offsets in the
#: block of the SKMEMINFO, INFO, CONG (start, end), BBRINFO, MARK, CGROUP_ID,
#: SKV6ONLY and SHUTDOWN payloads, or None; MARK and CGROUP_ID None if short)
_Plan = tuple[
    "Callable[[bytes, int], tuple[int, ...]]",
    tuple[int, ...],
    "int | None",
    "int | None",
    "int | None",
    "int | None",
    "int | None",
    "int | None",
    "int | None",
    "int | None",
    "int | None",
]


def _bind(p: InetRows) -> Callable[[InetSocket, bool], str]:
    """Make the row function of a printer: a fast path for the TCP rows of -i/-m/-o/-e.

    A kernel's TCP replies come in a few attribute layouts (which attributes, in which
    order, of which sizes), and the length of the attribute block nearly always tells
    them apart. The first row of each length is parsed in full and its layout kept:
    a :class:`struct.Struct` reading every rtattr header of the block and the offsets
    of the payloads the options read. Later rows of that length check their headers
    with that one call and read the payloads at the kept offsets, without building an
    attribute dictionary. Rows whose headers differ, and layouts the fast path does not
    cover (short structures, vegas, dctcp, md5 keys, ULP, the old MEMINFO), go through
    :func:`_inet`, the general path.
    """
    from sockscope.kernel import structs
    from sockscope.tables.inet import tcpinfo

    opts = p.opts
    generic = _inet
    if not (opts.show_tcpinfo or opts.show_mem) or (
        opts.show_tos or opts.show_cgroup or opts.show_inet_sockopt or opts.bpf_storages
    ):

        def slow(s: InetSocket, v6only: bool) -> str:
            return generic(p, s, v6only)

        return slow

    show_options = bool(opts.show_options)
    show_details = bool(opts.show_details)
    numeric = bool(opts.numeric)
    lead = "" if opts.oneline else "\n\t"
    layouts: dict[int, _Plan | None] = {}
    texts = tcpinfo.text_of(p)
    tcp_text = texts.text
    hot_unpack = tcpinfo.TCP_HOT.unpack_from
    bbr_unpack = structs.TCP_BBR_INFO.unpack_from
    skmem_unpack = structs.SK_MEMINFO.unpack_from
    cong_names = texts.cong
    cong_name = texts.cong_name
    u32 = _U32.unpack_from
    u64 = _U64.unpack_from
    tcp = abi.IPPROTO_TCP
    inet6 = abi.AF_INET6

    def row(s: InetSocket, v6only: bool) -> str:
        buf = s[BUF]
        if buf is None or s[PROTOCOL] != tcp:
            return generic(p, s, v6only)
        off = s[ATTR_START]
        try:
            plan = layouts[s[ATTR_END] - off]
        except KeyError:
            plan = _learn(layouts, buf, off, s[ATTR_END])
        if plan is None:
            return generic(p, s, v6only)
        heads, expect, skmem, info, cong_a, cong_b, bbr, mark, cgid, v6, shut = plan
        if heads(buf, off) != expect:
            return generic(p, s, v6only)
        out = timer_text(s[TIMER], s[EXPIRES], s[RETRANS]) if show_options and s[TIMER] else ""
        if show_details:
            out += details(
                p,
                s[UID],
                s[INODE],
                (s[COOKIE_HI] << 32) | s[COOKIE_LO],
                0 if mark is None else u32(buf, off + mark)[0],
                0 if cgid is None else u64(buf, off + cgid)[0],
            )
            if v6 is not None and s[FAMILY] == inet6:
                out += " v6only:%d" % buf[off + v6]
            if shut is not None:
                mask = buf[off + shut]
                out += " %s-%s" % ("-" if mask & 1 else "<", "-" if mask & 2 else ">")
        out += lead
        if skmem is not None:
            out += " skmem:(r%u,rb%u,t%u,tb%u,f%u,w%u,o%u,bl%u,d%u)" % skmem_unpack(
                buf, off + skmem
            )
        if info is None:
            return out
        if cong_a is None or cong_b is None:
            cong = ""
        else:
            raw = buf[off + cong_a : off + cong_a + 15]  # strncpy(.., 15): read through
            cong = cong_names.get(raw) or cong_name(raw)
        return out + tcp_text(
            s[STATE],
            hot_unpack(buf, off + info),
            cong,
            None if bbr is None else bbr_unpack(buf, off + bbr),
            0,
            "",
            show_options,
            numeric,
        )

    return row


#: attributes parse_diag_msg indexes without masking the flag bits
_EXACT_TYPES = (abi.INET_DIAG_MARK, abi.INET_DIAG_CGROUP_ID)


def _learn(layouts: dict[int, _Plan | None], buf: bytes, off: int, end: int) -> _Plan | None:
    """Parse an attribute block as netlink.attrs does, keep and return its layout."""
    from sockscope.tables.inet import tcpinfo

    heads: list[int] = []
    spans: dict[int, tuple[int, int]] = {}
    pos = off
    unpack = abi.RTATTR.unpack_from
    plan: _Plan | None = None
    while pos + 4 <= end:
        length, rtype = unpack(buf, pos)
        if length < 4 or pos + length > end:
            break  # a bad header: no layout, netlink.attrs has its own rule for it
        if rtype & abi.SS_TYPE_MASK in _EXACT_TYPES and rtype & abi.NLA_F_NESTED:
            return None  # read by the exact type (parse_diag_msg): the slow path knows how
        heads += (length, rtype)
        rtype &= abi.SS_TYPE_MASK
        if rtype not in spans:
            spans[rtype] = (pos - off + 4, pos - off + length)
        pos += (length + 3) & ~3
    else:
        skmem = spans.get(abi.INET_DIAG_SKMEMINFO)
        info = spans.get(abi.INET_DIAG_INFO)
        bbr = spans.get(abi.INET_DIAG_BBRINFO)
        cong = spans.get(abi.INET_DIAG_CONG)
        mark = spans.get(abi.INET_DIAG_MARK)
        cgid = spans.get(abi.INET_DIAG_CGROUP_ID)
        v6 = spans.get(abi.INET_DIAG_SKV6ONLY)
        shut = spans.get(abi.INET_DIAG_SHUTDOWN)
        if (
            spans.keys().isdisjoint(_SLOW_TYPES)
            and (skmem[1] - skmem[0] >= 36 if skmem else abi.INET_DIAG_MEMINFO not in spans)
            and (info is None or info[1] - info[0] >= tcpinfo.TCP_HOT_SIZE)
            and (bbr is None or bbr[1] - bbr[0] >= 20)
            and (mark is None or mark[1] - mark[0] >= 4)
            and (cgid is None or cgid[1] - cgid[0] >= 8)
        ):
            # each rtattr header read as one u32 (rta_len and rta_type together)
            fmt = "="
            last = rel = 0
            for length in heads[::2]:
                fmt += "%dxI" % (rel - last) if rel > last else "I"
                last = rel + 4
                rel += (length + 3) & ~3
            check = struct.Struct(fmt).unpack_from
            plan = (
                check,
                check(buf, off),
                None if skmem is None else skmem[0],
                None if info is None else info[0],
                None if cong is None else cong[0],
                None if cong is None else cong[1],
                None if bbr is None else bbr[0],
                mark[0] if mark and mark[1] - mark[0] >= 4 else None,
                cgid[0] if cgid and cgid[1] - cgid[0] >= 8 else None,
                None if v6 is None else v6[0],
                None if shut is None else shut[0],
            )
    if len(layouts) < _MAX_LAYOUTS:
        layouts[end - off] = plan
    return plan


def _inet(p: InetRows, s: InetSocket, v6only: bool) -> str:
    """The extra-information text of one inet row (inet_show_sock after the address)."""
    opts = p.opts
    buf = s[BUF]
    if buf is None:
        return _proc_inet(p, s)
    attrs = netlink.attrs(buf, s[ATTR_START], s[ATTR_END])
    out = []
    proto = s[PROTOCOL]
    if opts.show_options:
        out.append(timer_text(s[TIMER], s[EXPIRES], s[RETRANS], proto == abi.IPPROTO_SCTP))
    if opts.show_details:
        # read as parse_diag_msg reads them: by their exact type
        a, b = s[ATTR_START], s[ATTR_END]
        mark = _u32(buf, netlink.exact(buf, attrs, a, b, abi.INET_DIAG_MARK))
        cg = _u64(buf, netlink.exact(buf, attrs, a, b, abi.INET_DIAG_CGROUP_ID))
        out.append(details(p, s[UID], s[INODE], (s[COOKIE_HI] << 32) | s[COOKIE_LO], mark, cg))
        span = attrs.get(abi.INET_DIAG_SKV6ONLY)
        if s[FAMILY] == abi.AF_INET6 and span:
            out.append(f" v6only:{buf[span[0]]}")
        span = attrs.get(abi.INET_DIAG_SHUTDOWN)
        if span:
            mask = buf[span[0]]
            out.append(" %s-%s" % ("-" if mask & 1 else "<", "-" if mask & 2 else ">"))
    if opts.show_tos:
        span = attrs.get(abi.INET_DIAG_TOS)
        if span:
            out.append(" tos:" + _hash_x(buf[span[0]]))
        span = attrs.get(abi.INET_DIAG_TCLASS)
        if span:
            out.append(" tclass:" + _hash_x(buf[span[0]]))
        span = attrs.get(abi.INET_DIAG_CLASS_ID)
        if span:
            out.append(" class_id:" + _hash_x(_u32(buf, span)))
    if opts.show_cgroup:
        span = attrs.get(abi.INET_DIAG_CGROUP_ID)
        if span:
            out.append(" cgroup:" + p.cgroups().path(_u64(buf, span)))
    if opts.show_inet_sockopt:
        span = attrs.get(abi.INET_DIAG_SOCKOPT)
        if span and span[1] - span[0] >= 2:
            bits = int.from_bytes(buf[span[0] : span[0] + 2], "little")
            out.append(" inet-sockopt: (" if opts.oneline else "\n\tinet-sockopt: (")
            out.extend(" " + name for i, name in enumerate(SOCKOPT_FLAGS) if bits >> i & 1)
            out.append(")")
    if opts.show_mem or (opts.show_tcpinfo and proto != abi.IPPROTO_UDP):
        if not opts.oneline:
            out.append("\n\t")
        out.append(p.info_block(s, attrs))
    storages = opts.bpf_storages
    if storages is not None:
        span = attrs.get(abi.INET_DIAG_SK_BPF_STORAGES)
        if span is not None:
            text = storages.text(buf, span[0], span[1], opts.oneline, p.p.warn)  # type: ignore[attr-defined]
            # (a text longer than ss's 65,535-byte field is cut by the renderer)
            out.append(text)
    return "".join(out)


def _proc_inet(p: InetRows, s: InetSocket) -> str:
    """What tcp_show_line/dgram_show_line print after the address for /proc rows."""
    opts = p.opts
    if s[PROTOCOL] != abi.IPPROTO_TCP:
        return ""  # dgram_show_line: a scanf count bug drops every extra item
    out = []
    extra = s[PROC_EXTRA:]
    if opts.show_options:
        out.append(timer_text(s[TIMER], s[EXPIRES], s[RETRANS]))
    if opts.show_details:
        out.append(details(p, s[UID], s[INODE], (s[COOKIE_HI] << 32) | s[COOKIE_LO], 0, 0))
        if extra and s[PROC_OPT]:
            out.append(f' opt:"{s[PROC_OPT]}"')
    if opts.show_tcpinfo:
        out.append(p.proc_tcp_info(s))
    return "".join(out)


def _u32(buf: bytes, span: tuple[int, int] | None) -> int:
    """rta_getattr_u32: read through a short payload, as ss does."""
    if not span:
        return 0
    return int(_U32.unpack_from(*through(buf, span[0], 4))[0])


def _u64(buf: bytes, span: tuple[int, int] | None) -> int:
    if not span:
        return 0
    return int(_U64.unpack_from(*through(buf, span[0], 8))[0])
