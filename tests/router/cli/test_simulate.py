import json
from pathlib import Path

import pytest

from router.cli import main


def run_cli(*args: str) -> int:
    return main(list(args))


def test_simulate_news_shock_json_follows_the_contract(tmp_path: Path, capsys):
    """The README's first command: with no --strategies, every strategy side by side."""
    from router.strategies import STRATEGIES

    out = tmp_path / "r.json"
    assert run_cli("simulate", "--scenario", "news-shock", "--json", str(out)) == 0
    doc = json.loads(out.read_text())
    assert {"scenario", "seed", "parent", "results"} <= set(doc)
    assert doc["parent"]["symbol"] == "QDI" and doc["parent"]["side"] == "sell"
    assert doc["parent"]["qty"] == 500_000 and doc["parent"]["horizon_s"] == 10800
    assert 95 < doc["parent"]["arrival_mid"] < 105
    assert [r["strategy"] for r in doc["results"]] == list(STRATEGIES)
    for r in doc["results"]:
        assert {
            "strategy",
            "is_bps",
            "filled_qty",
            "avg_price",
            "vwap_slippage_bps",
            "n_child_orders",
            "completion",
            "venue_mix",
        } <= set(r)
        parts = r["is_parts_bps"]
        assert sum(parts.values()) == pytest.approx(r["is_bps"], abs=1e-9)
        assert set(r["venue_mix"]) == {"lit", "dark", "rfq"}
    twap = doc["results"][0]
    assert doc["hindsight"]["is_bps"] < twap["is_bps"]
    assert twap["strategy"] == "twap" and twap["filled_qty"] == 500_000
    assert twap["completion"] == 1.0
    assert twap["dealer_pnl_bps"] is None  # TWAP trades with no dealer
    table = capsys.readouterr().out
    assert "IS bps" in table
    assert all(f"\n{name} " in table for name in STRATEGIES)


