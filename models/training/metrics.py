"""Scores of probabilistic classifiers: AUC, Brier score, expected calibration error."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def auc(y: np.ndarray, p: np.ndarray) -> float:
    # scikit-learn imported here, not above: the service's drift monitor (router.drift)
    # uses `ece` from this module, and scikit-learn's import costs about a second of
    # every `serve` start
    from sklearn.metrics import roc_auc_score

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
            total += m.sum() * auc(y[m], p[m])
            rows += int(m.sum())
    return (total / rows if rows else float("nan")), rows


def cluster_bootstrap(
    stat: Callable[[np.ndarray], float],
    clusters: np.ndarray,
    strata: np.ndarray,
    replicates: int = 500,
    seed: int = 0,
) -> np.ndarray:
    """Bootstrap replicates of `stat(rows)` that resample whole clusters (`clusters`:
    each row's episode or day) with replacement within each stratum (`strata`: each
    row's scenario), so that every replicate keeps the design's mix of scenarios.

    Rows of one episode share its market and move together; resampling rows would
    treat them as independent and understate the spread. Replicates where `stat` is
    not finite (one class only, say) are dropped."""
    rng = np.random.default_rng(seed)
    members = {int(c): np.flatnonzero(clusters == c) for c in np.unique(clusters)}
    by_stratum = [
        np.asarray(sorted({int(c) for c in clusters[strata == s]})) for s in np.unique(strata)
    ]
    out = np.empty(replicates)
    for r in range(replicates):
        picks = [rng.choice(ids, size=ids.size, replace=True) for ids in by_stratum]
        rows = np.concatenate([members[int(c)] for ids in picks for c in ids])
        out[r] = stat(rows)
    return out[np.isfinite(out)]
