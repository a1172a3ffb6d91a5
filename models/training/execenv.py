"""The execution environment of the learned slicer (gymnasium).

One episode is one parent order run by the `ml` strategy: the model-guided router
(passive, dark, taking, the dealer panel by RFQ, the fill model) on a `PacedSlicer`
whose policy is the agent. One step is one policy query, every `STEP_S` (5 minutes) of
simulated time from the parent's arrival: `reset` returns the slicer's observation at
arrival, `step(action)` answers the pending query with `action` (the pace, in [-1, 1])
and runs the world to the next query, or through the horizon after the last one.

The observation is the one the slicer itself builds at that decision
(router.strategies.learned.ObservationBuilder): the world runs in the composition root's
`ExecutionStepper` (router/app.py). This module is training code, above the composition
root (the import contract in pyproject.toml): the simulators know nothing of the
router that trades on them. A seed gives the same episode as `blockroute backtest`
running the `ml` strategy on the same (drawn) scenario, action for action.

Regimes: each reset draws the scenario from the six regimes and randomises the parent
and the market (`RegimeRanges`, all draws in `draw_regime` from a generator derived from
the episode's seed). The draw is direction-neutral: every configured scenario drifts
against its parent (news-shock sells into bad news, trending buys into a rally), so the
parent's side is drawn buy or sell 50/50, and independently the market either runs as
configured or mirrored (every phase's jump, drift and buying pressure reversed, its thin
side of the book on the other side), 50/50. Otherwise a policy could learn "get out
now" from the scenario alone. The agent never sees any of it: the draw goes into `info`
for analysis only.

Reward (`reward="arrival"`): minus the implementation shortfall of the step's fills
against the arrival mid, in bps of the parent's notional (side-signed, fees included),
divided by `reward_scale`; after the horizon, what is still unfilled is charged at the
horizon's mid (as router.tca does) plus `unfilled_penalty_bps` of its notional. So the
sum of an episode's rewards is -(IS + penalty) / reward_scale, IS exactly router.tca's.

`reward="mark"` adds the potential-based shaping Phi(s') - Phi(s) with Phi = minus the
cost of the unfilled rest at the current mid (mark to market): a step is then charged
its fills against the mid at its start and the move of the mid on what it still holds,
so the price path before a decision no longer weighs on the rewards after it. Phi is 0
at arrival (mid = arrival mid) and after the horizon (nothing held), so the sum of the
rewards, and the best policy, stay the same (Ng, Harada and Russell, 1999).

`reward="paired"` runs the even pace (a = 0: the TWAP line, so sor-ml) on the same episode beside
the agent, step for step, and rewards the difference of the two marked rewards: the
market's own moves, which dwarf what pacing can change, mostly cancel (only the
difference of the two inventories is exposed to them). The sum of an episode's rewards
is then -((IS + penalty) - (IS + penalty of the even pace)) / reward_scale, and the
best policy is the same (the even pace's IS does not depend on the agent's actions).
It costs a second simulation per episode.

Seeds: an episode's simulator seed is the seed given to `reset` (then the next ones,
`seed_stride` apart, for resets without a seed). Seeds 1000-1999 are the held-out
evaluation episodes and are refused.
"""

from __future__ import annotations

import dataclasses
import gc
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from router import app
from router.domain import Side
from router.strategies.learned import CLIP, OBS_SIZE, STEP_S
from simulators.kernel import rng_for
from simulators.scenario import SESSION_CLOSE_S, Phase, Scenario, load_scenario, mirrored

if TYPE_CHECKING:
    from router.app import ExecutionStepper, SlicerStep
    from router.domain import ChildOrderFilled
    from router.tca import TcaReport

