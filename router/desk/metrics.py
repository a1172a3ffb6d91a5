"""`DeskMetrics`: the desk's Prometheus metrics (prometheus_client), in the service's
registry.

The desk's parts count what they do on its counters; the gauges read the desk's state
when the page is scraped (the desk binds each to what it reads: `Desk._watch`); the
decision-latency histogram times every step of a parent's plan (`timed`). Every name
starts with ``blockroute_``, and the names and types are those the service's /metrics
page always had: outside checks read them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from router.desk_api import OrderStatus
from router.domain import Nanos
from router.execution import Scheduler
from router.telemetry import PREFIX, FigureCollector

#: Seconds: from a decision that sends nothing (tens of microseconds) to an ml decision
#: that scores every venue, with a margin for a loop that is busy elsewhere.
DECISION_BUCKETS: Final = (
    0.00001,
    0.000025,
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
)

_COUNTERS: Final = {
    "orders_accepted": "Parent orders accepted",
    "orders_rejected": "Parent orders refused",
    "orders_canceled": "Parent orders canceled (every child confirmed out)",
    "orders_replaced": "Parent orders replaced",
    "orders_filled": "Parent orders filled",
    "orders_expired": "Parent orders that reached their horizon with quantity left",
    "fills": "Fills of child orders",
    "child_orders": "Child orders sent to the venues",
    "rfqs": "Requests for quote sent to dealer panels",
    "decisions": "Routing decisions recorded",
    "steps": "Steps of a market to the service clock",
    "listener_errors": "Desk events that a listener failed to take",
    "pump_errors": "Steps of the markets (or starts of a parent) that failed",
    "journal_errors": "Journal writes that failed (each retry counts)",
    "journal_retries": "Journal writes retried",
    "steps_sliced": "Steps of the markets cut short to free the loop (more was due)",
}

_GAUGES: Final = {
    "kill_switch_engaged": "1 while the kill switch is engaged",
    "journal_commits": "Journal transactions committed by this process",
    "journal_rows": "Journal rows written by this process",
    "journal_ok": "1 while the journal takes writes",
    "journal_pending": "Units of facts waiting to be written to the journal",
    "parents_quarantined": "Parents that recovery refused to restore",
    "ready": "1 while the desk is started and its journal takes writes",
    "models_fallback": "1 while ml orders run on the heuristic router (models unusable)",
}


def _model_help(raw: str) -> str:
    """The HELP line of a served model's figure `raw` (model_<model>_<what>_total)."""
    model, _, what = raw.removeprefix("model_").removesuffix("_total").rpartition("_")
    if what == "rows":
        return f"Rows the served model {model} scored"
    if what == "clipped":
        return f"Feature values the served model {model} clipped to its training range"
    return f"Served model figure {raw}"


class ParentsByStatus(Collector):
    """One gauge per parent status (``blockroute_parents_working``...), all counted in
    one pass over the parents at each scrape."""

    def __init__(self, count: Callable[[], Mapping[OrderStatus, int]]) -> None:
        self._count = count

    def collect(self) -> Iterator[Metric]:
        counts = self._count()
        for status in OrderStatus:
            yield GaugeMetricFamily(
                f"{PREFIX}parents_{status.value}",
                f"Parent orders {status.value.replace('_', ' ')}",
                value=counts.get(status, 0),
            )


