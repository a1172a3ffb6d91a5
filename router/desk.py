"""The live desk: parent orders from clients, executed in real time on simulated markets.

One `Desk` per service process. It owns, for each configured symbol, a simulated world
(market, lit venues, dark pools, dealers: simulators/, dealers/) whose clock follows the
service clock, and one `ParentExecution` (router/engine.py) per parent order. The same
engine that runs the backtests runs here; only the scheduler differs: the asyncio loop
advances each world's discrete-event kernel to the service clock (`_tick`).

Every fact goes the same way: the engine or a client command produces it, the desk
turns it into journal rows (router/journal.py) and a desk event (router/desk_api.py),
commits the rows of one step in one transaction, then hands the events to the
listeners (FIX gateway, MQTT bus, WebSocket). Nothing is reported before it is stored.

The journal is written off the event loop, on a thread of its own, one transaction at a
time; what the loop produced meanwhile waits in an outbox and goes into the next
transaction. A write that fails (the database down, or silent past its deadline: see
router/store.py, DbTimeouts) is kept and retried until it succeeds, and its events wait
with it: the fills of a parent are reported once each, in order, only once stored. On
the first failure the desk engages the kill switch (reason and time published at once,
source "journal"), halts every parent and says it is not `ready`; once the journal
writes again it is ready, and the kill switch is released automatically only if
`auto_release_kill` says so (default: a person releases it).

Recovery (`Desk.recover`, at start): the journal's open parents resume with their exact
filled quantities. Their child orders rested at simulated venues that died with the old
process; the new worlds do not know them, so they are reconciled as canceled by the
venue (no fill of theirs can arrive any more) and the parent re-plans from now. A row
that cannot be loaded (an absurd price written by an older version, a broken field) is
quarantined: named in svc_quarantine with the reason, logged, left out of the desk.

Times: the service clock is epoch nanoseconds running `sim_speed` times the wall clock;
a world's clock runs from 0 at the moment its market was built (`origin_ns`). Domain
events carry world time; desk events and the journal carry service time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog

from dealers.config import DealerPanel, load_panel
from models.artifacts import ModelError
from router import app
from router.desk_api import (
    ML_STRATEGY,
    CancelRejected,
    CancelRejectedError,
    CancelRequest,
    ChildOrderUpdated,
    CxlRejReason,
    DecisionMade,
    DeskEvent,
    InvalidStateError,
    JournalUnavailableError,
    KillSwitchChanged,
    Listener,
    NewOrder,
    OrderAccepted,
    OrderCanceled,
    OrderCompleted,
    OrderExpired,
    OrderFilled,
    OrderPaused,
    OrderRejected,
    OrderRejectedError,
    OrderReplaced,
    OrderResumed,
    OrderStatus,
    OrdRejReason,
    ParentView,
    ReplaceRequest,
    RfqUpdated,
    UnknownOrderError,
)
from router.domain import (
    NANOS_PER_SECOND,
    ChildId,
    ChildOrderAccepted,
    ChildOrderCanceled,
    ChildOrderExpired,
    ChildOrderFilled,
    ChildOrderRejected,
    ChildOrderSent,
    DecisionRecorded,
    DomainError,
    Event,
    LastLookRejected,
    OrdType,
    ParentId,
    ParentOrder,
    ParentOrderCompleted,
    QuoteIgnored,
    QuoteReceived,
    QuoteRequestRejected,
    QuoteResponseSent,
    RfqClosed,
    RfqEnded,
    RfqRequested,
    RfqTraded,
    Side,
    Symbol,
    VenueId,
    VenueKind,
)
from router.engine import EngineConfig, LitFees, ParentExecution, RfqRouting
from router.journal import (
    CLOCK_KEY,
    Batch,
    Journal,
    ParentRecord,
    SvcChildRow,
    SvcClOrdIdRow,
    SvcDecisionRow,
    SvcFillRow,
    SvcMetaRow,
    SvcParentRow,
    SvcQuarantineRow,
    SvcRfqEventRow,
    SvcScheduleRow,
    dumps,
)
from router.ports import MarketHistory, PanelSelector, SlicerPolicy
from router.risk import KillSwitch, RiskGate, RiskLimits
from router.store import StoreError, child_order_columns
from router.strategies import strategy_spec
from router.strategies.learned import served_slicer_policy
from router.strategies.pov import PovSlicer
from router.tca import PricePath, analyze
from simulators.kernel import rng_for
from simulators.scenario import SESSION_CLOSE_S, Scenario, load_scenario
from simulators.world import SimWorld

log = structlog.get_logger("blockroute.desk")


@dataclass(frozen=True, slots=True)
class DeskConfig:
    symbols: Mapping[str, str]  # symbol -> the scenario whose market, venues, dealers it trades
    seed: int = 1
    sim_speed: float = 1.0
    default_horizon_s: float = 1800.0
    min_horizon_s: float = 30.0  # an ExpireTime 60 s ahead passes at any sim speed
    default_strategy: str = ML_STRATEGY
    max_order_adv: float = 0.5  # a parent above this share of ADV is refused
    limit_collar_bps: float = 1000.0  # a limit further than this through the mid: refused
    # a limit further than this from the mid on its own side (a buy below, a sell
    # above): refused as a typo; it could never trade in the order's horizon anyway
    limit_band_bps: float = 5000.0
    risk: RiskLimits = field(default_factory=RiskLimits)
    max_step_s: float = 0.02  # the markets advance at least this often (wall seconds)
    step_budget_s: float = 0.002  # the longest the markets hold the loop at a time
    model_fallback: bool = False  # models missing or corrupt: run ml as sor (else: refuse)
    # the journal (wall seconds): a commit under way longer than journal_stall_s makes
    # the desk not ready; a failed one is retried after journal_retry_s, doubling up to
    # journal_retry_max_s; the API's reads of it wait at most journal_read_s; a stop
    # waits at most stop_timeout_s for the last writes
    journal_stall_s: float = 1.0
    journal_retry_s: float = 0.25
    journal_retry_max_s: float = 2.0
    journal_read_s: float = 1.0
    stop_timeout_s: float = 10.0
    # release the kill switch that a journal outage engaged once the journal writes
    # again (off: a person looks first and releases it)
    auto_release_kill: bool = False

    def __post_init__(self) -> None:
        if not self.symbols:
            raise DomainError("the desk needs at least one symbol")
        if self.sim_speed <= 0:
            raise DomainError(f"sim_speed must be > 0, got {self.sim_speed:g}")
        if self.default_horizon_s < self.min_horizon_s:
            raise DomainError("default_horizon_s must be >= min_horizon_s")
        if not self.max_order_adv > 0:
            raise DomainError("max_order_adv must be > 0")
        for name in (
            "limit_collar_bps",
            "limit_band_bps",
            "journal_stall_s",
            "journal_retry_s",
            "journal_retry_max_s",
            "journal_read_s",
            "stop_timeout_s",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise DomainError(f"{name} must be a finite number > 0, got {value!r}")
        self.resolve_strategy(self.default_strategy)

    @staticmethod
    def resolve_strategy(name: str) -> str:
        """The engine strategy that serves a client strategy name (DomainError if none)."""
        strategy_spec(name)  # raises, naming the known ones
        return name


class _Dispatch:
    """A world's event sink: each venue event goes to the execution of its parent. Child
    ids are f"{parent_id}-{n}", RFQ ids f"{parent_id}-R{n}" (router/engine.py)."""

    def __init__(self) -> None:
        self.executions: dict[str, ParentExecution] = {}
        self.orphans = 0

    def publish(self, event: Event) -> None:
        key = _owner_key(event)
        execution = self.executions.get(key.rsplit("-", 1)[0]) if key else None
        if execution is None:
            self.orphans += 1  # e.g. a cancel ack of a parent already closed
            return
        execution.publish(event)


def _owner_key(event: Event) -> str | None:
    child = getattr(event, "child_id", None)
    if child is not None:
        return str(child)
    if isinstance(event, QuoteReceived):
        return str(event.quote.rfq_id)
    if isinstance(event, RfqRequested):
        return str(event.request.rfq_id)
    rfq = getattr(event, "rfq_id", None)
    return None if rfq is None else str(rfq)


class _Market:
    """One symbol's simulated world on the service clock."""

    def __init__(self, symbol: str, scenario: Scenario, seed: int, origin_ns: int) -> None:
        # the market runs from the scenario's start time to the close: one session
        session_s = SESSION_CLOSE_S - scenario.start_tod_s
        self.scenario = dataclasses.replace(scenario, horizon_s=session_s)
        self.symbol = symbol
        self.seed = seed
        self.origin_ns = origin_ns
        self.end_ns = origin_ns + int(session_s * NANOS_PER_SECOND)
        self.dispatch = _Dispatch()
        self.panel: DealerPanel | None = (
            load_panel(scenario.dealer_panel) if scenario.dealer_panel else None
        )
        self.world = SimWorld.build(self.scenario, seed, self.dispatch, None, self.panel)
        self.fees = {
            s.venue_id: LitFees(taker_fee=s.taker_fee, maker_fee=s.maker_fee)
            for s in self.scenario.lit
        }
        self.kinds: dict[VenueId, VenueKind] = {v: x.kind for v, x in self.world.venues.items()}
        self.dark_min = {s.venue_id: s.min_qty for s in self.scenario.dark}
        self._selectors: dict[str, PanelSelector] = {}
        self.rfq_events: list[Event] = []  # this session's RFQ facts, for the scorecard
        self._history: dict[tuple[int, float], MarketHistory] = {}
        self._mid: float | None = None
        self._mid_at = -1

    def world_ns(self, epoch_ns: int) -> int:
        return epoch_ns - self.origin_ns

    def epoch_ns(self, world_ns: int) -> int:
        return world_ns + self.origin_ns

    def advance(self, epoch_ns: int, enough: Callable[[], bool] | None = None) -> bool:
        """Run the world to `epoch_ns`; False if `enough` cut it short (more is due)."""
        kernel = self.world.kernel
        return kernel.run_until(max(self.world_ns(epoch_ns), kernel.clock.now_ns()), enough)

    def mid(self) -> float | None:
        """The consolidated mid as of the world's clock (one snapshot per clock value:
        a burst of orders between two steps reads it once)."""
        now = self.world.clock.now_ns()
        if self._mid_at != now:
            self._mid = self.world.market.snapshot(now).mid
            self._mid_at = now
        return self._mid

    def history(self, horizon_s: float) -> MarketHistory:
        """What the desk knows at a parent's arrival (cf. app.Episode.history). It
        moves slowly: parents arriving within the same simulated second with the same
        horizon share one (a burst of orders costs one computation)."""
        key = (int(self.world.clock.now_ns() // NANOS_PER_SECOND), float(round(horizon_s)))
        cached = self._history.get(key)
        if cached is None:
            cached = self._history_now(horizon_s)
            if len(self._history) > 64:
                self._history.clear()
            self._history[key] = cached
        return cached

    def _history_now(self, horizon_s: float) -> MarketHistory:
        sc = self.scenario
        now = self.world.clock.now_ns()
        now_s = now / NANOS_PER_SECOND
        snap = self.world.market.snapshot(now)
        recent = app.price_path(self.world.market, from_s=max(-1e9, now_s - 600.0))
        spread = float(np.nanmean(recent.ask - recent.bid))
        return app.market_history(
            sc,
            snap.mid if snap.mid is not None else sc.market.price,
            spread if np.isfinite(spread) else sc.instrument.tick_size,
            sc.start_tod_s + now_s,
            horizon_s,
        )

    def rfq_routing(self, routing: str) -> RfqRouting | None:
        """The dealers, with one panel selector per routing kept for the whole session:
        what it learns from one parent's RFQs serves the next."""
        if self.panel is None or self.world.rfq is None:
            return None
        selector = self._selectors.get(routing)
        if selector is None:
            if routing == "ml":
                selector = app.ml_selector(self.scenario, self.panel, self.world)
            else:
                selector = app.desk_selector(self.scenario, self.panel)
            self._selectors[routing] = selector
        sc = self.scenario
        return RfqRouting(
            channel=self.world.rfq,
            selector=selector,
            impact_bps=app.IMPACT_Y_ESTIMATE * sc.market.daily_vol * 1e4,
            adv=float(sc.instrument.adv),
        )


@dataclass
class _Order:
    """The desk's record of one parent: what the journal row says, plus its execution."""

    row: ParentRecord
    market: _Market
    execution: ParentExecution | None = None
    history: MarketHistory | None = None
    engine_strategy: str = ""
    fills: list[ChildOrderFilled] = field(default_factory=list)  # service-clock times
    schedule_seen: int = 0  # engine schedule points already journaled
    schedule_base: int = 0  # points journaled before a restart
    decisions: int = 0
    rfq_events: int = 0
    cancel_cl_ord_id: str = ""
    cancel_reason: str = ""

    @property
    def status(self) -> OrderStatus:
        return OrderStatus(self.row.status)

    def view(self) -> ParentView:
        r = self.row
        return ParentView(
            parent_id=r.parent_id,
            client=r.client,
            cl_ord_id=r.cl_ord_id,
            orig_cl_ord_id=r.orig_cl_ord_id,
            symbol=r.symbol,
            side=Side(r.side),
            qty=r.qty,
            ord_type=OrdType(r.ord_type),
            limit_price=r.limit_price,
            strategy=r.strategy,
            participation=r.participation,
            status=OrderStatus(r.status),
            start_ns=r.start_ns,
            end_ns=r.end_ns,
            filled_qty=r.filled_qty,
            avg_price=r.notional / r.filled_qty if r.filled_qty else 0.0,
            arrival_mid=r.arrival_mid,
            n_children=r.n_children,
            updated_ns=r.updated_ns,
            text=r.text,
        )


@dataclass(eq=False)
class _Unit:
    """What the loop handed to the journal in one go: the rows, then the events that
    may be published once they are stored, and the `sync()` calls waiting for them."""

    batch: Batch
    events: list[DeskEvent]
    waiters: list[asyncio.Future[None]]

    def absorb(self, later: _Unit) -> None:
        self.batch.merge(later.batch)
        self.events.extend(later.events)
        self.waiters.extend(later.waiters)


_MAX_LIMIT_TICKS = 2**53  # a price whose tick count a float still holds exactly
CLOCK_SAVE_S = 1.0  # an idle desk still writes its clock this often (wall seconds)


class Desk:
    """See the module docstring; the public methods implement router.desk_api.DeskPort."""

    def __init__(
        self,
        config: DeskConfig,
        journal: Journal,
        clock: Callable[[], int],
        scenarios: Mapping[str, Scenario] | None = None,
    ) -> None:
        """`clock` returns the service clock (epoch ns); `scenarios` overrides loading
        the configured scenario files (tests)."""
        self.config = config
        self.journal = journal
        self._clock = clock
        self.kill = KillSwitch()
        self._listeners: list[Listener] = []
        self._orders: dict[str, _Order] = {}
        self._clordids: dict[tuple[str, str], str] = {}
        self._batch = Batch()
        self._events: list[DeskEvent] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.Handle | None = None  # the next step of the markets
        self._flush_pending = False
        self._synced: list[asyncio.Future[None]] = []
        self._ready = False
        self._stopping = False
        # the journal's writer: units waiting (the first one being written, or failed
        # and waiting for its retry), the write under way, why the last write failed
        self._outbox: list[_Unit] = []
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="journal")
        self._writing: asyncio.Future[None] | None = None
        self._writing_since: float | None = None  # time.monotonic()
        self._retry: asyncio.TimerHandle | None = None
        self._retry_s = config.journal_retry_s
        self._journal_error = ""  # "" while the journal writes
        self._journal_down_since: float | None = None
        self._clock_saved_at = 0.0  # time.monotonic() of the last clock written
        self._quarantined: dict[str, str] = {}  # parent_id -> why recovery refused it
        self._unjournaled: list[DeskEvent] = []  # published at the next flush, first
        self.counters: dict[str, float] = dict.fromkeys(
            (
                "orders_accepted",
                "orders_rejected",
                "orders_canceled",
                "orders_replaced",
                "orders_filled",
                "orders_expired",
                "fills",
                "child_orders",
                "rfqs",
                "decisions",
                "steps",
                "listener_errors",
                "pump_errors",
                "journal_errors",
                "journal_retries",
                "steps_sliced",
            ),
            0.0,
        )
        scenarios = dict(scenarios or {})
        self._scenarios = {
            sym: scenarios.get(sym) or load_scenario(name) for sym, name in config.symbols.items()
        }
        for sym, sc in self._scenarios.items():
            if sc.instrument.symbol != sym:
                raise DomainError(
                    f"symbol {sym}: scenario {sc.name!r} trades {sc.instrument.symbol}, not {sym}"
                )
        self._markets: dict[str, _Market] = {}
        self._next_parent = 1
        self._children: dict[str, dict[str, Any]] = {}  # rows of the open child orders
        self._schedule_dirty: dict[str, _Order] = {}  # parents with new schedule points
        self.models_missing = ""  # why the models could not be served (model_fallback)
        self._metric_sources: list[Callable[[], Mapping[str, float]]] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Build the markets, recover open parents from the journal, start the pump
        (call on the running loop)."""
        # The panel selectors learn the desk's past days first (seconds, cached per
        # process), and the models load now: a missing or corrupt artifact stops the
        # start with a message naming the file (ModelError). Then the markets start.
        for sc in self._scenarios.values():
            if sc.dealer_panel is not None:
                app._desk_history(sc.name, sc.dealer_panel)
        routings = ["smart", "ml"]
        try:
            app._served_models()
            served_slicer_policy()
            app.warm_up_ml()  # compiled now, not in the first ml decision
        except ModelError as exc:
            if not self.config.model_fallback:
                raise
            # the config asked for it: run on, loudly, without the models
            log.error("models unusable: ml orders run on the heuristic router", error=str(exc))
            self.models_missing = str(exc)
            routings.remove("ml")
        now = self.now_ns()
        for k, (sym, sc) in enumerate(self._scenarios.items()):
            self._markets[sym] = _Market(sym, sc, self.config.seed + 1000 * k, now)
        for m in self._markets.values():
            for routing in routings:
                m.rfq_routing(routing)
        self._recover()
        self._flush()  # written here, before the loop runs the desk: a start that cannot
        # write its journal fails (StoreError), as one that cannot read it
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_soon(self._tick)
        self._ready = True
        log.info(
            "desk started",
            symbols=list(self._markets),
            recovered=sum(1 for o in self._orders.values() if not o.status.terminal),
            sim_speed=self.config.sim_speed,
        )

    async def stop(self) -> None:
        """Clean shutdown: pull every open child, let the venues confirm, flush."""
        self._ready = False
        self._stopping = True
        for order in self._orders.values():
            if order.execution is not None and not order.status.terminal:
                # paused, not only halted: the second below may hold decisions that
                # were due while the markets stood still (a stall), and a decision of a
                # halted execution would send children that nothing is left to pull.
                # The journal keeps the parent working: it resumes at the next start.
                order.execution.pause()
        # the cancels need a few milliseconds of simulated time to be confirmed
        self._advance(self.now_ns() + int(NANOS_PER_SECOND))
        self._flush()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        # the last writes (retried meanwhile if the journal is failing), for so long
        deadline = time.monotonic() + self.config.stop_timeout_s
        while self._outbox and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        if self._outbox:
            unit = self._outbox[0]
            log.error(
                "journal not written at stop: these facts are lost",
                rows=len(unit.batch),
                events=len(unit.events),
                error=self._journal_error,
            )
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._writer.shutdown(wait=False)

    def _tick(self) -> None:
        """One step of the markets to the service clock, then back to sleep until the
        next kernel event is due (at most `max_step_s`). A plain loop callback rather
        than a task: nothing to cancel at shutdown, nothing to swallow a cancellation."""
        self._handle = None
        if self._stopping or self._loop is None:
            return
        caught_up = True
        try:
            # a slice of at most step_budget_s: client messages wait for no longer
            deadline = time.perf_counter() + self.config.step_budget_s
            caught_up = self._advance(self.now_ns(), lambda: time.perf_counter() > deadline)
            if time.monotonic() - self._clock_saved_at >= CLOCK_SAVE_S:
                self._save_clock()  # also when idle: a restart resumes from about here
            self._flush()
        except Exception:  # keep the markets running; the failure is logged and counted
            self.counters["pump_errors"] += 1
            log.exception("desk step failed")
        if not caught_up:
            self.counters["steps_sliced"] += 1
            self._handle = self._loop.call_soon(self._tick)  # after what waits meanwhile
            return
        delay = self.config.max_step_s
        for m in self._markets.values():
            nxt = m.world.kernel.next_event_ns()
            if nxt is not None:
                wall = (m.epoch_ns(nxt) - self.now_ns()) / NANOS_PER_SECOND
                delay = min(delay, max(0.0, wall / self.config.sim_speed))
        self._handle = self._loop.call_later(max(delay, 0.0005), self._tick)

    def _kick(self) -> None:
        """Step now: a command may have made something due (a parent's first decision)."""
        if self._stopping or self._loop is None:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._loop.call_soon(self._tick)

    def _advance(self, epoch_ns: int, enough: Callable[[], bool] | None = None) -> bool:
        done = True
        for m in self._markets.values():
            done = m.advance(min(epoch_ns, m.end_ns), enough) and done
            self.counters["steps"] += 1
        self._journal_schedules()
        return done

    # ------------------------------------------------------------------ port: reads

    def now_ns(self) -> int:
        return self._clock()

    @property
    def ready(self) -> bool:
        """Started, and the journal takes writes: the last write did not fail and none
        has been under way for longer than journal_stall_s (the readiness probe)."""
        return self._ready and self.journal_ok

    @property
    def started(self) -> bool:
        """Between `start` and `stop` (whatever the journal's health)."""
        return self._ready

    @property
    def journal_ok(self) -> bool:
        if self._journal_error:
            return False
        since = self._writing_since
        return since is None or time.monotonic() - since <= self.config.journal_stall_s

    def journal_status(self) -> dict[str, Any]:
        """The journal's health, as /ready may show it: ok, why not, since when (wall s)
        and how many units of facts wait to be written."""
        down = self._journal_down_since
        return {
            "ok": self.journal_ok,
            "error": self._journal_error
            or ("" if self.journal_ok else "a write is taking too long"),
            "down_s": 0.0 if down is None else round(time.monotonic() - down, 3),
            "pending": len(self._outbox),
        }

    @property
    def kill_engaged(self) -> bool:
        return self.kill.engaged

    def symbols(self) -> list[str]:
        return list(self._scenarios)

    @property
    def default_strategy(self) -> str:
        return self.config.default_strategy

    def find(self, client: str, cl_ord_id: str) -> ParentView | None:
        pid = self._clordids.get((client, cl_ord_id))
        rec = None if pid is None else self._orders.get(pid)  # quarantined: none
        return None if rec is None else rec.view()

    def parent(self, parent_id: str) -> ParentView:
        return self._order(parent_id).view()

    def parents(self, status: OrderStatus | None = None) -> list[ParentView]:
        orders = reversed(list(self._orders.values()))
        return [o.view() for o in orders if status is None or o.status is status]

    def fills(self, parent_id: str) -> list[dict[str, Any]]:
        self._order(parent_id)
        rows = self._read(lambda t: self.journal.fills(parent_id, timeout_s=t))
        return [
            {
                "exec_id": r.exec_id,
                "child_id": r.child_id,
                "ts_ns": r.ts_ns,
                "venue": r.venue,
                "venue_kind": r.venue_kind,
                "qty": r.qty,
                "price": r.price,
                "fee": r.fee,
                "liquidity": r.liquidity,
            }
            for r in rows
        ]

    def decisions(self, parent_id: str, limit: int = 50) -> list[dict[str, Any]]:
        self._order(parent_id)
        n = max(1, min(limit, 1000))
        rows = self._read(lambda t: self.journal.decisions(parent_id, n, timeout_s=t))
        return [
            {
                "decision_id": r.decision_id,
                "ts_ns": r.ts_ns,
                "chosen": r.chosen,
                "inputs": json.loads(r.inputs_json),
                "alternatives": json.loads(r.alternatives_json),
            }
            for r in rows
        ]

    def schedule(self, parent_id: str) -> list[dict[str, Any]]:
        self._order(parent_id)
        rows = self._read(lambda t: self.journal.schedule(parent_id, timeout_s=t))
        return [
            {"ts_ns": r.ts_ns, "target_qty": r.target_qty, "filled_qty": r.filled_qty} for r in rows
        ]

    def _read(self, fetch: Callable[[float], list[Any]]) -> list[Any]:
        """A read of the journal on the loop: refused at once while the journal is not
        healthy, and cut off after journal_read_s (the loop serves everyone else)."""
        if not self.journal_ok:
            why = self._journal_error or "a write is taking too long"
            raise JournalUnavailableError(f"the journal cannot be read now ({why}); try again")
        try:
            return fetch(self.config.journal_read_s)
        except StoreError as exc:
            log.error("journal read failed", error=str(exc))
            why = "no answer in time" if exc.timed_out else "database error"
            raise JournalUnavailableError(
                f"the journal cannot be read now ({why}); try again"
            ) from None

    def tca(self, parent_id: str) -> dict[str, Any]:
        order = self._order(parent_id)
        if not order.status.terminal:
            raise InvalidStateError(
                f"order {parent_id} is {order.status.value}: TCA comes at its end"
            )
        if order.row.tca_json:
            out: dict[str, Any] = json.loads(order.row.tca_json)
            return out
        return self._tca(order)

    def scorecard(self) -> dict[str, Any]:
        from dealers.scorecard import Scorecard

        card = Scorecard()
        for m in self._markets.values():
            if m.rfq_events:
                card.add_day(m.rfq_events, app.price_path(m.world.market))
        out = card.to_json()
        out["rfqs"] = card.n_rfqs
        return out

    def add_metrics(self, source: Callable[[], Mapping[str, float]]) -> None:
        """Another part's figures (the MQTT bus) on the same metrics page."""
        self._metric_sources.append(source)

    def metrics(self) -> dict[str, float]:
        by_status = {s: 0 for s in OrderStatus}
        for o in self._orders.values():
            by_status[o.status] += 1
        # counters are *_total (Prometheus: monotonic), the rest are gauges
        out = {f"{k}_total": v for k, v in self.counters.items()}
        out.update({f"parents_{s.value}": float(n) for s, n in by_status.items()})
        out["kill_switch_engaged"] = float(self.kill.engaged)
        out["journal_commits"] = float(self.journal.commits)
        out["journal_rows"] = float(self.journal.rows_written)
        out["journal_ok"] = float(self.journal_ok)
        out["journal_pending"] = float(len(self._outbox))
        out["parents_quarantined"] = float(len(self._quarantined))
        out["ready"] = float(self.ready)
        out["models_fallback"] = float(bool(self.models_missing))
        if self._ready and not self.models_missing:
            # rows the served models scored and feature values they clipped to the
            # training range (process-wide: the models are shared by every parent)
            dealer, fill = app._served_models()
            for name, model in (
                *((f"dealer_{k}", m) for k, m in dealer.items()),
                ("fill", fill.model),
            ):
                out[f"model_{name}_rows_total"] = float(model.clipper.rows)
                out[f"model_{name}_clipped_total"] = float(model.clipper.counts.sum())
        for source in self._metric_sources:
            out.update(source())
        return out

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    # ------------------------------------------------------------------ port: commands

    def submit(self, order: NewOrder) -> ParentView:
        known = self._clordids.get((order.client, order.cl_ord_id))
        if known is not None and order.poss_resend and known in self._orders:
            return self._orders[known].view()  # a resend of what we have: never twice
        try:
            rec = self._admit(order, known)
        except OrderRejectedError as exc:
            self.counters["orders_rejected"] += 1
            rejected = OrderRejected.of(self.now_ns(), order, exc.reason, exc.text)
            if self._journal_error:
                # nothing of it is stored, and the client must not wait for the
                # journal to hear that (during an outage the kill switch refuses all)
                self._publish_soon(rejected)
            else:
                self._events.append(rejected)
                self._commit_soon()
            log.info("order rejected", client=order.client, cl_ord_id=order.cl_ord_id, why=exc.text)
            raise
        # admitted and started: from here on nothing can fail, and it is all recorded
        row = rec.row
        self._orders[row.parent_id] = rec
        self._clordids[(order.client, order.cl_ord_id)] = row.parent_id
        self._batch.upsert(SvcMetaRow, {"key": "next_parent", "value": self._next_parent})
        self._batch.insert(
            SvcClOrdIdRow, self._clordid_row(order.client, order.cl_ord_id, row.parent_id, "new")
        )
        self._save(rec)
        self.counters["orders_accepted"] += 1
        self._events.append(OrderAccepted(row.created_ns, rec.view()))
        self._commit_soon()
        self._kick()
        log.info(
            "order accepted",
            parent_id=row.parent_id,
            client=order.client,
            symbol=row.symbol,
            side=row.side,
            qty=row.qty,
            strategy=row.strategy,
        )
        return rec.view()

    def cancel(self, request: CancelRequest) -> ParentView:
        rec = self._target(
            request.client, request.cl_ord_id, request.orig_cl_ord_id, request.parent_id, "cancel"
        )
        rec.cancel_cl_ord_id = request.cl_ord_id
        rec.cancel_reason = request.reason or "canceled by the client"
        self._clordids[(request.client, request.cl_ord_id)] = rec.row.parent_id
        self._batch.insert(
            SvcClOrdIdRow,
            self._clordid_row(request.client, request.cl_ord_id, rec.row.parent_id, "cancel"),
        )
        self._begin_cancel(rec)
        self._commit_soon()
        self._kick()
        return rec.view()

    def replace(self, request: ReplaceRequest) -> ParentView:
        rec = self._target(
            request.client, request.cl_ord_id, request.orig_cl_ord_id, request.parent_id, "replace"
        )
        row = rec.row
        now = self.now_ns()

        def refuse(text: str, field: str | None = None) -> CancelRejectedError:
            return self._cancel_reject(
                request.client,
                request.cl_ord_id,
                row.cl_ord_id,
                rec,
                CxlRejReason.OTHER,
                "replace",
                text,
                field,
            )

        qty = row.qty if request.qty is None else request.qty
        if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
            raise refuse(f"quantity must be a positive integer, got {qty!r}", "qty")
        if qty < row.filled_qty:
            raise refuse(f"quantity {qty} is below the {row.filled_qty} already filled", "qty")
        if qty > self._max_qty(rec.market):
            raise refuse(
                f"quantity {qty} is above the limit of {self._max_qty(rec.market)} "
                f"({self.config.max_order_adv:.0%} of ADV)",
                "qty",
            )
        ord_type = OrdType(row.ord_type) if request.ord_type is None else request.ord_type
        limit = row.limit_price
        if ord_type is OrdType.MARKET:
            limit = None
        elif request.limit_price is not None:
            limit = request.limit_price
        if ord_type is OrdType.LIMIT:
            if limit is None:
                raise refuse("a limit order needs a limit price", "limit_price")
            try:
                reference = rec.market.mid() or row.arrival_mid
                limit = self._check_limit(rec.market, Side(row.side), limit, reference)
            except OrderRejectedError as exc:
                raise refuse(exc.text, "limit_price") from None
        end_ns = row.end_ns if request.expire_ns is None else request.expire_ns
        if end_ns != row.end_ns:
            try:
                self._check_expiry(rec.market, end_ns, now)
            except OrderRejectedError as exc:
                raise refuse(exc.text, "expire_ns") from None
        if rec.execution is None:  # cannot happen (admission is all or nothing): be sure
            raise refuse("the order has no execution to change")
        m = rec.market
        inst = m.scenario.instrument
        parent = ParentOrder(
            parent_id=ParentId(row.parent_id),
            symbol=Symbol(row.symbol),
            side=Side(row.side),
            qty=qty,
            start_ns=m.world_ns(row.start_ns),
            horizon_ns=end_ns - row.start_ns,
            limit_ticks=None if limit is None else inst.to_ticks(limit),
        )
        slicer = self._slicer(rec, qty, (end_ns - row.start_ns) / NANOS_PER_SECOND)
        # everything checked: the execution first (it refuses a change of id or start
        # before it changes anything), then the record
        rec.execution.amend(parent, slicer)
        orig = row.cl_ord_id
        row.qty, row.ord_type, row.limit_price, row.end_ns = qty, ord_type.value, limit, end_ns
        row.cl_ord_id = request.cl_ord_id
        row.updated_ns = now
        self._clordids[(request.client, request.cl_ord_id)] = row.parent_id
        self._batch.insert(
            SvcClOrdIdRow,
            self._clordid_row(request.client, request.cl_ord_id, row.parent_id, "replace"),
        )
        self.counters["orders_replaced"] += 1
        self._save(rec)
        self._events.append(OrderReplaced(now, rec.view(), request.cl_ord_id, orig))
        if row.filled_qty >= qty:
            self._complete(rec, OrderStatus.FILLED, now)
        self._commit_soon()
        self._kick()
        return rec.view()

    def pause(self, parent_id: str) -> ParentView:
        rec = self._order(parent_id)
        if rec.status is not OrderStatus.WORKING:
            raise InvalidStateError(
                f"order {parent_id} is {rec.status.value}: only a working order pauses"
            )
        assert rec.execution is not None
        rec.execution.pause()
        rec.row.status = OrderStatus.PAUSED.value
        rec.row.updated_ns = self.now_ns()
        self._save(rec)
        self._events.append(OrderPaused(rec.row.updated_ns, rec.view()))
        self._commit_soon()
        return rec.view()

    def resume(self, parent_id: str) -> ParentView:
        rec = self._order(parent_id)
        if rec.status is not OrderStatus.PAUSED:
            raise InvalidStateError(
                f"order {parent_id} is {rec.status.value}: only a paused order resumes"
            )
        if self.kill.engaged:
            raise InvalidStateError(
                f"the kill switch is engaged ({self.kill.reason}): nothing resumes"
            )
        assert rec.execution is not None
        rec.market.advance(self.now_ns())
        rec.execution.resume()
        rec.row.status = OrderStatus.WORKING.value
        rec.row.updated_ns = self.now_ns()
        self._save(rec)
        self._events.append(OrderResumed(rec.row.updated_ns, rec.view()))
        self._commit_soon()
        self._kick()
        return rec.view()

    def engage_kill(self, reason: str) -> int:
        reason = reason or "kill switch"
        now = self.now_ns()
        self.kill.engage(reason, now, KillSwitch.MANUAL)  # first: nothing more goes out
        n = 0
        for rec in list(self._orders.values()):
            if rec.status in (OrderStatus.WORKING, OrderStatus.PAUSED):
                rec.cancel_reason = f"kill switch: {reason}"
                try:
                    self._begin_cancel(rec)
                except Exception:  # one broken parent must not keep the others trading
                    self.counters["pump_errors"] += 1
                    log.exception("kill switch: cancel failed", parent_id=rec.row.parent_id)
                    continue
                n += 1
        # the switch's state is no journaled fact: every edge hears it now, journal or not
        self._publish_soon(KillSwitchChanged(now, True, reason, n))
        self._commit_soon()
        self._kick()
        log.warning("kill switch engaged", reason=reason, canceled=n)
        return n

    def release_kill(self) -> None:
        if self._journal_error:
            # trading on would pile up facts that a crash would lose: the journal first
            raise InvalidStateError(
                f"the journal cannot write ({self._journal_error}): the kill switch stays "
                "engaged until it writes again"
            )
        self._release_kill("")
        log.warning("kill switch released")

    def _release_kill(self, reason: str) -> None:
        now = self.now_ns()
        self.kill.release(now)
        self._publish_soon(KillSwitchChanged(now, False, reason))
        self._kick()  # the parents trade again from their next decision

    # ------------------------------------------------------------------ admission

    def _admit(self, order: NewOrder, known: str | None) -> _Order:
        """Check every field of `order` and start its execution, or raise
        OrderRejectedError having changed nothing: all or nothing. The caller records
        and journals what this returns; nothing is recorded before it returns."""
        reject = OrderRejectedError
        if known is not None:
            raise reject(
                OrdRejReason.DUPLICATE_ORDER,
                f"duplicate ClOrdID {order.cl_ord_id!r} (order {known})",
                "cl_ord_id",
            )
        if self.kill.engaged:
            raise reject(OrdRejReason.BROKER_OPTION, f"kill switch engaged: {self.kill.reason}")
        if not self._ready:
            raise reject(
                OrdRejReason.EXCHANGE_CLOSED, "the desk is not ready (starting or stopping)"
            )
        market = self._markets.get(order.symbol)
        if market is None:
            known_syms = ", ".join(self._markets)
            raise reject(
                OrdRejReason.UNKNOWN_SYMBOL,
                f"unknown symbol {order.symbol!r} (traded: {known_syms})",
                "symbol",
            )
        if not order.cl_ord_id:
            raise reject(OrdRejReason.OTHER, "ClOrdID is empty", "cl_ord_id")
        if isinstance(order.qty, bool) or not isinstance(order.qty, int) or order.qty <= 0:
            raise reject(
                OrdRejReason.INCORRECT_QUANTITY,
                f"quantity must be a positive integer, got {order.qty!r}",
                "qty",
            )
        max_qty = self._max_qty(market)
        if order.qty > max_qty:
            raise reject(
                OrdRejReason.ORDER_EXCEEDS_LIMIT,
                f"quantity {order.qty} is above the limit of {max_qty} "
                f"({self.config.max_order_adv:.0%} of ADV)",
                "qty",
            )
        name = order.strategy or self.config.default_strategy
        try:
            strategy = self._engine_strategy(name)
        except DomainError as exc:
            raise reject(
                OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC, str(exc), "strategy"
            ) from None
        p = order.participation
        if p is not None and not (_is_number(p) and 0 < p <= 1):  # NaN fails 0 < p
            raise reject(
                OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC,
                f"participation rate must be a number in (0, 1], got {p!r}",
                "participation",
            )
        # the market as of the last step (at most max_step_s of wall time old): stepping
        # it for each order of a burst would cost more than the order itself
        now = self.now_ns()
        mid = market.mid()
        if mid is None:
            raise reject(OrdRejReason.EXCHANGE_CLOSED, f"{order.symbol}: no two-sided market now")
        limit: float | None = None
        if order.ord_type is OrdType.LIMIT:
            if order.limit_price is None:
                raise reject(
                    OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC,
                    "a limit order needs a limit price",
                    "limit_price",
                )
            limit = self._check_limit(market, order.side, order.limit_price, mid)
        end_ns = order.expire_ns
        if end_ns is None:
            end_ns = now + int(self.config.default_horizon_s * NANOS_PER_SECOND)
        self._check_expiry(market, end_ns, now)
        history = market.history((end_ns - now) / NANOS_PER_SECOND)
        pid = f"P{self._next_parent:07d}"
        row = ParentRecord(
            parent_id=pid,
            client=order.client,
            cl_ord_id=order.cl_ord_id,
            orig_cl_ord_id=order.cl_ord_id,
            symbol=order.symbol,
            side=order.side.value,
            qty=order.qty,
            ord_type=order.ord_type.value,
            limit_price=limit,
            strategy=name,
            participation=p,
            status=OrderStatus.WORKING.value,
            start_ns=now,
            end_ns=end_ns,
            filled_qty=0,
            notional=0.0,
            fees=0.0,
            arrival_mid=mid,
            n_children=0,
            n_fills=0,
            n_rfqs=0,
            created_ns=now,
            updated_ns=now,
        )
        rec = _Order(row, market, history=history, engine_strategy=strategy)
        try:
            self._start_execution(rec, market.world_ns(row.start_ns), None)
        except Exception as exc:
            # whatever broke, the order never existed: its execution is taken back
            self._drop_execution(rec)
            self.counters["pump_errors"] += 1
            log.exception("order could not be started", client=order.client, parent_id=pid)
            raise reject(
                OrdRejReason.OTHER,
                f"the order could not be started ({type(exc).__name__}); nothing was done",
            ) from None
        self._next_parent += 1
        return rec

    def _engine_strategy(self, name: str) -> str:
        strategy = self.config.resolve_strategy(name)
        if self.models_missing and strategy_spec(strategy).routing == "ml":
            return "sor"  # model_fallback: said loudly at start, and in metrics
        return strategy

    def _max_qty(self, market: _Market) -> int:
        return int(self.config.max_order_adv * market.scenario.instrument.adv)

    def _check_limit(self, market: _Market, side: Side, price: object, reference: float) -> float:
        """`price` as a limit of `side` on `market`, or OrderRejectedError: a finite
        number, a whole number of ticks (at least one), not more than limit_collar_bps
        through `reference` (the mid) and not more than limit_band_bps away from it on
        its own side. Returns it as a float."""
        why = _limit_problem(price, market.scenario.instrument.tick_size)
        if why is not None:
            raise OrderRejectedError(
                OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC, why, "limit_price"
            )
        assert isinstance(price, int | float)
        value = float(price)
        through = side.sign * (value - reference) / reference * 1e4  # > 0: marketable side
        if through > self.config.limit_collar_bps:
            raise OrderRejectedError(
                OrdRejReason.ORDER_EXCEEDS_LIMIT,
                f"limit {value:g} is {through:.0f} bps through the mid {reference:g} "
                f"(collar {self.config.limit_collar_bps:g} bps): price or side wrong?",
                "limit_price",
            )
        if -through > self.config.limit_band_bps:
            raise OrderRejectedError(
                OrdRejReason.ORDER_EXCEEDS_LIMIT,
                f"limit {value:g} is {-through:.0f} bps from the mid {reference:g} "
                f"(band {self.config.limit_band_bps:g} bps): price or side wrong?",
                "limit_price",
            )
        return value

    def _check_expiry(self, market: _Market, end_ns: int, now: int) -> None:
        if isinstance(end_ns, bool) or not isinstance(end_ns, int):
            raise OrderRejectedError(
                OrdRejReason.OTHER,
                f"ExpireTime must be a whole number of nanoseconds, got {end_ns!r}",
                "expire_ns",
            )
        horizon_s = (end_ns - now) / NANOS_PER_SECOND
        if horizon_s < self.config.min_horizon_s:
            raise OrderRejectedError(
                OrdRejReason.TOO_LATE_TO_ENTER,
                f"ExpireTime is {horizon_s:.0f} s from now; "
                f"at least {self.config.min_horizon_s:g} s needed",
                "expire_ns",
            )
        if end_ns > market.end_ns:
            left = (market.end_ns - now) / NANOS_PER_SECOND
            raise OrderRejectedError(
                OrdRejReason.EXCHANGE_CLOSED,
                f"ExpireTime is after the simulated session's close ({left:.0f} s from now)",
                "expire_ns",
            )

    def _slicer(self, rec: _Order, qty: int, horizon_s: float) -> SlicerPolicy:
        assert rec.history is not None
        if rec.engine_strategy == "pov" and rec.row.participation is not None:
            return PovSlicer(rec.row.participation)
        return strategy_spec(rec.engine_strategy).slicer(rec.history, qty, horizon_s)

    def _start_execution(
        self, rec: _Order, from_world_ns: int, restore: tuple[int, int] | None
    ) -> None:
        row, m = rec.row, rec.market
        inst = m.scenario.instrument
        spec = strategy_spec(rec.engine_strategy)
        parent = ParentOrder(
            parent_id=ParentId(row.parent_id),
            symbol=Symbol(row.symbol),
            side=Side(row.side),
            qty=row.qty,
            start_ns=m.world_ns(row.start_ns),
            horizon_ns=row.end_ns - row.start_ns,
            limit_ticks=None if row.limit_price is None else inst.to_ticks(row.limit_price),
        )
        if rec.history is None:
            rec.history = m.history((row.end_ns - row.start_ns) / NANOS_PER_SECOND)
        cfg = EngineConfig(routing=spec.routing)
        rfq = m.rfq_routing(spec.routing) if spec.rfq else None
        if rfq is not None and m.panel is not None:
            cfg = dataclasses.replace(cfg, rfq_time_limit_s=m.panel.time_limit_s)
        execution = ParentExecution(
            parent,
            self._slicer(rec, row.qty, (row.end_ns - row.start_ns) / NANOS_PER_SECOND),
            m.world.venues,
            m.fees,
            market=app.WorldMarketData(m.world),
            clock=m.world.clock,
            schedule=m.world.kernel.schedule,
            config=cfg,
            lot_size=inst.lot_size,
            on_event=functools.partial(self._on_engine_event, rec),
            risk=RiskGate(self.config.risk, self.kill),
            rng=rng_for(m.seed, f"router/{row.parent_id}"),
            dark_min_qty=m.dark_min,
            volume_rate_hint=rec.history.horizon_volume
            / max(1.0, (row.end_ns - row.start_ns) / NANOS_PER_SECOND),
            rfq=rfq,
            fill_model=app._served_models()[1] if spec.routing == "ml" else None,
        )
        if restore is not None:
            next_child, next_rfq = restore
            execution.restore(row.filled_qty, row.notional, row.fees, next_child, next_rfq)
        rec.execution = execution
        execution.on_schedule = functools.partial(self._mark_schedule, rec)
        m.dispatch.executions[row.parent_id] = execution
        execution.start(from_world_ns)

    def _drop_execution(self, rec: _Order) -> None:
        """Take back what `_start_execution` set up (it failed, or recovery refused the
        parent): its callbacks become no-ops and no venue event reaches it."""
        execution = rec.execution
        if execution is not None:
            execution.close()
            if rec.market.dispatch.executions.get(rec.row.parent_id) is execution:
                del rec.market.dispatch.executions[rec.row.parent_id]
        rec.execution = None

    # ------------------------------------------------------------------ cancel

    def _target(
        self, client: str, cl_ord_id: str, orig: str | None, parent_id: str | None, what: str
    ) -> _Order:
        pid = parent_id if parent_id is not None else self._clordids.get((client, orig or ""))
        rec = self._orders.get(pid) if pid is not None else None
        orig_text = orig or (rec.row.cl_ord_id if rec else "")
        if rec is None or (parent_id is None and rec.row.client != client):
            raise self._cancel_reject(
                client,
                cl_ord_id,
                orig_text,
                None,
                CxlRejReason.UNKNOWN_ORDER,
                what,
                f"unknown order {orig or parent_id!r}",
            )
        if (client, cl_ord_id) in self._clordids:
            raise self._cancel_reject(
                client,
                cl_ord_id,
                orig_text,
                rec,
                CxlRejReason.DUPLICATE_CLORDID,
                what,
                f"duplicate ClOrdID {cl_ord_id!r}",
            )
        if rec.status is OrderStatus.PENDING_CANCEL:
            raise self._cancel_reject(
                client,
                cl_ord_id,
                orig_text,
                rec,
                CxlRejReason.ALREADY_PENDING,
                what,
                "a cancel is already pending",
            )
        if rec.status.terminal:
            raise self._cancel_reject(
                client,
                cl_ord_id,
                orig_text,
                rec,
                CxlRejReason.TOO_LATE_TO_CANCEL,
                what,
                f"order is already {rec.status.value}",
            )
        return rec

    def _cancel_reject(
        self,
        client: str,
        cl_ord_id: str,
        orig: str,
        rec: _Order | None,
        reason: CxlRejReason,
        what: str,
        text: str,
        field: str | None = None,
    ) -> CancelRejectedError:
        self._events.append(
            CancelRejected(
                self.now_ns(),
                client,
                cl_ord_id,
                orig,
                rec.row.parent_id if rec else None,
                rec.status if rec else None,
                reason,
                what,
                text,
            )
        )
        self._commit_soon()
        return CancelRejectedError(reason, text, field)

    def _begin_cancel(self, rec: _Order) -> None:
        if rec.execution is not None:
            try:
                rec.market.advance(self.now_ns())
            except Exception:  # another parent's step: the pump's failure, not the cancel's
                self.counters["pump_errors"] += 1
                log.exception("desk step failed")
            rec.execution.stop(rec.cancel_reason)
        # (without an execution nothing is at any venue: it is canceled at once below)
        rec.row.status = OrderStatus.PENDING_CANCEL.value
        rec.row.updated_ns = self.now_ns()
        self._save(rec)
        self._maybe_canceled(rec)

    def _maybe_canceled(self, rec: _Order) -> None:
        """A pending cancel ends once no child is left at any venue."""
        if rec.status is not OrderStatus.PENDING_CANCEL:
            return
        if rec.execution is not None and rec.execution.in_flight > 0:
            return
        now = self.now_ns()
        if rec.execution is not None:
            rec.execution.close()
        if rec.row.filled_qty >= rec.row.qty:  # the last fills were in flight
            self._complete(rec, OrderStatus.FILLED, now)
            return
        rec.row.text = rec.cancel_reason
        self.counters["orders_canceled"] += 1
        self._complete(rec, OrderStatus.CANCELED, now)
        self._events.insert(
            len(self._events) - 1,  # before its OrderCompleted
            OrderCanceled(
                now, rec.view(), rec.cancel_cl_ord_id, rec.row.cl_ord_id, rec.cancel_reason
            ),
        )

    # ------------------------------------------------------------------ engine events

    def _on_engine_event(self, rec: _Order, e: Event) -> None:
        m = rec.market
        row = rec.row
        ts = m.epoch_ns(e.ts_ns)
        if isinstance(e, ChildOrderSent):
            c = e.child
            row.n_children += 1
            self.counters["child_orders"] += 1
            child_row = {
                **child_order_columns(c),
                "quote_id": c.quote_id,
                "sent_ns": ts,
                "filled_qty": 0,
                "status": "open",
                "updated_ns": ts,
            }
            self._children[c.child_id] = child_row
            self._batch.upsert(SvcChildRow, dict(child_row))
            self._save(rec, ts)
            self._events.append(
                ChildOrderUpdated(ts, rec.view(), c.child_id, c.venue, "sent", c.qty)
            )
        elif isinstance(e, ChildOrderFilled):
            self._on_fill(rec, e, ts)
        elif isinstance(e, ChildOrderCanceled | ChildOrderExpired | ChildOrderRejected):
            what = {ChildOrderCanceled: "canceled", ChildOrderExpired: "expired"}.get(
                type(e), "rejected"
            )
            qty = getattr(e, "canceled_qty", getattr(e, "expired_qty", 0))
            detail = getattr(e, "reason", "")
            self._child_status(e.child_id, what, ts)
            self._events.append(
                ChildOrderUpdated(ts, rec.view(), e.child_id, e.venue, what, qty, detail)
            )
            self._maybe_canceled(rec)
        elif isinstance(e, ChildOrderAccepted):
            pass  # the child's row says open already; acks are not journaled
        elif isinstance(e, DecisionRecorded):
            rec.decisions += 1
            self.counters["decisions"] += 1
            self._batch.insert(
                SvcDecisionRow,
                {
                    "parent_id": row.parent_id,
                    "seq": rec.decisions,
                    "decision_id": e.decision_id,
                    "ts_ns": ts,
                    "chosen": e.chosen,
                    "inputs_json": dumps(_finite(e.inputs)),
                    "alternatives_json": dumps(_finite(e.alternatives)),
                },
            )
            self._events.append(
                DecisionMade(
                    ts,
                    rec.view(),
                    e.decision_id,
                    e.chosen,
                    _finite(e.inputs),
                    _finite(e.alternatives),
                )
            )
        elif isinstance(e, ParentOrderCompleted):
            self._journal_schedule(rec)
            if rec.status is OrderStatus.PENDING_CANCEL:
                self._maybe_canceled(rec)
            elif not rec.status.terminal:
                status = OrderStatus.FILLED if row.filled_qty >= row.qty else OrderStatus.EXPIRED
                if status is OrderStatus.EXPIRED:
                    row.text = f"horizon reached with {row.qty - row.filled_qty} unfilled"
                    self.counters["orders_expired"] += 1
                    self._complete(rec, status, ts)
                    self._events.insert(len(self._events) - 1, OrderExpired(ts, rec.view()))
                else:
                    self._complete(rec, status, ts)
        else:
            rfq = _rfq_fact(e)
            if rfq is not None:
                self._on_rfq(rec, e, ts, *rfq)

    def _on_fill(self, rec: _Order, e: ChildOrderFilled, ts: int) -> None:
        row = rec.row
        row.filled_qty += e.qty
        row.notional += e.qty * e.price
        row.fees += e.fee
        row.n_fills += 1
        row.updated_ns = ts
        self.counters["fills"] += 1
        exec_id = f"{row.parent_id}-F{row.n_fills}"
        kind = rec.market.kinds.get(e.venue, VenueKind.LIT).value
        self._batch.insert(
            SvcFillRow,
            {
                "exec_id": exec_id,
                "parent_id": row.parent_id,
                "seq": row.n_fills,
                "child_id": e.child_id,
                "ts_ns": ts,
                "venue": e.venue,
                "venue_kind": kind,
                "qty": e.qty,
                "price": e.price,
                "fee": e.fee,
                "liquidity": e.liquidity,
            },
        )
        rec.fills.append(dataclasses.replace(e, ts_ns=ts))
        self._child_status(e.child_id, "filled" if e.leaves_qty <= 0 else "open", ts, filled=e.qty)
        if row.filled_qty >= row.qty and row.status != OrderStatus.PENDING_CANCEL.value:
            row.status = OrderStatus.FILLED.value
        self._save(rec, ts)
        self._events.append(
            OrderFilled(
                ts,
                rec.view(),
                exec_id,
                e.child_id,
                e.venue,
                kind,
                e.qty,
                e.price,
                e.liquidity,
                e.fee,
            )
        )
        if row.status == OrderStatus.FILLED.value:
            self.counters["orders_filled"] += 1
            if rec.execution is not None:
                rec.execution.close()
            self._journal_schedule(rec)
            self._complete(rec, OrderStatus.FILLED, ts)

    def _child_status(self, child_id: ChildId, status: str, ts: int, filled: int = 0) -> None:
        row = self._children.get(child_id)
        if row is None:
            return  # a child of a previous process, already reconciled
        row["filled_qty"] += filled
        row["status"] = status
        row["updated_ns"] = ts
        self._batch.upsert(SvcChildRow, dict(row))
        if status != "open":
            del self._children[child_id]

    def _on_rfq(
        self, rec: _Order, e: Event, ts: int, rfq_id: str, what: str, detail: dict[str, Any]
    ) -> None:
        rec.market.rfq_events.append(e)
        rec.rfq_events += 1
        if what == "requested":
            rec.row.n_rfqs += 1
            self.counters["rfqs"] += 1
            self._save(rec, ts)
        self._batch.insert(
            SvcRfqEventRow,
            {
                "parent_id": rec.row.parent_id,
                "seq": rec.rfq_events,
                "rfq_id": rfq_id,
                "ts_ns": ts,
                "what": what,
                "detail_json": dumps(detail),
            },
        )
        self._events.append(RfqUpdated(ts, rec.view(), rfq_id, what, detail))

    def _mark_schedule(self, rec: _Order) -> None:
        self._schedule_dirty[rec.row.parent_id] = rec

    def _journal_schedules(self) -> None:
        """The schedule points added since the last step (only those parents: a desk
        with thousands open must not visit every one at every step)."""
        dirty, self._schedule_dirty = self._schedule_dirty, {}
        for rec in dirty.values():
            if rec.execution is not None:
                self._journal_schedule(rec)

    def _journal_schedule(self, rec: _Order) -> None:
        if rec.execution is None:
            return
        points = rec.execution.result.schedule
        base = rec.schedule_base
        for i in range(rec.schedule_seen, len(points)):
            t, target, filled = points[i]
            self._batch.insert(
                SvcScheduleRow,
                {
                    "parent_id": rec.row.parent_id,
                    "seq": base + i + 1,
                    "ts_ns": rec.market.epoch_ns(t),
                    "target_qty": target,
                    "filled_qty": filled,
                },
            )
        rec.schedule_seen = len(points)

    def _complete(self, rec: _Order, status: OrderStatus, ts: int) -> None:
        rec.row.status = status.value
        rec.row.updated_ns = ts
        if rec.execution is not None:
            rec.execution.close()
            # the schedule ends where the order did: realised vs the target by then
            points = rec.execution.result.schedule
            target = points[-1][1] if points else 0
            w = rec.market.world_ns(ts)
            if not points or points[-1][0] < w or points[-1][2] != rec.row.filled_qty:
                points.append((w, target, rec.row.filled_qty))
            self._journal_schedule(rec)
        tca = self._tca(rec)
        rec.row.tca_json = dumps(tca)
        self._save(rec, ts)
        self._events.append(OrderCompleted(ts, rec.view(), tca))
        log.info(
            "order done",
            parent_id=rec.row.parent_id,
            status=status.value,
            filled=rec.row.filled_qty,
            qty=rec.row.qty,
            is_bps=tca.get("is_bps"),
        )

    def _tca(self, rec: _Order) -> dict[str, Any]:
        """Implementation shortfall and its parts on this session's market path; the
        unfilled rest is charged at the end mid (CONTRACT.md)."""
        row, m = rec.row, rec.market
        t0 = m.world_ns(row.start_ns) / NANOS_PER_SECOND
        end_s = max(1e-3, (row.updated_ns - row.start_ns) / NANOS_PER_SECOND)
        full = app.price_path(m.world.market, from_s=max(t0, -1e9))
        path = PricePath(full.times_s - t0, full.bid, full.ask)
        fills = [dataclasses.replace(f, ts_ns=f.ts_ns - row.start_ns) for f in rec.fills]
        children = rec.execution.result.children if rec.execution is not None else []
        w0 = max(m.world_ns(row.start_ns), 0)
        vwap = app.market_vwap(m.world.market, w0, m.world_ns(row.updated_ns))
        report = analyze(
            Side(row.side),
            row.qty,
            row.arrival_mid,
            end_s,
            fills,
            children,
            path,
            None,
            m.kinds,
            vwap,
        )
        return report.to_json()

    # ------------------------------------------------------------------ recovery

    def _recover(self) -> None:
        """Rebuild the desk from the journal (see the module docstring). A parent that
        cannot be rebuilt is quarantined, and the others start."""
        self._next_parent = self.journal.meta("next_parent", 0) + 1
        for ids in self.journal.clordids():
            self._clordids[(ids.client, ids.cl_ord_id)] = ids.parent_id
        before = {q.parent_id: q.reason for q in self.journal.quarantined()}
        rows = self.journal.parents()
        ok: list[ParentRecord] = []
        for row in rows:
            if row.parent_id in before:
                self._quarantined[row.parent_id] = before[row.parent_id]
                log.warning(
                    "order quarantined before: skipped",
                    parent_id=row.parent_id,
                    reason=before[row.parent_id],
                )
                continue
            why = self._row_problem(row)
            if why is not None:
                self._quarantine(row.parent_id, why)
                continue
            ok.append(ParentRecord.from_row(row))
        open_ids = [r.parent_id for r in ok if not OrderStatus(r.status).terminal]
        open_children: dict[str, list[SvcChildRow]] = {}
        for c in self.journal.open_children(open_ids):
            open_children.setdefault(c.parent_id, []).append(c)
        now = self.now_ns()
        for r in ok:
            market = self._markets.get(r.symbol)
            if market is None:
                if not OrderStatus(r.status).terminal:
                    raise DomainError(
                        f"open order {r.parent_id} trades {r.symbol}, which is no longer configured"
                    )
                continue
            # all or nothing for each parent: what a failure left half done is undone
            n_events, n_inserts = len(self._events), len(self._batch.inserts)
            upserts = dict(self._batch.upserts)
            rec = _Order(r, market)
            try:
                self._recover_one(rec, open_children.get(r.parent_id, []), now)
            except Exception as exc:
                log.exception("order could not be recovered", parent_id=r.parent_id)
                self._drop_execution(rec)
                self._orders.pop(r.parent_id, None)
                del self._events[n_events:]
                del self._batch.inserts[n_inserts:]
                self._batch.upserts = upserts
                self._quarantine(r.parent_id, f"recovery failed: {type(exc).__name__}: {exc}")

    def _recover_one(self, rec: _Order, open_children: list[SvcChildRow], now: int) -> None:
        r, market = rec.row, rec.market
        self._orders[r.parent_id] = rec
        if OrderStatus(r.status).terminal:
            return
        rec.engine_strategy = self._engine_strategy(r.strategy)
        rec.fills = [
            ChildOrderFilled(
                f.ts_ns,
                ChildId(f.child_id),
                VenueId(f.venue),
                Side(r.side),
                f.qty,
                f.price,
                f.fee,
                f.liquidity,
                0,
            )
            for f in self.journal.fills(r.parent_id)
        ]
        counts = self.journal.counts(r.parent_id)
        rec.decisions, rec.rfq_events = counts["decisions"], counts["rfq_events"]
        rec.schedule_base = counts["schedule"]
        for c in open_children:
            # the venue that held it died with the old process: nothing more can fill
            self._batch.upsert(
                SvcChildRow, {**c.model_dump(), "status": "canceled", "updated_ns": now}
            )
            self._events.append(
                ChildOrderUpdated(
                    now,
                    rec.view(),
                    c.child_id,
                    c.venue,
                    "canceled",
                    c.qty - c.filled_qty,
                    "venue state lost at restart: reconciled",
                )
            )
        if now >= r.end_ns or r.filled_qty >= r.qty:
            status = OrderStatus.FILLED if r.filled_qty >= r.qty else OrderStatus.EXPIRED
            if status is OrderStatus.EXPIRED:
                left = r.qty - r.filled_qty
                r.text = f"horizon passed while the service was down, {left} unfilled"
            self._complete(rec, status, now)
            if status is OrderStatus.EXPIRED:
                self._events.insert(len(self._events) - 1, OrderExpired(now, rec.view()))
            return
        restore = (r.n_children + 1, r.n_rfqs + 1)
        self._start_execution(rec, market.world_ns(now), restore)
        if r.status == OrderStatus.PENDING_CANCEL.value:
            assert rec.execution is not None
            rec.execution.stop(rec.cancel_reason or "canceled before the restart")
            rec.cancel_reason = rec.cancel_reason or "canceled before the restart"
            self._maybe_canceled(rec)
        elif r.status == OrderStatus.PAUSED.value:
            assert rec.execution is not None
            rec.execution.pause()
        log.warning(
            "order recovered",
            parent_id=r.parent_id,
            filled=r.filled_qty,
            qty=r.qty,
            status=r.status,
            reconciled_children=len(open_children),
        )

    def _row_problem(self, row: SvcParentRow) -> str | None:
        """Why a journal row cannot be a parent of this desk (None: it can). The checks
        of admission that do not depend on the market of the moment."""
        try:
            status, side, ord_type = OrderStatus(row.status), Side(row.side), OrdType(row.ord_type)
        except ValueError as exc:
            return str(exc)
        del status, side
        for name in ("qty", "filled_qty", "start_ns", "end_ns", "n_children", "n_fills"):
            value = getattr(row, name)
            if isinstance(value, bool) or not isinstance(value, int):
                return f"{name} is not an integer: {value!r}"
        if row.qty <= 0 or row.filled_qty < 0:
            return f"quantity {row.qty} with {row.filled_qty} filled"
        if row.end_ns < row.start_ns:
            return f"it ends ({row.end_ns}) before it starts ({row.start_ns})"
        for name in ("notional", "fees", "arrival_mid"):
            value = getattr(row, name)
            if not _is_number(value) or not math.isfinite(value):
                return f"{name} is not a finite number: {value!r}"
        if ord_type is OrdType.LIMIT and row.limit_price is None:
            return "a limit order without a limit price"
        sc = self._scenarios.get(row.symbol)
        if row.limit_price is not None and sc is not None:
            why = _limit_problem(row.limit_price, sc.instrument.tick_size)
            if why is not None:
                return why
        p = row.participation
        if p is not None and not (_is_number(p) and 0 < p <= 1):
            return f"participation rate {p!r} is not in (0, 1]"
        try:
            self.config.resolve_strategy(row.strategy)
        except DomainError as exc:
            return str(exc)
        return None

    def _quarantine(self, parent_id: str, reason: str) -> None:
        """Keep a parent the journal holds but this desk cannot run out of the way: it
        is named in svc_quarantine (its row stays as it was), logged, and skipped."""
        self._quarantined[parent_id] = reason
        self._batch.upsert(
            SvcQuarantineRow, {"parent_id": parent_id, "reason": reason, "ts_ns": self.now_ns()}
        )
        log.error(
            "order quarantined: its journal row cannot be recovered",
            parent_id=parent_id,
            reason=reason,
        )

    # ------------------------------------------------------------------ plumbing

    def _order(self, parent_id: str) -> _Order:
        rec = self._orders.get(parent_id)
        if rec is None:
            raise UnknownOrderError(f"unknown order {parent_id!r}")
        return rec

    def _clordid_row(
        self, client: str, cl_ord_id: str, parent_id: str, kind: str
    ) -> dict[str, Any]:
        return {
            "client": client,
            "cl_ord_id": cl_ord_id,
            "parent_id": parent_id,
            "kind": kind,
            "ts_ns": self.now_ns(),
        }

    def _save(self, rec: _Order, ts: int | None = None) -> None:
        if ts is not None:
            rec.row.updated_ns = max(rec.row.updated_ns, ts)
        self._batch.upsert(SvcParentRow, rec.row.as_row())

    def _commit_soon(self) -> None:
        """Commit at the end of this turn of the loop: a burst of client commands (a
        FIX client's window of orders arrives in one turn) shares one transaction.
        Their acknowledgements are events, published only after that commit."""
        if self._loop is None:
            self._flush()
        elif not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self._flush)

    async def sync(self) -> None:
        """Return once what the commands so far changed is committed (the REST API
        answers only then: its response is an acknowledgement too). Raises
        JournalUnavailableError if the journal cannot write it now: the change is kept,
        and stored and reported once the journal writes again."""
        if self._loop is None or not (self._flush_pending or self._outbox):
            return
        if self._journal_error:
            raise JournalUnavailableError(self._unavailable())
        done = self._loop.create_future()
        self._synced.append(done)
        if not self._flush_pending:  # only written units wait: join the last of them
            self._flush_pending = True
            self._loop.call_soon(self._flush)
        await done

    def _unavailable(self) -> str:
        return (
            f"the journal cannot write now ({self._journal_error}): the change is kept, "
            "and is stored and reported once the database is back"
        )

    def _save_clock(self) -> None:
        self._batch.upsert(SvcMetaRow, {"key": CLOCK_KEY, "value": self.now_ns()})
        self._clock_saved_at = time.monotonic()

    def _flush(self) -> None:
        """Hand what is pending to the journal's writer: its rows are committed off the
        loop, then its events published, in order (`_write_next`). With nothing to
        store and nothing before it, the events go out at once."""
        self._flush_pending = False
        unjournaled, self._unjournaled = self._unjournaled, []
        for ev in unjournaled:
            self._publish_now(ev)
        batch, self._batch = self._batch, Batch()
        events, self._events = self._events, []
        waiters, self._synced = self._synced, []
        if not (batch or events or waiters):
            return
        if batch:
            # every commit carries the clock: a restart never goes back behind a fact
            batch.upsert(SvcMetaRow, {"key": CLOCK_KEY, "value": self.now_ns()})
            self._clock_saved_at = time.monotonic()
        if self._loop is None:  # at start: written here (a failure fails the start)
            if batch:
                self.journal.commit(batch)
            self._done(_Unit(batch, events, waiters))
            return
        unit = _Unit(batch, events, waiters)
        if not self._outbox and not batch:
            self._done(unit)
            return
        if self._outbox and (self._writing is None or len(self._outbox) > 1):
            self._outbox[-1].absorb(unit)  # not being written yet: the same transaction
        else:
            self._outbox.append(unit)
        self._write_next()

    def _write_next(self) -> None:
        """Start writing the outbox (all of it, as one transaction) unless a write is
        under way or a retry is waiting."""
        if self._writing is not None or self._retry is not None or not self._outbox:
            return
        assert self._loop is not None
        head = self._outbox[0]
        for later in self._outbox[1:]:
            head.absorb(later)
        del self._outbox[1:]
        if not head.batch:  # events only (they waited for the units before them)
            del self._outbox[0]
            self._done(head)
            return
        try:
            fut = self._loop.run_in_executor(self._writer, self.journal.commit, head.batch)
        except RuntimeError:  # after stop: the writer is gone (stop said what was lost)
            log.error("journal write after stop: not written", rows=len(head.batch))
            return
        self._writing_since = time.monotonic()
        self._writing = fut
        fut.add_done_callback(self._written)

    def _written(self, fut: asyncio.Future[None]) -> None:
        self._writing = None
        self._writing_since = None
        exc = fut.exception() if not fut.cancelled() else asyncio.CancelledError()
        if exc is None:
            head = self._outbox.pop(0)
            self._journal_writes()
            self._done(head)
            self._write_next()
            return
        self._journal_failed(exc)

    def _done(self, unit: _Unit) -> None:
        """`unit` is stored: its events go out, its waiters return."""
        for ev in unit.events:
            self._publish_now(ev)
        for w in unit.waiters:
            if not w.done():
                w.set_result(None)

    def _journal_failed(self, exc: BaseException) -> None:
        """The outbox's write failed: keep it, retry it, stop trading meanwhile."""
        assert self._loop is not None
        first = not self._journal_error
        timed_out = isinstance(exc, StoreError) and exc.timed_out
        # what clients may read (API, MQTT): no driver message, which names the
        # database's host, port and user; the log has it all
        self._journal_error = (
            "the database did not answer in time" if timed_out else "the database refused the write"
        )
        self.counters["journal_errors"] += 1
        if first:
            self._journal_down_since = time.monotonic()
        head = self._outbox[0]
        log.error(
            "journal write failed: kept, retrying",
            error=str(exc),
            rows=len(head.batch),
            events=len(head.events),
            retry_in_s=self._retry_s,
        )
        for unit in self._outbox:  # no client waits for the database to come back
            for w in unit.waiters:
                if not w.done():
                    w.set_exception(JournalUnavailableError(self._unavailable()))
            unit.waiters.clear()
        if first and not self.kill.engaged:
            now = self.now_ns()
            reason = f"journal write failed: {self._journal_error}"
            self.kill.engage(reason, now, KillSwitch.JOURNAL)
            for rec in self._orders.values():
                if rec.execution is not None and not rec.status.terminal:
                    rec.execution.halt("journal write failed")
            self._publish_soon(KillSwitchChanged(now, True, reason, 0))
            log.error("kill switch engaged: the journal cannot write", reason=reason)
        self._retry = self._loop.call_later(self._retry_s, self._retry_write)
        self._retry_s = min(2 * self._retry_s, self.config.journal_retry_max_s)

    def _retry_write(self) -> None:
        self._retry = None
        self.counters["journal_retries"] += 1
        self._write_next()

    def _journal_writes(self) -> None:
        """A write succeeded: if the journal was failing, it is back."""
        if not self._journal_error:
            return
        down = time.monotonic() - (self._journal_down_since or time.monotonic())
        log.warning("journal writes again", down_s=round(down, 3), error=self._journal_error)
        self._journal_error = ""
        self._journal_down_since = None
        self._retry_s = self.config.journal_retry_s
        if (
            self.config.auto_release_kill
            and self.kill.engaged
            and (self.kill.source == KillSwitch.JOURNAL)
        ):
            self._release_kill("the journal writes again: released automatically")
            log.warning("kill switch released automatically: the journal writes again")

    def _publish_soon(self, event: DeskEvent) -> None:
        """Publish `event` at the next flush (the end of this turn of the loop), ahead of
        anything waiting for the journal: for facts that are not journaled (the kill
        switch; a reject while the journal is down). Never from inside a command:
        listeners see a desk that has finished the call; `sync()` waits for it."""
        if self._loop is None:
            self._publish_now(event)
            return
        self._unjournaled.append(event)
        self._commit_soon()

    def _publish_now(self, event: DeskEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # one broken edge must not stop the others or the desk
                self.counters["listener_errors"] += 1
                log.exception("listener failed", event=event.type)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _limit_problem(price: object, tick: float) -> str | None:
    """Why `price` cannot be a limit on a book of `tick` (None: it can): it must be a
    finite number, a whole number of ticks, at least one."""
    if not _is_number(price):
        return f"limit price must be a number, got {price!r}"
    assert isinstance(price, int | float)
    try:
        value = float(price)
    except OverflowError:  # an int beyond any float
        return f"limit price {price} is not representable in ticks of {tick:g}"
    if not math.isfinite(value):
        return f"limit price must be a finite number, got {value}"
    if value <= 0:
        return f"limit price must be > 0, got {value:g}"
    ticks = value / tick
    if not ticks < _MAX_LIMIT_TICKS:  # also an overflow to infinity
        return f"limit price {value:g} is not representable in ticks of {tick:g}"
    n = round(ticks)
    if n < 1:
        return f"limit price {value:g} is below one tick ({tick:g})"
    if abs(ticks - n) > 1e-6:
        return f"limit price {value:g} is not a multiple of the tick size {tick:g}"
    return None


def _finite(values: Mapping[str, float]) -> dict[str, float]:
    """JSON has no NaN: drop what is not a finite number."""
    out = {}
    for k, v in values.items():
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if np.isfinite(f):
            out[k] = f
    return out


def _rfq_fact(e: Event) -> tuple[str, str, dict[str, Any]] | None:
    """(rfq_id, what, detail) of an RFQ protocol event; None for anything else."""
    if isinstance(e, RfqRequested):
        r = e.request
        return (
            r.rfq_id,
            "requested",
            {
                "qty": r.qty,
                "side": None if r.side is None else r.side.value,
                "dealers": list(r.dealers),
                "time_limit_s": r.time_limit_ns / NANOS_PER_SECOND,
            },
        )
    if isinstance(e, QuoteReceived):
        q = e.quote
        return (
            q.rfq_id,
            "quote_received",
            {
                "dealer": q.dealer,
                "quote_id": q.quote_id,
                "bid": q.bid,
                "offer": q.offer,
                "qty": q.qty,
            },
        )
    if isinstance(e, QuoteRequestRejected):
        return e.rfq_id, "declined", {"dealer": e.dealer, "reason": e.reason.name, "text": e.text}
    if isinstance(e, QuoteIgnored):
        return e.rfq_id, "late", {"dealer": e.dealer, "reason": e.reason}
    if isinstance(e, RfqClosed):
        return e.rfq_id, "closed", {"n_quotes": e.n_quotes}
    if isinstance(e, QuoteResponseSent):
        return (
            e.rfq_id,
            "response",
            {
                "dealer": e.dealer,
                "resp_type": e.resp_type.name,
                "qty": e.qty,
                "price": e.price,
                "child_id": e.child_id,
            },
        )
    if isinstance(e, RfqTraded):
        return (
            e.rfq_id,
            "traded",
            {"dealer": e.dealer, "qty": e.qty, "price": e.price, "child_id": e.child_id},
        )
    if isinstance(e, LastLookRejected):
        return (
            e.rfq_id,
            "last_look_rejected",
            {"dealer": e.dealer, "child_id": e.child_id, "reason": e.reason},
        )
    if isinstance(e, RfqEnded):
        return e.rfq_id, "ended", {"state": e.state, "traded_qty": e.traded_qty}
    return None
