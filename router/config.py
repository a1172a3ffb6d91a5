"""Reading TOML configuration with errors that name the file and the key.

A pure leaf module like `router.domain`: simulators, dealers and the service all read
their files through `ConfigTable`, so every message has the same shape:
``config/scenarios/calm.toml: market.spread_ticks: must be > 0, got -1``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


def _default_config_dir() -> Path:
    """BLOCKROUTE_CONFIG_DIR, else the checkout's config/, else ./config."""
    env = os.environ.get("BLOCKROUTE_CONFIG_DIR")
    if env:
        return Path(env)
    beside = Path(__file__).resolve().parent.parent / "config"
    return beside if beside.is_dir() else Path("config")


DEFAULT_CONFIG_DIR = _default_config_dir()

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class ConfigError(ValueError):
    """A configuration file or value is wrong; the message names the file and key."""


def epoch_ns(when: datetime) -> int:
    """Nanoseconds since the epoch of `when` (UTC if it names no zone), exactly: through
    a float (`timestamp() * 1e9`) a time to the microsecond lands up to a few hundred
    ns off, after a journal time it was printed from as often as not, so that
    `--since` that time left it out."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // timedelta(microseconds=1) * 1000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_duration(text: str | float | int) -> float:
    """Seconds from `90`, `90s`, `15m`, `3h` or `250ms`. Raises ValueError."""
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        return float(text)
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90, 90s, 15m, 3h)")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def load_toml(path: Path) -> ConfigTable:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return ConfigTable(data, str(path), "")


class ConfigTable:
    """A TOML table that remembers where it came from, with typed, checked getters."""

    __slots__ = ("_data", "_file", "_prefix", "_used")

    def __init__(self, data: dict[str, Any], file: str, prefix: str) -> None:
        self._data = data
        self._file = file
        self._prefix = prefix
        self._used: set[str] = set()

    @property
    def file(self) -> str:
        return self._file

    def where(self, key: str) -> str:
        return f"{self._file}: {self._prefix}{key}"

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.where(key)}: {problem}")

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def _raw(self, key: str, default: Any) -> Any:
        self._used.add(key)
        if key in self._data:
            return self._data[key]
        if default is _REQUIRED:
            raise self.error(key, "missing")
        return default

    def get_str(self, key: str, default: Any = None) -> str:
        value = self._raw(key, _REQUIRED if default is None else default)
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {value!r}")
        return value

    def get_float(
        self,
        key: str,
        default: Any = None,
        *,
        min: float | None = None,
        max: float | None = None,
        gt: float | None = None,
    ) -> float:
        value = self._raw(key, _REQUIRED if default is None else default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"must be a number, got {value!r}")
        return _check_range(self, key, float(value), min, max, gt)

    def get_int(
        self,
        key: str,
        default: Any = None,
        *,
        min: int | None = None,
        max: int | None = None,
        gt: int | None = None,
    ) -> int:
        value = self._raw(key, _REQUIRED if default is None else default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, got {value!r}")
        return int(_check_range(self, key, value, min, max, gt))

    def get_probability(self, key: str, default: Any = None) -> float:
        return self.get_float(key, default, min=0.0, max=1.0)

    def get_duration(self, key: str, default: Any = None, *, gt: float | None = None) -> float:
        value = self._raw(key, _REQUIRED if default is None else default)
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None
        return _check_range(self, key, seconds, None, None, gt)

    def table(self, key: str) -> ConfigTable:
        value = self._raw(key, _REQUIRED)
        if not isinstance(value, dict):
            raise self.error(key, "must be a table")
        return ConfigTable(value, self._file, f"{self._prefix}{key}.")

    def tables(self, key: str) -> Iterator[ConfigTable]:
        """An array of tables ([[key]]); each item's errors say `key[i].field`."""
        value = self._raw(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(key, "must be an array of tables ([[...]])")
        for i, item in enumerate(value):
            yield ConfigTable(item, self._file, f"{self._prefix}{key}[{i}].")

    def check_no_unknown_keys(self) -> None:
        """Typos should fail loudly rather than be silently ignored."""
        unknown = sorted(set(self._data) - self._used)
        if unknown:
            raise self.error(unknown[0], "unknown key")


_REQUIRED: Any = object()


def _check_range(
    t: ConfigTable, key: str, value: float, lo: float | None, hi: float | None, gt: float | None
) -> float:
    if gt is not None and not value > gt:
        raise t.error(key, f"must be > {gt:g}, got {value:g}")
    if lo is not None and value < lo:
        raise t.error(key, f"must be >= {lo:g}, got {value:g}")
    if hi is not None and value > hi:
        raise t.error(key, f"must be <= {hi:g}, got {value:g}")
    return value
