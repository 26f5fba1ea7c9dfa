"""One module per ss table (record, decode, source, row, to_dict); inet/ as a package;
walk.py: the one walk over the tables in ss's order."""

from sockscope.kernel import abi

#: the tables other than inet's: table name (as tables.walk.ORDER spells it) -> the module
#: under sockscope.tables implementing it
MODULES = {
    "unix": "unix",
    "packet": "packet",
    "netlink": "netlink",
    "vsock": "vsock",
    "tipc": "tipc",
    "xdp": "xdp",
}

#: ss's dump order of tables (main() in ss.c), as (name, table bits)
ORDER = (
    ("netlink", 1 << abi.NETLINK_DB),
    ("packet", abi.PACKET_DBM),
    ("unix", abi.UNIX_DBM),
    ("raw", 1 << abi.RAW_DB),
    ("udp", 1 << abi.UDP_DB),
    ("tcp", 1 << abi.TCP_DB),
    ("dccp", 1 << abi.DCCP_DB),
    ("sctp", 1 << abi.SCTP_DB),
    ("vsock", abi.VSOCK_DBM),
    ("tipc", 1 << abi.TIPC_DB),
    ("xdp", 1 << abi.XDP_DB),
    ("mptcp", 1 << abi.MPTCP_DB),
)
