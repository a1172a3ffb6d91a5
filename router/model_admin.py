"""Moving model aliases: the only way to change which models the service serves.

`ModelAdmin` is what `blockroute models ...`, the HTTP API and `blockroute train
--register` call. It checks a request in full before it changes anything (the family,
the version, the alias, who and why, and that the version's files load as serving
would load them), moves the alias in the catalog (MLflow's registry:
models/mlflow_catalog.py), journals the move (svc_model_aliases: who, why, from, to,
when) and then tells its listeners (the MQTT bus) with a `ModelAliasChanged`.

A promotion to champion is also held to the guard rail: a version worse than the
champion on the held-out set (models.catalog.shortfalls) needs `force`, and the move
then records what it overrode. A running service serves each move live
(router.hotswap).

A registry that has no version of a family yet registers the artifacts shipped under
models/ as its version 1 and makes it the champion, so a fresh registry serves what a
service without one serves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.catalog import (
    CHALLENGER,
    CHAMPION,
    FAMILIES,
    SHIPPED_VERSION,
    Catalog,
    CatalogError,
    ModelVersion,
    Shortfall,
    check_alias,
    check_family,
    record_from_meta,
    shortfalls,
)
from models.serving import artifacts
from models.serving.artifacts import ModelError, family_files
from router.desk_api import DeskEvent, ModelAliasChanged
from router.journal import Batch, Journal, SvcModelAliasRow

if TYPE_CHECKING:
    from router.registry import ModelRegistry

SYSTEM = "blockroute"  # `by` of what blockroute does itself (the shipped version 1)
MAX_TEXT = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def change_json(event: ModelAliasChanged) -> dict[str, Any]:
    """An alias move as the CLI and the API answer it."""
    return {
        "family": event.family,
        "alias": event.alias,
        "from_version": event.from_version,
        "to_version": event.to_version,
        "action": event.action,
        "by": event.by,
        "reason": event.reason,
        "ts_ns": event.ts_ns,
        "forced": event.forced,
        "override": event.override,
    }


class WorseThanChampion(CatalogError):
    """A promotion to champion refused by the guard rail: the challenger is worse than
    the champion on the held-out set (`shortfalls`, models.catalog.GUARDS). Promoting
    it anyway takes force and a reason (CLI --force; API "force": true)."""

    def __init__(self, family: str, version: int, champion: int, found: list[Shortfall]) -> None:
        self.shortfalls = found
        super().__init__(
            f"version {version} of {family} is worse than the champion (version {champion}) "
            f"on the held-out set: {'; '.join(str(f) for f in found)}; promote it with force "
            "and a reason to override",
            "force",
            kind="conflict",
        )


def _text(value: str, name: str) -> str:
    text = value.strip()
    if not text:
        raise CatalogError(f"{name} must not be blank: say {_WHAT[name]}", name, kind="invalid")
    if _CONTROL.search(text) or len(text) > MAX_TEXT:
        raise CatalogError(
            f"{name} must be one line of at most {MAX_TEXT} characters", name, kind="invalid"
        )
    return text


_WHAT = {"by": "who moves the alias", "reason": "why"}


def _code_version() -> str:
    try:
        return package_version("blockroute")
    except PackageNotFoundError:
        return "unknown"


class ModelAdmin:
    """Lists versions, registers new ones, moves the aliases. `now_ns`: the wall clock
    (a move happens at a person's time, not the simulated markets'); `shipped`: the
    folder of version 1 (default: models/ as it is at the call)."""

    def __init__(
        self,
        catalog: Catalog,
        journal: Journal,
        now_ns: Callable[[], int],
        shipped: Path | None = None,
    ) -> None:
        self.catalog = catalog
        self.journal = journal
        self._now_ns = now_ns
        self._shipped = shipped
        self.listeners: list[Callable[[DeskEvent], None]] = []
        self._complete = False  # every family has a version
        self.served: dict[str, int] = {}  # the versions `serving` loaded, by family

    def close(self) -> None:
        self.journal.close()

    # ------------------------------------------------------------------ reads

    def ensure_shipped(self) -> None:
        """Register the shipped artifacts as version 1 and champion of each family that
        has no version yet."""
        if self._complete:
            return
        shipped = self._shipped or artifacts.MODELS_DIR
        for family in FAMILIES:
            if self.catalog.alias(family, CHAMPION) is not None or self.catalog.versions(family):
                continue
            meta = _read_meta(shipped, family)
            record = record_from_meta(family, meta)
            record.lineage["origin"] = f"shipped with blockroute {_code_version()}"
            version = self.catalog.register(family, family_files(family, shipped), record)
            self._move(family, CHAMPION, version, "register", SYSTEM, "the shipped artifacts")
        self._complete = True  # versions are never deleted: once is enough

    def models(self) -> list[ModelVersion]:
        """Every version of every family (in FAMILIES order, oldest first)."""
        self.ensure_shipped()
        return [v for family in FAMILIES for v in self.catalog.versions(family)]

    def show(self, family: str, version: int | None = None) -> ModelVersion:
        """One version (default: the champion)."""
        check_family(family)
        self.ensure_shipped()
        if version is None:
            version = self.catalog.alias(family, CHAMPION) or SHIPPED_VERSION
        return self.catalog.version(family, version)

    def serving(self) -> ModelRegistry:
        """The models a service serves: each family's champion, from its files in the
        registry (`served` says which versions)."""
        from router.registry import ModelRegistry  # see _check_servable_folder

        self.ensure_shipped()
        self.served = {f: self.catalog.alias(f, CHAMPION) or SHIPPED_VERSION for f in FAMILIES}
        return ModelRegistry(
            families={f: self.catalog.files(f, v) for f, v in self.served.items()},
            versions=self.served,
        )

    # ------------------------------------------------------------------ moves

    def promote(
        self,
        family: str,
        version: int | None,
        by: str,
        reason: str,
        alias: str = CHAMPION,
        *,
        force: bool = False,
    ) -> ModelAliasChanged:
        """Give `alias` to `version` (default for the champion: the challenger). Raises
        CatalogError, having changed nothing, if any part of the request is wrong or
        the version's files do not load, and WorseThanChampion if it would make a
        version champion that is worse than the champion on the held-out set, unless
        `force` (the move then records what it overrode)."""
        check_family(family)
        check_alias(alias)
        by, reason = _text(by, "by"), _text(reason, "reason")
        self.ensure_shipped()
        if version is None:
            if alias != CHAMPION:
                raise CatalogError(f"name the version to make {alias}", "version")
            version = self.catalog.alias(family, CHALLENGER)
            if version is None:
                raise CatalogError(
                    f"{family} has no challenger: name the version to promote", "version"
                )
        self.catalog.version(family, version)  # CatalogError if there is none
        if self.catalog.alias(family, alias) == version:
            raise CatalogError(
                f"version {version} of {family} is already the {alias}", "version", kind="conflict"
            )
        found: list[Shortfall] = []
        champion = self.catalog.alias(family, CHAMPION)
        if alias == CHAMPION and champion is not None:
            found = shortfalls(
                family,
                self.catalog.version(family, version).metrics,
                self.catalog.version(family, champion).metrics,
            )
            if found and not force:
                raise WorseThanChampion(family, version, champion, found)
        self._check_servable(family, version)
        override = "; ".join(str(f) for f in found) if found else None
        return self._move(family, alias, version, "promote", by, reason, override)

    def rollback(
        self, family: str, by: str, reason: str, version: int | None = None
    ) -> ModelAliasChanged:
        """Give the champion back to the version that held it before the last promotion
        still in force (a second rollback goes one further back), or to `version`, one of
        the earlier champions still in force (the promotions since are undone)."""
        check_family(family)
        by, reason = _text(by, "by"), _text(reason, "reason")
        self.ensure_shipped()
        held = self._champions(family)
        if len(held) < 2:
            raise CatalogError(
                f"{family} has no earlier champion to roll back to", "family", kind="conflict"
            )
        if version is None:
            version = held[-2]
        elif version not in held[:-1]:
            earlier = ", ".join(str(v) for v in held[:-1])
            raise CatalogError(
                f"{family} version {version} is not an earlier champion in force "
                f"(those are: {earlier})",
                "version",
                kind="conflict",
            )
        self._check_servable(family, version)
        return self._move(family, CHAMPION, version, "rollback", by, reason)

    def register(
        self, family: str, folder: Path, by: str, reason: str, params: dict[str, object]
    ) -> ModelAliasChanged:
        """Register a training run's output (`folder`) as a new version of `family` and
        make it the challenger. `params`: the run's seeds and arguments."""
        check_family(family)
        by, reason = _text(by, "by"), _text(reason, "reason")
        self.ensure_shipped()
        self._check_servable_folder(family, folder)
        record = record_from_meta(family, _read_meta(folder, family), params)
        champion = self.catalog.alias(family, CHAMPION)
        if champion is not None:
            record.lineage["replaces"] = str(champion)
        record.lineage["code_version"] = _code_version()
        version = self.catalog.register(family, family_files(family, folder), record)
        return self._move(family, CHALLENGER, version, "register", by, reason)

    def _champions(self, family: str) -> list[int]:
        """The champions in force, oldest first: every move pushes one, a rollback pops
        the last (so that rolling back twice goes two promotions back)."""
        held: list[int] = []
        for row in self.journal.alias_changes(family):
            if row.alias != CHAMPION:
                continue
            if row.action == "rollback":
                # back to its target: the promotions since it are undone
                if row.to_version in held:
                    while held[-1] != row.to_version:
                        held.pop()
                elif held:
                    held.pop()
            else:
                held.append(row.to_version)
        return held

    def _check_servable(self, family: str, version: int) -> None:
        self._check_servable_folder(family, self.catalog.files(family, version), version)

    def _check_servable_folder(self, family: str, folder: Path, version: int | None = None) -> None:
        # imported here: serving's code (XGBoost, ONNX Runtime) takes a second or two to
        # import, which `models list` and `show` need not pay
        from router.registry import ModelRegistry

        try:
            ModelRegistry.check(family, folder)
        except ModelError as exc:
            what = f"version {version} of {family}" if version is not None else family
            raise CatalogError(
                f"{what} cannot be served: {exc}", "version", kind="invalid"
            ) from None

    def _move(
        self,
        family: str,
        alias: str,
        version: int,
        action: str,
        by: str,
        reason: str,
        override: str | None = None,
    ) -> ModelAliasChanged:
        before = self.catalog.alias(family, alias)
        self.catalog.set_alias(family, alias, version)
        event = ModelAliasChanged(
            self._now_ns(),
            family,
            alias,
            before,
            version,
            action,
            by,
            reason,
            forced=override is not None,
            override=override,
        )
        batch = Batch()
        row = change_json(event)
        batch.insert(
            SvcModelAliasRow, {k: row[k] for k in SvcModelAliasRow.model_fields if k != "id"}
        )
        try:
            self.journal.commit(batch)
        except Exception:
            # not journaled, not done: every move that stands is in the journal
            if before is None:
                self.catalog.delete_alias(family, alias)
            else:
                self.catalog.set_alias(family, alias, before)
            raise
        for listener in self.listeners:
            listener(event)
        return event


def _read_meta(folder: Path, family: str) -> dict[str, Any]:
    path = folder / f"{family}.meta.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable metadata ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelError(f"{path}: corrupt metadata (not a JSON object)")
    return meta


def open_admin(
    db_url: str,
    now_ns: Callable[[], int],
    *,
    artifacts_at: str | Path | None = None,
    workdir: Path | None = None,
) -> ModelAdmin:
    """The model registry beside the project database `db_url` (see
    models.mlflow_catalog.registry_location) with its alias moves journaled in that
    database. Raises CatalogError (field "db_url") without the `registry` extra or when
    the registry cannot be opened, StoreError when the journal cannot."""
    try:
        from models.mlflow_catalog import MlflowCatalog, registry_location
    except ImportError as exc:
        raise CatalogError(
            f"the model registry needs the registry extra ({exc.name} is missing): "
            "python3 -m pip install -e '.[registry]'",
            "db_url",
            kind="invalid",
        ) from None
    catalog = MlflowCatalog(registry_location(db_url, artifacts_at, workdir))
    return ModelAdmin(catalog, Journal.open(db_url), now_ns)
