"""Backtest episodes as Ray tasks (`backtest --executor ray`), for sweeps that outgrow
one machine's process pool.

The episodes are the local executor's jobs (a scenario name, a seed, the strategies),
a few per task so that Ray's scheduling overhead stays small against the simulations;
each task returns its episodes' outcomes, which `router.backtest` aggregates in a fixed
order, so the document is the local run's whatever the tasks' finishing order.

What every episode reads and none changes goes to the object store once per run, not
once per task or per worker process: the scenarios as the driver loaded them, the
dealer and fill models if the driver loaded them (a strategy routes on them), and the
desk's dealer history of each scenario's panel (router.app.desk_history), simulated by
one task per panel on the cluster instead of once in every worker. The episode tasks
take them as arguments, so Ray starts a task only once the histories it reads are
there. Workers still open the store themselves (`run_episode`) and read the dealer
panels and the slicer's ONNX policy from their own installation, so on a cluster of
several hosts every node runs the same image, and `--db-url` must be a PostgreSQL URL
that they all reach rather than a local SQLite file.

Ray is an optional extra (`.[ray]`): it is imported inside the functions below, and this
module only when the Ray executor is asked for, so the default install never needs it.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from router.backtest import EpisodeOutcome, ExecutorUnavailable, Progress, _Job, run_episode
from simulators.scenario import Scenario

CONNECT_CHECK_S = 3.0  # a ray:// address that takes no TCP connection in this long is down
MAX_RETRIES = 3  # a task whose worker dies (killed, out of memory) runs again elsewhere
# Episodes per task: each task takes 1/(TAIL_SHARE * CPUs) of the episodes not yet
# handed out (guided self-scheduling), at most MAX_BATCH: a task of a second or more
# dwarfs Ray's few milliseconds per task, the tasks shrink to single episodes at the end
# so that no CPU idles long while another finishes, and a task stays short enough for
# the progress bar to move and for a retry (a worker killed) to cost little.
TAIL_SHARE = 2
MAX_BATCH = 8
# The object store of a cluster started for one run: the shared inputs take a few MB,
# the results travel inline; Ray's own default (30% of memory) reserves far more.
OBJECT_STORE_BYTES = 128 * 2**20


def batch_sizes(n_jobs: int, cpus: int) -> list[int]:
    """The episodes of each task, in order of submission (see TAIL_SHARE)."""
    sizes: list[int] = []
    left = n_jobs
    while left > 0:
        size = min(MAX_BATCH, max(1, math.ceil(left / (TAIL_SHARE * max(cpus, 1)))))
        sizes.append(size)
        left -= size
    return sizes


def desk_history_blob(scenario: str, panel: str) -> bytes:
    """One task: the desk's dealer history of a scenario's panel, pickled (see
    `run_batch` for why pickled by us)."""
    from router.app import desk_history

    return pickle.dumps(desk_history(scenario, panel), protocol=pickle.HIGHEST_PROTOCOL)


def run_batch(
    jobs: Sequence[_Job],
    scenarios: bytes,
    models: bytes | None,
    history_keys: Sequence[tuple[str, str]],
    *histories: bytes,
) -> tuple[str, int, list[EpisodeOutcome]]:
    """One task: its episodes, one after the other, in a Ray worker, on the inputs the
    driver shared (Ray resolves the arguments' object references before the call).
    Returns this node's id and this process's id with the outcomes.

    The inputs come pickled by the driver rather than as Ray objects: Ray hands numpy
    arrays back as read-only views of the store, which the compiled kernels would take
    for another type (compiled again) and the desk's state cannot learn in."""
    import ray

    from router import app

    if models is not None:
        app.MODELS.adopt(pickle.loads(models))
    for (scenario, panel), blob in zip(history_keys, histories, strict=True):
        app.adopt_desk_history(scenario, panel, pickle.loads(blob))
    loaded: dict[str, Scenario] = pickle.loads(scenarios)
    outcomes = [run_episode(j, loaded) for j in jobs]
    return ray.get_runtime_context().get_node_id(), os.getpid(), outcomes


class RayEpisodes:
    """Runs episodes on Ray: the cluster at `address` ("auto", "ray://host:10001"), or
    with None one started in this process with `cpus` CPUs and stopped at the end.
    After `run`, `report` says where the tasks ran and what the shared inputs took."""

    def __init__(self, cpus: int, address: str | None = None) -> None:
        self._cpus = cpus
        self._address = address
        self.report: dict[str, Any] = {}

    def run(
        self,
        jobs: Sequence[_Job],
        scenarios: Mapping[str, Scenario],
        histories: Sequence[tuple[str, str]],
        progress: Progress | None,
    ) -> list[EpisodeOutcome]:
        """Every job's outcome, in the tasks' finishing order; `progress(done, total)`
        as each task finishes. `scenarios`: the jobs' scenarios by name; `histories`:
        the (scenario, panel) desk histories the episodes read. Ctrl-C cancels the
        tasks still pending, then propagates."""
        import ray  # the optional `ray` extra (see the module's docstring)

        from router import app

        start = time.perf_counter()
        owned = self._connect(ray)
        try:
            connected = time.perf_counter()
            cpus = int(ray.cluster_resources().get("CPU", self._cpus)) or 1
            shared = _Shared(ray, scenarios, app.MODELS.loaded(), histories)
            remote = ray.remote(max_retries=MAX_RETRIES)(run_batch)
            refs, at = [], 0
            for size in batch_sizes(len(jobs), cpus):
                batch = list(jobs[at : at + size])
                at += size
                refs.append(remote.remote(batch, *shared.arguments({j.scenario for j in batch})))
            placed = self._collect(ray, refs, len(jobs), progress, shared.pending)
            self.report = {
                "cpus": cpus,
                "connect_s": connected - start,
                "tasks": len(refs),
                "episodes_by_node": _count(placed, 0),
                "worker_processes": len({(node, pid) for node, pid, _ in placed}),
                "object_store_bytes": shared.nbytes(ray),
            }
            return [o for _, _, batch in placed for o in batch]
        finally:
            if owned:
                ray.shutdown()

    def _connect(self, ray: Any) -> bool:
        """Joins (or starts) the cluster; True if this call started it and must stop it."""
        if ray.is_initialized():
            return False
        # log_to_driver=False: the workers' output must not reach our stdout, where
        # `--json -` writes the document; their errors come back as exceptions anyway
        options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        if self._address is not None:
            _check_reachable(self._address)
        if self._address is None:
            # a cluster of our own, for this run only: its start-up notices are noise
            options.update(
                num_cpus=self._cpus,
                include_dashboard=False,
                object_store_memory=OBJECT_STORE_BYTES,
            )
            options["logging_level"] = logging.ERROR
        try:
            ray.init(address=self._address, **options)
        except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
            where = self._address or "a local cluster"
            raise ExecutorUnavailable(f"--ray-address: cannot reach {where}: {exc}") from None
        return True

    @staticmethod
    def _collect(
        ray: Any, refs: list[Any], total: int, progress: Progress | None, others: list[Any]
    ) -> list[tuple[str, int, list[EpisodeOutcome]]]:
        placed: list[tuple[str, int, list[EpisodeOutcome]]] = []
        done_eps = 0
        pending = refs
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    node, pid, outcomes = ray.get(ref)
                    placed.append((node, pid, outcomes))
                    done_eps += len(outcomes)
                if progress:
                    progress(done_eps, total)
        except KeyboardInterrupt:
            for ref in [*pending, *others]:
                ray.cancel(ref, force=True)
            raise
        return placed


class _Shared:
    """The inputs every task reads, each in the object store once: the scenarios, the
    models (if loaded), and the desk histories, each the result of a task of its own."""

    def __init__(
        self,
        ray: Any,
        scenarios: Mapping[str, Scenario],
        models: object | None,
        histories: Sequence[tuple[str, str]],
    ) -> None:
        def put(obj: object) -> tuple[Any, int]:
            blob = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
            return ray.put(blob), len(blob)

        self._scenarios, size = put(dict(scenarios))
        self._put_bytes = size
        self._models: Any = None
        if models is not None:
            self._models, size = put(models)
            self._put_bytes += size
        task = ray.remote(max_retries=MAX_RETRIES)(desk_history_blob)
        self._histories = {key: task.remote(*key) for key in histories}

    @property
    def pending(self) -> list[Any]:
        """The history tasks (to cancel with the episodes')."""
        return list(self._histories.values())

    def arguments(self, scenarios: set[str]) -> list[Any]:
        """`run_batch`'s arguments after the jobs, for a batch of these scenarios."""
        keys = [k for k in self._histories if k[0] in scenarios]
        return [self._scenarios, self._models, keys, *(self._histories[k] for k in keys)]

    def nbytes(self, ray: Any) -> int:
        """The bytes the shared inputs take in the object store (the histories fetched
        to be measured: a few tens of kB each)."""
        return self._put_bytes + sum(len(ray.get(r)) for r in self._histories.values())


def _count(placed: Sequence[tuple[str, int, list[EpisodeOutcome]]], field: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for task in placed:
        key = str(task[field])
        counts[key] = counts.get(key, 0) + len(task[2])
    return counts


def _check_reachable(address: str) -> None:
    """Refuse a `ray://host:port` address that takes no TCP connection within
    CONNECT_CHECK_S, before Ray's client spends its own 30-odd seconds on it. Other
    addresses ("auto", a GCS host:port) are left to Ray, which fails fast on them."""
    parts = urlsplit(address)
    if parts.scheme != "ray" or not parts.hostname:
        return
    port = parts.port or 10001
    try:
        with socket.create_connection((parts.hostname, port), timeout=CONNECT_CHECK_S):
            pass
    except OSError as exc:
        raise ExecutorUnavailable(
            f"--ray-address: cannot reach {address} ({exc.strerror or exc})"
        ) from None
