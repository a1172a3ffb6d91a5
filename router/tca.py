"""Transaction cost analysis on fills and the market path, and the hindsight schedule.

Conventions (CONTRACT.md): implementation shortfall (IS) is in basis points of the
arrival notional (qty * arrival mid), positive = cost, for buys and sells alike;
quantity left unfilled at the horizon is charged at the horizon's mid (opportunity
cost); fees count as cost (rebates reduce it).

`analyze` splits IS of one parent execution into parts that sum to it exactly (to float
rounding). With s = side.sign, A = arrival mid, m(t) the realised mid, m'(t) the
unimpacted mid (same seed, no parent), fill i = (t_i, q_i, p_i, fee_i), N = qty * A:

    spread_fees  = [sum s (p_i - m(t_i)) q_i + sum fee_i] / N   paid vs the live mid
    impact       = [sum s (m(t_i) - A) q_i] / N - timing         our own footprint
    timing       = [sum s (m'(t_i) - m'(0)) q_i] / N             the market's own drift
    opportunity  = (qty - filled) s (m(end) - A) / N             the unfilled rest

Without an unimpacted path impact cannot be told from drift: impact = 0 and the whole
mid move is timing (`impact_method` says which). Fill-level quality uses the sign
convention "positive = good for us": price improvement s (far touch - p) / p and
markouts s (m(t + h) - p) / p, both in bps of the fill price: a buy followed by a rise
scores positive, and adverse selection (a fall after we bought) shows as negative.

`solve_hindsight` is the hindsight schedule: the best bucket taking schedule given perfect
knowledge of the unimpacted mid path, under a simple cost model; the composition root
runs it through the simulator like any strategy so its IS is measured the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from router.domain import (
    NANOS_PER_SECOND,
    ChildOrder,
    ChildOrderFilled,
    DomainError,
    Side,
    VenueId,
    VenueKind,
)

FloatArray = npt.NDArray[np.float64]

#: Markout horizons in seconds, reported under keys "1s", "10s", ...
MARKOUT_HORIZONS_S: tuple[int, ...] = (1, 10, 60, 300)

IMPACT_FROM_UNIMPACTED = "unimpacted_path"
IMPACT_NOT_SEPARATED = "none: no unimpacted path, the whole mid move counts as timing"


# --------------------------------------------------------------------------------------
# Price path
# --------------------------------------------------------------------------------------


def _ffill(values: FloatArray) -> FloatArray:
    """Last valid value at or before each index; leading gaps take the first valid one."""
    valid = ~np.isnan(values)
    if not valid.any():
        return values.copy()
    first = int(np.argmax(valid))
    if valid[first:].all():
        # no gap after the first valid value (every path of a calm day here, about half
        # of a news-shock's, whose books empty a side): the same numbers without the
        # index arithmetic, a thirtieth of its time on a day's 123,000 steps
        out = values.copy()
        out[:first] = values[first]
        return out
    idx = np.where(valid, np.arange(values.size), -1)
    np.maximum.accumulate(idx, out=idx)
    idx[idx < 0] = first
    return values[idx]


@dataclass(frozen=True, slots=True, eq=False)  # eq on arrays is ambiguous: identity only
class PricePath:
    """Top of book over time: `times_s` strictly increasing seconds since the parent's
    start, `bid`/`ask` in price units, NaN where a side was empty.

    Lookups return the last valid value at or before t (before the first point, or before
    the first valid value, the first valid value); NaN only if a side was never valid.
    """

    times_s: FloatArray
    bid: FloatArray
    ask: FloatArray
    _bid_ff: FloatArray = field(init=False, repr=False)
    _ask_ff: FloatArray = field(init=False, repr=False)
    _mid_ff: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        t = np.asarray(self.times_s, dtype=np.float64)
        b = np.asarray(self.bid, dtype=np.float64)
        a = np.asarray(self.ask, dtype=np.float64)
        if t.ndim != 1 or t.size == 0 or b.shape != t.shape or a.shape != t.shape:
            raise DomainError(
                f"price path: times_s, bid and ask must be 1-D of one length >= 1, "
                f"got shapes {t.shape}, {b.shape}, {a.shape}"
            )
        if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
            raise DomainError("price path: times_s must be finite and strictly increasing")
        # A mid exists only where both sides do; a one-sided instant keeps the last mid.
        mid = np.where(np.isnan(b) | np.isnan(a), np.nan, 0.5 * (b + a))
        for name, value in (
            ("times_s", t),
            ("bid", b),
            ("ask", a),
            ("_bid_ff", _ffill(b)),
            ("_ask_ff", _ffill(a)),
            ("_mid_ff", _ffill(mid)),
        ):
            object.__setattr__(self, name, value)

    def __reduce__(self) -> tuple[type[PricePath], tuple[FloatArray, FloatArray, FloatArray]]:
        # the forward-filled arrays are derived: a pickle (a run sent back from a worker
        # of `simulate --workers`) carries the three given ones, half the bytes, and
        # __post_init__ derives the rest again, the same numbers
        return (PricePath, (self.times_s, self.bid, self.ask))

    @property
    def start_s(self) -> float:
        return float(self.times_s[0])

    @property
    def end_s(self) -> float:
        return float(self.times_s[-1])

    def _index(self, t_s: npt.ArrayLike) -> npt.NDArray[np.intp]:
        i = np.searchsorted(self.times_s, np.asarray(t_s, dtype=np.float64), side="right") - 1
        return np.maximum(i, 0)

    def mids_at(self, t_s: npt.ArrayLike) -> FloatArray:
        return self._mid_ff[self._index(t_s)]

    def bids_at(self, t_s: npt.ArrayLike) -> FloatArray:
        return self._bid_ff[self._index(t_s)]

    def asks_at(self, t_s: npt.ArrayLike) -> FloatArray:
        return self._ask_ff[self._index(t_s)]

    def mid_at(self, t_s: float) -> float:
        return float(self.mids_at(t_s))

    def bid_at(self, t_s: float) -> float:
        return float(self.bids_at(t_s))

    def ask_at(self, t_s: float) -> float:
        return float(self.asks_at(t_s))

    def mean_mids(self, edges_s: npt.ArrayLike) -> FloatArray:
        """Time-weighted mean of the (step) mid over each [edges[k], edges[k+1]).

        Suits the per-bucket mids of `solve_hindsight`: what spreading a bucket's
        trades evenly over it would meet on average.
        """
        e = np.asarray(edges_s, dtype=np.float64)
        if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0):
            raise DomainError("mean_mids: edges must be 1-D, >= 2 points, strictly increasing")
        t, v = self.times_s, self._mid_ff
        # integral of the step function from times_s[0], extended flat on both sides
        cum = np.concatenate(([0.0], np.cumsum(v[:-1] * np.diff(t))))
        raw = np.searchsorted(t, e, side="right") - 1
        i = np.maximum(raw, 0)
        integral = np.where(raw < 0, v[0] * (e - t[0]), cum[i] + v[i] * (e - t[i]))
        return np.asarray(np.diff(integral) / np.diff(e), dtype=np.float64)

    def resample(self, step_s: float) -> PricePath:
        """Every `step_s` from the first point to the last (for plots): last values."""
        if not step_s > 0:
            raise DomainError(f"resample: step must be > 0 s, got {step_s}")
        n = math.floor((self.end_s - self.start_s) / step_s + 1e-9) + 1  # 3.0 / 0.1 < 30
        grid = self.start_s + step_s * np.arange(n, dtype=np.float64)
        return PricePath(grid, self.bids_at(grid), self.asks_at(grid))


# --------------------------------------------------------------------------------------
# Summary (kept for router/app.py) and the full report
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TcaSummary:
    is_bps: float
    filled_qty: int
    avg_price: float
    vwap_slippage_bps: float
    completion: float
    venue_mix: dict[str, float]


def implementation_shortfall_bps(
    side: Side,
    qty: int,
    arrival_mid: float,
    end_mid: float,
    fills: Iterable[ChildOrderFilled],
) -> float:
    filled = 0
    cost = 0.0
    for f in fills:
        filled += f.qty
        cost += f.qty * (f.price - arrival_mid) * side.sign + f.fee
    unfilled = qty - filled
    cost += unfilled * (end_mid - arrival_mid) * side.sign
    return 1e4 * cost / (qty * arrival_mid)


def _kind(venue_kinds: Mapping[VenueId, VenueKind], venue: VenueId) -> VenueKind:
    try:
        return venue_kinds[venue]
    except KeyError:
        raise DomainError(f"TCA: fill on venue {venue!r} of unknown kind") from None


def _venue_mix(
    fills: Sequence[ChildOrderFilled], venue_kinds: Mapping[VenueId, VenueKind]
) -> dict[str, float]:
    mix = {k.value: 0.0 for k in VenueKind}
    filled = sum(f.qty for f in fills)
    for f in fills:
        mix[_kind(venue_kinds, f.venue).value] += f.qty / filled
    return mix


def summarize(
    side: Side,
    qty: int,
    arrival_mid: float,
    end_mid: float,
    market_vwap: float | None,
    fills: list[ChildOrderFilled],
    venue_kinds: Mapping[VenueId, VenueKind],
) -> TcaSummary:
    filled = sum(f.qty for f in fills)
    avg = sum(f.qty * f.price for f in fills) / filled if filled else 0.0
    slip = 0.0
    if filled and market_vwap:
        slip = 1e4 * side.sign * (avg - market_vwap) / market_vwap
    return TcaSummary(
        is_bps=implementation_shortfall_bps(side, qty, arrival_mid, end_mid, fills),
        filled_qty=filled,
        avg_price=avg,
        vwap_slippage_bps=slip,
        completion=filled / qty,
        venue_mix=_venue_mix(fills, venue_kinds),
    )


def _json_float(x: float | None) -> float | None:
    """NaN/inf are not JSON: report them as null."""
    return None if x is None or not math.isfinite(x) else float(x)


def _weighted(values: FloatArray, weights: FloatArray) -> float | None:
    """Weight-averaged value over the finite entries; None when there are none."""
    ok = np.isfinite(values)
    w = weights[ok]
    if w.sum() <= 0:
        return None
    return float(np.dot(values[ok], w) / w.sum())


@dataclass(frozen=True, slots=True)
class VenueStats:
    """Quality of one venue's fills; bps figures are qty-weighted, positive = good."""

    venue: str
    kind: str
    sent_qty: int
    filled_qty: int
    n_fills: int
    fill_share: float  # of the parent's filled qty
    fill_rate: float | None  # filled / sent; None if nothing was sent (fill without a child)
    avg_price: float | None
    fees: float
    price_improvement_bps: float | None
    markouts_bps: dict[str, float | None]

    def to_json(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "kind": self.kind,
            "sent_qty": self.sent_qty,
            "filled_qty": self.filled_qty,
            "n_fills": self.n_fills,
            "fill_share": self.fill_share,
            "fill_rate": _json_float(self.fill_rate),
            "avg_price": _json_float(self.avg_price),
            "fees": self.fees,
            "price_improvement_bps": _json_float(self.price_improvement_bps),
            "markouts_bps": {k: _json_float(v) for k, v in self.markouts_bps.items()},
        }


