"""`blockroute bench ...`: the benchmarks of the matching engine, the market's price
impact, risk transfer, whole simulations, the FIX path, the desk's memory and one
routing decision."""

from __future__ import annotations

import argparse
from typing import Any

from router.cli.args import (
    Parser,
    Subparsers,
    UsageError,
    add_json,
    duration,
    integer,
    need_ray,
    positive_float,
    positive_int,
    strategy_names,
)
from router.cli.console import Col, Progress, left, print_table
from router.cli.output import check_json_path, emit_json


def register(sub: Subparsers) -> None:
    """Add the `bench` commands to the top-level subcommands."""
    bench = sub.add_parser("bench", help="benchmarks")
    bsub = bench.add_subparsers(dest="bench", required=True, parser_class=Parser)
    bb = bsub.add_parser("book", help="matching engine alone")
    bb.add_argument("--events", type=positive_int, default=1_000_000)
    bb.add_argument("--no-python", action="store_true", help="skip the plain-Python reference book")
    bb.add_argument(
        "--replay",
        metavar="NAME",
        default=None,
        help="also time the L3 replay on a real capture (e.g. bitstamp-btcusd: the `data` "
        "extra), parsing apart, beside a plain Python order-by-order book",
    )
    bb.add_argument(
        "--repeat", type=positive_int, default=5, help="--replay: runs timed, the best kept"
    )
    add_json(bb)
    bb.set_defaults(func=run_book)

    bi = bsub.add_parser("impact", help="square-root law, impact decay, return statistics")
    bi.add_argument("--scenario", default="calm")
    bi.add_argument("--seeds", type=positive_int, default=20)
    bi.add_argument("--duration", type=duration, default=1800.0, help="metaorder duration")
    add_json(bi)
    bi.set_defaults(func=run_impact)

    brt = bsub.add_parser(
        "risk-transfer", help="a dealer's risk bid at arrival vs TWAP, by block size"
    )
    brt.add_argument("--scenario", default="calm")
    brt.add_argument("--seeds", type=positive_int, default=12, help="per size, both sides each")
    brt.add_argument("--seed0", type=integer, default=1000)
    add_json(brt)
    brt.set_defaults(func=run_risk_transfer)

    bdr = bsub.add_parser(
        "drift", help="the unimpacted market's move over the training regimes, by part and side"
    )
    bdr.add_argument("--regimes", type=positive_int, default=4000)
    bdr.add_argument(
        "--flow-regimes",
        type=integer,
        default=200,
        help="of them, how many also run the background flow (a simulation each)",
    )
    bdr.add_argument("--seed0", type=integer, default=None, help="first seed (default: 7000000)")
    add_json(bdr)
    bdr.set_defaults(func=run_drift)

    bp = bsub.add_parser(
        "pace", help="sor-ml's routing on fixed paces: what timing alone can be worth"
    )
    bp.add_argument("--scenarios", default="news-shock,liquidity-squeeze")
    bp.add_argument("--seeds", type=positive_int, default=40, help="per scenario, both sides each")
    bp.add_argument("--seed0", type=integer, default=1000)
    bp.add_argument(
        "--rules",
        default="",
        help="reactive paces to add, comma-separated: jump-follow, spread-lag, trend-follow "
        "(bench/pace.py RULES; default none)",
    )
    add_json(bp)
    bp.set_defaults(func=run_pace)

    bl = bsub.add_parser(
        "lead",
        help="sor-ml with its dealer blocks' lead over the schedule capped: risk transfer "
        "against the per-side target",
    )
    bl.add_argument(
        "--scenarios",
        default="calm,news-shock,liquidity-squeeze,trending,high-vol,illiquid-bond",
    )
    bl.add_argument("--seeds", type=positive_int, default=30, help="per scenario, both sides each")
    bl.add_argument("--seed0", type=integer, default=1000)
    bl.add_argument(
        "--caps",
        default="0.35,0.05",
        help="shares of the parent a block may put it ahead of schedule, comma-separated; "
        "the first (default: the shipped 0.35) is the one the others are paired against",
    )
    bl.add_argument("--workers", type=positive_int, default=1)
    add_json(bl)
    bl.set_defaults(func=run_lead)

    bs = bsub.add_parser("scenario", help="one full simulation: wall time and memory")
    bs.add_argument("--scenario", default="news-shock")
    bs.add_argument("--strategy", default="twap")
    bs.add_argument("--seed", type=integer, default=42)
    bs.add_argument("--repeat", type=positive_int, default=5)
    add_json(bs)
    bs.set_defaults(func=run_scenario)

    bst = bsub.add_parser(
        "startup",
        help="whole `simulate` commands, each a new process: median wall and CPU time, "
        "warm caches, against issue 29's targets",
    )
    bst.add_argument("--scenario", default="news-shock")
    bst.add_argument(
        "--strategies",
        default="twap;all;ml",
        help="the `simulate --strategies` values to time, separated by semicolons "
        "(default: twap;all;ml, the three of issue 29)",
    )
    bst.add_argument("--runs", type=positive_int, default=5)
    add_json(bst)
    bst.set_defaults(func=run_startup)

    bf = bsub.add_parser("fix", help="NewOrderSingle -> ExecutionReport(New) over loopback")
    bf.add_argument("--orders", type=positive_int, default=10_000)
    bf.add_argument("--rate", type=positive_float, default=None, help="orders/s (default: unpaced)")
    bf.add_argument("--window", type=positive_int, default=64, help="orders in flight, unpaced")
    bf.add_argument(
        "--desk",
        choices=("real", "instant"),
        default="real",
        help="real: the service's desk (journal, markets, engine); instant: accepts at once, "
        "to time the FIX path alone",
    )
    bf.add_argument(
        "--client",
        choices=("process", "inproc"),
        default="process",
        help="process: the FIX client in a process of its own, as an OMS would be; inproc: "
        "in the gateway's process, sharing its interpreter (the comparison)",
    )
    add_json(bf)
    bf.set_defaults(func=run_fix)

    bm = bsub.add_parser("memory", help="memory of the service's desk with open parent orders")
    bm.add_argument("--parents", type=positive_int, default=100)
    add_json(bm)
    bm.set_defaults(func=run_memory)

    bsc = bsub.add_parser(
        "scale",
        help="one backtest's episodes/s on 1 and 2 local workers, Ray CPUs and a standing Ray head",
    )
    bsc.add_argument(
        "--episodes",
        type=positive_int,
        default=200,
        help="episodes of each run, split evenly over --scenarios (default: 200)",
    )
    bsc.add_argument("--scenarios", default="calm,news-shock", help="comma-separated")
    bsc.add_argument("--strategies", default="twap,sor", help="comma-separated")
    bsc.add_argument("--seed0", type=integer, default=1000)
    bsc.add_argument(
        "--repeat",
        type=positive_int,
        default=1,
        help="rounds of the four runs, interleaved; each run's best is kept (default: 1)",
    )
    add_json(bsc)
    bsc.set_defaults(func=run_scale)

    bd = bsub.add_parser(
        "decide", help="latency of one ml decision: slicer policy, fill and dealer models"
    )
    bd.add_argument(
        "--n",
        "--iterations",
        dest="iterations",
        type=positive_int,
        default=2000,
        help="decisions timed (default: 2000)",
    )
    add_json(bd)
    bd.set_defaults(func=run_decide)

    bsh = bsub.add_parser(
        "shadow",
        help="the desk's decision latency with a challenger of every model family vs none",
    )
    bsh.add_argument(
        "--parents", type=positive_int, default=4, help="ml parents at once (default: 4)"
    )
    bsh.add_argument(
        "--rounds",
        type=positive_int,
        default=3,
        help="rounds of the two runs, interleaved (default: 3)",
    )
    add_json(bsh)
    bsh.set_defaults(func=run_shadow)

    ba = bsub.add_parser(
        "all", help="every speed benchmark, one file; --compare: each figure against a run before"
    )
    ba.add_argument(
        "--compare",
        metavar="OLD.json",
        default=None,
        help="a file an earlier `bench all --json` wrote: print each figure's ratio to it",
    )
    ba.add_argument(
        "--only", default=None, help="comma-separated benchmarks of the suite (default: all)"
    )
    ba.add_argument(
        "--tolerance",
        type=positive_float,
        default=None,
        help="a figure has regressed when it moved the wrong way by more than this "
        "fraction (default: 0.1)",
    )
    add_json(ba)
    ba.set_defaults(func=run_all)


