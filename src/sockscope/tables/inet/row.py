"""The rows of the inet tables (TCP, UDP, RAW, MPTCP, DCCP, SCTP).

Port of ``inet_stats_print`` and ``inet_show_sock`` (iproute2 7.1): the Netid, State,
queue and address cells from the record, the extra-information cell from
:mod:`sockscope.tables.inet.extinfo`. One :class:`InetRows` per run, over the run's
:class:`~sockscope.render.printer.Printer`.
"""

from __future__ import annotations

from sockscope.kernel import abi
from sockscope.kernel.abi import PROTO_NAMES, SWAP16
from sockscope.render.printer import STATE_TEXT, state_text_of
from sockscope.tables.inet.layout import (
    BUF,
    DPORT,
    DST,
    FAMILY,
    IFINDEX,
    INODE,
    PROTOCOL,
    RQUEUE,
    SPORT,
    SRC,
    STATE,
    WQUEUE,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from sockscope.kernel.structs import Spans
    from sockscope.render.printer import Printer
    from sockscope.tables.inet.record import InetSocket
    from sockscope.tables.inet.tcpinfo import TcpText

_STATES = abi.STATE_NAMES
_NSTATES = len(_STATES)
_AF_INET = abi.AF_INET
_AF_INET6 = abi.AF_INET6
_IPPROTO_SCTP = abi.IPPROTO_SCTP
#: in6addr_any: a wildcard address, printed "*" unless the socket is v6only
_ANY6 = bytes(16)


#: sock_state_print's Netid by address family, for the families that are not inet
_NETID_BY_FAMILY = {abi.AF_NETLINK: "nl", 44: "xdp"}  # 44: AF_XDP
_TYPE_NETIDS = {
    abi.AF_UNIX: ({1: "u_str", 5: "u_seq"}, "u_dgr"),  # unix_netid_name
    30: ({1: "ti_st", 2: "ti_dg", 4: "ti_rd", 5: "ti_sq"}, "???"),  # AF_TIPC, tipc_netid_name
    40: ({1: "v_str", 2: "v_dgr"}, "???"),  # AF_VSOCK, vsock_netid_name
    abi.AF_PACKET: ({3: "p_raw"}, "p_dgr"),  # SOCK_RAW or not
}


def _other_family_netid(family: int, proto: int) -> str:
    """The Netid sock_state_print gives a row of a damaged dump whose idiag_family is not
    AF_INET or AF_INET6: it switches on the family first (the socket type is the
    protocol, TCP's 6 in a dump), ``unknown`` for a family it does not know."""
    found = _NETID_BY_FAMILY.get(family)
    if found is not None:
        return found
    names, other = _TYPE_NETIDS.get(family, ({}, "unknown"))
    return names.get(proto, other)


class InetRows:
    """The inet row functions of one run, and the state they keep between rows."""

    def __init__(self, p: Printer) -> None:
        self.p = p
        self.opts = p.opts
        self.resolver = p.resolver
        self.cgroups = p.cgroups
        #: inode of the previous inet row, to draw SCTP associations (sctp_ino)
        self.sctp_ino = 0
        #: whether any option puts text in the extra-information cell
        self.ext_wanted = p.opts.inet_wanted
        if self.ext_wanted:  # the extra-information module only for the runs that print it
            from sockscope.tables.inet import extinfo

            self._ext_cell = extinfo.inet
        #: the extra-information function of this run's rows (made by extinfo.inet)
        self.ext_row: Callable[[InetSocket, bool], str] | None = None
        #: the -i text of this run's TCP rows and its memo tables (tcpinfo.text_of)
        self.tcp_texts: TcpText | None = None

    def sctp_state_name(self, s: InetSocket) -> str:
        """The SCTP association state word (:func:`extinfo.sctp_state_name`)."""
        from sockscope.tables.inet.extinfo import sctp_state_name

        return sctp_state_name(s)

    def info_block(self, s: InetSocket, attrs: Spans) -> str:
        """The -m/-i text after the newline-tab of an inet row."""
        from sockscope.tables.inet import tcpinfo

        # bind once per run: later rows call the closure directly (no per-row import)
        self.info_block = tcpinfo.bind_info_block(self)  # type: ignore[method-assign,assignment]
        return self.info_block(s, attrs)

    def proc_tcp_info(self, s: InetSocket) -> str:
        """-i for a TCP row read from /proc (tcp_stats_print on the /proc fields)."""
        from sockscope.tables.inet import tcpinfo

        return tcpinfo.proc_info(self, s)

    def row(self, s: InetSocket) -> tuple[str, ...]:
        """One TCP/UDP/RAW/MPTCP/DCCP/SCTP row (inet_stats_print + inet_show_sock).

        This runs once per socket of a listing, so it reads the record by index and
        memoises every cell that repeats (addresses, ports, queue lengths).
        """
        family = s[FAMILY]
        state = s[STATE]
        proto = s[PROTOCOL]
        v6only = False
        if family == _AF_INET6 and (s[SRC] == _ANY6 or s[DST] == _ANY6) and s[BUF] is not None:
            # ss reads INET_DIAG_SKV6ONLY of an IPv6 socket in any state (the kernel sends
            # it in LISTEN and CLOSE only); it changes how the wildcard address prints
            v6only = bool(s.v6only)
        if v6only or s[IFINDEX] or (family != _AF_INET and family != _AF_INET6):
            laddr = self.p.local_addr(family, s[SRC], v6only, s[IFINDEX])
            raddr = self.p.local_addr(family, s[DST], v6only, 0)
        else:
            memo = self.p.addr4 if family == _AF_INET else self.p.addr6
            found = memo.get(s[SRC])
            if found is None:
                found = memo[s[SRC]] = self.p.local_addr(family, s[SRC], False, 0)
            laddr = found
            found = memo.get(s[DST])
            if found is None:
                found = memo[s[DST]] = self.p.local_addr(family, s[DST], False, 0)
            raddr = found
        ports = self.p.port_be
        lport = ports.get(s[SPORT])
        if lport is None:
            lport = ports[s[SPORT]] = self.p.port(SWAP16[s[SPORT]])
        rport = ports.get(s[DPORT])
        if rport is None:
            rport = ports[s[DPORT]] = self.p.port(SWAP16[s[DPORT]])
        qmemo = self.p.q_memo
        rq = qmemo.get(s[RQUEUE]) or self.p.queue(s[RQUEUE])
        wq = qmemo.get(s[WQUEUE]) or self.p.queue(s[WQUEUE])
        if family != _AF_INET and family != _AF_INET6:  # a damaged dump: any family
            netid = _other_family_netid(family, proto)
        else:
            netid = PROTO_NAMES.get(proto, "???")
        if proto == _IPPROTO_SCTP and netid == "sctp" and self.sctp_ino == s[INODE] != 0:
            netid, state_text = "", "`- " + self.sctp_state_name(s)
        else:
            # past sstate_name[] ss reads beyond its array (undefined): what its 7.1
            # build prints there, UNKNOWN where it crashes (QUIRKS.md)
            state_text = STATE_TEXT[state] if state < len(STATE_TEXT) else state_text_of(state)
        proc = self.p.process(s[INODE]) if self.p.show_proc else ""
        ext = self._ext_cell(self, s, v6only) if self.ext_wanted else ""
        self.sctp_ino = s[INODE]
        return self.p.pick((netid, state_text, rq, wq, laddr, lport, raddr, rport, proc, ext))

    def row_fn(self) -> Callable[[InetSocket], tuple[str, ...]]:
        """The row function for a listing: a closure over the memos for plain rows.

        Rows with extra information, a scope, a v6only attribute, SCTP, or a cell not
        yet memoised go through :meth:`inet_row`; the rest (nearly all rows of a plain
        listing) are assembled from the memos without attribute lookups.
        """
        slow = self.row
        if self.ext_wanted or self.p.show_proc:
            return slow
        a4, a6, ports, qmemo = self.p.addr4, self.p.addr6, self.p.port_be, self.p.q_memo
        states, names, pick = _STATES, PROTO_NAMES, self.p.pick
        sctp = _IPPROTO_SCTP
        any6 = _ANY6

        def row(s: InetSocket) -> tuple[str, ...]:
            state = s[STATE]
            if s[IFINDEX] or s[PROTOCOL] == sctp or state >= _NSTATES:
                return slow(s)
            family = s[FAMILY]
            if family == _AF_INET6:
                if (s[SRC] == any6 or s[DST] == any6) and s[BUF] is not None:
                    return slow(s)  # the wildcard's text depends on v6only
                memo = a6
            elif family == _AF_INET:
                memo = a4
            else:
                return slow(s)  # a family ss does not know: no memo
            la = memo.get(s[SRC])
            ra = memo.get(s[DST])
            lp = ports.get(s[SPORT])
            rp = ports.get(s[DPORT])
            rq = qmemo.get(s[RQUEUE])
            wq = qmemo.get(s[WQUEUE])
            if la is None or ra is None or lp is None or rp is None or rq is None or wq is None:
                return slow(s)
            return pick(
                (names.get(s[PROTOCOL], "???"), states[state], rq, wq, la, lp, ra, rp, "", "")
            )

        return row
