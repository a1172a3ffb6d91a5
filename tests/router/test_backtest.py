"""Backtests (router/backtest.py): aggregation, pairing, processes that change nothing,
and the mirror (--both-sides): the same market with the parent's side flipped."""

import dataclasses
import math

import numpy as np
import pytest

import router.app as app
import router.backtest as bt
from router.backtest import EpisodeOutcome, aggregate, backtest
from router.config import DEFAULT_CONFIG_DIR
from router.domain import DomainError, Side

# the cheapest scenario to simulate (a thin bond book): about a second an episode
BOND = "illiquid-bond"


def outcome(seed, twap, sor, oracle):
    return EpisodeOutcome(
        "calm",
        seed,
        {"twap": twap, "sor": sor, "hindsight": oracle},
        {"twap": 1.0, "sor": 1.0, "hindsight": 1.0},
    )


def test_aggregate_means_stderrs_and_paired_differences():
    outs = [outcome(1, 10.0, 7.0, 2.0), outcome(2, 20.0, 16.0, 4.0), outcome(3, 30.0, 28.0, 6.0)]
    doc = aggregate(outs, ["calm"], ["twap", "sor"])
    rows = {r["strategy"]: r for r in doc["rows"]}
    assert rows["twap"]["is_bps_mean"] == 20.0
    assert rows["twap"]["is_bps_std"] == pytest.approx(10.0)
    assert rows["twap"]["is_bps_stderr"] == pytest.approx(10.0 / math.sqrt(3))
    (p,) = doc["paired"]
    # differences -3, -4, -2: the market's common moves cancel in the pairing
    assert p["diff_mean_bps"] == pytest.approx(-3.0)
    assert p["diff_stderr_bps"] == pytest.approx(1.0 / math.sqrt(3))
    assert doc["hindsight"][0]["is_bps_mean"] == 4.0
    gaps = {g["strategy"]: g["share"] for g in doc["gap_captured"]}
    assert gaps["twap"] == 0.0 and gaps["sor"] == pytest.approx(3.0 / 16.0)


def test_two_workers_give_the_same_rows_as_one():
    def run(workers):
        doc = backtest(["calm"], ["twap", "sor"], 2, 70, workers, DEFAULT_CONFIG_DIR, db_url=None)
        return doc["rows"], doc["paired"]

    assert run(1) == run(2)


def test_the_episodes_read_the_desk_history_of_each_panel_only_if_a_strategy_asks_dealers():
    from simulators.scenario import load_scenario

    scenarios = {name: load_scenario(name) for name in ("calm", BOND)}
    assert bt.desk_histories_needed(scenarios, ["twap", "ac"]) == []
    needed = bt.desk_histories_needed(scenarios, ["twap", "sor"])
    assert needed == [
        ("calm", scenarios["calm"].dealer_panel),
        (BOND, scenarios[BOND].dealer_panel),
    ]


def test_a_desk_history_handed_over_is_not_simulated_again(monkeypatch):
    from router import app

    def simulate(*key):
        raise AssertionError(f"simulated {key}")

    monkeypatch.setattr(app, "_DESK_HISTORIES", {})
    monkeypatch.setattr(app, "_simulate_desk_history", simulate)
    history = object()
    app.adopt_desk_history("calm", "equities", history)  # type: ignore[arg-type]
    assert app.desk_history("calm", "equities") is history


def test_backtest_refuses_bad_input_before_any_work():
    with pytest.raises(DomainError, match="unknown strategy"):
        backtest(["calm"], ["twap", "nope"], 1, 0, 1, DEFAULT_CONFIG_DIR)
    with pytest.raises(Exception, match="unknown scenario"):
        backtest(["calm", "mars"], ["twap"], 1, 0, 1, DEFAULT_CONFIG_DIR)


def test_a_models_folder_is_read_before_any_work_by_the_strategies_that_need_it(tmp_path):
    from models.serving.artifacts import ModelError

    # a strategy on the models: the folder's first missing artifact is named
    with pytest.raises(ModelError, match=r"dealer\.meta\.json: metadata missing"):
        backtest(["calm"], ["twap", "sor-ml"], 1, 0, 1, DEFAULT_CONFIG_DIR, models_dir=tmp_path)
    assert bt.models_of(tmp_path) is bt.models_of(str(tmp_path))  # one registry a folder
    assert bt.models_of(None) is app.MODELS


