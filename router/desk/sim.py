"""The desk's markets from the simulator: for each symbol a world (market, lit venues,
dark pools, dealers: simulators/, dealers/) whose discrete-event kernel the desk steps
to the service clock. A world's clock runs from 0 at the moment it was built
(`origin_ns` on the service clock); it runs one session, to the close."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from dealers.config import DealerPanel, load_panel
from models.training.dealer_data import VOL_WINDOW_S, market_context
from router import app
from router.desk.config import DeskConfig
from router.desk.market import MarketSession, ParentPorts
from router.domain import (
    NANOS_PER_SECOND,
    DomainError,
    Event,
    Instrument,
    QuoteReceived,
    RfqRequested,
    VenueId,
    VenueKind,
)
from router.execution import ParentExecution, RfqRouting
from router.ports import MarketHistory, PanelSelector
from router.registry import LiveModels, ModelRegistry
from router.tca import PricePath
from simulators.kernel import rng_for
from simulators.scenario import SESSION_CLOSE_S, Scenario, load_scenario
from simulators.world import SimWorld

#: the price path read back for a request's screen: its 10-minute volatility window and
#: a minute more, so that the forward-filled mids at the window's start are the same as
#: on the whole day's path (unless a side of the book stayed empty that long)
SCREEN_WINDOW_S = VOL_WINDOW_S + 60.0


class SimMarkets:
    """The configured symbols' scenarios as the desk's `MarketSource`. Raises
    DomainError if a scenario trades another symbol than the one it is configured for."""

    def __init__(
        self,
        config: DeskConfig,
        scenarios: Mapping[str, Scenario] | None = None,
        *,
        models: ModelRegistry | None = None,
    ) -> None:
        """`scenarios` overrides loading the configured scenario files (tests); `models`:
        the registry whose dealer models the `ml` panels read, as served at each
        selection (default: the process's, router.app.MODELS; the service gives the
        one its desk serves, which promotions swap)."""
        given = dict(scenarios or {})
        self._models = (models if models is not None else app.MODELS).live()
        self._seed = config.seed
        self._scenarios = {
            sym: given.get(sym) or load_scenario(name) for sym, name in config.symbols.items()
        }
        for sym, sc in self._scenarios.items():
            if sc.instrument.symbol != sym:
                raise DomainError(
                    f"symbol {sym}: scenario {sc.name!r} trades {sc.instrument.symbol}, not {sym}"
                )

    def symbols(self) -> list[str]:
        return list(self._scenarios)

    def open(self, now_ns: Callable[[], int], routings: Sequence[str]) -> dict[str, MarketSession]:
        # the panel selectors learn the desk's past days first (seconds, cached per
        # process): the markets start after that, not seconds behind the service clock
        for sc in self._scenarios.values():
            if sc.dealer_panel is not None:
                app.desk_history(sc.name, sc.dealer_panel)
        now = now_ns()
        opened = [
            SimMarketSession(sc, self._seed + 1000 * k, now, self._models)
            for k, sc in enumerate(self._scenarios.values())
        ]
        for session in opened:
            for routing in routings:
                session.rfq_routing(routing)
        return {sym: session for sym, session in zip(self._scenarios, opened, strict=True)}


class _Dispatch:
    """A world's event sink: each venue event goes to the execution of its parent. Child
    ids are f"{parent_id}-{n}", RFQ ids f"{parent_id}-R{n}" (router/execution/ledger.py)."""

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


class SimMarketSession:
    """One symbol's simulated world on the service clock (a `MarketSession`)."""

    def __init__(
        self, scenario: Scenario, seed: int, origin_ns: int, models: LiveModels | None = None
    ) -> None:
        # the market runs from the scenario's start time to the close: one session
        session_s = SESSION_CLOSE_S - scenario.start_tod_s
        self.scenario = dataclasses.replace(scenario, horizon_s=session_s)
        self.seed = seed
        self.origin_ns = origin_ns
        self._models = models if models is not None else app.MODELS.live()
        self.end_ns = origin_ns + int(session_s * NANOS_PER_SECOND)
        self.dispatch = _Dispatch()
        self.panel: DealerPanel | None = (
            load_panel(scenario.dealer_panel) if scenario.dealer_panel else None
        )
        self.world = SimWorld.build(self.scenario, seed, self.dispatch, None, self.panel)
        self.kinds: dict[VenueId, VenueKind] = {v: x.kind for v, x in self.world.venues.items()}
        # per routing, and per set of models for `ml` (the algo wheel's arms)
        self._selectors: dict[tuple[str, LiveModels | None], PanelSelector] = {}
        self._history: dict[tuple[int, float], MarketHistory] = {}
        self._mid: float | None = None
        self._mid_at = -1

    @property
    def instrument(self) -> Instrument:
        return self.scenario.instrument

    def world_ns(self, epoch_ns: int) -> int:
        return epoch_ns - self.origin_ns

    def epoch_ns(self, world_ns: int) -> int:
        return world_ns + self.origin_ns

    def advance(self, epoch_ns: int, enough: Callable[[], bool] | None = None) -> bool:
        kernel = self.world.kernel
        return kernel.run_until(max(self.world_ns(epoch_ns), kernel.clock.now_ns()), enough)

    def next_event_ns(self) -> int | None:
        nxt = self.world.kernel.next_event_ns()
        return None if nxt is None else self.epoch_ns(nxt)

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

    def price_path(self, from_s: float = 0.0) -> PricePath:
        return app.price_path(self.world.market, from_s=from_s)

    def vwap(self, from_world_ns: int, to_world_ns: int) -> float | None:
        return app.market_vwap(self.world.market, from_world_ns, to_world_ns)

    def rfq_screen(self, world_ns: int) -> dict[str, Any] | None:
        """The screen as the dealer models' training reads a simulated day's
        (models.training.dealer_data.market_context, on the path of the last
        `SCREEN_WINDOW_S`) and the axe feed as of `world_ns` (its log: the feed may have
        moved since, the world runs ahead of the facts it reports)."""
        if self.panel is None or self.world.rfq is None:
            return None
        t = world_ns / NANOS_PER_SECOND
        ctx = market_context(self.price_path(t - SCREEN_WINDOW_S), t, self.scenario.start_tod_s)
        axes: dict[str, float] = {}
        for ts, dealer, units in self.world.rfq.axe_log:
            if ts > world_ns:
                break
            axes[dealer] = units
        return {
            "vol_bps": ctx.vol_bps,
            "spread_bps": ctx.spread_bps,
            "tod": ctx.tod,
            "mid": ctx.mid,
            "axes": axes,
            "panel": self.panel.name,
            "dealers": list(self.panel.ids),
            "adv": float(self.scenario.instrument.adv),
        }

    def lit_mid_at(self, world_ns: int) -> float | None:
        t = world_ns / NANOS_PER_SECOND
        mid = self.price_path(t - SCREEN_WINDOW_S).mid_at(t)
        return mid if np.isfinite(mid) else None

    def rfq_routing(self, routing: str, models: LiveModels | None = None) -> RfqRouting | None:
        """The dealers, with one panel selector per routing kept for the whole session:
        what it learns from one parent's RFQs serves the next. `ml`'s reads `models`
        (default: the session's): one selector per set, so that each arm of the algo
        wheel asks its own dealer models and learns from its own parents' RFQs."""
        if self.panel is None or self.world.rfq is None:
            return None
        models = models if models is not None else self._models
        key = (routing, None if models is self._models or routing != "ml" else models)
        selector = self._selectors.get(key)
        if selector is None:
            if routing == "ml":
                selector = app.ml_selector(self.scenario, self.panel, self.world, models)
            else:
                selector = app.desk_selector(self.scenario, self.panel)
            self._selectors[key] = selector
        return app.dealer_routing(self.scenario, self.world.rfq, selector, self.panel.time_limit_s)

    def parent_ports(
        self, parent_id: str, routing: str, rfq: bool, models: LiveModels | None = None
    ) -> ParentPorts:
        dealers = self.rfq_routing(routing, models) if rfq else None
        return ParentPorts(
            app.world_ports(self.world, dealers), rng_for(self.seed, f"router/{parent_id}")
        )

    def attach(self, parent_id: str, execution: ParentExecution) -> None:
        self.dispatch.executions[parent_id] = execution

    def detach(self, parent_id: str, execution: ParentExecution) -> None:
        if self.dispatch.executions.get(parent_id) is execution:
            del self.dispatch.executions[parent_id]
