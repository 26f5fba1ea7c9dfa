"""Netlink transport: NETLINK_SOCK_DIAG sockets, dump requests, the receive loop.

This module knows nlmsghdr framing and error handling, nothing about socket families.
A dump yields the kernel's messages as ``(nlmsg_type, buffer, offset, length)`` so that
decoders read them in place with one precompiled :class:`struct.Struct` call, without
copying. It mirrors iproute2's ``rtnl_dump_filter_l``: messages with a foreign sequence
number or port id are skipped, ``NLMSG_DONE`` ends the dump (a negative payload is an
error), ``NLMSG_ERROR`` is an error, ``NLM_F_DUMP_INTR`` is reported to the caller.
Recorded dumps (``ss -D`` files, ``TCPDIAG_FILE``) are read by :func:`replay`.

Receive buffers are sized on demand, as libnetlink's ``rtnl_recvmsg`` does: the length of
the next datagram is peeked first (``MSG_PEEK | MSG_TRUNC`` into one byte), and the
buffer, 32 KiB to begin with (the kernel's usual size for a dump datagram), grows only
when a datagram is larger (a socket with a large BPF storage value). A dump in progress
holds its socket and that buffer; both go when its generator is closed, exhausted or
dropped.
"""

from __future__ import annotations

import errno as _errno
import posix  # os without os.py: importing os costs ~1 ms (_collections_abc's ABCs)
import sys

from sockscope.errors import AnswerError, NetlinkError
from sockscope.kernel import abi

TYPE_CHECKING = False

if TYPE_CHECKING:
    import _socket as socket
    from collections.abc import Iterator
    from typing import BinaryIO

    Message = tuple[int, bytes, int, int]

_HDR = abi.NLMSGHDR
_HDR_SIZE = _HDR.size
#: nlmsghdr decoder for walkers outside this module
HDR_UNPACK = _HDR.unpack_from
#: the first receive buffer: netlink_recvmsg caps a dump's datagrams at 32 KiB
#: (``max_recvmsg_len``), and sock_diag asks for no larger minimum
RECV_START = 32768
_PEEK_LENGTH = abi.MSG_PEEK | abi.MSG_TRUNC


class DumpState:
    """What a finished dump reported besides its messages (``NLM_F_DUMP_INTR``)."""

    __slots__ = ("interrupted",)

    def __init__(self) -> None:
        self.interrupted = False


def open_diag(protocol: int = abi.NETLINK_SOCK_DIAG) -> socket.socket:
    """Open and bind a netlink socket as ss's ``rtnl_open_byproto`` does."""
    # the C module (socket.py costs ~3 ms of start-up: enum, selectors), imported here:
    # a listing whose dump the compiled core receives loads no socket module (a shared
    # library, ~0.2 ms)
    import _socket as socket

    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, protocol)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.setsockopt(abi.SOL_NETLINK, abi.NETLINK_EXT_ACK, 1)
        sock.bind((0, 0))
    except OSError:
        sock.close()
        raise
    return sock


def message(nlmsg_type: int, flags: int, payload: bytes, seq: int = abi.MAGIC_SEQ) -> bytes:
    """One netlink message: an nlmsghdr followed by ``payload`` (already aligned)."""
    return _HDR.pack(_HDR_SIZE + len(payload), nlmsg_type, flags, seq, 0) + payload


def attr(rta_type: int, data: bytes) -> bytes:
    """One rtattr, padded to 4 bytes. rta_len is a u16: a longer payload (the bytecode of
    a filter of thousands of terms) wraps it, as in ss."""
    length = abi.RTATTR.size + len(data)
    return abi.RTATTR.pack(length & 0xFFFF, rta_type) + data + b"\0" * (-length & 3)


def _raise_errno(err: int, what: str) -> None:
    raise NetlinkError(f"{what}: {posix.strerror(err)}", err)


def dump(
    sock: socket.socket,
    request: bytes,
    tee: BinaryIO | None = None,
    state: DumpState | None = None,
) -> Iterator[Message]:
    """Send a dump request and yield every reply message until ``NLMSG_DONE``.

    Raises :class:`NetlinkError` for an ``NLMSG_ERROR`` reply or a negative
    ``NLMSG_DONE``. With ``tee``, every datagram received is also written verbatim, the
    format of ``ss -D``.
    """
    sock.send(request)
    local_pid = sock.getsockname()[0]
    seq = _HDR.unpack_from(request, 0)[3]
    unpack = _HDR.unpack_from
    for buf in datagrams(sock, tee):
        off = 0
        end = len(buf)
        while off + _HDR_SIZE <= end:
            length, mtype, flags, mseq, pid = unpack(buf, off)
            if length < _HDR_SIZE or off + length > end:
                break
            if mseq != seq or pid != local_pid:
                off += (length + 3) & ~3
                continue
            if flags & abi.NLM_F_DUMP_INTR and state is not None:
                state.interrupted = True
            if mtype == abi.NLMSG_DONE:
                _done(buf, off, length)
                return
            if mtype == abi.NLMSG_ERROR:
                _error_of(buf, off, length)
            else:
                yield mtype, buf, off, length
            off += (length + 3) & ~3


