"""Cont-Kukanov order placement: how much of a slice to post passively where, and how
much to take now.

Cont & Kukanov ("Optimal order placement in limit order markets", 2017) split a target
quantity S between a market order M and limit orders L_i on several venues. A limit
order at venue i joins behind a queue Q_i and fills min(L_i, (xi_i - Q_i)+), where xi_i
is the volume that trades at that price during the interval (the venue's "outflow").
The expected cost of an allocation is

    (h + f) M  +  sum_i (r_i - h') E[fill_i]
      + lambda_u E[(S - M - sum fill_i)+]  +  lambda_o E[(M + sum fill_i - S)+]

with h the half spread, f the taker fee, r_i the maker fee (negative = rebate), h' the
half spread earned by the passive order at its price, lambda_u the cost of a share left
undone (it must be bought later, with urgency) and lambda_o that of a share done ahead of
schedule. The paper minimises it by stochastic approximation; here the outflows are
exponential with means estimated from the router's own passive fills (`OutflowEstimator`),
the expectation is taken over a fixed sample of outflows, and a small grid of
candidates (market share x passive size x price level) is scored exactly. The grid keeps
every alternative's score, which is what the decision record shows.

Everything is in ticks and shares; this module knows nothing of venues' transports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from router.ports import MarketSnapshot

MARKET_SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)
PASSIVE_MULTIPLES = (0.0, 0.5, 1.0, 1.5, 2.0)


@dataclass(frozen=True, slots=True)
class PassiveOption:
    """Resting at one venue and price level for the coming interval."""

    venue: str
    level: str  # "join" the touch, or "improve" it by one tick
    price_ticks: int
    queue_ahead: int  # displayed shares ahead of us at that price (0 when improving)
    outflow_mean: float  # expected shares trading at that price during the interval
    cost_ticks: float  # per filled share: fee minus the half spread earned, in ticks


@dataclass(frozen=True, slots=True)
class Allocation:
    market_qty: int
    passive: tuple[tuple[PassiveOption, int], ...]  # (option, shares), shares > 0
    expected_cost_ticks: float  # per share of the slice
    expected_fill: float  # expected shares done this interval (market + passive)
    label: str


@dataclass(frozen=True, slots=True)
class AllocationProblem:
    slice_qty: int  # S: what the schedule wants done by the end of the interval
    max_qty: int  # cap on market + passive (the parent's uncommitted remainder)
    market_cost_ticks: float  # per share taken now: half spread + taker fee (+ impact)
    under_cost_ticks: float  # lambda_u per share left undone
    over_cost_ticks: float  # lambda_o per share done beyond the slice
    lot: int
    options: tuple[PassiveOption, ...]


def allocate(
    problem: AllocationProblem,
    rng: np.random.Generator,
    n_samples: int = 64,
    keep: int | None = None,
) -> tuple[Allocation, list[Allocation]]:
    """The cheapest allocation and the candidates scored, cheapest first: every one, or
    the cheapest `keep` (a decision record shows a few; building the rest costs more
    than scoring them)."""
    p = problem
    if p.slice_qty <= 0 or p.max_qty <= 0:
        empty = Allocation(0, (), 0.0, 0.0, "nothing to do")
        return empty, [empty]
    # one outflow sample per option; the same draws score every candidate (common random
    # numbers), so the ranking is not noise
    n_opt = len(p.options)
    means = np.array([max(o.outflow_mean, 1e-9) for o in p.options])
    xi = rng.exponential(1.0, size=(n_samples, n_opt)) * means
    queues = np.array([o.queue_ahead for o in p.options], dtype=np.float64)
    beyond = np.maximum(xi - queues, 0.0)  # (samples, options)
    costs = np.array([o.cost_ticks for o in p.options])
    # how a passive total splits among the venues of one price level: in proportion to
    # the volume expected to reach us there, E[(xi - Q)+] = mu exp(-Q / mu) for an
    # exponential outflow (short queues, busy venues first, as in Cont-Kukanov)
    reach = means * np.exp(-queues / means)
    splits: dict[str, np.ndarray] = {}
    for level in sorted({o.level for o in p.options}):
        mask = np.array([o.level == level for o in p.options])
        w = np.where(mask, reach, 0.0)
        if w.sum() > 0:
            splits[level] = w / w.sum()
    # the grid (market share x price level x passive multiple), each candidate's passive
    # total in `totals` and its level's split in `shares`; the lots of all of them in one
    # array operation (elementwise, so the same numbers as one candidate at a time)
    grid: list[tuple[str, int]] = []
    totals: list[float] = []
    shares: list[np.ndarray] = []
    for m_share in MARKET_SHARES:
        market = _lots(min(p.slice_qty * m_share, p.max_qty), p.lot)
        rest = p.slice_qty - market
        for level, share in splits.items() or [("join", np.zeros(n_opt))]:
            for mult in PASSIVE_MULTIPLES if share.any() else (0.0,):
                grid.append((f"{m_share:.0%} take, {level}", market))
                totals.append(max(0.0, min(rest * mult, p.max_qty - market)))
                shares.append(share)
    lots = np.floor(np.array(totals)[:, None] * np.array(shares) / p.lot) * p.lot
    labels: list[str] = []
    markets: list[int] = []
    sizes: list[list[int]] = []
    seen: set[tuple[int, ...]] = set()
    for (label, market), row in zip(grid, lots.astype(np.int64).tolist(), strict=True):
        key = (market, *row)
        if key in seen:
            continue
        seen.add(key)
        labels.append(label)
        markets.append(market)
        sizes.append(row)
    # score every candidate at once: (candidates, samples)
    size_m = np.array(sizes, dtype=np.float64).reshape(len(sizes), n_opt)
    market_v = np.array(markets, dtype=np.float64)
    fills = np.minimum(beyond[None, :, :], size_m[:, None, :])  # (cand, samples, options)
    filled = market_v[:, None] + fills.sum(axis=2)
    cost = (
        p.market_cost_ticks * market_v[:, None]
        + fills @ costs
        + p.under_cost_ticks * np.maximum(p.slice_qty - filled, 0.0)
        + p.over_cost_ticks * np.maximum(filled - p.slice_qty, 0.0)
    )
    per_share = (cost.mean(axis=1) / p.slice_qty).tolist()
    expected_fill = filled.mean(axis=1).tolist()
    ranked = sorted(range(len(labels)), key=lambda c: (per_share[c], -expected_fill[c], labels[c]))
    candidates = [
        Allocation(
            market_qty=markets[c],
            passive=tuple((p.options[i], q) for i, q in enumerate(sizes[c]) if q > 0),
            expected_cost_ticks=per_share[c],
            expected_fill=expected_fill[c],
            label=labels[c],
        )
        for c in (ranked if keep is None else ranked[: max(keep, 1)])
    ]
    return candidates[0], candidates


def _lots(qty: float, lot: int) -> int:
    return int(qty // lot) * lot if qty > 0 else 0


@dataclass
class _VenueStats:
    weighted_sum: float  # sum of observed (or censored) outflow per second, decayed
    uncensored: float  # decayed count of intervals where the outflow was seen in full


class OutflowEstimator:
    """Expected traded volume at our price per venue, learned from our own passive orders.

    A passive order of size L that waited behind Q shares for tau seconds and filled F
    saw an outflow of Q + F when 0 < F < L (observed), of at least Q + L when it filled
    completely (censored), and somewhere in [0, Q] when nothing filled (counted as Q/2).
    The maximum-likelihood rate of an exponential under right censoring is
    sum(outflows) / number observed. Old intervals decay, and a prior from
    the market's traded volume counts as `prior_weight` observations, so the estimate is
    sane before the first own fill and adapts as the day changes.
    """

    def __init__(self, decay: float = 0.85, prior_weight: float = 2.0) -> None:
        self._decay = decay
        self._prior_weight = prior_weight
        self._stats: dict[str, _VenueStats] = {}

    def observe(
        self, venue: str, queue_ahead: int, posted: int, filled: int, seconds: float
    ) -> None:
        if seconds <= 0:
            return
        s = self._stats.setdefault(venue, _VenueStats(0.0, 0.0))
        s.weighted_sum *= self._decay
        s.uncensored *= self._decay
        # nothing filled: the outflow stayed somewhere inside the queue ahead of us
        seen = queue_ahead + filled if filled > 0 else 0.5 * queue_ahead
        s.weighted_sum += seen / seconds
        if filled < posted:
            s.uncensored += 1.0

    def rate(self, venue: str, prior_rate: float) -> float:
        """Shares per second expected to trade at our price at `venue`."""
        s = self._stats.get(venue)
        w = self._prior_weight
        if s is None:
            return prior_rate
        return (s.weighted_sum + w * prior_rate) / (s.uncensored + w)


def screen_cost_bps(
    snap: MarketSnapshot, taker_fee: float, qty: int, impact_bps: float, adv: float
) -> float:
    """What `qty` would cost worked on the lit screen, bps of the mid: half the spread,
    the taker fee, and the average square-root impact of working it (2/3 of its peak,
    `impact_bps * sqrt(qty / adv)`). What a dealer's quote for the block competes with."""
    return _worked_cost_bps(snap, taker_fee, qty, impact_bps, adv, 1.0)


