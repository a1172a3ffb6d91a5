"""`ml` routing: the learned models behind the smart router's tactics, over whole
episodes (the tactics alone: test_lit.py and test_signals.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import router.app as app
from models.serving import artifacts
from router.app import Episode, apply_overrides
from router.cli import main
from router.domain import ChildOrderSent, DecisionRecorded, RfqRequested
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


def test_missing_models_stop_sor_ml_with_the_file_and_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(artifacts, "MODELS_DIR", tmp_path / "nothing")
    app.MODELS.clear()
    try:
        code = main(["simulate", "--scenario", "calm", "--strategies", "sor-ml"])
    finally:
        app.MODELS.clear()
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "dealer.meta.json" in err and "blockroute train dealer" in err


def test_evaluate_models_json_follows_the_contract(tmp_path, monkeypatch, capsys):
    import models.training.evaluate as ev

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


@pytest.mark.requires_extra("ray", "ray")
def test_evaluate_models_on_ray_gives_the_local_document(monkeypatch):
    import models.training.evaluate as ev

    # read by this process only (the jobs carry the oracle's settings with them): Ray's
    # workers, fresh processes, need not see them
    monkeypatch.setattr(ev, "SCENARIOS", ("illiquid-bond",))
    monkeypatch.setattr(ev, "ORACLE_PATHS", 8)
    monkeypatch.setattr(ev, "ORACLE_EVERY", 6)
    monkeypatch.setattr(ev, "DEALER_WARMUP_DAYS", 1)
    run = dict(seed=910_000, dealer_days=1, fill_episodes=2, replicates=50)
    on_ray = ev.evaluate(**run, workers=2, executor="ray")
    assert json.dumps(on_ray) == json.dumps(ev.evaluate(**run))


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
