"""`blockroute ...`: the command line.

Exit status 0 on success, 2 on bad arguments or bad input (one line on standard error
naming the problem, nothing written), 1 on an internal failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
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


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _port(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text}")
    return value


def _paper_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return _duration(text)


def _db_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db-url",
        default=None,
        help="database for runs, orders, fills and decisions: sqlite:///file.db, "
        "postgresql://user@host/db, or 'none' (default: blockroute.db here)",
    )


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
    sim.add_argument(
        "--strategies",
        default="all",
        help="comma-separated, e.g. twap,sor, or 'all' (default): every strategy, the "
        "baselines and the router side by side on the same market path",
    )
    sim.add_argument("--seed", type=_int, default=42)
    sim.add_argument("--qty", type=_int, help="parent quantity (default: the scenario's)")
    sim.add_argument("--side", type=_side, help="buy or sell (default: the scenario's)")
    sim.add_argument("--horizon", type=_duration, help="e.g. 90m, 3h (default: scenario's)")
    sim.add_argument("--json", dest="json_path", help="write JSON here ('-' = stdout)")
    sim.add_argument("--limit", type=float, help="limit price of the parent (default: none)")
    sim.add_argument("--report", type=Path, help="write a self-contained HTML report here")
    _db_args(sim)

    bt = sub.add_parser("backtest", help="many episodes per scenario, strategies paired")
    bt.add_argument("--scenarios", required=True, help="comma-separated scenario names")
    bt.add_argument(
        "--strategies", default="twap,vwap,pov,ac,sor", help="comma-separated, or 'all'"
    )
    bt.add_argument("--episodes", type=_positive_int, required=True)
    bt.add_argument("--seed0", type=_int, default=1000)
    bt.add_argument("--workers", type=_positive_int, default=1, help="worker processes")
    bt.add_argument("--side", type=_side, help="buy or sell (default: each scenario's)")
    bt.add_argument(
        "--both-sides",
        action="store_true",
        help="also run each seed on the scenario's mirror (same market, the parent's side "
        "flipped); rows per side and pooled",
    )
    bt.add_argument("--json", dest="json_path", help="write JSON here ('-' = stdout)")
    bt.add_argument("--report", type=Path, help="write a self-contained HTML report here")
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
    _db_args(bt)

    dl = sub.add_parser("dealers", help="dealer analytics")
    dsub = dl.add_subparsers(dest="dealers", required=True, parser_class=_Parser)
    sc = dsub.add_parser("scorecard", help="RFQ days against the panel; a scorecard per dealer")
    sc.add_argument("--scenario", default="illiquid-bond")
    sc.add_argument("--rfqs", type=_positive_int, default=300, help="RFQs in all")
    sc.add_argument("--seed", type=_int, default=1, help="seed of the first day")
    sc.add_argument("--per-day", type=_positive_int, default=80, help="RFQs per simulated day")
    sc.add_argument(
        "--panel-size",
        default="4",
        help="dealers per RFQ; a comma-separated list draws one per RFQ (e.g. 2,4,8)",
    )
    sc.add_argument(
        "--two-sided", type=float, default=0.0, help="share of two-sided requests, 0..1"
    )
    sc.add_argument("--json", dest="json_path", help="write JSON here ('-' = stdout)")
    sc.add_argument("--report", type=Path, help="write a self-contained HTML report here")
    dp = dsub.add_parser(
        "pnl", help="the simulated dealers' own P&L on their client trades, by size"
    )
    dp.add_argument("--scenario", default="calm", help="a scenario, or 'all' (pooled)")
    dp.add_argument("--rfqs", type=_positive_int, default=2000, help="RFQs per scenario")
    dp.add_argument("--seed", type=_int, default=8_000_000, help="seed of the first day")
    dp.add_argument("--workers", type=_positive_int, default=1, help="worker processes")
    dp.add_argument("--json", dest="json_path", help="write JSON here ('-' = stdout)")

    tr = sub.add_parser("train", help="regenerate a shipped model from simulated history")
    tsub = tr.add_subparsers(dest="model", required=True, parser_class=_Parser)
    td = tsub.add_parser("dealer", help="dealer models: P(respond), P(best quote), P(hit)")
    td.add_argument("--out", type=Path, help="folder for the artifacts (default: models/)")
    td.add_argument(
        "--days",
        type=_positive_int,
        default=20,  # models.train.DEALER_DAYS_PER_SCENARIO (not imported: xgboost is slow)
        help="simulated RFQ days per scenario",
    )
    td.add_argument("--seed", type=_int, default=100_000, help="seed of the first day")
    td.add_argument("--json", dest="json_path", help="write the metadata here ('-' = stdout)")
    tf = tsub.add_parser("fill", help="fill model: P(a passive lit or dark order fills in 30 s)")
    tf.add_argument("--out", type=Path, help="folder for the artifacts (default: models/)")
    tf.add_argument(
        "--episodes",
        type=_positive_int,
        default=288,  # models.train.FILL_EPISODES_PER_SCENARIO
        help="sor-lit episodes per scenario",
    )
    tf.add_argument("--seed", type=_int, default=200_000, help="seed of the first episode")
    tf.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="processes that run the episodes (the same rows on any number)",
    )
    tf.add_argument("--json", dest="json_path", help="write the metadata here ('-' = stdout)")
    tl = tsub.add_parser(
        "slicer", help="learned slicer: PPO on the execution environment, exported to ONNX"
    )
    tl.add_argument("--out", type=Path, help="folder for the artifacts (default: models/)")
    tl.add_argument(
        "--timesteps", type=_positive_int, default=32_768, help="environment steps (5 min each)"
    )
    tl.add_argument(
        "--envs", type=_positive_int, default=2, help="environments, one worker process each"
    )
    tl.add_argument(
        "--seed",
        type=_int,
        default=5_000_000,
        help="seed of the first training episode (never 1000-1999: the evaluation seeds)",
    )
    tl.add_argument(
        "--reward",
        choices=("arrival", "mark", "paired"),
        default="mark",
        help="the IS against arrival, marked to market each step, or marked and paired "
        "with sor-ml's schedule on the same episode (less noise, twice the simulation)",
    )
    tl.add_argument("--json", dest="json_path", help="write the metadata here ('-' = stdout)")

    ev = sub.add_parser("evaluate", help="score the shipped models on held-out simulations")
    esub = ev.add_subparsers(dest="what", required=True, parser_class=_Parser)
    em = esub.add_parser("models", help="dealer and fill models vs the simulator's oracle")
    em.add_argument(
        "--seed",
        type=_int,
        default=900_000,  # models.evaluate.EVAL_SEED
        help="first held-out seed",
    )
    em.add_argument("--json", dest="json_path", help="write JSON here ('-' = stdout)")
    em.add_argument("--models", type=Path, help="folder of the artifacts (default: models/)")
    em.add_argument(
        "--dealer-days",
        type=_positive_int,
        default=4,  # models.evaluate.DEALER_DAYS
        help="scored RFQ days per scenario (after 3 days of history)",
    )
    em.add_argument(
        "--fill-episodes",
        type=_positive_int,
        default=4,  # models.evaluate.FILL_EPISODES
        help="sor-lit episodes per scenario",
    )
    em.add_argument(
        "--workers", type=_positive_int, default=1, help="worker processes (same rows for any)"
    )

    sched = sub.add_parser("schedule", help="closed-form execution schedules")
    ssub = sched.add_subparsers(dest="schedule", required=True, parser_class=_Parser)
    ac = ssub.add_parser("ac", help="Almgren-Chriss (2000) optimal trajectory")
    ac.add_argument("--qty", type=float, required=True, help="X, shares to sell")
    ac.add_argument(
        "--horizon",
        type=_paper_time,
        required=True,
        help="T in the paper's time unit (a plain number), or a duration like 3h (seconds)",
    )
    ac.add_argument("--periods", type=_positive_int, required=True, help="N")
    ac.add_argument("--sigma", type=float, required=True, help="volatility per unit time^0.5")
    ac.add_argument("--eta", type=float, required=True, help="temporary impact")
    ac.add_argument("--gamma", type=float, required=True, help="permanent impact")
    ac.add_argument("--epsilon", type=float, required=True, help="fixed cost per share")
    ac.add_argument("--risk-aversion", type=float, required=True, help="lambda")
    ac.add_argument(
        "--frontier", type=_positive_int, help="also print N points of the efficient frontier"
    )
    ac.add_argument("--json", dest="json_path")

    sv = sub.add_parser(
        "serve", help="the service: FIX 4.4 acceptor, HTTP API and dashboard, MQTT events"
    )
    sv.add_argument("--config", type=Path, default=None, help="default: config/service.toml")
    sv.add_argument("--sim-speed", type=_positive_float, default=None)
    sv.add_argument("--fix-port", type=_port, default=None)
    sv.add_argument("--http-port", type=_port, default=None)
    sv.add_argument("--http-host", default=None, help="default 127.0.0.1 (this machine only)")
    sv.add_argument("--db-url", default=None, help="sqlite:///file.db or postgresql://...")
    sv.add_argument("--mqtt-url", default=None, help="mqtt://host:port, or 'none'")
    sv.add_argument("--data-dir", type=Path, default=None, help="journal and FIX store folder")

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
    brt = bsub.add_parser(
        "risk-transfer", help="a dealer's risk bid at arrival vs TWAP, by block size"
    )
    brt.add_argument("--scenario", default="calm")
    brt.add_argument("--seeds", type=_positive_int, default=12, help="per size, both sides each")
    brt.add_argument("--seed0", type=_int, default=1000)
    brt.add_argument("--json", dest="json_path")
    bs = bsub.add_parser("scenario", help="one full simulation: wall time and memory")
    bs.add_argument("--scenario", default="news-shock")
    bs.add_argument("--strategy", default="twap")
    bs.add_argument("--seed", type=_int, default=42)
    bs.add_argument("--repeat", type=_positive_int, default=5)
    bs.add_argument("--json", dest="json_path")
    bf = bsub.add_parser("fix", help="NewOrderSingle -> ExecutionReport(New) over loopback")
    bf.add_argument("--orders", type=_positive_int, default=10_000)
    bf.add_argument(
        "--rate", type=_positive_float, default=None, help="orders/s (default: unpaced)"
    )
    bf.add_argument("--window", type=_positive_int, default=64, help="orders in flight, unpaced")
    bf.add_argument(
        "--desk",
        choices=("real", "instant"),
        default="real",
        help="real: the service's desk (journal, markets, engine); instant: accepts at once, "
        "to time the FIX path alone",
    )
    bf.add_argument("--json", dest="json_path")
    bm = bsub.add_parser("memory", help="memory of the service's desk with open parent orders")
    bm.add_argument("--parents", type=_positive_int, default=100)
    bm.add_argument("--json", dest="json_path")
    bd = bsub.add_parser(
        "decide", help="latency of one ml decision: slicer policy, fill and dealer models"
    )
    bd.add_argument(
        "--n",
        "--iterations",
        dest="iterations",
        type=_positive_int,
        default=2000,
        help="decisions timed (default: 2000)",
    )
    bd.add_argument("--json", dest="json_path")
    return p


def _emit_json(path: str | None, doc: dict[str, Any]) -> None:
    if path is None:
        return
    text = json.dumps(doc, indent=2, sort_keys=False) + "\n"
    if path == "-":
        sys.stdout.write(text)
    else:
        Path(path).write_text(text)


def _strategy_names(text: str) -> list[str]:
    """--strategies: names separated by commas, or "all" (the registry's order)."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    if "all" not in names:
        return names
    if len(names) > 1:
        raise UsageError("--strategies: 'all' stands alone (it already runs every strategy)")
    from router.strategies import STRATEGIES

    return list(STRATEGIES)


def _check_json_path(path: str | None) -> None:
    if path not in (None, "-"):
        parent = Path(path).resolve().parent
        if not parent.is_dir():
            raise UsageError(f"--json: folder {parent} does not exist")


def _check_report_dir(path: Path | None) -> None:
    if path is not None and path.exists() and not path.is_dir():
        raise UsageError(f"--report: {path} exists and is not a folder")


def _open_store(url: str | None) -> Any:
    """The run store, or None with --db-url none. Opened before any work is done, so a
    bad URL fails fast."""
    if url is not None and url.lower() == "none":
        return None
    from router.store import Store

    return Store.open(url)


def _now() -> datetime:
    # the composition root may read the wall clock: it labels stored runs
    return datetime.now(UTC).replace(microsecond=0)


class _Progress:
    """A one-line progress bar on stderr (a line per tenth when stderr is not a terminal)."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._start = time.perf_counter()
        self._tty = sys.stderr.isatty()
        self._last_tenth = -1

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self._start
        eta = elapsed / done * (total - done) if done else 0.0
        width = 30
        filled = int(width * done / total) if total else width
        bar = "#" * filled + "." * (width - filled)
        line = f"{self._label} [{bar}] {done}/{total}  {elapsed:.0f} s, about {eta:.0f} s left"
        if self._tty:
            end = "\n" if done == total else ""
            print(f"\r{line}", end=end, file=sys.stderr, flush=True)
        elif (tenth := 10 * done // max(total, 1)) != self._last_tenth:
            self._last_tenth = tenth
            print(line, file=sys.stderr, flush=True)


def _cmd_simulate(args: argparse.Namespace) -> None:
    from router.app import apply_overrides, check_strategies, simulate
    from simulators.scenario import load_scenario

    strategies = _strategy_names(args.strategies)
    check_strategies(strategies)
    scenario = apply_overrides(
        load_scenario(args.scenario, args.config_dir), args.qty, args.side, args.horizon
    )
    _check_json_path(args.json_path)
    _check_report_dir(args.report)
    store = _open_store(args.db_url)
    steps = [*strategies, "hindsight"]
    bar = _Progress(f"simulate {scenario.name}")

    def progress(name: str) -> None:
        log.info("running strategy", strategy=name)
        bar(steps.index(name), len(steps))

    report = simulate(scenario, strategies, args.seed, progress=progress, limit_price=args.limit)
    bar(len(steps), len(steps))
    if store is not None:
        from router.store import RunMeta

        created = _now()
        for run in (*report.results, *([report.hindsight] if report.hindsight else [])):
            run.record(store, RunMeta("simulate", scenario.name, args.seed, run.strategy, created))
    doc = report.to_json()
    if args.json_path != "-":
        p = doc["parent"]
        print(
            f"scenario {doc['scenario']}  seed {doc['seed']}  {p['side']} {p['qty']:,} "
            f"{p['symbol']} over {p['horizon_s'] / 60:g} min, arrival mid "
            f"{p['arrival_mid']:.4f}"
        )
        print(
            f"{'strategy':<10}{'IS bps':>9}{'spread':>8}{'impact':>8}{'timing':>8}{'opport':>8}"
            f"{'vs VWAP':>9}{'filled':>10}{'children':>9}{'done':>7}   lit/dark/rfq  gap"
        )
        gaps = doc.get("gap_captured", {})
        for r in doc["results"]:
            mix, parts = r["venue_mix"], r["is_parts_bps"]
            gap = gaps.get(r["strategy"])
            print(
                f"{r['strategy']:<10}{r['is_bps']:>9.2f}{parts['spread_fees']:>8.2f}"
                f"{parts['impact']:>8.2f}{parts['timing']:>8.2f}{parts['opportunity']:>8.2f}"
                f"{r['vwap_slippage_bps']:>9.2f}{r['filled_qty']:>10,}"
                f"{r['n_child_orders']:>9}{r['completion']:>7.1%}   "
                f"{mix['lit']:>4.0%}/{mix['dark']:.0%}/{mix['rfq']:.0%}" + _pct(gap, 8)
            )
        if "hindsight" in doc:
            print(
                f"hindsight schedule (taking only, planned on the unimpacted path; a "
                f"reference, not a bound): {doc['hindsight']['is_bps']:.2f} bps; gap = share "
                "of the TWAP-to-hindsight "
                "gap captured"
            )
    if args.report is not None:
        from router.report import write_simulate_report

        index = _write_report(write_simulate_report, report.to_json(detail=True), args.report)
        if args.json_path != "-":
            print(f"report: {index}")
    _emit_json(args.json_path, doc)


def _write_report(writer: Any, doc: dict[str, Any], out: Path) -> Path:
    try:
        index: Path = writer(doc, out)
    except OSError as exc:
        raise UsageError(f"--report: cannot write {out}: {exc.strerror or exc}") from None
    return index


def _pct(x: float | None, width: int) -> str:
    return f"{x:>{width}.0%}" if x is not None else " " * width


def _bps(x: float | None, width: int) -> str:
    return f"{x:>{width}.1f}" if x is not None else " " * width


def _cmd_backtest(args: argparse.Namespace) -> None:
    from router.app import check_strategies
    from router.backtest import backtest

    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    strategies = _strategy_names(args.strategies)
    if not scenarios:
        raise UsageError("--scenarios: no scenario given")
    check_strategies(strategies)
    baseline = args.baseline or "twap"
    if args.baseline and args.baseline not in strategies:
        raise UsageError(f"--baseline: {args.baseline!r} is not one of --strategies")
    if args.side is not None and args.both_sides:
        raise UsageError("--side: not with --both-sides, which runs both sides")
    _check_json_path(args.json_path)
    _check_report_dir(args.report)
    store = _open_store(args.db_url)  # fail fast; workers open their own connections
    created = _now()
    n = len(scenarios) * args.episodes * (2 if args.both_sides else 1)
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
        progress=_Progress(f"backtest {n} episodes"),
        hindsight=not args.no_hindsight,
        store_orders=args.store_orders,
        baseline=baseline,
        side=args.side,
        both_sides=args.both_sides,
    )
    if args.json_path != "-":
        side_w = 6 if args.both_sides else 0  # the side column, only with --both-sides

        def block(r: dict[str, Any]) -> tuple[str, str | None]:
            return r["scenario"], r.get("side")

        def lead(r: dict[str, Any]) -> str:
            return f"{r['scenario']:<18}{r.get('side', ''):<{side_w}}"

        def hindsight_line(h: dict[str, Any]) -> str:
            return (
                f"{'':<{18 + side_w}}{'hindsight':<10}{'':>9}{h['is_bps_mean']:>10.2f}"
                f"{h['is_bps_stderr']:>7.2f}"
            )

        print(
            f"{'scenario':<18}{'side' if side_w else '':<{side_w}}{'strategy':<10}"
            f"{'episodes':>9}{'IS mean':>10}{'+-se':>7}"
            f"{'std':>8}{'vs ' + baseline:>12}{'+-se':>7}{'gap':>7}{'done':>8}"
            f"{'rfq':>6}{'dealers':>9}"
        )
        paired = {(*block(p), p["strategy"]): p for p in doc["paired"]}
        gaps = {(*block(g), g["strategy"]): g["share"] for g in doc["gap_captured"]}
        hind = {block(h): h for h in doc["hindsight"]}
        last: tuple[str, str | None] | None = None
        for r in doc["rows"]:
            key = (*block(r), r["strategy"])
            if last is not None and block(r) != last and last in hind:
                print(hindsight_line(hind[last]))
            last = block(r)
            d = paired.get(key)
            diff = f"{d['diff_mean_bps']:>12.2f}{d['diff_stderr_bps']:>7.2f}" if d else f"{'':>19}"
            gap = gaps.get(key)
            print(
                f"{lead(r)}{r['strategy']:<10}{r['episodes']:>9}"
                f"{r['is_bps_mean']:>10.2f}{r['is_bps_stderr']:>7.2f}{r['is_bps_std']:>8.2f}"
                f"{diff}{_pct(gap, 7)}"
                f"{r['completion_mean']:>8.1%}"
                f"{_pct(r.get('venue_mix_mean', {}).get('rfq'), 6)}"
                f"{_bps(r.get('dealer_pnl_bps'), 9)}"
            )
        if last is not None and last in hind:
            print(hindsight_line(hind[last]))
        m = doc["meta"]
        print(f"{n} episodes on {m['workers']} worker(s) in {m['wall_s']:.1f} s")
    if args.report is not None:
        from router.report import write_backtest_report

        index = _write_report(write_backtest_report, doc, args.report)
        if args.json_path != "-":
            print(f"report: {index}")
    _emit_json(args.json_path, doc)


def _cmd_dealers_pnl(args: argparse.Namespace) -> None:
    from dealers import economics
    from simulators.scenario import available_scenarios, load_scenario

    names = [args.scenario]
    if args.scenario == "all":
        names = available_scenarios(args.config_dir)
    for name in names:
        if load_scenario(name, args.config_dir).dealer_panel is None:
            raise UsageError(f"--scenario: {name!r} has no dealer panel")
    _check_json_path(args.json_path)
    rows = economics.collect(
        names,
        args.rfqs,
        args.seed,
        args.workers,
        _Progress(f"dealers pnl {args.scenario}"),
        args.config_dir,
    )
    doc = economics.report(rows, names, args.rfqs, args.seed)
    if args.json_path != "-":
        print(
            f"dealer P&L: {args.scenario}, {doc['rfqs_per_scenario']:,} RFQs per scenario, "
            f"seeds {args.seed}..; bps of notional, marked at the end of each day"
        )
        print(economics.format_table(doc))
    _emit_json(args.json_path, doc)


def _cmd_dealers(args: argparse.Namespace) -> None:
    if args.dealers == "pnl":
        _cmd_dealers_pnl(args)
        return
    from dealers.config import load_panel
    from dealers.panel import HeuristicPanel
    from dealers.scorecard import Scorecard, format_table
    from dealers.stream import run_rfq_day
    from simulators.scenario import load_scenario

    scenario = load_scenario(args.scenario, args.config_dir)
    if scenario.dealer_panel is None:
        raise UsageError(f"--scenario: {scenario.name!r} has no dealer panel")
    if not 0.0 <= args.two_sided <= 1.0:
        raise UsageError(f"--two-sided: must be within [0, 1], got {args.two_sided:g}")
    panel = load_panel(scenario.dealer_panel, args.config_dir)
    try:
        sizes = [int(x) for x in args.panel_size.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--panel-size: not a list of integers: {args.panel_size!r}") from None
    if not sizes or min(sizes) < 1 or max(sizes) > len(panel.dealers):
        raise UsageError(
            f"--panel-size: the {panel.name} panel has {len(panel.dealers)} dealers, "
            f"asked for {args.panel_size}"
        )
    _check_json_path(args.json_path)
    _check_report_dir(args.report)
    # a wider exploration than a desk's default: the scorecard should cover every dealer
    selector = HeuristicPanel(panel.ids, explore=0.3)
    card = Scorecard()
    days = -(-args.rfqs // args.per_day)
    bar = _Progress(f"scorecard {scenario.name}")
    left = args.rfqs
    for k in range(days):
        n = min(args.per_day, left)
        day = run_rfq_day(
            scenario,
            panel,
            args.seed + k,
            n,
            selector,
            panel_size=sizes,
            two_sided_share=args.two_sided,
        )
        card.add_day(day.events, day.path)
        left -= n
        bar(k + 1, days)
    doc = card.to_json()
    doc["meta"] = {
        "scenario": scenario.name,
        "panel": panel.name,
        "seed": args.seed,
        "days": days,
        "panel_size": args.panel_size,
        "two_sided": args.two_sided,
    }
    if args.json_path != "-":
        print(f"dealer scorecard: {scenario.name}, panel {panel.name}, seeds {args.seed}..")
        print(format_table(card))
    if args.report is not None:
        from dealers.report import write_scorecard_report

        meta = {k: str(v) for k, v in doc["meta"].items()}
        try:
            index = write_scorecard_report(args.report, card, "Dealer scorecard", meta)
        except OSError as exc:
            why = exc.strerror or exc
            raise UsageError(f"--report: cannot write {args.report}: {why}") from None
        if args.json_path != "-":
            print(f"report: {index}")
    _emit_json(args.json_path, doc)


def _cmd_train(args: argparse.Namespace) -> None:
    from models.artifacts import MODELS_DIR
    from models.train import SCENARIOS, train_dealer, train_fill

    out = args.out or MODELS_DIR
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: {out} exists and is not a folder")
    _check_json_path(args.json_path)
    if args.model == "slicer":
        _train_slicer(args, out)
        return
    try:
        if args.model == "dealer":
            n = args.days * len(SCENARIOS)
            command = f"blockroute train dealer --days {args.days} --seed {args.seed}"
            bar = _Progress(f"train dealer: {n} RFQ days")
            written, meta = train_dealer(out, args.days, args.seed, bar, command)
        else:
            n = args.episodes * len(SCENARIOS)
            command = f"blockroute train fill --episodes {args.episodes} --seed {args.seed}"
            bar = _Progress(f"train fill: {n} sor-lit episodes")
            written, meta = train_fill(
                out, args.episodes, args.seed, bar, command, workers=args.workers
            )
    except OSError as exc:
        raise UsageError(f"--out: cannot write {out}: {exc.strerror or exc}") from None
    if args.json_path != "-":
        print(f"{'model':<9}{'AUC':>7}{'oracle':>8}{'Brier':>8}{'ECE':>7}{'rows':>8}{'trees':>7}")
        for name, m in meta["metrics"].items():
            oracle = m.get("oracle_auc")
            print(
                f"{name:<9}{m['auc']:>7.3f}"
                + (f"{oracle:>8.3f}" if oracle is not None else f"{'':>8}")
                + f"{m['brier']:>8.4f}{m['ece']:>7.4f}{m['n']:>8}{meta['rounds'][name]:>7}"
            )
        print("test days only (the last 15%); wrote " + ", ".join(p.name for p in written))
    _emit_json(args.json_path, meta)


def _train_slicer(args: argparse.Namespace, out: Path) -> None:
    try:
        import stable_baselines3  # noqa: F401  (the `train` extra)
        import torch  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            f"train slicer needs the training extra ({exc.name} is missing): "
            "python3 -m pip install -e '.[train]'"
        ) from None
    from models.slicer import TrainingError, train_slicer

    command = (
        f"blockroute train slicer --timesteps {args.timesteps} --envs {args.envs} "
        f"--seed {args.seed} --reward {args.reward}"
    )
    bar = _Progress(f"train slicer: {args.timesteps:,} steps in {args.envs} environments")
    try:
        written, meta = train_slicer(
            out, args.timesteps, args.envs, args.seed, bar, command, reward=args.reward
        )
    except TrainingError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"--out: cannot write {out}: {exc.strerror or exc}") from None
    if args.json_path != "-":
        t, c, v = meta["training"], meta["curve"], meta["validation"]
        print(
            f"trained {t['timesteps']:,} steps, {t['episodes']:,} episodes in {t['wall_s']:.0f} s "
            f"({t['steps_per_s']:.0f} steps/s, {t['n_envs']} environments)"
        )
        if c.get("episodes"):
            print(
                f"mean IS {c['first_10pct_is_bps']:.1f} bps over the first 10% of episodes, "
                f"{c['last_10pct_is_bps']:.1f} over the last 10%"
            )
        if "first_10pct_vs_even_pace_bps" in c:
            print(
                f"IS minus sor-ml's schedule's (a = 0) on the same episodes: "
                f"{c['first_10pct_vs_even_pace_bps']:+.2f} bps over the first 10%, "
                f"{c['last_10pct_vs_even_pace_bps']:+.2f} over the last 10%"
            )
        if v.get("episodes"):
            print(
                f"validation, {v['episodes']} paired episodes: policy {v['policy_is_bps']:.1f} "
                f"bps, sor-ml's schedule (a = 0) {v['even_pace_is_bps']:.1f} bps, difference "
                f"{v['diff_is_bps']:+.2f} +- {v['diff_stderr_bps']:.2f} bps"
            )
        print(
            f"ONNX vs torch: max |diff| {meta['parity']['max_abs_diff']:.1g} on "
            f"{meta['parity']['rows']} observations; wrote " + ", ".join(p.name for p in written)
        )
    _emit_json(args.json_path, meta)


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from models.artifacts import MODELS_DIR
    from models.evaluate import evaluate

    _check_json_path(args.json_path)
    doc = evaluate(
        args.seed,
        args.models or MODELS_DIR,
        _Progress("evaluate models"),
        dealer_days=args.dealer_days,
        fill_episodes=args.fill_episodes,
        workers=args.workers,
    )
    if args.json_path != "-":
        print(
            f"{'model':<16}{'AUC':>7}{'oracle':>8}{'ratio':>7}{'± sd':>7}"
            f"{'Brier':>8}{'ECE':>7}{'rows':>8}"
        )
        for name in ("dealer", "dealer_respond", "dealer_hit", "fill", "fill_all"):
            m = doc[name]
            oracle = m.get("oracle_auc")
            print(
                f"{name:<16}{m['auc']:>7.3f}"
                + (
                    f"{oracle:>8.3f}{m['ratio']:>7.3f}{m['ratio_sd']:>7.3f}"
                    if oracle
                    else f"{'':>22}"
                )
                + f"{m['brier']:>8.4f}{m['ece']:>7.4f}{m['n']:>8}"
            )
        given = doc["fill_given_fair"]
        if given["n"]:
            print(
                f"fill, within {given['strata']} strata of the simulator's hidden fair price: "
                f"AUC {given['auc']:.3f}, oracle {given['oracle_auc']:.3f}, "
                f"ratio {given['ratio']:.3f} ± {given['ratio_sd']:.3f} ({given['n']} rows)"
            )
        print(
            "± sd: bootstrap over whole days and episodes within their scenario "
            f"({doc['meta']['bootstrap']['replicates']} replicates)"
        )
        clipped = doc["meta"]["clipped"]
        if any(clipped.values()):
            print(f"features clipped to the training range: {clipped}")
    _emit_json(args.json_path, doc)


def _cmd_schedule(args: argparse.Namespace) -> None:
    from router.strategies.almgren_chriss import (
        AcParams,
        ac_trajectory,
        efficient_frontier,
        schedule_table,
    )

    params = AcParams(
        X=args.qty,
        T=args.horizon,
        N=args.periods,
        sigma=args.sigma,
        eta=args.eta,
        gamma=args.gamma,
        epsilon=args.epsilon,
        lam=args.risk_aversion,
    )
    schedule = ac_trajectory(params)
    doc: dict[str, Any] = schedule.to_json()
    if args.frontier:
        top = max(params.lam, 1e-12) * 100
        lams = [top * (k / args.frontier) ** 3 for k in range(args.frontier + 1)]
        doc["frontier"] = [
            {"risk_aversion": f.lam, "expected_cost": f.expected_cost, "variance": f.variance}
            for f in efficient_frontier(params, lams)
        ]
    if args.json_path != "-":
        print(schedule_table(schedule))
        for f in doc.get("frontier", []):
            print(
                f"lambda {f['risk_aversion']:.3g}: E {f['expected_cost']:.6g}  "
                f"V {f['variance']:.6g}"
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
    elif args.bench == "decide":
        from bench.decide import PARTS, run_decide_bench

        doc = run_decide_bench(args.iterations)
        if args.json_path != "-":
            for part in PARTS:
                d = doc[part]
                print(
                    f"{part:<13} p50 {d['p50_us']:8.1f} us   p99 {d['p99_us']:8.1f} us   "
                    f"max {d['max_us']:8.1f} us"
                )
            print(
                f"{doc['iterations']} decisions {doc['at_s'] / 60:g} min into an ml run: the "
                f"slicer's observation and ONNX policy (onnx_policy: the policy alone), "
                f"{doc['lit_options']} lit queues scored, a panel chosen among "
                f"{doc['dealers']} dealers (no_rfq: the decision without the panel; "
                f"desk_refresh: the desk's dealer arrays rebuilt at an RFQ event)"
            )
    elif args.bench == "fix":
        from bench.fix import fix_bench

        doc = fix_bench(
            args.orders,
            args.rate,
            window=args.window,
            real_desk=args.desk == "real",
            progress=_Progress("bench fix"),
        )
        if args.json_path != "-":
            pace = "unpaced" if args.rate is None else f"paced at {args.rate:g}/s"
            print(
                f"fix ({args.desk} desk, {pace}): {doc['orders']:,} orders, "
                f"{doc['orders_per_s']:,.0f} orders/s, ack p50 {doc['ack_p50_ms']:.3f} ms, "
                f"p99 {doc['ack_p99_ms']:.3f} ms"
            )
    elif args.bench == "memory":
        from bench.service import run_memory_bench

        doc = run_memory_bench(args.parents)
        if args.json_path != "-":
            print(
                f"desk with {doc['parents']} open parent orders: RSS {doc['rss_mb']:.0f} MB "
                f"({doc['rss_mb_empty']:.0f} MB with none, "
                f"{doc['kb_per_parent']:.0f} kB per parent); "
                f"{doc['child_orders']} child orders, {doc['fills']} fills so far"
            )
    elif args.bench == "risk-transfer":
        from bench.risk_transfer import format_table, run_risk_transfer
        from simulators.scenario import load_scenario

        if load_scenario(args.scenario, args.config_dir).dealer_panel is None:
            raise UsageError(f"--scenario: {args.scenario!r} has no dealer panel")
        _check_json_path(args.json_path)
        doc = run_risk_transfer(
            args.scenario,
            seeds=args.seeds,
            seed0=args.seed0,
            progress=_Progress(f"risk transfer {args.scenario}"),
        )
        if args.json_path != "-":
            print(format_table(doc))
        _emit_json(args.json_path, doc)
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


def _cmd_serve(args: argparse.Namespace) -> None:
    import asyncio

    from router.service import DEFAULT_SERVICE_CONFIG, load_service_config, run_service

    cfg = load_service_config(
        args.config or DEFAULT_SERVICE_CONFIG,
        sim_speed=args.sim_speed,
        fix_port=args.fix_port,
        http_port=args.http_port,
        http_host=args.http_host,
        db_url=args.db_url,
        mqtt_url=args.mqtt_url,
        data_dir=args.data_dir,
    )

    def ready(info: dict[str, Any]) -> None:
        print(
            f"blockroute serving {', '.join(info['symbols'])} at {info['sim_speed']:g}x: "
            f"FIX on port {info['fix_port']}, dashboard {info['http']}, "
            f"database {info['db']}, MQTT {info['mqtt']}"
            + (f"; {info['recovered']} open orders recovered" if info["recovered"] else ""),
            flush=True,
        )

    asyncio.run(run_service(cfg, on_ready=ready))
    print("blockroute stopped: open child orders pulled, state flushed", flush=True)


def _model_error() -> type[Exception]:
    from models.artifacts import ModelError

    return ModelError


def _store_error() -> type[Exception]:
    from router.store import StoreError

    return StoreError


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
        elif args.command == "backtest":
            _cmd_backtest(args)
        elif args.command == "schedule":
            _cmd_schedule(args)
        elif args.command == "dealers":
            _cmd_dealers(args)
        elif args.command == "train":
            _cmd_train(args)
        elif args.command == "evaluate":
            _cmd_evaluate(args)
        elif args.command == "bench":
            _cmd_bench(args)
        elif args.command == "serve":
            _cmd_serve(args)
        return 0
    except (UsageError, ConfigError, DomainError, _store_error(), _model_error()) as exc:
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
