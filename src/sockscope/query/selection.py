"""Which tables, families and states a run asks for: ss's selection model.

A :class:`Selection` is ss's ``struct filter`` without the expression: a table bitmask
(``dbs``), an address-family bitmask (``families``), a state bitmask (``states``), plus the
``preferred_family`` (last family option) and ``do_default`` (no table or family option
seen yet). Its methods are ports of ss.c's ``filter_db_set``, ``filter_db_parse``,
``filter_af_set``, ``filter_states_set`` and ``filter_merge_defaults`` and are applied in
getopt order, because order matters in ss (the first ``-A`` clears the tables).
"""

from __future__ import annotations

from sockscope.kernel import abi
from sockscope.kernel.abi import (
    AF_INET,
    AF_INET6,
    AF_NETLINK,
    AF_PACKET,
    AF_TIPC,
    AF_UNIX,
    AF_VSOCK,
    AF_XDP,
    DCCP_DB,
    MPTCP_DB,
    NETLINK_DB,
    PACKET_DG_DB,
    PACKET_R_DB,
    RAW_DB,
    SCTP_DB,
    SS_CLOSE,
    SS_CONN,
    SS_ESTABLISHED,
    TCP_DB,
    TIPC_DB,
    TIPC_SS_CONN,
    UDP_DB,
    UNIX_DG_DB,
    UNIX_SQ_DB,
    UNIX_ST_DB,
    VSOCK_DG_DB,
    VSOCK_ST_DB,
    XDP_DB,
)

_INET = (1 << AF_INET) | (1 << AF_INET6)
_CLOSE = 1 << SS_CLOSE

#: default_dbs[] of ss.c: per table, (default states, families)
DB_DEFAULTS: dict[int, tuple[int, int]] = {
    TCP_DB: (SS_CONN, _INET),
    MPTCP_DB: (SS_CONN, _INET),
    DCCP_DB: (SS_CONN, _INET),
    UDP_DB: (1 << SS_ESTABLISHED, _INET),
    RAW_DB: (1 << SS_ESTABLISHED, _INET),
    UNIX_DG_DB: (_CLOSE, 1 << AF_UNIX),
    UNIX_ST_DB: (SS_CONN, 1 << AF_UNIX),
    UNIX_SQ_DB: (SS_CONN, 1 << AF_UNIX),
    PACKET_DG_DB: (_CLOSE, 1 << AF_PACKET),
    PACKET_R_DB: (_CLOSE, 1 << AF_PACKET),
    NETLINK_DB: (_CLOSE, 1 << AF_NETLINK),
    SCTP_DB: (SS_CONN, _INET),
    VSOCK_ST_DB: (SS_CONN, 1 << AF_VSOCK),
    VSOCK_DG_DB: (SS_CONN, 1 << AF_VSOCK),
    TIPC_DB: (TIPC_SS_CONN, 1 << AF_TIPC),
    XDP_DB: (_CLOSE, 1 << AF_XDP),
}

#: default_afs[] of ss.c: per family, (default tables, default states)
AF_DEFAULTS: dict[int, tuple[int, int]] = {
    AF_INET: (abi.INET_DBM, SS_CONN),
    AF_INET6: (abi.INET_DBM, SS_CONN),
    AF_UNIX: (abi.UNIX_DBM, SS_CONN),
    AF_PACKET: (abi.PACKET_DBM, _CLOSE),
    AF_NETLINK: (1 << NETLINK_DB, _CLOSE),
    AF_VSOCK: (abi.VSOCK_DBM, SS_CONN),
    AF_TIPC: (1 << TIPC_DB, TIPC_SS_CONN),
    AF_XDP: (1 << XDP_DB, _CLOSE),
}

#: db_name_tbl[] of ss.c: the -A words and the tables each one names, in ss's order.
DB_WORDS: dict[str, tuple[int, ...]] = {
    "all": (
        UDP_DB, DCCP_DB, TCP_DB, MPTCP_DB, RAW_DB, UNIX_ST_DB, UNIX_DG_DB, UNIX_SQ_DB,
        PACKET_R_DB, PACKET_DG_DB, NETLINK_DB, SCTP_DB, VSOCK_ST_DB, VSOCK_DG_DB, XDP_DB,
    ),
    "inet": (UDP_DB, DCCP_DB, TCP_DB, MPTCP_DB, SCTP_DB, RAW_DB),
    "udp": (UDP_DB,),
    "dccp": (DCCP_DB,),
    "tcp": (TCP_DB,),
    "mptcp": (MPTCP_DB,),
    "sctp": (SCTP_DB,),
    "raw": (RAW_DB,),
    "unix": (UNIX_ST_DB, UNIX_DG_DB, UNIX_SQ_DB),
    "unix_stream": (UNIX_ST_DB,),
    "u_str": (UNIX_ST_DB,),
    "unix_dgram": (UNIX_DG_DB,),
    "u_dgr": (UNIX_DG_DB,),
    "unix_seqpacket": (UNIX_SQ_DB,),
    "u_seq": (UNIX_SQ_DB,),
    "packet": (PACKET_R_DB, PACKET_DG_DB),
    "packet_raw": (PACKET_R_DB,),
    "p_raw": (PACKET_R_DB,),
    "packet_dgram": (PACKET_DG_DB,),
    "p_dgr": (PACKET_DG_DB,),
    "netlink": (NETLINK_DB,),
    "tipc": (TIPC_DB,),
    "vsock": (VSOCK_ST_DB, VSOCK_DG_DB),
    "vsock_stream": (VSOCK_ST_DB,),
    "v_str": (VSOCK_ST_DB,),
    "vsock_dgram": (VSOCK_DG_DB,),
    "v_dgr": (VSOCK_DG_DB,),
    "xdp": (XDP_DB,),
}  # fmt: skip

