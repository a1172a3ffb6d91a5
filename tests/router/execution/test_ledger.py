"""The child-order ledger on recording venues: ids, the risk-gated send, the fill
accounting, and what it tells the tactics."""

from __future__ import annotations

import pytest

from router.domain import (
    ChildOrderCanceled,
    ChildOrderExpired,
    ChildOrderFilled,
    ChildOrderSent,
    DecisionRecorded,
    OrdType,
    Side,
    TimeInForce,
    VenueId,
    VenueKind,
)
from router.execution.ledger import ChildOrderLedger
from router.execution.signals import MarketSignals
from router.risk import KillSwitch, RiskGate, RiskLimits

from .fakes import NS, FakeClock, FakeMarket, RecordingVenue, parent, quote, snapshot

LIT, DARK = VenueId("A"), VenueId("DARK1")
SNAP = snapshot(quote("A", 99, 101))


class Owner:
    def __init__(self) -> None:
        self.closed: list = []

    def on_child_closed(self, child, ts_ns) -> None:
        self.closed.append((child.order.child_id, child.filled, ts_ns))


def _ledger(qty=10_000, side=Side.BUY, limits=None, kill=None, limit_ticks=None):
    venues = {LIT: RecordingVenue(LIT, VenueKind.LIT), DARK: RecordingVenue(DARK, VenueKind.DARK)}
    events: list = []
    risk = RiskGate(limits or RiskLimits(max_participation=1.0), kill)
    ledger = ChildOrderLedger(
        parent(qty, side, limit_ticks=limit_ticks),
        venues,
        FakeClock(5 * NS),
        risk,
        MarketSignals(FakeMarket(SNAP)),
        lot_size=100,
        warmup_s=60.0,
        on_event=events.append,
    )
    return ledger, venues, events


def _send(ledger, venue=LIT, qty=1_000, **kw):
    return ledger.send(
        venue,
        qty,
        OrdType.LIMIT,
        TimeInForce.DAY if kw.get("passive") else TimeInForce.IOC,
        101,
        SNAP,
        chosen="why",
        inputs={"qty": float(qty)},
        alternatives={"other": 1.0},
        **kw,
    )


def test_a_send_mints_an_id_records_why_and_reaches_the_venue():
    ledger, venues, events = _ledger()
    child = _send(ledger, aggressive=True)
    assert child is not None and child.child_id == "P-1" and child.qty == 1_000
    decision, sent = events
    assert isinstance(decision, DecisionRecorded) and decision.decision_id == "P-1-d"
    assert (decision.chosen, decision.inputs, decision.alternatives) == (
        "why",
        {"qty": 1_000.0},
        {"other": 1.0},
    )
    assert isinstance(sent, ChildOrderSent) and sent.child == child
    assert venues[LIT].submitted == [child]
    assert ledger.in_flight == 1_000 and ledger.uncommitted == 9_000
    assert ledger.result.children == [child] and ledger.result.sent_ns == {"P-1": 5 * NS}


def test_passive_orders_are_post_only_on_the_lit_venues_only():
    ledger, _, _ = _ledger()
    assert _send(ledger, passive=True).post_only
    assert not _send(ledger, DARK, passive=True).post_only
    assert not _send(ledger).post_only


def test_never_more_than_the_parent_has_uncommitted():
    ledger, _, events = _ledger()
    assert _send(ledger, qty=25_000).qty == 10_000
    assert _send(ledger) is None and len(events) == 2  # nothing recorded either


def test_the_risk_gate_shrinks_or_blocks_and_the_record_says_why():
    kill = KillSwitch()
    ledger, venues, events = _ledger(limits=RiskLimits(max_child_qty=500), kill=kill)
    assert _send(ledger).qty == 500
    assert events[0].chosen == "why; cut to the max child size 500"
    kill.engage("test")
    assert _send(ledger) is None
    assert events[-1].chosen == "blocked: kill switch engaged: test"
    assert len(venues[LIT].submitted) == 1


def test_fills_are_accounted_and_a_filled_child_tells_its_owner():
    ledger, _, _ = _ledger()
    owner = Owner()
    child = _send(ledger, passive=True, owner=owner)

    def fill(qty, ts):
        return ChildOrderFilled(ts, child.child_id, LIT, Side.BUY, qty, 1.0, 0.01, "maker", 0)

    ledger.on_event(fill(400, 10 * NS))
    assert owner.closed == [] and ledger.in_flight == 600
    ledger.on_event(fill(600, 12 * NS))
    assert owner.closed == [("P-1", 1_000, 12 * NS)] and ledger.in_flight == 0
    assert (ledger.filled, ledger.result.notional, ledger.result.fees) == (1_000, 1_000.0, 0.02)
    # a fill reported after its order's end still counts; another parent's does not
    ledger.on_event(ChildOrderCanceled(13 * NS, child.child_id, LIT, 0))
    ledger.on_event(fill(100, 14 * NS))
    assert ledger.filled == 1_100 and len(owner.closed) == 1
    stray = ChildOrderFilled(15 * NS, "Q-1", LIT, Side.BUY, 100, 1.0, 0.0, "taker", 0)
    ledger.on_event(stray)
    assert ledger.filled == 1_100 and len(ledger.result.fills) == 3


def test_an_aggressive_child_ending_unfilled_gives_its_participation_back():
    ledger, _, _ = _ledger()
    child = _send(ledger, aggressive=True)
    assert ledger.risk.own_volume(5 * NS) == 1_000  # reserved when it passed the gate
    ledger.on_event(ChildOrderExpired(6 * NS, child.child_id, LIT, 1_000))
    assert ledger.risk.own_volume(6 * NS) == 0 and ledger.in_flight == 0


def test_cancel_resting_pulls_the_passive_orders_once_in_the_order_sent():
    ledger, venues, _ = _ledger()
    dark = _send(ledger, DARK, passive=True)
    _send(ledger, aggressive=True)
    lit = _send(ledger, passive=True)
    ledger.cancel_resting()
    ledger.cancel_resting()
    assert venues[DARK].canceled == [dark.child_id] and venues[LIT].canceled == [lit.child_id]
    ledger.cancel_all()
    assert venues[LIT].canceled == [lit.child_id, "P-2"]


def test_lots_round_down_except_for_the_parents_final_odd_lot():
    ledger, _, _ = _ledger(qty=10_050)
    assert ledger.round_lot(150) == 100 and ledger.round_lot(50) == 0
    ledger.restore(10_000, 0.0, 0.0, next_child=1, next_rfq=1)
    assert ledger.round_lot(50) == 50 and ledger.round_lot(80) == 50


def test_restore_continues_the_ids_and_the_accounting():
    ledger, _, _ = _ledger()
    assert (ledger.next_rfq_id(), ledger.rfqs_sent) == ("P-R1", 1)
    ledger.restore(2_000, 2_010.0, 1.5, next_child=7, next_rfq=3)
    assert (ledger.filled, ledger.result.notional, ledger.result.fees) == (2_000, 2_010.0, 1.5)
    assert _send(ledger).child_id == "P-7"
    assert (ledger.next_rfq_id(), ledger.rfqs_sent) == ("P-R3", 3)


@pytest.mark.parametrize(
    ("side", "price", "within", "ok"),
    [(Side.BUY, 101, 100, False), (Side.BUY, 99, 99, True), (Side.SELL, 99, 100, False)],
)
def test_prices_are_held_to_the_parent_limit(side, price, within, ok):
    ledger, _, _ = _ledger(side=side, limit_ticks=100)
    assert ledger.within_limit(price) == within and ledger.price_ok(price) is ok