@dataclass(frozen=True, slots=True)
class TcaReport:
    """The full TCA of one parent execution. The four `*_bps` parts sum to `is_bps`."""

    side: str
    qty: int
    arrival_mid: float
    end_mid: float
    is_bps: float
    filled_qty: int
    avg_price: float  # 0.0 without fills, as in TcaSummary
    vwap_slippage_bps: float  # 0.0 without fills or market VWAP
    completion: float
    venue_mix: dict[str, float]
    n_fills: int
    n_child_orders: int
    fees: float
    spread_fees_bps: float
    impact_bps: float
    timing_bps: float
    opportunity_bps: float
    impact_method: str
    arrival_to_completion_bps: float
    price_improvement_bps: float | None
    markouts_bps: dict[str, float | None]
    venues: dict[str, VenueStats]
    market_vwap: float | None = None

    def summary(self) -> TcaSummary:
        return TcaSummary(
            is_bps=self.is_bps,
            filled_qty=self.filled_qty,
            avg_price=self.avg_price,
            vwap_slippage_bps=self.vwap_slippage_bps,
            completion=self.completion,
            venue_mix=dict(self.venue_mix),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "qty": self.qty,
            "arrival_mid": self.arrival_mid,
            "end_mid": _json_float(self.end_mid),
            "is_bps": _json_float(self.is_bps),
            "filled_qty": self.filled_qty,
            "avg_price": self.avg_price,
            "vwap_slippage_bps": self.vwap_slippage_bps,
            "completion": self.completion,
            "venue_mix": dict(self.venue_mix),
            "n_fills": self.n_fills,
            "n_child_orders": self.n_child_orders,
            "fees": self.fees,
            "decomposition": {
                "spread_fees_bps": _json_float(self.spread_fees_bps),
                "impact_bps": _json_float(self.impact_bps),
                "timing_bps": _json_float(self.timing_bps),
                "opportunity_bps": _json_float(self.opportunity_bps),
                "impact_method": self.impact_method,
            },
            "arrival_to_completion_bps": _json_float(self.arrival_to_completion_bps),
            "price_improvement_bps": _json_float(self.price_improvement_bps),
            "markouts_bps": {k: _json_float(v) for k, v in self.markouts_bps.items()},
            "venues": {v: s.to_json() for v, s in self.venues.items()},
            "market_vwap": _json_float(self.market_vwap),
        }


