"""OTLP/JSON (``--metrics=otlp-json``): the samples as one OpenTelemetry
``ExportMetricsServiceRequest`` in the protobuf JSON mapping (what an OTLP/HTTP
receiver takes at ``/v1/metrics`` with ``Content-Type: application/json``).

Shape: ``resourceMetrics[].resource.attributes`` + ``scopeMetrics[].scope`` +
``metrics[]``; each metric has ``name``, ``description``, ``unit`` and one of ``sum``,
``gauge`` or ``histogram`` with ``dataPoints``. Field names are the proto fields in
lowerCamelCase; 64-bit integers (``timeUnixNano``, ``asInt``, ``count``,
``bucketCounts``) are decimal strings and enums (``aggregationTemporality``) numbers,
as the mapping writes them; attributes are ``{"key": K, "value": {"stringValue": V}}``.

Names follow the OpenTelemetry semantic conventions where one exists:
``sockscope_sockets`` is ``system.network.connection.count`` (an UpDownCounter: a
non-monotonic cumulative ``sum``, unit ``{connection}``) with ``network.transport``
(``tcp``, ``udp``, ``unix``; other ss netids as they are) and
``network.connection.state`` (the convention's TCP state names, ``closed`` for ss's
UNCONN). The other sockscope families keep their meaning under ``sockscope.*`` names
(``sockscope_listen_queue`` -> ``sockscope.listen_queue``); the namespace is the
attributes ``sockscope.netns`` (nsfs inode) and ``sockscope.netns.name``, ss's own
netid and state ``sockscope.netid`` and ``sockscope.state``, a listener's address and
port ``network.local.address`` and ``network.local.port``; ``--count-by`` keys keep
their names. node_exporter's drop-in
families (``node_*``) are Prometheus's, not written here.
"""

from __future__ import annotations

import json

from sockscope.render.prom import family_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from sockscope.render.prom import Sample

#: the media type of this format
CONTENT_TYPE = "application/json"
#: AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
CUMULATIVE = 2
#: ss state -> network.connection.state
CONNECTION_STATES = {
    "ESTAB": "established",
    "SYN-SENT": "syn_sent",
    "SYN-RECV": "syn_received",
    "FIN-WAIT-1": "fin_wait_1",
    "FIN-WAIT-2": "fin_wait_2",
    "TIME-WAIT": "time_wait",
    "UNCONN": "closed",
    "CLOSE-WAIT": "close_wait",
    "LAST-ACK": "last_ack",
    "LISTEN": "listen",
    "CLOSING": "closing",
}
#: ss netid -> network.transport (others are written as ss names them)
TRANSPORTS = {"tcp": "tcp", "udp": "udp", "u_str": "unix", "u_dgr": "unix", "u_seq": "unix"}
#: Prometheus label -> attribute key
_ATTRIBUTES = {
    "netns": "sockscope.netns",
    "netns_name": "sockscope.netns.name",
    "netid": "sockscope.netid",
    "state": "sockscope.state",
    "local_address": "network.local.address",
    "local_port": "network.local.port",
}
#: the units of sockscope's families (UCUM, as the conventions write them)
_UNITS = {
    "sockscope_tcp_rtt_seconds": "s",
    "sockscope_tcp_cwnd_segments": "{segment}",
    "sockscope_tcp_acked_bytes": "By",
    "sockscope_tcp_received_bytes": "By",
    "sockscope_tcp_retransmitted_segments": "{segment}",
}


def _attributes(labels: Mapping[str, str]) -> list[dict[str, object]]:
    return [
        {"key": _ATTRIBUTES.get(k, k), "value": {"stringValue": v}}
        for k, v in sorted(labels.items())
    ]


def _connection_attributes(labels: Mapping[str, str]) -> list[dict[str, object]]:
    netid, state = labels.get("netid", ""), labels.get("state", "")
    attrs: list[dict[str, object]] = [
        {"key": "network.transport", "value": {"stringValue": TRANSPORTS.get(netid, netid)}}
    ]
    if state in CONNECTION_STATES:
        attrs.append(
            {"key": "network.connection.state", "value": {"stringValue": CONNECTION_STATES[state]}}
        )
    rest = {"sockscope.netid": netid, "sockscope.state": state}
    rest.update(
        (_ATTRIBUTES.get(k, k), v) for k, v in labels.items() if k not in ("netid", "state")
    )
    attrs += [{"key": k, "value": {"stringValue": v}} for k, v in sorted(rest.items())]
    return attrs


