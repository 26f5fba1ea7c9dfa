"""The C library's behaviours that ss's output depends on, written once.

ss reads /proc files with ``fgets`` into fixed buffers and parses them with ``sscanf``,
converts numbers with ``strtol``/``strtoul`` and stores them in C ``int`` variables; the
exact truncations, saturations and wrap-arounds show in its output. Each function here
reproduces one of those behaviours of glibc, and every caller uses these.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

LONG_MAX = (1 << 63) - 1
LONG_MIN = -(1 << 63)
ULONG_MAX = (1 << 64) - 1
UINT_MAX = 0xFFFFFFFF
#: isspace() in the C locale
C_SPACE = " \t\n\v\f\r"
C_SPACE_B = b" \t\n\v\f\r"
_HEX_DIGITS = {c: int(c, 16) for c in "0123456789abcdefABCDEF"}


def int32(value: int) -> int:
    """A value stored into a C ``int``: the low 32 bits, two's complement."""
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value & 0x80000000 else value


def fgets(
    data: bytes | Iterable[bytes], size: int = 256, *, to_nul: bool = False
) -> Iterator[bytes]:
    """What successive ``fgets(buf, size, fp)`` calls return over ``data``: the file's
    contents, or an iterable of its pieces (read in bounded pieces, so that a file
    without end, such as /dev/zero, costs no memory).

    A line longer than ``size - 1`` bytes comes back in pieces; the last line may lack
    its newline. With ``to_nul`` each piece ends at its first NUL byte, as the C string
    that strchr/sscanf then read does.
    """
    room = size - 1
    if isinstance(data, bytes):
        pos = 0
        end = len(data)
        while pos < end:
            nl = data.find(b"\n", pos, pos + room)
            stop = min(pos + room, end) if nl < 0 else nl + 1
            yield _cut(data[pos:stop], to_nul)
            pos = stop
        return
    pieces = iter(data)
    buf = b""
    more = True
    while True:
        nl = buf.find(b"\n", 0, room)
        if nl < 0 and len(buf) < room and more:
            piece = next(pieces, None)
            if piece is None:
                more = False
            else:
                buf += piece
            continue
        if not buf:
            return
        stop = room if nl < 0 else nl + 1
        yield _cut(buf[:stop], to_nul)
        buf = buf[stop:]


def _cut(line: bytes, to_nul: bool) -> bytes:
    if to_nul:
        nul = line.find(b"\0")
        if nul >= 0:
            return line[:nul]
    return line


def read_pieces(path: str, size: int = 65536) -> Iterator[bytes]:
    """fopen(path) now (OSError if it fails), then the file's contents in bounded pieces
    as they are read; a read error ends them, as fgets() returning NULL does."""
    f = open(path, "rb")  # noqa: SIM115 - closed by the generator

    def pieces() -> Iterator[bytes]:
        with f:
            while True:
                try:
                    chunk = f.read1(size)
                except OSError:
                    return
                if not chunk:
                    return
                yield chunk

    return pieces()


def open_fgets(path: str, size: int = 256) -> Iterator[bytes]:
    """fopen(path) now (OSError if it fails), then what successive ``fgets`` calls
    return, read lazily in bounded pieces."""
    return fgets(read_pieces(path), size)


_DIGITS = {10: b"0123456789", 16: b"0123456789abcdefABCDEF"}


def _scan_int(text: bytes, pos: int, base: int) -> tuple[int, int] | None:
    """One integer conversion at ``pos`` (blanks already skipped): (value, new pos)."""
    i = pos
    neg = False
    if i < len(text) and text[i] in b"+-":
        neg = text[i] == 45
        i += 1
    if base == 16 and text[i : i + 2].lower() == b"0x":
        i += 2
    digits = _DIGITS[base]
    start = i
    while i < len(text) and text[i] in digits:
        i += 1
    if i == start:
        return None
    value = int(text[start:i], base)
    return (-value if neg else value), i


