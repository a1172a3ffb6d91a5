"""The desk's dealer history (router.app.desk_history) in the user cache: read back
instead of simulated again, simulated again when anything it depends on changes (the
scenario's or the panel's configuration, the code, the version), a damaged entry
rebuilt, and read from the configuration folder it is asked for."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dealers.config import DealerPanel
from dealers.panel import HeuristicPanel
from models.serving.desk import DeskState
from router import app, cache
from router.config import DEFAULT_CONFIG_DIR
from simulators.scenario import ReplaySpec, Scenario, load_scenario

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the configuration, a user cache of this test and no history in memory."""
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(app, "_DESK_HISTORIES", {})
    return Path(shutil.copytree(DEFAULT_CONFIG_DIR, tmp_path / "config"))


@pytest.fixture
def simulated(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Scenario, DealerPanel]]:
    """Each (scenario, panel) the desk's days were simulated for; a cheap stand-in for
    the four simulated days (seconds), with the real types."""
    calls: list[tuple[Scenario, DealerPanel]] = []

    def fake(scenario: Scenario, panel: DealerPanel) -> app.DeskHistory:
        calls.append((scenario, panel))
        selector = HeuristicPanel(panel.ids, explore=app.HISTORY_EXPLORE)
        return selector, DeskState(panel.ids, panel.name, float(scenario.instrument.adv))

    monkeypatch.setattr(app, "_simulate_desk_history", fake)
    return calls


def _next_process() -> None:
    """What a new process starts with: nothing in memory, the same user cache."""
    app._DESK_HISTORIES.clear()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_the_next_process_reads_the_history_instead_of_simulating_it(config, simulated):
    first = app.desk_history("calm", "equities", config)
    assert app.desk_history("calm", "equities", config) is first  # in memory
    _next_process()
    second = app.desk_history("calm", "equities", config)
    assert len(simulated) == 1
    assert second is not first
    assert pickle.dumps(second) == pickle.dumps(first)
    assert isinstance(second[0], HeuristicPanel) and isinstance(second[1], DeskState)


def test_a_changed_panel_scenario_or_version_is_simulated_again(config, simulated, monkeypatch):
    app.desk_history("calm", "equities", config)
    _next_process()
    _edit(config / "dealers" / "equities.toml", "spread_bps = 3.0", "spread_bps = 3.5")
    app.desk_history("calm", "equities", config)
    assert len(simulated) == 2
    assert simulated[1][1].dealer("ALPHA").spread_bps == 3.5  # read from `config`
    _next_process()
    _edit(config / "scenarios" / "calm.toml", "daily_vol = 0.015", "daily_vol = 0.016")
    app.desk_history("calm", "equities", config)
    assert len(simulated) == 3
    assert simulated[2][0].market.daily_vol == 0.016
    _next_process()
    _edit(config / "instruments.toml", "adv", "adv")  # no change at all: a hit
    monkeypatch.setattr(app, "DESK_HISTORY_VERSION", app.DESK_HISTORY_VERSION + 1)
    app.desk_history("calm", "equities", config)
    assert len(simulated) == 4
    # the slot keeps only the newest entry
    assert len(list((config.parent / "cache" / app.DESK_HISTORY_CACHE).iterdir())) == 1


def test_a_comment_changes_no_key_and_a_value_of_another_panel_neither(config, simulated):
    app.desk_history("calm", "equities", config)
    _next_process()
    _edit(config / "dealers" / "equities.toml", "# Block-trading", "# Edited: block-trading")
    _edit(config / "dealers" / "bonds.toml", "spread_bps = ", "spread_bps = 1 + ")
    app.desk_history("calm", "equities", config)
    assert len(simulated) == 1


def test_the_key_covers_the_code_of_the_simulated_days(monkeypatch):
    sc = load_scenario("calm")
    panel = app.load_panel("equities")
    key = app.desk_history_key(sc, panel)
    assert key == app.desk_history_key(sc, panel)
    monkeypatch.setattr(app, "DESK_HISTORY_CODE", (*app.DESK_HISTORY_CODE[:-1],))
    assert app.desk_history_key(sc, panel) != key  # one file's source less: another key


