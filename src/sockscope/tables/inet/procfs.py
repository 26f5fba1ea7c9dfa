"""Everything ss reads below ``/proc`` (or ``$PROC_ROOT``) for the inet tables.

These are the fallbacks ss uses when a sock_diag dump fails (RAW on kernels without
raw_diag) or when ``PROC_ROOT``/``PROC_NET_*`` point it at files: ports of
``proc_inet_split_line``, ``proc_parse_inet_addr``, ``tcp_show_line``,
``dgram_show_line`` and ``generic_record_read`` (iproute2 7.1).
"""

from __future__ import annotations

import os
import struct

from sockscope.kernel import abi
from sockscope.kernel.iproute import proc_path
from sockscope.kernel.libc import fgets, int32, scan_ints, sscanf
from sockscope.tables.inet.record import InetSocket, make_proc_inet

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

_V4 = struct.Struct("=I")
_V6 = struct.Struct("=IIII")
_ZERO16 = bytes(16)


def user_hz() -> int:
    """lib/utils.c:__get_user_hz: sysconf(_SC_CLK_TCK)."""
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError):
        return 100


def open_table(name: str, env_var: str, environ: dict[str, str]) -> bytes | None:
    """Read /proc/net/<name> (or $env_var) whole, None if it cannot be opened."""
    try:
        with open(proc_path(f"net/{name}", env_var, environ), "rb") as f:
            return _read_lines_part(f)
    except OSError:
        return None


def _read_lines_part(f: BinaryIO) -> bytes:
    """The part of the file that :func:`_lines` reads, read in bounded pieces: up to the
    first line (after the header) with no newline in 255 bytes, where ss's
    generic_record_read stops (a link to ``/dev/zero`` ends after 510 bytes)."""
    buf = bytearray()
    pos = 0
    first = True
    eof = False
    while True:
        nl = buf.find(b"\n", pos, pos + 255)
        if nl < 0 and len(buf) - pos < 255 and not eof:
            try:
                chunk = f.read(1 << 16)
            except OSError:
                chunk = b""  # fgets() returning NULL: the end of the file for ss
            eof = not chunk
            buf += chunk
            continue
        if pos >= len(buf):
            return bytes(buf)
        if first:
            first = False
            pos = pos + 255 if nl < 0 else nl + 1
            continue
        if nl < 0:
            return bytes(buf[: pos + 255])  # the line that stops it is kept: it says so
        pos = nl + 1


#: generic_record_read's ``char line[256]``, with room for what proc_inet_split_line's
#: ``p[5] = 0`` writes past it and what strchr reads there (other stack bytes: zeros)
_BUF_SIZE = 256 + 256


def _lines(data: bytes, buf: bytearray) -> Iterator[bytearray]:
    """Port of generic_record_read: skip the header, then hand each line to the worker in
    ss's one line buffer, whose bytes past the line are what earlier lines left there.

    fgets reads at most 255 bytes and ends them with a NUL; a read whose C string does
    not end in a newline (a line of 255 bytes or more, an unterminated last line, a NUL
    inside the line) makes generic_record_read fail: :class:`TableAborted`. The newline
    becomes the string's end, as ``line[n-1] = 0`` makes it.
    """
    first = True
    for piece in fgets(data):
        size = len(piece)
        buf[:size] = piece
        buf[size] = 0
        if first:
            first = False
            continue
        n = buf.find(0)
        if n == 0 or buf[n - 1] != 10:
            raise TableAborted
        buf[n - 1] = 0
        yield buf


class TableAborted(Exception):
    """generic_record_read returned -1: ss skips the rest of the table (tcp6 too)."""


def _strchr(buf: bytearray, start: int, ch: int) -> int:
    """strchr on the C string at ``start`` of the line buffer: an index, or -1."""
    end = buf.find(0, start)
    return buf.find(ch, start, len(buf) if end < 0 else end)


def _cstr(buf: bytearray, start: int) -> bytes:
    end = buf.find(0, start)
    return bytes(buf[start:end]) if end >= 0 else bytes(buf[start:])


def _split(buf: bytearray) -> tuple[int, int, int] | None:
    """Port of proc_inet_split_line: the offsets of the local address, the remote address
    and the data in the line buffer, each address cut ``p[5] = 0`` after its colon (a
    write that may land past the line's end, into what an earlier line left)."""
    p = _strchr(buf, 0, 58)
    if p < 0:
        return None
    loc = p + 2
    p = _strchr(buf, loc, 58)
    if p < 0:
        return None
    buf[p + 5] = 0
    rem = p + 6
    p = _strchr(buf, rem, 58)
    if p < 0:
        return None
    buf[p + 5] = 0
    return loc, rem, p + 6


