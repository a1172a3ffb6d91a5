"""The execution loop of one parent order: slices from a slicer, child orders to venues.

One `ParentExecution` owns the state of one parent order. A scheduler (the simulated
kernel, or the asyncio loop in the service) wakes it at each decision time, and the
venues' events come back through `publish`. It never reads a clock of its own and never
touches a transport: everything arrives through the ports.

This first router takes liquidity: each slice goes as a marketable IOC limit order to
the lit venue with the best fee-adjusted price. It re-plans each interval (a slice
that was not filled is carried into the next one) and sweeps what is left just before
the horizon. It never sends more than the parent's remaining quantity, never prices
through the parent's limit, and records every decision with the alternatives it
weighed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

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
    ParentOrderCompleted,
    Side,
    TimeInForce,
    VenueId,
)
from router.ports import Clock, ExecutionState, MarketData, SlicerPolicy, Venue

Scheduler = Callable[[Nanos, Callable[[], None]], None]


@dataclass(frozen=True, slots=True)
class EngineConfig:
    decision_interval_s: float = 30.0
    aggression_ticks: int = 2  # a marketable limit may reach this far past the touch
    final_sweep_s: float = 60.0  # start sweeping the remainder this long before the end
    sweep_interval_s: float = 5.0
    sweep_ticks: int = 15  # how far past the touch a catch-up or final sweep may reach


@dataclass(frozen=True, slots=True)
class LitFees:
    taker_fee: float  # per share, negative = rebate
    maker_fee: float


@dataclass
class _Child:
    order: ChildOrder
    open_qty: int


@dataclass
class ExecutionResult:
    parent: ParentOrder
    filled_qty: int = 0
    notional: float = 0.0
    fees: float = 0.0
    fills: list[ChildOrderFilled] = field(default_factory=list)
    decisions: list[DecisionRecorded] = field(default_factory=list)
    children: list[ChildOrder] = field(default_factory=list)

    @property
    def avg_price(self) -> float:
        return self.notional / self.filled_qty if self.filled_qty else 0.0


class ParentExecution:
    def __init__(
        self,
        parent: ParentOrder,
        slicer: SlicerPolicy,
        venues: Mapping[VenueId, Venue],
        fees: Mapping[VenueId, LitFees],
        market: MarketData,
        clock: Clock,
        schedule: Scheduler,
        config: EngineConfig | None = None,
        lot_size: int = 1,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.parent = parent
        self.slicer = slicer
        self._venues = venues
        self._fees = fees
        self._market = market
        self._clock = clock
        self._schedule = schedule
        self.config = config or EngineConfig()
        self._lot = lot_size
        self._on_event = on_event
        self.result = ExecutionResult(parent)
        self._open: dict[ChildId, _Child] = {}
        self._sent: set[ChildId] = set()
        self._ids = itertools.count(1)
        self.done = False

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        interval = int(self.config.decision_interval_s * NANOS_PER_SECOND)
        sweep_start = self.parent.end_ns - int(self.config.final_sweep_s * NANOS_PER_SECOND)
        t = self.parent.start_ns
        while t < sweep_start:
            self._schedule(t, self._decide)
            t += interval
        sweep_every = int(self.config.sweep_interval_s * NANOS_PER_SECOND)
        t = max(sweep_start, self.parent.start_ns)
        while t < self.parent.end_ns:
            self._schedule(t, self._sweep)
            t += sweep_every
        self._schedule(self.parent.end_ns, self._finish)

    @property
    def remaining(self) -> int:
        return self.parent.qty - self.result.filled_qty

    @property
    def in_flight(self) -> int:
        return sum(c.open_qty for c in self._open.values())

    # ------------------------------------------------------------ decisions

    def _decide(self) -> None:
        if self.done:
            return
        snap = self._market.snapshot()
        state = ExecutionState(self.parent, self._clock.now_ns(), self.result.filled_qty, snap)
        target = min(self.slicer.target_filled(state), self.parent.qty)
        want = self._round_lot(target - self.result.filled_qty - self.in_flight)
        if want > 0:
            # reach further the more slices we are behind the schedule
            horizon_s = self.parent.horizon_ns / NANOS_PER_SECOND
            slice_qty = max(1.0, self.parent.qty * self.config.decision_interval_s / horizon_s)
            behind = int(want / slice_qty)
            reach = min(self.config.aggression_ticks + behind, self.config.sweep_ticks)
            self._take(want, reach, "slice" if behind <= 1 else f"catch-up, {behind} slices")

    def _sweep(self) -> None:
        if self.done:
            return
        want = self.remaining - self.in_flight
        if want > 0:
            self._take(want, self.config.sweep_ticks, "final sweep")

    def _finish(self) -> None:
        if self.done:
            return
        self.done = True
        for child_id, child in list(self._open.items()):
            self._venues[child.order.venue].cancel(child_id)
        self._emit(
            ParentOrderCompleted(
                self._clock.now_ns(),
                self.parent.parent_id,
                self.result.filled_qty,
                self.result.avg_price,
            )
        )

    def _take(self, qty: int, reach_ticks: int, why: str) -> None:
        """Send `qty` as marketable IOC limits, best fee-adjusted venue first, each venue
        getting what its visible depth can absorb (the best venue takes the rest)."""
        snap = self._market.snapshot()
        side = self.parent.side
        scores: dict[str, float] = {}
        touches: dict[str, int] = {}
        depths: dict[str, int] = {}
        for q in snap.venues:
            touch = q.ask_ticks if side is Side.BUY else q.bid_ticks
            if touch is None:
                continue
            fee = self._fees[q.venue].taker_fee if q.venue in self._fees else 0.0
            # fee-adjusted price in ticks, signed so that lower is better for both sides
            scores[q.venue] = side.sign * touch + fee / snap.tick_size
            touches[q.venue] = touch
            depths[q.venue] = q.ask_depth if side is Side.BUY else q.bid_depth
        if not scores:
            return  # no lit liquidity on our side right now: try again next interval
        ranked = sorted(scores, key=lambda v: (scores[v], v))
        left = qty
        plan: list[tuple[str, int]] = []
        for venue in ranked:
            take = min(left, self._round_lot(depths[venue]) if venue != ranked[-1] else left)
            if take > 0:
                plan.append((venue, take))
                left -= take
            if left == 0:
                break
        if left > 0:  # more than all the visible depth: the best venue gets the rest
            plan[0] = (plan[0][0], plan[0][1] + left) if plan else (ranked[0], left)
        now = self._clock.now_ns()
        for venue, take in plan:
            touch = touches[venue]
            limit = touch + side.sign * reach_ticks
            if self.parent.limit_ticks is not None:
                if side.sign * (touch - self.parent.limit_ticks) > 0:
                    continue  # the market is through our limit here: wait
                limit = (
                    min(limit, self.parent.limit_ticks)
                    if side is Side.BUY
                    else max(limit, self.parent.limit_ticks)
                )
            child = ChildOrder(
                child_id=ChildId(f"{self.parent.parent_id}-{next(self._ids)}"),
                parent_id=self.parent.parent_id,
                venue=VenueId(venue),
                side=side,
                qty=take,
                ord_type=OrdType.LIMIT,
                tif=TimeInForce.IOC,
                limit_ticks=limit,
            )
            decision = DecisionRecorded(
                ts_ns=now,
                decision_id=DecisionId(f"{child.child_id}-d"),
                parent_id=self.parent.parent_id,
                chosen=f"take {take} on {venue} ({why})",
                inputs={
                    "qty": float(take),
                    "limit_ticks": float(limit),
                    "touch_ticks": float(touch),
                    "venue_depth": float(depths[venue]),
                    "filled": float(self.result.filled_qty),
                    "remaining": float(self.remaining),
                },
                alternatives={f"{v}_cost_ticks": side.sign * scores[v] for v in ranked},
            )
            self.result.decisions.append(decision)
            self._emit(decision)
            self._open[child.child_id] = _Child(child, take)
            self._sent.add(child.child_id)
            self.result.children.append(child)
            self._emit(ChildOrderSent(now, child))
            self._venues[child.venue].submit(child)

    def _round_lot(self, qty: int) -> int:
        if qty <= 0:
            return 0
        lots = qty // self._lot
        # the last odd lot goes too, so the parent can complete exactly
        return lots * self._lot if lots else min(qty, self.remaining - self.in_flight)

    # ------------------------------------------------------------ venue events

    def publish(self, event: Event) -> None:
        self._emit(event)
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
            if child is not None:
                child.open_qty -= event.qty
                if child.open_qty <= 0:
                    del self._open[event.child_id]
        elif isinstance(event, ChildOrderExpired | ChildOrderCanceled | ChildOrderRejected):
            self._open.pop(event.child_id, None)

    def _emit(self, event: Event) -> None:
        if self._on_event is not None:
            self._on_event(event)
