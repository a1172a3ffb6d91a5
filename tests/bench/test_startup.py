"""bench startup: each run a new process in a scratch folder, medians of the warm runs
after one run per strategy set, the child's CPU time, the targets beside the figures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench import startup


def _sleeper(seconds: dict[str, float], seen: list[tuple[str, Path]]) -> startup.Command:
    """A stand-in for `simulate`: sleeps (wall, no CPU) as long as its set says, and
    writes its working folder where `out` points."""

    def command(scenario: str, strategies: str, out: Path, config_dir: Path) -> list[str]:
        seen.append((strategies, out))
        code = f"import os, time; time.sleep({seconds[strategies]}); open({str(out)!r}, 'w')"
        return [sys.executable, "-c", code]

    return command


def test_medians_of_the_warm_runs_per_set_with_targets(tmp_path):
    seen: list[tuple[str, Path]] = []
    cmd = _sleeper({"twap": 0.05, "ml": 0.3}, seen)
    doc = startup.run_startup_bench("news-shock", ["twap", "ml"], 3, tmp_path, cmd)
    # one filling run per set, then the sets interleaved
    assert [s for s, _ in seen] == ["twap", "ml"] + ["twap", "ml"] * 3
    assert len({out.parent for _, out in seen}) == 1 and not seen[0][1].parent.exists()
    twap, ml = doc["rows"]
    assert twap["strategies"] == "twap" and len(twap["wall_s"]) == 3
    assert 0.05 <= twap["median_wall_s"] < ml["median_wall_s"]
    assert ml["median_wall_s"] >= 0.3
    assert 0 < ml["median_cpu_s"] < ml["median_wall_s"]  # sleeping costs no CPU
    assert twap["target_wall_s"] == 0.5 and twap["meets_target"] is True
    assert ml["target_wall_s"] == 1.0
    assert len(doc["load_before"]) == 3 and doc["runs"] == 3


def test_a_failing_run_names_its_command_and_error(tmp_path):
    def command(scenario: str, strategies: str, out: Path, config_dir: Path) -> list[str]:
        return [sys.executable, "-c", "import sys; sys.exit('blockroute: error: no such thing')"]

    with pytest.raises(startup.StartupBenchError, match="exited 1: blockroute: error: no such"):
        startup.run_startup_bench("calm", ["twap"], 1, tmp_path, command)


def test_the_command_is_the_user_s_simulate(tmp_path):
    cmd = startup.simulate_command("calm", "sor,ml", tmp_path / "o.json", tmp_path)
    assert cmd[0] == sys.executable
    assert cmd[1:] == [
        "-m",
        "router.cli",
        "--config-dir",
        str(tmp_path),
        "simulate",
        "--scenario",
        "calm",
        "--strategies",
        "sor,ml",
        "--json",
        str(tmp_path / "o.json"),
    ]


def test_the_runs_keep_python_s_bytecode_cache_as_a_user_does(tmp_path, monkeypatch):
    # a sandbox's PYTHONDONTWRITEBYTECODE would have every start compile the project's
    # modules again: not the warm start the figures claim
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    flags = tmp_path / "flags"

    def command(scenario: str, strategies: str, out: Path, config_dir: Path) -> list[str]:
        code = f"import sys; open({str(flags)!r}, 'a').write(str(sys.dont_write_bytecode))"
        return [sys.executable, "-c", code]

    startup.run_startup_bench("calm", ["twap"], 2, tmp_path, command)
    assert flags.read_text() == "False" * 3
