"""Stylised facts of the simulated market: the square-root law of metaorder impact, its
partial decay, and the tails and autocorrelation of 1-minute returns.

Method (paired, so the background noise cancels): for each seed, run the scenario once
without any client order (baseline) and once per metaorder size with a TWAP metaorder
of Q shares over `duration_s`, on the same seed. Impact at time t is
side * (mid_with(t) - mid_without(t)) / arrival mid, averaged over seeds. The exponent
is the least-squares slope of log(mean impact at the metaorder's end) on log(Q/ADV).
Decay is mean impact `duration_s` and 2*`duration_s` after the end, relative to peak.
Return statistics come from the baselines' 1-minute mid returns over the horizon.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from router.app import EventForwarder, world_ports
from router.domain import NANOS_PER_SECOND, ParentId, ParentOrder, Side
from router.execution import build_execution
from router.risk import RiskGate, RiskLimits
from router.strategies import strategy_spec
from router.strategies.twap import TwapSlicer
from simulators.scenario import Scenario, load_scenario
from simulators.world import SimWorld

DEFAULT_SIZES = (0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)


def _mid_path(
    scenario: Scenario, seed: int, qty: int, side: Side, duration_s: float, until_s: float
) -> tuple[np.ndarray, np.ndarray]:
    sink = EventForwarder()
    world = SimWorld.build(scenario, seed, sink)
    if qty > 0:
        parent = ParentOrder(
            ParentId("metaorder"),
            scenario.instrument.symbol,
            side,
            qty,
            0,
            int(duration_s * NANOS_PER_SECOND),
        )
        ex = build_execution(
            parent,
            TwapSlicer(),
            strategy_spec("twap"),
            world_ports(world),
            # a study of impact, not of risk limits: metaorders may be any share of volume
            risk=RiskGate(RiskLimits(max_participation=1.0)),
        )
        sink.target = ex.publish
        ex.start()
    world.kernel.run_until(int(until_s * NANOS_PER_SECOND))
    return world.market.grid.step_time_s(), world.market.mid_path()


def _at(times: np.ndarray, mids: np.ndarray, t: float) -> float:
    i = int(np.searchsorted(times, t))
    window = mids[max(0, i - 5) : i + 5]  # +-0.5 s around t: robust to a one-sided instant
    return float(np.nanmean(window))


def run_impact_study(
    scenario_name: str = "calm",
    seeds: int = 20,
    sizes: Sequence[float] = DEFAULT_SIZES,
    duration_s: float = 1800.0,
    config_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    scenario = (
        load_scenario(scenario_name, config_dir) if config_dir else load_scenario(scenario_name)
    )
    adv = scenario.instrument.adv
    lot = scenario.instrument.lot_size
    side = Side.SELL
    until = min(3 * duration_s, scenario.horizon_s)
    marks = (duration_s, 2 * duration_s, until)
    impacts = np.zeros((len(sizes), seeds, len(marks)))
    returns: list[np.ndarray] = []
    total = seeds * (len(sizes) + 1)
    done = 0
    for s in range(seeds):
        times, base = _mid_path(scenario, s, 0, side, duration_s, until)
        arrival = _at(times, base, 0.0)
        minute = base[(times > 0) & (times <= scenario.horizon_s)][9::600]
        returns.append(np.diff(np.log(minute[~np.isnan(minute)])))
        done += 1
        for k, frac in enumerate(sizes):
            qty = max(lot, int(frac * adv) // lot * lot)
            t2, with_order = _mid_path(scenario, s, qty, side, duration_s, until)
            for j, t in enumerate(marks):
                diff = _at(t2, with_order, t) - _at(times, base, t)
                impacts[k, s, j] = side.sign * diff / arrival
            done += 1
            if progress:
                progress(done, total)
    mean = impacts.mean(axis=1)  # sizes x marks
    stderr = impacts.std(axis=1, ddof=1) / math.sqrt(seeds)
    peak = mean[:, 0]
    x = np.log(np.asarray(sizes))
    ok = peak > 0
    slope, intercept = np.polyfit(x[ok], np.log(peak[ok]), 1)
    # above ~1% ADV the metaorder dominates the background's own net imbalance; below,
    # the response to it is linear (as latent-liquidity theory predicts for small Q)
    big = ok & (np.asarray(sizes) >= 0.01)
    slope_big = float(np.polyfit(x[big], np.log(peak[big]), 1)[0]) if big.sum() >= 2 else None
    daily_vol = scenario.market.daily_vol
    r = np.concatenate(returns)
    r = r - r.mean()
    kurt = float(np.mean(r**4) / np.mean(r**2) ** 2 - 3.0)
    ac = [float(np.corrcoef(x_[:-1], x_[1:])[0, 1]) for x_ in returns if len(x_) > 3]
    return {
        "scenario": scenario_name,
        "seeds": seeds,
        "duration_s": duration_s,
        "rows": [
            {
                "q_over_adv": frac,
                "impact_bps": 1e4 * float(mean[k, 0]),
                "impact_stderr_bps": 1e4 * float(stderr[k, 0]),
                "impact_over_sigma": float(mean[k, 0]) / daily_vol,
                "after_1x_bps": 1e4 * float(mean[k, 1]),
                "after_2x_bps": 1e4 * float(mean[k, 2]),
            }
            for k, frac in enumerate(sizes)
        ],
        "exponent": float(slope),
        "exponent_above_1pct_adv": slope_big,
        "prefactor_y": float(math.exp(intercept)) / daily_vol,
        "decay_ratio_1x": float(mean[ok, 1].sum() / peak[ok].sum()),
        "decay_ratio_2x": float(mean[ok, 2].sum() / peak[ok].sum()),
        "returns_1min": {
            "n": int(r.size),
            "std_bps": 1e4 * float(r.std()),
            "excess_kurtosis": kurt,
            "lag1_autocorr": float(np.mean(ac)),
            "lag1_autocorr_stderr": float(np.std(ac, ddof=1) / math.sqrt(len(ac))),
        },
    }