def run_book(args: argparse.Namespace) -> None:
    """`bench book`: events per second of the matching engine (and of a plain Python
    book); with `--replay NAME`, also on a real capture's order-by-order stream (a
    `replay` section beside the synthetic figure)."""
    from bench.book import run_book_bench

    check_json_path(args.json_path)
    replay = None
    if args.replay is not None:
        from bench.replay_book import run_replay_book_bench

        with Progress(f"load {args.replay}") as bar:
            replay = run_replay_book_bench(
                args.replay, args.repeat, compare_python=not args.no_python, progress=bar
            )
    doc: dict[str, Any] = dict(run_book_bench(args.events, compare_python=not args.no_python))
    if args.json_path != "-":
        print(
            f"book: {doc['events']:,} events in {doc['seconds']:.3f} s = "
            f"{doc['events_per_s']:,.0f} events/s"
        )
        if "python_events_per_s" in doc:
            agree = "the same book" if doc["books_agree"] else "DIFFERENT books"
            print(
                f"plain Python book: {doc['python_events_per_s']:,.0f} events/s on the first "
                f"{doc['python_events']:,}; speed-up {doc['speedup_vs_python']:.1f}x; both "
                f"end those with {agree}"
            )
        if replay is not None:
            _print_replay_book(replay)
    if replay is not None:
        doc["replay"] = replay
    emit_json(args.json_path, doc)


