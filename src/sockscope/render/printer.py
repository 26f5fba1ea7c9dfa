"""Socket records to row cells, as ss's printers lay them out.

One :class:`Printer` per run holds the options, the name caches and which columns are
enabled; its ``*_row`` methods turn one record into the tuple of cells the column
engine (:mod:`sockscope.columns`) takes. The extra-information text (``-o -e -m -i``
...) comes from :mod:`sockscope.extinfo`. Ports of ``sock_state_print``,
``inet_addr_print``, ``sock_addr_print`` and ``proc_ctx_print`` (iproute2 7.1).
"""

from __future__ import annotations

from operator import itemgetter

from sockscope.kernel import abi

from sockscope.tables.inet import extinfo
from sockscope.render.columns import COL_EXT, COL_NETID, COL_PROC, COL_RECVQ, COL_SENDQ, COL_STATE
from sockscope.tables.inet.record import PROTO_NAMES, SWAP16

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from sockscope.render.names import Resolver
    from sockscope.options import Options
    from sockscope.tables.inet.record import InetSocket

#: What ss 7.1 prints for idiag_state 14..255: sock_state_print indexes past its 14-entry
#: sstate_name[] into the static arrays the compiler put after it (sstate_namel[],
#: long_opts[] names and their NULL fields as "(null)", stype_nameg[],
#: sctp_sstate_name[], ...), read from the upstream 7.1 binary (x86-64). None: there ss
#: dereferences a small integer and crashes; a correct ss says UNKNOWN (QUIRKS.md).
_PAST_SSTATE_NAME: tuple[str | None, ...] = (
    "(null)",
    "(null)",
    "UNKNOWN",
    "established",
    "syn-sent",
    "syn-recv",
    "fin-wait-1",
    "fin-wait-2",
    "time-wait",
    "unconnected",
    "close-wait",
    "last-ack",
    "listening",
    "closing",
    "new-syn-recv",
    "bound-inactive",
    "(null)",
    "(null)",
    "numeric",
    "(null)",
    "(null)",
    None,
    "resolve",
    "(null)",
    "(null)",
    None,
    "options",
    "(null)",
    "(null)",
    None,
    "extended",
    "(null)",
    "(null)",
    None,
    "memory",
    "(null)",
    "(null)",
    None,
    "info",
    "(null)",
    "(null)",
    None,
    "processes",
    "(null)",
    "(null)",
    None,
    "threads",
    "(null)",
    "(null)",
    None,
    "bpf",
    "(null)",
    "(null)",
    None,
    "events",
    "(null)",
    "(null)",
    None,
    "dccp",
    "(null)",
    "(null)",
    None,
    "tcp",
    "(null)",
    "(null)",
    None,
    "sctp",
    "(null)",
    "(null)",
    None,
    "udp",
    "(null)",
    "(null)",
    None,
    "raw",
    "(null)",
    "(null)",
    None,
    "unix",
    "(null)",
    "(null)",
    None,
    "tipc",
    "(null)",
    "(null)",
    None,
    "vsock",
    "(null)",
    "(null)",
    None,
    "all",
    "(null)",
    "(null)",
    None,
    "listening",
    "(null)",
    "(null)",
    None,
    "bound-inactive",
    "(null)",
    "(null)",
    None,
    "ipv4",
    "(null)",
    "(null)",
    None,
    "ipv6",
    "(null)",
    "(null)",
    None,
    "packet",
    "(null)",
    "(null)",
    None,
    "family",
    None,
    "(null)",
    None,
    "socket",
    None,
    "(null)",
    None,
    "query",
    None,
    "(null)",
    None,
    "summary",
    "(null)",
    "(null)",
    None,
    "diag",
    None,
    "(null)",
    None,
    "filter",
    None,
    "(null)",
    None,
    "version",
    "(null)",
    "(null)",
    None,
    "help",
    "(null)",
    "(null)",
    None,
    "context",
    "(null)",
    "(null)",
    None,
    "contexts",
    "(null)",
    "(null)",
    None,
    "net",
    None,
    "(null)",
    None,
    "tipcinfo",
    "(null)",
    "(null)",
    None,
    "tos",
    "(null)",
    "(null)",
    None,
    "cgroup",
    "(null)",
    "(null)",
    None,
    "kill",
    "(null)",
    "(null)",
    None,
    "no-header",
    "(null)",
    "(null)",
    None,
    "no-queues",
    "(null)",
    "(null)",
    None,
    "xdp",
    "(null)",
    "(null)",
    None,
    "mptcp",
    "(null)",
    "(null)",
    None,
    "oneline",
    "(null)",
    "(null)",
    None,
    "inet-sockopt",
    "(null)",
    "(null)",
    None,
    "bpf-maps",
    "(null)",
    "(null)",
    None,
    "bpf-map-id",
    None,
    "(null)",
    None,
    "(null)",
    "(null)",
    "(null)",
    "(null)",
    "UNKNOWN",
    "STREAM",
    "DGRAM",
    "(null)",
    "RDM",
    "SEQPACKET",
    "(null)",
    "(null)",
    "CLOSED",
    "COOKIE_WAIT",
    "COOKIE_ECHOED",
    "ESTAB",
    "SHUTDOWN_PENDING",
    "SHUTDOWN_SENT",
    "SHUTDOWN_RECEIVED",
    "ACK_SENT",
    "false",
    "true",
    "0",
    "1",
    "disable",
    "enable",
    "off",
    "on",
    None,
    "loop",
    None,
    "pup",
    None,
    "pupat",
    None,
    "ip",
)
#: sstate_name[] of ss.c, extended to the 256 values of idiag_state as above
_STATES = abi.STATE_NAMES + tuple("UNKNOWN" if v is None else v for v in _PAST_SSTATE_NAME)
_AF_INET = abi.AF_INET
_AF_INET6 = abi.AF_INET6
_IPPROTO_SCTP = abi.IPPROTO_SCTP


