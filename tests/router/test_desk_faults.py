"""The desk under bad input and a failing journal (issue 24, defects 1-5), in process:
absurd prices and quantities, a half-built order, a bad row in the journal, journal
writes that fail (before or after the database took them) or stall, the kill switch
that an outage engages, and the service clock across a restart."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from router.desk import Desk
from router.desk_api import (
    CancelRejectedError,
    CancelRequest,
    DeskEvent,
    InvalidStateError,
    JournalUnavailableError,
    KillSwitchChanged,
    OrderFilled,
    OrderRejected,
    OrderRejectedError,
    OrderStatus,
    OrdRejReason,
    ReplaceRequest,
)
from router.domain import NANOS_PER_SECOND, OrdType, Side
from router.engine import ParentExecution
from router.journal import Batch, Journal, SvcFillRow, SvcMetaRow
from router.runtime import LoopClock
from router.service import service_clock, simulated_desk
from router.store import DbTimeouts, Store, StoreError
from tests.router.dbproxy import TcpProxy
from tests.router.test_desk import SPEED, _desk, _order  # the same desk and orders


async def until(pred: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(what or "condition not met in time")
        await asyncio.sleep(0.01)


def _record(desk: Desk) -> list[DeskEvent]:
    events: list[DeskEvent] = []
    desk.subscribe(events.append)
    return events


def _url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'j.db'}"
    return str(request.getfixturevalue("pg_url"))


def _reported_exactly_once(events: list[DeskEvent], desk: Desk, pid: str) -> int:
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


# ------------------------------------------------------------------ defect 1: bad input


@pytest.mark.parametrize(
    ("side", "price", "words"),
    [
        (Side.SELL, 1e308, "limit price"),
        (Side.BUY, 1e308, "limit price"),
        (Side.SELL, math.inf, "finite"),
        (Side.SELL, -math.inf, "finite"),
        (Side.SELL, math.nan, "finite"),
        (Side.SELL, -5.0, "> 0"),
        (Side.SELL, 0.0, "> 0"),
        (Side.SELL, 5e-324, "tick"),  # the smallest float: rounds to zero ticks
        (Side.SELL, 250.0, "from the mid"),  # a sell 2.5 times the market: a typo
        (Side.BUY, 20.0, "from the mid"),
        (Side.SELL, 100.005, "tick size"),  # between two ticks
        (Side.SELL, "100", "number"),
        (Side.SELL, True, "number"),
    ],
)
async def test_absurd_limit_prices_are_rejected_before_anything_is_stored(
    tmp_path: Path, side: Side, price: Any, words: str
) -> None:
    async with simulated_desk(tmp_path, SPEED) as desk:
        events = _record(desk)
        with pytest.raises(OrderRejectedError) as err:
            desk.submit(_order(desk, "BIG", side=side, ord_type=OrdType.LIMIT, limit_price=price))
        await desk.sync()
        assert words in err.value.text, err.value.text
        assert err.value.field == "limit_price"
        assert [type(e) for e in events] == [OrderRejected]
        assert desk.parents() == [] and desk.journal.parents() == []
        assert desk.journal.clordids() == [] and desk.find("OMS", "BIG") is None
        # the desk is unharmed: the kill switch and a good order work
        assert desk.engage_kill("after a bad order") == 0
        desk.release_kill()
        view = desk.submit(_order(desk, "OK", ord_type=OrdType.LIMIT, limit_price=99.0))
        assert view.status is OrderStatus.WORKING and view.limit_price == 99.0


@pytest.mark.parametrize(
    ("qty", "reason"),
    [
        (100.5, OrdRejReason.INCORRECT_QUANTITY),
        (1e308, OrdRejReason.INCORRECT_QUANTITY),
        (math.nan, OrdRejReason.INCORRECT_QUANTITY),
        (True, OrdRejReason.INCORRECT_QUANTITY),
        (-5, OrdRejReason.INCORRECT_QUANTITY),
        (10**30, OrdRejReason.ORDER_EXCEEDS_LIMIT),
    ],
)
async def test_absurd_quantities_are_rejected_before_anything_is_stored(
    tmp_path: Path, qty: Any, reason: OrdRejReason
) -> None:
    async with simulated_desk(tmp_path, SPEED) as desk:
        with pytest.raises(OrderRejectedError) as err:
            desk.submit(_order(desk, "Q", qty=qty))
        await desk.sync()
        assert err.value.reason is reason and err.value.field == "qty"
        assert desk.parents() == [] and desk.journal.parents() == []


async def test_a_replace_to_an_absurd_limit_or_quantity_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    async with simulated_desk(tmp_path, SPEED) as desk:
        view = desk.submit(_order(desk, "R1", qty=30_000, horizon_s=600))
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


async def test_an_order_that_fails_to_start_leaves_nothing_and_the_kill_switch_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All or nothing: whatever breaks while an order starts, it is rejected, nothing
    of it is stored or half-registered, and cancel and the kill switch still work."""
    async with simulated_desk(tmp_path, SPEED) as desk:
        events = _record(desk)
        keep = desk.submit(_order(desk, "K0", horizon_s=900))

        def broken(self: Any, from_ns: Any = None) -> None:
            raise RuntimeError("boom")

        with monkeypatch.context() as m:
            m.setattr(ParentExecution, "start", broken)
            with pytest.raises(OrderRejectedError) as err:
                desk.submit(_order(desk, "K1", horizon_s=900))
        assert err.value.reason is OrdRejReason.OTHER
        await desk.sync()
        assert [v.parent_id for v in desk.parents()] == [keep.parent_id]
        assert [r.parent_id for r in desk.journal.parents()] == [keep.parent_id]
        assert desk.find("OMS", "K1") is None
        assert any(isinstance(e, OrderRejected) and e.cl_ord_id == "K1" for e in events)
        assert desk.engage_kill("test") == 1
        await until(lambda: desk.parent(keep.parent_id).status is OrderStatus.CANCELED)
        await desk.sync()
        kills = [e for e in events if isinstance(e, KillSwitchChanged)]
        assert kills and kills[-1].engaged and kills[-1].canceled_parents == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("bad", ["1e308", "'Infinity'", "-1"])
