"""`blockroute serve` as a real process: configuration errors, a FIX client trading
through it, kill -9 and restart (no fill lost or reported twice), SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from router.fix.settings import DEFAULT_ACCEPTOR_CFG
from tests.router.fix.client import FixTestClient, until

PASSWORD = "s3cret"
TOKEN = "t0ken"
READY = "blockroute serving"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(folder: Path, **service: str) -> Path:
    extra = "".join(f"{k} = {v}\n" for k, v in service.items())
    path = folder / "service.toml"
    path.write_text(
        f"""
[service]
data_dir = "{folder}"
sim_speed = 100.0
default_horizon = "15m"
default_strategy = "sor"
{extra}
[symbols]
QDI = "calm"

[http]
host = "127.0.0.1"
port = 0

[mqtt]
url = "none"

[fix]
config = "{DEFAULT_ACCEPTOR_CFG}"

[fix.clients.OMS]
password = ""
"""
    )
    return path


class Service:
    """One `blockroute serve` process; `start` waits for its ready line."""

    def __init__(self, config: Path, fix_port: int, http_port: int) -> None:
        self.config = config
        self.fix_port = fix_port
        self.http_port = http_port
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []

    def start(self, timeout: float = 90.0) -> Service:
        env = {**os.environ, "BLOCKROUTE_FIX_PASSWORD_OMS": PASSWORD}
        env["BLOCKROUTE_API_TOKEN"] = TOKEN
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "router.cli",
                "serve",
                "--config",
                str(self.config),
                "--fix-port",
                str(self.fix_port),
                "--http-port",
                str(self.http_port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if line.startswith(READY):
                return self
        self.proc.kill()
        raise AssertionError("the service did not start:\n" + "".join(self.lines))

    def get(self, path: str) -> dict[str, object]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5) as r:
            out: dict[str, object] = json.loads(r.read())
            return out

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=timeout)
        self.lines.append(out)
        return self.proc.returncode


@pytest.fixture
def ports() -> tuple[int, int]:
    return _free_port(), _free_port()


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for s in started:
        if s.proc is not None and s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


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
        [sys.executable, "-m", "router.cli", "serve", "--config", str(_config(tmp_path))],
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
    r = _serve(["--config", str(_config(tmp_path)), *args])
    assert r.returncode == 2 and words in r.stderr and r.stderr.count("\n") == 1


def test_a_typo_in_the_config_names_the_key(tmp_path: Path) -> None:
    r = _serve(["--config", str(_config(tmp_path, sim_sped="3.0"))])
    assert r.returncode == 2 and "service.sim_sped: unknown key" in r.stderr


async def test_kill_9_and_restart_loses_no_fill_and_reports_none_twice(
    tmp_path: Path, ports: tuple[int, int], services: list[Service]
) -> None:
    fix_port, http_port = ports
    config = _config(tmp_path)
    first = Service(config, fix_port, http_port).start()
    services.append(first)
    client = FixTestClient(fix_port, tmp_path / "client-store", password=PASSWORD).start()
    try:
        await client.wait_logged_on(10)
        # sell 60,000 QDI with SOR (TargetStrategy 1002) over the default 15 minutes
        client.new_order("K9", qty="60000", side="2", extra=[(847, "1002")])
        await client.expect(f35="8", f150="0", f11="K9", timeout=10)
        await until(lambda: len(client.all_app(f150="F")) >= 3, 30, "no fills before the kill")
        # at --sim-speed 100 the service clock runs ahead of the wall clock, by 100 s
        # for each second up: a restart at the wall clock would go minutes back
        await asyncio.sleep(2.0)
        clock_before = first.get("/api/info")["now_ns"]
        assert isinstance(clock_before, int)
        await asyncio.sleep(0.3)  # it goes on trading (and committing) a little
        first.kill9()
        before = len(client.all_app(f150="F"))

        second = Service(config, fix_port, http_port).start()
        services.append(second)
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
        exec_ids = [f[17] for f in fills]
        assert len(set(exec_ids)) == len(exec_ids), "an ExecutionReport came twice"
        cum = 0
        for f in sorted(fills, key=lambda m: int(m[14])):
            cum += int(f[32])
            assert int(f[14]) == cum, "a fill is missing between two reports"
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
    finally:
        client.stop()


async def test_sigterm_pulls_the_children_and_exits_cleanly(
    tmp_path: Path, ports: tuple[int, int], services: list[Service]
) -> None:
    fix_port, http_port = ports
    service = Service(_config(tmp_path), fix_port, http_port).start()
    services.append(service)
    client = FixTestClient(fix_port, tmp_path / "client-store", password=PASSWORD).start()
    try:
        await client.wait_logged_on(10)
        client.new_order("T1", qty="80000", side="1", extra=[(847, "1002")])
        await until(lambda: len(client.all_app(f150="F")) >= 1, 30, "no fill")
        await asyncio.sleep(0.5)
        assert service.terminate() == 0
        assert "blockroute stopped" in service.lines[-1]
    finally:
        client.stop()
    engine = create_engine(f"sqlite:///{tmp_path / 'blockroute.db'}")
    with engine.connect() as conn:
        open_children = conn.execute(
            text("SELECT count(*) FROM svc_children WHERE status = 'open'")
        ).scalar()
        parent = conn.execute(text("SELECT status, filled_qty FROM svc_parents")).one()
    engine.dispose()
    assert open_children == 0  # every child was pulled and confirmed before exit
    assert parent[0] == "working" and parent[1] > 0  # the parent resumes at the next start
