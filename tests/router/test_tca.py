"""TCA: implementation shortfall and its parts, venue quality, and the hindsight schedule."""

import itertools
import json
import math
import pickle

import numpy as np
import pytest

from router.domain import (
    ChildId,
    ChildOrder,
    ChildOrderFilled,
    DomainError,
    OrdType,
    ParentId,
    Side,
    TimeInForce,
    VenueId,
    VenueKind,
)
from router.tca import (
    IMPACT_FROM_UNIMPACTED,
    IMPACT_NOT_SEPARATED,
    PricePath,
    analyze,
    gap_captured,
    implementation_shortfall_bps,
    solve_hindsight,
    summarize,
    water_fill,
)


def fill(qty, price, fee=0.0, venue="LITA"):
    return ChildOrderFilled(0, ChildId("c"), VenueId(venue), Side.SELL, qty, price, fee, "taker", 0)


def test_sell_below_arrival_is_a_cost():
    # sold 1,000 at 99.90 against an arrival mid of 100: 10 bps
    assert implementation_shortfall_bps(Side.SELL, 1000, 100.0, 100.0, [fill(1000, 99.9)]) == (
        pytest.approx(10.0)
    )


def test_buy_above_arrival_is_a_cost_and_fees_add():
    f = fill(1000, 100.1, fee=3.0)
    assert implementation_shortfall_bps(Side.BUY, 1000, 100.0, 100.0, [f]) == pytest.approx(
        10.0 + 1e4 * 3.0 / 100_000
    )


def test_unfilled_quantity_is_charged_at_the_horizon_mid():
    # half sold at arrival, the other half never: the price fell 1% meanwhile
    is_bps = implementation_shortfall_bps(Side.SELL, 1000, 100.0, 99.0, [fill(500, 100.0)])
    assert is_bps == pytest.approx(50.0)


def test_summary_mix_and_completion():
    fills = [fill(600, 99.9), fill(400, 99.95, venue="DARKX")]
    s = summarize(
        Side.SELL,
        2000,
        100.0,
        100.0,
        99.9,
        fills,
        {VenueId("LITA"): VenueKind.LIT, VenueId("DARKX"): VenueKind.DARK},
    )
    assert s.completion == 0.5
    assert s.venue_mix == pytest.approx({"lit": 0.6, "dark": 0.4, "rfq": 0.0})
    assert s.avg_price == pytest.approx(99.92)
    # sold above the market VWAP: negative slippage (a gain) for a seller
    assert s.vwap_slippage_bps < 0


# --------------------------------------------------------------------------------------
# Full TCA: PricePath, analyze, gap_captured
# --------------------------------------------------------------------------------------

KINDS = {
    VenueId("LITA"): VenueKind.LIT,
    VenueId("DARKX"): VenueKind.DARK,
    VenueId("RFQ"): VenueKind.RFQ,
}


def at(t_s, qty, price, side, fee=0.0, venue="LITA"):
    """A fill `t_s` seconds after the parent's start."""
    return ChildOrderFilled(
        round(t_s * 1e9), ChildId("c"), VenueId(venue), side, qty, price, fee, "taker", 0
    )


def child(venue, qty, side=Side.BUY):
    return ChildOrder(
        ChildId(f"c-{venue}"),
        ParentId("p"),
        VenueId(venue),
        side,
        qty,
        OrdType.MARKET,
        TimeInForce.IOC,
    )


def mid_path(times, mids, half_spread=0.05):
    m = np.asarray(mids, dtype=float)
    return PricePath(np.asarray(times, dtype=float), m - half_spread, m + half_spread)