def _print_replay_book(r: dict[str, Any]) -> None:
    print(
        f"replay {r['replay']}: {r['events']:,} events in {r['seconds']:.4f} s = "
        f"{r['events_per_s']:,.0f} events/s (best of {r['repeat']}, median "
        f"{r['seconds_median']:.4f} s); parsing {r['parse_seconds']:.2f} s apart"
    )
    if "python_events_per_s" in r:
        agree = "the same book" if r["books_agree"] else "DIFFERENT books"
        print(
            f"plain Python L3 book on the same events: {r['python_events_per_s']:,.0f} "
            f"events/s; speed-up {r['speedup_vs_python']:.1f}x; both end with {agree}"
        )


def run_scale(args: argparse.Namespace) -> None:
    """`bench scale`: the same backtest on the local pool and on Ray, 1 and 2 each.

    Raises `UsageError` without the `ray` extra, or on a bad scenario, strategy or count,
    before any run."""
    from router.app import check_strategies
    from simulators.scenario import load_scenario

    need_ray("bench scale")
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if not scenarios:
        raise UsageError("--scenarios: no scenario given")
    for name in scenarios:
        load_scenario(name, args.config_dir)
    strategies = strategy_names(args.strategies)
    check_strategies(strategies)
    if args.episodes % len(scenarios):
        raise UsageError(
            f"--episodes: {args.episodes} is not a multiple of the {len(scenarios)} scenarios"
        )
    check_json_path(args.json_path)
    from bench.scale import CONFIGS, ScaleBenchError, run_scale_bench

    try:
        with Progress(f"bench scale: {len(CONFIGS) * args.repeat} backtests") as bar:
            doc = run_scale_bench(
                scenarios,
                strategies,
                args.episodes,
                args.seed0,
                args.config_dir,
                progress=bar,
                repeat=args.repeat,
            )
    except ScaleBenchError as exc:
        raise UsageError(str(exc)) from None
    if args.json_path != "-":
        _print_scale(doc)
    emit_json(args.json_path, doc)