class DeskMetrics:
    """The desk's counters, gauges and decision latency, registered in `registry` (the
    service's own, never prometheus_client's process-wide one).

    The counters are attributes named as the series without prefix and suffix
    (``fills`` is ``blockroute_fills_total``); the gauges read nothing until the desk
    binds them (`bind`, `watch_parents`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._own: list[Collector] = []  # what `figures` reads, in registration order
        counter = self._counter
        self.orders_accepted = counter("orders_accepted")
        self.orders_rejected = counter("orders_rejected")
        self.orders_canceled = counter("orders_canceled")
        self.orders_replaced = counter("orders_replaced")
        self.orders_filled = counter("orders_filled")
        self.orders_expired = counter("orders_expired")
        self.fills = counter("fills")
        self.child_orders = counter("child_orders")
        self.rfqs = counter("rfqs")
        self.decisions = counter("decisions")
        self.steps = counter("steps")
        self.listener_errors = counter("listener_errors")
        self.pump_errors = counter("pump_errors")
        self.journal_errors = counter("journal_errors")
        self.journal_retries = counter("journal_retries")
        self.steps_sliced = counter("steps_sliced")
        self._gauges = {name: self._gauge(name) for name in _GAUGES}
        self.decision_latency = Histogram(
            f"{PREFIX}decision_latency_seconds",
            "Wall time of one step of a working parent's plan (a decision, the placing "
            "half of a re-placing one, a sweep, the finish), by strategy",
            ("strategy",),
            buckets=DECISION_BUCKETS,
            registry=registry,
        )
        # shadow mode (router.shadow): per model family, labelled (not desk figures)
        self.shadow_decisions = Counter(
            f"{PREFIX}shadow_decisions",
            "Decisions that asked a model family's challenger beside its champion",
            ("family",),
            registry=registry,
        )
        self.shadow_agreements = Counter(
            f"{PREFIX}shadow_agreements",
            "Shadowed decisions whose challenger would have acted as the champion did",
            ("family",),
            registry=registry,
        )
        self.shadow_latency = Histogram(
            f"{PREFIX}shadow_latency_seconds",
            "Wall time of the challenger's model calls in a shadowed decision",
            ("family",),
            buckets=DECISION_BUCKETS,
            registry=registry,
        )

    def _counter(self, name: str) -> Counter:
        made = Counter(PREFIX + name, _COUNTERS[name], registry=self.registry)
        self._own.append(made)
        return made

    def _gauge(self, name: str) -> Gauge:
        made = Gauge(PREFIX + name, _GAUGES[name], registry=self.registry)
        self._own.append(made)
        return made

    def bind(self, name: str, read: Callable[[], float]) -> None:
        """Gauge `name` (e.g. "journal_pending") reads `read()` at every scrape.
        Raises KeyError for a gauge the desk does not have."""
        self._gauges[name].set_function(read)

    def watch_parents(self, count: Callable[[], Mapping[OrderStatus, int]]) -> None:
        """The parents by status, as `count()` says at every scrape."""
        self._add(ParentsByStatus(count))

    def watch_models(self, figures: Callable[[], Mapping[str, float]]) -> None:
        """The served models' figures, e.g. {"model_fill_rows_total": rows scored}, as
        `figures()` says at every scrape: the models count them themselves (shared by
        every desk of the process), and which models there are is known only once
        they are loaded."""
        self._add(FigureCollector(figures, _model_help))

    def _add(self, collector: Collector) -> None:
        self.registry.register(collector)
        self._own.append(collector)

    def timed(self, schedule: Scheduler, strategy: str, working: Callable[[], bool]) -> Scheduler:
        """`schedule`, with the wall time of every action it runs while `working()`
        observed in the decision latency of `strategy` (a paused or stopped parent's
        steps do nothing: they would only crowd the lowest bucket). The actions run as
        they would unwrapped: same time, same order, same exceptions."""
        observe = self.decision_latency.labels(strategy).observe

        def timed_schedule(at_ns: Nanos, action: Callable[[], None]) -> None:
            def timed_action() -> None:
                if not working():
                    action()
                    return
                start = time.perf_counter()
                try:
                    action()
                finally:
                    observe(time.perf_counter() - start)

            schedule(at_ns, timed_action)

        return timed_schedule

    def figures(self) -> dict[str, float]:
        """Every unlabelled series of the desk's as {name without prefix: value}, as the
        page shows them now (counters with their ``_total``)."""
        out: dict[str, float] = {}
        for collector in self._own:
            for family in collector.collect():
                for sample in family.samples:
                    if sample.labels or sample.name.endswith("_created"):
                        continue  # the time a counter was made is no figure of the desk
                    out[sample.name.removeprefix(PREFIX)] = sample.value
        return out
