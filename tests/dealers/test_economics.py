"""`blockroute dealers pnl`: the days behind it, its intervals and its document."""

from __future__ import annotations

import json
import math

import pytest

from dealers import economics
from dealers.config import load_panel
from dealers.economics import PnlRow, mean_ci
from router.cli import main


def row(day: int, pnl: float, dealer: str = "equities:ALPHA", size: float = 0.01) -> PnlRow:
    return PnlRow("calm", day, dealer, size, pnl, 0.0, 0.0, 0.0)


def test_the_mean_is_over_trades_and_the_interval_over_days() -> None:
    rows = [row(0, 1.0), row(0, 3.0), row(1, 10.0)]
    mean, (lo, hi) = mean_ci(rows)
    assert mean == pytest.approx(14.0 / 3)
    # resampling days: all day 0 (mean 2), all day 1 (10), or both; never outside
    assert 2.0 <= lo <= mean <= hi <= 10.0
    assert lo == pytest.approx(2.0) and hi == pytest.approx(10.0)
    # one day is no sample of days
    mean1, ci1 = mean_ci(rows[:2])
    assert mean1 == 2.0 and all(math.isnan(x) for x in ci1)


def test_rows_are_the_same_on_any_number_of_workers() -> None:
    one = economics.collect(["calm"], 160, seed=8_000_000, workers=1)
    two = economics.collect(["calm"], 160, seed=8_000_000, workers=2)
    assert one == two
    assert {r.day for r in one} == {0, 1}
    # sizes from 0.5% to 25% of ADV, the dealers' quotes cap what a trade can be
    assert all(0.004 < r.size_adv <= 0.25 for r in one)
    for r in one:
        assert r.pnl_bps == pytest.approx(r.edge_bps + r.market_bps - r.unwind_bps)


def test_the_command_follows_the_contract(capsys) -> None:
    assert main(["dealers", "pnl", "--scenario", "calm", "--rfqs", "160", "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["rfqs_per_scenario"] == 160
    # one panel: the dealers' own names, as the panel's configuration has them
    assert {d["dealer"] for d in doc["dealers"]} <= set(load_panel("equities").ids)
    for d in doc["dealers"]:
        assert set(d) >= {"dealer", "trades", "pnl_bps_mean", "pnl_bps_ci95", "by_size"}
        assert list(d["by_size"]) == ["<2%", "2-5%", "5-10%", "10-25%"]
        assert len(d["pnl_bps_ci95"]) == 2
    panel = doc["panel"]
    assert panel["trades"] == sum(d["trades"] for d in doc["dealers"]) > 0
    assert set(panel) >= {"trades", "pnl_bps_mean", "pnl_bps_ci95"}


def test_several_panels_name_their_dealers(capsys) -> None:
    rows = [row(0, 1.0), row(1, 2.0, "bonds:ALPHA")]
    doc = economics.report(rows, ["calm", "illiquid-bond"], 80, 1)
    assert {d["dealer"] for d in doc["dealers"]} == {"equities:ALPHA", "bonds:ALPHA"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "nope"], "unknown scenario 'nope'"),
        (["--rfqs", "0"], "--rfqs"),
    ],
)
def test_bad_input_exits_2(capsys, args, message) -> None:
    assert main(["dealers", "pnl", *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
