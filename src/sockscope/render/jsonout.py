"""``--json`` and ``--json-lines``: the sockets of a run as data, streamed.

Each socket is written as it arrives from the dump, so memory stays flat however many
sockets there are. ``--json-lines`` writes one object per line (the record's
``to_dict()`` with ``schema_version`` in front) and flushes each line;
``--json`` writes one document, ``{"schema_version": ..., "summary": {...},
"sockets": [...]}``, as a stream too: the opening, then the sockets one per line, then
the closing. The schema is ``schema/sockscope.schema.json`` in this package; the
field names and the compatibility policy are in ``docs/json.md``.

This module imports :mod:`json`; the CLI loads it only when one of the options is given.
"""

from __future__ import annotations

import json

from sockscope.render.view import SCHEMA_VERSION

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import BinaryIO

HEAD = '{"schema_version":"%s"' % SCHEMA_VERSION


class Writer:
    """Writes socket dicts to a binary stream as JSON lines or one JSON document."""

    def __init__(self, out: BinaryIO, lines: bool) -> None:
        self.out = out
        self.lines = lines
        self.encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
        self._open = False  # --json: the "sockets" array has been opened
        self._count = 0
        self._started = False
        #: --json-lines into a pipe: its descriptor (see _whole_lines), else None
        self._pipe = _pipe_fd(out) if lines else None

    def start(self, summary: dict[str, object] | None = None) -> None:
        """The head of the output: the summary (``-s``), and for --json the opening."""
        self._started = True
        if self.lines:
            if summary is not None:
                self._write(HEAD + ',"summary":' + self.encode(summary) + "}\n")
                self.out.flush()
            return
        head = HEAD
        if summary is not None:
            head += ',"summary":' + self.encode(summary)
        self._write(head)

    def open_sockets(self) -> None:
        """--json: open the ``sockets`` array (only runs that list sockets have it)."""
        if not self.lines and not self._open:
            self._write(',"sockets":[')
            self._open = True

    def socket(self, d: dict[str, object], tail: str = "") -> None:
        """One socket: a line of its own, flushed (--json-lines), or an array element.

        ``tail`` is pre-encoded fields added at the end (:meth:`tail`: ``--all-netns``
        encodes the namespace once, not once per socket).
        """
        text = self._text(d, tail)
        if self.lines:
            self._write(self.line_text(d, text))
            self.out.flush()
            return
        self._write(("\n" if self._count == 0 else ",\n") + text)
        self._count += 1

    def line_text(self, d: dict[str, object], text: str | None = None) -> str:
        """--json-lines: the line of one socket, its newline included: the record's own
        object with schema_version in front, ``{"schema_version":..,``."""
        if text is None:
            text = self._text(d, "")
        return HEAD + ("," + text[1:] if len(text) > 2 else "}") + "\n"

    def lines_out(self, lines: list[str]) -> None:
        """--json-lines: socket lines made elsewhere (:meth:`line_text`, or the compiled
        core's), written and flushed together."""
        self._write("".join(lines))
        self.out.flush()

    def _text(self, d: dict[str, object], tail: str) -> str:
        text = self.encode(d)
        if "\\udc" in text:
            # a name that is not UTF-8 (kept as surrogate escapes) would be a lone
            # surrogate, which is not valid UTF-8 JSON: write it losslessly instead
            text = self.encode(bytes_as_latin1(d))
        if tail:
            text = text[:-1] + ("," if len(text) > 2 else "") + tail + "}"
        return text

    def tail(self, fields: dict[str, object]) -> str:
        """``fields`` encoded for :meth:`socket`'s ``tail`` (``"k":v,...`` without braces)."""
        return self.encode(fields)[1:-1]

    def line(self, fields: dict[str, object]) -> None:
        """--json-lines: an object of its own (e.g. a namespace's summary), flushed."""
        self._write(HEAD + "," + self.encode(fields)[1:] + "\n")
        self.out.flush()

    def sockets(self, dicts: Iterable[dict[str, object]]) -> None:
        self.open_sockets()
        for d in dicts:
            self.socket(d)

    def finish(self, trailer: dict[str, object] | None = None) -> None:
        """Close the document (--json), with ``trailer``'s fields last, and flush."""
        if not self.lines:
            if self._open:
                self._write("\n]" if self._count else "]")
            if trailer:
                self._write("," + self.encode(trailer)[1:-1])
            self._write("}\n")
        self.out.flush()

    def _write(self, text: str) -> None:
        if self.lines:
            self._whole_lines(text.encode("ascii"))
        else:
            self.out.write(text.encode("ascii"))

    def _whole_lines(self, data: bytes) -> None:
        """--json-lines: write ``data`` (whole lines) so that a signal that interrupts a
        write blocked on a full pipe (Ctrl-C's KeyboardInterrupt, or SIGTERM's and
        SIGHUP's while the CLI turns them into one) leaves whole lines behind. A pipe
        takes a write of up to PIPE_BUF bytes whole or not at all, so into a pipe the
        lines go in pieces of at most that size that end with a line (a buffered stream,
        or one big write, can stop in the middle of a line)."""
        fd = self._pipe
        if fd is None:
            self.out.write(data)
            return
        import os

        size = len(data)
        at = 0
        while at < size:
            end = data.rfind(b"\n", at, at + _PIPE_BUF) + 1
            if end <= at:  # one line longer than PIPE_BUF: it goes alone
                end = data.find(b"\n", at) + 1 or size
            view = memoryview(data)[at:end]
            while view:
                view = view[os.write(fd, view) :]
            at = end