async def test_recovery_quarantines_a_bad_row_and_starts(
    tmp_path: Path, backend: str, bad: str, request: pytest.FixtureRequest
) -> None:
    url = _url(backend, tmp_path, request)
    async with simulated_desk(tmp_path, SPEED, db_url=url) as desk:
        a = desk.submit(_order(desk, "Q1", horizon_s=900))
        b = desk.submit(_order(desk, "Q2", horizon_s=900))
        await desk.sync()
    # a row that admission would never have written (an older version did)
    value = {"sqlite": {"'Infinity'": "9e999"}}.get(backend, {}).get(bad, bad)
    engine = Store.open(url, create=False).engine
    with engine.begin() as conn:
        conn.execute(
            text(
                f"UPDATE svc_parents SET ord_type = 'limit', limit_price = {value} "
                "WHERE parent_id = :p"
            ),
            {"p": a.parent_id},
        )
    engine.dispose()
    for again in (False, True):  # and again: a quarantined row stays out of the way
        async with simulated_desk(tmp_path, SPEED, db_url=url) as desk:
            assert desk.parent(b.parent_id).status is OrderStatus.WORKING
            assert a.parent_id not in {v.parent_id for v in desk.parents()}
            quarantined = desk.journal.quarantined()
            assert [q.parent_id for q in quarantined] == [a.parent_id]
            assert "limit" in quarantined[0].reason
            assert desk.metrics()["parents_quarantined"] == 1.0
            with pytest.raises(OrderRejectedError):  # its ClOrdID stays taken
                desk.submit(_order(desk, "Q1"))
            assert desk.find("OMS", "Q1") is None
            if again:  # the kill switch passes it over
                assert desk.engage_kill("after recovery") == 1


# ------------------------------------------------------------------ defect 2: failed writes


