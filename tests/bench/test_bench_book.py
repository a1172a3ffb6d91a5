"""The matching-engine benchmark and its plain-Python baseline (bench/book.py, bench/pybook.py)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.book import MID0, N_TICKS, Events, generate_events, run_book_bench, same_book
from bench.pybook import PyBook
from simulators import book


def test_run_book_bench_reports_positive_rates() -> None:
    doc = run_book_bench(20_000, seed=3, compare_python=True)
    assert doc["events"] == 20_000
    for key in ("seconds", "events_per_s", "python_events_per_s", "speedup_vs_python"):
        assert doc[key] > 0, key
    assert doc["events_per_s"] == pytest.approx(20_000 / doc["seconds"])
    assert doc["speedup_vs_python"] == pytest.approx(
        doc["events_per_s"] / doc["python_events_per_s"]
    )
    assert doc["python_events"] == 20_000
    assert doc["books_agree"] is True


def test_run_book_bench_without_python() -> None:
    doc = run_book_bench(5_000, compare_python=False)
    assert set(doc) == {"events", "seconds", "events_per_s"}
    assert doc["events_per_s"] > 0


def test_generate_events_mix_dtypes_and_reproducibility() -> None:
    kinds, sides, offsets, qtys, uniforms = generate_events(200_000, 11)
    assert (kinds.dtype, sides.dtype, offsets.dtype, qtys.dtype, uniforms.dtype) == (
        np.int8,
        np.int8,
        np.int32,
        np.int64,
        np.float64,
    )
    frac = np.bincount(kinds, minlength=3) / kinds.size
    assert frac[book.EV_ADD] == pytest.approx(0.55, abs=0.01)
    assert frac[book.EV_CANCEL] == pytest.approx(0.35, abs=0.01)
    assert frac[book.EV_MARKET] == pytest.approx(0.10, abs=0.01)
    assert set(np.unique(sides).tolist()) == {book.BID, book.ASK}
    assert sides.mean() == pytest.approx(0.5, abs=0.01)
    assert offsets.min() >= 0
    assert np.mean(offsets <= 3) > 0.85
    assert set(np.unique(qtys).tolist()) <= {100 * k for k in range(1, 10)}
    assert np.mean(qtys == 100) > np.mean(qtys == 200) > np.mean(qtys == 900) > 0
    assert ((uniforms >= 0) & (uniforms < 1)).all()
    again = generate_events(200_000, 11)
    first: list[np.ndarray] = [kinds, sides, offsets, qtys, uniforms]
    assert all(np.array_equal(again[i], first[i]) for i in range(5))
    other = generate_events(200_000, 12)
    assert not np.array_equal(other[0], kinds)


def _part(ev: Events, i: int, j: int) -> Events:
    kinds, sides, offsets, qtys, uniforms = ev
    return kinds[i:j], sides[i:j], offsets[i:j], qtys[i:j], uniforms[i:j]


def _lockstep(ev: Events, n_ticks: int, mid0: int, capacity: int) -> tuple[book.BookState, PyBook]:
    """Feed the events one at a time to both books; the touch must agree after each."""
    st = book.new_book_state(1, n_ticks, capacity, 1)
    fb = book.new_fill_buffer(16)
    py = PyBook(n_ticks)
    for i in range(len(ev[0])):
        k, s, o, q, u = _part(ev, i, i + 1)
        book.apply_events(st, fb, 0, k, s, o, q, u, mid0)
        py.apply_events(k, s, o, q, u, mid0)
        assert (int(st.best[0, book.BID]), int(st.best[0, book.ASK])) == (
            py.best_bid(),
            py.best_ask(),
        ), i
    return st, py


def _assert_same_book(st: book.BookState, py: PyBook) -> None:
    for side in (book.BID, book.ASK):
        depth = st.depth[0, side]
        levels = {int(p): int(depth[p]) for p in np.flatnonzero(depth)}
        assert levels == py.level_quantities(side)
    assert int(st.meta[1]) == py.n_live()
    assert int(st.venue_vol[0]) == py.traded_volume
    assert int(st.last_px[0]) == py.last_price


def test_pybook_matches_the_compiled_book_without_cancels() -> None:
    kinds, sides, offsets, qtys, uni = generate_events(6_000, 3)
    keep = kinds != book.EV_CANCEL
    ev = (kinds[keep], sides[keep], offsets[keep], qtys[keep], uni[keep])
    st, py = _lockstep(ev, N_TICKS, MID0, 1 << 14)
    _assert_same_book(st, py)
    assert py.traded_volume > 0


def test_pybook_matches_on_a_small_grid_with_empty_sides_and_edges() -> None:
    """Aggressive flow on 40 ticks: sides empty often (mid0 fallback), adds get clamped to
    the touch, and some fall off the grid and are skipped by both books."""
    rng = np.random.default_rng(5)
    n = 4_000
    kinds = np.where(rng.random(n) < 0.35, book.EV_MARKET, book.EV_ADD).astype(np.int8)
    sides = rng.integers(0, 2, n, dtype=np.int8)
    offsets = rng.integers(-3, 25, n).astype(np.int32)  # negatives try to cross
    qtys = rng.integers(1, 8, n).astype(np.int64) * 100
    uni = rng.random(n)
    st, py = _lockstep((kinds, sides, offsets, qtys, uni), 40, 20, 1 << 13)
    _assert_same_book(st, py)


def test_pybook_with_cancels_keeps_a_consistent_book() -> None:
    ev = generate_events(30_000, 9)
    py = PyBook(N_TICKS)
    for i in range(0, 30_000, 1_000):
        py.apply_events(*_part(ev, i, i + 1_000), MID0)
        bb, ba = py.best_bid(), py.best_ask()
        assert bb < ba
        assert py.n_live() == len(py.orders)
        assert sum(e[1] for e in py.orders.values()) == sum(
            sum(py.level_quantities(s).values()) for s in (book.BID, book.ASK)
        )
        assert all(py._live[e[4]] == oid for oid, e in py.orders.items())
    # both books keep their live lists alike (append, swap-remove), so a random cancel
    # takes the same order in each and the compiled book ends as this one does
    st = book.new_book_state(1, N_TICKS, 1 << 16, 1)
    book.apply_events(st, book.new_fill_buffer(16), 0, *ev, MID0)
    _assert_same_book(st, py)
    assert same_book(st, py)


def test_same_book_sees_a_difference() -> None:
    ev = generate_events(2_000, 4)
    st = book.new_book_state(1, N_TICKS, 1 << 12, 1)
    book.apply_events(st, book.new_fill_buffer(16), 0, *ev, MID0)
    py = PyBook(N_TICKS)
    py.apply_events(*ev, MID0)
    assert same_book(st, py)
    slot = int(st.live_list[0])
    assert book.cancel(st, slot) > 0
    assert not same_book(st, py)


def test_pybook_basic_operations() -> None:
    py = PyBook(100)
    a = py.submit(book.BID, 50, 300)
    b = py.submit(book.BID, 50, 200)
    py.submit(book.BID, 49, 100)
    assert py.best_bid() == 50 and py.best_ask() == 100
    assert py.cancel(a) == 300
    assert py.cancel(a) == 0
    assert py.best_bid() == 50
    assert py.market(book.ASK, 250) == 0  # 200 at 50 then 50 of the 100 at 49
    assert py.best_bid() == 49 and py.last_price == 49
    assert py.cancel(b) == 0
    assert py.level_quantities(book.BID) == {49: 50}
    c = py.submit(book.ASK, 49, 80)  # takes the 50 left at 49, rests 30
    assert c > 0 and py.orders[c][1] == 30
    assert py.submit(book.ASK, 60, 0) == -1
    assert py.best_bid() == -1 and py.best_ask() == 49
    assert py.level_quantities(book.ASK) == {49: 30}
    assert py.submit(book.ASK, 100, 10) == -1  # off the grid
    assert py.market(book.BID, 100) == 70
    assert py.best_ask() == 100 and py.n_live() == 0
