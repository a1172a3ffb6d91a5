"""The plan of a simulated market's day: its time grid and what the scenario asks of each
of its steps, drawn once from the market's generator when the market is built.

`StepGrid` is the clock of the market: 100 ms steps from the start of the warm-up (before
the parent arrives at time 0) to the end of the tail after its horizon, and the tape's
1-s bars. `build_schedule` turns a scenario into the per-step schedule that the compiled
background flow runs on (simulators/flow.py's `S_*` rows: the exogenous reference path,
spreads and the participants' rates) and the flow's parameters (`P_*`), and keeps the law
of the exogenous path's moves (`ExoProcess`) so that a branch of the market can redraw
its future (simulators/market.py `SimMarket.branch`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit

from router.domain import NANOS_PER_SECOND, Nanos
from simulators import flow
from simulators.scenario import SESSION_CLOSE_S, SESSION_OPEN_S, Scenario

STEP_S = 0.1
WARMUP_S = 600.0  # background flow runs this long before the parent arrives
TAIL_S = 900.0  # and this long after the horizon, for post-trade markouts
SESSION_S = SESSION_CLOSE_S - SESSION_OPEN_S


@dataclass(frozen=True, slots=True)
class StepGrid:
    """The market's steps and bars in simulated time (ns, the parent arrives at 0)."""

    t0_ns: Nanos  # time of step 0, the warm-up's start
    step_ns: int
    n_steps: int
    steps_per_bar: int  # steps per bar of the tape (1 s)

    @classmethod
    def for_horizon(cls, horizon_s: float) -> StepGrid:
        """The warm-up, a parent's horizon and the tail after it."""
        return cls(
            t0_ns=-int(WARMUP_S * NANOS_PER_SECOND),
            step_ns=int(STEP_S * NANOS_PER_SECOND),
            n_steps=round((WARMUP_S + horizon_s + TAIL_S) / STEP_S),
            steps_per_bar=round(1.0 / STEP_S),
        )

    @property
    def n_bars(self) -> int:
        return self.n_steps // self.steps_per_bar + 1

    @property
    def end_ns(self) -> Nanos:
        return self.t0_ns + self.n_steps * self.step_ns

    def step_of(self, ts: Nanos) -> int:
        return (ts - self.t0_ns) // self.step_ns

    def bar_of(self, ts: Nanos) -> int:
        return min(self.step_of(ts) // self.steps_per_bar, self.n_bars - 1)

    def step_time_s(self) -> np.ndarray:
        """Time (seconds from the parent's arrival) at the end of each step."""
        return (self.t0_ns / NANOS_PER_SECOND) + (np.arange(self.n_steps) + 1) * STEP_S


def volume_profile(tod_s: np.ndarray) -> np.ndarray:
    """Intraday U-shape of volume intensity, mean 1 over the session (09:30-16:00)."""
    x = np.clip((tod_s - SESSION_OPEN_S) / SESSION_S, 0.0, 1.0)
    return 0.6 + 1.2 * (2.0 * x - 1.0) ** 2


@dataclass(frozen=True, slots=True)
class ExoProcess:
    """The law of the exogenous reference path's per-step move, kept from the schedule's
    construction so that a branch can redraw the future: move[i] = sigma[i] * N(0, 1)
    + drift[i] + (with probability jump_p) jump_ticks * N(0, 1)."""

    sigma: np.ndarray  # per-step sd of the diffusive move (stochastic vol included), ticks
    drift: np.ndarray  # deterministic per-step move: phase drift and phase jumps, ticks
    jump_p: float  # probability of a random jump per step
    jump_ticks: float  # sd of a random jump, ticks

    def draw(self, rng: np.random.Generator, i0: int, i1: int, start: float) -> np.ndarray:
        """A fresh path for steps [i0, i1) that continues from `start` (the path at i0 - 1)."""
        n = i1 - i0
        dx = self.sigma[i0:i1] * rng.standard_normal(n) + self.drift[i0:i1]
        jumps = rng.random(n) < self.jump_p
        dx[jumps] += rng.standard_normal(int(jumps.sum())) * self.jump_ticks
        return start + np.cumsum(dx)


class Schedule(NamedTuple):
    sched: np.ndarray  # (flow.N_SCHEDULE_ROWS, n_steps): the S_* rows per step
    params: np.ndarray  # (flow.N_PARAMS,): the P_* parameters
    exo: ExoProcess  # the law of sched[S_EXO]'s moves


def build_schedule(
    scenario: Scenario, grid: StepGrid, price_ticks0: float, rng: np.random.Generator
) -> Schedule:
    """The scenario's schedule over `grid`, its exogenous path starting from
    `price_ticks0`; draws from `rng` in a fixed order (a seed keeps giving the same path)."""
    sc, m, inst = scenario, scenario.market, scenario.instrument
    n = grid.n_steps
    t = grid.t0_ns / NANOS_PER_SECOND + np.arange(n) * STEP_S  # seconds from arrival
    profile = volume_profile(sc.start_tod_s + t)

    def phased(attr: str, default: float, combine: str = "mul") -> np.ndarray:
        out = np.full(n, default)
        for ph in sc.phases:
            active = (t >= ph.start_s) & (t < ph.end_s)
            if combine == "mul":
                out[active] *= getattr(ph, attr)
            else:
                out[active] += getattr(ph, attr)
        return out

    # exogenous reference price: stochastic volatility, drift, jumps
    px = price_ticks0
    sigma_step = m.daily_vol * px / math.sqrt(SESSION_S / STEP_S)
    decay = math.exp(-STEP_S / m.vol_reversion_s)
    shocks = rng.standard_normal(n) * m.vol_of_vol * math.sqrt(1 - decay * decay)
    logvol = _ar1(rng.standard_normal() * m.vol_of_vol, decay, shocks)
    # exp(h - vv^2) has E[vol^2] = 1, so daily_vol is the session's volatility
    vol = np.exp(logvol - m.vol_of_vol**2) * phased("vol", 1.0) * np.sqrt(profile)
    # (the same operations in the same order as ever: a seed keeps giving the same path)
    sigma = sigma_step * vol
    dx = sigma * rng.standard_normal(n)
    drift = phased("drift_bps_per_h", 0.0, "add") * 1e-4 * px * STEP_S / 3600.0
    dx += drift
    jump_p = m.jumps_per_day * STEP_S / SESSION_S
    jumps = rng.random(n) < jump_p
    dx[jumps] += rng.standard_normal(int(jumps.sum())) * m.jump_bps * 1e-4 * px
    for ph in sc.phases:
        i = round((ph.start_s - t[0]) / STEP_S)
        # a phase that starts after the simulated span (a parent shorter than the
        # scenario's story) never happens in it
        if ph.jump_bps and 0 <= i < n:
            dx[i] += ph.jump_bps * 1e-4 * px
            drift[i] += ph.jump_bps * 1e-4 * px
    exo = px + np.cumsum(dx)
    exo_process = ExoProcess(sigma, drift, jump_p, m.jump_bps * 1e-4 * px)

    # participants' rates
    mean_size = m.order_size_median * math.exp(0.5 * m.order_size_sigma**2)
    flow_mult = phased("flow", 1.0) * profile
    taker_orders = inst.adv / SESSION_S * STEP_S * flow_mult / mean_size
    informed = taker_orders * m.informed_share * phased("informed", 1.0)
    momentum = taker_orders * m.momentum_share * phased("momentum", 1.0)
    noise = taker_orders * (1.0 - m.informed_share - m.momentum_share)
    pressure = phased("buy_pressure", 0.0, "add").clip(-1.0, 1.0)
    depth_orders = m.book_depth_adv * inst.adv / mean_size
    refill = depth_orders * STEP_S / m.order_lifetime_s
    adds = refill * profile + 0.5 * taker_orders

    sched = np.empty((flow.N_SCHEDULE_ROWS, n))
    sched[flow.S_EXO] = exo
    sched[flow.S_HALF_SPREAD] = 0.5 * (m.spread_ticks * phased("spread", 1.0) - 1.0)
    sched[flow.S_ADD_BID] = adds * phased("bid_depth", 1.0)
    sched[flow.S_ADD_ASK] = adds * phased("ask_depth", 1.0)
    sched[flow.S_NOISE_BUY] = noise * 0.5 * (1.0 + pressure)
    sched[flow.S_NOISE_SELL] = noise * 0.5 * (1.0 - pressure)
    sched[flow.S_MOMENTUM] = momentum
    sched[flow.S_INFORMED] = informed

    params = np.zeros(flow.N_PARAMS)
    params[flow.P_ADV] = inst.adv
    params[flow.P_Y_SIGMA] = m.impact_y * m.daily_vol * px
    params[flow.P_MEMORY_DECAY] = math.exp(-STEP_S / m.impact_memory_s)
    params[flow.P_LOCK_RATE] = STEP_S / m.impact_lock_s
    params[flow.P_CANCEL_HAZARD] = STEP_S / m.order_lifetime_s
    params[flow.P_LOG_SIZE] = math.log(max(m.order_size_median / inst.lot_size, 1.0))
    params[flow.P_SIZE_SIGMA] = m.order_size_sigma
    params[flow.P_DEPTH_SCALE] = m.depth_scale_ticks
    params[flow.P_LOOKAHEAD] = round(60.0 / STEP_S)
    params[flow.P_LOOKBACK] = round(60.0 / STEP_S)
    params[flow.P_MAX_SLIPPAGE] = 3.0 * m.spread_ticks
    params[flow.P_LOT] = inst.lot_size
    params[flow.P_STEP_NS] = grid.step_ns
    return Schedule(sched, params, exo_process)


@njit(cache=True)
def _ar1(h: float, decay: float, shocks: np.ndarray) -> np.ndarray:
    """h[i] = h[i - 1] * decay + shocks[i] from `h`: compiled, as a reset of the
    execution environment builds a fresh schedule (1e5 steps) every episode."""
    out = np.empty(shocks.shape[0])
    for i in range(shocks.shape[0]):
        h = h * decay + shocks[i]
        out[i] = h
    return out