def _markouts(
    path: PricePath, t: FloatArray, p: FloatArray, q: FloatArray, sign: int
) -> dict[str, float | None]:
    # Past the path's end the lookup holds the last point, as documented.
    return {
        f"{h}s": _weighted(sign * (path.mids_at(t + h) - p) / p * 1e4, q)
        for h in MARKOUT_HORIZONS_S
    }


def analyze(
    side: Side,
    qty: int,
    arrival_mid: float,
    end_s: float,
    fills: Sequence[ChildOrderFilled],
    children: Sequence[ChildOrder],
    path: PricePath,
    unimpacted: PricePath | None,
    venue_kinds: Mapping[VenueId, VenueKind],
    market_vwap: float | None,
) -> TcaReport:
    """Full TCA of one parent order; see the module docstring for the definitions.

    Fill times are `ts_ns / 1e9` seconds on the same origin as the paths (the parent's
    start). `arrival_to_completion_bps` is s (m(t_c) - A) / A with t_c the last fill's
    time if the order completed, else `end_s`: positive = the market moved against us.
    """
    if qty <= 0:
        raise DomainError(f"TCA: parent quantity must be > 0, got {qty}")
    if not arrival_mid > 0:
        raise DomainError(f"TCA: arrival mid must be > 0, got {arrival_mid}")
    for f in fills:
        if f.side is not side:
            raise DomainError(
                f"TCA: fill of child {f.child_id} is a {f.side.value}, the parent a {side.value}"
            )
    s = side.sign
    notional = qty * arrival_mid
    t = np.array([f.ts_ns / NANOS_PER_SECOND for f in fills], dtype=np.float64)
    q = np.array([f.qty for f in fills], dtype=np.float64)
    p = np.array([f.price for f in fills], dtype=np.float64)
    fee = np.array([f.fee for f in fills], dtype=np.float64)
    venue = [f.venue for f in fills]
    filled = sum(f.qty for f in fills)
    fees = float(fee.sum())

    end_mid = path.mid_at(end_s)
    m = path.mids_at(t)
    move = float(np.dot(s * (m - arrival_mid), q))
    if unimpacted is not None:
        timing = float(np.dot(s * (unimpacted.mids_at(t) - unimpacted.mid_at(0.0)), q))
        impact, method = move - timing, IMPACT_FROM_UNIMPACTED
    else:
        timing, impact, method = move, 0.0, IMPACT_NOT_SEPARATED
    spread_fees = float(np.dot(s * (p - m), q)) + fees
    opportunity = (qty - filled) * s * (end_mid - arrival_mid)

    t_done = float(t.max()) if fills and filled >= qty else end_s
    far = path.asks_at(t) if side is Side.BUY else path.bids_at(t)
    improvement = s * (far - p) / p * 1e4

    venues: dict[str, VenueStats] = {}
    sent: dict[VenueId, int] = {}
    for c in children:
        sent[c.venue] = sent.get(c.venue, 0) + c.qty
    names = list(dict.fromkeys([*sent, *venue]))  # first-seen order, deterministic
    for v in names:
        mask = np.array([x == v for x in venue], dtype=bool)
        vq = int(q[mask].sum())
        v_sent = sent.get(v, 0)
        venues[v] = VenueStats(
            venue=v,
            kind=_kind(venue_kinds, v).value,
            sent_qty=v_sent,
            filled_qty=vq,
            n_fills=int(mask.sum()),
            fill_share=vq / filled if filled else 0.0,
            fill_rate=vq / v_sent if v_sent else None,
            avg_price=float(np.dot(p[mask], q[mask]) / vq) if vq else None,
            fees=float(fee[mask].sum()),
            price_improvement_bps=_weighted(improvement[mask], q[mask]),
            markouts_bps=_markouts(path, t[mask], p[mask], q[mask], s),
        )

    base = summarize(side, qty, arrival_mid, end_mid, market_vwap, list(fills), venue_kinds)
    return TcaReport(
        side=side.value,
        qty=qty,
        arrival_mid=arrival_mid,
        end_mid=end_mid,
        is_bps=base.is_bps,
        filled_qty=filled,
        avg_price=base.avg_price,
        vwap_slippage_bps=base.vwap_slippage_bps,
        completion=base.completion,
        venue_mix=base.venue_mix,
        n_fills=len(fills),
        n_child_orders=len(children),
        fees=fees,
        spread_fees_bps=1e4 * spread_fees / notional,
        impact_bps=1e4 * impact / notional,
        timing_bps=1e4 * timing / notional,
        opportunity_bps=1e4 * opportunity / notional,
        impact_method=method,
        arrival_to_completion_bps=1e4 * s * (path.mid_at(t_done) - arrival_mid) / arrival_mid,
        price_improvement_bps=_weighted(improvement, q),
        markouts_bps=_markouts(path, t, p, q, s),
        venues=venues,
        market_vwap=market_vwap,
    )


