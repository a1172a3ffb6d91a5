"""Backtests (router/backtest.py): aggregation, pairing, and processes that change nothing."""

import math

import pytest

from router.backtest import EpisodeOutcome, aggregate, backtest
from router.config import DEFAULT_CONFIG_DIR
from router.domain import DomainError


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


def test_backtest_refuses_bad_input_before_any_work():
    with pytest.raises(DomainError, match="unknown strategy"):
        backtest(["calm"], ["twap", "nope"], 1, 0, 1, DEFAULT_CONFIG_DIR)
    with pytest.raises(Exception, match="unknown scenario"):
        backtest(["calm", "mars"], ["twap"], 1, 0, 1, DEFAULT_CONFIG_DIR)
