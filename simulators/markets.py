"""The lit market a simulated world trades in, as its venues, dark pools, dealers and
the strategies' market data see it (`LitMarket`), and which one a scenario runs on.

Two implement it: `SimMarket` (simulators/market.py), the simulated background flow, and
`ReplayMarket` (simulators/replay/market.py), a real order-by-order capture replayed
with the client orders in its book. `open_market` picks by the scenario: a scenario
loaded from a replay (`replay:NAME`) runs on the replay, every other on the simulator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from router.domain import Instrument, Nanos, Side, VenueId
from router.ports import MarketSnapshot
from simulators import book
from simulators.fills import FillCallback
from simulators.schedule import StepGrid

if TYPE_CHECKING:
    from simulators.market import SubmitResult
    from simulators.scenario import Scenario


class LitMarket(Protocol):
    """One instrument's lit books over time, and what they show."""

    scenario: Scenario
    instrument: Instrument
    venue_ids: tuple[VenueId, ...]
    grid: StepGrid
    state: book.BookState  # the books and the tape (`tape_vol`, `tape_pv` per bar)

    @property
    def end_ns(self) -> Nanos: ...

    def fork(self) -> LitMarket:
        """An independent copy in the same state, before any client is attached."""
        ...

    def step_of(self, ts: Nanos) -> int: ...

    def bar_of(self, ts: Nanos) -> int: ...

    def advance_to(self, ts: Nanos) -> None:
        """Bring the books up to `ts` (the kernel asks before each event)."""
        ...

    # client orders

    def on_client_fill(self, callback: FillCallback) -> None: ...

    def submit(
        self,
        ts: Nanos,
        venue: int,
        side: Side,
        price_ticks: int,
        qty: int,
        owner: int,
        flags: int = 0,
        peak: int = 0,
    ) -> SubmitResult: ...

    def cancel(self, slot: int) -> int: ...

    def record_passive_client_fill(self, side: Side, qty: int) -> None: ...

    def take(
        self, ts: Nanos, side: Side, qty: int, reach_ticks: int, owner: int
    ) -> tuple[int, int]: ...

    # what it shows (simulators/feed.py)

    def snapshot(self, ts: Nanos) -> MarketSnapshot: ...

    def mid_ticks(self) -> float | None: ...

    def touches_before(
        self, ts: Nanos, lags_s: Sequence[float]
    ) -> list[tuple[int, int] | None]: ...

    def flow_over(self, ts: Nanos, windows_s: Sequence[int]) -> list[tuple[int, int]]: ...

    def mid_at(self, ts: Nanos) -> float: ...

    def mid_path(self) -> np.ndarray: ...

    def top_of_book(self, from_s: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

    # for simulated participants and evaluation, never for strategies

    def fair_ticks(self, ts: Nanos) -> float: ...

    def vol_ratio(self, ts: Nanos, window_s: float = 600.0, every_s: float = 10.0) -> float: ...

    def future_move_sign(self, ts: Nanos, horizon_s: float) -> float: ...

    def interaction(self) -> dict[str, int] | None:
        """What the clients changed of a replayed market (None: a simulated one, whose
        participants react to them by construction)."""
        ...


def open_market(scenario: Scenario, seed: int) -> LitMarket:
    """The market of `scenario` for master seed `seed`, at the parent's arrival."""
    if scenario.replay is not None:
        # the replay package loads captures: only replayed scenarios import it
        from simulators.replay.market import ReplayMarket

        return ReplayMarket.for_scenario(scenario, seed)
    from simulators.kernel import rng_for
    from simulators.market import SimMarket

    return SimMarket(scenario, rng_for(seed, "market"))
