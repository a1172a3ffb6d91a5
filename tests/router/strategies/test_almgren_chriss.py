"""Almgren-Chriss: closed-form trajectory, its E and V, the frontier, calibration."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest

from router.domain import NANOS_PER_SECOND, DomainError, ParentId, ParentOrder, Side, Symbol
from router.ports import ExecutionState, MarketHistory, MarketSnapshot
from router.strategies.almgren_chriss import (
    DEFAULT_URGENCY,
    TRADING_DAY_S,
    AcParams,
    AcSlicer,
    ac_kappa,
    ac_trajectory,
    calibrate,
    closed_form_cost_variance,
    efficient_frontier,
    expected_cost,
    variance,
)

#: The paper's example (section 4): 1M shares over 5 days in 5 periods, time in days.
PAPER = AcParams(X=1e6, T=5.0, N=5, sigma=0.95, eta=2.5e-6, gamma=2.5e-7, epsilon=0.0625, lam=1e-6)

#: The reference case of CONTRACT.md: QDI, sell 500,000 over 3 h.
QDI = MarketHistory(
    symbol=Symbol("QDI"),
    tick_size=0.01,
    price=100.0,
    adv=2_000_000.0,
    daily_vol=0.015,
    spread=0.05,
    impact_y=0.8,
    bucket_s=1_800.0,
    volume_profile=(1.3, 1.0, 0.9, 0.9, 1.0, 1.2),
    horizon_volume=2_000_000.0 * 3 / 6.5,
    taker_fee=0.003,
)


def numerical_optimum(p: AcParams) -> np.ndarray:
    """Holdings minimising E + lam V, from the first-order conditions of the quadratic.

    For a monotone trajectory epsilon sum|n| = epsilon X is constant, and
    d/dx_j [eta_tilde / tau sum n^2 + lam sigma^2 tau sum x^2] = 0 gives, for j = 1..N-1,
    (eta_tilde / tau) (2 x_j - x_{j-1} - x_{j+1}) + lam sigma^2 tau x_j = 0.
    """
    m = p.N - 1
    a = p.eta_tilde / p.tau
    b = p.lam * p.sigma**2 * p.tau
    matrix = np.zeros((m, m))
    rhs = np.zeros(m)
    for i in range(m):
        matrix[i, i] = 2 * a + b
        if i > 0:
            matrix[i, i - 1] = -a
        if i < m - 1:
            matrix[i, i + 1] = -a
    rhs[0] = a * p.X  # x_0 = X moved to the right-hand side; x_N = 0 adds nothing
    return np.concatenate([[p.X], np.linalg.solve(matrix, rhs), [0.0]])


def objective(p: AcParams, holdings: np.ndarray) -> float:
    trades = holdings[:-1] - holdings[1:]
    return expected_cost(p, trades) + p.lam * variance(p, holdings)


@pytest.mark.parametrize(
    "params",
    [
        PAPER,
        replace(PAPER, N=40, lam=2e-6),
        replace(PAPER, N=12, lam=3e-8, gamma=0.0),
        AcParams(
            X=5e5, T=10_800, N=36, sigma=0.0098, eta=0.019, gamma=6e-7, epsilon=0.028, lam=4e-6
        ),
    ],
)
def test_closed_form_is_the_numerical_optimum(params):
    closed = np.array(ac_trajectory(params).holdings)
    np.testing.assert_allclose(closed, numerical_optimum(params), rtol=1e-9, atol=1e-6 * params.X)
    # and it is a minimum: every perturbation of the interior holdings costs more
    rng = np.random.default_rng(7)
    best = objective(params, closed)
    for _ in range(20):
        bumped = closed.copy()
        bumped[1:-1] += rng.normal(0.0, 1e-3 * params.X, params.N - 1)
        assert objective(params, bumped) > best


def test_paper_example_kappa():
    s = ac_trajectory(PAPER)
    eta_tilde = 2.5e-6 - 0.5 * 2.5e-7 * 1.0
    kappa_tilde_sq = 1e-6 * 0.95**2 / eta_tilde
    expected = math.acosh(1 + kappa_tilde_sq * 1.0**2 / 2) / 1.0
    assert s.kappa == pytest.approx(expected, rel=1e-12)
    assert s.kappa == pytest.approx(0.6071, abs=1e-4)
    assert round(s.kappa, 1) == 0.6  # the paper: "kappa ~ 0.6 per day"
    assert s.holdings[0] == 1e6 and s.holdings[-1] == 0.0
    assert sum(s.trades) == pytest.approx(1e6)


@pytest.mark.parametrize(
    "params",
    [
        PAPER,
        replace(PAPER, lam=1e-12),  # kappa T ~ 3e-3
        replace(PAPER, lam=1e-4),
        replace(PAPER, N=50, lam=1.0),  # kappa T ~ 64: sinh(kappa T) ~ 3e27
        replace(PAPER, N=1),
        replace(PAPER, lam=0.0),
        replace(PAPER, sigma=0.0),
    ],
)
def test_closed_forms_equal_the_sums(params):
    s = ac_trajectory(params)
    cost, var = closed_form_cost_variance(params)
    assert s.expected_cost == pytest.approx(cost, rel=1e-9)
    # V's closed form is a difference of two larger terms: compare on their scale too
    scale = params.sigma**2 * params.X**2 * params.T
    assert s.variance == pytest.approx(var, rel=1e-7, abs=1e-15 * scale)
    assert var >= 0.0


def test_zero_risk_aversion_is_twap_and_small_is_close():
    s = ac_trajectory(replace(PAPER, lam=0.0))
    assert s.kappa == 0.0
    assert s.holdings == (1e6, 8e5, 6e5, 4e5, 2e5, 0.0)
    almost = ac_trajectory(replace(PAPER, lam=1e-14))
    np.testing.assert_allclose(almost.holdings, s.holdings, rtol=1e-6, atol=1e-6)
    assert almost.holdings[1] < s.holdings[1]  # still (barely) front-loaded


def test_large_urgency_does_not_overflow():
    p = replace(PAPER, N=2_000, lam=1e3)  # kappa T in the thousands
    s = ac_trajectory(p)
    assert s.kappa * p.T > 1_000
    assert all(math.isfinite(x) for x in s.holdings)
    assert all(a > b or b == 0.0 for a, b in itertools.pairwise(s.holdings))
    assert s.trades[0] > 0.99 * p.X
    cost, var = closed_form_cost_variance(p)
    assert math.isfinite(cost) and math.isfinite(var)
    assert s.expected_cost == pytest.approx(cost, rel=1e-9)


def test_frontier_trades_cost_for_variance():
    lambdas = [0.0, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4]
    frontier = efficient_frontier(PAPER, lambdas)
    assert [f.lam for f in frontier] == lambdas
    for lo, hi in itertools.pairwise(frontier):
        assert hi.expected_cost > lo.expected_cost
        assert hi.variance < lo.variance
        assert hi.kappa > lo.kappa
    assert frontier[3].kappa == pytest.approx(ac_kappa(PAPER))


def test_json_has_exactly_the_contract_keys():
    doc = ac_trajectory(PAPER).to_json()
    assert set(doc) == {"holdings", "trades", "kappa", "expected_cost", "variance"}
    assert isinstance(doc["holdings"], list) and len(doc["holdings"]) == 6
    assert isinstance(doc["trades"], list) and len(doc["trades"]) == 5
    assert all(isinstance(doc[k], float) for k in ("kappa", "expected_cost", "variance"))


@pytest.mark.parametrize(
    ("change", "field_name"),
    [
        ({"X": 0.0}, "X"),
        ({"T": -1.0}, "T"),
        ({"N": 0}, "N"),
        ({"N": 2.5}, "N"),
        ({"sigma": -0.1}, "sigma"),
        ({"eta": 0.0}, "eta"),
        ({"gamma": -1e-9}, "gamma"),
        ({"epsilon": -0.01}, "epsilon"),
        ({"lam": -1e-6}, "lam"),
        ({"lam": math.nan}, "lam"),
        ({"X": math.inf}, "X"),
        ({"gamma": 1e-5}, "eta_tilde"),  # eta - gamma tau / 2 < 0
    ],
)
def test_bad_params_raise_naming_the_field(change, field_name):
    with pytest.raises(DomainError, match=rf"\b{field_name}\b"):
        replace(PAPER, **change)


# --------------------------------------------------------------------------- calibration


def test_calibration_of_the_reference_case():
    p = calibrate(QDI, 500_000, 3 * 3600.0, periods=36)
    assert (p.X, p.T, p.N) == (500_000.0, 10_800.0, 36)
    assert p.sigma == pytest.approx(0.015 * 100 / math.sqrt(TRADING_DAY_S))
    assert p.epsilon == pytest.approx(0.025 + 0.003)
    # the linear impact charges what the square-root law charges at the TWAP rate
    rate = 500_000 / 10_800
    sqrt_law = 0.8 * 0.015 * 100 * math.sqrt(rate * TRADING_DAY_S / 2e6)
    assert p.eta * rate == pytest.approx(sqrt_law)
    assert p.gamma * 500_000 == pytest.approx(0.5 * 0.8 * 0.015 * 100 * math.sqrt(0.25))
    assert p.eta_tilde > 0.9 * p.eta
    s = ac_trajectory(p)
    assert s.kappa * p.T == pytest.approx(DEFAULT_URGENCY)
    assert 1.0 <= s.kappa * p.T <= 2.0
    assert p.lam == pytest.approx(3.81e-6, rel=1e-2)  # the documented default for QDI


def test_calibration_overrides():
    p = calibrate(QDI, 500_000, 10_800.0, periods=36, urgency=0.5)
    assert ac_kappa(p) * p.T == pytest.approx(0.5)
    p = calibrate(QDI, 500_000, 10_800.0, periods=36, lam=1e-5)
    assert p.lam == 1e-5
    assert ac_kappa(p) * p.T > DEFAULT_URGENCY
    assert calibrate(QDI, 500_000, 10_800.0).N == 36  # 5-minute periods by default
    assert calibrate(QDI, 500_000, 100.0).N == 1


def test_calibration_keeps_eta_tilde_positive_with_one_long_period():
    # a tiny parent over a long horizon: slow TWAP rate, small eta, large tau
    p = calibrate(QDI, 100, 6 * 3600.0, periods=1)
    assert p.eta_tilde >= 0.5 * p.eta > 0


@pytest.mark.parametrize(
    ("history", "qty", "horizon_s", "kwargs", "message"),
    [
        (QDI, 0, 10_800.0, {}, "quantity"),
        (QDI, 100, 0.0, {}, "horizon"),
        (QDI, 100, 10_800.0, {"periods": 0}, "periods"),
        (QDI, 100, 10_800.0, {"urgency": -1.0}, "urgency"),
        (replace(QDI, impact_y=0.0), 100, 10_800.0, {}, "impact_y"),
        (replace(QDI, adv=0.0), 100, 10_800.0, {}, "adv"),
        (replace(QDI, daily_vol=0.0), 100, 10_800.0, {}, "daily_vol"),
        (replace(QDI, spread=-0.01), 100, 10_800.0, {}, "spread"),
        (replace(QDI, taker_fee=math.nan), 100, 10_800.0, {}, "taker_fee"),
        (replace(QDI, taker_fee=-0.03), 100, 10_800.0, {}, "epsilon"),
        (QDI, 100, 10_800.0, {"lam": -1.0}, "lam"),
    ],
)
def test_calibration_refuses_bad_inputs(history, qty, horizon_s, kwargs, message):
    with pytest.raises(DomainError, match=message):
        calibrate(history, qty, horizon_s, **kwargs)


# ------------------------------------------------------------------------------- slicer


def state(elapsed_s: float, qty: int = 500_000) -> ExecutionState:
    start = 600 * NANOS_PER_SECOND
    parent = ParentOrder(ParentId("P1"), Symbol("QDI"), Side.SELL, qty, start, 10_800 * 10**9)
    now = start + round(elapsed_s * NANOS_PER_SECOND)
    snap = MarketSnapshot(now, Symbol("QDI"), 0.01, 9_999, 10_001, 0, 0, (), None, 0, 0.0)
    return ExecutionState(parent, now, 0, snap)


def test_slicer_follows_the_calibrated_trajectory():
    s = AcSlicer.from_history(QDI, 500_000, 10_800.0, periods=36)
    assert s.name == "ac"
    x = s.schedule.holdings
    assert s.target_filled(state(0)) == 0
    assert s.target_filled(state(300)) == round(500_000 - x[1])
    assert s.target_filled(state(10_800)) == 500_000
    assert s.target_filled(state(20_000)) == 500_000
    # front-loaded: kappa T = 1.5 has half the parent done by ~38% of the horizon
    assert s.target_filled(state(0.36 * 10_800)) < 250_000 < s.target_filled(state(0.40 * 10_800))
    targets = [s.target_filled(state(t)) for t in range(0, 10_801, 30)]
    assert all(b >= a for a, b in itertools.pairwise(targets))


def test_slicer_converts_the_schedule_time_unit():
    s = AcSlicer(ac_trajectory(PAPER), time_unit_s=3_600.0)  # one "day" = one hour here
    assert s.times_s[-1] == 5 * 3_600.0
    assert s.target_at(3_600.0, 1_000_000) == round(1e6 - ac_trajectory(PAPER).holdings[1])
    with pytest.raises(DomainError, match="time_unit_s"):
        AcSlicer(ac_trajectory(PAPER), time_unit_s=0.0)
