"""Which requests an inet table's listing makes, decided before the decoders load.

Light on purpose (abi, netlink and the compiled core only): the command plans the first
table's dumps and, for a small TCP table with the compiled core, starts its dump
(:func:`prefetch`) before the modules that decode and print the rows are imported, so
that the kernel's walk of its socket hash and those imports overlap. The sources
(:mod:`sockscope.tables.inet.source`, :mod:`sockscope.tables.inet.fast`) build their
requests with the same functions.
"""

from __future__ import annotations

import posix  # os without os.py: importing os costs ~1 ms (_collections_abc's ABCs)

from sockscope.accel import core
from sockscope.errors import AnswerError, KillError, NetlinkError
from sockscope.kernel import abi, netlink
from sockscope.tables import MODULES, ORDER

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from sockscope.options import Options
    from sockscope.query.selection import Selection
    from sockscope.tables.context import Context

#: per inet table: protocol number, env var forcing /proc, dg_proto
INET_TABLES = {
    "raw": (abi.IPPROTO_RAW, "PROC_NET_RAW", "raw"),
    "udp": (abi.IPPROTO_UDP, "PROC_NET_UDP", "udp"),
    "tcp": (abi.IPPROTO_TCP, "PROC_NET_TCP", "tcp"),
    "dccp": (abi.IPPROTO_DCCP, "PROC_NET_DCCP", None),
    "sctp": (abi.IPPROTO_SCTP, "PROC_NET_SCTP", None),
    "mptcp": (abi.IPPROTO_MPTCP, "PROC_NET_MPTCP", None),
}


INET_FAMILIES = (1 << abi.AF_INET) | (1 << abi.AF_INET6)

#: a TCP table is small (see :func:`combinable`) when its namespace holds at most this
#: many TCP sockets (both families, time-wait included): a few 32 KiB datagrams
SMALL = 2048


def dump_families(sel: Selection) -> list[int]:
    """The families an inet table's dumps ask for, in ss's order: the one ``-4``/``-6``
    named, else IPv4 then IPv6."""
    pf = sel.preferred_family
    if pf == abi.AF_INET6:
        return [abi.AF_INET6]
    if pf == abi.AF_INET:
        return [abi.AF_INET]
    return [abi.AF_INET, abi.AF_INET6]


def combinable(ctx: Context, protocol: int) -> bool:
    """Whether the dumps of table ``protocol`` can be one legacy TCPDIAG_GETSOCK
    request instead of ss's two SOCK_DIAG_BY_FAMILY ones: the kernel answers it for
    every family (inet_diag_dump_compat asks for AF_UNSPEC) in one walk of its socket
    hash, and each walk costs about a millisecond even when the hash is nearly empty,
    ten and more when other namespaces hold many sockets. The rows are printed IPv4
    first all the same: the walk visits the buckets in the same order for either
    request, so each family's sockets keep the order of their own dump.

    Only for TCP with both families, without -K or -D (whose kills and raw dump follow
    ss's requests) or BPF storage maps (see :func:`inet_request`), and with few
    sockets in this namespace (:data:`SMALL`): with many, the compiled path's two dumps
    run in parallel, faster than one walk."""
    if protocol != abi.IPPROTO_TCP or len(dump_families(ctx.sel)) != 2:
        return False
    if ctx.killer is not None or ctx.tee is not None:
        return False
    if ctx.opts.bpf_storages is not None:
        # ss's requests carry the storage nest, which the kernel may refuse (EPERM):
        # the fallback's order is then the legacy dump's own, not IPv4 first
        return False
    # /proc/net/sockstat counts this namespace's IPv4 sockets ("inuse") and time-wait
    # ones of both families ("tw"), sockstat6 its IPv6 ones ("alloc" is the host's)
    four = _sockstat("/proc/net/sockstat", b"TCP:")
    if four is None:
        return False
    six = _sockstat("/proc/net/sockstat6", b"TCP6:")
    count = four.get(b"inuse", SMALL + 1) + four.get(b"tw", 0)
    return count + (0 if six is None else six.get(b"inuse", SMALL + 1)) <= SMALL