def test_price_path_lookups_at_between_and_outside_points():
    nan = float("nan")
    path = PricePath(
        np.array([0.0, 10.0, 20.0]), np.array([99.0, nan, 101.0]), np.array([100.0, 100.5, 102.0])
    )
    # the mid at 10 s is undefined (empty bid): the last valid mid holds
    lookups = [path.mid_at(t) for t in (-3.0, 0.0, 5.0, 10.0, 19.999, 20.0, 1e6)]
    assert lookups == [99.5] * 5 + [101.5] * 2
    assert path.bid_at(10.0) == 99.0 and path.ask_at(15.0) == 100.5
    np.testing.assert_array_equal(path.mids_at([0.0, 20.0, 30.0]), [99.5, 101.5, 101.5])
    leading_gap = PricePath(np.array([0.0, 1.0]), np.array([nan, 99.0]), np.array([100.0, 100.0]))
    assert leading_gap.bid_at(0.0) == 99.0 and leading_gap.mid_at(-1.0) == 99.5


def test_a_pickled_price_path_carries_its_three_arrays_and_looks_up_the_same():
    nan = float("nan")
    rng = np.random.default_rng(3)
    bid = 100.0 + rng.normal(size=1_000).cumsum() * 0.01
    bid[[0, 1, 500]] = nan  # a leading gap and one inside
    path = PricePath(np.arange(1_000, dtype=float) * 0.5, bid, bid + 0.02)
    back = pickle.loads(pickle.dumps(path, protocol=5))
    for name in ("times_s", "bid", "ask", "_bid_ff", "_ask_ff", "_mid_ff"):
        np.testing.assert_array_equal(getattr(back, name), getattr(path, name))
    probe = np.linspace(-5.0, 600.0, 97)
    np.testing.assert_array_equal(back.mids_at(probe), path.mids_at(probe))
    # three arrays of 8 kB and the pickle's own bytes, not six
    assert len(pickle.dumps(path, protocol=5)) < 3 * 8_000 + 1_000


def test_price_path_rejects_unordered_times():
    with pytest.raises(DomainError):
        PricePath(np.array([0.0, 0.0]), np.array([1.0, 1.0]), np.array([2.0, 2.0]))


def test_mean_mids_and_resample():
    path = mid_path([0.0, 10.0], [100.0, 102.0])
    np.testing.assert_allclose(path.mean_mids([-10.0, 0.0, 20.0]), [100.0, 101.0])
    np.testing.assert_allclose(path.mean_mids([5.0, 15.0]), [101.0])
    coarse = mid_path(np.arange(11.0), 100.0 + np.arange(11.0)).resample(2.5)
    np.testing.assert_allclose(coarse.times_s, [0.0, 2.5, 5.0, 7.5, 10.0])
    np.testing.assert_allclose(coarse.mids_at(coarse.times_s), [100.0, 102.0, 105.0, 107.0, 110.0])


def hand_case(unimpacted):
    """Buy 1,000 at arrival 100: 400 at the ask (fee 2) at 10 s, 300 at the mid at 20 s,
    300 never filled; the realised mid rises 0.1 per step, the unimpacted one 0.04."""
    path = mid_path([0.0, 10.0, 20.0, 100.0], [100.0, 100.1, 100.2, 100.3])
    fills = [
        at(10.0, 400, 100.15, Side.BUY, fee=2.0, venue="LITA"),
        at(20.0, 300, 100.20, Side.BUY, venue="DARKX"),
    ]
    children = [child("LITA", 600), child("DARKX", 500), child("RFQ", 100)]
    u = mid_path([0.0, 10.0, 20.0], [100.0, 100.04, 100.08]) if unimpacted else None
    return analyze(Side.BUY, 1000, 100.0, 100.0, fills, children, path, u, KINDS, 100.1)


