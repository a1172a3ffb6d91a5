"""The one place a parent's execution is put together: from a strategy's spec (its
tactics' configs and the plan's), the ports it trades through, and the models."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from router.domain import DomainError, Event, ParentOrder, VenueId, VenueKind
from router.execution.config import (
    DarkRestConfig,
    LitPostConfig,
    PlanConfig,
    RfqConfig,
    RiskBidConfig,
    TacticConfig,
    TakeConfig,
)
from router.execution.dark import DarkRestTactic
from router.execution.ledger import ChildOrderLedger
from router.execution.lit import LitPostTactic
from router.execution.parent import ParentExecution, Scheduler
from router.execution.rfq import BlockRfqTactic, RiskBidTactic
from router.execution.signals import MarketSignals
from router.execution.tactic import Tactic
from router.execution.take import TakeTactic
from router.execution.venues import LitFees, RfqRouting
from router.ports import Clock, FillModel, MarketData, SlicerPolicy, Venue
from router.risk import RiskGate


class ExecutionSpec(Protocol):
    """What the builder reads of a strategy (router.strategies.StrategySpec)."""

    @property
    def tactics(self) -> tuple[TacticConfig, ...]: ...

    @property
    def plan(self) -> PlanConfig: ...


class ExecutionModels(Protocol):
    """The learned models a tactic may ask for (the model registry)."""

    def fill_model(self) -> FillModel: ...


@dataclass(frozen=True, slots=True)
class ExecutionPorts:
    """What an execution trades through: the venues (lit, dark, dealers) with the lit
    venues' fees, the market feed, the clock and the scheduler; the instrument's lot,
    the dark pools' minimum sizes, and the dealer side if there is one."""

    venues: Mapping[VenueId, Venue]
    fees: Mapping[VenueId, LitFees]
    market: MarketData
    clock: Clock
    schedule: Scheduler
    lot_size: int = 1
    dark_min_qty: Mapping[VenueId, int] = field(default_factory=dict)
    rfq: RfqRouting | None = None


def build_execution(
    parent: ParentOrder,
    slicer: SlicerPolicy,
    spec: ExecutionSpec,
    ports: ExecutionPorts,
    models: ExecutionModels | None = None,
    *,
    risk: RiskGate | None = None,
    rng: np.random.Generator | None = None,
    on_event: Callable[[Event], None] | None = None,
    volume_rate_hint: float = 0.0,
) -> ParentExecution:
    """The execution of `parent` on `slicer`'s schedule with `spec`'s tactics, not yet
    started. An RFQ tactic without an RFQ venue in the ports is left out (the strategy
    trades without the dealers).

    `risk`: the parent's risk gate (default limits if None); `rng`: the tactics' random
    stream (the lit allocation's outflow samples, the panel selector's exploration);
    `on_event`: receives every event the execution emits and passes on;
    `volume_rate_hint`: the market's shares per second expected before any is seen.

    Raises DomainError if a tactic asks for a model and `models` is None, or for a
    config type the builder does not know."""
    plan = spec.plan
    signals = MarketSignals(ports.market, volume_rate_hint)
    ledger = ChildOrderLedger(
        parent,
        ports.venues,
        ports.clock,
        risk if risk is not None else RiskGate(),
        signals,
        lot_size=ports.lot_size,
        warmup_s=plan.warmup_s,
        on_event=on_event,
    )
    rng = rng if rng is not None else np.random.default_rng(0)
    # every strategy takes (the final sweep at least): with its take tactic's reach
    take = next((t for t in spec.tactics if isinstance(t, TakeConfig)), TakeConfig())
    taker = TakeTactic(take, ledger, ports.market, ports.fees)
    tactics: list[Tactic] = []
    for config in spec.tactics:
        tactic = _tactic(config, plan, ports, models, ledger, taker, rng)
        if tactic is not None:
            tactics.append(tactic)
    return ParentExecution(
        slicer, plan, ports.clock, ports.schedule, ledger, signals, taker, tactics
    )


def _tactic(
    config: TacticConfig,
    plan: PlanConfig,
    ports: ExecutionPorts,
    models: ExecutionModels | None,
    ledger: ChildOrderLedger,
    taker: TakeTactic,
    rng: np.random.Generator,
) -> Tactic | None:
    if isinstance(config, TakeConfig):
        return taker
    if isinstance(config, LitPostConfig):
        fill_model = None
        if config.fill_model:
            if models is None:
                raise DomainError("lit posting with the fill model needs the model registry")
            fill_model = models.fill_model()
        interval_s = plan.decision_interval_s
        return LitPostTactic(config, ledger, ports.fees, taker, rng, interval_s, fill_model)
    if isinstance(config, DarkRestConfig):
        pools = ledger.venues_of(VenueKind.DARK)
        return DarkRestTactic(config, ledger, pools, ports.dark_min_qty)
    if isinstance(config, RfqConfig):
        if ports.rfq is None:
            return None
        sweep_s = plan.final_sweep_s
        return BlockRfqTactic(config, ledger, ports.rfq, ports.market, ports.fees, rng, sweep_s)
    if isinstance(config, RiskBidConfig):
        if ports.rfq is None:
            return None
        sweep_s = plan.final_sweep_s
        return RiskBidTactic(config, ledger, ports.rfq, ports.market, ports.fees, rng, sweep_s)
    raise DomainError(f"no tactic for {type(config).__name__}")
