"""The router's names from before router.execution, for the callers that still build an
execution with the old sixteen-argument constructor (router/desk.py,
tests/router/test_runtime.py) or read the old flat config (bench/decide.py). Delete
once they call router.execution.build_execution."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from router import execution
from router.domain import DomainError, Event, ParentOrder, VenueId
from router.execution import (
    ExecutionPorts,
    LitFees,
    LitPostConfig,
    PlanConfig,
    RfqConfig,
    RfqRouting,
    RiskBidConfig,
    Scheduler,
    TacticConfig,
    build_execution,
)
from router.execution.signals import recent_market
from router.ports import Clock, FillModel, MarketData, SlicerPolicy, Venue
from router.risk import RiskGate
from router.strategies import ML, RISK_BID, SMART, TAKER

__all__ = [
    "EngineConfig",
    "LitFees",
    "ParentExecution",
    "RfqRouting",
    "Scheduler",
    "recent_market",
]

ROUTINGS = {"taker": TAKER, "smart": SMART, "ml": ML, "risk-bid": RISK_BID}


@dataclass(frozen=True, slots=True)
class EngineConfig:
    routing: str = "taker"
    decision_interval_s: float = PlanConfig().decision_interval_s
    rfq_time_limit_s: float | None = None  # None: the RFQ venue's usual time limit

    def __post_init__(self) -> None:
        if self.routing not in ROUTINGS:
            raise DomainError(f"routing must be one of {', '.join(ROUTINGS)}, got {self.routing!r}")

    def tactics(self, fill_model: bool) -> tuple[TacticConfig, ...]:
        def adapt(t: TacticConfig) -> TacticConfig:
            if isinstance(t, RfqConfig):
                return RfqConfig(time_limit_s=self.rfq_time_limit_s)
            if isinstance(t, RiskBidConfig):
                return RiskBidConfig(time_limit_s=self.rfq_time_limit_s)
            if isinstance(t, LitPostConfig):
                return LitPostConfig(fill_model=fill_model)
            return t

        return tuple(adapt(t) for t in ROUTINGS[self.routing])


@dataclass(frozen=True, slots=True)
class _Spec:
    tactics: tuple[TacticConfig, ...]
    plan: PlanConfig


@dataclass(frozen=True, slots=True)
class _GivenModel:
    model: FillModel

    def fill_model(self) -> FillModel:
        return self.model


class ParentExecution(execution.ParentExecution):
    """`build_execution` behind the old constructor."""

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
        risk: RiskGate | None = None,
        rng: np.random.Generator | None = None,
        dark_min_qty: Mapping[VenueId, int] | None = None,
        volume_rate_hint: float = 0.0,
        rfq: RfqRouting | None = None,
        fill_model: FillModel | None = None,
    ) -> None:
        cfg = config or EngineConfig()
        has_model = cfg.routing == "ml" and fill_model is not None
        spec = _Spec(cfg.tactics(has_model), PlanConfig(cfg.decision_interval_s))
        ports = ExecutionPorts(
            venues, fees, market, clock, schedule, lot_size, dict(dark_min_qty or {}), rfq
        )
        built = build_execution(
            parent,
            slicer,
            spec,
            ports,
            _GivenModel(fill_model) if fill_model is not None else None,
            risk=risk,
            rng=rng,
            on_event=on_event,
            volume_rate_hint=volume_rate_hint,
        )
        # the built execution's state, on an instance of this class (whose methods a
        # test of the desk patches)
        self.__dict__.update(built.__dict__)
