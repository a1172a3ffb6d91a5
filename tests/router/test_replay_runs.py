"""The router on the real book: strategies run unchanged on the replayed Bitstamp capture
(`--market replay:bitstamp-btcusd`, simulators/replay/market.py). Short horizons here;
every strategy over the whole default parent and every start offset with --runslow."""

from __future__ import annotations

import json

import pytest

from router.app import apply_overrides, simulate
from router.backtest import backtest
from router.cli import main
from router.config import DEFAULT_CONFIG_DIR, ConfigError
from router.domain import Side
from simulators.scenario import load_scenario

pytestmark = pytest.mark.requires_extra("data", "ob_analytics")

REPLAY = "replay:bitstamp-btcusd"


@pytest.fixture(scope="module")
def replay():
    return load_scenario(REPLAY)


def test_the_replay_scenario_comes_from_the_capture(replay):
    from simulators.replay.market import replay_data

    data = replay_data("bitstamp-btcusd")
    assert replay.instrument.tick_size == 1.0  # whole dollars, found in the data
    assert replay.instrument.lot_size == 1  # quantities are the capture's lots
    assert [v.venue_id for v in replay.lit] == ["BITSTAMP"]
    assert replay.side is Side.BUY and replay.horizon_s == 1200
    # 5% of what the capture trades in 20 minutes at its own rate
    assert replay.qty == round(0.05 * data.traded / data.span_s * 1200)
    assert 0.4e8 < replay.qty < 0.6e8  # about half a bitcoin
    # the desk expects the capture's own volume over the horizon
    from router.app import expected_volume

    expected = expected_volume(replay, replay.start_tod_s, replay.horizon_s)
    assert expected == pytest.approx(data.volume_per_s * 1200, rel=0.01)
    assert replay.replay is not None and replay.replay.offset_s(0) == 60.0


def test_an_unknown_replay_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown replay scenario 'nope'"):
        load_scenario("replay:nope")


def _short(replay, side=None):
    return apply_overrides(replay, replay.qty // 4, side, 300.0)


def test_twap_and_sor_complete_on_the_real_book(replay):
    report = simulate(_short(replay), ["twap", "sor"], seed=1, hindsight=False)
    doc = report.to_json()
    for r in doc["results"]:
        assert r["completion"] == 1.0, r["strategy"]
        assert r["filled_qty"] == replay.qty // 4
        assert set(r["replay"]) >= {
            "real_orders_taken",
            "real_trades_unmatched_because_of_clients",
            "real_events_skipped_taken_by_client",
        }
    twap, sor = doc["results"]
    assert twap["venue_mix"]["lit"] == pytest.approx(1.0)
    assert twap["replay"]["real_lots_taken"] > 0  # twap takes: real liquidity is gone
    assert sor["passive_lit"]["sent"] > 0  # sor rests children in the real queue
    passive = sor["passive_lit"]
    assert 0 <= passive["fill_rate"] <= 1
    assert (passive["markouts_bps"]["10s"] is None) == (passive["filled"] == 0)
    assert twap["passive_lit"] == {
        "sent": 0,
        "filled": 0,
        "fill_rate": None,
        "markouts_bps": {"1s": None, "10s": None, "60s": None, "300s": None},
    }


def test_the_same_run_twice_gives_the_same_json(replay):
    docs = [
        json.dumps(simulate(_short(replay), ["sor"], seed=2, hindsight=False).to_json())
        for _ in range(2)
    ]
    assert docs[0] == docs[1]


def test_seeds_start_at_other_offsets(replay):
    a = simulate(_short(replay), ["twap"], seed=0, hindsight=False).arrival_mid
    b = simulate(_short(replay), ["twap"], seed=3, hindsight=False).arrival_mid
    assert a != b


def test_simulate_market_flag_needs_no_other(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "r.json"
    args = ["simulate", "--market", REPLAY, "--strategies", "twap", "--horizon", "5m"]
    assert main([*args, "--json", str(out), "--db-url", "none"]) == 0
    doc = json.loads(out.read_text())
    assert doc["scenario"] == REPLAY and doc["parent"]["symbol"] == "BTC/USD"
    assert main(["simulate", "--scenario", "calm", "--market", REPLAY]) == 2
    assert "not with --scenario" in capsys.readouterr().err


@pytest.mark.slow
def test_every_strategy_on_every_offset_of_the_whole_capture(replay):
    """The default parent (5% of the volume over 20 minutes) from each start offset; the
    dealers make money on what they trade with it (pooled over the offsets)."""
    n = len(replay.replay.offsets_s)
    doc = backtest(
        [REPLAY],
        ["twap", "pov", "sor", "ml", "risk-bid"],
        n,
        0,
        1,
        DEFAULT_CONFIG_DIR,
        hindsight=False,
    )
    for row in doc["rows"]:
        assert row["episodes"] == n
        assert row["completion_mean"] > 0.99, row["strategy"]
        assert row["passive_lit"]["sent"] >= row["passive_lit"]["filled"] >= 0
        if row["strategy"] in ("sor", "ml", "risk-bid"):
            assert row["venue_mix_mean"]["rfq"] > 0.5, row["strategy"]
            assert row["dealer_pnl_bps"] > 0, row["strategy"]


def test_backtest_rows_on_the_replay_carry_its_counts_and_the_dealers(replay, monkeypatch):
    """The replay's dealers (config/dealers/crypto.toml) take RFQs, and the backtest rows
    carry what `simulate` shows of a replay: its counts and the passive lit fills."""
    import router.backtest as bt

    assert replay.dealer_panel == "crypto"
    monkeypatch.setattr(bt, "load_scenario", lambda name, config_dir: _short(replay))
    strategies = ["twap", "sor-lit", "risk-bid"]
    doc = backtest([REPLAY], strategies, 2, 0, 1, DEFAULT_CONFIG_DIR, hindsight=False)
    rows = {r["strategy"]: r for r in doc["rows"]}
    assert rows["twap"]["replay"]["real_lots_taken"] > 0
    assert rows["twap"]["passive_lit"]["fill_rate"] is None
    assert rows["sor-lit"]["passive_lit"]["sent"] > 0
    assert 0 <= rows["sor-lit"]["passive_lit"]["fill_rate"] <= 1
    # the whole parent asked of the dealers at once: on one offset of the two (seed 0)
    # a quote beats working it on the screen, and the dealer takes it all
    assert rows["risk-bid"]["venue_mix_mean"]["rfq"] == pytest.approx(0.5)
    assert rows["risk-bid"]["dealer_pnl_bps"] is not None
    assert rows["risk-bid"]["completion_mean"] == 1.0


def test_the_backtest_table_shows_the_replay_columns(replay, monkeypatch, capsys):
    """The text table of a backtest on the replay carries what its JSON rows do: the
    maker fill rate and first markout, the real orders taken and the trades lost."""
    import router.backtest as bt

    monkeypatch.setattr(bt, "load_scenario", lambda name, config_dir: _short(replay))
    args = ["backtest", "--market", REPLAY, "--strategies", "twap,sor-lit", "--episodes", "1"]
    assert main([*args, "--workers", "1", "--no-hindsight", "--db-url", "none"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "strategy" in line)
    for column in ("maker fill", "markout 1s", "real taken", "trades lost"):
        assert column in header
    twap = next(line.split() for line in out.splitlines() if line.split()[1:2] == ["twap"])
    assert twap[-2].isdigit() and twap[-1].isdigit()  # real orders taken, trades lost
