"""Start-up and wall time of whole `blockroute simulate` commands, as a user runs them.

Each run is a new process (`python -m router.cli simulate --scenario S --strategies X
--json FILE`) in a scratch folder, so that it pays what a user pays: the imports, the
compiled kernels' loading, the models, the desk's dealer history, the run store
(`blockroute.db` there, as by default) and the simulation itself. One run per strategy
set first fills the caches (Python's bytecode, numba's, the user cache of
router/cache.py, the database's tables); the figures are the medians of the `runs`
after it, wall time and the child's CPU time (user + system), with the load average
before and after: on a shared machine the wall time is the CPU time stretched by the
load.

The targets of issue 29 (warm caches, these two cores) are kept here, beside the
figures, not in a timed test.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import blockroute_command

#: wall-time targets (s), warm caches: `simulate --scenario news-shock --strategies X`
TARGETS_S = {"twap": 0.5, "all": 1.5, "ml": 1.0}

Command = Callable[[str, str, Path, Path], list[str]]


class StartupBenchError(RuntimeError):
    """A timed command failed; the message holds the end of its standard error."""


def simulate_command(scenario: str, strategies: str, out: Path, config_dir: Path) -> list[str]:
    """The command a user runs, on this interpreter and this checkout's code."""
    return blockroute_command(
        *("simulate", "--scenario", scenario, "--strategies", strategies),
        *("--json", str(out)),
        config_dir=config_dir,
    )


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall s, the child's user + system CPU s) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise StartupBenchError(f"{' '.join(cmd[2:])} exited {done.returncode}: {tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def run_startup_bench(
    scenario: str,
    strategy_sets: Sequence[str],
    runs: int,
    config_dir: Path,
    command: Command = simulate_command,
) -> dict[str, Any]:
    """Median wall and CPU time of `runs` warm runs of each strategy set, the sets
    interleaved run by run (so that a change of the machine's load falls on all)."""
    # the children import this checkout's code whatever is installed
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
    # Python's bytecode cache on, as a user has it: with PYTHONDONTWRITEBYTECODE set
    # (some sandboxes and containers set it) every start compiles the project's modules
    # from source again, about 0.15 s here, and "warm caches" would not be warm
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        "PYTHONPATH": path,
    }
    load_before = os.getloadavg()
    walls: dict[str, list[float]] = {s: [] for s in strategy_sets}
    cpus: dict[str, list[float]] = {s: [] for s in strategy_sets}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        cwd = Path(tmp)
        out = cwd / "out.json"
        for s in strategy_sets:  # the caches filled, the database created
            _run(command(scenario, s, out, config_dir), cwd, env)
        for _ in range(runs):
            for s in strategy_sets:
                wall, cpu = _run(command(scenario, s, out, config_dir), cwd, env)
                walls[s].append(wall)
                cpus[s].append(cpu)
    load_after = os.getloadavg()
    rows = []
    for s in strategy_sets:
        wall = statistics.median(walls[s])
        target = TARGETS_S.get(s)
        rows.append(
            {
                "strategies": s,
                "median_wall_s": wall,
                "median_cpu_s": statistics.median(cpus[s]),
                "wall_s": walls[s],
                "cpu_s": cpus[s],
                "target_wall_s": target,
                "meets_target": None if target is None else wall <= target,
            }
        )
    return {
        "scenario": scenario,
        "runs": runs,
        "cpus": os.cpu_count(),
        "load_before": list(load_before),
        "load_after": list(load_after),
        "rows": rows,
    }
