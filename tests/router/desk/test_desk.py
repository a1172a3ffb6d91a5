"""The desk's configuration and its stop."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from router.desk import DeskConfig
from router.desk_api import (
    OrderStatus,
)
from router.domain import NANOS_PER_SECOND, DomainError
from router.journal import Journal
from tests.router.desk.support import (
    new_desk,
    order,
)


def test_config_refuses_an_unknown_default_strategy() -> None:
    with pytest.raises(DomainError, match="unknown strategy"):
        DeskConfig(symbols={"QDI": "calm"}, default_strategy="nope")


async def test_a_stop_after_a_stall_leaves_no_child_open(tmp_path: Path) -> None:
    """The service clock ran on while the markets stood still (a long decision, a
    pause of the process): stopping then runs the backlog of simulated time, and no
    decision in it may send a child that nothing is left to pull."""
    now = [time.time_ns()]
    journal = Journal.open(f"sqlite:///{tmp_path / 'j.db'}")
    desk = new_desk(journal, lambda: now[0])
    desk.start()
    try:
        view = desk.submit(order(desk, "ST1", qty=60_000, horizon_s=900, strategy="sor"))
        while desk.parent(view.parent_id).filled_qty == 0:
            now[0] += NANOS_PER_SECOND
            desk._pump.advance(now[0])
        now[0] += 120 * NANOS_PER_SECOND  # four decisions due that the markets never ran
        await desk.stop()
        assert journal.open_children([view.parent_id]) == []
        assert desk.parent(view.parent_id).status is OrderStatus.WORKING  # resumes at start
    finally:
        journal.close()