def test_hand_computed_decomposition_with_unimpacted_path():
    r = hand_case(unimpacted=True)
    # notional 100,000: spread+fees 400*0.05 + 2 = 22; move 400*0.1 + 300*0.2 = 100,
    # of which the market alone 400*0.04 + 300*0.08 = 40; unfilled 300 * 0.3 = 90
    assert r.spread_fees_bps == pytest.approx(2.2)
    assert r.timing_bps == pytest.approx(4.0)
    assert r.impact_bps == pytest.approx(6.0)
    assert r.opportunity_bps == pytest.approx(9.0)
    assert r.is_bps == pytest.approx(21.2)
    assert r.impact_method == IMPACT_FROM_UNIMPACTED
    assert (r.filled_qty, r.n_fills, r.n_child_orders) == (700, 2, 3)
    assert r.completion == pytest.approx(0.7)
    assert r.avg_price == pytest.approx((400 * 100.15 + 300 * 100.2) / 700)
    assert r.venue_mix == pytest.approx({"lit": 4 / 7, "dark": 3 / 7, "rfq": 0.0})
    # incomplete: measured to the horizon's mid, +30 bps against a buyer
    assert r.arrival_to_completion_bps == pytest.approx(30.0)


def test_without_unimpacted_path_the_whole_move_is_timing():
    r = hand_case(unimpacted=False)
    assert r.impact_bps == 0.0
    assert r.timing_bps == pytest.approx(10.0)
    assert r.impact_method == IMPACT_NOT_SEPARATED
    assert r.is_bps == pytest.approx(21.2)


def test_venue_stats_fill_rates_and_price_improvement():
    r = hand_case(unimpacted=True)
    lit, dark, rfq = r.venues["LITA"], r.venues["DARKX"], r.venues["RFQ"]
    assert (lit.sent_qty, lit.filled_qty, lit.fill_rate) == (600, 400, pytest.approx(2 / 3))
    assert dark.fill_rate == pytest.approx(0.6) and rfq.fill_rate == 0.0
    assert (lit.fill_share, dark.fill_share, rfq.fill_share) == pytest.approx((4 / 7, 3 / 7, 0))
    assert lit.fees == 2.0 and rfq.avg_price is None and rfq.price_improvement_bps is None
    # bought at the ask: no improvement; at the mid: half the 0.10 spread, in bps of price
    assert lit.price_improvement_bps == pytest.approx(0.0, abs=1e-9)
    half_spread_bps = 1e4 * 0.05 / 100.2
    assert dark.price_improvement_bps == pytest.approx(half_spread_bps)
    assert r.price_improvement_bps == pytest.approx(300 * half_spread_bps / 700)


def test_midpoint_sell_improves_by_half_the_spread():
    path = mid_path([0.0], [50.0], half_spread=0.02)
    f = at(1.0, 100, 50.0, Side.SELL, venue="DARKX")
    r = analyze(Side.SELL, 100, 50.0, 10.0, [f], [], path, None, KINDS, None)
    assert r.price_improvement_bps == pytest.approx(1e4 * 0.02 / 50.0)
    assert r.venues["DARKX"].fill_rate is None  # a fill without a recorded child


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_markouts_positive_when_the_price_moves_our_way(side):
    # the mid moves by +1 for a buy, -1 for a sell, 5 s after the fill at the mid
    path = mid_path([0.0, 5.0], [100.0, 100.0 + side.sign])
    r = analyze(side, 100, 100.0, 3.0, [at(0.0, 100, 100.0, side)], [], path, None, KINDS, None)
    assert r.markouts_bps["1s"] == pytest.approx(0.0)
    # 10 s, 60 s and 300 s fall past the path's end: its last point counts
    for h in ("10s", "60s", "300s"):
        assert r.markouts_bps[h] == pytest.approx(100.0)
        assert r.venues["LITA"].markouts_bps[h] == pytest.approx(100.0)


def test_buy_followed_by_a_fall_shows_adverse_selection():
    path = mid_path([0.0, 1.0], [100.0, 99.5])
    r = analyze(
        Side.BUY, 100, 100.0, 3.0, [at(0.0, 100, 100.0, Side.BUY)], [], path, None, KINDS, None
    )
    assert r.markouts_bps["1s"] == pytest.approx(-50.0)


