"""What one parent's execution reads from the market beyond the snapshot: the volume
and mids it has seen at its decisions, and the recent past of the feed that its passive
orders' fill chances depend on (`Screen`, computed once per decision)."""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from router.domain import NANOS_PER_SECOND, Nanos, Side
from router.ports import (
    BOOK_LEVELS,
    FLOW_WINDOWS_S,
    TOUCH_LAGS_S,
    MarketData,
    MarketSnapshot,
    RecentMarket,
)

RECENT_NS = 600 * NANOS_PER_SECOND  # how far back the volume rate and the volatility look


@dataclass(frozen=True, slots=True)
class Screen:
    """What every passive order of one decision shares about the market: computed once
    per decision for the lit and the dark orders' contexts."""

    volume_rate: float  # market volume per second, recent
    vol_bps: float
    touch_imbalance: float
    momentum_bps: float
    recent: RecentMarket


class MarketSignals:
    """The market as one parent has watched it: volume and mid at each decision.

    `volume_rate_hint`: the shares per second expected before any volume is seen."""

    def __init__(self, market: MarketData, volume_rate_hint: float = 0.0) -> None:
        self.market = market
        self._volume_rate_hint = volume_rate_hint
        self._volume_seen: deque[tuple[Nanos, int]] = deque()
        self._mids: deque[tuple[Nanos, float]] = deque()  # mid at each decision

    def observe(self, now: Nanos, snap: MarketSnapshot) -> None:
        """A decision's snapshot: its volume so far, and its mid if two-sided."""
        self._volume_seen.append((now, snap.volume))
        if snap.mid is not None:
            self._mids.append((now, snap.mid))

    def screen(self, snap: MarketSnapshot, now: Nanos, side: Side) -> Screen:
        rate = self.volume_rate(now)
        return Screen(
            volume_rate=rate,
            vol_bps=self.vol_bps(now),
            touch_imbalance=touch_imbalance(snap, side),
            momentum_bps=self.momentum_bps(side),
            recent=recent_market(self.market, snap, side, rate),
        )

    def momentum_bps(self, side: Side) -> float:
        """The mid's move over the last decision interval, signed so that a move that
        brings takers to our resting orders (up for a sell) is positive."""
        if len(self._mids) < 2:
            return 0.0
        (_, m0), (_, m1) = self._mids[-2], self._mids[-1]
        return -side.sign * (m1 - m0) / m0 * 1e4

    def vol_bps(self, now: Nanos) -> float:
        """Volatility of the mid between decisions over the last 10 minutes, bps."""
        while self._mids and self._mids[0][0] < now - RECENT_NS:
            self._mids.popleft()
        if len(self._mids) < 3:
            return 0.0
        mids = np.array([m for _, m in self._mids])
        return float(np.std(np.diff(np.log(mids))) * 1e4)

    def volume_rate(self, now: Nanos) -> float:
        """Market volume per second over the recent past (the hint before any is seen)."""
        while len(self._volume_seen) > 2 and self._volume_seen[1][0] <= now - RECENT_NS:
            self._volume_seen.popleft()
        if len(self._volume_seen) < 2:
            return self._volume_rate_hint
        (t0, v0), (t1, v1) = self._volume_seen[0], self._volume_seen[-1]
        if t1 <= t0:
            return self._volume_rate_hint
        return (v1 - v0) / ((t1 - t0) / NANOS_PER_SECOND)

    def window_volume(self, now: Nanos, snap: MarketSnapshot, window_s: float) -> int:
        """Market volume over the last `window_s` as the decisions saw it (the risk
        gate's participation base)."""
        start = now - int(window_s * NANOS_PER_SECOND)
        # a binary search, not a scan from the oldest entry: this runs at every child
        # order, and the deque holds up to RECENT_NS of decisions, most of them older
        # than the window. Entries are in time order (observe runs on the clock), and
        # (start,) sorts before every (start, v), so this is the first entry at or
        # after `start`.
        seen = self._volume_seen
        i = bisect_left(seen, (start,))
        return snap.volume - seen[i][1] if i < len(seen) else 0


def touch_imbalance(snap: MarketSnapshot, side: Side) -> float:
    """(our side's quantity at the best price - the other side's) / their sum."""
    bid = sum(q.bid_qty for q in snap.venues if q.bid_ticks == snap.bid_ticks)
    ask = sum(q.ask_qty for q in snap.venues if q.ask_ticks == snap.ask_ticks)
    ours, other = (ask, bid) if side is Side.SELL else (bid, ask)
    return (ours - other) / (ours + other) if ours + other > 0 else 0.0


def touch_moves(
    snap: MarketSnapshot, past: Sequence[tuple[int, int] | None], side: Side
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The moves (ticks) of a passive `side` order's own touch (near) and of the other
    side's (far) since each past (bid, ask) (MarketData.touches_before), towards the
    order's fills > 0 (as momentum is signed); 0 where a touch is unknown."""
    if snap.bid_ticks is None or snap.ask_ticks is None:
        zeros = (0.0,) * len(past)
        return zeros, zeros
    towards = -side.sign
    now_bid, now_ask = snap.bid_ticks, snap.ask_ticks
    # tuples of lists, not of generators: this runs in every decision's latency
    bid = tuple([0.0 if t is None else float(towards * (now_bid - t[0])) for t in past])
    ask = tuple([0.0 if t is None else float(towards * (now_ask - t[1])) for t in past])
    return (bid, ask) if side is Side.BUY else (ask, bid)


def tape_flow(
    flows: Sequence[tuple[int, int]], side: Side, volume_rate: float
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The tape's net flow towards a passive `side` order's fills (sellers hit a resting
    buy) over each of FLOW_WINDOWS_S (MarketData.flow_over): as a share of the window's
    volume, and of what the recent volume rate would trade in the window."""
    towards = -side.sign
    imbalance = tuple([towards * s / v if v > 0 else 0.0 for s, v in flows])
    share = tuple(
        [
            towards * s / (volume_rate * w) if volume_rate > 0 else 0.0
            for (s, _), w in zip(flows, FLOW_WINDOWS_S, strict=True)
        ]
    )
    return imbalance, share


def book_levels(snap: MarketSnapshot, side: Side) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Depth of book at BOOK_LEVELS prices from each touch: a passive `side` order's own
    side first; zeros where the feed shows none."""
    bids = tuple([float(q) for q in snap.bid_levels[:BOOK_LEVELS]])
    asks = tuple([float(q) for q in snap.ask_levels[:BOOK_LEVELS]])
    bids += (0.0,) * (BOOK_LEVELS - len(bids))
    asks += (0.0,) * (BOOK_LEVELS - len(asks))
    return (bids, asks) if side is Side.BUY else (asks, bids)


def recent_market(
    market: MarketData, snap: MarketSnapshot, side: Side, volume_rate: float
) -> RecentMarket:
    """The recent past of the market that a decision's passive orders share: both
    touches' paths, the tape's flow, depth of book."""
    near, far = touch_moves(snap, market.touches_before(TOUCH_LAGS_S), side)
    imbalance, share = tape_flow(market.flow_over(FLOW_WINDOWS_S), side, volume_rate)
    ours, other = book_levels(snap, side)
    return RecentMarket(near, far, imbalance, share, ours, other)
