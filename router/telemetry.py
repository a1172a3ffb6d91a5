"""The service's Prometheus metrics (prometheus_client) and its GET /metrics page.

Every part of one service registers its metrics in that service's own
`CollectorRegistry`, which the composition root makes and hands to the parts, never in
prometheus_client's process-wide default registry: tests start several services in one
process, and each must count only its own. Every name starts with ``blockroute_``.

- `FigureCollector`: figures that a part keeps itself and hands over as a mapping
  {name: value} (the MQTT bus's, the WebSocket hub's, the served models'; a desk's
  ``metrics()`` where the API has a registry of its own), read afresh at every scrape.
  A name ending in ``_total`` is a counter, any other a gauge; names are reduced to the
  characters Prometheus allows, so a figure with an odd name cannot break the page.
- `HttpMetrics`: the HTTP API's requests by method, route template and status, and
  their durations.
- `FixMetrics`: FIX messages in and out by MsgType, the clients logged on, and the
  latency from a NewOrderSingle to its first ExecutionReport.
- The desk's own series (orders, fills, the journal's health, the decision latency):
  router/desk/metrics.py, `DeskMetrics`.
- `exposition(registry)`: the page, in the text format 0.0.4. Two families of the same
  name keep the first one registered.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

#: What `exposition` writes: the text format generate_latest produces for legacy names.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
PREFIX: Final = "blockroute_"
_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_:]")

#: Seconds: from a loopback round trip (well under a millisecond) to a desk that waits
#: for its journal.
FIX_ACK_BUCKETS: Final = (
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
    5.0,
)
#: NewOrderSingles waiting for their first report that are kept for the latency: an
#: order never answered (its client gone) must not grow the table without end.
_MAX_AWAITING = 10_000

Figures = Callable[[], Mapping[str, float]]


def metric_name(name: str) -> str:
    """`blockroute_` + `name` with every character Prometheus forbids replaced by '_'."""
    clean = _BAD_CHARS.sub("_", name.strip())
    if clean.startswith(PREFIX):
        clean = clean[len(PREFIX) :]
    return PREFIX + (clean or "unnamed")


class FigureCollector(Collector):
    """The figures `source` returns, as counters and gauges, read at each scrape.

    `help_text(raw_name)` gives each family its HELP line. Values that are not numbers
    (or are bools) are left out; two raw names that clean to the same name keep the
    first in sorted order.
    """

    def __init__(self, source: Figures, help_text: Callable[[str], str]) -> None:
        self._source = source
        self._help_text = help_text

    def collect(self) -> Iterator[Metric]:
        figures = self._source()
        seen: set[str] = set()
        for raw in sorted(figures):
            value = figures[raw]
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            name = metric_name(raw)
            if name in seen:
                continue
            seen.add(name)
            if name.endswith("_total"):
                yield CounterMetricFamily(name, self._help_text(raw), value=value)
            else:
                yield GaugeMetricFamily(name, self._help_text(raw), value=value)


class HttpMetrics:
    """The HTTP API's requests, by method, route template (not the raw path, so that
    order ids do not explode the series) and status, and their durations."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = Counter(
            "blockroute_http_requests_total",
            "HTTP requests served by the API, by method, route and status",
            ("method", "route", "status"),
            registry=registry,
        )
        self._duration = Histogram(
            "blockroute_http_request_duration_seconds",
            "Time to answer an HTTP request (a WebSocket: its whole connection), by method "
            "and route",
            ("method", "route"),
            registry=registry,
        )

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        self._requests.labels(method, route, str(status)).inc()
        self._duration.labels(method, route).observe(seconds)


class FixMetrics:
    """The FIX gateway's messages, sessions and acknowledgement latency.

    The latency runs from the moment quickfix hands a NewOrderSingle over to the moment
    the gateway hands quickfix the first ExecutionReport with its ClOrdID (New,
    Rejected, or the status of a known order's resend): the desk's admission and journal
    commit included. Times are `time.perf_counter()` seconds.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._received = Counter(
            "blockroute_fix_messages_received_total",
            "FIX application messages received, by MsgType",
            ("msg_type",),
            registry=registry,
        )
        self._sent = Counter(
            "blockroute_fix_messages_sent_total",
            "FIX application messages sent by the gateway, by MsgType",
            ("msg_type",),
            registry=registry,
        )
        self._logged_on = Gauge(
            "blockroute_fix_sessions_logged_on", "FIX clients logged on", registry=registry
        )
        self._ack_latency = Histogram(
            "blockroute_fix_ack_latency_seconds",
            "From a NewOrderSingle received to its first ExecutionReport sent",
            buckets=FIX_ACK_BUCKETS,
            registry=registry,
        )
        self._awaiting: dict[Hashable, float] = {}  # order key -> when it came in

    def received(self, msg_type: str) -> None:
        self._received.labels(msg_type).inc()

    def sent(self, msg_type: str) -> None:
        self._sent.labels(msg_type).inc()

    def clients_logged_on(self, clients: int) -> None:
        self._logged_on.set(clients)

    def order_received(self, order: Hashable, at: float) -> None:
        """A NewOrderSingle (`order`: its key, e.g. (CompID, ClOrdID)) came in at `at`;
        a resent ClOrdID counts from its last arrival."""
        self._awaiting.pop(order, None)
        self._awaiting[order] = at
        if len(self._awaiting) > _MAX_AWAITING:
            del self._awaiting[next(iter(self._awaiting))]

    def report_sent(self, order: Hashable, at: float) -> None:
        """An ExecutionReport of `order` went out at `at`: the first one after the
        order came in ends its latency, later ones change nothing."""
        start = self._awaiting.pop(order, None)
        if start is not None:
            self._ack_latency.observe(max(0.0, at - start))


class _FirstOfEachName(Collector):
    """`registry` with every family whose exposed name was already written left out:
    the page would otherwise say TYPE twice, and a scraper drops such a page whole."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        seen: set[str] = set()
        for metric in self._registry.collect():
            name = metric.name + ("_total" if metric.type == "counter" else "")
            if name not in seen:
                seen.add(name)
                yield metric


def exposition(registry: CollectorRegistry) -> bytes:
    """The /metrics page of `registry` (served as `CONTENT_TYPE`)."""
    return generate_latest(_FirstOfEachName(registry))
