"""ss's exit statuses and usage text, chosen from the kind of error the library raised.

ss exits with ``-1`` (255) for what it rejects while reading its command line (an
unknown option, table, family or state, a filter it cannot parse as grammar or read as
a file) and with 1 for what fails later (an address or device it cannot resolve, a
namespace it cannot enter, a kernel error it reports). The library's errors say which
kind they are; only the CLI turns that into a status.
"""

from __future__ import annotations

from sockscope.errors import ArgumentError, FilterError, SockscopeError

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


class Signalled(KeyboardInterrupt):
    """SIGTERM, SIGHUP or SIGQUIT while a ``--json`` document is open: raised like Ctrl-C's
    KeyboardInterrupt, so that the document is closed, and then the process dies by
    ``signum`` as ss does (see :func:`close_on_signals`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def close_on_signals() -> dict[int, object]:
    """Make SIGTERM, SIGHUP and SIGQUIT raise :class:`Signalled` where they would kill the
    process (their action is the default: one that ``nohup`` or a caller set to ignore
    stays ignored). Returns the handlers replaced, for :func:`restore_handlers`."""
    import _signal as signal

    def stop(signum: int, _frame: object) -> None:
        raise Signalled(signum)

    replaced: dict[int, object] = {}
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        try:
            if signal.getsignal(signum) == signal.SIG_DFL:
                replaced[signum] = signal.signal(signum, stop)
        except (ValueError, OSError):  # not the main thread: main(argv) from a library
            break
    return replaced


def restore_handlers(replaced: dict[int, object]) -> None:
    """Put back the handlers :func:`close_on_signals` or :func:`raise_on_sigterm` replaced."""
    import _signal as signal

    for signum, handler in replaced.items():
        try:
            signal.signal(signum, handler)
        except (ValueError, OSError, TypeError):
            pass
