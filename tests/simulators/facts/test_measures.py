"""The statistics the stylized facts are made of."""

import numpy as np
import pytest

from simulators.facts.measures import Returns, Spread, excess_kurtosis, lag1_autocorr, ratio


def test_spread_is_the_median_and_90th_percentile_of_the_finite_values():
    s = Spread.of([1, 2, np.nan, 3, 4, 5, 6, 7, 8, 9, 10, np.inf])
    assert s == Spread(5.5, 9.1)
    assert Spread.of([]) == Spread(None, None)
    assert Spread.of([np.nan]) == Spread(None, None)


def test_kurtosis_and_autocorrelation_of_known_series():
    # two values, equally often: the flattest law there is (excess kurtosis -2)
    assert excess_kurtosis(np.array([1.0, -1.0] * 50)) == pytest.approx(-2.0)
    assert lag1_autocorr(np.array([1.0, -1.0] * 50)) == pytest.approx(-1.0)
    normal = np.random.default_rng(1).standard_normal(200_000)
    assert excess_kurtosis(normal) == pytest.approx(0.0, abs=0.05)
    assert lag1_autocorr(normal) == pytest.approx(0.0, abs=0.01)
    assert excess_kurtosis(np.zeros(10)) is None  # no variation
    assert lag1_autocorr(np.ones(2)) is None  # too short


def test_returns_take_every_nth_sample_and_skip_the_gaps():
    mid = np.exp(np.array([0.0, 0.1, 0.0, 0.1, np.nan, 0.1, 0.0, 0.1, 0.0]))
    r = Returns.of(mid, 1, 1.0)
    assert r.n == 6  # the two returns that touch the gap are left out
    assert r.autocorr_1 == pytest.approx(-1.0)
    assert Returns.of(mid, 2, 2.0).n == 2  # samples 0, 2, (4: gap), 6, 8
    assert ratio(3, 0) is None and ratio(None, 2) is None and ratio(3, 2) == 1.5
