"""Exceptions raised by the library.

The library never prints and never exits: it raises one of these, and only the CLI
(:mod:`sockscope.cli`) turns them into ss's messages on stderr and ss's exit statuses.
Each error carries the exact text ss would print (``message``, possibly several lines,
without the final newline) and the status ss exits with (``status``).
"""

from __future__ import annotations


class SockscopeError(Exception):
    """Base class of every error the library raises."""

    #: Exit status ss uses for this kind of failure (255 is ss's ``exit(-1)``).
    status: int = 1
    #: When true the CLI prints ss's usage text after the message, as ss's usage() does.
    usage: bool = False

    def __init__(self, message: str, status: int | None = None, *, usage: bool | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if usage is not None:
            self.usage = usage


class UsageError(SockscopeError):
    """Bad command line: message, then the usage text, exit 255."""

    status = 255
    usage = True


class FilterError(SockscopeError):
    """A malformed filter expression.

    ``token`` is the offending token (or None when the text ended early) and ``position``
    its index in the token stream, so a library user can point at it.
    """

    def __init__(
        self,
        message: str,
        status: int | None = None,
        *,
        usage: bool | None = None,
        token: str | None = None,
        position: int | None = None,
    ):
        super().__init__(message, status, usage=usage)
        self.token = token
        self.position = position


class NetlinkError(SockscopeError):
    """The kernel answered a request with an error (``errno`` is positive)."""

    def __init__(self, message: str, errno: int):
        super().__init__(message)
        self.errno = errno


class NotSupportedError(SockscopeError):
    """A feature this machine cannot provide (e.g. SELinux contexts when SELinux is off)."""
