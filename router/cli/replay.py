"""`blockroute replay check`: rebuild a real order-by-order capture's book and check it
against the capture's own trades (simulators/replay/)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from router.cli import replay_facts
from router.cli.args import Parser, Subparsers, add_json
from router.cli.console import Progress, left, print_table
from router.cli.output import check_json_path, emit_json

if TYPE_CHECKING:
    from simulators.replay.check import CheckReport


def register(sub: Subparsers) -> None:
    """Add the `replay` commands to the top-level subcommands."""
    rp = sub.add_parser("replay", help="order-by-order replays of real market data")
    rsub = rp.add_subparsers(dest="replay", required=True, parser_class=Parser)
    rc = rsub.add_parser(
        "check", help="rebuild a capture's book and check every real trade against it"
    )
    rc.add_argument("name", help="the capture, e.g. bitstamp-btcusd (the `data` extra)")
    rc.add_argument(
        "--literal",
        action="store_true",
        help="the control: rest every new order where the feed puts it and keep stale "
        "snapshot orders (no handling of marketable orders)",
    )
    add_json(rc)
    rc.set_defaults(func=run_check)
    replay_facts.register(rsub)


def run_check(args: argparse.Namespace) -> None:
    """`replay check NAME`. A missing capture or extra, or a malformed file, raises
    `ReplayError` (exit status 2)."""
    from simulators.replay.check import check_reconstruction
    from simulators.replay.sources import open_replay

    check_json_path(args.json_path)
    source = open_replay(args.name)
    with Progress(f"load {args.name}") as bar:
        capture = source.load(progress=bar)
    report = check_reconstruction(capture, literal=args.literal)
    if args.json_path != "-":
        print_check(report)
    emit_json(args.json_path, report.to_json())


def print_check(r: CheckReport) -> None:
    rows = [
        ["events", f"{r.events:,}"],
        ["applied", f"{r.applied:,}"],
        *([f"skipped: {k}", f"{v:,}"] for k, v in r.skipped.items()),
        ["crossed or locked, s", f"{r.crossed_seconds:.3f}"],
        ["trades", f"{r.trades:,}"],
        ["trades matched", f"{r.trades_matched:,}"],
        ["makers at the front of their queue", f"{r.makers_at_queue_front:,}"],
        *([f"handled: {k}", f"{v:,}"] for k, v in r.handled.items() if v),
    ]
    mode = "literal reading" if r.literal else "replay"
    print_table([left(f"{r.replay} ({mode})"), "count"], rows)
    bids, asks = r.final_book["bids"], r.final_book["asks"]
    book_rows = []
    for i in range(max(len(bids), len(asks))):
        b = bids[i] if i < len(bids) else None
        a = asks[i] if i < len(asks) else None
        book_rows.append(
            [
                f"{b[1]:.8g}" if b else "",
                f"{b[0]:,.8g}" if b else "",
                f"{a[0]:,.8g}" if a else "",
                f"{a[1]:.8g}" if a else "",
            ]
        )
    print()
    print_table(["bid size", "bid", "ask", "ask size"], book_rows)
    if r.unmatched:
        print()
        print_table(
            [left("unmatched trade"), left("reason"), left("detail")],
            ([str(u.trade_id), u.reason, u.detail] for u in r.unmatched),
        )
    if r.end_state is not None:
        e = r.end_state
        why = ", ".join(f"{k} {v}" for k, v in e["only_in_capture_why"].items()) or "none"
        print(
            f"\nend state vs the capture's own: {e['in_both']:,} orders in both "
            f"({e['size_differs']} differ in size, {e['price_differs']} in price), "
            f"{e['only_in_replay']} only in the replay, {e['only_in_capture']} only in the "
            f"capture ({why})"
        )
    print(f"{r.instrument['how']}.")
