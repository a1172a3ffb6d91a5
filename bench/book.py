"""`blockroute bench book`: the compiled matching engine on a realistic event mix, and
the same events through a plain Python book for the ratio."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bench.pybook import PyBook
from simulators import book

N_TICKS = 20_000
MID0 = 10_000

#: kinds, sides, offsets, quantities, uniforms
Events = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def generate_events(n: int, seed: int) -> Events:
    """55% limit adds near the touch, 35% cancels, 10% marketable orders; round lots
    skewed to small sizes; sides 50/50."""
    rng = np.random.default_rng(seed)
    u = rng.random(n)
    kinds = np.where(u < 0.55, book.EV_ADD, np.where(u < 0.90, book.EV_CANCEL, book.EV_MARKET))
    sides = rng.integers(0, 2, n).astype(np.int8)
    offsets = (rng.geometric(0.4, n) - 1).astype(np.int32)  # mostly 0-3 ticks behind
    lots = np.minimum(rng.geometric(0.35, n), 9)
    return (kinds.astype(np.int8), sides, offsets, (lots * 100).astype(np.int64), rng.random(n))


def _numba_rate(events: Events, n: int) -> float:
    st = book.new_book_state(1, N_TICKS, max(1 << 16, n), 1)
    fb = book.new_fill_buffer(16)
    t = time.perf_counter()
    kinds, sides, offsets, qtys, uniforms = events
    book.apply_events(st, fb, 0, kinds, sides, offsets, qtys, uniforms, MID0)
    return time.perf_counter() - t


def run_book_bench(
    n_events: int = 1_000_000, seed: int = 7, compare_python: bool = True
) -> dict[str, Any]:
    warm = generate_events(2_000, seed + 1)
    _numba_rate(warm, 2_000)  # compile or load the cached machine code first
    events = generate_events(n_events, seed)
    seconds = _numba_rate(events, n_events)
    doc: dict[str, Any] = {
        "events": n_events,
        "seconds": seconds,
        "events_per_s": n_events / seconds,
    }
    if compare_python:
        n_py = min(n_events, 300_000)
        py = PyBook(N_TICKS)
        t = time.perf_counter()
        kinds, sides, offsets, qtys, uniforms = (a[:n_py] for a in events)
        py.apply_events(kinds, sides, offsets, qtys, uniforms, MID0)
        py_rate = n_py / (time.perf_counter() - t)
        doc["python_events"] = n_py
        doc["python_events_per_s"] = py_rate
        doc["speedup_vs_python"] = doc["events_per_s"] / py_rate
    return doc
