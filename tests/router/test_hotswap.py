"""Promotion and rollback swap the models of a running service (router.hotswap): the
swapper on a real registry (the new version loaded off the loop, a broken one left
unserved, a rollback to the version it replaced at once), and `blockroute serve` as a
real process, with a parent working across a promotion through its API, a promotion
by the CLI beside it, and a rollback."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from models.serving.artifacts import MODELS_DIR, family_files
from router.desk_api import DeskEvent, ModelServed, ModelShadowed
from router.model_admin import ModelAdmin, open_admin
from tests.router.fix.client import until
from tests.router.service_harness import Service, Services, write_config

pytestmark = pytest.mark.requires_extra("registry", "mlflow")

NOW_NS = 1_800_000_000_000_000_000


def copy_of(tmp_path: Path, family: str) -> Path:
    """A training run's output: the shipped files of `family` (the same held-out
    metrics: not worse than the champion)."""
    out = tmp_path / f"trained-{family}"
    out.mkdir(parents=True)
    for path in family_files(family, MODELS_DIR):
        shutil.copy(path, out / path.name)
    return out


@pytest.fixture
def admin(registry_db_url: str, tmp_path: Path) -> Iterator[ModelAdmin]:
    clock = itertools.count(NOW_NS, 1_000_000_000)
    a = open_admin(registry_db_url, lambda: next(clock))
    yield a
    a.close()


@pytest.fixture
def services() -> Iterator[Services]:
    with Services() as started:
        yield started


# ------------------------------------------------------------------ the swapper


async def test_the_swapper_serves_each_new_champion_and_leaves_a_broken_one_unserved(
    admin: ModelAdmin, tmp_path: Path
) -> None:
    from router.hotswap import ModelSwapper

    admin.register("fill", copy_of(tmp_path, "fill"), "ci", "trained", {})
    served = admin.serving()
    live = served.live().fill_model()
    old = served.fill_model()
    published: list[DeskEvent] = []
    ticks = itertools.count()
    swapper = ModelSwapper(
        admin, served, now_ns=lambda: 7, timer=lambda: float(next(ticks)), publish=published.append
    )
    assert await swapper.sync() == []  # the champions are served

    admin.promote("fill", 2, "alice", "go")
    (done,) = await swapper.sync()
    assert (done.family, done.from_version, done.to_version, done.ok) == ("fill", 1, 2, True)
    assert done.load_s == 1.0 and published == [done]
    assert swapper.served == {"dealer": 1, "fill": 1, "slicer": 1} | {"fill": 2}
    assert served.fill_model() is not old
    assert served.folders()["fill"] == admin.catalog.files("fill", 2)
    # what a working parent's execution holds reads the new model at its next call
    assert live is served.live().fill_model()

    # back to version 1: the models it replaced were kept, nothing is loaded again
    admin.rollback("fill", "bob", "worse live")
    (back,) = await swapper.sync()
    assert (back.from_version, back.to_version, back.ok) == (2, 1, True)
    assert served.fill_model() is old

    # a champion whose files do not load (moved outside blockroute, e.g. with MLflow's
    # own tools, after its files were damaged in the store): the old one serves on
    admin.register("fill", copy_of(tmp_path / "v3", "fill"), "ci", "trained", {})
    (admin.catalog.files("fill", 3) / "fill_passive.ubj").write_bytes(b"not a model")
    admin.catalog.set_alias("fill", "champion", 3)
    (failed,) = await swapper.sync()
    assert (failed.to_version, failed.from_version, failed.ok) == (3, 1, False)
    assert "fill_passive.ubj" in failed.error
    assert swapper.served["fill"] == 1 and served.fill_model() is old
    assert swapper.unserved == {"fill": {"version": 3, "error": failed.error}}
    assert await swapper.sync() == []  # said once, not at every look
    admin.catalog.set_alias("fill", "champion", 1)
    assert await swapper.sync() == [] and swapper.unserved == {}
    assert isinstance(published[-1], ModelServed) and not published[-1].ok


async def test_the_swapper_keeps_the_challengers_set_on_the_catalog(
    admin: ModelAdmin, tmp_path: Path
) -> None:
    """The algo wheel's second set (router.wheel): loaded at the first sync, swapped when
    a challenger moves, a broken version left unserved; a promotion of the challenger
    makes the two sets one, and the wheel stops."""
    from models.catalog import CHALLENGER
    from router.hotswap import ModelSwapper
    from router.registry import ModelRegistry, ServedSet
    from router.wheel import ModelArms

    admin.register("fill", copy_of(tmp_path / "v2", "fill"), "ci", "trained", {})
    served = admin.serving()
    challenger = ServedSet(CHALLENGER, ModelRegistry())
    arms = ModelArms(ServedSet("champion", served, admin.served), challenger, share=0.5)
    published: list[DeskEvent] = []
    swapper = ModelSwapper(
        admin, served, now_ns=lambda: 7, timer=lambda: 0.0, publish=published.append,
        challenger=challenger,
    )  # fmt: skip
    assert not arms.running
    assert await swapper.sync() == []  # the champions were served: nothing to say
    assert challenger.versions == {"dealer": 1, "fill": 2, "slicer": 1}
    assert challenger.registry.folders()["fill"] == admin.catalog.files("fill", 2)
    assert arms.running and published == []  # the challenger's swaps are not published
    live = challenger.registry.live()
    first = challenger.registry.fill_model()

    # a new challenger: swapped in the set, under the views its parents hold
    admin.register("fill", copy_of(tmp_path / "v3", "fill"), "ci", "trained", {})
    assert await swapper.sync() == []
    assert challenger.versions["fill"] == 3 and challenger.registry.fill_model() is not first
    assert live is challenger.registry.live()
    # one whose files do not load: the set keeps what it held, and says why once
    admin.register("fill", copy_of(tmp_path / "v4", "fill"), "ci", "trained", {})
    (admin.catalog.files("fill", 4) / "fill_passive.ubj").write_bytes(b"not a model")
    held = challenger.registry.fill_model()
    await swapper.sync()
    assert challenger.versions["fill"] == 3 and challenger.registry.fill_model() is held
    assert challenger.unserved["fill"]["version"] == 4
    assert "fill_passive.ubj" in challenger.unserved["fill"]["error"]
    # the challenger promoted: both sets serve version 3, the wheel has nothing to test
    admin.catalog.set_alias("fill", "challenger", 3)
    admin.promote("fill", 3, "alice", "won the wheel")
    (done,) = await swapper.sync()
    assert (done.family, done.to_version) == ("fill", 3)
    assert challenger.unserved == {}
    assert admin.served == challenger.versions and not arms.running


async def test_a_slow_load_never_blocks_the_loop(
    admin: ModelAdmin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The load runs on an executor thread: the loop (every decision, FIX, the API)
    goes on ticking while a version takes half a second to load."""
    from router.hotswap import ModelSwapper
    from router.registry import ModelRegistry

    load = ModelRegistry.load_family_now

    def slow(family: str, directory: Path, *, warm: bool = True) -> Any:
        time.sleep(0.5)  # a large model on a slow disk
        return load(family, directory, warm=warm)

    monkeypatch.setattr(ModelRegistry, "load_family_now", staticmethod(slow))
    admin.register("fill", copy_of(tmp_path, "fill"), "ci", "trained", {})
    served = admin.serving()
    served.load()
    swapper = ModelSwapper(admin, served, now_ns=lambda: 7, timer=time.perf_counter)
    admin.promote("fill", 2, "alice", "go")
    ticks: list[float] = []

    async def heartbeat() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.005)

    beating = asyncio.create_task(heartbeat())
    (done,) = await swapper.sync()
    beating.cancel()
    assert done.ok and done.load_s >= 0.5
    assert max(np.diff(ticks)) < 0.2, max(np.diff(ticks))


