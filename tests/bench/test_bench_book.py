import numpy as np

from bench.book import MID0, N_TICKS, generate_events, run_book_bench
from bench.pybook import PyBook
from simulators import book


def test_bench_reports_rates():
    doc = run_book_bench(20_000, compare_python=True)
    assert doc["events"] == 20_000 and doc["events_per_s"] > 0
    assert doc["python_events_per_s"] > 0 and doc["speedup_vs_python"] > 0


def test_python_reference_matches_the_compiled_book_without_cancels():
    kinds, sides, offsets, qtys, uni = generate_events(5_000, 3)
    keep = kinds != book.EV_CANCEL
    ev = (kinds[keep], sides[keep], offsets[keep], qtys[keep], uni[keep])
    st = book.new_book_state(1, N_TICKS, 1 << 14, 1)
    fb = book.new_fill_buffer(16)
    py = PyBook(N_TICKS)
    for i in range(len(ev[0])):
        one = tuple(a[i : i + 1] for a in ev)
        book.apply_events(st, fb, 0, *one, MID0)
        py.apply_events(*one, MID0)
        assert (int(st.best[0, 0]), int(st.best[0, 1])) == (py.best_bid(), py.best_ask()), i
    resting = sum(e[1] for e in py.orders.values())
    assert int(st.depth[0].sum()) == resting
    assert np.isfinite(resting)
