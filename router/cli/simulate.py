"""`blockroute simulate` and `blockroute backtest`: parent orders through scenarios, one
path (simulate) or many paired episodes (backtest), stored in the run database."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from router.cli.args import (
    Subparsers,
    UsageError,
    add_db_url,
    add_executor,
    add_json,
    add_market,
    check_executor,
    duration,
    integer,
    positive_int,
    side,
    strategy_names,
)
from router.cli.console import Col, Progress, left, print_table
from router.cli.output import check_json_path, check_report_dir, emit_json, write_report
from router.tca import MARKOUT_HORIZONS_S

if TYPE_CHECKING:
    from router.store import Store

log = structlog.get_logger("blockroute")

_JSON_HELP = "write JSON here ('-' = stdout)"
_REPORT_HELP = "write a self-contained HTML report here"


def register(sub: Subparsers) -> None:
    """Add `simulate` and `backtest` to the top-level subcommands."""
    sim = sub.add_parser("simulate", help="run one parent order through a scenario")
    sim.add_argument("--scenario", help="a scenario of config/scenarios/ (or --market)")
    add_market(sim)
    sim.add_argument(
        "--strategies",
        default="all",
        help="comma-separated, e.g. twap,sor, or 'all' (default): every strategy, the "
        "baselines and the router side by side on the same market path",
    )
    sim.add_argument("--seed", type=integer, default=42)
    sim.add_argument("--qty", type=integer, help="parent quantity (default: the scenario's)")
    sim.add_argument("--side", type=side, help="buy or sell (default: the scenario's)")
    sim.add_argument("--horizon", type=duration, help="e.g. 90m, 3h (default: scenario's)")
    add_json(sim, _JSON_HELP)
    sim.add_argument("--limit", type=float, help="limit price of the parent (default: none)")
    sim.add_argument("--report", type=Path, help=_REPORT_HELP)
    sim.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="processes the strategies run on, each a fork of the path built once (the "
        "same report on any number)",
    )
    add_db_url(sim)
    sim.set_defaults(func=run_simulate)

    bt = sub.add_parser("backtest", help="many episodes per scenario, strategies paired")
    bt.add_argument("--scenarios", default="", help="comma-separated scenario names")
    add_market(bt)
    bt.add_argument(
        "--strategies", default="twap,vwap,pov,ac,sor", help="comma-separated, or 'all'"
    )
    bt.add_argument("--episodes", type=positive_int, required=True)
    bt.add_argument("--seed0", type=integer, default=1000)
    add_executor(bt)
    bt.add_argument("--side", type=side, help="buy or sell (default: each scenario's)")
    bt.add_argument(
        "--both-sides",
        action="store_true",
        help="also run each seed on the scenario's mirror (same market, the parent's side "
        "flipped); rows per side and pooled",
    )
    add_json(bt, _JSON_HELP)
    bt.add_argument("--report", type=Path, help=_REPORT_HELP)
    bt.add_argument("--batch", help="label stored with every run (default: a timestamp)")
    bt.add_argument(
        "--baseline", help="strategy the others are paired against (default: twap, if run)"
    )
    bt.add_argument(
        "--no-hindsight",
        action="store_true",
        help="skip the hindsight oracle (one simulation less per episode)",
    )
    bt.add_argument(
        "--store-orders",
        action="store_true",
        help="store every child order, fill and decision too (about 0.8 MB per run), "
        "not only each run's summary and TCA",
    )
    bt.add_argument(
        "--models",
        type=Path,
        help="folder of the model artifacts the model-guided strategies run on, as models/ "
        "holds them (default: the shipped models/)",
    )
    add_db_url(bt)
    bt.set_defaults(func=run_backtest)


def _open_store(url: str | None) -> Store | None:
    """The run store, or None with --db-url none. Opened before any work is done, so a
    bad URL fails fast (`router.store.StoreError`)."""
    if url is not None and url.lower() == "none":
        return None
    from router.store import Store

    return Store.open(url)


def _now() -> datetime:
    # the composition root may read the wall clock: it labels stored runs
    return datetime.now(UTC).replace(microsecond=0)


def _pct(x: float | None) -> str:
    return f"{x:.0%}" if x is not None else ""


def _bps(x: float | None) -> str:
    return f"{x:.1f}" if x is not None else ""


def _one_market(scenario: str | None, market: str) -> str:
    """The scenario to load: --scenario's, or the replay --market names."""
    if market and scenario:
        raise UsageError("--market: a replay brings its own scenario; not with --scenario")
    if not market and not scenario:
        raise UsageError("--scenario or --market replay:NAME is required")
    return market or scenario or ""