def _worked_cost_bps(
    snap: MarketSnapshot, taker_fee: float, qty: int, impact_bps: float, adv: float, share: float
) -> float:
    """Half the spread and the taker fee, plus `share` of 2/3 of the square-root peak."""
    assert snap.mid is not None
    half = 0.5 * (snap.spread_ticks or 0) * snap.tick_size
    impact = share * 2.0 / 3.0 * impact_bps * math.sqrt(qty / adv)
    return (half + taker_fee) / snap.mid * 1e4 + impact


#: What a TWAP pays for its own impact, as a share of what working the same size within
#: half an hour does (2/3 of the square-root law's peak, which `blockroute bench impact`
#: measures on metaorders of up to 30 minutes and `screen_cost_bps` charges): over 3
#: hours `blockroute bench risk-transfer` measured TWAPs in calm at 0.36 (2% of ADV) to
#: 0.53 (25%) of it, the spread and fees taken out. The slower the schedule, the more of
#: its impact decays before the next child trades; `twap_impact_share` interpolates in
#: log time between the two measurements: 1 at 30 minutes, 0.5 at 3 hours.
TWAP_IMPACT_SHARE_3H = 0.5
_PEAK_S, _SLOW_S = 1800.0, 10_800.0


def twap_impact_share(horizon_s: float) -> float:
    """The share of `screen_cost_bps`'s impact that a TWAP over `horizon_s` pays."""
    if horizon_s <= _PEAK_S:
        return 1.0
    slope = math.log(TWAP_IMPACT_SHARE_3H) / math.log(_SLOW_S / _PEAK_S)
    return float((horizon_s / _PEAK_S) ** slope)


def agency_cost_bps(
    snap: MarketSnapshot,
    taker_fee: float,
    qty: int,
    impact_bps: float,
    adv: float,
    horizon_s: float,
) -> float:
    """What `qty` is expected to cost worked by TWAP over `horizon_s`: `screen_cost_bps`
    with the impact such a schedule pays (`twap_impact_share`). What a risk bid for the
    whole parent at arrival competes with: the trader's alternative is the algorithm,
    not the same size at once."""
    share = twap_impact_share(horizon_s)
    return _worked_cost_bps(snap, taker_fee, qty, impact_bps, adv, share)
