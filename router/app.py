"""Composition root of simulations: wires simulated venues, the engine, the strategies
and the TCA together.

An `Episode` is one parent order in one scenario with one seed. Every strategy of an
episode runs in its own world built from the same scenario and seed, so all of them
face the same background market (paired comparison); their own orders still move that
market differently, which is the point. The episode also runs the market once with no
parent at all (the unimpacted path): the TCA uses it to split price moves into own
impact and market timing, and the hindsight oracle plans on it.

Each strategy's execution is built by router.execution.build_execution from the
strategy's spec, the world's ports (`world_ports`) and the model registry (`MODELS`
unless the caller gives another), which serves the model-guided tactics their models
and the `ml` strategy's slicer its policy.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import multiprocessing as mp
import pickle
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog

from dealers.config import DealerPanel, load_panel
from dealers.panel import HeuristicPanel
from dealers.pnl import TradePnl
from models.serving.desk import DeskState
from models.serving.features import MarketContext
from models.serving.predictors import MlPanel
from router import cache as rcache
from router.config import DEFAULT_CONFIG_DIR
from router.domain import (
    NANOS_PER_SECOND,
    ChildId,
    ChildOrder,
    ChildOrderFilled,
    ChildOrderSent,
    DecisionRecorded,
    DomainError,
    Event,
    OrdType,
    ParentId,
    ParentOrder,
    Side,
    TimeInForce,
    VenueId,
    VenueKind,
)
from router.execution import (
    ExecutionPorts,
    LitFees,
    ParentExecution,
    RfqRouting,
    build_execution,
)
from router.parallel import ordered_map
from router.ports import MarketHistory, MarketSnapshot, PanelSelector, RfqChannel, SlicerPolicy
from router.registry import LiveModels, ModelRegistry
from router.risk import RiskGate, RiskLimits
from router.strategies import StrategySpec, strategy_spec
from router.strategies.learned import STEP_S, PacedSlicer
from router.strategies.schedule import ScheduleSlicer
from router.tca import (
    MARKOUT_HORIZONS_S,
    PricePath,
    TcaReport,
    analyze,
    gap_captured,
    solve_hindsight,
)
from simulators.kernel import rng_for
from simulators.markets import LitMarket, open_market
from simulators.scenario import SESSION_CLOSE_S, SESSION_OPEN_S, Scenario, load_scenario
from simulators.schedule import volume_profile
from simulators.world import SimWorld

if TYPE_CHECKING:  # the store (SQLAlchemy) loads only when a command stores runs
    from router.store import RunMeta, Store

log = structlog.get_logger("blockroute.sim")

HINDSIGHT = "hindsight"
MARKOUT_TAIL_S = 300.0  # the market runs on this long after the horizon, for markouts
HISTORY_BUCKET_S = 300.0
HINDSIGHT_BUCKET_S = 60.0
MARKET_VOLUME_BUCKET_S = 60.0  # the report's participation rates are built on these
# The oracle may trade up to all of a bucket's volume: its quadratic impact cost, not a
# cap, keeps it from doing so; the risk gate's participation cap is lifted for it too.
HINDSIGHT_MAX_PARTICIPATION = 1.0
# The desk's estimate of the square-root law's prefactor Y for these instruments, as
# measured on past metaorders (`blockroute bench impact`: Y = 0.84 on Q/ADV >= 1%).
IMPACT_Y_ESTIMATE = 0.84
SESSION_S = SESSION_CLOSE_S - SESSION_OPEN_S

# The process's models: what a run is given unless its caller gives another registry.
MODELS = ModelRegistry()


class EventForwarder:
    """The venues' event sink: forwards to the execution once it exists."""

    def __init__(self) -> None:
        self.target: Callable[[Event], None] | None = None

    def publish(self, event: Event) -> None:
        if self.target is not None:
            self.target(event)


class WorldMarketData:
    """MarketData for the engine: the world's market as seen at the kernel's current time."""

    def __init__(self, world: SimWorld) -> None:
        self._world = world

    def snapshot(self) -> MarketSnapshot:
        return self._world.market.snapshot(self._world.clock.now_ns())

    def touches_before(self, lags_s: Sequence[float]) -> list[tuple[int, int] | None]:
        return self._world.market.touches_before(self._world.clock.now_ns(), lags_s)

    def flow_over(self, windows_s: Sequence[int]) -> list[tuple[int, int]]:
        return self._world.market.flow_over(self._world.clock.now_ns(), windows_s)


@dataclass(frozen=True, slots=True)
class ParentSpec:
    symbol: str
    side: Side
    qty: int
    horizon_s: float


