"""A slicer that follows a precomputed cumulative schedule.

The schedule is a list of points (seconds since the parent's start, cumulative shares
that should be done by then). Between points the target is interpolated linearly, before
the first point it is the first target and after the last point the last one. It is the
execution form of any plan made before the parent starts: Almgren-Chriss trajectories,
and hindsight oracles computed elsewhere.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence

from router.domain import NANOS_PER_SECOND, DomainError
from router.ports import ExecutionState


class ScheduleSlicer:
    """Cumulative target from a piecewise-linear schedule, clamped to [0, parent.qty].

    `times_s` must be non-decreasing; a repeated time makes a step (the last target given
    for that time applies from it on). `cum_targets` must be non-negative and
    non-decreasing, so the target never goes down as time passes.
    """

    __slots__ = ("_targets", "_times", "name")

    def __init__(self, name: str, times_s: Sequence[float], cum_targets: Sequence[int]) -> None:
        if not name:
            raise DomainError("schedule slicer: name must not be empty")
        if len(times_s) != len(cum_targets):
            raise DomainError(
                f"schedule {name!r}: {len(times_s)} times but {len(cum_targets)} targets"
            )
        if not times_s:
            raise DomainError(f"schedule {name!r}: needs at least one point")
        times = tuple(float(t) for t in times_s)
        for i, raw in enumerate(cum_targets):
            if not float(raw).is_integer():  # also refuses nan and inf
                raise DomainError(
                    f"schedule {name!r}: cum_targets[{i}] must be a whole number of shares, "
                    f"got {raw}"
                )
        targets = tuple(int(q) for q in cum_targets)
        for i, t in enumerate(times):
            if not math.isfinite(t) or t < 0:
                raise DomainError(f"schedule {name!r}: times_s[{i}] must be >= 0, got {t}")
            if i and t < times[i - 1]:
                raise DomainError(
                    f"schedule {name!r}: times_s must be non-decreasing, "
                    f"times_s[{i}]={t} < times_s[{i - 1}]={times[i - 1]}"
                )
        for i, q in enumerate(targets):
            if q < 0:
                raise DomainError(f"schedule {name!r}: cum_targets[{i}] must be >= 0, got {q}")
            if i and q < targets[i - 1]:
                raise DomainError(
                    f"schedule {name!r}: cum_targets must be non-decreasing, "
                    f"cum_targets[{i}]={q} < cum_targets[{i - 1}]={targets[i - 1]}"
                )
        self.name = name
        self._times = times
        self._targets = targets

    @property
    def times_s(self) -> tuple[float, ...]:
        return self._times

    @property
    def cum_targets(self) -> tuple[int, ...]:
        return self._targets

    def target_at(self, elapsed_s: float, qty: int) -> int:
        """Cumulative shares due `elapsed_s` seconds after the start, for a parent of `qty`."""
        times, targets = self._times, self._targets
        if elapsed_s <= times[0]:
            value = float(targets[0])
        elif elapsed_s >= times[-1]:
            value = float(targets[-1])
        else:
            # times[i] <= elapsed_s < times[i + 1]; bisect_right skips repeated times,
            # so the segment is never of zero length
            i = bisect_right(times, elapsed_s) - 1
            frac = (elapsed_s - times[i]) / (times[i + 1] - times[i])
            value = targets[i] + (targets[i + 1] - targets[i]) * frac
        return min(qty, max(0, math.floor(value)))

    def target_filled(self, state: ExecutionState) -> int:
        elapsed_s = (state.now_ns - state.parent.start_ns) / NANOS_PER_SECOND
        return self.target_at(elapsed_s, state.parent.qty)
