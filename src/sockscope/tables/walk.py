"""The one walk over ss's tables, in ss's order, used by the listing, the library and -K.

Port of the sequence of ``*_show()`` calls at the end of ss.c's ``main()`` (iproute2 7.1):
netlink, packet, unix, raw, udp, tcp, dccp, sctp, vsock, tipc, xdp, mptcp. Each
selected table's sockets come from the source ss would use (:mod:`sockscope.tables.inet.source`
for the inet tables, the table's own module for the others), filtered in user space.
"""

from __future__ import annotations

from sockscope.tables import MODULES, ORDER
from sockscope.tables.inet.plan import INET_FAMILIES, INET_TABLES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sockscope.tables.context import Context
    from sockscope.tables.inet.record import InetSocket


class Table:
    """One selected table of a walk: its name, whether it is an inet table, the protocol
    name ss uses for its service lookups (``dg_proto``: kept from one table to the next
    when None) and its matching sockets, produced while the kernel dumps them.

    An inet table's gathering starts at the first use of ``records``, so a consumer with
    its own way to read the table (the compiled listing path) never starts it.
    """

    __slots__ = ("_open", "_records", "dg_proto", "inet", "name")

    def __init__(
        self,
        name: str,
        inet: bool,
        dg_proto: str | None,
        records: Iterator[object] | None = None,
        opener: Callable[[], Iterator[object]] | None = None,
    ):
        self.name = name
        self.inet = inet
        self.dg_proto = dg_proto
        self._records = records
        self._open = opener

    @property
    def records(self) -> Iterator[object]:
        if self._records is None:
            self._records = iter(()) if self._open is None else self._open()
        return self._records


def walk(ctx: Context, *, inet_only: bool = False) -> Iterator[Table]:
    """Every selected table in ss's order (only the inet ones with ``inet_only``).

    A table's dump starts when the walk reaches it, after the previous table's records
    were consumed, as ss prints one table before it asks for the next.
    """
    sel = ctx.sel
    for name, bits in ORDER:
        if not sel.dbs & bits:
            continue
        if name in INET_TABLES:
            if sel.families & INET_FAMILIES:
                dg_proto = INET_TABLES[name][2]
                # a closure, not functools.partial: functools (and collections under it)
                # is about 2 ms of start-up that a plain -tan does not otherwise need
                yield Table(name, True, dg_proto, opener=_opener(ctx, name))
        elif not inet_only and name in MODULES:
            from sockscope.tables import common  # not on the path of an inet listing

            yield Table(name, False, None, common.records(name, ctx))


def _opener(ctx: Context, name: str) -> Callable[[], Iterator[InetSocket]]:
    def opener() -> Iterator[InetSocket]:
        # imported here: the compiled listing path reads its tables without the
        # reference source (and its decoders), a sixth of the -tan path's modules' code
        from sockscope.tables.inet import source

        return source.inet_table(ctx, name)

    return opener
