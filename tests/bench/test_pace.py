"""`blockroute bench pace`: sor-ml's routing on fixed paces, and the hindsight best."""

from __future__ import annotations

import numpy as np
import pytest

from bench.pace import JUMP_FOLLOW_STEPS, RULES, run_pace_study
from router.strategies.learned import OBS_NAMES, OBS_SIZE


def _obs(**features: float) -> np.ndarray:
    obs = np.zeros(OBS_SIZE, dtype=np.float32)
    for name, value in features.items():
        obs[OBS_NAMES.index(name)] = value
    return obs


def test_fixed_paces_are_paired_against_the_twap_line_and_hindsight_is_a_floor() -> None:
    doc = run_pace_study(["calm"], 1, actions=(0.0, 1.0))
    rows = {r["side"]: r for r in doc["rows"]}
    assert set(rows) == {"buy", "sell", "both"} and rows["both"]["episodes"] == 2
    for row in rows.values():
        even, lead = row["by_action"]
        assert even["vs_even_pace"]["mean_bps"] == 0.0
        best = row["hindsight_best"]["is"]["mean_bps"]
        # the per-episode best of the paces costs no more than any one of them
        assert best <= min(even["is"]["mean_bps"], lead["is"]["mean_bps"]) + 1e-9
    # leading the TWAP line trades earlier: on the same market it is a different run
    assert (
        rows["buy"]["by_action"][1]["is"]["mean_bps"]
        != rows["buy"]["by_action"][0]["is"]["mean_bps"]
    )


def test_the_twap_line_is_required() -> None:
    with pytest.raises(ValueError, match="include 0"):
        run_pace_study(["calm"], 1, actions=(1.0,))


@pytest.mark.parametrize("move, pace", [(-4.0, 1.0), (4.0, -1.0)])
def test_jump_follow_leads_after_an_adverse_jump_and_lags_after_a_kind_one(move, pace):
    rule = RULES["jump-follow"]()
    assert rule(_obs(return_5m=2.5)) == 0.0  # a move, not a jump: the TWAP line
    paces = [rule(_obs(return_5m=move))]  # the jump (signed in the parent's favour)
    # then half an hour whatever the moves, the first jump's direction kept
    paces += [rule(_obs(return_5m=-move)) for _ in range(JUMP_FOLLOW_STEPS + 2)]
    assert paces[:JUMP_FOLLOW_STEPS] == [pace] * JUMP_FOLLOW_STEPS
    assert paces[JUMP_FOLLOW_STEPS:] == [0.0] * 3
    # each episode's rule is new: a jump seen in one is not carried to the next
    assert RULES["jump-follow"]()(_obs(return_5m=0.0)) == 0.0


def test_spread_lag_and_trend_follow_read_their_features():
    spread, trend = RULES["spread-lag"](), RULES["trend-follow"]()
    assert spread(_obs(spread=1.0)) == pytest.approx(-0.5)  # wider: lag
    assert spread(_obs(spread=-4.0)) == 1.0  # clipped
    assert trend(_obs(price_vs_arrival=-2.0)) == pytest.approx(0.6)  # against us: lead
    assert trend(_obs(price_vs_arrival=5.0)) == -1.0


def test_rules_are_paired_against_the_twap_line_outside_the_hindsight():
    doc = run_pace_study(["calm"], 1, actions=(0.0, 1.0), rules=["spread-lag"])
    assert doc["rules"] == ["spread-lag"]
    for row in doc["rows"]:
        (rule,) = row["by_rule"]
        even = row["by_action"][0]["is"]["mean_bps"]
        assert rule["rule"] == "spread-lag"
        assert rule["vs_even_pace"]["mean_bps"] == pytest.approx(rule["is"]["mean_bps"] - even)
        # the hindsight best is over the fixed paces only
        fixed = [a["is"]["mean_bps"] for a in row["by_action"]]
        assert row["hindsight_best"]["is"]["mean_bps"] <= min(fixed) + 1e-9
    # a rule that reads the spread runs differently from the TWAP line on the same market
    buy = next(r for r in doc["rows"] if r["side"] == "buy")
    assert buy["by_rule"][0]["is"]["mean_bps"] != buy["by_action"][0]["is"]["mean_bps"]


def test_an_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="unknown pace rule hunch"):
        run_pace_study(["calm"], 1, rules=["hunch"])
