"""POV (percentage of volume): keep pace with a fixed share of the market's volume.

The target is `rate` x the market volume traded since the parent started. The market
snapshot's `volume` is cumulative over the session and counts every lit print,
including ours, so `rate` is our share of the total volume (ours + others'), the usual
definition of a participation rate.

POV does not promise completion: if the market trades less than `qty / rate` over the
horizon, the schedule ends short and the engine's final sweep (the last minute before
the horizon) takes what is left, at a worse price. `from_history` sizes the rate with a
buffer above the expected volume to make that the exception.
"""

from __future__ import annotations

import math

from router.domain import DomainError, ParentId
from router.ports import ExecutionState, MarketHistory

#: Lowest rate `from_history` picks: below it, the sweep would do nearly all the work.
MIN_RATE = 0.01


class PovSlicer:
    """Cumulative target = rate x (market volume now - market volume at the first call).

    The first snapshot seen for a parent is taken as its start (the engine decides first
    at the parent's start time). Bases are kept per parent id, so an instance may be shared.
    """

    name = "pov"

    __slots__ = ("_base", "rate")

    def __init__(self, rate: float) -> None:
        if not math.isfinite(rate) or not 0 < rate <= 1:
            raise DomainError(f"pov: participation rate must be in (0, 1], got {rate}")
        self.rate = float(rate)
        self._base: dict[ParentId, int] = {}

    @classmethod
    def from_history(
        cls,
        history: MarketHistory,
        qty: int,
        max_rate: float = 0.5,
        buffer: float = 1.1,
    ) -> PovSlicer:
        """The rate that would finish `qty` with `buffer` to spare if the others traded
        the horizon's expected volume: our prints add to the tape we follow, so our share
        of the total is qty / (qty + horizon_volume), not qty / horizon_volume.
        min(max_rate, buffer * that), at least 1%."""
        if qty <= 0:
            raise DomainError(f"pov: quantity must be > 0, got {qty}")
        if not math.isfinite(history.horizon_volume) or history.horizon_volume <= 0:
            raise DomainError(
                f"pov: history.horizon_volume must be > 0 to size a rate, "
                f"got {history.horizon_volume}"
            )
        if not MIN_RATE <= max_rate <= 1:
            raise DomainError(f"pov: max_rate must be in [{MIN_RATE}, 1], got {max_rate}")
        if not math.isfinite(buffer) or buffer <= 0:
            raise DomainError(f"pov: buffer must be > 0, got {buffer}")
        rate = min(max_rate, buffer * qty / (qty + history.horizon_volume))
        return cls(max(MIN_RATE, rate))

    def target_filled(self, state: ExecutionState) -> int:
        volume = state.market.volume
        base = self._base.setdefault(state.parent.parent_id, volume)
        traded = max(0, volume - base)
        return min(state.parent.qty, math.floor(self.rate * traded))
