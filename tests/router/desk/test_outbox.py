"""Commit, then publish, with a failing journal (issue 24, defects 2, 3 and 5): writes
that fail before or after the database took them, or stall; no fill lost or reported
twice, the kill switch an outage engages, the loop never blocked."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import make_url

from router.desk import DeskConfig
from router.desk.metrics import DeskMetrics
from router.desk.outbox import Outbox
from router.desk_api import (
    DeskEvent,
    InvalidStateError,
    JournalUnavailableError,
    KillSwitchChanged,
)
from router.journal import Batch, Journal, SvcFillRow, SvcMetaRow
from router.service import simulated_desk
from router.store import DbTimeouts, StoreError
from tests.router.dbproxy import TcpProxy
from tests.router.desk.support import (
    SPEED,
    order,
    record,
    reported_exactly_once,
    until,
)


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
        events = record(desk)
        outage = Outage(desk.journal, after_commit=when == "after")
        pid = desk.submit(order(desk, "J1", qty=40_000, horizon_s=600, strategy="sor")).parent_id
        await until(lambda: desk.parent(pid).filled_qty > 0)
        outage.arm(0.5)
        await until(lambda: outage.since is not None, what="no fill came")
        await until(lambda: outage.over)
        await until(lambda: desk.ready, 10, "the journal never came back")
        desk.release_kill()
        await until(lambda: desk.parent(pid).status.terminal, 40)
        await desk.sync()
        assert outage.failures >= 1
        assert reported_exactly_once(events, desk, pid) == 40_000


@pytest.mark.parametrize("auto_release", [False, True])
async def test_a_journal_outage_engages_the_kill_switch_with_reason_time_and_event(
    tmp_path: Path, auto_release: bool
) -> None:
    config = {"auto_release_kill": True} if auto_release else {}  # off: the default
    async with simulated_desk(tmp_path, SPEED, **config) as desk:
        events = record(desk)
        outage = Outage(desk.journal)
        pid = desk.submit(order(desk, "J2", qty=40_000, horizon_s=600, strategy="sor")).parent_id
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
        assert reported_exactly_once(events, desk, pid) > 0


async def test_a_kill_switch_a_person_engaged_is_never_released_by_the_journal(
    tmp_path: Path,
) -> None:
    async with simulated_desk(tmp_path, SPEED, auto_release_kill=True) as desk:
        outage = Outage(desk.journal)
        pid = desk.submit(order(desk, "J3", qty=40_000, horizon_s=600, strategy="sor")).parent_id
        await until(lambda: desk.parent(pid).filled_qty > 0)
        outage.arm(0.5)
        await until(lambda: desk.kill_engaged, 5)
        desk.engage_kill("a person says stop")
        await until(lambda: outage.over and desk.ready, 10)
        await asyncio.sleep(0.3)
        assert desk.kill_engaged


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
            events = record(desk)
            pid = desk.submit(order(desk, "S1", qty=40_000, horizon_s=900, strategy="sor"))
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
            assert reported_exactly_once(events, desk, pid_) > 0


# ------------------------------------------------------------------ against a fake journal


class FakeJournal:
    """Takes batches; the next `fail` commits raise as a refused database's would."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.fail = 0

    def commit(self, batch: Batch) -> None:
        if self.fail:
            self.fail -= 1
            raise StoreError("refused")
        self.batches.append(batch)


def _outbox(journal: FakeJournal, health: list[str]) -> tuple[Outbox, list[DeskEvent]]:
    config = DeskConfig(symbols={"QDI": "calm"}, journal_retry_s=0.01, journal_retry_max_s=0.02)
    outbox = Outbox(
        config,
        journal,  # type: ignore[arg-type]
        lambda: 7,
        DeskMetrics(CollectorRegistry()),
        on_down=lambda: health.append("down"),
        on_up=lambda: health.append("up"),
    )
    published: list[DeskEvent] = []
    outbox.subscribe(published.append)
    return outbox, published


def _stage(outbox: Outbox, n: int) -> DeskEvent:
    outbox.batch.upsert(SvcMetaRow, {"key": f"k{n}", "value": n})
    event = DeskEvent(n)
    outbox.events.append(event)
    outbox.commit_soon()
    return event


async def test_events_are_published_only_once_their_rows_are_committed() -> None:
    journal = FakeJournal()
    outbox, published = _outbox(journal, [])
    first = _stage(outbox, 1)  # before start: written at once, on this thread
    assert len(journal.batches) == 1 and published == [first]
    outbox.start(asyncio.get_running_loop())
    second = _stage(outbox, 2)
    third = _stage(outbox, 3)  # the same turn of the loop: the same transaction
    assert published == [first]
    await outbox.sync()
    assert published == [first, second, third] and len(journal.batches) == 2
    rows = journal.batches[1].upserts.values()
    assert {"key": "clock_ns", "value": 7} in rows  # every commit carries the clock
    await outbox.close()


async def test_a_failed_write_is_retried_and_its_events_wait_for_it() -> None:
    journal = FakeJournal()
    health: list[str] = []
    outbox, published = _outbox(journal, health)
    outbox.start(asyncio.get_running_loop())
    journal.fail = 3
    event = _stage(outbox, 1)
    await until(lambda: bool(outbox.error), 5)
    assert not outbox.ok and published == [] and outbox.pending == 1
    with pytest.raises(JournalUnavailableError):
        await outbox.sync()
    await until(lambda: published == [event], 5)
    assert health == ["down", "up"] and outbox.ok and outbox.pending == 0
    assert len(journal.batches) == 1
    await outbox.close()


def test_rollback_forgets_what_was_staged_since_the_mark() -> None:
    outbox, _ = _outbox(FakeJournal(), [])
    outbox.batch.upsert(SvcMetaRow, {"key": "a", "value": 1})
    outbox.events.append(DeskEvent(1))
    mark = outbox.mark()
    outbox.batch.upsert(SvcMetaRow, {"key": "a", "value": 2})
    outbox.batch.insert(SvcFillRow, {"exec_id": "x"})
    outbox.events.append(DeskEvent(2))
    outbox.rollback(mark)
    assert list(outbox.batch.upserts.values()) == [{"key": "a", "value": 1}]
    assert outbox.batch.inserts == [] and outbox.events == [DeskEvent(1)]