def test_arrival_to_completion_uses_the_last_fill_when_complete():
    # a sell completes at 10 s with the mid at 99 (adverse); the rebound afterwards is ignored
    path = mid_path([0.0, 10.0, 50.0], [100.0, 99.0, 101.0])
    fills = [at(5.0, 60, 99.9, Side.SELL), at(10.0, 40, 99.0, Side.SELL)]
    r = analyze(Side.SELL, 100, 100.0, 60.0, fills, [], path, None, KINDS, None)
    assert r.arrival_to_completion_bps == pytest.approx(100.0)
    assert r.opportunity_bps == 0.0


def random_case(side, with_unimpacted, seed):
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.uniform(0.5, 2.0, 200))
    mids = 100.0 + np.cumsum(rng.normal(0, 0.02, 200))
    spread = rng.uniform(0.01, 0.1, 200)
    bid, ask = mids - spread / 2, mids + spread / 2
    bid[rng.random(200) < 0.05] = np.nan  # one-sided instants
    path = PricePath(times, bid, ask)
    u = mid_path(times, mids - 0.3 * (mids - 100.0)) if with_unimpacted else None
    fills = [
        at(
            float(rng.uniform(0, times[-1])),
            int(rng.integers(1, 50)) * 100,
            float(100 + rng.normal(0, 0.1)),
            side,
            fee=float(rng.normal(0, 1)),  # fees and rebates
            venue=str(rng.choice(["LITA", "DARKX", "RFQ"])),
        )
        for _ in range(30)
    ]
    qty = sum(f.qty for f in fills) + 5_000  # some left unfilled
    arrival = 100.013  # differs from path.mid_at(0) on purpose
    end_s = float(times[-1]) + 30
    r = analyze(side, qty, arrival, end_s, fills, [], path, u, KINDS, 100.0)
    return r, qty, arrival, path.mid_at(end_s), fills


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
@pytest.mark.parametrize("with_unimpacted", [True, False])
def test_parts_sum_exactly_to_is(side, with_unimpacted):
    r, qty, arrival, end_mid, fills = random_case(side, with_unimpacted, seed=7)
    parts = r.spread_fees_bps + r.impact_bps + r.timing_bps + r.opportunity_bps
    assert parts == pytest.approx(r.is_bps, rel=1e-12, abs=1e-9)
    assert r.opportunity_bps != 0.0 and r.timing_bps != 0.0
    assert r.is_bps == pytest.approx(
        implementation_shortfall_bps(side, qty, arrival, end_mid, fills), rel=1e-12
    )


def test_report_json_is_plain_and_summary_matches_summarize():
    r, qty, arrival, end_mid, fills = random_case(Side.SELL, True, seed=3)
    doc = json.loads(json.dumps(r.to_json(), allow_nan=False))
    assert set(doc["venue_mix"]) == {"lit", "dark", "rfq"}
    assert set(doc["markouts_bps"]) == {"1s", "10s", "60s", "300s"}
    assert doc["decomposition"]["impact_method"] == IMPACT_FROM_UNIMPACTED
    assert set(doc["venues"]) == {"LITA", "DARKX", "RFQ"}
    assert r.summary() == summarize(Side.SELL, qty, arrival, end_mid, 100.0, fills, KINDS)


def test_no_fills_report_and_json():
    path = mid_path([0.0, 10.0], [100.0, 99.0])
    r = analyze(Side.SELL, 1000, 100.0, 10.0, [], [child("LITA", 1000)], path, None, KINDS, None)
    # a seller who sold nothing while the price fell 1% is charged the fall
    assert r.is_bps == pytest.approx(100.0)
    assert r.opportunity_bps == pytest.approx(100.0)
    assert r.markouts_bps["1s"] is None and r.venues["LITA"].fill_rate == 0.0
    json.dumps(r.to_json(), allow_nan=False)


def test_unknown_venue_and_wrong_side_are_refused():
    path = mid_path([0.0], [100.0])
    with pytest.raises(DomainError, match="NOPE"):
        analyze(
            Side.BUY,
            1,
            100.0,
            1.0,
            [at(0, 1, 100.0, Side.BUY, venue="NOPE")],
            [],
            path,
            None,
            KINDS,
            None,
        )
    with pytest.raises(DomainError, match="sell"):
        analyze(Side.BUY, 1, 100.0, 1.0, [at(0, 1, 100.0, Side.SELL)], [], path, None, KINDS, None)


