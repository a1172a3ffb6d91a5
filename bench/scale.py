"""Episodes per second of one backtest on the local process pool and on Ray, and what
Ray costs on top (`blockroute bench scale`).

Each configuration runs the same backtest as a `blockroute backtest` process of its own,
so that none inherits another's warm caches (a local pool forks the command's process: it
would start with the desk histories an earlier run left there):

- `local`, 1 and 2 workers: the process pool;
- `ray`, 1 and 2 CPUs: a cluster started for the run in the command's process, as
  `backtest --executor ray` does without an address; its start is part of the run;
- `ray-cluster`, 2 CPUs: a standing cluster, as a research desk's would be: a head
  started before the run (`ray start --head`, a session of its own) and left to settle,
  and the run given its address. The head's start is not timed; the CPU time its
  processes (daemons and the run's workers) spend during the run is counted.

The time is the backtest's own (`meta.wall_s`: from its first episode handed out, the
pool's or the cluster's start included, to the last result), not the interpreter's start
or imports, which every configuration pays alike. The runs' documents must be identical
but for `meta`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bench import blockroute_command
from bench.raynodes import ENV, NodeStartError, started_head

# (executor, workers or CPUs): the four configurations and a standing cluster
CONFIGS: tuple[tuple[str, int], ...] = (
    ("local", 1),
    ("local", 2),
    ("ray", 1),
    ("ray", 2),
    ("ray-cluster", 2),
)
RAY_EXECUTORS = ("ray", "ray-cluster")
TARGET_OVERHEAD = 0.10  # Ray at 2 CPUs against the local pool with 2 workers
SAMPLE_S = 0.2  # how often SessionCpu reads /proc
HEAD_START_S = 120.0  # for the standing cluster's head to start, on a loaded machine
# the standing head has settled when its processes spend less than this CPU time in a
# second (started, it spends about 5 CPU seconds in its first 4); at most SETTLE_S
SETTLED_CPU_S = 0.15
SETTLE_S = 30.0


class ScaleBenchError(Exception):
    """A backtest run of the benchmark failed (its standard error's last line)."""


def backtest_command(
    scenarios: Sequence[str],
    strategies: Sequence[str],
    per_scenario: int,
    seed0: int,
    executor: str,
    workers: int,
    config_dir: Path,
) -> list[str]:
    """The `blockroute backtest` command line of one configuration (no hindsight, no
    database: the episodes' own simulations are timed, nothing else)."""
    return blockroute_command(
        *("backtest", "--scenarios", ",".join(scenarios), "--strategies", ",".join(strategies)),
        *("--episodes", str(per_scenario), "--seed0", str(seed0), "--workers", str(workers)),
        *("--executor", executor, "--no-hindsight", "--db-url", "none", "--json", "-"),
        config_dir=config_dir,
    )


def _run(
    command: list[str], cluster_session: int | None = None
) -> tuple[dict[str, Any], float | None]:
    """The run's document, and the CPU seconds of its processes (see `SessionCpu`), with
    those that the processes of `cluster_session` (a standing cluster) spent meanwhile."""
    cluster = None if cluster_session is None else SessionCpu(cluster_session, since_now=True)
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV if cluster_session is not None else None,
        start_new_session=True,  # the session SessionCpu follows
    ) as proc:
        cpu = SessionCpu(proc.pid)
        cpu.start()
        if cluster is not None:
            cluster.start()
        try:
            out, err = proc.communicate()
        finally:
            cpu.stop()
            if cluster is not None:
                cluster.stop()
    if proc.returncode != 0:
        last = (err.strip().splitlines() or ["no output"])[-1]
        raise ScaleBenchError(f"{' '.join(command[3:])}: exit {proc.returncode}: {last}")
    try:
        doc: dict[str, Any] = json.loads(out)
    except json.JSONDecodeError:
        raise ScaleBenchError(
            f"{' '.join(command[3:])}: no JSON document on standard output "
            f"({len(out)} characters, starting {out[:200]!r})"
        ) from None
    seconds = cpu.seconds
    if seconds is not None and cluster is not None and cluster.seconds is not None:
        seconds += cluster.seconds
    return doc, seconds