SCENARIOS = ("calm", "news-shock", "liquidity-squeeze", "trending", "high-vol", "illiquid-bond")
HELD_OUT_SEEDS = range(1000, 2000)  # `blockroute backtest`'s evaluation episodes
TRAIN_SEED0 = 5_000_000  # the first training episode, unless reset is given a seed
REWARD_SCALE = 10.0  # bps of IS per unit of reward: episode returns of a few units
REWARDS = ("arrival", "mark", "paired")
UNFILLED_PENALTY_BPS = 100.0  # on the notional left unfilled, over the horizon's mid
# A finished world is a web of reference cycles (engine, venues, kernel) holding tens of
# MB of market arrays that only a full collection frees; Python's own schedule lets a
# worker grow to 2 GB first, a collection per reset costs 50-100 ms: one every few resets.
GC_EVERY = 8

# Phase fields that multiply a market quantity (scaled in log space) and those that add.
_MULTIPLICATIVE = ("vol", "spread", "bid_depth", "ask_depth", "flow", "informed", "momentum")
_ADDITIVE = ("drift_bps_per_h", "jump_bps", "buy_pressure")


@dataclass(frozen=True, slots=True)
class RegimeRanges:
    """How far each episode's draw may move a scenario from its configuration."""

    size: tuple[float, float] = (0.5, 2.0)  # x the scenario's quantity (log-uniform)
    horizon_s: tuple[float, float] = (3600.0, 10800.0)  # whole steps, within the session
    daily_vol: tuple[float, float] = (0.7, 1.4)  # x (log-uniform)
    spread: tuple[float, float] = (0.8, 1.5)  # x the spread in ticks (uniform, >= 1 tick)
    phase_shift_s: float = 1800.0  # phases start up to this much earlier or later
    phase_strength: tuple[float, float] = (0.5, 1.5)  # x every phase's moves


@dataclass(frozen=True, slots=True)
class Regime:
    """One episode's scenario and what was drawn for it (for analysis, never the agent)."""

    scenario: Scenario
    base: str
    size_mult: float
    horizon_s: float
    vol_mult: float
    spread_mult: float
    phase_shift_s: float
    phase_strength: float
    capped: bool  # the quantity was cut to the market's capacity
    market_sign: int  # +1: the phases as configured, -1: all of them mirrored

    def describe(self) -> dict[str, Any]:
        return {
            "scenario": self.base,
            "side": self.scenario.side.value,
            "market_sign": self.market_sign,
            "qty": self.scenario.qty,
            "size_mult": self.size_mult,
            "horizon_s": self.horizon_s,
            "vol_mult": self.vol_mult,
            "spread_mult": self.spread_mult,
            "phase_shift_s": self.phase_shift_s,
            "phase_strength": self.phase_strength,
            "capped": self.capped,
        }


def draw_regime(
    base: Scenario,
    rng: np.random.Generator,
    max_qty: Callable[[Scenario], float],
    ranges: RegimeRanges = RegimeRanges(),
) -> Regime:
    """One randomised episode of `base`. `max_qty` is the largest parent the market can
    bear over a scenario's horizon (router.app's capacity check).

    The parent's side (buy or sell) and the market's sign (+1 as configured, -1 every
    phase mirrored, see simulators.scenario.mirrored) are drawn 50/50 each and
    independently, so that neither the scenario nor the side tells which way the price
    will go. One sign holds for all the phases of an episode: they tell one story (the
    news-shock's decline and its short buying window against it), which a sign per
    phase would break into moves that no market makes."""
    lo, hi = ranges.horizon_s
    hi = min(hi, SESSION_CLOSE_S - base.start_tod_s)
    steps = int(rng.integers(math.ceil(lo / STEP_S), math.floor(hi / STEP_S) + 1))
    horizon = steps * STEP_S
    vol_mult = _log_uniform(rng, ranges.daily_vol)
    spread_mult = float(rng.uniform(*ranges.spread))
    shift = float(rng.uniform(-ranges.phase_shift_s, ranges.phase_shift_s))
    strength = float(rng.uniform(*ranges.phase_strength))
    size_mult = _log_uniform(rng, ranges.size)
    # drawn after the others, so that those keep the values a seed gave them before
    side = Side.BUY if rng.random() < 0.5 else Side.SELL
    sign = 1 if rng.random() < 0.5 else -1
    m = base.market
    market = dataclasses.replace(
        m, daily_vol=m.daily_vol * vol_mult, spread_ticks=max(1.0, m.spread_ticks * spread_mult)
    )
    phases, shift = _move_phases(base.phases, base.horizon_s, horizon, shift, strength)
    if sign < 0:
        phases = tuple(mirrored(p) for p in phases)
    scenario = dataclasses.replace(base, side=side, horizon_s=horizon, market=market, phases=phases)
    lot = base.instrument.lot_size
    qty = max(lot, round(base.qty * size_mult / lot) * lot)
    cap = int(max_qty(scenario) // lot) * lot
    capped = qty > cap
    scenario = dataclasses.replace(scenario, qty=min(qty, max(lot, cap)))
    return Regime(
        scenario,
        base.name,
        size_mult,
        horizon,
        vol_mult,
        spread_mult,
        shift,
        strength,
        capped,
        market_sign=sign,
    )


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(math.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1]))))


