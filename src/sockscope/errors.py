"""Exceptions raised by the library.

The library never prints and never exits: it raises one of these, and only the CLI
(:mod:`sockscope.cli`) turns them into ss's messages on stderr and picks ss's exit
status from the kind of error (:func:`sockscope.cli.status.exit_status`). Each error
carries the exact text ss would print (``message``, possibly several lines, without the
final newline) and what a program needs to act on it (``errno``, the filter ``token``
and its ``position``), never an exit status.
"""

from __future__ import annotations

import errno as _errno  # (built in)


class SockscopeError(Exception):
    """Base class of every error the library raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ArgumentError(SockscopeError):
    """A word or value the library does not accept: an unknown table, family or state
    name, an unreadable filter file (ss rejects these before it dumps anything)."""


class UsageError(ArgumentError):
    """A bad command line: ss prints the message, then its usage text."""


class FilterError(SockscopeError):
    """A malformed filter expression.

    ``kind`` says what is wrong: ``"syntax"`` (the grammar: ss's "syntax error!",
    followed by the usage text on the command line), ``"file"`` (a ``-F`` file ss
    cannot read as filter lines) or ``"operand"`` (an address, port, device, mark or
    cgroup ss cannot parse). ``token`` is the offending token (None when the text ended
    early) and ``position`` its index in the token stream, so a caller can point at it.
    """

    def __init__(
        self,
        message: str,
        kind: str = "operand",
        *,
        token: str | None = None,
        position: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.token = token
        self.position = position


class NetlinkError(SockscopeError):
    """The kernel answered a request with an error, or a dump could not be read
    (``errno`` is positive, 0 when there is none, as for a truncated recorded dump)."""

    def __init__(self, message: str, errno: int) -> None:
        super().__init__(message)
        self.errno = errno


class AnswerError(NetlinkError):
    """A dump answered with NLMSG_ERROR (libnetlink's rtnl_dump_error): the message the
    inet dumps of ss 7.1 do not print (RTNL_HANDLE_F_SUPPRESS_NLERR)."""


class KillError(NetlinkError):
    """SOCK_DESTROY (``-K``, :func:`sockscope.kill`) failed with an error ss reports; the
    dump in progress is abandoned."""


class EventError(NetlinkError):
    """Receiving socket-destroy events (``-E``, :func:`sockscope.events`) failed."""


class NamespaceError(SockscopeError):
    """A network namespace could not be entered (``errno`` is positive)."""

    def __init__(self, message: str, errno: int = 0) -> None:
        super().__init__(message)
        self.errno = errno


class NotSupportedError(SockscopeError):
    """A feature this machine cannot provide (e.g. SELinux contexts when SELinux is off)."""


#: dlerror()'s words (glibc's dl-load.c) when mapping a library failed for want of
#: memory, and the interpreter's when a C function failed without an exception
#: (scripts/sockscope-run and sockscope/__init__.py, which run before this module is
#: imported, hold copies: tests/test_cli_errors.py keeps them equal)
NOMEM_CUES = (
    "failed to map segment",
    "cannot map zero-fill",
    "annot allocate memory",
    "NULL without setting an exception",
    "error return without exception set",
    "raised unreported exception",
)


def memory_error(e: BaseException) -> bool:
    """Whether ``e`` says that memory ran out: a MemoryError, an OSError of ENOMEM, the
    ImportError of a module's library that could not be mapped (dlopen's mmap under
    RLIMIT_AS: ``failed to map segment from shared object``, ``cannot map zero-fill
    pages``, ``cannot allocate memory``), or the SystemError of a C function of the
    interpreter whose allocation failed without its MemoryError being set (CPython 3.11,
    importlib's ``_find_and_load returned NULL without setting an exception``, or
    ``initialization of _socket raised unreported exception``, at about 16 MiB of
    ``ulimit -v``)."""
    if isinstance(e, MemoryError):
        return True
    if isinstance(e, ImportError | SystemError):
        text = str(e)
        return any(cue in text for cue in NOMEM_CUES)
    return isinstance(e, OSError) and e.errno == _errno.ENOMEM
