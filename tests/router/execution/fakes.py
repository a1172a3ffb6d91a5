"""Fakes for the tactics' unit tests: a ledger that records what a tactic asks for, a
market that shows one snapshot, the dealer side, a clock and a scheduler."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from router.domain import (
    ChildId,
    ChildOrder,
    DealerId,
    Nanos,
    OrdType,
    ParentId,
    ParentOrder,
    QuoteRequest,
    RfqId,
    Side,
    Symbol,
    TimeInForce,
    VenueId,
    VenueKind,
)
from router.execution.ledger import ChildOrderLedger
from router.execution.signals import Screen
from router.execution.tactic import Decision
from router.ports import MarketSnapshot, RecentMarket, VenueQuote

NS = 1_000_000_000


def parent(
    qty: int = 10_000,
    side: Side = Side.BUY,
    horizon_s: float = 3_000.0,
    limit_ticks: int | None = None,
) -> ParentOrder:
    return ParentOrder(
        ParentId("P"), Symbol("X"), side, qty, 0, int(horizon_s * NS), limit_ticks=limit_ticks
    )


def quote(
    venue: str,
    bid: int | None,
    ask: int | None,
    qty: int = 500,
    depth: int = 1_000,
) -> VenueQuote:
    """One lit venue's top of book: `qty` at each touch, `depth` near it."""
    return VenueQuote(
        VenueId(venue),
        bid,
        qty if bid is not None else 0,
        ask,
        qty if ask is not None else 0,
        depth if bid is not None else 0,
        depth if ask is not None else 0,
    )


def snapshot(*venues: VenueQuote, tick: float = 0.01, volume: int = 0) -> MarketSnapshot:
    """The consolidated book of `venues`."""
    bids = [q.bid_ticks for q in venues if q.bid_ticks is not None]
    asks = [q.ask_ticks for q in venues if q.ask_ticks is not None]
    return MarketSnapshot(
        ts_ns=0,
        symbol=Symbol("X"),
        tick_size=tick,
        bid_ticks=max(bids) if bids else None,
        ask_ticks=min(asks) if asks else None,
        bid_depth=sum(q.bid_depth for q in venues),
        ask_depth=sum(q.ask_depth for q in venues),
        venues=tuple(venues),
        last_ticks=None,
        volume=volume,
        vwap_num=0.0,
    )


SCREEN = Screen(
    volume_rate=50.0, vol_bps=2.0, touch_imbalance=0.0, momentum_bps=0.0, recent=RecentMarket()
)


def decision(
    snap: MarketSnapshot,
    target: int,
    target_next: int | None = None,
    *,
    now: Nanos = 0,
    filled: int = 0,
    behind: float = 0.0,
    slice_qty: float = 100.0,
    screen: Screen = SCREEN,
) -> Decision:
    return Decision(
        now,
        snap,
        filled,
        target,
        target if target_next is None else target_next,
        behind,
        slice_qty,
        lambda: screen,
    )


class FakeMarket:
    """A feed that always shows `snap` (and a quiet recent past)."""

    def __init__(self, snap: MarketSnapshot) -> None:
        self.snap = snap

    def snapshot(self) -> MarketSnapshot:
        return self.snap

    def touches_before(self, lags_s):
        return [None] * len(lags_s)

    def flow_over(self, windows_s):
        return [(0, 0)] * len(windows_s)


@dataclass
class Sent:
    """One child a tactic asked the ledger to send."""

    venue: str
    qty: int
    ord_type: OrdType
    tif: TimeInForce
    limit: int | None
    chosen: str
    inputs: dict[str, float]
    alternatives: dict[str, float]
    aggressive: bool
    passive: bool
    exempt: bool
    queue_ahead: int
    min_qty: int
    quote_id: str | None
    owner: object


