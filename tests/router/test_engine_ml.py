"""`ml` routing: the learned models behind the smart router's tactics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import router.app as app
from models import artifacts
from router.app import Episode, apply_overrides
from router.cli import main
from router.domain import ChildOrderSent, DecisionRecorded, RfqRequested, Side, Symbol
from router.engine import (
    EngineConfig,
    ParentExecution,
    book_levels,
    recent_market,
    tape_flow,
    touch_moves,
)
from router.ports import FLOW_WINDOWS_S, TOUCH_LAGS_S, MarketSnapshot, PassiveOrderContext
from simulators.scenario import load_scenario

CONTEXT_KEYS = {
    "dark",
    "improve",
    "queue_ahead",
    "depth_ours",
    "depth_other",
    "venue_share",
    "vol30_bps",
    "touch_gap_ticks",
    "touch_imbalance",
    "momentum_bps",
    "spread_ticks",
    "volume_rate",
    "qty",
    "near_move_0.1s",
    "far_move_30s",
    "flow_imbalance_1s",
    "flow_share_600s",
    "level_ours_0",
    "level_other_4",
}


@pytest.fixture(scope="module")
def bond_ml():
    sc = apply_overrides(load_scenario("illiquid-bond"), 600_000, None, 3_600.0)
    return Episode(sc, 1001).run("sor-ml")


def test_sor_ml_completes_and_logs_what_its_models_saw(bond_ml):
    run = bond_ml
    assert run.tca.completion == 1.0 and run.tca.filled_qty == run.parent.qty
    decisions = {d.decision_id: d for d in run.events if isinstance(d, DecisionRecorded)}
    passive = [e.child for e in run.events if isinstance(e, ChildOrderSent) and e.child.post_only]
    assert passive
    for c in passive:  # every passive order logs the context the fill model scores
        assert set(decisions[f"{c.child_id}-d"].inputs) >= CONTEXT_KEYS
    requests = [d for d in decisions.values() if d.chosen.startswith("request quotes")]
    assert requests
    for d in requests:  # the panel was chosen on the dealer models' P(best quote)
        assert {f"score_p_best_{x}" for x in ("ALPHA", "JULIET")} <= set(d.alternatives)
        assert 0.0 <= d.alternatives["score_p_any_quote"] <= 1.0
    assert [e.request.dealers for e in run.events if isinstance(e, RfqRequested)]
    # the market's recent past as the passive orders (lit and dark) saw it moved: the
    # logged series are not the defaults
    logged = [d.inputs for d in decisions.values() if "near_move_30s" in d.inputs]
    assert len(logged) > len(passive)
    assert any(x["near_move_30s"] != 0.0 for x in logged)
    assert any(x["far_move_30s"] != 0.0 for x in logged)
    assert any(x["flow_imbalance_600s"] != 0.0 for x in logged)
    assert all(x["level_ours_0"] > 0 for x in logged)  # our side's touch has shares


def _snap(bid: int | None, ask: int | None, **kw: object) -> MarketSnapshot:
    args: dict[str, object] = dict(
        ts_ns=0,
        symbol=Symbol("X"),
        tick_size=0.01,
        bid_ticks=bid,
        ask_ticks=ask,
        bid_depth=0,
        ask_depth=0,
        venues=(),
        last_ticks=None,
        volume=0,
        vwap_num=0.0,
    )
    args.update(kw)
    return MarketSnapshot(**args)  # type: ignore[arg-type]


def test_touch_moves_are_signed_towards_the_orders_fills():
    snap = _snap(100, 103)
    past = [(101, 103), (100, 101), None]
    # a resting buy fills when prices fall: its bid fell 1 tick (+1), the ask rose 2 (-2)
    assert touch_moves(snap, past, Side.BUY) == ((1.0, 0.0, 0.0), (0.0, -2.0, 0.0))
    # a resting sell rests on the ask (near) and fills when prices rise
    assert touch_moves(snap, past, Side.SELL) == ((0.0, 2.0, 0.0), (-1.0, 0.0, 0.0))
    assert touch_moves(_snap(None, 103), past, Side.BUY) == ((0.0,) * 3, (0.0,) * 3)


def test_tape_flow_counts_the_takers_that_fill_a_resting_order():
    flows = [(-30, 60), (0, 0), (10, 100), (0, 10), (-200, 1_000), (400, 4_000)]
    imbalance, share = tape_flow(flows, Side.BUY, 10.0)
    # sellers (negative signed volume) hit a resting buy
    assert imbalance == pytest.approx((0.5, 0.0, -0.1, 0.0, 0.2, -0.1))
    # net flow / (10 shares/s * window)
    assert share == pytest.approx((3.0, 0.0, -0.1, 0.0, 200 / 1_200, -400 / 6_000))
    sell_imbalance, sell_share = tape_flow(flows, Side.SELL, 0.0)
    assert sell_imbalance == pytest.approx(tuple(-x for x in imbalance))
    assert sell_share == (0.0,) * len(FLOW_WINDOWS_S)  # no volume rate yet: no scale


def test_book_levels_put_the_orders_side_first_and_pad_a_short_book():
    snap = _snap(100, 103, bid_levels=(5, 6, 7, 8, 9), ask_levels=(1, 2))
    assert book_levels(snap, Side.BUY) == ((5.0, 6.0, 7.0, 8.0, 9.0), (1.0, 2.0, 0.0, 0.0, 0.0))
    assert book_levels(snap, Side.SELL)[0] == (1.0, 2.0, 0.0, 0.0, 0.0)


def test_recent_market_reads_the_feed_at_the_ports_lags_and_windows():
    class Feed:
        def __init__(self) -> None:
            self.asked: list[tuple[object, ...]] = []

        def touches_before(self, lags_s):
            self.asked.append(tuple(lags_s))
            return [(99, 103)] * len(lags_s)

        def flow_over(self, windows_s):
            self.asked.append(tuple(windows_s))
            return [(-w, 2 * w) for w in windows_s]

    feed = Feed()
    got = recent_market(feed, _snap(100, 103, bid_levels=(1,) * 5), Side.BUY, 4.0)  # type: ignore[arg-type]
    assert feed.asked == [TOUCH_LAGS_S, FLOW_WINDOWS_S]
    assert got.near_moves_ticks == (-1.0,) * len(TOUCH_LAGS_S)  # the bid rose: away
    assert got.flow_imbalance == (0.5,) * len(FLOW_WINDOWS_S)
    assert got.flow_share == (0.25,) * len(FLOW_WINDOWS_S)
    assert got.levels_ours == (1.0,) * 5 and got.levels_other == (0.0,) * 5


class _FixedFill:
    def __init__(self, p: float) -> None:
        self.p = p
        self.seen: list[PassiveOrderContext] = []

    def p_fill(self, orders):
        self.seen.extend(orders)
        return [self.p for _ in orders]


def _context(queue: float) -> PassiveOrderContext:
    return PassiveOrderContext(
        venue="LITA",  # type: ignore[arg-type]
        dark=False,
        improve=False,
        side=app.Side.SELL,
        spread_ticks=2.0,
        queue_ahead=queue,
        qty=1_000.0,
        depth_ours=5_000.0,
        depth_other=5_000.0,
        venue_share=0.5,
        volume_rate=30.0,
        vol_bps=2.0,
    )


def test_the_fill_model_sets_the_outflow_prior():
    # P(D > Q) = exp(-Q / mean): with P = exp(-1) behind 1,500 shares, mean = 1,500 over
    # the 30 s interval, i.e. 50 shares/s; outside (0.01, 0.99) the volume prior stays
    ex = ParentExecution.__new__(ParentExecution)
    ex.config = EngineConfig(routing="ml")
    ex._fill_model = model = _FixedFill(math.exp(-1.0))
    joins = [_context(1_500.0), _context(0.0), _context(3_000.0)]
    assert ex._outflow_priors(joins, [7.0, 8.0, 9.0]) == pytest.approx([50.0, 8.0, 100.0])
    # one call for the decision, and nobody ahead: nothing to learn, nothing asked
    assert model.seen == [joins[0], joins[2]]
    ex._fill_model = _FixedFill(0.999)
    assert ex._outflow_priors(joins[:1], [7.0]) == [7.0]
    ex._fill_model = None
    assert ex._outflow_priors(joins[:1], [7.0]) == [7.0]


def test_missing_models_stop_sor_ml_with_the_file_and_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(artifacts, "MODELS_DIR", tmp_path / "nothing")
    app._served_models.cache_clear()
    try:
        code = main(["simulate", "--scenario", "calm", "--strategies", "sor-ml"])
    finally:
        app._served_models.cache_clear()
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "dealer.meta.json" in err and "blockroute train dealer" in err


def test_evaluate_models_json_follows_the_contract(tmp_path, monkeypatch, capsys):
    import models.evaluate as ev

    monkeypatch.setattr(ev, "SCENARIOS", ("illiquid-bond",))
    monkeypatch.setattr(ev, "ORACLE_PATHS", 8)
    monkeypatch.setattr(ev, "ORACLE_EVERY", 6)
    monkeypatch.setattr(ev, "DEALER_WARMUP_DAYS", 1)
    doc = ev.evaluate(seed=910_000, dealer_days=1, fill_episodes=2, replicates=50)
    for name in ("dealer", "fill"):
        m = doc[name]
        assert set(m) >= {"auc", "oracle_auc", "brier", "ece", "n"}
        assert m["n"] > 0 and 0.5 < m["oracle_auc"] <= 1.0 and 0.0 <= m["brier"] <= 1.0
        assert m["ratio"] == m["auc"] / m["oracle_auc"]
    # the spread comes from resampling whole episodes: 2 of them for the fill model, one
    # scored day for the dealer model (so no spread)
    assert doc["fill"]["clusters"] == 2 and doc["fill"]["ratio_sd"] > 0
    lo, hi = doc["fill"]["ratio_ci95"]
    assert lo < hi
    assert doc["dealer"]["clusters"] == 1 and doc["dealer"]["ratio_sd"] < 1e-12
    # the same rows again, within strata of the hidden fair price (strata of one class
    # are left out)
    given = doc["fill_given_fair"]
    assert 0 < given["n"] <= doc["fill"]["n"] and given["fair_gap_sd_ticks"] > 0
    assert 0.0 <= given["auc"] <= 1.0 and 0.0 <= given["oracle_auc"] <= 1.0
    json.dumps(doc)  # plain JSON
    # episodes and days carry their own seeds: the same rows and scores on 2 processes
    parallel = ev.evaluate(seed=910_000, dealer_days=1, fill_episodes=2, replicates=50, workers=2)
    assert json.dumps(parallel) == json.dumps(doc)


def test_bench_decide_reports_latencies():
    from bench.decide import run_decide_bench

    doc = run_decide_bench(iterations=20)
    for part in ("slicer", "onnx_policy", "fill_model", "dealer_panel", "no_rfq", "decision"):
        assert 0 < doc[part]["p50_us"] <= doc[part]["p99_us"] <= doc[part]["max_us"]
    assert doc["lit_options"] == 3 and doc["dealers"] == 8
    # each decision's no-RFQ part is a part of it
    assert doc["no_rfq"]["p50_us"] < doc["decision"]["p50_us"]
    assert doc["no_rfq"]["max_us"] < doc["decision"]["max_us"]
    whole = doc["decision"]
    assert (doc["n"], doc["p50_us"], doc["p99_us"]) == (20, whole["p50_us"], whole["p99_us"])


def test_artifacts_are_regenerable_from_their_metadata():
    for family in ("dealer", "fill"):
        meta = json.loads((Path(artifacts.MODELS_DIR) / f"{family}.meta.json").read_text())
        assert meta["created_by"].startswith(f"blockroute train {family}")
        for spec in meta["models"].values():
            assert (Path(artifacts.MODELS_DIR) / spec["file"]).stat().st_size > 0
