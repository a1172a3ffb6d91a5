"""The model registry (router.model_admin on models.mlflow_catalog): a fresh registry
holds the shipped artifacts as version 1, the champion, of every family; a training
run's output registers as the challenger with its metrics, seeds and lineage; a
promotion is checked in full before it moves anything, and is journaled and published;
a rollback undoes the last promotion still in force; ModelRegistry loads the champions'
files. On SQLite (tmp_path) and, for the main path, PostgreSQL (a fresh schema)."""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from models.catalog import CatalogError
from models.serving.artifacts import MODELS_DIR, family_files
from router.desk_api import DeskEvent, ModelAliasChanged
from router.model_admin import ModelAdmin, open_admin

pytestmark = pytest.mark.requires_extra("registry", "mlflow")

NOW_NS = 1_800_000_000_000_000_000


def drop_registry_schema(pg_url: str) -> None:
    """The registry's schema beside the test's (the test's own is dropped by pg_url)."""
    url = make_url(pg_url).set(drivername="postgresql+psycopg2")
    schema = str(url.query["options"]).split("=", 1)[1] + "_registry"
    engine = sa.create_engine(url.difference_update_query(["options"]))
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()


@pytest.fixture
def sqlite_url(registry_db_url: str) -> str:
    return registry_db_url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url
        return
    url = request.getfixturevalue("pg_url")
    try:
        yield url
    finally:
        drop_registry_schema(url)


def _open(url: str, tmp_path: Path) -> ModelAdmin:
    clock = itertools.count(NOW_NS, 1_000_000_000)
    return open_admin(url, lambda: next(clock), artifacts_at=tmp_path / "artifacts")


@pytest.fixture
def admin(sqlite_url: str, tmp_path: Path) -> Iterator[ModelAdmin]:
    a = _open(sqlite_url, tmp_path)
    yield a
    a.close()


def trained(tmp_path: Path, family: str = "dealer", auc: float = 0.8) -> Path:
    """A training run's output: the shipped files with other metrics and command."""
    out = tmp_path / f"trained-{family}-{auc}"
    out.mkdir()
    for path in family_files(family, MODELS_DIR):
        shutil.copy(path, out / path.name)
    meta_path = out / f"{family}.meta.json"
    meta = json.loads(meta_path.read_text())
    meta["created_by"] = f"blockroute train {family} --seed 7"
    if family == "dealer":
        meta["metrics"]["respond"]["auc"] = auc
    meta_path.write_text(json.dumps(meta))
    return out


def _events(admin: ModelAdmin) -> list[DeskEvent]:
    seen: list[DeskEvent] = []
    admin.listeners.append(seen.append)
    return seen


def test_a_fresh_registry_serves_the_shipped_artifacts_as_version_1(
    db_url: str, tmp_path: Path
) -> None:
    admin = _open(db_url, tmp_path)
    try:
        versions = admin.models()
        assert [(v.family, v.version, v.aliases) for v in versions] == [
            ("dealer", 1, ("champion",)),
            ("fill", 1, ("champion",)),
            ("slicer", 1, ("champion",)),
        ]
        shipped = json.loads((MODELS_DIR / "dealer.meta.json").read_text())
        dealer = versions[0]
        assert dealer.metrics["respond.auc"] == shipped["metrics"]["respond"]["auc"]
        assert dealer.params["days_per_scenario"] == "20"
        assert dealer.lineage["created_by"] == shipped["created_by"]
        assert versions[2].metrics["diff_is_bps"] < 0  # the slicer's paired validation
        # the files are copies in the registry's artifacts, byte for byte
        folder = admin.catalog.files("fill", 1)
        assert str(folder).startswith(str(tmp_path / "artifacts"))
        for path in family_files("fill", MODELS_DIR):
            assert (folder / path.name).read_bytes() == path.read_bytes()
        rows = admin.journal.alias_changes()
        assert [
            (r.family, r.alias, r.from_version, r.to_version, r.action, r.by) for r in rows
        ] == [
            (f, "champion", None, 1, "register", "blockroute") for f in ("dealer", "fill", "slicer")
        ]
        assert admin.models() == versions  # registered once
    finally:
        admin.close()


