"""The captures a replay can be built from, by name, and the port every source adapter
implements (`ReplaySource`): Bitstamp's live channels today (bitstamp.py); a LOBSTER
message file or a Databento MBO file would be another adapter returning the same
`Capture`, registered here under a name of its own."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from simulators.replay.bitstamp import BitstampCapture
from simulators.replay.errors import ReplayDataError, UnknownReplayError
from simulators.replay.events import Capture

ProgressFn = Callable[[int, int], None]

#: how to install the captures that packages ship
DATA_EXTRA = "pip install -e '.[data]'"


class ReplaySource(Protocol):
    """One order-by-order capture on disk."""

    name: str

    @property
    def description(self) -> str: ...

    def load(self, progress: ProgressFn | None = None) -> Capture:
        """The capture in normal form. Raises `ReplayDataError` if its files are missing
        or malformed."""
        ...


def package_data_dir(package: str, subdir: str) -> Path:
    """A folder of data files inside an installed package, found without importing the
    package (only its files are used). Raises `ReplayDataError` naming the extra to
    install if the package is absent."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ReplayDataError(
            f"the {package} package is not installed (the data extra: {DATA_EXTRA})"
        )
    for root in spec.submodule_search_locations:
        folder = Path(root) / subdir
        if folder.is_dir():
            return folder
    raise ReplayDataError(f"{package} is installed without its {subdir}/ folder")


def _bitstamp_btcusd() -> ReplaySource:
    # ob-analytics 0.1.0 ships a 30-minute capture of Bitstamp BTC/USD as its sample
    folder = package_data_dir("ob_analytics", "_sample_data")
    return BitstampCapture("bitstamp-btcusd", folder, symbol="BTC/USD", currency="USD")


REPLAYS: dict[str, Callable[[], ReplaySource]] = {"bitstamp-btcusd": _bitstamp_btcusd}


def replay_names() -> list[str]:
    return sorted(REPLAYS)


def open_replay(name: str) -> ReplaySource:
    """The source registered as `name`. Raises `UnknownReplayError` (listing the known
    names) or `ReplayDataError` (its data is not installed)."""
    factory = REPLAYS.get(name)
    if factory is None:
        known = ", ".join(replay_names())
        raise UnknownReplayError(f"unknown replay {name!r} (known: {known})")
    return factory()


def load_replay(name: str, progress: ProgressFn | None = None) -> Capture:
    return open_replay(name).load(progress)
