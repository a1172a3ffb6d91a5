"""`blockroute bench drift`: the unimpacted market's move, by part and by the parent's side."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from simulators.kernel import rng_for
from simulators.market import SimMarket
from simulators.scenario import load_scenario, mirrored


@pytest.mark.requires_extra("train", "gymnasium")
def test_a_small_study_is_reproducible_and_runs_the_flow_only_where_asked() -> None:
    # the regime draw is the RL environment's (models.training.execenv: gymnasium)
    from bench.drift import run_drift_study

    doc = run_drift_study(12, 3, seed0=7_000_000)
    assert doc == run_drift_study(12, 3, seed0=7_000_000)
    pooled = doc["pooled"]
    assert pooled["regimes"] == 12 and doc["flow_regimes"] == 3
    assert set(pooled) >= {"scheduled", "random", "exogenous_against_parent", "flow"}
    assert 0.0 <= doc["buy_share"] <= 1.0 and 0.0 <= doc["mirrored_share"] <= 1.0
    # a scenario without directional phases has nothing scheduled
    if "calm" in doc["by_scenario"]:
        assert doc["by_scenario"]["calm"]["scheduled"]["mean_bps"] == 0.0


def test_the_market_does_not_know_the_parents_side_and_mirroring_flips_the_schedule() -> None:
    sc = load_scenario("news-shock")
    flipped = dataclasses.replace(sc, side=sc.side.opposite)
    a, b = SimMarket(sc, rng_for(3, "market")), SimMarket(flipped, rng_for(3, "market"))
    assert np.array_equal(a.sched, b.sched)  # the same path whoever trades in it
    m = dataclasses.replace(sc, phases=tuple(mirrored(p) for p in sc.phases))
    c = SimMarket(m, rng_for(3, "market"))
    # the same shocks, the scheduled moves reversed: the random parts of the two paths
    # are equal, the scheduled parts opposite
    da, dc = np.diff(a.sched[0]), np.diff(c.sched[0])
    sched_a = np.array([a.scheduled_move(i, i + 1) for i in range(len(da))])
    assert np.allclose(da - sched_a, dc + sched_a)
    assert a.scheduled_move(0, len(da)) == -c.scheduled_move(0, len(da))
