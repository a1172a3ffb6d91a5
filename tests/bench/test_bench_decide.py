"""The decision-latency benchmark (bench/decide.py) through its CONTRACT.md command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router.cli import main


def test_bench_decide_takes_n_and_writes_the_contract_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "decide.json"
    assert main(["bench", "decide", "--n", "40", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["n"] == 40
    assert 0 < doc["p50_us"] <= doc["p99_us"]
    for part in ("slicer", "fill_model", "dealer_panel"):
        assert 0 < doc[part]["p50_us"] <= doc[part]["p99_us"], part
    assert "40 decisions" in capsys.readouterr().out


def test_bench_decide_refuses_a_bad_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "decide", "--n", "0"]) == 2
    assert "--n/--iterations: must be > 0" in capsys.readouterr().err