def sided(seed, side, twap, sor, oracle):
    o = outcome(seed, twap, sor, oracle)
    return EpisodeOutcome(o.scenario, o.seed, o.is_bps, o.completion, side=side)


def test_aggregate_per_side_and_pooled():
    outs = [
        sided(1, "buy", 10.0, 7.0, 2.0),
        sided(1, "sell", -6.0, -8.0, -9.0),
        sided(2, "buy", 20.0, 16.0, 4.0),
        sided(2, "sell", -2.0, -5.0, -7.0),
    ]
    doc = aggregate(outs, ["calm"], ["twap", "sor"], both_sides=True)
    rows = {(r["side"], r["strategy"]): r for r in doc["rows"]}
    assert [(r["side"], r["strategy"]) for r in doc["rows"]] == [
        (side, st) for side in ("buy", "sell", "both") for st in ("twap", "sor")
    ]
    assert rows["buy", "twap"]["is_bps_mean"] == 15.0 and rows["buy", "twap"]["episodes"] == 2
    assert rows["sell", "twap"]["is_bps_mean"] == -4.0
    both = rows["both", "twap"]
    assert both["episodes"] == 4 and both["is_bps_mean"] == pytest.approx((15.0 - 4.0) / 2)
    assert both["is_bps_std"] == pytest.approx(np.std([10, -6, 20, -2], ddof=1))
    # the two sides of a seed share one market: the standard error is over the seeds'
    # means (2 and 9), not over 4 independent episodes
    assert both["is_bps_stderr"] == pytest.approx(np.std([2.0, 9.0], ddof=1) / math.sqrt(2))
    paired = {p["side"]: p for p in doc["paired"]}
    assert paired["buy"]["diff_mean_bps"] == pytest.approx(-3.5)
    assert paired["sell"]["diff_mean_bps"] == pytest.approx(-2.5)
    assert paired["both"]["diff_mean_bps"] == pytest.approx(-3.0) and paired["both"]["n"] == 4
    hind = {h["side"]: h["is_bps_mean"] for h in doc["hindsight"]}
    assert hind == pytest.approx({"buy": 3.0, "sell": -8.0, "both": -2.5})
    gaps = {(g["side"], g["strategy"]): g["share"] for g in doc["gap_captured"]}
    assert gaps["buy", "sor"] == pytest.approx(3.5 / 12.0)
    assert gaps["both", "twap"] == 0.0
    # without both_sides: the rows of old, no side key, whatever the outcomes carry
    plain = aggregate(outs[::2], ["calm"], ["twap", "sor"])
    assert all("side" not in r for k in ("rows", "paired", "hindsight") for r in plain[k])
    assert (
        plain["rows"]
        == aggregate(
            [outcome(1, 10.0, 7.0, 2.0), outcome(2, 20.0, 16.0, 4.0)], ["calm"], ["twap", "sor"]
        )["rows"]
    )


def test_the_mirror_is_the_same_market_with_the_side_flipped(monkeypatch):
    episodes = []

    class Recorded(bt.Episode):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            episodes.append(self)

    monkeypatch.setattr(bt, "Episode", Recorded)
    backtest([BOND], ["twap"], 1, 70, 1, DEFAULT_CONFIG_DIR, hindsight=False, both_sides=True)
    buy, sell = episodes
    assert (buy.parent.side, sell.parent.side) == (Side.BUY, Side.SELL)
    assert (buy.seed, buy.parent.qty) == (sell.seed, sell.parent.qty)
    assert buy.arrival_mid == sell.arrival_mid
    a, b = buy.unimpacted_path, sell.unimpacted_path  # the market with no parent
    for f in ("times_s", "bid", "ask"):
        assert np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True)


def test_both_sides_rows_are_the_same_on_two_workers_as_on_one():
    def run(workers):
        return backtest(
            [BOND], ["twap", "sor"], 2, 70, workers, DEFAULT_CONFIG_DIR, both_sides=True
        )

    keys = ("rows", "paired", "hindsight", "gap_captured", "episodes")
    doc, one = run(2), run(1)
    assert {k: doc[k] for k in keys} == {k: one[k] for k in keys}
    # every episode, seed by seed, both sides of each
    assert [(e["seed"], e["side"]) for e in doc["episodes"]] == [
        (70, "buy"),
        (70, "sell"),
        (71, "buy"),
        (71, "sell"),
    ]
    rows = {(r["side"], r["strategy"]): r for r in doc["rows"]}
    assert set(rows) == {(sd, st) for sd in ("buy", "sell", "both") for st in ("twap", "sor")}
    for st in ("twap", "sor"):
        buy, sell, both = (rows[sd, st] for sd in ("buy", "sell", "both"))
        assert buy["episodes"] == sell["episodes"] == 2 and both["episodes"] == 4
        assert both["is_bps_mean"] == pytest.approx((buy["is_bps_mean"] + sell["is_bps_mean"]) / 2)
        assert buy["is_bps_mean"] != sell["is_bps_mean"]
    assert {p["side"] for p in doc["paired"]} == {"buy", "sell", "both"}
    assert doc["meta"]["both_sides"] is True