def _print_scale(doc: dict[str, Any]) -> None:
    local = {r["workers"]: r for r in doc["runs"] if r["executor"] == "local"}

    def versus(r: dict[str, Any], key: str) -> str:
        base = local.get(r["workers"])
        if r["executor"] == "local" or base is None or not r[key] or not base[key]:
            return ""
        return f"{r[key] / base[key] - 1:+.0%}"

    rows = [
        [
            r["executor"],
            str(r["workers"]),
            f"{r['wall_s']:.1f}",
            f"{r['episodes_per_s']:.2f}",
            versus(r, "wall_s"),
            "" if r["cpu_s"] is None else f"{r['cpu_s']:.1f}",
            versus(r, "cpu_s"),
            f"{r['ray']['connect_s']:.1f}" if "ray" in r else "",
            str(r["ray"]["tasks"]) if "ray" in r else "",
            f"{r['load_1m'][0]:.1f}",
        ]
        for r in doc["runs"]
    ]
    columns: list[Col | str] = [left("executor"), "CPUs", "wall s", "episodes/s", "vs local"]
    print_table([*columns, "CPU s", "vs local", "start s", "tasks", "load"], rows)
    same = "identical" if doc["rows_identical"] else "DIFFERENT"
    print(
        f"{doc['episodes']} episodes of {','.join(doc['scenarios'])} with "
        f"{','.join(doc['strategies'])} per run on {doc['cpus']} cores, best of "
        f"{doc['repeat']}; the runs' rows are {same}; Ray's object store held "
        f"{doc['object_store_bytes'] / 1e6:.2f} MB of shared inputs"
    )
    print(
        "CPU s: all the run's processes (the cluster's too); start s: Ray connected (ray: "
        "its cluster started for the run; ray-cluster: a standing head, started and "
        "settled before the run, not timed); load: the 1-minute load average before the "
        "run (above the cores, other work slowed it)"
    )


def run_decide(args: argparse.Namespace) -> None:
    """`bench decide`: latency percentiles of each part of one ml routing decision."""
    from bench.decide import PARTS, run_decide_bench

    doc = run_decide_bench(args.iterations)
    if args.json_path != "-":
        rows = [
            [part, *(f"{doc[part][q]:.1f}" for q in ("p50_us", "p99_us", "p999_us", "max_us"))]
            for part in PARTS
        ]
        print_table([left("part"), "p50 us", "p99 us", "p99.9 us", "max us"], rows)
        print(
            f"{doc['iterations']} decisions {doc['at_s'] / 60:g} min into an ml run: the "
            f"slicer's observation and ONNX policy (onnx_policy: the policy alone), "
            f"{doc['lit_options']} lit queues scored, a panel chosen among "
            f"{doc['dealers']} dealers (no_rfq: the decision without the panel; "
            f"desk_refresh: the desk's dealer arrays rebuilt at an RFQ event)"
        )
    emit_json(args.json_path, doc)


def run_shadow(args: argparse.Namespace) -> None:
    """`bench shadow`: what challengers beside the champions add to the desk's steps."""
    from bench.shadow import run_shadow_bench

    doc = run_shadow_bench(args.parents, rounds=args.rounds)
    if args.json_path != "-":
        quantiles = ("mean_us", "p50_us", "p99_us")
        rows = [["every step, no challenger", *(f"{doc['without'][q]:.1f}" for q in quantiles)]]
        for mode, what in (("same", "identical"), ("other", "differing")):
            part = doc[mode]
            rows += [
                [
                    f"every step, {what} challengers",
                    *(f"{part['every_step'][q]:.1f}" for q in quantiles),
                ],
                [
                    "asking steps, no challenger",
                    *(f"{part['asking_without'][q]:.1f}" for q in quantiles),
                ],
                [
                    f"asking steps, {what} challengers",
                    *(f"{part['asking_with'][q]:.1f}" for q in quantiles),
                ],
            ]
        print_table([left("desk step"), "mean us", "p50 us", "p99 us"], rows)
        calls = [
            [f"{family} ({what})", str(c["decisions"]), f"{c['p50_us']:.1f}", f"{c['p99_us']:.1f}"]
            for mode, what in (("same", "identical"), ("other", "differing"))
            for family, c in doc[mode]["challenger_calls"].items()
            if c["decisions"]
        ]
        print_table([left("challenger calls"), "asked", "p50 us", "p99 us"], calls)
        load = ", ".join(f"{x:.2f}" for x in doc["loadavg_before"])
        added = "; ".join(
            f"{what}: +{doc[mode]['added_mean_us']:.1f} us a step, "
            f"+{doc[mode]['added_asking_mean_us']:.1f} us an asking step "
            f"(paired median +{doc[mode]['added_asking_p50_us']:.1f} us)"
            for mode, what in (("same", "identical"), ("other", "differing"))
        )
        print(
            f"{doc['steps']} steps of {doc['parents']} ml parents over {doc['horizon_s']} s, "
            f"{doc['rounds']} rounds; {added}; load average before: {load} on "
            f"{doc['cpus']} CPUs"
        )
    emit_json(args.json_path, doc)


