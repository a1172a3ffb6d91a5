"""Scores of probabilistic classifiers: AUC, Brier score, expected calibration error."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score


def auc(y: np.ndarray, p: np.ndarray) -> float:
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, p))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2)) if y.size else float("nan")


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: |mean p - mean y| per equal-width bin of p, weighted
    by the bin's share of rows."""
    if y.size == 0:
        return float("nan")
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(float(p[m].mean()) - float(y[m].mean()))
    return total


def scores(y: np.ndarray, p: np.ndarray, oracle: np.ndarray | None = None) -> dict[str, float]:
    out = {"auc": auc(y, p), "brier": brier(y, p), "ece": ece(y, p), "n": int(y.size)}
    if oracle is not None:
        out["oracle_auc"] = auc(y, oracle)
    return out