def test_promote_then_rollback_are_journaled_and_published(db_url: str, tmp_path: Path) -> None:
    admin = _open(db_url, tmp_path)
    try:
        admin.models()  # the shipped version 1 first
        seen = _events(admin)
        reg = admin.register("dealer", trained(tmp_path), "ci", "trained", {"seed": 7})
        assert (reg.alias, reg.from_version, reg.to_version, reg.action) == (
            "challenger",
            None,
            2,
            "register",
        )
        up = admin.promote("dealer", None, "alice", "better AUC")  # the challenger
        assert (up.alias, up.from_version, up.to_version, up.by, up.reason) == (
            "champion",
            1,
            2,
            "alice",
            "better AUC",
        )
        assert admin.show("dealer").version == 2
        down = admin.rollback("dealer", "bob", "fills got worse")
        assert (down.from_version, down.to_version, down.action) == (2, 1, "rollback")
        assert admin.catalog.alias("dealer", "champion") == 1
        assert seen == [reg, up, down] and all(isinstance(e, ModelAliasChanged) for e in seen)
        rows = [r for r in admin.journal.alias_changes("dealer") if r.action != "register"]
        assert [
            (r.action, r.from_version, r.to_version, r.by, r.reason, r.ts_ns) for r in rows
        ] == [
            ("promote", 1, 2, "alice", "better AUC", up.ts_ns),
            ("rollback", 2, 1, "bob", "fills got worse", down.ts_ns),
        ]
        with pytest.raises(CatalogError, match="no earlier champion") as exc:
            admin.rollback("dealer", "bob", "again")
        assert exc.value.kind == "conflict"
    finally:
        admin.close()


def test_a_training_run_registers_as_the_challenger_with_metrics_seeds_and_lineage(
    admin: ModelAdmin, tmp_path: Path
) -> None:
    admin.register("dealer", trained(tmp_path, auc=0.81), "ci", "trained", {"seed": 7, "days": 3})
    v2 = admin.show("dealer", 2)
    assert v2.aliases == ("challenger",)
    assert v2.metrics["respond.auc"] == 0.81
    assert v2.params["seed"] == "7" and v2.params["days"] == "3"
    assert v2.lineage["replaces"] == "1"
    assert v2.lineage["created_by"] == "blockroute train dealer --seed 7"
    assert admin.show("dealer").version == 1  # the champion is untouched


def test_rolling_back_twice_goes_two_promotions_back(admin: ModelAdmin, tmp_path: Path) -> None:
    for auc in (0.8, 0.81):
        admin.register("dealer", trained(tmp_path, auc=auc), "ci", "trained", {})
        admin.promote("dealer", None, "alice", f"auc {auc}")
    assert admin.show("dealer").version == 3
    assert admin.rollback("dealer", "bob", "r1").to_version == 2
    assert admin.rollback("dealer", "bob", "r2").to_version == 1


def test_rolling_back_to_a_named_version_undoes_the_promotions_since(
    admin: ModelAdmin, tmp_path: Path
) -> None:
    for auc in (0.8, 0.81):
        admin.register("dealer", trained(tmp_path, auc=auc), "ci", "trained", {})
        admin.promote("dealer", None, "alice", f"auc {auc}")
    seen = _events(admin)
    with pytest.raises(CatalogError, match="version 3 is not an earlier champion") as exc:
        admin.rollback("dealer", "bob", "to the current one", version=3)
    assert exc.value.field == "version" and exc.value.kind == "conflict"
    assert seen == [] and admin.show("dealer").version == 3  # refused: nothing moved
    down = admin.rollback("dealer", "bob", "both were worse", version=1)
    assert (down.from_version, down.to_version) == (3, 1)
    assert admin.show("dealer").version == 1
    # versions 2 and 3 are no longer in force: nothing earlier to roll back to
    with pytest.raises(CatalogError, match="no earlier champion"):
        admin.rollback("dealer", "bob", "again")


