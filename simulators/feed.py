"""What the simulated market shows, read from its books and from the path it has run.

`PathRecord` is what the market writes as it runs (simulators/flow.py fills it in step
by step): the reference price with everybody's impact and the consolidated best bid and
ask per 100 ms step. `MarketFeed` reads the books and that record and nothing else:
`MarketData` snapshots and the recent touches and trade flow (what a trader sees), and
for evaluation and simulated participants only, the fair price, realised volatility and
the whole top-of-book path (what TCA and markouts measure; never a strategy's input).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from router.domain import NANOS_PER_SECOND, Instrument, Nanos, VenueId
from router.ports import BOOK_LEVELS, MarketSnapshot, VenueQuote
from simulators import book
from simulators.schedule import SESSION_S, STEP_S, StepGrid

DEPTH_LEVELS = 10  # ticks counted in a snapshot's bid_depth / ask_depth


@dataclass(slots=True)
class PathRecord:
    """The market's path per step, in ticks: reference price (NaN before it is run),
    consolidated best bid and ask (-1 where never run; -1 and past the price grid where
    a side was empty). Steps from `steps_done` on have not run yet."""

    ref_path: np.ndarray
    bid_path: np.ndarray
    ask_path: np.ndarray
    steps_done: int = 0

    @classmethod
    def empty(cls, n_steps: int) -> PathRecord:
        return cls(
            np.full(n_steps, np.nan),
            np.full(n_steps, -1, dtype=np.int64),
            np.full(n_steps, -1, dtype=np.int64),
        )

    def copy(self) -> PathRecord:
        return PathRecord(
            self.ref_path.copy(), self.bid_path.copy(), self.ask_path.copy(), self.steps_done
        )

    def copy_from(self, other: PathRecord) -> None:
        """Become `other` in place (same shapes), keeping these arrays."""
        np.copyto(self.ref_path, other.ref_path)
        np.copyto(self.bid_path, other.bid_path)
        np.copyto(self.ask_path, other.ask_path)
        self.steps_done = other.steps_done


class MarketFeed:
    """Reads one market's books (`state`) and path (`record`); never changes them."""

    __slots__ = (
        "_daily_vol",
        "_grid",
        "_instrument",
        "_price_ticks0",
        "_venue_ids",
        "record",
        "state",
    )

    def __init__(
        self,
        grid: StepGrid,
        instrument: Instrument,
        venue_ids: tuple[VenueId, ...],
        price_ticks0: float,
        daily_vol: float,
        state: book.BookState,
        record: PathRecord,
    ) -> None:
        self._grid = grid
        self._instrument = instrument
        self._venue_ids = venue_ids
        self._price_ticks0 = price_ticks0
        self._daily_vol = daily_vol  # the scenario's normal volatility, for vol_ratio
        self.state = state
        self.record = record

    def over(self, state: book.BookState, record: PathRecord) -> MarketFeed:
        """The same feed over another copy of the market (a branch's books and path)."""
        return MarketFeed(
            self._grid,
            self._instrument,
            self._venue_ids,
            self._price_ticks0,
            self._daily_vol,
            state,
            record,
        )

    def snapshot(self, ts: Nanos) -> MarketSnapshot:
        st = self.state
        n_ticks = st.depth.shape[2]
        first, bar = self._grid.bar_of(0), self._grid.bar_of(ts)
        n_v = len(self._venue_ids)
        per_venue = np.empty((n_v, 6), dtype=np.int64)
        levels = np.empty((2, BOOK_LEVELS), dtype=np.int64)
        bb, ba, bid_depth, ask_depth, last, volume, pv = _snapshot_numbers(
            st.depth, st.best, st.last_px, st.tape_vol, st.tape_pv, first, bar, per_venue, levels
        )
        quotes = tuple(
            VenueQuote(
                venue=vid,
                bid_ticks=b if b >= 0 else None,
                bid_qty=bq,
                ask_ticks=a if a < n_ticks else None,
                ask_qty=aq,
                bid_depth=bd,
                ask_depth=ad,
            )
            for vid, (b, bq, a, aq, bd, ad) in zip(self._venue_ids, per_venue.tolist(), strict=True)
        )
        bid_levels, ask_levels = levels.tolist()
        tick = self._instrument.tick_size
        return MarketSnapshot(
            ts_ns=ts,
            symbol=self._instrument.symbol,
            tick_size=tick,
            bid_ticks=bb if bb >= 0 else None,
            ask_ticks=ba if ba < n_ticks else None,
            bid_depth=bid_depth,
            ask_depth=ask_depth,
            venues=quotes,
            last_ticks=last if last >= 0 else None,
            volume=volume,
            vwap_num=pv * tick,
            bid_levels=tuple(bid_levels) if bb >= 0 else (),
            ask_levels=tuple(ask_levels) if ba < n_ticks else (),
        )

    def mid_ticks(self) -> float | None:
        """Consolidated lit midpoint now (what a dark pool crosses at)."""
        st = self.state
        bb = int(st.best[:, book.BID].max())
        ba = int(st.best[:, book.ASK].min())
        if bb < 0 or ba >= st.depth.shape[2] or bb >= ba:
            return None
        return 0.5 * (bb + ba)

    def touches_before(self, ts: Nanos, lags_s: Sequence[float]) -> list[tuple[int, int] | None]:
        """The consolidated (bid, ask) in ticks at the last step run at or before
        `ts - lag`, for each lag: the top-of-book feed's recent past. None where a side
        was empty."""
        lags_ns = _nanos(tuple(lags_s))
        rec, g = self.record, self._grid
        touches = _touches_before(
            rec.bid_path,
            rec.ask_path,
            self.state.depth.shape[2],
            rec.steps_done - 1,
            (ts - g.t0_ns) - lags_ns,
            g.step_ns,
        ).tolist()
        return [(b, a) if b >= 0 else None for b, a in touches]

    def flow_over(self, ts: Nanos, windows_s: Sequence[int]) -> list[tuple[int, int]]:
        """(buyer- minus seller-initiated volume, volume) of the tape's 1-s bars over
        the last `window` seconds before `ts` plus the bar in progress, per window: what
        a trade feed with aggressor flags has shown (clients' trades included)."""
        st = self.state
        flows = _flow_over(
            st.tape_signed,
            st.tape_vol,
            self._grid.bar_of(ts),
            np.asarray(windows_s, dtype=np.int64),
        ).tolist()
        return [(signed, volume) for signed, volume in flows]

    def mid_at(self, ts: Nanos) -> float:
        """Consolidated mid (ticks) at the last step at or before `ts` that had one."""
        g, rec = self._grid, self.record
        # the path's steps run so far, read back from `ts` (not the whole day's mids)
        last = min(g.step_of(ts), g.n_steps - 1, rec.steps_done - 1)
        mid = _last_mid(rec.bid_path, rec.ask_path, self.state.depth.shape[2], last)
        if math.isnan(mid):
            raise RuntimeError("the lit market never had two sides")
        return mid

    def mid_path(self) -> np.ndarray:
        """Consolidated mid per step (ticks), NaN where a side was empty or not yet run."""
        rec = self.record
        bid = rec.bid_path.astype(np.float64)
        ask = rec.ask_path.astype(np.float64)
        n_ticks = self.state.depth.shape[2]
        bad = (rec.bid_path < 0) | (rec.ask_path >= n_ticks) | (rec.ask_path < 0)
        mid = 0.5 * (bid + ask)
        mid[bad] = np.nan
        mid[rec.steps_done :] = np.nan
        return mid

    def top_of_book(self, from_s: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(time s, consolidated bid, ask) in price units for the steps run so far from
        `from_s` on, NaN where a side was empty: the path that TCA and markouts read."""
        rec = self.record
        n = rec.steps_done
        t = self._grid.step_time_s()[:n]
        keep = t >= from_s
        tick = self._instrument.tick_size
        n_ticks = self.state.depth.shape[2]
        bid = rec.bid_path[:n].astype(np.float64)
        ask = rec.ask_path[:n].astype(np.float64)
        bid[(rec.bid_path[:n] < 0)] = np.nan
        ask[(rec.ask_path[:n] < 0) | (rec.ask_path[:n] >= n_ticks)] = np.nan
        return t[keep], bid[keep] * tick, ask[keep] * tick

    def fair_ticks(self, ts: Nanos) -> float:
        """The reference ("fair") price in ticks at the last step run at or before `ts`,
        own and others' impact included: what a dealer prices against. Simulated
        participants only; strategies see the books."""
        rec = self.record
        i = min(max(self._grid.step_of(ts), 0), rec.steps_done - 1)
        if i < 0:
            return float(self._price_ticks0)
        return float(rec.ref_path[i])

    def vol_ratio(self, ts: Nanos, window_s: float = 600.0, every_s: float = 10.0) -> float:
        """Realised volatility of the fair price over the last `window_s` relative to the
        scenario's normal daily volatility (1 = normal), from `every_s` samples."""
        rec = self.record
        stride = max(1, round(every_s / STEP_S))
        i1 = min(max(self._grid.step_of(ts), 0), rec.steps_done - 1)
        i0 = max(0, i1 - round(window_s / STEP_S))
        ref = rec.ref_path[i0 : i1 + 1 : stride]
        if ref.size < 3:
            return 1.0
        normal = self._daily_vol * self._price_ticks0 * math.sqrt(every_s / SESSION_S)
        return float(np.std(np.diff(ref)) / normal)


@functools.lru_cache(maxsize=16)
def _nanos(seconds: tuple[float, ...]) -> np.ndarray:
    # a feed is asked for the same few lags at every decision
    out = np.array([int(x * NANOS_PER_SECOND) for x in seconds], dtype=np.int64)
    out.setflags(write=False)
    return out


@njit(cache=True)
def _touches_before(
    bid_path: np.ndarray,
    ask_path: np.ndarray,
    n_ticks: int,
    last: int,
    since_t0_ns: np.ndarray,
    step_ns: int,
) -> np.ndarray:
    """`MarketFeed.touches_before`: (bid, ask) at the step of each time (ns since t0),
    capped at `last`; (-1, -1) where there was none or a side was empty."""
    out = np.full((since_t0_ns.shape[0], 2), -1, dtype=np.int64)
    for k in range(since_t0_ns.shape[0]):
        i = min(since_t0_ns[k] // step_ns, last)
        if i < 0:
            continue
        b, a = bid_path[i], ask_path[i]
        if b >= 0 and 0 <= a < n_ticks:
            out[k, 0] = b
            out[k, 1] = a
    return out


@njit(cache=True)
def _flow_over(signed: np.ndarray, volume: np.ndarray, bar: int, windows: np.ndarray) -> np.ndarray:
    """`MarketFeed.flow_over`: per window, the sums over bars `bar - window` (not before
    the first) to `bar`."""
    out = np.zeros((windows.shape[0], 2), dtype=np.int64)
    for k in range(windows.shape[0]):
        for b in range(max(0, bar - windows[k]), bar + 1):
            out[k, 0] += signed[b]
            out[k, 1] += volume[b]
    return out


class FeedReaders:
    """What a market's feed shows, for a market that keeps its `MarketFeed` as `feed`:
    the simulated market and the replayed one read their books alike."""

    feed: MarketFeed

    def snapshot(self, ts: Nanos) -> MarketSnapshot:
        return self.feed.snapshot(ts)

    def mid_ticks(self) -> float | None:
        return self.feed.mid_ticks()

    def touches_before(self, ts: Nanos, lags_s: Sequence[float]) -> list[tuple[int, int] | None]:
        return self.feed.touches_before(ts, lags_s)

    def flow_over(self, ts: Nanos, windows_s: Sequence[int]) -> list[tuple[int, int]]:
        return self.feed.flow_over(ts, windows_s)

    def mid_at(self, ts: Nanos) -> float:
        return self.feed.mid_at(ts)

    def mid_path(self) -> np.ndarray:
        return self.feed.mid_path()

    def top_of_book(self, from_s: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.feed.top_of_book(from_s)

    def fair_ticks(self, ts: Nanos) -> float:
        """The reference price the market's own participants quote around (a replay has
        none but its book's mid)."""
        return self.feed.fair_ticks(ts)

    def vol_ratio(self, ts: Nanos, window_s: float = 600.0, every_s: float = 10.0) -> float:
        return self.feed.vol_ratio(ts, window_s, every_s)


@njit(cache=True)
def _snapshot_numbers(
    depth: np.ndarray,
    best: np.ndarray,
    last_px: np.ndarray,
    tape_vol: np.ndarray,
    tape_pv: np.ndarray,
    first: int,
    bar: int,
    per_venue: np.ndarray,
    levels: np.ndarray,
) -> tuple[int, int, int, int, int, int, float]:
    """`MarketFeed.snapshot`'s numbers in one compiled call: the consolidated touch
    (bid, ask ticks) and depth on each side (the venues' summed), the last trade's
    tick, the session's volume and sum of tick x qty; into `per_venue` each venue's
    (bid, bid qty, ask, ask qty, bid depth, ask depth) and into `levels` the
    consolidated depth at the BOOK_LEVELS prices from each touch outwards (0 past the
    grid's edge). The tape's tick x qty are whole numbers, so their
    sum is exact in any order."""
    n_v, n_ticks = best.shape[0], depth.shape[2]
    bb, ba = -1, n_ticks
    for v in range(n_v):
        bb = max(bb, best[v, book.BID])
        ba = min(ba, best[v, book.ASK])
    lo, hi = max(0, bb - DEPTH_LEVELS + 1), min(ba + DEPTH_LEVELS, n_ticks)
    bid_total, ask_total = 0, 0
    for v in range(n_v):
        b, a = best[v, book.BID], best[v, book.ASK]
        per_venue[v, 0] = b
        per_venue[v, 1] = depth[v, book.BID, b] if b >= 0 else 0
        per_venue[v, 2] = a
        per_venue[v, 3] = depth[v, book.ASK, a] if a < n_ticks else 0
        bid_depth = 0
        if bb >= 0:
            for p in range(lo, bb + 1):
                bid_depth += depth[v, book.BID, p]
        ask_depth = 0
        for p in range(ba, hi):
            ask_depth += depth[v, book.ASK, p]
        per_venue[v, 4] = bid_depth
        per_venue[v, 5] = ask_depth
        bid_total += bid_depth
        ask_total += ask_depth
    for k in range(levels.shape[1]):
        bid_level, ask_level = 0, 0
        for v in range(n_v):
            if bb - k >= 0:
                bid_level += depth[v, book.BID, bb - k]
            if ba + k < n_ticks:
                ask_level += depth[v, book.ASK, ba + k]
        levels[0, k] = bid_level
        levels[1, k] = ask_level
    last = -1
    for v in range(n_v):
        last = max(last, last_px[v])
    volume = 0
    pv = 0.0
    for b in range(first, bar + 1):
        volume += tape_vol[b]
        pv += tape_pv[b]
    return bb, ba, bid_total, ask_total, last, volume, pv


@njit(cache=True)
def _last_mid(bid_path: np.ndarray, ask_path: np.ndarray, n_ticks: int, last: int) -> float:
    """The consolidated mid (ticks) at the last step at or before `last` with both sides
    (`MarketFeed.mid_path`'s arithmetic); NaN if none had."""
    for i in range(last, -1, -1):
        b, a = bid_path[i], ask_path[i]
        if b >= 0 and 0 <= a < n_ticks:
            return 0.5 * (float(b) + float(a))
    return math.nan
