import json

import pytest

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


@pytest.mark.requires_extra("train", "gymnasium")
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


def test_bench_pace_refuses_an_unknown_rule_before_running(capsys):
    assert run_cli("bench", "pace", "--scenarios", "calm", "--rules", "jump-follow,hunch") == 2
    err = capsys.readouterr().err
    assert "--rules" in err and "hunch" in err and "jump-follow" in err.split("known:")[1]


def test_bench_risk_transfer_prints_a_row_per_size(monkeypatch, capsys):
    import bench.risk_transfer

    row = {
        "size_adv": 0.1,
        "qty": 200_000,
        "episodes": 2,
        "answered": 2,
        "best_quote_bps": 36.84,
        "best_quote_bps_stderr": float("nan"),
        "quoted_share": 0.9,
        "fill_bps": 37.46,
        "twap_is_bps": 16.62,
        "twap_is_bps_stderr": 1.25,
        "twap_is_bps_std": 49.61,
        "premium_bps": 20.22,
        "premium_bps_stderr": 0.5,
    }
    doc = {"scenario": "calm", "horizon_s": 10800.0, "panel_size": 3, "seeds": [1000, 1000]}
    doc["rows"] = [row]
    monkeypatch.setattr(bench.risk_transfer, "run_risk_transfer", lambda *a, **k: doc)
    assert run_cli("bench", "risk-transfer", "--seeds", "1") == 0
    # each line's cells, one space apart (the table's padding is the console's)
    lines = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert lines[0].startswith("risk transfer vs agency, calm: best of 3 quotes")
    assert "over 3 h" in lines[0] and "seeds 1000-1000" in lines[0]
    header = "size qty best quote +-se covers fill TWAP IS +-se TWAP sd premium +-se"
    assert lines[1:] == [header, "10% 200,000 36.8 nan 90% 37.5 16.6 1.2 49.6 20.2 0.5"]


