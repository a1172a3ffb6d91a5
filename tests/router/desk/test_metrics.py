"""The desk's Prometheus metrics: the names and types the /metrics page always had, in
the registry they are given; gauges read at each scrape; the decision latency of a
parent's steps; and on a desk that traded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from router.desk.metrics import DECISION_BUCKETS, DeskMetrics
from router.desk_api import OrderStatus
from router.service import simulated_desk
from router.telemetry import exposition
from tests.router.desk.support import SPEED, order, until

# what the page showed before the desk's metrics were prometheus_client objects
OLD_COUNTERS = (
    "orders_accepted",
    "orders_rejected",
    "orders_canceled",
    "orders_replaced",
    "orders_filled",
    "orders_expired",
    "fills",
    "child_orders",
    "rfqs",
    "decisions",
    "steps",
    "listener_errors",
    "pump_errors",
    "journal_errors",
    "journal_retries",
    "steps_sliced",
)
OLD_GAUGES = (
    "kill_switch_engaged",
    "journal_commits",
    "journal_rows",
    "journal_ok",
    "journal_pending",
    "parents_quarantined",
    "ready",
    "models_fallback",
    *(f"parents_{s.value}" for s in OrderStatus),
)
LATENCY = "blockroute_decision_latency_seconds"


def _types(registry: CollectorRegistry) -> dict[str, str]:
    """Sample name -> its family's type, from the page itself."""
    page = exposition(registry).decode()
    return {
        s.name: family.type
        for family in text_string_to_metric_families(page)
        for s in family.samples
    }


def test_the_page_keeps_the_names_and_types_it_had() -> None:
    registry = CollectorRegistry()
    metrics = DeskMetrics(registry)
    metrics.watch_parents(dict)
    types = _types(registry)
    for name in OLD_COUNTERS:
        assert types[f"blockroute_{name}_total"] == "counter"
    for name in OLD_GAUGES:
        assert types[f"blockroute_{name}"] == "gauge"
    figures = metrics.figures()
    assert set(figures) == {f"{n}_total" for n in OLD_COUNTERS} | set(OLD_GAUGES)
    assert set(figures.values()) == {0.0}


def test_counters_count_in_their_own_registry_only() -> None:
    a, b = CollectorRegistry(), CollectorRegistry()
    first, second = DeskMetrics(a), DeskMetrics(b)  # two services in one process
    first.fills.inc()
    first.fills.inc()
    first.orders_rejected.inc()
    second.fills.inc()
    assert a.get_sample_value("blockroute_fills_total") == 2
    assert b.get_sample_value("blockroute_fills_total") == 1
    assert first.figures()["fills_total"] == 2
    assert first.figures()["orders_rejected_total"] == 1
    assert second.figures()["orders_rejected_total"] == 0


def test_gauges_read_what_they_are_bound_to_at_every_scrape() -> None:
    registry = CollectorRegistry()
    metrics = DeskMetrics(registry)
    pending = [3.0]
    metrics.bind("journal_pending", lambda: pending[0])
    counts = {OrderStatus.WORKING: 2, OrderStatus.FILLED: 5}
    metrics.watch_parents(lambda: counts)
    assert registry.get_sample_value("blockroute_journal_pending") == 3
    assert registry.get_sample_value("blockroute_parents_working") == 2
    assert registry.get_sample_value("blockroute_parents_paused") == 0
    pending[0] = 1.0
    counts[OrderStatus.WORKING] = 1
    assert metrics.figures()["journal_pending"] == 1
    assert metrics.figures()["parents_working"] == 1
    with pytest.raises(KeyError):
        metrics.bind("no_such_gauge", lambda: 0.0)


def test_the_served_models_figures_are_counters_read_at_each_scrape() -> None:
    registry = CollectorRegistry()
    metrics = DeskMetrics(registry)
    figures = {"model_fill_rows_total": 10.0, "model_fill_clipped_total": 2.0}
    metrics.watch_models(lambda: figures)
    figures["model_fill_rows_total"] = 12.0
    assert registry.get_sample_value("blockroute_model_fill_rows_total") == 12
    assert _types(registry)["blockroute_model_fill_clipped_total"] == "counter"
    assert "# HELP blockroute_model_fill_rows_total Rows the served model fill scored" in (
        exposition(registry).decode()
    )
    assert metrics.figures()["model_fill_clipped_total"] == 2


