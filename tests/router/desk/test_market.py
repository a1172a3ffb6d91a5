"""The markets behind the desk's port: the pump that steps them on the loop (against
fake sessions), and the simulator's sessions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from router.desk import DeskConfig
from router.desk.market import MarketPump
from router.desk.metrics import DeskMetrics
from router.desk.sim import SimMarkets
from router.domain import DomainError
from tests.router.desk.support import until


class FakeSession:
    """A market that records how far it was told to run; `behind` steps are cut short."""

    def __init__(self, end_ns: int, behind: int = 0) -> None:
        self.end_ns = end_ns
        self.behind = behind
        self.advanced: list[int] = []

    def advance(self, epoch_ns: int, enough: Callable[[], bool] | None = None) -> bool:
        self.advanced.append(epoch_ns)
        if self.behind:
            self.behind -= 1
            return False
        return True

    def next_event_ns(self) -> int | None:
        return None


def _pump(sessions: dict[str, Any], now: list[int], steps: list[int]) -> MarketPump:
    return MarketPump(
        DeskConfig(symbols={"QDI": "calm"}),
        sessions,
        lambda: now[0],
        DeskMetrics(CollectorRegistry()),
        on_step=lambda: steps.append(now[0]),
        after_step=lambda: None,
    )


async def test_the_pump_runs_every_market_to_the_clock_but_none_past_its_close() -> None:
    sessions = {"A": FakeSession(end_ns=10**12), "B": FakeSession(end_ns=50)}
    now, steps = [100], []
    pump = _pump(sessions, now, steps)
    assert pump.advance(now[0])
    assert sessions["A"].advanced == [100] and sessions["B"].advanced == [50]
    assert steps == [100]  # what the step produced is journaled once, after all markets


async def test_the_pump_steps_on_the_loop_until_stopped() -> None:
    sessions = {"A": FakeSession(end_ns=10**12, behind=2)}
    now, steps = [100], []
    pump = _pump(sessions, now, steps)
    pump.start(asyncio.get_running_loop())
    await until(lambda: len(steps) >= 4, 5)
    now[0] = 200
    pump.kick()
    await until(lambda: 200 in sessions["A"].advanced, 5)
    pump.stop()
    pump.kick()  # nothing after a stop
    seen = len(sessions["A"].advanced)
    await asyncio.sleep(0.1)
    assert len(sessions["A"].advanced) == seen


def test_a_scenario_of_another_instrument_is_refused() -> None:
    with pytest.raises(DomainError, match="trades QDI, not XYZ"):
        SimMarkets(DeskConfig(symbols={"XYZ": "calm"}))
