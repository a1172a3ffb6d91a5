"""Schema migrations (Alembic) of the run store and of the service's journal.

The schema is the revisions' work, not `create_all`'s: opening a store or a journal
(`Store.open`, `Journal.open`) brings its tables to the head revision with `upgrade`.

Two histories, each with its own metadata, folder of revisions and version table:

- `store` (router/store.py: runs, parent_orders, child_orders, fills, decisions, rfqs,
  rfq_legs): revisions in store/, the database's revision in `alembic_version_store`;
- `journal` (router/journal.py: the svc_* tables of `blockroute serve`): revisions in
  journal/, the revision in `alembic_version_journal`.

Separate because they are separate databases in use: the service journals to one
(`serve --db-url`), simulations and backtests store runs in another (`--db-url`), and
each should hold only its own tables and be migrated by the code that owns them; the
two change at their own pace (a journal revision must not wait for, or force, a run
store one). Before migrations both were on SQLModel's one metadata, so a journal
database also got the (empty) run tables; now it gets only its own. The two may still
share one database: the version tables differ, and each history sees only its own
tables (`include_name`), so neither takes the other's for tables to drop.

Databases made before migrations (by `create_all`, with no version table) hold some or
all of the tables of the first revision of each history: that revision keeps the
tables that are there, rows and all, and creates only the missing ones (as `create_all`
did for a file of an older version), so such a database ends stamped at the first
revision, then moves on to head like any other.

Opening is a read when the database is at head, and then Alembic is not even imported
(a fifth of a second of every `simulate`): the heads of a history are kept in the user's
cache (router/cache.py), keyed by its revision files and Alembic's version, and the
database's revision is read with one query. Otherwise the upgrade runs in one
transaction under a lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-scoped
advisory lock), so that processes opening a new database together (backtest workers)
migrate it once: the others wait, then find it at head.

A developer adds a revision with Alembic's command line and the top-level alembic.ini,
which has one section per history (README, "Storage"):
`alembic -n store revision --autogenerate -m "what changes"`, then reviews the file.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection

from router import cache

if TYPE_CHECKING:  # Alembic loads only when a database is not at head
    from alembic.config import Config

_HERE = Path(__file__).resolve().parent

# pg_advisory_xact_lock's key: a constant that other applications of the same database
# are unlikely to lock ("blockrou" in ASCII)
_PG_LOCK_KEY = 0x626C6F636B726F75

# Alembic's `context` and `op` are process-wide proxies of the migration that runs: one
# at a time in a process (threads opening different databases), whatever the database.
_ONE_AT_A_TIME = threading.Lock()


class MigrationError(Exception):
    """The database's schema is at a revision that this code does not know."""


@dataclass(frozen=True, eq=False)
class Migrations:
    """One history of schema revisions: the tables of `metadata`, the revisions in the
    folder `name` beside this module, the database's revision in `version_table`."""

    name: str
    metadata: MetaData

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.name}"

    @property
    def versions(self) -> Path:
        return _HERE / self.name

    def include_name(self, name: str | None, type_: str, parent_names: object) -> bool:
        """Alembic's `include_name` filter: autogenerate compares only this history's
        tables, so that a database shared with the other history looks complete."""
        return type_ != "table" or name in self.metadata.tables

    def config(self, connection: Connection | None = None) -> Config:
        """Alembic's configuration of this history, built here (no alembic.ini at run
        time); `connection` is the one env.py migrates."""
        from alembic.config import Config

        cfg = Config()
        # ConfigParser reads % as interpolation
        cfg.set_main_option("script_location", str(_HERE).replace("%", "%%"))
        cfg.set_main_option("version_locations", str(self.versions).replace("%", "%%"))
        cfg.set_main_option("path_separator", "os")
        cfg.attributes["migrations"] = self
        if connection is not None:
            cfg.attributes["connection"] = connection
        return cfg

    def heads(self) -> tuple[str, ...]:
        return _script(self)[0]

    def current(self, conn: Connection) -> tuple[str, ...]:
        """The database's revision(s) of this history; () when it has none (new, or
        made before migrations). Reads only: what Alembic's
        `MigrationContext.get_current_heads` reads, without importing Alembic."""
        if not inspect(conn).has_table(self.version_table):
            return ()
        rows = conn.execute(text(f"SELECT version_num FROM {self.version_table}"))
        return tuple(r[0] for r in rows)


#: the user cache's folder of the histories' revisions (router.cache)
REVISIONS_CACHE = "migrations"


@functools.cache
def _script(migrations: Migrations) -> tuple[tuple[str, ...], frozenset[str]]:
    """The head revisions and all revisions of the history, read once per process: from
    the user cache if its revision files and Alembic are those it was read with, else
    by Alembic (and kept)."""
    key = _revisions_key(migrations)
    hit = cache.read(REVISIONS_CACHE, migrations.name, key)
    if hit is not None:
        try:
            doc = json.loads(hit)
            heads, known = tuple(doc["heads"]), frozenset(doc["known"])
            if all(isinstance(r, str) for r in (*heads, *known)) and set(heads) <= known:
                return heads, known
        except (ValueError, KeyError, TypeError):
            pass  # not ours: read by Alembic and rewritten below
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrations.config())
    heads = tuple(script.get_heads())
    known = frozenset(r.revision for r in script.walk_revisions())
    payload = json.dumps({"heads": list(heads), "known": sorted(known)}).encode()
    cache.write(REVISIONS_CACHE, migrations.name, key, payload)
    return heads, known


def _revisions_key(migrations: Migrations) -> str:
    """What a history's heads depend on: its revision files and the Alembic that reads
    them (its package's __init__, which holds its version)."""
    spec = importlib.util.find_spec("alembic")
    alembic_init = Path(spec.origin).read_bytes() if spec and spec.origin else b""
    return cache.digest(cache.source_digest(_HERE, [migrations.name, "env.py"]), alembic_init)


def upgrade(conn: Connection, migrations: Migrations) -> None:
    """Bring the tables of `migrations` in `conn`'s database to the head revision.

    Leaves `conn` outside any transaction. Raises MigrationError when the database is
    at a revision these migrations do not have (a newer version of blockroute migrated
    it), and SQLAlchemy's errors when the database fails.
    """
    heads, known = _script(migrations)
    try:
        current = migrations.current(conn)
    finally:
        conn.rollback()  # the read's implicit transaction; the upgrade begins its own
    unknown = [rev for rev in current if rev not in known]
    if unknown:
        raise MigrationError(
            f"the {migrations.name} tables are at revision {', '.join(unknown)}, which this"
            " version of blockroute does not have (a newer one migrated them)"
        )
    if set(current) == set(heads):
        return
    with _ONE_AT_A_TIME, conn.begin():
        _lock(conn)
        # Alembic reads the revision again under the lock: one that another process
        # has just migrated is found at head, and nothing is done.
        from alembic import command

        command.upgrade(migrations.config(conn), "head")


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        # The driver begins a transaction only before DML; the DDL must be in this one,
        # which holds the write lock from its start (others wait their busy timeout).
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
