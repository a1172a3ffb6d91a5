"""The parser class, argument types and flags that the commands share.

A bad argument is a `UsageError`: `main` reports it as one line and exits with status 2,
instead of argparse's usage block.
"""

from __future__ import annotations

import argparse
from typing import NoReturn, TypeAlias

from router.config import parse_duration
from router.domain import DomainError, Side


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse's parser, but its errors raise `UsageError` instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


# what `add_subparsers` returns: each command family's `register` adds its commands to it
Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"


def duration(text: str) -> float:
    """Seconds from `90`, `90s`, `15m` or `3h`."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def side(text: str) -> Side:
    try:
        return Side.parse(text)
    except DomainError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def integer(text: str) -> int:
    """An integer, with `_` allowed as a thousands separator (`8_000_000`)."""
    try:
        return int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def positive_int(text: str) -> int:
    value = integer(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def port(text: str) -> int:
    value = integer(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text}")
    return value


def paper_time(text: str) -> float:
    """A plain number in the paper's time unit, or else a duration in seconds."""
    try:
        return float(text)
    except ValueError:
        return duration(text)


def market(text: str) -> str:
    """`--market`: 'sim' (the scenario's simulated flow, as without it) or 'replay:NAME';
    returns the scenario name a replay stands for, '' for 'sim'."""
    if text == "sim":
        return ""
    if text.startswith("replay:") and len(text) > len("replay:"):
        return text
    raise argparse.ArgumentTypeError(f"expected 'sim' or 'replay:NAME', got {text!r}")


def add_market(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--market",
        type=market,
        help="'replay:NAME' runs the lit venue on a replayed order-by-order capture (its "
        "parent and venues from config/replay/NAME.toml; seeds pick its start offsets) "
        "instead of the simulated flow ('sim', the default)",
    )


def add_json(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """`--json PATH` (`-` = standard output), read as `args.json_path`."""
    p.add_argument("--json", dest="json_path", help=help)


def add_db_url(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db-url",
        default=None,
        help="database for runs, orders, fills and decisions: sqlite:///file.db, "
        "postgresql://user@host/db, or 'none' (default: blockroute.db here)",
    )


def add_executor(p: argparse.ArgumentParser, workers_are: str = "worker processes") -> None:
    """`--workers N`, `--executor local|ray` and `--ray-address ADDR` (see
    `check_executor`)."""
    p.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help=f"{workers_are} (with --executor ray and no --ray-address: the local cluster's CPUs)",
    )
    p.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local: this machine's process pool (default); ray: Ray tasks (the `ray` extra)",
    )
    p.add_argument(
        "--ray-address",
        help="with --executor ray: 'auto' or ray://HOST:10001 (default: a local cluster "
        "started for this run)",
    )


def check_executor(executor: str, ray_address: str | None) -> None:
    """Raises `UsageError` if --executor ray is asked without the `ray` extra, or
    --ray-address without it."""
    if executor != "ray":
        if ray_address:
            raise UsageError("--ray-address: only with --executor ray")
        return
    need_ray("--executor ray")


def need_ray(what: str) -> None:
    """Raises `UsageError`, naming the extra to install, if Ray is not installed."""
    try:
        import ray  # noqa: F401  (the `ray` extra)
    except ImportError as exc:
        raise UsageError(
            f"{what} needs the ray extra ({exc.name} is missing): "
            "python3 -m pip install -e '.[ray]'"
        ) from None


def strategy_names(text: str) -> list[str]:
    """--strategies: names separated by commas, or "all" (the registry's order).

    Raises `UsageError` if "all" comes with other names; unknown names are left to
    `router.app.check_strategies`.
    """
    names = [s.strip() for s in text.split(",") if s.strip()]
    if "all" not in names:
        return names
    if len(names) > 1:
        raise UsageError("--strategies: 'all' stands alone (it already runs every strategy)")
    from router.strategies import STRATEGIES

    return list(STRATEGIES)
