import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from models.training.journal_data import iso
from router.config import ConfigError, epoch_ns, load_toml, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("15m", 900.0), ("3h", 10800.0), ("250ms", 0.25), (45, 45.0)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "3 hours", "-5m", "1h30", "m"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_errors_name_the_file_and_the_key(tmp_path: Path):
    f = tmp_path / "x.toml"
    f.write_text('[market]\nspread_ticks = -1\nname = 3\n[[phase]]\nstart = "soon"\n')
    t = load_toml(f)
    with pytest.raises(ConfigError, match=r"x\.toml: market\.spread_ticks: must be > 0, got -1"):
        t.table("market").get_float("spread_ticks", gt=0)
    with pytest.raises(ConfigError, match=r"market\.name: must be a string"):
        t.table("market").get_str("name")
    with pytest.raises(ConfigError, match=r"phase\[0\]\.start: not a duration"):
        next(t.tables("phase")).get_duration("start")
    with pytest.raises(ConfigError, match=r"x\.toml: market\.missing: missing"):
        t.table("market").get_float("missing")


def test_unknown_keys_are_errors(tmp_path: Path):
    f = tmp_path / "y.toml"
    f.write_text("a = 1\ntypo = 2\n")
    t = load_toml(f)
    t.get_int("a")
    with pytest.raises(ConfigError, match="typo: unknown key"):
        t.check_no_unknown_keys()


def test_malformed_toml(tmp_path: Path):
    f = tmp_path / "bad.toml"
    f.write_text("a = [1,\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_toml(f)


def test_the_shipped_service_config_bounds_the_journal_and_keeps_release_manual():
    from router.service import load_service_config

    cfg = load_service_config(environ={})
    assert cfg.db_timeouts.statement_s == 5.0 and cfg.db_timeouts.connect_s == 3.0
    assert cfg.desk.journal_stall_s == 1.0 and cfg.desk.journal_read_s == 1.0
    assert cfg.desk.auto_release_kill is False


def test_the_journal_table_is_read_and_checked(tmp_path: Path):
    from router.service import DEFAULT_SERVICE_CONFIG, load_service_config

    shipped = DEFAULT_SERVICE_CONFIG.read_text()
    fix = DEFAULT_SERVICE_CONFIG.parent / "fix/acceptor.cfg"
    start, end = shipped.index("[journal]"), shipped.index("[symbols]")
    base = (shipped[:start] + shipped[end:]).replace('"fix/acceptor.cfg"', f'"{fix}"')
    f = tmp_path / "s.toml"
    f.write_text(
        base
        + '\n[journal]\nstatement_timeout = "2s"\nstall_after = "250ms"\n'
        + "auto_release_kill_switch = true\n"
    )
    cfg = load_service_config(f, environ={})
    assert cfg.db_timeouts.statement_s == 2.0 and cfg.db_timeouts.connect_s == 3.0
    assert cfg.desk.journal_stall_s == 0.25 and cfg.desk.auto_release_kill is True
    f.write_text(base + '\n[journal]\nstatment_timeout = "2s"\n')
    with pytest.raises(ConfigError, match=r"journal\.statment_timeout: unknown key"):
        load_service_config(f, environ={})
    f.write_text(base + "\n[journal]\nauto_release_kill_switch = 1\n")
    with pytest.raises(ConfigError, match="true or false"):
        load_service_config(f, environ={})


def test_the_drift_table_is_read_and_checked(tmp_path: Path):
    from router.drift import DriftConfig
    from router.service import DEFAULT_SERVICE_CONFIG, load_service_config

    # the shipped file's values are the code's defaults: the two cannot drift apart
    assert load_service_config(environ={}).desk.drift == DriftConfig()
    shipped = DEFAULT_SERVICE_CONFIG.read_text()
    fix = DEFAULT_SERVICE_CONFIG.parent / "fix/acceptor.cfg"
    start, end = shipped.index("[drift]"), shipped.index("[mqtt]")
    base = (shipped[:start] + shipped[end:]).replace('"fix/acceptor.cfg"', f'"{fix}"')
    f = tmp_path / "s.toml"
    f.write_text(base)
    assert load_service_config(f, environ={}).desk.drift == DriftConfig()  # optional
    f.write_text(
        base + '\n[drift]\nwindow = 300\nmax_ece = 0.2\nfallback = true\nresume = "auto"\n'
    )
    drift = load_service_config(f, environ={}).desk.drift
    assert (drift.window, drift.max_ece, drift.fallback, drift.resume) == (300, 0.2, True, "auto")
    for bad, message in (
        ("max_ecee = 0.2", r"drift\.max_ecee: unknown key"),
        ("max_ece = 0", r"drift\.max_ece: must be > 0"),
        ("window = 100", r"min_samples \(200\) must not exceed window \(100\)"),
        ('resume = "later"', "resume must be one of operator, auto"),
        ("fallback = 1", r"drift\.fallback: must be true or false"),
    ):
        f.write_text(base + f"\n[drift]\n{bad}\n")
        with pytest.raises(ConfigError, match=message):
            load_service_config(f, environ={})


def test_shadow_mode_is_on_by_default_and_can_be_turned_off(tmp_path: Path):
    from router.service import DEFAULT_SERVICE_CONFIG, load_service_config

    assert load_service_config(environ={}).model_shadow is True  # the shipped config
    shipped = DEFAULT_SERVICE_CONFIG.read_text()
    fix = DEFAULT_SERVICE_CONFIG.parent / "fix/acceptor.cfg"
    base = shipped.replace('"fix/acceptor.cfg"', f'"{fix}"')
    f = tmp_path / "s.toml"
    f.write_text(base.replace("shadow = true", "shadow = false"))
    assert load_service_config(f, environ={}).model_shadow is False
    f.write_text(base.replace("shadow = true", 'shadow = "yes"'))
    with pytest.raises(ConfigError, match=r"models\.shadow: must be true or false"):
        load_service_config(f, environ={})
    start, end = shipped.index("[models]"), shipped.index("[mqtt]")
    f.write_text((shipped[:start] + shipped[end:]).replace('"fix/acceptor.cfg"', f'"{fix}"'))
    assert load_service_config(f, environ={}).model_shadow is True  # no [models]: on


def test_epoch_ns_is_exact_so_since_a_printed_time_includes_it():
    # a journal time printed to the microsecond below, read back: never after it (a
    # float through timestamp() put 4% of such times a few hundred ns after them)
    rng = random.Random(7)
    for _ in range(20_000):
        ts_ns = 1_796_605_678_000_000_000 + rng.randrange(10**12)
        back = epoch_ns(datetime.fromisoformat(iso(ts_ns) or ""))
        assert back == ts_ns // 1000 * 1000
    assert epoch_ns(datetime(1970, 1, 1, 0, 0, 1)) == 10**9  # no zone: UTC
    paris = timezone(timedelta(hours=1))
    assert epoch_ns(datetime(1970, 1, 1, 1, 0, 0, 5, tzinfo=paris)) == 5000
