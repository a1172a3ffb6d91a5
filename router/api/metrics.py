"""Prometheus text exposition (format 0.0.4) for GET /metrics.

Two sources: the desk's own counters and gauges (`DeskPort.metrics()`, names without
the prefix; a name ending in `_total` is a counter, anything else a gauge) and the API's
request counters, kept here by method, route template and status. Every name is
prefixed `blockroute_` and reduced to the characters Prometheus allows, so a desk
metric with an odd name cannot break the page.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "blockroute_"
_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_:]")


def metric_name(name: str) -> str:
    """`blockroute_` + `name` with every character Prometheus forbids replaced by '_'."""
    clean = _BAD_CHARS.sub("_", name.strip())
    if clean.startswith(PREFIX):
        clean = clean[len(PREFIX) :]
    return PREFIX + (clean or "unnamed")


def format_value(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:  # counts kept as floats read as counts
        return str(int(value))
    return repr(float(value))


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_label_value(v)}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


@dataclass(slots=True)
class RequestCounters:
    """HTTP requests served, by method, route template (not the raw path, so order ids
    do not explode the series) and status."""

    counts: Counter[tuple[str, str, int]] = field(default_factory=Counter)

    def record(self, method: str, route: str, status: int) -> None:
        self.counts[(method, route, status)] += 1


def exposition(
    desk_metrics: Mapping[str, float],
    requests: RequestCounters,
    api_gauges: Mapping[str, float] | None = None,
) -> str:
    """The whole /metrics page. Duplicate names after cleaning keep their first value."""
    lines: list[str] = []
    seen: set[str] = set()

    def family(name: str, kind: str, help_text: str) -> bool:
        if name in seen:
            return False
        seen.add(name)
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        return True

    for raw in sorted(desk_metrics):
        value = desk_metrics[raw]
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        name = metric_name(raw)
        kind = "counter" if name.endswith("_total") else "gauge"
        if family(name, kind, f"desk metric {raw}"):
            lines.append(f"{name} {format_value(value)}")

    for raw, value in sorted((api_gauges or {}).items()):
        name = metric_name(raw)
        kind = "counter" if name.endswith("_total") else "gauge"
        if family(name, kind, f"API {raw.replace('_', ' ')}"):
            lines.append(f"{name} {format_value(value)}")

    name = metric_name("http_requests_total")
    if family(name, "counter", "HTTP requests served by the API, by method, route and status"):
        for (method, route, status), n in sorted(requests.counts.items()):
            labels = _labels((("method", method), ("route", route), ("status", str(status))))
            lines.append(f"{name}{labels} {n}")
    return "\n".join(lines) + "\n"
