"""The oracle's arithmetic: P(a dealer answers and has the lowest cost) among independent,
possibly silent competitors."""

from __future__ import annotations

import numpy as np
import pytest

from dealers.truth import DealerTruth, lognormal_cdf, p_lowest, p_lowest_unclipped
from router.domain import DealerId, RfqId, Side


def test_p_lowest_identical_dealers_split_evenly() -> None:
    mu, sd = np.zeros(2), np.ones(2)
    assert p_lowest(np.ones(2), mu, sd) == pytest.approx([0.5, 0.5], abs=1e-4)
    # each answers half the time: P(i answers) * P(j does not undercut) = 0.5 * (1 - 0.5 * 0.5)
    assert p_lowest(np.full(2, 0.5), mu, sd) == pytest.approx([0.375, 0.375], abs=1e-4)
    three = p_lowest(np.ones(3), np.zeros(3), np.ones(3))
    assert three == pytest.approx([1 / 3] * 3, abs=1e-4)


def test_p_lowest_a_silent_dealer_is_never_best() -> None:
    out = p_lowest(np.array([0.0, 1.0]), np.zeros(2), np.ones(2))
    assert out[0] == 0.0
    assert out[1] == pytest.approx(1.0, abs=1e-4)
    assert p_lowest(np.array([0.0, 0.0]), np.zeros(2), np.ones(2)).tolist() == [0.0, 0.0]


def test_p_lowest_a_far_cheaper_dealer_is_best() -> None:
    # 20 standard deviations apart
    out = p_lowest(np.ones(2), np.array([0.0, 20.0]), np.ones(2))
    assert out[0] == pytest.approx(1.0, abs=1e-4)
    assert out[1] < 1e-6
    # cheaper but answering 70% of the time: best exactly when it answers
    out = p_lowest(np.array([0.7, 1.0]), np.array([0.0, 20.0]), np.ones(2))
    assert out == pytest.approx([0.7, 0.3], abs=1e-4)


def test_p_lowest_of_the_first_dealer_alone_is_the_same_number() -> None:
    rng = np.random.default_rng(4)
    for k in (1, 3, 5):
        p, mu, sd = rng.uniform(0.3, 1.0, k), rng.normal(8.0, 2.0, k), rng.uniform(0.5, 3.0, k)
        full = p_lowest_unclipped(p, mu, sd, 41)
        first = p_lowest_unclipped(p, mu, sd, 41, True)
        assert first[0] == full[0]  # to the bit: the router's features rely on it
        assert first[1:].tolist() == [0.0] * (k - 1)


def test_lognormal_cdf_is_one_half_at_the_median_and_a_step_without_jitter() -> None:
    assert lognormal_cdf(10.0, 10.0, 0.5) == pytest.approx(0.5)
    assert lognormal_cdf(20.0, 10.0, 0.5) > 0.9 > 0.1 > lognormal_cdf(5.0, 10.0, 0.5)
    assert (lognormal_cdf(9.9, 10.0, 0.0), lognormal_cdf(10.0, 10.0, 0.0)) == (0.0, 1.0)


def test_a_truth_row_gives_the_best_quote_probability_of_the_clients_side() -> None:
    row = DealerTruth(RfqId("r1"), DealerId("ALPHA"), 0, 0.9, 0.4, 0.0)
    assert (row.p_best(Side.BUY), row.p_best(Side.SELL)) == (0.4, 0.0)
