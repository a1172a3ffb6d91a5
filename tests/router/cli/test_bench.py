import json

from router.cli import main


def run_cli(*args: str) -> int:
    return main(list(args))


def test_bench_book_json(capsys):
    assert run_cli("bench", "book", "--events", "20000", "--no-python", "--json", "-") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["events"] == 20000 and doc["events_per_s"] > 0 and doc["seconds"] > 0


def test_bench_risk_transfer_writes_one_json_document(monkeypatch, capsys):
    # the benchmark itself is tests/bench's: here only what the command does with its doc
    import bench.risk_transfer

    doc = {"scenario": "calm", "rows": []}
    monkeypatch.setattr(bench.risk_transfer, "run_risk_transfer", lambda *a, **k: doc)
    assert run_cli("bench", "risk-transfer", "--seeds", "1", "--json", "-") == 0
    assert json.loads(capsys.readouterr().out) == doc


def test_bench_drift_writes_one_json_document(monkeypatch, capsys):
    import bench.drift

    doc = {"regimes": 1, "pooled": {}}
    monkeypatch.setattr(bench.drift, "run_drift_study", lambda *a, **k: doc)
    assert run_cli("bench", "drift", "--regimes", "1", "--json", "-") == 0
    assert json.loads(capsys.readouterr().out) == doc


def test_bench_drift_refuses_a_negative_flow_count(capsys):
    assert run_cli("bench", "drift", "--flow-regimes", "-1") == 2
    assert "--flow-regimes" in capsys.readouterr().err


def test_bench_pace_refuses_an_unknown_scenario(capsys):
    assert run_cli("bench", "pace", "--scenarios", "calm,nowhere") == 2
    assert "nowhere" in capsys.readouterr().err