def _number(value: float) -> dict[str, object]:
    if isinstance(value, int) or float(value).is_integer():
        return {"asInt": str(int(value))}
    return {"asDouble": value}


def document(
    samples: Iterable[Sample],
    time_unix_nano: int,
    resource: Mapping[str, str] | None = None,
    version: str = "",
) -> dict[str, object]:
    """The samples as an ``ExportMetricsServiceRequest`` (a JSON-ready dict).

    ``resource``: resource attributes (e.g. ``{"host.name": ...}``); ``version``: the
    instrumentation scope's version (the scope's name is ``sockscope``).
    """
    stamp = str(time_unix_nano)
    families: dict[str, tuple[str, str, list[tuple[str, Mapping[str, str], float]]]] = {}
    for name, labels, value, kind, help_text in samples:
        family, _place = family_of(name, kind)
        if family.startswith("node_"):
            continue
        families.setdefault(family, (kind, help_text, []))[2].append((name, labels, value))
    metrics: list[dict[str, object]] = []
    for family in sorted(families):
        kind, help_text, rows = families[family]
        if family == "sockscope_sockets":
            points = [
                {"attributes": _connection_attributes(labels), "timeUnixNano": stamp, **_number(v)}
                for _n, labels, v in rows
            ]
            metrics.append(
                {
                    "name": "system.network.connection.count",
                    "description": "The number of connections, by transport and state.",
                    "unit": "{connection}",
                    "sum": {
                        "dataPoints": points,
                        "aggregationTemporality": CUMULATIVE,
                        "isMonotonic": False,
                    },
                }
            )
            continue
        name = "sockscope." + family.removeprefix("sockscope_")
        metric: dict[str, object] = {
            "name": name,
            "description": help_text,
            "unit": _UNITS.get(family, "1" if family != "sockscope_series_folded" else "{series}"),
        }
        if kind == "histogram":
            metric["histogram"] = {
                "dataPoints": _histogram_points(family, rows, stamp),
                "aggregationTemporality": CUMULATIVE,
            }
        else:
            metric["gauge"] = {
                "dataPoints": [
                    {"attributes": _attributes(labels), "timeUnixNano": stamp, **_number(v)}
                    for _n, labels, v in sorted(rows, key=lambda r: sorted(r[1].items()))
                ]
            }
        metrics.append(metric)
    res_attrs = [
        {"key": k, "value": {"stringValue": v}} for k, v in sorted((resource or {}).items())
    ]
    scope: dict[str, object] = {"name": "sockscope"}
    if version:
        scope["version"] = version
    return {
        "resourceMetrics": [
            {
                "resource": {"attributes": res_attrs},
                "scopeMetrics": [{"scope": scope, "metrics": metrics}],
            }
        ]
    }


def _histogram_points(
    family: str, rows: list[tuple[str, Mapping[str, str], float]], stamp: str
) -> list[dict[str, object]]:
    """Prometheus's cumulative ``_bucket`` series back to OTLP's per-bucket counts."""
    by_labels: dict[tuple[tuple[str, str], ...], dict[str, object]] = {}
    buckets: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
    for name, labels, value in rows:
        plain = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        point = by_labels.setdefault(
            plain, {"attributes": _attributes(dict(plain)), "timeUnixNano": stamp}
        )
        if name == family + "_bucket":
            buckets.setdefault(plain, []).append((float(labels["le"]), value))
        elif name == family + "_sum":
            point["sum"] = float(value)
        elif name == family + "_count":
            point["count"] = str(int(value))
    out = []
    for plain, point in sorted(by_labels.items()):
        ordered = sorted(buckets.get(plain, []))
        counts: list[str] = []
        previous = 0
        for _le, cumulative in ordered:
            counts.append(str(int(cumulative) - previous))
            previous = int(cumulative)
        point["bucketCounts"] = counts
        point["explicitBounds"] = [le for le, _c in ordered if le != float("inf")]
        out.append(point)
    return out


def dumps(doc: Mapping[str, object]) -> str:
    """The document as compact JSON text, one line, with a newline."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n"