@dataclass(frozen=True, slots=True)
class StrategyRun:
    strategy: str
    tca: TcaReport
    n_child_orders: int
    events: tuple[Event, ...]
    parent: ParentOrder
    schedule: tuple[tuple[int, int, int], ...]  # (ts_ns, target, filled) per decision
    sent_ns: dict[ChildId, int]
    path: PricePath  # the realised market, own trading included, to the markout tail
    risk_blocked: int = 0
    # the learned slicer's choices: (time, action, pace multiplier) per step
    paces: tuple[tuple[int, float, float], ...] = ()
    # lit volume printed (own trades included) per MARKET_VOLUME_BUCKET_S from the start
    market_volume: tuple[int, ...] = ()
    # the dealers' P&L on their trades with this parent, marked at its horizon: the
    # counterparties' side of what the router paid them
    dealer_pnl: tuple[TradePnl, ...] = ()
    # on a replayed market: what the run changed of the replay (ReplayMarket.interaction)
    replay: dict[str, int] | None = None

    def passive_lit(self, kinds: dict[VenueId, VenueKind]) -> dict[str, Any]:
        """Resting lit children: the quantity sent, the quantity filled as maker, the
        ratio of the two (None if none was sent), and the maker fills' markouts (bps of
        the fill price, positive when the mid then moved the parent's way; None
        without maker fills)."""
        sent = sum(
            c.qty
            for c in self.children
            if kinds.get(c.venue) is VenueKind.LIT
            and c.ord_type is OrdType.LIMIT
            and c.tif is not TimeInForce.IOC
        )
        made = [
            f for f in self.fills if kinds.get(f.venue) is VenueKind.LIT and f.liquidity == "maker"
        ]
        filled = sum(f.qty for f in made)
        markouts: dict[str, float | None] = {f"{h}s": None for h in MARKOUT_HORIZONS_S}
        if made:
            t = np.array([f.ts_ns / NANOS_PER_SECOND for f in made])
            p = np.array([f.price for f in made])
            q = np.array([f.qty for f in made], dtype=np.float64)
            sign = self.parent.side.sign
            for h in MARKOUT_HORIZONS_S:
                m = sign * (self.path.mids_at(t + h) - p) / p * 1e4
                ok = np.isfinite(m)
                if ok.any():
                    markouts[f"{h}s"] = float(np.average(m[ok], weights=q[ok]))
        return {
            "sent": sent,
            "filled": filled,
            "fill_rate": filled / sent if sent else None,
            "markouts_bps": markouts,
        }

    @property
    def dealer_pnl_bps(self) -> float | None:
        """The dealers' P&L on this parent's trades, bps of their notional; None if
        it traded with none."""
        notional = sum(p.notional for p in self.dealer_pnl)
        return sum(p.pnl for p in self.dealer_pnl) / notional * 1e4 if notional else None

    @property
    def fills(self) -> list[ChildOrderFilled]:
        return [e for e in self.events if isinstance(e, ChildOrderFilled)]

    @property
    def children(self) -> list[ChildOrder]:
        return [e.child for e in self.events if isinstance(e, ChildOrderSent)]

    def record(self, store: Store, meta: RunMeta, detail: bool = True) -> int:
        """Store this run (its orders, fills and decisions too with `detail`)."""
        return store.record_run(
            meta,
            self.parent,
            self.children,
            self.sent_ns,
            self.events,
            self.tca.to_json(),
            detail=detail,
        )

    def detail_json(self, kinds: dict[VenueId, VenueKind], n_decisions: int = 40) -> dict[str, Any]:
        """The report's extras: schedule vs realised, fills, a sample of decisions."""
        fills = self.fills
        decisions = [e for e in self.events if isinstance(e, DecisionRecorded)]
        step = max(1, len(decisions) // n_decisions)
        p = self.path.resample(10.0)
        return {
            "tca": self.tca.to_json(),
            "path": {
                "t_s": [float(t) for t in p.times_s],
                "bid": [_num(b) for b in p.bid],
                "ask": [_num(a) for a in p.ask],
            },
            "schedule": {
                "t_s": [t / NANOS_PER_SECOND for t, _, _ in self.schedule],
                "target": [g for _, g, _ in self.schedule],
                "filled": [f for _, _, f in self.schedule],
            },
            "fills": {
                "t_s": [f.ts_ns / NANOS_PER_SECOND for f in fills],
                "price": [f.price for f in fills],
                "qty": [f.qty for f in fills],
                "venue": [f.venue for f in fills],
                "kind": [kinds[f.venue].value for f in fills],
                "liquidity": [f.liquidity for f in fills],
            },
            "paces": {
                "t_s": [t / NANOS_PER_SECOND for t, _, _ in self.paces],
                "action": [a for _, a, _ in self.paces],
                "multiplier": [m for _, _, m in self.paces],
            },
            "market_volume": {"bucket_s": MARKET_VOLUME_BUCKET_S, "qty": list(self.market_volume)},
            "decisions": [
                {
                    "t_s": d.ts_ns / NANOS_PER_SECOND,
                    "chosen": d.chosen,
                    "inputs": d.inputs,
                    "alternatives": d.alternatives,
                }
                for d in decisions[::step][:n_decisions]
            ],
        }


@dataclass(frozen=True, slots=True)
class SimulationReport:
    scenario: str
    seed: int
    parent: ParentSpec
    arrival_mid: float
    results: tuple[StrategyRun, ...]
    hindsight: StrategyRun | None = None
    unimpacted: PricePath | None = None
    venue_kinds: dict[VenueId, VenueKind] | None = None
    # the scenario's market phases (start_s, end_s): for the report, never a strategy
    phases: tuple[tuple[float, float], ...] = ()

    def to_json(self, detail: bool = False) -> dict[str, Any]:
        """CONTRACT.md's keys; `detail` adds what the HTML report plots."""
        doc: dict[str, Any] = {
            "scenario": self.scenario,
            "seed": self.seed,
            "parent": {
                "symbol": self.parent.symbol,
                "side": self.parent.side.value,
                "qty": self.parent.qty,
                "horizon_s": self.parent.horizon_s,
                "arrival_mid": self.arrival_mid,
            },
            "results": [],
        }
        twap = next((r for r in self.results if r.strategy == "twap"), None)
        for r in self.results:
            row: dict[str, Any] = {
                "strategy": r.strategy,
                "is_bps": r.tca.is_bps,
                "filled_qty": r.tca.filled_qty,
                "avg_price": r.tca.avg_price,
                "vwap_slippage_bps": r.tca.vwap_slippage_bps,
                "n_child_orders": r.n_child_orders,
                "completion": r.tca.completion,
                "venue_mix": r.tca.venue_mix,
                # what the dealers made on their trades with this parent (None: none)
                "dealer_pnl_bps": r.dealer_pnl_bps,
                "is_parts_bps": {
                    "spread_fees": r.tca.spread_fees_bps,
                    "impact": r.tca.impact_bps,
                    "timing": r.tca.timing_bps,
                    "opportunity": r.tca.opportunity_bps,
                },
            }
            if r.replay is not None:
                row["replay"] = dict(r.replay)
                if self.venue_kinds is not None:
                    row["passive_lit"] = r.passive_lit(self.venue_kinds)
            if detail and self.venue_kinds is not None:
                row.update(r.detail_json(self.venue_kinds))
            doc["results"].append(row)
        if self.hindsight is not None:
            doc["hindsight"] = {"is_bps": self.hindsight.tca.is_bps}
            if twap is not None:
                doc["gap_captured"] = {
                    r.strategy: gap_captured(
                        r.tca.is_bps, twap.tca.is_bps, self.hindsight.tca.is_bps
                    )
                    for r in self.results
                }
        if detail and self.unimpacted is not None:
            # the market as it would have been without the parent: the common reference
            p = self.unimpacted.resample(10.0)
            doc["path"] = {
                "t_s": [float(t) for t in p.times_s],
                "bid": [_num(b) for b in p.bid],
                "ask": [_num(a) for a in p.ask],
            }
        if detail:
            doc["phases"] = [{"start_s": a, "end_s": b} for a, b in self.phases]
        return doc


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def check_strategies(names: Sequence[str], models: ModelRegistry = MODELS) -> None:
    """Raises DomainError for an unknown or repeated strategy, ModelError for a model
    a strategy needs that is missing or corrupt: before any work."""
    if not names:
        raise DomainError("no strategy given")
    for n in names:
        spec = strategy_spec(n)
        if spec.routing == "ml":
            models.load()
        if spec.preload is not None:
            spec.preload(models)  # `ml`: the slicer's ONNX policy
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise DomainError(f"strategy {sorted(dup)[0]!r} given twice")


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
    out = dataclasses.replace(
        scenario,
        qty=qty if qty is not None else scenario.qty,
        side=side if side is not None else scenario.side,
        horizon_s=horizon_s if horizon_s is not None else scenario.horizon_s,
    )
    check_capacity(out)
    return out


MAX_SHARE_OF_HORIZON_VOLUME = 2.0


def check_capacity(scenario: Scenario) -> None:
    """Refuse a parent larger than the market can bear over its horizon: more than twice
    the lit market's expected volume over the horizon (dark pools and dealers may carry
    some of a block, but not a multiple of the whole market) is no execution but a
    market event."""
    expected = expected_volume(scenario, scenario.start_tod_s, scenario.horizon_s)
    if scenario.qty > MAX_SHARE_OF_HORIZON_VOLUME * expected:
        raise DomainError(
            f"quantity {scenario.qty:,} is more than the {expected:,.0f} shares the market "
            f"is expected to trade in {scenario.horizon_s / 60:g} min "
            f"({scenario.instrument.symbol}, ADV {scenario.instrument.adv:,}); "
            "lengthen the horizon or split the order"
        )


def expected_volume(scenario: Scenario, start_tod_s: float, seconds: float) -> float:
    """Market volume expected over a window from the historical intraday profile."""
    n = max(1, round(seconds / 10.0))
    t = start_tod_s + (np.arange(n) + 0.5) * seconds / n
    return float(scenario.instrument.adv * volume_profile(t).mean() * seconds / SESSION_S)


def market_vwap(market: LitMarket, t0: int, t1: int) -> float | None:
    st = market.state
    b0, b1 = market.bar_of(t0), market.bar_of(t1)
    vol = int(st.tape_vol[b0:b1].sum())
    if vol == 0:
        return None
    return float(st.tape_pv[b0:b1].sum()) / vol * market.instrument.tick_size


def bucket_volume(market: LitMarket, end_ns: int, bucket_s: float) -> tuple[int, ...]:
    """Lit volume printed per bucket of `bucket_s` from the start to `end_ns`."""
    step = int(bucket_s * NANOS_PER_SECOND)
    bars = [market.bar_of(t) for t in range(0, end_ns, step)] + [market.bar_of(end_ns)]
    vol = market.state.tape_vol
    return tuple(int(vol[b0:b1].sum()) for b0, b1 in itertools.pairwise(bars))


def price_path(market: LitMarket, from_s: float = 0.0) -> PricePath:
    """The consolidated top of book of the steps run so far, from `from_s` on."""
    return PricePath(*market.top_of_book(from_s))


def market_history(
    sc: Scenario, price: float, spread: float, start_tod_s: float, horizon_s: float
) -> MarketHistory:
    """What a desk knows of the instrument for a parent starting at `start_tod_s` (time
    of day) and lasting `horizon_s`: reference data and long-run statistics (ADV, daily
    volatility of past days, the impact estimate), the historical intraday volume profile
    over the horizon in equal buckets of about HISTORY_BUCKET_S, and the given price and
    spread."""
    inst = sc.instrument
    n_buckets = max(1, round(horizon_s / HISTORY_BUCKET_S))
    bucket_s = horizon_s / n_buckets
    vols = np.array(
        [expected_volume(sc, start_tod_s + i * bucket_s, bucket_s) for i in range(n_buckets)]
    )
    return MarketHistory(
        symbol=inst.symbol,
        tick_size=inst.tick_size,
        price=price,
        adv=float(inst.adv),
        daily_vol=sc.market.daily_vol,
        spread=spread,
        impact_y=IMPACT_Y_ESTIMATE,
        bucket_s=bucket_s,
        volume_profile=tuple(float(v) for v in vols / vols.sum()),
        horizon_volume=float(vols.sum()),
        taker_fee=float(np.mean([v.taker_fee for v in sc.lit])),
    )


class Episode:
    """One parent order in one scenario and seed; runs strategies on paired paths.
    `models`: the learned models its model-guided strategies read."""

    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        limit_price: float | None = None,
        models: ModelRegistry = MODELS,
        config_dir: Path = DEFAULT_CONFIG_DIR,
    ) -> None:
        # `config_dir`: where the scenario was read, for its dealer panel and the desk's
        # history with it
        self.scenario = scenario
        self.seed = seed
        self.models = models
        self.config_dir = config_dir
        inst = scenario.instrument
        self._unimpacted = open_market(scenario, seed)
        self._at_arrival = self._unimpacted.fork()  # each strategy's world starts here
        self.arrival_mid = self._unimpacted.mid_at(0) * inst.tick_size
        limit_ticks = None
        if limit_price is not None:
            limit_ticks = self._check_limit(limit_price)
        self.parent = ParentOrder(
            parent_id=ParentId(f"P-{scenario.name}-{seed}"),
            symbol=inst.symbol,
            side=scenario.side,
            qty=scenario.qty,
            start_ns=0,
            horizon_ns=int(scenario.horizon_s * NANOS_PER_SECOND),
            limit_ticks=limit_ticks,
        )
        self.end_s = scenario.horizon_s
        self.panel: DealerPanel | None = None
        if scenario.dealer_panel is not None:
            self.panel = load_panel(scenario.dealer_panel, config_dir)
        self.venue_kinds: dict[VenueId, VenueKind] = {
            **{s.venue_id: VenueKind.LIT for s in scenario.lit},
            **{s.venue_id: VenueKind.DARK for s in scenario.dark},
            **({VenueId(d): VenueKind.RFQ for d in self.panel.ids} if self.panel else {}),
        }

    def _check_limit(self, price: float) -> int:
        """A limit must be a positive price on the order's own side of the market at
        arrival: a sell limit above the ask (or a buy limit below the bid) could never
        trade as placed and is almost always a side or price typo."""
        inst, side = self.scenario.instrument, self.scenario.side
        if not price > 0:
            raise DomainError(f"limit price must be > 0, got {price:g}")
        snap = self._unimpacted.snapshot(0)
        bid = None if snap.bid_ticks is None else snap.bid_ticks * inst.tick_size
        ask = None if snap.ask_ticks is None else snap.ask_ticks * inst.tick_size
        if side is Side.SELL and ask is not None and price > ask:
            raise DomainError(
                f"limit {price:g} is above the ask {ask:g} at arrival: a sell limited there "
                "cannot trade; is the side or the price wrong?"
            )
        if side is Side.BUY and bid is not None and price < bid:
            raise DomainError(
                f"limit {price:g} is below the bid {bid:g} at arrival: a buy limited there "
                "cannot trade; is the side or the price wrong?"
            )
        return inst.to_ticks(price)

    @cached_property
    def unimpacted_path(self) -> PricePath:
        """The market with no parent at all, to the end of the markout tail."""
        m = self._unimpacted
        m.advance_to(self.parent.end_ns + int(MARKOUT_TAIL_S * NANOS_PER_SECOND))
        return price_path(m)

    @cached_property
    def history(self) -> MarketHistory:
        """What the desk knows at arrival: the instrument's reference data and long-run
        statistics (ADV, daily volatility of past days, the impact estimate), the
        historical intraday volume profile, and the spread seen in the session so far."""
        sc, m = self.scenario, self._unimpacted
        pre = price_path(m, from_s=-1e9)
        before = pre.times_s <= 0
        spread = float(np.nanmean(pre.ask[before] - pre.bid[before]))
        return market_history(sc, self.arrival_mid, spread, sc.start_tod_s, sc.horizon_s)

    def hindsight_slicer(self) -> SlicerPolicy:
        """The oracle's schedule: planned on the unimpacted path it could not know (see
        router.tca.solve_hindsight), then executed like any taker strategy."""
        path = self.unimpacted_path
        edges = np.arange(0.0, self.end_s + 1e-9, HINDSIGHT_BUCKET_S)
        if edges[-1] < self.end_s:
            edges = np.append(edges, self.end_s)
        mids = path.mean_mids(edges)
        m = self._unimpacted
        bars = [m.bar_of(int(t * NANOS_PER_SECOND)) for t in edges]
        vols = np.array(
            [m.state.tape_vol[b0:b1].sum() for b0, b1 in itertools.pairwise(bars)],
            dtype=np.float64,
        )
        inside = (path.times_s >= 0) & (path.times_s <= self.end_s)
        half = 0.5 * float(np.nanmean(path.ask[inside] - path.bid[inside]))
        sc = self.scenario
        plan = solve_hindsight(
            self.parent.side,
            self.parent.qty,
            edges[:-1],
            mids,
            np.maximum(vols, 1.0),
            half,
            IMPACT_Y_ESTIMATE,
            sc.market.daily_vol,
            float(sc.instrument.adv),
            sc.instrument.lot_size,
            HINDSIGHT_MAX_PARTICIPATION,
        )
        cum = np.concatenate([[0], np.cumsum(plan.quantities)]).astype(int)
        return ScheduleSlicer(HINDSIGHT, [float(t) for t in edges], [int(c) for c in cum])

    def run(
        self,
        strategy: str | StrategySpec,
        on_world: Callable[[SimWorld], None] | None = None,
    ) -> StrategyRun:
        """Run one strategy, by name or as a spec (a named one with other settings:
        `strategy_spec(name).with_tactic(...)`). `on_world` sees the simulated world
        before the run starts: for evaluation code that measures it (never for
        strategies)."""
        if strategy == HINDSIGHT:
            # the oracle's schedule, executed as twap executes its own
            return self._execute(HINDSIGHT, self.hindsight_slicer(), strategy_spec("twap"))
        spec = strategy_spec(strategy) if isinstance(strategy, str) else strategy
        slicer = spec.slicer(self.history, self.parent.qty, self.scenario.horizon_s, self.models)
        return self._execute(spec.name, slicer, spec, on_world)

    def _execute(
        self,
        name: str,
        slicer: SlicerPolicy,
        spec: StrategySpec,
        on_world: Callable[[SimWorld], None] | None = None,
    ) -> StrategyRun:
        world, execution, events = self._wire(name, slicer, spec)
        parent = self.parent
        if on_world is not None:
            on_world(world)
        execution.start()
        world.kernel.run_until(parent.end_ns)
        market = world.market
        dealer_pnl = tuple(world.rfq.pnl()) if world.rfq is not None else ()
        vwap = market_vwap(market, 0, parent.end_ns)
        volume = bucket_volume(market, parent.end_ns, MARKET_VOLUME_BUCKET_S)
        # the background market runs on for the post-trade markouts
        market.advance_to(parent.end_ns + int(MARKOUT_TAIL_S * NANOS_PER_SECOND))
        result = execution.result
        path = price_path(market)
        tca = analyze(
            parent.side,
            parent.qty,
            self.arrival_mid,
            self.end_s,
            result.fills,
            result.children,
            path,
            self.unimpacted_path,
            self.venue_kinds,
            vwap,
        )
        log.debug("strategy done", strategy=name, is_bps=round(tca.is_bps, 2))
        return StrategyRun(
            name,
            tca,
            len(result.children),
            tuple(events),
            parent,
            tuple(result.schedule),
            dict(result.sent_ns),
            path,
            execution.risk.blocked,
            tuple(slicer.paces) if isinstance(slicer, PacedSlicer) else (),
            volume,
            dealer_pnl,
            market.interaction(),
        )

    def _wire(
        self, name: str, slicer: SlicerPolicy, spec: StrategySpec
    ) -> tuple[SimWorld, ParentExecution, list[Event]]:
        """A fresh world at arrival and the parent's execution in it, not yet started:
        the events it emits go to the returned list."""
        sc = self.scenario
        sink = EventForwarder()
        panel = self.panel if spec.rfq else None
        world = SimWorld.build(sc, self.seed, sink, self._at_arrival.fork(), panel)
        events: list[Event] = []
        rfq = None
        if panel is not None and world.rfq is not None:
            selector: PanelSelector = (
                ml_selector(sc, panel, world, self.models, self.config_dir)
                if spec.routing == "ml"
                else desk_selector(sc, panel, self.config_dir)
            )
            rfq = dealer_routing(sc, world.rfq, selector, panel.time_limit_s)
        execution = build_execution(
            self.parent,
            slicer,
            spec,
            world_ports(world, rfq),
            self.models,
            risk=RiskGate(risk_limits(sc, name)),
            # one stream per routing tactic, not per strategy: strategies that route alike
            # draw the same exploration on the same seed (common random numbers), so a
            # paired difference such as ml - sor-ml is the schedule's and nothing else
            rng=rng_for(self.seed, f"router/{spec.routing}"),
            on_event=events.append,
            volume_rate_hint=self.history.horizon_volume / sc.horizon_s,
        )
        sink.target = execution.publish
        return world, execution, events


