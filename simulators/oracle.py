"""The simulator's own fill probability of a passive lit order: the oracle against
which learned fill-probability models are measured.

It answers by Monte Carlo over the simulator's randomness from now on: each path is a
`SimMarket.branch` (same books and impact state now; redrawn background flow and
exogenous future) in which the order rests, post-only, until the horizon. The estimate
is the share of paths in which the order got at least one fill. The market itself is
never modified.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from router.domain import NANOS_PER_SECOND, Nanos, Side
from simulators import book
from simulators.market import SimMarket

#: book owner id of the oracle's probe order: lit venues count from 1 (OwnerRegistry),
#: simulated dealers from 1_000_000, so this cannot clash with a client in the books
ORACLE_OWNER = 3_000_000

_FIRST_CHUNK_S = 1.0  # a branch runs in growing chunks and stops at the first fill


@dataclass(frozen=True, slots=True)
class LitOrder:
    """A passive (post-only, DAY) lit order whose fill probability is asked for."""

    venue_index: int  # index into SimMarket.venue_ids
    side: Side
    price_ticks: int
    qty: int


def lit_fill_probability(
    market: SimMarket,
    ts_ns: Nanos,
    venue_index: int,
    side: Side,
    price_ticks: int,
    qty: int,
    horizon_s: float,
    n_paths: int = 32,
    seed: int = 0,
) -> float:
    """The simulator's probability that a post-only DAY order sent to `venue_index` at
    `ts_ns` gets at least one fill by `ts_ns + horizon_s` (capped at the market's end).

    `market` must have been advanced to `ts_ns` (and not beyond); it is not modified.
    Path k draws from `np.random.default_rng([seed, k])`, so the answer is deterministic
    for a seed. Returns NaN when the order would cross (the venue rejects it)."""
    order = LitOrder(venue_index, side, price_ticks, qty)
    return lit_fill_probabilities(market, ts_ns, (order,), horizon_s, n_paths, seed)[0]


def lit_fill_probabilities(
    market: SimMarket,
    ts_ns: Nanos,
    orders: Sequence[LitOrder],
    horizon_s: float,
    n_paths: int = 32,
    seed: int = 0,
) -> list[float]:
    """`lit_fill_probability` for several orders at the same time, one answer each.

    Each order rests alone in its own branches (orders sharing a branch would take each
    other's queue position and fills, and the answer would no longer be the order's own
    probability), but all orders use the same seeds: common random numbers, so the
    difference between two orders' probabilities is less noisy than that of two
    separate estimates."""
    _check_time(market, ts_ns)
    if horizon_s < 0 or not math.isfinite(horizon_s):
        raise ValueError(f"horizon_s must be finite and >= 0, got {horizon_s}")
    if n_paths < 1:
        raise ValueError(f"n_paths must be >= 1, got {n_paths}")
    for order in orders:
        _check_order(market, order)
    end_ns = ts_ns + round(horizon_s * NANOS_PER_SECOND)
    scratch: SimMarket | None = None  # one set of branch arrays, overwritten path by path
    out = []
    for order in orders:
        if _crosses(market, order):
            out.append(math.nan)
            continue
        filled = 0
        for k in range(n_paths):
            scratch = market.branch(np.random.default_rng([seed, k]), reuse=scratch)
            filled += _fills_on(scratch, ts_ns, end_ns, order)
        out.append(filled / n_paths)
    return out


def _check_time(market: SimMarket, ts_ns: Nanos) -> None:
    # the branches start from the market's state now: it must be the state at ts_ns
    expected = min(market.step_of(ts_ns) + 1, market.grid.n_steps)
    if market.steps_done != expected:
        raise ValueError(
            f"the market has run {market.steps_done} steps, but {expected} at ts_ns: "
            "advance it to ts_ns (and not beyond) first"
        )


def _check_order(market: SimMarket, order: LitOrder) -> None:
    n_venues = len(market.venue_ids)
    if not 0 <= order.venue_index < n_venues:
        raise ValueError(f"venue_index must be within [0, {n_venues}), got {order.venue_index}")
    n_ticks = market.state.depth.shape[2]
    if not 0 <= order.price_ticks < n_ticks:
        raise ValueError(f"price_ticks must be within [0, {n_ticks}), got {order.price_ticks}")
    if order.qty <= 0:
        raise ValueError(f"qty must be > 0, got {order.qty}")


def _crosses(market: SimMarket, order: LitOrder) -> bool:
    """Whether the post-only order would take liquidity: the venue's own opposite touch,
    as in book.submit (the book state is the same in every branch)."""
    best = market.state.best[order.venue_index]
    if order.side is Side.BUY:
        return bool(best[book.ASK] <= order.price_ticks)
    return bool(best[book.BID] >= order.price_ticks)


def _fills_on(branch: SimMarket, ts_ns: Nanos, end_ns: Nanos, order: LitOrder) -> bool:
    """Rest the order in `branch` at `ts_ns`; whether it gets a fill by `end_ns`."""
    first_fill: list[Nanos] = []

    def on_fill(
        owner: int, ts: Nanos, _venue: int, _price: int, _qty: int, _maker: bool, _left: int
    ) -> None:
        if owner == ORACLE_OWNER and not first_fill:
            first_fill.append(ts)

    branch.on_client_fill(on_fill)
    res = branch.submit(
        ts_ns,
        order.venue_index,
        order.side,
        order.price_ticks,
        order.qty,
        ORACLE_OWNER,
        book.POST_ONLY,
    )
    if res.status != book.OK:  # _crosses ruled this out; anything else is a bug
        raise RuntimeError(f"the oracle's order was rejected in a branch (status {res.status})")
    # chunks that double from 1 s: few calls, and a fill stops the path early
    chunk_ns = round(_FIRST_CHUNK_S * NANOS_PER_SECOND)
    t = ts_ns
    while not first_fill and t < end_ns and t < branch.end_ns:
        t = min(t + chunk_ns, end_ns)
        branch.advance_to(t)
        chunk_ns *= 2
    return bool(first_fill) and first_fill[0] <= end_ns
