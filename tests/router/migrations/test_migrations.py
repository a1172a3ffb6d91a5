"""Tests of router.migrations: the schema of the run store and of the journal comes from
their Alembic revisions, on SQLite (tmp_path) and PostgreSQL (a fresh schema per test,
tests/router/conftest.py).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import main as alembic_main
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from router.journal import JOURNAL_MIGRATIONS, Journal, SvcMetaRow
from router.migrations import Migrations
from router.store import STORE_MIGRATIONS, Store, StoreError
from tests.router.conftest import PG_ENV
from tests.router.test_store import _record

HISTORIES = [STORE_MIGRATIONS, JOURNAL_MIGRATIONS]
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'blockroute.db'}"
    if os.environ.get("CI") and os.environ.get(PG_ENV, "").strip().lower() == "skip":
        pytest.fail(f"{PG_ENV}=skip: CI must run the PostgreSQL migrations")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    """An engine on the test's database that creates nothing (the opening tested)."""
    store = Store.open(url, create=False)
    yield store.engine
    store.close()


def _open(url: str, migrations: Migrations) -> None:
    if migrations is STORE_MIGRATIONS:
        Store.open(url).close()
    else:
        Journal.open(url).close()


def _tables(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def _current(engine: Engine, migrations: Migrations) -> tuple[str, ...]:
    with engine.connect() as conn:
        return migrations.current(conn)


def _differences(conn: Connection, migrations: Migrations) -> list[object]:
    """What autogenerate would write: none when the database matches the models."""
    context = MigrationContext.configure(
        conn,
        opts={
            "include_name": migrations.include_name,
            "compare_type": True,
            "version_table": migrations.version_table,
        },
    )
    return list(compare_metadata(context, migrations.metadata))


def _schema(engine: Engine) -> dict[str, object]:
    """Tables, columns, keys and indexes as the database reports them."""
    inspector = sa.inspect(engine)
    out: dict[str, object] = {}
    for table in sorted(inspector.get_table_names()):
        columns = [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)]
        out[table] = (
            columns,
            inspector.get_pk_constraint(table)["constrained_columns"],
            sorted(str(fk) for fk in inspector.get_foreign_keys(table)),
            sorted(str(ix) for ix in inspector.get_indexes(table)),
        )
    return out


@pytest.mark.parametrize("migrations", HISTORIES, ids=lambda m: m.name)
def test_a_new_database_gets_its_tables_only_at_head(
    url: str, engine: Engine, migrations: Migrations
) -> None:
    _open(url, migrations)
    assert _tables(engine) == {*migrations.metadata.tables, migrations.version_table}
    assert _current(engine, migrations) == migrations.heads()


def test_the_migrated_schema_is_what_the_models_declare(url: str, engine: Engine) -> None:
    # both histories in one database, as when the service and backtests share one
    for migrations in HISTORIES:
        _open(url, migrations)
    with engine.connect() as conn:
        for migrations in HISTORIES:
            assert _differences(conn, migrations) == [], migrations.name
    version_tables = {m.version_table for m in HISTORIES}
    assert (
        _tables(engine)
        == {*STORE_MIGRATIONS.metadata.tables}
        | {*JOURNAL_MIGRATIONS.metadata.tables}
        | version_tables
    )


def test_a_database_of_the_code_before_migrations_is_stamped_and_keeps_its_rows(
    url: str, engine: Engine
) -> None:
    # What blockroute did before migrations: create_all of every table, no version table.
    # (This is the schema of each history's first revision while the models are at it.)
    for migrations in HISTORIES:
        migrations.metadata.create_all(engine)
    with Store.open(url, create=False) as old:
        run_id = _record(old)
        fills, children = old.fills(run_id), old.children(run_id)
    with engine.begin() as conn:
        conn.execute(sa.insert(SvcMetaRow), {"key": "next_parent", "value": 41})
    before = _schema(engine)

    with Store.open(url) as store:
        assert [r.run_id for r in store.runs()] == [run_id]
        assert (store.fills(run_id), store.children(run_id)) == (fills, children)
    journal = Journal.open(url)
    try:
        assert journal.meta("next_parent") == 41
    finally:
        journal.close()

    for migrations in HISTORIES:
        assert _current(engine, migrations) == migrations.heads()
    after = _schema(engine)
    assert {t: after[t] for t in before} == before
    assert set(after) - set(before) == {m.version_table for m in HISTORIES}