def risk_limits(scenario: Scenario, strategy: str) -> RiskLimits:
    """The desk's limits for a strategy's run: the defaults (in shares), the
    participation cap lifted for the hindsight oracle, and a replayed instrument's own
    size limits (its quantities are the capture's lots)."""
    limits = RiskLimits(max_participation=1.0) if strategy == HINDSIGHT else RiskLimits()
    if scenario.replay is not None:
        limits = dataclasses.replace(
            limits,
            max_child_qty=scenario.replay.max_child_qty,
            max_block_qty=scenario.replay.max_block_qty,
        )
    return limits


def world_ports(world: SimWorld, rfq: RfqRouting | None = None) -> ExecutionPorts:
    """What an execution trades through in a simulated world: all its venues, the
    scenario's fees and dark pool minimums, and the dealers if `rfq` is given."""
    sc = world.scenario
    return ExecutionPorts(
        venues=world.venues,
        fees={s.venue_id: LitFees(taker_fee=s.taker_fee, maker_fee=s.maker_fee) for s in sc.lit},
        market=WorldMarketData(world),
        clock=world.clock,
        schedule=world.kernel.schedule,
        lot_size=sc.instrument.lot_size,
        dark_min_qty={s.venue_id: s.min_qty for s in sc.dark},
        rfq=rfq,
    )


