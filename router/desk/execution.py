"""Wiring a parent's execution: the engine that runs the backtests, on a market session.

`build_parent_execution` is the one place the desk constructs the engine's
`ParentExecution`; `ExecutionWiring` decides what goes into it (the strategy that
serves the client's, its slicer, the session's venues, the risk gate, the served
models) and connects its events to the desk's projection.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import structlog

from models.artifacts import ModelError
from router import app
from router.desk.config import DeskConfig
from router.desk.market import ExecutionVenues
from router.desk.orders import Order
from router.desk.projection import Projector
from router.domain import NANOS_PER_SECOND, Event, ParentId, ParentOrder, Side, Symbol
from router.engine import EngineConfig, ParentExecution
from router.ports import FillModel, SlicerPolicy
from router.risk import KillSwitch, RiskGate
from router.strategies import strategy_spec
from router.strategies.learned import served_slicer_policy
from router.strategies.pov import PovSlicer

log = structlog.get_logger("blockroute.desk")

ROUTINGS = ("smart", "ml")  # the routings whose dealer panels a session prepares


def build_parent_execution(
    parent: ParentOrder,
    slicer: SlicerPolicy,
    venues: ExecutionVenues,
    config: EngineConfig,
    on_event: Callable[[Event], None],
    risk: RiskGate,
    volume_rate_hint: float,
    fill_model: FillModel | None,
) -> ParentExecution:
    """A parent's execution on `venues`, not started."""
    return ParentExecution(
        parent,
        slicer,
        venues.venues,
        venues.fees,
        market=venues.market,
        clock=venues.clock,
        schedule=venues.schedule,
        config=config,
        lot_size=venues.lot_size,
        on_event=on_event,
        risk=risk,
        rng=venues.rng,
        dark_min_qty=venues.dark_min_qty,
        volume_rate_hint=volume_rate_hint,
        rfq=venues.rfq,
        fill_model=fill_model,
    )


class ExecutionWiring:
    """Starts and takes back the desk's executions, and serves them the models."""

    def __init__(self, config: DeskConfig, kill: KillSwitch, projector: Projector) -> None:
        self._config = config
        self._kill = kill
        self._projector = projector
        self.models_missing = ""  # why the models could not be served (model_fallback)

    def load_models(self) -> list[str]:
        """Load the served models now (a missing or corrupt artifact raises ModelError
        naming the file, unless the config falls back to running ml orders on the
        heuristic router) and compile the ml decision. Returns the routings the
        markets must serve."""
        routings = list(ROUTINGS)
        try:
            app._served_models()
            served_slicer_policy()
            app.warm_up_ml()  # compiled now, not in the first ml decision
        except ModelError as exc:
            if not self._config.model_fallback:
                raise
            # the config asked for it: run on, loudly, without the models
            log.error("models unusable: ml orders run on the heuristic router", error=str(exc))
            self.models_missing = str(exc)
            routings.remove("ml")
        return routings

    def model_metrics(self) -> dict[str, float]:
        """Rows the served models scored and feature values they clipped to the
        training range (process-wide: the models are shared by every parent)."""
        if self.models_missing:
            return {}
        out = {}
        dealer, fill = app._served_models()
        for name, model in (*((f"dealer_{k}", m) for k, m in dealer.items()), ("fill", fill.model)):
            out[f"model_{name}_rows_total"] = float(model.clipper.rows)
            out[f"model_{name}_clipped_total"] = float(model.clipper.counts.sum())
        return out

    def engine_strategy(self, name: str) -> str:
        """The engine strategy that runs a client's `name` (DomainError if unknown)."""
        strategy = self._config.resolve_strategy(name)
        if self.models_missing and strategy_spec(strategy).routing == "ml":
            return "sor"  # model_fallback: said loudly at start, and in metrics
        return strategy

    def slicer(self, rec: Order, qty: int, horizon_s: float) -> SlicerPolicy:
        assert rec.history is not None
        if rec.engine_strategy == "pov" and rec.row.participation is not None:
            return PovSlicer(rec.row.participation)
        return strategy_spec(rec.engine_strategy).slicer(rec.history, qty, horizon_s)

    def start(self, rec: Order, from_world_ns: int, restore: tuple[int, int] | None) -> None:
        """Wire `rec`'s execution to its market and start it at `from_world_ns`;
        `restore` = (next child number, next RFQ number) of a recovered parent, whose
        row's filled quantity, notional and fees the execution takes over."""
        row, m = rec.row, rec.market
        spec = strategy_spec(rec.engine_strategy)
        parent = ParentOrder(
            parent_id=ParentId(row.parent_id),
            symbol=Symbol(row.symbol),
            side=Side(row.side),
            qty=row.qty,
            start_ns=m.world_ns(row.start_ns),
            horizon_ns=row.end_ns - row.start_ns,
            limit_ticks=None if row.limit_price is None else m.instrument.to_ticks(row.limit_price),
        )
        if rec.history is None:
            rec.history = m.history((row.end_ns - row.start_ns) / NANOS_PER_SECOND)
        cfg = EngineConfig(routing=spec.routing)
        venues = m.execution_venues(row.parent_id, spec.routing, spec.rfq)
        if venues.rfq_time_limit_s is not None:
            cfg = dataclasses.replace(cfg, rfq_time_limit_s=venues.rfq_time_limit_s)
        horizon_s = (row.end_ns - row.start_ns) / NANOS_PER_SECOND
        execution = build_parent_execution(
            parent,
            self.slicer(rec, row.qty, horizon_s),
            venues,
            cfg,
            on_event=functools.partial(self._projector.on_engine_event, rec),
            risk=RiskGate(self._config.risk, self._kill),
            volume_rate_hint=rec.history.horizon_volume / max(1.0, horizon_s),
            fill_model=app._served_models()[1] if spec.routing == "ml" else None,
        )
        if restore is not None:
            next_child, next_rfq = restore
            execution.restore(row.filled_qty, row.notional, row.fees, next_child, next_rfq)
        rec.execution = execution
        execution.on_schedule = functools.partial(self._projector.mark_schedule, rec)
        m.attach(row.parent_id, execution)
        execution.start(from_world_ns)

    def drop(self, rec: Order) -> None:
        """Take back what `start` set up (it failed, or recovery refused the parent):
        its callbacks become no-ops and no venue event reaches it."""
        execution = rec.execution
        if execution is not None:
            execution.close()
            rec.market.detach(rec.row.parent_id, execution)
        rec.execution = None