def test_bench_scale_without_ray_names_the_extra(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    assert run_cli("bench", "scale", "--episodes", "2") == 2
    err = capsys.readouterr().err
    assert "bench scale needs the ray extra" in err and len(err.splitlines()) == 1


@pytest.mark.requires_extra("ray", "ray")
def test_bench_scale_refuses_bad_input_before_any_run(capsys):
    assert run_cli("bench", "scale", "--episodes", "3") == 2  # two scenarios by default
    assert "multiple of the 2 scenarios" in capsys.readouterr().err
    assert run_cli("bench", "scale", "--scenarios", "nowhere") == 2
    assert "nowhere" in capsys.readouterr().err
    assert run_cli("bench", "scale", "--strategies", "twap,nothing") == 2
    assert "nothing" in capsys.readouterr().err


@pytest.mark.requires_extra("ray", "ray")
def test_bench_scale_prints_a_row_per_run_and_writes_the_document(monkeypatch, capsys):
    import bench.scale

    runs = [
        {
            "executor": e,
            "workers": n,
            "wall_s": w,
            "episodes_per_s": 200 / w,
            "cpu_s": c,
            "load_1m": [1, 1],
        }
        for e, n, w, c in (
            ("local", 1, 200.0, 210.0),
            ("local", 2, 100.0, 212.0),
            ("ray", 1, 210.0, 220.0),
            ("ray", 2, 108.0, 222.6),
        )
    ]
    for r in runs[2:]:
        r["ray"] = {"connect_s": 2.5, "tasks": 30, "object_store_bytes": 1_500_000}
    doc = {
        "scenarios": ["calm", "news-shock"],
        "strategies": ["twap", "sor"],
        "episodes": 200,
        "repeat": 1,
        "cpus": 2,
        "runs": runs,
        "ray_overhead": {"1": 0.05, "2": 0.08},
        "object_store_bytes": 1_500_000,
        "rows_identical": True,
    }
    monkeypatch.setattr(bench.scale, "run_scale_bench", lambda *a, **k: doc)
    assert run_cli("bench", "scale") == 0
    out = capsys.readouterr().out
    assert "+8%" in out and "+5%" in out and "identical" in out and "1.50 MB" in out
    assert "222.6" in out and "+5%" in out.splitlines()[-4]  # CPU: 222.6 s against 212.0
    assert run_cli("bench", "scale", "--json", "-") == 0
    assert json.loads(capsys.readouterr().out) == doc


def test_bench_startup_refuses_bad_input_before_any_run(capsys):
    assert run_cli("bench", "startup", "--strategies", "twap;nope") == 2
    assert "unknown strategy 'nope'" in capsys.readouterr().err
    assert run_cli("bench", "startup", "--scenario", "nowhere") == 2
    assert "unknown scenario 'nowhere'" in capsys.readouterr().err
    assert run_cli("bench", "startup", "--strategies", " ; ") == 2
    assert "--strategies: nothing to time" in capsys.readouterr().err


def test_bench_lead_refuses_a_cap_outside_a_share_and_an_unknown_scenario(capsys):
    assert run_cli("bench", "lead", "--caps", "0.35,1.5") == 2
    assert "--caps: 1.5" in capsys.readouterr().err
    assert run_cli("bench", "lead", "--caps", "0.35,x") == 2
    assert "'x' is not a number" in capsys.readouterr().err
    assert run_cli("bench", "lead", "--scenarios", "nowhere") == 2
    assert "nowhere" in capsys.readouterr().err


def test_bench_lead_prints_a_row_per_cap_and_side(monkeypatch, capsys):
    import bench.lead

    stat = {"mean_bps": 1.0, "stderr_bps": 0.5, "sd_bps": 3.0}
    cap = {
        "is": stat,
        "vs_best_baseline": stat,
        "vs_shipped": stat,
        "mean_lead": 0.1,
        "venue_mix": {"lit": 0.5, "dark": 0.2, "rfq": 0.3},
        "dealer_pnl": {"mean_bps": 2.0, "stderr_bps": 1.5, "sd_bps": 3.0},
    }
    row = {
        "scenario": "calm",
        "side": "both",
        "episodes": 2,
        "baselines": {"twap": stat},
        "best_baseline": "twap",
        "caps": [dict(cap, cap=0.35), dict(cap, cap=0.05)],
    }
    doc = {"router": "sor-ml", "caps": [0.35, 0.05], "rows": [row]}
    monkeypatch.setattr(bench.lead, "run_lead_study", lambda *a, **k: doc)
    assert run_cli("bench", "lead", "--scenarios", "calm", "--seeds", "1") == 0
    out = capsys.readouterr().out
    assert "vs cap 0.35" in out and "30%/20%/50%" in out and out.count("calm") == 2
    assert "+2.0 +- 1.5" in out  # the dealers' P&L


def test_bench_fix_passes_its_client_and_prints_it(monkeypatch, capsys):
    # the benchmark itself is tests/bench's: here only the options and the output
    import bench.fix

    calls = []
    doc = {"orders": 5, "orders_per_s": 1.0, "ack_p50_ms": 1.0, "ack_p99_ms": 2.0}

    def fake(orders, rate, **kw):
        calls.append((orders, rate, kw["client"], kw["real_desk"]))
        return {**doc, "client": kw["client"]}

    monkeypatch.setattr(bench.fix, "fix_bench", fake)
    assert run_cli("bench", "fix", "--orders", "5", "--desk", "instant", "--client", "inproc") == 0
    assert calls == [(5, None, "inproc", False)]
    assert "client inproc" in capsys.readouterr().out
    assert run_cli("bench", "fix", "--orders", "5", "--json", "-") == 0
    assert calls[-1] == (5, None, "process", True)
    assert json.loads(capsys.readouterr().out)["client"] == "process"


def test_bench_fix_refuses_an_unknown_client(capsys):
    assert run_cli("bench", "fix", "--client", "thread") == 2
    err = capsys.readouterr().err
    assert "argument --client" in err and len(err.strip().splitlines()) == 1
