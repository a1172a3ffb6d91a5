"""Storage of runs, parent and child orders, fills, routing decisions and RFQs (SQLModel).

SQL rows are wire types: they live here, at the edge, and are built from domain objects
and events. The default database is the SQLite file `blockroute.db` in the working
directory; a `postgresql://` URL selects PostgreSQL (psycopg2). The tables below are the
schema; `Store` is the repository that writes and reads them. The tables derive from
`StoreTable`, whose metadata is the run store's alone (the service's journal has its
own, router/journal.py); a table or column is added to the models and by a revision of
the `store` migrations (router/migrations/), which `Store.open` applies.

Every SQLAlchemy failure leaves this module as a `StoreError` whose message is one line
naming the database URL (password masked) and the cause.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import heapq
import itertools
import json
import math
import os
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    DateTime,
    Dialect,
    ForeignKeyConstraint,
    Index,
    Text,
    and_,
    event,
    insert,
)
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import registry
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

from router.domain import (
    NANOS_PER_SECOND,
    ChildId,
    ChildOrder,
    ChildOrderCanceled,
    ChildOrderExpired,
    ChildOrderFilled,
    ChildOrderRejected,
    ChildOrderSent,
    DecisionRecorded,
    Event,
    LastLookRejected,
    ParentOrder,
    ParentOrderAccepted,
    ParentOrderCompleted,
    ParentOrderRejected,
    QuoteIgnored,
    QuoteReceived,
    QuoteRequestRejected,
    QuoteResponseSent,
    QuoteRespType,
    RfqClosed,
    RfqEnded,
    RfqRequested,
    RfqTraded,
)
from router.migrations import MigrationError, Migrations, upgrade

DEFAULT_URL = "sqlite:///blockroute.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000  # backtest workers write one run each; waits are short
SQLITE_WAL_RETRY_S = 0.01  # the switch to WAL takes milliseconds
PG_CONNECT_TIMEOUT_S = 10  # an unreachable host fails in seconds, not minutes

T = TypeVar("T")


class StoreError(Exception):
    """The database cannot be opened, read or written; the message is one line.
    `timed_out` is True when the call was cut off at its deadline (DbTimeouts)."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True, slots=True)