def run_drift(args: argparse.Namespace) -> None:
    """`bench drift`: the unimpacted market's move, by part, plain and against the parent.

    Raises `UsageError` without the `train` extra (the regime draw is the RL environment's).
    """
    if args.flow_regimes < 0:
        raise UsageError("--flow-regimes must be >= 0")
    try:
        import gymnasium  # noqa: F401  (the `train` extra)
    except ImportError as exc:
        raise UsageError(
            f"bench drift needs the training extra ({exc.name} is missing): "
            "python3 -m pip install -e '.[train]'"
        ) from None
    from bench.drift import SEED0, run_drift_study

    with Progress("drift study") as bar:
        doc = run_drift_study(
            args.regimes,
            args.flow_regimes,
            SEED0 if args.seed0 is None else args.seed0,
            progress=bar,
        )
    if args.json_path != "-":
        _print_drift(doc)
    emit_json(args.json_path, doc)


def _print_drift(doc: dict[str, Any]) -> None:
    def cell(part: dict[str, Any], key: str) -> str:
        s = part.get(key)
        return "-" if s is None else f"{s['mean_bps']:+.2f} +- {s['stderr_bps']:.2f}"

    rows = []
    for name, part in [("pooled", doc["pooled"]), *doc["by_scenario"].items()]:
        rows.append(
            [
                name,
                str(part["regimes"]),
                cell(part, "scheduled"),
                cell(part, "random"),
                cell(part, "exogenous_against_parent"),
                cell(part, "flow"),
                cell(part, "flow_against_parent"),
            ]
        )
    print_table(
        [
            left("regimes"),
            "n",
            "scheduled bps",
            "random bps",
            "against parent",
            "flow bps",
            "flow vs parent",
        ],
        rows,
    )
    print(
        f"{doc['regimes']} draws from seed {doc['seed0']} (buy {doc['buy_share']:.1%}, "
        f"mirrored {doc['mirrored_share']:.1%}); the flow's reaction on the first "
        f"{doc['flow_regimes']}. Mean +- standard error, bps of the arrival price over the "
        "parent's horizon; 'against parent' signs the exogenous move by the parent's side "
        "(positive: a cost to a patient parent)."
    )


def _scenario_names(args: argparse.Namespace) -> list[str]:
    """`--scenarios`, comma-separated, each a scenario of the config folder."""
    from simulators.scenario import available_scenarios

    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [n for n in names if n not in available_scenarios(args.config_dir)]
    if not names or unknown:
        raise UsageError(f"--scenarios: unknown scenario {', '.join(unknown) or '(none given)'}")
    return names


def run_pace(args: argparse.Namespace) -> None:
    """`bench pace`: fixed paces around the TWAP line and the hindsight best of them."""
    from bench.pace import check_rules, run_pace_study

    names = _scenario_names(args)
    rules = [r.strip() for r in args.rules.split(",") if r.strip()]
    try:
        check_rules(rules)  # before the first episode, as a usage error
    except ValueError as exc:
        raise UsageError(f"--rules: {exc}") from None
    with Progress("pace study") as bar:
        doc = run_pace_study(names, args.seeds, seed0=args.seed0, progress=bar, rules=rules)
    if args.json_path != "-":
        _print_pace(doc)
    emit_json(args.json_path, doc)


def _print_pace(doc: dict[str, Any]) -> None:
    def cell(s: dict[str, Any]) -> str:
        se = s["stderr_bps"]
        return f"{s['mean_bps']:+.2f}" + ("" if se is None else f" +- {se:.2f}")

    rows = [
        [
            r["scenario"],
            r["side"],
            str(r["episodes"]),
            *(cell(a["vs_even_pace"]) for a in r["by_action"]),
            cell(r["hindsight_best"]["vs_even_pace"]),
            *(cell(a["vs_even_pace"]) for a in r["by_rule"]),
        ]
        for r in doc["rows"]
    ]
    print_table(
        [
            left("scenario"),
            left("side"),
            "n",
            *(f"a={a:+g}" for a in doc["actions"]),
            "hindsight",
            *doc["rules"],
        ],
        rows,
    )
    print(
        "IS minus sor-ml's (a = 0, the TWAP line) on the same episodes, bps, mean +- standard "
        "error; a > 0 leads the TWAP line, a < 0 lags it. 'hindsight': per episode the best "
        "fixed pace, chosen knowing the outcome: a ceiling, not a strategy."
        + (
            " Rules: paces that react to the market as it unfolds (bench/pace.py)."
            if doc["rules"]
            else ""
        )
    )


