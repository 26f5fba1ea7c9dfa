"""sockscope: iproute2's ss, rebuilt in Python, as a command and a library.

The command ``sockscope`` prints byte for byte what upstream ss 7.1 prints. The library
yields the same sockets as typed records::

    import sockscope
    for s in sockscope.sockets(tables={"tcp"}, states={"established"}):
        print(s.netid, s.state_name, s.local_addr, s.lport, s.peer_addr, s.rport)
"""

from __future__ import annotations

from .errors import FilterError, NetlinkError, NotSupportedError, SockscopeError, UsageError

__all__ = [
    "FilterError",
    "NetlinkError",
    "NotSupportedError",
    "SockscopeError",
    "UsageError",
    "__version__",
]

__version__ = "0.1.0"
