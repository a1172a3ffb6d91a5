"""`backtest --executor ray --ray-address` on a cluster of two nodes: a head and a second
node started as separate processes, as `ray start --head` and `ray start --address`
would on two hosts, each limited to one CPU. Both nodes run episodes, and the rows are
the local run's."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START_S = 120.0  # for both nodes to join, on a loaded two-core machine
OBJECT_STORE = 78_643_200  # Ray's smallest object store (75 MiB)
# Ray's token authentication: the head makes a token (~/.ray/auth_token) and requires
# it; another node, or a driver given an address, sends it only when told to, as on
# separate hosts. Ray reads this once per process: the backtests run in their own.
_ENV = {**os.environ, "RAY_AUTH_MODE": "token"}

ARGS = [
    "backtest",
    "--scenarios",
    "calm",
    "--strategies",
    "twap,sor",  # sor asks dealers: one desk history, simulated once on the cluster
    "--episodes",
    "4",
    "--seed0",
    "700",
    "--no-hindsight",
    "--db-url",
    "none",
    "--json",
]


@dataclass(frozen=True)
class Cluster:
    address: str  # the head's GCS, host:port, as `ray start --address` takes it
    client: str  # ray://host:port, Ray's client server on the head


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """`ray start --block ...` in a session of its own: the node's processes (GCS,
    raylet, agents, workers) share its process group, which the finaliser kills whole."""
    ports = [
        *("--dashboard-agent-listen-port", str(_free_port())),
        *("--dashboard-agent-grpc-port", str(_free_port())),
        *("--runtime-env-agent-port", str(_free_port())),
        *("--metrics-export-port", str(_free_port())),
        # random worker ports: two nodes on one host must not draw from one range
        *("--min-worker-port", "0", "--max-worker-port", "0"),
    ]
    command = [sys.executable, "-c", "from ray.scripts.scripts import main; main()", "start"]
    command += ["--block", "--num-cpus", "1", "--object-store-memory", str(OBJECT_STORE)]
    command += ["--disable-usage-stats", *ports, *args]
    with log.open("wb") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=_ENV, start_new_session=True
        )


def _kill(process: subprocess.Popen[bytes]) -> None:
    # a throwaway cluster: no draining (SIGTERM would wait up to 30 s for it)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def _wait_for(what: str, ready, processes: list[subprocess.Popen[bytes]], logs: Path) -> None:
    """Until `ready()`; fails with the nodes' logs if one of `processes` exits first
    or START_S pass."""
    deadline = time.monotonic() + START_S
    while not ready():
        if any(p.poll() is not None for p in processes) or time.monotonic() > deadline:
            tail = "".join(p.read_text(errors="replace")[-2000:] for p in logs.glob("*.log"))
            pytest.fail(f"the Ray cluster did not start ({what}):\n{tail}")
        time.sleep(0.5)


# exits 0 once the cluster at argv[1] has two live nodes
_BOTH_ALIVE = """
import sys, time, ray
while True:
    ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
    alive = sum(1 for n in ray.nodes() if n["Alive"])
    ray.shutdown()
    if alive == 2:
        sys.exit(0)
    time.sleep(0.5)
"""


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[Cluster]:
    # short: the nodes' Unix sockets live under it (a socket path has ~100 characters)
    temp = Path(tempfile.mkdtemp(prefix="br-ray-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        gcs, client = _free_port(), _free_port()
        head = [
            *("--head", "--port", str(gcs), "--ray-client-server-port", str(client)),
            *("--dashboard-port", str(_free_port()), "--temp-dir", str(temp)),
        ]
        processes.append(_ray_start(head, temp / "head.log"))
        current = temp / "ray_current_cluster"  # the head writes its address there
        _wait_for("head", lambda: current.exists() and current.read_text().strip(), processes, temp)
        address = current.read_text().strip()
        processes.append(_ray_start(["--address", address], temp / "node.log"))
        checker = subprocess.Popen(
            [sys.executable, "-c", _BOTH_ALIVE, address],
            env=_ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        processes.append(checker)
        _wait_for("second node", lambda: checker.poll() == 0, processes, temp)
        yield Cluster(address, f"ray://{address.rsplit(':', 1)[0]}:{client}")
    finally:
        for process in reversed(processes):
            _kill(process)
        shutil.rmtree(temp, ignore_errors=True)


def backtest(json_path: Path, *extra: str) -> dict:
    """`blockroute backtest` in a process of its own (see _ENV)."""
    command = [sys.executable, "-m", "router.cli", *ARGS, str(json_path), *extra]
    done = subprocess.run(command, env=_ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(json_path.read_text())


def rows(doc: dict) -> str:
    """The document but for how it ran."""
    return json.dumps({k: v for k, v in doc.items() if k != "meta"})


@pytest.fixture(scope="module")
def local_rows(tmp_path_factory) -> str:
    return rows(backtest(tmp_path_factory.mktemp("local") / "doc.json", "--workers", "1"))


@pytest.mark.requires_extra("ray", "ray")
def test_both_nodes_run_episodes_and_the_rows_are_the_local_runs(two_nodes, local_rows, tmp_path):
    doc = backtest(tmp_path / "doc.json", "--executor", "ray", "--ray-address", two_nodes.address)
    assert rows(doc) == local_rows
    ran = doc["meta"]["ray"]
    assert ran["cpus"] == 2
    # each node ran episodes (one CPU each: the second task spills over to the other)
    assert len(ran["episodes_by_node"]) == 2
    assert sum(ran["episodes_by_node"].values()) == 4
    assert ran["object_store_bytes"] > 0  # the scenario and the desk history, once each


@pytest.mark.requires_extra("ray", "ray")
def test_the_same_cluster_through_rays_client_gives_the_same_rows(two_nodes, local_rows, tmp_path):
    doc = backtest(tmp_path / "doc.json", "--executor", "ray", "--ray-address", two_nodes.client)
    assert rows(doc) == local_rows
    assert sum(doc["meta"]["ray"]["episodes_by_node"].values()) == 4
