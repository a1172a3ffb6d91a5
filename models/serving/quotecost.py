"""Each dealer's pricing, learned online from the desk's own log: a ridge regression per
dealer of its quotes' cost to the client (bps from the mid) on what the desk sees at the
request (the dealer's published axe, size, panel size, volatility, two-sided or not, and
what the desk has recently asked the dealer for on the same side: a dealer remembers a
client that keeps selling, and prices the parent it guesses is behind the requests).

A dealer's chance of quoting best depends on how its price compares with the others
asked; the trees of the dealer model get that comparison as features, from this
regression fitted on earlier RFQs only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numba import njit

N_TERMS = 10
PRIOR_COST_BPS = 10.0
RIDGE = 2.0
DECAY = 0.999
#: the terms' units, chosen so that the ridge prior weighs on each alike: an axe in
#: percent of ADV (a few units, not hundredths) and sqrt(size / ADV) in tenths
AXE_UNIT = 100.0
ROOT_UNIT = 10.0


def terms(
    axe_side_adv: float,
    size_adv: float,
    n_dealers: int,
    vol_bps: float,
    two_sided: bool,
    flow_adv: float = 0.0,
) -> np.ndarray:
    """A request's pricing terms for one dealer. `axe_side_adv`: its published position
    / ADV times the client's side (> 0: long and the client buys). `flow_adv`: the
    client's net recent requests to that dealer on the side priced, / ADV (0 when it
    asked for the other side more); it enters as vol x sqrt(flow), the square-root
    law's shape. The last two terms are the shapes of a dealer's own cost of the trade
    (dealers price risk transfer so, see `carry_shapes`), its axe taken for its
    inventory: linear terms alone cannot follow how an axe and a size combine."""
    root = math.sqrt(size_adv)
    unwind, risk = carry_shapes(axe_side_adv, size_adv)
    return np.array(
        [
            1.0,
            axe_side_adv * AXE_UNIT,
            root * ROOT_UNIT,
            root * vol_bps,
            float(n_dealers),
            vol_bps,
            1.0 if two_sided else 0.0,
            flow_term(flow_adv, vol_bps),
            unwind * vol_bps,
            risk * vol_bps,
        ]
    )


@njit(cache=True)
def carry_shapes(axe_side_adv: float, size_adv: float) -> tuple[float, float]:
    """Per unit of the trade, how a dealer holding `axe_side_adv` (/ ADV, client's side)
    is charged by the square-root law for unwinding, and by a mean-variance premium for
    carrying, what is left after the client's trade of `size_adv` (dealers/pricing.py:
    the change of |x|^1.5 and, where it grows, of x^2, over the size), to be multiplied
    by the volatility. A flat dealer's are sqrt(size) and size."""
    if size_adv <= 0.0:
        return 0.0, 0.0
    after = axe_side_adv - size_adv  # the client buys what the dealer holds for it
    unwind = (abs(after) ** 1.5 - abs(axe_side_adv) ** 1.5) / size_adv
    risk = max(0.0, after * after - axe_side_adv * axe_side_adv) / size_adv
    return unwind, risk


def flow_term(flow_adv: float, vol_bps: float) -> float:
    """The term of the client's recent same-side requests (see `terms`)."""
    return math.sqrt(max(flow_adv, 0.0)) * vol_bps


class QuoteCostTracker:
    def __init__(self) -> None:
        self._a: dict[str, np.ndarray] = {}
        self._b: dict[str, np.ndarray] = {}
        self._var: dict[str, float] = {}  # running mean squared error of its predictions
        self._w: dict[str, np.ndarray] = {}  # solved coefficients, per dealer
        # per group of dealers: their coefficients stacked and their sds, until a quote
        self._stacked: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}

    def _init(self, dealer: str) -> None:
        if dealer not in self._a:
            self._a[dealer] = RIDGE * np.eye(N_TERMS)
            prior = np.zeros(N_TERMS)
            prior[0] = PRIOR_COST_BPS
            self._b[dealer] = RIDGE * prior

    def observe(
        self,
        dealer: str,
        z: np.ndarray,
        cost_bps: float,
        spread_err: float | None = None,
        known_var: float = 0.0,
    ) -> None:
        """Learn one quote's cost. `spread_err`: its error relative to the other quotes of
        the request (see `observe_rfq`), for the spread; else its own prediction error.
        `known_var`: the part of that error's variance the desk knows it cannot explain
        (it does not know the dealer's exact position, models.serving.inventory), left
        out of the spread, which is then the dealer's own price noise."""
        err = cost_bps - self.predict(dealer, z) if spread_err is None else spread_err
        sample = err * err - known_var
        self._var[dealer] = 0.98 * self._var.get(dealer, 25.0) + 0.02 * sample
        self._a[dealer] = DECAY * self._a[dealer] + np.outer(z, z)
        self._b[dealer] = DECAY * self._b[dealer] + z * cost_bps
        # solved now, as the quote arrives, rather than by the next decision that asks
        self._w[dealer] = np.linalg.solve(self._a[dealer], self._b[dealer])
        self._stacked.clear()

    def observe_rfq(
        self,
        quotes: Sequence[tuple[str, np.ndarray, float]],
        known_var: Sequence[float] | None = None,
    ) -> None:
        """Learn the quotes of one request: (dealer, terms, cost) each, with the variance
        of each prediction the desk knows of (`known_var`, see `observe`).

        Quotes of one request share a shock the desk cannot see: the dealers price off a
        fair value that the lit mid only follows (by several bps in an illiquid bond).
        It moves every cost alike and so decides nothing about who is cheapest, which is
        what the spread is for: with two quotes or more, a dealer's spread is learned
        from its error minus the mean error of the others, scaled by (k - 1) / k (exact
        when all spreads are equal), so the shared shock cancels."""
        errs = [cost - self.predict(d, z) for d, z, cost in quotes]
        k, total = len(quotes), sum(errs)
        known = [0.0] * k if known_var is None else list(known_var)
        known_total = sum(known)
        for (d, z, cost), err, v in zip(quotes, errs, known, strict=True):
            if k < 2:
                self.observe(d, z, cost, known_var=v)
                continue
            rel = err - (total - err) / (k - 1)
            # the known variance of `rel`, scaled alike
            v_rel = (v + (known_total - v) / (k - 1) ** 2) * (k - 1) / k
            self.observe(d, z, cost, rel * math.sqrt((k - 1) / k), v_rel)

    def coefficients(self, dealer: str) -> np.ndarray:
        w = self._w.get(dealer)
        if w is None:
            self._init(dealer)
            w = self._w[dealer] = np.linalg.solve(self._a[dealer], self._b[dealer])
        return w

    def predict(self, dealer: str, z: np.ndarray) -> float:
        # summed in order, as the desk's compiled pricing does (a BLAS dot product may
        # group the terms differently and differ in the last bit)
        total = 0.0
        for a, b in zip(z.tolist(), self.coefficients(dealer).tolist(), strict=True):
            total += a * b
        return total

    def sd(self, dealer: str) -> float:
        """How far its quotes stray from the prediction, bps."""
        # a floor: the known part may outweigh a few small errors
        return math.sqrt(max(self._var.get(dealer, 25.0), 1e-6))

    def stacked(self, dealers: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The dealers' coefficients, a row each, and their `sd`s; kept until a quote
        is learned."""
        key = tuple(dealers)
        hit = self._stacked.get(key)
        if hit is None:
            w = np.array([self.coefficients(d) for d in dealers])
            sd = np.array([self.sd(d) for d in dealers])
            hit = self._stacked[key] = (w, sd)
        return hit
