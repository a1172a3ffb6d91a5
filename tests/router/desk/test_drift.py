"""The desk's drift monitor (router/desk/drift.py): what it feeds router.drift with (the
labels of the models' training, from the desk's own events), and a running desk whose
alert withdraws the models: its working ml parents decide the heuristic way from then
on and say so, finish, and the models stay withdrawn across a restart until resumed."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, text

from models.serving.features import fill_row
from router import app
from router.desk.drift import DriftFeed
from router.desk_api import DriftAlertChanged, DriftFallbackChanged, OrderStatus
from router.domain import (
    NANOS_PER_SECOND,
    ChildId,
    ChildOrder,
    ChildOrderFilled,
    ChildOrderSent,
    DealerId,
    DecisionId,
    DecisionRecorded,
    OrdType,
    ParentId,
    Quote,
    QuoteReceived,
    QuoteRequest,
    RfqEnded,
    RfqId,
    RfqRequested,
    RfqTraded,
    Side,
    Symbol,
    TimeInForce,
    VenueId,
)
from router.drift import DriftConfig, FallbackChange
from router.journal import Batch
from router.registry import ModelRegistry
from router.service import simulated_desk
from tests.models.serving.test_predictors import _order
from tests.router.desk.support import order, record, until

S = NANOS_PER_SECOND


def _feed(config: DriftConfig | None = None) -> tuple[DriftFeed, SimpleNamespace]:
    app.MODELS.load()
    outbox = SimpleNamespace(batch=Batch(), events=[])
    feed = DriftFeed(
        config or DriftConfig(), app.MODELS, outbox, lambda: 10**18, CollectorRegistry()
    )
    feed.start(None)  # what the process's models scored before is not this feed's
    return feed, outbox


def _rec(strategy: str = "ml") -> Any:
    return SimpleNamespace(engine_strategy=strategy, row=SimpleNamespace(symbol="QDI"))


def _passive(n: int, venue: str = "LITA", post_only: bool = True) -> ChildOrder:
    return ChildOrder(
        ChildId(f"P1-{n}"),
        ParentId("P1"),
        VenueId(venue),
        Side.BUY,
        1_000,
        OrdType.LIMIT,
        TimeInForce.DAY,
        10_000,
        post_only=post_only,
    )


def _send(feed: DriftFeed, rec: Any, child: ChildOrder, ts: int) -> None:
    ctx = _order(100.0)
    # as the tactics record it (router/execution/lit.py, dark.py)
    inputs = {
        **ctx.as_inputs(),
        "spread_ticks": ctx.spread_ticks,
        "volume_rate": ctx.volume_rate,
        "qty": ctx.qty,
    }
    decision = DecisionRecorded(
        ts, DecisionId(f"{child.child_id}-d"), ParentId("P1"), "post", inputs, {}
    )
    feed.on_event(rec, decision, ts)
    feed.on_event(rec, ChildOrderSent(ts, child), ts)


def _fill(child: ChildOrder) -> ChildOrderFilled:
    return ChildOrderFilled(0, child.child_id, child.venue, Side.BUY, 100, 100.0, 0.0, "maker", 0)


def test_passive_children_are_labelled_as_the_fill_model_was_trained() -> None:
    feed, _ = _feed()
    rec = _rec()
    a, b, c, d = (_passive(n) for n in (1, 2, 3, 4))
    _send(feed, rec, a, 0)
    _send(feed, rec, b, 1 * S)
    _send(feed, rec, c, 2 * S)
    # an aggressive child says nothing of the fill model; nor does a twap parent's
    _send(feed, rec, _passive(5, post_only=False), 2 * S)
    _send(feed, _rec("twap"), _passive(6), 2 * S)
    p = app.MODELS.fill_model().model.score(np.array([fill_row(_order(100.0))]))[0]
    feed.on_event(rec, _fill(a), 10 * S)  # within 30 s: filled
    feed.on_event(rec, _fill(b), 31 * S + S // 2)  # 30.5 s after it was sent: not
    cal = feed.monitor.report()["models"]["fill"]["calibration"]["passive"]
    assert cal["n"] == 2 and cal["rate"] == 0.5 and cal["mean_p"] == pytest.approx(p)
    # c: no fill, and the market's next fact comes 31 s after it was sent: a negative
    _send(feed, rec, d, 33 * S)
    cal = feed.monitor.report()["models"]["fill"]["calibration"]["passive"]
    assert cal["n"] == 3 and cal["rate"] == pytest.approx(1 / 3)
    feed.on_event(rec, _fill(c), 34 * S)  # too late: already counted as unfilled
    assert feed.monitor.report()["models"]["fill"]["calibration"]["passive"]["n"] == 3


def test_an_rfqs_answers_label_the_asked_dealers_as_training_does() -> None:
    feed, _ = _feed()
    rec = _rec("sor-ml")
    rfq = RfqId("P1-R1")
    scores = {
        "score_p_best_ALPHA": 0.9,  # a candidate's own panel: not the one held to account
        "score_p_respond_ALPHA": 0.8,
        "score_p_best_asked_ALPHA": 0.5,
        "score_p_respond_BRAVO": 0.6,
        "score_p_best_asked_BRAVO": 0.3,
        "score_p_respond_CHARLIE": 0.4,
        "score_p_best_asked_CHARLIE": 0.2,
    }
    feed.on_event(
        rec,
        DecisionRecorded(0, DecisionId(f"{rfq}-request-d"), ParentId("P1"), "rfq", {}, scores),
        0,
    )
    dealers = (DealerId("ALPHA"), DealerId("BRAVO"), DealerId("CHARLIE"))
    request = QuoteRequest(rfq, Symbol("QDI"), Side.SELL, 50_000, dealers, 10 * S, ParentId("P1"))
    feed.on_event(rec, RfqRequested(1, request), 1)

    def quote(dealer: str, bid: float, ts: int) -> QuoteReceived:
        q = Quote(f"q-{dealer}", rfq, DealerId(dealer), 50_000, bid, bid + 0.1, ts, ts + 5 * S)
        return QuoteReceived(ts, q)

    # ALPHA and BRAVO quote the same bid for the client's sell: the earlier one is best
    feed.on_event(rec, quote("BRAVO", 99.9, 2 * S), 2 * S)
    feed.on_event(rec, quote("ALPHA", 99.9, 3 * S), 3 * S)
    feed.on_event(
        rec,
        RfqTraded(4 * S, rfq, DealerId("BRAVO"), ChildId("P1-7"), Side.SELL, 50_000, 99.9),
        4 * S,
    )
    feed.on_event(rec, RfqEnded(5 * S, rfq, "traded", 50_000), 5 * S)
    cal = feed.monitor.report()["models"]["dealer"]["calibration"]
    assert cal["respond"]["n"] == 3 and cal["respond"]["rate"] == pytest.approx(2 / 3)
    assert cal["respond"]["mean_p"] == pytest.approx(0.6)
    assert cal["best"]["n"] == 3 and cal["best"]["rate"] == pytest.approx(1 / 3)
    assert cal["best"]["mean_p"] == pytest.approx((0.5 + 0.3 + 0.2) / 3)
    # winner BRAVO at P 0.3, losers at 0.5 and 0.2: bins 5, 3, 2 each |p - y|
    assert cal["best"]["ece"] == pytest.approx((0.5 + 0.7 + 0.2) / 3)
    # a two-sided request that traded nothing: who answered counts, the best is unknown
    rfq2 = RfqId("P1-R2")
    feed.on_event(
        rec,
        DecisionRecorded(6 * S, DecisionId(f"{rfq2}-request-d"), ParentId("P1"), "rfq", {}, scores),
        6 * S,
    )
    two = QuoteRequest(rfq2, Symbol("QDI"), None, 50_000, dealers, 10 * S, ParentId("P1"))
    feed.on_event(rec, RfqRequested(7 * S, two), 7 * S)
    feed.on_event(rec, RfqEnded(20 * S, rfq2, "expired", 0), 20 * S)
    cal = feed.monitor.report()["models"]["dealer"]["calibration"]
    assert cal["respond"]["n"] == 6 and cal["best"]["n"] == 3


def _rows(db: Path, query: str) -> list[Any]:
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(query))]
    finally:
        engine.dispose()


#: judged after 20 passive children; any ECE above 0.001 is an alert (every real one)
TOUCHY = DriftConfig(window=20, min_samples=20, range_window=1000, max_ece=0.001, fallback=True)
#: the same windows and fallback, thresholds nothing reaches
CALM = DriftConfig(
    window=20,
    min_samples=20,
    range_window=1000,
    max_ece=1.0,
    max_out_of_range=1.0,
    max_is_z=1e9,
    fallback=True,
)


async def test_an_alert_withdraws_the_models_working_parents_go_on_and_a_restart_keeps_it(
    tmp_path: Path,
) -> None:
    async with simulated_desk(tmp_path, 400.0, drift=TOUCHY) as desk:
        events = record(desk)
        # 45 minutes (7 s here): the alert comes within its first minutes even when the
        # machine is busy and the desk's steps fall behind its clock
        first = desk.submit(order(desk, "c1", 60_000, horizon_s=2700.0, strategy="ml"))
        twap = desk.submit(order(desk, "c2", 20_000, horizon_s=900.0, strategy="twap"))
        await until(lambda: desk.drift()["fallback"]["engaged"], 30, "no fallback")
        assert desk.parent(first.parent_id).status is OrderStatus.WORKING  # mid-way
        await desk.sync()  # published once journaled
        alerts = [e for e in events if isinstance(e, DriftAlertChanged)]
        engaged = [e for e in events if isinstance(e, DriftFallbackChanged)]
        assert alerts and alerts[0].raised and alerts[0].value > alerts[0].threshold
        assert len(engaged) == 1 and engaged[0].engaged and engaged[0].by == "drift"
        assert engaged[0].reason == "drift alert: " + alerts[0].message
        await until(
            lambda: all(desk.parent(p).status.terminal for p in (first.parent_id, twap.parent_id)),
            60,
            "a parent stalled",
        )
        await desk.sync()  # its last decisions journaled: the API reads them from there
        decisions = desk.decisions(first.parent_id, 1000)  # all of them (the most asked)
        assert len(decisions) < 1000
        fell_back = [d for d in decisions if "fallback" in d]
        assert fell_back and all(d["fallback"] == engaged[0].reason for d in fell_back)
        assert len(fell_back) < len(decisions)  # the first ones were the models'
        assert not any("fallback" in d for d in desk.decisions(twap.parent_id, 500))
        assert desk.parent(first.parent_id).filled_qty > 0
        figures = desk.metrics()
        assert "drift_fallback" not in figures  # labelled series: on the registry's page
    db = tmp_path / "blockroute.db"
    kinds = [k for (k,) in _rows(db, "SELECT kind FROM svc_drift_events ORDER BY ts_ns")]
    assert kinds[0] == "alert_raised" and "fallback_engaged" in kinds
    assert _rows(db, "SELECT count(*) FROM svc_decisions WHERE fallback IS NOT NULL")[0][0] == len(
        fell_back
    )

    # a restart: the figures start anew, the models stay withdrawn until resumed
    async with simulated_desk(tmp_path, 400.0, drift=CALM) as desk:
        doc = desk.drift()
        assert doc["fallback"]["engaged"] and doc["fallback"]["reason"] == engaged[0].reason
        assert doc["alerts"] == [] and doc["models"]["fill"]["calibration"]["passive"]["n"] == 0
        events = record(desk)
        after = desk.resume_models("ops", "checked the fill model")
        assert after["fallback"]["engaged"] is False
        await desk.sync()
        (back,) = [e for e in events if isinstance(e, DriftFallbackChanged)]
        assert not back.engaged and back.by == "ops"
        again = desk.submit(order(desk, "c3", 60_000, horizon_s=300.0, strategy="ml"))
        await until(lambda: desk.parent(again.parent_id).status.terminal, 60, "stalled")
        assert desk.decisions(again.parent_id, 500)
        assert not any("fallback" in d for d in desk.decisions(again.parent_id, 500))
        with pytest.raises(Exception, match="not withdrawn"):
            desk.resume_models("ops", "twice")
    last = _rows(db, "SELECT kind, by, message FROM svc_drift_events ORDER BY ts_ns DESC LIMIT 1")
    assert last == [("fallback_released", "ops", "checked the fill model")]


async def test_with_fallback_off_the_journals_old_fallback_is_not_kept(tmp_path: Path) -> None:
    async with simulated_desk(tmp_path, 400.0, drift=TOUCHY) as desk:
        desk.submit(order(desk, "c1", 60_000, horizon_s=600.0, strategy="ml"))
        await until(lambda: desk.drift()["fallback"]["engaged"], 30, "no fallback")
    off = DriftConfig(fallback=False)
    async with simulated_desk(tmp_path, 400.0, drift=off) as desk:
        assert desk.drift()["fallback"]["engaged"] is False
        assert app.MODELS.live().withdrawn == ""


def test_drift_events_in_the_journal_are_json_numbers() -> None:
    feed, outbox = _feed(DriftConfig(window=10, min_samples=10, range_window=100, fallback=True))
    rec = _rec()
    for n in range(12):
        _send(feed, rec, _passive(n), n * S)
    _send(feed, rec, _passive(99), 100 * S)  # labels the twelve: none filled
    feed.step()
    kinds = [row["kind"] for table, row in outbox.batch.inserts]
    assert kinds == ["alert_raised", "fallback_engaged"]
    assert [type(e) for e in outbox.events] == [DriftAlertChanged, DriftFallbackChanged]
    assert outbox.events[0].fallback is True  # the alert says the models are withdrawn now
    json.dumps([row for _, row in outbox.batch.inserts], allow_nan=False)
    assert app.MODELS.live().withdrawn.startswith("drift alert: fill: ECE")
    feed.stop()
    assert app.MODELS.live().withdrawn == ""


def test_a_fallback_withdraws_every_set_the_desk_trades_on() -> None:
    # the algo wheel's challenger's set (its own registry) follows the champion's
    app.MODELS.load()
    challenger = ModelRegistry()
    outbox = SimpleNamespace(batch=Batch(), events=[])
    feed = DriftFeed(
        DriftConfig(fallback=True),
        app.MODELS,
        outbox,
        lambda: 10**18,
        CollectorRegistry(),
        also=[challenger],
    )
    feed._fallback(FallbackChange(True, "drift alert: fill ECE", "drift"), 10**18)
    assert app.MODELS.live().withdrawn == challenger.live().withdrawn == "drift alert: fill ECE"
    feed.stop()
    assert app.MODELS.live().withdrawn == challenger.live().withdrawn == ""
