"""One parent order's plan and lifecycle.

A scheduler (the simulated kernel, or the asyncio loop of the service: router.runtime)
wakes the plan at each decision time, and the venues' events come back through
`publish`. At each decision the slicer says how much should be done by now; the plan
hands that to its tactics, which place what is missing; before the horizon it sweeps
what is left with marketable orders, then finishes. The client may pause, resume,
replace or cancel the parent at any time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence

from router.domain import (
    NANOS_PER_SECOND,
    DomainError,
    Event,
    Nanos,
    ParentOrder,
    ParentOrderCompleted,
    ShadowAnswer,
)
from router.execution.config import PlanConfig
from router.execution.ledger import ChildOrderLedger, ExecutionResult
from router.execution.signals import MarketSignals
from router.execution.tactic import Decision, Tactic
from router.execution.take import TakeTactic
from router.ports import Clock, ExecutionState, MarketSnapshot, SlicerPolicy
from router.risk import RiskGate
from router.shadow import take_shadow

Scheduler = Callable[[Nanos, Callable[[], None]], None]


class ParentExecution:
    """The plan of one parent: built by router.execution.build.build_execution.

    `sweeper` takes what is left in the final sweep; `tactics` act at the decisions,
    in their order."""

    def __init__(
        self,
        slicer: SlicerPolicy,
        plan: PlanConfig,
        clock: Clock,
        schedule: Scheduler,
        ledger: ChildOrderLedger,
        signals: MarketSignals,
        sweeper: TakeTactic,
        tactics: Sequence[Tactic],
    ) -> None:
        self.slicer = slicer
        self.config = plan
        self.ledger = ledger
        self.tactics = tuple(tactics)
        self._clock = clock
        self._schedule = schedule
        self._signals = signals
        self._sweeper = sweeper
        self._resting = any(t.rests for t in self.tactics)
        self._sweeping = False
        self.done = False
        self.paused = False  # by the client: no new children until resumed
        self.stopped = False  # canceled by the client: no new children ever
        self._plan_gen = 0  # bumped by every re-plan (replace, resume)
        self.on_schedule: Callable[[], None] | None = None  # a schedule point was added
        # shadow mode: the slicer's challenger's pace, asked at a decision whose orders
        # are placed by the next `_act` (a re-placing decision's second half)
        self._pace_shadow: ShadowAnswer | None = None

    # ------------------------------------------------------------ what it has done

    @property
    def parent(self) -> ParentOrder:
        return self.ledger.parent

    @property
    def result(self) -> ExecutionResult:
        return self.ledger.result

    @property
    def risk(self) -> RiskGate:
        return self.ledger.risk

    @property
    def remaining(self) -> int:
        return self.ledger.remaining

    @property
    def in_flight(self) -> int:
        return self.ledger.in_flight

    @property
    def uncommitted(self) -> int:
        """Shares neither done nor working anywhere: the most any new child may take."""
        return self.ledger.uncommitted

    @property
    def idle(self) -> bool:
        """Sends nothing now: done, paused or stopped."""
        return self.done or self.paused or self.stopped

    # ------------------------------------------------------------ lifecycle

    def start(self, from_ns: Nanos | None = None) -> None:
        """Schedule the decisions from the parent's start (or from `from_ns`: a parent
        recovered after a restart, or re-planned after a replace) to its end."""
        self._plan(self.parent.start_ns if from_ns is None else from_ns)

    def _plan(self, from_ns: Nanos) -> None:
        """Decisions every interval until the final sweep, sweeps until the end, then
        the finish. Each step schedules the next one as it runs: a parent of hours keeps
        one callback in the scheduler, not hundreds (the live desk holds thousands)."""
        # A step of an earlier plan (before a replace) sees a newer generation and does
        # nothing: the scheduler has no way to take back what it was given.
        gen = self._plan_gen
        interval = int(self.config.decision_interval_s * NANOS_PER_SECOND)
        sweep_every = int(self.config.sweep_interval_s * NANOS_PER_SECOND)
        end = self.parent.end_ns
        sweep_start = end - int(self.config.final_sweep_s * NANOS_PER_SECOND)

        def plan() -> Iterator[tuple[Nanos, Callable[[], None]]]:
            t = from_ns
            while t < sweep_start:
                yield t, self._decide
                t += interval
            t = max(sweep_start, from_ns)
            while t < end:
                yield t, self._sweep
                t += sweep_every
            yield max(end, from_ns), self._finish

        steps = plan()

        def run(action: Callable[[], None]) -> None:
            if gen != self._plan_gen:
                return
            nxt = next(steps, None)  # queued before this step acts, as if planned up front
            if nxt is not None:
                self._schedule(nxt[0], functools.partial(run, nxt[1]))
            action()

        t0, first = next(steps)
        self._schedule(t0, functools.partial(run, first))

    # ------------------------------------------------------------ the client's changes

    def restore(
        self, filled_qty: int, notional: float, fees: float, next_child: int, next_rfq: int
    ) -> None:
        """Continue a parent after a restart: what it filled before, and ids that do not
        collide with the children and RFQs it already had (a risk bid that asked before
        does not ask again)."""
        self.ledger.restore(filled_qty, notional, fees, next_child, next_rfq)

    def pause(self) -> None:
        """Stop trading: pull every child and pass on the RFQ at hand; decisions wait."""
        self.paused = True
        self._pull()

    def resume(self) -> None:
        """Trade again from the next decision (now): behind schedule, it catches up."""
        if not self.paused:
            return
        self.paused = False
        self._replan()

    def stop(self, reason: str) -> None:
        """The parent is canceled: pull everything and send nothing more. Fills of
        children already at a venue still count; `in_flight` says when all are out."""
        self.stopped = True
        self._pull()

    def amend(self, parent: ParentOrder, slicer: SlicerPolicy | None = None) -> None:
        """A replace: new quantity, limit or horizon (same id and start). The children
        priced for the old order are pulled and the plan restarts now.

        Raises DomainError if `parent` changes the id or the start."""
        if parent.parent_id != self.parent.parent_id or parent.start_ns != self.parent.start_ns:
            raise DomainError("a replace keeps the parent's id and start")
        self.ledger.amend(parent)
        if slicer is not None:
            self.slicer = slicer
        self._pull()
        self._sweeping = False
        if not self.paused:
            self._replan()

    def close(self) -> None:
        """Nothing more to do (filled, canceled): later callbacks are no-ops."""
        self.done = True

    def halt(self, reason: str) -> None:
        """Pull every open child now (kill switch, cancel of the parent)."""
        self.ledger.cancel_all()

    def _pull(self) -> None:
        self.ledger.cancel_all()
        for tactic in self.tactics:
            tactic.on_pull()

    def _replan(self) -> None:
        self._plan_gen += 1
        now = self._clock.now_ns()
        if now < self.parent.end_ns:
            self._plan(now)
        else:
            self._schedule(now, self._finish)

    # ------------------------------------------------------------ decisions

    def _target(self, snap: MarketSnapshot, at_ns: Nanos) -> int:
        state = ExecutionState(self.parent, at_ns, self.ledger.filled, snap)
        target = max(0, min(self.slicer.target_filled(state), self.parent.qty))
        answer = take_shadow(self.slicer)
        if answer is not None:
            self._flush_pace_shadow()  # an earlier one no decision acted on
            self._pace_shadow = answer
        return target

    def _flush_pace_shadow(self) -> None:
        answer, self._pace_shadow = self._pace_shadow, None
        if answer is not None:
            self.ledger.begin_shadow(answer)
            self.ledger.end_shadow(answer)

    def _slice_qty(self) -> float:
        horizon_s = self.parent.horizon_ns / NANOS_PER_SECOND
        return max(1.0, self.parent.qty * self.config.decision_interval_s / horizon_s)

    def _sample(self, point: tuple[Nanos, int, int]) -> None:
        self.result.schedule.append(point)
        if self.on_schedule is not None:
            self.on_schedule()

    def _decide(self) -> None:
        if self.idle:
            return
        if self.risk.kill.engaged:
            self.halt(self.risk.kill.reason)
            return
        now = self._clock.now_ns()
        snap = self._signals.market.snapshot()
        self._signals.observe(now, snap)
        target = self._target(snap, now)
        self._sample((now, target, self.ledger.filled))
        if self._resting:
            # last interval's resting orders go; the tactics place anew at current
            # prices and sizes once the cancels are through (a dark pool keeps no queue
            # worth keeping)
            self.ledger.cancel_resting()
            delay = int(self.config.replan_delay_s * NANOS_PER_SECOND)
            self._schedule(now + delay, self._place)
            return
        self._act(now, snap, target, target, 0.0)

    def _place(self) -> None:
        """The re-placing decision's second half: both targets, a two-sided market."""
        if self.idle or self._sweeping:
            return
        now = self._clock.now_ns()
        snap = self._signals.market.snapshot()
        if snap.bid_ticks is None or snap.ask_ticks is None:
            return  # one-sided market: nothing sensible to price against
        interval_ns = int(self.config.decision_interval_s * NANOS_PER_SECOND)
        filled = self.ledger.filled
        target_now = self._target(snap, now)
        target_next = self._target(snap, now + interval_ns)
        behind = max(0.0, (target_now - filled) / self._slice_qty())
        self._act(now, snap, target_now, target_next, behind)

    def _act(
        self, now: Nanos, snap: MarketSnapshot, target: int, target_next: int, behind: float
    ) -> None:
        side = self.parent.side
        signals = self._signals
        decision = Decision(
            now,
            snap,
            self.ledger.filled,
            target,
            target_next,
            behind,
            self._slice_qty(),
            lambda: signals.screen(snap, now, side),
        )
        pace, self._pace_shadow = self._pace_shadow, None
        if pace is None:
            for tactic in self.tactics:
                tactic.on_decision(decision)
            return
        # the pace set this decision's targets: its records carry the challenger's
        self.ledger.begin_shadow(pace)
        try:
            for tactic in self.tactics:
                tactic.on_decision(decision)
        finally:
            self.ledger.end_shadow(pace)

    def _sweep(self) -> None:
        if self.idle:
            return
        if not self._sweeping:
            self._sweeping = True
            # the end is near: passive and dark orders would only hold shares back
            self.ledger.cancel_resting()
        now = self._clock.now_ns()
        self._sample((now, self.parent.qty, self.ledger.filled))
        want = self.uncommitted
        if want > 0:
            self._sweeper.sweep(want)

    def _finish(self) -> None:
        if self.done:
            return
        self.done = True
        self._pull()
        self._flush_pace_shadow()
        now = self._clock.now_ns()
        self._sample((now, self.parent.qty, self.ledger.filled))
        self.ledger.emit(
            ParentOrderCompleted(
                self._clock.now_ns(),
                self.parent.parent_id,
                self.ledger.filled,
                self.result.avg_price,
            )
        )

    # ------------------------------------------------------------ venue events

    def publish(self, event: Event) -> None:
        """A venue's event about this parent: passed on, accounted for by the ledger,
        then shown to the tactics."""
        self.ledger.emit(event)
        self.ledger.on_event(event)
        for tactic in self.tactics:
            tactic.on_event(event, not (self.idle or self._sweeping))
