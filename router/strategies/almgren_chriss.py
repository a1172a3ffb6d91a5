"""Almgren-Chriss (2000): the mean-variance optimal schedule for trading a block.

R. Almgren and N. Chriss, "Optimal execution of portfolio transactions", J. Risk 3
(2000), sections 3 and 4, discrete time and in the paper's notation: sell X shares in
N periods of length tau = T / N; holdings x_0 = X, ..., x_N = 0; trades
n_j = x_{j-1} - x_j. Permanent impact g(v) = gamma v, temporary impact
h(v) = epsilon sgn(v) + eta v, price a random walk with volatility sigma (per square
root of the time unit). With eta_tilde = eta - gamma tau / 2:

    E = 1/2 gamma X^2 + epsilon sum |n_j| + eta_tilde / tau sum n_j^2
    V = sigma^2 sum tau x_j^2

and the trajectory minimising E + lam V is x_j = sinh(kappa (T - t_j)) / sinh(kappa T) X
where cosh(kappa tau) = 1 + kappa_tilde^2 tau^2 / 2, kappa_tilde^2 = lam sigma^2 / eta_tilde.
A buy is the mirror problem and has the same schedule.

The paper's units are whatever the caller uses consistently (the CLI: time in units of
the horizon's unit). `calibrate` works in currency per share and *seconds*.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

from router.domain import DomainError
from router.ports import MarketHistory
from router.strategies.schedule import ScheduleSlicer

#: Length of the trading day that `MarketHistory.daily_vol` and `adv` refer to (6.5 h).
TRADING_DAY_S = 6.5 * 3600.0
#: Default urgency kappa * T of a calibrated schedule: front-loaded but not a dump
#: (half the parent is done at about 38% of the horizon, against 50% for TWAP).
DEFAULT_URGENCY = 1.5
#: Default period length of a calibrated schedule, when the caller gives no period count.
DEFAULT_PERIOD_S = 300.0
#: Assumed share of a metaorder's square-root impact that is permanent (the price
#: relaxes to roughly 1/2 to 2/3 of the peak impact once trading stops; we take the
#: low end, since gamma only matters through eta_tilde and the constant 1/2 gamma X^2).
PERMANENT_FRACTION = 0.5


@dataclass(frozen=True, slots=True)
class AcParams:
    """Inputs of the model, in one consistent set of units (see the module docstring).

    X: shares to trade; T: horizon; N: number of periods; sigma: price volatility per
    sqrt(time unit); eta: temporary impact per unit trading rate; gamma: permanent
    impact per share; epsilon: fixed cost per share (half spread + fees); lam: risk
    aversion (per unit of currency).
    """

    X: float
    T: float
    N: int
    sigma: float
    eta: float
    gamma: float
    epsilon: float
    lam: float

    def __post_init__(self) -> None:
        for field_name, value, ok, rule in (
            ("X", self.X, self.X > 0, "> 0"),
            ("T", self.T, self.T > 0, "> 0"),
            ("sigma", self.sigma, self.sigma >= 0, ">= 0"),
            ("eta", self.eta, self.eta > 0, "> 0"),
            ("gamma", self.gamma, self.gamma >= 0, ">= 0"),
            ("epsilon", self.epsilon, self.epsilon >= 0, ">= 0"),
            ("lam", self.lam, self.lam >= 0, ">= 0"),
        ):
            if not (math.isfinite(value) and ok):
                raise DomainError(
                    f"almgren-chriss: {field_name} must be finite and {rule}, got {value}"
                )
        if isinstance(self.N, bool) or not isinstance(self.N, int) or self.N < 1:
            raise DomainError(f"almgren-chriss: N must be a whole number >= 1, got {self.N}")
        if self.eta_tilde <= 0:
            raise DomainError(
                f"almgren-chriss: eta_tilde = eta - gamma*tau/2 must be > 0, got "
                f"{self.eta_tilde:g} (eta={self.eta:g}, gamma={self.gamma:g}, "
                f"tau={self.tau:g}): lower gamma or use more periods"
            )

    @property
    def tau(self) -> float:
        return self.T / self.N

    @property
    def eta_tilde(self) -> float:
        return self.eta - 0.5 * self.gamma * self.tau


@dataclass(frozen=True, slots=True)
class AcSchedule:
    """An optimal trajectory: holdings x_0..x_N, trades n_1..n_N, and its E and V."""

    params: AcParams
    holdings: tuple[float, ...]
    trades: tuple[float, ...]
    kappa: float
    expected_cost: float
    variance: float

    @property
    def times(self) -> tuple[float, ...]:
        """t_0..t_N, in the parameters' time unit."""
        p = self.params
        return tuple(p.T * j / p.N for j in range(p.N + 1))

    def to_json(self) -> dict[str, list[float] | float]:
        """The document of `blockroute schedule ac --json` (CONTRACT.md)."""
        return {
            "holdings": list(self.holdings),
            "trades": list(self.trades),
            "kappa": self.kappa,
            "expected_cost": self.expected_cost,
            "variance": self.variance,
        }


