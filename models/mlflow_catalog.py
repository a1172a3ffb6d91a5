"""MLflow's tracking store and model registry as the model catalog (models.catalog).

The only module that imports MLflow (the `registry` extra); the rest of blockroute sees
`Catalog`. Each registered version is an MLflow run in the experiment
`blockroute-models` (its metrics, its seeds and arguments as parameters, the family's
files as artifacts under `<family>/`) and a version of the registered model
`blockroute-<family>` whose source is those artifacts; its lineage is in the version's
tags (`lineage.*`). The aliases are MLflow's own.

Where it lives (`registry_location`): beside the project's database, never in its
tables. MLflow's schema has a table named `runs`, as the run store (router/store.py)
has, and both may share the project's database file: so on SQLite the registry is a
file of its own next to it (`blockroute.db` -> `blockroute-registry.db`), on PostgreSQL
a schema of its own in the same database (`<schema>_registry`, through the connection's
search_path). The artifacts go to a folder (default: next to the SQLite file, or in the
working directory) or any URI MLflow's artifact repositories know.

The stores are used directly rather than through `MlflowClient`: the client builds its
tracking store with MLflow's default artifact root and so creates `./mlruns` in the
working directory of whoever lists the models.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

# MLflow 3 reports usage to its makers unless told not to: a trading service must not
# call out, and the machines it runs on may not reach the internet (the call would wait)
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# MLflow logs its table creation and migrations at INFO on a handler of its own, set up
# at its import from this variable: a command's standard error carries only its own words
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

import sqlalchemy as sa
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.entities.model_registry import ModelVersionTag
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import (
    get_artifact_repository,
)
from mlflow.store.model_registry.sqlalchemy_store import (
    SqlAlchemyStore as RegistryStore,
)
from mlflow.store.tracking.sqlalchemy_store import (
    SqlAlchemyStore as TrackingStore,
)
from sqlalchemy.engine import make_url

from models.catalog import (
    CatalogError,
    ModelVersion,
    VersionRecord,
    check_family,
)

EXPERIMENT = "blockroute-models"
MODEL_PREFIX = "blockroute-"
LINEAGE_TAG = "lineage."
DEFAULT_PG_SCHEMA = "blockroute"


@dataclass(frozen=True)
class RegistryLocation:
    """MLflow's backend store (a SQLAlchemy URL) and the artifacts' root (a URI)."""

    uri: str
    artifacts: str
    shown: str  # the backend without its password, for messages
    explicit: bool = False  # the artifacts' place was asked for (not the default)


def registry_location(
    db_url: str, artifacts: str | Path | None = None, workdir: Path | None = None
) -> RegistryLocation:
    """Where the registry of the project database `db_url` lives (see the module's
    docstring). `artifacts`: a folder or URI (default: beside the SQLite file, or
    `blockroute-registry-artifacts` in `workdir`). Raises CatalogError (field "db_url")
    for a database the registry cannot live beside."""
    try:
        url = make_url(db_url.strip())
    except sa.exc.ArgumentError:
        raise CatalogError(f"not a database URL: {db_url!r}", "db_url") from None
    backend = url.get_backend_name()
    base = workdir or Path(".")
    if backend == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise CatalogError("the model registry needs a database file, not :memory:", "db_url")
        db = Path(url.database).resolve()
        uri = url.set(database=str(db.with_name(f"{db.stem}-registry.db")))
        default_artifacts = db.with_name(f"{db.stem}-registry-artifacts")
    elif backend in ("postgres", "postgresql"):
        options = url.query.get("options")
        text = " ".join(options) if isinstance(options, tuple) else (options or "")
        schema = _search_path(text) or DEFAULT_PG_SCHEMA
        # the URL's other options (timeouts...) are kept; its search_path is the project's
        kept = [p for p in _options(text) if not p.startswith("-csearch_path=")]
        registry_options = " ".join([*kept, f"-csearch_path={schema}_registry"])
        uri = url.set(drivername="postgresql+psycopg2").update_query_dict(
            {"options": registry_options}
        )
        default_artifacts = (base / "blockroute-registry-artifacts").resolve()
    else:
        raise CatalogError(f"unsupported database {backend!r} (use sqlite or postgresql)", "db_url")
    if artifacts is None:
        root = default_artifacts.as_uri()
    elif isinstance(artifacts, Path) or "://" not in artifacts:
        root = Path(artifacts).resolve().as_uri()
    else:
        root = str(artifacts)
    return RegistryLocation(
        uri.render_as_string(hide_password=False),
        root,
        uri.render_as_string(hide_password=True),
        explicit=artifacts is not None,
    )


def _options(text: str) -> list[str]:
    """A libpq `options` string's settings, each as `-cname=value`."""
    return text.replace("-c ", "-c").split()


def _search_path(options: str) -> str | None:
    """The first schema of a libpq `options` string's search_path (-csearch_path=a,b)."""
    for part in _options(options):
        if part.startswith("-csearch_path="):
            return part.split("=", 1)[1].split(",")[0].strip() or None
    return None


def _schema_of(uri: str) -> str | None:
    url = make_url(uri)
    options = url.query.get("options")
    return _search_path(" ".join(options) if isinstance(options, tuple) else (options or ""))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _name(family: str) -> str:
    return MODEL_PREFIX + check_family(family)


