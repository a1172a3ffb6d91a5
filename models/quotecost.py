"""Each dealer's pricing, learned online from the desk's own log: a ridge regression per
dealer of its quotes' cost to the client (bps from the mid) on what the desk sees at the
request (the dealer's published axe, size, panel size, volatility, two-sided or not).

A dealer's chance of quoting best depends on how its price compares with the others
asked; the trees of the dealer model get that comparison as features, from this
regression fitted on earlier RFQs only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

N_TERMS = 7
PRIOR_COST_BPS = 10.0
RIDGE = 2.0
DECAY = 0.999


def terms(
    axe_side_adv: float, size_adv: float, n_dealers: int, vol_bps: float, two_sided: bool
) -> np.ndarray:
    root = math.sqrt(size_adv)
    return np.array(
        [
            1.0,
            axe_side_adv,
            root,
            root * vol_bps,
            float(n_dealers),
            vol_bps,
            1.0 if two_sided else 0.0,
        ]
    )


class QuoteCostTracker:
    def __init__(self) -> None:
        self._a: dict[str, np.ndarray] = {}
        self._b: dict[str, np.ndarray] = {}
        self._var: dict[str, float] = {}  # running mean squared error of its predictions
        self._w: dict[str, np.ndarray] = {}  # solved coefficients, until the next quote

    def _init(self, dealer: str) -> None:
        if dealer not in self._a:
            self._a[dealer] = RIDGE * np.eye(N_TERMS)
            prior = np.zeros(N_TERMS)
            prior[0] = PRIOR_COST_BPS
            self._b[dealer] = RIDGE * prior

    def observe(self, dealer: str, z: np.ndarray, cost_bps: float) -> None:
        err = cost_bps - self.predict(dealer, z)
        self._var[dealer] = 0.98 * self._var.get(dealer, 25.0) + 0.02 * err * err
        self._a[dealer] = DECAY * self._a[dealer] + np.outer(z, z)
        self._b[dealer] = DECAY * self._b[dealer] + z * cost_bps
        self._w.pop(dealer, None)

    def _coefficients(self, dealer: str) -> np.ndarray:
        w = self._w.get(dealer)
        if w is None:
            self._init(dealer)
            w = self._w[dealer] = np.linalg.solve(self._a[dealer], self._b[dealer])
        return w

    def predict(self, dealer: str, z: np.ndarray) -> float:
        return float(z @ self._coefficients(dealer))

    def predict_each(self, dealers: Sequence[str], z: np.ndarray) -> np.ndarray:
        """`predict` of each dealer for its row of `z`, in one go (the same sums, in the
        same order)."""
        w = np.array([self._coefficients(d) for d in dealers])
        return (z * w).sum(axis=1)

    def sd(self, dealer: str) -> float:
        """How far its quotes stray from the prediction, bps."""
        return math.sqrt(self._var.get(dealer, 25.0))
