"""The Prometheus text exposition format, version 0.0.4 (``--metrics``, ``--textfile``).

Samples are ``(name, labels, value, type, help)`` tuples (what
:func:`sockscope.metrics` returns). Each metric family gets one ``# HELP`` and one
``# TYPE`` line, then its samples; families are sorted by name and samples by their
label pairs, so the same sockets always give the same bytes. HELP text escapes
backslash and newline; label values escape backslash, double quote and newline.
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


def exposition(samples: Iterable[Sample]) -> str:
    """The samples as exposition text (ends with a newline; empty for no samples)."""
    families: dict[str, tuple[str, str, list[tuple[list[tuple[str, str]], str]]]] = {}
    for name, labels, value, kind, help_text in samples:
        family = families.setdefault(name, (kind, help_text, []))
        family[2].append((sorted(labels.items()), f"{name}{_labels(labels)} {format_value(value)}"))
    lines: list[str] = []
    for name in sorted(families):
        kind, help_text, rows = families[name]
        lines.append(f"# HELP {name} {escape_help(help_text)}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(line for _key, line in sorted(rows))
    return "".join(line + "\n" for line in lines)