def dealer_routing(
    scenario: Scenario, channel: RfqChannel, selector: PanelSelector, time_limit_s: float
) -> RfqRouting:
    """The dealer side of an execution: the panel's RFQ venue and usual time limit, and
    the desk's impact estimate to price a block's lit alternative."""
    return RfqRouting(
        channel=channel,
        selector=selector,
        impact_bps=IMPACT_Y_ESTIMATE * scenario.market.daily_vol * 1e4,
        adv=float(scenario.instrument.adv),
        time_limit_s=time_limit_s,
    )


MODEL_VOL_WINDOW_S = 600.0  # the dealer models' volatility window (models/training/dealer_data.py)
HISTORY_DAYS = 4
HISTORY_EXPLORE = 0.3
HISTORY_PANEL_SIZES = (3, 4, 5)
DESK_EXPLORE = 0.1  # while executing a parent order
HISTORY_RFQS_PER_DAY = 80
HISTORY_SEED = 7_000_000  # the desk's past days; far from any episode's seed


DeskHistory = tuple[HeuristicPanel, DeskState]
_DESK_HISTORIES: dict[tuple[str, str, Path], DeskHistory] = {}

#: the user cache's folder of desk histories (router.cache)
DESK_HISTORY_CACHE = "desk-history"
#: bump when the desk's past days come out differently for a reason that the key below
#: cannot see (it sees the configuration, the code listed in DESK_HISTORY_CODE, numpy's
#: and numba's versions and the CPU)
DESK_HISTORY_VERSION = 1
#: the code that simulates the desk's past days and learns from them (relative to the
#: checkout): an edit of any of it makes a new key. tests/router/test_app_cache.py checks
#: that it covers every module of the project that those days import.
DESK_HISTORY_CODE = (
    "dealers",
    "simulators",
    "models/__init__.py",
    "models/serving",
    "models/training/__init__.py",
    "models/training/dealer_data.py",
    "router/__init__.py",
    "router/allocation.py",
    "router/app.py",
    "router/config.py",
    "router/domain.py",
    "router/parallel.py",
    "router/ports.py",
    "router/tca.py",
    "router/vendor_telemetry.py",
)
_ROOT = Path(__file__).resolve().parents[1]


