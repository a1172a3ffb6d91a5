import shutil
from pathlib import Path

import pytest

from router.config import DEFAULT_CONFIG_DIR, ConfigError
from router.domain import Side
from simulators.scenario import Phase, available_scenarios, load_scenario, mirrored

REQUIRED = {"calm", "news-shock", "liquidity-squeeze", "trending", "high-vol", "illiquid-bond"}


def test_all_contract_scenarios_exist_and_load():
    assert set(available_scenarios()) >= REQUIRED
    for name in REQUIRED:
        sc = load_scenario(name)
        assert sc.horizon_s > 0 and sc.qty > 0
        assert len(sc.lit) >= 1


def test_news_shock_is_the_reference_case():
    sc = load_scenario("news-shock")
    assert sc.instrument.symbol == "QDI"
    assert sc.instrument.adv == 2_000_000
    assert sc.market.price == pytest.approx(100.0)
    assert sc.market.spread_ticks * sc.instrument.tick_size == pytest.approx(0.05)
    assert (sc.side, sc.qty, sc.horizon_s) == (Side.SELL, 500_000, 3 * 3600)
    news = [p for p in sc.phases if p.start_s == 3600]
    assert news and news[0].spread * 0.05 == pytest.approx(0.15)
    assert news[0].bid_depth < 1 and news[0].drift_bps_per_h < 0
    assert any(p.buy_pressure > 0 and 3600 < p.start_s < 7200 for p in sc.phases)


def test_at_least_two_dark_pools_with_different_characters():
    sc = load_scenario("news-shock")
    assert len(sc.dark) >= 2
    a, b = sc.dark[:2]
    assert a.contra_per_hour != b.contra_per_hour
    assert a.min_qty != b.min_qty
    assert a.toxicity != b.toxicity


def test_a_mirrored_phase_reverses_direction_and_nothing_else():
    p = Phase(
        start_s=600.0,
        end_s=1800.0,
        vol=2.5,
        spread=3.0,
        bid_depth=0.35,
        ask_depth=0.8,
        flow=1.6,
        informed=2.0,
        momentum=1.3,
        buy_pressure=0.45,
        drift_bps_per_h=-90.0,
        jump_bps=-40.0,
    )
    m = mirrored(p)
    assert (m.jump_bps, m.drift_bps_per_h, m.buy_pressure) == (40.0, 90.0, -0.45)
    assert (m.bid_depth, m.ask_depth) == (0.8, 0.35)  # the thin side changes side
    same = ("start_s", "end_s", "vol", "spread", "flow", "informed", "momentum")
    assert all(getattr(m, f) == getattr(p, f) for f in same)
    assert mirrored(m) == p
    assert mirrored(Phase(0.0, 60.0)) == Phase(0.0, 60.0)  # no direction: its own mirror
    for sc in (load_scenario(n) for n in REQUIRED):  # the configured phases too
        assert all(mirrored(mirrored(ph)) == ph for ph in sc.phases)


def test_unknown_scenario_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown scenario 'nope' \(known: calm"):
        load_scenario("nope")


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, dst)
    return dst


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("spread_ticks = 5", "spread_ticks = -5"), r"news-shock\.toml: market\.spread_ticks"),
        (("qty = 500_000", "qty = -1"), r"parent\.qty: must be > 0"),
        (('horizon = "3h"', 'horizon = "0s"'), r"horizon: must be > 0"),
        (('start = "95m"', 'start = "95 minutes"'), r"phase\[1\]\.start: not a duration"),
        (("flow = 1.5", "flwo = 1.5"), r"phase\[1\]\.flwo: unknown key"),
        (('instrument = "QDI"', 'instrument = "XYZ"'), r"unknown instrument 'XYZ'"),
    ],
)
def test_malformed_scenarios_name_file_and_key(config_copy: Path, edit, message):
    path = config_copy / "scenarios" / "news-shock.toml"
    text = path.read_text()
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(ConfigError, match=message):
        load_scenario("news-shock", config_copy)


def test_venue_shares_must_add_up(config_copy: Path):
    path = config_copy / "venues" / "equities.toml"
    path.write_text(path.read_text().replace("share = 0.50", "share = 0.60"))
    with pytest.raises(ConfigError, match="shares must add up to 1"):
        load_scenario("calm", config_copy)
