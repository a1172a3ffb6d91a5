"""What the desk's tests share: a desk on real simulated markets whose service clock runs
fast (SPEED), so that parents of a few simulated minutes finish in a second or two of
wall time; its orders; waiting for it; what it reported."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from router.desk import Desk, DeskConfig
from router.desk.sim import SimMarkets
from router.desk_api import DeskEvent, NewOrder, OrderFilled
from router.domain import NANOS_PER_SECOND, Side
from router.journal import Journal

SPEED = 400.0


def new_desk(journal: Journal, clock: Callable[[], int]) -> Desk:
    """A desk on QDI's calm market, not started."""
    config = DeskConfig(symbols={"QDI": "calm"}, sim_speed=SPEED)
    return Desk(config, journal, clock, SimMarkets(config))


def order(desk: Desk, cl: str, qty: Any = 20_000, horizon_s: float = 240.0, **kw: Any) -> NewOrder:
    """Client OMS's order `cl`: by default a TWAP sell of QDI over `horizon_s`."""
    kw.setdefault("strategy", "twap")
    return NewOrder(
        "OMS",
        cl,
        kw.pop("symbol", "QDI"),
        kw.pop("side", Side.SELL),
        qty,
        expire_ns=desk.now_ns() + int(horizon_s * NANOS_PER_SECOND),
        **kw,
    )


async def until(pred: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(what or "condition not met in time")
        await asyncio.sleep(0.01)


def record(desk: Desk) -> list[DeskEvent]:
    """Every event the desk publishes from now on."""
    events: list[DeskEvent] = []
    desk.subscribe(events.append)
    return events


def journal_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'j.db'}"
    return str(request.getfixturevalue("pg_url"))


def reported_exactly_once(events: list[DeskEvent], desk: Desk, pid: str) -> int:
    """Every journaled fill was reported once, none that is not journaled, and the
    reports' cumulative quantities have no gap. Returns the quantity filled."""
    reported = [e for e in events if isinstance(e, OrderFilled) and e.view.parent_id == pid]
    stored = desk.fills(pid)
    assert sorted(e.exec_id for e in reported) == sorted(f["exec_id"] for f in stored)
    assert len({e.exec_id for e in reported}) == len(reported), "a fill was reported twice"
    cum = 0
    for e in reported:
        cum += e.last_qty
        assert e.view.filled_qty == cum, "CumQty jumped: a fill was never reported"
    view = desk.parent(pid)
    assert view.filled_qty == cum == sum(f["qty"] for f in stored)
    return cum