class SessionCpu(threading.Thread):
    """The CPU time (user and system) of every process of a session, summed: the run's
    own process, its pool's workers, and with Ray the cluster's processes and workers,
    all of which stay in the session of the process that started them. Sampled every
    SAMPLE_S from /proc (a process that ends between samples loses at most that much);
    None where there is no /proc. On a machine shared with other work, wall times
    follow the other work; CPU seconds barely do.

    `since_now`: count only what the session's processes spend from now on (a standing
    cluster's: not its start)."""

    def __init__(self, sid: int, since_now: bool = False) -> None:
        super().__init__(daemon=True)
        self._sid = sid
        self._seen: dict[int, float] = {}
        self._done = threading.Event()
        self._proc = Path("/proc")
        self._before: dict[int, float] = {}
        if since_now:
            self.sample()
            self._before = dict(self._seen)

    def run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(SAMPLE_S)

    def stop(self) -> None:
        self._done.set()
        self.join()

    @property
    def seconds(self) -> float | None:
        if not self._proc.is_dir():
            return None
        return sum(t - self._before.get(pid, 0.0) for pid, t in self._seen.items())

    def sample(self) -> None:
        if not self._proc.is_dir():
            return
        tick = os.sysconf("SC_CLK_TCK")
        for entry in self._proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended since the listing
            # after the command's name (in parentheses, which may hold spaces): state,
            # ppid, pgrp, session, ... utime and stime at 12th and 13th
            fields = stat[stat.rfind(")") + 2 :].split()
            if int(fields[3]) == self._sid:
                self._seen[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick


def run_scale_bench(
    scenarios: Sequence[str],
    strategies: Sequence[str],
    episodes: int,
    seed0: int,
    config_dir: Path,
    progress: Callable[[int, int], None] | None = None,
    configs: Sequence[tuple[str, int]] = CONFIGS,
    repeat: int = 1,
) -> dict[str, Any]:
    """`episodes` in all (the same number per scenario) under each of `configs`, the
    whole round `repeat` times (interleaved, so that other work on the machine weighs on
    every configuration alike); each configuration's best run is kept (its wall and CPU
    times the least of its runs'). Raises ScaleBenchError if a run fails, ValueError if
    `episodes` is not a multiple of the number of scenarios."""
    if episodes % len(scenarios):
        raise ValueError(
            f"--episodes: {episodes} is not a multiple of the {len(scenarios)} scenarios"
        )
    per_scenario = episodes // len(scenarios)
    tried: dict[tuple[str, int], list[dict[str, Any]]] = {c: [] for c in configs}
    docs: set[str] = set()
    total = len(configs) * repeat
    for k in range(total):
        if progress:
            progress(k, total)
        executor, workers = configs[k % len(configs)]
        with contextlib.ExitStack() as stack:
            command = backtest_command(
                scenarios,
                strategies,
                per_scenario,
                seed0,
                "ray" if executor == "ray-cluster" else executor,
                workers,
                config_dir,
            )
            session = None
            if executor == "ray-cluster":
                address, session = stack.enter_context(standing_cluster(workers))
                command += ["--ray-address", address]
            load_before = os.getloadavg()[0]
            doc, cpu_s = _run(command, session)
        meta = doc.pop("meta")
        docs.add(json.dumps(doc, sort_keys=True))
        run: dict[str, Any] = {
            "wall_s": meta["wall_s"],
            # the whole process's, interpreter start and imports included
            "cpu_s": cpu_s,
            # other work on the machine slows a run: the 1-minute load before and after
            "load_1m": [load_before, os.getloadavg()[0]],
        }
        if "ray" in meta:
            run["ray"] = meta["ray"]
        tried[(executor, workers)].append(run)
    if progress:
        progress(total, total)
    runs = []
    for (executor, workers), all_runs in tried.items():
        best = min(all_runs, key=lambda r: r["wall_s"])
        cpus = [r["cpu_s"] for r in all_runs if r["cpu_s"] is not None]
        runs.append(
            {
                "executor": executor,
                "workers": workers,
                **best,
                "episodes_per_s": episodes / best["wall_s"],
                "cpu_s": min(cpus) if cpus else None,
                "wall_s_all": [r["wall_s"] for r in all_runs],
            }
        )
    overhead = _overhead(runs, "wall_s")
    standing = _overhead(runs, "wall_s", "ray-cluster")
    store = [r["ray"]["object_store_bytes"] for r in runs if "ray" in r]
    return {
        "scenarios": list(scenarios),
        "strategies": list(strategies),
        "episodes": episodes,
        "seed0": seed0,
        "repeat": repeat,
        "cpus": os.cpu_count(),
        "runs": runs,
        "ray_overhead": overhead,
        "ray_cpu_overhead": _overhead(runs, "cpu_s"),
        "target_overhead": TARGET_OVERHEAD,
        "within_target": overhead["2"] <= TARGET_OVERHEAD if "2" in overhead else None,
        "ray_cluster_overhead": standing,
        "ray_cluster_cpu_overhead": _overhead(runs, "cpu_s", "ray-cluster"),
        "within_target_cluster": standing["2"] <= TARGET_OVERHEAD if "2" in standing else None,
        "object_store_bytes": max(store) if store else None,
        "rows_identical": len(docs) == 1,
    }


def _overhead(runs: Sequence[dict[str, Any]], key: str, on: str = "ray") -> dict[str, float]:
    """`key` on executor `on` over the local pool's, less 1, by number of workers (CPUs)."""
    value = {(r["executor"], r["workers"]): r[key] for r in runs if r[key] is not None}
    return {
        str(n): value[(on, n)] / value[("local", n)] - 1.0
        for (executor, n) in value
        if executor == on and ("local", n) in value
    }


@contextlib.contextmanager
def standing_cluster(cpus: int) -> Iterator[tuple[str, int]]:
    """A Ray head with `cpus` CPUs, started and settled: its GCS address and the session
    its processes run in. Killed whole on leaving. Raises ScaleBenchError if it does not
    start."""
    with contextlib.ExitStack() as stack:
        try:
            head = stack.enter_context(started_head(cpus, timeout_s=HEAD_START_S))
        except NodeStartError as exc:
            raise ScaleBenchError(str(exc)) from None
        _settle(head.session)
        yield head.address, head.session


def _settle(session: int) -> None:
    """Until the processes of `session` spend less than SETTLED_CPU_S of CPU in a
    second, or SETTLE_S pass: a standing cluster is not in the middle of its start."""
    deadline = time.monotonic() + SETTLE_S
    cpu = SessionCpu(session, since_now=True)
    last = 0.0
    while time.monotonic() < deadline:
        time.sleep(1.0)
        cpu.sample()  # one a second is enough here: no thread
        now = cpu.seconds
        if now is None or now - last < SETTLED_CPU_S:
            return
        last = now
