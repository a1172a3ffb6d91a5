"""`MarketFacts`: the stylized facts of one market, and the statistics both sources
(a replayed capture, a simulated run) compute them with, so that they are measured the
same way: spreads and depths from the book sampled on a fixed clock, returns from the
sampled mid, order sizes, lifetimes and the cancel-to-trade ratio from the orders."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

#: the band around the mid whose depth is counted ("depth within 10 bps")
DEPTH_BAND_BPS = 10.0
#: how often the book is sampled
SAMPLE_MS = 100


@dataclass(frozen=True, slots=True)
class Spread:
    """Median and 90th percentile of a distribution (None where it is empty)."""

    median: float | None
    p90: float | None

    @classmethod
    def of(cls, values: npt.ArrayLike) -> Spread:
        x = np.asarray(values, dtype=np.float64)
        x = x[np.isfinite(x)]
        if x.size == 0:
            return cls(None, None)
        med, p90 = np.percentile(x, [50, 90])
        return cls(float(med), float(p90))


@dataclass(frozen=True, slots=True)
class Returns:
    """Log returns of the mid over one horizon: excess kurtosis (0 for a normal law) and
    lag-1 autocorrelation; None where there are too few returns (or no variation)."""

    horizon_s: float
    n: int
    kurtosis: float | None
    autocorr_1: float | None

    @classmethod
    def of(cls, mid: F64, every: int, horizon_s: float) -> Returns:
        """`mid`: one sample per fixed interval (NaN where the book had a side empty);
        every `every`-th sample is taken."""
        m = np.asarray(mid, dtype=np.float64)[::every]
        r = np.diff(np.log(m))
        r = r[np.isfinite(r)]
        return cls(horizon_s, int(r.size), excess_kurtosis(r), lag1_autocorr(r))


def excess_kurtosis(r: F64) -> float | None:
    if r.size < 4:
        return None
    d = r - r.mean()
    m2 = float(np.mean(d * d))
    if m2 == 0.0:
        return None
    return float(np.mean(d**4)) / (m2 * m2) - 3.0


def lag1_autocorr(r: F64) -> float | None:
    if r.size < 3:
        return None
    a, b = r[:-1] - r[:-1].mean(), r[1:] - r[1:].mean()
    den = math.sqrt(float(np.sum(a * a)) * float(np.sum(b * b)))
    return None if den == 0.0 else float(np.sum(a * b)) / den


def ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return num / den


@dataclass(frozen=True, slots=True)
class MarketFacts:
    """The stylized facts of one market over a window.

    Sizes are in the instrument's units (BTC, shares) and in its lots; depths are per
    side (the mean of the bid's and the ask's); `*_over_touch` divide a size by the
    median touch depth. `notes` say how the source measured what it could not see
    directly.
    """

    name: str
    source: str  # "replay" or "simulator"
    unit: str  # what sizes count (BTC, a stock's shares)
    window_s: float
    tick_size: float
    lot_size: float
    price: float  # the median mid, in currency
    spread_ticks: Spread
    spread_bps: Spread
    touch_depth: Spread  # units, per side
    depth_10bps: Spread  # units within DEPTH_BAND_BPS of the mid, per side
    order_size: Spread  # units, new limit orders that rested
    order_size_lots: Spread
    order_size_over_touch: Spread
    orders: int  # new limit orders that rested
    rejected_at_once: int  # new orders gone in their own millisecond (step) untraded
    cancels: int  # resting orders deleted without a fill
    trades: int  # fills, one per maker order filled (a trade print)
    traded: float  # units traded over the window
    cancel_to_trade: float | None
    lifetime_s: Spread  # resting orders, from arrival to their delete (cancel or fill)
    events: int
    events_per_s: float
    interarrival_ms: Spread  # None where the source has no time finer than its step
    returns: tuple[Returns, ...]
    notes: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["returns"] = {f"{r.horizon_s:g}s": asdict(r) for r in self.returns}
        return doc