class MlflowCatalog:
    """models.catalog.Catalog on MLflow's SQL stores at `location`."""

    def __init__(self, location: RegistryLocation) -> None:
        self.location = location
        if make_url(location.uri).get_backend_name() == "postgresql":
            _create_schema(location.uri)
        try:
            # the first open of a new database creates MLflow's tables (its own migrations)
            self._tracking = TrackingStore(location.uri, location.artifacts)
            self._registry = RegistryStore(location.uri)
            self._experiment_id = self._experiment()
        except MlflowException as exc:
            raise CatalogError(
                f"model registry {location.shown}: cannot open: {_first_line(exc)}", "db_url"
            ) from None

    def _experiment(self) -> str:
        """The experiment of every version's run; its artifact location is where the
        registry keeps the files, set when the registry is made."""
        found = self._tracking.get_experiment_by_name(EXPERIMENT)
        if found is not None:
            kept = str(found.artifact_location)
            if self.location.explicit and kept != self.location.artifacts:
                # silently writing elsewhere than asked would scatter the versions' files
                raise CatalogError(
                    f"this registry keeps its files in {kept}, not {self.location.artifacts}",
                    "artifacts",
                    kind="invalid",
                )
            return str(found.experiment_id)
        try:
            return str(
                self._tracking.create_experiment(
                    EXPERIMENT, artifact_location=self.location.artifacts
                )
            )
        except MlflowException:  # created by another process meanwhile
            again = self._tracking.get_experiment_by_name(EXPERIMENT)
            if again is None:
                raise
            return str(again.experiment_id)

    # ------------------------------------------------------------------ reads

    def _aliases(self, family: str) -> dict[str, int]:
        try:
            model = self._registry.get_registered_model(_name(family))
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return {}
            raise
        return {alias: int(v) for alias, v in (model.aliases or {}).items()}

    def versions(self, family: str) -> list[ModelVersion]:
        name = _name(family)
        found = self._registry.search_model_versions(filter_string=f"name='{name}'")
        aliases = self._aliases(family)
        out = [self._version(family, mv, aliases) for mv in found]
        return sorted(out, key=lambda v: v.version)

    def version(self, family: str, version: int) -> ModelVersion:
        mv = self._model_version(family, version)
        return self._version(family, mv, self._aliases(family))

    def _model_version(self, family: str, version: int) -> Any:
        name = _name(family)
        try:
            return self._registry.get_model_version(name, str(version))
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise CatalogError(f"{family} has no version {version}", "version") from None
            raise

    def _version(self, family: str, mv: Any, aliases: dict[str, int]) -> ModelVersion:
        number = int(mv.version)
        run_id = mv.run_id
        metrics: dict[str, float] = {}
        params: dict[str, str] = {}
        if run_id:
            data = self._tracking.get_run(run_id).data
            metrics, params = dict(data.metrics), dict(data.params)
        tags = dict(mv.tags or {})
        created = datetime.fromtimestamp(int(mv.creation_timestamp) / 1000, UTC)
        return ModelVersion(
            family=family,
            version=number,
            aliases=tuple(sorted(a for a, v in aliases.items() if v == number)),
            metrics=metrics,
            source=str(mv.source),
            created=created.isoformat(timespec="seconds"),
            description=str(mv.description or ""),
            params=params,
            lineage={
                k.removeprefix(LINEAGE_TAG): v for k, v in tags.items() if k.startswith(LINEAGE_TAG)
            },
        )

    def alias(self, family: str, alias: str) -> int | None:
        return self._aliases(family).get(alias)

    def files(self, family: str, version: int) -> Path:
        source = str(self._model_version(family, version).source)
        parsed = urlparse(source)
        if parsed.scheme in ("", "file"):
            return Path(unquote(parsed.path))  # a local store: its own folder, no copy
        folder = tempfile.mkdtemp(prefix=f"blockroute-{family}-v{version}-")
        return Path(get_artifact_repository(source).download_artifacts("", dst_path=folder))

    # ------------------------------------------------------------------ writes

    def set_alias(self, family: str, alias: str, version: int) -> None:
        self._model_version(family, version)  # CatalogError if there is no such version
        self._registry.set_registered_model_alias(_name(family), alias, str(version))

    def delete_alias(self, family: str, alias: str) -> None:
        self._registry.delete_registered_model_alias(_name(family), alias)

    def register(self, family: str, files: Sequence[Path], record: VersionRecord) -> int:
        name = _name(family)
        try:
            self._registry.create_registered_model(name, description=f"blockroute {family} models")
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        start = _now_ms()
        run = self._tracking.create_run(
            experiment_id=self._experiment_id,
            user_id="blockroute",
            start_time=start,
            tags=[],
            run_name=family,
        )
        run_id = run.info.run_id
        self._tracking.log_batch(
            run_id,
            metrics=[Metric(k, v, start, 0) for k, v in record.metrics.items()],
            params=[Param(k, v) for k, v in record.params.items()],
            tags=[RunTag("blockroute.family", family)],
        )
        repo = get_artifact_repository(run.info.artifact_uri)
        for path in files:
            repo.log_artifact(str(path), family)
        self._tracking.update_run_info(run_id, RunStatus.FINISHED, _now_ms(), None)
        mv = self._registry.create_model_version(
            name,
            f"{run.info.artifact_uri}/{family}",
            run_id=run_id,
            tags=[ModelVersionTag(LINEAGE_TAG + k, v) for k, v in record.lineage.items()],
            description=record.description,
        )
        return int(mv.version)


def _create_schema(uri: str) -> None:
    """PostgreSQL: the registry's schema, made before MLflow looks for its tables there."""
    schema = _schema_of(uri)
    if schema is None:
        return
    url = make_url(uri)
    # connect without the search_path: the schema may not exist yet
    engine = sa.create_engine(url.difference_update_query(["options"]))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    except sa.exc.SQLAlchemyError as exc:
        raise CatalogError(
            f"model registry {url.render_as_string(hide_password=True)}: cannot create schema "
            f"{schema}: {_first_line(exc)}",
            "db_url",
        ) from None
    finally:
        engine.dispose()


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