#: the -f words
FAMILY_WORDS: dict[str, int] = {
    "inet": AF_INET,
    "inet6": AF_INET6,
    "link": AF_PACKET,
    "unix": AF_UNIX,
    "netlink": AF_NETLINK,
    "tipc": AF_TIPC,
    "vsock": AF_VSOCK,
    "xdp": AF_XDP,
}

_TCP_STATES = (1 << abi.SS_MAX) - 1 & ~(
    (1 << abi.SS_UNKNOWN) | (1 << abi.SS_NEW_SYN_RECV) | (1 << abi.SS_BOUND_INACTIVE)
)

#: scan_state() of ss.c: state words (matched case-insensitively) and their masks.
STATE_WORDS: dict[str, int] = {
    "unknown": 1 << abi.SS_UNKNOWN,
    "established": 1 << abi.SS_ESTABLISHED,
    "syn-sent": 1 << abi.SS_SYN_SENT,
    "syn-recv": 1 << abi.SS_SYN_RECV,
    "fin-wait-1": 1 << abi.SS_FIN_WAIT1,
    "fin-wait-2": 1 << abi.SS_FIN_WAIT2,
    "time-wait": 1 << abi.SS_TIME_WAIT,
    "unconnected": 1 << abi.SS_CLOSE,
    "close-wait": 1 << abi.SS_CLOSE_WAIT,
    "last-ack": 1 << abi.SS_LAST_ACK,
    "listening": 1 << abi.SS_LISTEN,
    "closing": 1 << abi.SS_CLOSING,
    "bound-inactive": 1 << abi.SS_BOUND_INACTIVE,
    "close": 1 << abi.SS_CLOSE,
    "closed": 1 << abi.SS_CLOSE,
    "syn-rcv": 1 << abi.SS_SYN_RECV,
    "all": abi.SS_ALL,
    "connected": abi.SS_ALL & ~((1 << abi.SS_CLOSE) | (1 << abi.SS_LISTEN)),
    "synchronized": abi.SS_ALL
    & ~((1 << abi.SS_CLOSE) | (1 << abi.SS_LISTEN) | (1 << abi.SS_SYN_SENT)),
    "bucket": (1 << abi.SS_SYN_RECV) | (1 << abi.SS_TIME_WAIT),
    "big": abi.SS_ALL & ~((1 << abi.SS_SYN_RECV) | (1 << abi.SS_TIME_WAIT)),
}


def scan_state(word: str) -> int | None:
    """Port of ss.c:scan_state: the mask of a state word, or None if ss rejects it."""
    return STATE_WORDS.get(word.lower())


class Selection:
    """ss's table/family/state selection, built option by option."""

    __slots__ = ("dbs", "do_default", "families", "preferred_family", "states")

    def __init__(self) -> None:
        self.dbs = 0
        self.families = 0
        self.states = 0
        self.preferred_family = abi.AF_UNSPEC
        self.do_default = True

    def db_set(self, db: int, enable: bool = True) -> None:
        """Port of ss.c:filter_db_set."""
        if enable:
            self.states |= DB_DEFAULTS[db][0]
            self.dbs |= 1 << db
        else:
            self.dbs &= ~(1 << db)
        self.do_default = False

    def db_parse(self, word: str) -> bool:
        """Port of ss.c:filter_db_parse: apply one -A item; False if unknown."""
        enable = True
        if word.startswith("!"):
            enable = False
            word = word[1:]
        dbs = DB_WORDS.get(word)
        if dbs is None:
            return False
        for db in dbs:
            self.db_set(db, enable)
        return True

    def af_set(self, family: int) -> None:
        """Port of ss.c:filter_af_set."""
        self.states |= AF_DEFAULTS[family][1]
        self.families |= 1 << family
        self.do_default = False
        self.preferred_family = family

    def merge_defaults(self) -> None:
        """Port of ss.c:filter_merge_defaults."""
        for db, (_states, fams) in DB_DEFAULTS.items():
            if self.dbs & (1 << db) and not fams & self.families:
                self.families |= fams
        for af, (dbs, _states) in AF_DEFAULTS.items():
            if self.families & (1 << af) and not dbs & self.dbs:
                self.dbs |= dbs

    def finish(self, state_filter: int) -> None:
        """Apply ss main()'s defaulting after the state words have been read."""
        if self.do_default:
            state_filter = state_filter or SS_CONN
            self.db_parse("all")
        if state_filter:
            self.states = state_filter
        self.merge_defaults()

    def has_db(self, db: int) -> bool:
        return bool(self.dbs & (1 << db))

    def has_af(self, family: int) -> bool:
        return bool(self.families & (1 << family))

    def single_db(self) -> bool:
        """Exactly one table selected (ss then hides the Netid column)."""
        return not self.dbs & (self.dbs - 1)

    def single_state(self) -> bool:
        """Exactly one state selected (ss then hides the State column)."""
        return not self.states & (self.states - 1)
