"""Champion against challenger (router/model_compare.py): the paired statistics, the
sample size, the recommendation rule, and a real comparison in which the challenger's
slicer changes what `ml` does."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.serving.artifacts import MODELS_DIR, ModelError
from router.backtest import backtest
from router.config import DEFAULT_CONFIG_DIR
from router.domain import DomainError
from router.model_compare import (
    INCONCLUSIVE,
    KEEP,
    MIN_EPISODES,
    PROMOTE,
    Paired,
    compare_models,
    pair_episodes,
    paired,
    pairs_needed,
    pooled_stats,
    recommend,
)
from router.strategies.learned import OBS_SIZE
from tests.router.strategies.test_learned import _policy_model, _write_policy

BOND = "illiquid-bond"  # the cheapest scenario to simulate: about a second an episode
ARTIFACTS = (
    "dealer.meta.json",
    "dealer_respond.ubj",
    "dealer_best.ubj",
    "dealer_hit.ubj",
    "fill.meta.json",
    "fill_passive.ubj",
    "slicer.meta.json",
    "slicer.onnx",
)


def copy_models(to: Path) -> Path:
    """A folder with a copy of every shipped artifact."""
    to.mkdir(parents=True)
    for name in ARTIFACTS:
        shutil.copy(MODELS_DIR / name, to / name)
    return to


def leading_challenger(to: Path) -> Path:
    """The shipped models with a slicer that always leads the TWAP line (a = +1), and a
    validation that has it served: `ml` then paces differently on every episode."""
    d = copy_models(to)
    _write_policy(d, _policy_model(np.zeros(OBS_SIZE), bias=1.0))
    return d


# ------------------------------------------------------------------ the pure statistics


def test_paired_statistics_by_hand():
    p = paired([1.0, 2.0, 3.0, 6.0])
    sd = math.sqrt((4 + 1 + 0 + 9) / 3)  # mean 3
    assert (p.mean, p.n) == (3.0, 4)
    assert p.sd == pytest.approx(sd) and p.se == pytest.approx(sd / 2)
    assert p.t == pytest.approx(3.0 / (sd / 2))
    assert paired([0.0, 0.0]).t == 0.0  # no difference at all
    assert paired([-1.0, -1.0]).t == -math.inf  # the same nonzero difference every time
    with pytest.raises(DomainError, match="need 2"):
        paired([1.0])


def test_the_sample_size_formula_on_a_hand_checked_case():
    # ((z_0.975 + z_0.8) * 10 / 2)^2 = ((1.959964 + 0.841621) * 5)^2 = 196.22 -> 197 pairs
    assert pairs_needed(10.0, 2.0, 0.05, 0.8) == 197
    # a tenfold sd needs a hundredfold sample; a halved effect, four times as many
    assert pairs_needed(1.0, 2.0) == math.ceil(196.2219 / 100)
    assert pairs_needed(10.0, 1.0) == math.ceil(4 * 196.2219)
    # alpha 0.2 two-sided and power 0.5: (z_0.9 + 0)^2 * (sd / effect)^2 = 1.2816^2 * 4
    assert pairs_needed(4.0, 2.0, 0.2, 0.5) == math.ceil(1.2815516**2 * 4)
    assert pairs_needed(0.0, 2.0) == 0  # no spread: nothing to average out
    for bad in ((1.0, 0.0, 0.05, 0.8), (1.0, 2.0, 1.0, 0.8), (1.0, 2.0, 0.05, 0.0)):
        with pytest.raises(DomainError):
            pairs_needed(*bad)


def test_the_pooled_row_is_stratified_by_scenario():
    a, b = Paired(-1.0, 2.0, 1.0, 4), Paired(-3.0, 4.0, 2.0, 4)
    p = pooled_stats([a, b])
    assert p.mean == -2.0 and p.n == 8
    assert p.se == pytest.approx(math.sqrt(1.0**2 + 2.0**2) / 2)
    assert p.sd == pytest.approx(math.sqrt((2.0**2 + 4.0**2) / 2))
    assert p.se == pytest.approx(p.sd / math.sqrt(8))  # se = sd_w / sqrt(S k)


def cells(**kw: tuple[float, float]) -> dict[tuple[str, str], Paired]:
    """(scenario, side) rows from {scenario_side: (mean, se)}."""
    out = {}
    for name, (mean, se) in kw.items():
        sc, side = name.rsplit("_", 1)
        out[(sc, side)] = Paired(mean, se * 3.0, se, 9)
    return out


FINE = cells(calm_buy=(-3.0, 1.0), calm_sell=(-1.0, 1.0))


@pytest.mark.parametrize(
    ("pooled", "rows", "episodes", "needed", "verdict", "said"),
    [
        (Paired(-3.0, 8.0, 1.0, 64), FINE, 32, 40, PROMOTE, "no side worse"),
        # exactly at the limits: t = -2 promotes, a row worse by exactly 2 se does not block
        (Paired(-2.0, 8.0, 1.0, 64), cells(calm_buy=(2.0, 1.0)), 32, 40, PROMOTE, ""),
        (Paired(-1.9, 8.0, 1.0, 64), FINE, 32, 40, INCONCLUSIVE, "need 40 episodes"),
        # significant overall, but one market and side clearly dearer
        (
            Paired(-3.0, 8.0, 1.0, 64),
            cells(calm_buy=(-6.0, 1.0), calm_sell=(2.5, 1.0)),
            32,
            40,
            KEEP,
            "calm sell +2.50",
        ),
        (Paired(2.5, 8.0, 1.0, 64), FINE, 32, 40, KEEP, "dearer"),
        # not significant, with the power to find the minimum effect: no better
        (Paired(-0.5, 8.0, 1.0, 64), FINE, 40, 40, KEEP, "had the power"),
        (Paired(-0.5, 8.0, 1.0, 64), FINE, 39, 40, INCONCLUSIVE, "need 40 episodes"),
        # identical model sets: nothing differs anywhere
        (Paired(0.0, 0.0, 0.0, 8), cells(x_buy=(0.0, 0.0)), 2, 2, KEEP, "had the power"),
        # the same saving on every episode: t = -inf
        (Paired(-1.0, 0.0, 0.0, 8), cells(x_buy=(-1.0, 0.0)), 2, 2, PROMOTE, "t -inf"),
        # a row with no spread that is dearer is worse by any number of se
        (Paired(-3.0, 8.0, 1.0, 8), cells(x_buy=(0.1, 0.0)), 2, 2, KEEP, "x buy +0.10"),
    ],
)
def test_the_recommendation_rule(pooled, rows, episodes, needed, verdict, said):
    v = recommend(pooled, rows, episodes, needed)
    assert v.recommendation == verdict and said in v.reason


def episode(scenario: str, seed: int, side: str, is_bps: float) -> dict[str, Any]:
    return {"scenario": scenario, "seed": seed, "side": side, "is_bps": {"ml": is_bps}}


def test_pairing_and_rows_on_synthetic_episodes():
    # two scenarios, two seeds, both sides; the challenger's IS given as champion + d
    d = {
        ("calm", 1, "buy"): -2.0,
        ("calm", 1, "sell"): 0.0,
        ("calm", 2, "buy"): -4.0,
        ("calm", 2, "sell"): 2.0,
        (BOND, 1, "buy"): -1.0,
        (BOND, 1, "sell"): -1.0,
        (BOND, 2, "buy"): -3.0,
        (BOND, 2, "sell"): -5.0,
    }
    champ = [episode(sc, s, side, 20.0 + s) for sc, s, side in d]
    chall = [episode(sc, s, side, 20.0 + s + x) for (sc, s, side), x in d.items()]
    c = pair_episodes(champ, list(reversed(chall)), ["calm", BOND], "ml")
    assert [p["diff_bps"] for p in c.pairs] == list(d.values())  # in a fixed order
    assert c.cells[("calm", "buy")].mean == -3.0
    assert c.cells[("calm", "buy")].sd == pytest.approx(math.sqrt(2.0))  # -2, -4
    # both sides: the seeds' means, calm -1 and -1, the bond -1 and -4
    assert (c.scenarios["calm"].mean, c.scenarios["calm"].sd) == (-1.0, 0.0)
    assert c.scenarios[BOND].mean == -2.5 and c.scenarios[BOND].se == pytest.approx(1.5)
    assert c.pooled.mean == pytest.approx(-1.75)
    assert c.pooled.se == pytest.approx(math.sqrt(0.0 + 1.5**2) / 2)
    doc = c.report(2, 2.0, 0.05, 0.8)
    pooled = doc["pooled"]
    assert (pooled["scenario"], pooled["side"], pooled["episodes"], pooled["n"]) == (
        "all",
        "both",
        8,
        4,
    )
    assert pooled["champion_is_bps_mean"] == 21.5 and pooled["challenger_is_bps_mean"] == 19.75
    assert doc["is_diff_bps_mean"] == pooled["diff_bps_mean"] == pytest.approx(-1.75)
    sd_w = math.sqrt((0.0 + 4.5) / 2)  # the bond's seeds: -1 and -4, variance 4.5
    assert doc["sample_size"]["sd_bps"] == pytest.approx(sd_w)
    assert doc["sample_size"]["pairs_needed"] == pairs_needed(sd_w, 2.0)
    with pytest.raises(DomainError, match="different episodes"):
        pair_episodes(champ, chall[:-1], ["calm", BOND], "ml")


# ------------------------------------------------------------ comparisons that run


@pytest.fixture(scope="module")
def leading(tmp_path_factory) -> dict[str, Any]:
    challenger = leading_challenger(tmp_path_factory.mktemp("compare") / "challenger")
    return compare_models(MODELS_DIR, challenger, [BOND], 2, 1000, DEFAULT_CONFIG_DIR)


def test_a_challenger_that_paces_otherwise_differs_pair_by_pair(leading):
    assert leading["families_changed"] == ["slicer"]
    # the shipped slicer is not served (README); the challenger's is
    assert leading["slicer_served"] == {"champion": False, "challenger": True}
    pairs = leading["pairs"]
    assert [(p["seed"], p["side"]) for p in pairs] == [
        (1000, "buy"),
        (1000, "sell"),
        (1001, "buy"),
        (1001, "sell"),
    ]
    diffs = [p["challenger_is_bps"] - p["champion_is_bps"] for p in pairs]
    assert diffs == [p["diff_bps"] for p in pairs] and all(d != 0 for d in diffs)
    rows = {(r["scenario"], r["side"]): r for r in leading["rows"]}
    # each side: two seeds, the sd of two numbers is |a - b| / sqrt(2), se = |a - b| / 2
    for side, (a, b) in (("buy", (diffs[0], diffs[2])), ("sell", (diffs[1], diffs[3]))):
        r = rows[(BOND, side)]
        assert r["diff_bps_mean"] == pytest.approx((a + b) / 2)
        assert r["diff_bps_stderr"] == pytest.approx(abs(a - b) / 2)
        assert r["t"] == pytest.approx((a + b) / abs(a - b))
    # both sides: a seed's two sides averaged first; one scenario, so the pooled row
    s0, s1 = (diffs[0] + diffs[1]) / 2, (diffs[2] + diffs[3]) / 2
    for r in (rows[(BOND, "both")], leading["pooled"]):
        assert (r["episodes"], r["n"]) == (4, 2)
        assert r["diff_bps_mean"] == pytest.approx((s0 + s1) / 2)
        assert r["diff_bps_stderr"] == pytest.approx(abs(s0 - s1) / 2)
        assert r["diff_bps_sd"] == pytest.approx(abs(s0 - s1) / math.sqrt(2))
    size = leading["sample_size"]
    assert size["pairs_needed"] == pairs_needed(abs(s0 - s1) / math.sqrt(2), 2.0)
    assert size["episodes_needed"] == max(MIN_EPISODES, size["pairs_needed"])
    assert leading["recommendation"] in (PROMOTE, KEEP, INCONCLUSIVE)


def test_the_comparison_runs_the_backtest_on_each_folder(leading, tmp_path):
    # the champion's side is the backtest of the shipped models, pair for pair
    doc = backtest([BOND], ["ml"], 2, 1000, 1, DEFAULT_CONFIG_DIR, hindsight=False, both_sides=True)
    assert [e["is_bps"]["ml"] for e in doc["episodes"]] == [
        p["champion_is_bps"] for p in leading["pairs"]
    ]


def test_bad_folders_are_named_before_any_episode(tmp_path):
    def compare(challenger: Path) -> None:
        compare_models(MODELS_DIR, challenger, [BOND], 2, 1000, DEFAULT_CONFIG_DIR)

    with pytest.raises(ModelError, match=r"no such folder \(the challenger's models\)"):
        compare(tmp_path / "nowhere")
    spoilt = copy_models(tmp_path / "spoilt")
    (spoilt / "fill_passive.ubj").write_bytes(b"")
    with pytest.raises(ModelError, match=re.escape(str(spoilt / "fill_passive.ubj"))):
        compare(spoilt)
    (spoilt / "fill_passive.ubj").unlink()
    with pytest.raises(ModelError, match=r"fill_passive\.ubj: model file missing"):
        compare(spoilt)
    with pytest.raises(DomainError, match="episodes must be >= 2"):
        compare_models(MODELS_DIR, MODELS_DIR, [BOND], 1, 1000, DEFAULT_CONFIG_DIR)
