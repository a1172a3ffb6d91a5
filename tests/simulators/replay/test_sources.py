"""The registry of captures and how it finds a package's data (simulators/replay/sources.py)."""

from __future__ import annotations

import importlib.util

import pytest

from simulators.replay import sources
from simulators.replay.errors import ReplayDataError, ReplayError, UnknownReplayError


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(
        UnknownReplayError, match=r"unknown replay 'lobster-aapl' .*bitstamp-btcusd"
    ):
        sources.open_replay("lobster-aapl")
    assert issubclass(UnknownReplayError, ReplayError)


def test_a_missing_package_names_the_extra_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ReplayDataError, match=r"ob_analytics .*not installed .*\[data\]"):
        sources.open_replay("bitstamp-btcusd")


def test_a_package_without_its_data_folder_is_an_error(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "fakepkg", tmp_path / "__init__.py", submodule_search_locations=[str(tmp_path)]
    )
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(ReplayDataError, match="without its _sample_data/ folder"):
        sources.package_data_dir("fakepkg", "_sample_data")


def test_the_names_are_the_registry_sorted():
    assert sources.replay_names() == sorted(sources.REPLAYS)
    assert "bitstamp-btcusd" in sources.replay_names()


@pytest.mark.requires_extra("data", "ob_analytics")
def test_the_bitstamp_capture_is_found_without_importing_its_package():
    import sys

    src = sources.open_replay("bitstamp-btcusd")
    assert (src.directory / "orders.csv.gz").is_file()  # type: ignore[attr-defined]
    assert "Bitstamp BTC/USD" in src.description
    assert "ob_analytics" not in sys.modules
