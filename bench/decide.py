"""Latency of one model-guided routing decision (`blockroute bench decide`).

One decision of the `ml` strategy at a re-plan: the learned slicer builds its
observation and the ONNX policy sets the pace, the fill model scores joining each lit
venue's queue (after reading the market's recent past from the feed), and the dealer
models choose an RFQ panel (each candidate panel's rows built from the desk's state and
scored). Measured on a real mid-episode state: an `ml`
run on news-shock is paused one hour in (inside a kernel event, so the world stands
still) and a selector, the fill model and a slicer that has followed the run from its
start are timed on the snapshot the engine sees there. Each timed decision starts cold,
as if an RFQ event had just arrived: the desk's per-dealer memory is dropped first. The
garbage collector is set as `blockroute serve` sets it (`router.service.tune_gc`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from router.app import Episode, WorldMarketData, ml_selector
from router.domain import NANOS_PER_SECOND, DomainError, ParentOrder, Side, VenueId
from router.execution import PlanConfig
from router.execution.signals import recent_market
from router.ports import ExecutionState, PassiveOrderContext, RecentMarket
from router.service import tune_gc
from router.strategies.learned import PacedSlicer
from simulators.scenario import load_scenario
from simulators.world import SimWorld

SEED = 42
AT_S = 3600.0  # the decision timed: one hour into the parent (news-shock: the news)
WARMUP = 50  # calls before timing: compiled code, caches, ONNX Runtime's first runs
#: the timed parts, each with its percentiles in the result (desk_refresh: the desk's
#: work at an RFQ event, outside the decision)
PARTS = (
    "slicer",
    "onnx_policy",
    "fill_model",
    "dealer_panel",
    "no_rfq",
    "decision",
    "desk_refresh",
)


def run_decide_bench(iterations: int = 2000, scenario: str = "news-shock") -> dict[str, Any]:
    sc = load_scenario(scenario)
    episode = Episode(sc, SEED)
    if episode.panel is None:
        raise DomainError(f"scenario {scenario!r} has no dealer panel: nothing to choose")
    # the ONNX policy timed whether or not `ml` serves it yet (`promotion`): this is the
    # latency it would add; a missing policy fails here, before the simulation
    policy = episode.models.shipped_slicer_policy()
    parent = episode.parent
    at_ns = min(int(AT_S * NANOS_PER_SECOND), parent.horizon_ns // 2)
    slicer = PacedSlicer(episode.history, policy)
    doc: dict[str, Any] = {}

    def measure(world: SimWorld, state: ExecutionState) -> None:
        doc.update(_time_decision(episode, world, slicer, state, iterations))

    episode.run("ml", on_world=lambda w: _follow(w, parent, slicer, at_ns, measure))
    if not doc:
        raise RuntimeError(f"the run ended before {at_ns / NANOS_PER_SECOND:g} s")
    return {"at_s": at_ns / NANOS_PER_SECOND, **doc}


def _follow(
    world: SimWorld,
    parent: ParentOrder,
    slicer: PacedSlicer,
    at_ns: int,
    then: Callable[[SimWorld, ExecutionState], None],
) -> None:
    """Drive `slicer` at every decision time of the run up to `at_ns` (as if its targets
    were filled), then call `then` with the state there."""
    interval = int(PlanConfig().decision_interval_s * NANOS_PER_SECOND)
    filled = 0

    def step(t: int) -> None:
        nonlocal filled
        snap = world.market.snapshot(t)
        state = ExecutionState(parent, t, filled, snap)
        filled = slicer.target_filled(state)
        if t >= at_ns:
            then(world, state)
        else:
            world.kernel.schedule(min(t + interval, at_ns), lambda: step(world.clock.now_ns()))

    world.kernel.schedule(parent.start_ns, lambda: step(world.clock.now_ns()))


def _time_decision(
    episode: Episode, world: SimWorld, slicer: PacedSlicer, state: ExecutionState, n: int
) -> dict[str, Any]:
    assert episode.panel is not None
    selector = ml_selector(episode.scenario, episode.panel, world, episode.models)
    fill = episode.models.fill_model()
    snap = state.market

    feed = WorldMarketData(world)

    def recent() -> RecentMarket:  # as the engine reads it for a decision
        return recent_market(feed, snap, Side.SELL, 40.0)

    recent_now = recent()
    # what the engine asks the fill model: P(fill) of joining each venue's queue, in one
    # call (an improving price has nobody ahead, and its prior needs no model)
    options = [
        PassiveOrderContext(
            venue=VenueId(q.venue),
            dark=False,
            improve=False,
            side=Side.SELL,
            spread_ticks=float(snap.spread_ticks or 1),
            queue_ahead=float(q.ask_qty),
            qty=1_400.0,
            depth_ours=float(snap.ask_depth),
            depth_other=float(snap.bid_depth),
            venue_share=q.ask_depth / max(snap.ask_depth, 1),
            volume_rate=40.0,
            vol_bps=3.0,
            recent=recent_now,
        )
        for q in snap.venues
        if q.ask_ticks is not None and q.ask_qty > 0
    ]
    rng = np.random.default_rng(0)
    policy = slicer.policy
    tune_gc()  # as the service runs its decisions
    for _ in range(WARMUP):
        policy(slicer.obs.observe(state))
        fill.p_fill(options)
        selector.select(Side.SELL, 125_000, 4, rng)
    parts: dict[str, list[float]] = {k: [] for k in PARTS}
    clock = time.perf_counter
    desk = selector.desk
    for _ in range(n):
        desk.forget()  # as if an RFQ event had just been learned
        t0 = clock()
        desk.refresh()
        parts["desk_refresh"].append((clock() - t0) * 1e6)
        t0 = clock()
        obs = slicer.obs.observe(state)
        t1 = clock()
        policy(obs)
        t2 = clock()
        recent()
        fill.p_fill(options)
        t3 = clock()
        selector.select(Side.SELL, 125_000, 4, rng)
        t4 = clock()
        parts["slicer"].append((t2 - t0) * 1e6)
        parts["onnx_policy"].append((t2 - t1) * 1e6)
        parts["fill_model"].append((t3 - t2) * 1e6)
        parts["dealer_panel"].append((t4 - t3) * 1e6)
        parts["no_rfq"].append((t3 - t0) * 1e6)  # a decision that sends no RFQ
        parts["decision"].append((t4 - t0) * 1e6)
    stats = {k: _percentiles(v) for k, v in parts.items()}
    return {
        "n": n,  # CONTRACT.md's keys: the whole decision
        "p50_us": stats["decision"]["p50_us"],
        "p99_us": stats["decision"]["p99_us"],
        "iterations": n,
        "lit_options": len(options),
        "dealers": len(episode.panel.dealers),
        **stats,
    }


def _percentiles(xs: list[float]) -> dict[str, float]:
    s = sorted(xs)
    return {
        "p50_us": statistics.median(s),
        "p99_us": s[min(len(s) - 1, int(0.99 * len(s)))],
        "p999_us": s[min(len(s) - 1, int(0.999 * len(s)))],
        "max_us": s[-1],
    }