def test_tables_that_an_older_version_lacked_are_added(url: str, engine: Engine) -> None:
    """A file last opened by a version without the RFQ tables or the quarantine: as
    create_all did, opening adds them and keeps the rest."""
    missing = {"rfqs", "rfq_legs", "svc_quarantine"}
    for migrations in HISTORIES:
        tables = [t for n, t in migrations.metadata.tables.items() if n not in missing]
        migrations.metadata.create_all(engine, tables=tables)
    with Store.open(url, create=False) as old:
        run_id = _record(old)
    with Store.open(url) as store:
        assert [r.run_id for r in store.runs()] == [run_id]
        assert store.rfqs(run_id) == []
    Journal.open(url).close()
    assert missing <= _tables(engine)
    with engine.connect() as conn:
        for migrations in HISTORIES:
            assert _differences(conn, migrations) == [], migrations.name


@pytest.mark.parametrize("migrations", HISTORIES, ids=lambda m: m.name)
def test_opening_again_only_reads(url: str, engine: Engine, migrations: Migrations) -> None:
    _open(url, migrations)
    with Store.open(url, create=False) as s:
        if migrations is STORE_MIGRATIONS:
            _record(s)
    before = _schema(engine)
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    sa.event.listen(Engine, "before_cursor_execute", seen)
    try:
        _open(url, migrations)
    finally:
        sa.event.remove(Engine, "before_cursor_execute", seen)
    # no write, and not the migration's lock either
    reads = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "PRAGMA"))]
    assert statements and statements == reads
    assert not [s for s in statements if "lock" in s.lower()]
    assert _schema(engine) == before
    assert _current(engine, migrations) == migrations.heads()


def test_opening_a_read_only_sqlite_file_at_head_works(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    Store.open(f"sqlite:///{path}").close()
    with Store.open(f"sqlite:///file:{path}?mode=ro&uri=true") as ro:
        assert ro.runs() == []


def test_processes_opening_a_new_database_together_migrate_it_once(
    url: str, engine: Engine
) -> None:
    n = 4
    start = threading.Barrier(n)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            start.wait()
            _open(url, HISTORIES[i % 2])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        for migrations in HISTORIES:
            rows = conn.execute(sa.text(f"SELECT version_num FROM {migrations.version_table}"))
            assert tuple(r[0] for r in rows) == migrations.heads()


def test_threads_opening_new_databases_together(tmp_path: Path) -> None:
    """Alembic's proxies are process-wide: migrations of different databases in one
    process take turns."""
    n = 4
    start = threading.Barrier(n)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            start.wait()
            _open(f"sqlite:///{tmp_path / f'{i}.db'}", HISTORIES[i % 2])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_database_of_a_newer_version_is_refused(url: str, engine: Engine) -> None:
    Store.open(url).close()
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version_store SET version_num = 'f00dfeedbeef'"))
    with pytest.raises(StoreError) as exc:
        Store.open(url)
    assert str(exc.value).endswith(
        "cannot open: the store tables are at revision f00dfeedbeef, which this version of"
        " blockroute does not have (a newer one migrated them)"
    )


# --------------------------------------------------------------------------- the history


@pytest.mark.parametrize("migrations", HISTORIES, ids=lambda m: m.name)
def test_the_package_holds_the_whole_history(migrations: Migrations) -> None:
    """One head, one base, every file of the folder on the one line between them."""
    script = ScriptDirectory.from_config(migrations.config())
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1
    line = [r.revision for r in script.walk_revisions()]  # head to base, or raises
    assert line[0] == script.get_current_head() and line[-1] == script.get_bases()[0]
    files = sorted(p.name for p in migrations.versions.glob("*.py"))
    assert sorted(Path(script.get_revision(r).path).name for r in line) == files


def test_every_table_belongs_to_one_history() -> None:
    """A table on SQLModel's shared metadata would be created by no revision."""
    store, journal = STORE_MIGRATIONS.metadata.tables, JOURNAL_MIGRATIONS.metadata.tables
    assert not set(store) & set(journal)
    assert dict(SQLModel.metadata.tables) == {}
    assert all(name.startswith("svc_") for name in journal)


def test_the_developers_command_line_finds_nothing_to_generate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """alembic.ini and env.py as README says: a database at head, then `alembic check`
    (autogenerate's comparison) finds the models and the revisions in agreement."""
    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 'scratch.db'}"
    for name in ("store", "journal"):
        base = ["-c", str(ROOT / "alembic.ini"), "-n", name, "-x", f"url={db}"]
        alembic_main([*base, "upgrade", "head"])
        alembic_main([*base, "check"])  # raises SystemExit when a revision is missing
    engine = sa.create_engine(db)
    try:
        assert _tables(engine) >= {"runs", "svc_parents", "alembic_version_journal"}
    finally:
        engine.dispose()
