"""`blockroute bench book --replay NAME`: the L3 replay's kernel (simulators/replay/l3.py
on the project's book) on a real capture's events, beside a plain Python order-by-order
book (bench/pyl3book.py) on the same events. Parsing is timed apart: it is the adapter's
cost, paid once per capture."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.pyl3book import PyL3Book
from simulators.book import ASK, BID
from simulators.replay.events import Capture
from simulators.replay.replayer import Replayer, price_band
from simulators.replay.sources import open_replay

ProgressFn = Callable[[int, int], None]

#: live events of the compile-and-warm run
WARMUP_EVENTS = 2_000
TOP_LEVELS = 10


def time_replay(capture: Capture, repeat: int) -> list[float]:
    """Seconds of `repeat` runs of the kernel over the whole stream, each on a fresh book
    (allocated outside the timing)."""
    ev = capture.events
    n_orders = len(capture.order_ids)
    Replayer(ev.head(WARMUP_EVENTS), n_orders).run()  # compile, or load the cached code
    seconds = []
    for _ in range(repeat):
        rp = Replayer(ev, n_orders)
        t0 = time.perf_counter()
        rp.run()
        seconds.append(time.perf_counter() - t0)
    return seconds


def time_python(capture: Capture) -> tuple[float, PyL3Book]:
    """Seconds of one run of the plain Python book over the same events (as lists, made
    outside the timing), and the book it leaves."""
    ev = capture.events
    ts, order, side, price, qty, action = (
        a.tolist() for a in (ev.ts_ns, ev.order, ev.side, ev.price, ev.qty, ev.action)
    )
    py = PyL3Book(price_band(ev))
    t0 = time.perf_counter()
    py.apply(ts, order, side, price, qty, action, ev.n_snapshot)
    return time.perf_counter() - t0, py


def run_replay_book_bench(
    name: str, repeat: int = 5, compare_python: bool = True, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Events per second of the replay kernel on capture `name` (best of `repeat` runs),
    the parse time, and with `compare_python` the plain Python book's rate and whether
    both books end the same (their top levels and resting orders)."""
    if repeat <= 0:
        raise ValueError("repeat must be positive")
    source = open_replay(name)
    t0 = time.perf_counter()
    capture = source.load(progress)
    parse_s = time.perf_counter() - t0
    n = len(capture.events)
    seconds = time_replay(capture, repeat)
    best = min(seconds)
    doc: dict[str, Any] = {
        "replay": name,
        "events": n,
        "parse_seconds": parse_s,
        "seconds": best,
        "seconds_median": statistics.median(seconds),
        "repeat": repeat,
        "events_per_s": n / best,
    }
    if compare_python:
        py_s, py = time_python(capture)
        rp = Replayer(capture.events, len(capture.order_ids))
        rp.run()
        same = all(py.top(s, TOP_LEVELS) == rp.levels(s, TOP_LEVELS) for s in (BID, ASK))
        same = same and sorted(py.orders) == rp.resting().order.tolist()
        doc["python_seconds"] = py_s
        doc["python_events_per_s"] = n / py_s
        doc["speedup_vs_python"] = doc["events_per_s"] / doc["python_events_per_s"]
        doc["books_agree"] = same
    return doc