async def test_in_shadow_mode_the_swapper_follows_the_challenger_alias_live(
    admin: ModelAdmin, tmp_path: Path
) -> None:
    """A challenger is loaded beside the champion (off the loop, as a champion), handed
    to the decisions through the live views, replaced when the alias moves, dropped when
    it is promoted or removed; one that does not load is not asked, and said once."""
    from router.hotswap import ModelSwapper

    admin.register("fill", copy_of(tmp_path / "v2", "fill"), "ci", "trained", {})
    served = admin.serving()
    live = served.live().fill_model()
    published: list[DeskEvent] = []
    ticks = itertools.count()
    swapper = ModelSwapper(
        admin,
        served,
        now_ns=lambda: 7,
        timer=lambda: float(next(ticks)),
        publish=published.append,
        shadow=True,
    )
    assert await swapper.sync() == []  # no champion moved; the challenger is loaded
    assert swapper.shadowed == {"fill": 2}
    (loaded,) = published
    assert isinstance(loaded, ModelShadowed)
    assert (loaded.family, loaded.from_version, loaded.to_version, loaded.ok) == (
        "fill",
        None,
        2,
        True,
    )
    challenger = live.challenger()
    assert challenger is not None and (challenger.version, challenger.champion_version) == (2, 1)
    assert challenger.model is served.challengers()["fill"].loaded
    assert challenger.model is not served.fill_model()  # its own copy, its own counters
    assert served.live().dealer_models().challenger() is None  # no dealer challenger
    assert await swapper.sync() == [] and len(published) == 1  # nothing moved

    # a new challenger registered: the next look follows it
    admin.register("fill", copy_of(tmp_path / "v3", "fill"), "ci", "retrained", {})
    await swapper.sync()
    assert swapper.shadowed == {"fill": 3}
    assert (published[-1].from_version, published[-1].to_version) == (2, 3)  # type: ignore[attr-defined]
    # the champion moves under it (not to it): the challenger is compared with the new one
    admin.catalog.set_alias("fill", "champion", 2)
    (swapped,) = await swapper.sync()
    assert swapped.to_version == 2
    challenger = live.challenger()
    assert challenger is not None and (challenger.version, challenger.champion_version) == (3, 2)

    # the challenger promoted: it is the champion now, nothing left to compare
    admin.promote("fill", None, "alice", "agreed in shadow")
    (promoted,) = await swapper.sync()
    assert promoted.to_version == 3 and swapper.shadowed == {} and live.challenger() is None
    dropped = published[-1]
    assert isinstance(dropped, ModelShadowed)
    assert (dropped.from_version, dropped.to_version, dropped.ok) == (3, None, True)

    # a challenger whose files do not load: not asked, said once
    admin.register("fill", copy_of(tmp_path / "v4", "fill"), "ci", "trained", {})
    (admin.catalog.files("fill", 4) / "fill_passive.ubj").write_bytes(b"not a model")
    await swapper.sync()
    failed = published[-1]
    assert isinstance(failed, ModelShadowed) and not failed.ok and failed.to_version == 4
    assert "fill_passive.ubj" in failed.error
    assert swapper.unshadowed == {"fill": {"version": 4, "error": failed.error}}
    assert swapper.shadowed == {} and live.challenger() is None
    before = len(published)
    assert await swapper.sync() == [] and len(published) == before
    # the alias removed: nothing to shadow, nothing to report as failed
    admin.catalog.delete_alias("fill", "challenger")
    await swapper.sync()
    assert swapper.unshadowed == {} and len(published) == before


