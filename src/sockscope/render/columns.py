"""The column layout engine's interface: ss's ten column slots, the screen width, and
the choice of engine for a run.

No socket knowledge here. Rows arrive as tuples of cells, one cell per *enabled* column
slot (ss has ten slots: Netid, State, Recv-Q, Send-Q, Local Address:, Port, Peer Address:,
Port, Process, and the unnamed extra-information slot). A cell is a ``str`` in which
every character is one byte (latin-1), so ``len()`` is ss's byte length.

The engine itself is the C core's ``Renderer`` when it is available, else the reference
:class:`sockscope.render.engine.PyRenderer` (same interface, same bytes), which says how
ss lays rows out; the listing picks one (:func:`sockscope.cli.listing.make_renderer`),
and imports the reference only where it uses it: a compiled listing does not load its
code.
"""

from __future__ import annotations

import posix  # os without os.py: importing os costs ~1 ms (_collections_abc's ABCs)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from sockscope.render.engine import PyRenderer

COL_NETID, COL_STATE, COL_RECVQ, COL_SENDQ, COL_ADDR, COL_SERV = range(6)
COL_RADDR, COL_RSERV, COL_PROC, COL_EXT = range(6, 10)
COL_MAX = 10

#: columns[] of ss.c: (header, right-aligned, left delimiter) per slot
COLUMNS: tuple[tuple[str, bool, str], ...] = (
    ("Netid", False, ""),
    ("State", False, " "),
    ("Recv-Q", False, " "),
    ("Send-Q", False, " "),
    ("Local Address:", True, " "),
    ("Port", False, ""),
    ("Peer Address:", True, " "),
    ("Port", False, ""),
    ("Process", False, ""),
    ("", False, ""),
)

#: a layout wider than this (COLUMNS=99999999) is written cell by cell, in bounded pieces
WIDE_SCREEN = 1 << 16


def screen_width(fd: int = 1, environ: dict[str, str] | None = None) -> int:
    """Port of ss.c:render_screen_width: -1 means compact output."""
    if posix.isatty(fd):
        try:
            cols = posix.get_terminal_size(fd).columns
        except OSError:
            cols = 0
        if cols > 0:
            return cols
    if environ is None:
        import os  # a library caller's environment (the command passes its own)

        environ = dict(os.environ)
    value = environ.get("COLUMNS")
    if value is not None:
        cols = _atoi(value)
        if cols > 0:
            return cols
    return -1


def _atoi(text: str) -> int:
    """glibc atoi, ``(int) strtol(text, NULL, 10)``: optional blanks and sign, then digits;
    strtol saturates at the 64-bit limits and the cast keeps the low 32 bits, signed
    (``2147483648`` is INT_MIN, ``99999999999999999999`` is -1)."""
    text = text.lstrip(" \t\n\v\f\r")
    sign = 1
    if text[:1] in ("+", "-"):
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    digits = 0
    for ch in text:
        if not "0" <= ch <= "9":
            break
        digits = digits * 10 + ord(ch) - 48
        if digits > 1 << 63:
            break  # saturated either way; stop before the number grows without bound
    value = max(-(1 << 63), min(sign * digits, (1 << 63) - 1))
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


if TYPE_CHECKING:
    #: the column engine of a run (for annotations): the C core's ``Renderer`` has the
    #: reference's interface
    Renderer = PyRenderer
