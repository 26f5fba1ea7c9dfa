"""The Prometheus text exposition format, version 0.0.4 (``--metrics``, ``--textfile``).

Samples are ``(name, labels, value, type, help)`` tuples (what
:func:`sockscope.metrics` returns). Each metric family gets one ``# HELP`` and one
``# TYPE`` line, then its samples; families are sorted by name and samples by their
label pairs, so the same sockets always give the same bytes. A histogram's samples
(type ``histogram``: ``NAME_bucket``, ``NAME_sum``, ``NAME_count``) form the family
``NAME``; per label set its buckets come in ``le`` order, then the sum and the count.
HELP text escapes backslash and newline; label values escape backslash, double quote and newline.
"""

from __future__ import annotations

import math

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    Sample = tuple[str, Mapping[str, str], float, str, str]

#: the media type of this format, for whoever serves it
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float) -> str:
    """Integers without a fraction; NaN and the infinities as Go's ParseFloat reads them."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    pairs = ",".join(f'{k}="{escape_label(v)}"' for k, v in sorted(labels.items()))
    return "{" + pairs + "}"


#: a histogram sample's suffix -> its place after the label set
_HISTOGRAM_PARTS = {"_bucket": 0, "_sum": 1, "_count": 2}


def family_of(name: str, kind: str) -> tuple[str, int]:
    """The family a sample belongs to and its place in a histogram's label set."""
    if kind == "histogram":
        for suffix, place in _HISTOGRAM_PARTS.items():
            if name.endswith(suffix):
                return name[: -len(suffix)], place
    return name, 0


def _le(labels: Mapping[str, str]) -> float:
    try:
        return float(labels.get("le", "0"))
    except ValueError:
        return math.inf


def exposition(samples: Iterable[Sample]) -> str:
    """The samples as exposition text (ends with a newline; empty for no samples)."""
    Order = tuple[list[tuple[str, str]], int, float]
    families: dict[str, tuple[str, str, list[tuple[Order, str]]]] = {}
    for name, labels, value, kind, help_text in samples:
        family, place = family_of(name, kind)
        rows = families.setdefault(family, (kind, help_text, []))[2]
        if kind == "histogram":
            plain = sorted((k, v) for k, v in labels.items() if k != "le")
            key = (plain, place, _le(labels))
        else:
            key = (sorted(labels.items()), 0, 0.0)
        rows.append((key, f"{name}{_labels(labels)} {format_value(value)}"))
    lines: list[str] = []
    for name in sorted(families):
        kind, help_text, rows = families[name]
        lines.append(f"# HELP {name} {escape_help(help_text)}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(line for _key, line in sorted(rows, key=lambda row: row[0]))
    return "".join(line + "\n" for line in lines)
