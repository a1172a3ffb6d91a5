"""Wiring a parent's execution: the router that runs the backtests, on a market session.

`ExecutionWiring` decides what goes into a parent's execution (the strategy that serves
the client's, its slicer, the ports its market session hands it, the risk gate, the
models of the parent's arm of the algo wheel: router.wheel), builds it with
`router.execution.build_execution` (the one builder the backtests use too) and connects
its events to the desk's projection.
"""

from __future__ import annotations

import dataclasses
import functools

import structlog

from models.serving.artifacts import ModelError
from router import app
from router.desk.config import DeskConfig
from router.desk.metrics import DeskMetrics
from router.desk.orders import Order
from router.desk.projection import Projector
from router.domain import NANOS_PER_SECOND, ParentId, ParentOrder, Side, Symbol
from router.execution import build_execution
from router.ports import SlicerPolicy
from router.registry import LiveModels, ModelRegistry
from router.risk import KillSwitch, RiskGate
from router.strategies import strategy_spec
from router.strategies.pov import PovSlicer
from router.wheel import ModelArms

log = structlog.get_logger("blockroute.desk")

ROUTINGS = ("smart", "ml")  # the routings whose dealer panels a session prepares


class ExecutionWiring:
    """Starts and takes back the desk's executions, and serves them the models."""

    def __init__(
        self,
        config: DeskConfig,
        kill: KillSwitch,
        projector: Projector,
        metrics: DeskMetrics,
        models: ModelRegistry = app.MODELS,
        arms: ModelArms | None = None,
    ) -> None:
        """`models`: the champion's; `arms`: the sets of models and the draw of the
        algo wheel (default: `models` alone, no wheel)."""
        self._config = config
        self._kill = kill
        self._projector = projector
        self._metrics = metrics
        self.arms = arms if arms is not None else ModelArms(models)
        self._models = self.arms.champion.registry
        self.models_missing = ""  # why the models could not be served (model_fallback)

    def load_models(self) -> list[str]:
        """Load the served models now (a missing or corrupt artifact raises ModelError
        naming the file, unless the config falls back to running ml orders on the
        heuristic router) and compile the ml decision. Returns the routings the
        markets must serve."""
        routings = list(ROUTINGS)
        try:
            self._models.load()
            self._models.slicer_policy()
            self._models.warm_up()  # compiled now, not in the first ml decision
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
        dealer, fill = self._models.dealer_models(), self._models.fill_model()
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

    def live(self, rec: Order) -> LiveModels:
        """What `rec`'s execution keeps: its arm's models as views that read what is
        served at each call, so that a promotion swapped in while parents work reaches
        their next decisions (the same set from the parent's start to its end)."""
        return self.arms.models(rec.row.model_arm)

    def slicer(self, rec: Order, qty: int, horizon_s: float) -> SlicerPolicy:
        assert rec.history is not None
        if rec.engine_strategy == "pov" and rec.row.participation is not None:
            return PovSlicer(rec.row.participation)
        spec = strategy_spec(rec.engine_strategy)
        return spec.slicer(rec.history, qty, horizon_s, self.live(rec))

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
        horizon_s = (row.end_ns - row.start_ns) / NANOS_PER_SECOND
        # the dealers come with the panel's own quote window (RfqRouting.time_limit_s)
        live = self.live(rec)
        wired = m.parent_ports(row.parent_id, spec.routing, spec.rfq, live)
        # every step of its plan is timed: the decision latency, by the strategy that runs
        schedule = self._metrics.timed(
            wired.ports.schedule,
            rec.engine_strategy,
            lambda: rec.execution is not None and not rec.execution.idle,
        )
        execution = build_execution(
            parent,
            self.slicer(rec, row.qty, horizon_s),
            spec,
            dataclasses.replace(wired.ports, schedule=schedule),
            live,
            risk=RiskGate(self._config.risk, self._kill),
            rng=wired.rng,
            on_event=functools.partial(self._projector.on_engine_event, rec),
            volume_rate_hint=rec.history.horizon_volume / max(1.0, horizon_s),
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
