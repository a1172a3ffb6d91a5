"""`blockroute schedule ac`: the discrete Almgren-Chriss (2000) optimal trajectory, in
the paper's units, and optionally points of its efficient frontier."""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING, Any

from router.cli.args import Parser, Subparsers, add_json, paper_time, positive_int
from router.cli.console import print_table
from router.cli.output import emit_json

if TYPE_CHECKING:
    from router.strategies.almgren_chriss import AcSchedule


def register(sub: Subparsers) -> None:
    """Add `schedule ac` to the top-level subcommands."""
    sched = sub.add_parser("schedule", help="closed-form execution schedules")
    ssub = sched.add_subparsers(dest="schedule", required=True, parser_class=Parser)
    ac = ssub.add_parser("ac", help="Almgren-Chriss (2000) optimal trajectory")
    ac.add_argument("--qty", type=float, required=True, help="X, shares to sell")
    ac.add_argument(
        "--horizon",
        type=paper_time,
        required=True,
        help="T in the paper's time unit (a plain number), or a duration like 3h (seconds)",
    )
    ac.add_argument("--periods", type=positive_int, required=True, help="N")
    ac.add_argument("--sigma", type=float, required=True, help="volatility per unit time^0.5")
    ac.add_argument("--eta", type=float, required=True, help="temporary impact")
    ac.add_argument("--gamma", type=float, required=True, help="permanent impact")
    ac.add_argument("--epsilon", type=float, required=True, help="fixed cost per share")
    ac.add_argument("--risk-aversion", type=float, required=True, help="lambda")
    ac.add_argument(
        "--frontier", type=positive_int, help="also print N points of the efficient frontier"
    )
    add_json(ac)
    ac.set_defaults(func=run_ac)


def run_ac(args: argparse.Namespace) -> None:
    """`schedule ac`. Parameters outside the model's domain raise `DomainError`."""
    from router.strategies.almgren_chriss import AcParams, ac_trajectory, efficient_frontier

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
        _print_schedule(schedule)
        for f in doc.get("frontier", []):
            print(
                f"lambda {f['risk_aversion']:.3g}: E {f['expected_cost']:.6g}  "
                f"V {f['variance']:.6g}"
            )
    emit_json(args.json_path, doc)


def _print_schedule(schedule: AcSchedule) -> None:
    """The trajectory, a row per period, with kappa, E and V below it."""
    p = schedule.params
    rows = [
        [str(j), f"{t:.6g}", f"{x:,.2f}", f"{schedule.trades[j - 1]:,.2f}" if j else "-"]
        for j, (t, x) in enumerate(zip(schedule.times, schedule.holdings, strict=True))
    ]
    print_table(["period", "time", "holdings", "trade"], rows)
    print()
    print(
        f"kappa = {schedule.kappa:.6g} per time unit (kappa*T = {schedule.kappa * p.T:.4g}), "
        f"lambda = {p.lam:.6g}"
    )
    print(f"E = {schedule.expected_cost:,.2f}")
    print(f"V = {schedule.variance:.6g} (sd {math.sqrt(schedule.variance):,.2f})")