def _move_phases(
    phases: Sequence[Phase], old_h: float, new_h: float, shift: float, strength: float
) -> tuple[tuple[Phase, ...], float]:
    """Phases on a new horizon: squeezed with it when it is shorter (so the shock still
    comes a third of the way in), shifted together by `shift` as far as they stay
    inside it (returned: the shift applied), their moves scaled by `strength`. A phase
    that spans the whole horizon (a regime of the day) spans the new one."""
    squeeze = min(1.0, new_h / old_h)
    whole = [p.start_s <= 0.0 and p.end_s >= old_h for p in phases]
    timed = [p for p, w in zip(phases, whole, strict=True) if not w]
    if timed:
        first = min(p.start_s for p in timed) * squeeze
        last = max(p.end_s for p in timed) * squeeze
        shift = min(max(shift, -first), new_h - last)
    else:
        shift = 0.0
    out = []
    for p, w in zip(phases, whole, strict=True):
        start, end = (0.0, new_h) if w else (p.start_s * squeeze + shift, p.end_s * squeeze + shift)
        out.append(_scaled(dataclasses.replace(p, start_s=start, end_s=end), strength))
    return tuple(out), shift


def _scaled(p: Phase, k: float) -> Phase:
    """A phase whose moves are `k` times as strong: factors as powers, shifts as multiples."""
    changes: dict[str, float] = {f: getattr(p, f) ** k for f in _MULTIPLICATIVE}
    changes.update({f: getattr(p, f) * k for f in _ADDITIVE})
    changes["buy_pressure"] = min(1.0, max(-1.0, changes["buy_pressure"]))
    return dataclasses.replace(p, **changes)


def _max_qty(sc: Scenario) -> float:
    """The largest parent the market bears over `sc`'s horizon (router.app's check)."""
    volume = app.expected_volume(sc, sc.start_tod_s, sc.horizon_s)
    return float(app.MAX_SHARE_OF_HORIZON_VOLUME * volume)


def regime_for(
    scenarios: Sequence[str], seed: int, ranges: RegimeRanges = RegimeRanges()
) -> Regime:
    """Training episode `seed`'s regime, as `ExecutionEnv(scenarios).reset(seed=seed)`
    draws it (the scenario picked from `scenarios`, then randomised)."""
    if seed in HELD_OUT_SEEDS:
        raise ValueError(
            f"seed {seed} is one of the held-out evaluation seeds "
            f"({HELD_OUT_SEEDS.start}-{HELD_OUT_SEEDS.stop - 1}): train on others"
        )
    rng = rng_for(seed, "execenv/regime")
    name = scenarios[int(rng.integers(len(scenarios)))]
    return draw_regime(load_scenario(name), rng, _max_qty, ranges)


