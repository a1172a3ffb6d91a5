"""Where the client fills of the simulated books go.

The compiled books (simulators/book.py) write every fill that involves a client order
into a `FillBuffer`. After each call into them the market drains it through a
`FillRouter`: each fill goes to the clients' callback, once for the client that rested
(maker) and once for the client that took, and what an outside participant's `take`
pays is counted on the way.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from router.domain import Nanos, Side
from simulators import book

#: called for every fill of a client order: (owner, ts, venue index, price ticks, qty,
#: client was maker, maker's leaves after the fill)
FillCallback = Callable[[int, Nanos, int, int, int, bool, int], None]


class BookFullError(RuntimeError):
    pass


class FillRouter:
    """Drains one market's fill buffer into its clients' callback, in buffer order."""

    __slots__ = ("buffer", "callback", "taker", "taker_paid")

    def __init__(self, buffer: book.FillBuffer) -> None:
        self.buffer = buffer
        self.callback: FillCallback | None = None
        # the owner of the `take` under way, and what it has paid so far (ticks x units)
        self.taker = 0
        self.taker_paid = 0

    def drain(self) -> None:
        fb = self.buffer
        n = int(fb.n[0])
        if n == 0:
            return
        if n > fb.ts.shape[0]:
            raise BookFullError(f"fill buffer overflow: {n} client fills in one step")
        cb = self.callback
        if cb is not None or self.taker:
            # copy out first: the callback may submit orders that append new fills
            rows = [
                (
                    int(fb.ts[i]),
                    int(fb.venue[i]),
                    int(fb.price[i]),
                    int(fb.qty[i]),
                    int(fb.maker_owner[i]),
                    int(fb.maker_leaves[i]),
                    int(fb.taker_owner[i]),
                )
                for i in range(n)
            ]
            fb.n[0] = 0
            for ts, v, p, q, maker, leaves, taker in rows:
                if taker and taker == self.taker:
                    self.taker_paid += p * q
                if cb is None:
                    continue
                if maker:
                    cb(maker, ts, v, p, q, True, leaves)
                if taker:
                    cb(taker, ts, v, p, q, False, 0)
        else:
            fb.n[0] = 0


def outside_take(
    state: book.BookState,
    fills: FillRouter,
    side: Side,
    qty: int,
    reach_ticks: int,
    owner: int,
    submit: Callable[[int, int], int],
) -> tuple[int, int]:
    """An outside participant's marketable IOC of `qty` on the lit venue with the best
    price for it, reaching `reach_ticks` past that touch: `submit(venue, limit)` sends it
    and returns its leaves. Returns the quantity filled and what it paid (ticks x units),
    counted by `fills` on the way. The simulated and the replayed market both take so."""
    n_ticks = state.depth.shape[2]
    if side is Side.BUY:
        asks = state.best[:, book.ASK]
        v = int(np.argmin(asks))
        touch = int(asks[v])
        if touch >= n_ticks:
            return 0, 0
        limit = min(touch + reach_ticks, n_ticks - 1)
    else:
        bids = state.best[:, book.BID]
        v = int(np.argmax(bids))
        touch = int(bids[v])
        if touch < 0:
            return 0, 0
        limit = max(touch - reach_ticks, 0)
    fills.taker, fills.taker_paid = owner, 0
    try:
        leaves = submit(v, limit)
    finally:
        fills.taker = 0
    return qty - leaves, fills.taker_paid
