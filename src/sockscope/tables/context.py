"""The context of one gathering run: what every table's source needs besides the record
decoders (the selection, the display options, the filter, the environment, -K, -D and
where non-fatal messages go)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket as socket
    from collections.abc import Callable
    from typing import BinaryIO

    from sockscope.options import Options
    from sockscope.query.selection import Selection
    from sockscope.tables.inet.record import InetSocket

    Matcher = Callable[[object], bool] | None


class Context:
    """What a gatherer needs besides the selection: options, filter, environment."""

    def __init__(
        self,
        sel: Selection,
        opts: Options,
        matcher: Matcher = None,
        bytecode: bytes | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.sel = sel
        self.opts = opts
        self.matcher = matcher
        self.bytecode = bytecode
        if environ is None:
            import os  # a library caller's environment (the command passes its own)

            environ = dict(os.environ)
        self.environ = environ
        #: -K: called for every matching inet socket before it is shown; returns
        #: False to hide it (already gone), raises NetlinkError to abort the dump
        self.killer: Callable[[InetSocket, int], bool] | None = None
        #: -D: every received datagram is written here
        self.tee: BinaryIO | None = None
        #: the sock_diag socket the non-inet dumps use (--watch: one kept open, so its
        #: snapshots do not each list a netlink socket of their own); None: one each
        self.diag_sock: socket.socket | None = None
        self.warn: Callable[[str], None] = lambda _m: None
        #: like ``warn`` but the text is exact: no newline is added (some of ss's
        #: messages have none, e.g. "Unexpected EOF reading $TCPDIAG_FILE")
        self.warn_raw: Callable[[str], None] = lambda _m: None
        #: the dumps of one inet table started ahead of its rows (tables.inet.fast):
        #: (protocol, what fast's dump starter returned), taken by the table's listing
        self.early: tuple[int, object] | None = None

    def fresh(self) -> Context:
        """A context for another run of the same query (e.g. in another namespace)."""
        ctx = Context(self.sel, self.opts, self.matcher, self.bytecode, self.environ)
        ctx.warn, ctx.warn_raw = self.warn, self.warn_raw
        return ctx
