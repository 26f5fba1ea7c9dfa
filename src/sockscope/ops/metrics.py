"""``--metrics`` / ``sockscope.metrics()``: the selected sockets as Prometheus samples.

One pass over the records feeds a few counters (:class:`sockscope.ops.aggregate.Counter`
and histogram tables), so memory grows with the series, not the sockets:

* ``node_tcp_connection_states{state}``: TCP sockets per state, with node_exporter's
  tcpstat collector's state names (``established`` ... ``closing``) and its two queue
  "states" (``rx_queued_bytes``, ``tx_queued_bytes``: the sums of Recv-Q and Send-Q);
  every one of the thirteen is written, 0 when none is selected (tcpstat leaves the
  zeros out, so a 0 here is no series there). ``close`` stays 0: the TCP sockets ss
  lists in CLOSE (UNCONN) are bound-but-inactive ones, which tcpstat never asks the
  kernel for (its state mask is 0xFFF, without bit 13, TCP_BOUND_INACTIVE), and a
  socket in CLOSE is in no table the kernel dumps otherwise. Drop-in: it counts the sockets of
  the *home* namespace only (the caller's, or the one ``Query(netns=NAME)`` / ``-N``
  names), as a node_exporter running there would, also when the records come from
  every namespace (``--all-netns``): summing namespaces would change what an existing
  dashboard's query means; the per-namespace numbers are ``sockscope_sockets``;
* ``node_sockstat_*``: node_exporter's sockstat collector, the same names, HELP text and
  values, from the home namespace's ``/proc/net/sockstat{,6}`` (:func:`sockstat_samples`;
  whole-namespace counters: the selection and filter do not apply);
* ``sockscope_sockets{netid,state,netns[,netns_name]}``: every selected socket, per ss
  netid, ss state and network namespace (``netns``: its nsfs inode, ``netns_name``: its
  name under /var/run/netns when it has one);
* ``sockscope_listen_queue{local_address,local_port,netid,netns...}`` (Recv-Q:
  connections waiting for accept()) and ``sockscope_listen_backlog{...}`` (Send-Q: the
  backlog) for LISTEN rows; sockets sharing an address and port (SO_REUSEPORT) are summed;
* with ``info`` (``-i``), per netid, state and namespace, for the TCP sockets that have
  ``struct tcp_info``: histograms ``sockscope_tcp_rtt_seconds`` (tcpi_rtt, buckets
  :data:`RTT_BUCKETS`) and ``sockscope_tcp_cwnd_segments`` (tcpi_snd_cwnd, buckets
  :data:`CWND_BUCKETS`), each observing only the sockets where ss prints the value
  (non-zero); gauges ``sockscope_tcp_acked_bytes``, ``sockscope_tcp_received_bytes``
  and ``sockscope_tcp_retransmitted_segments``: the sums of tcpi_bytes_acked,
  tcpi_bytes_received and tcpi_total_retrans over the sockets there now (gauges, not
  counters: a closing socket takes its share away);
* with ``by``: ``sockscope_group_sockets{KEY...}``, the ``--count-by`` groups.

The numbers are those of the selection: ss's default selection leaves out listeners
and TIME-WAIT sockets, as ``ss`` does; ``-a`` (``Query(states=["all"])``) counts all.

``max_series`` caps each family: the first series in ``--count-by`` order are kept (most
sockets first, ties by label values) and the rest are summed into one series whose every
label is ``"other"`` (a histogram's label sets fold with their buckets);
``sockscope_series_folded{metric}`` says how many series each family folded (0 when
none). Label values are ``--count-by``'s (a dual-stack wildcard address is ``::``,
where ss writes ``*``).
"""

from __future__ import annotations

import os
import re
from bisect import bisect_left
from operator import itemgetter
from typing import NamedTuple

from sockscope.ops import aggregate
from sockscope.ops.keys import Key, make_keys
from sockscope.ops.netns import NETNS_RUN_DIR

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
    from typing import Any

    from sockscope.ops.keys import Lookups, Value