def test_gap_captured():
    assert gap_captured(10.0, 20.0, 0.0) == pytest.approx(0.5)
    assert gap_captured(0.0, 20.0, 0.0) == pytest.approx(1.0)
    assert gap_captured(25.0, 20.0, 0.0) == pytest.approx(-0.25)
    assert gap_captured(5.0, 3.0, 3.0 - 1e-6) is None


# --------------------------------------------------------------------------------------
# The hindsight schedule
# --------------------------------------------------------------------------------------


def qp_cost(a, b, x):
    return float(np.dot(a, x) + np.dot(b, np.square(x)))


def test_water_fill_matches_brute_force_on_a_tiny_problem():
    a = np.array([0.3, 0.0, 0.5])
    b = np.array([0.2, 0.5, 0.1])
    caps = np.array([2.0, 1.5, 3.0])
    total = 4.0
    x = water_fill(a, b, caps, total)
    assert x.sum() == pytest.approx(total) and np.all(x <= caps + 1e-12) and np.all(x >= 0)
    grid = np.arange(0.0, 3.0 + 1e-9, 0.005)
    best = min(
        qp_cost(a, b, np.array([x0, x1, total - x0 - x1]))
        for x0 in grid[grid <= 2.0]
        for x1 in grid[grid <= 1.5]
        if 0 <= total - x0 - x1 <= 3.0
    )
    assert qp_cost(a, b, x) <= best + 1e-12
    assert qp_cost(a, b, x) == pytest.approx(best, abs=1e-4)


def model_cost(plan, side, mids, volumes, half_spread, x):
    a = side.sign * (mids - mids[0]) + half_spread
    return qp_cost(a, plan.impact_coef / volumes, np.asarray(x, dtype=float))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_lot_schedule_is_optimal_against_enumeration(seed, side):
    rng = np.random.default_rng(seed)
    mids = 100 + np.cumsum(rng.normal(0, 0.05, 4))
    volumes = rng.uniform(1_000, 4_000, 4)
    lot, qty, cap = 100, 1_200, 0.3
    plan = solve_hindsight(
        side, qty, np.arange(4) * 60.0, mids, volumes, 0.02, 1.0, 0.02, 20_000, lot, cap
    )
    assert not plan.caps_relaxed and sum(plan.quantities) == qty
    max_lots = np.floor(cap * volumes / lot).astype(int)
    best = min(
        model_cost(plan, side, mids, volumes, 0.02, np.array(y) * lot)
        for y in itertools.product(*(range(m + 1) for m in max_lots))
        if sum(y) == qty // lot
    )
    got = model_cost(plan, side, mids, volumes, 0.02, plan.quantities)
    assert got == pytest.approx(best, rel=1e-12)
    assert plan.expected_cost == pytest.approx(got)


def test_schedule_respects_caps_and_lots_with_an_odd_lot():
    rng = np.random.default_rng(11)
    n = 30
    volumes = rng.uniform(5_000, 20_000, n)
    mids = 100 + np.cumsum(rng.normal(0, 0.05, n))
    x = np.array(
        list(
            solve_hindsight(
                Side.SELL,
                40_050,
                np.arange(n) * 60.0,
                mids,
                volumes,
                0.025,
                0.7,
                0.02,
                2e6,
                100,
                0.2,
            ).quantities
        )
    )
    assert x.sum() == 40_050
    assert np.all(x >= 0) and np.all(x <= 0.2 * volumes)
    assert sorted(x % 100)[-1] == 50 and np.count_nonzero(x % 100) == 1


def test_caps_that_cannot_hold_qty_are_relaxed():
    volumes = np.full(10, 1_000.0)
    plan = solve_hindsight(
        Side.BUY,
        5_000,
        np.arange(10.0),
        np.full(10, 100.0),
        volumes,
        0.01,
        0.7,
        0.02,
        1e6,
        100,
        0.1,
    )
    assert plan.caps_relaxed and plan.participation_cap >= 0.5 > 0.1
    assert sum(plan.quantities) == 5_000
    assert all(q <= plan.participation_cap * 1_000 for q in plan.quantities)


