"""Training: the time-ordered split, monotone constraints, the calibration map kept only
when it helps, the metrics of the metadata, and `train_dealer` and `train_fill` end to end
on tiny days."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import models.training.boosting as boosting
import models.training.dealer_data as dealer_data
from models.serving.artifacts import load_family
from models.serving.features import DEALER_FEATURES, FILL_FEATURES, HIT_FEATURES
from models.serving.trees import CompiledForest
from models.training.boosting import Fitted, fit_binary, split_days
from models.training.metrics import brier

NAMES = ("quote_bps", "x1", "x2")


@pytest.fixture(autouse=True)
def few_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(boosting, "MAX_ROUNDS", 60)
    monkeypatch.setattr(boosting, "EARLY_STOP", 15)
    # one thread: OpenMP threads spin-waiting on a busy machine cost seconds per fit
    monkeypatch.setitem(boosting.PARAMS, "nthread", 1)
    monkeypatch.setitem(boosting.FILL_PARAMS, "nthread", 1)


# -------------------------------------------------------------------------- split_days


def test_split_days_is_time_ordered() -> None:
    rng = np.random.default_rng(0)
    day = rng.permutation(np.repeat(np.arange(20), 3))  # rows in any order
    tr, va, te = split_days(day)
    # 20 days: train = the first round(14) days, validation up to round(17), test the rest
    assert sorted(set(day[tr])) == list(range(14))
    assert sorted(set(day[va])) == [14, 15, 16]
    assert sorted(set(day[te])) == [17, 18, 19]
    assert day[tr].max() < day[va].min() <= day[va].max() < day[te].min()
    assert np.all(tr.astype(int) + va.astype(int) + te.astype(int) == 1)  # a partition


def test_split_days_uses_day_labels_not_positions() -> None:
    day = np.array([100, 7, 55, 7, 30, 12, 100, 41, 88, 3, 64, 23])  # 10 distinct days
    tr, va, te = split_days(day)
    # round(7.0) = 7 train days; round(8.5) = 8 (half to even): one validation day, two
    # test days
    assert sorted(set(day[tr].tolist())) == [3, 7, 12, 23, 30, 41, 55]
    assert sorted(set(day[va].tolist())) == [64]
    assert sorted(set(day[te].tolist())) == [88, 100]


def _data(
    n_days: int, rows_per_day: int, seed: int, shift: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y depends on quote_bps through a bump (not monotone) and on x1; `shift` raises
    the log-odds of the last 30% of the days (a drift only calibration can follow)."""
    rng = np.random.default_rng(seed)
    n = n_days * rows_per_day
    day = np.repeat(np.arange(n_days), rows_per_day)
    x = np.column_stack(
        [rng.uniform(0.0, 10.0, n), rng.normal(0.0, 1.0, n), rng.normal(0.0, 1.0, n)]
    )
    logit = 2.5 * np.exp(-((x[:, 0] - 6.0) ** 2) / 2.0) - 1.0 + 0.8 * x[:, 1]
    logit = logit + shift * (day >= round(0.7 * n_days))
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float64)
    return x, y, day


def _grid_margins(fitted: Fitted, rows: np.ndarray) -> np.ndarray:
    forest = CompiledForest.from_booster_bytes(fitted.raw)
    grid = np.linspace(0.0, 10.0, 101)
    out = []
    for row in rows:
        x = np.tile(row, (grid.size, 1))
        x[:, 0] = grid
        out.append(forest.margin(x))
    return np.asarray(out)


def test_fit_binary_honours_a_monotone_constraint() -> None:
    x, y, day = _data(20, 200, seed=1)
    rows = x[:10]
    free = fit_binary(x, y, day, NAMES, seed=3)
    tied = fit_binary(x, y, day, NAMES, seed=3, monotone={"quote_bps": -1})
    # the bump in the data: unconstrained, the trees rise somewhere along quote_bps
    assert np.any(np.diff(_grid_margins(free, rows), axis=1) > 1e-6)
    assert np.all(np.diff(_grid_margins(tied, rows), axis=1) <= 1e-9)


