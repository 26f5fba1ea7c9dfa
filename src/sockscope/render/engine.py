"""The reference column layout engine: ss's token buffer, width computation and rendering.

No socket knowledge here. Rows arrive as tuples of cells, one cell per *enabled* column
slot (ss has ten slots: Netid, State, Recv-Q, Send-Q, Local Address:, Port, Peer Address:,
Port, Process, and the unnamed extra-information slot). A cell is a ``str`` in which
every character is one byte (latin-1), so ``len()`` is ss's byte length.

Three behaviours of ss are reproduced exactly because they change the bytes printed:

* widths are the longest cell of a column over a whole *batch* of rows, and ss renders a
  batch whenever its 1 MiB token chunks reach five at the end of a row (so ~4 MiB of
  text); widths never shrink from one batch to the next (ports of ``field_flush``,
  ``buf_update`` and ``field_next``);
* the last token before a render is never flushed, so it does not count towards its
  column's width;
* compact mode (stdout not a terminal and no ``COLUMNS``) pads no column to the screen
  and leaves the last visible column of slots 0..8 unpadded; screen mode spreads the
  free space (port of ``render_calc_width``).
"""

from __future__ import annotations

import sys

# the C module: operator.py only re-exports it (a module less to start)
from _operator import itemgetter
from itertools import accumulate, chain, islice

from sockscope.render.columns import COL_EXT, COL_PROC, COLUMNS, WIDE_SCREEN

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

#: BUF_CHUNK minus the chunk header (two pointers), the room for tokens in one chunk
_CHUNK_ROOM = 1024 * 1024 - 16
_CHUNKS_MAX = 5
_TOKEN_MAX = 0xFFFF
#: rows accumulated before the chunk accounting is brought up to date
_CHECK_EVERY = 512


