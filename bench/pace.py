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

`rules` adds paces that react to the market as it unfolds (`RULES`), each a plain
function of the observation the slicer's policy gets (router.strategies.learned
OBS_NAMES), so that a gain they find is one a learned policy could find too: after a
jump, whose direction is known once it has happened, follow it (the news-shock's
decline goes on for an hour after its jump); lag while the spread is wide (the
squeeze's thin hours); follow the move since arrival (a trend).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from router.app import Episode, ExecutionStepper
from router.domain import Side
from router.strategies.learned import OBS_NAMES
from simulators.scenario import load_scenario

ACTIONS = (-1.0, -0.5, 0.0, 0.5, 1.0)
SEED0 = 1000  # the held-out evaluation seeds: rows comparable with `backtest`'s sor-ml

Progress = Callable[[int, int], None]
#: a pace: the slicer's action in [-1, 1] from its observation, at each of its steps
Pace = Callable[[np.ndarray], float]

_RETURN_5M, _SPREAD, _VS_ARRIVAL = (
    OBS_NAMES.index(name) for name in ("return_5m", "spread", "price_vs_arrival")
)
JUMP_SIGMAS = 3.0  # a 5-minute move this many of its sigmas is taken for a jump
JUMP_FOLLOW_STEPS = 6  # steps (5 minutes each) the pace follows a jump: half an hour


class _JumpFollow:
    """After the episode's first jump (`JUMP_SIGMAS`), the full pace for half an hour:
    leading the TWAP line if the jump went against the parent, lagging it if it went the
    parent's way; the TWAP line before and after."""

    def __init__(self) -> None:
        self._direction = 0.0  # +1: the jump went the parent's way (features are signed so)
        self._steps = 0

    def __call__(self, obs: np.ndarray) -> float:
        move = float(obs[_RETURN_5M])
        if self._direction == 0.0 and abs(move) > JUMP_SIGMAS:
            self._direction = math.copysign(1.0, move)
        if self._direction == 0.0 or self._steps >= JUMP_FOLLOW_STEPS:
            return 0.0
        self._steps += 1
        return -self._direction


def _spread_lag(obs: np.ndarray) -> float:
    """Lag the TWAP line while the spread is wider than usual (log ratio), lead it while
    narrower: half the log ratio, clipped."""
    return float(np.clip(-0.5 * obs[_SPREAD], -1.0, 1.0))


def _trend_follow(obs: np.ndarray) -> float:
    """Lead the TWAP line when the price has moved against the parent since arrival (in
    sigmas of the time elapsed), lag it when the move went its way: 0.3 of it, clipped."""
    return float(np.clip(-0.3 * obs[_VS_ARRIVAL], -1.0, 1.0))


#: the reactive paces by name, each made new for an episode (a rule may keep state)
RULES: dict[str, Callable[[], Pace]] = {
    "jump-follow": _JumpFollow,
    "spread-lag": lambda: _spread_lag,
    "trend-follow": lambda: _trend_follow,
}


def check_rules(rules: Sequence[str]) -> None:
    """ValueError naming every name of `rules` that is not in `RULES`, and those that are."""
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise ValueError(f"unknown pace rule {', '.join(unknown)}; known: {', '.join(RULES)}")


def _run(episode: Episode, pace: Pace) -> float:
    with ExecutionStepper(episode.scenario, episode.seed, episode=episode) as stepper:
        while not stepper.done:
            stepper.advance(pace(stepper.observe()))
        return stepper.tca().is_bps


def _fixed(action: float) -> Pace:
    return lambda _obs: action


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
    rules: Sequence[str] = (),
) -> dict[str, Any]:
    """IS per fixed action, paired against a = 0, and the per-episode hindsight best,
    for `seeds` seeds from `seed0` on both sides of each scenario; with `rules` (names
    in `RULES`), each of those reactive paces paired against a = 0 too (the hindsight
    best stays that of the fixed actions)."""
    if 0.0 not in actions:
        raise ValueError("the actions must include 0 (the TWAP line: sor-ml)")
    check_rules(rules)
    total, done = len(scenarios) * seeds * 2, 0
    out: dict[str, Any] = {
        "actions": list(actions),
        "rules": list(rules),
        "seeds": seeds,
        "seed0": seed0,
        "rows": [],
    }
    paces = [_fixed(a) for a in actions]
    n_fixed = len(paces)
    for name in scenarios:
        base = load_scenario(name)
        costs: dict[str, list[list[float]]] = {Side.BUY.value: [], Side.SELL.value: []}
        for seed in range(seed0, seed0 + seeds):
            for side in (Side.BUY, Side.SELL):
                # the market never reads the parent's side: the same seed, the same market
                episode = Episode(dataclasses.replace(base, side=side), seed)
                runs = [_run(episode, pace) for pace in paces]
                runs += [_run(episode, RULES[r]()) for r in rules]
                costs[side.value].append(runs)
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
            row["by_rule"] = [
                {
                    "rule": r,
                    "is": mean_stderr(c[:, n_fixed + k]),
                    "vs_even_pace": mean_stderr(c[:, n_fixed + k] - c[:, zero]),
                }
                for k, r in enumerate(rules)
            ]
            best = c[:, :n_fixed].min(axis=1)
            row["hindsight_best"] = {
                "is": mean_stderr(best),
                "vs_even_pace": mean_stderr(best - c[:, zero]),
            }
            out["rows"].append(row)
    return out
