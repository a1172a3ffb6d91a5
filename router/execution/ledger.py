"""The child-order ledger of one parent: what is done, what is working, and the one
way out to a venue.

The ledger mints child and RFQ ids, passes every child through the risk gate before it
leaves, records the decision that sent it (or the verdict that stopped it), and keeps
the fill accounting: filled quantity, notional and fees, each open child's remaining
quantity. Tactics decide; the ledger keeps them from working more than the parent has
left (`uncommitted`), and tells a child's tactic when the child is done.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from router.domain import (
    NANOS_PER_SECOND,
    ChildId,
    ChildOrder,
    ChildOrderCanceled,
    ChildOrderExpired,
    ChildOrderFilled,
    ChildOrderRejected,
    ChildOrderSent,
    DecisionId,
    DecisionRecorded,
    Event,
    Nanos,
    OrdType,
    ParentOrder,
    RfqId,
    ShadowAnswer,
    ShadowCompared,
    Side,
    TimeInForce,
    VenueId,
    VenueKind,
)
from router.execution.signals import MarketSignals
from router.ports import Clock, MarketSnapshot, Venue
from router.risk import RiskGate


@dataclass
class WorkingChild:
    """A child order the ledger has sent and not yet seen end."""

    order: ChildOrder
    open_qty: int
    sent_ns: Nanos
    passive: bool = False  # rests until canceled (lit post, dark midpoint order)
    queue_ahead: int = 0  # shown ahead of it at its price when it was sent
    filled: int = 0
    cancel_pending: bool = False
    owner: ChildOwner | None = None


class ChildOwner(Protocol):
    """The tactic that sent a child, told when the child is done."""

    def on_child_closed(self, child: WorkingChild, ts_ns: Nanos) -> None: ...


@dataclass
class ExecutionResult:
    parent: ParentOrder
    filled_qty: int = 0
    notional: float = 0.0
    fees: float = 0.0
    fills: list[ChildOrderFilled] = field(default_factory=list)
    decisions: list[DecisionRecorded] = field(default_factory=list)
    children: list[ChildOrder] = field(default_factory=list)
    sent_ns: dict[ChildId, Nanos] = field(default_factory=dict)
    # (time, target by then, filled by then) at every decision: schedule vs realised
    schedule: list[tuple[Nanos, int, int]] = field(default_factory=list)

    @property
    def avg_price(self) -> float:
        return self.notional / self.filled_qty if self.filled_qty else 0.0


class ChildOrderLedger:
    """The children of one parent order and their accounting.

    `held`: shares a tactic keeps back from the others while it waits for an answer
    (an RFQ's reservation); they count as working. `warmup_s`: children sent this soon
    after the parent's start are exempt from the participation cap (too little volume
    seen to measure it against)."""

    def __init__(
        self,
        parent: ParentOrder,
        venues: Mapping[VenueId, Venue],
        clock: Clock,
        risk: RiskGate,
        signals: MarketSignals,
        *,
        lot_size: int = 1,
        warmup_s: float = 0.0,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.parent = parent
        self.result = ExecutionResult(parent)
        self.risk = risk
        self.lot = lot_size
        self.held = 0
        self._venues = venues
        self._clock = clock
        self._signals = signals
        self._warmup_ns = warmup_s * NANOS_PER_SECOND
        self._on_event = on_event
        self._open: dict[ChildId, WorkingChild] = {}
        self._sent: set[ChildId] = set()
        self._ids = itertools.count(1)
        self._next_rfq = 1
        # shadow mode: the challengers' answers of the asking under way, by family, with
        # the decisions recorded since (`begin_shadow`)
        self._shadows: dict[str, tuple[ShadowAnswer, list[DecisionId]]] = {}

    # ------------------------------------------------------------ what is where

    def now(self) -> Nanos:
        return self._clock.now_ns()

    @property
    def filled(self) -> int:
        return self.result.filled_qty

    @property
    def remaining(self) -> int:
        return self.parent.qty - self.result.filled_qty

    @property
    def in_flight(self) -> int:
        return sum(c.open_qty for c in self._open.values()) + self.held

    @property
    def uncommitted(self) -> int:
        """Shares neither done nor working anywhere: the most any new child may take."""
        return self.remaining - self.in_flight

    def working(self, kind: VenueKind) -> int:
        """Shares open at the venues of one kind."""
        return sum(c.open_qty for c in self._open.values() if self.kind(c.order.venue) is kind)

    def kind(self, venue: VenueId) -> VenueKind:
        return self._venues[venue].kind

    def venues_of(self, kind: VenueKind) -> list[VenueId]:
        """The venues of one kind, in the order the ports list them."""
        return [v for v, venue in self._venues.items() if venue.kind is kind]

    def round_lot(self, qty: int) -> int:
        if qty <= 0:
            return 0
        lots = qty // self.lot
        if lots:
            return lots * self.lot
        # below one lot: only the parent's final odd lot goes, so it completes exactly
        return min(qty, self.uncommitted) if self.uncommitted < self.lot else 0

    def within_limit(self, price: int) -> int:
        """`price` moved back to the parent's limit if it is through it."""
        lim = self.parent.limit_ticks
        if lim is None:
            return price
        return min(price, lim) if self.parent.side is Side.BUY else max(price, lim)

    def price_ok(self, price: int) -> bool:
        lim = self.parent.limit_ticks
        return lim is None or self.parent.side.sign * (price - lim) <= 0

    # ------------------------------------------------------------ the parent's changes

    def restore(
        self, filled_qty: int, notional: float, fees: float, next_child: int, next_rfq: int
    ) -> None:
        """What a parent recovered after a restart had done, and the next ids to mint."""
        self.result.filled_qty = filled_qty
        self.result.notional = notional
        self.result.fees = fees
        self._ids = itertools.count(next_child)
        self._next_rfq = next_rfq

    def amend(self, parent: ParentOrder) -> None:
        self.parent = parent
        self.result.parent = parent

    # ------------------------------------------------------------ ids and decisions

    def next_rfq_id(self) -> RfqId:
        rfq_id = RfqId(f"{self.parent.parent_id}-R{self._next_rfq}")
        self._next_rfq += 1
        return rfq_id

    @property
    def rfqs_sent(self) -> int:
        """Requests for quotes this parent sent (before a restart too)."""
        return self._next_rfq - 1

    def record(
        self,
        now: Nanos,
        child: ChildOrder | str,
        chosen: str,
        inputs: dict[str, float],
        alternatives: dict[str, float],
    ) -> None:
        """Record a decision about a child order (or, given an id, one that sent none)."""
        key = child if isinstance(child, str) else child.child_id
        decision_id = DecisionId(f"{key}-d")
        shadow: tuple[ShadowAnswer, ...] = ()
        if self._shadows:
            shadow = tuple(answer for answer, _ in self._shadows.values())
            for _, ids in self._shadows.values():
                ids.append(decision_id)
        decision = DecisionRecorded(
            ts_ns=now,
            decision_id=decision_id,
            parent_id=self.parent.parent_id,
            chosen=chosen,
            inputs=inputs,
            alternatives=alternatives,
            shadow=shadow,
        )
        self.result.decisions.append(decision)
        self.emit(decision)

    def begin_shadow(self, answer: ShadowAnswer) -> None:
        """What a family's challenger answered where the decision under way asked the
        champion (router.shadow): the decisions recorded until `end_shadow` carry it."""
        self._shadows[answer.family] = (answer, [])

    def end_shadow(self, answer: ShadowAnswer) -> None:
        """The decision under way is done with `answer`: report it once
        (ShadowCompared), with the decisions that carried it (none if the champion's
        answer recorded nothing)."""
        _, ids = self._shadows.pop(answer.family, (answer, []))
        self.emit(ShadowCompared(self.now(), self.parent.parent_id, answer, tuple(ids)))

    def emit(self, event: Event) -> None:
        if self._on_event is not None:
            self._on_event(event)

    # ------------------------------------------------------------ sending and canceling

    def send(
        self,
        venue: str,
        qty: int,
        ord_type: OrdType,
        tif: TimeInForce,
        limit: int | None,
        snap: MarketSnapshot,
        *,
        chosen: str,
        inputs: dict[str, float],
        alternatives: dict[str, float],
        aggressive: bool = False,
        passive: bool = False,
        exempt: bool = False,
        queue_ahead: int = 0,
        min_qty: int = 0,
        quote_id: str | None = None,
        owner: ChildOwner | None = None,
    ) -> ChildOrder | None:
        """Send a child of up to `qty` (never more than `uncommitted`) through the risk
        gate, recording `chosen` with its `inputs` and `alternatives`. The gate may
        shrink it (the record says why). `exempt`: outside the participation cap (the
        final sweep). Returns the child sent, or None if nothing went out."""
        now = self._clock.now_ns()
        qty = min(qty, self.uncommitted)  # the last guard against overfilling
        if qty <= 0:
            return None
        child = ChildOrder(
            child_id=ChildId(f"{self.parent.parent_id}-{next(self._ids)}"),
            parent_id=self.parent.parent_id,
            venue=VenueId(venue),
            side=self.parent.side,
            qty=qty,
            ord_type=ord_type,
            tif=tif,
            limit_ticks=limit,
            post_only=passive and self.kind(VenueId(venue)) is VenueKind.LIT,
            min_qty=min_qty,
            quote_id=quote_id,
        )
        mid = None if snap.mid is None else snap.mid / snap.tick_size
        window = self._signals.window_volume(now, snap, self.risk.limits.participation_window_s)
        verdict = self.risk.check(
            child,
            mid,
            now,
            window,
            aggressive=aggressive,
            exempt_participation=exempt or now - self.parent.start_ns < self._warmup_ns,
        )
        if verdict.qty < child.qty:
            if verdict.qty <= 0:
                self.record(now, child, f"blocked: {verdict.reason}", inputs, alternatives)
                return None
            child = dataclasses.replace(child, qty=verdict.qty, min_qty=min(min_qty, verdict.qty))
            chosen = f"{chosen}; {verdict.reason}"
        self.record(now, child, chosen, inputs, alternatives)
        self._open[child.child_id] = WorkingChild(
            child, child.qty, now, passive, queue_ahead, owner=owner
        )
        self._sent.add(child.child_id)
        self.result.children.append(child)
        self.result.sent_ns[child.child_id] = now
        self.emit(ChildOrderSent(now, child))
        self._venues[child.venue].submit(child)
        return child

    def cancel(self, child_id: ChildId) -> None:
        child = self._open.get(child_id)
        if child is None or child.cancel_pending:
            return
        child.cancel_pending = True
        self._venues[child.order.venue].cancel(child_id)

    def cancel_all(self) -> None:
        for child_id in list(self._open):
            self.cancel(child_id)

    def cancel_resting(self) -> None:
        """Pull the passive and dark orders (in the order they were sent)."""
        for child_id, child in list(self._open.items()):
            if child.passive:
                self.cancel(child_id)

    # ------------------------------------------------------------ venue events

    def on_event(self, event: Event) -> None:
        """Account for a venue's report on one of this parent's children."""
        if isinstance(event, ChildOrderFilled):
            # a fill counts even if its child already left the open set: venues may report
            # an order's end before its last fill, and dropping that fill would overfill
            if event.child_id not in self._sent:
                return
            self.result.filled_qty += event.qty
            self.result.notional += event.qty * event.price
            self.result.fees += event.fee
            self.result.fills.append(event)
            child = self._open.get(event.child_id)
            passive = event.liquidity == "maker" or (child is not None and child.passive)
            if passive and self.kind(event.venue) is VenueKind.LIT:
                self.risk.record_lit_fill(event.ts_ns, event.qty)
            if child is not None:
                child.open_qty -= event.qty
                child.filled += event.qty
                if child.open_qty <= 0:
                    self._closed(event.child_id, event.ts_ns)
        elif isinstance(event, ChildOrderExpired | ChildOrderCanceled | ChildOrderRejected):
            self._closed(event.child_id, event.ts_ns)

    def _closed(self, child_id: ChildId, ts: Nanos) -> None:
        child = self._open.pop(child_id, None)
        if child is None:
            return
        if not child.passive and child.open_qty > 0:
            self.risk.release(ts, child.open_qty)
        if child.owner is not None:
            child.owner.on_child_closed(child, ts)