@dataclass(frozen=True, slots=True)
class FrontierPoint:
    lam: float
    expected_cost: float
    variance: float
    kappa: float


def ac_kappa(p: AcParams) -> float:
    """kappa solving cosh(kappa tau) = 1 + kappa_tilde^2 tau^2 / 2 exactly.

    Written as kappa tau = 2 asinh(sqrt(a / 2)) with a = kappa_tilde^2 tau^2 / 2, the same
    root as arccosh(1 + a) (cosh y - 1 = 2 sinh^2(y / 2)) without losing digits to 1 + a
    when a is tiny.
    """
    a = 0.5 * p.lam * p.sigma**2 / p.eta_tilde * p.tau**2
    kappa = 2.0 * math.asinh(math.sqrt(0.5 * a)) / p.tau
    if not math.isfinite(kappa):
        raise DomainError(f"almgren-chriss: lam={p.lam:g} is too large for these units")
    return kappa


def _sinh_ratio(a: float, b: float) -> float:
    """sinh(a) / sinh(b) for 0 <= a <= b, b > 0, without overflow for large b."""
    # sinh(y) = e^y (1 - e^-2y) / 2; -expm1(-2y) keeps 1 - e^-2y exact for small y
    return math.exp(a - b) * (-math.expm1(-2.0 * a)) / (-math.expm1(-2.0 * b))


def ac_trajectory(p: AcParams) -> AcSchedule:
    """The optimal holdings and trades, with E and V summed over the trajectory."""
    kappa = ac_kappa(p)
    if kappa == 0.0:  # lam = 0 or sigma = 0: no risk to trade off, the straight line
        holdings = [p.X * (p.N - j) / p.N for j in range(p.N + 1)]
    else:
        kt = kappa * p.T
        holdings = [p.X * _sinh_ratio(kt * (p.N - j) / p.N, kt) for j in range(p.N + 1)]
    holdings[0], holdings[-1] = p.X, 0.0  # exact ends, whatever the rounding
    trades = [holdings[j - 1] - holdings[j] for j in range(1, p.N + 1)]
    return AcSchedule(
        params=p,
        holdings=tuple(holdings),
        trades=tuple(trades),
        kappa=kappa,
        expected_cost=expected_cost(p, trades),
        variance=variance(p, holdings),
    )


def expected_cost(p: AcParams, trades: Iterable[float]) -> float:
    """E of any trajectory given by its trades n_1..n_N (the paper's eq. for E[x])."""
    n = list(trades)
    return (
        0.5 * p.gamma * p.X**2
        + p.epsilon * math.fsum(abs(v) for v in n)
        + p.eta_tilde / p.tau * math.fsum(v * v for v in n)
    )


def variance(p: AcParams, holdings: Iterable[float]) -> float:
    """V of any trajectory given by its holdings x_0..x_N (x_0 does not enter)."""
    x = list(holdings)
    return p.sigma**2 * p.tau * math.fsum(v * v for v in x[1:])


