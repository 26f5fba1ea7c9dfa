"""Gathering: where each table's sockets come from, in ss's order, with its fallbacks.

For every selected table this module picks the source ss would use: a sock_diag dump
(with the filter compiled to kernel bytecode when possible), the legacy
TCPDIAG_GETSOCK request, the ``/proc/net`` files (``PROC_ROOT``/``PROC_NET_*`` force
them), or a recorded dump (``TCPDIAG_FILE``). Ports of ``tcp_show``, ``udp_show``,
``raw_show``, ``mptcp_show``, ``dccp_show``, ``sctp_show``, ``inet_show_netlink``,
``sockdiag_send``, ``tcpdiag_send`` and ``tcp_show_netlink_file`` (iproute2 7.1).
The user-space filter is applied here, so callers only see matching sockets.
"""

from __future__ import annotations

import _socket as socket  # the C module: socket.py costs ~3 ms of start-up (enum, selectors)
import posix  # os without os.py: importing os costs ~1 ms (_collections_abc's ABCs)
from itertools import chain

from sockscope.errors import KillError, NetlinkError
from sockscope.kernel import abi, netlink
from sockscope.tables.context import Context
from sockscope.tables.inet.layout import PROTOCOL
from sockscope.tables.inet.plan import (
    INET_TABLES,
    combinable,
    dump_families,
    idiag_ext,
    inet_request,
    legacy_request,
    storage_nest,
    warn_failed,
)
from sockscope.tables.inet.record import decode_inet, decode_inet_dump, diag_protocol

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import BinaryIO

    from sockscope.tables.inet.record import InetSocket

    Matcher = Callable[[object], bool] | None

#: tables without a legacy (TCPDIAG_GETSOCK) request that have a /proc fallback
_NO_LEGACY = {abi.IPPROTO_UDP: "udp", abi.IPPROTO_RAW: "raw"}


def _apply(
    records: Iterable[InetSocket], ctx: Context, protocol: int, killable: bool = True
) -> Iterator[InetSocket]:
    """The user-space filter, then -K, for one dump (show_one_inet_sock).

    ss kills only on its netlink path: /proc and TCPDIAG_FILE rows pass killable=False.
    """
    match = ctx.matcher
    kill = ctx.killer if killable else None
    if match is None and kill is None:
        yield from records
        return
    for rec in records:
        if match is not None and not match(rec):
            continue
        if kill is not None and not kill(rec, protocol):
            continue
        yield rec


def inet_netlink(ctx: Context, protocol: int) -> Iterator[InetSocket] | None:
    """Port of inet_show_netlink: AF_INET then AF_INET6 dumps; a dump the kernel refuses
    in its first answer is retried with the legacy request (TCPDIAG_GETSOCK).

    Returns None when that failed too so the caller falls back (ss's -1), otherwise an
    iterator over the matching records, produced while the dump runs. A dump that fails
    after its first record ends the table with the records before the failure: ss 7.1
    retries there too and prints them again, sockscope does not (QUIRKS.md, "Sources").
    """
    sel = ctx.sel
    try:
        sock = netlink.open_diag()
    except OSError:
        return None
    families = dump_families(sel)
    ext = idiag_ext(ctx.opts)
    if combinable(ctx, protocol):
        legacy = legacy_request(protocol, sel.states, ext, ctx.bytecode)
        # sockscope's own request: its refusal is not one of ss's, and says nothing
        both = None if legacy is None else _start(sock, legacy, protocol, ctx, quiet=True)
        if both is not None:
            return _by_family(sock, both, protocol, ctx)
        # refused before its first record: ss's own requests
    # ss falls back only when a dump fails as a whole, which the kernel says in its
    # first answer: look at that before handing out any record.
    request = inet_request(
        families[0], protocol, sel.states, ext, ctx.bytecode, storage_nest(ctx.opts)
    )
    first = _start(sock, request, protocol, ctx)
    if first is None:
        legacy = legacy_request(protocol, sel.states, ext, ctx.bytecode)
        first = None if legacy is None else _start(sock, legacy, protocol, ctx)
        if first is None:
            sock.close()
            return None
        families = families[:1]
    return _inet_stream(sock, first, families[1:], protocol, ext, ctx)