def test_every_module_the_simulated_days_import_is_in_the_key():
    # a fresh interpreter: the project's files that the days' code loads
    code = (
        "import sys, dealers.stream, models.training.dealer_data\n"
        "print('\\n'.join(m.__file__ for m in list(sys.modules.values())"
        " if getattr(m, '__file__', None)))"
    )
    path = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        check=True,
    )
    files = {Path(f).resolve() for f in out.stdout.split()}
    ours = {f.relative_to(REPO).as_posix() for f in files if f.is_relative_to(REPO)}
    assert "dealers/stream.py" in ours and "models/training/dealer_data.py" in ours
    code_paths = (*app.DESK_HISTORY_CODE, "router/app.py")
    uncovered = {f for f in ours if not any(f == c or f.startswith(c + "/") for c in code_paths)}
    assert not uncovered, f"add to router.app.DESK_HISTORY_CODE: {sorted(uncovered)}"


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(p.read_bytes()[:-100]),  # truncated: its checksum fails
        lambda p: cache.write(  # whole, but not a history
            app.DESK_HISTORY_CACHE, "calm-equities", p.name.split(".")[1], pickle.dumps(42)
        ),
        lambda p: cache.write(
            app.DESK_HISTORY_CACHE, "calm-equities", p.name.split(".")[1], b"not a pickle"
        ),
    ],
)
def test_a_damaged_entry_is_simulated_again_and_rewritten(config, simulated, damage):
    app.desk_history("calm", "equities", config)
    (entry,) = (config.parent / "cache" / app.DESK_HISTORY_CACHE).iterdir()
    good = entry.read_bytes()
    damage(entry)
    _next_process()
    history = app.desk_history("calm", "equities", config)
    assert len(simulated) == 2
    assert isinstance(history[1], DeskState)
    assert entry.read_bytes() == good  # rewritten (the same days: the same bytes)


def test_a_replayed_market_is_not_cached(config, simulated):
    sc = load_scenario("calm", config)
    replayed = dataclasses.replace(sc, replay=ReplaySpec("capture", (0.0,), 10, 100))
    assert app.desk_history_key(replayed, app.load_panel("equities", config)) is None


def test_episodes_read_the_panel_and_history_of_their_configuration(config, simulated):
    _edit(config / "dealers" / "equities.toml", "spread_bps = 3.0", "spread_bps = 3.25")
    episode = app.Episode(load_scenario("calm", config), 1, config_dir=config)
    assert episode.panel is not None and episode.panel.dealer("ALPHA").spread_bps == 3.25
    app.desk_selector(episode.scenario, episode.panel, config)
    assert simulated[0][1].dealer("ALPHA").spread_bps == 3.25


@pytest.mark.slow
def test_a_run_on_the_cached_history_is_the_run_on_the_simulated_one(config):
    # the real days (seconds): a run of `sor` (dealers asked) on the history as simulated
    # in this process, then as read back by the next, gives the same report
    sc = load_scenario("calm", config)

    def run() -> dict[str, object]:
        return app.simulate(sc, ["sor"], 3, hindsight=False, config_dir=config).to_json()

    fresh = run()
    _next_process()
    assert (config.parent / "cache" / app.DESK_HISTORY_CACHE).is_dir()
    assert run() == fresh


def test_strategies_on_forked_workers_give_the_report_of_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sc = app.apply_overrides(load_scenario("news-shock"), 100_000, None, 1800.0)
    names = ["twap", "sor", "ml", "risk-bid"]
    run = app.Episode.run

    def noted(self: app.Episode, name: str) -> app.StrategyRun:
        # a fork inherits the patched class, so the workers run this wrapper too
        (tmp_path / f"{name}.pid").write_text(str(os.getpid()))
        return run(self, name)

    monkeypatch.setattr(app.Episode, "run", noted)

    def report(workers: int) -> tuple[str, list[str]]:
        started: list[str] = []
        doc = app.simulate(sc, names, 7, progress=started.append, workers=workers)
        # as text: a NaN input (no quote to cover) is unequal to itself in a dict
        return json.dumps(doc.to_json(detail=True), sort_keys=True), started

    one, started_one = report(1)
    for p in tmp_path.glob("*.pid"):
        p.unlink()
    two, started_two = report(2)
    assert two == one
    assert started_one == started_two == [*names, app.HINDSIGHT]
    pids = {int(p.read_text()) for p in tmp_path.glob("*.pid")}
    assert len(pids) == 2 and os.getpid() not in pids  # both workers ran, none here
