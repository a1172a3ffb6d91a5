"""Ray nodes started as processes of their own, as `ray start` starts them on a cluster's
hosts: for the two-node test and for `bench scale`'s standing cluster.

A node runs `ray start --block` in a session of its own, so its processes (GCS, raylet,
agents, workers) share one process group, which `kill` ends whole, and one session,
whose CPU time `bench scale` can count apart from the driver's."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

OBJECT_STORE = 78_643_200  # Ray's smallest object store (75 MiB)
# Ray's token authentication, as on a cluster of separate hosts: the head requires a
# token and every node or driver that joins must present it, which each does only when
# told to (RAY_AUTH_MODE). The token is this process's own, passed in the environment:
# the user's ~/.ray/auth_token may not exist (`ray start` does not make one) and must
# not be touched. Ray reads these once per process: give ENV to every process that joins.
ENV = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


class NodeStartError(RuntimeError):
    """A node exited, or the cluster was not ready in time; the message holds the
    nodes' log tails."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_node(args: list[str], log: Path, cpus: int = 1) -> subprocess.Popen[bytes]:
    """`ray start --block --num-cpus CPUS ARGS` in a session of its own, its output to
    `log`. Every port a second node on the same host would also take is drawn free."""
    ports = [
        *("--dashboard-agent-listen-port", str(free_port())),
        *("--dashboard-agent-grpc-port", str(free_port())),
        *("--runtime-env-agent-port", str(free_port())),
        *("--metrics-export-port", str(free_port())),
        # random worker ports: two nodes on one host must not draw from one range
        *("--min-worker-port", "0", "--max-worker-port", "0"),
    ]
    command = [sys.executable, "-c", "from ray.scripts.scripts import main; main()", "start"]
    command += ["--block", "--num-cpus", str(cpus), "--object-store-memory", str(OBJECT_STORE)]
    command += ["--disable-usage-stats", *ports, *args]
    with log.open("wb") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=ENV, start_new_session=True
        )


def head_args(temp: Path, gcs_port: int, client_port: int | None = None) -> list[str]:
    """A head's arguments: its GCS on `gcs_port`, Ray's client server on `client_port`
    (none without), its files under `temp` (keep it short: the node's Unix sockets live
    there, and a socket path has about 100 characters)."""
    args = ["--head", "--port", str(gcs_port), "--dashboard-port", str(free_port())]
    if client_port is not None:
        args += ["--ray-client-server-port", str(client_port)]
    return [*args, "--temp-dir", str(temp)]


def head_address(temp: Path) -> str | None:
    """The GCS address the head under `temp` has published (host:port), or None yet."""
    current = temp / "ray_current_cluster"
    if not current.exists():
        return None
    return current.read_text().strip() or None


def wait_for(
    what: str,
    ready: Callable[[], object],
    processes: list[subprocess.Popen[bytes]],
    logs: Path,
    timeout_s: float,
) -> None:
    """Until `ready()` is true; raises NodeStartError with the nodes' logs if one of
    `processes` exits first or `timeout_s` pass."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if any(p.poll() is not None for p in processes) or time.monotonic() > deadline:
            tail = "".join(p.read_text(errors="replace")[-2000:] for p in logs.glob("*.log"))
            raise NodeStartError(f"the Ray cluster did not start ({what}):\n{tail}")
        time.sleep(0.5)


def kill(process: subprocess.Popen[bytes]) -> None:
    """The node's whole process group, at once: a throwaway cluster needs no draining
    (SIGTERM would wait up to 30 s for it)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@dataclass(frozen=True)
class Head:
    """A head started by `started_head`: its GCS address (host:port), the folder of its
    files and logs, and the processes to end with it (its own first: its session)."""

    address: str
    temp: Path
    processes: list[subprocess.Popen[bytes]]

    @property
    def session(self) -> int:
        return self.processes[0].pid

    def wait_for(self, what: str, ready: Callable[[], object], timeout_s: float) -> None:
        wait_for(what, ready, self.processes, self.temp, timeout_s)


@contextlib.contextmanager
def started_head(
    cpus: int = 1, client_port: int | None = None, timeout_s: float = 120.0
) -> Iterator[Head]:
    """A Ray head with `cpus` CPUs (and Ray's client server on `client_port`), once it
    has published its address; on leaving, it and every process added to its
    `processes` are killed and its folder removed. Raises NodeStartError if it does
    not start within `timeout_s`."""
    temp = Path(tempfile.mkdtemp(prefix="br-ray-"))  # short: see head_args
    processes: list[subprocess.Popen[bytes]] = []
    try:
        args = head_args(temp, free_port(), client_port)
        processes.append(start_node(args, temp / "head.log", cpus))
        wait_for("head", lambda: head_address(temp), processes, temp, timeout_s)
        address = head_address(temp)
        assert address is not None  # wait_for returned
        yield Head(address, temp, processes)
    finally:
        for process in reversed(processes):
            kill(process)
        shutil.rmtree(temp, ignore_errors=True)