def _start(
    sock: socket.socket, request: bytes, protocol: int, ctx: Context, quiet: bool = False
) -> Iterator[InetSocket] | None:
    """Send a dump request; None if the kernel refuses it (after ss's message unless
    ``quiet``, :func:`plan.warn_failed`), else all of its records."""
    try:
        sock.send(request)
    except OSError:
        return None  # EMSGSIZE: the bytecode of a filter of thousands of terms
    seq = netlink.HDR_UNPACK(request, 0)[3]
    state = netlink.DumpState()
    gen = _warn_interrupted(
        decode_inet_dump(netlink.datagrams(sock, ctx.tee), seq, protocol, ctx.sel.families, state),
        state,
        ctx,
    )
    try:
        head = next(gen, None)
    except (NetlinkError, OSError) as e:
        if not quiet:
            warn_failed(ctx, e)
        return None
    return gen if head is None else chain((head,), gen)


def _warn_interrupted(
    records: Iterator[InetSocket], state: netlink.DumpState, ctx: Context
) -> Iterator[InetSocket]:
    """Pass the records on; at the end say so if the kernel flagged NLM_F_DUMP_INTR."""
    yield from records
    if state.interrupted:
        ctx.warn("Dump was interrupted and may be inconsistent.")


def _inet_stream(
    sock: socket.socket,
    first: Iterator[InetSocket],
    rest: list[int],
    protocol: int,
    ext: int,
    ctx: Context,
) -> Iterator[InetSocket]:
    """The matching records of each family's dump in turn. A failure ends the table
    with the records before it (see :func:`inet_netlink`); a failed -K goes on as ss's
    retry does (:func:`_after_kill_failed`)."""
    try:
        yield from _apply(first, ctx, protocol)
        for family in rest:
            req = inet_request(
                family, protocol, ctx.sel.states, ext, ctx.bytecode, storage_nest(ctx.opts)
            )
            recs = _start(sock, req, protocol, ctx)
            if recs is None:
                return
            yield from _apply(recs, ctx, protocol)
    except (NetlinkError, OSError) as e:
        if isinstance(e, KillError):
            yield from _after_kill_failed(sock, protocol, ext, ctx)
        else:
            warn_failed(ctx, e)
        return
    finally:
        sock.close()


def _by_family(
    sock: socket.socket, records: Iterator[InetSocket], protocol: int, ctx: Context
) -> Iterator[InetSocket]:
    """The matching records of a dump of both families (:func:`combinable`) in ss's
    order: the IPv4 ones as they come, the IPv6 ones kept until the dump ends. A
    failure ends the table quietly, with the IPv4 records before it."""
    later = []
    try:
        for rec in _apply(records, ctx, protocol, killable=False):
            if rec.family == abi.AF_INET6:
                later.append(rec)
            else:
                yield rec
    except (NetlinkError, OSError) as e:
        warn_failed(ctx, e)
        return
    finally:
        sock.close()
    yield from later


def _after_kill_failed(
    sock: socket.socket, protocol: int, ext: int, ctx: Context
) -> Iterator[InetSocket]:
    """-K failed (destroy.KillError): what inet_show_netlink does then.

    ss abandons the datagram it was walking and retries with the legacy request, on the
    same socket and with the same sequence number, so what it reads next may still be
    the first dump's: its NLMSG_DONE (the dump fitted in one datagram: the retry
    "succeeds" and nothing more is listed) or more of its sockets (the kill fails again,
    a second message, and the table falls back to /proc, listed without kills). UDP and
    RAW have no legacy request and fall back to /proc at once.
    """
    table = _NO_LEGACY.get(protocol, "tcp" if protocol == abi.IPPROTO_TCP else None)
    legacy = legacy_request(protocol, ctx.sel.states, ext, ctx.bytecode)
    if legacy is not None:
        try:
            sock.send(legacy)
            recs = decode_inet_dump(
                netlink.datagrams(sock, ctx.tee), abi.MAGIC_SEQ, protocol, ctx.sel.families,
                netlink.DumpState(),
            )  # fmt: skip
            yield from _apply(recs, ctx, protocol)
            return
        except (NetlinkError, OSError):
            pass  # the kill failed again, or an error answer: -1
    if table is not None:
        yield from inet_proc(ctx, table)


