"""Pure-Python limit order book: the baseline for the matching-engine benchmark.

Written the way a careful Python developer would write a book without numba:
price levels in a dict of `collections.deque` FIFOs, a heap of prices per side with
lazy deletion of emptied levels, cancels that zero the queue entry in place (it is
dropped when it reaches the front of its level), and a list of live order ids with
swap-remove so that a uniformly random resting order can be drawn in O(1).

`PyBook.apply_events` follows the event semantics of `simulators.book.apply_events`
on a single venue (see that function). Its live list changes as the compiled book's
does (appended on rest, swap-removed on cancel or fill), so a random cancel takes the
same order in both and the two end with the same book (`bench book` checks it).
"""

from __future__ import annotations

import heapq
from collections import deque

import numpy as np
import numpy.typing as npt

from simulators.book import ASK, BID, EV_ADD, EV_CANCEL

# a queue entry: [order id, remaining qty (0 once canceled or filled), side, price,
# index in the live-id list]
_ID = 0
_QTY = 1
_SIDE = 2
_PRICE = 3
_POS = 4

Entry = list[int]


class _Level:
    __slots__ = ("qty", "queue")

    def __init__(self) -> None:
        self.queue: deque[Entry] = deque()
        self.qty = 0  # live quantity at the level


class PyBook:
    """One venue, integer ticks `0 <= price < n_ticks`, price-time priority."""

    def __init__(self, n_ticks: int = 20_000) -> None:
        if n_ticks <= 2:
            raise ValueError("n_ticks must be > 2")
        self.n_ticks = n_ticks
        self._levels: tuple[dict[int, _Level], dict[int, _Level]] = ({}, {})
        # bids are stored negated so that both heaps are min-heaps
        self._heaps: tuple[list[int], list[int]] = ([], [])
        self._in_heap: tuple[set[int], set[int]] = (set(), set())
        #: resting orders by id; an entry is [id, qty, side, price, index in the live list]
        self.orders: dict[int, Entry] = {}
        self._live: list[int] = []
        self._next_id = 1
        self.traded_volume = 0
        self.last_price = -1

    # ------------------------------------------------------------------ queries

    def best_bid(self) -> int:
        """Highest bid tick, -1 when there is no bid (same sentinel as the numba book)."""
        levels = self._levels[BID]
        heap = self._heaps[BID]
        while heap:
            p = -heap[0]
            if p in levels:
                return p
            heapq.heappop(heap)
            self._in_heap[BID].discard(p)
        return -1

    def best_ask(self) -> int:
        """Lowest ask tick, `n_ticks` when there is no ask (same sentinel as the numba book)."""
        levels = self._levels[ASK]
        heap = self._heaps[ASK]
        while heap:
            p = heap[0]
            if p in levels:
                return p
            heapq.heappop(heap)
            self._in_heap[ASK].discard(p)
        return self.n_ticks

    def n_live(self) -> int:
        return len(self._live)

    def level_quantities(self, side: int) -> dict[int, int]:
        """Resting quantity per price on one side (non-empty levels only)."""
        return {p: lvl.qty for p, lvl in self._levels[side].items()}

    # ------------------------------------------------------------------ operations

    def submit(self, side: int, price: int, qty: int, ioc: bool = False) -> int:
        """Limit order: match what crosses, rest the remainder unless IOC.

        Returns the id of the resting order, or -1 when nothing rests.
        """
        if qty <= 0 or not 0 <= price < self.n_ticks:
            return -1
        if side == BID:
            if self.best_ask() <= price:
                qty = self._match(BID, price, qty)
        elif self.best_bid() >= price:
            qty = self._match(ASK, price, qty)
        if qty == 0 or ioc:
            return -1
        return self._rest(side, price, qty)

    def market(self, side: int, qty: int) -> int:
        """Marketable IOC order; returns the quantity left unfilled."""
        if qty <= 0:
            return qty
        return self._match(side, self.n_ticks - 1 if side == BID else 0, qty)

    def cancel(self, order_id: int) -> int:
        """Cancel a resting order; returns the quantity canceled (0 if not resting)."""
        entry = self.orders.pop(order_id, None)
        if entry is None:
            return 0
        qty = entry[_QTY]
        entry[_QTY] = 0  # lazily removed from its queue
        self._drop_live(entry)
        levels = self._levels[entry[_SIDE]]
        price = entry[_PRICE]
        lvl = levels[price]
        lvl.qty -= qty
        if lvl.qty == 0:
            del levels[price]  # its heap entry is dropped lazily
        return qty

    def cancel_random(self, u: float) -> int:
        """Cancel the resting order at position floor(u * n_live) of the live list."""
        n = len(self._live)
        if n == 0:
            return 0
        return self.cancel(self._live[int(u * n)])

    def apply_events(
        self,
        kinds: npt.NDArray[np.int8],
        sides: npt.NDArray[np.int8],
        offsets: npt.NDArray[np.int32],
        qtys: npt.NDArray[np.int64],
        uniforms: npt.NDArray[np.float64],
        mid0: int,
    ) -> int:
        """Same event semantics as `simulators.book.apply_events` on one venue."""
        n_ticks = self.n_ticks
        best_bid = self.best_bid
        best_ask = self.best_ask
        for k, s, off, q, u in zip(
            kinds.tolist(),
            sides.tolist(),
            offsets.tolist(),
            qtys.tolist(),
            uniforms.tolist(),
            strict=True,
        ):
            if k == EV_ADD:
                if s == BID:
                    bb = best_bid()
                    p = (bb if bb >= 0 else mid0) - off
                    ba = best_ask()
                    if p >= ba:  # never cross: rest at the touch instead
                        p = ba - 1
                else:
                    ba = best_ask()
                    p = (ba if ba < n_ticks else mid0 + 1) + off
                    bb = best_bid()
                    if p <= bb:
                        p = bb + 1
                if 0 <= p < n_ticks:
                    self.submit(s, p, q)
            elif k == EV_CANCEL:
                self.cancel_random(u)
            else:
                self.market(s, q)
        return len(kinds)

    # ------------------------------------------------------------------ internals

    def _rest(self, side: int, price: int, qty: int) -> int:
        levels = self._levels[side]
        lvl = levels.get(price)
        if lvl is None:
            lvl = levels[price] = _Level()
            in_heap = self._in_heap[side]
            if price not in in_heap:
                in_heap.add(price)
                heapq.heappush(self._heaps[side], -price if side == BID else price)
        oid = self._next_id
        self._next_id += 1
        entry = [oid, qty, side, price, len(self._live)]
        lvl.queue.append(entry)
        lvl.qty += qty
        self.orders[oid] = entry
        self._live.append(oid)
        return oid

    def _drop_live(self, entry: Entry) -> None:
        live = self._live
        last = live.pop()
        if last != entry[_ID]:
            pos = entry[_POS]
            live[pos] = last
            self.orders[last][_POS] = pos

    def _match(self, side: int, limit: int, qty: int) -> int:
        """Take liquidity from the opposite side up to `limit`; returns the qty left."""
        opp = 1 - side
        levels = self._levels[opp]
        heap = self._heaps[opp]
        in_heap = self._in_heap[opp]
        orders = self.orders
        while qty > 0:
            if side == BID:
                p = self.best_ask()
                if p > limit:  # also true for an empty ask side (p == n_ticks)
                    break
            else:
                p = self.best_bid()
                if p < 0 or p < limit:
                    break
            lvl = levels[p]
            queue = lvl.queue
            while qty > 0 and lvl.qty > 0:
                entry = queue[0]
                avail = entry[_QTY]
                if avail == 0:  # canceled earlier
                    queue.popleft()
                    continue
                fill = qty if qty < avail else avail
                qty -= fill
                lvl.qty -= fill
                self.traded_volume += fill
                self.last_price = p
                if fill == avail:
                    entry[_QTY] = 0
                    queue.popleft()
                    del orders[entry[_ID]]
                    self._drop_live(entry)
                else:
                    entry[_QTY] = avail - fill
            if lvl.qty == 0:
                # `p` is the best level, so it is the top of the heap
                del levels[p]
                heapq.heappop(heap)
                in_heap.discard(p)
        return qty
