"""`blockroute bench book`: the compiled matching engine on a realistic event mix, and
the same events through a plain Python book (bench/pybook.py) for the ratio."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.pybook import PyBook
from simulators import book

N_TICKS = 20_000
MID0 = 10_000
PYTHON_MAX_EVENTS = 300_000
WARMUP_EVENTS = 5_000

#: event mix: limit adds near the touch, cancels of a random resting order, market orders
P_ADD = 0.55
P_CANCEL = 0.35
P_MARKET = 0.10
#: offsets behind the touch ~ geometric(P_OFFSET) - 1: P(0) = 0.45, P(<= 3) ~ 0.91
P_OFFSET = 0.45
#: round lots of 100..900 shares with P(k lots) proportional to k ** -LOT_SKEW
LOT_SKEW = 1.5

#: kinds (int8), sides (int8), offsets (int32), quantities (int64), uniforms (float64)
Events = tuple[
    npt.NDArray[np.int8],
    npt.NDArray[np.int8],
    npt.NDArray[np.int32],
    npt.NDArray[np.int64],
    npt.NDArray[np.float64],
]


def generate_events(n: int, seed: int) -> Events:
    """A reproducible background event stream for `simulators.book.apply_events`.

    55% limit adds a few ticks behind the same-side touch, 35% cancels of a uniformly
    random resting order, 10% marketable orders; sides 50/50; sizes in round lots of
    100-900 shares, most of them small.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = np.random.default_rng(seed)
    kinds = rng.choice(
        np.array([book.EV_ADD, book.EV_CANCEL, book.EV_MARKET], dtype=np.int8),
        size=n,
        p=[P_ADD, P_CANCEL, P_MARKET],
    )
    sides = rng.integers(0, 2, size=n, dtype=np.int8)
    offsets = (rng.geometric(P_OFFSET, size=n) - 1).astype(np.int32)
    lots = np.arange(1, 10)
    weights = 1.0 / lots**LOT_SKEW
    qtys = (rng.choice(lots, size=n, p=weights / weights.sum()) * 100).astype(np.int64)
    uniforms = rng.random(n)
    return kinds, sides, offsets, qtys, uniforms


def _head(events: Events, n: int) -> Events:
    kinds, sides, offsets, qtys, uniforms = events
    return kinds[:n], sides[:n], offsets[:n], qtys[:n], uniforms[:n]


def _run_numba(events: Events, capacity: int) -> tuple[float, book.BookState]:
    """Seconds of one `apply_events` call over all the events on a fresh book, and the
    book it leaves."""
    st = book.new_book_state(1, N_TICKS, capacity, 1)
    fb = book.new_fill_buffer(16)  # background flow only: nothing is recorded
    kinds, sides, offsets, qtys, uniforms = events
    t0 = time.perf_counter()
    book.apply_events(st, fb, 0, kinds, sides, offsets, qtys, uniforms, MID0)
    return time.perf_counter() - t0, st


def _run_python(events: Events) -> tuple[float, PyBook]:
    py = PyBook(N_TICKS)
    kinds, sides, offsets, qtys, uniforms = events
    t0 = time.perf_counter()
    py.apply_events(kinds, sides, offsets, qtys, uniforms, MID0)
    return time.perf_counter() - t0, py


def same_book(st: book.BookState, py: PyBook) -> bool:
    """Whether the compiled book (venue 0) and the plain Python book rest the same
    quantity at every price, hold as many orders, and traded the same volume, last at the
    same price."""
    for side in (book.BID, book.ASK):
        depth = st.depth[0, side]
        levels = {int(p): int(depth[p]) for p in np.flatnonzero(depth)}
        if levels != py.level_quantities(side):
            return False
    return (
        int(np.count_nonzero(st.live_pos >= 0)) == py.n_live()
        and int(st.venue_vol[0]) == py.traded_volume
        and int(st.last_px[0]) == py.last_price
    )


def run_book_bench(
    n_events: int = 1_000_000, seed: int = 7, compare_python: bool = True
) -> dict[str, Any]:
    """Events per second of `simulators.book.apply_events` on one venue: all the events
    in one call, as the simulator's background flow runs them.

    Returns events, seconds, events_per_s and, with `compare_python`, python_events
    (the first min(n_events, 300_000) events, to bound the time), python_events_per_s,
    speedup_vs_python (the ratio of the two rates) and books_agree (whether the compiled
    book, run again on those first events untimed, ends as the Python book does).
    """
    if n_events <= 0:
        raise ValueError("n_events must be positive")
    events = generate_events(n_events, seed)
    # compile (or load the cached machine code) on a separate state, same array types
    warm = min(n_events, WARMUP_EVENTS)
    _run_numba(_head(events, warm), max(1 << 12, warm))
    seconds, _ = _run_numba(events, max(1 << 16, n_events))
    doc: dict[str, Any] = {
        "events": n_events,
        "seconds": seconds,
        "events_per_s": n_events / seconds,
    }
    if compare_python:
        n_py = min(n_events, PYTHON_MAX_EVENTS)
        head = _head(events, n_py)
        py_seconds, py = _run_python(head)
        _, st = _run_numba(head, max(1 << 16, n_py))
        doc["python_events"] = n_py
        doc["python_events_per_s"] = n_py / py_seconds
        doc["speedup_vs_python"] = doc["events_per_s"] / doc["python_events_per_s"]
        doc["books_agree"] = same_book(st, py)
    return doc