def drain(sock: socket.socket) -> None:
    """Drop what a dump left unread in ``sock`` (its reader stopped before the end): on a
    socket kept for the next dump, those messages would pass for that dump's, whose
    sequence number is the same."""
    sock.setblocking(False)
    try:
        while sock.recv(1 << 16):
            pass
    except (BlockingIOError, InterruptedError):
        pass
    finally:
        sock.setblocking(True)


def datagrams(sock: socket.socket, tee: BinaryIO | None = None) -> Iterator[bytes]:
    """The raw datagrams of a dump in progress, for decoders that walk them in place.

    The consumer walks the messages itself (one loop per message instead of two) and
    hands every message that is not data to :func:`control`; it stops at the end of
    the dump. With ``tee`` every datagram is also written verbatim (``ss -D``).
    """
    scratch = bytearray(RECV_START)
    view = memoryview(scratch)
    recv_into = sock.recv_into
    # one byte: CPython's recv_into returns 0 for a request of 0 bytes without calling
    # recv, so a zero-length peek never happened and a datagram over 32 KiB (a socket
    # with a large BPF storage value) lost its end
    one = bytearray(1)
    try:
        while True:
            # the next datagram's length, one byte copied (rtnl_recvmsg's first call)
            need = recv_into(one, 1, _PEEK_LENGTH)
            if need == 0:  # __rtnl_recvmsg: a read of nothing ends the dump, failed
                raise NetlinkError("EOF on netlink", _errno.ENODATA)
            if need > len(scratch):
                view.release()
                scratch = bytearray(need)
                view = memoryview(scratch)
            # recv() would allocate a fresh buffer per datagram; copy out only what came
            buf = bytes(view[: recv_into(scratch)])
            if tee is not None:
                tee.write(buf + b"\0" * (-len(buf) & 3))
            yield buf
    finally:
        view.release()


def control(mtype: int, buf: bytes, off: int, length: int) -> bool:
    """A control message met while walking a dump: True at ``NLMSG_DONE``.

    Raises :class:`NetlinkError` for ``NLMSG_ERROR`` or a negative ``NLMSG_DONE``, as
    :func:`dump` does; ``NLMSG_NOOP`` and the like are skipped (False).
    """
    if mtype == abi.NLMSG_DONE:
        _done(buf, off, length)
        return True
    if mtype == abi.NLMSG_ERROR:
        _error_of(buf, off, length)
    return False


#: NLMSG_LENGTH(sizeof(struct nlmsgerr)): the error code and the request's header
_ERROR_SIZE = _HDR_SIZE + 20


def _error_of(buf: bytes, off: int, length: int) -> None:
    """rtnl_dump_error: an NLMSG_ERROR too short for its struct nlmsgerr is "ERROR
    truncated" (not read past its end); a negative error is raised as ss's perror, an
    :class:`AnswerError` (the inet dumps do not print it)."""
    if length < _ERROR_SIZE or off + _ERROR_SIZE > len(buf):
        raise NetlinkError("ERROR truncated\n", 0)
    (err,) = abi.NLMSGERR.unpack_from(buf, off + _HDR_SIZE)
    if err < 0:
        code = _c_negate(err)
        raise AnswerError(f"RTNETLINK answers: {posix.strerror(code)}", code)


def _c_negate(err: int) -> int:
    """``errno = -err`` in C ints: INT_MIN stays INT_MIN (strerror says "Unknown error
    -2147483648")."""
    return err if err == _INT_MIN else -err


_INT_MIN = -(2**31)


def _done(buf: bytes, off: int, length: int) -> None:
    """rtnl_dump_done: an NLMSG_DONE without its int is "DONE truncated" (the dump
    failed); a negative one is the dump's error: ENOENT and EOPNOTSUPP silent (the
    caller's rule, :data:`SILENT_ERRNOS`), EMSGSIZE ss's own sentence, others perror.
    Unlike NLMSG_ERROR, none of these is silenced for the inet dumps."""
    if length < _HDR_SIZE + 4 or off + _HDR_SIZE + 4 > len(buf):
        raise NetlinkError("DONE truncated\n", 0)
    (err,) = abi.NLMSGERR.unpack_from(buf, off + _HDR_SIZE)
    if err < 0:
        code = _c_negate(err)
        if code == _errno.EMSGSIZE:
            raise NetlinkError("Error: Buffer too small for object.", code)
        raise NetlinkError(f"RTNETLINK answers: {posix.strerror(code)}", code)


#: the first nlmsg_type that carries data (NLMSG_MIN_TYPE); lower ones are control
NLMSG_MIN_TYPE = 0x10


