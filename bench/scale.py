"""Episodes per second of one backtest on the local process pool and on Ray, and what
Ray costs on top (`blockroute bench scale`).

Each configuration (1 and 2 local workers, Ray with 1 and 2 CPUs: a cluster started
for the run in the command's process, as `backtest --executor ray` does without an
address) runs the same backtest as a `blockroute backtest` process of its own, so that
none inherits another's warm caches (a local pool forks the command's process: it would
start with the desk histories an earlier run left there). The time is the backtest's
own (`meta.wall_s`: from its first episode handed out, the pool's or the cluster's
start included, to the last result), not the interpreter's start or imports, which
every configuration pays alike. The runs' documents must be identical but for `meta`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# (executor, workers or CPUs): the four configurations
CONFIGS: tuple[tuple[str, int], ...] = (("local", 1), ("local", 2), ("ray", 1), ("ray", 2))
TARGET_OVERHEAD = 0.10  # Ray at 2 CPUs against the local pool with 2 workers


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
    return [
        sys.executable,
        "-m",
        "router.cli",
        "--config-dir",
        str(config_dir),
        "backtest",
        "--scenarios",
        ",".join(scenarios),
        "--strategies",
        ",".join(strategies),
        "--episodes",
        str(per_scenario),
        "--seed0",
        str(seed0),
        "--workers",
        str(workers),
        "--executor",
        executor,
        "--no-hindsight",
        "--db-url",
        "none",
        "--json",
        "-",
    ]


def _run(command: list[str]) -> dict[str, Any]:
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise ScaleBenchError(f"{' '.join(command[3:])}: exit {out.returncode}: {last}")
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def run_scale_bench(
    scenarios: Sequence[str],
    strategies: Sequence[str],
    episodes: int,
    seed0: int,
    config_dir: Path,
    progress: Callable[[int, int], None] | None = None,
    configs: Sequence[tuple[str, int]] = CONFIGS,
) -> dict[str, Any]:
    """`episodes` in all (the same number per scenario) under each of `configs`. Raises
    ScaleBenchError if a run fails, ValueError if `episodes` is not a multiple of the
    number of scenarios."""
    if episodes % len(scenarios):
        raise ValueError(
            f"--episodes: {episodes} is not a multiple of the {len(scenarios)} scenarios"
        )
    per_scenario = episodes // len(scenarios)
    runs: list[dict[str, Any]] = []
    docs: list[str] = []
    for i, (executor, workers) in enumerate(configs):
        if progress:
            progress(i, len(configs))
        load_before = os.getloadavg()[0]
        doc = _run(
            backtest_command(
                scenarios, strategies, per_scenario, seed0, executor, workers, config_dir
            )
        )
        meta = doc.pop("meta")
        docs.append(json.dumps(doc, sort_keys=True))
        run: dict[str, Any] = {
            "executor": executor,
            "workers": workers,
            "wall_s": meta["wall_s"],
            "episodes_per_s": episodes / meta["wall_s"],
            # other work on the machine slows a run: the 1-minute load before and after
            "load_1m": [load_before, os.getloadavg()[0]],
        }
        if "ray" in meta:
            run["ray"] = meta["ray"]
        runs.append(run)
    if progress:
        progress(len(configs), len(configs))
    wall = {(r["executor"], r["workers"]): r["wall_s"] for r in runs}
    overhead = {
        str(n): wall[("ray", n)] / wall[("local", n)] - 1.0
        for _, n in configs
        if ("ray", n) in wall and ("local", n) in wall
    }
    store = [r["ray"]["object_store_bytes"] for r in runs if "ray" in r]
    return {
        "scenarios": list(scenarios),
        "strategies": list(strategies),
        "episodes": episodes,
        "seed0": seed0,
        "cpus": os.cpu_count(),
        "runs": runs,
        "ray_overhead": overhead,
        "target_overhead": TARGET_OVERHEAD,
        "within_target": overhead["2"] <= TARGET_OVERHEAD if "2" in overhead else None,
        "object_store_bytes": max(store) if store else None,
        "rows_identical": len(set(docs)) == 1,
    }