def _sockstat(path: str, head: bytes) -> dict[bytes, int] | None:
    """The counters of the ``head`` line of a /proc/net/sockstat file; None when the file
    or the line cannot be read."""
    try:
        fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    except OSError:
        return None
    try:
        text = posix.read(fd, 4096)
    except OSError:
        return None
    finally:
        posix.close(fd)
    for line in text.split(b"\n"):
        if line.startswith(head):
            words = line.split()
            try:
                return {k: int(v) for k, v in zip(words[1::2], words[2::2], strict=False)}
            except ValueError:
                return None
    return None


def idiag_ext(opts: Options) -> int:
    """The idiag_ext bits ss requests for -m, -i and --tos."""
    ext = 0
    if opts.show_mem:
        ext |= 1 << (abi.INET_DIAG_MEMINFO - 1) | 1 << (abi.INET_DIAG_SKMEMINFO - 1)
    if opts.show_tcpinfo:
        ext |= (
            1 << (abi.INET_DIAG_INFO - 1)
            | 1 << (abi.INET_DIAG_VEGASINFO - 1)
            | 1 << (abi.INET_DIAG_CONG - 1)
        )
    if opts.show_tos:
        ext |= 1 << (abi.INET_DIAG_TOS - 1) | 1 << (abi.INET_DIAG_TCLASS - 1)
    return ext


def inet_request(
    family: int,
    protocol: int,
    states: int,
    ext: int,
    bytecode: bytes | None,
    bpf_storages: bytes | None = None,
) -> bytes:
    """Port of sockdiag_send: a SOCK_DIAG_BY_FAMILY inet_diag_req_v2 dump request.

    ``bpf_storages``: the payload of ss's INET_DIAG_REQ_SK_BPF_STORAGES nest, after the
    protocol attribute as ss puts it (:meth:`bpfstorage.Storages.nest`: empty for
    ``--bpf-maps``, every map, else the fds of the ``--bpf-map-id`` maps). The kernel
    refuses such a dump without CAP_BPF or CAP_SYS_ADMIN (EPERM), and ss then falls back
    as for any refused dump: the legacy request (both families in the kernel's order)
    for TCP, /proc for the others."""
    zero16 = bytes(16)
    body = abi.INET_DIAG_REQ_V2.pack(
        family, protocol & 0xFF, ext, 0, states, b"\0\0", b"\0\0", zero16, zero16, 0, bytes(8)
    )
    if bytecode:
        body += netlink.attr(abi.INET_DIAG_REQ_BYTECODE, bytecode)
    if protocol > 255:
        body += netlink.attr(abi.INET_DIAG_REQ_PROTOCOL, protocol.to_bytes(4, "little"))
    if bpf_storages is not None:
        body += netlink.attr(abi.INET_DIAG_REQ_SK_BPF_STORAGES | abi.NLA_F_NESTED, bpf_storages)
    return netlink.message(abi.SOCK_DIAG_BY_FAMILY, abi.NLM_F_REQUEST | abi.NLM_F_DUMP, body)


def warn_failed(ctx: Context, e: BaseException) -> None:
    """What ss 7.1 prints on stderr when an inet dump fails (libnetlink under
    inet_show_netlink): ``netlink receive error STRERROR (ERRNO)`` for a failed
    recvmsg (__rtnl_recvmsg; EINTR and EAGAIN are retried, by Python too), the
    NLMSG_DONE messages (rtnl_dump_done: never silenced) and ``ERROR truncated``;
    nothing for an NLMSG_ERROR answer (RTNL_HANDLE_F_SUPPRESS_NLERR) or for ENOENT and
    EOPNOTSUPP. A failed -K (KillError) has its own message, printed by the killer."""
    if isinstance(e, KillError | AnswerError) or not isinstance(e, NetlinkError | OSError):
        return
    text = netlink.failure_text(e)
    if text is not None:
        ctx.warn(text)


