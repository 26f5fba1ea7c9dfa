"""How the command ends: ss's exit statuses, its messages on stderr, the standard
streams and the signals.

The statuses and the usage text are chosen from the kind of error the library raised.
ss exits with ``-1`` (255) for what it rejects while reading its command line (an
unknown option, table, family or state, a filter it cannot parse as grammar or read as
a file) and with 1 for what fails later (an address or device it cannot resolve, a
namespace it cannot enter, a kernel error it reports). The library's errors say which
kind they are; only the CLI turns that into a status.

The messages are written as ss's fprintf()s write them, and a full, closed or broken
stdout or stderr ends the run as it ends ss (cli/command.py's ``main()`` uses these).
"""

from __future__ import annotations

import errno
import io  # (loaded by the interpreter's own start-up: free)
import posix  # os without os.py: importing os costs ~1 ms (_collections_abc's ABCs)
import sys

from sockscope.errors import ArgumentError, FilterError, SockscopeError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

    from _typeshed import ReadableBuffer

#: ss's ``exit(-1)``
EXIT_ARGUMENT = 255
#: ss's ``exit(1)``
EXIT_FAILURE = 1


def exit_status(error: SockscopeError) -> int:
    """The status ss exits with after reporting ``error``."""
    if isinstance(error, ArgumentError):
        return EXIT_ARGUMENT
    if isinstance(error, FilterError) and error.kind in ("syntax", "file"):
        return EXIT_ARGUMENT
    return EXIT_FAILURE


def shows_usage(error: SockscopeError) -> bool:
    """Whether ss prints its usage text after the message (its usage() calls)."""
    from sockscope.errors import UsageError

    return isinstance(error, UsageError) or (
        isinstance(error, FilterError) and error.kind == "syntax"
    )


class Exit(Exception):
    """Leave main() with a status after the messages have been written."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


#: the status of a process killed by SIGTERM (128 + 15), as the shell shows it: what the
#: long-running modes (--watch, --top-view, -E --all-netns) return after SIGTERM
EXIT_SIGTERM = 143


class Terminated(Exception):
    """SIGTERM, raised in the main thread by :func:`raise_on_sigterm`'s handler."""


def raise_on_sigterm() -> None:
    """Turn SIGTERM into :class:`Terminated`, so that a long-running mode ends as on
    Ctrl-C (restoring what it changed) and returns :data:`EXIT_SIGTERM`. Nothing happens
    off the main thread (``main(argv)`` called from a library's thread)."""
    import _signal as signal  # type: ignore[import-not-found]  # signal.py builds enums (~3 ms)

    def stop(_signum: int, _frame: object) -> None:
        raise Terminated

    try:
        signal.signal(signal.SIGTERM, stop)
    except (ValueError, OSError):
        pass


def restore_handlers(replaced: dict[int, object]) -> None:
    """Put back the handlers :func:`raise_on_sigterm` (or cli/jsonmode.py's
    ``close_on_signals``) replaced."""
    import _signal as signal

    for signum, handler in replaced.items():
        try:
            signal.signal(signum, handler)
        except (ValueError, OSError, TypeError):
            pass


def die_by(signum: int) -> int:
    """End the process by the default action of ``signum``; 128 + signum if it survives
    (the signal is blocked or ignored by whoever called us in-process)."""
    import _signal as signal

    try:
        signal.signal(signum, signal.SIG_DFL)
        posix.kill(posix.getpid(), signum)
    except (OSError, ValueError):
        pass
    return 128 + signum


#: write errors of a full, broken or closed stdout
OUTPUT_ERRNOS = frozenset(
    # EAGAIN: a non-blocking stdout that is full (ss's printf()s fail and it exits 0)
    (errno.ENOSPC, errno.EIO, errno.EFBIG, errno.EDQUOT, errno.EPIPE, errno.EBADF, errno.EAGAIN)
)


def to_devnull(fd: int) -> None:
    """Point descriptor ``fd`` at /dev/null (os.devnull, without os.py): what is written
    there from now on is dropped, and the flush at exit succeeds."""
    null = posix.open("/dev/null", posix.O_WRONLY)
    if null != fd:  # (a closed fd is the lowest free one: the open itself took it)
        posix.dup2(null, fd)
        posix.close(null)


