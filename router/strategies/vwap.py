"""VWAP: trade in proportion to the market volume expected in each part of the horizon.

The schedule is the cumulative *historical* intraday volume profile (from
`MarketHistory`, known before the parent arrives), linear within each bucket; it never
looks at the volume actually traded today. A flat profile gives TWAP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from router.domain import NANOS_PER_SECOND, DomainError
from router.ports import ExecutionState, MarketHistory

#: Absorbs float error in qty * fraction, so that e.g. 0.3 * 1000 gives 300, not 299.
_ROUNDING_SLACK = 1e-9


class VwapSlicer:
    """Cumulative target = parent qty x expected share of the horizon's volume so far.

    `weights[k]` is the expected volume (any unit: only the shares matter) of bucket k,
    which covers [k * bucket_s, (k + 1) * bucket_s) seconds after the parent's start.
    After the last bucket the target is the whole parent. The slicer holds no per-parent
    state, so one instance can serve parents of any size.
    """

    name = "vwap"

    __slots__ = ("_bucket_s", "_cum")

    def __init__(self, bucket_s: float, weights: Sequence[float]) -> None:
        if not math.isfinite(bucket_s) or bucket_s <= 0:
            raise DomainError(f"vwap: bucket_s must be > 0, got {bucket_s}")
        if not weights:
            raise DomainError("vwap: the volume profile needs at least one bucket")
        for i, w in enumerate(weights):
            if not math.isfinite(w) or w < 0:
                raise DomainError(f"vwap: volume profile bucket {i} must be >= 0, got {w}")
        total = math.fsum(weights)
        if total <= 0:
            raise DomainError("vwap: the volume profile is all zero")
        cum = [0.0]
        running = 0.0
        for w in weights:
            running += w
            cum.append(running / total)
        cum[-1] = 1.0  # exact, so the parent is due in full at the end of the profile
        self._bucket_s = float(bucket_s)
        self._cum = tuple(cum)

    @classmethod
    def from_history(cls, history: MarketHistory, qty: int | None = None) -> VwapSlicer:
        """The slicer on the historical profile of `history` (not the realised volume).

        `qty` is only checked: targets scale with the parent's own quantity when asked,
        and the argument lets every schedule slicer be built the same way.
        """
        if qty is not None and qty <= 0:
            raise DomainError(f"vwap: quantity must be > 0, got {qty}")
        return cls(history.bucket_s, history.volume_profile)

    @property
    def horizon_s(self) -> float:
        """Seconds covered by the profile."""
        return self._bucket_s * (len(self._cum) - 1)

    def fraction_at(self, elapsed_s: float) -> float:
        """Expected fraction of the profile's volume traded `elapsed_s` s after the start."""
        if elapsed_s <= 0:
            return 0.0
        pos = elapsed_s / self._bucket_s
        k = int(pos)
        if k >= len(self._cum) - 1:
            return 1.0
        return self._cum[k] + (self._cum[k + 1] - self._cum[k]) * (pos - k)

    def target_at(self, elapsed_s: float, qty: int) -> int:
        return min(qty, math.floor(qty * self.fraction_at(elapsed_s) + _ROUNDING_SLACK))

    def target_filled(self, state: ExecutionState) -> int:
        elapsed_s = (state.now_ns - state.parent.start_ns) / NANOS_PER_SECOND
        return self.target_at(elapsed_s, state.parent.qty)