def gap_captured(
    is_strategy: float, is_twap: float, is_oracle: float, min_gap_bps: float = 0.01
) -> float | None:
    """Share of the TWAP-to-hindsight IS gap a strategy captured: 0 = as TWAP, 1 = as the
    hindsight oracle, < 0 worse than TWAP, > 1 better than the (approximate) oracle.
    None unless the oracle beat TWAP by at least `min_gap_bps`: below that, or when the
    approximate oracle did worse than TWAP, the ratio would be noise."""
    gap = is_twap - is_oracle
    if not math.isfinite(gap) or gap < min_gap_bps:
        return None
    return (is_twap - is_strategy) / gap


# --------------------------------------------------------------------------------------
# The hindsight schedule
# --------------------------------------------------------------------------------------


def water_fill(
    linear: npt.ArrayLike, quad: npt.ArrayLike, caps: npt.ArrayLike, total: float
) -> FloatArray:
    """Exact minimiser of sum a_k x_k + b_k x_k^2 s.t. sum x_k = total, 0 <= x_k <= cap_k.

    KKT: x_k(lam) = clip((lam - a_k) / (2 b_k), 0, cap_k), nondecreasing in the
    multiplier lam; bisection finds the lam where the sum meets `total`. Needs b_k > 0
    wherever cap_k > 0 and sum cap_k >= total.
    """
    a = np.asarray(linear, dtype=np.float64)
    b = np.asarray(quad, dtype=np.float64)
    cap = np.asarray(caps, dtype=np.float64)
    live = cap > 0
    if np.any(b[live] <= 0):
        raise ValueError("water_fill: quadratic coefficients must be > 0 where cap > 0")
    if total < 0 or total > cap.sum() * (1 + 1e-12):
        raise ValueError(f"water_fill: total {total} outside [0, sum of caps {cap.sum()}]")
    if total == 0 or not live.any():
        return np.zeros_like(a)
    b_safe = np.where(live, b, 1.0)

    def alloc(lam: float) -> FloatArray:
        return np.where(live, np.clip((lam - a) / (2 * b_safe), 0.0, cap), 0.0)

    lo = float(a[live].min())  # every x_k = 0 here
    hi = float((a + 2 * b_safe * cap)[live].max())  # every x_k = cap_k here
    for _ in range(200):  # halves until lo and hi are adjacent floats
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if alloc(mid).sum() < total:
            lo = mid
        else:
            hi = mid
    return np.asarray(alloc(hi), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class HindsightPlan:
    """The oracle schedule and what it assumed."""

    quantities: tuple[int, ...]  # per bucket, summing to the parent qty
    participation_cap: float  # the cap actually used (>= the one asked for if relaxed)
    caps_relaxed: bool  # True: max_participation could not hold qty and was raised
    impact_coef: float  # c of the temporary cost c x^2 / v (price units)
    expected_cost: float  # model cost in currency, vs m_0 (excl. permanent impact)
    expected_cost_bps: float  # of qty * m_0


def _lot_caps(participation: float, volumes: FloatArray, lot: int) -> npt.NDArray[np.int64]:
    return np.floor(participation * volumes / lot).astype(np.int64)


def solve_hindsight(
    side: Side,
    qty: int,
    times_s: npt.ArrayLike,
    mids: npt.ArrayLike,
    volumes: npt.ArrayLike,
    half_spread: float,
    impact_y: float,
    daily_vol: float,
    adv: float,
    lot_size: int,
    max_participation: float,
) -> HindsightPlan:
    """The best bucket taking schedule knowing the unimpacted mid path: a reference for
    timing, not a bound (it rests nothing and asks no dealer).

    Buckets k (e.g. 60 s) start at `times_s[k]`; `mids[k]` is the unimpacted mid met in
    the bucket (e.g. `PricePath.mean_mids` of the unimpacted path), `volumes[k]` the
    expected market volume v_k. Trading x_k in bucket k costs

        x_k (s (m_k - m_0) + half_spread) + c x_k^2 / v_k,

    i.e. a temporary impact linear in the participation rate x_k / v_k. Calibration: at
    the average rate Q / V (V = sum v_k) the per-share temporary cost c Q / V equals the
    square-root law's Y * daily_vol * m_0 * sqrt(Q / ADV), so c = Y daily_vol m_0
    sqrt(Q / ADV) V / Q. Permanent impact is left out: for a one-sided program with
    impact linear in traded quantity its cost is (1/2) gamma Q^2 whatever the ordering,
    so to first order it does not change the best schedule.

    Minimise the sum s.t. sum x_k = qty, 0 <= x_k <= max_participation * v_k (a convex
    separable QP) by `water_fill`, then round to lots keeping the total exact: floor to
    lots, add the missing lots where they cost least, swap single lots while that lowers
    the cost (exact for the lot-granular problem), and put the odd lot (qty % lot_size)
    where it costs least. If the caps cannot hold qty, the participation cap is raised to
    the smallest value that can (`caps_relaxed`).
    """
    t = np.asarray(times_s, dtype=np.float64)
    m = np.asarray(mids, dtype=np.float64)
    v = np.asarray(volumes, dtype=np.float64)
    if qty <= 0 or lot_size <= 0:
        raise DomainError(f"hindsight: qty and lot size must be > 0, got {qty}, {lot_size}")
    if t.ndim != 1 or t.size == 0 or m.shape != t.shape or v.shape != t.shape:
        raise DomainError("hindsight: times_s, mids and volumes must be 1-D of one length >= 1")
    if np.any(np.diff(t) <= 0):
        raise DomainError("hindsight: bucket times must be strictly increasing")
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(v))) or np.any(v < 0):
        raise DomainError("hindsight: mids must be finite and volumes finite and >= 0")
    if v.sum() <= 0:
        raise DomainError("hindsight: no expected market volume in any bucket")
    if not (max_participation > 0 and adv > 0 and min(half_spread, impact_y, daily_vol) >= 0):
        raise DomainError("hindsight: participation, ADV must be > 0; spread, Y, vol >= 0")

    lot = lot_size
    n_lots, odd = divmod(qty, lot)
    need = n_lots + (1 if odd else 0)  # one spare lot of room guarantees the odd lot fits
    participation = max_participation
    relaxed = int(_lot_caps(participation, v, lot).sum()) < need
    if relaxed:
        lo, hi = participation, (need + v.size) * lot / v.sum()  # hi always suffices
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            if int(_lot_caps(mid, v, lot).sum()) >= need:
                hi = mid
            else:
                lo = mid
        participation = float(hi)
    cap_lots = _lot_caps(participation, v, lot)

    m0 = float(m[0])
    a = side.sign * (m - m0) + half_spread  # per share
    c = impact_y * daily_vol * m0 * math.sqrt(qty / adv) * float(v.sum()) / qty
    b = np.where(v > 0, c / np.where(v > 0, v, 1.0), 0.0)  # per share^2

    # lot units: adding one lot at y lots costs a L + b L^2 (2y + 1)
    a_l, b_l = a * lot, b * lot * lot
    if c > 0:
        x = water_fill(a_l, b_l, cap_lots.astype(np.float64), float(n_lots))
        y = np.minimum(np.floor(x + 1e-9).astype(np.int64), cap_lots)
    else:  # linear costs: cheapest buckets first, filled to their caps
        y = np.zeros_like(cap_lots)
        left = n_lots
        for k in np.argsort(a_l, kind="stable"):
            y[k] = min(int(cap_lots[k]), left)
            left -= int(y[k])
    y = _settle_lots(y, cap_lots, a_l, b_l, n_lots)

    xs = y * lot
    if odd:
        room = xs + odd <= participation * v * (1 + 1e-12)  # float slack of the lot caps
        extra = a * odd + b * ((xs + odd) ** 2 - xs**2)
        xs[int(np.argmin(np.where(room, extra, np.inf)))] += odd

    xf = xs.astype(np.float64)
    cost = float(np.dot(a, xf) + np.dot(b, xf * xf))
    return HindsightPlan(
        quantities=tuple(int(x) for x in xs),
        participation_cap=participation,
        caps_relaxed=relaxed,
        impact_coef=c,
        expected_cost=cost,
        expected_cost_bps=1e4 * cost / (qty * m0),
    )


def _settle_lots(
    y: npt.NDArray[np.int64],
    cap: npt.NDArray[np.int64],
    a: FloatArray,
    b: FloatArray,
    total: int,
) -> npt.NDArray[np.int64]:
    """Make integer lots sum to `total` within caps, then swap single lots between
    buckets while that lowers the cost; a separable convex cost with no improving swap
    is at its integer optimum."""
    y = y.copy()
    scale = 1e-12 * (float(np.abs(a).max()) + float(b.max()) * (2 * total + 1) + 1.0)

    def add_cost() -> FloatArray:
        return np.where(y < cap, a + b * (2 * y + 1), np.inf)

    def remove_gain() -> FloatArray:
        return np.where(y > 0, a + b * (2 * y - 1), -np.inf)

    while y.sum() < total:
        y[int(np.argmin(add_cost()))] += 1
    while y.sum() > total:
        y[int(np.argmax(remove_gain()))] -= 1
    for _ in range(10 * y.size + total):  # bound: each swap strictly lowers the cost
        i, j = int(np.argmax(remove_gain())), int(np.argmin(add_cost()))
        if not add_cost()[j] < remove_gain()[i] - scale:
            break
        y[i] -= 1
        y[j] += 1
    return y
