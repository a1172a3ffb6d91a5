"""Fixtures shared by the router's tests: a fresh PostgreSQL schema per test.

PostgreSQL: BLOCKROUTE_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/test);
an unreachable server fails these tests; set the variable to `skip` to skip them. Each
test gets a fresh schema (search_path through the URL's `options`), dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from router.store import mask_url

PG_ENV = "BLOCKROUTE_TEST_PG_URL"
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose connections see only a fresh schema, dropped after the test."""
    url = os.environ.get(PG_ENV, PG_DEFAULT)
    if url.strip().lower() == "skip":
        pytest.skip(f"{PG_ENV}=skip: PostgreSQL tests disabled")
    admin = sa.create_engine(
        make_url(url).set(drivername="postgresql+psycopg2"), connect_args={"connect_timeout": 5}
    )
    schema = f"br_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL at {mask_url(url)} is unreachable ({' '.join(str(exc.orig).split())});"
            f" start it, point {PG_ENV} at one, or set {PG_ENV}=skip"
        )
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture(scope="session")
def registry_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow database with its tables and nothing else, made once: creating them
    takes 5-10 s on SQLite, and every registry test needs a fresh registry."""
    from models.mlflow_catalog import RegistryStore, TrackingStore

    folder = tmp_path_factory.mktemp("registry-template")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    TrackingStore(uri, (folder / "unused").as_uri())
    RegistryStore(uri)
    return folder / "mlflow.db"


@pytest.fixture
def registry_db_url(tmp_path: Path, registry_template: Path) -> str:
    """A project database URL in tmp_path whose model registry (beside it) is a copy of
    the empty template: the test's own registry, its files in tmp_path too."""
    shutil.copy(registry_template, tmp_path / "blockroute-registry.db")
    return f"sqlite:///{tmp_path / 'blockroute.db'}"
