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


def stratified_auc(
    y: np.ndarray, p: np.ndarray, strata_by: np.ndarray, k: int = 5
) -> tuple[float, int]:
    """AUC within each of `k` equal-count strata of `strata_by`, averaged with the
    strata's shares of rows (strata with one class only are left out); returns the
    average and the rows it covers. Comparing two scores this way asks how well each
    ranks rows that agree on `strata_by`: what is left once that variable is known."""
    if y.size == 0:
        return float("nan"), 0
    edges = np.quantile(strata_by, np.linspace(0.0, 1.0, k + 1))
    which = np.clip(np.searchsorted(edges, strata_by, side="right") - 1, 0, k - 1)
    total, rows = 0.0, 0
    for s in range(k):
        m = which == s
        if len(np.unique(y[m])) == 2:
            total += m.sum() * float(roc_auc_score(y[m], p[m]))
            rows += int(m.sum())
    return (total / rows if rows else float("nan")), rows
