"""Composition root: wires simulated venues, the engine and the slicers together.

Only this module and router/cli.py import across layers. Every strategy of a
simulation runs in its own world built from the same scenario and seed, so all of them
face the same background market (paired comparison); their own orders still move
that market differently, which is the point.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from router.domain import (
    NANOS_PER_SECOND,
    DomainError,
    Event,
    ParentId,
    ParentOrder,
    Side,
    VenueId,
    VenueKind,
)
from router.engine import LitFees, ParentExecution
from router.ports import MarketSnapshot
from router.strategies import SLICERS, make_slicer
from router.tca import TcaSummary, summarize
from simulators.market import SimMarket
from simulators.scenario import SESSION_CLOSE_S, Scenario
from simulators.world import SimWorld

log = structlog.get_logger("blockroute.sim")


class EventForwarder:
    """The venues' event sink: forwards to the execution once it exists."""

    def __init__(self) -> None:
        self.target: Callable[[Event], None] | None = None

    def publish(self, event: Event) -> None:
        if self.target is not None:
            self.target(event)


@dataclass(frozen=True, slots=True)
class ParentSpec:
    symbol: str
    side: Side
    qty: int
    horizon_s: float


@dataclass(frozen=True, slots=True)
class StrategyRun:
    strategy: str
    tca: TcaSummary
    n_child_orders: int
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class SimulationReport:
    scenario: str
    seed: int
    parent: ParentSpec
    arrival_mid: float
    results: tuple[StrategyRun, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "parent": {
                "symbol": self.parent.symbol,
                "side": self.parent.side.value,
                "qty": self.parent.qty,
                "horizon_s": self.parent.horizon_s,
                "arrival_mid": self.arrival_mid,
            },
            "results": [
                {
                    "strategy": r.strategy,
                    "is_bps": r.tca.is_bps,
                    "filled_qty": r.tca.filled_qty,
                    "avg_price": r.tca.avg_price,
                    "vwap_slippage_bps": r.tca.vwap_slippage_bps,
                    "n_child_orders": r.n_child_orders,
                    "completion": r.tca.completion,
                    "venue_mix": r.tca.venue_mix,
                }
                for r in self.results
            ],
        }


def check_strategies(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in SLICERS]
    if unknown:
        known = ", ".join(sorted(SLICERS))
        raise DomainError(f"unknown strategy {unknown[0]!r} (known: {known})")
    if not names:
        raise DomainError("no strategy given")


def apply_overrides(
    scenario: Scenario, qty: int | None, side: Side | None, horizon_s: float | None
) -> Scenario:
    if qty is not None and qty <= 0:
        raise DomainError(f"quantity must be > 0, got {qty}")
    if horizon_s is not None:
        if horizon_s <= 0:
            raise DomainError(f"horizon must be > 0, got {horizon_s:g} s")
        if scenario.start_tod_s + horizon_s > SESSION_CLOSE_S:
            raise DomainError(
                f"horizon {horizon_s:g} s runs past the session close (16:00) for "
                f"scenario {scenario.name!r}"
            )
    return dataclasses.replace(
        scenario,
        qty=qty if qty is not None else scenario.qty,
        side=side if side is not None else scenario.side,
        horizon_s=horizon_s if horizon_s is not None else scenario.horizon_s,
    )


def _mid(market: SimMarket, ts: int) -> float:
    return market.mid_at(ts) * market.instrument.tick_size


def run_strategy(scenario: Scenario, seed: int, strategy: str) -> tuple[StrategyRun, float]:
    """One parent order through one scenario with one strategy; returns (run, arrival mid)."""
    sink = EventForwarder()
    world = SimWorld.build(scenario, seed, sink)
    market = world.market
    inst = scenario.instrument
    arrival_mid = _mid(market, 0)
    parent = ParentOrder(
        parent_id=ParentId(f"P-{scenario.name}-{seed}"),
        symbol=inst.symbol,
        side=scenario.side,
        qty=scenario.qty,
        start_ns=0,
        horizon_ns=int(scenario.horizon_s * NANOS_PER_SECOND),
    )
    events: list[Event] = []
    fees = {
        spec.venue_id: LitFees(taker_fee=spec.taker_fee, maker_fee=spec.maker_fee)
        for spec in scenario.lit
    }
    execution = ParentExecution(
        parent,
        make_slicer(strategy),
        world.venues,
        fees,
        market=WorldMarketData(world),
        clock=world.clock,
        schedule=world.kernel.schedule,
        lot_size=inst.lot_size,
        on_event=events.append,
    )
    sink.target = execution.publish
    execution.start()
    world.kernel.run_until(parent.end_ns)
    end_mid = _mid(market, parent.end_ns)
    kinds: dict[VenueId, VenueKind] = {v: venue.kind for v, venue in world.venues.items()}
    tca = summarize(
        parent.side,
        parent.qty,
        arrival_mid,
        end_mid,
        market_vwap(market, 0, parent.end_ns),
        execution.result.fills,
        kinds,
    )
    run = StrategyRun(strategy, tca, len(execution.result.children), tuple(events))
    log.debug("strategy done", strategy=strategy, is_bps=round(tca.is_bps, 2))
    return run, arrival_mid


def market_vwap(market: SimMarket, t0: int, t1: int) -> float | None:
    st = market.state
    b0, b1 = market.bar_of(t0), market.bar_of(t1)
    vol = int(st.tape_vol[b0:b1].sum())
    if vol == 0:
        return None
    return float(st.tape_pv[b0:b1].sum()) / vol * market.instrument.tick_size


class WorldMarketData:
    """MarketData for the engine: the world's market as seen at the kernel's current time."""

    def __init__(self, world: SimWorld) -> None:
        self._world = world

    def snapshot(self) -> MarketSnapshot:
        return self._world.market.snapshot(self._world.clock.now_ns())


def simulate(
    scenario: Scenario,
    strategies: Sequence[str],
    seed: int,
    progress: Callable[[str], None] | None = None,
) -> SimulationReport:
    check_strategies(strategies)
    runs = []
    arrival = 0.0
    for name in strategies:
        if progress:
            progress(name)
        run, arrival = run_strategy(scenario, seed, name)
        runs.append(run)
    return SimulationReport(
        scenario=scenario.name,
        seed=seed,
        parent=ParentSpec(
            scenario.instrument.symbol, scenario.side, scenario.qty, scenario.horizon_s
        ),
        arrival_mid=arrival,
        results=tuple(runs),
    )
