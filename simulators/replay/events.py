"""The normalized, columnar form of an order-by-order (L3) capture.

Every source adapter (simulators/replay/bitstamp.py today; LOBSTER message files or
Databento MBO later) turns its files into these arrays, so the book (l3.py) and the
reconstruction check (check.py) never see a source's format or quirks of spelling:

- prices are integer ticks and sizes integer lots of the instrument (`Instrument`);
- times are nanoseconds on the exchange's clock (`ts_ns`, the replay's clock) and on the
  receiver's (`recv_ns`, kept to measure the feed's lag);
- order ids are dense indices `0 <= order < len(order_ids)` into the venue's own ids, so
  the book keeps per-order state in arrays instead of a hash map;
- one row per feed message, in the feed's order: that order breaks the ties of the many
  events that share a timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

BID = 0
ASK = 1

#: a new limit order at `price` (rests, unless it is marketable: see l3.py)
ADD = 0
#: a new order without a limit price (a market order): it takes liquidity, never rests
MARKET = 1
#: the order's remaining size is now `qty`; `price` is what the feed printed (for an
#: aggressor, the fill price, not its limit), kept but not used to move a resting order
MODIFY = 2
#: the order is gone (canceled, rejected, or filled)
DELETE = 3

ACTION_NAMES = ("add", "market", "modify", "delete")

#: `price` of a MARKET event (it has none)
NO_PRICE = -1

I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Instrument:
    """What the book needs to know of the traded instrument, derived from the capture."""

    symbol: str
    currency: str
    tick_size: float  # price of one tick, in `currency`
    lot_size: float  # size of one lot, in the instrument's unit (e.g. BTC)
    how: str  # how the tick and the lot were found, for the report

    def price(self, ticks: int) -> float:
        # round away the binary noise of `ticks * 0.01` and the like
        return round(ticks * self.tick_size, 12)

    def size(self, lots: int) -> float:
        return round(lots * self.lot_size, 12)


@dataclass(frozen=True, slots=True)
class OrderEvents:
    """The order events of a capture, one row per feed message.

    `n_snapshot`: the first rows are the start snapshot (one ADD per resting order, in
    the queue order the snapshot lists them), the rest is the live stream.
    """

    ts_ns: I64
    recv_ns: I64
    order: I32
    side: I8
    price: I64
    qty: I64
    action: I8
    n_snapshot: int

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])

    def head(self, n_live: int) -> OrderEvents:
        """The snapshot and the first `n_live` live events (a slice for tests)."""
        stop = self.n_snapshot + max(0, n_live)
        return OrderEvents(
            ts_ns=self.ts_ns[:stop],
            recv_ns=self.recv_ns[:stop],
            order=self.order[:stop],
            side=self.side[:stop],
            price=self.price[:stop],
            qty=self.qty[:stop],
            action=self.action[:stop],
            n_snapshot=min(self.n_snapshot, stop),
        )


@dataclass(frozen=True, slots=True)
class Trades:
    """The capture's own trades (its trade channel), in the order they were printed.

    `maker`/`taker` are dense order indices (as `OrderEvents.order`); `aggressor` is the
    side of the taker (BID: a buyer lifted the offer).
    """

    trade_id: I64
    ts_ns: I64
    recv_ns: I64
    price: I64
    qty: I64
    aggressor: I8
    maker: I32
    taker: I32

    def __len__(self) -> int:
        return int(self.trade_id.shape[0])


@dataclass(frozen=True, slots=True)
class Listing:
    """Orders resting at one instant as the capture itself lists them (dense ids)."""

    order: I32
    side: I8
    price: I64
    qty: I64


@dataclass(frozen=True, slots=True)
class Capture:
    """One loaded capture: the instrument, its order events and trades, and what the
    adapter noticed in the files (`notes`, counts by name, for the report)."""

    name: str
    instrument: Instrument
    events: OrderEvents
    trades: Trades
    order_ids: I64  # the venue's id of each dense order index
    #: what the capture lists as resting at its end (the synthetic deletes that close it);
    #: None where the source has no such list or the capture was cut short (`head`)
    end_state: Listing | None = None
    notes: dict[str, int] = field(default_factory=dict)

    def head(self, n_live: int) -> Capture:
        """The snapshot and the first `n_live` live events, with the trades printed by
        then (the end state dropped: it belongs to the whole capture)."""
        events = self.events.head(n_live)
        if len(events) < len(self.events):
            last = int(events.ts_ns[-1]) if len(events) else -1
            # a trade in the last millisecond may have its book events cut off: leave it out
            keep = self.trades.ts_ns < last
        else:
            keep = np.ones(len(self.trades), dtype=bool)
        t = self.trades
        trades = Trades(
            trade_id=t.trade_id[keep],
            ts_ns=t.ts_ns[keep],
            recv_ns=t.recv_ns[keep],
            price=t.price[keep],
            qty=t.qty[keep],
            aggressor=t.aggressor[keep],
            maker=t.maker[keep],
            taker=t.taker[keep],
        )
        cut = len(events) < len(self.events)
        return Capture(
            name=self.name,
            instrument=self.instrument,
            events=events,
            trades=trades,
            order_ids=self.order_ids,
            end_state=None if cut else self.end_state,
            notes=dict(self.notes),
        )