@pytest.mark.parametrize(
    ("value", "message"),
    [("all,twap", "'all' stands alone"), ("twap,twap", "given twice"), (",", "no strategy")],
)
def test_strategies_all_stands_alone(capsys, value, message):
    assert run_cli("simulate", "--scenario", "calm", "--strategies", value) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_strategies_all_runs_every_strategy_in_backtest_too(capsys):
    from router.strategies import STRATEGIES

    args = ["--scenarios", "calm", "--strategies", "all", "--episodes", "1"]
    assert run_cli("backtest", *args, "--seed0", "3", "--db-url", "none", "--json", "-") == 0
    doc = json.loads(capsys.readouterr().out)
    assert {r["strategy"] for r in doc["rows"]} == set(STRATEGIES)


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
                "--strategies",
                "twap",
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
            "--strategies",
            "twap",
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
        (["--scenario", "news-shock", "--qty", "5000000"], "more than the"),
        (["--scenario", "news-shock", "--limit", "120"], "above the ask"),
        (["--scenario", "news-shock", "--side", "buy", "--limit", "80"], "below the bid"),
        (["--scenario", "calm", "--limit", "-1"], "limit price must be > 0"),
        (["--scenario", "calm", "--workers", "0"], "--workers: must be > 0"),
        (["--scenario", "calm", "--db-url", "mysql://x@y/z"], "database"),
        (["--scenario", "calm", "--db-url", "sqlite:///no/such/dir/x.db"], "database"),
        (["--scenario", "calm", "--db-url", "postgresql://u:secret@127.0.0.1:1/x"], "database"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "r.json"
    assert run_cli("simulate", *args, "--json", str(out)) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "secret" not in err
    assert not out.exists()


SHORT = ["--scenario", "calm", "--horizon", "10m", "--qty", "20000"]


def test_simulate_stores_runs_and_writes_a_report(tmp_path, capsys):
    from router.store import Store

    db = tmp_path / "runs.db"
    args = [*SHORT, "--strategies", "twap,sor", "--db-url", f"sqlite:///{db}"]
    assert run_cli("simulate", *args, "--report", str(tmp_path / "rep")) == 0
    assert "report:" in capsys.readouterr().out
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "sor" in html and "<svg" in html
    store = Store.open(f"sqlite:///{db}")
    runs = store.runs()
    assert sorted(r.strategy for r in runs) == ["hindsight", "sor", "twap"]
    sor = next(r for r in runs if r.strategy == "sor")
    fills = store.fills(sor.run_id)
    assert sum(f.qty for f in fills) == 20_000 == sor.filled_qty
    assert len(store.children(sor.run_id)) == sor.n_child_orders
    assert len(store.decisions(sor.run_id)) >= sor.n_child_orders


def test_default_store_is_blockroute_db_in_the_working_directory(tmp_path):
    assert run_cli("simulate", *SHORT, "--strategies", "twap") == 0
    assert (tmp_path / "blockroute.db").exists()
    assert run_cli("simulate", *SHORT, "--strategies", "twap", "--db-url", "none") == 0


def test_backtest_json_follows_the_contract(tmp_path, capsys):
    args = ["--scenarios", "calm", "--strategies", "twap,sor", "--episodes", "2"]
    extra = ["--db-url", "none", "--json", "-"]
    assert run_cli("backtest", *args, "--workers", "1", *extra) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {r["strategy"]: r for r in doc["rows"]}
    assert set(rows) == {"twap", "sor"}
    for r in rows.values():
        assert set(r) == {
            "scenario",
            "strategy",
            "episodes",
            "is_bps_mean",
            "is_bps_std",
            "is_bps_stderr",
            "completion_mean",
            "venue_mix_mean",
            "dealer_pnl_bps",
        }
        assert r["episodes"] == 2 and r["completion_mean"] == 1.0
    (p,) = doc["paired"]
    assert p["strategy"] == "sor" and p["baseline"] == "twap" and p["n"] == 2


def test_backtest_pairs_against_the_chosen_baseline(tmp_path, capsys):
    out = tmp_path / "bt.json"
    args = ["backtest", "--scenarios", "illiquid-bond", "--episodes", "1", "--no-hindsight"]
    args += ["--db-url", "none", "--json", str(out)]
    assert run_cli(*args, "--strategies", "sor-lit,sor", "--baseline", "sor-lit") == 0
    (p,) = json.loads(out.read_text())["paired"]
    assert p["strategy"] == "sor" and p["baseline"] == "sor-lit"
    assert run_cli(*args, "--strategies", "sor", "--baseline", "twap") == 2
    assert "--baseline: 'twap' is not one of --strategies" in capsys.readouterr().err


def test_backtest_both_sides_rows_and_table(tmp_path, capsys):
    out = tmp_path / "bt.json"
    args = ["backtest", "--scenarios", "illiquid-bond", "--strategies", "twap,sor"]
    args += ["--episodes", "1", "--both-sides", "--db-url", "none", "--json", str(out)]
    assert run_cli(*args) == 0
    doc = json.loads(out.read_text())
    assert [(r["side"], r["strategy"]) for r in doc["rows"]] == [
        (side, st) for side in ("buy", "sell", "both") for st in ("twap", "sor")
    ]
    assert [r["episodes"] for r in doc["rows"]] == [1, 1, 1, 1, 2, 2]
    assert {p["side"] for p in doc["paired"]} == {"buy", "sell", "both"}
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["scenario", "side", "strategy"]
    assert [line.split()[1] for line in table[1:] if line.startswith("illiquid-bond")] == [
        "buy",
        "buy",
        "sell",
        "sell",
        "both",
        "both",
    ]
    assert sum("hindsight" in line for line in table) == 3  # a bound per side
    assert table[-1].startswith("2 episodes on 1 worker(s)")


def test_backtest_side_with_both_sides_is_a_usage_error(capsys):
    args = ["backtest", "--scenarios", "calm", "--episodes", "1", "--db-url", "none"]
    assert run_cli(*args, "--both-sides", "--side", "buy") == 2
    err = capsys.readouterr().err
    assert "--side: not with --both-sides" in err and len(err.splitlines()) == 1
    assert run_cli(*args, "--side", "short") == 2
    assert "side must be 'buy' or 'sell'" in capsys.readouterr().err


def test_backtest_on_ray_without_the_extra_names_it(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    args = ["backtest", "--scenarios", "calm", "--episodes", "1", "--db-url", "none"]
    assert run_cli(*args, "--executor", "ray") == 2
    err = capsys.readouterr().err
    assert "ray extra" in err and ".[ray]" in err and len(err.splitlines()) == 1
    assert run_cli(*args, "--ray-address", "auto") == 2
    assert "only with --executor ray" in capsys.readouterr().err
