"""The learned models behind the router's ports: FillPredictor, MlPanel and the warm-up
of their compiled code."""

from __future__ import annotations

import numpy as np
import pytest

from models.serving.artifacts import ServedModel
from models.serving.desk import DeskState
from models.serving.features import DEALER_IDS, MarketContext, fill_row
from models.serving.predictors import FillPredictor, MlPanel, warm_up
from router import app
from router.domain import DealerId, QuoteRequest, RfqId, RfqRequested, Side, Symbol, VenueId
from router.ports import PassiveOrderContext, RecentMarket

MARKET = MarketContext(vol_bps=4.0, spread_bps=3.0, tod=0.4, mid=100.0)
DEALERS = tuple(DealerId(d) for d in DEALER_IDS[:6])


def _served() -> tuple[dict[str, ServedModel], FillPredictor]:
    return app.MODELS.dealer_models(), app.MODELS.fill_model()


CALM = RecentMarket(levels_ours=(5_000.0,) * 5, levels_other=(4_000.0,) * 5)
RUSH = RecentMarket(
    near_moves_ticks=(1.0,) * 7, flow_imbalance=(0.5,) * 6, levels_ours=(800.0,) * 5
)


def _order(
    queue_ahead: float, dark: bool = False, recent: RecentMarket = CALM
) -> PassiveOrderContext:
    return PassiveOrderContext(
        venue=VenueId("DARKX" if dark else "LITA"),
        dark=dark,
        improve=False,
        side=Side.BUY,
        spread_ticks=2.0,
        queue_ahead=queue_ahead,
        qty=1_000.0,
        depth_ours=20_000.0,
        depth_other=15_000.0,
        venue_share=0.4,
        volume_rate=50.0,
        vol_bps=3.0,
        recent=recent,
    )


def test_fill_predictor_scores_each_order_in_its_order() -> None:
    _, fill = _served()
    assert fill.p_fill([]) == []
    # two orders of one decision share its recent past; another decision's differs
    orders = [_order(0.0), _order(50_000.0), _order(0.0, dark=True), _order(0.0, recent=RUSH)]
    rows_before = fill.model.clipper.rows
    p = fill.p_fill(orders)
    assert fill.model.clipper.rows == rows_before + 4  # each row counted once
    expected = fill.model.predict(np.array([fill_row(o) for o in orders]))
    assert p == expected.tolist()
    assert all(0.0 < x < 1.0 for x in p)
    assert p[3] != p[0]  # the recent past is each order's own
    assert p[0] > p[1]  # nobody ahead fills sooner than behind a long queue


def _panel(explore: float) -> MlPanel:
    dealer, _ = _served()
    desk = DeskState(DEALERS, "equities", adv=2_000_000.0)
    return MlPanel(dealer, desk, lambda: MARKET, lambda ts: 100.0, explore=explore)


def test_panel_asks_the_dealers_most_likely_to_quote_best() -> None:
    panel = _panel(explore=0.0)
    chosen, scores = panel.select(Side.BUY, 100_000, 3, np.random.default_rng(0))
    assert len(chosen) == len(set(chosen)) == 3 and set(chosen) <= set(DEALERS)
    p_best = {d: scores[f"p_best_{d}"] for d in DEALERS}
    ranked = sorted(DEALERS, key=lambda d: (-p_best[d], d))
    assert chosen == ranked[:3]
    assert 0.0 < scores["p_any_quote"] <= 1.0 and scores["explore"] == 0.0
    # a panel larger than the dealers asks every one of them
    everyone, _ = panel.select(Side.SELL, 100_000, 99, np.random.default_rng(0))
    assert sorted(everyone) == sorted(DEALERS)
    with pytest.raises(ValueError, match="at least one dealer"):
        panel.select(Side.BUY, 100_000, 0, np.random.default_rng(0))


def test_panel_explores_a_seat_when_told_to() -> None:
    top, _ = _panel(explore=0.0).select(Side.BUY, 100_000, 3, np.random.default_rng(0))
    chosen, scores = _panel(explore=1.0).select(Side.BUY, 100_000, 3, np.random.default_rng(0))
    assert scores["explore"] == 1.0
    assert chosen[:2] == top[:2] and chosen[2] not in top