def run_simulate(args: argparse.Namespace) -> None:
    """`simulate`: every strategy once on the same market path.

    Raises `UsageError`, `ConfigError` or `DomainError` on bad input (unknown scenario or
    strategy, overrides the scenario cannot take), before anything is written.
    """
    from router.app import apply_overrides, check_strategies, simulate
    from simulators.scenario import load_scenario

    strategies = strategy_names(args.strategies)
    check_strategies(strategies)
    name = _one_market(args.scenario, args.market or "")
    scenario = apply_overrides(
        load_scenario(name, args.config_dir), args.qty, args.side, args.horizon
    )
    check_json_path(args.json_path)
    check_report_dir(args.report)
    store = _open_store(args.db_url)
    steps = [*strategies, "hindsight"]
    with Progress(f"simulate {scenario.name}") as bar:

        def progress(name: str) -> None:
            log.info("running strategy", strategy=name)
            bar(steps.index(name), len(steps))

        report = simulate(
            scenario,
            strategies,
            args.seed,
            progress=progress,
            limit_price=args.limit,
            config_dir=args.config_dir,
            workers=args.workers,
        )
        bar(len(steps), len(steps))
    if store is not None:
        from router.store import RunMeta

        created = _now()
        for run in (*report.results, *([report.hindsight] if report.hindsight else [])):
            run.record(store, RunMeta("simulate", scenario.name, args.seed, run.strategy, created))
    doc = report.to_json()
    if args.json_path != "-":
        _print_simulate(doc)
    if args.report is not None:
        from router.reporting import write_simulate_report

        index = write_report(write_simulate_report, report.to_json(detail=True), args.report)
        if args.json_path != "-":
            print(f"report: {index}")
    emit_json(args.json_path, doc)


def _print_simulate(doc: dict[str, Any]) -> None:
    p = doc["parent"]
    print(
        f"scenario {doc['scenario']}  seed {doc['seed']}  {p['side']} {p['qty']:,} "
        f"{p['symbol']} over {p['horizon_s'] / 60:g} min, arrival mid "
        f"{p['arrival_mid']:.4f}"
    )
    gaps = doc.get("gap_captured", {})
    rows = []
    for r in doc["results"]:
        mix, parts = r["venue_mix"], r["is_parts_bps"]
        rows.append(
            [
                r["strategy"],
                f"{r['is_bps']:.2f}",
                f"{parts['spread_fees']:.2f}",
                f"{parts['impact']:.2f}",
                f"{parts['timing']:.2f}",
                f"{parts['opportunity']:.2f}",
                f"{r['vwap_slippage_bps']:.2f}",
                f"{r['filled_qty']:,}",
                str(r["n_child_orders"]),
                f"{r['completion']:.1%}",
                f"{mix['lit']:.0%}/{mix['dark']:.0%}/{mix['rfq']:.0%}",
                _pct(gaps.get(r["strategy"])),
            ]
        )
    print_table(
        [
            left("strategy"),
            "IS bps",
            "spread",
            "impact",
            "timing",
            "opport",
            "vs VWAP",
            "filled",
            "children",
            "done",
            "lit/dark/rfq",
            "gap",
        ],
        rows,
    )
    if "hindsight" in doc:
        print(
            f"hindsight schedule (taking only, planned on the unimpacted path; a "
            f"reference, not a bound): {doc['hindsight']['is_bps']:.2f} bps; gap = share "
            "of the TWAP-to-hindsight gap captured"
        )


def run_backtest(args: argparse.Namespace) -> None:
    """`backtest`: K paired episodes per scenario and strategy.

    Raises `UsageError` (or the scenario's `ConfigError`) on bad input before any episode
    runs; the rows are the same for any number of workers.
    """
    from router.app import check_strategies
    from router.backtest import backtest
    from router.ray_tasks import ExecutorUnavailable

    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    strategies = strategy_names(args.strategies)
    if args.market:
        if scenarios:
            raise UsageError("--market: a replay brings its own scenario; not with --scenarios")
        scenarios = [args.market]
    if not scenarios:
        raise UsageError("--scenarios: no scenario given")
    check_strategies(strategies)
    baseline = args.baseline or "twap"
    if args.baseline and args.baseline not in strategies:
        raise UsageError(f"--baseline: {args.baseline!r} is not one of --strategies")
    if args.side is not None and args.both_sides:
        raise UsageError("--side: not with --both-sides, which runs both sides")
    check_executor(args.executor, args.ray_address)
    check_json_path(args.json_path)
    check_report_dir(args.report)
    store = _open_store(args.db_url)  # fail fast; workers open their own connections
    created = _now()
    n = len(scenarios) * args.episodes * (2 if args.both_sides else 1)
    with Progress(f"backtest {n} episodes") as bar:
        try:
            doc = backtest(
                scenarios,
                strategies,
                args.episodes,
                args.seed0,
                args.workers,
                args.config_dir,
                db_url=None if store is None else store.url,
                batch=args.batch or f"backtest {created.isoformat()}",
                created_at=created,
                progress=bar,
                hindsight=not args.no_hindsight,
                store_orders=args.store_orders,
                baseline=baseline,
                side=args.side,
                both_sides=args.both_sides,
                executor=args.executor,
                ray_address=args.ray_address,
                models_dir=args.models,
            )
        except ExecutorUnavailable as exc:  # e.g. an unreachable --ray-address
            raise UsageError(str(exc)) from None
    if args.json_path != "-":
        _print_backtest(doc, baseline, args.both_sides)
        m = doc["meta"]
        on = f"{m['workers']} worker(s)"
        if args.executor == "ray":
            on = "a Ray cluster" if args.ray_address else f"{m['workers']} Ray CPU(s)"
        print(f"{n} episodes on {on} in {m['wall_s']:.1f} s")
    if args.report is not None:
        from router.reporting import write_backtest_report

        index = write_report(write_backtest_report, doc, args.report)
        if args.json_path != "-":
            print(f"report: {index}")
    emit_json(args.json_path, doc)


