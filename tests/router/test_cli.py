import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from router.cli import main
from router.config import DEFAULT_CONFIG_DIR


def run_cli(*args: str) -> int:
    return main(list(args))


def test_simulate_news_shock_json_follows_the_contract(tmp_path: Path, capsys):
    out = tmp_path / "r.json"
    assert run_cli("simulate", "--scenario", "news-shock", "--json", str(out)) == 0
    doc = json.loads(out.read_text())
    assert set(doc) == {"scenario", "seed", "parent", "results"}
    assert doc["parent"]["symbol"] == "QDI" and doc["parent"]["side"] == "sell"
    assert doc["parent"]["qty"] == 500_000 and doc["parent"]["horizon_s"] == 10800
    assert 95 < doc["parent"]["arrival_mid"] < 105
    (r,) = doc["results"]
    assert set(r) == {
        "strategy",
        "is_bps",
        "filled_qty",
        "avg_price",
        "vwap_slippage_bps",
        "n_child_orders",
        "completion",
        "venue_mix",
    }
    assert r["strategy"] == "twap" and r["filled_qty"] == 500_000 and r["completion"] == 1.0
    assert set(r["venue_mix"]) == {"lit", "dark", "rfq"}
    table = capsys.readouterr().out
    assert "twap" in table and "IS bps" in table


def test_same_seed_same_result_different_seed_differs(capsys):
    def once(seed: str) -> dict:
        assert (
            run_cli(
                "simulate",
                "--scenario",
                "calm",
                "--seed",
                seed,
                "--horizon",
                "20m",
                "--qty",
                "30000",
                "--json",
                "-",
            )
            == 0
        )
        return json.loads(capsys.readouterr().out)

    a, b, c = once("5"), once("5"), once("6")
    assert a == b
    assert a["results"][0]["is_bps"] != c["results"][0]["is_bps"]


def test_overrides(capsys):
    assert (
        run_cli(
            "simulate",
            "--scenario",
            "calm",
            "--qty",
            "20000",
            "--side",
            "buy",
            "--horizon",
            "15m",
            "--json",
            "-",
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["parent"] == {**doc["parent"], "qty": 20000, "side": "buy", "horizon_s": 900.0}
    assert doc["results"][0]["filled_qty"] == 20000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "nope"], "unknown scenario 'nope'"),
        (["--scenario", "calm", "--qty", "-5"], "quantity must be > 0"),
        (["--scenario", "calm", "--horizon", "0"], "horizon must be > 0"),
        (["--scenario", "calm", "--horizon", "soon"], "not a duration"),
        (["--scenario", "calm", "--side", "short"], "side must be 'buy' or 'sell'"),
        (["--scenario", "calm", "--strategies", "magic"], "unknown strategy 'magic'"),
        (["--scenario", "calm", "--horizon", "9h"], "past the session close"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "r.json"
    assert run_cli("simulate", *args, "--json", str(out)) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_malformed_config_exits_2(tmp_path, capsys):
    cfg = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, cfg)
    (cfg / "scenarios" / "calm.toml").write_text("this is not toml = = \n")
    assert run_cli("--config-dir", str(cfg), "simulate", "--scenario", "calm") == 2
    err = capsys.readouterr().err.strip()
    assert "calm.toml: not valid TOML" in err and len(err.splitlines()) == 1


def test_console_script_runs_and_reports_usage_errors():
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "router.cli",
            "simulate",
            "--scenario",
            "calm",
            "--horizon",
            "10m",
            "--qty",
            "10000",
        ],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "twap" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "router.cli", "simulate"], capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert "--scenario" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_bench_book_json(capsys):
    assert run_cli("bench", "book", "--events", "20000", "--no-python", "--json", "-") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["events"] == 20000 and doc["events_per_s"] > 0 and doc["seconds"] > 0
