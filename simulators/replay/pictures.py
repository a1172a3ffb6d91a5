"""The document of the market report (router/reporting/market.py): a replayed capture's
book sampled every 100 ms (sampling.py), thinned to one point a second, its depth
profile and its trade prints, in plain JSON types (prices in the currency, sizes in the
instrument's unit, times in seconds from the first live event)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from simulators.book import ASK, BID
from simulators.replay.events import Capture
from simulators.replay.sampling import PROFILE_BPS, BookSamples, sample_book

SAMPLE_MS = 100
#: one point a second on the time charts (1,800 for a 30-minute capture)
POINTS_EVERY_MS = 1000


def _floats(x: np.ndarray, digits: int = 10) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), digits) for v in x]


def market_document(
    capture: Capture,
    samples: BookSamples | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """The report's document for `capture` (its book sampled here unless given)."""
    if samples is None:
        samples = sample_book(
            capture.events, len(capture.order_ids), every_ms=SAMPLE_MS, progress=progress
        )
    inst = capture.instrument
    ev = capture.events
    t0 = int(ev.ts_ns[ev.n_snapshot]) if len(ev) > ev.n_snapshot else int(samples.t_ns[0])
    thin = max(1, POINTS_EVERY_MS // SAMPLE_MS)
    sl = slice(None, None, thin)
    tick, lot = inst.tick_size, inst.lot_size
    t_s = (samples.t_ns[sl] - t0) / 1e9
    tr = capture.trades
    keep = tr.ts_ns >= t0
    return {
        "kind": "market",
        "replay": capture.name,
        "instrument": {
            "symbol": inst.symbol,
            "currency": inst.currency,
            "unit": inst.symbol.split("/")[0],
            "tick_size": tick,
            "lot_size": lot,
        },
        "start_ns": t0,
        "duration_s": round(float(ev.ts_ns[-1] - t0) / 1e9, 3) if len(ev) else 0.0,
        "events": len(ev) - ev.n_snapshot,
        "sample_ms": SAMPLE_MS,
        "path": {
            "t_s": _floats(t_s, 3),
            "bid": _floats(samples.bid[sl] * tick),
            "ask": _floats(samples.ask[sl] * tick),
            "bid_touch": _floats(samples.bid_touch[sl] * lot),
            "ask_touch": _floats(samples.ask_touch[sl] * lot),
            "bid_band": _floats(samples.bid_band[sl] * lot),
            "ask_band": _floats(samples.ask_band[sl] * lot),
        },
        "band_bps": samples.band_bps,
        "profile": {
            "bps": list(range(PROFILE_BPS)),
            "bid": _floats(samples.profile[BID] * lot),
            "ask": _floats(samples.profile[ASK] * lot),
        },
        "trades": {
            "t_s": _floats((tr.ts_ns[keep] - t0) / 1e9, 3),
            "price": _floats(tr.price[keep] * tick),
            "qty": _floats(tr.qty[keep] * lot),
            "side": ["buy" if a == BID else "sell" for a in tr.aggressor[keep]],
        },
    }
