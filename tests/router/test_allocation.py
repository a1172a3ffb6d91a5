"""The Cont-Kukanov placement (router/allocation.py) and the outflow estimator."""

import numpy as np
import pytest

from router.allocation import (
    AllocationProblem,
    OutflowEstimator,
    PassiveOption,
    agency_cost_bps,
    allocate,
    screen_cost_bps,
    twap_impact_share,
)
from router.domain import Symbol
from router.ports import MarketSnapshot


def option(venue="A", level="join", queue=0, mean=1_000.0, cost=-2.0, price=100):
    return PassiveOption(venue, level, price, queue, mean, cost)


def problem(options, slice_qty=1_000, under=5.0, market=3.0, max_qty=10_000, over=0.25):
    return AllocationProblem(
        slice_qty=slice_qty,
        max_qty=max_qty,
        market_cost_ticks=market,
        under_cost_ticks=under,
        over_cost_ticks=over,
        lot=100,
        options=tuple(options),
    )


def rng():
    return np.random.default_rng(1)


def test_busy_venue_with_short_queue_is_worked_passively():
    best, _ = allocate(problem([option(mean=50_000.0)]), rng())
    assert best.market_qty == 0
    assert sum(q for _, q in best.passive) >= 1_000


def test_no_outflow_means_take_everything():
    best, _ = allocate(problem([option(mean=1.0, queue=5_000)]), rng())
    assert best.market_qty == 1_000 and not best.passive


def test_urgency_moves_the_split_towards_taking():
    opts = [option(mean=900.0, queue=200)]
    patient, _ = allocate(problem(opts, under=3.5), rng())
    urgent, _ = allocate(problem(opts, under=30.0), rng())
    assert urgent.market_qty > patient.market_qty


def test_shorter_queue_gets_more_of_the_passive_quantity():
    opts = [option("A", queue=3_000, mean=2_000.0), option("B", queue=100, mean=2_000.0)]
    best, _ = allocate(problem(opts), rng())
    sizes = {o.venue: q for o, q in best.passive}
    assert sizes.get("B", 0) > sizes.get("A", 0)


def test_allocation_respects_cap_and_lots():
    opts = [option("A", mean=1e6), option("B", mean=1e6)]
    best, cands = allocate(problem(opts, slice_qty=5_000, max_qty=3_000), rng())
    for c in cands:
        assert c.market_qty + sum(q for _, q in c.passive) <= 3_000
        assert c.market_qty % 100 == 0 and all(q % 100 == 0 for _, q in c.passive)
    assert cands[0] is best
    assert [c.expected_cost_ticks for c in cands] == sorted(c.expected_cost_ticks for c in cands)


def test_same_generator_same_choice():
    opts = [option("A", queue=500, mean=800.0), option("B", level="improve", mean=800.0)]
    a, _ = allocate(problem(opts), np.random.default_rng(7))
    b, _ = allocate(problem(opts), np.random.default_rng(7))
    assert a == b


def test_nothing_to_do():
    best, cands = allocate(problem([option()], slice_qty=0), rng())
    assert best.market_qty == 0 and not best.passive and len(cands) == 1


def test_estimator_prior_then_censored_mle():
    est = OutflowEstimator(decay=1.0, prior_weight=2.0)
    assert est.rate("A", 10.0) == 10.0
    # two intervals of 10 s: one seen in full (queue 100 + fill 100), one censored
    est.observe("A", queue_ahead=100, posted=500, filled=100, seconds=10.0)  # 20/s, seen
    est.observe("A", queue_ahead=0, posted=300, filled=300, seconds=10.0)  # >= 30/s
    # (20 + 30 + 2 * 10) / (1 + 2)
    assert est.rate("A", 10.0) == pytest.approx(70.0 / 3.0)
    assert est.rate("B", 4.0) == 4.0


def test_estimator_forgets_old_intervals():
    est = OutflowEstimator(decay=0.5, prior_weight=0.0)
    est.observe("A", 0, 1_000, 100, 1.0)
    for _ in range(20):
        est.observe("A", 0, 1_000, 500, 1.0)
    assert est.rate("A", 0.0) == pytest.approx(500.0, rel=1e-3)


# ------------------------------------------------------------- a block's alternatives


def _screen() -> MarketSnapshot:
    # 99.98 / 100.02: a mid of 100.00 and a 4 bps spread
    return MarketSnapshot(
        ts_ns=0,
        symbol=Symbol("QDI"),
        tick_size=0.01,
        bid_ticks=9998,
        ask_ticks=10002,
        bid_depth=0,
        ask_depth=0,
        venues=(),
        last_ticks=None,
        volume=0,
        vwap_num=0.0,
    )


def test_a_block_at_once_pays_the_spread_the_fee_and_two_thirds_of_the_peak() -> None:
    # 2 bps half spread, 0.3 bps fee, 2/3 of 90 bps x sqrt(4%) = 12 bps
    assert screen_cost_bps(_screen(), 0.003, 40_000, 90.0, 1e6) == pytest.approx(14.3)


def test_a_twap_pays_less_impact_the_longer_it_works() -> None:
    assert twap_impact_share(600.0) == twap_impact_share(1800.0) == 1.0
    assert twap_impact_share(10_800.0) == pytest.approx(0.5)
    shares = [twap_impact_share(h * 3600.0) for h in (0.5, 1.0, 2.0, 3.0, 6.5)]
    assert shares == sorted(shares, reverse=True) and shares[-1] > 0.0
    # over half an hour it is the block at once; over three hours half its impact
    snap = _screen()
    at_once = screen_cost_bps(snap, 0.003, 40_000, 90.0, 1e6)
    assert agency_cost_bps(snap, 0.003, 40_000, 90.0, 1e6, 1800.0) == pytest.approx(at_once)
    assert agency_cost_bps(snap, 0.003, 40_000, 90.0, 1e6, 10_800.0) == pytest.approx(2.3 + 6.0)


def test_keeping_the_cheapest_few_gives_the_head_of_the_full_ranking():
    opts = [option("A", queue=500, mean=800.0), option("B", level="improve", mean=800.0)]
    best, every = allocate(problem(opts), np.random.default_rng(3))
    kept_best, kept = allocate(problem(opts), np.random.default_rng(3), keep=3)
    assert len(every) > 3 and kept == every[:3] and kept_best == best
    assert allocate(problem(opts), np.random.default_rng(3), keep=0)[1] == every[:1]
