"""The library's front door: a query in plain words, streams of typed socket records.

``sockets()`` yields the same sockets the command prints, as records of the table they
belong to (:data:`Socket`: :class:`~sockscope.tables.inet.record.InetSocket`,
:class:`~sockscope.tables.unix.UnixSocket`, ...), with the same selection rules as ss:
when nothing is named, ss's defaults apply (every table but TIPC, connected states
only). ``kill()``, ``summary()`` and ``events()`` are ``ss -K``, ``ss -s`` and ``ss -E``.
Bad arguments raise at the call (:class:`~sockscope.errors.ArgumentError`,
:class:`~sockscope.errors.FilterError`, ``TypeError``), not at the first ``next()``.
"""

from __future__ import annotations

import os

from sockscope.errors import ArgumentError
from sockscope.kernel import abi
from sockscope.options import Options
from sockscope.query.selection import FAMILY_WORDS, Selection, scan_state
from sockscope.tables.context import Context
from sockscope.tables.walk import walk

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from typing import TypeAlias

    from sockscope.ops.aggregate import Group
    from sockscope.ops.metrics import Sample as MetricSample
    from sockscope.ops.namespaces import Namespace
    from sockscope.ops.sockstat import Summary
    from sockscope.ops.watch import Change
    from sockscope.query.filter import Filter
    from sockscope.render.view import View
    from sockscope.tables.common import Owner
    from sockscope.tables.inet.record import InetSocket
    from sockscope.tables.netlink import NetlinkSocket
    from sockscope.tables.packet import PacketSocket
    from sockscope.tables.tipc import TipcSocket
    from sockscope.tables.unix import UnixSocket
    from sockscope.tables.vsock import VsockSocket
    from sockscope.tables.xdp import XdpSocket

    #: any record sockets() yields; ``netid`` / ``isinstance`` tell them apart
    Socket: TypeAlias = (
        InetSocket
        | UnixSocket
        | PacketSocket
        | NetlinkSocket
        | VsockSocket
        | TipcSocket
        | XdpSocket
    )


def socket_types() -> tuple[type, ...]:
    """The record classes :func:`sockets` yields (``isinstance(s, socket_types())``)."""
    from sockscope.tables.inet.record import InetSocket
    from sockscope.tables.netlink import NetlinkSocket
    from sockscope.tables.packet import PacketSocket
    from sockscope.tables.tipc import TipcSocket
    from sockscope.tables.unix import UnixSocket
    from sockscope.tables.vsock import VsockSocket
    from sockscope.tables.xdp import XdpSocket

    return (
        InetSocket,
        UnixSocket,
        PacketSocket,
        NetlinkSocket,
        VsockSocket,
        TipcSocket,
        XdpSocket,
    )


