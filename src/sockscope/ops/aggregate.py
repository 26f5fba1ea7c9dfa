"""``--count-by`` / ``sockscope.count()``: sockets grouped by keys, with summed queues;
and ``--sort`` / ``sockets(sort=...)``: records or rows in key order.

Counting streams: each record adds to its group and is dropped, so memory grows with the
number of groups, never with the number of sockets. Records are grouped on the keys'
raw values (:mod:`sockscope.ops.keys`: address bytes, ports in network order), and the
text of a group's values is made once per group at the end; groups whose values come
out the same (an IPv4 address seen by two tables) are merged then.

Order of groups: the biggest count first; ties by the key values in key order, each
ascending (numbers as numbers, addresses numerically, IPv4 before IPv6, missing values
last). ``top`` keeps the first N.
"""

from __future__ import annotations

from sockscope.errors import ArgumentError
from sockscope.ops.keys import info_reader
from sockscope.tables.inet.layout import RQUEUE, WQUEUE
from sockscope.tables.inet.record import InetSocket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable, Sequence

    from sockscope.ops.keys import Key, Value

#: the sums of a group besides its count: always, and with tcp_info (-i)
SUMS = ("recv_q", "send_q")
INFO_SUMS = ("bytes_acked", "bytes_received", "retrans")


class Group:
    """One group of sockets: the key values that define it, how many sockets it has and
    the sums of their queues (and, when tcp_info was asked for, of ``bytes_acked``,
    ``bytes_received`` and ``retrans`` (tcpi_total_retrans))."""

    __slots__ = ("count", "key", "sums")

    def __init__(self, key: dict[str, Value], count: int, sums: dict[str, int]) -> None:
        #: key name -> value (None: the sockets have no value for that key)
        self.key = key
        self.count = count
        self.sums = sums

    @property
    def recv_q(self) -> int:
        return self.sums["recv_q"]

    @property
    def send_q(self) -> int:
        return self.sums["send_q"]

    def to_dict(self) -> dict[str, object]:
        """``{"group": {...}, "count": N, "recv_q": .., "send_q": .., ...}``: what
        ``--count-by --json-lines`` prints (keys without a value are left out)."""
        out: dict[str, object] = {
            "group": {k: v for k, v in self.key.items() if v is not None},
            "count": self.count,
        }
        out.update(self.sums)
        return out

    def __repr__(self) -> str:
        return f"Group({self.key!r}, count={self.count}, {self.sums!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Group):
            return NotImplemented
        return (self.key, self.count, self.sums) == (other.key, other.count, other.sums)

    __hash__ = None  # type: ignore[assignment]


class Counter:
    """Adds records to their groups (:meth:`add`), then gives the groups (:meth:`groups`)."""

    def __init__(
        self,
        keys: Sequence[Key],
        info: bool = False,
        inet_key: Callable[[InetSocket], Hashable] | None = None,
    ) -> None:
        """``inet_key``: one function giving an inet record's raw key (what the keys'
        ``inet`` functions give, as a tuple when there are several), for callers that
        can read it faster than one call per key (``operator.itemgetter``)."""
        self.keys = list(keys)
        names = [k.name for k in self.keys]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            # a group is {name: value}: two keys of one name (peer_prefix/8,peer_prefix/16)
            # would overwrite each other
            raise ArgumentError(f'sockscope: key "{twice[0]}" given twice')
        self.info = info
        self._inet_key = inet_key
        #: raw key -> [count, recv_q, send_q(, bytes_acked, bytes_received, retrans)]
        self.table: dict[Hashable, list[int]] = {}
        #: the same for records of the other tables (UNIX, PACKET, ...)
        self.others: dict[Hashable, list[int]] = {}
        self._readers = (
            [
                info_reader(f)
                for f in ("tcpi_bytes_acked", "tcpi_bytes_received", "tcpi_total_retrans")
            ]
            if info
            else []
        )

    def _raw_fns(self) -> tuple[Callable[[InetSocket], Hashable], Callable[[object], Hashable]]:
        inet = [k.inet for k in self.keys]
        other = [k.other for k in self.keys]
        if len(inet) == 1:
            return self._inet_key or inet[0], other[0]

        def inet_key(rec: InetSocket) -> Hashable:
            return tuple([f(rec) for f in inet])

        def other_key(rec: object) -> Hashable:
            return tuple([f(rec) for f in other])

        return self._inet_key or inet_key, other_key

    def add(self, records: Iterable[object]) -> None:
        """Count every record (one pass, nothing kept but the groups)."""
        table = self.table
        get = table.get
        others = self.others
        inet_key, other_key = self._raw_fns()
        readers = self._readers
        width = 3 + len(readers)
        inet = InetSocket
        for rec in records:
            if type(rec) is inet:
                k = inet_key(rec)
                g = get(k)
                if g is None:
                    g = table[k] = [0] * width
                g[0] += 1
                g[1] += rec[RQUEUE]
                g[2] += rec[WQUEUE]
                if readers:
                    for i, read in enumerate(readers, 3):
                        g[i] += read(rec) or 0
                continue
            # the other tables' raw values are their data values: kept apart
            k = other_key(rec)
            g = others.get(k)
            if g is None:
                g = others[k] = [0] * width
            g[0] += 1
            g[1] += getattr(rec, "recv_q", 0) or 0
            g[2] += getattr(rec, "send_q", 0) or 0

    def groups(self, top: int | None = None) -> list[Group]:
        """The groups, biggest first (ties by key values), the first ``top`` of them."""
        keys = self.keys
        names = [k.name for k in keys]
        merged: dict[tuple[Value, ...], list[int]] = {}
        single = len(keys) == 1
        pairs = [*self.table.items(), *self.others.items()]
        for raw, sums in pairs:
            raws: tuple[Hashable, ...] = (raw,) if single else raw  # type: ignore[assignment]
            values = tuple(k.value(r) for k, r in zip(keys, raws, strict=True))
            have = merged.get(values)
            if have is None:
                merged[values] = list(sums)
            else:
                for i, n in enumerate(sums):
                    have[i] += n
        orders = [k.order for k in keys]

        def rank(item: tuple[tuple[Value, ...], list[int]]) -> tuple[object, ...]:
            values, sums = item
            return (-sums[0], *(o(v) for o, v in zip(orders, values, strict=True)))

        items = sorted(merged.items(), key=rank)
        if top is not None:
            items = items[: max(top, 0)]
        sum_names = SUMS + (INFO_SUMS if self.info else ())
        return [
            Group(
                dict(zip(names, values, strict=True)),
                sums[0],
                dict(zip(sum_names, sums[1:], strict=True)),
            )
            for values, sums in items
        ]


