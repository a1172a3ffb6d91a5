"""The replayed book sampled on a fixed clock of exchange time: what a top-of-book
feed with depth would have shown every `every_ms` (for the stylized facts and the
market report).

A sample at time t shows the book after every event stamped at or before t. Orders
still held as marketable at t (l3.py) are not in it, as on the venue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulators.book import ASK, BID
from simulators.replay.events import OrderEvents
from simulators.replay.replayer import Replayer

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: the depth profile's bins: 1 bp wide from the mid outwards
PROFILE_BPS = 25


@dataclass(frozen=True, slots=True)
class BookSamples:
    """One row per sample; prices in ticks, sizes in lots, NaN where a side was empty.

    `profile[side, k]` is the mean size resting k to k+1 bps from the mid over the
    samples with both sides (the depth profile)."""

    t_ns: I64  # exchange time of each sample
    bid: F64
    ask: F64
    bid_touch: F64  # lots at the best bid
    ask_touch: F64
    bid_band: F64  # lots within `band_bps` of the mid
    ask_band: F64
    band_bps: float
    profile: F64  # [2, PROFILE_BPS]

    @property
    def mid(self) -> F64:
        return 0.5 * (self.bid + self.ask)

    @property
    def spread(self) -> F64:
        return self.ask - self.bid

    def __len__(self) -> int:
        return int(self.t_ns.shape[0])


def sample_book(
    events: OrderEvents,
    n_orders: int,
    *,
    every_ms: int = 100,
    band_bps: float = 10.0,
    progress: Callable[[int, int], None] | None = None,
) -> BookSamples:
    """Replay `events` and sample the book every `every_ms` from the first live event to
    the last (the start snapshot is applied before the first sample)."""
    ev = events
    start = int(ev.ts_ns[ev.n_snapshot]) if len(ev) > ev.n_snapshot else int(ev.ts_ns[-1])
    end = int(ev.ts_ns[-1])
    step = every_ms * 1_000_000
    t = np.arange(start, end + 1, step, dtype=np.int64)
    stops = np.searchsorted(ev.ts_ns, t, side="right")
    n = t.shape[0]
    out = {k: np.full(n, np.nan) for k in ("bid", "ask", "bt", "at", "bb", "ab")}
    prof = np.zeros((2, PROFILE_BPS), dtype=np.float64)
    n_prof = 0
    rp = Replayer(ev, n_orders)
    depth = rp.book.depth[0]
    n_ticks = rp.n_ticks
    every = max(1, n // 100)
    for k in range(n):
        rp.run(int(stops[k]))
        b, a = rp.best_bid, rp.best_ask
        if b >= 0:
            out["bid"][k] = b
            out["bt"][k] = depth[BID, b]
        if a < n_ticks:
            out["ask"][k] = a
            out["at"][k] = depth[ASK, a]
        if b >= 0 and a < n_ticks:
            mid = 0.5 * (a + b)
            width = mid * band_bps / 1e4
            out["bb"][k] = depth[BID, max(0, int(np.ceil(mid - width))) : b + 1].sum()
            out["ab"][k] = depth[ASK, a : int(np.floor(mid + width)) + 1].sum()
            reach = int(mid * PROFILE_BPS / 1e4) + 1
            lo = max(0, b - reach)
            bid_px = np.arange(lo, b + 1)
            bps = ((mid - bid_px) / mid * 1e4).astype(np.int64)
            keep = bps < PROFILE_BPS
            prof[BID] += np.bincount(bps[keep], depth[BID, lo : b + 1][keep], PROFILE_BPS)
            hi = min(n_ticks, a + reach + 1)
            ask_px = np.arange(a, hi)
            bps = ((ask_px - mid) / mid * 1e4).astype(np.int64)
            keep = bps < PROFILE_BPS
            prof[ASK] += np.bincount(bps[keep], depth[ASK, a:hi][keep], PROFILE_BPS)
            n_prof += 1
        if progress is not None and (k % every == 0 or k == n - 1):
            progress(k + 1, n)
    return BookSamples(
        t_ns=t,
        bid=out["bid"],
        ask=out["ask"],
        bid_touch=out["bt"],
        ask_touch=out["at"],
        bid_band=out["bb"],
        ask_band=out["ab"],
        band_bps=band_bps,
        profile=prof / max(1, n_prof),
    )