def _words(name: str, value: Iterable[str] | None) -> list[str] | None:
    """A list of words from an iterable of str; a bare string is a mistake, not a list
    of one-letter words."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a list of words, not a single {type(value).__name__}")
    words = list(value)
    for word in words:
        if not isinstance(word, str):
            raise TypeError(f"{name} must contain str, not {type(word).__name__}")
    return words


class Query:
    """What to list: tables, families, states, a filter, and which details to fetch.

    * ``tables``: names as ``ss -A`` takes them (``"tcp"``, ``"udp"``, ``"unix"``,
      ``"inet"``, ``"all"``, ``"!tcp"`` ...), applied in order; None = ss's default.
    * ``families``: ``"inet"``, ``"inet6"``, ``"unix"``, ``"link"``, ``"netlink"``, ...
    * ``states``: state words as ``ss state`` takes them (``"established"``,
      ``"listening"``, ``"connected"``, ``"all"`` ...); None = the tables' defaults.
    * ``filter``: filter text in ss's language, or a parsed :class:`Filter`.
    * ``memory``, ``info``, ``tos``: ask the kernel for skmem, tcp_info and TOS data.
    * ``processes``: find the processes holding each socket (``ss -p``): records then
      have ``owners`` (:class:`~sockscope.tables.common.Owner`) and their ``to_dict()``
      has ``users``, as ``--json -p`` prints them.
    * ``netns``: the network namespace to list instead of the caller's: a name under
      /var/run/netns, a namespace file's path (``/proc/PID/ns/net``, a bind mount),
      ``"pid:PID"``, or ``"all"`` for every namespace of the host (see
      :func:`namespaces`). The records' ``netns`` then says which namespace each came
      from (a :class:`~sockscope.ops.namespaces.Namespace`; None without ``netns``).

    The words are checked when the query is made: an unknown one raises
    :class:`~sockscope.errors.ArgumentError`, a bare string where a list belongs
    ``TypeError``. Queries compare equal when they ask for the same thing.
    """

    __slots__ = (
        "families",
        "filter",
        "info",
        "memory",
        "netns",
        "processes",
        "states",
        "tables",
        "tos",
    )

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
        processes: bool = False,
        netns: str | None = None,
    ) -> None:
        self.tables = _words("tables", tables)
        self.families = _words("families", families)
        self.states = _words("states", states)
        if filter is not None and not isinstance(filter, str) and not hasattr(filter, "matches"):
            raise TypeError(f"filter must be text or a parsed Filter, not {type(filter).__name__}")
        self.filter = filter
        self.memory = memory
        self.info = info
        self.tos = tos
        self.processes = processes
        self.netns = netns
        self.selection()  # unknown words raise here, at the call

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in sorted(self.__slots__))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Query):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        parts = [
            f"{name}={getattr(self, name)!r}"
            for name in ("tables", "families", "states", "filter")
            if getattr(self, name) is not None
        ]
        flags = ("memory", "info", "tos", "processes")
        parts += [f"{name}=True" for name in flags if getattr(self, name)]
        if self.netns is not None:
            parts.append(f"netns={self.netns!r}")
        return f"Query({', '.join(parts)})"

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
                    raise ArgumentError(f'"{word}" is not a socket table')
        for word in self.families or ():
            family = FAMILY_WORDS.get(word)
            if family is None:
                raise ArgumentError(f'"{word}" is invalid family')
            sel.af_set(family)
        if self.states is not None:
            state_filter = 0
            for word in self.states:
                mask = scan_state(word)
                if mask is None:
                    raise ArgumentError(f"wrong state name: {word}")
                state_filter |= mask
        sel.finish(state_filter)
        return sel


def parse_filter(text: str | Iterable[str]) -> Filter | None:
    """Parse filter text in ss's language (None for an empty filter).

    Raises :class:`sockscope.FilterError` pointing at the offending token.
    """
    from sockscope.query import filter as ssfilter

    return ssfilter.parse_filter(text)


def sockets(
    query: Query | None = None, *, sort: Iterable[str] | None = None, **kwargs: object
) -> Iterator[Socket]:
    """Every socket the query selects, as records, streamed while the kernel dumps them.

    ``sockets(tables=["tcp"], states=["listening"])`` is short for
    ``sockets(Query(tables=["tcp"], states=["listening"]))``. The query and its filter
    are checked here; the dump starts at the first ``next()``.

    ``sort``: key names as ``--sort`` takes them (``["-recv_q", "peer_address"]``; see
    :func:`count` for the keys, ``-`` for descending). The records then come in that
    order (ties in ss's), after the whole dump.
    """
    if sort is not None:
        return _sorted(query, _words("sort", sort) or [], kwargs)
    if query is None:
        query = Query(**kwargs)  # type: ignore[arg-type]
    elif kwargs:
        raise TypeError("pass either a Query or keyword arguments, not both")
    sel = query.selection()
    opts = Options()
    # what the data view shows (-oe --cgroup --inet-sockopt) decides what to ask for
    opts.show_options = True
    opts.show_details = 1
    opts.show_cgroup = True
    opts.show_inet_sockopt = True
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
    view = _data_view(query)
    owners = None
    if query.processes:
        from sockscope.ops.procmap import ProcessMap

        opts.show_processes = 1
        pmap = ProcessMap.build(ctx.environ, opts)
        owners = pmap.owner_records
        view.owners = pmap.owners
    return _stream(ctx, query.netns, view, owners)


def _sorted(query: Query | None, words: list[str], kwargs: dict[str, object]) -> Iterator[Socket]:
    from sockscope.ops import aggregate
    from sockscope.ops.keys import lookups, make_keys

    query = query if query is not None else Query(**kwargs)  # type: ignore[arg-type]
    names, descending = aggregate.parse_sort(words)
    keys = make_keys(names, lookups(names, None, dict(os.environ), lambda _m: None))
    records = list(sockets(query))
    return iter(aggregate.sort_records(records, keys, descending))  # type: ignore[arg-type]


def count(
    query: Query | None = None, by: Iterable[str] = ("state",), *, top: int | None = None
) -> list[Group]:
    """The sockets of ``query`` grouped by keys, biggest group first: ``ss ... | awk |
    sort | uniq -c | sort -rn`` as data. Memory grows with the groups, not the sockets.

    Keys: ``state``, ``netid``, ``family``, ``local_address``, ``local_port``,
    ``peer_address``, ``peer_prefix/N`` (``/N/M``: N bits of IPv4, M of IPv6),
    ``peer_port``, ``process`` and ``pid`` (the first owner ``ss -p`` shows), ``uid``,
    ``cgroup`` (path), ``netns`` and ``container`` (records listed through namespaces),
    and ``recv_q``, ``send_q``, ``inode``, ``cookie``, ``rtt``, ``cwnd``,
    ``bytes_acked``, ``bytes_received``, ``retrans`` (the last five need
    ``Query(info=True)``). Each :class:`~sockscope.ops.aggregate.Group` has ``key`` (name
    -> value, None when the sockets have none), ``count`` and ``sums`` (``recv_q``,
    ``send_q``; with ``info`` also ``bytes_acked``, ``bytes_received``, ``retrans``);
    ``to_dict()`` is the ``--count-by --json-lines`` object. Ties are ordered by the key
    values. Unknown keys raise :class:`~sockscope.errors.ArgumentError`.
    """
    from sockscope.ops import aggregate
    from sockscope.ops.keys import lookups, make_keys

    query = query if query is not None else Query()
    words = _words("by", by) or []
    keys = make_keys(words, lookups(words, None, dict(os.environ), lambda _m: None))
    counter = aggregate.Counter(keys, info=query.info)
    counter.add(sockets(query))
    return counter.groups(top)


def metrics(
    query: Query | None = None,
    by: Iterable[str] | None = None,
    max_series: int = 1000,
    *,
    sockstat: bool = True,
) -> list[MetricSample]:
    """The sockets of ``query`` as Prometheus samples (what ``--metrics`` prints).

    Each :class:`~sockscope.ops.metrics.Sample` is ``(name, labels, value, type, help)``:
    ``node_tcp_connection_states{state}`` (node_exporter's tcpstat names; the home
    namespace's sockets: the caller's, or ``query.netns`` when it names one), with
    ``sockstat`` node_exporter's ``node_sockstat_*`` (that namespace's
    /proc/net/sockstat{,6}), ``sockscope_sockets{netid,state,netns[,netns_name]}``,
    ``sockscope_listen_queue`` / ``sockscope_listen_backlog{local_address,local_port,
    netid,netns...}`` (Recv-Q / Send-Q of LISTEN rows), with ``query.info`` the
    histograms ``sockscope_tcp_rtt_seconds`` (upper bounds in seconds: 0.00005, 0.0001,
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
    +Inf) and ``sockscope_tcp_cwnd_segments`` (1, 2, 4, ... 2048, +Inf), each over the
    TCP sockets whose value ss prints (not zero), and the sums of bytes acked, received
    and retransmits (gauges), all per netid, state and namespace, with ``by`` (:func:`count`'s
    keys) ``sockscope_group_sockets{KEY...}``, and ``sockscope_series_folded{metric}``:
    ``max_series`` caps each family, folding the rest into one series labelled
    ``"other"``. ``Query(netns="all")`` labels each namespace's series.
    :func:`sockscope.render.prom.exposition` writes them as the text format,
    :func:`sockscope.render.otlp.document` as OTLP/JSON. Unknown keys raise
    :class:`~sockscope.errors.ArgumentError`.
    """
    from sockscope.ops import metrics as ops_metrics
    from sockscope.ops import sockstat as ops_sockstat
    from sockscope.ops.keys import lookups

    query = query if query is not None else Query()
    words = _words("by", by) or []
    names = ["netid", "state", "local_address", "local_port", *words]
    found = lookups(names, None, dict(os.environ), lambda _m: None)
    if max_series < 1:
        raise ValueError("max_series must be at least 1")

    def home() -> tuple[ops_metrics.Space, list[tuple[bool, str, list[str]]] | None]:
        pairs = ops_sockstat.read_pairs() if sockstat else None
        return ops_metrics.here(), pairs

    if query.netns is None or query.netns == "all":
        space, pairs = home()
    else:
        from sockscope.ops import netns as ns

        space, pairs = ns.visit(query.netns, home)
        if ns.target(query.netns)[0] == "name":
            space = ops_metrics.Space(space.inode, query.netns)
    return ops_metrics.collect(
        sockets(query),
        found,
        words,
        max_series,
        info=query.info,
        home=space,
        sockstat=pairs,
        spaces=query.netns == "all",
    )


def watch(query: Query | None = None, interval: float = 1.0) -> Iterator[Change]:
    """Changes of the sockets ``query`` selects, forever (``--watch``): ``new``,
    ``closed`` (for inet sockets also those that opened and closed between two
    snapshots, from the kernel's destruction events; needs CAP_NET_ADMIN, else snapshots
    only), ``state``, and with ``Query(info=True)`` ``rate`` (bytes acked/received and
    retransmits per second). UNIX, PACKET and NETLINK sockets (when the query selects
    them) are compared snapshot to snapshot only: the kernel has no destruction events
    for them. Each is a :class:`~sockscope.ops.watch.Change`, keyed by (``netns``,
    ``cookie``; 0 and the socket's ``inode`` for one read from ``/proc``, which has none).
    The first snapshot is the baseline and yields nothing. With ``Query(netns="all")``
    every namespace found at the start is watched at once (each
    change's ``space`` is its :class:`~sockscope.ops.namespaces.Namespace`).
    """
    from sockscope.ops import watch as watching

    query = query if query is not None else Query()
    if not interval > 0:
        raise ArgumentError(f"interval must be positive, not {interval!r}")
    sel = query.selection()
    flt = _filter_for(query, sel)
    matcher = None if flt is None else flt.matches
    bytecode = None if flt is None else flt.bytecode()
    view = _data_view(query)

    def stream() -> Iterator[Change]:
        for change in watching.changes(sel, interval, query.info, matcher, bytecode):
            change.socket.attach(view)
            yield change

    if query.netns is None:
        return stream()
    if query.netns == "all":
        from sockscope.ops.namespaces import discover

        def everywhere() -> Iterator[Change]:
            spaces = discover().namespaces
            for change in watching.changes(
                sel, interval, query.info, matcher, bytecode, spaces=spaces, flt=flt
            ):
                change.socket.attach(view, None, change.space)
                yield change

        return everywhere()
    from sockscope.ops import netns as ns

    return ns.iterate(query.netns, stream)


def _data_view(query: Query) -> View:
    """The data view of a query's records: their ``to_dict()`` is the object that
    ``sockscope --json -n -oe --cgroup --inet-sockopt`` prints for the socket, with
    ``--tos``, ``-m``, ``-i`` and ``-p`` as the query asks for them."""
    from sockscope.render.names import CgroupMap
    from sockscope.render.view import View

    view = View()
    view.mem = query.memory
    view.info = query.info
    view.tos = query.tos
    view.cgroup_path = CgroupMap(lambda _message: None).path
    return view


def _stream(
    ctx: Context,
    netns: str | None,
    view: View,
    owners: Callable[[int], tuple[Owner, ...]] | None,
) -> Iterator[Socket]:
    if netns is None:
        for rec in _gather(ctx):
            rec.attach(view, None if owners is None else owners(rec.inode))
            yield rec
        return
    from sockscope.ops import namespaces as nsops

    # entered around each batch, so the caller's code between items runs at home
    for space, rec in nsops.listing(netns, lambda: _gather(ctx.fresh())):
        rec.attach(view, None if owners is None else owners(rec.inode), space)
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


def _gather(ctx: Context) -> Iterator[Socket]:
    """Every selected table in ss's order."""
    for table in walk(ctx):
        yield from table.records  # type: ignore[misc]


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


def summary(netns: str | None = None, environ: Mapping[str, str] | None = None) -> Summary:
    """The counters behind ``ss -s``: totals per socket kind and TCP state.

    ``netns`` names a network namespace under /var/run/netns to read instead of the
    current one; ``environ`` (default ``os.environ``) supplies ``PROC_ROOT`` and the
    ``PROC_NET_*`` overrides. Raises :class:`~sockscope.errors.SockscopeError` with ss's
    message where ss would print one and go on with zeros.
    """
    from sockscope.ops import sockstat

    return sockstat.summary(netns, environ)


def events(
    tables: Iterable[str] = ("tcp", "udp"),
    families: Iterable[str | int] = ("inet", "inet6"),
    filter: str | Filter | None = None,
    kill: bool = False,
    netns: str | None = None,
) -> Iterator[InetSocket]:
    """TCP and UDP sockets as the kernel destroys them (``ss -E``), until closed.

    ``tables`` is any of ``"tcp"``/``"udp"``; ``families`` any of ``"inet"``/``"inet6"``
    (or AF_* numbers); ``filter`` ss filter text or a parsed filter; ``kill`` also sends
    SOCK_DESTROY as ``-K`` does; ``netns`` follows a namespace under /var/run/netns.
    Blocks between events; needs CAP_NET_ADMIN. Unknown words raise
    :class:`~sockscope.errors.ArgumentError` here; subscribing or receiving failures
    raise :class:`~sockscope.errors.EventError` from the iterator.
    """
    from sockscope.ops import follow

    table_words = _words("tables", tables) or []
    family_list = list(families)
    for word in table_words:
        if word not in follow.TABLE_NAMES:
            raise ArgumentError(f'"{word}" has no destroy events (tcp or udp)')
    for fam in family_list:
        if not isinstance(fam, int) and fam not in follow.FAMILY_NAMES:
            raise ArgumentError(f'"{fam}" is invalid family')
    if isinstance(filter, str):
        filter = parse_filter(filter)
    return follow.events(table_words, family_list, filter, kill, netns)
