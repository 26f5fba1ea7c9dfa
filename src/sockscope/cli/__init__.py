"""The command line: ss's options, usage text and listing loop.

The only part of sockscope that prints errors or chooses exit statuses; everything
below it raises :class:`sockscope.SockscopeError`.
"""

from __future__ import annotations

from sockscope.cli.command import main

__all__ = ["main"]