#: tcp_show_netlink_file reads each message into a 16 KiB buffer on its stack
_FILE_BUF = 16384
#: how far past the start of that buffer's body a longer message can be read before
#: the read reaches the end of the stack and fails with EFAULT ("Bad address"); measured
#: with ss 7.1 (22,000 bytes: mostly read, 24,000: mostly EFAULT, ASLR moves it)
_STACK_ROOM = 23 * 1024
_DIAG_MSG_END = 16 + 72  # NLMSG_LENGTH(sizeof(struct inet_diag_msg))


def tcpdiag_file(ctx: Context, path: str) -> Iterator[InetSocket]:
    """Port of tcp_show_netlink_file: TCP sockets from a recorded dump (TCPDIAG_FILE).

    Like ss, neither the state mask nor the families are applied, only the filter. The
    file is read message by message into a buffer that keeps what earlier messages left
    (a message shorter than its struct shows the stale bytes, as in ss), and never more
    than ss could read: a message longer than ss's stack allows ends the file with
    ``Bad address`` (``TCPDIAG_FILE=/dev/zero``).
    """
    try:
        fd = posix.open(path, posix.O_RDONLY)  # fopen() also opens a directory
    except OSError as e:
        ctx.warn(f"fopen($TCPDIAG_FILE): {posix.strerror(e.errno or 0)}")
        return
    match = ctx.matcher
    mem, info = ctx.opts.show_mem, ctx.opts.show_tcpinfo
    try:
        for rec, deficit, nested in _file_records(fd, ctx):
            if deficit:
                ctx.warn(deficit)  # parse_diag_msg
            if match is not None and not match(rec):
                continue
            if deficit:
                ctx.warn(deficit)  # inet_show_sock parses the attributes again
            # tcp_show_info's nested parses (-m; -i but for UDP)
            if nested and (mem or (info and rec[PROTOCOL] != abi.IPPROTO_UDP)):
                for warning in nested:
                    ctx.warn(warning)
            yield rec
    finally:
        posix.close(fd)


