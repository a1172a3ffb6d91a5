"""The plan and the lifecycle of one parent with recording tactics: when the tactics
are asked to act and with what, the sweep and the finish, and the client's changes."""

from __future__ import annotations

import pytest

from router.domain import (
    ChildOrderFilled,
    DomainError,
    OrdType,
    ParentId,
    ParentOrder,
    ParentOrderCompleted,
    Side,
    Symbol,
    TimeInForce,
    VenueId,
)
from router.execution import ChildOrderLedger, ParentExecution, PlanConfig, TakeConfig
from router.execution.signals import MarketSignals
from router.execution.tactic import Tactic
from router.execution.take import TakeTactic
from router.risk import KillSwitch, RiskGate, RiskLimits
from router.strategies.twap import TwapSlicer

from .fakes import NS, FakeClock, FakeMarket, FakeScheduler, RecordingVenue, parent, quote, snapshot

A = VenueId("A")
SNAP = snapshot(quote("A", 9_999, 10_001))  # $100: a sweep's reach is inside the price collar


class Recorder(Tactic):
    def __init__(self, rests: bool = False) -> None:
        self.rests = rests
        self.decisions: list = []
        self.events: list = []
        self.pulls = 0

    def on_decision(self, d) -> None:
        self.decisions.append(d)

    def on_event(self, event, may_trade) -> None:
        self.events.append((event, may_trade))

    def on_pull(self) -> None:
        self.pulls += 1


class Run:
    """A 300 s parent of 6,000 shares on TWAP with `tactics`, on fakes."""

    def __init__(self, *tactics: Tactic, snap=SNAP, kill: KillSwitch | None = None) -> None:
        self.clock = FakeClock()
        self.scheduler = FakeScheduler(self.clock)
        self.market = FakeMarket(snap)
        self.venue = RecordingVenue(A)
        self.events: list = []
        signals = MarketSignals(self.market)
        risk = RiskGate(RiskLimits(max_participation=1.0), kill)
        self.ledger = ChildOrderLedger(
            parent(6_000, horizon_s=300.0),
            {A: self.venue},
            self.clock,
            risk,
            signals,
            lot_size=100,
            on_event=self.events.append,
        )
        sweeper = TakeTactic(TakeConfig(), self.ledger, self.market, {})
        self.ex = ParentExecution(
            TwapSlicer(),
            PlanConfig(),
            self.clock,
            self.scheduler,
            self.ledger,
            signals,
            sweeper,
            tactics,
        )

    def until(self, t_s: float) -> None:
        self.scheduler.run_until(int(t_s * NS))

    def rest(self, qty: int = 500):
        """A resting order sent as a tactic would."""
        return self.ledger.send(
            A,
            qty,
            OrdType.LIMIT,
            TimeInForce.DAY,
            9_999,
            SNAP,
            chosen="",
            inputs={},
            alternatives={},
            passive=True,
        )


def test_decisions_each_interval_then_sweeps_then_the_finish():
    tactic = Recorder()
    run = Run(tactic)
    run.ex.start()
    run.until(300)
    # decisions every 30 s until the final sweep (the last minute), on TWAP's line
    assert [d.now // NS for d in tactic.decisions] == list(range(0, 240, 30))
    assert [(d.target, d.target_next, d.behind) for d in tactic.decisions[:2]] == [
        (0, 0, 0.0),
        (600, 600, 0.0),
    ]
    assert tactic.decisions[0].slice_qty == 600.0
    # the sweeps (every 5 s) take what is left at once; the finish reports it
    (swept,) = run.venue.submitted
    assert swept.qty == 6_000 and run.events[0].chosen == "take 6000 on A (final sweep)"
    times = [t // NS for t, _, _ in run.ex.result.schedule]
    assert times == [*range(0, 240, 30), *range(240, 300, 5), 300]
    assert isinstance(run.events[-1], ParentOrderCompleted) and run.ex.done
    assert tactic.pulls == 1  # at the finish


def test_a_resting_tactic_acts_after_the_pulls_with_both_targets():
    tactic = Recorder(rests=True)
    run = Run(tactic)
    run.ex.start()
    run.until(29)
    resting = run.rest()
    run.until(30)
    assert run.venue.canceled == [resting.child_id]  # pulled at the decision
    assert len(tactic.decisions) == 1
    run.until(30.05)
    d = tactic.decisions[1]
    assert d.now == 30 * NS + int(0.05 * NS)
    # TWAP's line now and at the next decision; nothing done: a slice behind
    assert (d.target, d.target_next) == (601, 1_201)
    assert d.behind == pytest.approx(601 / 600)


def test_a_resting_tactic_waits_out_a_one_sided_market():
    tactic = Recorder(rests=True)
    run = Run(tactic, snap=snapshot(quote("A", 9_999, None)))
    run.ex.start()
    run.until(200)
    assert tactic.decisions == []


def test_pause_pulls_everything_and_resume_catches_up_from_now():
    tactic = Recorder()
    run = Run(tactic)
    run.ex.start()
    run.until(40)
    resting = run.rest()
    run.ex.pause()
    assert run.venue.canceled == [resting.child_id] and tactic.pulls == 1
    run.until(100)
    assert len(tactic.decisions) == 2  # 0 and 30 s
    run.ex.resume()
    run.until(101)
    assert [d.now // NS for d in tactic.decisions[2:]] == [100]
    assert tactic.decisions[2].target == 2_000  # a third of the horizon: behind, it catches up


def test_a_replace_keeps_the_id_and_the_start_and_replans_now():
    tactic = Recorder()
    run = Run(tactic)
    run.ex.start()
    run.until(40)
    for other in (
        ParentOrder(ParentId("Q"), Symbol("X"), Side.BUY, 9_000, 0, 300 * NS),
        ParentOrder(ParentId("P"), Symbol("X"), Side.BUY, 9_000, 10 * NS, 300 * NS),
    ):
        with pytest.raises(DomainError, match="keeps the parent's id and start"):
            run.ex.amend(other)
    bigger = parent(12_000, horizon_s=300.0)
    run.ex.amend(bigger)
    assert run.ex.parent is bigger and run.ex.result.parent is bigger and tactic.pulls == 1
    run.until(41)
    assert tactic.decisions[-1].now == 40 * NS and tactic.decisions[-1].target == 1_600


def test_the_kill_switch_pulls_and_stops_the_decisions():
    kill = KillSwitch()
    tactic = Recorder()
    run = Run(tactic, kill=kill)
    run.ex.start()
    run.until(20)
    resting = run.rest()
    kill.engage("halt")
    run.until(60)
    assert len(tactic.decisions) == 1 and run.venue.canceled == [resting.child_id]


def test_events_reach_the_ledger_then_the_tactics_who_may_trade_until_the_sweep():
    tactic = Recorder()
    run = Run(tactic)
    run.ex.start()
    run.until(20)
    child = run.rest()
    fill = ChildOrderFilled(20 * NS, child.child_id, A, Side.BUY, 200, 1.0, 0.0, "maker", 300)
    run.ex.publish(fill)
    assert run.ex.result.filled_qty == 200 and run.events[-1] is fill
    assert tactic.events == [(fill, True)]
    run.until(250)  # in the final sweep
    run.ex.publish(fill)
    assert tactic.events[-1] == (fill, False)
