"""The shadow-mode benchmark (bench/shadow.py): the same desk steps with and without
challengers, and what the challengers' own calls took."""

from __future__ import annotations

import pytest

from bench.shadow import run_shadow_bench
from router.cli import main


def test_the_same_steps_are_timed_with_and_without_challengers() -> None:
    doc = run_shadow_bench(parents=2, horizon_s=300, rounds=1)
    assert 0 < doc["without"]["p50_us"] <= doc["without"]["p99_us"]
    for mode in ("same", "other"):
        part = doc[mode]
        # the asking steps of 2 parents' decisions over 5 minutes, paired one by one
        assert doc["steps"] > part["steps_asking"] > 0
        for key in ("every_step", "asking_without", "asking_with"):
            assert 0 < part[key]["p50_us"] <= part[key]["p99_us"], (mode, key)
        calls = part["challenger_calls"]
        assert set(calls) == {"dealer", "fill", "slicer"}
        for family in ("fill", "slicer"):  # asked at every placing decision, every pace
            assert calls[family]["decisions"] > 0
            assert 0 < calls[family]["p50_us"] <= calls[family]["p99_us"]
    assert doc["same"]["challenger_calls"]["fill"]["agreement_rate"] == 1.0
    assert doc["other"]["challenger_calls"]["fill"]["agreement_rate"] < 1.0
    assert len(doc["loadavg_before"]) == 3 and doc["cpus"] >= 1


def test_bench_shadow_refuses_a_bad_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "shadow", "--rounds", "0"]) == 2
    assert "--rounds: must be > 0" in capsys.readouterr().err