def _print_backtest(doc: dict[str, Any], baseline: str, both_sides: bool) -> None:
    """The rows by scenario (and side, with --both-sides), each block closed by its
    hindsight reference when there is one."""

    def block(r: dict[str, Any]) -> tuple[str, str | None]:
        return r["scenario"], r.get("side")

    def lead(r: dict[str, Any]) -> list[str]:
        return [r["scenario"], r.get("side", "")] if both_sides else [r["scenario"]]

    def hindsight_row(h: dict[str, Any]) -> list[str]:
        blank = [""] * (2 if both_sides else 1)
        return [*blank, "hindsight", "", f"{h['is_bps_mean']:.2f}", f"{h['is_bps_stderr']:.2f}"]

    # on a replayed market: what each strategy's resting children earned and what its
    # aggressive ones took from the real book (router.backtest._replay_columns)
    replay = any("passive_lit" in r for r in doc["rows"])
    paired = {(*block(p), p["strategy"]): p for p in doc["paired"]}
    gaps = {(*block(g), g["strategy"]): g["share"] for g in doc["gap_captured"]}
    hind = {block(h): h for h in doc["hindsight"]}
    rows: list[list[str]] = []
    last: tuple[str, str | None] | None = None
    for r in doc["rows"]:
        key = (*block(r), r["strategy"])
        if last is not None and block(r) != last and last in hind:
            rows.append(hindsight_row(hind[last]))
        last = block(r)
        d = paired.get(key)
        rows.append(
            [
                *lead(r),
                r["strategy"],
                str(r["episodes"]),
                f"{r['is_bps_mean']:.2f}",
                f"{r['is_bps_stderr']:.2f}",
                f"{r['is_bps_std']:.2f}",
                f"{d['diff_mean_bps']:.2f}" if d else "",
                f"{d['diff_stderr_bps']:.2f}" if d else "",
                _pct(gaps.get(key)),
                f"{r['completion_mean']:.1%}",
                _pct(r.get("venue_mix_mean", {}).get("rfq")),
                _bps(r.get("dealer_pnl_bps")),
                *(_replay_cells(r) if replay else []),
            ]
        )
    if last is not None and last in hind:
        rows.append(hindsight_row(hind[last]))
    columns: list[Col | str] = [left("scenario"), *([left("side")] if both_sides else [])]
    columns += [left("strategy")]
    columns += ["episodes", "IS mean", "+-se", "std", f"vs {baseline}", "+-se", "gap", "done"]
    columns += ["rfq", "dealers"]
    if replay:
        columns += ["maker fill", f"markout {_FIRST_MARKOUT}", "real taken", "trades lost"]
    print_table(columns, (row + [""] * (len(columns) - len(row)) for row in rows))


_FIRST_MARKOUT = f"{MARKOUT_HORIZONS_S[0]}s"  # the maker fills' shortest markout (router.app)


def _replay_cells(r: dict[str, Any]) -> list[str]:
    """A replayed market's columns of a backtest row: the resting lit children's fill
    rate and first markout, the real orders the strategy took, and the real trades it
    left unmatched."""
    passive, replay = r.get("passive_lit"), r.get("replay")
    if passive is None or replay is None:
        return ["", "", "", ""]
    markout = passive["markouts_bps"].get(_FIRST_MARKOUT)
    return [
        _pct(passive["fill_rate"]),
        _bps(markout),
        str(replay["real_orders_taken"]),
        str(replay["real_trades_unmatched_because_of_clients"]),
    ]
