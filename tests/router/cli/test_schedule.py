import json

import pytest

from router.cli import main


def run_cli(*args: str) -> int:
    return main(list(args))


def test_schedule_ac_json(capsys):
    args = ["--qty", "1e6", "--horizon", "5", "--periods", "5", "--sigma", "0.95"]
    args += ["--eta", "2.5e-6", "--gamma", "2.5e-7", "--epsilon", "0.0625"]
    assert run_cli("schedule", "ac", *args, "--risk-aversion", "1e-6", "--json", "-") == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"holdings", "trades", "kappa", "expected_cost", "variance"}
    assert doc["holdings"][0] == 1e6 and doc["holdings"][-1] == 0
    assert sum(doc["trades"]) == pytest.approx(1e6)
    assert doc["kappa"] == pytest.approx(0.6, abs=0.01)  # the paper's example: about 0.6/day


def test_schedule_ac_prints_every_period_and_the_summary(capsys):
    args = ["--qty", "1e6", "--horizon", "5", "--periods", "5", "--sigma", "0.95"]
    args += ["--eta", "2.5e-6", "--gamma", "2.5e-7", "--epsilon", "0.0625"]
    assert run_cli("schedule", "ac", *args, "--risk-aversion", "1e-6") == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].split() == ["period", "time", "holdings", "trade"]
    assert lines[1].split() == ["0", "0", "1,000,000.00", "-"]
    assert lines[6].split()[:3] == ["5", "5", "0.00"]
    assert "kappa = 0.607076" in text
    assert "E = 911,226.99" in text  # the value the sums give
    assert "V = " in text


def test_schedule_ac_bad_parameter_exits_2(capsys):
    args = ["--qty", "1e6", "--horizon", "5", "--periods", "5", "--sigma", "0.95"]
    args += ["--eta", "1e-9", "--gamma", "2.5e-7", "--epsilon", "0.0625"]
    assert run_cli("schedule", "ac", *args, "--risk-aversion", "1e-6") == 2
    err = capsys.readouterr().err
    assert "eta" in err and len(err.strip().splitlines()) == 1
