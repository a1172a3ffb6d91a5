"""`blockroute ...`: the command line.

Exit status 0 on success, 2 on bad arguments or bad input (one line on standard error
naming the problem, nothing written), 1 on an internal failure.

This module holds the top-level parser and `main`; each command family is a module
that adds its subcommands to that parser (`register`) and binds each to the function
that runs it (`set_defaults(func=...)`): `simulate` (simulate, backtest), `dealers`,
`train`, `models`, `evaluate`, `schedule`, `serve`, `bench`, `replay`. The command
functions import what they run when they run, so that a command loads only its own part
of the project (the simulator, the training code and the service take 0.7 to 1.7 s each
to import; MLflow, which only `models` and `train --register` need, about as long).
`args` holds the shared argument types, `output` the `--json`/`--report` files,
`console` the progress bars and tables.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import structlog

from router.cli import (
    bench,
    dealers,
    evaluate,
    models,
    replay,
    schedule,
    serve,
    simulate,
    train,
)
from router.cli.args import Parser, UsageError
from router.config import DEFAULT_CONFIG_DIR, ConfigError
from router.domain import DomainError
from router.logs import configure_logging

__all__ = ["EXIT_BAD_INPUT", "UsageError", "build_parser", "main"]

log = structlog.get_logger("blockroute")

EXIT_BAD_INPUT = 2

# in the order of `blockroute --help`
_FAMILIES = (simulate, dealers, train, models, evaluate, schedule, serve, bench, replay)


def build_parser() -> Parser:
    """The whole command line: parsing sets `args.func`, the function that runs the
    command. A parse error raises `UsageError` (it does not exit)."""
    p = Parser(prog="blockroute", description="Smart order router for block trades.")
    p.add_argument("--log-json", action="store_true", help="log JSON lines to stderr")
    p.add_argument("--log-level", default="warning", help="debug, info, warning, error")
    p.add_argument(
        "--config-dir",
        type=Path,
        default=DEFAULT_CONFIG_DIR,
        help="folder with instruments.toml, venues/ and scenarios/",
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for family in _FAMILIES:
        family.register(sub)
    return p


def _bad_input_errors() -> tuple[type[Exception], ...]:
    # built only when an exception gets past main's clause for the command line's own
    # errors: the store and the artifacts take 0.7 s to import, which a command that
    # needs neither (or `--help`, or a mistyped option) should not pay
    from models.catalog import CatalogError
    from models.serving.artifacts import ModelError
    from router.store import StoreError
    from simulators.replay.errors import ReplayError

    return (StoreError, ModelError, ReplayError, CatalogError)


def _bad_input(exc: Exception) -> int:
    print(f"blockroute: error: {exc}", file=sys.stderr)
    return EXIT_BAD_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command (`argv`: the arguments after the program's name; default
    `sys.argv[1:]`). Returns the exit status; errors are reported on standard error
    and never raised."""
    try:
        args = build_parser().parse_args(argv)
        try:
            configure_logging(json=args.log_json, level=args.log_level)
        except ValueError as exc:
            raise UsageError(f"--log-level: {exc}") from None
        args.func(args)
        return 0
    except SystemExit:  # --help: before the clauses below, one of which imports
        raise
    except KeyboardInterrupt:
        print("blockroute: interrupted", file=sys.stderr)
        return 130
    except (UsageError, ConfigError, DomainError) as exc:
        return _bad_input(exc)
    except _bad_input_errors() as exc:
        return _bad_input(exc)
    except Exception as exc:  # an internal failure: one line, details in the log
        log.exception("internal error")
        print(f"blockroute: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