#: Linux's PIPE_BUF: a write to a pipe of at most this many bytes is atomic
_PIPE_BUF = 4096


def _pipe_fd(out: BinaryIO) -> int | None:
    """The descriptor of ``out`` when it is a pipe (what it buffered flushed first, as the
    lines then go to the descriptor), else None."""
    import os
    import stat

    try:
        out.flush()
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):  # BytesIO: no descriptor
        return None
    try:
        return fd if stat.S_ISFIFO(os.fstat(fd).st_mode) else None
    except OSError:
        return None


def bytes_as_latin1(d: dict[str, object]) -> dict[str, object]:
    """A copy of ``d`` where each string holding bytes that are not UTF-8 (surrogate
    escapes, as os.fsdecode gives them) is replaced by the latin-1 text of its raw bytes
    (one code point U+0000..U+00FF per byte: ``value.encode("latin-1")`` gives them back)
    and flagged by a sibling key ``<key>_encoding: "latin-1"``."""
    out: dict[str, object] = {}
    for key, value in d.items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raw = value.encode("utf-8", "surrogateescape")
                out[key] = raw.decode("latin-1")
                out[key + "_encoding"] = "latin-1"
                continue
        if isinstance(value, dict):
            out[key] = bytes_as_latin1(value)
        elif isinstance(value, list):
            out[key] = [bytes_as_latin1(v) if isinstance(v, dict) else v for v in value]
        else:
            out[key] = value
    return out


def summary_dict(summary: object) -> dict[str, object]:
    """The ``-s`` numbers as data: what the text summary shows, by plain names."""
    to_dict = getattr(summary, "to_dict", None)
    if to_dict is not None:
        return to_dict()  # type: ignore[no-any-return]
    s = summary
    transport = [
        {"name": name.lower(), "total": total, "ipv4": ip4, "ipv6": ip6}
        for name, total, ip4, ip6 in s.rows()  # type: ignore[attr-defined]
    ]
    return {
        "total": s.socks,  # type: ignore[attr-defined]
        "tcp": {
            "total": s.tcp_all,  # type: ignore[attr-defined]
            "estab": s.tcp_estab,  # type: ignore[attr-defined]
            "closed": s.tcp_closed,  # type: ignore[attr-defined]
            "orphaned": s.tcp_orphans,  # type: ignore[attr-defined]
            "timewait": s.tcp_tws,  # type: ignore[attr-defined]
        },
        "transport": transport,
    }


def write_groups(out: BinaryIO, groups: Iterable[dict[str, object]], lines: bool) -> None:
    """``--count-by`` as data: one ``{"schema_version", "group", "count", ...}`` line per
    group (--json-lines), or one document ``{"schema_version", "groups": [...]}``."""
    encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
    if lines:
        for g in groups:
            text = encode(g)
            out.write((HEAD + "," + text[1:] + "\n").encode("ascii"))
        return
    body = ",\n".join(encode(g) for g in groups)
    out.write(
        (HEAD + ',"groups":[' + ("\n" + body + "\n" if body else "") + "]}\n").encode("ascii")
    )


def write_event(out: BinaryIO, event: dict[str, object]) -> None:
    """One ``--watch`` event as a JSON line, flushed."""
    text = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode(event)
    out.write((HEAD + "," + text[1:] + "\n").encode("ascii"))
    out.flush()
