"""The take tactic against a fake ledger: fee-ranked marketable limits split by depth."""

from __future__ import annotations

import pytest

from router.domain import OrdType, Side, TimeInForce, VenueId
from router.execution import LitFees, TakeConfig
from router.execution.take import TakeTactic

from .fakes import FakeLedger, FakeMarket, decision, parent, quote, snapshot

FEES = {VenueId("A"): LitFees(0.003, -0.002), VenueId("B"): LitFees(0.001, -0.001)}


def _taker(snap, ledger, config=None):
    return TakeTactic(config or TakeConfig(), ledger, FakeMarket(snap), FEES)


def test_the_cheapest_venue_after_fees_goes_first_and_gets_its_depth():
    # the same ask on both: B's lower taker fee makes it the cheaper one
    snap = snapshot(quote("A", 99, 100, depth=1_000), quote("B", 99, 100, depth=650))
    ledger = FakeLedger(parent())
    _taker(snap, ledger).take(1_000, 3, "slice")
    assert [(s.venue, s.qty) for s in ledger.sent] == [("B", 600), ("A", 400)]
    for s in ledger.sent:
        assert (s.ord_type, s.tif, s.limit) == (OrdType.LIMIT, TimeInForce.IOC, 103)
        assert s.aggressive and not s.passive and not s.exempt
        assert s.chosen == f"take {s.qty} on {s.venue} (slice)"
        assert {"qty", "touch_ticks", "venue_depth", "filled", "remaining"} <= set(s.inputs)
    # the record weighs both venues, fee included (ticks: 0.1 and 0.3 of a cent's tick)
    assert ledger.sent[0].alternatives == pytest.approx(
        {"B_cost_ticks": 100.1, "A_cost_ticks": 100.3}
    )


def test_more_than_the_visible_depth_goes_to_the_best_venue():
    snap = snapshot(quote("A", 99, 100, depth=300), quote("B", 99, 101, depth=200))
    ledger = FakeLedger(parent())
    _taker(snap, ledger).take(2_000, 2, "slice")
    # A first (the better price) takes its depth, B (the last) the rest
    assert [(s.venue, s.qty, s.limit) for s in ledger.sent] == [("A", 300, 102), ("B", 1_700, 103)]


def test_a_sell_hits_the_bids_and_never_prices_through_the_parent_limit():
    snap = snapshot(quote("A", 100, 101, depth=300), quote("B", 98, 101, depth=5_000))
    ledger = FakeLedger(parent(side=Side.SELL, limit_ticks=99))
    _taker(snap, ledger).take(1_000, 5, "slice")
    # B's bid is through the limit: nothing there; A's reach stops at the limit
    assert [(s.venue, s.qty, s.limit) for s in ledger.sent] == [("A", 300, 99)]


def test_nothing_to_take_on_a_one_sided_book():
    ledger = FakeLedger(parent())
    _taker(snapshot(quote("A", 99, None)), ledger).take(1_000, 2, "slice")
    assert ledger.sent == []


def test_a_decision_takes_what_is_due_and_reaches_further_when_behind():
    snap = snapshot(quote("A", 99, 100, depth=100_000))
    ledger = FakeLedger(parent(), filled=1_000, working={})
    taker = _taker(snap, ledger)
    taker.on_decision(decision(snap, target=1_150, slice_qty=100.0))
    (sent,) = ledger.sent
    assert (sent.qty, sent.limit, sent.chosen) == (100, 103, "take 100 on A (slice)")
    # six slices behind (100 working): reach 2 + 6 ticks; a sweep's reach caps it
    taker.on_decision(decision(snap, target=1_700, slice_qty=100.0))
    assert (ledger.sent[1].qty, ledger.sent[1].limit) == (600, 108)
    assert ledger.sent[1].chosen.endswith("(catch-up, 6 slices)")
    capped = _taker(snap, FakeLedger(parent()), TakeConfig(aggression_ticks=2, sweep_ticks=4))
    assert capped.reach(10) == 4


def test_nothing_is_taken_when_the_working_orders_cover_the_target():
    snap = snapshot(quote("A", 99, 100))
    ledger = FakeLedger(parent(), filled=1_000)
    ledger.held = 500  # e.g. an RFQ's reservation
    _taker(snap, ledger).on_decision(decision(snap, target=1_500))
    assert ledger.sent == []


def test_the_final_sweep_reaches_furthest_and_is_exempt_from_participation():
    snap = snapshot(quote("A", 99, 100, depth=100_000))
    ledger = FakeLedger(parent())
    _taker(snap, ledger, TakeConfig(sweep_ticks=9)).sweep(800)
    (sent,) = ledger.sent
    assert (sent.qty, sent.limit, sent.exempt) == (800, 109, True)
    assert sent.chosen == "take 800 on A (final sweep)"