@pytest.mark.parametrize(
    ("family", "version", "by", "reason", "alias", "field", "message"),
    [
        ("nope", 1, "a", "r", "champion", "family", "unknown model family 'nope'"),
        ("dealer", 9, "a", "r", "champion", "version", "dealer has no version 9"),
        ("dealer", 1, "a", "r", "champion", "version", "already the champion"),
        ("dealer", 2, "a", "   ", "champion", "reason", "reason must not be blank"),
        ("dealer", 2, "", "r", "champion", "by", "by must not be blank"),
        ("dealer", 2, "a", "r", "boss", "alias", "unknown alias 'boss'"),
        ("fill", None, "a", "r", "champion", "version", "fill has no challenger"),
    ],
)
def test_a_bad_promotion_names_the_field_and_changes_nothing(
    admin: ModelAdmin, tmp_path: Path, family, version, by, reason, alias, field, message
) -> None:
    admin.register("dealer", trained(tmp_path), "ci", "trained", {})
    seen = _events(admin)
    before = len(admin.journal.alias_changes())
    with pytest.raises(CatalogError, match=message) as exc:
        admin.promote(family, version, by, reason, alias)
    assert exc.value.field == field
    assert len(admin.journal.alias_changes()) == before and seen == []
    assert admin.catalog.alias("dealer", "champion") == 1


def test_a_version_whose_files_do_not_load_cannot_be_promoted(
    admin: ModelAdmin, tmp_path: Path
) -> None:
    admin.register("dealer", trained(tmp_path), "ci", "trained", {})
    (admin.catalog.files("dealer", 2) / "dealer_hit.ubj").write_bytes(b"")  # damaged in store
    with pytest.raises(CatalogError, match="version 2 of dealer cannot be served") as exc:
        admin.promote("dealer", 2, "alice", "try")
    assert (exc.value.field, exc.value.kind) == ("version", "invalid")
    assert admin.catalog.alias("dealer", "champion") == 1


def test_model_registry_serves_the_champions_files(admin: ModelAdmin, tmp_path: Path) -> None:
    admin.register("dealer", trained(tmp_path), "ci", "trained", {})
    admin.promote("dealer", 2, "alice", "go")
    served = admin.serving()
    folders = served.folders()
    assert folders["dealer"] == admin.catalog.files("dealer", 2)
    assert folders["fill"] == admin.catalog.files("fill", 1)
    assert set(served.dealer_models()) == {"respond", "best", "hit"}
    assert served.fill_model() is not None and served.slicer_policy() is not None
    # re-pointed (as a later hot swap will): what was loaded is forgotten
    loaded = served.dealer_models()
    served.repoint({"dealer": admin.catalog.files("dealer", 1)})
    assert served.folders()["dealer"] == admin.catalog.files("dealer", 1)
    assert served.dealer_models() is not loaded


def test_an_in_memory_database_cannot_hold_a_registry(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="needs a database file") as exc:
        _open("sqlite://", tmp_path)
    assert exc.value.field == "db_url"


def test_a_challenger_worse_on_the_held_out_set_needs_force_and_is_journaled_forced(
    admin: ModelAdmin, tmp_path: Path
) -> None:
    from router.model_admin import WorseThanChampion

    admin.register("dealer", trained(tmp_path, auc=0.70), "ci", "trained", {})  # shipped: 0.78
    seen = _events(admin)
    with pytest.raises(WorseThanChampion) as exc:
        admin.promote("dealer", None, "alice", "try")
    assert (exc.value.field, exc.value.kind) == ("force", "conflict")
    assert "respond.auc 0.7000 vs the champion's 0.7804" in str(exc.value)
    assert admin.catalog.alias("dealer", "champion") == 1 and seen == []
    moved = admin.promote("dealer", 2, "alice", "forced", force=True)
    assert (moved.forced, moved.to_version) == (True, 2)
    assert moved.override is not None and moved.override.startswith("respond.auc 0.7000")
    row = admin.journal.alias_changes("dealer")[-1]
    assert (row.action, row.forced, row.override) == ("promote", True, moved.override)
    # a rollback is never held back: it is the way out of a bad promotion
    back = admin.rollback("dealer", "bob", "it was worse")
    assert (back.to_version, back.forced) == (1, False)
    # force where nothing is worse overrides nothing
    admin.register("dealer", trained(tmp_path, auc=0.79), "ci", "trained", {})
    assert admin.promote("dealer", 3, "alice", "better", force=True).forced is False
