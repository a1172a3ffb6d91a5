"""The live desk on real simulated markets, its journal (SQLite and PostgreSQL) and its
recovery after a crash. The service clock runs fast (sim_speed) so that parents of a few
simulated minutes finish in a second or two of wall time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from router.desk import Desk, DeskConfig
from router.desk.sim import SimMarkets
from router.desk_api import (
    CancelRejected,
    CancelRejectedError,
    CancelRequest,
    CxlRejReason,
    DeskEvent,
    InvalidStateError,
    NewOrder,
    OrderAccepted,
    OrderCanceled,
    OrderCompleted,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRejectedError,
    OrderReplaced,
    OrderStatus,
    OrdRejReason,
    ReplaceRequest,
    UnknownOrderError,
)
from router.domain import NANOS_PER_SECOND, DomainError, OrdType, Side
from router.journal import Journal
from router.service import service_clock, simulated_desk

SPEED = 400.0


def _order(desk: Desk, cl: str, qty: Any = 20_000, horizon_s: float = 240.0, **kw: Any) -> NewOrder:
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


def _desk(journal: Journal, clock: Callable[[], int]) -> Desk:
    """A desk on QDI's calm market, not started."""
    config = DeskConfig(symbols={"QDI": "calm"}, sim_speed=SPEED)
    return Desk(config, journal, clock, SimMarkets(config))


async def until(pred: Callable[[], bool], timeout: float = 20.0) -> None:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def _record(desk: Desk) -> list[DeskEvent]:
    events: list[DeskEvent] = []
    desk.subscribe(events.append)
    return events


async def test_parent_fills_and_every_fact_is_journaled(tmp_path: Path) -> None:
    async with simulated_desk(tmp_path, SPEED) as desk:
        events = _record(desk)
        view = desk.submit(_order(desk, "A1"))
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


async def test_every_strategy_a_client_may_name_runs(tmp_path: Path) -> None:
    async with simulated_desk(tmp_path, SPEED) as desk:
        before = desk.metrics()
        ids = []
        for name in ("twap", "vwap", "ac", "sor", "ml", None):
            ids.append(desk.submit(_order(desk, f"S-{name}", qty=10_000, strategy=name)).parent_id)
        pov = desk.submit(_order(desk, "S-pov", qty=5_000, strategy="pov", participation=0.2))
        ids.append(pov.parent_id)
        await until(lambda: all(desk.parent(p).status.terminal for p in ids), timeout=40)
        views = [desk.parent(p) for p in ids]
        assert [v.strategy for v in views] == ["twap", "vwap", "ac", "sor", "ml", "ml", "pov"]
        assert all(v.status is OrderStatus.FILLED for v in views), [v.status for v in views]
        # the ml orders scored their passive options with the fill model; every served
        # model reports the rows it scored and the feature values it clipped
        after = desk.metrics()
        assert after["model_fill_rows_total"] > before["model_fill_rows_total"]
        for name in ("dealer_respond", "dealer_best", "dealer_hit", "fill"):
            rows, clipped = after[f"model_{name}_rows_total"], after[f"model_{name}_clipped_total"]
            assert clipped >= before[f"model_{name}_clipped_total"] >= 0
            assert rows >= before[f"model_{name}_rows_total"]


@pytest.mark.parametrize(
    ("change", "reason", "words"),
    [
        ({"symbol": "XYZ"}, OrdRejReason.UNKNOWN_SYMBOL, "unknown symbol"),
        ({"qty": 0}, OrdRejReason.INCORRECT_QUANTITY, "positive integer"),
        ({"qty": 5_000_000}, OrdRejReason.ORDER_EXCEEDS_LIMIT, "of ADV"),
        ({"horizon_s": 10}, OrdRejReason.TOO_LATE_TO_ENTER, "at least"),
        ({"horizon_s": 10 * 3600}, OrdRejReason.EXCHANGE_CLOSED, "close"),
        ({"strategy": "yolo"}, OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC, "unknown strategy"),
        ({"ord_type": OrdType.LIMIT}, OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC, "limit price"),
        (
            {"ord_type": OrdType.LIMIT, "limit_price": 50.0},
            OrdRejReason.ORDER_EXCEEDS_LIMIT,
            "through the mid",
        ),
        (
            {"strategy": "pov", "participation": 1.5},
            OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC,
            "(0, 1]",
        ),
    ],
)
async def test_bad_orders_are_rejected_with_a_reason_and_change_nothing(
    tmp_path: Path, change: dict[str, Any], reason: OrdRejReason, words: str
) -> None:
    async with simulated_desk(tmp_path, SPEED) as desk:
        events = _record(desk)
        kw = dict(change)
        qty = kw.pop("qty", 10_000)
        horizon = kw.pop("horizon_s", 240.0)
        with pytest.raises(OrderRejectedError) as err:
            desk.submit(_order(desk, "BAD", qty=qty, horizon_s=horizon, **kw))
        await desk.sync()
        assert err.value.reason is reason and words in err.value.text
        assert len(events) == 1 and isinstance(events[0], OrderRejected)
        assert events[0].reason is reason and events[0].cl_ord_id == "BAD"
        assert desk.parents() == [] and desk.journal.parents() == []
        assert desk.find("OMS", "BAD") is None