def storage_nest(opts: Options) -> bytes | None:
    """The payload of the request's storage nest (None: no nest)."""
    storages = opts.bpf_storages
    return None if storages is None else storages.nest()  # type: ignore[attr-defined]


def legacy_request(protocol: int, states: int, ext: int, bytecode: bytes | None) -> bytes | None:
    """Port of tcpdiag_send (TCPDIAG_GETSOCK / DCCPDIAG_GETSOCK, AF_INET: all families)."""
    if protocol == abi.IPPROTO_TCP:
        mtype = abi.TCPDIAG_GETSOCK
    elif protocol == abi.IPPROTO_DCCP:
        mtype = abi.DCCPDIAG_GETSOCK
    else:
        return None
    zero16 = bytes(16)
    body = abi.INET_DIAG_REQ_V1.pack(
        abi.AF_INET, 0, 0, ext, b"\0\0", b"\0\0", zero16, zero16, 0, bytes(8), states, 0
    )
    if bytecode:
        body += netlink.attr(abi.INET_DIAG_REQ_BYTECODE, bytecode)
    return netlink.message(mtype, abi.NLM_F_REQUEST | abi.NLM_F_DUMP, body)


def first_inet_table(ctx: Context) -> str | None:
    """The name of the walk's first table when it is an inet one, else None."""
    sel = ctx.sel
    for name, bits in ORDER:
        if sel.dbs & bits:
            inet = name in INET_TABLES and bool(sel.families & INET_FAMILIES)
            if inet or name in MODULES:
                return name if inet else None
    return None


def covered(ctx: Context, name: str, ext_wanted: bool) -> int | None:
    """The protocol of inet table ``name`` when the C core lists it, else None."""
    if ctx.killer is not None or ctx.tee is not None:
        return None
    if ctx.opts.bpf_storages is not None:
        return None  # the storages are printed by the Python rows (bpfstorage)
    protocol, env_var, _dg = INET_TABLES[name]
    if ext_wanted and not ext_covered(ctx.opts, protocol):
        return None
    if protocol == abi.IPPROTO_RAW:
        return None  # the real protocol comes from an attribute: few sockets, Python
    env = ctx.environ
    if (name == "tcp" and "TCPDIAG_FILE" in env) or env_var in env or "PROC_ROOT" in env:
        # a recorded dump is read as ss reads it, in bounded pieces with its damage
        # rules (source.tcpdiag_file): the Python path
        return None
    return protocol


def ext_covered(opts: Options, protocol: int) -> bool:
    """Whether the C core makes the extra-information cell of this table's rows: the -i
    and -m text of TCP rows (with -o and -O or not), the fast path of
    :func:`sockscope.tables.inet.extinfo._bind`; any other option that adds text there
    (-e, --tos, --cgroup, --inet-sockopt) leaves the table to Python."""
    return (
        protocol == abi.IPPROTO_TCP
        and bool(opts.show_tcpinfo or opts.show_mem)
        and not (opts.show_details or opts.show_tos or opts.show_cgroup or opts.show_inet_sockopt)
    )


def prefetch(ctx: Context) -> tuple[int, Any] | None:
    """(protocol, the compiled core's ``Prefetch``) when the walk's first table is a
    small TCP table of both families that the C core lists (:func:`combinable`): its
    combined dump, already under way in a thread of the core's own; else None (and
    nothing started). :func:`sockscope.tables.inet.fast.table_rows` takes it over."""
    mod = core()
    if mod is None:
        return None
    name = first_inet_table(ctx)
    if name is None:
        return None
    protocol = covered(ctx, name, ctx.opts.inet_wanted)
    if protocol is None or not combinable(ctx, protocol):
        return None
    request = legacy_request(protocol, ctx.sel.states, idiag_ext(ctx.opts), ctx.bytecode)
    if request is None:
        return None
    try:
        return protocol, mod.Prefetch(request, netlink.HDR_UNPACK(request, 0)[3])
    except OSError:  # no descriptor or thread to spare: the dump starts later, as before
        return None
