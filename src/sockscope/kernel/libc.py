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


class _Scan:
    """The parse of one conversion directive of a scanf format."""

    __slots__ = ("bits", "charset", "conv", "end", "skip", "width")

    def __init__(self, fmt: str, i: int) -> None:
        self.skip = fmt.startswith("*", i)
        i += self.skip
        start = i
        while i < len(fmt) and fmt[i].isdigit():
            i += 1
        self.width = int(fmt[start:i]) if i > start else 0  # 0: no width (as glibc's -1)
        self.bits = 32
        for size, bits in (("hh", 8), ("h", 16), ("ll", 64), ("l", 64), ("q", 64), ("j", 64)):
            if fmt.startswith(size, i):
                self.bits = bits
                i += len(size)
                break
        self.conv = fmt[i]
        i += 1
        self.charset: tuple[bool, bytes] = (False, b"")
        if self.conv == "[":
            negate = fmt.startswith("^", i)
            i += negate
            start = i
            i += fmt.startswith("]", i)  # a leading ] is a member
            i = fmt.index("]", i)
            self.charset = (negate, fmt[start:i].encode("latin-1"))
            i += 1
        self.end = i


_VALID = {8: b"01234567", 10: b"0123456789", 16: b"0123456789abcdefABCDEF"}
_BASES = {"d": 10, "u": 10, "x": 16, "X": 16, "o": 8, "i": 0, "p": 16}


def sscanf(text: bytes, fmt: str) -> tuple[int, list[object]]:
    """glibc's ``sscanf``: (its return value, the values assigned, in order).

    The return value is the number of conversions assigned, or -1 (EOF) when the input
    ends before the first one. Supported: blanks (any run of whitespace), literal
    characters, ``%d %i %u %x %o`` with ``hh h l ll`` sizes, ``%s``, ``%c``, ``%[...]``
    (``%[^...]`` too; no ranges), ``%n``, ``%*`` (convert without assigning), widths.
    Numbers are read as glibc reads them (a sign, a ``0x`` prefix that counts as the
    digit ``0`` when no hex digit follows) and converted with strtol/strtoul, then
    stored into a variable of the conversion's size: they saturate and wrap as in C.
    The input ends at a NUL byte, as a C string does.
    """
    nul = text.find(b"\0")
    if nul >= 0:
        text = text[:nul]
    out: list[object] = []
    done = 0
    pos = 0
    end = len(text)
    i = 0
    n = len(fmt)
    while i < n:
        ch = fmt[i]
        if ch in C_SPACE:
            while pos < end and text[pos] in C_SPACE_B:
                pos += 1
            i += 1
            continue
        if ch != "%" or fmt.startswith("%%", i):
            i += 1 if ch != "%" else 2
            if pos >= end:
                return (done or -1), out
            if text[pos] != ord(ch):
                return done, out
            pos += 1
            continue
        d = _Scan(fmt, i + 1)
        i = d.end
        conv = d.conv
        if conv == "n":
            if not d.skip:
                out.append(pos)
            continue
        if conv not in "c[":
            while pos < end and text[pos] in C_SPACE_B:
                pos += 1
        if pos >= end:
            return (done or -1), out
        limit = end if not d.width else min(end, pos + d.width)
        if conv == "c":
            stop = pos + (d.width or 1)
            if stop > end:
                return (done or -1), out
            value: object = text[pos:stop]
            pos = stop
        elif conv == "s":
            start = pos
            while pos < limit and text[pos] not in C_SPACE_B:
                pos += 1
            value = text[start:pos]
        elif conv == "[":
            negate, members = d.charset
            start = pos
            while pos < limit and (text[pos] in members) != negate:
                pos += 1
            if pos == start:
                return done, out
            value = text[start:pos]
        else:
            got = _scan_number(text, pos, limit, _BASES[conv])
            if got is None:
                return done, out
            number, pos = got
            value = _store(number, conv in "di", d.bits)
        if not d.skip:
            out.append(value)
            done += 1
    return done, out


def _scan_number(text: bytes, pos: int, limit: int, base: int) -> tuple[int, int] | None:
    """glibc's number scan: (value before the store, new position) or None (no number)."""
    i = pos
    neg = False
    if i < limit and text[i] in b"+-":
        neg = text[i] == 45
        i += 1
    digits = b""
    if i < limit and text[i] == 48:  # "0": a digit, maybe the start of a prefix
        digits = b"0"
        i += 1
        if i < limit and text[i] in b"xX" and base in (0, 16):
            base = 16
            i += 1
        elif base == 0:
            base = 8
    elif base == 0:
        base = 10
    start = i
    valid = _VALID[base]
    while i < limit and text[i] in valid:
        i += 1
    digits += text[start:i]
    if not digits:
        return None
    value = int(digits, base)
    return (-value if neg else value), i


def _store(value: int, signed: bool, bits: int) -> int:
    """strtol (signed) or strtoul saturation, then the store into a ``bits``-bit C
    variable (signed for %d/%i)."""
    if signed:
        value = max(LONG_MIN, min(value, LONG_MAX))
    elif abs(value) > ULONG_MAX:
        value = ULONG_MAX
    value &= (1 << bits) - 1
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


def scan_ints(text: bytes, fmt: str, size: int) -> tuple[int, list[int]]:
    """:func:`sscanf` of a format of integer conversions: (its return value, ``size``
    values, those it did not assign 0, as in a zeroed C struct)."""
    count, vals = sscanf(text, fmt)
    ints = [v if isinstance(v, int) else 0 for v in vals]
    return count, ints + [0] * (size - len(ints))


def scanf(text: bytes, fmt: str) -> list[object]:
    """The values :func:`sscanf` assigns (their count is sscanf's result when positive).

    Integers wrap like the C variables they are stored in: 32 bits unless ``ll``;
    ``%d`` signed, ``%u``/``%x`` unsigned.
    """
    return sscanf(text, fmt)[1]


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