async def test_duplicate_clordid_is_rejected_but_a_possresend_is_not_executed_twice(
    tmp_path: Path,
) -> None:
    async with simulated_desk(tmp_path, SPEED) as desk:
        first = desk.submit(_order(desk, "D1"))
        with pytest.raises(OrderRejectedError) as err:
            desk.submit(_order(desk, "D1"))
        assert err.value.reason is OrdRejReason.DUPLICATE_ORDER
        again = desk.submit(_order(desk, "D1", poss_resend=True))
        assert again.parent_id == first.parent_id
        assert len(desk.parents()) == 1
        # another client may use the same ClOrdID
        other = desk.submit(NewOrder("OMS2", "D1", "QDI", Side.BUY, 1_000, strategy="twap"))
        assert other.parent_id != first.parent_id


async def test_cancel_pulls_every_child_and_stops_the_fills(tmp_path: Path) -> None:
    async with simulated_desk(tmp_path, SPEED) as desk:
        events = _record(desk)
        view = desk.submit(_order(desk, "C1", qty=50_000, horizon_s=600, strategy="sor"))
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
        other = desk.submit(_order(desk, "C2"))
        with pytest.raises(CancelRejectedError) as err:
            desk.cancel(CancelRequest("OMS", "C1-x", orig_cl_ord_id="C2"))
        assert err.value.reason is CxlRejReason.DUPLICATE_CLORDID
        assert desk.parent(other.parent_id).status is OrderStatus.WORKING


async def test_replace_changes_quantity_limit_and_horizon(tmp_path: Path) -> None:
    async with simulated_desk(tmp_path, SPEED) as desk:
        events = _record(desk)
        view = desk.submit(_order(desk, "R1", qty=30_000, horizon_s=600))
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


async def test_pause_sends_nothing_until_resume(tmp_path: Path) -> None:
    async with simulated_desk(tmp_path, SPEED) as desk:
        events = _record(desk)
        view = desk.submit(_order(desk, "P1", qty=30_000, horizon_s=900))
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
        a = desk.submit(_order(desk, "K1", horizon_s=900))
        b = desk.submit(_order(desk, "K2", horizon_s=900, side=Side.BUY))
        assert desk.engage_kill("desk test") == 2
        with pytest.raises(OrderRejectedError) as err:
            desk.submit(_order(desk, "K3"))
        assert "kill switch" in err.value.text
        await until(lambda: all(desk.parent(p.parent_id).status.terminal for p in (a, b)))
        assert {desk.parent(p.parent_id).status for p in (a, b)} == {OrderStatus.CANCELED}
        desk.release_kill()
        assert desk.submit(_order(desk, "K4")).status is OrderStatus.WORKING


