"""Tests of router.migrations: the schema of the run store and of the journal comes from
their Alembic revisions, on SQLite (tmp_path) and PostgreSQL (a fresh schema per test,
tests/router/conftest.py).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import main as alembic_main
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

import router.migrations as migrations_module
from router.journal import JOURNAL_MIGRATIONS, Journal
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


def _first_revision(migrations: Migrations) -> str:
    (base,) = ScriptDirectory.from_config(migrations.config()).get_bases()
    return str(base)


def _database_before_migrations(engine: Engine, lacking: tuple[str, ...] = ()) -> None:
    """The tables that `create_all` made before migrations, with no version table and
    without the tables in `lacking` (a file of an older version).

    Built from each history's first revision, whose CREATE statements are create_all's
    (checked when it was written: the same sqlite_master, the same pg_dump): the models
    move on with later revisions, the databases of the old code do not."""
    for migrations in HISTORIES:
        with engine.begin() as conn:
            command.upgrade(migrations.config(conn), _first_revision(migrations))
            conn.execute(sa.text(f"DROP TABLE {migrations.version_table}"))
            for table in lacking:
                if table in migrations.metadata.tables:
                    conn.execute(sa.text(f"DROP TABLE {table}"))


# A run and a journal value as the old code wrote them (its columns, named).
OLD_ROWS = {
    "runs": {
        "run_id": 1,
        "kind": "backtest",
        "scenario": "calm",
        "seed": 2**40,
        "strategy": "sor",
        "created_at": datetime(2024, 3, 1, 14, 30, tzinfo=UTC),
        "batch": "b1",
        "is_bps": 12.5,
        "filled_qty": 500,
        "avg_price": 100.01,
        "completion": 1.0,
        "n_child_orders": 2,
        "tca_json": '{"is_bps": 12.5}',
    },
    "parent_orders": {
        "run_id": 1,
        "parent_id": "P1",
        "symbol": "QDI",
        "side": "sell",
        "qty": 500,
        "start_ns": 1_709_303_400_000_000_000,
        "horizon_ns": 3_600_000_000_000,
        "limit_ticks": None,
        "arrival_mid": 100.02,
        "filled_qty": 500,
        "avg_price": 100.01,
        "status": "filled",
    },
    "svc_meta": {"key": "next_parent", "value": 41},
}


def _names(row: dict[str, object]) -> str:
    return ", ".join(f'"{c}"' for c in row)


def _write_old_rows(engine: Engine) -> None:
    with engine.begin() as conn:
        for table, row in OLD_ROWS.items():
            values = ", ".join(f":{c}" for c in row)
            conn.execute(sa.text(f"INSERT INTO {table} ({_names(row)}) VALUES ({values})"), row)


def _old_rows(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """The old columns of the tables written, as the database holds them."""
    with engine.connect() as conn:
        return {
            table: [tuple(r) for r in conn.execute(sa.text(f"SELECT {_names(row)} FROM {table}"))]
            for table, row in OLD_ROWS.items()
        }


def test_a_database_of_the_code_before_migrations_is_stamped_and_keeps_its_rows(
    url: str, engine: Engine
) -> None:
    _database_before_migrations(engine)
    _write_old_rows(engine)
    rows = _old_rows(engine)
    assert [_current(engine, m) for m in HISTORIES] == [(), ()]

    with Store.open(url) as store:
        (run,) = store.runs()
        assert (run.run_id, run.seed, run.created_at) == (1, 2**40, OLD_ROWS["runs"]["created_at"])
    journal = Journal.open(url)
    try:
        assert journal.meta("next_parent") == 41
    finally:
        journal.close()

    assert _old_rows(engine) == rows  # taken over, not re-created
    for migrations in HISTORIES:
        assert _current(engine, migrations) == migrations.heads()
        with engine.connect() as conn:
            assert _differences(conn, migrations) == [], migrations.name


def test_tables_that_an_older_version_lacked_are_added(url: str, engine: Engine) -> None:
    """A file last opened by a version without the RFQ tables or the quarantine: as
    create_all did, opening adds them and keeps the rest."""
    lacking = ("rfq_legs", "rfqs", "svc_quarantine")
    _database_before_migrations(engine, lacking)
    _write_old_rows(engine)
    rows = _old_rows(engine)
    assert not set(lacking) & _tables(engine)
    Store.open(url).close()
    Journal.open(url).close()
    assert set(lacking) <= _tables(engine)
    assert _old_rows(engine) == rows
    with engine.connect() as conn:
        for migrations in HISTORIES:
            assert _differences(conn, migrations) == [], migrations.name


@pytest.mark.parametrize("migrations", HISTORIES, ids=lambda m: m.name)
def test_opening_again_only_reads(url: str, engine: Engine, migrations: Migrations) -> None:
    _open(url, migrations)
    if migrations is STORE_MIGRATIONS:
        with Store.open(url, create=False) as s:
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


def _together(n: int, work: Callable[[int], None]) -> list[BaseException]:
    """Runs work(0..n-1) in threads released at once; what they raised."""
    start = threading.Barrier(n)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as exc:  # returned, with the thread's cause
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_stores_opening_a_new_database_together_migrate_it_once(url: str, engine: Engine) -> None:
    """Backtest workers (separate connections, as processes have) open one new file."""
    assert _together(4, lambda i: _open(url, HISTORIES[i % 2])) == []
    with engine.connect() as conn:
        for migrations in HISTORIES:
            rows = conn.execute(sa.text(f"SELECT version_num FROM {migrations.version_table}"))
            assert tuple(r[0] for r in rows) == migrations.heads()


def test_threads_opening_new_databases_together(tmp_path: Path) -> None:
    """Alembic's proxies are process-wide: migrations of different databases in one
    process take turns."""
    urls = [f"sqlite:///{tmp_path / f'{i}.db'}" for i in range(4)]
    assert _together(4, lambda i: _open(urls[i], HISTORIES[i % 2])) == []
    for i, url in enumerate(urls):
        with Store.open(url, create=False) as s, s.engine.connect() as conn:
            assert HISTORIES[i % 2].current(conn) == HISTORIES[i % 2].heads()


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


# ------------------------------------------- the heads in the user cache (no Alembic)


@pytest.fixture
def fresh_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A user cache of this test's, and the heads read anew."""
    from router import cache

    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    migrations_module._script.cache_clear()
    yield tmp_path / "cache" / migrations_module.REVISIONS_CACHE
    migrations_module._script.cache_clear()