class Outage:
    """Makes the desk's journal fail its writes for `seconds` of wall time, starting with
    the first batch that holds a fill after `arm()`: before the database sees the batch,
    or after it committed it (the answer lost on the way back)."""

    def __init__(self, journal: Journal, *, after_commit: bool = False) -> None:
        self.journal = journal
        self.real = journal.commit
        self.after_commit = after_commit
        self.armed_for = 0.0
        self.since: float | None = None
        self.failures = 0
        journal.commit = self.commit  # type: ignore[method-assign]

    def arm(self, seconds: float) -> None:
        self.armed_for = seconds

    @property
    def down(self) -> bool:
        return self.since is not None and time.monotonic() - self.since < self.armed_for

    @property
    def over(self) -> bool:
        return self.since is not None and not self.down

    def commit(self, batch: Batch) -> None:
        fills = any(t is SvcFillRow for t, _ in batch.inserts)
        if self.armed_for and self.since is None and fills:
            self.since = time.monotonic()
        if self.down and not self.after_commit:
            self.failures += 1
            raise StoreError("database test: cannot write the journal: connection refused")
        self.real(batch)
        if self.down:
            self.failures += 1
            raise StoreError("database test: cannot write the journal: connection lost")


@pytest.mark.parametrize("when", ["before", "after"])
async def test_a_failed_journal_write_loses_no_fill_and_reports_each_once(
    tmp_path: Path, when: str
) -> None:
    async with simulated_desk(tmp_path, SPEED) as desk:
        events = _record(desk)
        outage = Outage(desk.journal, after_commit=when == "after")
        pid = desk.submit(_order(desk, "J1", qty=40_000, horizon_s=600, strategy="sor")).parent_id
        await until(lambda: desk.parent(pid).filled_qty > 0)
        outage.arm(0.5)
        await until(lambda: outage.since is not None, what="no fill came")
        await until(lambda: outage.over)
        await until(lambda: desk.ready, 10, "the journal never came back")
        desk.release_kill()
        await until(lambda: desk.parent(pid).status.terminal, 40)
        await desk.sync()
        assert outage.failures >= 1
        assert _reported_exactly_once(events, desk, pid) == 40_000


# ------------------------------------------------------------------ defect 5: kill switch


@pytest.mark.parametrize("auto_release", [False, True])
async def test_a_journal_outage_engages_the_kill_switch_with_reason_time_and_event(
    tmp_path: Path, auto_release: bool
) -> None:
    config = {"auto_release_kill": True} if auto_release else {}  # off: the default
    async with simulated_desk(tmp_path, SPEED, **config) as desk:
        events = _record(desk)
        outage = Outage(desk.journal)
        pid = desk.submit(_order(desk, "J2", qty=40_000, horizon_s=600, strategy="sor")).parent_id
        await until(lambda: desk.parent(pid).filled_qty > 0)
        outage.arm(1.0)
        # published during the outage (it is no journaled fact), with why and when
        await until(lambda: any(isinstance(e, KillSwitchChanged) for e in events), 5)
        assert outage.down and desk.kill_engaged and not desk.ready
        kill = next(e for e in events if isinstance(e, KillSwitchChanged))
        assert kill.engaged and "journal" in kill.reason and kill.ts_ns >= desk.parent(pid).start_ns
        status = desk.journal_status()
        assert not status["ok"] and "refused" in status["error"] and status["pending"] >= 1
        with pytest.raises(InvalidStateError, match="journal"):  # not while it cannot write
            desk.release_kill()
        with pytest.raises(JournalUnavailableError):  # reads answer at once, too
            desk.fills(pid)
        await until(lambda: outage.over and desk.ready, 10, "the journal never came back")
        if auto_release:
            await until(lambda: not desk.kill_engaged, 5)
            await desk.sync()
            released = [e for e in events if isinstance(e, KillSwitchChanged)][-1]
            assert not released.engaged and "journal" in released.reason
        else:
            await asyncio.sleep(0.3)
            assert desk.kill_engaged  # a person looks first (the default)
            desk.release_kill()
        await until(lambda: desk.parent(pid).status.terminal, 40)
        await desk.sync()
        # (the outage took a good part of its horizon: it may end unfilled)
        assert _reported_exactly_once(events, desk, pid) > 0


