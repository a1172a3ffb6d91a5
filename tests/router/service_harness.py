"""`blockroute serve` as a real process, for the tests that run it: its config file, free
ports, starting it and waiting for its ready line, kill -9, SIGTERM, and what a FIX client
that traded through it must have been told."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from router.fix.settings import DEFAULT_ACCEPTOR_CFG
from tests.router.fix.client import FixTestClient

PASSWORD = "s3cret"  # the FIX client OMS's
TOKEN = "t0ken"  # the HTTP API's
READY = "blockroute serving"

_logs = itertools.count(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, str) else repr(value)


def write_config(
    folder: Path,
    *,
    journal: Mapping[str, str] | None = None,
    mqtt_url: str = "none",
    mqtt_root: str | None = None,
    models: Mapping[str, object] | None = None,
    drift: Mapping[str, object] | None = None,
    **service: object,
) -> Path:
    """`folder`/service.toml: QDI on the calm scenario, its data (SQLite journal) in
    `folder`, HTTP on a free port, no MQTT unless `mqtt_url`, client OMS on FIX with its
    password from the environment. `service` adds to (or with None, leaves out) the
    [service] table's keys: by default at 100x, the sor strategy over 15 minutes."""
    keys: dict[str, object] = {
        "data_dir": str(folder),
        "sim_speed": 100.0,
        "default_horizon": "15m",
        "default_strategy": "sor",
    }
    keys.update(service)
    tables = {"service": {k: v for k, v in keys.items() if v is not None}}
    if journal is not None:
        tables["journal"] = dict(journal)
    tables["symbols"] = {"QDI": "calm"}
    tables["http"] = {"host": "127.0.0.1", "port": 0}
    tables["mqtt"] = {"url": mqtt_url} | ({} if mqtt_root is None else {"root": mqtt_root})
    tables["fix"] = {"config": str(DEFAULT_ACCEPTOR_CFG)}
    tables["fix.clients.OMS"] = {"password": ""}
    if models is not None:
        tables["models"] = dict(models)
    if drift is not None:
        tables["drift"] = dict(drift)
    text = "".join(
        f"\n[{name}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in table.items())
        for name, table in tables.items()
    )
    path = folder / "service.toml"
    path.write_text(text)
    return path


class Service:
    """One `blockroute serve` process on `config`; `start` waits for its ready line. Its
    output goes to a file beside the config (a pipe that nobody reads once it is ready
    fills up, and the service stops at its next log line)."""

    def __init__(
        self, config: Path, fix_port: int | None = None, http_port: int | None = None
    ) -> None:
        self.config = config
        self.fix_port = fix_port
        self.http_port = http_port
        self.log = config.parent / f"service-{next(_logs)}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""  # the dashboard's, from the ready line

    def start(self, timeout: float = 90.0) -> Service:
        """Raises AssertionError, with the output, if it does not say it is ready."""
        env = {
            **os.environ,
            "BLOCKROUTE_FIX_PASSWORD_OMS": PASSWORD,
            "BLOCKROUTE_API_TOKEN": TOKEN,
        }
        cmd = [sys.executable, "-m", "router.cli", "serve", "--config", str(self.config)]
        if self.fix_port is not None:
            cmd += ["--fix-port", str(self.fix_port)]
        if self.http_port is not None:
            cmd += ["--http-port", str(self.http_port)]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            for line in self.output().splitlines():
                if line.startswith(READY):
                    self.url = line.split("dashboard ", 1)[1].split(",", 1)[0].rstrip("/")
                    return self
            time.sleep(0.05)
        self.kill()
        raise AssertionError("the service did not start:\n" + self.output())

    def output(self) -> str:
        """What it wrote so far (stdout and stderr)."""
        return self.log.read_text(errors="replace")

    def get(self, path: str) -> dict[str, Any]:
        with self._open(f"{self.url}{path}") as r:
            out: dict[str, Any] = json.loads(r.read())
            return out

    def _open(self, request: str | urllib.request.Request) -> Any:
        """urlopen; if the service is not there any more, say how it ended and what it
        wrote last (a refused connection alone says nothing of why)."""
        try:
            return urllib.request.urlopen(request, timeout=5)
        except urllib.error.URLError as exc:
            if not isinstance(exc.reason, ConnectionRefusedError) or self.proc is None:
                raise
            code = self.proc.poll()
            tail = "\n".join(self.output().splitlines()[-40:])
            raise AssertionError(
                f"the service refused the connection (exit status {code}); its last output:\n{tail}"
            ) from exc

    def post(self, path: str, body: Mapping[str, object]) -> dict[str, Any]:
        """POST `body` as JSON to the HTTP API, with the API's token."""
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        with self._open(request) as r:
            out: dict[str, Any] = json.loads(r.read())
            return out

    def page(self, path: str) -> str:
        """GET `path` as text (e.g. /metrics)."""
        with self._open(f"{self.url}{path}") as r:
            return str(r.read().decode())

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM; its exit status (TimeoutExpired if it does not exit in time)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """Gone, if it is still running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Services(list[Service]):
    """The services a test started, killed at the end whatever happened."""

    def __enter__(self) -> Services:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for s in self:
            s.kill()

    def start(
        self, config: Path, fix_port: int | None = None, http_port: int | None = None
    ) -> Service:
        """A started Service (see there)."""
        service = Service(config, fix_port, http_port)
        self.append(service)
        return service.start()


@contextlib.asynccontextmanager
async def fix_client(service: Service, folder: Path) -> AsyncIterator[FixTestClient]:
    """`service`'s FIX client OMS (a quickfix initiator, its store in `folder`), logged
    on; stopped at the end."""
    assert service.fix_port is not None
    client = FixTestClient(service.fix_port, folder / "client-store", password=PASSWORD)
    client.start()
    try:
        await client.wait_logged_on(10)
        yield client
    finally:
        client.stop()


async def sell_with_sor(client: FixTestClient, cl_ord_id: str, qty: int) -> None:
    """Sell `qty` QDI with SOR (TargetStrategy 1002) over the default horizon, and wait
    for the order's acknowledgement."""
    client.new_order(cl_ord_id, qty=str(qty), side="2", extra=[(847, "1002")])
    await client.expect(f35="8", f150="0", f11=cl_ord_id, timeout=10)


def reported_once_without_gap(fills: list[dict[int, str]]) -> tuple[list[str], int]:
    """The ExecutionReports of fills a client got: each exec id once and the cumulative
    quantities without a gap. Returns (their exec ids, the quantity filled)."""
    exec_ids = [f[17] for f in fills]
    assert len(set(exec_ids)) == len(exec_ids), "an ExecutionReport came twice"
    cum = 0
    for f in sorted(fills, key=lambda m: int(m[14])):
        cum += int(f[32])
        assert int(f[14]) == cum, "a fill is missing between two reports"
    return exec_ids, cum