class _StdioOut(io.FileIO):
    """The command's stdout descriptor, written as glibc's stdio writes ss's: a write that
    fails (a full device or disk, a full non-blocking pipe, a hung-up terminal) drops its
    bytes and the program goes on, since ss never checks its printf()s: it still prints
    its later messages and exits with their status, and -E listens on until it is killed.
    (EPIPE is not dropped: ss dies of the SIGPIPE that comes with it.)"""

    def write(self, data: ReadableBuffer) -> int:
        try:
            n = super().write(data)
        except OSError as e:
            if e.errno == errno.EPIPE or e.errno not in OUTPUT_ERRNOS:
                raise
            n = None  # (EAGAIN: FileIO returns None)
        return memoryview(data).nbytes if n is None else n


#: stat's S_IFMT, and its S_IFIFO and S_IFSOCK: the stdouts whose reader can go away
#: (stat.py is not imported for three numbers)
_S_IFMT = 0o170000
_STREAMS = (0o010000, 0o140000)


class _BlockOut(io.BufferedIOBase):
    """A stdout that is a pipe, a FIFO or a socket, written in ss's write(2) sizes.

    ss prints through glibc's fully buffered stdout: a buffer of st_blksize (4096 for a
    pipe or a socket), filled by small printf()s and written whole each time the next
    byte would not fit, the rest at exit. So its output reaches the reader in writes of
    exactly that size, however it was made. Python's BufferedWriter writes a large piece
    (a batch of the column engine's text) in one write instead: into a pipe whose reader
    leaves after a line (``| head -1``, a FIFO read by ``head -c 100``), ss's next block
    fails with EPIPE and kills it by SIGPIPE, while one big write still fits the pipe
    and ends with status 0. Here every write is a block of ss's size, a full block
    waiting (as glibc's does) until the next byte comes, and only a flush writes a
    shorter one (or the rest of a block a signal interrupted); a failed write is handled
    as :class:`_StdioOut` handles it."""

    def __init__(self, raw: _StdioOut, size: int) -> None:
        super().__init__()
        self.raw = raw
        #: the size of every write but a flush's (read by cli/listing.py)
        self.block_size = size
        # The writes themselves are a BufferedWriter's of one block, always handed just
        # what fills its buffer: it writes the buffer whole when the next byte comes, as
        # glibc does. Its accounting is C's: a signal whose handler raises while a
        # write(2) is blocked (Ctrl-C into a full pipe) leaves nothing written twice or
        # lost, where Python code counting write(2)'s results could miss one that
        # succeeded as the signal came (an interrupted --json document with a block twice).
        # (over the C FileIO, not _StdioOut: a raw write in Python code could lose the
        # result of a write(2) the same way; its failures are handled in _hand_over)
        self._file = io.FileIO(raw.fileno(), "w", closefd=False)
        self._out = io.BufferedWriter(self._file, size)
        self._fill = 0  # bytes in its buffer: the current block
        #: bytes not handed to it yet (what a raising handler interrupted)
        self._pending = bytearray()

    @property
    def name(self) -> object:
        return self.raw.name

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.raw.fileno()

    def isatty(self) -> bool:
        return False

    def write(self, data: ReadableBuffer) -> int:
        with memoryview(data) as view:
            n = view.nbytes
            self._pending += view
        self._hand_over()
        return n

    def flush(self) -> None:
        self._hand_over()
        try:
            self._out.flush()
        except OSError as e:
            self._drop(e)
        self._fill = 0

    def close(self) -> None:
        try:
            self.flush()
        finally:
            super().close()

    def _hand_over(self) -> None:
        """The pending bytes to the block buffer, a block's room at a time (a full block
        is written by the next piece's write, before that piece is buffered)."""
        pending, size = self._pending, self.block_size
        taken = 0
        try:
            while taken < len(pending):
                if self._fill == size:
                    self._fill = 0
                take = min(size - self._fill, len(pending) - taken)
                try:
                    self._out.write(pending[taken : taken + take])
                except OSError as e:
                    self._drop(e)
                taken += take
                self._fill += take
        finally:
            del pending[:taken]

    def _drop(self, e: OSError) -> None:
        """A block that could not be written (a full device, a full non-blocking pipe)
        is dropped, as glibc drops it and as :class:`_StdioOut` drops a failed write:
        the program goes on with an empty buffer. ``e`` is raised again when it is not
        such a failure (EPIPE: SIGPIPE's default was not in force)."""
        if e.errno == errno.EPIPE or e.errno not in OUTPUT_ERRNOS:
            raise e
        dropped = self._file
        self._file = io.FileIO(dropped.fileno(), "w", closefd=False)
        self._out = io.BufferedWriter(self._file, self.block_size)
        self._fill = 0
        # (the descriptor stays open: closefd=False) the old writer then finds its file
        # closed, and its close() at collection writes nothing and raises nothing
        dropped.close()


