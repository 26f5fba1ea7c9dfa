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
from sockscope.tables.inet.layout import PROC_EXTRA
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


def _lines(data: bytes) -> Iterator[bytes]:
    """Port of generic_record_read: skip the header, stop at a line that is not whole.

    ss reads with a 256-byte fgets buffer: a read that does not end in a newline (a
    line of 255 bytes or more, or an unterminated last line) aborts the whole file.
    The header is skipped with one such read, so a header longer than 255 bytes leaves
    its tail to be read as the first line.
    """
    pos = 0
    end = len(data)
    first = True
    while pos < end:
        nl = data.find(b"\n", pos, pos + 255)
        if first:
            first = False
            pos = pos + 255 if nl < 0 else nl + 1
            continue
        if nl < 0 or data.find(b"\0", pos, nl) >= 0:
            # no newline in the 255 bytes fgets read, or a NUL that ends strlen() before
            # it: generic_record_read fails, and tcp_show/dgram_show give up the table
            raise TableAborted
        yield data[pos:nl]
        pos = nl + 1


class TableAborted(Exception):
    """generic_record_read returned -1: ss skips the rest of the table (tcp6 too)."""


def _split(line: bytes) -> tuple[bytes, bytes, bytes] | None:
    """Port of proc_inet_split_line."""
    p = line.find(b":")
    if p < 0:
        return None
    loc_start = p + 2
    p = line.find(b":", loc_start)
    if p < 0:
        return None
    loc = line[loc_start : p + 5]
    rem_start = p + 6
    p = line.find(b":", rem_start)
    if p < 0:
        return None
    return loc, line[rem_start : p + 5], line[p + 6 :]


def _hex(text: bytes) -> int:
    """sscanf %x on a possibly empty or junk-ended field (0 when nothing parses)."""
    digits = 0
    n = 0
    for ch in text:
        if 48 <= ch <= 57:
            digits = digits * 16 + ch - 48
        elif 97 <= ch <= 102 or 65 <= ch <= 70:
            digits = digits * 16 + (ch | 32) - 87
        else:
            break
        n += 1
    return digits if n else 0


def _addr(text: bytes, family: int) -> tuple[bytes, int]:
    """proc_parse_inet_addr for one side: (16 address bytes, port)."""
    addr, _, port = text.partition(b":")
    if family == abi.AF_INET:
        data = _V4.pack(_hex(addr) & 0xFFFFFFFF) + bytes(12)
    else:
        words = [_hex(addr[i : i + 8]) & 0xFFFFFFFF for i in range(0, 32, 8)]
        data = _V6.pack(*words)
    return data, _hex(port)


def _state(data: bytes) -> int:
    ch = data[1] if len(data) > 1 else 48
    return ch - 55 if ch >= 65 else ch - 48


def _ints(fields: list[bytes]) -> list[int]:
    out = []
    for f in fields:
        try:
            out.append(int(f, 0 if f.startswith(b"0x") else 10))
        except ValueError:
            break
    return out


def tcp_sockets(data: bytes, family: int, states: int) -> Iterator[InetSocket]:
    """Port of tcp_show_line over a whole /proc/net/tcp[6] file."""
    hz = user_hz()
    for state, src, lport, dst, rport, rest in _entries(data, family, states):
        yield _tcp_record(family, state, src, lport, dst, rport, rest, hz)


def _entries(
    data: bytes, family: int, states: int
) -> Iterator[tuple[int, bytes, int, bytes, int, bytes]]:
    """The lines of a /proc/net/{tcp,udp,raw}[6] file whose state is selected, as (state,
    local address, port, remote address, port, the rest of the line); a line ss cannot
    parse ends the file, as it ends tcp_show_line's and dgram_show_line's loop."""
    for line in _lines(data):
        parts = _split(line)
        if parts is None:
            return
        loc, rem, rest = parts
        state = _state(rest)
        if not 0 <= state < 32 or not states & (1 << state):
            continue
        src, lport = _addr(loc, family)
        dst, rport = _addr(rem, family)
        yield state, src, lport, dst, rport, rest


def _tcp_record(
    family: int, state: int, src: bytes, lport: int, dst: bytes, rport: int, rest: bytes, hz: int
) -> InetSocket:
    # "%x %x:%x %x:%x %x %d %d %u %d %llx %d %d %d %u %d %[^\n]"
    f = rest.split()
    wq, _, rq = f[1].partition(b":") if len(f) > 1 else (b"0", b"", b"0")
    timer, _, timeout = f[2].partition(b":") if len(f) > 2 else (b"0", b"", b"0")
    nums = _ints(f[4:10]) if len(f) > 4 else []
    nums += [0] * (6 - len(nums))
    retrans_ = _hex(f[3]) if len(f) > 3 else 0
    uid, probes, ino, refcnt = nums[0], nums[1], nums[2], nums[3]
    sk = _hex(f[8]) if len(f) > 8 else 0
    tail = _ints(f[9:14])
    opt = b" ".join(f[14:]).decode("latin-1") if len(f) > 14 else ""
    if len(tail) < 1:
        rto, ato, qack, cwnd, ssthresh = 0, 0, 0, 2, -1
    else:
        tail += [0] * (5 - len(tail))
        rto, ato, qack, cwnd, ssthresh = tail
    tmr = _hex(timer)
    retrans = retrans_ if tmr == 1 else probes
    expires = (_hex(timeout) * 1000 + hz - 1) // hz
    rto_v = 0.0 if rto == 3 * hz else rto / hz
    extra = (refcnt, rto_v, ato / hz, qack // 2, cwnd, 0 if ssthresh == -1 else ssthresh, opt)
    return make_proc_inet(
        family, state, lport, rport, src, dst, _hex(rq), _hex(wq), uid, ino,
        abi.IPPROTO_TCP, tmr, retrans, expires, sk, extra,
    )  # fmt: skip


def dgram_sockets(data: bytes, family: int, states: int, protocol: int) -> Iterator[InetSocket]:
    """Port of dgram_show_line (UDP, and RAW where the "port" is the protocol)."""
    for state, src, lport, dst, rport, rest in _entries(data, family, states):
        # "%x %x:%x %*x:%*x %*x %d %*d %u %d %llx %[^\n]"
        f = rest.split()
        wq, _, rq = f[1].partition(b":") if len(f) > 1 else (b"0", b"", b"0")
        nums = _ints(f[4:8]) if len(f) > 4 else []
        nums += [0] * (4 - len(nums))
        uid, ino = nums[0], nums[2]
        sk = _hex(f[8]) if len(f) > 8 else 0
        yield make_proc_inet(
            family, state, lport, rport, src, dst, _hex(rq), _hex(wq), uid, ino, protocol,
            sk=sk,
        )  # fmt: skip


def proc_tcp_extra(sock: InetSocket) -> tuple[object, ...]:
    """The /proc-only TCP fields of a record (refcnt, rto, ato, qack, cwnd, ssthresh, opt)."""
    return tuple(sock[PROC_EXTRA:])
