"""`blockroute serve` as a real process: configuration errors, a FIX client trading
through it, kill -9 and restart (no fill lost or reported twice), SIGTERM, its metrics
page."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from tests.router.fix.client import until
from tests.router.posix_locks import WAL_INDEX_DMS, locks_held, needs_proc_locks
from tests.router.service_harness import (
    Services,
    fix_client,
    free_port,
    reported_once_without_gap,
    sell_with_sor,
    write_config,
)
from tests.router.test_bus import broker_url  # noqa: F401  (the shared broker fixture)


@pytest.fixture
def ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture
def services() -> Iterator[Services]:
    with Services() as started:
        yield started


def _serve(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router.cli", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_a_client_without_a_password_stops_the_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKROUTE_FIX_PASSWORD")}
    r = subprocess.run(
        [sys.executable, "-m", "router.cli", "serve", "--config", str(write_config(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "BLOCKROUTE_FIX_PASSWORD_OMS" in r.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--sim-speed", "0"], "--sim-speed"),
        (["--fix-port", "70000"], "TCP port"),
        (["--data-dir", "/nonexistent/x"], "does not exist"),
    ],
)
def test_bad_flags_exit_2_with_one_line(tmp_path: Path, args: list[str], words: str) -> None:
    r = _serve(["--config", str(write_config(tmp_path)), *args])
    assert r.returncode == 2 and words in r.stderr and r.stderr.count("\n") == 1


def test_a_typo_in_the_config_names_the_key(tmp_path: Path) -> None:
    r = _serve(["--config", str(write_config(tmp_path, sim_sped=3.0))])
    assert r.returncode == 2 and "service.sim_sped: unknown key" in r.stderr


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ({"registry": True, "wheel_share": 1.5}, "models.wheel_share: must be <= 1, got 1.5"),
        ({"registry": True, "wheel_share": -0.1}, "models.wheel_share: must be >= 0, got -0.1"),
        ({"registry": True, "wheel_share": "half"}, "models.wheel_share: must be a number"),
        ({"registry": True, "wheel_seed": 1.5}, "models.wheel_seed: must be an integer"),
        ({"wheel_share": 0.5}, "models.wheel_share: 0.5 needs registry = true"),
    ],
)
def test_a_bad_wheel_is_refused_naming_the_key(
    tmp_path: Path, models: dict[str, object], message: str
) -> None:
    from router.config import ConfigError
    from router.service import load_service_config

    with pytest.raises(ConfigError) as bad:
        load_service_config(write_config(tmp_path, models=models))
    assert message in str(bad.value)


def test_the_wheel_is_off_unless_configured(tmp_path: Path) -> None:
    from router.service import DEFAULT_SERVICE_CONFIG, load_service_config

    shipped = load_service_config(DEFAULT_SERVICE_CONFIG, data_dir=tmp_path)
    assert (shipped.wheel_share, shipped.wheel_seed) == (0.0, 1)
    models = {"registry": True, "wheel_share": 0.25, "wheel_seed": 9}
    cfg = load_service_config(write_config(tmp_path, models=models))
    assert (cfg.wheel_share, cfg.wheel_seed) == (0.25, 9)


@pytest.mark.requires_extra("registry", "mlflow")
async def test_the_service_splits_its_parents_between_champion_and_challenger(
    tmp_path: Path, services: Services, registry_db_url: str
) -> None:
    """`serve` with [models] wheel_share: the challenger's set loaded at the start, new
    ml parents drawn between the arms (journaled, shown), and the live results on its
    API once they are done."""
    import shutil

    from models.serving.artifacts import MODELS_DIR, family_files
    from router.model_admin import open_admin
    from router.wheel import draw_arm

    trained = tmp_path / "trained"
    trained.mkdir()
    for path in family_files("fill", MODELS_DIR):
        shutil.copy(path, trained / path.name)
    admin = open_admin(registry_db_url, lambda: 1)
    admin.register("fill", trained, "ci", "trained", {"seed": 7})  # the challenger
    admin.close()
    models = {"registry": True, "wheel_share": 0.5, "wheel_seed": 4}
    service = services.start(write_config(tmp_path, default_strategy="ml", models=models))
    # 5 minutes: 3 s of wall time at 100x, far from the 30-s minimum on a busy machine
    body = {"symbol": "QDI", "qty": 20_000, "horizon_s": 300, "strategy": "ml"}
    orders = [service.post("/api/orders", {**body, "side": side}) for side in ("buy", "sell") * 4]
    arms = {o["parent_id"]: draw_arm(o["parent_id"], 4, 0.5) for o in orders}
    assert set(arms.values()) == {"champion", "challenger"}
    versions = {
        "champion": {"dealer": 1, "fill": 1, "slicer": 1},
        "challenger": {"dealer": 1, "fill": 2, "slicer": 1},
    }
    for o in orders:
        arm = arms[o["parent_id"]]
        assert (o["model_arm"], o["model_versions"]) == (arm, versions[arm])

    def done() -> bool:
        return all(service.get(f"/api/orders/{p}")["status"] in ("filled", "expired") for p in arms)

    await until(done, 60, "the parents did not finish")
    doc = service.get("/api/models/wheel")
    assert doc["families_changed"] == ["fill"]
    counts = {a: list(arms.values()).count(a) for a in versions}
    assert {a: doc["arms"][a]["completed"] for a in versions} == counts
    assert doc["verdict"] in ("promote", "keep", "inconclusive")
    assert service.terminate() == 0


async def test_kill_9_and_restart_loses_no_fill_and_reports_none_twice(
    tmp_path: Path, ports: tuple[int, int], services: Services
) -> None:
    fix_port, http_port = ports
    # an hour's horizon: 36 s of wall time at 100x. The clock runs on while the service
    # is down, so 15 minutes (9 s) can pass before a restart on two busy cores is up,
    # and the parent then expires as it should, leaving nothing to trade on.
    config = write_config(tmp_path, default_horizon="1h")
    first = services.start(config, fix_port, http_port)
    async with fix_client(first, tmp_path) as client:
        await sell_with_sor(client, "K9", 60_000)
        await until(lambda: len(client.all_app(f150="F")) >= 3, 30, "no fills before the kill")
        # at --sim-speed 100 the service clock runs ahead of the wall clock, by 100 s
        # for each second up: a restart at the wall clock would go minutes back
        await asyncio.sleep(2.0)
        clock_before = first.get("/api/info")["now_ns"]
        assert isinstance(clock_before, int)
        await asyncio.sleep(0.3)  # it goes on trading (and committing) a little
        first.kill9()
        before = len(client.all_app(f150="F"))

        second = services.start(config, fix_port, http_port)
        # the clock resumes where it stopped, never behind what was reported (it used
        # to restart at the wall clock: minutes back, and the parent stalled)
        clock_after = second.get("/api/info")["now_ns"]
        assert isinstance(clock_after, int) and clock_after > clock_before
        await client.wait_logged_on(15)
        # and the parent trades on at once
        await until(lambda: len(client.all_app(f150="F")) > before, 10, "stalled after restart")
        done = await client.expect(f35="8", f11="K9", f39="2", timeout=60)
        assert done[14] == "60000"
        fills = client.all_app(f150="F")
        assert len(fills) > before  # the parent went on trading after the restart
        exec_ids, cum = reported_once_without_gap(fills)
        assert cum == 60000
        # the API and the journal agree with what the client was told
        orders = second.get("/api/orders")["orders"]
        assert isinstance(orders, list) and len(orders) == 1
        pid = orders[0]["parent_id"]
        stored = second.get(f"/api/orders/{pid}/fills")
        rows = stored["fills"] if isinstance(stored, dict) and "fills" in stored else stored
        assert isinstance(rows, list)
        assert sorted(r["exec_id"] for r in rows) == sorted(exec_ids)
        assert second.terminate() == 0


async def test_sigterm_pulls_the_children_and_exits_cleanly(
    tmp_path: Path, ports: tuple[int, int], services: Services
) -> None:
    fix_port, http_port = ports
    service = services.start(write_config(tmp_path), fix_port, http_port)
    async with fix_client(service, tmp_path) as client:
        client.new_order("T1", qty="80000", side="1", extra=[(847, "1002")])
        await until(lambda: len(client.all_app(f150="F")) >= 1, 30, "no fill")
        await asyncio.sleep(0.5)
        # the FIX gateway's series are on the service's /metrics page: one order acked
        with urllib.request.urlopen(f"{service.url}/metrics", timeout=5) as r:
            page = r.read().decode()
        assert "blockroute_fix_ack_latency_seconds_count 1.0" in page
        assert 'blockroute_fix_messages_received_total{msg_type="D"} 1.0' in page
        assert service.terminate() == 0
        assert "blockroute stopped" in service.output()
    engine = create_engine(f"sqlite:///{tmp_path / 'blockroute.db'}")
    with engine.connect() as conn:
        open_children = conn.execute(
            text("SELECT count(*) FROM svc_children WHERE status = 'open'")
        ).scalar()
        parent = conn.execute(text("SELECT status, filled_qty FROM svc_parents")).one()
    engine.dispose()
    assert open_children == 0  # every child was pulled and confirmed before exit
    assert parent[0] == "working" and parent[1] > 0  # the parent resumes at the next start


@needs_proc_locks
async def test_the_running_service_keeps_its_locks_on_the_journal(
    tmp_path: Path, ports: tuple[int, int], services: Services
) -> None:
    # Every process with the journal open in WAL mode holds a lock on its wal-index; a
    # process opening it that finds none resets the index. The FIX gateway's start
    # once dropped the service's locks, and a `train --from-journal` beside it then
    # reset the index under the service, which died of SIGBUS at its next commit.
    service = services.start(write_config(tmp_path), *ports)
    assert service.proc is not None
    async with fix_client(service, tmp_path) as client:
        client.new_order("L1", qty="20000", side="1", extra=[(847, "1002")])
        await until(lambda: len(client.all_app(f150="F")) >= 1, 30, "no fill")
    shm = tmp_path / "blockroute.db-shm"
    assert WAL_INDEX_DMS in locks_held(service.proc.pid, shm)
    assert locks_held(service.proc.pid, tmp_path / "blockroute.db")  # SQLite's SHARED
    assert service.terminate() == 0


def test_a_fatal_signal_leaves_every_threads_python_stack_in_the_log(
    tmp_path: Path, ports: tuple[int, int], services: Services
) -> None:
    # a bus error once ended a service with its exit status alone (-7): the stacks say
    # which code was running
    service = services.start(write_config(tmp_path), *ports)
    assert service.proc is not None
    service.proc.send_signal(signal.SIGBUS)
    assert service.proc.wait(timeout=20) == -signal.SIGBUS
    out = service.output()
    assert "Fatal Python error: Bus error" in out
    assert "Current thread" in out and "most recent call first" in out
    assert out.count("Thread 0x") >= 2  # quickfix's and the loop's, not only the current


async def test_the_metrics_page_shows_the_decision_latency_and_the_old_series(
    tmp_path: Path, services: Services
) -> None:
    service = services.start(write_config(tmp_path))
    pid = service.post("/api/orders", {"symbol": "QDI", "side": "sell", "qty": 60_000})["parent_id"]
    await until(lambda: service.get(f"/api/orders/{pid}")["filled_qty"] > 0, 30, "no fill")
    page = service.page("/metrics")
    types, values = {}, {}
    for family in text_string_to_metric_families(page):
        for s in family.samples:
            types[s.name] = family.type
            values[s.name, tuple(sorted(s.labels.items()))] = s.value
    # the desk's routing decisions of the parent, timed (the service's default: sor)
    assert types["blockroute_decision_latency_seconds_count"] == "histogram"
    assert values["blockroute_decision_latency_seconds_count", (("strategy", "sor"),)] > 0
    # the series that the page always had, with their types (outside checks read them)
    old = {
        "blockroute_orders_accepted_total": "counter",
        "blockroute_fills_total": "counter",
        "blockroute_decisions_total": "counter",
        "blockroute_pump_errors_total": "counter",
        "blockroute_journal_errors_total": "counter",
        "blockroute_model_fill_rows_total": "counter",
        "blockroute_parents_working": "gauge",
        "blockroute_journal_pending": "gauge",
        "blockroute_kill_switch_engaged": "gauge",
        "blockroute_ready": "gauge",
        "blockroute_ws_clients": "gauge",
        "blockroute_http_requests_total": "counter",
        "blockroute_fix_sessions_logged_on": "gauge",
    }
    assert {name: types.get(name) for name in old} == old
    assert values["blockroute_orders_accepted_total", ()] == 1
    assert values["blockroute_fills_total", ()] >= 1
    assert values["blockroute_parents_working", ()] == 1
    assert values["blockroute_ready", ()] == 1
    # from the desk's own metrics, not from figures read off the desk
    assert "# HELP blockroute_fills_total Fills of child orders" in page.splitlines()
    assert service.terminate() == 0


@pytest.mark.requires_extra("registry", "mlflow")
async def test_the_service_serves_the_champion_and_moves_it_on_its_api(
    tmp_path: Path,
    services: Services,
    registry_db_url: str,
    broker_url: str,  # noqa: F811  (the fixture)
) -> None:
    """[models] registry = true: the service loads each family's champion; a promotion
    through its API is journaled in its database and published on its bus."""
    import json
    import shutil
    import uuid

    import aiomqtt

    from models.serving.artifacts import MODELS_DIR, family_files
    from router.bus import parse_mqtt_url
    from router.model_admin import open_admin

    # a challenger for the dealer family, registered beside the service's database
    trained = tmp_path / "trained"
    trained.mkdir()
    for path in family_files("dealer", MODELS_DIR):
        shutil.copy(path, trained / path.name)
    admin = open_admin(registry_db_url, lambda: 1)
    admin.register("dealer", trained, "ci", "trained", {"seed": 7})
    admin.promote("dealer", 2, "ci", "served at the start")
    admin.close()
    root = f"blockroute-test/{uuid.uuid4().hex[:12]}/"
    config = write_config(tmp_path, mqtt_url=broker_url, mqtt_root=root, models={"registry": True})
    service = services.start(config)
    listed = service.get("/api/models")
    assert listed["served"] == {"dealer": 2, "fill": 1, "slicer": 1}
    moved = service.post(
        "/api/models/dealer/rollback", {"by": "alice", "reason": "back to the shipped one"}
    )
    assert (moved["from_version"], moved["to_version"], moved["action"]) == (2, 1, "rollback")
    engine = create_engine(registry_db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT action, from_version, to_version, by FROM svc_model_aliases ORDER BY id")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows][-2:] == [("promote", 1, 2, "ci"), ("rollback", 2, 1, "alice")]
    address = parse_mqtt_url(broker_url)
    async with aiomqtt.Client(address.host, address.port) as client:
        topic = f"{root}models/dealer/champion"
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(10):
            async for message in client.messages:  # the retained one: the last move
                payload = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                break
        await client.publish(topic, b"", qos=1, retain=True)
    assert (payload["type"], payload["to_version"], payload["by"]) == (
        "model_alias_changed",
        1,
        "alice",
    )
    assert service.terminate() == 0
