"""Running the engine on an asyncio loop: the live service's scheduler and clock.

The engine is event-driven and owns no loop: it asks a `Scheduler` to call it back at
a clock time and reacts to venue events. In simulations the discrete-event kernel is
that scheduler; in the service it is the asyncio loop, through the classes below. A
`speed` above 1 runs a simulated clock faster than the wall (`serve --sim-speed`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from router.domain import NANOS_PER_SECOND, Nanos


class LoopClock:
    """A clock that starts at `origin_ns` when created and runs `speed` times faster
    than the event loop's monotonic time. A `speed` <= 0 raises ValueError."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, origin_ns: Nanos = 0, speed: float = 1.0
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed:g}")
        self._loop = loop
        self._origin_ns = origin_ns
        self._t0 = loop.time()
        self.speed = speed

    def now_ns(self) -> Nanos:
        """The clock's time now, in nanoseconds."""
        return self._origin_ns + int((self._loop.time() - self._t0) * self.speed * NANOS_PER_SECOND)

    def wall_delay_s(self, at_ns: Nanos) -> float:
        """Wall-clock seconds until the clock reads `at_ns` (0 if it is past)."""
        return max(0.0, (at_ns - self.now_ns()) / NANOS_PER_SECOND / self.speed)


class AsyncioScheduler:
    """The engine's `Scheduler` on an asyncio loop; callbacks run on the loop thread in
    time order, and `cancel_all` drops what has not run yet (shutdown)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, clock: LoopClock) -> None:
        self._loop = loop
        self._clock = clock
        self._handles: set[asyncio.TimerHandle] = set()

    def __call__(self, at_ns: Nanos, callback: Callable[[], None]) -> None:
        """Call `callback` on the loop when the clock reads `at_ns` (at once if past)."""
        handle: asyncio.TimerHandle

        def run() -> None:
            self._handles.discard(handle)
            callback()

        handle = self._loop.call_later(self._clock.wall_delay_s(at_ns), run)
        self._handles.add(handle)

    @property
    def pending(self) -> int:
        """Callbacks scheduled that have neither run nor been cancelled."""
        return len(self._handles)

    def cancel_all(self) -> None:
        for h in self._handles:
            h.cancel()
        self._handles.clear()
