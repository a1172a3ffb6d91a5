"""`blockroute bench all`: every speed benchmark in one run and one file, and the ratio of
each figure to an earlier run's (`--compare`), so that a change that makes something
slower is seen in review.

Each benchmark runs as a `blockroute` process of its own (`... --json -`), so that none
starts with another's imports or compiled code; `bench startup` times whole `simulate`
commands, the interpreter's start and the imports included, as a user waits for them.
The studies (impact, risk transfer, drift, pace, scale) are not here: they take minutes
and measure the market, not the code's speed.

A figure is a number with its unit and the direction that is better. Comparing, a figure
has regressed when it moved the wrong way by more than the tolerance (10% by default: the
run-to-run spread of these figures on a quiet two-core machine is a few percent)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import blockroute_command

TOLERANCE = 0.10


class SuiteError(Exception):
    """A benchmark's process failed, or a comparison file is not a `bench all` file."""


@dataclass(frozen=True)
class Figure:
    name: str  # e.g. "book.events_per_s": the benchmark, then the figure
    path: str  # where in the benchmark's JSON document, dotted
    unit: str
    better: str  # "higher" or "lower"


@dataclass(frozen=True)
class Bench:
    """One benchmark: `blockroute ARGS --json -` once, its figures read from the document."""

    name: str
    args: tuple[str, ...]
    figures: tuple[Figure, ...]
    episodes: int | None = None  # a backtest: episodes/s from its own time (meta.wall_s)
    rows_by: str | None = None  # its document's `rows`, found by this key (rows_by.KEY...)


def _fig(bench: str, path: str, unit: str, better: str, name: str | None = None) -> Figure:
    return Figure(f"{bench}.{name or path}", path, unit, better)


SUITE: tuple[Bench, ...] = (
    Bench(
        "book",
        ("bench", "book", "--events", "1000000"),
        (
            _fig("book", "events_per_s", "events/s", "higher"),
            _fig("book", "speedup_vs_python", "x", "higher"),
        ),
    ),
    Bench(
        "decide",
        ("bench", "decide", "--n", "2000"),
        tuple(
            _fig("decide", f"{part}.{q}", "us", "lower")
            for part in ("decision", "slicer", "fill_model", "dealer_panel")
            for q in ("p50_us", "p99_us", "p999_us")
        ),
    ),
    Bench(
        "fix",
        ("bench", "fix", "--orders", "3000"),
        (
            _fig("fix", "orders_per_s", "orders/s", "higher"),
            _fig("fix", "ack_p99_ms", "ms", "lower"),
        ),
    ),
    Bench(
        "fix_1k",
        ("bench", "fix", "--orders", "3000", "--rate", "1000"),
        (
            _fig("fix_1k", "ack_p50_ms", "ms", "lower"),
            _fig("fix_1k", "ack_p99_ms", "ms", "lower"),
        ),
    ),
    Bench(
        "scenario_twap",
        ("bench", "scenario", "--scenario", "news-shock", "--strategy", "twap", "--repeat", "3"),
        (_fig("scenario_twap", "seconds", "s", "lower"),),
    ),
    Bench(
        "scenario_ml",
        ("bench", "scenario", "--scenario", "news-shock", "--strategy", "ml", "--repeat", "3"),
        (_fig("scenario_ml", "seconds", "s", "lower"),),
    ),
    # whole `simulate` commands as a user waits for them (bench.startup): medians of 3
    Bench(
        "startup",
        ("bench", "startup", "--runs", "3"),
        tuple(
            _fig("startup", f"rows_by.{s}.{key}", "s", "lower", f"{s}.{key}")
            for s in ("twap", "ml", "all")
            for key in ("median_wall_s", "median_cpu_s")
        ),
        rows_by="strategies",
    ),
    Bench(
        "backtest",
        (
            *("backtest", "--scenarios", "calm,news-shock", "--strategies", "twap,sor"),
            *("--episodes", "10", "--seed0", "1000", "--workers", "2", "--no-hindsight"),
            *("--db-url", "none"),
        ),
        (_fig("backtest", "episodes_per_s", "episodes/s", "higher"),),
        episodes=20,
    ),
    Bench(
        "memory",
        ("bench", "memory", "--parents", "100"),
        (
            _fig("memory", "rss_mb", "MB", "lower"),
            _fig("memory", "kb_per_parent", "kB", "lower"),
        ),
    ),
)


