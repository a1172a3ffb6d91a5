"""`blockroute replay facts` and `replay report`: a capture's stylized facts beside the
simulator's (simulators/facts/), and the replayed capture as pictures (the market
report, router/reporting/market.py)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from router.cli.args import Subparsers, UsageError, add_json
from router.cli.console import Col, Progress, left, print_table
from router.cli.output import check_json_path, check_report_dir, emit_json, write_report


def register(rsub: Subparsers) -> None:
    """Add `facts` and `report` to the `replay` commands."""
    rf = rsub.add_parser(
        "facts", help="stylized facts of a capture beside the simulator's (a scenario)"
    )
    rf.add_argument("name", help="the capture, e.g. bitstamp-btcusd (the `data` extra)")
    rf.add_argument(
        "--scenario",
        default="calm",
        help="the simulated market to set beside it (default calm; 'none': the capture only)",
    )
    rf.add_argument("--seed", type=int, default=0, help="the simulated market's seed")
    rf.add_argument(
        "--window",
        type=float,
        default=None,
        help="seconds of the simulated market to observe (default: the capture's length)",
    )
    add_json(rf)
    rf.set_defaults(func=run_facts)

    rr = rsub.add_parser("report", help="the replayed capture as a self-contained HTML page")
    rr.add_argument("name", help="the capture, e.g. bitstamp-btcusd (the `data` extra)")
    rr.add_argument("--out", type=Path, required=True, help="folder for index.html")
    add_json(rr, help="also write the report's document (rebuild: python -m router.reporting)")
    rr.set_defaults(func=run_report)


def run_facts(args: argparse.Namespace) -> None:
    """`replay facts NAME`. A bad scenario, seed or window raises before any work."""
    from simulators.facts.capture import capture_facts
    from simulators.replay.sources import open_replay

    check_json_path(args.json_path)
    if args.window is not None and not (math.isfinite(args.window) and args.window > 0):
        raise UsageError(f"--window: must be a positive number of seconds, got {args.window}")
    scenario = None
    if args.scenario != "none":
        from simulators.scenario import load_scenario

        scenario = load_scenario(args.scenario, args.config_dir)
    source = open_replay(args.name)
    with Progress(f"load {args.name}") as bar:
        capture = source.load(progress=bar)
    with Progress(f"replay {args.name}, book every 100 ms") as bar:
        real = capture_facts(capture, progress=bar)
    doc: dict[str, Any] = {"replay": args.name, "real": real.to_json(), "simulator": None}
    if scenario is not None:
        from simulators.facts.simulated import simulated_facts

        window = args.window if args.window is not None else max(real.window_s, 60.0)
        with Progress(f"simulate {scenario.name}, {window:g} s") as bar:
            sim = simulated_facts(scenario, args.seed, window, progress=bar)
        doc["simulator"] = sim.to_json()
    if args.json_path != "-":
        print_facts(doc)
    emit_json(args.json_path, doc)


def run_report(args: argparse.Namespace) -> None:
    """`replay report NAME --out DIR`: DIR/index.html."""
    from router.reporting.market import write_market_report
    from simulators.replay.pictures import market_document
    from simulators.replay.sources import open_replay

    check_json_path(args.json_path)
    check_report_dir(args.out)
    source = open_replay(args.name)
    with Progress(f"load {args.name}") as bar:
        capture = source.load(progress=bar)
    with Progress(f"replay {args.name}, book every 100 ms") as bar:
        doc = market_document(capture, progress=bar)
    index = write_report(write_market_report, doc, args.out)
    emit_json(args.json_path, doc)
    if args.json_path != "-":
        print(index)


# ---------------------------------------------------------------------------- table


def _num(v: object, digits: int = 3) -> str:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return "–"
    if v != 0 and abs(v) < 10 ** -(digits - 1):
        return f"{v:.{digits}g}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:,.{digits}g}" if abs(v) >= 1 else f"{v:.{digits}g}"


def ratio_or_nan(num: object, den: float) -> float:
    if not isinstance(num, int | float) or not den or not math.isfinite(den):
        return math.nan
    return float(num) / den


def _pair(d: object, unit: str = "") -> str:
    if not isinstance(d, Mapping) or d.get("median") is None:
        return "–"
    tail = f" {unit}" if unit else ""
    return f"{_num(d['median'])} / {_num(d['p90'])}{tail}"


def _returns(f: Mapping[str, Any], key: str) -> str:
    r = f.get("returns", {}).get(key)
    if not isinstance(r, Mapping):
        return "–"
    return f"{_num(r.get('kurtosis'))} / {_num(r.get('autocorr_1'), 2)} (n {r.get('n', 0):,})"


def fact_rows(facts: Mapping[str, Any]) -> list[tuple[str, str]]:
    """One market's facts as (row name, cell), in the table's order."""
    f, unit = facts, str(facts.get("unit", ""))
    window = f.get("window_s") or 0.0
    per_s = (lambda n: n / window) if window else (lambda n: math.nan)
    new = f["orders"] + f["rejected_at_once"]
    return [
        ("window, s", _num(window, 4)),
        ("mid, median", f"{_num(f['price'], 5)}"),
        ("tick", f"{_num(f['tick_size'])}"),
        ("spread, ticks: median / p90", _pair(f["spread_ticks"])),
        ("spread, bps: median / p90", _pair(f["spread_bps"])),
        ("depth at the touch per side: median / p90", _pair(f["touch_depth"], unit)),
        ("depth within 10 bps per side: median / p90", _pair(f["depth_10bps"], unit)),
        ("order size: median / p90", _pair(f["order_size"], unit)),
        ("order size, lots: median / p90", _pair(f["order_size_lots"])),
        ("order size / median touch depth: median / p90", _pair(f["order_size_over_touch"])),
        ("new limit orders that rested, per s", _num(per_s(f["orders"]))),
        (
            "new limit orders gone at once untraded",
            f"{f['rejected_at_once']:,} ({_num(f['rejected_at_once'] / new if new else 0, 2)})",
        ),
        ("traded per minute", f"{_num(per_s(f['traded']) * 60)} {unit}"),
        (
            "depth within 10 bps, in minutes of trading",
            _num(ratio_or_nan(f["depth_10bps"].get("median"), per_s(f["traded"]) * 60)),
        ),
        ("cancels / trades", f"{f['cancels']:,} / {f['trades']:,}"),
        ("cancel-to-trade ratio", _num(f["cancel_to_trade"])),
        ("order lifetime, s: median / p90", _pair(f["lifetime_s"])),
        ("events per s", _num(f["events_per_s"])),
        ("event inter-arrival, ms: median / p90", _pair(f["interarrival_ms"])),
        ("1-s mid returns: excess kurtosis / lag-1 autocorr", _returns(f, "1s")),
        ("1-min mid returns: excess kurtosis / lag-1 autocorr", _returns(f, "60s")),
    ]


def print_facts(doc: Mapping[str, Any]) -> None:
    real = doc["real"]
    sim = doc.get("simulator")
    columns: list[Col | str] = [left("stylized fact"), f"{real['name']} (replay)"]
    rows = [[name, cell] for name, cell in fact_rows(real)]
    if sim:
        columns.append(f"{sim['name']} (simulator)")
        for row, (_, cell) in zip(rows, fact_rows(sim), strict=True):
            row.append(cell)
    print_table(columns, rows)
    notes = [("replay", real.get("notes", {}))]
    if sim:
        notes.append(("simulator", sim.get("notes", {})))
    print()
    for who, n in notes:
        for k, v in n.items():
            print(f"{who}, {k}: {v}")
