"""sockscope: iproute2's ss, rebuilt in Python, as a command and a library.

The command ``sockscope`` prints byte for byte what upstream ss 7.1 prints. The library
yields the same sockets as typed records, streaming::

    import sockscope
    for s in sockscope.sockets(tables=["tcp"], states=["listening"]):
        print(s.netid, s.state_name, s.local_addr, s.lport)

    f = sockscope.parse_filter("sport = :22 or dport = :22")
    f.matches(s); str(f); f.bytecode()

Heavier pieces are imported on first use, so ``import sockscope`` stays cheap.
"""

from __future__ import annotations

from sockscope.errors import (
    FilterError,
    NetlinkError,
    NotSupportedError,
    SockscopeError,
    UsageError,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from sockscope.accel import backend
    from sockscope.api import Query, parse_filter, sockets

__all__ = [
    "FilterError",
    "NetlinkError",
    "NotSupportedError",
    "Query",
    "SockscopeError",
    "UsageError",
    "__version__",
    "backend",
    "main",
    "parse_filter",
    "sockets",
]

__version__ = "0.1.0"

_LAZY = {
    "Query": ("api", "Query"),
    "sockets": ("api", "sockets"),
    "parse_filter": ("api", "parse_filter"),
    "main": ("cli", "main"),
    "summary": ("ops.sockstat", "summary"),
    "kill": ("api", "kill"),
    "events": ("ops.follow", "events"),
    "backend": ("accel", "backend"),
}


def __getattr__(name: str) -> object:
    """Import the public functions lazily (PEP 562)."""
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'sockscope' has no attribute {name!r}") from None
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), attr)
    globals()[name] = value
    return value