#: ss state name -> node_exporter tcpstat's state label (collector/tcpstat_linux.go)
NODE_TCP_STATES = {
    "ESTAB": "established",
    "SYN-SENT": "syn_sent",
    "SYN-RECV": "syn_recv",
    "FIN-WAIT-1": "fin_wait1",
    "FIN-WAIT-2": "fin_wait2",
    "TIME-WAIT": "time_wait",
    "UNCONN": "close",
    "CLOSE-WAIT": "close_wait",
    "LAST-ACK": "last_ack",
    "LISTEN": "listen",
    "CLOSING": "closing",
}
#: tcpstat's two extra "states": the sums of the TCP sockets' Recv-Q and Send-Q
NODE_TCP_QUEUES = ("rx_queued_bytes", "tx_queued_bytes")
#: upper bounds of ``sockscope_tcp_rtt_seconds``'s buckets (50 us .. 2.5 s, then +Inf):
#: loopback and LAN paths land in the first ones, continents in the last
RTT_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
#: upper bounds of ``sockscope_tcp_cwnd_segments``'s buckets (powers of two, then +Inf;
#: Linux starts a connection at 10)
CWND_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
#: the label value of a folded series
OTHER = "other"
_BATCH = 1024
_LISTEN_LABELS = ("local_address", "local_port", "netid")
_INFO_GAUGES = (
    ("sockscope_tcp_acked_bytes", "Sum of tcpi_bytes_acked of the selected TCP sockets."),
    ("sockscope_tcp_received_bytes", "Sum of tcpi_bytes_received of the selected TCP sockets."),
    (
        "sockscope_tcp_retransmitted_segments",
        "Sum of tcpi_total_retrans of the selected TCP sockets.",
    ),
)


class Sample(NamedTuple):
    """One sample: metric name, labels, value, metric type and help text.

    A histogram's samples are ``NAME_bucket`` (with ``le``), ``NAME_sum`` and
    ``NAME_count``, of type ``"histogram"``; their family is ``NAME``.
    """

    name: str
    labels: dict[str, str]
    value: float
    type: str
    help: str


class Space(NamedTuple):
    """A network namespace as the labels show it: nsfs inode and name (or None)."""

    inode: int
    name: str | None


def here(name: str | None = None) -> Space:
    """The calling thread's namespace; its name is ``name`` or else the first name
    under /var/run/netns that is bound to it (None when none is)."""
    try:
        st = os.stat("/proc/thread-self/ns/net")
    except OSError:
        st = os.stat("/proc/self/ns/net")
    if name is None:
        try:
            entries = sorted(os.listdir(NETNS_RUN_DIR))
        except OSError:
            entries = []
        for entry in entries:
            try:
                other = os.stat(os.path.join(NETNS_RUN_DIR, entry))
            except OSError:
                continue
            if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
                name = entry
                break
    return Space(st.st_ino, name)


