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

import os
import pickle
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from router.backtest import EpisodeOutcome, Progress, _Job, run_episode
from router.config import DEFAULT_CONFIG_DIR
from router.ray_tasks import MAX_RETRIES, RayCluster, batch_sizes, cluster_cpus, collect
from simulators.scenario import Scenario


def desk_history_blob(scenario: str, panel: str, config_dir: str) -> bytes:
    """One task: the desk's dealer history of a scenario's panel as configured in
    `config_dir`, pickled (see `run_batch` for why pickled by us)."""
    from router.app import desk_history

    history = desk_history(scenario, panel, Path(config_dir))
    return pickle.dumps(history, protocol=pickle.HIGHEST_PROTOCOL)


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
    # the histories are of the jobs' configuration folder (one for all of a backtest)
    config_dirs = {Path(j.config_dir) for j in jobs}
    for (scenario, panel), blob in zip(history_keys, histories, strict=True):
        history = pickle.loads(blob)
        for config_dir in config_dirs:
            app.adopt_desk_history(scenario, panel, history, config_dir)
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
        """Every job's outcome, in the order of the tasks; `progress(done, total)` as
        each task finishes. `scenarios`: the jobs' scenarios by name; `histories`: the
        (scenario, panel) desk histories the episodes read. Ctrl-C cancels the tasks
        still pending, then propagates."""
        from router import app

        start = time.perf_counter()
        with RayCluster(self._cpus, self._address) as ray:
            connected = time.perf_counter()
            cpus = cluster_cpus(ray, self._cpus)
            config_dir = jobs[0].config_dir if jobs else str(DEFAULT_CONFIG_DIR)
            shared = _Shared(ray, scenarios, app.MODELS.loaded(), histories, config_dir)
            remote = ray.remote(max_retries=MAX_RETRIES)(run_batch)
            refs, sizes, at = [], [], 0
            for size in batch_sizes(len(jobs), cpus):
                batch = list(jobs[at : at + size])
                refs.append(remote.remote(batch, *shared.arguments({j.scenario for j in batch})))
                sizes.append(size)
                at += size
            placed = collect(ray, refs, sizes, progress, also_cancel=shared.pending)
            by_node: dict[str, int] = {}
            for node, _, outcomes in placed:
                by_node[node] = by_node.get(node, 0) + len(outcomes)
            self.report = {
                "cpus": cpus,
                "connect_s": connected - start,
                "tasks": len(refs),
                "episodes_by_node": by_node,
                "worker_processes": len({(node, pid) for node, pid, _ in placed}),
                "object_store_bytes": shared.nbytes(ray),
            }
            return [o for _, _, outcomes in placed for o in outcomes]


class _Shared:
    """The inputs every task reads, each in the object store once: the scenarios, the
    models (if loaded), and the desk histories, each the result of a task of its own."""

    def __init__(
        self,
        ray: Any,
        scenarios: Mapping[str, Scenario],
        models: object | None,
        histories: Sequence[tuple[str, str]],
        config_dir: str,
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
        self._histories = {key: task.remote(*key, config_dir) for key in histories}

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
