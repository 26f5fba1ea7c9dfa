"""The data view of socket records: what ``record.to_dict()`` contains.

A record's ``to_dict(view)`` is the object ``--json`` and ``--json-lines`` print for that
socket, and what library users get. Field names are plain, carry their unit when there
is one (``expires_ms``, ``rcvbuf_bytes``) and follow jc's ``ss`` parser where a field
means the same thing (``netid``, ``state``, ``recv_q``, ``send_q``, ``local_address``,
``local_port``, ``peer_address``, ``peer_port``, ``interface``). Information the kernel
did not send is left out, never filled with a default.

A :class:`View` says which sections go in (they follow ss's options: ``-o`` timers, ``-e``
details, ``-m`` memory, ``-i`` tcp_info, ``--tos``, ``--cgroup``, ``--inet-sockopt``, ``-p``
owners) and holds the lookups a section needs (interface names, cgroup paths, process
owners, service names). The schema of the result is ``schema/sockscope.schema.json``.
No ``json`` import here: the text path may load this module for free.
"""

from __future__ import annotations

import _socket as socket  # the C module: socket.py costs ~3 ms of start-up (enum, selectors)
import struct

from sockscope.kernel import abi
from sockscope.kernel.abi import TIMER_NAMES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from sockscope.options import Options

#: the version of the JSON schema this module produces (see docs/json.md for the policy)
SCHEMA_VERSION = "1.1"

FAMILY_NAMES = {abi.AF_INET: "inet", abi.AF_INET6: "inet6"}

#: INET_DIAG_SKMEMINFO / *_DIAG_MEMINFO u32 array, in SK_MEMINFO_* order
SKMEM_FIELDS = (
    "rmem_alloc_bytes",
    "rcvbuf_bytes",
    "wmem_alloc_bytes",
    "sndbuf_bytes",
    "fwd_alloc_bytes",
    "wmem_queued_bytes",
    "optmem_bytes",
    "backlog_bytes",
    "drops",
)
#: struct inet_diag_meminfo (old kernels without SKMEMINFO)
MEMINFO_FIELDS = ("rmem_bytes", "wmem_bytes", "fmem_bytes", "tmem_bytes")


_U32 = struct.Struct("=I")
_U64 = struct.Struct("=Q")


def _default_ifname(index: int) -> str:
    try:
        return socket.if_indextoname(index)
    except OSError:
        return f"if{index}"


class View:
    """Which sections ``to_dict()`` fills, and the lookups they use.

    The default view (the library's) fills every section the record has data for and
    resolves nothing but interface names.
    """

    __slots__ = (
        "_addrs",
        "cgroup",
        "cgroup_path",
        "details",
        "ifname",
        "info",
        "mem",
        "owners",
        "service",
        "sockopt",
        "threads",
        "timer",
        "tos",
    )

    def __init__(self) -> None:
        self.timer = True
        self.details = True
        self.mem = True
        self.info = True
        self.tos = True
        self.cgroup = True
        self.sockopt = True
        self.threads = False
        #: inode -> [(name, pid, fd)] or [(name, pid, tid, fd)] with threads; None: no owners
        self.owners: Callable[[int], list[tuple[object, ...]]] | None = None
        self.ifname: Callable[[int], str] = _default_ifname
        #: cgroup id -> path text; None leaves the path out (the id is always given)
        self.cgroup_path: Callable[[int], str] | None = None
        #: (port, table) -> the service name the text shows; None: no names
        self.service: Callable[[int], str] | None = None
        self._addrs: dict[bytes, str] = {}

    def address(self, family: int, data: bytes) -> str:
        """inet_ntop text of an address, memoised (most hosts have few addresses)."""
        if family != abi.AF_INET and family != abi.AF_INET6:
            from sockscope.render.names import addr_text

            return addr_text(family, data)  # a damaged dump: any family
        text = self._addrs.get(data)
        if text is None:
            text = socket.inet_ntop(family, data)
            if len(self._addrs) < 1 << 16:
                self._addrs[data] = text
        return text

    @property
    def wants_attrs(self) -> bool:
        """Whether any section reads the netlink attributes."""
        return bool(
            self.details or self.cgroup or self.tos or self.sockopt or self.mem or self.info
        )

    @classmethod
    def from_options(cls, opts: Options) -> View:
        """The sections ss's options ask for (what the text output would show)."""
        v = cls()
        v.timer = bool(opts.show_options)
        v.details = bool(opts.show_details)
        v.mem = bool(opts.show_mem)
        v.info = bool(opts.show_tcpinfo)
        v.tos = bool(opts.show_tos)
        v.cgroup = bool(opts.show_cgroup or opts.show_details)
        v.sockopt = bool(opts.show_inet_sockopt)
        v.threads = bool(opts.show_threads)
        return v


# -- helpers shared by every family --------------------------------------------------------
def u32(buf: bytes, span: tuple[int, int] | None) -> int | None:
    if not span or span[1] - span[0] < 4:
        return None
    return int(_U32.unpack_from(buf, span[0])[0])


def u64(buf: bytes, span: tuple[int, int] | None) -> int | None:
    if not span or span[1] - span[0] < 8:
        return None
    return int(_U64.unpack_from(buf, span[0])[0])


def skmem(buf: bytes, span: tuple[int, int]) -> dict[str, int]:
    """An SK_MEMINFO u32 array as a dict (only the words the kernel sent)."""
    from sockscope.kernel.structs import decode_skmeminfo

    words = decode_skmeminfo(buf[span[0] : span[1]])
    return {k: v for k, v in zip(SKMEM_FIELDS, words, strict=True) if v is not None}


def timer(kind: int, expires_ms: int, retrans: int, sctp: bool = False) -> dict[str, object]:
    """idiag_timer/expires/retrans as ss's ``timer:(name,expire,retrans)`` means them."""
    if sctp:
        name = "T3_RTX"
    else:
        name = TIMER_NAMES[kind] if kind < len(TIMER_NAMES) else "unknown"
    return {"name": name, "expires_ms": expires_ms, "retrans": retrans}


def owners(view: View, inode: int) -> list[dict[str, object]] | None:
    """The processes holding ``inode`` (``-p``), as ss lists them; None when not asked."""
    if view.owners is None or not inode:
        return None
    keys = ("name", "pid", "tid", "fd") if view.threads else ("name", "pid", "fd")
    found = [dict(zip(keys, entry, strict=True)) for entry in view.owners(inode)]
    return found or None


def cgroup(view: View, out: dict[str, object], cgroup_id: int | None) -> None:
    """``cgroup_id`` and, when it can be resolved, ``cgroup`` (the path ss prints)."""
    if not cgroup_id:
        return
    out["cgroup_id"] = cgroup_id
    if view.cgroup_path is not None:
        out["cgroup"] = view.cgroup_path(cgroup_id)


# -- inet ----------------------------------------------------------------------------------