def _lead_caps(text: str) -> list[float]:
    caps = []
    for part in text.split(","):
        try:
            cap = float(part)
        except ValueError:
            raise UsageError(f"--caps: {part.strip()!r} is not a number") from None
        if not 0.0 <= cap <= 1.0:
            raise UsageError(f"--caps: {cap:g} is not a share of the parent in [0, 1]")
        caps.append(cap)
    return caps


def run_lead(args: argparse.Namespace) -> None:
    """`bench lead`: the dealer blocks' lead capped, beside the baselines, both sides."""
    from bench.lead import run_lead_study

    names = _scenario_names(args)
    caps = _lead_caps(args.caps)
    check_json_path(args.json_path)
    with Progress("lead study") as bar:
        doc = run_lead_study(
            names, args.seeds, caps, seed0=args.seed0, workers=args.workers, progress=bar
        )
    if args.json_path != "-":
        _print_lead(doc)
    emit_json(args.json_path, doc)


def _print_lead(doc: dict[str, Any]) -> None:
    def cell(s: dict[str, Any]) -> str:
        se = s["stderr_bps"]
        return f"{s['mean_bps']:+.1f}" + ("" if se is None else f" +- {se:.1f}")

    rows = []
    for r in doc["rows"]:
        best = r["best_baseline"]
        for c in r["caps"]:
            mix = c["venue_mix"]
            rows.append(
                [
                    r["scenario"],
                    r["side"],
                    f"{c['cap']:g}",
                    cell(c["is"]),
                    f"{c['is']['sd_bps']:.0f}" if c["is"]["sd_bps"] is not None else "-",
                    f"{best} {r['baselines'][best]['mean_bps']:.1f}",
                    cell(c["vs_best_baseline"]),
                    cell(c["vs_shipped"]),
                    f"{c['mean_lead']:+.3f}",
                    f"{mix.get('rfq', 0):.0%}/{mix.get('dark', 0):.0%}/{mix.get('lit', 0):.0%}",
                    "-" if c["dealer_pnl"] is None else cell(c["dealer_pnl"]),
                ]
            )
    print_table(
        [
            left("scenario"),
            left("side"),
            "cap",
            "IS",
            "sd",
            left("best baseline"),
            "vs best",
            f"vs cap {doc['caps'][0]:g}",
            "lead",
            "dealers/dark/lit",
            "dealers' P&L",
        ],
        rows,
    )
    print(
        f"{doc['router']} with its dealer blocks allowed 'cap' of the parent ahead of its "
        "schedule; bps of arrival, mean +- standard error over the episodes, 'sd' across "
        "them; 'vs' columns are paired on the same episodes; the best baseline is chosen "
        "per row after the fact; 'lead': the fills' mean lead over the TWAP line, share "
        "of the parent; dealers' P&L: theirs on these trades, bps of their notional."
    )


def run_fix(args: argparse.Namespace) -> None:
    """`bench fix`: NewOrderSingle to ExecutionReport(New) over loopback."""
    from bench.fix import fix_bench

    with Progress("bench fix") as bar:
        doc = fix_bench(
            args.orders,
            args.rate,
            window=args.window,
            client=args.client,
            real_desk=args.desk == "real",
            progress=bar,
        )
    if args.json_path != "-":
        pace = "unpaced" if args.rate is None else f"paced at {args.rate:g}/s"
        print(
            f"fix ({args.desk} desk, {pace}, client {args.client}): {doc['orders']:,} orders, "
            f"{doc['orders_per_s']:,.0f} orders/s, ack p50 {doc['ack_p50_ms']:.3f} ms, "
            f"p99 {doc['ack_p99_ms']:.3f} ms"
        )
    emit_json(args.json_path, doc)


