"""`backtest --executor ray --ray-address` on a cluster of two nodes: a head and a second
node started as separate processes, as `ray start --head` and `ray start --address`
would on two hosts, each limited to one CPU. Both nodes run episodes, and the rows are
the local run's."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.raynodes import ENV, NodeStartError, free_port, start_node, started_head

START_S = 120.0  # for both nodes to join, on a loaded two-core machine

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
    temp: Path  # the head's files: its session's logs are under session_latest/logs

    def client_server_logs(self) -> str:
        """The tails of the logs of Ray's client servers on the head (the proxy and the
        server it starts for each client): why a client was refused is there."""
        logs = sorted((self.temp / "session_latest" / "logs").glob("ray_client_server*"))
        return "".join(f"\n== {f.name}\n{f.read_text(errors='replace')[-4000:]}" for f in logs)


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
    client = free_port()
    try:
        with started_head(client_port=client, timeout_s=START_S) as head:
            node = start_node(["--address", head.address], head.temp / "node.log")
            head.processes.append(node)
            checker = subprocess.Popen(
                [sys.executable, "-c", _BOTH_ALIVE, head.address],
                env=ENV,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            head.processes.append(checker)
            head.wait_for("second node", lambda: checker.poll() == 0, START_S)
            host = head.address.rsplit(":", 1)[0]
            yield Cluster(head.address, f"ray://{host}:{client}", head.temp)
    except NodeStartError as exc:
        pytest.fail(str(exc))


def backtest(json_path: Path, *extra: str, cluster: Cluster | None = None) -> dict:
    """`blockroute backtest` in a process of its own (see bench.raynodes.ENV)."""
    command = [sys.executable, "-m", "router.cli", *ARGS, str(json_path), *extra]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:] + (
        cluster.client_server_logs() if cluster else ""
    )
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
    doc = backtest(
        tmp_path / "doc.json",
        "--executor",
        "ray",
        "--ray-address",
        two_nodes.client,
        cluster=two_nodes,
    )
    assert rows(doc) == local_rows
    assert sum(doc["meta"]["ray"]["episodes_by_node"].values()) == 4