def closed_form_cost_variance(p: AcParams) -> tuple[float, float]:
    """E and V of the optimal trajectory from the paper's closed forms.

    E = 1/2 gamma X^2 + epsilon X
        + eta_tilde X^2 tanh(kappa tau / 2) (tau sinh(2 kappa T) + 2 T sinh(kappa tau))
          / (2 tau^2 sinh^2(kappa T))
    V = 1/2 sigma^2 X^2 (tau sinh(kappa T) cosh(kappa (T - tau)) - T sinh(kappa tau))
        / (sinh^2(kappa T) sinh(kappa tau))
    rewritten with coth and sinh ratios so that large kappa T does not overflow. V
    subtracts two terms of order 1 / (kappa T)^2, so it loses digits as kappa T -> 0;
    `ac_trajectory` therefore reports the sums, and this serves as their check.
    """
    kappa = ac_kappa(p)
    X, T, tau = p.X, p.T, p.tau
    fixed = 0.5 * p.gamma * X**2 + p.epsilon * X
    if kappa == 0.0:  # the limits of both forms: the linear trajectory
        cost = fixed + p.eta_tilde * X**2 / T
        var = p.sigma**2 * X**2 * T / 3.0 * (1 - 1 / p.N) * (1 - 0.5 / p.N)
        return cost, var
    kT, ktau = kappa * T, kappa * tau
    inv_sinh_kT = 2.0 * math.exp(-kT) / (-math.expm1(-2.0 * kT))
    sinh_ratio = _sinh_ratio(ktau, kT)  # sinh(kappa tau) / sinh(kappa T)
    bracket = 2.0 * tau / math.tanh(kT) + 2.0 * T * sinh_ratio * inv_sinh_kT
    cost = fixed + p.eta_tilde * X**2 * math.tanh(0.5 * ktau) * bracket / (2.0 * tau**2)
    # cosh(kappa (T - tau)) / sinh(kappa T), stably: e^-ktau (1 + e^-2(kT - ktau)) / (1 - e^-2kT)
    cosh_ratio = math.exp(-ktau) * (1.0 + math.exp(-2.0 * (kT - ktau))) / (-math.expm1(-2.0 * kT))
    var = 0.5 * p.sigma**2 * X**2 * (tau * cosh_ratio / math.sinh(ktau) - T * inv_sinh_kT**2)
    return cost, max(0.0, var)  # N = 1 has V = 0, which the difference may miss by rounding


def efficient_frontier(p: AcParams, lambdas: Iterable[float]) -> list[FrontierPoint]:
    """E and V of the optimal trajectory for each risk aversion (the rest of `p` fixed)."""
    points = []
    for lam in lambdas:
        s = ac_trajectory(replace(p, lam=lam))
        points.append(FrontierPoint(lam, s.expected_cost, s.variance, s.kappa))
    return points


# ------------------------------------------------------------------------- calibration


