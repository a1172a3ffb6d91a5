"""TWAP: trade the parent at a constant rate over its horizon."""

from __future__ import annotations

from router.ports import ExecutionState


class TwapSlicer:
    name = "twap"

    def target_filled(self, state: ExecutionState) -> int:
        return int(state.parent.qty * state.elapsed_fraction)
