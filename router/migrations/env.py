"""Alembic's environment for both histories (router/migrations/__init__.py).

At run time `upgrade` passes the history and an open connection in `config.attributes`.
From Alembic's command line (a developer's `alembic -n store ...`, alembic.ini) the
section names the history (`blockroute_history`) and `sqlalchemy.url` the database
(`-x url=...` overrides it). Offline mode (`--sql`) is refused: the first revisions look
at the tables that are there.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

from router.journal import JOURNAL_MIGRATIONS
from router.migrations import Migrations
from router.store import STORE_MIGRATIONS, Store


def _migrations() -> Migrations:
    given = context.config.attributes.get("migrations")
    if given is not None:
        assert isinstance(given, Migrations)
        return given
    name = context.config.get_main_option("blockroute_history")
    by_name = {m.name: m for m in (STORE_MIGRATIONS, JOURNAL_MIGRATIONS)}
    if name not in by_name:
        raise SystemExit(f"blockroute_history must be one of {sorted(by_name)}, got {name!r}")
    return by_name[name]


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # A revision spells a decorated type (sqlmodel's AutoString, the store's UtcDateTime)
    # by what it stores: the models' Python types may change, a revision may not.
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl_instance!r}"
    return False


def _run(connection: Connection, migrations: Migrations) -> None:
    context.configure(
        connection=connection,
        target_metadata=migrations.metadata,
        version_table=migrations.version_table,
        include_name=migrations.include_name,
        compare_type=True,
        render_item=_render_item,
        render_as_batch=True,  # SQLite alters a table by copying it
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        raise SystemExit("blockroute's migrations run against a database (no --sql)")
    migrations = _migrations()
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection, migrations)
        return
    # opened as blockroute opens it: the same URL handling, drivers and pragmas
    url = context.get_x_argument(as_dictionary=True).get("url")
    store = Store.open(url or context.config.get_main_option("sqlalchemy.url"), create=False)
    try:
        with store.engine.connect() as conn:
            _run(conn, migrations)
            conn.commit()
    finally:
        store.close()


main()