async def test_with_shadow_off_no_challenger_is_loaded(admin: ModelAdmin, tmp_path: Path) -> None:
    from router.hotswap import ModelSwapper

    admin.register("dealer", copy_of(tmp_path, "dealer"), "ci", "trained", {})
    served = admin.serving()
    published: list[DeskEvent] = []
    swapper = ModelSwapper(
        admin, served, now_ns=lambda: 7, timer=time.perf_counter, publish=published.append
    )
    assert await swapper.sync() == []
    assert swapper.shadowed == {} and published == []
    assert served.live().dealer_models().challenger() is None


def test_live_models_read_the_model_served_at_each_call(admin: ModelAdmin, tmp_path: Path) -> None:
    from router.registry import ModelRegistry

    served = admin.serving()
    live = served.live()
    x = np.zeros((2, served.dealer_models()["best"].forest.n_features))
    respond = live.dealer_models()["best"]
    before = respond.predict(x)
    assert set(live.dealer_models()) == {"respond", "best", "hit"}
    # swap in a dealer version whose 'best' model answers differently: the view follows
    other = ModelRegistry.load_family_now("dealer", admin.catalog.files("dealer", 1))
    assert isinstance(other, dict)
    # a calibration map that says 0.5 whatever the trees say
    flat = np.array([0.0, 1.0]), np.array([0.5, 0.5])
    other["best"] = dataclasses.replace(other["best"], calib_x=flat[0], calib_y=flat[1])
    served.swap("dealer", admin.catalog.files("dealer", 1), other)
    assert not np.array_equal(before, [0.5, 0.5])
    assert respond.predict(x).tolist() == [0.5, 0.5]


# ------------------------------------------------------------------ a real service


def _fill_rows(service: Service) -> float:
    """Rows the served fill model has scored (its own counter: a new model starts at 0)."""
    for family in text_string_to_metric_families(service.page("/metrics")):
        for s in family.samples:
            if s.name == "blockroute_model_fill_rows_total":
                return float(s.value)
    return 0.0


