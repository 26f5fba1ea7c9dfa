"""The library API: a query in plain words, a generator of socket records.

``sockets()`` streams the same sockets the command prints, as typed records (see
:mod:`sockscope.records` and the per-family record modules), with the same selection
rules as ss: when nothing is named, ss's defaults apply (every table but TIPC, connected
states only).
"""

from __future__ import annotations

import os

from sockscope.errors import SockscopeError
from sockscope.kernel import abi
from sockscope.options import Options
from sockscope.query.selection import FAMILY_WORDS, Selection, scan_state
from sockscope.tables.context import Context
from sockscope.tables.walk import walk

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from sockscope.ops.namespaces import Namespace
    from sockscope.query.filter import Filter
    from sockscope.tables.inet.record import InetSocket


class Query:
    """What to list: tables, families, states, a filter, and which details to fetch.

    * ``tables``: names as ``ss -A`` takes them (``"tcp"``, ``"udp"``, ``"unix"``,
      ``"inet"``, ``"all"``, ``"!tcp"`` ...), applied in order; None = ss's default.
    * ``families``: ``"inet"``, ``"inet6"``, ``"unix"``, ``"link"``, ``"netlink"``, ...
    * ``states``: state words as ``ss state`` takes them (``"established"``,
      ``"listening"``, ``"connected"``, ``"all"`` ...); None = the tables' defaults.
    * ``filter``: filter text in ss's language, or a parsed :class:`Filter`.
    * ``memory``, ``info``, ``tos``: ask the kernel for skmem, tcp_info and TOS data.
    * ``netns``: the network namespace to list instead of the caller's: a name under
      /var/run/netns, a namespace file's path (``/proc/PID/ns/net``, a bind mount),
      ``"pid:PID"``, or ``"all"`` for every namespace of the host (see
      :func:`namespaces`). The records' ``netns`` attribute then says which namespace
      each came from (a :class:`~sockscope.ops.namespaces.Namespace`).
    """

    __slots__ = ("families", "filter", "info", "memory", "netns", "states", "tables", "tos")

    def __init__(
        self,
        tables: Iterable[str] | None = None,
        families: Iterable[str] | None = None,
        states: Iterable[str] | None = None,
        filter: str | Filter | None = None,
        *,
        memory: bool = False,
        info: bool = False,
        tos: bool = False,
        netns: str | None = None,
    ) -> None:
        self.tables = list(tables) if tables is not None else None
        self.families = list(families) if families is not None else None
        self.states = list(states) if states is not None else None
        self.filter = filter
        self.memory = memory
        self.info = info
        self.tos = tos
        self.netns = netns

    def selection(self) -> Selection:
        """The ss selection this query stands for (raises SockscopeError on bad words)."""
        sel = Selection()
        state_filter = 0
        if self.tables is not None:
            sel.dbs = 0
            sel.do_default = False
            state_filter = abi.SS_CONN
            for word in self.tables:
                if not sel.db_parse(word):
                    raise SockscopeError(f'"{word}" is not a socket table', 255)
        for word in self.families or ():
            family = FAMILY_WORDS.get(word)
            if family is None:
                raise SockscopeError(f'"{word}" is invalid family', 255)
            sel.af_set(family)
        if self.states is not None:
            state_filter = 0
            for word in self.states:
                mask = scan_state(word)
                if mask is None:
                    raise SockscopeError(f"wrong state name: {word}", 255)
                state_filter |= mask
        sel.finish(state_filter)
        return sel


def parse_filter(text: str | Iterable[str]) -> Filter | None:
    """Parse filter text in ss's language (None for an empty filter).

    Raises :class:`sockscope.FilterError` pointing at the offending token.
    """
    from sockscope.query import filter as ssfilter

    return ssfilter.parse_filter(text)


