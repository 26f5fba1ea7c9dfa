"""The per-run row context: what every table's rows share.

One :class:`Printer` per run holds the options, the name resolver, which columns are
enabled and the memos of cells that repeat (addresses, ports, queue lengths); each
table's row function (``row_fn`` of the modules under :mod:`sockscope.tables`) turns a
record into the tuple of cells the column engine (:mod:`sockscope.render.columns`)
takes. Ports of ``sock_state_print``, ``inet_addr_print``'s address text and
``proc_ctx_print`` (iproute2 7.1).
"""

from __future__ import annotations

from _operator import itemgetter  # the C module: operator.py only re-exports it

from sockscope.kernel import abi
from sockscope.render.columns import COL_EXT, COL_NETID, COL_PROC, COL_RECVQ, COL_SENDQ, COL_STATE
from sockscope.render.names import CgroupMap

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from sockscope.options import Options
    from sockscope.render.names import Resolver

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
#: sock_state_print's text for each of the 256 values of idiag_state: sstate_name[],
#: then what 7.1 prints past it (UNKNOWN where 7.1 crashes)
STATE_TEXT = abi.STATE_NAMES + tuple("UNKNOWN" if v is None else v for v in _PAST_SSTATE_NAME)


def state_text_of(state: int) -> str:
    """sock_state_print's text for any state a C int can hold (a /proc line's ``%x`` can
    give any): STATE_TEXT, then what 7.1 prints further away (``sstate_far``, recorded
    from ss 7.1), UNKNOWN where it crashes (QUIRKS.md)."""
    if 0 <= state < len(STATE_TEXT):
        return STATE_TEXT[state]
    from sockscope.kernel.libc import int32  # only for states past the table
    from sockscope.render import sstate_far

    state = int32(state)
    if state < 0:
        return sstate_far.NEGATIVE.get(state) or "UNKNOWN"
    if state >= sstate_far.HIGH:
        return "UNKNOWN"
    text = sstate_far.FAR.get(state, "(null)")
    return "UNKNOWN" if text is None else text


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
        self._addr_memo: dict[tuple[int, bytes, bool, int], str] = {}
        self._port_memo: dict[int, str] = {}
        self.port_be: dict[int, str] = {}
        self.addr4: dict[bytes, str] = {}
        self.addr6: dict[bytes, str] = {}
        self.pick = itemgetter(*enabled) if len(enabled) > 1 else lambda t: (t[COL_EXT],)
        self.q_memo: dict[int, str] = {}
        #: where non-fatal messages go (ss prints them on stderr while dumping)
        self.warn: Callable[[str], None] = lambda _msg: None
        self._cgroups: CgroupMap | None = None

    def cgroups(self) -> CgroupMap:
        """The cgroup id -> path map, built on first use (cg_id_to_path)."""
        if self._cgroups is None:
            self._cgroups = CgroupMap(self.warn)
        return self._cgroups

    # -- helpers ------------------------------------------------------------------------
    def queue(self, n: int) -> str:
        """``%-6d`` of a queue length (memoised: most are small)."""
        text = self.q_memo.get(n)
        if text is None:
            # the kernel's u32 is printed with %d, as ss does
            text = "%-6d" % (n - 0x100000000 if n >= 0x80000000 else n)
            if len(self.q_memo) < 65536:
                self.q_memo[n] = text
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
            self.port_be.clear()

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
