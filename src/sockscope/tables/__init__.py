"""One module per ss table (record, decode, source, row, to_dict); inet/ as a package;
walk.py: the one walk over the tables in ss's order."""

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
