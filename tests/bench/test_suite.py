"""`blockroute bench all`: the suite in one file, and each figure against an earlier run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.suite import SUITE, SuiteError, compare, load_run, names, run_suite


def _run(figures: dict[str, tuple[float, str]]) -> dict:
    return {
        "figures": {
            name: {"value": v, "unit": "x", "better": better}
            for name, (v, better) in figures.items()
        }
    }


def test_a_figure_regresses_only_when_it_moves_the_wrong_way_by_more_than_the_tolerance():
    old = _run(
        {"a": (100.0, "higher"), "b": (10.0, "lower"), "c": (10.0, "lower"), "d": (1, "lower")}
    )
    new = _run(
        {"a": (89.0, "higher"), "b": (10.9, "lower"), "c": (12.0, "lower"), "e": (2, "lower")}
    )
    rows = {r["figure"]: r for r in compare(old, new, tolerance=0.10)}
    assert rows["a"]["ratio"] == pytest.approx(0.89) and rows["a"]["regressed"]  # 11% slower
    assert rows["b"]["ratio"] == pytest.approx(1.09) and not rows["b"]["regressed"]  # within 10%
    assert rows["c"]["regressed"]  # 20% more time
    # a figure only one run has: shown, not compared
    assert rows["e"]["old"] is None and rows["e"]["ratio"] is None and not rows["e"]["regressed"]
    assert rows["d"]["new"] is None and rows["d"]["ratio"] is None
    # faster is never a regression, however large
    assert not compare(old, _run({"a": (500.0, "higher")}))[0]["regressed"]


def test_a_file_that_is_not_a_suite_run_is_refused_by_name(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"events_per_s": 1}))
    with pytest.raises(SuiteError, match="not a `bench all` file"):
        load_run(path)
    with pytest.raises(SuiteError, match="cannot read"):
        load_run(tmp_path / "missing.json")


def test_every_figure_names_its_benchmark_unit_and_direction():
    assert len(set(names())) == len(SUITE)
    for bench in SUITE:
        assert bench.figures
        for f in bench.figures:
            assert f.name.startswith(bench.name + ".")
            assert f.better in ("higher", "lower") and f.unit


def test_one_benchmark_runs_in_a_process_of_its_own_and_compares_with_itself(tmp_path):
    doc = run_suite(["decide"])
    assert set(doc["benchmarks"]) == {"decide"}
    p50, p99 = doc["figures"]["decide.decision.p50_us"], doc["figures"]["decide.decision.p99_us"]
    assert 0 < p50["value"] <= p99["value"] <= doc["figures"]["decide.decision.p999_us"]["value"]
    assert p50["unit"] == "us" and p50["better"] == "lower"
    rows = compare(doc, doc)
    assert all(r["ratio"] == 1.0 and not r["regressed"] for r in rows)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "router.cli", "bench", "all", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_the_command_refuses_an_unknown_benchmark_and_a_bad_compare_file_before_running(
    tmp_path,
):
    done = _cli("--only", "book,nope")
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .endswith(f"--only: unknown benchmark nope (known: {', '.join(names())})")
    )
    (tmp_path / "bad.json").write_text("[]")
    done = _cli("--only", "book", "--compare", str(tmp_path / "bad.json"))
    assert done.returncode == 2 and "is not a `bench all` file" in done.stderr
