"""Storage of runs, parent and child orders, fills and routing decisions (SQLModel).

SQL rows are wire types: they live here, at the edge, and are built from domain objects
and events. The default database is the SQLite file `blockroute.db` in the working
directory; a `postgresql://` URL selects PostgreSQL (psycopg2). The tables below are the
schema; `Store` is the repository that writes and reads them. New tables (RFQs, FIX
ClOrdID mapping, recovery state) are added as further `SQLModel, table=True` classes in
this module: `Store.open` creates every table of `SQLModel.metadata` that is missing.

Every SQLAlchemy failure leaves this module as a `StoreError` whose message is one line
naming the database URL (password masked) and the cause.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Mapping, Sequence
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
    event,
    insert,
)
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

from router.domain import (
    ChildId,
    ChildOrder,
    ChildOrderCanceled,
    ChildOrderExpired,
    ChildOrderFilled,
    ChildOrderRejected,
    ChildOrderSent,
    DecisionRecorded,
    Event,
    ParentOrder,
    ParentOrderAccepted,
    ParentOrderCompleted,
    ParentOrderRejected,
)

DEFAULT_URL = "sqlite:///blockroute.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000  # backtest workers write one run each; waits are short
PG_CONNECT_TIMEOUT_S = 10  # an unreachable host fails in seconds, not minutes

T = TypeVar("T")


class StoreError(Exception):
    """The database cannot be opened, read or written; the message is one line."""


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


class RunRow(SQLModel, table=True):
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


class ParentOrderRow(SQLModel, table=True):
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


class ChildOrderRow(SQLModel, table=True):
    __tablename__ = "child_orders"
    __table_args__ = (_run_fk(), *_parent_fk("child_orders"))

    run_id: int = Field(primary_key=True)
    child_id: str = Field(primary_key=True)
    seq: int  # position in the run, for a stable order
    parent_id: str
    venue: str
    side: str
    qty: int = Field(sa_type=BigInteger)
    ord_type: str
    tif: str
    limit_ticks: int | None = Field(default=None, sa_type=BigInteger)
    post_only: bool
    min_qty: int = Field(sa_type=BigInteger)
    conditional: bool
    sent_ns: int = Field(sa_type=BigInteger)
    filled_qty: int = Field(sa_type=BigInteger)
    status: str


class FillRow(SQLModel, table=True):
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


class DecisionRow(SQLModel, table=True):
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


# --------------------------------------------------------------------------------------
# Repository
# --------------------------------------------------------------------------------------


class Store:
    """The repository: one engine, one transaction per write, detached rows on reads."""

    def __init__(self, engine: Engine, display_url: str) -> None:
        self.engine = engine
        self.url = display_url  # password masked: safe to print and log

    @classmethod
    def open(cls, url: str | None = None, *, create: bool = True) -> Store:
        """Open (and by default create the tables of) the database at `url`.

        None is the SQLite file `blockroute.db` in the working directory.
        """
        text = DEFAULT_URL if url is None else url.strip()
        shown = mask_url(text)
        try:
            parsed = _parse_url(text)
        except ValueError as exc:
            raise StoreError(f"database {shown}: cannot open: {exc}") from None
        try:
            engine = _make_engine(parsed)
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(f"database {shown}: cannot open: {_cause(exc)}") from None
        store = cls(engine, shown)
        try:
            if create:
                store._guard("open", lambda: _create_tables(engine))
            else:
                store._guard("open", lambda: engine.connect().close())
        except StoreError:
            engine.dispose()
            raise
        return store

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
                # Core-style bulk inserts (executemany of plain dicts): about 90k rows/s
                # on SQLite against about 16k for session.add_all of row objects.
                tables: list[tuple[Any, list[dict[str, Any]]]] = [(ParentOrderRow, [rows.parent])]
                if detail:
                    tables += [
                        (ChildOrderRow, rows.children),
                        (FillRow, rows.fills),
                        (DecisionRow, rows.decisions),
                    ]
                for table, batch in tables:
                    if batch:
                        session.execute(insert(table), [{**r, "run_id": run_id} for r in batch])
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

    # ------------------------------------------------------------------ internals

    def _read(self, query: Any) -> list[Any]:
        def fetch() -> list[Any]:
            with Session(self.engine) as session:
                return list(session.exec(query).all())

        return self._guard("read", fetch)

    def _guard(self, action: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(f"database {self.url}: cannot {action}: {_cause(exc)}") from None


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

        child_rows = []
        for seq, c in enumerate(children):
            if c.child_id not in sent:
                raise ValueError(f"child {c.child_id!r}: no sent time (sent_ns or ChildOrderSent)")
            qty_done = filled.get(c.child_id, 0)
            # A late fill can follow a cancel; a complete fill wins over any terminal event.
            status = ChildStatus.FILLED if qty_done >= c.qty else ended.get(c.child_id)
            child_rows.append(
                {
                    "child_id": c.child_id,
                    "seq": seq,
                    "parent_id": c.parent_id,
                    "venue": c.venue,
                    "side": c.side.value,
                    "qty": c.qty,
                    "ord_type": c.ord_type.value,
                    "tif": c.tif.value,
                    "limit_ticks": c.limit_ticks,
                    "post_only": c.post_only,
                    "min_qty": c.min_qty,
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
        return _RunRows(parent_row, child_rows, fills, decisions)


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


def _make_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    return create_engine(url, connect_args=connect_args, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: switching to WAL must itself wait for other writers.
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # safe with WAL; one fsync per checkpoint
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _create_tables(engine: Engine, attempts: int = 10) -> None:
    for attempt in range(attempts):
        try:
            SQLModel.metadata.create_all(engine)
            return
        except (OperationalError, ProgrammingError, IntegrityError) as exc:
            # Workers opening a new database together race on CREATE TABLE ("already
            # exists"; on PostgreSQL also a duplicate pg_type key): each table may be lost
            # to another writer, so look again until every table is there.
            lost_race = isinstance(exc, IntegrityError) or "already exists" in str(exc)
            if not lost_race or attempt == attempts - 1:
                raise


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