def desk_history(
    scenario_name: str, panel_name: str, config_dir: Path = DEFAULT_CONFIG_DIR
) -> DeskHistory:
    """The desk's past days with this panel: the heuristic selector that ran them, and
    the learned models' view of the same log (models.serving.desk.DeskState). Simulated with
    fixed seeds, so the same for every caller: once per process (or handed over by
    `adopt_desk_history`), and kept in the user's cache (router.cache) for the next
    process, under a key of everything they depend on (`desk_history_key`). Callers copy
    what they change."""
    key = (scenario_name, panel_name, Path(config_dir))
    if key not in _DESK_HISTORIES:
        _DESK_HISTORIES[key] = _cached_desk_history(scenario_name, panel_name, Path(config_dir))
    return _DESK_HISTORIES[key]


def adopt_desk_history(
    scenario_name: str,
    panel_name: str,
    history: DeskHistory,
    config_dir: Path = DEFAULT_CONFIG_DIR,
) -> None:
    """Use `history`, simulated by another process (`desk_history` there: the same
    fixed seeds give the same days), instead of simulating it again in this one."""
    _DESK_HISTORIES[(scenario_name, panel_name, Path(config_dir))] = history


def desk_history_key(scenario: Scenario, panel: DealerPanel) -> str | None:
    """The cache key of a desk history: the scenario and panel as configured (their
    parsed values: a comment or a key's order in a file changes nothing), this module's
    settings of the past days, the source of the code that simulates them, and what
    else could change their numbers (numpy's random streams, numba's code, the CPU).
    None for a replayed market, whose capture lies outside the configuration: not
    cached."""
    if scenario.replay is not None:
        return None
    import platform

    import numba

    try:
        from llvmlite import binding

        cpu = binding.get_host_cpu_name()
    except Exception:  # no host CPU name: the machine's architecture must do
        cpu = ""
    return rcache.digest(
        str(DESK_HISTORY_VERSION),
        repr(scenario),
        repr(panel),
        repr((HISTORY_DAYS, HISTORY_EXPLORE, HISTORY_PANEL_SIZES, HISTORY_RFQS_PER_DAY)),
        repr(HISTORY_SEED),
        rcache.source_digest(_ROOT, DESK_HISTORY_CODE),
        np.__version__,
        numba.__version__,
        platform.machine(),
        cpu,
    )