@pytest.mark.parametrize("migrations", HISTORIES, ids=lambda m: m.name)
def test_the_heads_come_from_the_cache_as_alembic_reads_them(
    migrations: Migrations, fresh_script: Path, monkeypatch: pytest.MonkeyPatch
):
    script = ScriptDirectory.from_config(migrations.config())
    expected = (tuple(script.get_heads()), frozenset(r.revision for r in script.walk_revisions()))
    assert migrations_module._script(migrations) == expected  # read by Alembic, kept
    migrations_module._script.cache_clear()

    def no_alembic(*args: object) -> None:
        raise AssertionError("Alembic read the revisions")

    monkeypatch.setattr(ScriptDirectory, "from_config", no_alembic)
    assert migrations_module._script(migrations) == expected  # from the cache
    assert [p.name.split(".")[0] for p in fresh_script.iterdir()] == [migrations.name]


def test_a_damaged_heads_entry_is_read_again_by_alembic(fresh_script: Path):
    from router import cache

    key = migrations_module._revisions_key(STORE_MIGRATIONS)
    expected = migrations_module._script(STORE_MIGRATIONS)
    for bad in (b"not json", b'{"heads": ["x"], "known": []}', b'{"heads": 1}'):
        cache.write(migrations_module.REVISIONS_CACHE, "store", key, bad)
        migrations_module._script.cache_clear()
        assert migrations_module._script(STORE_MIGRATIONS) == expected
    assert cache.read(migrations_module.REVISIONS_CACHE, "store", key) != bad  # rewritten


def test_a_new_revision_file_is_a_new_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import shutil

    here = Path(shutil.copytree(Path(migrations_module.__file__).parent, tmp_path / "m"))
    monkeypatch.setattr(migrations_module, "_HERE", here)
    before = migrations_module._revisions_key(STORE_MIGRATIONS)
    (here / "store" / "20990101_000000000000_next.py").write_text('revision = "next"\n')
    assert migrations_module._revisions_key(STORE_MIGRATIONS) != before


def test_opening_a_database_at_head_does_not_import_alembic(tmp_path: Path):
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    Store.open(url).close()  # created and migrated (Alembic)
    code = (
        "import sys\n"
        "from router.store import Store\n"
        f"Store.open({url!r}).close()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