class _FileReader:
    """fread() over a file descriptor: reads in bounded pieces, remembers EOF and errors."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = b""
        self.eof = False
        self.error = 0

    def read(self, count: int) -> bytes:
        parts = []
        have = 0
        if self.pending:
            part = self.pending[:count]
            self.pending = self.pending[count:]
            parts.append(part)
            have = len(part)
        while have < count and not self.eof and not self.error:
            try:
                chunk = posix.read(self.fd, max(65536, min(count - have, 1 << 20)))
            except OSError as e:
                self.error = e.errno or 0
                break
            if not chunk:
                self.eof = True
                break
            need = count - have
            parts.append(chunk[:need])
            self.pending = chunk[need:]
            have += min(len(chunk), need)
        return b"".join(parts)


def _file_records(fd: int, ctx: Context) -> Iterator[tuple[InetSocket, str | None, list[str]]]:
    """The messages of a TCPDIAG_FILE as records, each with its "!!!Deficit" warning and
    those of the nested parses of tcp_show_info."""
    f = _FileReader(fd)
    buf = bytearray(_FILE_BUF)
    high = 0  # how far messages have written into buf
    unpack = abi.NLMSGHDR.unpack_from
    while True:
        head = f.read(16)
        if len(head) != 16:
            if f.error:
                ctx.warn(f"Reading header from $TCPDIAG_FILE: {posix.strerror(f.error)}")
            if f.eof:
                ctx.warn_raw("Unexpected EOF reading $TCPDIAG_FILE")
            return
        length, mtype = unpack(head, 0)[:2]
        # NLMSG_ALIGN(h->nlmsg_len - sizeof(*h)): size_t arithmetic, then the mask ~3U
        # keeps the low 32 bits only
        nitems = (length - 16 + 3) & 0xFFFFFFFC
        room = _FILE_BUF - 16 if nitems <= _FILE_BUF - 16 else _STACK_ROOM
        body = f.read(min(nitems, room + 1))
        if len(body) > room:
            ctx.warn("Reading $TCPDIAG_FILE: Bad address")  # the read ran off the stack
            return
        if len(body) != nitems:
            if f.error:
                ctx.warn(f"Reading $TCPDIAG_FILE: {posix.strerror(f.error)}")
            if f.eof:
                ctx.warn_raw("Unexpected EOF reading $TCPDIAG_FILE")
            return
        if 16 + nitems > len(buf):
            buf.extend(bytes(16 + nitems - len(buf)))
        buf[0:16] = head
        buf[16 : 16 + nitems] = body
        if mtype == abi.NLMSG_DONE:
            return
        if mtype == abi.NLMSG_ERROR:
            if length < 16 + abi.NLMSGERR.size + 16:
                ctx.warn("ERROR truncated")
            else:
                (err,) = abi.NLMSGERR.unpack_from(buf, 16)
                code = -err if err != -(2**31) else err  # errno = -err->error, a C int
                ctx.warn(f"TCPDIAG answered: {posix.strerror(code)}")
            return
        end = max(length, _DIAG_MSG_END)
        # with the stale bytes after the message that ss's printers read through: all
        # that longer messages before it left in the buffer (an md5 key's length can
        # reach them, thousands of bytes on), and at least 512 bytes of it
        high = max(high, 16 + nitems)
        snapshot = bytes(buf[: max(high, max(16 + nitems, _DIAG_MSG_END) + 512)])
        # inet_show_sock takes the protocol from INET_DIAG_PROTOCOL (NLA_F_NESTED masked
        # off) when the message has one: a damaged dump can make a TCP row SCTP or UDP
        proto = diag_protocol(snapshot, _DIAG_MSG_END, end, abi.IPPROTO_TCP)
        rec = next(decode_inet([(mtype, snapshot, 0, end)], proto))
        yield rec, _deficit(buf, length), _ulp_deficits(buf, length, proto)


def _deficit(buf: bytes | bytearray, length: int) -> str | None:
    """parse_rtattr's "!!!Deficit" warning for the attributes of the message in ``buf``."""
    left = ((length - _DIAG_MSG_END) & 0xFFFFFFFF) ^ 0x80000000
    left -= 0x80000000  # the u32 difference passed as an int
    return _walk_deficit(buf, _DIAG_MSG_END, left)


def _first_attr(buf: bytes | bytearray, off: int, left: int, want: int, mask: int) -> int | None:
    """The offset of the first attribute of type ``want`` parse_rtattr_flags indexes."""
    while left >= 4:
        rta_len, rtype = abi.RTATTR.unpack_from(buf, off)
        if rta_len < 4 or rta_len > left:
            return None
        if rtype & mask == want:
            return off
        step = (rta_len + 3) & ~3
        left -= step
        off += step
    return None


