"""Simulated lit venues: the `Venue` port over one venue of a lit market's books
(simulators/markets.py: the simulated flow's or a replayed capture's).

Messages travel with the venue's latency both ways: an order reaches the book one
latency after it is sent, and every report reaches the router one latency after the
fact. Reports are events (router.domain) published to the sink given at construction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from router.domain import (
    ChildId,
    ChildOrder,
    ChildOrderAccepted,
    ChildOrderCanceled,
    ChildOrderExpired,
    ChildOrderFilled,
    ChildOrderRejected,
    Event,
    Nanos,
    OrdType,
    Side,
    TimeInForce,
    VenueId,
    VenueKind,
)
from router.ports import EventSink
from simulators import book
from simulators.kernel import Kernel, LatencyModel
from simulators.markets import LitMarket
from simulators.scenario import LitVenueSpec

_REJECT_TEXT = {
    book.REJECT_POST_ONLY: "post-only order would take liquidity",
    book.REJECT_PRICE: "price outside the venue's price band",
    book.REJECT_QTY: "quantity must be positive",
}


@dataclass(slots=True)
class _Working:
    child: ChildOrder
    owner: int
    slot: int = -1
    leaves: int = 0
    cancel_pending: bool = False


class OwnerRegistry:
    """Book owner ids for client orders, shared by all lit venues of one market."""

    def __init__(self) -> None:
        self._next = 1
        self.venues: dict[int, SimLitVenue] = {}

    def register(self, venue: SimLitVenue) -> int:
        owner = self._next
        self._next += 1
        self.venues[owner] = venue
        return owner


class SimLitVenue:
    def __init__(
        self,
        spec: LitVenueSpec,
        index: int,
        market: LitMarket,
        kernel: Kernel,
        sink: EventSink,
        rng: np.random.Generator,
        owners: OwnerRegistry,
    ) -> None:
        self.spec = spec
        self._index = index
        self._market = market
        self._kernel = kernel
        self._sink = sink
        self._owners = owners
        self._latency = LatencyModel.from_micros(spec.latency_us, spec.latency_jitter).draws(rng)
        self._working: dict[ChildId, _Working] = {}
        self._by_owner: dict[int, _Working] = {}
        self._last_report_ns: Nanos = 0
        self._last_request_ns: Nanos = 0
        # the price of each tick a fill was seen at: Instrument.to_price rounds to 10
        # digits (a decimal conversion, about 1 us), and a day fills at a few hundred ticks
        self._prices: dict[int, float] = {}

    @property
    def venue_id(self) -> VenueId:
        return self.spec.venue_id

    @property
    def kind(self) -> VenueKind:
        return VenueKind.LIT

    def open_orders(self) -> list[ChildId]:
        return list(self._working)

    # ---------------------------------------------------------------- Venue port

    def submit(self, child: ChildOrder) -> None:
        self._send(lambda: self._arrive(child))

    def cancel(self, child_id: ChildId) -> None:
        self._send(lambda: self._cancel(child_id))

    def _send(self, action: Callable[[], None]) -> None:
        # requests travel in sequence too: a cancel never overtakes its order
        due = self._now() + self._latency()
        self._last_request_ns = max(due, self._last_request_ns)
        self._kernel.schedule(self._last_request_ns, action)

    def firm_up(self, child_id: ChildId, qty: int) -> None:
        self._report(
            ChildOrderRejected(
                self._now(),
                child_id,
                self.venue_id,
                "firm-up is for dark pool conditionals",
            )
        )

    # ---------------------------------------------------------------- at the venue

    def _now(self) -> Nanos:
        return self._kernel.clock.now_ns()

    def _report(self, event: Event) -> None:
        # reports travel in sequence, as on a real session: never overtake each other
        due = max(event.ts_ns, self._now()) + self._latency()
        self._last_report_ns = max(due, self._last_report_ns)
        self._kernel.schedule(self._last_report_ns, lambda: self._sink.publish(event))

    def _arrive(self, child: ChildOrder) -> None:
        now = self._now()
        if child.child_id in self._working:
            self._report(ChildOrderRejected(now, child.child_id, self.venue_id, "duplicate id"))
            return
        if child.conditional or child.min_qty:
            self._report(
                ChildOrderRejected(
                    now,
                    child.child_id,
                    self.venue_id,
                    "lit venues take no conditional/min-qty",
                )
            )
            return
        n_ticks = self._market.state.depth.shape[2]
        if child.ord_type is OrdType.MARKET:
            price = n_ticks - 1 if child.side is Side.BUY else 0
        else:
            assert child.limit_ticks is not None  # ChildOrder enforces it
            price = child.limit_ticks
        flags = book.POST_ONLY if child.post_only else 0
        if child.ord_type is OrdType.MARKET or child.tif is TimeInForce.IOC:
            flags |= book.IOC
        w = _Working(child, self._owners.register(self), leaves=child.qty)
        self._working[child.child_id] = w
        self._by_owner[w.owner] = w
        self._report(ChildOrderAccepted(now, child.child_id, self.venue_id))
        res = self._market.submit(now, self._index, child.side, price, child.qty, w.owner, flags)
        if res.status != book.OK:
            self._forget(w)
            self._report(
                ChildOrderRejected(
                    now,
                    child.child_id,
                    self.venue_id,
                    _REJECT_TEXT.get(res.status, "rejected"),
                )
            )
            return
        w.slot = res.slot
        if res.slot < 0:
            if w.leaves > 0:
                # an IOC remainder, or a market order that ran out of book
                self._report(ChildOrderExpired(now, child.child_id, self.venue_id, w.leaves))
            self._forget(w)

    def _cancel(self, child_id: ChildId) -> None:
        now = self._now()
        w = self._working.get(child_id)
        if w is None or w.slot < 0:
            self._report(ChildOrderCanceled(now, child_id, self.venue_id, 0, "too late: not open"))
            return
        canceled = self._market.cancel(w.slot)
        self._forget(w)
        self._report(ChildOrderCanceled(now, child_id, self.venue_id, canceled))

    def on_fill(
        self, owner: int, ts: Nanos, price: int, qty: int, maker: bool, leaves: int
    ) -> None:
        """Called by the market for every fill of one of this venue's client orders."""
        w = self._by_owner.get(owner)
        if w is None:
            return
        w.leaves -= qty
        if maker:
            self._market.record_passive_client_fill(w.child.side, qty)
        fee_rate = self.spec.maker_fee if maker else self.spec.taker_fee
        px = self._prices.get(price)
        if px is None:
            px = self._prices[price] = self._market.instrument.to_price(price)
        self._report(
            ChildOrderFilled(
                ts_ns=ts,
                child_id=w.child.child_id,
                venue=self.venue_id,
                side=w.child.side,
                qty=qty,
                price=px,
                fee=fee_rate * qty,
                liquidity="maker" if maker else "taker",
                leaves_qty=w.leaves,
            )
        )
        if maker and w.leaves == 0:
            self._forget(w)

    def _forget(self, w: _Working) -> None:
        self._working.pop(w.child.child_id, None)
        self._by_owner.pop(w.owner, None)
        self._owners.venues.pop(w.owner, None)
