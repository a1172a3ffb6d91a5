"""The live service's journal: every parent, ClOrdID, child order, fill, decision,
schedule point and RFQ fact of `blockroute serve`, committed before it is reported.

The desk gathers what one step of the markets (or one client command) produced into a
`Batch` and commits it in one transaction; only then does it publish the events to FIX,
MQTT and the WebSocket. After a crash the desk rebuilds itself from these tables
(router/desk/recovery.py). Rows are upserted by primary key where a fact
updates a record (a parent's filled quantity, a child's status) and inserted where a fact
is new (a fill, a decision). SQLite (WAL, synchronous NORMAL: a committed transaction
survives a killed process) by default; PostgreSQL through the same URL handling as the
runs' store (router/store.py).

Every call is bounded (`DbTimeouts`: a call that outlives its deadline is aborted and
fails), and a commit may be retried as it is: inserts skip a row whose key is already
there, so a batch that the database took although the answer was lost (a connection
cut after COMMIT) is not stored twice. Rows that recovery could not load are kept as
they are and named in svc_quarantine, with the reason.

The svc_* tables derive from `JournalTable`, whose metadata is the journal's alone: its
schema is the `journal` history of router/migrations/ (the run store's tables are
another history, which a journal database does not get), applied by `Journal.open`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Index, Text, false, func, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import registry
from sqlmodel import Field, Session, SQLModel, col, select

from router.migrations import Migrations
from router.store import ChildOrderColumns, DbTimeouts, Store, StoreError, mask_url


class JournalTable(SQLModel, registry=registry()):
    """Base of the journal's tables: their own metadata, migrated as the `journal`
    history (JOURNAL_MIGRATIONS)."""


class SvcParentRow(JournalTable, table=True):
    __tablename__ = "svc_parents"
    __table_args__ = (Index("ix_svc_parents_status", "status"),)

    parent_id: str = Field(primary_key=True)
    client: str
    cl_ord_id: str  # the latest accepted one
    orig_cl_ord_id: str
    symbol: str
    side: str
    qty: int = Field(sa_type=BigInteger)
    ord_type: str
    limit_price: float | None = None
    strategy: str
    participation: float | None = None
    status: str
    start_ns: int = Field(sa_type=BigInteger)
    end_ns: int = Field(sa_type=BigInteger)
    filled_qty: int = Field(sa_type=BigInteger)
    notional: float
    fees: float
    arrival_mid: float
    n_children: int
    n_fills: int
    n_rfqs: int
    text: str = ""
    created_ns: int = Field(sa_type=BigInteger)
    updated_ns: int = Field(sa_type=BigInteger)
    tca_json: str = Field(default="", sa_type=Text)
    # the algo wheel (router.wheel): the arm that runs it ("champion", "challenger"; null:
    # not in the wheel) and the versions of its models at its start, as JSON
    # ({"dealer": 2, "fill": 1, "slicer": 1}; null: it reads no model, or none from the
    # model registry)
    model_arm: str | None = None
    model_versions: str | None = Field(default=None, sa_type=Text)


@dataclass
class ParentRecord:
    """A parent's row as the desk keeps it in memory and mutates it on every fill: a
    plain dataclass (building and updating the SQLModel row costs ten times more).
    Same fields as SvcParentRow; `as_row()` is what the journal writes."""

    parent_id: str
    client: str
    cl_ord_id: str
    orig_cl_ord_id: str
    symbol: str
    side: str
    qty: int
    ord_type: str
    limit_price: float | None
    strategy: str
    participation: float | None
    status: str
    start_ns: int
    end_ns: int
    filled_qty: int
    notional: float
    fees: float
    arrival_mid: float
    n_children: int
    n_fills: int
    n_rfqs: int
    created_ns: int
    updated_ns: int
    text: str = ""
    tca_json: str = ""
    model_arm: str | None = None
    model_versions: str | None = None

    def as_row(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_row(cls, row: SvcParentRow) -> ParentRecord:
        return cls(**{f: getattr(row, f) for f in cls.__dataclass_fields__})


class SvcClOrdIdRow(JournalTable, table=True):
    """Every ClOrdID a client used (new, replace, cancel): duplicates are refused, and a
    FIX client may name its order by any of them."""

    __tablename__ = "svc_clordids"

    client: str = Field(primary_key=True)
    cl_ord_id: str = Field(primary_key=True)
    parent_id: str = Field(index=True)
    kind: str  # "new", "replace" or "cancel"
    ts_ns: int = Field(sa_type=BigInteger)


class SvcChildRow(JournalTable, ChildOrderColumns, table=True):
    __tablename__ = "svc_children"
    __table_args__ = (Index("ix_svc_children_parent_status", "parent_id", "status"),)

    child_id: str = Field(primary_key=True)
    quote_id: str | None = None  # the dealer quote a hit child answers
    updated_ns: int = Field(sa_type=BigInteger)


class SvcFillRow(JournalTable, table=True):
    __tablename__ = "svc_fills"

    exec_id: str = Field(primary_key=True)
    parent_id: str = Field(index=True)
    seq: int  # the parent's n-th fill, from 1
    child_id: str
    ts_ns: int = Field(sa_type=BigInteger)
    venue: str
    venue_kind: str
    qty: int = Field(sa_type=BigInteger)
    price: float
    fee: float
    liquidity: str


class SvcDecisionRow(JournalTable, table=True):
    __tablename__ = "svc_decisions"

    parent_id: str = Field(primary_key=True)
    seq: int = Field(primary_key=True)
    decision_id: str
    ts_ns: int = Field(sa_type=BigInteger)
    chosen: str = Field(sa_type=Text)
    inputs_json: str = Field(sa_type=Text)
    alternatives_json: str = Field(sa_type=Text)
    # made by the heuristic router while the drift monitor had the models withdrawn
    # (router.drift): why; None when the parent's own router decided
    fallback: str | None = Field(default=None, sa_type=Text)

    # shadow mode: the challengers' answers by model family (router.shadow); NULL when
    # no challenger was asked
    shadow_json: str | None = Field(default=None, sa_type=Text)


class SvcScheduleRow(JournalTable, table=True):
    __tablename__ = "svc_schedule"

    parent_id: str = Field(primary_key=True)
    seq: int = Field(primary_key=True)
    ts_ns: int = Field(sa_type=BigInteger)
    target_qty: int = Field(sa_type=BigInteger)
    filled_qty: int = Field(sa_type=BigInteger)


class SvcRfqEventRow(JournalTable, table=True):
    __tablename__ = "svc_rfq_events"

    parent_id: str = Field(primary_key=True)
    seq: int = Field(primary_key=True)
    rfq_id: str = Field(index=True)
    ts_ns: int = Field(sa_type=BigInteger)
    what: str
    detail_json: str = Field(sa_type=Text)


class SvcMetaRow(JournalTable, table=True):
    """Values that must survive restarts: the last parent number ("next_parent"), the
    service clock's epoch (its reading "clock_epoch_ns" at the wall clock's
    "clock_epoch_wall_ns", running "clock_speed_micro" / 1e6 times the wall) and its
    reading at the last commit ("clock_ns"): a restart never goes back behind either
    (router/service.py, service_clock)."""

    __tablename__ = "svc_meta"

    key: str = Field(primary_key=True)
    value: int = Field(sa_type=BigInteger)


class SvcQuarantineRow(JournalTable, table=True):
    """A parent whose journal row recovery refused (an absurd price, a broken field):
    left untouched in svc_parents for a person to look at, and skipped at every start."""

    __tablename__ = "svc_quarantine"

    parent_id: str = Field(primary_key=True)
    reason: str = Field(sa_type=Text)
    ts_ns: int = Field(sa_type=BigInteger)


class SvcModelAliasRow(JournalTable, table=True):
    """Every move of a model alias (router/model_admin.py): who moved which family's
    `alias` from which version to which, when (wall clock) and why. `action` is
    "register" (a new version took it: the shipped artifacts at the registry's start, or
    a training run's challenger), "promote" or "rollback"; a rollback undoes the last
    promotion still in force, which these rows alone tell."""

    __tablename__ = "svc_model_aliases"
    __table_args__ = (Index("ix_svc_model_aliases_family_alias", "family", "alias"),)

    id: int | None = Field(default=None, primary_key=True)
    family: str
    alias: str
    from_version: int | None = None
    to_version: int
    action: str
    by: str
    reason: str = Field(sa_type=Text)
    ts_ns: int = Field(sa_type=BigInteger)
    # a promotion that overrode the guard rail (router.model_admin: a challenger worse
    # than the champion on the held-out set, promoted with force): what it overrode
    forced: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    override: str | None = Field(default=None, sa_type=Text)


class SvcDriftEventRow(JournalTable, table=True):
    """The drift monitor's alerts and fallback (router.drift, router/desk/drift.py):
    `kind` "alert_raised" or "alert_cleared" (of `family`'s `figure`, with its value,
    threshold and samples), "fallback_engaged" or "fallback_released" (figure "", by
    "drift" or the operator who resumed). The last fallback row says, at a restart,
    whether the models stay withdrawn."""

    __tablename__ = "svc_drift_events"

    # natural key: a retried commit inserts nothing twice (an id would)
    ts_ns: int = Field(primary_key=True, sa_type=BigInteger)
    kind: str = Field(primary_key=True)
    family: str = Field(primary_key=True)
    figure: str = Field(primary_key=True)
    value: float | None = None
    threshold: float | None = None
    n: int = 0
    by: str = ""
    message: str = Field(sa_type=Text)


JOURNAL_MIGRATIONS = Migrations("journal", JournalTable.metadata)

CLOCK_KEY = "clock_ns"
CLOCK_EPOCH_KEYS = ("clock_epoch_ns", "clock_epoch_wall_ns", "clock_speed_micro")


_UPSERT_TABLES: tuple[type[SQLModel], ...] = (
    SvcParentRow,
    SvcChildRow,
    SvcMetaRow,
    SvcQuarantineRow,
)


@dataclass
class Batch:
    """What one step committed together: upserts keyed by primary key (the last
    version of a row wins) and inserts in order. Batches queued behind a failed one are
    merged into it (`merge`): one transaction, the same rows in the end."""

    upserts: dict[tuple[type[SQLModel], tuple[Any, ...]], dict[str, Any]] = field(
        default_factory=dict
    )
    inserts: list[tuple[type[SQLModel], dict[str, Any]]] = field(default_factory=list)

    def upsert(self, table: type[SQLModel], row: dict[str, Any]) -> None:
        key = tuple(row[c.name] for c in _pk(table))
        self.upserts[(table, key)] = row

    def insert(self, table: type[SQLModel], row: dict[str, Any]) -> None:
        self.inserts.append((table, row))

    def merge(self, later: Batch) -> None:
        """Add what `later` holds, as if it had been written after this one."""
        self.upserts.update(later.upserts)
        self.inserts.extend(later.inserts)

    def __bool__(self) -> bool:
        return bool(self.upserts or self.inserts)

    def __len__(self) -> int:
        return len(self.upserts) + len(self.inserts)


def _table(table: type[SQLModel]) -> Any:
    return JournalTable.metadata.tables[str(table.__tablename__)]


def _pk(table: type[SQLModel]) -> list[Any]:
    return list(_table(table).primary_key.columns)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=_default)


def _default(value: object) -> Any:
    item = getattr(value, "tolist", None)  # numpy scalars
    if callable(item):
        return item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


class Journal:
    """Writes batches and reads what the desk needs back (recovery, the API's history)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._dialect = store.engine.dialect.name
        self.commits = 0
        self.rows_written = 0
        self._statements: dict[type[SQLModel], Any] = {}
        self._inserts: dict[type[SQLModel], Any] = {}

    @classmethod
    def open(cls, url: str | None, timeouts: DbTimeouts | None = None) -> Journal:
        """The journal at `url`, its tables at the last revision of their migrations;
        every call bounded by `timeouts` (default DbTimeouts()). Raises StoreError when
        the database cannot be opened or migrated."""
        store = Store.open(url, create=False, timeouts=timeouts or DbTimeouts())
        try:
            store.migrate(JOURNAL_MIGRATIONS)
        except StoreError:
            store.close()
            raise
        return cls(store)

    @classmethod
    def open_existing(cls, url: str, timeouts: DbTimeouts | None = None) -> Journal:
        """An existing journal at `url`, to read what the service journaled (retraining
        from it: models/training/journal_data.py). Creates and migrates nothing: a
        SQLite file that is not there, or a database without the journal's tables, is
        refused. Raises StoreError."""
        text = url.strip()
        try:
            parsed = make_url(text)
        except ArgumentError:
            raise StoreError(
                f"database {mask_url(text)}: cannot open: not a database URL "
                "(use sqlite:///PATH or postgresql://...)"
            ) from None
        if parsed.get_backend_name() == "sqlite":
            db = parsed.database or ""
            if db in ("", ":memory:") or not Path(db).is_file():
                raise StoreError(f"database {mask_url(text)}: cannot open: no such file")
        store = Store.open(text, create=False, timeouts=timeouts or DbTimeouts())
        try:
            names = store._guard("read the journal", lambda: _table_names(store))
            missing = [t for t in _TRAINING_TABLES if t not in names]
            if missing:
                raise StoreError(
                    f"database {store.url}: not a blockroute journal (no table {missing[0]})"
                )
        except StoreError:
            store.close()
            raise
        return cls(store)

    @property
    def url(self) -> str:
        return self.store.url

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ write

    def commit(self, batch: Batch) -> None:
        if not batch:
            return

        def write() -> None:
            # a Core connection: an ORM session's set-up costs more than these statements
            with self.store.bounded() as conn, conn.begin():
                by_table: dict[type[SQLModel], list[dict[str, Any]]] = {}
                for (table, _), row in batch.upserts.items():
                    by_table.setdefault(table, []).append(row)
                for table, rows in by_table.items():
                    conn.execute(self._upsert(table), rows)
                by_insert: dict[type[SQLModel], list[dict[str, Any]]] = {}
                for table, row in batch.inserts:
                    by_insert.setdefault(table, []).append(row)
                for table, rows in by_insert.items():  # executemany per table
                    conn.execute(self._insert(table), rows)

        self.store._guard("write the journal", write)
        self.commits += 1
        self.rows_written += len(batch)

    def _upsert(self, table: type[SQLModel]) -> Any:
        # built once per table: constructing the statement costs more than running it
        stmt = self._statements.get(table)
        if stmt is None:
            stmt = self._statements[table] = self._build_upsert(table)
        return stmt

    def _insert(self, table: type[SQLModel]) -> Any:
        stmt = self._inserts.get(table)
        if stmt is None:
            # a retried commit re-inserts what may already be there: keep the first
            t = _table(table)
            ins = postgresql.insert(t) if self._dialect == "postgresql" else sqlite.insert(t)
            stmt = self._inserts[table] = ins.on_conflict_do_nothing()
        return stmt

    def _build_upsert(self, table: type[SQLModel]) -> Any:
        t = _table(table)
        ins = postgresql.insert(t) if self._dialect == "postgresql" else sqlite.insert(t)
        keys = [c.name for c in t.primary_key.columns]
        rest = {c.name: ins.excluded[c.name] for c in t.columns if c.name not in keys}
        return ins.on_conflict_do_update(index_elements=keys, set_=rest)

    # ------------------------------------------------------------------ read

    def meta(self, key: str, default: int = 0) -> int:
        row = self._one(select(SvcMetaRow).where(SvcMetaRow.key == key))
        return default if row is None else int(row.value)

    def last_clock_ns(self) -> int:
        """The service clock at the last commit (0: none yet)."""
        return self.meta(CLOCK_KEY, 0)

    def clock_epoch(self) -> tuple[int, int, float] | None:
        """(service clock, wall clock, speed) when the service clock was last started
        on this journal; None if never."""
        keys = (CLOCK_KEY, *CLOCK_EPOCH_KEYS)
        rows = self._all(select(SvcMetaRow).where(col(SvcMetaRow.key).in_(keys)))
        values = {r.key: int(r.value) for r in rows}
        if not all(k in values for k in CLOCK_EPOCH_KEYS):
            return None
        epoch, wall, micro = (values[k] for k in CLOCK_EPOCH_KEYS)
        return epoch, wall, micro / 1e6

    def save_clock_epoch(self, clock_ns: int, wall_ns: int, speed: float) -> None:
        batch = Batch()
        values = (clock_ns, wall_ns, round(speed * 1e6))
        for key, value in zip(CLOCK_EPOCH_KEYS, values, strict=True):
            batch.upsert(SvcMetaRow, {"key": key, "value": value})
        batch.upsert(SvcMetaRow, {"key": CLOCK_KEY, "value": clock_ns})
        self.commit(batch)

    def quarantined(self) -> list[SvcQuarantineRow]:
        return self._all(select(SvcQuarantineRow).order_by(col(SvcQuarantineRow.parent_id)))

    def parents(self, open_only: bool = False) -> list[SvcParentRow]:
        query = select(SvcParentRow)
        if open_only:
            query = query.where(col(SvcParentRow.status).in_(OPEN_STATUSES))
        return self._all(query.order_by(col(SvcParentRow.created_ns)))

    def clordids(self) -> list[SvcClOrdIdRow]:
        return self._all(select(SvcClOrdIdRow))

    def open_children(self, parent_ids: Iterable[str]) -> list[SvcChildRow]:
        ids = list(parent_ids)
        if not ids:
            return []
        query = select(SvcChildRow).where(
            col(SvcChildRow.parent_id).in_(ids), SvcChildRow.status == "open"
        )
        return self._all(query.order_by(col(SvcChildRow.sent_ns)))

    # `timeout_s`: a tighter bound than the statement timeout, for reads made while
    # clients wait (the API's)

    def fills(self, parent_id: str, timeout_s: float | None = None) -> list[SvcFillRow]:
        query = select(SvcFillRow).where(SvcFillRow.parent_id == parent_id)
        return self._all(query.order_by(col(SvcFillRow.seq)), timeout_s)

    def decisions(
        self, parent_id: str, limit: int, timeout_s: float | None = None
    ) -> list[SvcDecisionRow]:
        query = select(SvcDecisionRow).where(SvcDecisionRow.parent_id == parent_id)
        return self._all(query.order_by(col(SvcDecisionRow.seq).desc()).limit(limit), timeout_s)

    def schedule(self, parent_id: str, timeout_s: float | None = None) -> list[SvcScheduleRow]:
        query = select(SvcScheduleRow).where(SvcScheduleRow.parent_id == parent_id)
        return self._all(query.order_by(col(SvcScheduleRow.seq)), timeout_s)

    def rfq_events(self, parent_id: str | None = None) -> list[SvcRfqEventRow]:
        query = select(SvcRfqEventRow)
        if parent_id is not None:
            query = query.where(SvcRfqEventRow.parent_id == parent_id)
        return self._all(query.order_by(col(SvcRfqEventRow.ts_ns), col(SvcRfqEventRow.seq)))

    def counts(self, parent_id: str) -> dict[str, int]:
        """The next free sequence numbers of a parent's decisions, schedule and RFQ facts."""
        out = {}
        for name, table in (
            ("decisions", SvcDecisionRow),
            ("schedule", SvcScheduleRow),
            ("rfq_events", SvcRfqEventRow),
        ):
            t: Any = table
            query = select(func.max(t.seq)).where(t.parent_id == parent_id)
            out[name] = int(self._scalar(query) or 0)
        return out

    # what retraining reads (models/training/journal_data.py): every fact up to
    # `until_ns`, or from `since_ns` on, in the order the desk journaled it

    def parent_sides(self) -> dict[str, tuple[str, str]]:
        """Every parent's (symbol, side)."""
        query = select(SvcParentRow.parent_id, SvcParentRow.symbol, SvcParentRow.side)
        return {p: (sym, side) for p, sym, side in self._rows(query)}

    def rfq_history(self, until_ns: int | None = None) -> list[SvcRfqEventRow]:
        """The RFQ facts of every parent up to `until_ns`, in time order."""
        query = select(SvcRfqEventRow)
        if until_ns is not None:
            query = query.where(SvcRfqEventRow.ts_ns <= until_ns)
        return self._all(
            query.order_by(
                col(SvcRfqEventRow.ts_ns), col(SvcRfqEventRow.parent_id), col(SvcRfqEventRow.seq)
            )
        )

    def children_sent(self, since_ns: int, until_ns: int | None = None) -> list[SvcChildRow]:
        """The child orders sent in the range, by sending time."""
        query = select(SvcChildRow).where(SvcChildRow.sent_ns >= since_ns)
        if until_ns is not None:
            query = query.where(SvcChildRow.sent_ns <= until_ns)
        return self._all(query.order_by(col(SvcChildRow.sent_ns), col(SvcChildRow.child_id)))

    def decisions_since(self, since_ns: int) -> list[SvcDecisionRow]:
        query = select(SvcDecisionRow).where(SvcDecisionRow.ts_ns >= since_ns)
        return self._all(query.order_by(col(SvcDecisionRow.ts_ns)))

    def fills_since(self, since_ns: int) -> list[SvcFillRow]:
        query = select(SvcFillRow).where(SvcFillRow.ts_ns >= since_ns)
        return self._all(query.order_by(col(SvcFillRow.ts_ns), col(SvcFillRow.exec_id)))

    def wheel_parents(self, since_ns: int | None = None) -> list[SvcParentRow]:
        """The parents of the algo wheel (an arm recorded), created from `since_ns` on
        (service clock), oldest first: router.wheel_stats."""
        query = select(SvcParentRow).where(col(SvcParentRow.model_arm).is_not(None))
        if since_ns is not None:
            query = query.where(SvcParentRow.created_ns >= since_ns)
        return self._all(query.order_by(col(SvcParentRow.created_ns), col(SvcParentRow.parent_id)))

    def drift_events(self, limit: int = 100) -> list[SvcDriftEventRow]:
        """The drift monitor's latest alerts and fallback changes, newest first."""
        query = select(SvcDriftEventRow).order_by(col(SvcDriftEventRow.ts_ns).desc())
        return self._all(query.limit(limit))

    def last_fallback(self) -> SvcDriftEventRow | None:
        """The latest fallback change (engaged or released), if any."""
        kinds = ("fallback_engaged", "fallback_released")
        query = (
            select(SvcDriftEventRow)
            .where(col(SvcDriftEventRow.kind).in_(kinds))
            .order_by(col(SvcDriftEventRow.ts_ns).desc())
            .limit(1)
        )
        return self._one(query)

    def alias_changes(self, family: str | None = None) -> list[SvcModelAliasRow]:
        """The model alias moves, oldest first (of one family if given)."""
        query = select(SvcModelAliasRow)
        if family is not None:
            query = query.where(SvcModelAliasRow.family == family)
        return self._all(query.order_by(col(SvcModelAliasRow.id)))

    def _all(self, query: Any, timeout_s: float | None = None) -> list[Any]:
        def fetch() -> list[Any]:
            with (
                self.store.bounded(timeout_s) as conn,
                Session(bind=conn, expire_on_commit=False) as session,
            ):
                return list(session.exec(query).all())

        return self.store._guard("read the journal", fetch)

    def _rows(self, query: Any) -> list[Any]:
        """Plain tuples of a query of columns."""

        def fetch() -> list[Any]:
            with self.store.bounded() as conn:
                return [tuple(r) for r in conn.execute(query)]

        return self.store._guard("read the journal", fetch)

    def _one(self, query: Any) -> Any:
        rows = self._all(query)
        return rows[0] if rows else None

    def _scalar(self, query: Any) -> Any:
        def fetch() -> Any:
            with self.store.bounded() as conn, Session(bind=conn) as session:
                return session.exec(query).one()

        return self.store._guard("read the journal", fetch)


OPEN_STATUSES: Sequence[str] = ("working", "paused", "pending_cancel")

#: what retraining from a journal reads
_TRAINING_TABLES = ("svc_parents", "svc_children", "svc_fills", "svc_decisions", "svc_rfq_events")


def _table_names(store: Store) -> set[str]:
    with store.bounded() as conn:
        return set(inspect(conn).get_table_names())
