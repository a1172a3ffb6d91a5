"""Scores of the probabilistic classifiers on tiny hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.training.metrics import auc, brier, cluster_bootstrap, ece, scores, stratified_auc


def arr(*v: float) -> np.ndarray:
    return np.asarray(v, dtype=np.float64)


# ---------------------------------------------------------------------------------- AUC


def test_auc_counts_correctly_ordered_pairs() -> None:
    # positives 0.35, 0.8; negatives 0.1, 0.4: pairs (pos > neg) are 0.35>0.1, 0.8>0.1,
    # 0.8>0.4 but not 0.35>0.4 -> 3 of 4
    assert auc(arr(0, 0, 1, 1), arr(0.1, 0.4, 0.35, 0.8)) == pytest.approx(0.75)


def test_auc_perfect_inverted_and_tied() -> None:
    assert auc(arr(0, 1, 0, 1), arr(0.1, 0.9, 0.2, 0.8)) == 1.0
    assert auc(arr(0, 1, 0, 1), arr(0.9, 0.1, 0.8, 0.2)) == 0.0
    # a tie counts half: one pair, tied -> 0.5
    assert auc(arr(0, 1), arr(0.5, 0.5)) == 0.5


def test_auc_of_one_class_is_nan() -> None:
    assert math.isnan(auc(arr(1, 1, 1), arr(0.2, 0.5, 0.9)))
    assert math.isnan(auc(arr(), arr()))


# -------------------------------------------------------------------------------- Brier


def test_brier_is_the_mean_squared_error() -> None:
    # (0.1^2 + 0.1^2 + 0.2^2 + 0.3^2) / 4 = (0.01 + 0.01 + 0.04 + 0.09) / 4 = 0.0375
    assert brier(arr(0, 1, 1, 0), arr(0.1, 0.9, 0.8, 0.3)) == pytest.approx(0.0375)
    assert brier(arr(0, 1), arr(0.0, 1.0)) == 0.0
    assert brier(arr(0, 1), arr(1.0, 0.0)) == 1.0


def test_brier_of_nothing_is_nan() -> None:
    assert math.isnan(brier(arr(), arr()))


# ---------------------------------------------------------------------------------- ECE


def test_ece_weights_each_bin_gap_by_its_share() -> None:
    y = arr(0, 1, 1, 0, 1)
    p = arr(0.05, 0.15, 0.55, 0.58, 0.95)
    # bins of width 0.1: bin 0 {0.05 | y 0}: |0.05 - 0| * 1/5 = 0.010
    # bin 1 {0.15 | 1}: 0.85 / 5 = 0.170; bin 5 {0.55, 0.58 | 1, 0}: |0.565 - 0.5| * 2/5
    # = 0.026; bin 9 {0.95 | 1}: 0.05 / 5 = 0.010 -> 0.216
    assert ece(y, p) == pytest.approx(0.216)


def test_ece_with_two_bins_and_p_of_one_in_the_last_bin() -> None:
    y = arr(0, 1, 1, 1)
    p = arr(0.2, 0.4, 0.9, 1.0)
    # bin [0, 0.5): p mean 0.3, y mean 0.5 -> 0.2 * 2/4 = 0.1
    # bin [0.5, 1]: p = 1.0 lands here (not in an 11th bin): p mean 0.95, y 1 -> 0.05 * 2/4
    # = 0.025 -> 0.125
    assert ece(y, p, bins=2) == pytest.approx(0.125)


def test_ece_of_a_calibrated_forecast_is_zero() -> None:
    assert ece(arr(0, 1, 0, 1), arr(0.5, 0.5, 0.5, 0.5)) == 0.0


def test_ece_of_nothing_is_nan() -> None:
    assert math.isnan(ece(arr(), arr()))


# ------------------------------------------------------------------------------- scores


def test_scores_keys_and_values() -> None:
    y = arr(0, 0, 1, 1)
    p = arr(0.1, 0.4, 0.35, 0.8)
    out = scores(y, p)
    assert set(out) == {"auc", "brier", "ece", "n"}
    assert out["auc"] == pytest.approx(0.75)
    # (0.01 + 0.16 + 0.4225 + 0.04) / 4 = 0.158125
    assert out["brier"] == pytest.approx(0.158125)
    assert out["n"] == 4
    assert isinstance(out["n"], int)


def test_scores_with_an_oracle_adds_its_auc() -> None:
    y = arr(0, 0, 1, 1)
    out = scores(y, arr(0.1, 0.4, 0.35, 0.8), oracle=arr(0.9, 0.8, 0.2, 0.1))
    assert out["oracle_auc"] == 0.0
    assert out["auc"] == pytest.approx(0.75)


# ------------------------------------------------------------------------ stratified AUC


def test_stratified_auc_weights_each_stratum_by_its_rows() -> None:
    strata_by = arr(1, 1, 1, 1, 2, 2, 2, 2)
    y = arr(0, 1, 0, 1, 0, 1, 1, 1)
    # stratum 1 ranks perfectly (AUC 1); stratum 2 puts its negative above two of three
    # positives (AUC 1/3)
    p = arr(0.1, 0.9, 0.2, 0.8, 0.9, 0.1, 0.2, 0.95)
    value, rows = stratified_auc(y, p, strata_by, k=2)
    assert rows == 8
    assert value == pytest.approx((4 * 1.0 + 4 * (1 / 3)) / 8)
    # the pooled AUC differs: it also ranks across the strata
    assert auc(y, p) != pytest.approx(value)


def test_stratified_auc_leaves_out_strata_of_one_class() -> None:
    value, rows = stratified_auc(arr(0, 1, 1, 1), arr(0.0, 1.0, 0.3, 0.4), arr(1, 1, 2, 2), k=2)
    assert (value, rows) == (1.0, 2)
    value, rows = stratified_auc(arr(), arr(), arr())
    assert math.isnan(value) and rows == 0


# ----------------------------------------------------------------- cluster bootstrap


def test_cluster_bootstrap_resamples_whole_clusters_within_their_stratum() -> None:
    # 2 strata of 3 clusters each; every cluster's rows carry its own id as the value
    clusters = np.repeat(np.arange(6), [1, 2, 3, 4, 5, 6])
    strata = np.where(clusters < 3, 0, 1)
    seen: list[np.ndarray] = []

    def stat(rows: np.ndarray) -> float:
        seen.append(rows)
        return float(rows.size)

    reps = cluster_bootstrap(stat, clusters, strata, replicates=50, seed=3)
    assert reps.size == 50
    for rows in seen:
        picked = clusters[rows]
        # 3 picks per stratum, each bringing all the rows of its cluster
        ids, counts = np.unique(picked, return_counts=True)
        sizes = np.bincount(clusters)[ids]
        assert np.all(counts % sizes == 0)
        assert (counts // sizes)[ids < 3].sum() == 3 and (counts // sizes)[ids >= 3].sum() == 3
    # different draws, reproducible by the seed
    assert np.unique(reps).size > 1
    again = cluster_bootstrap(lambda r: float(r.size), clusters, strata, replicates=50, seed=3)
    assert np.array_equal(reps, again)


def test_cluster_bootstrap_of_identical_clusters_has_no_spread() -> None:
    # 4 clusters with the same rows: any resample scores the same
    y = np.tile(arr(0, 1, 0, 1), 4)
    p = np.tile(arr(0.1, 0.8, 0.6, 0.3), 4)
    clusters = np.repeat(np.arange(4), 4)
    reps = cluster_bootstrap(
        lambda r: auc(y[r], p[r]), clusters, np.zeros(16, dtype=int), replicates=20
    )
    assert np.allclose(reps, 0.75)


def test_cluster_bootstrap_drops_replicates_without_both_classes() -> None:
    y = arr(0, 0, 1, 1)
    clusters = np.arange(4)  # each cluster one class only
    reps = cluster_bootstrap(
        lambda r: auc(y[r], y[r]), clusters, np.zeros(4, dtype=int), replicates=200, seed=1
    )
    # P(all 4 picks from one class) = 2 * (1/2)^4 = 1/8: about 25 of 200 dropped
    assert 150 < reps.size < 200 and np.all(reps == 1.0)
