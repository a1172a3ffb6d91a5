"""Wall time and memory of one full scenario simulation with one strategy."""

from __future__ import annotations

import resource
import statistics
import time
import tracemalloc
from pathlib import Path
from typing import Any

from router.app import run_strategy
from simulators.scenario import load_scenario


def run_scenario_bench(
    scenario: str, strategy: str, seed: int, repeat: int, config_dir: Path
) -> dict[str, Any]:
    sc = load_scenario(scenario, config_dir)
    t = time.perf_counter()
    run_strategy(sc, seed, strategy)  # the first run also loads the compiled kernels
    first = time.perf_counter() - t
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        run_strategy(sc, seed, strategy)
        times.append(time.perf_counter() - t)
    # traced separately: tracemalloc slows the run it watches
    tracemalloc.start()
    run_strategy(sc, seed, strategy)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "scenario": scenario,
        "strategy": strategy,
        "seed": seed,
        "repeat": repeat,
        "seconds": min(times),
        "median_seconds": statistics.median(times),
        "first_seconds": first,
        "peak_traced_mb": peak / 2**20,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