_V4_FMT = "%x:%x"
_V6_FMT = "%08x%08x%08x%08x:%x"


def _addr(text: bytes, family: int) -> tuple[bytes, int]:
    """proc_parse_inet_addr for one side: (16 address bytes, port); what sscanf does not
    assign stays zero."""
    if family == abi.AF_INET:
        vals = scan_ints(text, _V4_FMT, 2)[1]
        return _V4.pack(vals[0]) + bytes(12), vals[1]
    vals = scan_ints(text, _V6_FMT, 5)[1]
    return _V6.pack(*vals[:4]), vals[4]


def _state_bit(ch: int) -> int:
    """tcp_show_line's ``1 << state`` for the state read from the field's second char
    (a signed char; the shift count is taken modulo 32, as x86 does)."""
    if ch >= 128:
        ch -= 256
    state = ch - 55 if ch >= 65 else ch - 48
    return 1 << (state & 31)


def _entries(
    data: bytes, family: int, states: int, buf: bytearray
) -> Iterator[tuple[bytes, int, bytes, int, bytes]]:
    """The lines of a /proc/net/{tcp,udp,raw}[6] file whose state is selected, as (local
    address, port, remote address, port, the data text); a line ss cannot split ends the
    file, as it ends tcp_show_line's and dgram_show_line's loop."""
    for line in _lines(data, buf):
        parts = _split(line)
        if parts is None:
            return
        loc, rem, at = parts
        if not states & _state_bit(line[at + 1]):
            continue
        src, lport = _addr(_cstr(line, loc), family)
        dst, rport = _addr(_cstr(line, rem), family)
        yield src, lport, dst, rport, _cstr(line, at)


def line_buffer() -> bytearray:
    """The line buffer of one table (tcp and tcp6 share it, as the two calls of
    generic_record_read share their stack frame)."""
    return bytearray(_BUF_SIZE)


_TCP_FMT = "%x %x:%x %x:%x %x %d %d %u %d %llx %d %d %d %u %d %[^\n]\n"
_DGRAM_FMT = "%x %x:%x %*x:%*x %*x %d %*d %u %d %llx %[^\n]\n"


def tcp_sockets(
    data: bytes, family: int, states: int, buf: bytearray | None = None
) -> Iterator[InetSocket]:
    """Port of tcp_show_line over a whole /proc/net/tcp[6] file."""
    hz = user_hz()
    if buf is None:
        buf = line_buffer()
    for src, lport, dst, rport, text in _entries(data, family, states, buf):
        n, vals = sscanf(text, _TCP_FMT)
        opt = vals.pop() if n >= 17 else b""
        v = [x if isinstance(x, int) else 0 for x in vals] + [0] * (16 - len(vals))
        state, wq, rq, timer, timeout, retrans, uid, probes, ino, refcnt, sk = v[:11]
        rto, ato, qack, cwnd, ssthresh = v[11:16]
        if n < 12:
            rto, cwnd, ssthresh, ato, qack = 0, 2, -1, 0, 0
        retrans = int32(retrans if timer == 1 else probes)  # printed with %d
        expires = ((timeout * 1000 + hz - 1) & 0xFFFFFFFF) // hz  # unsigned arithmetic
        qack = int(qack / 2)  # C's division truncates towards zero
        rto_v = 0.0 if rto == 3 * hz else rto / hz
        ssthresh = 0 if ssthresh == -1 else ssthresh
        text_opt = opt.decode("latin-1") if isinstance(opt, bytes) else ""
        extra = (refcnt, rto_v, ato / hz, qack, cwnd, ssthresh, text_opt)
        yield make_proc_inet(
            family, state, lport, rport, src, dst, rq, wq, uid & 0xFFFFFFFF, ino,
            abi.IPPROTO_TCP, timer, retrans, expires, sk, extra,
        )  # fmt: skip


def dgram_sockets(
    data: bytes, family: int, states: int, protocol: int, buf: bytearray | None = None
) -> Iterator[InetSocket]:
    """Port of dgram_show_line (UDP, and RAW where the "port" is the protocol)."""
    if buf is None:
        buf = line_buffer()
    for src, lport, dst, rport, text in _entries(data, family, states, buf):
        # the count is never compared right (n < 9 of 8 conversions): no opt text
        v = scan_ints(text, _DGRAM_FMT, 8)[1]
        state, wq, rq, uid, ino, _refcnt, sk = v[:7]
        yield make_proc_inet(
            family, state, lport, rport, src, dst, rq, wq, uid & 0xFFFFFFFF, ino, protocol,
            sk=sk,
        )  # fmt: skip