class _Kernel:
    """A scheduler that keeps what it is given, to run it when told."""

    def __init__(self) -> None:
        self.due: list[tuple[int, Callable[[], None]]] = []

    def schedule(self, at_ns: int, action: Callable[[], None]) -> None:
        self.due.append((at_ns, action))

    def run(self) -> None:
        due, self.due = self.due, []
        for _, action in due:
            action()


def test_each_step_of_a_working_parent_is_timed_by_strategy() -> None:
    registry = CollectorRegistry()
    metrics = DeskMetrics(registry)
    kernel, ran, working = _Kernel(), [], [True]
    schedule = metrics.timed(kernel.schedule, "twap", lambda: working[0])
    schedule(5, lambda: ran.append("decide"))
    schedule(9, lambda: ran.append("sweep"))
    assert [at for at, _ in kernel.due] == [5, 9]  # when the scheduler was asked
    kernel.run()
    assert ran == ["decide", "sweep"]
    count = f"{LATENCY}_count"
    assert registry.get_sample_value(count, {"strategy": "twap"}) == 2
    total = registry.get_sample_value(f"{LATENCY}_sum", {"strategy": "twap"})
    assert total is not None and 0 < total < 1
    working[0] = False  # paused: its steps run and do nothing, and are not timed
    schedule(12, lambda: ran.append("paused"))
    kernel.run()
    assert ran[-1] == "paused"
    assert registry.get_sample_value(count, {"strategy": "twap"}) == 2
    assert registry.get_sample_value(count, {"strategy": "sor"}) is None
    assert "decision_latency_seconds_count" not in metrics.figures()  # by strategy only


def test_a_step_that_raises_raises_as_before_and_is_timed() -> None:
    registry = CollectorRegistry()
    metrics = DeskMetrics(registry)
    kernel = _Kernel()

    def broken() -> None:
        raise RuntimeError("boom")

    metrics.timed(kernel.schedule, "sor", lambda: True)(1, broken)
    with pytest.raises(RuntimeError, match="boom"):
        kernel.run()
    assert registry.get_sample_value(f"{LATENCY}_count", {"strategy": "sor"}) == 1


def test_the_latency_buckets_span_10_us_to_100_ms() -> None:
    registry = CollectorRegistry()
    DeskMetrics(registry).decision_latency.labels("twap").observe(0.00002)
    bounds = [
        float(s.labels["le"])
        for family in text_string_to_metric_families(exposition(registry).decode())
        for s in family.samples
        if s.name == f"{LATENCY}_bucket"
    ]
    assert bounds[0] == 1e-5 and bounds[-2] == 0.1 and bounds[-1] == float("inf")
    assert bounds[:-1] == list(DECISION_BUCKETS) == sorted(DECISION_BUCKETS)


async def test_a_desk_that_traded_shows_it_in_its_registry(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    async with simulated_desk(tmp_path, SPEED, registry=registry) as desk:
        assert desk.registry is registry
        view = desk.submit(order(desk, "M1", qty=5_000, strategy="twap", horizon_s=120))
        await until(lambda: desk.parent(view.parent_id).status.terminal, 30)
        figures = desk.metrics()
        assert figures["orders_accepted_total"] == 1
        assert figures["fills_total"] >= 1 and figures["orders_filled_total"] == 1
        assert figures["parents_filled"] == 1 and figures["parents_working"] == 0
        assert figures["ready"] == 1 and figures["journal_ok"] == 1
        assert figures["model_fill_rows_total"] >= 0  # the models' figures, once started
        count = registry.get_sample_value(f"{LATENCY}_count", {"strategy": "twap"})
        assert count is not None and count >= 1
        assert registry.get_sample_value("blockroute_fills_total") == figures["fills_total"]
