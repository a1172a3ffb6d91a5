"""Latency of one model-guided routing decision (`blockroute bench decide`).

One decision of `ml` routing at a re-plan: the fill model scores the lit venues' passive
options, and the dealer models choose an RFQ panel (each candidate panel's rows built
from the desk's state and scored). Measured on a real mid-episode state: an `sor-ml`
run on news-shock is stopped after its first hour and its own selector and fill model
are timed on the snapshot the engine would see.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from router.app import Episode, _served_models, ml_selector
from router.domain import NANOS_PER_SECOND, Side, VenueId
from router.ports import PassiveOrderContext
from simulators.scenario import load_scenario
from simulators.world import SimWorld


def run_decide_bench(iterations: int = 2000, scenario: str = "news-shock") -> dict[str, Any]:
    sc = load_scenario(scenario)
    episode = Episode(sc, 42)
    assert episode.panel is not None
    worlds: list[SimWorld] = []
    episode.run("sor-ml", on_world=worlds.append)  # a desk state that has seen a run
    world = worlds[0]
    selector = ml_selector(sc, episode.panel, world)
    _, fill = _served_models()
    world.kernel.run_until(int(3600 * NANOS_PER_SECOND))
    snap = world.market.snapshot(world.clock.now_ns())
    options = [
        PassiveOrderContext(
            venue=VenueId(q.venue),
            dark=False,
            improve=improve,
            side=Side.SELL,
            spread_ticks=float(snap.spread_ticks or 1),
            queue_ahead=float(q.ask_qty if not improve else 0),
            qty=1_400.0,
            depth_ours=float(snap.ask_depth),
            depth_other=float(snap.bid_depth),
            venue_share=q.ask_depth / max(snap.ask_depth, 1),
            volume_rate=40.0,
            vol_bps=3.0,
        )
        for q in snap.venues
        for improve in (False, True)
    ]
    rng = np.random.default_rng(0)
    for _ in range(50):  # warm the compiled code and caches
        fill.p_fill(options)
        selector.select(Side.SELL, 125_000, 4, rng)
    fill_us, panel_us, total_us = [], [], []
    for _ in range(iterations):
        t0 = time.perf_counter()
        fill.p_fill(options)
        t1 = time.perf_counter()
        selector.select(Side.SELL, 125_000, 4, rng)
        t2 = time.perf_counter()
        fill_us.append((t1 - t0) * 1e6)
        panel_us.append((t2 - t1) * 1e6)
        total_us.append((t2 - t0) * 1e6)

    def pct(xs: list[float]) -> dict[str, float]:
        s = sorted(xs)
        return {
            "p50_us": statistics.median(s),
            "p99_us": s[min(len(s) - 1, int(0.99 * len(s)))],
            "max_us": s[-1],
        }

    return {
        "iterations": iterations,
        "lit_options": len(options),
        "dealers": len(episode.panel.dealers),
        "fill_model": pct(fill_us),
        "dealer_panel": pct(panel_us),
        "decision": pct(total_us),
    }