def test_panel_learns_an_event_as_it_arrives_not_in_the_next_decision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    panel = _panel(explore=0.0)
    before, _ = panel.select(Side.BUY, 100_000, 3, np.random.default_rng(0))
    rid = RfqId("R1")
    request = QuoteRequest(rid, Symbol("QDI"), Side.BUY, 100_000, tuple(before), 10**10)
    panel.observe(RfqRequested(10**9, request))
    # the desk's per-dealer arrays were rebuilt by `observe`: the decision reads only them
    monkeypatch.setattr(panel.desk.tracker, "stats", _no_call)
    monkeypatch.setattr(panel.desk.tracker, "score", _no_call)
    chosen, scores = panel.select(Side.BUY, 100_000, 3, np.random.default_rng(0))
    assert len(chosen) == 3 and 0.0 < scores["p_any_quote"] <= 1.0


def _no_call(*args: object) -> None:
    raise AssertionError("the desk's history read in a decision")


def test_warm_up_counts_nothing() -> None:
    dealer, fill = _served()
    models = {**dealer, "fill": fill.model}
    before = {k: (m.clipper.rows, m.clipper.counts.copy()) for k, m in models.items()}
    warm_up(models)
    for k, m in models.items():
        assert m.clipper.rows == before[k][0]
        assert np.array_equal(m.clipper.counts, before[k][1])


def test_a_monitored_panel_scores_the_panel_as_asked() -> None:
    dealer, _ = _served()
    plain = _panel(explore=0.0)
    desk = DeskState(DEALERS, "equities", adv=2_000_000.0)
    watched = MlPanel(dealer, desk, lambda: MARKET, lambda ts: 100.0, explore=0.0, monitored=True)
    chosen, scores = watched.select(Side.BUY, 100_000, 3, np.random.default_rng(0))
    same, plain_scores = plain.select(Side.BUY, 100_000, 3, np.random.default_rng(0))
    # the same choice and scores, plus each asked dealer's P(respond) and P(best) in the
    # panel as asked: the rows training builds of that request
    assert chosen == same
    assert {
        k: v for k, v in scores.items() if not k.startswith(("p_respond_", "p_best_asked_"))
    } == (plain_scores)
    rows = desk.rows(100_000, Side.BUY, chosen, MARKET)
    p_respond = dealer["respond"].predict(rows)
    p_best = dealer["best"].predict(rows)
    for i, d in enumerate(chosen):
        assert scores[f"p_respond_{d}"] == round(float(p_respond[i]), 4)
        assert scores[f"p_best_asked_{d}"] == round(float(p_best[i]), 4)
    assert not any(k.startswith("p_respond_") for k in plain_scores)  # off the simulations


def test_a_withdrawn_panel_asks_the_heuristics_dealers_and_scores_in_the_shadow() -> None:
    dealer, _ = _served()
    why = ["drift alert: dealer: ECE of P(best quote) 0.2"]
    desk = DeskState(DEALERS, "equities", adv=2_000_000.0)
    panel = MlPanel(
        dealer, desk, lambda: MARKET, lambda ts: 100.0, withdrawn=lambda: why[0], monitored=True
    )
    rows_before = dealer["best"].clipper.rows
    chosen, scores = panel.select(Side.BUY, 100_000, 3, np.random.default_rng(5))
    # exactly what the heuristic (the desk's tracker of the same dealers) picks with the
    # same random stream, and its scores beside the models'
    twin = DeskState(DEALERS, "equities", adv=2_000_000.0)
    expected, heuristic = twin.tracker.select(Side.BUY, 100_000, 3, np.random.default_rng(5))
    assert chosen == expected
    assert scores["fallback"] == 1.0 and scores["explore"] == heuristic["explore"]
    assert {d: scores[f"heuristic_{d}"] for d in DEALERS} == {d: heuristic[d] for d in DEALERS}
    assert all(f"p_best_{d}" in scores for d in DEALERS)  # the models scored (the shadow)
    assert all(f"p_respond_{d}" in scores for d in chosen)
    assert dealer["best"].clipper.rows > rows_before
    why[0] = ""  # given back: the models choose again
    chosen2, scores2 = panel.select(Side.BUY, 100_000, 3, np.random.default_rng(5))
    assert "fallback" in scores and "fallback" not in scores2
    ranked = sorted(DEALERS, key=lambda d: (-scores2[f"p_best_{d}"], d))
    if scores2["explore"] == 0.0:
        assert chosen2 == ranked[:3]