def run_memory(args: argparse.Namespace) -> None:
    """`bench memory`: the desk's resident memory with open parent orders."""
    from bench.service import run_memory_bench

    doc = run_memory_bench(args.parents)
    if args.json_path != "-":
        print(
            f"desk with {doc['parents']} open parent orders: RSS {doc['rss_mb']:.0f} MB "
            f"({doc['rss_mb_empty']:.0f} MB with none, "
            f"{doc['kb_per_parent']:.0f} kB per parent); "
            f"{doc['child_orders']} child orders, {doc['fills']} fills so far"
        )
    emit_json(args.json_path, doc)


def run_risk_transfer(args: argparse.Namespace) -> None:
    """`bench risk-transfer`. Raises `UsageError` if the scenario has no dealer panel."""
    from bench.risk_transfer import run_risk_transfer as run
    from simulators.scenario import load_scenario

    if load_scenario(args.scenario, args.config_dir).dealer_panel is None:
        raise UsageError(f"--scenario: {args.scenario!r} has no dealer panel")
    check_json_path(args.json_path)
    with Progress(f"risk transfer {args.scenario}") as bar:
        doc = run(args.scenario, seeds=args.seeds, seed0=args.seed0, progress=bar)
    if args.json_path != "-":
        _print_risk_transfer(doc)
    emit_json(args.json_path, doc)


def _print_risk_transfer(doc: dict[str, Any]) -> None:
    print(
        f"risk transfer vs agency, {doc['scenario']}: best of {doc['panel_size']} quotes at "
        f"arrival vs TWAP over {doc['horizon_s'] / 3600:g} h, bps of the arrival mid, "
        f"seeds {doc['seeds'][0]}-{doc['seeds'][1]}, both sides"
    )
    rows = [
        [
            f"{r['size_adv']:.0%}",
            f"{r['qty']:,}",
            f"{r['best_quote_bps']:.1f}",
            f"{r['best_quote_bps_stderr']:.1f}",
            f"{r['quoted_share']:.0%}",
            f"{r['fill_bps']:.1f}",
            f"{r['twap_is_bps']:.1f}",
            f"{r['twap_is_bps_stderr']:.1f}",
            f"{r['twap_is_bps_std']:.1f}",
            f"{r['premium_bps']:.1f}",
            f"{r['premium_bps_stderr']:.1f}",
        ]
        for r in doc["rows"]
    ]
    columns = ["size", "qty", "best quote", "+-se", "covers", "fill", "TWAP IS", "+-se"]
    print_table([*columns, "TWAP sd", "premium", "+-se"], rows)


def run_impact(args: argparse.Namespace) -> None:
    """`bench impact`: the square-root law, impact decay and return statistics."""
    from bench.impact import run_impact_study

    with Progress("impact study") as bar:
        doc = run_impact_study(
            args.scenario,
            args.seeds,
            duration_s=args.duration,
            config_dir=args.config_dir,
            progress=bar,
        )
    if args.json_path != "-":
        _print_impact(doc)
    emit_json(args.json_path, doc)


def _print_impact(doc: dict[str, Any]) -> None:
    rows = [
        [
            f"{r['q_over_adv']:.2%}",
            f"{r['impact_bps']:.2f}",
            f"{r['impact_stderr_bps']:.2f}",
            f"{r['impact_over_sigma']:.3f}",
            f"{r['after_1x_bps']:.2f}",
            f"{r['after_2x_bps']:.2f}",
        ]
        for r in doc["rows"]
    ]
    print_table(["Q/ADV", "impact bps", "+-", "I/sigma", "+1x bps", "+2x bps"], rows)
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


def run_scenario(args: argparse.Namespace) -> None:
    """`bench scenario`: wall time and memory of whole simulations."""
    from bench.scenario import run_scenario_bench

    doc = run_scenario_bench(args.scenario, args.strategy, args.seed, args.repeat, args.config_dir)
    if args.json_path != "-":
        print(
            f"{doc['scenario']} with {doc['strategy']}: best {doc['seconds']:.3f} s, "
            f"median {doc['median_seconds']:.3f} s over {doc['repeat']} runs; "
            f"first run incl. start-up {doc['first_seconds']:.3f} s; peak traced "
            f"memory {doc['peak_traced_mb']:.1f} MB, max RSS {doc['max_rss_mb']:.0f} MB"
        )
    emit_json(args.json_path, doc)