def test_fit_binary_keeps_only_the_chosen_trees_and_reports_metrics() -> None:
    x, y, day = _data(20, 150, seed=2)
    oracle = np.linspace(0.0, 1.0, len(y))
    fitted = fit_binary(x, y, day, NAMES, seed=3, oracle=oracle)
    forest = CompiledForest.from_booster_bytes(fitted.raw)
    assert 1 <= fitted.rounds <= 60
    assert forest.roots.size == fitted.rounds
    assert set(fitted.metrics) == {
        "auc",
        "brier",
        "ece",
        "n",
        "oracle_auc",
        "ece_uncalibrated",
        "n_train",
    }
    assert fitted.metrics["n"] == 3 * 150  # test days 17, 18, 19
    assert fitted.metrics["n_train"] == 14 * 150
    assert 0.5 < fitted.metrics["auc"] <= 1.0
    # the clipping range is the training days' range only
    assert fitted.clipper.names == NAMES
    np.testing.assert_array_equal(fitted.clipper.lo, x[day < 14].min(axis=0))
    np.testing.assert_array_equal(fitted.clipper.hi, x[day < 14].max(axis=0))


def _plain_test_brier(fitted: Fitted, x: np.ndarray, y: np.ndarray, day: np.ndarray) -> float:
    _, _, te = split_days(day)
    forest = CompiledForest.from_booster_bytes(fitted.raw)
    xt = np.clip(x[te], fitted.clipper.lo, fitted.clipper.hi)
    return brier(y[te], forest.predict(xt))


def _check_map(calibration: dict[str, list[float]]) -> None:
    cx, cy = np.asarray(calibration["x"]), np.asarray(calibration["y"])
    assert cx.shape == cy.shape
    assert cx[0] == 0.0
    assert cx[-1] == 1.0
    assert np.all(np.diff(cx) > 0.0)
    assert np.all(np.diff(cy) >= 0.0)  # monotone
    assert np.all((cy >= 0.0) & (cy <= 1.0))


def test_calibration_follows_a_drift_and_is_a_monotone_map() -> None:
    # validation and test days are much more positive than the training days: the
    # isotonic map learned on validation lowers the test Brier score, so it is kept
    x, y, day = _data(20, 200, seed=4, shift=2.5)
    fitted = fit_binary(x, y, day, NAMES, seed=3)
    assert fitted.calibration is not None
    _check_map(fitted.calibration)
    plain = _plain_test_brier(fitted, x, y, day)
    assert fitted.metrics["brier"] < plain - 0.02


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_calibration_is_kept_only_if_it_lowers_the_test_brier(seed: int) -> None:
    x, y, day = _data(20, 100, seed=seed)
    fitted = fit_binary(x, y, day, NAMES, seed=seed)
    plain = _plain_test_brier(fitted, x, y, day)
    if fitted.calibration is None:
        assert fitted.metrics["brier"] == pytest.approx(plain, abs=1e-12)
        assert fitted.metrics["ece"] == pytest.approx(fitted.metrics["ece_uncalibrated"])
    else:
        _check_map(fitted.calibration)
        assert fitted.metrics["brier"] < plain


def test_fit_binary_needs_every_split() -> None:
    x, y, day = _data(3, 50, seed=8)  # 3 days: train 2, validation 1, test none
    with pytest.raises(ValueError, match="train, validation and test"):
        fit_binary(x, y, day, NAMES, seed=1)


# ---------------------------------------------------------------------- train_dealer


@pytest.fixture(scope="module")
def dealer_family(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], dict]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(boosting, "MAX_ROUNDS", 40)
        mp.setattr(boosting, "EARLY_STOP", 10)
        mp.setitem(boosting.PARAMS, "nthread", 1)
        mp.setattr(boosting, "SCENARIOS", ("calm", "illiquid-bond"))
        mp.setattr(dealer_data, "RFQS_PER_DAY", 20)
        out = tmp_path_factory.mktemp("dealer")
        written, meta = boosting.train_dealer(out, days_per_scenario=4, seed0=7_000, command="t")
    return out, written, meta


def test_train_dealer_writes_a_loadable_family(dealer_family: tuple[Path, list, dict]) -> None:
    out, written, meta = dealer_family
    assert sorted(p.name for p in written) == [
        "dealer.meta.json",
        "dealer_best.ubj",
        "dealer_hit.ubj",
        "dealer_respond.ubj",
    ]
    # 4 days of each scenario, interleaved: seed0 + k * 2 + i
    assert meta["training"]["seeds"] == [7_000 + k for k in range(8)]
    assert meta["created_by"] == "t"
    assert json.loads((out / "dealer.meta.json").read_text())["rounds"] == meta["rounds"]
    for name in ("respond", "best", "hit"):
        assert set(meta["metrics"][name]) >= {"auc", "brier", "ece", "n", "n_train"}
        assert 1 <= meta["rounds"][name] <= 40
    assert "oracle_auc" in meta["metrics"]["respond"]
    served = load_family("dealer", out)
    assert served["respond"].features == DEALER_FEATURES
    assert served["hit"].features == HIT_FEATURES
    p = served["best"].predict(np.zeros((3, len(DEALER_FEATURES))))
    assert np.all((p >= 0.0) & (p <= 1.0))


