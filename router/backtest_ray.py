"""Backtest episodes as Ray tasks (`backtest --executor ray`), for sweeps that outgrow
one machine's process pool.

The episodes are the local executor's jobs (a scenario name, a seed, the strategies),
a few per task so that Ray's scheduling overhead stays small against the simulations;
each task returns its episodes' outcomes, which `router.backtest` aggregates in a fixed
order, so the document is the local run's whatever the tasks' finishing order. Workers
read the scenarios from the same configuration directory and open the store themselves
(`run_episode`), so on a cluster of several hosts both must be reachable from every
node: the same image, and a PostgreSQL `--db-url` rather than a local SQLite file.

Ray is an optional extra (`.[ray]`): it is imported inside the functions below, and this
module only when the Ray executor is asked for, so the default install never needs it.
"""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from router.backtest import EpisodeOutcome, ExecutorUnavailable, Progress, _Job, run_episode

CONNECT_CHECK_S = 3.0  # a ray:// address that takes no TCP connection in this long is down
TASKS_PER_CPU = 4  # enough to balance uneven episodes and move the bar, few enough to batch
MAX_RETRIES = 3  # a task whose worker dies (killed, out of memory) runs again elsewhere


def run_batch(jobs: Sequence[_Job]) -> list[EpisodeOutcome]:
    """One task: its episodes, one after the other, in a Ray worker."""
    return [run_episode(j) for j in jobs]


class RayEpisodes:
    """Runs episodes on Ray: the cluster at `address` ("auto", "ray://host:10001"), or
    with None one started in this process with `cpus` CPUs and stopped at the end."""

    def __init__(self, cpus: int, address: str | None = None) -> None:
        self._cpus = cpus
        self._address = address

    def run(self, jobs: Sequence[_Job], progress: Progress | None) -> list[EpisodeOutcome]:
        """Every job's outcome, in the tasks' finishing order; `progress(done, total)`
        as each task finishes. Ctrl-C cancels the tasks still pending, then propagates."""
        import ray  # the optional `ray` extra (see the module's docstring)

        owned = self._connect(ray)
        try:
            remote = ray.remote(max_retries=MAX_RETRIES)(run_batch)
            size = self._batch_size(ray, len(jobs))
            refs = [remote.remote(list(jobs[i : i + size])) for i in range(0, len(jobs), size)]
            return self._collect(ray, refs, len(jobs), progress)
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
            options.update(num_cpus=self._cpus, include_dashboard=False)
            options["logging_level"] = logging.ERROR
        try:
            ray.init(address=self._address, **options)
        except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
            where = self._address or "a local cluster"
            raise ExecutorUnavailable(f"--ray-address: cannot reach {where}: {exc}") from None
        return True

    def _batch_size(self, ray: Any, n_jobs: int) -> int:
        cpus = int(ray.cluster_resources().get("CPU", self._cpus)) or 1
        return max(1, math.ceil(n_jobs / (cpus * TASKS_PER_CPU)))

    @staticmethod
    def _collect(
        ray: Any, refs: list[Any], total: int, progress: Progress | None
    ) -> list[EpisodeOutcome]:
        outcomes: list[EpisodeOutcome] = []
        pending = refs
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    outcomes.extend(ray.get(ref))
                if progress:
                    progress(len(outcomes), total)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        return outcomes


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
