"""Where the client fills of the simulated books go.

The compiled books (simulators/book.py) write every fill that involves a client order
into a `FillBuffer`. After each call into them the market drains it through a
`FillRouter`: each fill goes to the clients' callback, once for the client that rested
(maker) and once for the client that took, and what an outside participant's `take`
pays is counted on the way.
"""

from __future__ import annotations

from collections.abc import Callable

from router.domain import Nanos
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
