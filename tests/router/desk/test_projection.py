"""What a parent's execution does, as the desk records and reports it: fills that add up,
every fact in the journal, the end of a parent at its horizon."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.desk_api import (
    OrderAccepted,
    OrderCompleted,
    OrderExpired,
    OrderFilled,
    OrderStatus,
)
from router.domain import OrdType, Side
from router.service import simulated_desk
from tests.router.desk.support import (
    SPEED,
    order,
    record,
    until,
)


async def test_parent_fills_and_every_fact_is_journaled(tmp_path: Path) -> None:
    async with simulated_desk(tmp_path, SPEED) as desk:
        events = record(desk)
        view = desk.submit(order(desk, "A1"))
        await desk.sync()  # acknowledgements follow the commit at the end of the turn
        assert view.status is OrderStatus.WORKING and view.arrival_mid > 0
        assert isinstance(events[0], OrderAccepted) and events[0].view.parent_id == view.parent_id
        await until(lambda: desk.parent(view.parent_id).status.terminal)
        await desk.sync()  # its last events follow the commit, off the loop
        done = desk.parent(view.parent_id)
        assert done.status is OrderStatus.FILLED and done.filled_qty == 20_000
        assert done.leaves_qty == 0
        fills = [e for e in events if isinstance(e, OrderFilled)]
        # the ExecutionReports' numbers add up: cum qty and avg price after each fill
        cum, notional = 0, 0.0
        for f in fills:
            cum += f.last_qty
            notional += f.last_qty * f.last_px
            assert f.view.filled_qty == cum
            assert f.view.avg_price == pytest.approx(notional / cum)
        assert cum == 20_000 and fills[-1].view.status is OrderStatus.FILLED
        assert len({f.exec_id for f in fills}) == len(fills)
        assert isinstance(events[-1], OrderCompleted) and "is_bps" in events[-1].tca
        # the journal holds the same fills, decisions and schedule the API serves
        stored = desk.fills(view.parent_id)
        assert [s["exec_id"] for s in stored] == [f.exec_id for f in fills]
        assert sum(s["qty"] for s in stored) == 20_000
        assert desk.decisions(view.parent_id)
        sched = desk.schedule(view.parent_id)
        # a point per decision (every 30 s until the sweep at 180 s), then the sweeps
        assert len(sched) >= 7 and sched[-1]["filled_qty"] == 20_000
        targets = [p["target_qty"] for p in sched]
        assert targets == sorted(targets) and targets[-1] == 20_000
        assert desk.tca(view.parent_id)["filled_qty"] == 20_000


async def test_an_order_not_done_by_its_horizon_expires(tmp_path: Path) -> None:
    async with simulated_desk(tmp_path, SPEED) as desk:
        events = record(desk)
        # a buy limited far below the market cannot fill
        mid = desk.parent(desk.submit(order(desk, "X0", qty=1_000)).parent_id).arrival_mid
        view = desk.submit(
            order(
                desk,
                "X1",
                horizon_s=90,
                side=Side.BUY,
                ord_type=OrdType.LIMIT,
                limit_price=round(mid * 0.96, 2),
            )
        )
        await until(lambda: desk.parent(view.parent_id).status.terminal)
        await desk.sync()
        done = desk.parent(view.parent_id)
        assert done.status is OrderStatus.EXPIRED and done.filled_qty == 0
        assert "unfilled" in done.text
        expired = next(e for e in events if isinstance(e, OrderExpired))
        assert expired.view.parent_id == view.parent_id