async def test_an_order_not_done_by_its_horizon_expires(tmp_path: Path) -> None:
    async with simulated_desk(tmp_path, SPEED) as desk:
        events = _record(desk)
        # a buy limited far below the market cannot fill
        mid = desk.parent(desk.submit(_order(desk, "X0", qty=1_000)).parent_id).arrival_mid
        view = desk.submit(
            _order(
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


async def _crash_after_fills(folder: Path, url: str) -> tuple[str, int]:
    """Run a desk until its parent has fills, then stop it the way a crash would: no
    cancels, no flush (the pump just stops). Returns (parent_id, filled)."""
    loop = asyncio.get_running_loop()
    clock = service_clock(loop, SPEED)
    journal = Journal.open(url)
    desk = _desk(journal, clock.now_ns)
    desk.start()
    view = desk.submit(_order(desk, "REC1", qty=60_000, horizon_s=900, strategy="sor"))
    await until(lambda: desk.parent(view.parent_id).filled_qty >= 10_000)
    await desk.sync()  # (the journal is written off the loop: what it holds by now)
    desk._pump.stop()  # the process "dies": no step, no cancel, no flush after this
    desk._outbox._write_next = lambda: None  # type: ignore[method-assign]  # nor another write
    await until(lambda: desk._outbox._writing is None)  # a write under way lands, or not
    stored = sum(f.qty for f in journal.fills(view.parent_id))
    journal.close()
    return view.parent_id, stored


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_recovery_resumes_open_parents_with_exact_fills(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'j.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    pid, filled = await _crash_after_fills(tmp_path, url)
    assert filled >= 10_000
    async with simulated_desk(tmp_path, SPEED, db_url=url) as desk:
        events = _record(desk)
        view = desk.parent(pid)
        assert view.status is OrderStatus.WORKING and view.filled_qty == filled
        assert desk.find("OMS", "REC1") == view
        with pytest.raises(OrderRejectedError):  # ClOrdIDs survive the restart
            desk.submit(_order(desk, "REC1"))
        await until(lambda: desk.parent(pid).status.terminal, timeout=40)
        await desk.sync()
        done = desk.parent(pid)
        assert done.status is OrderStatus.FILLED and done.filled_qty == 60_000
        stored = desk.fills(pid)
        assert sum(f["qty"] for f in stored) == 60_000
        assert len({f["exec_id"] for f in stored}) == len(stored)  # none reported twice
        new_fills = [e for e in events if isinstance(e, OrderFilled)]
        assert sum(f.last_qty for f in new_fills) == 60_000 - filled
        # the next parent gets a new id
        assert desk.submit(_order(desk, "REC2")).parent_id != pid


def test_config_refuses_an_unknown_default_strategy() -> None:
    with pytest.raises(DomainError, match="unknown strategy"):
        DeskConfig(symbols={"QDI": "calm"}, default_strategy="nope")


async def test_missing_models_stop_the_start_unless_the_config_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models import artifacts
    from models.artifacts import ModelError
    from router import app

    monkeypatch.setattr(artifacts, "MODELS_DIR", tmp_path / "nothing")
    app._served_models.cache_clear()
    try:
        with pytest.raises(ModelError, match="blockroute train"):
            async with simulated_desk(tmp_path, SPEED):
                pass
        async with simulated_desk(tmp_path, SPEED, model_fallback=True) as desk:
            assert "nothing" in desk.models_missing
            assert desk.metrics()["models_fallback"] == 1.0
            view = desk.submit(_order(desk, "F1", qty=5_000, strategy="ml"))
            assert view.strategy == "ml"  # as asked; routed by the heuristic router
            await until(lambda: desk.parent(view.parent_id).status.terminal)
            assert desk.parent(view.parent_id).filled_qty == 5_000
    finally:
        app._served_models.cache_clear()


async def test_a_stop_after_a_stall_leaves_no_child_open(tmp_path: Path) -> None:
    """The service clock ran on while the markets stood still (a long decision, a
    pause of the process): stopping then runs the backlog of simulated time, and no
    decision in it may send a child that nothing is left to pull."""
    now = [time.time_ns()]
    journal = Journal.open(f"sqlite:///{tmp_path / 'j.db'}")
    desk = _desk(journal, lambda: now[0])
    desk.start()
    try:
        view = desk.submit(_order(desk, "ST1", qty=60_000, horizon_s=900, strategy="sor"))
        while desk.parent(view.parent_id).filled_qty == 0:
            now[0] += NANOS_PER_SECOND
            desk._pump.advance(now[0])
        now[0] += 120 * NANOS_PER_SECOND  # four decisions due that the markets never ran
        await desk.stop()
        assert journal.open_children([view.parent_id]) == []
        assert desk.parent(view.parent_id).status is OrderStatus.WORKING  # resumes at start
    finally:
        journal.close()


async def test_the_start_compiles_the_ml_decision_before_any_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # with an empty numba cache the first ml decision would otherwise compile for about
    # a second inside the event loop
    from router import app

    warmed: list[bool] = []
    monkeypatch.setattr(app, "warm_up_ml", lambda: warmed.append(True))
    async with simulated_desk(tmp_path, SPEED) as desk:
        assert warmed == [True] and desk.ready