def label_name(key: str) -> str:
    """A key name as a Prometheus label name (``peer_prefix/24`` -> ``peer_prefix_24``)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", key)
    return name if name and not name[0].isdigit() else "_" + name


def _text(value: object) -> str:
    return "" if value is None else str(value)


def sockstat_samples(
    pairs: Sequence[tuple[bool, str, Sequence[str]]], page_size: int | None = None
) -> list[Sample]:
    """node_exporter's sockstat collector over :func:`sockscope.ops.sockstat.read_pairs`:
    ``node_sockstat_sockets_used`` (the IPv4 file's ``sockets: used``), then per
    protocol line ``node_sockstat_PROTO_{inuse,orphan,tw,alloc,mem,memory}`` for the
    keys the line has (``inuse`` always, 0 when missing) and ``..._mem_bytes`` (``mem``
    pages times the page size)."""
    size = page_size if page_size is not None else os.sysconf("SC_PAGE_SIZE")
    out: list[Sample] = []
    for ipv6, proto, words in pairs:
        values: dict[str, int] = {}
        for i in range(0, len(words) - 1, 2):
            values[words[i]] = _int(words[i + 1])
        if proto == "sockets":
            if not ipv6:  # the collector reads it from the IPv4 file only
                used = values.get("used", 0)
                out.append(
                    _gauge("node_sockstat_sockets_used", "Number of IPv4 sockets in use.", used)
                )
            continue
        found = {"inuse": values.get("inuse", 0)}
        for key in ("orphan", "tw", "alloc", "mem", "memory"):
            if key in values:
                found[key] = values[key]
        if "mem" in values:
            found["mem_bytes"] = values["mem"] * size
        out.extend(
            _gauge(f"node_sockstat_{proto}_{key}", f"Number of {proto} sockets in state {key}.", v)
            for key, v in found.items()
        )
    return out


def _int(word: str) -> int:
    from sockscope.errors import SockscopeError

    try:
        return int(word, 0) if word[:2].lower() in ("0x", "0o", "0b") else int(word)
    except ValueError:
        raise SockscopeError(f"sockstat: not a number: {word!r}") from None


def _gauge(name: str, help: str, value: float, labels: dict[str, str] | None = None) -> Sample:
    return Sample(name, {} if labels is None else labels, value, "gauge", help)


def _fold_rows(
    series: Sequence[tuple[dict[str, str], Sequence[float]]], max_series: int
) -> tuple[list[tuple[dict[str, str], list[float]]], int]:
    """Series (in rank order) with the same labels summed, then at most ``max_series``
    of them: the rest summed element-wise into one series labelled ``"other"``.
    Returns the series and how many were folded."""
    merged: dict[tuple[tuple[str, str], ...], tuple[dict[str, str], list[float]]] = {}
    for labels, values in series:
        key = tuple(labels.items())
        have = merged.get(key)
        if have is None:
            merged[key] = (labels, list(values))
        else:
            for i, v in enumerate(values):
                have[1][i] += v
    keep = list(merged.values())
    if len(keep) <= max_series:
        return keep, 0
    cut = max(max_series - 1, 0)
    keep, extra = keep[:cut], keep[cut:]
    total = [0.0] * len(extra[0][1])
    for _labels, values in extra:
        for i, v in enumerate(values):
            total[i] += v
    other = dict.fromkeys(extra[0][0], OTHER)
    keep.append((other, [int(v) if float(v).is_integer() else v for v in total]))
    return keep, len(extra)


def _fold(
    name: str,
    help: str,
    series: Sequence[tuple[dict[str, str], int]],
    max_series: int,
    folded: dict[str, int],
) -> list[Sample]:
    """The series (already in rank order) as gauge samples, at most ``max_series`` of
    them. Series whose label values come out the same (a missing value and an empty
    one) are summed, so no two samples of a family have the same labels."""
    rows, n = _fold_rows([(labels, (value,)) for labels, value in series], max_series)
    folded[name] = n
    return [Sample(name, labels, values[0], "gauge", help) for labels, values in rows]


def _histogram(
    name: str,
    help: str,
    bounds: Sequence[float],
    series: Sequence[tuple[dict[str, str], Sequence[float]]],
    max_series: int,
    folded: dict[str, int],
) -> list[Sample]:
    """Histogram samples; each series' values are its per-bucket counts (one per bound
    and one for +Inf, not cumulative), then the sum of the observations."""
    rows, n = _fold_rows(series, max_series)
    folded[name] = n
    out: list[Sample] = []
    les = [_le(b) for b in bounds] + ["+Inf"]
    for labels, values in rows:
        running = 0
        for le, n_in in zip(les, values, strict=False):
            running += int(n_in)
            out.append(Sample(f"{name}_bucket", {**labels, "le": le}, running, "histogram", help))
        total = values[len(les)]
        out.append(Sample(f"{name}_sum", labels, total, "histogram", help))
        out.append(Sample(f"{name}_count", labels, running, "histogram", help))
    return out


def _le(bound: float) -> str:
    return repr(float(bound)) if isinstance(bound, float) else f"{bound}.0"


def _space_key(home: Space) -> Key:
    """A key on the namespace a record was listed in (``home`` when it carries none)."""

    def inet(rec: object) -> Hashable:
        return rec.__dict__.get("_netns")

    def other(rec: object) -> Hashable:
        return getattr(rec, "netns", None)

    def value(raw: Hashable) -> Value:
        return home.inode if raw is None else int(getattr(raw, "inode", 0))

    return Key("netns", inet, other, value)


def _space_labels(inode: Value, names: Mapping[int, str | None]) -> dict[str, str]:
    name = names.get(inode) if isinstance(inode, int) else None
    labels = {"netns": _text(inode)}
    if name:
        labels["netns_name"] = name
    return labels


class _Info:
    """Per raw key (netid, state[, namespace]) of the TCP records with tcp_info: rtt and
    cwnd bucket counts and sums, and the sums of bytes acked, received and retransmits.

    One attribute lookup per record, then the five fields unpacked at their offsets in
    ``struct tcp_info`` (what :func:`sockscope.ops.keys.info_reader` reads one by one).
    """

    #: row layout: rtt buckets (+Inf last), rtt sum (us), cwnd buckets, cwnd sum,
    #: bytes_acked, bytes_received, total_retrans
    N_RTT = len(RTT_BUCKETS) + 1
    N_CWND = len(CWND_BUCKETS) + 1

    def __init__(self, keys: Sequence[Key], inet_key: Callable[[Any], Hashable]) -> None:
        self.keys = list(keys)
        self.inet_key = inet_key
        self.table: dict[Hashable, list[float]] = {}
        self._rtt_us = [b * 1e6 for b in RTT_BUCKETS]

    def add(self, records: Iterable[object]) -> None:
        from sockscope.kernel import abi
        from sockscope.ops.keys import TCP_INFO_OFFSETS
        from sockscope.tables.inet.layout import BUF, PROTOCOL
        from sockscope.tables.inet.record import InetSocket

        fields = [
            TCP_INFO_OFFSETS[f]
            for f in (
                "tcpi_rtt",
                "tcpi_snd_cwnd",
                "tcpi_bytes_acked",
                "tcpi_bytes_received",
                "tcpi_total_retrans",
            )
        ]
        need = max(offset + layout.size for offset, layout in fields)
        (o_rtt, u_rtt), (o_cwnd, u_cwnd), (o_acked, u_q), (o_recv, _u), (o_retr, _u2) = [
            (offset, layout.unpack_from) for offset, layout in fields
        ]
        n_rtt, n_cwnd = self.N_RTT, self.N_CWND
        rtt_sum = n_rtt
        cwnd0 = n_rtt + 1
        cwnd_sum = cwnd0 + n_cwnd
        acked = cwnd_sum + 1
        width = acked + 3
        table = self.table
        key = self.inet_key
        rtt_us = self._rtt_us
        tcp, kind = abi.IPPROTO_TCP, abi.INET_DIAG_INFO
        for rec in records:
            if type(rec) is not InetSocket or rec[PROTOCOL] != tcp or rec[BUF] is None:
                continue
            span = rec.spans().get(kind)
            if span is None or span[1] - span[0] < need:
                continue  # no tcp_info (TIME-WAIT), or an older kernel's shorter one
            buf, base = rec[BUF], span[0]
            k = key(rec)
            row = table.get(k)
            if row is None:
                row = table[k] = [0] * width
            rtt = u_rtt(buf, base + o_rtt)[0]
            if rtt:
                row[bisect_left(rtt_us, rtt)] += 1
                row[rtt_sum] += rtt
            cwnd = u_cwnd(buf, base + o_cwnd)[0]
            if cwnd:
                row[cwnd0 + bisect_left(CWND_BUCKETS, cwnd)] += 1
                row[cwnd_sum] += cwnd
            row[acked] += u_q(buf, base + o_acked)[0]
            row[acked + 1] += u_q(buf, base + o_recv)[0]
            row[acked + 2] += u_rtt(buf, base + o_retr)[0]

    def merged(self) -> list[tuple[tuple[Value, ...], list[float]]]:
        """(key values, row) per group, biggest first (by sockets with an rtt), ties by
        the key values."""
        merged: dict[tuple[Value, ...], list[float]] = {}
        single = len(self.keys) == 1
        for raw, row in self.table.items():
            raws = (raw,) if single else raw
            values = tuple(k.value(r) for k, r in zip(self.keys, raws, strict=True))  # type: ignore[call-overload]
            have = merged.get(values)
            if have is None:
                merged[values] = list(row)
            else:
                for i, v in enumerate(row):
                    have[i] += v
        orders = [k.order for k in self.keys]
        n_rtt = self.N_RTT

        def rank(item: tuple[tuple[Value, ...], list[float]]) -> tuple[object, ...]:
            values, row = item
            return (-sum(row[:n_rtt]), *(o(v) for o, v in zip(orders, values, strict=True)))

        return sorted(merged.items(), key=rank)


def collect(
    records: Iterable[object],
    lookups: Lookups,
    by: Sequence[str] | None = None,
    max_series: int = 1000,
    *,
    info: bool = False,
    home: Space | None = None,
    names: Mapping[int, str | None] | None = None,
    sockstat: Sequence[tuple[bool, str, Sequence[str]]] | None = None,
    spaces: bool = True,
) -> list[Sample]:
    """The samples of ``records`` (see the module docstring).

    ``home``: the namespace the records without one were listed in, and the one
    ``node_tcp_connection_states`` counts (default: the calling thread's, :func:`here`);
    ``names``: namespace names by inode (the records' own namespaces are asked first);
    ``info``: the tcp_info histograms and sums; ``sockstat``: the home namespace's
    :func:`sockscope.ops.sockstat.read_pairs` (no ``node_sockstat_*`` when None);
    ``spaces``: whether records may carry a namespace of their own (``sockets(netns=
    "all")``); False when every one is the home namespace's, which reads faster.
    """
    from sockscope.kernel.abi import SS_LISTEN
    from sockscope.tables.inet.layout import PROTOCOL, STATE
    from sockscope.tables.inet.record import InetSocket

    if max_series < 1:
        raise ValueError("max_series must be at least 1")
    home = here() if home is None else home
    space_names: dict[int, str | None] = {home.inode: home.name, **(names or {})}
    netid_key = _netid_key(lookups)
    (state_key,) = make_keys(["state"], lookups)
    state_keys = [netid_key, state_key]
    inet_key: Callable[[Any], Hashable]
    if spaces:
        state_keys.append(_space_key(home))

        def inet_key(rec: Any) -> Hashable:
            return (rec[PROTOCOL], rec[STATE], rec.__dict__.get("_netns"))

    else:
        inet_key = itemgetter(PROTOCOL, STATE)
    listen_keys = [*make_keys(["local_address", "local_port"], lookups), netid_key]
    if spaces:
        listen_keys.append(_space_key(home))
    by_keys: list[Key] = make_keys(list(by), lookups) if by else []
    states = aggregate.Counter(state_keys, inet_key=inet_key)
    listens = aggregate.Counter(listen_keys)
    groups = aggregate.Counter(by_keys) if by_keys else None
    tcp_info = _Info(state_keys, inet_key) if info else None
    other_listen = _listen_test(state_key)
    inet, listen_state = InetSocket, SS_LISTEN
    batch: list[Any] = []

    def flush() -> None:
        states.add(batch)
        # LISTEN rows: an item compared for inet records (most of them), inline
        listens.add(
            [r for r in batch if (r[STATE] == listen_state if type(r) is inet else other_listen(r))]
        )
        if groups is not None:
            groups.add(batch)
        if tcp_info is not None:
            tcp_info.add(batch)
        batch.clear()

    for rec in records:
        batch.append(rec)
        if len(batch) >= _BATCH:
            flush()
    flush()
    if spaces:
        # the namespaces met: the last item of the raw keys (a Namespace; None for home)
        for raw in [*states.table, *states.others]:
            space = raw[-1]  # type: ignore[index]
            inode = getattr(space, "inode", None)
            if isinstance(inode, int) and space_names.get(inode) is None:
                space_names[inode] = getattr(space, "name", None)

    def labels_of(values: tuple[Value, ...]) -> dict[str, str]:
        netid, state, *rest = values
        inode = rest[0] if rest else home.inode
        return {"netid": _text(netid), "state": _text(state), **_space_labels(inode, space_names)}

    folded: dict[str, int] = {}
    out: list[Sample] = []
    tcp = dict.fromkeys([*NODE_TCP_STATES.values(), *NODE_TCP_QUEUES], 0)
    per_state: list[tuple[dict[str, str], int]] = []
    for g in states.groups():
        values = tuple(g.key.values())
        labels = labels_of(values)
        per_state.append((labels, g.count))
        if labels["netid"] == "tcp" and labels["netns"] == str(home.inode):
            state = labels["state"]
            if state in NODE_TCP_STATES and state != "UNCONN":
                tcp[NODE_TCP_STATES[state]] += g.count
            tcp["rx_queued_bytes"] += g.recv_q
            tcp["tx_queued_bytes"] += g.send_q
    out.extend(
        _gauge("node_tcp_connection_states", "Number of connection states.", n, {"state": s})
        for s, n in tcp.items()
    )
    if sockstat is not None:
        out += sockstat_samples(sockstat)
    out += _fold(
        "sockscope_sockets",
        "Selected sockets by ss netid, state and network namespace.",
        per_state,
        max_series,
        folded,
    )
    listen = []
    for g in listens.groups():
        values = tuple(g.key.values())
        labels = {k: _text(v) for k, v in zip(_LISTEN_LABELS, values, strict=False)}
        inode = values[3] if spaces else home.inode
        labels.update(_space_labels(inode, space_names))
        listen.append((labels, g.recv_q, g.send_q))
    out += _fold(
        "sockscope_listen_queue",
        "Connections waiting for accept() on LISTEN sockets (Recv-Q).",
        [(labels, q) for labels, q, _b in listen],
        max_series,
        folded,
    )
    out += _fold(
        "sockscope_listen_backlog",
        "Backlog of LISTEN sockets (Send-Q).",
        [(labels, b) for labels, _q, b in listen],
        max_series,
        folded,
    )
    if tcp_info is not None:
        out += _info_samples(tcp_info, labels_of, max_series, folded)
    if groups is not None:
        label_names = [label_name(k.name) for k in by_keys]
        out += _fold(
            "sockscope_group_sockets",
            "Selected sockets per --count-by group.",
            [
                ({n: _text(v) for n, v in zip(label_names, g.key.values(), strict=True)}, g.count)
                for g in groups.groups()
            ],
            max_series,
            folded,
        )
    out.extend(
        _gauge(
            "sockscope_series_folded",
            'Series folded into label value "other" by the max_series cap.',
            n,
            {"metric": name},
        )
        for name, n in folded.items()
    )
    return out


def _info_samples(
    tcp_info: _Info,
    labels_of: Callable[[tuple[Value, ...]], dict[str, str]],
    max_series: int,
    folded: dict[str, int],
) -> list[Sample]:
    n_rtt, n_cwnd = _Info.N_RTT, _Info.N_CWND
    rtt: list[tuple[dict[str, str], list[float]]] = []
    cwnd: list[tuple[dict[str, str], list[float]]] = []
    sums: list[tuple[dict[str, str], list[float]]] = []
    for values, row in tcp_info.merged():
        labels = labels_of(values)
        rtt.append((labels, [*row[:n_rtt], row[n_rtt] / 1e6]))
        cwnd.append((labels, row[n_rtt + 1 : n_rtt + 2 + n_cwnd]))
        sums.append((labels, row[n_rtt + 2 + n_cwnd :]))
    out = _histogram(
        "sockscope_tcp_rtt_seconds",
        "Smoothed round-trip time (tcpi_rtt) of the selected TCP sockets that have one.",
        RTT_BUCKETS,
        rtt,
        max_series,
        folded,
    )
    out += _histogram(
        "sockscope_tcp_cwnd_segments",
        "Congestion window (tcpi_snd_cwnd) of the selected TCP sockets that have one.",
        CWND_BUCKETS,
        cwnd,
        max_series,
        folded,
    )
    for i, (name, help) in enumerate(_INFO_GAUGES):
        out += _fold(
            name, help, [(labels, int(row[i])) for labels, row in sums], max_series, folded
        )
    return out


def _netid_key(lookups: Lookups) -> Key:
    """``netid`` whose raw value for inet records is the protocol number (an item read;
    the name is made once per group)."""
    from sockscope.kernel.abi import PROTO_NAMES
    from sockscope.tables.inet.layout import PROTOCOL

    (plain,) = make_keys(["netid"], lookups)

    def value(raw: Hashable) -> Value:
        return PROTO_NAMES.get(raw, "???") if isinstance(raw, int) else plain.value(raw)

    return Key("netid", itemgetter(PROTOCOL), plain.other, value, plain.order)


def _listen_test(state_key: Key) -> Callable[[object], bool]:
    """Whether a record of a table other than the inet ones is a LISTEN socket (its
    state's name, memoised per raw state)."""
    memo: dict[Hashable, bool] = {}

    def test(rec: object) -> bool:
        raw = state_key.other(rec)
        found = memo.get(raw)
        if found is None:
            found = memo[raw] = state_key.value(raw) == "LISTEN"
        return found

    return test
