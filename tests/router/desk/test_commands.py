"""The clients' commands on working parents: cancel (and its refusals), replace (and
its refusals), pause and resume, the kill switch."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from router.desk_api import (
    CancelRejected,
    CancelRejectedError,
    CancelRequest,
    CxlRejReason,
    InvalidStateError,
    OrderCanceled,
    OrderFilled,
    OrderRejectedError,
    OrderReplaced,
    OrderStatus,
    ReplaceRequest,
    UnknownOrderError,
)
from router.domain import NANOS_PER_SECOND, OrdType, Side
from router.service import simulated_desk
from tests.router.desk.support import (
    SPEED,
    order,
    record,
    until,
)


async def test_cancel_pulls_every_child_and_stops_the_fills(tmp_path: Path) -> None:
    async with simulated_desk(tmp_path, SPEED) as desk:
        events = record(desk)
        view = desk.submit(order(desk, "C1", qty=50_000, horizon_s=600, strategy="sor"))
        await until(lambda: desk.parent(view.parent_id).filled_qty > 0)
        pending = desk.cancel(CancelRequest("OMS", "C1-x", orig_cl_ord_id="C1"))
        assert pending.status in (OrderStatus.PENDING_CANCEL, OrderStatus.CANCELED)
        await until(lambda: desk.parent(view.parent_id).status.terminal)
        await desk.sync()
        done = desk.parent(view.parent_id)
        assert done.status is OrderStatus.CANCELED and done.leaves_qty == 0
        assert 0 < done.filled_qty < 50_000
        canceled = [e for e in events if isinstance(e, OrderCanceled)]
        assert len(canceled) == 1 and canceled[0].cl_ord_id == "C1-x"
        assert canceled[0].orig_cl_ord_id == "C1"
        after = len(events)
        await asyncio.sleep(0.3)  # about two simulated minutes: nothing more happens
        assert not [e for e in events[after:] if isinstance(e, OrderFilled)]
        assert desk.find("OMS", "C1-x") == desk.parent(view.parent_id)
        # too late, unknown, duplicate
        for req, reason in (
            (CancelRequest("OMS", "C1-y", orig_cl_ord_id="C1"), CxlRejReason.TOO_LATE_TO_CANCEL),
            (CancelRequest("OMS", "C9-y", orig_cl_ord_id="C9"), CxlRejReason.UNKNOWN_ORDER),
            (CancelRequest("OMS2", "C1-z", orig_cl_ord_id="C1"), CxlRejReason.UNKNOWN_ORDER),
        ):
            with pytest.raises(CancelRejectedError) as err:
                desk.cancel(req)
            await desk.sync()
            assert err.value.reason is reason
            rejected = [e for e in events if isinstance(e, CancelRejected)]
            assert rejected[-1].reason is reason and rejected[-1].cl_ord_id == req.cl_ord_id
        other = desk.submit(order(desk, "C2"))
        with pytest.raises(CancelRejectedError) as err:
            desk.cancel(CancelRequest("OMS", "C1-x", orig_cl_ord_id="C2"))
        assert err.value.reason is CxlRejReason.DUPLICATE_CLORDID
        assert desk.parent(other.parent_id).status is OrderStatus.WORKING


async def test_replace_changes_quantity_limit_and_horizon(tmp_path: Path) -> None:
    async with simulated_desk(tmp_path, SPEED) as desk:
        events = record(desk)
        view = desk.submit(order(desk, "R1", qty=30_000, horizon_s=600))
        await until(lambda: desk.parent(view.parent_id).filled_qty > 0)
        filled = desk.parent(view.parent_id).filled_qty
        with pytest.raises(CancelRejectedError) as err:
            desk.replace(ReplaceRequest("OMS", "R1-bad", orig_cl_ord_id="R1", qty=filled - 100))
        assert "below" in err.value.text
        assert desk.parent(view.parent_id).qty == 30_000  # unchanged
        new_end = desk.now_ns() + int(120 * NANOS_PER_SECOND)
        mid = desk.parent(view.parent_id).arrival_mid
        replaced = desk.replace(
            ReplaceRequest(
                "OMS",
                "R2",
                orig_cl_ord_id="R1",
                qty=40_000,
                ord_type=OrdType.LIMIT,
                limit_price=round(mid * 0.97, 2),
                expire_ns=new_end,
            )
        )
        assert replaced.qty == 40_000 and replaced.cl_ord_id == "R2"
        assert replaced.end_ns == new_end and replaced.ord_type is OrdType.LIMIT
        await desk.sync()
        replaced_events = [e for e in events if isinstance(e, OrderReplaced)]
        assert len(replaced_events) == 1 and replaced_events[0].orig_cl_ord_id == "R1"
        assert desk.find("OMS", "R1") == desk.find("OMS", "R2")
        await until(lambda: desk.parent(view.parent_id).status.terminal)
        done = desk.parent(view.parent_id)
        assert done.filled_qty > 30_000  # it traded past the old quantity
        assert done.updated_ns <= new_end + 5 * NANOS_PER_SECOND  # and ended by the new end
        # the limit held: no fill below it
        floor = round(mid * 0.97, 2)
        late = [f for f in desk.fills(view.parent_id) if f["ts_ns"] > replaced.updated_ns]
        assert late and min(f["price"] for f in late) >= floor - 1e-9


async def test_a_replace_to_an_absurd_limit_or_quantity_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    async with simulated_desk(tmp_path, SPEED) as desk:
        view = desk.submit(order(desk, "R1", qty=30_000, horizon_s=600))
        await desk.sync()
        for n, change in enumerate(
            [
                {"ord_type": OrdType.LIMIT, "limit_price": 1e308},
                {"ord_type": OrdType.LIMIT, "limit_price": math.inf},
                {"ord_type": OrdType.LIMIT, "limit_price": 100.005},
                {"qty": 30_000.5},
                {"qty": 10**30},
            ]
        ):
            with pytest.raises(CancelRejectedError):
                desk.replace(ReplaceRequest("OMS", f"R1-{n}", orig_cl_ord_id="R1", **change))
            after = desk.parent(view.parent_id)
            assert (after.qty, after.ord_type, after.limit_price) == (30_000, OrdType.MARKET, None)
            assert after.cl_ord_id == "R1" and after.status is OrderStatus.WORKING
        await desk.sync()
        row = desk.journal.parents()[0]
        assert (row.qty, row.limit_price, row.cl_ord_id) == (30_000, None, "R1")
        desk.cancel(CancelRequest("OMS", "R1-x", orig_cl_ord_id="R1"))
        await until(lambda: desk.parent(view.parent_id).status is OrderStatus.CANCELED)


async def test_pause_sends_nothing_until_resume(tmp_path: Path) -> None:
    async with simulated_desk(tmp_path, SPEED) as desk:
        events = record(desk)
        view = desk.submit(order(desk, "P1", qty=30_000, horizon_s=900))
        await until(lambda: desk.parent(view.parent_id).filled_qty > 0)
        desk.pause(view.parent_id)
        with pytest.raises(InvalidStateError):
            desk.pause(view.parent_id)
        await asyncio.sleep(0.1)
        mark = len(events)
        filled = desk.parent(view.parent_id).filled_qty
        await asyncio.sleep(0.4)  # about three simulated minutes
        sent = [e for e in events[mark:] if getattr(e, "what", "") == "sent"]
        assert sent == [] and desk.parent(view.parent_id).filled_qty == filled
        desk.resume(view.parent_id)
        await until(lambda: desk.parent(view.parent_id).status.terminal)
        assert desk.parent(view.parent_id).status is OrderStatus.FILLED
        with pytest.raises(UnknownOrderError):
            desk.pause("P404")


async def test_kill_switch_cancels_everything_and_refuses_new_orders(tmp_path: Path) -> None:
    async with simulated_desk(tmp_path, SPEED) as desk:
        a = desk.submit(order(desk, "K1", horizon_s=900))
        b = desk.submit(order(desk, "K2", horizon_s=900, side=Side.BUY))
        assert desk.engage_kill("desk test") == 2
        with pytest.raises(OrderRejectedError) as err:
            desk.submit(order(desk, "K3"))
        assert "kill switch" in err.value.text
        await until(lambda: all(desk.parent(p.parent_id).status.terminal for p in (a, b)))
        assert {desk.parent(p.parent_id).status for p in (a, b)} == {OrderStatus.CANCELED}
        desk.release_kill()
        assert desk.submit(order(desk, "K4")).status is OrderStatus.WORKING