class PyRenderer:
    """Buffers rows like ss's token buffer and writes them laid out as ss does.

    The pure-Python reference; the C core's ``Renderer`` is its compiled twin (same
    interface, same bytes, chosen by :func:`sockscope.cli.listing.make_renderer`).
    ``enabled`` lists the enabled slots (a subset of 0..9, always containing 9).
    ``write`` receives latin-1 ``str`` chunks of finished output.
    """

    def __init__(
        self,
        enabled: Sequence[int],
        write: Callable[[str], object],
        width: int = -1,
        flush: int | None = None,
    ) -> None:
        self.slots = tuple(enabled)
        #: about how many bytes of text go to ``write`` at a time (None: 8192 rows)
        self.flush = flush
        self.ncols = len(self.slots)
        self.write = write
        self.screen = width
        self.max_len = [0] * self.ncols
        self.rows: list[tuple[str, ...]] = []
        # chunk accounting of the current batch (ss's `buffer`): chunks allocated,
        # start offset of the next token in the current chunk, rows already accounted
        self.chunks = 0
        self.start = 0
        self.accounted = 0
        self.render_at = -1
        self._ext_col = self.ncols - 1
        self._last_visible = max((i for i, s in enumerate(self.slots) if s < COL_EXT), default=-1)

    # -- filling ------------------------------------------------------------------------
    def header(self) -> None:
        """Queue the header row (print_header)."""
        self.add(tuple(COLUMNS[s][0] for s in self.slots))

    def add(self, row: tuple[str, ...]) -> None:
        """Queue one row: a cell per enabled slot, the extra-information cell last."""
        rows = self.rows
        rows.append(row)
        if len(rows) - self.accounted >= _CHECK_EVERY:
            self._account()
            if self.render_at >= 0:
                self._flush_batch()

    def extend(self, rows: Iterable[tuple[str, ...]]) -> None:
        """Queue many rows; the fast path of a listing (C-level iteration)."""
        it = iter(rows)
        buf = self.rows
        while True:
            before = len(buf)
            buf.extend(islice(it, _CHECK_EVERY))
            if len(buf) == before:
                return
            self._account()
            if self.render_at >= 0:
                self._flush_batch()
                buf = self.rows

    def finish(self) -> None:
        """Render what is buffered (ss's final render())."""
        self._account()
        while 0 <= self.render_at < len(self.rows):
            self._flush_batch()
            self._account()
        # a render due at the end of a row that never came: ss renders what it has
        if self.rows:
            self._render(self.rows)
        self.rows = []
        self.chunks = 0
        self.start = 0
        self.accounted = 0
        self.render_at = -1

    # -- ss's chunk accounting ----------------------------------------------------------
    def _account(self) -> None:
        """Advance the chunk simulation over rows not yet accounted.

        Token i of ``n`` bytes occupies 2 + n (+1 to align) bytes of a 1 MiB chunk. A token
        moves to a new chunk when it does not fit (buf_update), a chunk is closed when the
        next length field does not fit (field_flush), and when five chunks exist at the
        end of a row the batch is rendered (field_next). Blocks of rows that stay inside
        the current chunk are summed at C speed; only a block that crosses a chunk end is
        walked token by token.
        """
        if self.render_at >= 0:
            return
        rows = self.rows
        first = self.accounted
        if first >= len(rows):
            return
        if self.chunks == 0:
            self.chunks = 1
            self.start = 0
        # a token of n bytes takes its 2-byte length, the data and 1 byte to align odd n
        lens = list(map(len, chain.from_iterable(rows[first:])))
        total = sum(lens) + sum(map((1).__and__, lens)) + 2 * len(lens)
        self.accounted = len(rows)
        if self.start + total <= _CHUNK_ROOM - 2:
            self.start += total
            return
        self._walk(first, lens)

    def _walk(self, first: int, lens: list[int]) -> None:
        # the C module (bisect.py only re-exports it), imported only here: a listing
        # reaches this past a chunk's megabyte of text, and most never do
        from _bisect import bisect_right

        ncols = self.ncols
        ext = ncols - 1
        lens = [n if n < _TOKEN_MAX else _TOKEN_MAX for n in lens]
        costs = [2 + n + (n & 1) for n in lens]
        cum = list(accumulate(costs, initial=0))
        total = len(costs)
        start = self.start
        chunks = self.chunks
        base = 0  # index into costs where the chunk position `start` applies
        slots = self.slots
        while True:
            # first token whose end (with the next length field) passes the chunk end
            limit = cum[base] + _CHUNK_ROOM - 2 - start
            i = bisect_right(cum, limit, base + 1) - 1
            if i >= total:
                start += cum[total] - cum[base]
                break
            s_i = start + cum[i] - cum[base]
            n = lens[i]
            col = i % ncols
            out_called = n > 0 or slots[col] < COL_PROC
            if out_called and s_i != 0 and s_i + 2 + n >= _CHUNK_ROOM:
                chunks += 1  # buf_update: the token moves to a fresh chunk
                if chunks >= _CHUNKS_MAX:
                    # checked when this row's extra-info token is done
                    self._set_render(first, i, ncols)
                    break
                start, base = 0, i
                continue
            # field_flush of token i: the next length field would not fit
            if col == ext and chunks >= _CHUNKS_MAX:
                self._set_render(first, i, ncols)
                break
            chunks += 1
            start, base = 0, i + 1
            if chunks >= _CHUNKS_MAX:
                # the check at the end of this row, or of the next one when this
                # was the extra-info token
                self._set_render(first, i + ncols if col == ext else i, ncols)
                break
        self.chunks = chunks
        self.start = start

    def _set_render(self, first: int, token: int, ncols: int) -> None:
        self.render_at = first + token // ncols

    def _flush_batch(self) -> None:
        last = self.render_at
        if last >= len(self.rows):
            # the row that triggers the render has not arrived yet
            self.accounted = len(self.rows)
            return
        batch = self.rows[: last + 1]
        rest = self.rows[last + 1 :]
        self._render(batch)
        self.rows = rest
        self.chunks = 0
        self.start = 0
        self.accounted = 0
        self.render_at = -1
        if len(rest) >= _CHECK_EVERY:
            self._account()

    # -- rendering ----------------------------------------------------------------------
    def _render(self, rows: list[tuple[str, ...]]) -> None:
        """Port of ss.c:render_calc_width and render for one batch."""
        max_len = self.max_len
        ext = self._ext_col
        over = max(map(len, rows[-1])) > _TOKEN_MAX
        for j in range(self.ncols):
            # the batch's last extra-information cell is never measured (see above)
            cells = rows[:-1] if j == ext else rows
            if cells:
                longest = max(map(len, map(itemgetter(j), cells)))
                over = over or longest > _TOKEN_MAX
                if longest > max_len[j]:
                    max_len[j] = min(longest, _TOKEN_MAX)
        if over:
            # buf_update: a field holds at most USHRT_MAX bytes, the rest of its text is
            # dropped (a long md5 key, thousands of processes on one socket)
            rows = [tuple(cell[:_TOKEN_MAX] for cell in row) for row in rows]
        widths = self._widths()
        compact = self.screen < 0
        pieces = []
        for j, slot in enumerate(self.slots):
            _hdr, right, delim = COLUMNS[slot]
            if j == 0:
                delim = ""
            w = widths[j] - len(delim)
            if widths[j] == 0 or (compact and j == self._last_visible) or w <= 0:
                spec = "%s"
            elif right:
                spec = f"%{w}s"
            else:
                spec = f"%-{w}s"
            pieces.append(delim + spec)
        fmt = "".join(pieces) + "\n"
        write = self.write
        if sum(widths) > WIDE_SCREEN:
            # COLUMNS=99999999: lines of ~100 MB, streamed as ss's printf does
            _render_wide(rows, pieces, write)
            return
        step = 8192 if self.flush is None else max(1, self.flush // (sum(widths) + 1))
        for k in range(0, len(rows), step):
            write("".join(map(fmt.__mod__, rows[k : k + step])))

    def _widths(self) -> list[int]:
        screen = self.screen if self.screen > 0 else sys.maxsize
        widths = []
        first = True
        for j, slot in enumerate(self.slots):
            m = self.max_len[j]
            w = m + len(COLUMNS[slot][2]) if not first and m else m
            w = min(w, screen)
            if w:
                first = False
            widths.append(w)
        if self.screen > 0:
            _spread(widths, self.screen)
        return widths


def _render_wide(
    rows: list[tuple[str, ...]], pieces: list[str], write: Callable[[str], object]
) -> None:
    """What ``fmt % row`` gives for each row, written in bounded pieces: the padding of
    a cell can be as wide as the screen (up to INT_MAX)."""
    specs = []
    for piece in pieces:
        delim, _pct, spec = piece.partition("%")
        width = int(spec[:-1] or 0)  # "s", "12s" or "-12s"
        specs.append((delim, abs(width), width > 0))
    blank = " " * WIDE_SCREEN
    for row in rows:
        for (delim, width, right), cell in zip(specs, row, strict=True):
            pad = width - len(cell)
            if delim:
                write(delim)
            if right and pad > 0:
                _write_blanks(write, blank, pad)
            write(cell)
            if not right and pad > 0:
                _write_blanks(write, blank, pad)
        write("\n")


def _write_blanks(write: Callable[[str], object], blank: str, count: int) -> None:
    while count > len(blank):
        write(blank)
        count -= len(blank)
    write(blank[:count])


def _spread(widths: list[int], screen: int) -> None:
    """Second pass of render_calc_width: distribute free space line by line."""
    n = len(widths)
    length = 0
    linecols = 0
    eol = -1
    c = 0
    while c < n:
        if not widths[c]:
            c += 1
            continue
        linecols += 1
        length += widths[c]
        last = all(not widths[t] for t in range(c + 1, n))
        if not last and length < screen:
            c += 1
            continue
        if length != screen:
            if length > screen:
                length -= widths[c]
                c -= 1
                linecols -= 1
            pad = screen - length
            spacing, rem = divmod(pad, linecols) if linecols else (0, 0)
            t = c
            while t > eol:
                if widths[t]:
                    widths[t] += spacing
                    if rem:
                        widths[t] += 1
                        rem -= 1
                t -= 1
        eol = c
        length = 0
        linecols = 0
        c += 1