def _cached_desk_history(scenario_name: str, panel_name: str, config_dir: Path) -> DeskHistory:
    """The user cache's desk history if it has this one (see `desk_history_key`),
    else simulated now and kept there."""
    scenario = load_scenario(scenario_name, config_dir)
    panel = load_panel(panel_name, config_dir)
    key = desk_history_key(scenario, panel)
    slot = f"{scenario_name}-{panel_name}"
    if key is not None:
        blob = rcache.read(DESK_HISTORY_CACHE, slot, key)
        if blob is not None:
            try:
                # the user's own cache, written by `_cached_desk_history` below; its
                # checksum has passed, so the bytes are those that were written
                history = pickle.loads(blob)
                selector, desk = history
                if isinstance(selector, HeuristicPanel) and isinstance(desk, DeskState):
                    return selector, desk
            except Exception as exc:  # written by another version: simulate again
                log.warning("desk history cache entry unreadable", slot=slot, error=str(exc))
    history = _simulate_desk_history(scenario, panel)
    if key is not None:
        rcache.write(
            DESK_HISTORY_CACHE, slot, key, pickle.dumps(history, protocol=pickle.HIGHEST_PROTOCOL)
        )
    return history


def _simulate_desk_history(scenario: Scenario, panel: DealerPanel) -> DeskHistory:
    # both build on this module (the RFQ days on its world; dealer_data is training
    # code that runs Episodes): module-level imports would be cycles
    from dealers.stream import run_rfq_day
    from models.training.dealer_data import rows_from_log

    # the past days asked every dealer now and then (wide exploration, varied panels),
    # so that both selectors start knowing something of each
    selector = HeuristicPanel(panel.ids, explore=HISTORY_EXPLORE)
    desk = DeskState(panel.ids, panel.name, float(scenario.instrument.adv))
    for k in range(HISTORY_DAYS):
        day = run_rfq_day(
            scenario,
            panel,
            HISTORY_SEED + k,
            HISTORY_RFQS_PER_DAY,
            selector,
            panel_size=HISTORY_PANEL_SIZES,
        )
        rows_from_log(
            day.events,
            day.path,
            desk=desk,
            start_tod_s=scenario.start_tod_s,
            axe_log=day.axe_log,
            day=k,
            sides=day.sides,
        )
    desk.new_day()
    return selector, desk