def _ulp_deficits(buf: bytes | bytearray, length: int, proto: int) -> list[str]:
    """The "!!!Deficit" warnings of tcp_show_info's nested parses: INET_DIAG_ULP_INFO,
    then its INET_ULP_INFO_TLS and INET_ULP_INFO_MPTCP (each parse_rtattr_nested over
    RTA_PAYLOAD of its attribute; the payload's last attribute may be unaligned, so
    what is left can be negative, as in ss)."""
    left = ((length - _DIAG_MSG_END) & 0xFFFFFFFF) ^ 0x80000000
    left -= 0x80000000
    out: list[str] = []
    if proto in (abi.IPPROTO_SCTP, abi.IPPROTO_MPTCP):
        return out  # sctp_show_info, mptcp_show_info: no ULP
    ulp = _first_attr(buf, _DIAG_MSG_END, left, abi.INET_DIAG_ULP_INFO, abi.SS_TYPE_MASK)
    if ulp is None:
        return out
    parts: list[int] = [ulp]
    for want in (2, 3):  # INET_ULP_INFO_TLS, INET_ULP_INFO_MPTCP
        inner = _first_attr(
            buf, ulp + 4, abi.RTATTR.unpack_from(buf, ulp)[0] - 4, want, abi.SS_TYPE_MASK
        )
        if inner is not None:
            parts.append(inner)
    for at in parts:
        warning = _walk_deficit(buf, at + 4, abi.RTATTR.unpack_from(buf, at)[0] - 4)
        if warning:
            out.append(warning)
    return out


def _walk_deficit(buf: bytes | bytearray, off: int, left: int) -> str | None:
    """What parse_rtattr leaves of ``left`` bytes of attributes at ``off``, as its warning."""
    while left >= 4:
        rta_len = int.from_bytes(buf[off : off + 2], "little")
        if rta_len < 4 or rta_len > left:
            break
        step = (rta_len + 3) & ~3
        left -= step
        off += step
    if not left:
        return None
    rta_len = int.from_bytes(buf[off : off + 2].ljust(2, b"\0"), "little")
    return f"!!!Deficit {left}, rta_len={rta_len}"


def inet_proc(ctx: Context, table: str) -> Iterator[InetSocket]:
    """The /proc/net fallbacks of tcp_show, udp_show and raw_show."""
    from sockscope.tables.inet import procfs  # the fallback: off the netlink path

    sel = ctx.sel
    env = ctx.environ
    name = {"tcp": "tcp", "udp": "udp", "raw": "raw"}[table]
    var = "PROC_NET_" + name.upper()
    protocol = {"tcp": abi.IPPROTO_TCP, "udp": abi.IPPROTO_UDP, "raw": 0}[table]
    buf = procfs.line_buffer()
    for family, fname, fvar in ((abi.AF_INET, name, var), (abi.AF_INET6, name + "6", var + "6")):
        if not sel.families & (1 << family):
            continue
        data = procfs.open_table(fname, fvar, env)
        if data is None:
            if family == abi.AF_INET:
                return  # the v4 file missing is an error: the table is abandoned
            continue
        if table == "tcp":
            recs = procfs.tcp_sockets(data, family, sel.states, buf)
        else:
            recs = procfs.dgram_sockets(data, family, sel.states, protocol, buf)
        try:
            yield from _apply(recs, ctx, protocol, killable=False)
        except procfs.TableAborted:
            return  # a damaged line: ss's tcp_show skips tcp6 too ("goto outerr")


def inet_table(ctx: Context, table: str) -> Iterator[InetSocket]:
    """All matching sockets of one inet table, from the source ss would use."""
    sel = ctx.sel
    if not sel.families & ((1 << abi.AF_INET) | (1 << abi.AF_INET6)):
        return iter(())
    protocol, env_var, _dg = INET_TABLES[table]
    env = ctx.environ
    if table == "tcp" and "TCPDIAG_FILE" in env:
        return tcpdiag_file(ctx, env["TCPDIAG_FILE"])
    if env_var not in env and "PROC_ROOT" not in env:
        recs = inet_netlink(ctx, protocol)
        if recs is not None:
            return recs
    if table in ("tcp", "udp", "raw"):
        return inet_proc(ctx, table)
    return iter(())


def dump_tcp(ctx: Context, out: BinaryIO) -> None:
    """-D: write the raw TCP dump(s), no bytecode and no filtering (inet_show_netlink)."""
    ctx.tee = out
    ctx.bytecode = None
    ctx.matcher = None
    recs = inet_netlink(ctx, abi.IPPROTO_TCP)
    if recs is not None:
        for _ in recs:
            pass