def names() -> list[str]:
    return [b.name for b in SUITE]


def run_suite(
    only: Sequence[str] | None = None,
    config_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Every benchmark of SUITE (or those named in `only`), in order: the figures, each
    benchmark's whole document, and how the machine stood. Raises SuiteError naming the
    benchmark whose process failed."""
    chosen = [b for b in SUITE if only is None or b.name in only]
    figures: dict[str, dict[str, Any]] = {}
    documents: dict[str, Any] = {}
    started = time.perf_counter()
    for k, bench in enumerate(chosen):
        if progress:
            progress(k, len(chosen))
        load = os.getloadavg()[0]
        doc = _document(bench, config_dir)
        documents[bench.name] = doc
        for f in bench.figures:
            figures[f.name] = {
                "value": _at(doc, f.path),
                "unit": f.unit,
                "better": f.better,
                "load_1m": load,
            }
    if progress:
        progress(len(chosen), len(chosen))
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "wall_s": time.perf_counter() - started,
        "figures": figures,
        "benchmarks": documents,
    }


def _run(command: list[str], name: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SuiteError(f"bench all: {name} failed (exit {done.returncode}): {last}")
    return done.stdout


def _document(bench: Bench, config_dir: Path | None) -> dict[str, Any]:
    out = _run(blockroute_command(*bench.args, "--json", "-", config_dir=config_dir), bench.name)
    try:
        doc: dict[str, Any] = json.loads(out)
    except json.JSONDecodeError:
        raise SuiteError(f"bench all: {bench.name} wrote no JSON document") from None
    if bench.episodes is not None:
        doc = {"episodes_per_s": bench.episodes / doc["meta"]["wall_s"], "meta": doc["meta"]}
    if bench.rows_by is not None:
        doc["rows_by"] = {str(r[bench.rows_by]): r for r in doc["rows"]}
    return doc


def _at(doc: dict[str, Any], path: str) -> float:
    value: Any = doc
    for key in path.split("."):
        value = value[key]
    return float(value)


def _commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def load_run(path: Path) -> dict[str, Any]:
    """A file written by `bench all --json`. Raises SuiteError if it is not one."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SuiteError(f"--compare: cannot read {path}: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("figures"), dict):
        raise SuiteError(f"--compare: {path} is not a `bench all` file (no 'figures')")
    return doc


def compare(
    old: dict[str, Any], new: dict[str, Any], tolerance: float = TOLERANCE
) -> list[dict[str, Any]]:
    """Each figure of `new` beside `old`'s: the ratio new/old, and whether it regressed
    (moved the wrong way by more than `tolerance`). Figures only one run has come with
    None where the other's value would be."""
    rows = []
    for name in [*new["figures"], *(n for n in old["figures"] if n not in new["figures"])]:
        a, b = old["figures"].get(name), new["figures"].get(name)
        row: dict[str, Any] = {
            "figure": name,
            "unit": (b or a)["unit"],
            "better": (b or a)["better"],
            "old": None if a is None else a["value"],
            "new": None if b is None else b["value"],
            "ratio": None,
            "regressed": False,
        }
        if a is not None and b is not None and a["value"]:
            ratio = b["value"] / a["value"]
            row["ratio"] = ratio
            worse = 1 - ratio if row["better"] == "higher" else ratio - 1
            row["regressed"] = worse > tolerance
        rows.append(row)
    return rows