def desk_selector(
    scenario: Scenario, panel: DealerPanel, config_dir: Path = DEFAULT_CONFIG_DIR
) -> HeuristicPanel:
    """Panel selection as the desk would start a parent order: having seen its dealers
    answer on past days (`desk_history`, of the scenario and panel as configured in
    `config_dir`), learning on."""
    selector = desk_history(scenario.name, panel.name, config_dir)[0].copy()
    selector.explore = DESK_EXPLORE
    return selector


def ml_selector(
    scenario: Scenario,
    panel: DealerPanel,
    world: SimWorld,
    models: ModelRegistry | LiveModels = MODELS,
    config_dir: Path = DEFAULT_CONFIG_DIR,
) -> MlPanel:
    """Model-guided panel selection over this world's screen, from the desk's history."""
    market = world.market
    tick = scenario.instrument.tick_size
    offsets = np.arange(-MODEL_VOL_WINDOW_S, 1e-9, 10.0)

    cache: dict[int, MarketContext] = {}

    def context() -> MarketContext:
        now = world.clock.now_ns()
        if now in cache:
            return cache[now]
        now_s = now / NANOS_PER_SECOND
        recent = PricePath(*market.top_of_book(now_s - MODEL_VOL_WINDOW_S - 1.0))
        mids = [float(m) for m in recent.mids_at(now_s + offsets)]
        snap = market.snapshot(now)
        bid = None if snap.bid_ticks is None else snap.bid_ticks * tick
        ask = None if snap.ask_ticks is None else snap.ask_ticks * tick
        tod = (scenario.start_tod_s + now / NANOS_PER_SECOND - SESSION_OPEN_S) / SESSION_S
        cache.clear()  # one decision at a time: keep only the latest
        cache[now] = MarketContext.from_mids(mids, bid, ask, tod)
        return cache[now]

    def mid_at(ts_ns: int) -> float:
        return market.mid_at(ts_ns) * tick

    dealer_models = models.dealer_models()
    desk = copy.deepcopy(desk_history(scenario.name, panel.name, config_dir)[1])
    assert world.rfq is not None
    # a live desk's views (router.registry.LiveModels) carry its drift fallback, and
    # its drift monitor wants the panel asked scored
    live = models if isinstance(models, LiveModels) else None
    return MlPanel(
        dealer_models,
        desk,
        context,
        mid_at,
        axes=world.rfq.axes,
        withdrawn=None if live is None else live.withdrawal,
        monitored=live is not None,
    )


def run_strategy(scenario: Scenario, seed: int, strategy: str) -> tuple[StrategyRun, float]:
    """One strategy on one episode; returns (run, arrival mid)."""
    episode = Episode(scenario, seed)
    return episode.run(strategy), episode.arrival_mid


def simulate(
    scenario: Scenario,
    strategies: Sequence[str],
    seed: int,
    progress: Callable[[str], None] | None = None,
    hindsight: bool = True,
    limit_price: float | None = None,
    config_dir: Path = DEFAULT_CONFIG_DIR,
    workers: int = 1,
) -> SimulationReport:
    """Every strategy of `strategies`, then the hindsight oracle, on one path of
    `scenario` (read from `config_dir`). With `workers` > 1 the strategies run on that
    many processes, each a fork of this one holding the path already built; the
    report is the same as with one (each run starts from the shared market at arrival
    and touches nothing the others read). `progress(name)` is called as each run
    starts, or with workers, once the runs before it have come back."""
    check_strategies(strategies)
    episode = Episode(scenario, seed, limit_price, config_dir=config_dir)
    names = [*strategies, *([HINDSIGHT] if hindsight else [])]
    done = _run_strategies(episode, names, workers, progress)
    runs, oracle = done[: len(strategies)], (done[-1] if hindsight else None)
    return SimulationReport(
        scenario=scenario.name,
        seed=seed,
        parent=ParentSpec(
            scenario.instrument.symbol, scenario.side, scenario.qty, scenario.horizon_s
        ),
        arrival_mid=episode.arrival_mid,
        results=tuple(runs),
        hindsight=oracle,
        unimpacted=episode.unimpacted_path,
        venue_kinds=episode.venue_kinds,
        phases=tuple((ph.start_s, ph.end_s) for ph in scenario.phases),
    )


# the episode that `_run_strategies` hands its forked workers (module state: a fork
# inherits it; pickling the built market to each worker would cost more than a run)
_SHARED_EPISODE: Episode | None = None


def _run_strategies(
    episode: Episode,
    names: Sequence[str],
    workers: int,
    progress: Callable[[str], None] | None,
) -> list[StrategyRun]:
    """`[episode.run(n) for n in names]`, on up to `workers` forked processes (one,
    in this process, where the platform does not fork)."""
    global _SHARED_EPISODE

    def next_one(done: int, total: int) -> None:
        if progress is not None and done < total:
            progress(names[done])

    if "fork" not in mp.get_all_start_methods():
        workers = 1
    next_one(0, len(names))
    _SHARED_EPISODE = episode
    try:
        return ordered_map(_run_shared, names, workers, progress=next_one, fork=True)
    finally:
        _SHARED_EPISODE = None


def _run_shared(name: str) -> StrategyRun:
    assert _SHARED_EPISODE is not None, "a worker forked by _run_strategies"
    return _SHARED_EPISODE.run(name)


