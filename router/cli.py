"""`blockroute ...`: the command line.

Exit status 0 on success, 2 on bad arguments or bad input (one line on standard error
naming the problem, nothing written), 1 on an internal failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import structlog

from router.config import DEFAULT_CONFIG_DIR, ConfigError, parse_duration
from router.domain import DomainError, Side
from router.logs import configure_logging

log = structlog.get_logger("blockroute")

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # one readable line instead of argparse's usage block
        raise UsageError(f"{self.prog}: {message}")


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _side(text: str) -> Side:
    try:
        return Side.parse(text)
    except DomainError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="blockroute", description="Smart order router for block trades.")
    p.add_argument("--log-json", action="store_true", help="log JSON lines to stderr")
    p.add_argument("--log-level", default="warning", help="debug, info, warning, error")
    p.add_argument(
        "--config-dir",
        type=Path,
        default=DEFAULT_CONFIG_DIR,
        help="folder with instruments.toml, venues/ and scenarios/",
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sim = sub.add_parser("simulate", help="run one parent order through a scenario")
    sim.add_argument("--scenario", required=True)
    sim.add_argument("--strategies", default="twap", help="comma-separated, e.g. twap")
    sim.add_argument("--seed", type=_int, default=42)
    sim.add_argument("--qty", type=_int, help="parent quantity (default: the scenario's)")
    sim.add_argument("--side", type=_side, help="buy or sell (default: the scenario's)")
    sim.add_argument("--horizon", type=_duration, help="e.g. 90m, 3h (default: scenario's)")
    sim.add_argument("--json", dest="json_path", help="write JSON here ('-' = stdout)")

    bench = sub.add_parser("bench", help="benchmarks")
    bsub = bench.add_subparsers(dest="bench", required=True, parser_class=_Parser)
    bb = bsub.add_parser("book", help="matching engine alone")
    bb.add_argument("--events", type=_positive_int, default=1_000_000)
    bb.add_argument("--no-python", action="store_true", help="skip the plain-Python reference book")
    bb.add_argument("--json", dest="json_path")
    bi = bsub.add_parser("impact", help="square-root law, impact decay, return statistics")
    bi.add_argument("--scenario", default="calm")
    bi.add_argument("--seeds", type=_positive_int, default=20)
    bi.add_argument("--duration", type=_duration, default=1800.0, help="metaorder duration")
    bi.add_argument("--json", dest="json_path")
    bs = bsub.add_parser("scenario", help="one full simulation: wall time and memory")
    bs.add_argument("--scenario", default="news-shock")
    bs.add_argument("--strategy", default="twap")
    bs.add_argument("--seed", type=_int, default=42)
    bs.add_argument("--repeat", type=_positive_int, default=5)
    bs.add_argument("--json", dest="json_path")
    return p


def _emit_json(path: str | None, doc: dict[str, Any]) -> None:
    if path is None:
        return
    text = json.dumps(doc, indent=2, sort_keys=False) + "\n"
    if path == "-":
        sys.stdout.write(text)
    else:
        Path(path).write_text(text)


def _cmd_simulate(args: argparse.Namespace) -> None:
    from router.app import apply_overrides, check_strategies, simulate
    from simulators.scenario import load_scenario

    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    check_strategies(strategies)
    scenario = apply_overrides(
        load_scenario(args.scenario, args.config_dir), args.qty, args.side, args.horizon
    )
    if args.json_path not in (None, "-"):
        parent = Path(args.json_path).resolve().parent
        if not parent.is_dir():
            raise UsageError(f"--json: folder {parent} does not exist")
    report = simulate(
        scenario,
        strategies,
        args.seed,
        progress=lambda name: log.info("running strategy", strategy=name),
    )
    doc = report.to_json()
    if args.json_path != "-":
        p = doc["parent"]
        print(
            f"scenario {doc['scenario']}  seed {doc['seed']}  {p['side']} {p['qty']:,} "
            f"{p['symbol']} over {p['horizon_s'] / 60:g} min, arrival mid "
            f"{p['arrival_mid']:.4f}"
        )
        print(
            f"{'strategy':<10}{'IS bps':>9}{'filled':>11}{'avg px':>11}{'vs VWAP':>9}"
            f"{'children':>9}{'done':>7}   lit/dark/rfq"
        )
        for r in doc["results"]:
            mix = r["venue_mix"]
            print(
                f"{r['strategy']:<10}{r['is_bps']:>9.2f}{r['filled_qty']:>11,}"
                f"{r['avg_price']:>11.4f}{r['vwap_slippage_bps']:>9.2f}"
                f"{r['n_child_orders']:>9}{r['completion']:>7.1%}   "
                f"{mix['lit']:.0%}/{mix['dark']:.0%}/{mix['rfq']:.0%}"
            )
    _emit_json(args.json_path, doc)


def _cmd_bench(args: argparse.Namespace) -> None:
    doc: dict[str, Any]
    if args.bench == "book":
        from bench.book import run_book_bench

        doc = run_book_bench(args.events, compare_python=not args.no_python)
        if args.json_path != "-":
            print(
                f"book: {doc['events']:,} events in {doc['seconds']:.3f} s = "
                f"{doc['events_per_s']:,.0f} events/s"
            )
            if "python_events_per_s" in doc:
                print(
                    f"plain Python book: {doc['python_events_per_s']:,.0f} events/s; "
                    f"speed-up {doc['speedup_vs_python']:.1f}x"
                )
    elif args.bench == "impact":
        from bench.impact import run_impact_study

        def progress(done: int, total: int) -> None:
            print(f"\rimpact study: {done}/{total} runs", end="", file=sys.stderr, flush=True)

        doc = run_impact_study(
            args.scenario,
            args.seeds,
            duration_s=args.duration,
            config_dir=args.config_dir,
            progress=progress,
        )
        print(file=sys.stderr)
        if args.json_path != "-":
            print(
                f"{'Q/ADV':>8}{'impact bps':>12}{'+-':>6}{'I/sigma':>9}{'+1x bps':>9}{'+2x bps':>9}"
            )
            for r in doc["rows"]:
                print(
                    f"{r['q_over_adv']:>8.2%}{r['impact_bps']:>12.2f}"
                    f"{r['impact_stderr_bps']:>6.2f}{r['impact_over_sigma']:>9.3f}"
                    f"{r['after_1x_bps']:>9.2f}{r['after_2x_bps']:>9.2f}"
                )
            ret = doc["returns_1min"]
            if doc["exponent_above_1pct_adv"] is not None:
                print(f"exponent fitted on Q/ADV >= 1%: {doc['exponent_above_1pct_adv']:.3f}")
            print(
                f"impact ~ (Q/ADV)^{doc['exponent']:.3f}, Y = {doc['prefactor_y']:.2f}; "
                f"left after 1x/2x the duration: {doc['decay_ratio_1x']:.0%} / "
                f"{doc['decay_ratio_2x']:.0%}"
            )
            print(
                f"1-min returns: n={ret['n']}, sd {ret['std_bps']:.2f} bps, excess kurtosis "
                f"{ret['excess_kurtosis']:.2f}, lag-1 autocorrelation "
                f"{ret['lag1_autocorr']:.3f} +- {ret['lag1_autocorr_stderr']:.3f}"
            )
    else:
        from bench.scenario import run_scenario_bench

        doc = run_scenario_bench(
            args.scenario, args.strategy, args.seed, args.repeat, args.config_dir
        )
        if args.json_path != "-":
            print(
                f"{doc['scenario']} with {doc['strategy']}: best {doc['seconds']:.3f} s, "
                f"median {doc['median_seconds']:.3f} s over {doc['repeat']} runs; "
                f"first run incl. start-up {doc['first_seconds']:.3f} s; peak traced "
                f"memory {doc['peak_traced_mb']:.1f} MB, max RSS {doc['max_rss_mb']:.0f} MB"
            )
    _emit_json(args.json_path, doc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        try:
            configure_logging(json=args.log_json, level=args.log_level)
        except ValueError as exc:
            raise UsageError(f"--log-level: {exc}") from None
        if args.command == "simulate":
            _cmd_simulate(args)
        elif args.command == "bench":
            _cmd_bench(args)
        return 0
    except (UsageError, ConfigError, DomainError) as exc:
        print(f"blockroute: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("blockroute: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal failure: one line, details in the log
        log.exception("internal error")
        print(f"blockroute: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