def replay(data: bytes) -> Iterator[Message]:
    """Yield the messages of a recorded dump up to its first ``NLMSG_DONE``.

    This is how ss reads ``TCPDIAG_FILE``: only the first dump of a file that holds
    several (``ss -D`` writes the IPv4 then the IPv6 dump) is used. A truncated file or an
    ``NLMSG_ERROR`` record raises :class:`NetlinkError` carrying ss's exact stderr text
    (the EOF message has no newline, as in ss).
    """
    off = 0
    end = len(data)
    unpack = _HDR.unpack_from
    while True:
        if off + _HDR_SIZE > end:
            raise NetlinkError("Unexpected EOF reading $TCPDIAG_FILE", 0)
        length, mtype, _flags, _seq, _pid = unpack(data, off)
        body = (length - _HDR_SIZE + 3) & ~3
        if length < _HDR_SIZE or off + _HDR_SIZE + body > end:
            raise NetlinkError("Unexpected EOF reading $TCPDIAG_FILE", 0)
        if mtype == abi.NLMSG_DONE:
            return
        if mtype == abi.NLMSG_ERROR:
            if length < _HDR_SIZE + abi.NLMSGERR.size + _HDR_SIZE:
                raise NetlinkError("ERROR truncated\n", 0)
            (err,) = abi.NLMSGERR.unpack_from(data, off + _HDR_SIZE)
            code = -err if err != -(2**31) else err  # errno = -err->error, a C int
            raise NetlinkError(f"TCPDIAG answered: {posix.strerror(code)}\n", code)
        yield mtype, data, off, length
        off += _HDR_SIZE + body


def talk(sock: socket.socket, request: bytes) -> None:
    """Send one request with NLM_F_ACK and wait for its acknowledgement (for -K)."""
    sock.send(request)
    seq = _HDR.unpack_from(request, 0)[3]
    while True:
        buf = sock.recv(65536)
        off = 0
        while off + _HDR_SIZE <= len(buf):
            length, mtype, _flags, mseq, _pid = _HDR.unpack_from(buf, off)
            if length < _HDR_SIZE:
                break
            if mseq == seq and mtype == abi.NLMSG_ERROR:
                (err,) = abi.NLMSGERR.unpack_from(buf, off + _HDR_SIZE)
                if err < 0:
                    _raise_errno(-err, "RTNETLINK answers")
                return
            off += (length + 3) & ~3


def through(buf: bytes, start: int, size: int) -> tuple[bytes, int]:
    """``size`` bytes at ``start`` whatever the payload's length, as ss reads a struct
    from RTA_DATA without checking RTA_PAYLOAD: a short payload is read through into
    the bytes that follow it in the buffer (zeros only past the buffer's end)."""
    if start + size <= len(buf):
        return buf, start
    return bytes(buf[start : start + size]).ljust(size, b"\0"), 0


def attrs(
    buf: bytes,
    off: int,
    end: int,
    mask: int = abi.SS_TYPE_MASK,
    maxtype: int = 0xFFFF,
) -> dict[int, tuple[int, int]]:
    """Index the rtattrs in ``buf[off:end]``: type -> (payload start, payload end).

    The one attribute walker (lib/libnetlink.c:parse_rtattr_flags): the first attribute
    of a type wins; ``mask`` clears flag bits from the type first (NLA_F_NESTED by
    default, as inet_show_sock and parse_rtattr_nested; ``0xFFFF`` for parse_rtattr,
    which clears none);
    types above ``maxtype`` are ignored; a header with a bad length ends the walk.
    """
    out: dict[int, tuple[int, int]] = {}
    unpack = abi.RTATTR.unpack_from
    while off + 4 <= end:
        length, rtype = unpack(buf, off)
        if length < 4 or off + length > end:
            break
        rtype &= mask
        if rtype <= maxtype and rtype not in out:
            out[rtype] = (off + 4, off + length)
        off += (length + 3) & ~3
    return out


def exact(
    buf: bytes, spans: dict[int, tuple[int, int]], off: int, end: int, rtype: int
) -> tuple[int, int] | None:
    """The span parse_rtattr (no flag masked) finds for ``rtype``, from ``spans`` that
    :func:`attrs` indexed with the flags masked off: parse_diag_msg reads INET_DIAG_MARK
    and INET_DIAG_CGROUP_ID so, where inet_show_sock masks NLA_F_NESTED (a damaged
    dump sets it). The masked span is the answer when its type has no flag bit."""
    span = spans.get(rtype)
    if span is None or int.from_bytes(buf[span[0] - 2 : span[0]], sys.byteorder) == rtype:
        return span
    return attrs(buf, off, end, 0xFFFF, rtype).get(rtype)


#: errno values that make a sock_diag dump fail silently in ss (the kernel lacks the module)
SILENT_ERRNOS = frozenset({_errno.ENOENT, _errno.EOPNOTSUPP})


def receive_error(err: int) -> str:
    """__rtnl_recvmsg's perror of a failed recvmsg (EINTR and EAGAIN are retried)."""
    return f"netlink receive error {posix.strerror(err)} ({err})"


def failure_text(e: NetlinkError | OSError) -> str | None:
    """What libnetlink prints when a dump fails with ``e``: the error's own message, none
    for ENOENT and EOPNOTSUPP (:data:`SILENT_ERRNOS`), or a failed recvmsg's."""
    if isinstance(e, NetlinkError):
        return None if e.errno in SILENT_ERRNOS else e.message
    return receive_error(e.errno or 0)
