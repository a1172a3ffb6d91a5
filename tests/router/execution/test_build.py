"""The builder: a strategy's tactic configs become its tactics, in their order."""

from __future__ import annotations

import dataclasses

import pytest

from router.domain import DomainError, VenueId, VenueKind
from router.execution import (
    ExecutionPorts,
    LitFees,
    LitPostConfig,
    PlanConfig,
    RfqRouting,
    TakeConfig,
    build_execution,
)
from router.execution.dark import DarkRestTactic
from router.execution.lit import LitPostTactic
from router.execution.rfq import BlockRfqTactic, RiskBidTactic
from router.execution.take import TakeTactic
from router.strategies import strategy_spec
from router.strategies.twap import TwapSlicer

from .fakes import (
    FakeChannel,
    FakeClock,
    FakeMarket,
    FakeScheduler,
    FakeSelector,
    RecordingVenue,
    parent,
    quote,
    snapshot,
)

A, DARK = VenueId("A"), VenueId("DARK1")


def _ports(rfq: bool = True) -> ExecutionPorts:
    clock = FakeClock()
    dealers = RfqRouting(FakeChannel(), FakeSelector(), 50.0, 1e6) if rfq else None
    return ExecutionPorts(
        venues={A: RecordingVenue(A), DARK: RecordingVenue(DARK, VenueKind.DARK)},
        fees={A: LitFees(0.001, -0.001)},
        market=FakeMarket(snapshot(quote("A", 9_999, 10_001))),
        clock=clock,
        schedule=FakeScheduler(clock),
        lot_size=100,
        dark_min_qty={DARK: 500},
        rfq=dealers,
    )


class Models:
    def __init__(self) -> None:
        self.asked = 0

    def fill_model(self):
        self.asked += 1
        return object()


def _kinds(ex) -> list[type]:
    return [type(t) for t in ex.tactics]


@pytest.mark.parametrize(
    ("strategy", "rfq", "kinds"),
    [
        ("twap", True, [TakeTactic]),
        ("sor", True, [BlockRfqTactic, LitPostTactic, DarkRestTactic]),
        ("sor", False, [LitPostTactic, DarkRestTactic]),  # no dealers: no RFQ tactic
        ("sor-lit", True, [LitPostTactic, DarkRestTactic]),
        ("risk-bid", True, [RiskBidTactic, TakeTactic]),
        ("risk-bid", False, [TakeTactic]),
    ],
)
def test_each_config_becomes_its_tactic_in_order(strategy, rfq, kinds):
    ex = build_execution(parent(), TwapSlicer(), strategy_spec(strategy), _ports(rfq))
    assert _kinds(ex) == kinds
    assert ex.config == PlanConfig() and ex.parent == parent()


def test_model_guided_posting_asks_the_registry_for_the_fill_model():
    models = Models()
    ex = build_execution(parent(), TwapSlicer(), strategy_spec("sor-ml"), _ports(), models)
    assert _kinds(ex) == [BlockRfqTactic, LitPostTactic, DarkRestTactic] and models.asked == 1
    with pytest.raises(DomainError, match="model registry"):
        build_execution(parent(), TwapSlicer(), strategy_spec("sor-ml"), _ports())


def test_a_strategys_take_config_is_its_take_tactics_and_sweeps():
    twap = strategy_spec("twap").with_tactic(TakeConfig(sweep_ticks=9))
    ports = _ports()
    ex = build_execution(parent(), TwapSlicer(), twap, ports)
    ex.start()
    ports.schedule.run_until(ex.parent.end_ns)
    sent = ports.venues[A].submitted
    # each slice (one due) reaches 2 + 1 ticks past the ask; the final sweep 9
    assert {c.limit_ticks for c in sent[:-1]} == {10_004} and sent[-1].limit_ticks == 10_010


def test_an_unknown_config_is_refused():
    odd = dataclasses.replace(strategy_spec("twap"), tactics=(PlanConfig(),))
    with pytest.raises(DomainError, match="no tactic for PlanConfig"):
        build_execution(parent(), TwapSlicer(), odd, _ports())


def test_with_tactic_replaces_a_tactic_of_the_same_kind_only():
    sor = strategy_spec("sor")
    posted = sor.with_tactic(LitPostConfig(urgency_ticks=2.0))
    assert posted.tactics[1] == LitPostConfig(urgency_ticks=2.0) and posted.name == "sor"
    with pytest.raises(DomainError, match="no TakeConfig tactic"):
        sor.with_tactic(TakeConfig())
