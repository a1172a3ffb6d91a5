"""Commit, then publish: the desk's facts go to the journal before anyone hears of them.

The desk's parts stage what a command or a step of the markets produced: journal rows in
`batch`, desk events in `events`. At the end of the loop's turn (`commit_soon`) the
outbox hands them to the journal's writer, a thread of its own that writes one
transaction at a time off the loop; what the loop produced meanwhile waits and goes into
the next transaction. Once a transaction is stored its events go to the listeners (FIX
gateway, MQTT bus, WebSocket), in order.

A write that fails (the database down, or silent past its deadline: see
router/store.py, DbTimeouts) is kept and retried, backing off from journal_retry_s to
journal_retry_max_s, until it succeeds; its events wait with it, so the fills of a
parent are reported once each, in order, only once stored. The outbox says when the
journal fails for the first time and when it writes again (`on_down`, `on_up`): the
desk decides what that means for trading.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from router.desk.config import DeskConfig
from router.desk.metrics import DeskMetrics
from router.desk_api import DeskEvent, JournalUnavailableError, Listener
from router.journal import CLOCK_KEY, Batch, Journal, SvcMetaRow
from router.store import StoreError

log = structlog.get_logger("blockroute.desk")

CLOCK_SAVE_S = 1.0  # an idle desk still writes its clock this often (wall seconds)


@dataclass(eq=False)
class _Unit:
    """What the loop handed to the journal in one go: the rows, then the events that
    may be published once they are stored, and the `sync()` calls waiting for them."""

    batch: Batch
    events: list[DeskEvent]
    waiters: list[asyncio.Future[None]]

    def absorb(self, later: _Unit) -> None:
        self.batch.merge(later.batch)
        self.events.extend(later.events)
        self.waiters.extend(later.waiters)


class Outbox:
    """Stages, commits and publishes the desk's facts (see the module docstring).
    Until `start` it commits and publishes on the caller's thread, at once."""

    def __init__(
        self,
        config: DeskConfig,
        journal: Journal,
        now_ns: Callable[[], int],
        metrics: DeskMetrics,
        on_down: Callable[[], None],
        on_up: Callable[[], None],
    ) -> None:
        self._config = config
        self._journal = journal
        self._now_ns = now_ns
        self._metrics = metrics
        self._on_down = on_down
        self._on_up = on_up
        self.batch = Batch()  # rows staged for the next transaction
        self.events: list[DeskEvent] = []  # published once that transaction is stored
        self._listeners: list[Listener] = []
        self._unjournaled: list[DeskEvent] = []  # published at the next flush, first
        self._synced: list[asyncio.Future[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush_pending = False
        # the journal's writer: units waiting (the first one being written, or failed
        # and waiting for its retry), the write under way, why the last write failed
        self._units: list[_Unit] = []
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="journal")
        self._writing: asyncio.Future[None] | None = None
        self._writing_since: float | None = None  # time.monotonic()
        self._retry: asyncio.TimerHandle | None = None
        self._retry_s = config.journal_retry_s
        self.error = ""  # why the journal cannot write ("" while it writes)
        self._down_since: float | None = None
        self._clock_saved_at = 0.0  # time.monotonic() of the last clock written

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """From now on commits are written off `loop`, at the end of its turn."""
        self._loop = loop

    async def close(self) -> None:
        """Wait (at most stop_timeout_s, retrying meanwhile) for the last writes, then
        stop the writer; what is still not written is logged as lost."""
        deadline = time.monotonic() + self._config.stop_timeout_s
        while self._units and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        if self._units:
            unit = self._units[0]
            log.error(
                "journal not written at stop: these facts are lost",
                rows=len(unit.batch),
                events=len(unit.events),
                error=self.error,
            )
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._writer.shutdown(wait=False)

    # ------------------------------------------------------------------ health

    @property
    def ok(self) -> bool:
        """The last write did not fail and none has been under way for longer than
        journal_stall_s."""
        if self.error:
            return False
        since = self._writing_since
        return since is None or time.monotonic() - since <= self._config.journal_stall_s

    @property
    def pending(self) -> int:
        """Units of facts waiting to be written."""
        return len(self._units)

    def status(self) -> dict[str, Any]:
        down = self._down_since
        return {
            "ok": self.ok,
            "error": self.error or ("" if self.ok else "a write is taking too long"),
            "down_s": 0.0 if down is None else round(time.monotonic() - down, 3),
            "pending": len(self._units),
        }

    def unavailable(self) -> str:
        """What a client that waits for a write is told while the journal is down."""
        return (
            f"the journal cannot write now ({self.error}): the change is kept, "
            "and is stored and reported once the database is back"
        )

    # ------------------------------------------------------------------ staging

    def mark(self) -> tuple[int, int, dict[Any, dict[str, Any]]]:
        """Where staging stands now, for `rollback`."""
        return len(self.events), len(self.batch.inserts), dict(self.batch.upserts)

    def rollback(self, mark: tuple[int, int, dict[Any, dict[str, Any]]]) -> None:
        """Forget what was staged since `mark`."""
        n_events, n_inserts, upserts = mark
        del self.events[n_events:]
        del self.batch.inserts[n_inserts:]
        self.batch.upserts = upserts

    def keep_clock(self) -> None:
        """Write the service clock if no commit carried it for CLOCK_SAVE_S: also when
        idle, a restart resumes from about here."""
        if time.monotonic() - self._clock_saved_at >= CLOCK_SAVE_S:
            self.batch.upsert(SvcMetaRow, {"key": CLOCK_KEY, "value": self._now_ns()})
            self._clock_saved_at = time.monotonic()

    def commit_soon(self) -> None:
        """Commit at the end of this turn of the loop: a burst of client commands (a
        FIX client's window of orders arrives in one turn) shares one transaction.
        Their acknowledgements are events, published only after that commit."""
        if self._loop is None:
            self.flush()
        elif not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self.flush)

    async def sync(self) -> None:
        """Return once what was staged so far is committed. Raises
        JournalUnavailableError if the journal cannot write it now: it is kept, and
        stored and published once the journal writes again."""
        if self._loop is None or not (self._flush_pending or self._units):
            return
        if self.error:
            raise JournalUnavailableError(self.unavailable())
        done = self._loop.create_future()
        self._synced.append(done)
        if not self._flush_pending:  # only written units wait: join the last of them
            self._flush_pending = True
            self._loop.call_soon(self.flush)
        await done

    # ------------------------------------------------------------------ publishing

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def publish_soon(self, event: DeskEvent) -> None:
        """Publish `event` at the next flush (the end of this turn of the loop), ahead of
        anything waiting for the journal: for facts that are not journaled (the kill
        switch; a reject while the journal is down). Never from inside a command:
        listeners see a desk that has finished the call; `sync()` waits for it."""
        if self._loop is None:
            self._publish_now(event)
            return
        self._unjournaled.append(event)
        self.commit_soon()

    def _publish_now(self, event: DeskEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # one broken edge must not stop the others or the desk
                self._metrics.listener_errors.inc()
                log.exception("listener failed", event=event.type)

    # ------------------------------------------------------------------ writing

    def flush(self) -> None:
        """Hand what is staged to the journal's writer: its rows are committed off the
        loop, then its events published, in order (`_write_next`). With nothing to
        store and nothing before it, the events go out at once. Before `start` the
        rows are written here (StoreError if they cannot be)."""
        self._flush_pending = False
        unjournaled, self._unjournaled = self._unjournaled, []
        for ev in unjournaled:
            self._publish_now(ev)
        batch, self.batch = self.batch, Batch()
        events, self.events = self.events, []
        waiters, self._synced = self._synced, []
        if not (batch or events or waiters):
            return
        if batch:
            # every commit carries the clock: a restart never goes back behind a fact
            batch.upsert(SvcMetaRow, {"key": CLOCK_KEY, "value": self._now_ns()})
            self._clock_saved_at = time.monotonic()
        if self._loop is None:  # at start: written here (a failure fails the start)
            if batch:
                self._journal.commit(batch)
            self._done(_Unit(batch, events, waiters))
            return
        unit = _Unit(batch, events, waiters)
        if not self._units and not batch:
            self._done(unit)
            return
        if self._units and (self._writing is None or len(self._units) > 1):
            self._units[-1].absorb(unit)  # not being written yet: the same transaction
        else:
            self._units.append(unit)
        self._write_next()

    def _write_next(self) -> None:
        """Start writing the waiting units (all of them, as one transaction) unless a
        write is under way or a retry is waiting."""
        if self._writing is not None or self._retry is not None or not self._units:
            return
        assert self._loop is not None
        head = self._units[0]
        for later in self._units[1:]:
            head.absorb(later)
        del self._units[1:]
        if not head.batch:  # events only (they waited for the units before them)
            del self._units[0]
            self._done(head)
            return
        try:
            fut = self._loop.run_in_executor(self._writer, self._journal.commit, head.batch)
        except RuntimeError:  # after stop: the writer is gone (stop said what was lost)
            log.error("journal write after stop: not written", rows=len(head.batch))
            return
        self._writing_since = time.monotonic()
        self._writing = fut
        fut.add_done_callback(self._written)

    def _written(self, fut: asyncio.Future[None]) -> None:
        self._writing = None
        self._writing_since = None
        exc = fut.exception() if not fut.cancelled() else asyncio.CancelledError()
        if exc is None:
            head = self._units.pop(0)
            self._journal_writes()
            self._done(head)
            self._write_next()
            return
        self._journal_failed(exc)

    def _done(self, unit: _Unit) -> None:
        """`unit` is stored: its events go out, its waiters return."""
        for ev in unit.events:
            self._publish_now(ev)
        for w in unit.waiters:
            if not w.done():
                w.set_result(None)

    def _journal_failed(self, exc: BaseException) -> None:
        """The write failed: keep it, retry it, and say so the first time."""
        assert self._loop is not None
        first = not self.error
        timed_out = isinstance(exc, StoreError) and exc.timed_out
        # what clients may read (API, MQTT): no driver message, which names the
        # database's host, port and user; the log has it all
        self.error = (
            "the database did not answer in time" if timed_out else "the database refused the write"
        )
        self._metrics.journal_errors.inc()
        if first:
            self._down_since = time.monotonic()
        head = self._units[0]
        log.error(
            "journal write failed: kept, retrying",
            error=str(exc),
            rows=len(head.batch),
            events=len(head.events),
            retry_in_s=self._retry_s,
        )
        for unit in self._units:  # no client waits for the database to come back
            for w in unit.waiters:
                if not w.done():
                    w.set_exception(JournalUnavailableError(self.unavailable()))
            unit.waiters.clear()
        if first:
            self._on_down()
        self._retry = self._loop.call_later(self._retry_s, self._retry_write)
        self._retry_s = min(2 * self._retry_s, self._config.journal_retry_max_s)

    def _retry_write(self) -> None:
        self._retry = None
        self._metrics.journal_retries.inc()
        self._write_next()

    def _journal_writes(self) -> None:
        """A write succeeded: if the journal was failing, it is back."""
        if not self.error:
            return
        down = time.monotonic() - (self._down_since or time.monotonic())
        log.warning("journal writes again", down_s=round(down, 3), error=self.error)
        self.error = ""
        self._down_since = None
        self._retry_s = self._config.journal_retry_s
        self._on_up()
