"""Plain-Python order-by-order (L3) book: the baseline of `bench book --replay`.

Written the way a careful Python developer would write it without numba: a dict of
orders, each price level an insertion-ordered dict (its FIFO), and a sorted list of the
prices of each side (`bisect`). It applies a replay's events with the semantics of
simulators/replay/l3.py (marketable orders held to the end of their millisecond, stale
orders removed when the feed contradicts them, the same skip reasons and counts), so
the two can be checked against each other and timed on the same events.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from simulators.book import ASK, BID
from simulators.replay import l3
from simulators.replay.events import ADD, DELETE, MODIFY, NO_PRICE


class PyL3Book:
    """One venue's book, prices in ticks 0 <= price < n_ticks."""

    def __init__(self, n_ticks: int, literal: bool = False) -> None:
        self.n_ticks = n_ticks
        self.literal = literal
        #: resting orders: order -> [side, price, qty]
        self.orders: dict[int, list[int]] = {}
        self.levels: tuple[dict[int, dict[int, int]], dict[int, dict[int, int]]] = ({}, {})
        #: the prices with orders, ascending, per side
        self.prices: tuple[list[int], list[int]] = ([], [])
        self.status: dict[int, int] = {}
        self.why: dict[int, int] = {}
        self.snapshot: set[int] = set()
        #: pending (marketable) orders: order -> [side, limit or NO_PRICE, qty, filled]
        self.pending: dict[int, list[int]] = {}
        self.pending_ts = -1
        self.handled = [0] * len(l3.HANDLED)
        self.outcome: list[int] = []
        self.crossed_ns = 0
        self._last_ts = -1

    # ------------------------------------------------------------------ queries

    def best_bid(self) -> int:
        p = self.prices[BID]
        return p[-1] if p else -1

    def best_ask(self) -> int:
        p = self.prices[ASK]
        return p[0] if p else self.n_ticks

    def top(self, side: int, n: int) -> list[tuple[int, int]]:
        """The best `n` levels of `side` as (tick, size)."""
        prices = self.prices[side][::-1][:n] if side == BID else self.prices[side][:n]
        return [(p, sum(self.levels[side][p].values())) for p in prices]

    def _crosses(self, side: int, price: int) -> bool:
        if side == BID:
            return price >= self.best_ask()
        return price <= self.best_bid()

    # ------------------------------------------------------------------ book

    def _rest(self, o: int, side: int, price: int, qty: int) -> None:
        level = self.levels[side].get(price)
        if level is None:
            level = self.levels[side][price] = {}
            bisect.insort(self.prices[side], price)
        level[o] = qty
        self.orders[o] = [side, price, qty]
        self.status[o] = l3.RESTING

    def _take_out(self, o: int, status: int) -> None:
        side, price, _ = self.orders.pop(o)
        level = self.levels[side][price]
        del level[o]
        if not level:
            del self.levels[side][price]
            prices = self.prices[side]
            del prices[bisect.bisect_left(prices, price)]
        self.status[o] = status

    # ------------------------------------------------------------------ events

    def apply(
        self,
        ts: Sequence[int],
        order: Sequence[int],
        side: Sequence[int],
        price: Sequence[int],
        qty: Sequence[int],
        action: Sequence[int],
        n_snapshot: int,
    ) -> None:
        """Apply every event (plain lists are fastest here); `outcome` gets one code each."""
        out = self.outcome
        for i in range(len(ts)):
            t = ts[i]
            if self.pending and t > self.pending_ts:
                self._flush()
            if self._last_ts >= 0 and self.best_bid() >= self.best_ask():
                self.crossed_ns += t - self._last_ts
            self._last_ts = t
            a = action[i]
            o = order[i]
            if a == ADD:
                out.append(self._add(o, side[i], price[i], qty[i], t, i < n_snapshot))
            elif a == MODIFY:
                out.append(self._modify(o, price[i], qty[i]))
            elif a == DELETE:
                out.append(self._delete(o))
            else:
                out.append(self._market(o, side[i], qty[i], t))

    def finish(self) -> None:
        if self.pending:
            self._flush()

    def _hold(self, o: int, side: int, price: int, qty: int, ts: int) -> None:
        self.status[o] = l3.PENDING
        self.pending[o] = [side, price, qty, 0]
        self.pending_ts = ts

    def _ignore(self, o: int, why: int) -> int:
        self.status[o] = l3.IGNORED
        self.why[o] = why
        return why

    def _skip_known(self, o: int) -> int:
        s = self.status.get(o, l3.UNSEEN)
        if s == l3.UNSEEN:
            return l3.SKIP_UNKNOWN_ORDER
        if s == l3.IGNORED:
            return self.why[o]
        return l3.SKIP_AFTER_DELETE

    def _add(self, o: int, side: int, price: int, qty: int, ts: int, snap: bool) -> int:
        if o in self.status:
            return l3.SKIP_DUPLICATE_ORDER
        if snap:
            self.snapshot.add(o)
        if qty < 0:
            return self._ignore(o, l3.SKIP_NEGATIVE_SIZE)
        if qty == 0:
            return self._ignore(o, l3.SKIP_ZERO_SIZE)
        if not 0 <= price < self.n_ticks:
            return self._ignore(o, l3.SKIP_OUTSIDE_BAND)
        if not self.literal and self._crosses(side, price):
            self._hold(o, side, price, qty, ts)
        else:
            self._rest(o, side, price, qty)
        return l3.APPLIED

    def _market(self, o: int, side: int, qty: int, ts: int) -> int:
        if o in self.status:
            return l3.SKIP_DUPLICATE_ORDER
        if qty < 0:
            return self._ignore(o, l3.SKIP_NEGATIVE_SIZE)
        self.handled[l3.H_MARKET_ORDERS] += 1
        self._hold(o, side, NO_PRICE, qty, ts)
        return l3.APPLIED

    def _modify(self, o: int, price: int, qty: int) -> int:
        if qty < 0:
            return l3.SKIP_NEGATIVE_SIZE
        s = self.status.get(o, l3.UNSEEN)
        if s == l3.PENDING:
            p = self.pending[o]
            p[2] = qty
            p[3] = 1
            return l3.APPLIED
        if s == l3.FILLED:
            return l3.APPLIED if qty == 0 else l3.SKIP_AFTER_DELETE
        if s != l3.RESTING:
            return self._skip_known(o)
        entry = self.orders[o]
        side, at, total = entry
        if price != at:
            self.handled[l3.H_CHANGE_PRICE] += 1
        if qty == 0:
            self._take_out(o, l3.FILLED)
            self.handled[l3.H_ZERO_CHANGE] += 1
        elif qty < total:
            entry[2] = qty
            self.levels[side][at][o] = qty
        elif qty > total:
            self._take_out(o, l3.UNSEEN)
            self.handled[l3.H_SIZE_UP] += 1
            self._rest(o, side, at, qty)
        return l3.APPLIED

    def _delete(self, o: int) -> int:
        s = self.status.get(o, l3.UNSEEN)
        if s == l3.RESTING:
            self._take_out(o, l3.DELETED)
        elif s == l3.PENDING:
            _, price, _, filled = self.pending.pop(o)
            self.status[o] = l3.DELETED
            if price != NO_PRICE:
                kind = l3.H_AGGRESSOR_FILLED if filled else l3.H_MARKETABLE_REJECTED
                self.handled[kind] += 1
        elif s == l3.FILLED:
            self.status[o] = l3.DELETED
        else:
            return self._skip_known(o)
        return l3.APPLIED

    def _flush(self) -> None:
        for o, (side, price, qty, filled) in self.pending.items():
            if price == NO_PRICE:
                self.status[o] = l3.FILLED
                if qty > 0:
                    self.handled[l3.H_MARKET_LEFT] += 1
                continue
            if qty <= 0:
                self.status[o] = l3.FILLED
                continue
            other = 1 - side
            while self._crosses(side, price):
                best = self.best_ask() if other == ASK else self.best_bid()
                stale = next(iter(self.levels[other][best]))
                self._take_out(stale, l3.IGNORED)
                self.why[stale] = l3.SKIP_REMOVED_AS_STALE
                kind = l3.H_STALE_SNAPSHOT if stale in self.snapshot else l3.H_STALE_STREAM
                self.handled[kind] += 1
            self._rest(o, side, price, qty)
            self.handled[l3.H_AGGRESSOR_RESTED if filled else l3.H_CROSSING_RESTED] += 1
        self.pending.clear()
