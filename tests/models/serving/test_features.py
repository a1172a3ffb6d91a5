"""Feature rows of the learned models (layout, sign conventions, market context, clipping)
and the per-dealer pricing regression behind the `pred_cost_bps` features."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.serving.features import (
    DEALER_BASE,
    DEALER_FEATURES,
    DEALER_IDS,
    FILL_FEATURES,
    HIT_FEATURES,
    PANELS,
    Clipper,
    MarketContext,
    context_from_inputs,
    dealer_row,
    fill_row,
    side_feature,
)
from models.serving.quotecost import (
    N_TERMS,
    PRIOR_COST_BPS,
    QuoteCostTracker,
    carry_shapes,
    terms,
)
from router.domain import Side, VenueId
from router.ports import PassiveOrderContext, RecentMarket

ADV = 100_000.0
MARKET = MarketContext(vol_bps=7.5, spread_bps=2.0, tod=0.25)


def row(side: Side | None = Side.BUY, **kw: object) -> dict[str, float]:
    """dealer_row as a name -> value map; BRAVO asked with ALPHA and CHARLIE."""
    args: dict[str, object] = dict(
        qty=1_000,
        adv=ADV,
        side=side,
        n_dealers=3,
        market=MARKET,
        resp_rate=0.8,
        hit_rate=0.25,
        dist_bps=5.0,
        asked=3.0,
        axe=5_000.0,
        panel="equities",
        dealer="BRAVO",
        others=("ALPHA", "CHARLIE"),
    )
    args.update(kw)
    values = dealer_row(**args)  # type: ignore[arg-type]
    assert len(values) == len(DEALER_FEATURES)
    return dict(zip(DEALER_FEATURES, values, strict=True))


# ------------------------------------------------------------------------------- layout


def test_feature_name_lists_are_unique_and_nested() -> None:
    assert len(set(DEALER_FEATURES)) == len(DEALER_FEATURES)
    assert len(DEALER_FEATURES) == len(DEALER_BASE) + len(PANELS) + 2 * len(DEALER_IDS)
    assert HIT_FEATURES[: len(DEALER_FEATURES)] == DEALER_FEATURES
    assert HIT_FEATURES[len(DEALER_FEATURES) :] == ("quote_bps", "quote_rank", "n_quotes")
    assert len(set(FILL_FEATURES)) == len(FILL_FEATURES)


def test_dealer_row_base_values_in_order() -> None:
    r = row(
        position=-2_000.0,
        notional=2_500_000.0,
        dist_today=1.5,
        quotes_today=3,
        rel_dist=-0.5,
        others_resp=1.7,
        pred_cost=6.0,
        rel_pred_cost=-1.0,
        p_best_est=0.4,
        p_credit=0.75,
        short_axe=True,
    )
    expected = {
        "log_size_adv": math.log(0.01),  # 1_000 / 100_000
        "side": 1.0,
        "two_sided": 0.0,
        "n_dealers": 3.0,
        "vol_bps": 7.5,
        "spread_bps": 2.0,
        "tod": 0.25,
        "resp_rate": 0.8,
        "hit_rate": 0.25,
        "dist_bps": 5.0,
        "log_asked": math.log(4.0),  # log1p(3)
        "axe_adv": 0.05,  # 5_000 / 100_000, client buys
        "pos_side": -0.02,  # short 2_000 while the client buys
        "notional_m": 2.5,
        "dist_today_bps": 1.5,
        "log_quotes_today": math.log(4.0),
        "p_credit": 0.75,
        "short_axe": 1.0,
        "rel_dist_bps": -0.5,
        "others_resp": 1.7,
        "pred_cost_bps": 6.0,
        "rel_pred_cost_bps": -1.0,
        "p_best_est": 0.4,
    }
    assert tuple(expected) == DEALER_BASE
    for name, value in expected.items():
        assert r[name] == pytest.approx(value), name


def test_dealer_row_one_hots() -> None:
    r = row()
    assert r["panel_equities"] == 1.0
    assert r["panel_bonds"] == 0.0
    assert [d for d in DEALER_IDS if r[f"dealer_{d}"]] == ["BRAVO"]
    assert sum(r[f"dealer_{d}"] for d in DEALER_IDS) == 1.0
    assert [d for d in DEALER_IDS if r[f"with_{d}"]] == ["ALPHA", "CHARLIE"]
    bonds = row(panel="bonds", dealer="JULIET", others=())
    assert (bonds["panel_equities"], bonds["panel_bonds"]) == (0.0, 1.0)
    assert bonds["dealer_JULIET"] == 1.0
    assert sum(bonds[f"with_{d}"] for d in DEALER_IDS) == 0.0


def test_dealer_row_unknown_dealer_has_no_indicator() -> None:
    r = row(dealer="ZULU")
    assert sum(r[f"dealer_{d}"] for d in DEALER_IDS) == 0.0


@pytest.mark.parametrize(
    ("side", "axe", "expected"),
    [
        (Side.BUY, 5_000.0, 0.05),  # long axe, client buys: it wants to sell -> > 0
        (Side.SELL, 5_000.0, -0.05),  # long axe, client sells: against it
        (Side.SELL, -3_000.0, 0.03),  # short axe, client sells: it wants to buy
        (Side.BUY, -3_000.0, -0.03),
        (None, 5_000.0, 0.0),  # the client's side unknown
    ],
)
def test_axe_sign_convention(side: Side | None, axe: float, expected: float) -> None:
    r = row(side=side, axe=axe)
    assert r["axe_adv"] == pytest.approx(expected)
    assert r["side"] == side_feature(side)
    assert r["two_sided"] == 0.0


def test_two_sided_request_keeps_the_clients_side() -> None:
    # the dealers do not see the side; the desk does, and compares prices on it
    r = row(side=Side.SELL, axe=-3_000.0, two_sided=True)
    assert (r["side"], r["two_sided"]) == (-1.0, 1.0)
    assert r["axe_adv"] == pytest.approx(0.03)
    assert r["p_credit"] == 1.0 and r["short_axe"] == 0.0  # the defaults


def test_position_sign_convention_and_defaults() -> None:
    # long 1_000 and the client buys: keen -> +0.01; the client sells -> -0.01
    assert row(Side.BUY, position=1_000.0)["pos_side"] == pytest.approx(0.01)
    assert row(Side.SELL, position=1_000.0)["pos_side"] == pytest.approx(-0.01)
    assert row(None, position=1_000.0)["pos_side"] == 0.0
    r = row()
    # no quotes today: today's distance falls back to the history's
    assert r["dist_today_bps"] == r["dist_bps"] == 5.0
    assert r["log_quotes_today"] == 0.0
    assert r["notional_m"] == r["pos_side"] == 0.0


def test_side_feature() -> None:
    assert (side_feature(Side.BUY), side_feature(Side.SELL), side_feature(None)) == (1, -1, 0)


def _passive(**kw: object) -> PassiveOrderContext:
    args: dict[str, object] = dict(
        venue=VenueId("LIT1"),
        dark=True,
        improve=False,
        side=Side.SELL,
        spread_ticks=3.0,
        queue_ahead=400.0,
        qty=200.0,
        depth_ours=999.0,
        depth_other=1_999.0,
        venue_share=0.3,
        volume_rate=-5.0,
        vol_bps=12.0,
        touch_gap_ticks=-1.0,
        touch_imbalance=0.25,
        momentum_bps=-3.5,
        recent=RecentMarket(
            near_moves_ticks=(0.0, 0.5, 0.5, 1.0, -1.0, 2.5, -4.0),
            far_moves_ticks=(1.0, 1.0, 0.0, 0.0, -2.0, 3.0, 5.0),
            flow_imbalance=(0.5, 0.25, 0.0, -0.1, 0.2, -0.3),
            flow_share=(2.0, 1.0, 0.0, -0.5, 0.25, -0.125),
            levels_ours=(0.0, 1.0, 2.0, 3.0, 4.0),
            levels_other=(10.0, 20.0, 30.0, 40.0, 50.0),
        ),
    )
    args.update(kw)
    return PassiveOrderContext(**args)  # type: ignore[arg-type]


def test_fill_row_order_and_values() -> None:
    values = fill_row(_passive())
    expected = {
        "dark": 1.0,
        "improve": 0.0,
        "side": -1.0,  # sell
        "spread_ticks": 3.0,
        "queue_ahead_rel": 2.0,  # 400 / 200
        "log_queue_ahead": math.log(401.0),
        "log_qty": math.log(201.0),
        "depth_ratio": 0.5,  # (999 + 1) / (1999 + 1)
        "venue_share": 0.3,
        "log_volume_rate": 0.0,  # a negative volume rate counts as none
        "vol_bps": 12.0,
        "touch_gap_ticks": -1.0,
        "touch_imbalance": 0.25,
        "momentum_bps": -3.5,
        # our touch's move since 0.1, 0.3, 0.5, 1, 3, 10 and 30 s ago, ticks; the other's
        "near_move_0.1s": 0.0,
        "near_move_0.3s": 0.5,
        "near_move_0.5s": 0.5,
        "near_move_1s": 1.0,
        "near_move_3s": -1.0,
        "near_move_10s": 2.5,
        "near_move_30s": -4.0,
        "far_move_0.1s": 1.0,
        "far_move_0.3s": 1.0,
        "far_move_0.5s": 0.0,
        "far_move_1s": 0.0,
        "far_move_3s": -2.0,
        "far_move_10s": 3.0,
        "far_move_30s": 5.0,
        # the tape's net flow towards our fills over 1, 3, 10, 30, 120 and 600 s
        "flow_imbalance_1s": 0.5,
        "flow_imbalance_3s": 0.25,
        "flow_imbalance_10s": 0.0,
        "flow_imbalance_30s": -0.1,
        "flow_imbalance_120s": 0.2,
        "flow_imbalance_600s": -0.3,
        "flow_share_1s": 2.0,
        "flow_share_3s": 1.0,
        "flow_share_10s": 0.0,
        "flow_share_30s": -0.5,
        "flow_share_120s": 0.25,
        "flow_share_600s": -0.125,
        # depth of book from each touch outwards, log(1 + shares)
        **{f"log_level_ours_{k}": math.log1p(k) for k in range(5)},
        **{f"log_level_other_{k}": math.log1p(10.0 * (k + 1)) for k in range(5)},
    }
    assert tuple(expected) == FILL_FEATURES
    assert values == pytest.approx(list(expected.values()))
    lit_row = fill_row(_passive(dark=False, improve=True, side=Side.BUY))
    lit = dict(zip(FILL_FEATURES, lit_row, strict=True))
    assert (lit["dark"], lit["improve"], lit["side"]) == (0.0, 1.0, 1.0)
    # an empty order size divides by 1, not 0
    empty = dict(zip(FILL_FEATURES, fill_row(_passive(qty=0.0)), strict=True))
    assert empty["queue_ahead_rel"] == 400.0


def test_passive_context_round_trips_through_decision_inputs() -> None:
    ctx = _passive(volume_rate=25.0)
    inputs = {
        **ctx.as_inputs(),
        "spread_ticks": ctx.spread_ticks,
        "qty": ctx.qty,
        "volume_rate": ctx.volume_rate,
    }
    assert context_from_inputs("LIT1", Side.SELL, inputs) == ctx
    del inputs["venue_share"]
    assert context_from_inputs("LIT1", Side.SELL, inputs) is None  # an older record
    inputs = {**ctx.as_inputs(), "spread_ticks": 3.0, "qty": 200.0, "volume_rate": 25.0}
    del inputs["flow_share_600s"]
    assert context_from_inputs("LIT1", Side.SELL, inputs) is None  # before the tape's flow


# ---------------------------------------------------------------------- market context


def test_market_context_constant_path_has_no_vol() -> None:
    ctx = MarketContext.from_mids([100.0] * 61, 99.99, 100.01, 0.3)
    assert ctx.vol_bps == 0.0
    # (100.01 - 99.99) / 100 * 1e4 = 2 bps
    assert ctx.spread_bps == pytest.approx(2.0)
    assert ctx.tod == 0.3


def test_market_context_vol_of_alternating_mids() -> None:
    # log returns +a, -a, +a, -a with a = log(1.01): mean 0, population sd a
    ctx = MarketContext.from_mids([100.0, 101.0, 100.0, 101.0, 100.0], None, None, 0.0)
    assert ctx.vol_bps == pytest.approx(math.log(1.01) * 1e4)  # 99.503 bps


def test_market_context_ignores_missing_mids_and_bad_quotes() -> None:
    nan = float("nan")
    ctx = MarketContext.from_mids([nan, 100.0, 0.0, 101.0, nan, 100.0, 101.0, 100.0], 1, 1, 0)
    assert ctx.vol_bps == pytest.approx(math.log(1.01) * 1e4)
    assert ctx.spread_bps == 0.0  # locked book: no spread
    # fewer than 3 valid mids: no vol estimate
    assert MarketContext.from_mids([100.0, 105.0, nan], None, None, 0.0).vol_bps == 0.0
    assert MarketContext.from_mids([], 101.0, 100.0, 0.0).spread_bps == 0.0  # crossed
    assert MarketContext.from_mids([], None, 100.0, 0.0).spread_bps == 0.0


# ------------------------------------------------------------------------------ clipper


def test_clipper_fits_the_range_and_counts_per_feature() -> None:
    train = np.array([[0.0, 10.0, -1.0], [1.0, 20.0, 1.0], [0.5, 15.0, 0.0]])
    clip = Clipper.fit(("a", "b", "c"), train)
    assert clip.lo.tolist() == [0.0, 10.0, -1.0]
    assert clip.hi.tolist() == [1.0, 20.0, 1.0]
    x = np.array([[2.0, 15.0, 0.0], [-1.0, 25.0, 0.5], [0.5, 12.0, 1.0]])
    out = clip(x)
    assert out.tolist() == [[1.0, 15.0, 0.0], [0.0, 20.0, 0.5], [0.5, 12.0, 1.0]]
    assert clip.clipped == {"a": 2, "b": 1}
    assert clip.rows == 3
    assert x[0, 0] == 2.0  # the input is not modified
    # in range: nothing counted; counts accumulate over calls
    clip(train)
    assert clip.clipped == {"a": 2, "b": 1}
    clip(np.array([[0.0, 9.0, 3.0]]))
    assert clip.clipped == {"a": 2, "b": 2, "c": 1}
    assert clip.rows == 7


def test_clipper_does_not_count_missing_values() -> None:
    clip = Clipper.fit(("a", "b"), np.array([[0.0, 1.0], [1.0, 2.0]]))
    out = clip(np.array([[np.nan, 1.5], [0.5, 1.5]]))
    assert np.isnan(out[0, 0])  # still missing for the trees
    assert clip.clipped == {}


def test_clipper_fit_ignores_missing_training_values() -> None:
    clip = Clipper.fit(("a", "b"), np.array([[0.0, np.nan], [1.0, 2.0], [0.5, 1.0]]))
    assert clip.lo.tolist() == [0.0, 1.0]
    assert clip.hi.tolist() == [1.0, 2.0]
    assert clip(np.array([[0.5, 1.5]])).tolist() == [[0.5, 1.5]]


# ---------------------------------------------------------------------------- quotecost


def test_terms_layout() -> None:
    z = terms(0.05, 0.04, 3, 10.0, True, 0.09)
    # 1, axe in % of ADV, sqrt(size) in tenths, sqrt(size) * vol, n, vol, two-sided,
    # sqrt(recent same-side flow) * vol, then the dealer's cost shapes times vol: long
    # 5% of ADV and selling 4% to the client, it is left with 1%: its unwinding cost
    # falls by (0.05^1.5 - 0.01^1.5) / 0.04 per unit, and it takes on no risk
    unwind = (0.01**1.5 - 0.05**1.5) / 0.04
    want = [1.0, 5.0, 2.0, 2.0, 3.0, 10.0, 1.0, 3.0, 10.0 * unwind, 0.0]
    assert z.tolist() == pytest.approx(want)
    assert terms(0.0, 0.0, 1, 0.0, False)[-4:].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert terms(0.0, 0.0, 1, 10.0, False, -0.5)[7] == 0.0  # no flow on this side
    assert z.shape == (N_TERMS,)


def test_carry_shapes_of_flat_long_and_short_dealers() -> None:
    # flat: the square-root law's sqrt(size) and the premium's size
    assert carry_shapes(0.0, 0.04) == pytest.approx((0.2, 0.04))
    # short 5% and selling 4% more: short 9% after; both grow
    assert carry_shapes(-0.05, 0.04) == pytest.approx(
        ((0.09**1.5 - 0.05**1.5) / 0.04, (0.09**2 - 0.05**2) / 0.04)
    )
    # long exactly the size: the trade flattens it
    assert carry_shapes(0.04, 0.04) == pytest.approx((-(0.04**0.5), 0.0))
    assert carry_shapes(0.3, 0.0) == (0.0, 0.0)


def test_unseen_dealer_predicts_the_prior() -> None:
    t = QuoteCostTracker()
    # A = 2 I, b = 2 * (10, 0, ...): w = (10, 0, ...) -> 10 bps for any intercept-only z
    assert t.predict("ALPHA", terms(0.0, 0.0, 0, 0.0, False)) == pytest.approx(PRIOR_COST_BPS)
    assert t.sd("ALPHA") == 5.0  # sqrt of the prior mean squared error, 25


def _random_terms(rng: np.random.Generator) -> np.ndarray:
    return terms(
        float(rng.normal(0.0, 0.05)),
        float(rng.uniform(0.001, 0.2)),
        int(rng.integers(1, 9)),
        float(rng.uniform(2.0, 30.0)),
        bool(rng.random() < 0.2),
        float(rng.uniform(0.0, 0.1)) if rng.random() < 0.5 else 0.0,
    )


W_TRUE = np.array([4.0, -30.0, 10.0, 0.5, 0.6, 0.1, 3.0, 0.6, 0.4, 0.2])


def test_converges_to_a_known_linear_pricing() -> None:
    rng = np.random.default_rng(7)
    t = QuoteCostTracker()
    sds = []
    for i in range(6_000):
        z = _random_terms(rng)
        t.observe("ALPHA", z, float(z @ W_TRUE))
        if i + 1 in (300, 3_000, 6_000):
            sds.append(t.sd("ALPHA"))
    for _ in range(20):
        z = _random_terms(rng)
        assert t.predict("ALPHA", z) == pytest.approx(float(z @ W_TRUE), abs=0.05)
    # noiseless data: its errors shrink from the prior 5 bps towards nothing
    assert 5.0 > sds[0] > sds[1] > sds[2]
    assert sds[2] < 0.05
    # another dealer learned nothing from ALPHA's quotes
    z = terms(0.0, 0.0, 0, 0.0, False)
    assert t.predict("BRAVO", z) == pytest.approx(PRIOR_COST_BPS)
    assert t.sd("BRAVO") == 5.0


def test_sd_tracks_the_noise_of_its_quotes() -> None:
    rng = np.random.default_rng(3)
    t = QuoteCostTracker()
    for _ in range(3_000):
        z = _random_terms(rng)
        t.observe("ALPHA", z, float(z @ W_TRUE) + float(rng.normal(0.0, 2.0)))
        t.observe("BRAVO", z, float(z @ W_TRUE) + float(rng.normal(0.0, 0.5)))
    # running mean squared errors with weight 0.02: about the noise sd, loosely
    assert 1.4 < t.sd("ALPHA") < 2.8
    assert 0.3 < t.sd("BRAVO") < 0.8
    assert t.sd("BRAVO") < t.sd("ALPHA") < 5.0


def test_a_shock_shared_by_the_quotes_of_a_request_does_not_widen_the_spreads() -> None:
    # every quote of a request moves with the dealers' fair value, which the lit mid only
    # follows: a shock of sd 6 bps common to all, beside each dealer's own noise
    rng = np.random.default_rng(11)
    alone, together = QuoteCostTracker(), QuoteCostTracker()
    noise = {"ALPHA": 1.0, "BRAVO": 2.0, "CHARLIE": 3.0}
    for _ in range(3_000):
        z = _random_terms(rng)
        shock = float(rng.normal(0.0, 6.0))
        quotes = [
            (d, z, float(z @ W_TRUE) + shock + float(rng.normal(0.0, sd)))
            for d, sd in noise.items()
        ]
        together.observe_rfq(quotes)
        for d, zz, cost in quotes:
            alone.observe(d, zz, cost)
    for d, sd in noise.items():
        # learned one quote at a time, the shock swamps the spread; per request it
        # cancels: what is left is the dealer's own noise, loosely (exact only for equal
        # spreads: ALPHA's is overstated by the noisier others, CHARLIE's understated)
        assert alone.sd(d) > 5.0
        assert 0.7 * sd < together.sd(d) < 1.8 * sd, d
    assert together.sd("ALPHA") < together.sd("BRAVO") < together.sd("CHARLIE")
    # the prices themselves are learned alike either way (the shock averages out)
    z = _random_terms(rng)
    assert together.predict("ALPHA", z) == pytest.approx(alone.predict("ALPHA", z))


def test_a_lone_quote_learns_its_spread_from_its_own_error() -> None:
    one, plain = QuoteCostTracker(), QuoteCostTracker()
    z = terms(0.01, 0.04, 1, 8.0, False)
    one.observe_rfq([("ALPHA", z, 14.0)])
    plain.observe("ALPHA", z, 14.0)
    assert one.sd("ALPHA") == plain.sd("ALPHA")
    assert one.predict("ALPHA", z) == plain.predict("ALPHA", z)
    one.observe_rfq([])  # a request nobody priced teaches nothing
    assert one.sd("ALPHA") == plain.sd("ALPHA")