def _stdio_stdout(stream: TextIO) -> TextIO:
    """A stream like Python's own stdout (its encoding, errors and line buffering) over
    :class:`_StdioOut`: written in ss's blocks into a pipe, a FIFO or a socket
    (:class:`_BlockOut`), else with Python's buffer of st_blksize; ``stream`` itself when
    it has no descriptor 1."""
    try:
        if stream.fileno() != 1:
            return stream
        raw = _StdioOut(1, "w", closefd=False)
        size = getattr(raw, "_blksize", io.DEFAULT_BUFFER_SIZE)
        if posix.fstat(1).st_mode & _S_IFMT in _STREAMS:
            buffered: _BlockOut | io.BufferedWriter = _BlockOut(raw, size)
        else:
            buffered = io.BufferedWriter(raw, size)
        return io.TextIOWrapper(buffered, encoding=stream.encoding, errors=stream.errors,
                                line_buffering=bool(stream.line_buffering))  # fmt: skip
    except (AttributeError, OSError, ValueError):
        return stream


def ensure_std_streams(program: bool = False) -> None:
    """``sockscope >&-`` / ``2>&-``: ss writes to the closed descriptor, fails silently and
    exits 0. Python leaves sys.stdout None; point the descriptor at /dev/null (so that no
    socket opened later takes it) and give the stream back. For the command itself
    (``program``), stdout then drops what it fails to write (:class:`_StdioOut`); a
    library caller's sys.stdout is left as it is."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        stream = getattr(sys, name)
        if stream is not None:
            # argv words are decoded with surrogateescape: messages that echo them give
            # their bytes back, as ss prints them (not "\udcff")
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                try:
                    stream.flush()
                    reconfigure(encoding=sys.getfilesystemencoding(), errors="surrogateescape")
                except (OSError, ValueError):
                    pass
            if program and fd == 1:
                sys.stdout = _stdio_stdout(stream)
            continue
        try:
            posix.fstat(fd)
        except OSError:
            to_devnull(fd)
        setattr(sys, name, open(fd, "w", encoding="utf-8", errors="surrogateescape", closefd=False))  # noqa: SIM115
        if program and fd == 1:
            sys.stdout = _stdio_stdout(sys.stdout)


def discard_stdout() -> None:
    """After a failed write: what is still buffered goes to /dev/null, so that the final
    flush at exit succeeds (no 'Exception ignored' message, no status 120)."""
    try:
        to_devnull(sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def report(e: SockscopeError) -> None:
    try:
        sys.stdout.flush()
    except OSError:
        # full, closed or non-blocking stdout: the message on stderr still comes
        discard_stdout()
    text = e.message
    if text:
        _to_stderr(text if text.endswith("\n") else text + "\n")
    if shows_usage(e):
        from sockscope.cli.usage import USAGE

        _to_stderr(USAGE)


def warn_raw(text: str) -> None:
    """Write ss's exact stderr text (some of its messages end without a newline)."""
    _to_stderr(text)


def warn(message: str) -> None:
    _to_stderr(message if message.endswith("\n") else message + "\n")


def _to_stderr(text: str) -> None:
    """Write to stderr as ss's fprintf does: a full or broken stderr (``2>/dev/full``)
    changes neither the output nor the status; what cannot be written is dropped."""
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError):
        try:
            to_devnull(sys.stderr.fileno())
        except (OSError, ValueError):
            pass