class Printer:
    """Per-run state of the row printers."""

    def __init__(
        self,
        opts: Options,
        resolver: Resolver,
        enabled: tuple[int, ...],
        users: Callable[[int], str] | None = None,
    ) -> None:
        self.opts = opts
        self.resolver = resolver
        self.enabled = enabled
        self.show_netid = COL_NETID in enabled
        self.show_state = COL_STATE in enabled
        self.show_queues = COL_RECVQ in enabled and COL_SENDQ in enabled
        self.show_proc = COL_PROC in enabled
        self.users = users
        #: dg_proto of ss.c: the protocol name used for service lookups ("tcp", "udp",
        #: "raw"), kept from one table to the next as ss does (mptcp/dccp/sctp inherit)
        self.dg_proto: str | None = None
        #: inode of the previous inet row, to draw SCTP associations (sctp_ino)
        self.sctp_ino = 0
        self._addr_memo: dict[tuple[int, bytes, bool, int], str] = {}
        self._port_memo: dict[int, str] = {}
        self._port_be: dict[int, str] = {}
        self._addr4: dict[bytes, str] = {}
        self._addr6: dict[bytes, str] = {}
        self._pick = itemgetter(*enabled) if len(enabled) > 1 else lambda t: (t[COL_EXT],)
        self._q_memo: dict[int, str] = {}
        self.ext_wanted = extinfo.inet_wanted(opts)
        #: where non-fatal messages go (ss prints them on stderr while dumping)
        self.warn: Callable[[str], None] = lambda _msg: None
        self._cgroups: extinfo.CgroupMap | None = None
        #: the extra-information function of this run's rows (made by extinfo.inet)
        self.ext_row: Callable[[InetSocket, bool], str] | None = None

    def cgroups(self) -> extinfo.CgroupMap:
        """The cgroup id -> path map, built on first use (cg_id_to_path)."""
        if self._cgroups is None:
            self._cgroups = extinfo.CgroupMap(self.warn)
        return self._cgroups

    def info_block(self, s: InetSocket, attrs: dict[int, tuple[int, int]]) -> str:
        """The -m/-i text after the newline-tab of an inet row."""
        from sockscope.tables.inet import tcpinfo

        # bind once per run: later rows call the closure directly (no per-row import)
        self.info_block = tcpinfo.bind_info_block(self)  # type: ignore[method-assign,assignment]
        return self.info_block(s, attrs)

    def proc_tcp_info(self, s: InetSocket) -> str:
        """-i for a TCP row read from /proc (tcp_stats_print on the /proc fields)."""
        from sockscope.tables.inet import tcpinfo

        return tcpinfo.proc_info(self, s)

    # -- helpers ------------------------------------------------------------------------
    def queue(self, n: int) -> str:
        """``%-6d`` of a queue length (memoised: most are small)."""
        text = self._q_memo.get(n)
        if text is None:
            # the kernel's u32 is printed with %d, as ss does
            text = "%-6d" % (n - 0x100000000 if n >= 0x80000000 else n)
            if len(self._q_memo) < 65536:
                self._q_memo[n] = text
        return text

    def port(self, port: int) -> str:
        memo = self._port_memo
        text = memo.get(port)
        if text is None:
            text = self.resolver.service(port, self.dg_proto)
            memo[port] = text
        return text

    def set_proto(self, proto: str | None) -> None:
        """Switch dg_proto (a new table); port names depend on it."""
        if proto != self.dg_proto:
            self.dg_proto = proto
            self._port_memo.clear()
            self._port_be.clear()

    def local_addr(self, family: int, data: bytes, v6only: bool, ifindex: int) -> str:
        """inet_addr_print's address cell: text, ``%ifname`` scope, then ``:``."""
        key = (family, data, v6only, ifindex)
        text = self._addr_memo.get(key)
        if text is None:
            text = self.resolver.inet_addr(family, data, v6only)
            if ifindex:
                text = f"{text}%{self.resolver.ifname(ifindex)}"
            text += ":"
            if len(self._addr_memo) < 1 << 16:
                self._addr_memo[key] = text
        return text

    def process(self, inode: int) -> str:
        """proc_ctx_print's users:(...) text (empty without -p or owners)."""
        if self.users is None or not inode:
            return ""
        found = self.users(inode)
        return f" users:({found})" if found else ""

    def head(self, netid: str, state: str, rq: int, wq: int) -> list[str]:
        """sock_state_print: the Netid, State and queue cells that are enabled."""
        cells = []
        if self.show_netid:
            cells.append(netid)
        if self.show_state:
            cells.append(state)
        if self.show_queues:
            cells.append(self.queue(rq))
            cells.append(self.queue(wq))
        return cells

    # -- inet ---------------------------------------------------------------------------
    def inet_row(self, s: InetSocket) -> tuple[str, ...]:
        """One TCP/UDP/RAW/MPTCP/DCCP/SCTP row (inet_stats_print + inet_show_sock).

        This runs once per socket of a listing, so it reads the record by index and
        memoises every cell that repeats (addresses, ports, queue lengths).
        """
        family = s[0]
        state = s[1]
        proto = s[16]
        v6only = False
        if family == _AF_INET6 and (state == 7 or state == 10) and s[17] is not None:
            v6only = bool(s.v6only)
        if v6only or s[8] or (family != _AF_INET and family != _AF_INET6):
            laddr = self.local_addr(family, s[6], v6only, s[8])
            raddr = self.local_addr(family, s[7], v6only, 0)
        else:
            memo = self._addr4 if family == _AF_INET else self._addr6
            found = memo.get(s[6])
            if found is None:
                found = memo[s[6]] = self.local_addr(family, s[6], False, 0)
            laddr = found
            found = memo.get(s[7])
            if found is None:
                found = memo[s[7]] = self.local_addr(family, s[7], False, 0)
            raddr = found
        ports = self._port_be
        lport = ports.get(s[4])
        if lport is None:
            lport = ports[s[4]] = self.port(SWAP16[s[4]])
        rport = ports.get(s[5])
        if rport is None:
            rport = ports[s[5]] = self.port(SWAP16[s[5]])
        qmemo = self._q_memo
        rq = qmemo.get(s[12]) or self.queue(s[12])
        wq = qmemo.get(s[13]) or self.queue(s[13])
        if proto == _IPPROTO_SCTP and self.sctp_ino and self.sctp_ino == s[15]:
            netid, state_text = "", "`- " + extinfo.sctp_state_name(s)
        else:
            netid, state_text = PROTO_NAMES.get(proto, "???"), _STATES[state]
        proc = self.process(s[15]) if self.show_proc else ""
        ext = extinfo.inet(self, s, v6only) if self.ext_wanted else ""
        self.sctp_ino = s[15]
        return self._pick((netid, state_text, rq, wq, laddr, lport, raddr, rport, proc, ext))

    def inet_row_fn(self) -> Callable[[InetSocket], tuple[str, ...]]:
        """The row function for a listing: a closure over the memos for plain rows.

        Rows with extra information, a scope, a v6only attribute, SCTP, or a cell not
        yet memoised go through :meth:`inet_row`; the rest (nearly all rows of a plain
        listing) are assembled from the memos without attribute lookups.
        """
        slow = self.inet_row
        if self.ext_wanted or self.show_proc:
            return slow
        a4, a6, ports, qmemo = self._addr4, self._addr6, self._port_be, self._q_memo
        states, names, pick = _STATES, PROTO_NAMES, self._pick
        sctp = _IPPROTO_SCTP

        def row(s: InetSocket) -> tuple[str, ...]:
            if s[8] or s[16] == sctp:
                return slow(s)
            state = s[1]
            family = s[0]
            if family == _AF_INET6:
                if (state == 7 or state == 10) and s[17] is not None:
                    return slow(s)
                memo = a6
            elif family == _AF_INET:
                memo = a4
            else:
                return slow(s)  # a damaged dump: the address memos are per family
            la = memo.get(s[6])
            ra = memo.get(s[7])
            lp = ports.get(s[4])
            rp = ports.get(s[5])
            rq = qmemo.get(s[12])
            wq = qmemo.get(s[13])
            if la is None or ra is None or lp is None or rp is None or rq is None or wq is None:
                return slow(s)
            return pick((names.get(s[16], "???"), states[state], rq, wq, la, lp, ra, rp, "", ""))

        return row


def enabled_slots(
    show_netid: bool, show_state: bool, show_queues: bool, show_proc: bool
) -> tuple[int, ...]:
    """The column slots that are not disabled, in order (slot 9 is always enabled)."""
    slots = []
    if show_netid:
        slots.append(COL_NETID)
    if show_state:
        slots.append(COL_STATE)
    if show_queues:
        slots += [COL_RECVQ, COL_SENDQ]
    slots += [4, 5, 6, 7]
    if show_proc:
        slots.append(COL_PROC)
    slots.append(COL_EXT)
    return tuple(slots)
