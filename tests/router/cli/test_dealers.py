import json

import pytest

from dealers.economics import PnlRow
from router.cli import main


def run_cli(*args: str) -> int:
    return main(list(args))


CONTRACT_DEALER_KEYS = {
    "dealer",
    "rfqs",
    "response_rate",
    "hit_ratio",
    "cover_rate",
    "avg_response_ms",
    "price_improvement_bps",
    "markout_bps",
}


def test_dealers_scorecard_json_follows_the_contract(tmp_path, capsys):
    out = tmp_path / "card.json"
    args = ["dealers", "scorecard", "--rfqs", "30", "--per-day", "15", "--seed", "3"]
    assert run_cli(*args, "--json", str(out), "--report", str(tmp_path / "rep")) == 0
    doc = json.loads(out.read_text())
    rows = doc["dealers"]
    assert len(rows) == 10  # the bond panel
    for r in rows:
        assert set(r) >= CONTRACT_DEALER_KEYS
        assert isinstance(r["dealer"], str) and isinstance(r["rfqs"], int)
    assert sum(r["rfqs"] for r in rows) == 30 * 4  # four dealers asked per RFQ
    assert doc["meta"]["days"] == 2 and doc["rfqs"] == 30
    table = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in table.splitlines() if line.strip()}
    for r in rows:  # a row per dealer: its name, then its RFQs and response rate
        assert lines[r["dealer"]][1:3] == [f"{r['rfqs']:,}", f"{100 * r['response_rate']:.1f}"]
    assert lines["dealer"][:2] == ["dealer", "RFQs"]
    assert "markout" in table and "60s bps" in table
    assert "30 RFQs, " in table and "leakage by panel size, bps: 4 dealer(s): " in table
    assert "<svg" in (tmp_path / "rep" / "index.html").read_text()
    assert list(doc["panel_leakage_bps"]) == ["4"]
    # the same seed gives the same scorecard
    again = tmp_path / "again.json"
    assert run_cli(*args, "--json", str(again)) == 0
    assert json.loads(again.read_text())["dealers"] == rows


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "nope"], "unknown scenario 'nope'"),
        (["--rfqs", "0"], "must be > 0"),
        (["--two-sided", "1.5"], "--two-sided: must be within [0, 1]"),
        (["--panel-size", "11"], "--panel-size: the bonds panel has 10 dealers"),
        (["--panel-size", "2,x"], "--panel-size: not a list of integers"),
    ],
)
def test_dealers_scorecard_bad_input_exits_2(tmp_path, capsys, args, message):
    out = tmp_path / "card.json"
    assert run_cli("dealers", "scorecard", *args, "--json", str(out)) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_dealers_pnl_prints_a_row_per_dealer_then_the_panel(tmp_path, monkeypatch, capsys):
    # the days themselves are tests/dealers/test_economics.py's: here only the table
    import simulators.scenario
    from dealers import economics

    trades = [
        PnlRow("calm", 0, "equities:ALPHA", 0.01, 4.0, 5.0, 1.0, 2.0),
        PnlRow("calm", 1, "equities:ALPHA", 0.07, -2.0, 3.0, -4.0, 1.0),
        PnlRow("illiquid-bond", 0, "bonds:ECHO", 0.03, 10.0, 8.0, 4.0, 2.0),
    ]
    monkeypatch.setattr(economics, "collect", lambda *a, **k: trades)
    monkeypatch.setattr(
        simulators.scenario, "available_scenarios", lambda *a: ["calm", "illiquid-bond"]
    )
    out = tmp_path / "pnl.json"
    assert run_cli("dealers", "pnl", "--scenario", "all", "--json", str(out)) == 0
    doc = json.loads(out.read_text())
    # each line's cells, one space apart (the table's padding is the console's)
    lines = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()[1:]]
    header = "dealer trades P&L bps 95% interval <2% 2-5% 5-10% 10-25% edge market unwind"
    assert lines[0] == header
    alpha = next(d for d in doc["dealers"] if d["dealer"] == "equities:ALPHA")
    lo, hi = alpha["pnl_bps_ci95"]
    assert lines[1] == f"equities:ALPHA 2 1.00 [{lo:.1f}, {hi:.1f}] 4.0 - -2.0 - 4.0 -1.5 1.5"
    assert lines[2] == "bonds:ECHO 1 10.00 - 10.0 - - 8.0 4.0 2.0"  # one day: no interval
    assert lines[3].startswith("panel 3 4.00")
    assert [line.split()[0] for line in lines[4:]] == ["calm", "illiquid-bond"]
