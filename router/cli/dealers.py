"""`blockroute dealers scorecard|pnl`: the dealer panel seen from the client (a
scorecard per dealer over simulated RFQ days) and from the dealers (their own P&L)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from router.cli.args import Parser, Subparsers, UsageError, add_json, integer, positive_int
from router.cli.console import Col, Progress, left, print_table
from router.cli.output import check_json_path, check_report_dir, emit_json

if TYPE_CHECKING:
    from dealers.scorecard import Scorecard

_JSON_HELP = "write JSON here ('-' = stdout)"


def register(sub: Subparsers) -> None:
    """Add `dealers scorecard` and `dealers pnl` to the top-level subcommands."""
    dl = sub.add_parser("dealers", help="dealer analytics")
    dsub = dl.add_subparsers(dest="dealers", required=True, parser_class=Parser)
    sc = dsub.add_parser("scorecard", help="RFQ days against the panel; a scorecard per dealer")
    sc.add_argument("--scenario", default="illiquid-bond")
    sc.add_argument("--rfqs", type=positive_int, default=300, help="RFQs in all")
    sc.add_argument("--seed", type=integer, default=1, help="seed of the first day")
    sc.add_argument("--per-day", type=positive_int, default=80, help="RFQs per simulated day")
    sc.add_argument(
        "--panel-size",
        default="4",
        help="dealers per RFQ; a comma-separated list draws one per RFQ (e.g. 2,4,8)",
    )
    sc.add_argument(
        "--two-sided", type=float, default=0.0, help="share of two-sided requests, 0..1"
    )
    add_json(sc, _JSON_HELP)
    sc.add_argument("--report", type=Path, help="write a self-contained HTML report here")
    sc.set_defaults(func=run_scorecard)

    dp = dsub.add_parser(
        "pnl", help="the simulated dealers' own P&L on their client trades, by size"
    )
    dp.add_argument("--scenario", default="calm", help="a scenario, or 'all' (pooled)")
    dp.add_argument("--rfqs", type=positive_int, default=2000, help="RFQs per scenario")
    dp.add_argument("--seed", type=integer, default=8_000_000, help="seed of the first day")
    dp.add_argument("--workers", type=positive_int, default=1, help="worker processes")
    add_json(dp, _JSON_HELP)
    dp.set_defaults(func=run_pnl)


def run_scorecard(args: argparse.Namespace) -> None:
    """`dealers scorecard`: RFQ days against the scenario's panel, scored per dealer.

    Raises `UsageError` if the scenario has no dealer panel or the panel sizes or the
    two-sided share do not fit it.
    """
    from dealers.config import load_panel
    from dealers.panel import HeuristicPanel
    from dealers.scorecard import Scorecard
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
    check_json_path(args.json_path)
    check_report_dir(args.report)
    # a wider exploration than a desk's default: the scorecard should cover every dealer
    selector = HeuristicPanel(panel.ids, explore=0.3)
    card = Scorecard()
    days = -(-args.rfqs // args.per_day)
    left = args.rfqs
    with Progress(f"scorecard {scenario.name}") as bar:
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
        _print_scorecard(card)
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
    emit_json(args.json_path, doc)


def run_pnl(args: argparse.Namespace) -> None:
    """`dealers pnl`: the simulated dealers' P&L per scenario (or pooled over all).

    Raises `UsageError` if a scenario has no dealer panel.
    """
    from dealers import economics
    from simulators.scenario import available_scenarios, load_scenario

    names = [args.scenario]
    if args.scenario == "all":
        names = available_scenarios(args.config_dir)
    for name in names:
        if load_scenario(name, args.config_dir).dealer_panel is None:
            raise UsageError(f"--scenario: {name!r} has no dealer panel")
    check_json_path(args.json_path)
    with Progress(f"dealers pnl {args.scenario}") as bar:
        rows = economics.collect(names, args.rfqs, args.seed, args.workers, bar, args.config_dir)
    doc = economics.report(rows, names, args.rfqs, args.seed)
    if args.json_path != "-":
        print(
            f"dealer P&L: {args.scenario}, {doc['rfqs_per_scenario']:,} RFQs per scenario, "
            f"seeds {args.seed}..; bps of notional, marked at the end of each day"
        )
        _print_pnl(doc)
    emit_json(args.json_path, doc)


def _print_scorecard(card: Scorecard) -> None:
    from dealers import scorecard

    headers, rows = scorecard.table(card)
    print_table([left(headers[0]), *headers[1:]], rows)
    if not rows:
        print("(no RFQs)")
    print()
    for line in scorecard.notes(card):
        print(line)


def _print_pnl(doc: dict[str, Any]) -> None:
    """A row per dealer, then the panel's, then (several scenarios) the panel's in each."""
    from dealers.pnl import SIZE_BUCKETS

    sizes = [label for label, _ in SIZE_BUCKETS]

    def ci(c: list[float]) -> str:
        return "" if any(math.isnan(x) for x in c) else f"[{c[0]:.1f}, {c[1]:.1f}]"

    def head(name: str, v: dict[str, Any]) -> list[str]:
        return [name, str(v["trades"]), f"{v['pnl_bps_mean']:.2f}", ci(v["pnl_bps_ci95"])]

    rows = []
    for d in doc["dealers"]:
        by_size = ["-" if v is None else f"{v:.1f}" for v in d["by_size"].values()]
        parts = [f"{d['parts_bps'][k]:.1f}" for k in ("edge", "market", "unwind")]
        rows.append([*head(d["dealer"], d), *by_size, *parts])
    blank = [""] * (len(sizes) + 3)
    rows.append([*head("panel", doc["panel"]), *blank])
    if len(doc["by_scenario"]) > 1:
        rows += [[*head(f"  {s}", v), *blank] for s, v in doc["by_scenario"].items()]
    columns: list[Col | str] = [left("dealer"), "trades", "P&L bps", "95% interval", *sizes]
    print_table([*columns, "edge", "market", "unwind"], rows)