class _Ledger:
    """One run's accounts: its fills against the arrival mid (the terms of
    router.tca.implementation_shortfall_bps, in the same order), the unfilled rest at the
    end, and the mark-to-market potential of the shaped rewards; all in currency."""

    def __init__(self, stepper: ExecutionStepper, penalty_bps: float) -> None:
        self.stepper = stepper
        p = stepper.parent
        self.qty, self.sign, self.arrival = p.qty, p.side.sign, stepper.arrival_mid
        self.notional = self.qty * self.arrival
        self.penalty_bps = penalty_bps
        self.filled = 0
        self.cost = 0.0  # fills so far, then the unfilled rest at the horizon's mid
        self.penalty = 0.0
        self._mid = self.arrival
        self.phi = self.potential()  # 0 at arrival: the mid is the arrival mid

    def potential(self) -> float:
        """Minus the cost of the unfilled rest at the current mid."""
        mid = self.stepper.mid()
        if mid is not None:
            self._mid = mid
        return -(self.qty - self.filled) * (self._mid - self.arrival) * self.sign

    def step(self, out: SlicerStep, mark: bool) -> float:
        """The step's cost: its fills, after the horizon the rest and the penalty, and
        with `mark` minus the change of the potential (Phi is minus a cost)."""
        cost = 0.0
        for f in out.fills:
            self.filled += f.qty
            cost += f.qty * (f.price - self.arrival) * self.sign + f.fee
        if out.done:
            unfilled = self.qty - self.filled
            cost += unfilled * (self.stepper.end_mid() - self.arrival) * self.sign
            self.penalty = self.penalty_bps * 1e-4 * unfilled * self.arrival
        self.cost += cost
        if mark:
            phi = 0.0 if out.done else self.potential()
            cost -= phi - self.phi
            self.phi = phi
        return cost + (self.penalty if out.done else 0.0)

    def is_bps(self) -> float:
        return 1e4 * self.cost / self.notional