class FakeLedger:
    """What the tactics see of the ledger. Sends are recorded and count as working at
    their venue's kind (`kinds`, lit unless said otherwise); no risk gate, no venue."""

    def __init__(
        self,
        parent: ParentOrder,
        *,
        lot: int = 100,
        filled: int = 0,
        working: dict[VenueKind, int] | None = None,
        kinds: dict[str, VenueKind] | None = None,
        now: Nanos = 0,
    ) -> None:
        self.parent = parent
        self.lot = lot
        self.filled = filled
        self.held = 0
        self.clock = now
        self.sent: list[Sent] = []
        self.children: list[ChildOrder] = []  # what `send` returned, in order
        self.records: list[tuple[str, str, dict[str, float]]] = []  # (key, chosen, inputs)
        self._working = dict(working or {})
        self._kinds = dict(kinds or {})
        self._ids = itertools.count(1)
        self._next_rfq = 1

    def now(self) -> Nanos:
        return self.clock

    @property
    def remaining(self) -> int:
        return self.parent.qty - self.filled

    @property
    def in_flight(self) -> int:
        return sum(self._working.values()) + self.held

    @property
    def uncommitted(self) -> int:
        return self.remaining - self.in_flight

    def working(self, kind: VenueKind) -> int:
        return self._working.get(kind, 0)

    def kind(self, venue: str) -> VenueKind:
        return self._kinds.get(venue, VenueKind.LIT)

    # the lot and limit rules are the ledger's own (they read only lot, uncommitted and
    # parent), so a tactic sees the same rounding and clamping as on a real ledger
    round_lot = ChildOrderLedger.round_lot
    within_limit = ChildOrderLedger.within_limit
    price_ok = ChildOrderLedger.price_ok

    def next_rfq_id(self) -> RfqId:
        rfq_id = RfqId(f"{self.parent.parent_id}-R{self._next_rfq}")
        self._next_rfq += 1
        return rfq_id

    @property
    def rfqs_sent(self) -> int:
        return self._next_rfq - 1

    def record(self, now, child, chosen, inputs, alternatives) -> None:
        key = child if isinstance(child, str) else child.child_id
        self.records.append((key, chosen, inputs))

    def send(
        self,
        venue,
        qty,
        ord_type,
        tif,
        limit,
        snap,
        *,
        chosen,
        inputs,
        alternatives,
        aggressive=False,
        passive=False,
        exempt=False,
        queue_ahead=0,
        min_qty=0,
        quote_id=None,
        owner=None,
    ) -> ChildOrder | None:
        qty = min(qty, self.uncommitted)
        if qty <= 0:
            return None
        self.sent.append(
            Sent(
                venue,
                qty,
                ord_type,
                tif,
                limit,
                chosen,
                inputs,
                alternatives,
                aggressive,
                passive,
                exempt,
                queue_ahead,
                min_qty,
                quote_id,
                owner,
            )
        )
        kind = self.kind(venue)
        self._working[kind] = self._working.get(kind, 0) + qty
        child = ChildOrder(
            child_id=ChildId(f"{self.parent.parent_id}-{next(self._ids)}"),
            parent_id=self.parent.parent_id,
            venue=VenueId(venue),
            side=self.parent.side,
            qty=qty,
            ord_type=ord_type,
            tif=tif,
            limit_ticks=limit,
            min_qty=min_qty,
            quote_id=quote_id,
        )
        self.children.append(child)
        return child


@dataclass
class FakeChannel:
    """The RFQ venue: remembers the requests and the RFQs finished."""

    requests: list[QuoteRequest] = field(default_factory=list)
    finished: list[RfqId] = field(default_factory=list)

    def request(self, request: QuoteRequest) -> None:
        self.requests.append(request)

    def finish(self, rfq_id: RfqId) -> None:
        self.finished.append(rfq_id)


@dataclass
class FakeSelector:
    """Always the same panel, with one score per dealer."""

    panel: list[str] = field(default_factory=lambda: ["D1", "D2", "D3", "D4"])
    observed: list[object] = field(default_factory=list)

    def select(self, side, qty, n, rng, two_sided=False):
        chosen = self.panel[:n]
        return [DealerId(d) for d in chosen], {f"p_{d}": 1.0 for d in chosen}

    def observe(self, event) -> None:
        self.observed.append(event)


class RecordingVenue:
    """A venue that takes every order and reports nothing back."""

    def __init__(self, venue_id: VenueId, kind: VenueKind = VenueKind.LIT) -> None:
        self.venue_id = venue_id
        self.kind = kind
        self.submitted: list[ChildOrder] = []
        self.canceled: list[ChildId] = []

    def submit(self, child: ChildOrder) -> None:
        self.submitted.append(child)

    def cancel(self, child_id: ChildId) -> None:
        self.canceled.append(child_id)

    def firm_up(self, child_id: ChildId, qty: int) -> None:
        pass


class FakeClock:
    def __init__(self, now: Nanos = 0) -> None:
        self.now = now

    def now_ns(self) -> Nanos:
        return self.now


class FakeScheduler:
    """Runs callbacks in time order, moving the clock to each."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self._queue: list[tuple[Nanos, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    def __call__(self, ts: Nanos, action: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (ts, next(self._seq), action))

    def run_until(self, ts: Nanos) -> None:
        while self._queue and self._queue[0][0] <= ts:
            at, _, action = heapq.heappop(self._queue)
            self.clock.now = max(self.clock.now, at)
            action()
        self.clock.now = max(self.clock.now, ts)
