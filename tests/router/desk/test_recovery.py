"""The desk after a crash: open parents resume from the journal (SQLite and PostgreSQL)
with their exact fills, a row that cannot be loaded is quarantined (issue 24, defect 1),
and the service clock never goes back (defect 4)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from router.desk_api import (
    OrderFilled,
    OrderRejectedError,
    OrderStatus,
)
from router.domain import NANOS_PER_SECOND
from router.journal import Batch, Journal, SvcMetaRow
from router.runtime import LoopClock
from router.service import service_clock, simulated_desk
from router.store import Store
from tests.router.desk.support import (
    SPEED,
    journal_url,
    new_desk,
    order,
    record,
    until,
)


async def _crash_after_fills(folder: Path, url: str) -> tuple[str, int]:
    """Run a desk until its parent has fills, then stop it the way a crash would: no
    cancels, no flush (the pump just stops). Returns (parent_id, filled)."""
    loop = asyncio.get_running_loop()
    clock = service_clock(loop, SPEED)
    journal = Journal.open(url)
    desk = new_desk(journal, clock.now_ns)
    desk.start()
    view = desk.submit(order(desk, "REC1", qty=60_000, horizon_s=900, strategy="sor"))
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
    url = journal_url(backend, tmp_path, request)
    pid, filled = await _crash_after_fills(tmp_path, url)
    assert filled >= 10_000
    async with simulated_desk(tmp_path, SPEED, db_url=url) as desk:
        events = record(desk)
        view = desk.parent(pid)
        assert view.status is OrderStatus.WORKING and view.filled_qty == filled
        assert desk.find("OMS", "REC1") == view
        with pytest.raises(OrderRejectedError):  # ClOrdIDs survive the restart
            desk.submit(order(desk, "REC1"))
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
        assert desk.submit(order(desk, "REC2")).parent_id != pid


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("bad", ["1e308", "'Infinity'", "-1"])
async def test_recovery_quarantines_a_bad_row_and_starts(
    tmp_path: Path, backend: str, bad: str, request: pytest.FixtureRequest
) -> None:
    url = journal_url(backend, tmp_path, request)
    async with simulated_desk(tmp_path, SPEED, db_url=url) as desk:
        a = desk.submit(order(desk, "Q1", horizon_s=900))
        b = desk.submit(order(desk, "Q2", horizon_s=900))
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
                desk.submit(order(desk, "Q1"))
            assert desk.find("OMS", "Q1") is None
            if again:  # the kill switch passes it over
                assert desk.engage_kill("after recovery") == 1


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
    desk = new_desk(journal, clock.now_ns)
    desk.start()
    events = record(desk)
    pid = desk.submit(order(desk, "C1", qty=60_000, horizon_s=900, strategy="sor")).parent_id
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
