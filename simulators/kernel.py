"""Discrete-event kernel: a simulated clock, an ordered event queue, latency models and
the seed tree from which every component draws its own random generator.

The background market is a continuous process: before the kernel delivers an event
at time t it asks the market to catch up to t, so client messages interleave with
background flow in time order. Equal timestamps keep their scheduling order, which
makes runs deterministic.
"""

from __future__ import annotations

import heapq
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from router.domain import Nanos


def rng_for(master_seed: int, component: str) -> np.random.Generator:
    """An independent generator per named component, all derived from one master seed.

    Adding a component never changes the streams of the others (unlike drawing seeds
    in sequence from one generator).
    """
    key = zlib.crc32(component.encode())
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(master_seed, spawn_key=(key,)))
    )


class SimClock:
    """The simulated clock; only the kernel moves it."""

    __slots__ = ("_now",)

    def __init__(self, start_ns: Nanos = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> Nanos:
        return self._now

    def _set(self, ts: Nanos) -> None:
        self._now = ts


class ContinuousProcess(Protocol):
    def advance_to(self, ts: Nanos) -> None: ...


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """One-way latency: a lognormal around `median_ns` with log-sd `jitter`."""

    median_ns: int
    jitter: float = 0.0

    @classmethod
    def from_micros(cls, median_us: float, jitter: float) -> LatencyModel:
        return cls(int(median_us * 1000), jitter)

    def sample(self, rng: np.random.Generator) -> Nanos:
        if self.jitter == 0.0:
            return self.median_ns
        return max(1, int(self.median_ns * math.exp(self.jitter * rng.standard_normal())))

    def draws(self, rng: np.random.Generator) -> LatencyDraws:
        """Samples from a generator that nothing else draws from (a venue's own)."""
        return LatencyDraws(self, rng)


class LatencyDraws:
    """`LatencyModel.sample(rng)` again and again, for a generator of its own: the
    normals are drawn BLOCK at a time. A block holds the numbers that as many draws one
    at a time give, in the same order (numpy fills it with the same draw), so the
    latencies are the same; only the generator has drawn ahead, which no one else
    reads. A venue takes a sample for each message each way, and a scalar draw cost
    half of a sample's time."""

    BLOCK = 256

    def __init__(self, model: LatencyModel, rng: np.random.Generator) -> None:
        self._median = model.median_ns
        self._jitter = model.jitter
        self._rng = rng
        self._normals: list[float] = []  # the block's draws not yet used, last one next

    def __call__(self) -> Nanos:
        if self._jitter == 0.0:
            return self._median
        if not self._normals:
            self._normals = self._rng.standard_normal(self.BLOCK).tolist()[::-1]
        return max(1, int(self._median * math.exp(self._jitter * self._normals.pop())))


#: a queued event: (time, scheduling order, action). A plain tuple, compared in C; the
#: sequence number is unique, so two entries never get as far as comparing actions
_Scheduled = tuple[Nanos, int, Callable[[], None]]


class Kernel:
    def __init__(self, clock: SimClock, market: ContinuousProcess | None = None) -> None:
        self.clock = clock
        self._market = market
        self._queue: list[_Scheduled] = []
        self._seq = 0
        self.events_run = 0

    def attach_market(self, market: ContinuousProcess) -> None:
        self._market = market

    def schedule(self, ts: Nanos, action: Callable[[], None]) -> None:
        if ts < self.clock.now_ns():
            raise ValueError(f"cannot schedule in the past: {ts} < {self.clock.now_ns()}")
        self._seq += 1
        heapq.heappush(self._queue, (ts, self._seq, action))

    def schedule_in(self, delay_ns: Nanos, action: Callable[[], None]) -> None:
        self.schedule(self.clock.now_ns() + delay_ns, action)

    def next_event_ns(self) -> Nanos | None:
        return self._queue[0][0] if self._queue else None

    def run_until(self, ts: Nanos, enough: Callable[[], bool] | None = None) -> bool:
        """Deliver every event due at or before `ts`, then leave the clock at `ts`.

        `enough` (a live caller's time budget) is asked after each event: when it says
        so, the run stops there, the clock at that event, and returns False; call again
        to go on. Returns True once the clock is at `ts`."""
        queue = self._queue
        while queue and queue[0][0] <= ts:
            at, _, action = heapq.heappop(queue)
            if self._market is not None:
                self._market.advance_to(at)
            self.clock._set(at)
            action()
            self.events_run += 1
            if enough is not None and enough() and queue and queue[0][0] <= ts:
                return False
        if self._market is not None:
            self._market.advance_to(ts)
        self.clock._set(max(ts, self.clock.now_ns()))
        return True
