import json

import pytest

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
    assert all(r["dealer"] in table for r in rows)
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