def sort_records(
    records: Iterable[object], keys: Sequence[Key], descending: Sequence[bool]
) -> list[object]:
    """The records in key order; stable, so ties keep the order they came in (ss's)."""
    items = list(records)
    return [items[i] for i in sort_order(items, keys, descending)]


def sort_order(
    items: Sequence[object], keys: Sequence[Key], descending: Sequence[bool]
) -> list[int]:
    """The indices of ``items`` in key order (stable: one pass per key, last key first)."""
    order = list(range(len(items)))
    for key, desc in reversed(list(zip(keys, descending, strict=True))):
        raw = key.raw
        value = key.value
        rank = key.order
        memo: dict[Hashable, tuple[int, int, str]] = {}
        ranks = []
        for rec in items:
            r = raw(rec)
            found = memo.get(r)
            if found is None:
                found = memo[r] = rank(value(r))
            ranks.append(found)
        if desc:
            # missing values stay last when descending too
            order.sort(key=lambda i: (ranks[i][0] == 3, _neg(ranks[i])), reverse=False)
        else:
            order.sort(key=ranks.__getitem__)
    return order


def table_text(groups: Sequence[Group], names: Sequence[str], header: bool = True) -> str:
    """The text of ``--count-by``: ``COUNT KEY... RECV-Q SEND-Q`` (and the -i sums), one
    space between columns, numbers right-aligned, text left-aligned, no trailing blanks;
    a key without a value shows ``-``."""
    sums = list(groups[0].sums) if groups else ["recv_q", "send_q"]
    heads = ["COUNT", *(n.upper() for n in names), *(s.upper().replace("_", "-") for s in sums)]
    numeric = [True]
    numeric += [all(isinstance(g.key[n], (int, type(None))) for g in groups) for n in names]
    numeric += [True] * len(sums)
    rows = [heads] if header else []
    for g in groups:
        cells = [str(g.count)]
        cells += [_cell(n, g.key[n]) for n in names]
        cells += [str(g.sums[s]) for s in sums]
        rows.append(cells)
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(heads))]
    lines = []
    for r in rows:
        cells = [
            c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric, strict=True)
        ]
        lines.append(" ".join(cells).rstrip(" ") + "\n")
    return "".join(lines)


def _cell(name: str, value: Value) -> str:
    """A key's text cell: ``-`` without a value; port 0 as ``*``, as ss prints it (the
    data, ``--json``, keeps the number)."""
    if value is None:
        return "-"
    if value == 0 and name in ("local_port", "peer_port"):
        return "*"
    return str(value)


def _neg(rank: tuple[int, int, str]) -> tuple[int, int, _Reversed]:
    return (-rank[0], -rank[1], _Reversed(rank[2]))


class _Reversed:
    """Text in descending order inside an ascending sort."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __lt__(self, other: _Reversed) -> bool:
        return self.text > other.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and self.text == other.text

    __hash__ = None  # type: ignore[assignment]


def parse_sort(words: Sequence[str]) -> tuple[list[str], list[bool]]:
    """``[-]KEY`` words -> (key words, descending flags)."""
    names = [w[1:] if w.startswith("-") else w for w in words]
    return names, [w.startswith("-") for w in words]
