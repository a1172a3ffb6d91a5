"""The stylized facts of a replayed order-by-order capture: the book from its replay
sampled every 100 ms of exchange time (simulators/replay/sampling.py), the orders and
the clock from its live events, the trades from its trade channel."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulators.facts.measures import (
    DEPTH_BAND_BPS,
    SAMPLE_MS,
    MarketFacts,
    Returns,
    Spread,
    ratio,
)
from simulators.replay.check import align_trades
from simulators.replay.events import ADD, DELETE, MARKET, MODIFY, Capture
from simulators.replay.sampling import BookSamples, sample_book

NS_PER_MS = 1_000_000


def capture_facts(
    capture: Capture,
    samples: BookSamples | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> MarketFacts:
    """The facts of `capture` (its book sampled here unless `samples` are given)."""
    if samples is None:
        samples = sample_book(
            capture.events,
            len(capture.order_ids),
            every_ms=SAMPLE_MS,
            band_bps=DEPTH_BAND_BPS,
            progress=progress,
        )
    inst = capture.instrument
    orders = _order_facts(capture)
    spread = samples.spread
    mid = samples.mid
    touch = 0.5 * (samples.bid_touch + samples.ask_touch)
    band = 0.5 * (samples.bid_band + samples.ask_band)
    touch_med = Spread.of(touch).median
    sizes = orders.sizes
    live = capture.events.ts_ns[capture.events.n_snapshot :]
    window_s = float(live[-1] - live[0]) / 1e9 if live.size else 0.0
    gaps_ms = np.diff(live) / NS_PER_MS
    per_s = 1000 // SAMPLE_MS
    return MarketFacts(
        name=capture.name,
        source="replay",
        unit=inst.symbol.split("/")[0],
        window_s=window_s,
        tick_size=inst.tick_size,
        lot_size=inst.lot_size,
        price=inst.tick_size * float(np.nanmedian(mid)) if np.isfinite(mid).any() else 0.0,
        spread_ticks=Spread.of(spread),
        spread_bps=Spread.of(spread / mid * 1e4),
        touch_depth=Spread.of(touch * inst.lot_size),
        depth_10bps=Spread.of(band * inst.lot_size),
        order_size=Spread.of(sizes * inst.lot_size),
        order_size_lots=Spread.of(sizes),
        order_size_over_touch=Spread.of(sizes / touch_med if touch_med else []),
        orders=int(sizes.size),
        rejected_at_once=orders.rejected,
        cancels=orders.cancels,
        trades=len(capture.trades),
        traded=inst.size(int(capture.trades.qty.sum())),
        cancel_to_trade=ratio(orders.cancels, len(capture.trades)),
        lifetime_s=Spread.of(orders.lifetimes),
        events=int(live.size),
        events_per_s=live.size / window_s if window_s > 0 else 0.0,
        interarrival_ms=Spread.of(gaps_ms),
        returns=(
            Returns.of(mid, per_s, 1.0),
            Returns.of(mid, 60 * per_s, 60.0),
        ),
        notes={
            "book": f"replayed, sampled every {SAMPLE_MS} ms of exchange time",
            "orders": "new limit orders of the live stream that outlived their "
            "millisecond (the rest were rejected post-only/IOC or filled at once)",
            "cancels": "deletes of resting orders that are not a maker's fill (the "
            "trade channel's makers, aligned as in `replay check`)",
            "interarrival": "between consecutive live messages, whole milliseconds",
        },
    )


@dataclass(frozen=True, slots=True)
class _Orders:
    sizes: npt.NDArray[np.float64]  # lots, new limit orders that rested
    lifetimes: npt.NDArray[np.float64]  # s, of those with a delete
    rejected: int
    cancels: int


def _order_facts(capture: Capture) -> _Orders:
    """Per order of the live stream: whether it rested, its size, its lifetime, and
    whether its delete was a cancel."""
    ev = capture.events
    first = ev.n_snapshot
    idx = np.arange(first, len(ev))
    act, order = ev.action[first:], ev.order[first:]
    n_orders = len(capture.order_ids)

    # the first arrival of each order (a duplicate is skipped by the replay), its first
    # delete: event indices, -1 for none
    born = _first(idx[(act == ADD) | (act == MARKET)], ev.order, n_orders)
    gone = _first(idx[act == DELETE], ev.order, n_orders)
    changed = np.zeros(n_orders, dtype=bool)
    changed[order[act == MODIFY]] = True
    emptied = np.zeros(n_orders, dtype=bool)  # a change to size 0: filled, not canceled
    emptied[order[(act == MODIFY) & (ev.qty[first:] == 0)]] = True

    has_born = born >= 0
    is_limit = np.zeros(n_orders, dtype=bool)
    is_limit[has_born] = ev.action[born[has_born]] == ADD
    qty = np.zeros(n_orders, dtype=np.int64)
    qty[has_born] = ev.qty[born[has_born]]
    t_born = np.where(has_born, ev.ts_ns[np.maximum(born, 0)], -1)
    t_gone = np.where(gone >= 0, ev.ts_ns[np.maximum(gone, 0)], -1)
    same_ms = (gone >= 0) & (t_gone == t_born)
    rested = has_born & is_limit & (qty > 0) & ~same_ms
    rejected = has_born & is_limit & (qty > 0) & same_ms & ~changed

    # a resting order's delete is a cancel unless it is a maker's fill event
    checks, _ = align_trades(capture)
    fill_event = np.zeros(len(ev), dtype=bool)
    fill_event[checks.event] = True
    in_snapshot = np.zeros(n_orders, dtype=bool)
    in_snapshot[ev.order[:first]] = True
    resting_before = (rested | in_snapshot) & (gone >= 0) & ~emptied
    cancels = int(np.count_nonzero(~fill_event[gone[resting_before]]))

    lived = rested & (gone >= 0)
    return _Orders(
        sizes=qty[rested].astype(np.float64),
        lifetimes=(t_gone[lived] - t_born[lived]) / 1e9,
        rejected=int(np.count_nonzero(rejected)),
        cancels=cancels,
    )


def _first(events: npt.NDArray[np.int64], order: npt.NDArray[np.int32], n: int) -> np.ndarray:
    """Per order, the first of `events` (ascending indices) that is its own; -1 if none."""
    out = np.full(n, -1, dtype=np.int64)
    owners, at = np.unique(order[events], return_index=True)
    out[owners] = events[at]
    return out
