"""The simulated dealers' true probabilities: the oracle that evaluation code measures
learned models against, never an input of the router.

`DealerTruth` is one row per (request, dealer): the probability that the dealer answers
with a quote in time and that its quote is the best one. `p_lowest` is the arithmetic
behind the second: the chance that one of several independent, possibly silent
competitors has the lowest cost (dealers/quoting.py fills the rows in; the router's
dealer features, models/serving/desk.py, use the same integral on their own estimates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from router.domain import DealerId, Nanos, RfqId, Side


@dataclass(frozen=True, slots=True)
class DealerTruth:
    """The simulator's own probabilities for one dealer on one request (oracle)."""

    rfq_id: RfqId
    dealer: DealerId
    ts_ns: Nanos
    p_respond: float  # answers with a quote within the time limit
    p_best_buy: float  # ... and its offer is the best one (client buys)
    p_best_sell: float  # ... and its bid is the best one (client sells)

    def p_best(self, side: Side) -> float:
        return self.p_best_buy if side is Side.BUY else self.p_best_sell


def lognormal_cdf(x: float, median: float, sigma: float) -> float:
    if sigma <= 0:
        return 1.0 if median <= x else 0.0
    return 0.5 * (1.0 + math.erf(math.log(x / median) / (sigma * math.sqrt(2.0))))


def p_lowest(p: np.ndarray, mu: np.ndarray, sd: np.ndarray, n: int = 1601) -> np.ndarray:
    """P(dealer i responds and has the lowest cost), costs independent normals N(mu, sd)
    and responses independent Bernoulli(p): the integral over i's cost c of its density
    times, for every other dealer, P(no answer or a higher cost). Trapezoid rule on `n`
    points over mu +- 8 sd; compiled, as the router's dealer features use it per panel."""
    p = np.ascontiguousarray(p, dtype=np.float64)
    mu = np.ascontiguousarray(mu, dtype=np.float64)
    sd = np.ascontiguousarray(sd, dtype=np.float64)
    return np.clip(p_lowest_unclipped(p, mu, sd, n), 0.0, 1.0)


@njit(cache=True)
def p_lowest_unclipped(
    p: np.ndarray, mu: np.ndarray, sd: np.ndarray, n: int, first_only: bool = False
) -> np.ndarray:
    """`p_lowest` before clipping rounding errors to [0, 1]; callable from compiled code.
    `first_only`: only the first dealer's (the others' entries are left at 0), for a
    third of the work when scoring one candidate against a panel."""
    k = p.shape[0]
    scored = 1 if first_only else k
    lo = np.min(mu - 8.0 * sd)
    hi = np.max(mu + 8.0 * sd)
    step = (hi - lo) / (n - 1)
    out = np.zeros(k)
    log_beaten = np.empty(k)
    pdf = np.empty(k)
    root2 = math.sqrt(2.0)
    norm = 1.0 / math.sqrt(2.0 * math.pi)
    for j in range(n):
        c = lo + j * step
        weight = step * (0.5 if j == 0 or j == n - 1 else 1.0)
        log_all = 0.0
        for i in range(k):
            z = (c - mu[i]) / sd[i]
            if i < scored:
                pdf[i] = math.exp(-0.5 * z * z) * norm / sd[i]
            b = 1.0 - p[i] * 0.5 * math.erfc(-z / root2)  # P(i does not undercut c)
            log_beaten[i] = math.log(max(b, 1e-300))
            log_all += log_beaten[i]
        for i in range(scored):
            out[i] += weight * pdf[i] * math.exp(log_all - log_beaten[i])
    for i in range(scored):
        out[i] *= p[i]
    return out