def run_all(args: argparse.Namespace) -> None:
    """`bench all`: the suite of bench.suite, each benchmark in a process of its own.

    Raises `UsageError` on an unknown benchmark or an unreadable --compare file, before
    any run, and if a benchmark fails."""
    from bench.suite import TOLERANCE, SuiteError, compare, load_run, names, run_suite

    only = None
    if args.only is not None:
        only = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in only if n not in names()]
        if not only or unknown:
            raise UsageError(
                f"--only: unknown benchmark {', '.join(unknown) or '(none given)'} "
                f"(known: {', '.join(names())})"
            )
    check_json_path(args.json_path)
    old = None
    try:
        if args.compare is not None:
            from pathlib import Path

            old = load_run(Path(args.compare))
        with Progress("bench all") as bar:
            doc = run_suite(only, args.config_dir, progress=bar)
    except SuiteError as exc:
        raise UsageError(str(exc)) from None
    tolerance = TOLERANCE if args.tolerance is None else args.tolerance
    if old is not None:
        doc["compared_with"] = {
            "commit": old.get("commit"),
            "created": old.get("created"),
            "tolerance": tolerance,
            "rows": compare(old, doc, tolerance),
        }
    if args.json_path != "-":
        _print_all(doc)
    emit_json(args.json_path, doc)


def _print_all(doc: dict[str, Any]) -> None:
    def num(x: float | None) -> str:
        if x is None:
            return "-"
        return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"

    compared = doc.get("compared_with")
    if compared is None:
        rows = [
            [name, num(f["value"]), f["unit"], f["better"]] for name, f in doc["figures"].items()
        ]
        print_table([left("figure"), "value", left("unit"), left("better")], rows)
    else:
        rows = [
            [
                r["figure"],
                num(r["old"]),
                num(r["new"]),
                r["unit"],
                "-" if r["ratio"] is None else f"{r['ratio']:.2f}x",
                "WORSE" if r["regressed"] else "",
            ]
            for r in compared["rows"]
        ]
        print_table([left("figure"), "old", "new", left("unit"), "new/old", left("")], rows)
        worse = sum(r["regressed"] for r in compared["rows"])
        print(
            f"against {compared['commit'] or 'an earlier run'} ({compared['created']}): "
            f"{worse} of {len(compared['rows'])} figures worse by more than "
            f"{compared['tolerance']:.0%}"
        )
    print(
        f"{len(doc['benchmarks'])} benchmarks in {doc['wall_s']:.0f} s on {doc['cpus']} "
        f"cores (commit {doc['commit'] or 'unknown'}); the load before each is in the file"
    )


def run_startup(args: argparse.Namespace) -> None:
    """`bench startup`: the start-up and wall time of whole `simulate` commands."""
    from bench.startup import StartupBenchError, run_startup_bench
    from router.app import check_strategies
    from simulators.scenario import load_scenario

    sets = [s.strip() for s in args.strategies.split(";") if s.strip()]
    if not sets:
        raise UsageError("--strategies: nothing to time")
    for s in sets:
        check_strategies(strategy_names(s))
    load_scenario(args.scenario, args.config_dir)  # a bad name fails before any run
    check_json_path(args.json_path)
    try:
        doc = run_startup_bench(args.scenario, sets, args.runs, args.config_dir)
    except StartupBenchError as exc:
        raise UsageError(str(exc)) from None
    if args.json_path != "-":
        print(
            f"{doc['scenario']}: median of {doc['runs']} warm runs per row, {doc['cpus']} CPUs, "
            f"load {doc['load_before'][0]:.2f} before, {doc['load_after'][0]:.2f} after"
        )
        print_table(
            [left("--strategies"), "wall s", "CPU s", "target s", "met"],
            [
                [
                    r["strategies"],
                    f"{r['median_wall_s']:.2f}",
                    f"{r['median_cpu_s']:.2f}",
                    "" if r["target_wall_s"] is None else f"{r['target_wall_s']:g}",
                    "" if r["meets_target"] is None else ("yes" if r["meets_target"] else "no"),
                ]
                for r in doc["rows"]
            ],
        )
    emit_json(args.json_path, doc)
