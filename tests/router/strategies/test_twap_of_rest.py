"""TwapOfRestSlicer (risk-bid's schedule): TWAP until fills off the schedule put the
parent ahead, then what is left evenly over the time left; never a target to re-buy."""

from __future__ import annotations

from router.domain import NANOS_PER_SECOND, ParentId, ParentOrder, Side, Symbol
from router.ports import ExecutionState, MarketSnapshot
from router.registry import ModelRegistry
from router.strategies import STRATEGIES, TwapOfRestSlicer
from router.strategies.twap import TwapSlicer

START_NS = 1_000 * NANOS_PER_SECOND
HORIZON_S = 600.0


def state(elapsed_s: float, filled: int = 0, qty: int = 1_000) -> ExecutionState:
    parent = ParentOrder(
        ParentId("P1"),
        Symbol("QDI"),
        Side.BUY,
        qty,
        START_NS,
        round(HORIZON_S * NANOS_PER_SECOND),
    )
    now = START_NS + round(elapsed_s * NANOS_PER_SECOND)
    snap = MarketSnapshot(now, Symbol("QDI"), 0.01, 9_999, 10_001, 0, 0, (), None, 0, 0.0)
    return ExecutionState(parent, now, filled, snap)


def test_on_or_behind_its_line_it_is_twap():
    s, twap = TwapOfRestSlicer(), TwapSlicer()
    for t, filled in [(0, 0), (30, 0), (60, 40), (150, 250), (300, 100), (600, 900)]:
        assert s.target_filled(state(t, filled)) == twap.target_filled(state(t, filled))
    assert s.target_filled(state(700, 900)) == 1_000


def test_a_block_ahead_of_the_line_restarts_it_over_the_time_left():
    s = TwapOfRestSlicer()
    assert s.target_filled(state(0, 0)) == 0
    # a dealer filled 400 within the first seconds: 600 left over the 570 s left
    assert s.target_filled(state(30, 400)) == 400
    per_s = 600 / 570
    for t in (60, 120, 330, 599):
        assert s.target_filled(state(t, 400)) == int(400 + per_s * (t - 30))
    assert s.target_filled(state(600, 400)) == 1_000
    # the new line stays: the parent behind it again catches up to it, not to TWAP's
    assert s.target_filled(state(330, 500)) == int(400 + per_s * 300)


def test_never_targets_less_than_is_done():
    s, twap = TwapOfRestSlicer(), TwapSlicer()
    for t in (10, 30, 60, 300, 470):
        # TwapSlicer would say 'done already' and idle until its line caught up (480 s)
        assert twap.target_filled(state(t, 800)) < 800
        assert s.target_filled(state(t, 800)) >= 800
    # the line restarted at the first look ahead (10 s): 200 left over 590 s
    assert s.target_filled(state(470, 800)) == int(800 + 200 * 460 / 590)
    assert s.target_filled(state(600, 800)) == 1_000


def test_risk_bid_is_registered_with_the_dealers_and_this_schedule():
    spec = STRATEGIES["risk-bid"]
    assert spec.routing == "risk-bid" and spec.rfq and spec.preload is None
    assert isinstance(spec.slicer(None, 1_000, HORIZON_S, ModelRegistry()), TwapOfRestSlicer)
    assert spec.description
