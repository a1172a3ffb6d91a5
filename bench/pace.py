"""How much can timing alone be worth? The learned slicer's ceiling, measured.

The `ml` strategy is sor-ml's model-guided routing with a learned pace: at each of its
decisions the slicer's policy answers an action in [-1, 1] that leads (> 0) or lags
(< 0) the TWAP line (router.strategies.learned.PacedSlicer; 0 is the TWAP line, which
is sor-ml). This study runs the same routing with a few fixed actions on the same
markets, both sides of every seed, and reports:

- per fixed action, the mean IS and its paired difference against a = 0 (sor-ml): what
  a scenario-aware constant pace could earn; any policy that recognises the regime
  from market data can do at least as well as the best of these;
- the hindsight choice, per episode the best of the fixed actions: a ceiling on what a
  policy restricted to those paces could earn, since it picks with the episode's
  outcome in hand (a real policy sees the market only up to each decision). It is
  biased upward by the noise it selects on: with K paths of equal expected cost, the
  best of K is below their mean by about sd x E[max of K normals], not by skill.

If the hindsight ceiling is itself within a few bps of sor-ml, no causal pace can beat
sor-ml by a significant margin on a few hundred episodes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from router.app import Episode, ExecutionStepper
from router.domain import Side
from simulators.scenario import load_scenario

ACTIONS = (-1.0, -0.5, 0.0, 0.5, 1.0)
SEED0 = 1000  # the held-out evaluation seeds: rows comparable with `backtest`'s sor-ml

Progress = Callable[[int, int], None]


def _run(episode: Episode, action: float) -> float:
    with ExecutionStepper(episode.scenario, episode.seed, episode=episode) as stepper:
        while not stepper.done:
            stepper.advance(action)
        return stepper.tca().is_bps


def mean_stderr(x: np.ndarray) -> dict[str, float | None]:
    """Mean and standard error (None for one value), in bps: a study's cell."""
    se = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else None
    return {"mean_bps": float(x.mean()), "stderr_bps": se}


def run_pace_study(
    scenarios: Sequence[str],
    seeds: int,
    actions: Sequence[float] = ACTIONS,
    seed0: int = SEED0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """IS per fixed action, paired against a = 0, and the per-episode hindsight best,
    for `seeds` seeds from `seed0` on both sides of each scenario."""
    if 0.0 not in actions:
        raise ValueError("the actions must include 0 (the TWAP line: sor-ml)")
    total, done = len(scenarios) * seeds * 2, 0
    out: dict[str, Any] = {"actions": list(actions), "seeds": seeds, "seed0": seed0, "rows": []}
    for name in scenarios:
        base = load_scenario(name)
        costs: dict[str, list[list[float]]] = {Side.BUY.value: [], Side.SELL.value: []}
        for seed in range(seed0, seed0 + seeds):
            for side in (Side.BUY, Side.SELL):
                # the market never reads the parent's side: the same seed, the same market
                episode = Episode(dataclasses.replace(base, side=side), seed)
                costs[side.value].append([_run(episode, a) for a in actions])
                done += 1
                if progress is not None:
                    progress(done, total)
        zero = list(actions).index(0.0)
        for side_name, table in (*costs.items(), ("both", costs["buy"] + costs["sell"])):
            c = np.asarray(table)
            row: dict[str, Any] = {"scenario": name, "side": side_name, "episodes": len(c)}
            row["by_action"] = [
                {
                    "action": a,
                    "is": mean_stderr(c[:, k]),
                    "vs_even_pace": mean_stderr(c[:, k] - c[:, zero]),
                }
                for k, a in enumerate(actions)
            ]
            best = c.min(axis=1)
            row["hindsight_best"] = {
                "is": mean_stderr(best),
                "vs_even_pace": mean_stderr(best - c[:, zero]),
            }
            out["rows"].append(row)
    return out
