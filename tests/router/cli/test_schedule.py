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


def test_schedule_ac_bad_parameter_exits_2(capsys):
    args = ["--qty", "1e6", "--horizon", "5", "--periods", "5", "--sigma", "0.95"]
    args += ["--eta", "1e-9", "--gamma", "2.5e-7", "--epsilon", "0.0625"]
    assert run_cli("schedule", "ac", *args, "--risk-aversion", "1e-6") == 2
    err = capsys.readouterr().err
    assert "eta" in err and len(err.strip().splitlines()) == 1
