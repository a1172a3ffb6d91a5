"""`blockroute bench scale`: the same backtest on the local pool and on Ray."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from bench.scale import CONFIGS, RAY_EXECUTORS, SessionCpu, run_scale_bench
from router.config import DEFAULT_CONFIG_DIR


@pytest.mark.requires_extra("ray", "ray")
def test_every_configuration_runs_the_same_rows_and_ray_reports_its_share():
    seen: list[tuple[int, int]] = []
    doc = run_scale_bench(
        ["calm"], ["twap", "sor"], 2, 1000, DEFAULT_CONFIG_DIR, progress=lambda *p: seen.append(p)
    )
    assert [(r["executor"], r["workers"]) for r in doc["runs"]] == list(CONFIGS)
    assert doc["rows_identical"] is True
    assert seen[-1] == (5, 5)
    for run in doc["runs"]:
        assert run["episodes_per_s"] == pytest.approx(2 / run["wall_s"])
        assert ("ray" in run) == (run["executor"] in RAY_EXECUTORS)
        assert run["wall_s_all"] == [run["wall_s"]]  # one round
        # the whole process tree's: at least the interpreter's start and the episodes
        assert run["cpu_s"] is None or run["cpu_s"] > 1.0
    on_ray = [r["ray"] for r in doc["runs"] if "ray" in r]
    assert [r["cpus"] for r in on_ray] == [1, 2, 2]
    # the scenario and calm's desk history (sor asks dealers), in the store once
    assert doc["object_store_bytes"] == max(r["object_store_bytes"] for r in on_ray) > 10_000
    assert set(doc["ray_overhead"]) == {"1", "2"}
    if doc["runs"][0]["cpu_s"] is not None:  # where there is /proc
        assert set(doc["ray_cpu_overhead"]) == {"1", "2"}
    assert doc["within_target"] == (doc["ray_overhead"]["2"] <= doc["target_overhead"])
    # the standing head: its address given to the run, its processes' CPU counted
    assert set(doc["ray_cluster_overhead"]) == {"2"}
    assert doc["within_target_cluster"] == (
        doc["ray_cluster_overhead"]["2"] <= doc["target_overhead"]
    )


def test_the_episodes_must_split_evenly_over_the_scenarios():
    with pytest.raises(ValueError, match="multiple of the 2 scenarios"):
        run_scale_bench(["calm", "news-shock"], ["twap"], 3, 1000, DEFAULT_CONFIG_DIR)


def test_session_cpu_since_now_leaves_out_what_was_spent_before():
    busy = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nt = time.process_time()\n"
            "while time.process_time() - t < 0.6: pass\ntime.sleep(30)",
        ],
        start_new_session=True,
    )
    try:
        time.sleep(2.0)  # its 0.6 s of CPU spent, now asleep
        everything, since = SessionCpu(busy.pid), SessionCpu(busy.pid, since_now=True)
        everything.sample()
        since.sample()
        if everything.seconds is None:
            pytest.skip("no /proc here")
        assert everything.seconds >= 0.5
        assert since.seconds is not None and since.seconds < 0.1
    finally:
        busy.kill()
        busy.wait()
