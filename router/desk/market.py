"""What the desk needs from a market, and the pump that steps the markets on the loop.

A `MarketSession` is one symbol's market as the desk trades it: its own clock (world
time, from 0 when the session opened at `epoch_ns(0)` on the service clock), the
consolidated mid and price path, stepping it to the service clock, and the ports a
parent's execution trades through (router.execution.ExecutionPorts). A `MarketSource`
opens one per symbol when the desk starts. The service's composition root picks the
source: today the simulator's worlds (router/desk/sim.py); a replayed or a real market
implements the same two Protocols."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import structlog

from router.desk.config import DeskConfig
from router.desk.metrics import DeskMetrics
from router.domain import NANOS_PER_SECOND, Instrument, VenueId, VenueKind
from router.execution import ExecutionPorts, ParentExecution
from router.ports import MarketHistory
from router.registry import LiveModels
from router.tca import PricePath

log = structlog.get_logger("blockroute.desk")


@dataclass(frozen=True, slots=True)
class ParentPorts:
    """What one parent's execution trades through in a session (the venues, fees,
    market data, clock and scheduler; the dealers when it asked for an RFQ routing the
    session has), and its own random stream."""

    ports: ExecutionPorts
    rng: np.random.Generator


class MarketSession(Protocol):
    """One symbol's market on the service clock. Domain events of the executions wired
    to it carry its world time; `world_ns`/`epoch_ns` convert."""

    @property
    def instrument(self) -> Instrument: ...

    @property
    def end_ns(self) -> int:
        """The session's close on the service clock: no parent may end later."""
        ...

    @property
    def kinds(self) -> Mapping[VenueId, VenueKind]:
        """The kind of each venue an execution may be wired to."""
        ...

    def world_ns(self, epoch_ns: int) -> int: ...

    def epoch_ns(self, world_ns: int) -> int: ...

    def advance(self, epoch_ns: int, enough: Callable[[], bool] | None = None) -> bool:
        """Run the market to `epoch_ns`; False if `enough` cut it short (more is due)."""
        ...

    def next_event_ns(self) -> int | None:
        """When (service clock) the market next has something to do; None: nothing."""
        ...

    def mid(self) -> float | None:
        """The consolidated mid now (world clock); None without a two-sided market."""
        ...

    def history(self, horizon_s: float) -> MarketHistory:
        """What the desk knows of the instrument for a parent arriving now."""
        ...

    def price_path(self, from_s: float = 0.0) -> PricePath:
        """The consolidated top of book so far, from world time `from_s` on."""
        ...

    def vwap(self, from_world_ns: int, to_world_ns: int) -> float | None:
        """The market's volume-weighted price over the interval; None if nothing traded."""
        ...

    def rfq_screen(self, world_ns: int) -> dict[str, Any] | None:
        """What the desk knew at a request for quotes sent at `world_ns`, journaled with
        it so that the dealer models can be retrained from the journal (models/training/
        journal_data.py): the screen's features (`vol_bps`, `spread_bps`, `tod`, `mid`:
        models.serving.features.MarketContext), the dealers' axe feed then (`axes`), the
        panel (`panel`, `dealers`) and the instrument's `adv`. None if it cannot tell."""
        ...

    def lit_mid_at(self, world_ns: int) -> float | None:
        """The consolidated mid at `world_ns` as the price path shows it (a quote's
        distance from the mid is measured against it); None if unknown."""
        ...

    def parent_ports(
        self, parent_id: str, routing: str, rfq: bool, models: LiveModels | None = None
    ) -> ParentPorts:
        """The ports for parent `parent_id` routed by `routing`; with the dealers if
        `rfq` and the session has dealers for that routing. `models`: the models of the
        parent's arm of the algo wheel (router.wheel), which its `ml` dealer panel reads
        (default: the session's, the champion's)."""
        ...

    def attach(self, parent_id: str, execution: ParentExecution) -> None:
        """Route the venue events of `parent_id`'s orders to `execution` from now on."""
        ...

    def detach(self, parent_id: str, execution: ParentExecution) -> None:
        """Stop routing them, if `execution` is still the one attached."""
        ...


class MarketSource(Protocol):
    """Opens a desk's markets when it starts."""

    def symbols(self) -> list[str]: ...

    def open(self, now_ns: Callable[[], int], routings: Sequence[str]) -> dict[str, MarketSession]:
        """One session per symbol, opened at `now_ns()` (read once whatever it must
        prepare first is ready), each ready to serve the execution `routings` given."""
        ...


class MarketPump:
    """Steps the markets to the service clock on the asyncio loop, in slices that never
    hold the loop for longer than `step_budget_s`; after each step `on_step` runs (the
    desk journals what the step produced) and `after_step` (it commits)."""

    def __init__(
        self,
        config: DeskConfig,
        markets: Mapping[str, MarketSession],
        now_ns: Callable[[], int],
        metrics: DeskMetrics,
        on_step: Callable[[], None],
        after_step: Callable[[], None],
    ) -> None:
        self._config = config
        self._markets = markets
        self._now_ns = now_ns
        self._metrics = metrics
        self._on_step = on_step
        self._after_step = after_step
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.Handle | None = None  # the next step of the markets
        self._stopping = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._handle = loop.call_soon(self._tick)

    def stop(self) -> None:
        """No step runs after this, nor a kick (`advance` still does what it is told)."""
        self._stopping = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def kick(self) -> None:
        """Step now: a command may have made something due (a parent's first decision)."""
        if self._stopping or self._loop is None:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._loop.call_soon(self._tick)

    def advance(self, epoch_ns: int, enough: Callable[[], bool] | None = None) -> bool:
        """Every market to `epoch_ns` (or its close); False if `enough` cut one short."""
        done = True
        for m in self._markets.values():
            done = m.advance(min(epoch_ns, m.end_ns), enough) and done
            self._metrics.steps.inc()
        self._on_step()
        return done

    def _tick(self) -> None:
        """One step of the markets to the service clock, then back to sleep until the
        next market event is due (at most `max_step_s`). A plain loop callback rather
        than a task: nothing to cancel at shutdown, nothing to swallow a cancellation."""
        self._handle = None
        if self._stopping or self._loop is None:
            return
        caught_up = True
        try:
            # a slice of at most step_budget_s: client messages wait for no longer
            deadline = time.perf_counter() + self._config.step_budget_s
            caught_up = self.advance(self._now_ns(), lambda: time.perf_counter() > deadline)
            self._after_step()
        except Exception:  # keep the markets running; the failure is logged and counted
            self._metrics.pump_errors.inc()
            log.exception("desk step failed")
        if not caught_up:
            self._metrics.steps_sliced.inc()
            self._handle = self._loop.call_soon(self._tick)  # after what waits meanwhile
            return
        delay = self._config.max_step_s
        for m in self._markets.values():
            nxt = m.next_event_ns()
            if nxt is not None:
                wall = (nxt - self._now_ns()) / NANOS_PER_SECOND
                delay = min(delay, max(0.0, wall / self._config.sim_speed))
        self._handle = self._loop.call_later(max(delay, 0.0005), self._tick)