def test_hit_model_is_non_increasing_in_the_quote(dealer_family: tuple[Path, list, dict]) -> None:
    out, _, _ = dealer_family
    hit = load_family("dealer", out)["hit"]
    j = HIT_FEATURES.index("quote_bps")
    lo, hi = hit.clipper.lo, hit.clipper.hi
    rng = np.random.default_rng(0)
    grid = np.linspace(lo[j] - 1.0, hi[j] + 1.0, 80)
    for _ in range(10):
        row = rng.uniform(lo, hi)
        x = np.tile(row, (grid.size, 1))
        x[:, j] = grid
        assert np.all(np.diff(hit.predict(x)) <= 1e-12)


# ------------------------------------------------------------------------ train_fill


def test_train_fill_writes_a_loadable_family_of_its_own_trees(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(boosting, "FILL_MAX_ROUNDS", 30)
        mp.setattr(boosting, "SCENARIOS", ("calm", "illiquid-bond"))
        written, meta = boosting.train_fill(tmp_path, episodes_per_scenario=3, seed0=9_000)
    assert sorted(p.name for p in written) == ["fill.meta.json", "fill_passive.ubj"]
    assert meta["training"]["seeds"] == [9_000, 9_005]
    assert meta["training"]["seed_rule"] == "scenario i, episode k: 9000 + k * 2 + i"
    assert meta["params"]["max_depth"] == boosting.FILL_PARAMS["max_depth"] == 6
    assert meta["max_rounds"] == 30 and 1 <= meta["rounds"]["passive"] <= 30
    served = load_family("fill", tmp_path)["passive"]
    assert served.features == FILL_FEATURES
    # deeper trees than the dealer models': some path is longer than 4 splits
    assert _deepest(served.forest) > boosting.PARAMS["max_depth"]
    assert _deepest(served.forest) <= 6
    p = served.predict(np.zeros((2, len(FILL_FEATURES))))
    assert np.all((p > 0.0) & (p < 1.0))


def _deepest(forest: CompiledForest) -> int:
    deepest = 0
    for root in forest.roots.tolist():
        stack = [(root, 0)]
        while stack:
            node, depth = stack.pop()
            if forest.feature[node] < 0:
                deepest = max(deepest, depth)
            else:
                stack += [(int(forest.left[node]), depth + 1), (int(forest.right[node]), depth + 1)]
    return deepest


def test_the_commands_defaults_are_the_shipped_training_runs() -> None:
    # `blockroute train dealer|fill` with no options regenerates the shipped artifacts
    from router.cli import build_parser

    dealer = build_parser().parse_args(["train", "dealer"])
    assert (dealer.days, dealer.seed) == (boosting.DEALER_DAYS_PER_SCENARIO, boosting.DEALER_SEED0)
    fill = build_parser().parse_args(["train", "fill"])
    assert (fill.episodes, fill.seed) == (boosting.FILL_EPISODES_PER_SCENARIO, boosting.FILL_SEED0)
    for family in ("dealer", "fill"):
        meta = json.loads((Path(boosting.MODELS_DIR) / f"{family}.meta.json").read_text())
        assert meta["created_by"] == f"blockroute train {family}" + (
            f" --days {dealer.days} --seed {dealer.seed}"
            if family == "dealer"
            else f" --episodes {fill.episodes} --seed {fill.seed}"
        )
        # and with the parameters the code trains with (threads aside: the fixture's)
        params = boosting.PARAMS if family == "dealer" else boosting.FILL_PARAMS
        assert {k: v for k, v in meta["params"].items() if k != "nthread"} == {
            k: v for k, v in params.items() if k != "nthread"
        }


def test_the_evaluation_commands_defaults_are_the_evaluations() -> None:
    import models.training.evaluate as ev
    from router.cli import build_parser

    args = build_parser().parse_args(["evaluate", "models"])
    assert (args.seed, args.dealer_days, args.fill_episodes, args.workers) == (
        ev.EVAL_SEED,
        ev.DEALER_DAYS,
        ev.FILL_EPISODES,
        1,
    )


def test_training_and_evaluation_on_ray_name_the_extra_when_it_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    from router.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    for command in (["train", "fill"], ["train", "dealer"], ["evaluate", "models"]):
        assert main([*command, "--executor", "ray"]) == 2
        err = capsys.readouterr().err
        assert "ray extra" in err and ".[ray]" in err and len(err.splitlines()) == 1
        assert main([*command, "--ray-address", "auto"]) == 2
        assert "only with --executor ray" in capsys.readouterr().err