def calibrate(
    history: MarketHistory,
    qty: int,
    horizon_s: float,
    periods: int | None = None,
    urgency: float = DEFAULT_URGENCY,
    lam: float | None = None,
) -> AcParams:
    """Model parameters for a parent of `qty` shares over `horizon_s`, from pre-arrival data.

    Units: price in currency per share, time in seconds, quantities in shares; so sigma
    is per sqrt(second), eta in currency*s/share^2 and lam per unit of currency.

    - sigma = daily_vol * price / sqrt(6.5 h in seconds).
    - epsilon = half the typical spread + the taker fee.
    - eta: the square-root law says trading at rate v (shares/s) costs about
      Y * daily_vol * price * sqrt(v * day / ADV) per share. The linear model charges
      eta * v; we pick the eta for which both agree at the TWAP rate v = qty / horizon_s,
      so the model's cost of the TWAP schedule matches the square-root law's.
    - gamma: PERMANENT_FRACTION of the square-root impact of the whole parent,
      Y * daily_vol * price * sqrt(qty / ADV), spread over its qty shares; capped at
      eta / tau so that eta_tilde >= eta / 2 > 0.
    - lam: if not given, the risk aversion for which kappa * T equals `urgency` (1.5 by
      default; for the reference case, 500,000 QDI over 3 h, that is lam ~ 3.8e-6 per
      currency unit). Urgency, unlike lam, means the same for every instrument and size.

    `periods` defaults to one per DEFAULT_PERIOD_S seconds.
    """
    if qty <= 0:
        raise DomainError(f"almgren-chriss: quantity must be > 0, got {qty}")
    if not math.isfinite(horizon_s) or horizon_s <= 0:
        raise DomainError(f"almgren-chriss: horizon must be > 0 s, got {horizon_s}")
    for field_name, value in (
        ("price", history.price),
        ("adv", history.adv),
        ("daily_vol", history.daily_vol),  # the impact model scales with it too
        ("impact_y", history.impact_y),
    ):
        if not math.isfinite(value) or value <= 0:
            raise DomainError(f"almgren-chriss: history.{field_name} must be > 0, got {value}")
    if not math.isfinite(history.spread) or history.spread < 0:
        raise DomainError(f"almgren-chriss: history.spread must be >= 0, got {history.spread}")
    if not math.isfinite(history.taker_fee):  # a rebate (< 0) is fine while epsilon >= 0
        raise DomainError(
            f"almgren-chriss: history.taker_fee must be finite, got {history.taker_fee}"
        )
    if not math.isfinite(urgency) or urgency < 0:
        raise DomainError(f"almgren-chriss: urgency must be >= 0, got {urgency}")
    n = max(1, round(horizon_s / DEFAULT_PERIOD_S)) if periods is None else periods
    if n < 1:
        raise DomainError(f"almgren-chriss: periods must be >= 1, got {n}")
    tau = horizon_s / n

    price_vol = history.daily_vol * history.price  # currency per share per day^0.5
    sigma = price_vol / math.sqrt(TRADING_DAY_S)
    epsilon = 0.5 * history.spread + history.taker_fee
    rate = qty / horizon_s
    twap_impact = history.impact_y * price_vol * math.sqrt(rate * TRADING_DAY_S / history.adv)
    eta = twap_impact / rate
    total_impact = history.impact_y * price_vol * math.sqrt(qty / history.adv)
    gamma = min(PERMANENT_FRACTION * total_impact / qty, eta / tau)
    if lam is None:
        # invert kappa: kappa_tilde^2 = (2 sinh(kappa tau / 2) / tau)^2 = lam sigma^2 / eta_tilde
        eta_tilde = eta - 0.5 * gamma * tau
        kappa = urgency / horizon_s
        kappa_tilde_sq = (2.0 * math.sinh(0.5 * kappa * tau) / tau) ** 2
        lam = kappa_tilde_sq * eta_tilde / sigma**2
    return AcParams(
        X=float(qty),
        T=float(horizon_s),
        N=n,
        sigma=sigma,
        eta=eta,
        gamma=gamma,
        epsilon=epsilon,
        lam=lam,
    )


class AcSlicer(ScheduleSlicer):
    """Follows an Almgren-Chriss trajectory, linear between its period boundaries."""

    __slots__ = ("schedule",)

    def __init__(self, schedule: AcSchedule, time_unit_s: float = 1.0) -> None:
        """`time_unit_s`: seconds per time unit of the schedule's parameters."""
        if not math.isfinite(time_unit_s) or time_unit_s <= 0:
            raise DomainError(f"almgren-chriss: time_unit_s must be > 0, got {time_unit_s}")
        x0 = schedule.params.X
        super().__init__(
            "ac",
            [t * time_unit_s for t in schedule.times],
            [round(x0 - x) for x in schedule.holdings],
        )
        self.schedule = schedule

    @classmethod
    def from_history(
        cls,
        history: MarketHistory,
        qty: int,
        horizon_s: float,
        periods: int | None = None,
        lam: float | None = None,
        urgency: float = DEFAULT_URGENCY,
    ) -> AcSlicer:
        """Calibrate on `history` (see `calibrate`, seconds) and follow the optimal path."""
        params = calibrate(history, qty, horizon_s, periods, urgency=urgency, lam=lam)
        return cls(ac_trajectory(params))