class DbTimeouts:
    """Bounds on every call of a long-running process's database (the service's
    journal): no call may hang, whatever the database or the network does.

    `statement_s` bounds one call end to end (a read, or a whole commit): SQLite's busy
    timeout; PostgreSQL's statement_timeout, lock_timeout and
    idle_in_transaction_session_timeout on the server; and, on this side, a watchdog
    that aborts the call's connection at the deadline, for what no server-side or TCP
    timeout sees: a link that stalls with its sockets open (the peer's kernel still
    acknowledges every byte). `connect_s` bounds opening a connection (libpq's
    connect_timeout counts whole seconds, 2 at least). TCP keepalives (`keepalive_s`
    idle, then 3 probes 1 s apart) and tcp_user_timeout find a dead peer of an idle
    connection or of unacknowledged writes.
    """

    connect_s: float = 3.0
    statement_s: float = 5.0
    keepalive_s: float = 5.0

    def __post_init__(self) -> None:
        for name in ("connect_s", "statement_s", "keepalive_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


class ChildStatus(enum.StrEnum):
    """Final state of a child order at the end of a run."""

    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    OPEN = "open"  # no terminal event: still working when the run was recorded


class ParentStatus(enum.StrEnum):
    FILLED = "filled"
    DONE = "done"  # completed (horizon reached) with quantity left unfilled
    REJECTED = "rejected"
    OPEN = "open"


@dataclass(frozen=True, slots=True)
class RunMeta:
    """What identifies a run; `created_at` is injected (timezone-aware), never read here."""

    kind: str  # "simulate" or "backtest"
    scenario: str
    seed: int
    strategy: str
    created_at: datetime
    batch: str | None = None  # groups the runs of one backtest

    def __post_init__(self) -> None:
        if self.created_at.tzinfo is None:
            raise ValueError("RunMeta.created_at must be timezone-aware (e.g. UTC)")


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (no zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StoreTable(SQLModel, registry=registry()):
    """Base of the run store's tables: their own metadata, migrated as the `store`
    history (STORE_MIGRATIONS)."""


def _run_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["run_id"], ["runs.run_id"], ondelete="CASCADE")


def _parent_fk(table: str) -> tuple[ForeignKeyConstraint, Index]:
    """A row that belongs to a parent order of its run, indexed the way it is queried."""
    return (
        ForeignKeyConstraint(
            ["run_id", "parent_id"],
            ["parent_orders.run_id", "parent_orders.parent_id"],
            ondelete="CASCADE",
        ),
        Index(f"ix_{table}_run_parent", "run_id", "parent_id"),
    )


class RunRow(StoreTable, table=True):
    """One simulation or backtest episode of one strategy, with its summary metrics."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_batch", "batch"),)

    run_id: int | None = Field(default=None, primary_key=True)
    kind: str
    scenario: str
    seed: int = Field(sa_type=BigInteger)
    strategy: str
    created_at: datetime = Field(sa_type=UtcDateTime)
    batch: str | None = None
    is_bps: float | None = None  # None when the TCA has none (e.g. a rejected parent)
    filled_qty: int = Field(sa_type=BigInteger)
    avg_price: float
    completion: float
    n_child_orders: int
    tca_json: str = Field(sa_type=Text)

    def tca(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.tca_json)
        return result


class ParentOrderRow(StoreTable, table=True):
    __tablename__ = "parent_orders"
    __table_args__ = (_run_fk(),)

    run_id: int = Field(primary_key=True)
    parent_id: str = Field(primary_key=True)
    symbol: str
    side: str
    qty: int = Field(sa_type=BigInteger)
    start_ns: int = Field(sa_type=BigInteger)
    horizon_ns: int = Field(sa_type=BigInteger)
    limit_ticks: int | None = Field(default=None, sa_type=BigInteger)
    arrival_mid: float | None = None  # from ParentOrderAccepted, when the run has one
    filled_qty: int = Field(sa_type=BigInteger)
    avg_price: float
    status: str


class ChildOrderColumns(SQLModel):
    """A child order's terms and state: the columns that the run store's child table
    and the service journal's (router.journal.SvcChildRow) share, declared once, as
    `child_order_columns` builds their values once. The two stay two tables: a run's
    children are written once with the run and keyed by it, the desk's are updated in
    place as they fill and are never tied to a run; each adds its own keys and fields."""

    parent_id: str
    venue: str
    side: str
    qty: int = Field(sa_type=BigInteger)
    ord_type: str
    tif: str
    limit_ticks: int | None = Field(default=None, sa_type=BigInteger)
    post_only: bool
    min_qty: int = Field(sa_type=BigInteger)
    sent_ns: int = Field(sa_type=BigInteger)
    filled_qty: int = Field(sa_type=BigInteger)
    status: str  # router.domain.ChildStatus: "open", "filled", "canceled", ...


class ChildOrderRow(StoreTable, ChildOrderColumns, table=True):
    __tablename__ = "child_orders"
    __table_args__ = (_run_fk(), *_parent_fk("child_orders"))

    run_id: int = Field(primary_key=True)
    child_id: str = Field(primary_key=True)
    seq: int  # position in the run, for a stable order
    conditional: bool


class FillRow(StoreTable, table=True):
    __tablename__ = "fills"
    __table_args__ = (
        _run_fk(),
        ForeignKeyConstraint(
            ["run_id", "child_id"],
            ["child_orders.run_id", "child_orders.child_id"],
            ondelete="CASCADE",
        ),
        Index("ix_fills_run_child", "run_id", "child_id"),
    )

    run_id: int = Field(primary_key=True)
    seq: int = Field(primary_key=True)  # event order within the run
    child_id: str
    venue: str
    ts_ns: int = Field(sa_type=BigInteger)
    qty: int = Field(sa_type=BigInteger)
    price: float
    fee: float
    liquidity: str


class DecisionRow(StoreTable, table=True):
    __tablename__ = "decisions"
    __table_args__ = (_run_fk(), *_parent_fk("decisions"))

    run_id: int = Field(primary_key=True)
    decision_id: str = Field(primary_key=True)
    seq: int
    parent_id: str
    ts_ns: int = Field(sa_type=BigInteger)
    chosen: str
    inputs_json: str = Field(sa_type=Text)
    alternatives_json: str = Field(sa_type=Text)

    def inputs(self) -> dict[str, float]:
        result: dict[str, float] = json.loads(self.inputs_json)
        return result

    def alternatives(self) -> dict[str, float]:
        result: dict[str, float] = json.loads(self.alternatives_json)
        return result


class RfqRow(StoreTable, table=True):
    """One request for quote of a run (RfqRequested), with how it closed and ended.

    Timestamps (`*_at`) are integer nanoseconds, like `ts_ns` elsewhere. `closed_at` and
    `n_quotes` come from RfqClosed, `ended_at`, `state` and `traded_qty` from RfqEnded:
    None when the run ended before.
    """

    __tablename__ = "rfqs"
    # A parent-less RFQ (parent_id NULL) satisfies the composite parent key.
    __table_args__ = (_run_fk(), *_parent_fk("rfqs"))

    run_id: int = Field(primary_key=True)
    rfq_id: str = Field(primary_key=True)
    seq: int  # position of its RfqRequested among the run's RFQs: time order
    parent_id: str | None = None
    symbol: str
    side: str | None = None  # None: two-sided
    qty: int = Field(sa_type=BigInteger)
    dealers: str = Field(sa_type=Text)  # comma-joined, in panel order
    n_dealers: int
    time_limit_s: float
    requested_at: int = Field(sa_type=BigInteger)
    closed_at: int | None = Field(default=None, sa_type=BigInteger)
    n_quotes: int | None = None
    ended_at: int | None = Field(default=None, sa_type=BigInteger)
    state: str | None = None  # "done", "passed" or "expired"
    traded_qty: int | None = Field(default=None, sa_type=BigInteger)

    def panel(self) -> list[str]:
        return self.dealers.split(",")


class RfqLegRow(StoreTable, table=True):
    """One dealer asked in one RFQ: its answer, the client's response and the trade.

    `outcome` is the leg's last state: "asked" (nothing heard yet), "quoted", "declined",
    "late", then the venue's notices "timed_out", "hit", "last_look_rejected", "cover",
    "done_away", "passed", "expired" (other QuoteRespType names lower-case), and
    "filled"; an answer ignored after a notice does not replace it, and "filled" is final.
    `response_ms` is the first answer's delay (quote, decline or a late answer).
    """

    __tablename__ = "rfq_legs"
    __table_args__ = (
        _run_fk(),
        ForeignKeyConstraint(
            ["run_id", "rfq_id"], ["rfqs.run_id", "rfqs.rfq_id"], ondelete="CASCADE"
        ),
        Index("ix_rfq_legs_dealer", "dealer"),  # a dealer's history across runs
    )

    run_id: int = Field(primary_key=True)
    rfq_id: str = Field(primary_key=True)
    dealer: str = Field(primary_key=True)
    position: int  # in the panel, from 0
    outcome: str
    response_ms: float | None = None
    quote_id: str | None = None
    quote_qty: int | None = Field(default=None, sa_type=BigInteger)
    bid: float | None = None
    offer: float | None = None
    valid_until: int | None = Field(default=None, sa_type=BigInteger)  # nanoseconds
    reject_reason: str | None = None  # QuoteRejectReason name
    reject_text: str | None = None
    late_reason: str | None = None  # QuoteIgnored: why the answer was not used
    hit_qty: int | None = Field(default=None, sa_type=BigInteger)
    hit_price: float | None = None  # the dealer's price the client hit
    child_id: str | None = None  # the child order that hit this dealer's quote
    last_look_ms: float | None = None  # from the hit to the dealer's fill or reject
    traded_qty: int | None = Field(default=None, sa_type=BigInteger)
    traded_price: float | None = None  # volume-weighted over the dealer's RfqTraded
    last_look_reason: str | None = None


STORE_MIGRATIONS = Migrations("store", StoreTable.metadata)


# --------------------------------------------------------------------------------------
# Repository
# --------------------------------------------------------------------------------------


class Store:
    """The repository: one engine, one transaction per write, detached rows on reads."""

    def __init__(
        self, engine: Engine, display_url: str, timeouts: DbTimeouts | None = None
    ) -> None:
        self.engine = engine
        self.url = display_url  # password masked: safe to print and log
        self.timeouts = timeouts

    @classmethod
    def open(
        cls, url: str | None = None, *, create: bool = True, timeouts: DbTimeouts | None = None
    ) -> Store:
        """Open the database at `url` and, with `create`, bring the run store's tables
        to the last revision of their migrations (creating them in a new database).

        None is the SQLite file `blockroute.db` in the working directory. With
        `timeouts`, every call through `bounded` has a deadline (see DbTimeouts).
        Raises StoreError when the database cannot be opened or migrated.
        """
        text = DEFAULT_URL if url is None else url.strip()
        shown = mask_url(text)
        try:
            parsed = _parse_url(text)
        except ValueError as exc:
            raise StoreError(f"database {shown}: cannot open: {exc}") from None
        try:
            engine = _make_engine(parsed, timeouts)
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(f"database {shown}: cannot open: {_cause(exc)}") from None
        store = cls(engine, shown, timeouts)

        try:
            if create:
                store.migrate(STORE_MIGRATIONS)
            else:
                store._guard("open", store._connect)
        except StoreError:
            engine.dispose()
            raise
        return store

    def migrate(self, migrations: Migrations) -> None:
        """Bring the tables of `migrations` to its head revision (router/migrations/):
        only a read when they are there already. Raises StoreError when the database
        fails or is at a revision that this code does not have."""

        def run() -> None:
            with self.bounded() as conn:
                upgrade(conn, migrations)

        try:
            self._guard("open", run)
        except MigrationError as exc:
            raise StoreError(f"database {self.url}: cannot open: {exc}") from None

    def _connect(self) -> None:
        with self.bounded():
            pass  # a connection opens: the database is there

    @contextlib.contextmanager
    def bounded(self, seconds: float | None = None) -> Iterator[Connection]:
        """A connection whose use ends within `seconds` (default: the statement timeout;
        no bound without timeouts): at the deadline the watchdog aborts it, and the call
        fails with a StoreError whose `timed_out` is True."""
        if seconds is None and self.timeouts is not None:
            seconds = self.timeouts.statement_s
        conn = self.engine.connect()  # a new connection is bounded by connect_s
        if seconds is None:
            with conn:
                yield conn
            return
        armed = _WATCHDOG.arm(seconds, conn.connection.dbapi_connection)
        try:
            yield conn
        except BaseException as exc:
            armed.disarm()  # waits for an abort under way: `fired` is final after it
            _release(conn, armed.fired)
            if armed.fired and isinstance(exc, SQLAlchemyError):
                raise _TimedOut(seconds) from exc
            raise
        armed.disarm()
        # returned to the pool now, not before the disarm: the watchdog may touch only a
        # connection that nobody else can have
        _release(conn, armed.fired)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ write side

    def record_run(
        self,
        meta: RunMeta,
        parent: ParentOrder,
        children: Sequence[ChildOrder],
        sent_ns: Mapping[ChildId, int],
        events: Sequence[Event],
        tca: Mapping[str, Any],
        *,
        detail: bool = True,
    ) -> int:
        """Store one run in one transaction; returns its run_id. Without `detail` only
        the run and its parent order are stored (large backtests), still summarised
        from all the events.

        Child and parent fill quantities and final statuses are derived from the events
        (the fills are the truth), so the stored rows agree with each other. Raises
        ValueError for inconsistent input (a fill of an unknown child, a child without a
        sent time) before touching the database, StoreError when the database fails.
        """
        rows = _RunRows.build(parent, children, sent_ns, events)
        try:
            tca_json = _dumps(dict(tca))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"tca is not JSON-serialisable: {exc}") from None
        is_bps = tca.get("is_bps")
        run = RunRow(
            kind=meta.kind,
            scenario=meta.scenario,
            seed=meta.seed,
            strategy=meta.strategy,
            created_at=meta.created_at,
            batch=meta.batch,
            is_bps=None if is_bps is None else float(is_bps),
            filled_qty=rows.parent["filled_qty"],
            avg_price=rows.parent["avg_price"],
            completion=rows.parent["filled_qty"] / parent.qty,
            n_child_orders=len(children),
            tca_json=tca_json,
        )

        def write() -> int:
            with Session(self.engine) as session, session.begin():
                session.add(run)
                session.flush()  # assigns run_id
                assert run.run_id is not None
                run_id = run.run_id
                # Core inserts into the tables (executemany of plain dicts): the rows'
                # keys are the columns' names. An insert of the mapped class instead
                # runs SQLAlchemy's ORM bulk path, about 20 us a row in Python (0.1 s
                # of a `simulate --strategies twap`); session.add_all of row objects is
                # slower still.
                tables: list[tuple[Any, list[dict[str, Any]]]] = [(ParentOrderRow, [rows.parent])]
                if detail:
                    tables += [
                        (ChildOrderRow, rows.children),
                        (FillRow, rows.fills),
                        (DecisionRow, rows.decisions),
                        (RfqRow, rows.rfqs),  # before its legs: foreign key
                        (RfqLegRow, rows.rfq_legs),
                    ]
                for table, batch in tables:
                    if batch:
                        session.execute(
                            insert(table.__table__), [{**r, "run_id": run_id} for r in batch]
                        )
            return run_id

        return self._guard("record a run", write)

    # ------------------------------------------------------------------ read side

    def runs(self, batch: str | None = None) -> list[RunRow]:
        """All runs in run_id order, or those of one batch."""
        query = select(RunRow).order_by(col(RunRow.run_id))
        if batch is not None:
            query = query.where(RunRow.batch == batch)
        return self._read(query)

    def run(self, run_id: int) -> RunRow:
        def get() -> RunRow | None:
            with Session(self.engine, expire_on_commit=False) as session:
                return session.get(RunRow, run_id)

        row = self._guard("read a run", get)
        if row is None:
            raise StoreError(f"database {self.url}: no run with run_id {run_id}")
        return row

    def parents(self, run_id: int) -> list[ParentOrderRow]:
        query = select(ParentOrderRow).where(ParentOrderRow.run_id == run_id)
        return self._read(query.order_by(col(ParentOrderRow.parent_id)))

    def children(self, run_id: int) -> list[ChildOrderRow]:
        query = select(ChildOrderRow).where(ChildOrderRow.run_id == run_id)
        return self._read(query.order_by(col(ChildOrderRow.seq)))

    def fills(self, run_id: int) -> list[FillRow]:
        query = select(FillRow).where(FillRow.run_id == run_id)
        return self._read(query.order_by(col(FillRow.seq)))

    def decisions(self, run_id: int, parent_id: str | None = None) -> list[DecisionRow]:
        query = select(DecisionRow).where(DecisionRow.run_id == run_id)
        if parent_id is not None:
            query = query.where(DecisionRow.parent_id == parent_id)
        return self._read(query.order_by(col(DecisionRow.seq)))

    def rfqs(self, run_id: int) -> list[RfqRow]:
        """The run's RFQs in the order they were requested."""
        query = select(RfqRow).where(RfqRow.run_id == run_id)
        return self._read(query.order_by(col(RfqRow.seq)))

    def rfq_legs(self, run_id: int, rfq_id: str | None = None) -> list[RfqLegRow]:
        """The dealer legs of the run's RFQs (or of one), by RFQ then panel order."""
        on = and_(
            col(RfqRow.run_id) == col(RfqLegRow.run_id),
            col(RfqRow.rfq_id) == col(RfqLegRow.rfq_id),
        )
        query = select(RfqLegRow).join(RfqRow, on).where(RfqLegRow.run_id == run_id)
        if rfq_id is not None:
            query = query.where(RfqLegRow.rfq_id == rfq_id)
        return self._read(query.order_by(col(RfqRow.seq), col(RfqLegRow.position)))

    # ------------------------------------------------------------------ internals

    def _read(self, query: Any) -> list[Any]:
        def fetch() -> list[Any]:
            with Session(self.engine) as session:
                return list(session.exec(query).all())

        return self._guard("read", fetch)

    def _guard(self, action: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except _TimedOut as exc:
            raise StoreError(
                f"database {self.url}: cannot {action}: no answer within {exc.seconds:g} s",
                timed_out=True,
            ) from None
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(
                f"database {self.url}: cannot {action}: {_cause(exc)}", timed_out=_timed_out(exc)
            ) from None


# --------------------------------------------------------------------------------------
# Rows from domain objects and events
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _RunRows:
    """The row dicts of one run, without run_id (known only inside the transaction)."""

    parent: dict[str, Any]
    children: list[dict[str, Any]]
    fills: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    rfqs: list[dict[str, Any]]
    rfq_legs: list[dict[str, Any]]

    @staticmethod
    def build(
        parent: ParentOrder,
        children: Sequence[ChildOrder],
        sent_ns: Mapping[ChildId, int],
        events: Sequence[Event],
    ) -> _RunRows:
        known = {c.child_id for c in children}
        if len(known) != len(children):
            raise ValueError(f"parent {parent.parent_id}: duplicate child ids")
        sent = {e.child.child_id: e.ts_ns for e in events if isinstance(e, ChildOrderSent)}
        sent.update(sent_ns)
        filled: dict[str, int] = {}
        ended: dict[str, ChildStatus] = {}  # the last terminal event of each child
        fills: list[dict[str, Any]] = []
        decisions: list[dict[str, Any]] = []
        notional = 0.0
        arrival_mid: float | None = None
        parent_end: ParentStatus | None = None
        rfq_log = _RfqLog()
        for e in events:
            if isinstance(e, ChildOrderFilled):
                if e.child_id not in known:
                    raise ValueError(f"fill at {e.ts_ns} for unknown child {e.child_id!r}")
                filled[e.child_id] = filled.get(e.child_id, 0) + e.qty
                notional += e.qty * e.price
                fills.append(
                    {
                        "seq": len(fills),
                        "child_id": e.child_id,
                        "venue": e.venue,
                        "ts_ns": e.ts_ns,
                        "qty": e.qty,
                        "price": e.price,
                        "fee": e.fee,
                        "liquidity": e.liquidity,
                    }
                )
            elif isinstance(e, ChildOrderCanceled):
                ended[e.child_id] = ChildStatus.CANCELED
            elif isinstance(e, ChildOrderExpired):
                ended[e.child_id] = ChildStatus.EXPIRED
            elif isinstance(e, ChildOrderRejected):
                ended[e.child_id] = ChildStatus.REJECTED
            elif isinstance(e, DecisionRecorded):
                decisions.append(
                    {
                        "seq": len(decisions),
                        "decision_id": e.decision_id,
                        "parent_id": e.parent_id,
                        "ts_ns": e.ts_ns,
                        "chosen": e.chosen,
                        "inputs_json": _dumps(e.inputs),
                        "alternatives_json": _dumps(e.alternatives),
                    }
                )
            elif isinstance(e, ParentOrderAccepted) and e.parent.parent_id == parent.parent_id:
                arrival_mid = e.arrival_mid
            elif isinstance(e, ParentOrderCompleted) and e.parent_id == parent.parent_id:
                parent_end = ParentStatus.DONE
            elif isinstance(e, ParentOrderRejected) and e.parent_id == parent.parent_id:
                parent_end = ParentStatus.REJECTED
            elif isinstance(e, _RFQ_EVENTS):
                rfq_log.add(e)

        child_rows = []
        for seq, c in enumerate(children):
            if c.child_id not in sent:
                raise ValueError(f"child {c.child_id!r}: no sent time (sent_ns or ChildOrderSent)")
            qty_done = filled.get(c.child_id, 0)
            # A late fill can follow a cancel; a complete fill wins over any terminal event.
            status = ChildStatus.FILLED if qty_done >= c.qty else ended.get(c.child_id)
            child_rows.append(
                {
                    **child_order_columns(c),
                    "seq": seq,
                    "conditional": c.conditional,
                    "sent_ns": sent[c.child_id],
                    "filled_qty": qty_done,
                    "status": str(status or ChildStatus.OPEN),
                }
            )

        parent_filled = sum(filled.values())
        if parent_end is not ParentStatus.REJECTED and parent_filled >= parent.qty:
            parent_end = ParentStatus.FILLED
        parent_row = {
            "parent_id": parent.parent_id,
            "symbol": parent.symbol,
            "side": parent.side.value,
            "qty": parent.qty,
            "start_ns": parent.start_ns,
            "horizon_ns": parent.horizon_ns,
            "limit_ticks": parent.limit_ticks,
            "arrival_mid": arrival_mid,
            "filled_qty": parent_filled,
            "avg_price": notional / parent_filled if parent_filled else 0.0,
            "status": str(parent_end or ParentStatus.OPEN),
        }
        return _RunRows(
            parent_row, child_rows, fills, decisions, rfq_log.rfq_rows(), rfq_log.leg_rows()
        )


_RFQ_EVENTS = (
    RfqRequested,
    QuoteReceived,
    QuoteRequestRejected,
    QuoteIgnored,
    RfqClosed,
    QuoteResponseSent,
    RfqTraded,
    LastLookRejected,
    RfqEnded,
)

# A leg's outcome follows its events, but never goes back to a lower rank: a late answer
# ignored after the venue's notice does not hide the notice, and a fill is final.
_ANSWER, _NOTICE, _FILLED = 0, 1, 2
# The spellings of the workflow; the other QuoteRespType names are used lower-case.
_RESP_OUTCOME = {QuoteRespType.HIT_LIFT: "hit", QuoteRespType.PASS: "passed"}
_NS_PER_MS = 1_000_000


class _RfqLog:
    """Builds the rfqs and rfq_legs rows of a run from its RFQ events, in event order.

    Raises ValueError for an event of an RFQ not requested before it, or of a dealer not
    on its panel.
    """

    def __init__(self) -> None:
        self._rfqs: dict[str, dict[str, Any]] = {}
        self._legs: dict[tuple[str, str], dict[str, Any]] = {}
        self._rank: dict[tuple[str, str], int] = {}
        self._hit_ns: dict[tuple[str, str], int] = {}
        self._notional: dict[tuple[str, str], float] = {}

    def add(self, e: Event) -> None:
        if isinstance(e, RfqRequested):
            self._request(e)
        elif isinstance(e, RfqClosed):
            rfq = self._rfq(e.rfq_id, e)
            rfq.update(closed_at=e.ts_ns, n_quotes=e.n_quotes)
        elif isinstance(e, RfqEnded):
            rfq = self._rfq(e.rfq_id, e)
            rfq.update(ended_at=e.ts_ns, state=e.state, traded_qty=e.traded_qty)
        elif isinstance(e, QuoteReceived):
            q = e.quote
            leg = self._leg(q.rfq_id, q.dealer, e, _ANSWER, "quoted")
            self._answered(leg, q.rfq_id, e.ts_ns)
            # A new quote from the same dealer replaces the one before: the last is firm.
            leg.update(
                quote_id=q.quote_id,
                quote_qty=q.qty,
                bid=q.bid,
                offer=q.offer,
                valid_until=q.valid_until_ns,
            )
        elif isinstance(e, QuoteRequestRejected):
            leg = self._leg(e.rfq_id, e.dealer, e, _ANSWER, "declined")
            self._answered(leg, e.rfq_id, e.ts_ns)
            leg.update(reject_reason=e.reason.name, reject_text=e.text)
        elif isinstance(e, QuoteIgnored):
            leg = self._leg(e.rfq_id, e.dealer, e, _ANSWER, "late")
            self._answered(leg, e.rfq_id, e.ts_ns)
            leg["late_reason"] = e.reason
        elif isinstance(e, QuoteResponseSent):
            outcome = _RESP_OUTCOME.get(e.resp_type, e.resp_type.name.lower())
            leg = self._leg(e.rfq_id, e.dealer, e, _NOTICE, outcome)
            if e.resp_type is QuoteRespType.HIT_LIFT:
                self._hit_ns[e.rfq_id, e.dealer] = e.ts_ns
                leg.update(hit_qty=e.qty, hit_price=e.price)
                if e.child_id is not None:
                    leg["child_id"] = e.child_id
        elif isinstance(e, RfqTraded):
            key = (e.rfq_id, e.dealer)
            leg = self._leg(e.rfq_id, e.dealer, e, _FILLED, "filled")
            self._last_look(leg, key, e.ts_ns, e.child_id)
            leg["traded_qty"] = (leg["traded_qty"] or 0) + e.qty
            self._notional[key] = self._notional.get(key, 0.0) + e.qty * e.price
            leg["traded_price"] = self._notional[key] / leg["traded_qty"]
        elif isinstance(e, LastLookRejected):
            leg = self._leg(e.rfq_id, e.dealer, e, _NOTICE, "last_look_rejected")
            self._last_look(leg, (e.rfq_id, e.dealer), e.ts_ns, e.child_id)
            leg["last_look_reason"] = e.reason

    def rfq_rows(self) -> list[dict[str, Any]]:
        return list(self._rfqs.values())

    def leg_rows(self) -> list[dict[str, Any]]:
        return list(self._legs.values())

    def _request(self, e: RfqRequested) -> None:
        r = e.request
        if r.rfq_id in self._rfqs:
            raise ValueError(f"RFQ {r.rfq_id!r} requested twice (again at {e.ts_ns})")
        self._rfqs[r.rfq_id] = {
            "rfq_id": r.rfq_id,
            "seq": len(self._rfqs),
            "parent_id": r.parent_id,
            "symbol": r.symbol,
            "side": None if r.side is None else r.side.value,
            "qty": r.qty,
            "dealers": ",".join(r.dealers),
            "n_dealers": len(r.dealers),
            "time_limit_s": r.time_limit_ns / NANOS_PER_SECOND,
            "requested_at": e.ts_ns,
            "closed_at": None,
            "n_quotes": None,
            "ended_at": None,
            "state": None,
            "traded_qty": None,
        }
        for position, dealer in enumerate(r.dealers):
            self._legs[r.rfq_id, dealer] = {name: None for name in _LEG_COLUMNS} | {
                "rfq_id": r.rfq_id,
                "dealer": dealer,
                "position": position,
                "outcome": "asked",
            }
            self._rank[r.rfq_id, dealer] = _ANSWER

    def _rfq(self, rfq_id: str, e: Event) -> dict[str, Any]:
        rfq = self._rfqs.get(rfq_id)
        if rfq is None:
            raise ValueError(f"{type(e).__name__} at {e.ts_ns} for unknown RFQ {rfq_id!r}")
        return rfq

    def _leg(self, rfq_id: str, dealer: str, e: Event, rank: int, outcome: str) -> dict[str, Any]:
        """The leg of `dealer`, its outcome moved on to `outcome` unless it ranks lower."""
        self._rfq(rfq_id, e)
        key = (rfq_id, dealer)
        leg = self._legs.get(key)
        if leg is None:
            raise ValueError(
                f"{type(e).__name__} at {e.ts_ns}: dealer {dealer!r} is not on the panel"
                f" of RFQ {rfq_id!r}"
            )
        if rank >= self._rank[key]:
            self._rank[key] = rank
            leg["outcome"] = outcome
        return leg

    def _answered(self, leg: dict[str, Any], rfq_id: str, ts_ns: int) -> None:
        if leg["response_ms"] is None:
            leg["response_ms"] = (ts_ns - self._rfqs[rfq_id]["requested_at"]) / _NS_PER_MS

    def _last_look(
        self, leg: dict[str, Any], key: tuple[str, str], ts_ns: int, child_id: str
    ) -> None:
        leg["child_id"] = child_id
        hit_ns = self._hit_ns.get(key)
        if hit_ns is not None:
            leg["last_look_ms"] = (ts_ns - hit_ns) / _NS_PER_MS


# Every column of rfq_legs but run_id: a leg row starts with all of them None.
_LEG_COLUMNS = tuple(name for name in RfqLegRow.model_fields if name != "run_id")


def child_order_columns(c: ChildOrder) -> dict[str, Any]:
    """A child order's terms as table columns (the run store's and the service's
    journal's child tables share them)."""
    return {
        "child_id": c.child_id,
        "parent_id": c.parent_id,
        "venue": c.venue,
        "side": c.side.value,
        "qty": c.qty,
        "ord_type": c.ord_type.value,
        "tif": c.tif.value,
        "limit_ticks": c.limit_ticks,
        "post_only": c.post_only,
        "min_qty": c.min_qty,
    }


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, default=_json_default)


def _json_default(value: object) -> Any:
    # numpy scalars (np.int64 is no int) and arrays come out of TCA code.
    item = getattr(value, "tolist", None)
    if callable(item):
        return item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


# --------------------------------------------------------------------------------------
# URLs, engines, errors
# --------------------------------------------------------------------------------------

_PASSWORD_IN_URL = re.compile(r"(://[^:/@]*:)[^@]*@")
_PASSWORD_IN_QUERY = re.compile(r"(password=)[^&]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, also for URLs that do not parse."""
    masked = _PASSWORD_IN_URL.sub(r"\1***@", url)
    return _PASSWORD_IN_QUERY.sub(r"\1***", masked)


def _parse_url(text: str) -> URL:
    try:
        url = make_url(text)
    except ArgumentError:
        raise ValueError("not a database URL (use sqlite:///PATH or postgresql://...)") from None
    if url.drivername in ("postgres", "postgresql"):
        # "postgres" is libpq's spelling, which SQLAlchemy refuses; SQLAlchemy 2.1 picks
        # psycopg 3 for a bare "postgresql", the project ships psycopg2.
        url = url.set(drivername="postgresql+psycopg2")
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database {backend!r} (use sqlite or postgresql)")
    if backend == "sqlite" and url.database not in (None, "", ":memory:"):
        is_uri = url.query.get("uri") == "true" or url.database.startswith("file:")
        folder = Path(url.database).parent
        if not is_uri and not folder.is_dir():
            raise ValueError(f"folder {str(folder)!r} does not exist")
    return url


def _make_engine(url: URL, timeouts: DbTimeouts | None = None) -> Engine:
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url)
        busy_ms = SQLITE_BUSY_TIMEOUT_MS if timeouts is None else _ms(timeouts.statement_s)
        event.listen(engine, "connect", functools.partial(_sqlite_pragmas, busy_ms=busy_ms))
        return engine
    connect_args: dict[str, Any] = {}
    if timeouts is None:
        if "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
        return create_engine(url, connect_args=connect_args, pool_pre_ping=True)
    # libpq's settings (https://www.postgresql.org/docs/current/libpq-connect.html);
    # what the URL sets itself wins. No pre-ping: its round trip would come before the
    # deadline is armed; a connection found dead fails its call, which the caller retries.
    statement_ms = _ms(timeouts.statement_s)
    connect_args = {
        "connect_timeout": max(2, math.ceil(timeouts.connect_s)),
        "keepalives": 1,
        "keepalives_idle": max(1, round(timeouts.keepalive_s)),
        "keepalives_interval": 1,
        "keepalives_count": 3,
        "tcp_user_timeout": statement_ms,
    }
    connect_args = {k: v for k, v in connect_args.items() if k not in url.query}
    server = (
        f"-c statement_timeout={statement_ms} -c lock_timeout={statement_ms} "
        f"-c idle_in_transaction_session_timeout={2 * statement_ms}"
    )
    given = url.query.get("options")
    # the URL's own options (e.g. a search_path) are kept: connect_args would replace them
    options = " ".join([*(given if isinstance(given, tuple) else [given] if given else []), server])
    connect_args["options"] = options
    return create_engine(url, connect_args=connect_args, pool_timeout=timeouts.statement_s)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _sqlite_pragmas(
    dbapi_connection: Any, _record: object, busy_ms: int = SQLITE_BUSY_TIMEOUT_MS
) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: switching to WAL must itself wait for other writers.
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        _sqlite_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")  # safe with WAL; one fsync per checkpoint
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_wal(cursor: Any, attempts: int = 100) -> None:
    # Connections opening a new file together race to switch it to WAL; SQLite answers
    # the losers "database is locked" at once, without the busy handler: try again.
    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(SQLITE_WAL_RETRY_S)


def _cause(exc: BaseException) -> str:
    """One line: the driver's message when there is one, without SQLAlchemy's links."""
    if isinstance(exc, NoSuchModuleError):
        return f"no driver for this URL ({exc})"
    if isinstance(exc, ImportError):
        return f"database driver not installed ({exc})"
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else str(exc)
    text = re.sub(r"\(Background on this error at: [^)]*\)", "", text)
    return " ".join(text.split()) or type(exc).__name__


def _timed_out(exc: BaseException) -> bool:
    """The server or the driver gave up at a timeout (PostgreSQL's statement or lock
    timeout, SQLite's busy timeout or an interrupt)."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "pgcode", None)
    if code in ("57014", "55P03", "25P03"):  # query_canceled, lock_not_available, idle tx
        return True
    text = str(orig if orig is not None else exc).lower()
    return any(w in text for w in ("timeout", "timed out", "database is locked", "interrupted"))


# --------------------------------------------------------------------------------------
# The watchdog: deadlines for calls that no timeout of the driver bounds
# --------------------------------------------------------------------------------------


def _release(conn: Connection, aborted: bool) -> None:
    with contextlib.suppress(Exception):
        if aborted:
            conn.invalidate()  # its socket is shut: never back into the pool
        conn.close()


class _TimedOut(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"no answer within {seconds:g} s")
        self.seconds = seconds


class _Armed:
    """One call under the watchdog; `fired` once its connection was aborted."""

    __slots__ = ("_dbapi", "_lock", "active", "fired")

    def __init__(self, dbapi_connection: Any) -> None:
        self._dbapi = dbapi_connection
        self._lock = threading.Lock()
        self.active = True
        self.fired = False

    def fire(self) -> None:
        # under the lock: once disarm() has returned, the connection may be closed or
        # reused, and nothing may touch it any more
        with self._lock:
            if self.active:
                self.fired = True
                _abort(self._dbapi)

    def disarm(self) -> None:
        with self._lock:
            self.active = False
            self._dbapi = None


class _Watchdog:
    """One daemon thread that aborts the connections of calls past their deadline."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._heap: list[tuple[float, int, _Armed]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, dbapi_connection: Any) -> _Armed:
        armed = _Armed(dbapi_connection)
        with self._cv:
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._seq), armed))
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._thread = threading.Thread(target=self._run, name="db-watchdog", daemon=True)
                self._thread.start()
            self._cv.notify()
        return armed

    def _run(self) -> None:
        while True:
            with self._cv:
                now = time.monotonic()
                due = []
                while self._heap and (self._heap[0][0] <= now or not self._heap[0][2].active):
                    due.append(heapq.heappop(self._heap)[2])
                if not due:
                    self._cv.wait(self._heap[0][0] - now if self._heap else None)
                    continue
            for armed in due:
                armed.fire()


_WATCHDOG = _Watchdog()


def _abort(dbapi_connection: Any) -> None:
    """Make the call blocked on this connection fail now, from another thread."""
    try:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.interrupt()  # documented as safe from any thread
            return
        fd = dbapi_connection.fileno()  # psycopg2: the socket to the server
        # shutdown() acts on the socket, not the descriptor: the blocked recv() returns
        # at once (the driver reports the connection lost); the duplicate is closed here
        # and the driver's own descriptor stays valid until the driver closes it.
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except (OSError, ValueError, AttributeError, sqlite3.Error):
        pass  # already closed: nothing is blocked on it
