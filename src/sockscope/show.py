"""Socket records to row cells, as ss's printers lay them out.

One :class:`Printer` per run holds the options, the name caches and which columns are
enabled; its ``*_row`` methods turn one record into the tuple of cells the column
engine (:mod:`sockscope.columns`) takes. The extra-information text (``-o -e -m -i``
...) comes from :mod:`sockscope.extinfo`. Ports of ``sock_state_print``,
``inet_addr_print``, ``sock_addr_print`` and ``proc_ctx_print`` (iproute2 7.1).
"""

from __future__ import annotations

from . import abi, extinfo
from .columns import COL_EXT, COL_NETID, COL_PROC, COL_RECVQ, COL_SENDQ, COL_STATE
from .records import PROTO_NAMES, SWAP16

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .addrs import Resolver
    from .options import Options
    from .records import InetSocket

_STATES = abi.STATE_NAMES


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
        self._q_memo: dict[int, str] = {}
        self.ext_wanted = extinfo.inet_wanted(opts)
        #: where non-fatal messages go (ss prints them on stderr while dumping)
        self.warn: Callable[[str], None] = lambda _msg: None
        self._cgroups: extinfo.CgroupMap | None = None

    def cgroups(self) -> extinfo.CgroupMap:
        """The cgroup id -> path map, built on first use (cg_id_to_path)."""
        if self._cgroups is None:
            self._cgroups = extinfo.CgroupMap(self.warn)
        return self._cgroups

    def info_block(self, s: InetSocket, attrs: dict[int, tuple[int, int]]) -> str:
        """The -m/-i text after the newline-tab of an inet row."""
        from . import tcpinfo

        return tcpinfo.info_block(self, s, attrs)

    def proc_tcp_info(self, s: InetSocket) -> str:
        """-i for a TCP row read from /proc (tcp_stats_print on the /proc fields)."""
        from . import tcpinfo

        return tcpinfo.proc_info(self, s)

    # -- helpers ------------------------------------------------------------------------
    def queue(self, n: int) -> str:
        """``%-6d`` of a queue length (memoised: most are small)."""
        text = self._q_memo.get(n)
        if text is None:
            if n >= 0x80000000:
                n -= 0x100000000
            text = "%-6d" % n
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
            self._port_memo = {}

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
        """One TCP/UDP/RAW/MPTCP/DCCP/SCTP row (inet_stats_print + inet_show_sock)."""
        family, state = s[0], s[1]
        proto = s[16]
        v6only = False
        if family == abi.AF_INET6 and s[17] is not None and state in (7, 10):
            v6only = bool(s.v6only)
        netid = PROTO_NAMES.get(proto, "???")
        if proto == abi.IPPROTO_SCTP and self.sctp_ino and self.sctp_ino == s[15]:
            cells = [""] if self.show_netid else []
            if self.show_state:
                cells.append("`- " + extinfo.sctp_state_name(s))
            if self.show_queues:
                cells += [self.queue(s[12]), self.queue(s[13])]
        else:
            cells = self.head(netid, _STATES[state], s[12], s[13])
        cells.append(self.local_addr(family, s[6], v6only, s[8]))
        cells.append(self.port(SWAP16[s[4]]))
        cells.append(self.local_addr(family, s[7], v6only, 0))
        cells.append(self.port(SWAP16[s[5]]))
        if self.show_proc:
            cells.append(self.process(s[15]))
        cells.append(extinfo.inet(self, s, v6only) if self.ext_wanted else "")
        self.sctp_ino = s[15]
        return tuple(cells)


def enabled_slots(show_netid: bool, show_state: bool, show_queues: bool, show_proc: bool) -> tuple[int, ...]:
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