def sockets(query: Query | None = None, **kwargs: object) -> Iterator[object]:
    """Yield every socket the query selects, as records, while the kernel dumps them.

    ``sockets(tables=["tcp"], states=["listening"])`` is short for
    ``sockets(Query(tables=["tcp"], states=["listening"]))``.
    """
    if query is None:
        query = Query(**kwargs)  # type: ignore[arg-type]
    elif kwargs:
        raise TypeError("pass either a Query or keyword arguments, not both")
    sel = query.selection()
    opts = Options()
    opts.show_mem = query.memory
    opts.show_tcpinfo = query.info
    opts.show_tos = query.tos
    flt = _filter_for(query, sel)
    ctx = Context(
        sel,
        opts,
        flt.matches if flt is not None else None,
        flt.bytecode() if flt is not None else None,
        dict(os.environ),
    )
    if query.netns is None:
        yield from _gather(ctx)
        return
    from sockscope.ops import namespaces as nsops

    # entered around each batch, so the caller's code between items runs at home
    for ns, rec in nsops.listing(query.netns, lambda: _gather(ctx.fresh())):
        rec.netns = ns  # type: ignore[attr-defined]
        yield rec


def namespaces() -> Iterator[Namespace]:
    """Every network namespace of the host, with what holds it and its container.

    Found from /var/run/netns, the nsfs bind mounts and every process's
    ``/proc/PID/ns/net``, deduplicated by nsfs inode, in inode order. Each is a
    :class:`~sockscope.ops.namespaces.Namespace` (``inode``, ``names``, ``paths``,
    ``pids``, ``container``, ``unit``, ``cgroup``, ``to_dict()``). Processes whose
    namespace cannot be read (another user's, without privileges) are left out.
    """
    from sockscope.ops import namespaces as found

    return found.namespaces()


def _filter_for(query: Query, sel: Selection) -> Filter | None:
    if query.filter is None or not isinstance(query.filter, str):
        return query.filter
    from sockscope.query import filter as ssfilter

    ctx = ssfilter.FilterContext(
        preferred_family=sel.preferred_family, families=sel.families, dbs=sel.dbs
    )
    flt = ssfilter.parse_filter(query.filter, ctx)
    sel.families = ctx.families
    sel.preferred_family = ctx.preferred_family
    return flt


def _gather(ctx: Context) -> Iterator[object]:
    """Every selected table in ss's order."""
    for table in walk(ctx):
        yield from table.records


def kill(
    filter: str | Filter | None,
    *,
    tables: Iterable[str] | None = ("tcp",),
    families: Iterable[str] | None = None,
    states: Iterable[str] | None = None,
    netns: str | None = None,
) -> list[InetSocket]:
    """Library: close every inet socket that matches, as ``ss -K`` does; returns them.

    ``filter`` is ss filter text or a parsed filter (None kills everything selected, as
    ``ss -K`` would); ``tables`` (default TCP only), ``families`` and ``states`` are
    :class:`sockscope.Query`'s. Only sockets dumped over netlink are closed (not those
    read from ``/proc``); sockets already gone are skipped. Raises :class:`KillError`
    when the kernel refuses (e.g. ``Operation not permitted`` without CAP_NET_ADMIN);
    sockets closed before that stay closed.
    """
    from sockscope.ops.destroy import Killer

    query = Query(tables, families, states, filter, netns=netns)
    sel = query.selection()
    flt = _filter_for(query, sel)
    ctx = Context(
        sel,
        Options(),
        flt.matches if flt is not None else None,
        flt.bytecode() if flt is not None else None,
    )
    killer = Killer()
    ctx.killer = killer

    def run() -> Iterator[object]:
        for table in walk(ctx, inet_only=True):
            yield from table.records

    try:
        if netns is None:
            for _rec in run():
                pass
        else:
            from sockscope.ops.netns import iterate

            for _rec in iterate(netns, run, batch=1024):
                pass
    finally:
        killer.close()
    if killer.error is not None:
        raise killer.error
    return killer.killed