def test_side_overrides_the_scenarios_and_excludes_both_sides(monkeypatch):
    with pytest.raises(DomainError, match="--side and --both-sides"):
        backtest([BOND], ["twap"], 1, 0, 1, DEFAULT_CONFIG_DIR, side=Side.BUY, both_sides=True)
    seen = []
    run = bt.run_episode

    def spy(job):
        out = run(job)
        seen.append(out.side)
        return out

    monkeypatch.setattr(bt, "run_episode", spy)
    doc = backtest([BOND], ["twap"], 1, 0, 1, DEFAULT_CONFIG_DIR, hindsight=False, side=Side.SELL)
    assert seen == ["sell"]  # the bond scenario buys
    assert doc["meta"]["side"] == "sell" and "side" not in doc["rows"][0]


def test_rows_show_the_venue_mix_and_what_the_dealers_made():
    def with_mix(seed, rfq, pnl, notional):
        o = outcome(seed, 10.0, 8.0, 5.0)
        mix = {"lit": 1.0 - rfq, "dark": 0.0, "rfq": rfq}
        return dataclasses.replace(
            o,
            venue_mix={"twap": {"lit": 1.0, "dark": 0.0, "rfq": 0.0}, "sor": mix},
            dealer_pnl={"twap": (0.0, 0.0), "sor": (pnl, notional)},
        )

    outs = [with_mix(1, 0.5, 300.0, 1e6), with_mix(2, 0.1, -100.0, 1e6)]
    doc = aggregate(outs, ["calm"], ["twap", "sor"])
    twap, sor = doc["rows"]
    assert twap["venue_mix_mean"] == {"dark": 0.0, "lit": 1.0, "rfq": 0.0}
    assert twap["dealer_pnl_bps"] is None  # it never traded with a dealer
    assert sor["venue_mix_mean"]["rfq"] == pytest.approx(0.3)
    # pooled over the notional: (300 - 100) / 2M = 1 bps
    assert sor["dealer_pnl_bps"] == pytest.approx(1.0)


def test_replay_rows_sum_the_replay_counts_and_pool_the_passive_fills():
    def replayed(seed, taken, sent, filled, markout):
        o = outcome(seed, 10.0, 8.0, 5.0)
        counts = {"real_orders_taken": taken, "real_trades_unmatched_because_of_clients": 1}
        marks = {"1s": markout, "10s": None}
        passive = {"sent": sent, "filled": filled, "fill_rate": None, "markouts_bps": marks}
        return dataclasses.replace(
            o,
            replay={"twap": counts, "sor": counts},
            passive_lit={"twap": {**passive, "sent": 0, "filled": 0}, "sor": passive},
        )

    outs = [replayed(1, 2, 100, 30, -1.0), replayed(2, 5, 100, 10, 3.0)]
    doc = aggregate(outs, ["calm"], ["twap", "sor"])
    twap, sor = doc["rows"]
    assert sor["replay"] == {
        "real_orders_taken": 7,
        "real_trades_unmatched_because_of_clients": 2,
    }
    # the fill rate of the pooled quantities; markouts weighted by the maker quantity
    assert sor["passive_lit"]["sent"] == 200 and sor["passive_lit"]["filled"] == 40
    assert sor["passive_lit"]["fill_rate"] == pytest.approx(0.2)
    assert sor["passive_lit"]["markouts_bps"] == {"1s": pytest.approx(0.0), "10s": None}
    assert twap["passive_lit"]["fill_rate"] is None  # it rested nothing


def test_simulated_rows_carry_no_replay_columns():
    doc = aggregate([outcome(1, 10.0, 8.0, 5.0)], ["calm"], ["twap", "sor"])
    for row in doc["rows"]:
        assert "replay" not in row and "passive_lit" not in row
