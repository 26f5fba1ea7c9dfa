"""``-D FILE``: the raw TCP dump (ss's ``tcpdiag`` dump), written as ss writes it.

Imported only for ``-D``: a listing never loads it.
"""

from __future__ import annotations

import errno
import posix  # os without os.py: importing os costs ~1 ms (_collections_abc's ABCs)
import sys

from sockscope.cli.status import discard_stdout, warn
from sockscope.errors import ArgumentError, SockscopeError
from sockscope.kernel import abi

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

    from sockscope.cli.argv import Run


def dump(run: Run) -> int:
    """-D FILE: the raw TCP dump, as ss writes it."""
    from sockscope.tables.context import Context
    from sockscope.tables.inet import source as sources

    sel, opts = run.sel, run.opts
    if not sel.has_db(abi.TCP_DB):
        warn("ss: tcpdiag dump requested and no tcp in filter.")
        return 0
    # ss writes to stdout when the name starts with '-'; an empty name goes to fopen("")
    path = opts.dump_file or ""
    if path.startswith("-"):
        # a stream of its own on stdout's descriptor: the command's sys.stdout drops the
        # writes that fail, as ss's stdio does (cli/status.py), and a dump written
        # nowhere is reported; what sys.stdout holds (-s's summary) goes first
        sys.stdout.flush()
        f: BinaryIO = open(sys.stdout.fileno(), "wb", closefd=False)  # noqa: SIM115
    else:
        try:
            f = open(path, "wb")  # noqa: SIM115
        except OSError as e:
            raise ArgumentError(f"fopen dump file: {posix.strerror(e.errno or 0)}") from None
    out = _DumpOut(f)
    sources.dump_tcp(Context(sel, opts), out)  # type: ignore[arg-type]
    out.flush()
    try:
        f.close()
    except OSError as e:  # what the failed flush left in the buffer
        out.errno = out.errno or e.errno or errno.EIO
    if out.errno:
        # ss ignores its fwrite() errors; a dump written nowhere is reported (QUIRKS.md)
        if path.startswith("-"):
            discard_stdout()
        raise SockscopeError(f"sockscope: writing the dump: {posix.strerror(out.errno)}")
    return 0


class _DumpOut:
    """The -D output: like ss's fwrite(), a failed write does not stop the dump; the
    first error is kept and reported at the end."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.errno = 0

    def write(self, data: bytes) -> int:
        if not self.errno:
            try:
                self.out.write(data)
            except OSError as e:
                self.errno = e.errno or errno.EIO
        return len(data)

    def flush(self) -> None:
        if not self.errno:
            try:
                self.out.flush()
            except OSError as e:
                self.errno = e.errno or errno.EIO
