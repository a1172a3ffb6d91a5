"""`blockroute models wheel`: the algo wheel's live results, the challenger's models
against the champion's on the parents the service split between them
(router.wheel_stats), read from the service's journal, with a recommendation to promote,
to keep, or to let the wheel run longer."""

from __future__ import annotations

import argparse
from typing import Any

from router.cli.args import Subparsers, UsageError, add_json, positive_float
from router.cli.console import Col, left, print_table
from router.cli.models_compare import _ALPHA, _MIN_EFFECT_BPS, _POWER  # one set of defaults
from router.cli.output import check_json_path, emit_json


def add_wheel_parser(subparsers: Subparsers) -> None:
    """Add `wheel` to a `models` group's subcommands."""
    mw = subparsers.add_parser(
        "wheel",
        help="the algo wheel's live results: challenger against champion on live parents",
        description="From the service's journal: the completed parents that the algo "
        "wheel ([models] wheel_share) gave the champion's and the challenger's models, "
        "per arm their number and mean IS with its standard error, and the difference "
        "challenger - champion (Welch, matched by symbol and side) with the minimum "
        "effect, the parents it needs, and promote or keep (the rule of `models compare`).",
    )
    mw.add_argument(
        "family",
        nargs="?",
        help="dealer, fill or slicer: the arms must differ in it (default: whatever they "
        "differ in)",
    )
    mw.add_argument(
        "--db-url",
        default=None,
        help="the service's database (its journal): sqlite:///file.db or postgresql://... "
        "(default: blockroute.db here, as `serve`)",
    )
    mw.add_argument(
        "--since",
        default=None,
        help="only parents created since: a duration back from the journal's last clock "
        "reading (90m, 24h) or an ISO 8601 time, UTC unless it says (2026-12-08T09:30)",
    )
    mw.add_argument(
        "--min-effect-bps",
        type=positive_float,
        default=_MIN_EFFECT_BPS,
        help="the smallest saving worth a change, declared before; sets the parents needed "
        f"(default: {_MIN_EFFECT_BPS:g})",
    )
    mw.add_argument(
        "--alpha", type=float, default=_ALPHA, help=f"two-sided test level (default {_ALPHA})"
    )
    mw.add_argument(
        "--power", type=float, default=_POWER, help=f"power to find the effect (default {_POWER})"
    )
    add_json(mw, "write JSON here ('-' = stdout)")
    mw.set_defaults(func=run_wheel)


def run_wheel(args: argparse.Namespace) -> None:
    """`models wheel`. Bad input (a database that is not a journal, an unknown family, a
    level or power outside (0, 1), a --since that is no time, a journal without any
    parent of the wheel) exits 2 with one line."""
    from router.journal import Journal
    from router.store import DEFAULT_URL
    from router.wheel_stats import WheelError, WheelParent, parse_since, wheel_report

    for flag, value in (("--alpha", args.alpha), ("--power", args.power)):
        if not 0 < value < 1:
            raise UsageError(f"{flag}: must lie between 0 and 1, got {value:g}")
    check_json_path(args.json_path)
    journal = Journal.open_existing(args.db_url or DEFAULT_URL)
    try:
        since_ns = None
        if args.since is not None:
            now = journal.last_clock_ns()
            try:
                since_ns = parse_since(args.since, now)
            except WheelError as exc:
                raise UsageError(f"--{exc}") from None
        rows = journal.wheel_parents(since_ns)
        try:
            doc = wheel_report(
                (WheelParent.of(r) for r in rows),
                family=args.family,
                since_ns=since_ns,
                min_effect_bps=args.min_effect_bps,
                alpha=args.alpha,
                power=args.power,
            )
        except WheelError as exc:
            raise UsageError(f"{journal.url}: {exc}") from None
    finally:
        journal.close()
    if args.json_path != "-":
        _print_wheel(doc)
    emit_json(args.json_path, doc)


def _num(value: float | None, fmt: str = ".2f") -> str:
    return "" if value is None else format(value, fmt)


def _print_wheel(doc: dict[str, Any]) -> None:
    arms = doc["arms"]
    changed = ", ".join(doc["families_changed"]) or "none"
    print(
        f"algo wheel: challenger {arms['challenger']['versions']} against champion "
        f"{arms['champion']['versions']} (families changed: {changed})"
    )
    head: list[Col | str] = [left("arm"), "completed", "open", "IS mean", "+-se", "sd"]
    print_table(
        head,
        [
            [
                arm,
                str(a["completed"]),
                str(a["open"]),
                _num(a["is_bps_mean"]),
                _num(a["is_bps_stderr"]),
                _num(a["is_bps_sd"]),
            ]
            for arm, a in arms.items()
        ],
    )
    rows = [
        [
            r["symbol"],
            r["side"],
            str(r["champion"]["n"]),
            str(r["challenger"]["n"]),
            _num(r["champion"]["is_bps_mean"]),
            _num(r["challenger"]["is_bps_mean"]),
            _num(r.get("diff_bps_mean"), "+.2f"),
            _num(r.get("diff_bps_stderr")),
            _num(r.get("t"), "+.1f"),
        ]
        for r in doc["strata"]
    ]
    cols: list[Col | str] = [left("symbol"), left("side"), "champion", "challenger"]
    print_table([*cols, "champion IS", "challenger IS", "diff", "+-se", "t"], rows)
    for name in ("pooled", "overall"):
        d = doc[name]
        if d is not None:
            what = f"matched in {d['strata']} strata" if name == "pooled" else "unmatched"
            print(
                f"challenger - champion, {what}: {d['diff_bps_mean']:+.2f} +- "
                f"{d['diff_bps_stderr']:.2f} bps (t {_num(d['t'], '+.1f')}, df "
                f"{d['df']:.0f}) over {d['parents']} completed parents"
            )
    s = doc["sample_size"]
    if s["parents_needed"] is not None:
        print(
            f"minimum effect {s['min_effect_bps']:g} bps at alpha {s['alpha']:g}, power "
            f"{s['power']:g}: sd {s['sd_bps']:.2f} bps a parent -> {s['parents_needed']} "
            f"completed parents needed"
        )
    print(f"recommendation: {doc['recommendation']} ({doc['verdict']}: {doc['reason']})")
