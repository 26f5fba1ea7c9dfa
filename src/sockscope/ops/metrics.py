"""``--metrics`` / ``sockscope.metrics()``: the selected sockets as Prometheus samples.

One pass over the records feeds three counters (:class:`sockscope.ops.aggregate.Counter`,
so memory grows with the series, not the sockets):

* ``node_tcp_connection_states{state}``: TCP sockets per state, with node_exporter's
  tcpstat collector's state names (``established`` ... ``closing``); every one of the
  eleven states is written, 0 when none is selected;
* ``sockscope_sockets{netid,state}``: every selected socket, per ss netid and ss state;
* ``sockscope_listen_queue{local_address,local_port,netid}`` (Recv-Q: connections
  waiting for accept()) and ``sockscope_listen_backlog{...}`` (Send-Q: the backlog)
  for LISTEN rows; sockets sharing an address and port (SO_REUSEPORT) are summed;
* with ``by``: ``sockscope_group_sockets{KEY...}``, the ``--count-by`` groups.

The numbers are those of the selection: ss's default selection leaves out listeners
and TIME-WAIT sockets, as ``ss`` does; ``-a`` (``Query(states=["all"])``) counts all.

``max_series`` caps each family: the first series in ``--count-by`` order are kept (most
sockets first, ties by label values) and the rest are summed into one series whose every
label is ``"other"``; ``sockscope_series_folded{metric}`` says how many series each
family folded (0 when none). Label values are ``--count-by``'s (a dual-stack wildcard
address is ``::``, where ss writes ``*``).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from sockscope.ops import aggregate
from sockscope.ops.keys import make_keys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from sockscope.ops.keys import Key, Lookups

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
#: the label value of a folded series
OTHER = "other"
_BATCH = 1024
_LISTEN_LABELS = ("local_address", "local_port", "netid")


class Sample(NamedTuple):
    """One sample: metric name, labels, value, metric type and help text."""

    name: str
    labels: dict[str, str]
    value: float
    type: str
    help: str


def label_name(key: str) -> str:
    """A key name as a Prometheus label name (``peer_prefix/24`` -> ``peer_prefix_24``)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", key)
    return name if name and not name[0].isdigit() else "_" + name


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _fold(
    name: str,
    help: str,
    series: Sequence[tuple[dict[str, str], int]],
    max_series: int,
    folded: dict[str, int],
) -> list[Sample]:
    """The series (already in rank order) as samples, at most ``max_series`` of them.
    Series whose label values come out the same (a missing value and an empty one) are
    summed, so no two samples of a family have the same labels."""
    merged: dict[tuple[tuple[str, str], ...], tuple[dict[str, str], int]] = {}
    for labels, value in series:
        key = tuple(labels.items())
        have = merged.get(key)
        merged[key] = (labels, value if have is None else have[1] + value)
    keep = list(merged.values())
    extra: list[tuple[dict[str, str], int]] = []
    if len(keep) > max_series:
        cut = max(max_series - 1, 0)
        keep, extra = keep[:cut], keep[cut:]
    out = [Sample(name, labels, value, "gauge", help) for labels, value in keep]
    if extra:
        labels = dict.fromkeys(extra[0][0], OTHER)
        out.append(Sample(name, labels, sum(v for _l, v in extra), "gauge", help))
    folded[name] = len(extra)
    return out


def collect(
    records: Iterable[object],
    lookups: Lookups,
    by: Sequence[str] | None = None,
    max_series: int = 1000,
) -> list[Sample]:
    """The samples of ``records`` (see the module docstring)."""
    if max_series < 1:
        raise ValueError("max_series must be at least 1")
    states_words = ["netid", "state"]
    listen_words = ["local_address", "local_port", "netid", "state"]
    state_keys = make_keys(states_words, lookups)
    listen_keys = make_keys(listen_words, lookups)
    by_keys: list[Key] = make_keys(list(by), lookups) if by else []
    states = aggregate.Counter(state_keys)
    listens = aggregate.Counter(listen_keys)
    groups = aggregate.Counter(by_keys) if by_keys else None
    state_key = state_keys[1]
    batch: list[object] = []

    def flush() -> None:
        states.add(batch)
        listens.add([r for r in batch if state_key.value(state_key.raw(r)) == "LISTEN"])
        if groups is not None:
            groups.add(batch)
        batch.clear()

    for rec in records:
        batch.append(rec)
        if len(batch) >= _BATCH:
            flush()
    flush()

    folded: dict[str, int] = {}
    out: list[Sample] = []
    tcp = dict.fromkeys(NODE_TCP_STATES.values(), 0)
    per_state: list[tuple[dict[str, str], int]] = []
    for g in states.groups():
        netid, state = _text(g.key["netid"]), _text(g.key["state"])
        per_state.append(({"netid": netid, "state": state}, g.count))
        if netid == "tcp" and state in NODE_TCP_STATES:
            tcp[NODE_TCP_STATES[state]] += g.count
    out.extend(
        Sample(
            "node_tcp_connection_states",
            {"state": s},
            n,
            "gauge",
            "Number of connection states.",
        )
        for s, n in tcp.items()
    )
    out += _fold(
        "sockscope_sockets",
        "Selected sockets by ss netid and state.",
        per_state,
        max_series,
        folded,
    )
    listen = [
        ({k: _text(g.key[k]) for k in _LISTEN_LABELS}, g.recv_q, g.send_q) for g in listens.groups()
    ]
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
    if groups is not None:
        names = [label_name(k.name) for k in by_keys]
        out += _fold(
            "sockscope_group_sockets",
            "Selected sockets per --count-by group.",
            [
                ({n: _text(v) for n, v in zip(names, g.key.values(), strict=True)}, g.count)
                for g in groups.groups()
            ],
            max_series,
            folded,
        )
    out.extend(
        Sample(
            "sockscope_series_folded",
            {"metric": name},
            n,
            "gauge",
            'Series folded into label value "other" by the max_series cap.',
        )
        for name, n in folded.items()
    )
    return out
