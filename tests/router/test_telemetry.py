"""The metrics page: legal names, counters and gauges from figures read at each scrape,
one registry per service, the first family of a name kept, the FIX latency's rules."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from router.telemetry import FigureCollector, FixMetrics, HttpMetrics, exposition, metric_name


def _families(registry: CollectorRegistry) -> dict[str, tuple[str, float | None]]:
    """name -> (type, value of its unlabelled sample) from the page itself."""
    out = {}
    for family in text_string_to_metric_families(exposition(registry).decode()):
        value = next((s.value for s in family.samples if not s.labels), None)
        out[family.name] = (family.type, value)
    return out


def test_metric_names_are_prefixed_once_and_legal():
    assert metric_name("odd name-x") == "blockroute_odd_name_x"
    assert metric_name("blockroute_fills_total") == "blockroute_fills_total"
    assert metric_name(" ") == "blockroute_unnamed"
    assert metric_name("a.b/c:d") == "blockroute_a_b_c:d"


def test_figures_are_counters_or_gauges_read_at_every_scrape():
    figures: dict[str, object] = {
        "fills_total": 3,
        "parents_working": 2.0,
        "ready": True,  # a bool is not a number here
        "label": "x",
        "odd name-x": 1.5,
    }
    registry = CollectorRegistry()
    registry.register(FigureCollector(lambda: figures, lambda raw: f"desk metric {raw}"))
    assert _families(registry) == {
        "blockroute_fills": ("counter", 3.0),
        "blockroute_parents_working": ("gauge", 2.0),
        "blockroute_odd_name_x": ("gauge", 1.5),
    }
    figures["fills_total"] = 5
    assert _families(registry)["blockroute_fills"] == ("counter", 5.0)
    assert "# HELP blockroute_odd_name_x desk metric odd name-x" in exposition(registry).decode()


def test_a_name_on_the_page_twice_keeps_its_first_family():
    registry = CollectorRegistry()
    # "a-b" and "a_b" clean to one name: the first in sorted order wins
    desk = {"a-b": 1.0, "a_b": 2.0, "http_requests_total": 7.0}
    registry.register(FigureCollector(lambda: desk, str))
    HttpMetrics(registry).record("GET", "/health", 200, 0.01)
    page = exposition(registry).decode()
    assert page.count("# TYPE blockroute_a_b gauge") == 1
    assert page.count("# TYPE blockroute_http_requests_total counter") == 1
    assert _families(registry)["blockroute_a_b"] == ("gauge", 1.0)
    assert _families(registry)["blockroute_http_requests"] == ("counter", 7.0)


def test_registries_do_not_share_metrics():
    one, two = CollectorRegistry(), CollectorRegistry()
    HttpMetrics(one).record("GET", "/health", 200, 0.01)
    HttpMetrics(two)  # the same names again: no clash, nothing counted
    labels = {"method": "GET", "route": "/health", "status": "200"}
    assert one.get_sample_value("blockroute_http_requests_total", labels) == 1
    assert two.get_sample_value("blockroute_http_requests_total", labels) is None


def test_fix_ack_latency_runs_to_the_first_report_of_the_order():
    registry = CollectorRegistry()
    fix = FixMetrics(registry)
    count = "blockroute_fix_ack_latency_seconds_count"
    total = "blockroute_fix_ack_latency_seconds_sum"
    fix.received("D")
    fix.order_received(("OMS", "A1"), 10.0)
    fix.report_sent(("OMS", "OTHER"), 10.5)  # another order's report: not this one's ack
    fix.report_sent(("OMS", "A1"), 10.002)
    fix.report_sent(("OMS", "A1"), 11.0)  # a fill later: not an ack
    fix.sent("8")
    assert registry.get_sample_value(count) == 1
    assert registry.get_sample_value(total) == pytest.approx(0.002)
    assert (
        registry.get_sample_value("blockroute_fix_ack_latency_seconds_bucket", {"le": "0.0025"})
        == 1
    )
    fix.order_received(("OMS", "A2"), 20.0)
    fix.order_received(("OMS", "A2"), 21.0)  # resent: counts from its last arrival
    fix.report_sent(("OMS", "A2"), 21.5)
    assert registry.get_sample_value(total) == pytest.approx(0.502)
    assert (
        registry.get_sample_value("blockroute_fix_messages_received_total", {"msg_type": "D"}) == 1
    )
    assert registry.get_sample_value("blockroute_fix_messages_sent_total", {"msg_type": "8"}) == 1
    fix.clients_logged_on(2)
    assert registry.get_sample_value("blockroute_fix_sessions_logged_on") == 2


def test_orders_never_answered_do_not_pile_up(monkeypatch):
    monkeypatch.setattr("router.telemetry._MAX_AWAITING", 3)
    registry = CollectorRegistry()
    fix = FixMetrics(registry)
    for i in range(5):
        fix.order_received(i, float(i))
    for i in range(5):
        fix.report_sent(i, 10.0)
    # the two oldest were let go; the three kept are measured
    assert registry.get_sample_value("blockroute_fix_ack_latency_seconds_count") == 3