class ExecutionEnv(gym.Env[np.ndarray, np.ndarray]):
    """Gymnasium environment: one `ml` parent order per episode, one step per 5 minutes.

    Observation: router.strategies.learned.OBS_NAMES (float32, clipped to [-5, 5]).
    Action: the pace a in [-1, 1] (shape (1,)). `reset(options=...)` takes
    `{"scenario": name}` to pick the regime and `{"randomize": False}` to run the
    scenario exactly as configured.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's API)

    def __init__(
        self,
        scenarios: Sequence[str] = SCENARIOS,
        *,
        seed_stride: int = 1,
        reward_scale: float = REWARD_SCALE,
        unfilled_penalty_bps: float = UNFILLED_PENALTY_BPS,
        ranges: RegimeRanges = RegimeRanges(),
        reward: str = "arrival",
    ) -> None:
        super().__init__()
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {', '.join(REWARDS)}, got {reward!r}")
        if not scenarios:
            raise ValueError("ExecutionEnv needs at least one scenario")
        if seed_stride < 1:
            raise ValueError(f"seed_stride must be >= 1, got {seed_stride}")
        if not reward_scale > 0:
            raise ValueError(f"reward_scale must be > 0, got {reward_scale}")
        self.observation_space = spaces.Box(-CLIP, CLIP, (OBS_SIZE,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self._bases = {name: load_scenario(name) for name in scenarios}
        self._stride = seed_stride
        self._scale = reward_scale
        self._penalty_bps = unfilled_penalty_bps
        self._ranges = ranges
        self._mark = reward in ("mark", "paired")
        self._next_seed = TRAIN_SEED0
        self._paired = reward == "paired"
        self._run: _Ledger | None = None
        self._base: _Ledger | None = None  # the even pace on the same episode (paired)
        self._regime: Regime | None = None
        self._sim_seed = 0
        self._steps = 0
        self._resets = 0

    # ------------------------------------------------------------------ gymnasium API

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        opts = options or {}
        if seed is not None:
            self._next_seed = int(seed)
        sim_seed = self._next_seed
        if sim_seed in HELD_OUT_SEEDS:
            raise ValueError(
                f"seed {sim_seed} is one of the held-out evaluation seeds "
                f"({HELD_OUT_SEEDS.start}-{HELD_OUT_SEEDS.stop - 1}): train on others"
            )
        self._next_seed = sim_seed + self._stride
        self._regime = self._draw(sim_seed, opts)
        self._close_steppers()
        self._resets += 1
        if self._resets % GC_EVERY == 0:
            gc.collect()
        stepper = app.ExecutionStepper
        run = stepper(self._regime.scenario, sim_seed)
        self._run = _Ledger(run, self._penalty_bps)
        if self._paired:
            base = stepper(self._regime.scenario, sim_seed, episode=run.episode)
            self._base = _Ledger(base, self._penalty_bps)
        self._sim_seed, self._steps = sim_seed, 0
        return run.observe(), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        run = self._run
        if run is None or run.stepper.done:
            raise RuntimeError("step() after the episode ended: call reset() first")
        a = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1.0, 1.0))
        out = run.stepper.advance(a if math.isfinite(a) else 0.0)
        self._steps += 1
        cost = run.step(out, self._mark)
        if self._base is not None:  # queries fall on the same times in both runs
            base_out = self._base.stepper.advance(0.0)
            if base_out.done != out.done:
                raise RuntimeError("the paired runs' queries fell out of step")
            cost -= self._base.step(base_out, mark=True)
        info = self._info()
        if out.done:
            info["is_bps"] = run.is_bps()
            info["penalty_bps"] = 1e4 * run.penalty / run.notional
            info["completion"] = run.filled / run.qty
            if self._base is not None:
                info["even_pace_is_bps"] = self._base.is_bps()
                info["even_pace_penalty_bps"] = 1e4 * self._base.penalty / run.notional
        obs = np.zeros(OBS_SIZE, dtype=np.float32) if out.done else run.stepper.observe()
        reward = -1e4 * cost / run.notional / self._scale
        return obs, float(reward), out.done, False, info

    def close(self) -> None:
        self._close_steppers()
        super().close()

    # ------------------------------------------------------------------ for analysis

    @property
    def fills(self) -> tuple[ChildOrderFilled, ...]:
        """The current episode's fills so far."""
        if self._run is None:
            return ()
        return tuple(self._run.stepper.execution.result.fills)

    def tca(self) -> TcaReport:
        """The finished episode's TCA (router.tca, without the unimpacted path)."""
        if self._run is None or not self._run.stepper.done:
            raise RuntimeError("tca() needs a finished episode")
        return self._run.stepper.tca()

    # ------------------------------------------------------------------ internals

    def _draw(self, sim_seed: int, opts: dict[str, Any]) -> Regime:
        rng = rng_for(sim_seed, "execenv/regime")
        name = opts.get("scenario")
        if name is None:
            name = list(self._bases)[int(rng.integers(len(self._bases)))]
        elif name not in self._bases:
            known = ", ".join(self._bases)
            raise ValueError(f"scenario {name!r} is not one of this environment's ({known})")
        base = self._bases[name]
        if not opts.get("randomize", True):
            h = base.horizon_s
            return Regime(base, name, 1.0, h, 1.0, 1.0, 0.0, 1.0, False, market_sign=1)
        return draw_regime(base, rng, _max_qty, self._ranges)

    def _info(self) -> dict[str, Any]:
        run, regime = self._run, self._regime
        assert run is not None and regime is not None
        return {
            "sim_seed": self._sim_seed,
            "t_s": run.stepper.world.clock.now_ns() / 1e9,
            "filled": run.filled,
            "steps": self._steps,
            "regime": regime.describe(),
        }

    def _close_steppers(self) -> None:
        for ledger in (self._run, self._base):
            if ledger is not None:
                ledger.stepper.close()
        self._run = self._base = None
