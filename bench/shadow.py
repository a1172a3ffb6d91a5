"""What shadow mode adds to the desk's decisions (`blockroute bench shadow`).

The same `ml` parents run on the desk three times per round: with no challenger, with a
byte-identical challenger of every family (dealer, fill, slicer) beside the champions,
as the service's hot swap puts them (router.registry, router.shadow), and with
challengers whose answers differ (as a retrained version's do: the dealer models'
P(best) reversed, the fill model's P(fill) scaled to 30%, the learned pace served; a
differing P(fill) makes the lit decision work out the challenger's venue split too,
which an identical one is spared). The desk runs on a
clock the benchmark moves one simulated second at a time from the same instant, so both
runs make the same decisions (the champion's are unchanged by shadowing; the tests hold
that) and their latencies compare step for step. A step is what the desk's decision
latency histogram times (`blockroute_decision_latency_seconds`: a decision, the placing
half of a re-placing one, a sweep, the finish), here kept one by one. Rounds alternate
the two runs, so that a machine busy elsewhere weighs on both alike.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from models.catalog import FAMILIES
from models.serving.artifacts import MODELS_DIR, family_files
from router.desk import Desk, DeskConfig
from router.desk.sim import SimMarkets
from router.desk_api import NewOrder
from router.domain import NANOS_PER_SECOND, Nanos, Side
from router.execution import Scheduler
from router.journal import Journal
from router.registry import ModelRegistry
from router.service import tune_gc

T0 = 1_800_000_000_000_000_000  # the service clock at each run's start
SPEED = 400.0


MODES = ("none", "same", "other")


def altered(folder: Path, family: str) -> Path:
    """`folder`/other-<family>: the shipped files of `family` with answers that differ:
    the dealer models' P(best quote) turned upside down (another panel ranks first),
    the fill model's P(fill) scaled to 30% (other queue outflows, so other splits), and
    the slicer's validation rewritten so that its learned pace is served (where the
    shipped one runs the even pace)."""
    out = folder / f"other-{family}"
    out.mkdir(parents=True, exist_ok=True)
    for path in family_files(family, MODELS_DIR):
        shutil.copy(path, out / path.name)
    meta_path = out / f"{family}.meta.json"
    meta = json.loads(meta_path.read_text())
    if family == "dealer":
        meta["models"]["best"]["calibration"] = {"x": [0.0, 1.0], "y": [1.0, 0.0]}
    elif family == "fill":
        meta["models"]["passive"]["calibration"] = {"x": [0.0, 1.0], "y": [0.0, 0.3]}
    else:
        meta["validation"].update(diff_is_bps=-10.0, diff_stderr_bps=1.0)
    meta_path.write_text(json.dumps(meta))
    return out


def _registry(folder: Path, mode: str) -> ModelRegistry:
    """The shipped models as version 1, and (but for mode "none") a challenger of each
    family loaded beside them as its version 2: a second copy ("same"), or one whose
    answers differ ("other")."""
    registry = ModelRegistry(versions=dict.fromkeys(FAMILIES, 1))
    if mode != "none":
        for family in FAMILIES:
            files = MODELS_DIR if mode == "same" else altered(folder, family)
            loaded = ModelRegistry.load_family_now(family, files)
            registry.set_challenger(family, 2, files, loaded, time.perf_counter)
    return registry


def _keep_steps(desk: Desk, into: list[tuple[float, bool]]) -> None:
    """Keep the wall time of every step of a working parent's plan in `into` (seconds),
    as the desk's decision-latency histogram times it (DeskMetrics.timed), and whether
    it asked a challenger."""
    metrics = desk._metrics
    book = desk._projector.shadow

    def timed(schedule: Scheduler, strategy: str, working: Callable[[], bool]) -> Scheduler:
        def timed_schedule(at_ns: Nanos, action: Callable[[], None]) -> None:
            def timed_action() -> None:
                if not working():
                    action()
                    return
                asked = book.askings
                start = time.perf_counter()
                try:
                    action()
                finally:
                    into.append((time.perf_counter() - start, book.askings > asked))

            schedule(at_ns, timed_action)

        return timed_schedule

    metrics.timed = timed  # type: ignore[method-assign]


async def _run(folder: Path, name: str, parents: int, horizon_s: int, mode: str) -> Any:
    served = _registry(folder, mode)
    config = DeskConfig(symbols={"QDI": "calm"}, sim_speed=SPEED)
    journal = Journal.open(f"sqlite:///{folder / name}.db")
    now = [T0]
    desk = Desk(config, journal, lambda: now[0], SimMarkets(config, models=served), models=served)
    steps: list[tuple[float, bool]] = []
    _keep_steps(desk, steps)
    desk.start()
    try:
        for i in range(parents):
            desk.submit(
                NewOrder(
                    "BENCH",
                    f"S{i}",
                    "QDI",
                    Side.SELL if i % 2 else Side.BUY,
                    100_000 + 50_000 * (i % 3),
                    expire_ns=T0 + horizon_s * NANOS_PER_SECOND,
                    strategy="ml",
                )
            )
        tune_gc()  # as the service runs its decisions
        for _ in range(horizon_s + 60):
            now[0] += NANOS_PER_SECOND
            desk._pump.advance(now[0])
        await desk.sync()
        return steps, desk.shadow_report()
    finally:
        await desk.stop()
        journal.close()


def _stats(xs: np.ndarray) -> dict[str, float]:
    s = sorted(float(x) for x in xs)
    return {
        "mean_us": statistics.fmean(s),
        "p50_us": statistics.median(s),
        "p99_us": s[min(len(s) - 1, int(0.99 * len(s)))],
    }


def run_shadow_bench(parents: int = 4, horizon_s: int = 1800, rounds: int = 3) -> dict[str, Any]:
    load_before = os.getloadavg()

    async def main() -> tuple[dict[str, list[Any]], dict[str, Any]]:
        steps: dict[str, list[Any]] = {mode: [] for mode in MODES}
        reports: dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix="blockroute-bench-shadow-") as tmp:
            folder = Path(tmp)
            await _run(folder, "warm", 1, 300, "other")  # compiled code, caches
            for r in range(rounds):
                for mode in MODES:
                    got, reports[mode] = await _run(folder, f"{mode}{r}", parents, horizon_s, mode)
                    steps[mode].extend(got)
        return steps, reports

    steps, reports = asyncio.run(main())
    if len({len(xs) for xs in steps.values()}) != 1:
        raise RuntimeError("the runs with and without challengers took different steps")
    base_us = np.array([x for x, _ in steps["none"]]) * 1e6
    doc: dict[str, Any] = {
        "parents": parents,
        "horizon_s": horizon_s,
        "rounds": rounds,
        "steps": len(base_us),
        "without": _stats(base_us),
    }
    for mode in ("same", "other"):
        us = np.array([x for x, _ in steps[mode]]) * 1e6
        # the steps that asked a challenger; the same steps of the run without one asked
        # the champion alone
        asked = np.array([a for _, a in steps[mode]])
        added = us - base_us  # step by step: the same decision with and without
        doc[mode] = {
            "steps_asking": int(asked.sum()),
            "every_step": _stats(us),
            "asking_without": _stats(base_us[asked]),
            "asking_with": _stats(us[asked]),
            "added_mean_us": float(added.mean()),
            "added_asking_mean_us": float(added[asked].mean()),
            "added_asking_p50_us": float(np.median(added[asked])),
            "challenger_calls": {
                f["family"]: {
                    "decisions": f["decisions"],
                    "agreement_rate": f["agreement_rate"],
                    "p50_us": f["latency_p50_us"],
                    "p99_us": f["latency_p99_us"],
                }
                for f in reports[mode]["families"]
            },
        }
    return doc | {
        "loadavg_before": list(load_before),
        "loadavg_after": list(os.getloadavg()),
        "cpus": os.cpu_count(),
    }
