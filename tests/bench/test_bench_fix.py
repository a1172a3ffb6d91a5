"""`blockroute bench fix` (bench/fix.py, bench/fix_client.py): short runs of each mode,
and a client process that fails is reported and never left running."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import time
from pathlib import Path

import pytest

import bench.fix
from bench.fix import FixBenchError, InstantDesk, bench_gateway, fix_bench, run_client_process
from bench.fix_client import ClientConfig, Endpoint
from router.fix.settings import DEFAULT_ACCEPTOR_CFG

KEYS = {"orders", "orders_per_s", "ack_p50_ms", "ack_p99_ms", "client"}


@pytest.mark.parametrize("client", ["process", "inproc"])
def test_unpaced_run_reports_the_contract_figures(client):
    seen: list[tuple[int, int]] = []
    doc = fix_bench(
        300, window=16, client=client, progress=lambda done, total: seen.append((done, total))
    )
    assert set(doc) == KEYS and doc["orders"] == 300 and doc["client"] == client
    assert doc["orders_per_s"] > 50
    assert 0 < doc["ack_p50_ms"] <= doc["ack_p99_ms"] < 1000
    assert seen[-1] == (300, 300)


def test_paced_run_keeps_to_its_rate():
    doc = fix_bench(100, rate=400.0)
    assert doc["orders"] == 100 and doc["client"] == "process"
    assert doc["orders_per_s"] == pytest.approx(400.0, rel=0.25)


def test_bad_arguments():
    with pytest.raises(ValueError, match="orders"):
        fix_bench(0)
    with pytest.raises(ValueError, match="rate"):
        fix_bench(10, rate=0.0)
    with pytest.raises(ValueError, match="client must be one of process, inproc"):
        fix_bench(10, client="thread")


@pytest.fixture
def children(monkeypatch) -> list[asyncio.subprocess.Process]:
    """The client processes that bench.fix starts."""
    started: list[asyncio.subprocess.Process] = []
    real = asyncio.create_subprocess_exec

    async def spy(*args, **kwargs):
        proc = await real(*args, **kwargs)
        started.append(proc)
        return proc

    monkeypatch.setattr(bench.fix.asyncio, "create_subprocess_exec", spy)
    return started


def _gone(proc: asyncio.subprocess.Process) -> bool:
    if proc.returncode is None:
        return False
    try:
        os.kill(proc.pid, 0)
    except ProcessLookupError:
        return True  # reaped: not even a zombie
    return False


def _config(endpoint: Endpoint, logon_timeout_s: float = 5.0) -> ClientConfig:
    return ClientConfig(
        endpoint=endpoint,
        orders=10,
        rate=None,
        window=4,
        expire="20300101-00:00:00.000000",
        timeout_s=5.0,
        logon_timeout_s=logon_timeout_s,
    )


async def test_a_refused_logon_is_one_clear_error(children):
    async with bench_gateway(InstantDesk(time.time_ns)) as endpoint:
        wrong = dataclasses.replace(endpoint, password="not-the-password")
        with pytest.raises(FixBenchError, match=r"refused the client's logon: .*Password"):
            await run_client_process(_config(wrong))
    assert len(children) == 1 and _gone(children[0])


def _closed_port() -> tuple[socket.socket, int]:
    s = socket.socket()  # bound, never listening: a connection is refused
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def _endpoint(port: int, store: Path) -> Endpoint:
    dictionary = DEFAULT_ACCEPTOR_CFG.parent / "FIX44.xml"
    return Endpoint(port, "OMS", "BLOCKROUTE", "pw", str(store), str(dictionary))


async def test_a_client_that_cannot_connect_gives_up_at_its_logon_timeout(children, tmp_path):
    s, port = _closed_port()
    endpoint = _endpoint(port, tmp_path)
    with s, pytest.raises(FixBenchError, match=rf"did not log on to 127.0.0.1 port {port}"):
        await run_client_process(_config(endpoint, logon_timeout_s=0.5))
    assert len(children) == 1 and _gone(children[0])


async def test_an_interrupted_run_leaves_no_client_running(children, tmp_path):
    s, port = _closed_port()
    endpoint = _endpoint(port, tmp_path)
    with s:
        task = asyncio.create_task(run_client_process(_config(endpoint, logon_timeout_s=60.0)))
        while not children:
            await asyncio.sleep(0.01)
        await asyncio.sleep(1.0)  # the client is up, trying to connect
        assert children[0].returncode is None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert _gone(children[0])