# ------------------------------------------------------------------ the learned slicer

SLICER_STRATEGY = "ml"  # the strategy the learned slicer serves (router.strategies)


@dataclass(frozen=True, slots=True)
class SlicerStep:
    """What one policy step did: the fills reported during it and where it stopped."""

    fills: tuple[ChildOrderFilled, ...]
    now_ns: int  # the next query's time, or the horizon
    done: bool  # the horizon is over: the final sweep and the finish have run


class _Closed(BaseException):
    """Unwinds a suspended run that nobody will resume (BaseException: nothing in the
    engine may catch it)."""


class ExecutionStepper:
    """One parent order of the `ml` strategy (model-guided routing with the dealer panel,
    on a `PacedSlicer`), run one policy query at a time: the engine room of the
    execution environment (models/training/execenv.py, training code above this module).

    The run is exactly `Episode(scenario, seed).run("ml")` with the policy's answers
    supplied from outside: the kernel runs on a worker thread and is suspended inside
    the slicer's policy call, so `observe()` is the very observation the slicer built at
    that decision (the first at the parent's arrival, then every `step_s`), and
    `advance(action)` returns `action` from that call and runs the world to the next
    query, or through the horizon (final sweep and finish) after the last one. Only one
    of the two threads runs at a time, handing over through queues, so a seed gives the
    same fills byte for byte. (Stopping the kernel just before the query instead would
    not give the same run: the market's catch-up to the decision time can discover
    passive fills whose reports the kernel delivers after the decision, and stopping
    early delivers them before it.)

    `close()` ends a run left unfinished (else its thread and world stay in memory).
    """

    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        step_s: float = STEP_S,
        episode: Episode | None = None,
    ) -> None:
        # `episode`: one of this scenario and seed to share with another stepper (a
        # paired run): its market at arrival is forked, not simulated again
        self.episode = episode if episode is not None else Episode(scenario, seed)
        if self.episode.scenario != scenario or self.episode.seed != seed:
            raise DomainError("a shared episode must be of the same scenario and seed")
        self.parent = self.episode.parent
        self.arrival_mid = self.episode.arrival_mid
        self.slicer = PacedSlicer(self.episode.history, self._answer, step_s)
        self.world, self.execution, self.events = self.episode._wire(
            SLICER_STRATEGY, self.slicer, strategy_spec(SLICER_STRATEGY)
        )
        self._to_kernel: queue.SimpleQueue[float | None] = queue.SimpleQueue()
        self._to_env: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._obs: np.ndarray | None = None  # the pending query's observation
        self._n_fills = 0
        self._thread = threading.Thread(target=self._run, name="execution-stepper", daemon=True)
        self._thread.start()
        self._receive()

    # the kernel's thread

    def _run(self) -> None:
        try:
            self.execution.start()
            self.world.kernel.run_until(self.parent.end_ns)
        except _Closed:
            return
        except BaseException as exc:  # handed to the caller, raised there
            self._to_env.put(("error", exc))
            return
        self._to_env.put(("done", None))

    def _answer(self, obs: np.ndarray) -> float:
        """The slicer's policy: hand the observation over, wait for the action."""
        self._to_env.put(("query", np.array(obs, dtype=np.float32)))
        action = self._to_kernel.get()
        if action is None:
            raise _Closed
        return action

    # the caller's thread

    def _receive(self) -> None:
        kind, payload = self._to_env.get()
        if kind == "error":
            self._obs = None
            raise payload
        self._obs = payload if kind == "query" else None

    @property
    def done(self) -> bool:
        return self._obs is None

    def observe(self) -> np.ndarray:
        """The slicer's observation at the pending query (float32, OBS_SIZE)."""
        if self._obs is None:
            raise DomainError("the parent's horizon is over: no more observations")
        return self._obs.copy()

    def advance(self, action: float) -> SlicerStep:
        """Answer the pending query with `action`; run to the next one (or the end)."""
        if self._obs is None:
            raise DomainError("the parent's horizon is over: nothing to advance")
        self._to_kernel.put(float(action))
        self._receive()
        fills = self.execution.result.fills
        new = tuple(fills[self._n_fills :])
        self._n_fills = len(fills)
        return SlicerStep(new, self.world.clock.now_ns(), self.done)

    def close(self) -> None:
        """Abandon the run if it is suspended at a query; wait for its thread."""
        if self._obs is not None and self._thread.is_alive():
            self._obs = None
            self._to_kernel.put(None)
        self._thread.join()

    def __enter__(self) -> ExecutionStepper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def mid(self) -> float | None:
        """The consolidated lit mid now (at the pending query), None if one-sided."""
        mid = self.world.market.mid_ticks()
        return None if mid is None else mid * self.world.scenario.instrument.tick_size

    def end_mid(self) -> float:
        """The mid at the horizon as the TCA reads it."""
        if not self.done:
            raise DomainError("the horizon is not over yet")
        return price_path(self.world.market).mid_at(self.episode.end_s)

    def tca(self) -> TcaReport:
        """The run's TCA as `Episode.run` computes it, without the unimpacted path (so
        impact is not told from timing; IS and its other parts are the same)."""
        if not self.done:
            raise DomainError("the horizon is not over yet")
        parent, market = self.parent, self.world.market
        vwap = market_vwap(market, 0, parent.end_ns)
        market.advance_to(parent.end_ns + int(MARKOUT_TAIL_S * NANOS_PER_SECOND))
        result = self.execution.result
        return analyze(
            parent.side,
            parent.qty,
            self.arrival_mid,
            self.episode.end_s,
            result.fills,
            result.children,
            price_path(market),
            None,
            self.episode.venue_kinds,
            vwap,
        )