def test_flat_path_gives_a_volume_proportional_schedule_and_the_sqrt_law_cost():
    volumes = np.array([1.0, 2.0, 3.0, 4.0]) * 10_000
    qty, y, vol, adv, hs = 10_000, 0.7, 0.02, 1e6, 0.025
    plan = solve_hindsight(
        Side.BUY, qty, np.arange(4) * 60.0, np.full(4, 100.0), volumes, hs, y, vol, adv, 1, 0.5
    )
    np.testing.assert_allclose(plan.quantities, qty * volumes / volumes.sum(), atol=1)
    # calibration: at the average rate the temporary cost per share is Y sigma m0 sqrt(Q/ADV)
    per_share = hs + y * vol * 100.0 * math.sqrt(qty / adv)
    assert plan.expected_cost == pytest.approx(qty * per_share, rel=1e-6)


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_a_late_fall_makes_a_buy_trade_late_and_a_sell_early(side):
    n = 20
    mids = np.where(np.arange(n) < n // 2, 100.0, 99.8)
    x = np.array(
        list(
            solve_hindsight(
                side,
                20_000,
                np.arange(n) * 60.0,
                mids,
                np.full(n, 20_000.0),
                0.02,
                0.7,
                0.02,
                2e6,
                100,
                0.25,
            ).quantities
        )
    )
    # the 0.2 move is traded against impact: c = 0.7 * 0.02 * 100 * sqrt(0.01) * 20 = 2.8,
    # so the bucket sizes differ by 0.2 v / (2c) = 714 shares (800 after lots), not by all
    cheap, dear = (x[n // 2 :], x[: n // 2]) if side is Side.BUY else (x[: n // 2], x[n // 2 :])
    assert set(cheap) == {1_400} and set(dear) == {600}


def test_without_impact_the_oracle_fills_the_cheapest_buckets_first():
    mids = np.array([100.0, 99.0, 99.5, 101.0])
    x = list(
        solve_hindsight(
            Side.BUY,
            2_500,
            np.arange(4.0),
            mids,
            np.full(4, 10_000.0),
            0.01,
            0.0,
            0.02,
            1e6,
            100,
            0.2,
        ).quantities
    )
    assert x == [0, 2_000, 500, 0]


def test_hindsight_refuses_a_market_without_volume():
    with pytest.raises(DomainError, match="volume"):
        list(
            solve_hindsight(
                Side.BUY, 100, [0.0, 1.0], [100.0, 100.0], [0.0, 0.0], 0.01, 0.7, 0.02, 1e6, 1, 0.1
            ).quantities
        )


def test_forward_fill_is_the_last_valid_value_with_or_without_gaps():
    # PricePath's lookups rest on it; a path with no gap after its first valid value
    # takes a shorter way, which must give what a scan gives
    from router.tca import _ffill

    def scan(values: np.ndarray) -> np.ndarray:
        valid = [float(v) for v in values if not np.isnan(v)]
        out, last = [], valid[0] if valid else float("nan")
        for v in values:
            last = last if np.isnan(v) else float(v)
            out.append(last)
        return np.array(out)

    rng = np.random.default_rng(3)
    for trial in range(400):
        v = rng.random(int(rng.integers(1, 30)))
        if trial % 4 == 1:
            v[: int(rng.integers(0, v.size + 1))] = np.nan  # a leading gap only
        elif trial % 4 == 2:
            v[rng.random(v.size) < 0.3] = np.nan  # gaps anywhere
        elif trial % 4 == 3:
            v[:] = np.nan
        before = v.copy()
        got = _ffill(v)
        assert np.array_equal(got, scan(v), equal_nan=True)
        assert got is not v and np.array_equal(v, before, equal_nan=True)  # a new array