def scanf(text: bytes, fmt: str) -> list[object]:
    """A small ``sscanf``: the values assigned, in order (their count is sscanf's result).

    Supports blanks (any run of whitespace), literal characters, ``%d %u %x %lld %llu
    %llx %s``, ``%*`` (convert without assigning). Integers wrap like the C variables
    they are stored in: 32 bits unless ``ll``; ``%d`` signed, ``%u``/``%x`` unsigned.
    The input ends at a NUL byte, as a C string does.
    """
    nul = text.find(b"\0")
    if nul >= 0:
        text = text[:nul]
    out: list[object] = []
    pos = 0
    i = 0
    n = len(fmt)
    while i < n:
        ch = fmt[i]
        if ch == " ":
            while pos < len(text) and text[pos] in C_SPACE_B:
                pos += 1
            i += 1
            continue
        if ch != "%":
            if pos >= len(text) or text[pos] != ord(ch):
                return out
            pos += 1
            i += 1
            continue
        i += 1
        skip = fmt[i] == "*"
        if skip:
            i += 1
        wide = fmt.startswith("ll", i)
        if wide:
            i += 2
        conv = fmt[i]
        i += 1
        while pos < len(text) and text[pos] in C_SPACE_B:
            pos += 1
        if pos >= len(text):
            return out
        if conv == "s":
            start = pos
            while pos < len(text) and text[pos] not in C_SPACE_B:
                pos += 1
            if not skip:
                out.append(text[start:pos])
            continue
        got = _scan_int(text, pos, 16 if conv == "x" else 10)
        if got is None:
            return out
        value, pos = got
        if not skip:
            out.append(_c_int(value, conv, wide))
    return out


def _c_int(value: int, conv: str, wide: bool) -> int:
    """strtol/strtoul clamping, then the store into a 32- or 64-bit variable."""
    if conv == "d":
        value = max(-(1 << 63), min(value, (1 << 63) - 1))
    elif value > (1 << 64) - 1 or value < -((1 << 64) - 1):
        value = (1 << 64) - 1
    bits = 64 if wide else 32
    value &= (1 << bits) - 1
    if conv == "d" and value >> (bits - 1):
        value -= 1 << bits
    return value


# --- strtol / strtoul / scanf's %i and %u on text ------------------------------------


def _scan_c_int(s: str, base: int) -> tuple[int, int]:
    """The digits strtol/strtoul would read: (signed magnitude, end index; 0 = none)."""
    i, n = 0, len(s)
    while i < n and s[i] in C_SPACE:
        i += 1
    neg = False
    if i < n and s[i] in "+-":
        neg = s[i] == "-"
        i += 1
    if base in (0, 16) and s[i : i + 2] in ("0x", "0X") and _digit(s, i + 2) < 16:
        base, i = 16, i + 2
    elif base == 0:
        base = 8 if s[i : i + 1] == "0" else 10
    start, value = i, 0
    while i < n and (d := _digit(s, i)) < base:
        value = value * base + d
        i += 1
    if i == start:
        return 0, 0
    return (-value if neg else value), i


def _digit(s: str, i: int) -> int:
    return _HEX_DIGITS.get(s[i], 99) if i < len(s) else 99


def c_strtol(s: str, base: int = 0) -> tuple[int, int, bool]:
    """strtol(): (value, end index, ERANGE)."""
    value, end = _scan_c_int(s, base)
    if value > LONG_MAX:
        return LONG_MAX, end, True
    if value < LONG_MIN:
        return LONG_MIN, end, True
    return value, end, False


def c_strtoul(s: str, base: int = 0) -> tuple[int, int, bool]:
    """strtoul(): (value, end index, ERANGE); a minus sign negates modulo 2**64."""
    value, end = _scan_c_int(s, base)
    if abs(value) > ULONG_MAX:
        return ULONG_MAX, end, True
    return value & ULONG_MAX, end, False


def scanf_int(s: str) -> tuple[int, int] | None:
    """scanf's ``%i`` into an int: (value as u32, characters consumed) or None."""
    i, n = 0, len(s)
    while i < n and s[i] in C_SPACE:
        i += 1
    j = i + 1 if s[i : i + 1] in ("+", "-") else i
    if s[j : j + 2] in ("0x", "0X"):  # glibc consumes "0x" even without hex digits
        k = j + 2
        while k < n and _digit(s, k) < 16:
            k += 1
        value = c_strtol(s[i:k], 0)[0] if k > j + 2 else 0
        return value & UINT_MAX, k
    value, end, _ = c_strtol(s[i:], 0)
    if end == 0:
        return None
    return value & UINT_MAX, i + end


def scanf_unsigned(s: str) -> int | None:
    """scanf's ``%u`` into an unsigned int (strtoul, then truncated to 32 bits)."""
    value, end, _ = c_strtoul(s, 10)
    return value & UINT_MAX if end else None