def _shadowed(service: Service, family: str) -> dict[str, Any]:
    """GET /api/models/shadow's entry of `family`."""
    doc = service.get("/api/models/shadow")
    return next(f for f in doc["families"] if f["family"] == family)


def _metric(service: Service, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(service.page("/metrics")):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def _post(service: Service, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    try:
        return 200, service.post(path, body)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class Probe:
    """A client that asks the service about the parent every 20 ms on its own thread and
    keeps (wall time, seconds the answer took, filled quantity)."""

    def __init__(self, service: Service, pid: str) -> None:
        self.service, self.pid = service, pid
        self.seen: list[tuple[float, float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.perf_counter()
            view = self.service.get(f"/api/orders/{self.pid}")
            self.seen.append((start, time.perf_counter() - start, int(view["filled_qty"])))
            time.sleep(0.02)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def slowest_s(self) -> float:
        return max(took for _, took, _ in self.seen)


def _swaps(service: Service, family: str) -> list[str]:
    return [
        line
        for line in service.output().splitlines()
        if "models swapped" in line and f"family={family}" in line
    ]


async def test_promotion_and_rollback_swap_the_models_of_the_running_service_live(
    tmp_path: Path, services: Services, registry_db_url: str
) -> None:
    admin = open_admin(registry_db_url, lambda: 1)
    admin.register("fill", copy_of(tmp_path, "fill"), "ci", "trained", {"seed": 7})
    admin.register("dealer", copy_of(tmp_path, "dealer"), "ci", "trained", {"seed": 7})
    admin.close()
    # an hour's horizon: 36 s of wall time at 100x, long enough to work across the moves
    config = write_config(
        tmp_path,
        default_horizon="1h",
        default_strategy="ml",
        models={"registry": True, "poll_interval": "0.5s"},
    )
    service = services.start(config)
    assert service.get("/api/models")["served"] == {"dealer": 1, "fill": 1, "slicer": 1}
    pid = service.post("/api/orders", {"symbol": "QDI", "side": "sell", "qty": 200_000})[
        "parent_id"
    ]
    # the ml parent scores its passive orders with the fill model at every decision on
    # the lit market, but not while the dealers' first blocks keep it ahead of its line:
    # measured once, 3 rows for the first 16 s of wall time, 24 at 18 s
    await until(lambda: _fill_rows(service) >= 20, 60, "the fill model scored nothing")
    # shadow mode ([models] shadow defaults to true): the registered versions are the
    # challengers, byte-identical copies, asked beside the champions and always agreeing
    await until(lambda: _shadowed(service, "fill")["decisions"] > 0, 20, "fill not shadowed")
    fill = _shadowed(service, "fill")
    assert (fill["shadowing"], fill["champion_version"], fill["challenger_version"]) == (True, 1, 2)
    assert fill["agreement_rate"] == 1.0 and fill["disagreements"] == []
    assert _shadowed(service, "dealer")["challenger_version"] == 2
    assert not _shadowed(service, "slicer")["shadowing"]  # no slicer challenger
    journaled = service.get(f"/api/orders/{pid}/decisions?limit=500")["decisions"]
    assert any(d.get("shadow", {}).get("fill", {}).get("agree") for d in journaled)
    assert _metric(service, "blockroute_shadow_decisions_total", family="fill") > 0
    rows_before = _fill_rows(service)
    clock_before = service.get("/api/info")["now_ns"]

    with Probe(service, pid) as probe:
        moved = await asyncio.to_thread(
            service.post, "/api/models/fill/promote", {"by": "alice", "reason": "go"}
        )
        await asyncio.sleep(0.5)
    assert (moved["from_version"], moved["to_version"], moved["served"]["fill"]) == (1, 2, 2)
    assert service.get("/api/models")["served"] == {"dealer": 1, "fill": 2, "slicer": 1}
    # the challenger promoted is the champion: nothing left to shadow
    fill = _shadowed(service, "fill")
    assert (fill["shadowing"], fill["champion_version"], fill["challenger_version"]) == (
        False,
        2,
        None,
    )
    assert _shadowed(service, "dealer")["shadowing"]
    (swap_line,) = _swaps(service, "fill")
    load_s = float(swap_line.split("load_s=")[1].split()[0])
    # the loop never waited for the load: every answer during it came quickly
    assert probe.slowest_s() < 0.5, (probe.slowest_s(), load_s)
    # the same process: the service never restarted
    assert "blockroute serving" in service.output()
    assert service.output().count("blockroute serving") == 1
    # the working parent's next decisions score with the new model (its counter starts
    # again from 0), and it keeps filling
    rows_after = _fill_rows(service)
    assert rows_after < rows_before
    filled = service.get(f"/api/orders/{pid}")["filled_qty"]
    await until(lambda: _fill_rows(service) > rows_after, 20, "the new model scores nothing")
    await until(
        lambda: service.get(f"/api/orders/{pid}")["filled_qty"] > filled, 20, "no fill after"
    )
    # no pause in its decisions across the swap (service clock: every 30 s at the most)
    clock_after = service.get("/api/info")["now_ns"]
    stamps = sorted(
        d["ts_ns"]
        for d in service.get(f"/api/orders/{pid}/decisions?limit=500")["decisions"]
        if clock_before - 60e9 <= d["ts_ns"] <= clock_after
    )
    gaps_s = np.diff(stamps) / 1e9
    assert len(stamps) > 3 and gaps_s.max() <= 30.0 + 1e-6, gaps_s

    # a promotion by the CLI on the same registry: the service sees it at its next look
    cli = subprocess.run(
        [sys.executable, "-m", "router.cli", "models", "promote", "dealer", "--by", "bob",
         "--reason", "from the CLI", "--db-url", registry_db_url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    await until(
        lambda: service.get("/api/models")["served"]["dealer"] == 2, 15, "the CLI move unseen"
    )
    assert len(_swaps(service, "dealer")) == 1
    assert not _shadowed(service, "dealer")["shadowing"]  # followed at the same look

    # and back, live
    filled = service.get(f"/api/orders/{pid}")["filled_qty"]
    back = service.post("/api/models/fill/rollback", {"by": "alice", "reason": "worse live"})
    assert (back["to_version"], back["served"]["fill"]) == (1, 1)
    assert service.get("/api/models")["served"] == {"dealer": 2, "fill": 1, "slicer": 1}
    assert "reused=True" in _swaps(service, "fill")[-1]
    await until(
        lambda: service.get(f"/api/orders/{pid}")["filled_qty"] > filled, 20, "no fill after"
    )
    # it filled after the rollback (above); on a busy machine the hour's 36 s of wall
    # time can run out by now, so done is as good as still working (not canceled, not
    # failed)
    assert service.get(f"/api/orders/{pid}")["status"] in ("working", "filled")
    assert service.terminate() == 0


async def test_a_champion_whose_files_are_corrupt_is_left_unserved_by_the_running_service(
    tmp_path: Path, services: Services, registry_db_url: str
) -> None:
    from models.mlflow_catalog import MlflowCatalog, registry_location

    admin = open_admin(registry_db_url, lambda: 1)
    admin.register("fill", copy_of(tmp_path, "fill"), "ci", "trained", {"seed": 7})
    (admin.catalog.files("fill", 2) / "fill_passive.ubj").write_bytes(b"\x00garbage")
    admin.close()
    config = write_config(
        tmp_path, default_strategy="ml", models={"registry": True, "poll_interval": "0.3s"}
    )
    service = services.start(config)
    pid = service.post("/api/orders", {"symbol": "QDI", "side": "sell", "qty": 100_000})[
        "parent_id"
    ]
    await until(lambda: _fill_rows(service) > 0, 30, "the fill model scored nothing")
    # through the API: refused before anything moves
    status, doc = _post(service, "/api/models/fill/promote", {"by": "alice", "reason": "try"})
    assert status == 422 and doc["field"] == "version" and "cannot be served" in doc["message"]
    # moved around blockroute's checks (MLflow's own tools can): the service does not serve it
    MlflowCatalog(registry_location(registry_db_url)).set_alias("fill", "champion", 2)
    await until(lambda: "unserved" in service.get("/api/models"), 15, "the move unseen")
    listed = service.get("/api/models")
    assert listed["served"]["fill"] == 1
    assert listed["unserved"]["fill"]["version"] == 2
    assert "fill_passive.ubj" in listed["unserved"]["fill"]["error"]
    assert "model not swapped: the old version serves on" in service.output()
    rows = _fill_rows(service)
    filled = service.get(f"/api/orders/{pid}")["filled_qty"]
    await until(lambda: _fill_rows(service) > rows, 20, "the old model stopped scoring")
    await until(
        lambda: service.get(f"/api/orders/{pid}")["filled_qty"] > filled, 20, "no fill after"
    )
    assert service.terminate() == 0
