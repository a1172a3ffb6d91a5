"""`Replayer`: one capture's events applied, in steps, to a fresh book (l3.py's kernels),
and what the book looks like at any point."""

from __future__ import annotations

import numpy as np

from simulators.book import ASK, BID
from simulators.replay import l3
from simulators.replay.events import ADD, Listing, OrderEvents

#: the band of prices the book holds, as a multiple of the opening mid
BAND_OVER_MID = 2


def price_band(events: OrderEvents) -> int:
    """The book's number of ticks: prices 0 up to twice the opening mid (the start
    snapshot's, else the first limit order's price). A live handler knows this much
    at the start; quotes beyond it are stubs (Bitstamp's book has asks up to
    $999,999,999) that no trade of a replay reaches, and are skipped, counted."""
    snap = slice(0, events.n_snapshot)
    side, price = events.side[snap], events.price[snap]
    bids, asks = price[side == BID], price[side == ASK]
    if bids.size and asks.size:
        mid = (int(bids.max()) + int(asks.min())) / 2
    else:
        adds = np.flatnonzero((events.action == ADD) & (events.price > 0))
        if not adds.size:
            return 3  # no priced order at all: a book of nothing
        mid = float(events.price[adds[0]])
    return max(3, int(BAND_OVER_MID * mid) + 1)


class Replayer:
    """Applies `events` (the whole stream, or a head of it) in order, up to a position.

    `literal=True`: every new order rests where the feed says, stale orders are kept
    (the control, see l3.py).
    """

    def __init__(
        self,
        events: OrderEvents,
        n_orders: int,
        *,
        literal: bool = False,
        n_ticks: int | None = None,
    ) -> None:
        self.events = events
        self.n_ticks = price_band(events) if n_ticks is None else n_ticks
        self.book = l3.new_book(self.n_ticks, n_orders + 1)
        self.state = l3.new_replay_state(n_orders, n_orders + 1, literal)
        self.outcome = np.zeros(len(events), dtype=np.int8)
        self.position = 0
        self._finished = False
        self._clients = l3.no_clients()

    def run(self, stop: int | None = None, checks: l3.TradeChecks | None = None) -> None:
        """Apply the events up to (not including) `stop` (default: all), checking the
        trades of `checks` on the way."""
        ev = self.events
        end = len(ev) if stop is None else min(stop, len(ev))
        if end <= self.position:
            return
        l3.apply_events(
            self.book,
            self.state,
            ev.ts_ns,
            ev.order,
            ev.side,
            ev.price,
            ev.qty,
            ev.action,
            ev.n_snapshot,
            self.position,
            end,
            self.outcome,
            l3.no_checks() if checks is None else checks,
            self._clients,
        )
        self.position = end

    def finish(self) -> None:
        """Apply what is left and close the last millisecond (pending orders rest)."""
        self.run()
        if not self._finished:
            l3.finish(self.book, self.state, self._clients)
            self._finished = True

    # ------------------------------------------------------------------ what it shows

    @property
    def best_bid(self) -> int:
        """Best bid tick, -1 if none."""
        return int(self.book.best[0, BID])

    @property
    def best_ask(self) -> int:
        """Best ask tick, `n_ticks` if none."""
        return int(self.book.best[0, ASK])

    def levels(self, side: int, n: int) -> list[tuple[int, int]]:
        """The best `n` price levels of `side` as (tick, lots), best first."""
        depth = self.book.depth[0, side]
        if side == BID:
            ticks = np.flatnonzero(depth[: self.best_bid + 1])[::-1][:n]
        else:
            ticks = self.best_ask + np.flatnonzero(depth[self.best_ask :])[:n]
        return [(int(p), int(depth[p])) for p in ticks]

    @property
    def applied(self) -> int:
        return int(np.count_nonzero(self.outcome[: self.position] == l3.APPLIED))

    def skipped(self) -> dict[str, int]:
        """Events skipped so far, by reason (reasons that occurred only)."""
        counts = np.bincount(self.outcome[: self.position], minlength=len(l3.SKIP_REASONS))
        return {l3.SKIP_REASONS[r]: int(c) for r, c in enumerate(counts) if r and c}

    def handled(self) -> dict[str, int]:
        """What the replay did that a literal reading would not, by kind."""
        return {name: int(c) for name, c in zip(l3.HANDLED, self.state.handled, strict=True)}

    @property
    def crossed_ns(self) -> int:
        """Time (exchange clock, ns) the book spent crossed or locked."""
        return l3.crossed_ns(self.state)

    @property
    def crossed_seconds(self) -> float:
        return self.crossed_ns / 1e9

    def resting(self) -> Listing:
        """Every resting order (dense order ids)."""
        orders = np.flatnonzero(self.state.status == l3.RESTING).astype(np.int32)
        slots = self.state.slot_of[orders]
        b = self.book
        return Listing(
            order=orders,
            side=b.o_side[slots].astype(np.int8),
            price=b.o_price[slots].astype(np.int64),
            qty=(b.o_qty[slots] + b.o_hidden[slots]).astype(np.int64),
        )
