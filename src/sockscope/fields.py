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

import socket
import struct

from . import abi

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .options import Options

#: the version of the JSON schema this module produces (see docs/json.md for the policy)
SCHEMA_VERSION = "1.0"

FAMILY_NAMES = {abi.AF_INET: "inet", abi.AF_INET6: "inet6"}
TIMER_NAMES = ("off", "on", "keepalive", "timewait", "persist", "delack")

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

#: INET_DIAG_SOCKOPT bits, in bit order (struct inet_diag_sockopt)
SOCKOPT_FLAGS = (
    "recverr",
    "is_icsk",
    "freebind",
    "hdrincl",
    "mc_loop",
    "transparent",
    "mc_all",
    "nodefrag",
    "bind_addr_no_port",
    "recverr_rfc4884",
    "defer_connect",
)

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
    n = min((span[1] - span[0]) // 4, len(SKMEM_FIELDS))
    words = struct.unpack_from(f"={n}I", buf, span[0])
    return dict(zip(SKMEM_FIELDS, words, strict=False))


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
_SHUTDOWN_BITS = (("receive", 1), ("send", 2))


def inet(s: tuple, view: View) -> dict[str, object]:  # type: ignore[type-arg]
    """The dict of an :class:`~sockscope.records.InetSocket` (``InetSocket.to_dict``)."""
    from .records import PROTO_NAMES, SWAP16

    family, state, proto = s[0], s[1], s[16]
    lport, rport = SWAP16[s[4]], SWAP16[s[5]]
    alen = 4 if family == abi.AF_INET else 16
    out: dict[str, object] = {
        "netid": PROTO_NAMES.get(proto, "???"),
        "state": abi.STATE_NAMES[state] if state < len(abi.STATE_NAMES) else "UNKNOWN",
        "recv_q": s[12],
        "send_q": s[13],
        "local_address": socket.inet_ntop(family, s[6][:alen]),
        "local_port": lport,
        "peer_address": socket.inet_ntop(family, s[7][:alen]),
        "peer_port": rport,
        "family": FAMILY_NAMES.get(family, str(family)),
        "protocol": proto,
    }
    if s[8]:
        out["interface"] = view.ifname(s[8])
        out["ifindex"] = s[8]
    if view.service is not None:
        for key, port in (("local_service", lport), ("peer_service", rport)):
            name = view.service(port) if port else None
            if name and name != str(port):
                out[key] = name
    buf = s[17]
    attrs = {} if buf is None else _attrs(buf, s[18], s[19])
    if view.timer and s[2]:
        out["timer"] = timer(s[2], s[11], s[3], proto == abi.IPPROTO_SCTP)
    if view.details:
        _inet_details(s, view, buf, attrs, out)
    elif view.cgroup and buf is not None:
        cgroup(view, out, u64(buf, attrs.get(abi.INET_DIAG_CGROUP_ID)))
    if buf is not None:
        _inet_attrs(view, buf, attrs, out)
    users = owners(view, s[15])
    if users:
        out["users"] = users
    if view.info:
        _inet_info(s, view, buf, attrs, out)
    return out


def _attrs(buf: bytes, start: int, end: int) -> dict[int, tuple[int, int]]:
    from . import netlink

    return netlink.attrs(buf, start, end)


def _inet_details(
    s: tuple,  # type: ignore[type-arg]
    view: View,
    buf: bytes | None,
    attrs: dict[int, tuple[int, int]],
    out: dict[str, object],
) -> None:
    """``-e``: sock_details_print and the v6only/shutdown items of inet_show_sock."""
    out["uid"] = s[14]
    out["inode"] = s[15]
    out["cookie"] = (s[10] << 32) | s[9]
    if buf is None:
        return
    mark = u32(buf, attrs.get(abi.INET_DIAG_MARK))
    if mark is not None:
        out["mark"] = mark
    cgroup(view, out, u64(buf, attrs.get(abi.INET_DIAG_CGROUP_ID)))
    span = attrs.get(abi.INET_DIAG_SKV6ONLY)
    if span and span[1] > span[0] and s[0] == abi.AF_INET6:
        out["v6only"] = bool(buf[span[0]])
    span = attrs.get(abi.INET_DIAG_SHUTDOWN)
    if span and span[1] > span[0]:
        mask = buf[span[0]]
        out["shutdown"] = {name: bool(mask & bit) for name, bit in _SHUTDOWN_BITS}


def _inet_attrs(
    view: View, buf: bytes, attrs: dict[int, tuple[int, int]], out: dict[str, object]
) -> None:
    """``--tos``, ``--inet-sockopt`` and ``-m`` from the netlink attributes."""
    if view.tos:
        for key, kind in (("tos", abi.INET_DIAG_TOS), ("tclass", abi.INET_DIAG_TCLASS)):
            span = attrs.get(kind)
            if span and span[1] > span[0]:
                out[key] = buf[span[0]]
        class_id = u32(buf, attrs.get(abi.INET_DIAG_CLASS_ID))
        if class_id is not None:
            out["class_id"] = class_id
    if view.sockopt:
        span = attrs.get(abi.INET_DIAG_SOCKOPT)
        if span and span[1] - span[0] >= 2:
            bits = int.from_bytes(buf[span[0] : span[0] + 2], "little")
            out["inet_sockopt"] = {n: bool(bits >> i & 1) for i, n in enumerate(SOCKOPT_FLAGS)}
    if view.mem:
        span = attrs.get(abi.INET_DIAG_SKMEMINFO)
        if span:
            out["skmem"] = skmem(buf, span)
        else:
            span = attrs.get(abi.INET_DIAG_MEMINFO)
            if span and span[1] - span[0] >= 16:
                words = abi.INET_DIAG_MEMINFO_S.unpack_from(buf, span[0])
                out["mem"] = dict(zip(MEMINFO_FIELDS, words, strict=True))


def _inet_info(
    s: tuple,  # type: ignore[type-arg]
    view: View,
    buf: bytes | None,
    attrs: dict[int, tuple[int, int]],
    out: dict[str, object],
) -> None:
    """``-i``: tcp_info, congestion control, ULP and the MPTCP/SCTP information."""
    from . import tcpinfo

    decode = getattr(tcpinfo, "info_dict", None)
    if decode is None:
        return
    if buf is None:
        info = tcpinfo.proc_info_dict(s)
    else:
        info = decode(s, buf, attrs)
    if info:
        out.update(info)
