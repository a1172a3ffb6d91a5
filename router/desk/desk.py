"""`Desk`: the desk's parts put together behind router.desk_api.DeskPort."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from router import app
from router.desk.admission import Admission
from router.desk.cancel import CancelWorkflow
from router.desk.commands import Commands
from router.desk.config import DeskConfig
from router.desk.drift import DriftFeed
from router.desk.execution import ExecutionWiring
from router.desk.market import MarketPump, MarketSession, MarketSource
from router.desk.metrics import DeskMetrics
from router.desk.orders import OrderBook
from router.desk.outbox import Outbox
from router.desk.projection import Projector
from router.desk.queries import DeskQueries
from router.desk.recovery import Recovery
from router.desk_api import (
    CancelRequest,
    InvalidStateError,
    KillSwitchChanged,
    Listener,
    NewOrder,
    OrderStatus,
    ParentView,
    ReplaceRequest,
)
from router.domain import NANOS_PER_SECOND
from router.drift import DriftError
from router.journal import Journal
from router.registry import ModelRegistry
from router.risk import KillSwitch
from router.wheel import ModelArms

log = structlog.get_logger("blockroute.desk")


class Desk:
    """One per service process; see the package docstring. The public methods implement
    router.desk_api.DeskPort."""

    def __init__(
        self,
        config: DeskConfig,
        journal: Journal,
        clock: Callable[[], int],
        markets: MarketSource,
        registry: CollectorRegistry | None = None,
        models: ModelRegistry | None = None,
        wheel: ModelArms | None = None,
    ) -> None:
        """`clock` returns the service clock (epoch ns); `markets` opens the markets at
        `start`; the desk's metrics go to `registry` (the service's; default: one of the
        desk's own); `models`: the models it serves (default: the process's, from the
        shipped folder; the service gives the model registry's champions); `wheel`: the
        sets of models of the algo wheel, `models` its champion's (router.wheel;
        default: no wheel)."""
        self.config = config
        self.journal = journal
        self._clock = clock
        self._source = markets
        self.kill = KillSwitch()
        self._ready = False
        self._markets: dict[str, MarketSession] = {}  # opened at start
        now = self.now_ns
        metrics = DeskMetrics(registry if registry is not None else CollectorRegistry())
        self._metrics = metrics
        self._book = OrderBook()
        self._outbox = Outbox(config, journal, now, metrics, self._journal_down, self._journal_up)
        if wheel is not None and models is not None and wheel.champion.registry is not models:
            raise ValueError("the wheel's champion must be the models the desk serves")
        served = wheel.champion.registry if wheel is not None else models
        served = app.MODELS if served is None else served
        also = [wheel.challenger.registry] if wheel is not None and wheel.challenger else []
        self._drift = DriftFeed(
            config.drift, served, self._outbox, now, metrics.registry, also=also
        )
        self._projector = Projector(self._outbox, now, metrics, self._drift)
        self._models = served
        self._wiring = ExecutionWiring(config, self.kill, self._projector, metrics, served, wheel)
        self._pump = MarketPump(
            config,
            self._markets,
            now,
            metrics,
            on_step=self._projector.journal_schedules,
            after_step=self._after_step,
        )
        cancels = CancelWorkflow(self._book, self._outbox, self._projector, now, metrics)
        admission = Admission(
            config,
            self._book,
            self._markets,
            self._wiring,
            self.kill,
            lambda: self._ready,
            now,
            metrics,
        )
        self._commands = Commands(
            config,
            self._book,
            admission,
            cancels,
            self._wiring,
            self._projector,
            self._outbox,
            self.kill,
            self._pump.kick,
            now,
            metrics,
        )
        self._recovery = Recovery(
            config,
            journal,
            self._book,
            self._markets,
            self._wiring,
            self._projector,
            self._outbox,
            now,
        )
        self._queries = DeskQueries(
            config, journal, self._book, self._markets, self._projector, self._outbox
        )
        self._watch(metrics)

    def _watch(self, metrics: DeskMetrics) -> None:
        """Bind the desk's gauges to the state they show, read at every scrape."""
        book, outbox, journal = self._book, self._outbox, self.journal
        metrics.watch_parents(lambda: collections.Counter(o.status for o in book.orders.values()))
        metrics.bind("kill_switch_engaged", lambda: float(self.kill.engaged))
        metrics.bind("journal_commits", lambda: float(journal.commits))
        metrics.bind("journal_rows", lambda: float(journal.rows_written))
        metrics.bind("journal_ok", lambda: float(outbox.ok))
        metrics.bind("journal_pending", lambda: float(outbox.pending))
        metrics.bind("parents_quarantined", lambda: float(len(book.quarantined)))
        metrics.bind("ready", lambda: float(self.ready))
        metrics.bind("models_fallback", lambda: float(bool(self.models_missing)))
        metrics.watch_models(lambda: self._wiring.model_metrics() if self._ready else {})

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Load the models, open the markets, recover open parents from the journal,
        start the pump (call on the running loop). Raises ModelError (a model missing
        or corrupt, unless the config falls back), StoreError (the journal cannot be
        read or written) or DomainError (an open parent's symbol is not configured)."""
        routings = self._wiring.load_models()
        if not self.models_missing:
            self._drift.start(self.journal)  # (no models served: nothing to watch)
        self._markets.update(self._source.open(self.now_ns, routings))
        self._recovery.recover()
        self._outbox.flush()  # written here, before the loop runs the desk: a start that
        # cannot write its journal fails (StoreError), as one that cannot read it
        loop = asyncio.get_running_loop()
        self._outbox.start(loop)
        self._pump.start(loop)
        self._ready = True
        log.info(
            "desk started",
            symbols=list(self._markets),
            recovered=sum(1 for o in self._book.orders.values() if not o.status.terminal),
            sim_speed=self.config.sim_speed,
        )

    async def stop(self) -> None:
        """Clean shutdown: pull every open child, let the venues confirm, flush."""
        self._ready = False
        self._pump.stop()
        for order in self._book.orders.values():
            if order.execution is not None and not order.status.terminal:
                # paused, not only halted: the second below may hold decisions that
                # were due while the markets stood still (a stall), and a decision of a
                # halted execution would send children that nothing is left to pull.
                # The journal keeps the parent working: it resumes at the next start.
                order.execution.pause()
        # the cancels need a few milliseconds of simulated time to be confirmed
        self._pump.advance(self.now_ns() + int(NANOS_PER_SECOND))
        self._outbox.flush()
        await self._outbox.close()
        self._drift.stop()

    def _after_step(self) -> None:
        if not self.models_missing:
            self._drift.step()  # its alerts go into this step's commit
        self._outbox.keep_clock()
        self._outbox.flush()

    # ------------------------------------------------------------------ the journal's health

    def _journal_down(self) -> None:
        """The first failed write: trading stops until the journal writes again (the
        facts would pile up where a crash would lose them)."""
        if self.kill.engaged:
            return
        now = self.now_ns()
        reason = f"journal write failed: {self._outbox.error}"
        self.kill.engage(reason, now, KillSwitch.JOURNAL)
        for rec in self._book.orders.values():
            if rec.execution is not None and not rec.status.terminal:
                rec.execution.halt("journal write failed")
        self._outbox.publish_soon(KillSwitchChanged(now, True, reason, 0))
        log.error("kill switch engaged: the journal cannot write", reason=reason)

    def _journal_up(self) -> None:
        if (
            self.config.auto_release_kill
            and self.kill.engaged
            and (self.kill.source == KillSwitch.JOURNAL)
        ):
            self._commands.lift_kill("the journal writes again: released automatically")
            log.warning("kill switch released automatically: the journal writes again")

    # ------------------------------------------------------------------ port: state

    def now_ns(self) -> int:
        return self._clock()

    @property
    def ready(self) -> bool:
        """Started, and the journal takes writes: the last write did not fail and none
        has been under way for longer than journal_stall_s (the readiness probe)."""
        return self._ready and self._outbox.ok

    @property
    def started(self) -> bool:
        """Between `start` and `stop` (whatever the journal's health)."""
        return self._ready

    @property
    def journal_ok(self) -> bool:
        return self._outbox.ok

    def journal_status(self) -> dict[str, Any]:
        """The journal's health, as /ready may show it: ok, why not, since when (wall s)
        and how many units of facts wait to be written."""
        return self._outbox.status()

    @property
    def kill_engaged(self) -> bool:
        return self.kill.engaged

    @property
    def models_missing(self) -> str:
        """Why the models could not be served ("" if they are; see model_fallback)."""
        return self._wiring.models_missing

    def symbols(self) -> list[str]:
        return self._source.symbols()

    @property
    def default_strategy(self) -> str:
        return self.config.default_strategy

    @property
    def registry(self) -> CollectorRegistry:
        """Where the desk's metrics are (the service's registry, if it was given one)."""
        return self._metrics.registry

    def metrics(self) -> dict[str, float]:
        """The desk's unlabelled series as they are now, read from its registry's
        metrics (counters *_total, the rest gauges)."""
        return self._metrics.figures()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return self._outbox.subscribe(listener)

    def drift(self) -> dict[str, Any]:
        return self._drift.report()

    def resume_models(self, by: str, reason: str) -> dict[str, Any]:
        try:
            self._drift.resume(by, reason)
        except DriftError as exc:
            raise InvalidStateError(str(exc)) from None
        self._outbox.commit_soon()
        return self._drift.report()

    async def sync(self) -> None:
        """Return once what the commands so far changed is committed (the REST API
        answers only then: its response is an acknowledgement too). Raises
        JournalUnavailableError if the journal cannot write it now: the change is kept,
        and stored and reported once the journal writes again."""
        await self._outbox.sync()

    # ------------------------------------------------------------------ port: reads

    def find(self, client: str, cl_ord_id: str) -> ParentView | None:
        return self._queries.find(client, cl_ord_id)

    def parent(self, parent_id: str) -> ParentView:
        return self._queries.parent(parent_id)

    def parents(self, status: OrderStatus | None = None) -> list[ParentView]:
        return self._queries.parents(status)

    def fills(self, parent_id: str) -> list[dict[str, Any]]:
        return self._queries.fills(parent_id)

    def decisions(self, parent_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return self._queries.decisions(parent_id, limit)

    def schedule(self, parent_id: str) -> list[dict[str, Any]]:
        return self._queries.schedule(parent_id)

    def tca(self, parent_id: str) -> dict[str, Any]:
        return self._queries.tca(parent_id)

    def scorecard(self) -> dict[str, Any]:
        return self._queries.scorecard()

    def shadow_report(self) -> dict[str, Any]:
        """Shadow mode as the desk sees it (router.desk.shadow.ShadowBook.report): per
        model family, the versions served and compared, agreement, the challenger's
        latency and its latest disagreements (GET /api/models/shadow)."""
        models = self._models
        challengers = {f: held.version for f, held in models.challengers().items()}
        return self._projector.shadow.report(models.versions, challengers)

    # ------------------------------------------------------------------ port: commands

    def submit(self, order: NewOrder) -> ParentView:
        return self._commands.submit(order)

    def cancel(self, request: CancelRequest) -> ParentView:
        return self._commands.cancel(request)

    def replace(self, request: ReplaceRequest) -> ParentView:
        return self._commands.replace(request)

    def pause(self, parent_id: str) -> ParentView:
        return self._commands.pause(parent_id)

    def resume(self, parent_id: str) -> ParentView:
        return self._commands.resume(parent_id)

    def engage_kill(self, reason: str) -> int:
        return self._commands.engage_kill(reason)

    def release_kill(self) -> None:
        self._commands.release_kill()