async def test_a_kill_switch_a_person_engaged_is_never_released_by_the_journal(
    tmp_path: Path,
) -> None:
    async with simulated_desk(tmp_path, SPEED, auto_release_kill=True) as desk:
        outage = Outage(desk.journal)
        pid = desk.submit(_order(desk, "J3", qty=40_000, horizon_s=600, strategy="sor")).parent_id
        await until(lambda: desk.parent(pid).filled_qty > 0)
        outage.arm(0.5)
        await until(lambda: desk.kill_engaged, 5)
        desk.engage_kill("a person says stop")
        await until(lambda: outage.over and desk.ready, 10)
        await asyncio.sleep(0.3)
        assert desk.kill_engaged


# ------------------------------------------------------------------ defect 3: a stall


class LoopLag:
    """The longest the event loop was late for a 10 ms sleep."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(0.01)
            self.worst = max(self.worst, time.monotonic() - t0 - 0.01)

    def stop(self) -> float:
        self._task.cancel()
        return self.worst


@pytest.mark.parametrize("statement_s", [5.0, 1.0])
async def test_a_stalled_database_neither_blocks_the_loop_nor_loses_a_fill(
    tmp_path: Path, pg_url: str, statement_s: float
) -> None:
    """A 3 s stall (sockets open, nothing passes): shorter than the statement timeout,
    the write waits it out; longer, the write is cut off at its deadline, the kill
    switch engages, and the write is retried until the database answers again."""
    u = make_url(pg_url)
    timeouts = DbTimeouts(connect_s=2.0, statement_s=statement_s)
    with TcpProxy(u.host or "127.0.0.1", u.port or 5432) as proxy:
        url = proxy.url(pg_url)
        async with simulated_desk(tmp_path, SPEED, db_url=url, db_timeouts=timeouts) as desk:
            events = _record(desk)
            pid = desk.submit(_order(desk, "S1", qty=40_000, horizon_s=900, strategy="sor"))
            pid_ = pid.parent_id
            await until(lambda: desk.parent(pid_).filled_qty > 0)
            lag = LoopLag()
            t0 = time.monotonic()
            proxy.stall(3.0)  # resumes by itself: a blocked loop could not resume it
            await until(lambda: not desk.ready, 2.5, "the desk says ready while stalled")
            assert time.monotonic() - t0 < 2.0  # journal_stall_s (1 s) after the stall
            # reads are refused at once rather than wait on the stalled database
            t1 = time.monotonic()
            with pytest.raises(JournalUnavailableError):
                desk.fills(pid_)
            assert time.monotonic() - t1 < 0.1
            await until(lambda: desk.ready, 15, "the journal never came back")
            worst = lag.stop()
            assert worst < 0.5, f"the loop stood still for {worst:.1f} s"
            kills = [e for e in events if isinstance(e, KillSwitchChanged)]
            if statement_s < 3.0:
                assert kills and "did not answer in time" in kills[0].reason
                assert desk.kill_engaged
                desk.release_kill()
            else:
                assert not kills and not desk.kill_engaged
            await until(lambda: desk.parent(pid_).status.terminal, 40)
            await desk.sync()
            assert _reported_exactly_once(events, desk, pid_) > 0


# ------------------------------------------------------------------ defect 4: the clock


async def test_the_service_clock_never_goes_back_across_a_crash(tmp_path: Path) -> None:
    """A service clock that runs ahead of the wall (as after a day at sim speed 100:
    more than three months ahead) must resume after a crash after every fact the old
    process reported, not at the wall clock: the parents would stall until the wall
    caught up."""
    loop = asyncio.get_running_loop()
    url = f"sqlite:///{tmp_path / 'j.db'}"
    journal = Journal.open(url)
    ahead = 99 * 86_400 * NANOS_PER_SECOND
    clock = LoopClock(loop, origin_ns=time.time_ns() + ahead, speed=SPEED)
    desk = _desk(journal, clock.now_ns)
    desk.start()
    events = _record(desk)
    pid = desk.submit(_order(desk, "C1", qty=60_000, horizon_s=900, strategy="sor")).parent_id
    await until(lambda: desk.parent(pid).filled_qty >= 10_000)
    await desk.sync()
    desk._pump.stop()  # the process dies: nothing more runs or is written
    last = max(e.ts_ns for e in events)
    await asyncio.sleep(0.2)
    journal.close()
    async with simulated_desk(tmp_path, SPEED, db_url=url) as again:
        assert again.now_ns() > last
        # the parent trades on at once, not when the wall clock has caught up
        filled = again.parent(pid).filled_qty
        await until(lambda: again.parent(pid).filled_qty > filled, 5, "the parent stalls")


# ------------------------------------------------------------------ the REST edge


async def test_rest_refuses_an_absurd_limit_with_a_4xx_and_the_desk_stays_usable(
    tmp_path: Path,
) -> None:
    """Issue 24's reproduction through the HTTP API on the real desk: it answered 500
    and kept the order. A limit the API's own schema lets through (it caps prices at
    1e9) but no market could trade: a 422 that names the problem, nothing kept."""
    from aiohttp.test_utils import TestClient, TestServer

    from router.api import make_app

    auth = {"Authorization": "Bearer t"}
    async with (
        simulated_desk(tmp_path, SPEED) as desk,
        TestClient(TestServer(make_app(desk, "t"))) as client,
    ):
        body = {"symbol": "QDI", "side": "sell", "qty": 100, "limit_price": 1e8}
        resp = await client.post("/api/orders", json=body, headers=auth)
        assert resp.status == 422, await resp.text()
        assert "from the mid" in (await resp.json())["message"]
        assert (await (await client.get("/api/orders")).json())["orders"] == []
        ok = {"symbol": "QDI", "side": "sell", "qty": 1000, "limit_price": 101.0}
        resp = await client.post("/api/orders", json=ok, headers=auth)
        assert resp.status == 201, await resp.text()
        pid = (await resp.json())["parent_id"]
        for price in (1e8, 100.005):
            replace = {"limit_price": price}
            resp = await client.post(f"/api/orders/{pid}/replace", json=replace, headers=auth)
            assert 400 <= resp.status < 500, await resp.text()
            assert desk.parent(pid).limit_price == 101.0
        resp = await client.post("/api/kill-switch", json={"reason": "t"}, headers=auth)
        assert resp.status == 200 and (await resp.json())["canceled_parents"] == 1


async def test_the_restarted_clock_continues_or_pauses_but_never_goes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """service_clock across restarts, on a wall clock the test sets: a quick restart
    continues the old clock exactly; a long one pauses the simulation (the parents keep
    their horizon) but starts past anything the old process can have shown; a wall
    clock set back changes nothing."""
    from router import service

    loop = asyncio.get_running_loop()
    s = NANOS_PER_SECOND
    w0 = 1_800_000_000 * s
    wall = [w0]
    monkeypatch.setattr(service.time, "time_ns", lambda: wall[0])
    journal = Journal.open(f"sqlite:///{tmp_path / 'j.db'}")
    try:
        assert service_clock(loop, 100.0, journal)._origin_ns == w0  # a new journal
        last = w0 + 1000 * s  # it ran 10 s at 100x; its last commit then
        batch = Batch()
        batch.upsert(SvcMetaRow, {"key": "clock_ns", "value": last})
        journal.commit(batch)
        wall[0] = w0 + 10 * s + s // 2  # killed, back half a second later
        assert service_clock(loop, 100.0, journal)._origin_ns == last + 50 * s
        # now the epoch is (last + 50 s at w0 + 10.5 s); down for a minute
        wall[0] += 60 * s
        again = service_clock(loop, 100.0, journal)._origin_ns
        assert again == last + 50 * s + 200 * s  # 2 x CLOCK_SAVE_S x 100: paused after
        wall[0] = w0 - 3600 * s  # the wall clock set an hour back
        assert service_clock(loop, 100.0, journal)._origin_ns == again + 1
    finally:
        journal.close()
