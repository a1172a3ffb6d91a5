import dataclasses
import pickle

import numpy as np
import pytest

from router.domain import NANOS_PER_SECOND, Side
from simulators import book, flow
from simulators.kernel import rng_for
from simulators.market import SimMarket
from simulators.scenario import load_scenario

H = NANOS_PER_SECOND * 3600


def run(name, seed, until_s=None):
    sc = load_scenario(name)
    m = SimMarket(sc, rng_for(seed, "market"))
    m.advance_to(int((until_s or sc.horizon_s) * NANOS_PER_SECOND))
    return m


def test_same_seed_gives_byte_identical_markets():
    a, b = run("news-shock", 3), run("news-shock", 3)
    for x, y in zip(a.state, b.state, strict=True):
        assert x.tobytes() == y.tobytes()
    assert a.record.ref_path.tobytes() == b.record.ref_path.tobytes()
    c = run("news-shock", 4)
    assert a.record.bid_path.tobytes() != c.record.bid_path.tobytes()


def test_book_is_two_sided_and_uncrossed_most_of_the_time():
    m = run("calm", 1)
    sel = slice(m.step_of(0), m.step_of(3 * H))
    bid, ask = m.record.bid_path[sel], m.record.ask_path[sel]
    two_sided = (bid >= 0) & (ask < m.state.depth.shape[2])
    assert two_sided.mean() > 0.99
    assert np.all(bid[two_sided] < ask[two_sided])


def _window(m, a_s, b_s, arr):
    t = m.grid.step_time_s()
    return arr[(t >= a_s) & (t < b_s)]


def test_news_shock_widens_the_spread_thins_bids_and_declines():
    spreads_before, spreads_after, drops = [], [], []
    for seed in range(4):
        m = run("news-shock", seed)
        two_sided = (m.record.bid_path >= 0) & (m.record.ask_path < m.state.depth.shape[2])
        assert _window(m, 600, 7100, two_sided).mean() > 0.95
        spread = np.where(two_sided, (m.record.ask_path - m.record.bid_path) * 0.01, np.nan)
        spreads_before.append(np.nanmean(_window(m, 600, 3500, spread)))
        spreads_after.append(np.nanmean(_window(m, 3700, 7100, spread)))
        mid = m.mid_path()
        drops.append(
            np.nanmean(_window(m, 3400, 3590, mid)) - np.nanmean(_window(m, 7000, 7190, mid))
        )
    assert 0.04 <= np.mean(spreads_before) <= 0.08
    assert 0.11 <= np.mean(spreads_after) <= 0.20
    assert np.mean(drops) > 30  # ticks (30 bps): the news starts a decline


def test_news_thins_the_bid_side():
    m_sc = load_scenario("news-shock")
    before, after = [], []
    for seed in range(3):
        m = SimMarket(m_sc, rng_for(seed, "market"))
        for t, out in ((3000, before), (4500, after)):
            m.advance_to(t * NANOS_PER_SECOND)
            snap = m.snapshot(t * NANOS_PER_SECOND)
            out.append(snap.bid_depth / max(snap.ask_depth, 1))
    assert np.mean(after) < 0.7 * np.mean(before)


def test_our_selling_moves_the_price_down_through_reaction():
    """Paired on one seed: a sweep of sells lowers the reference price afterwards."""
    sc = load_scenario("calm")
    base = SimMarket(sc, rng_for(9, "market"))
    hit = SimMarket(sc, rng_for(9, "market"))
    for k in range(60):  # 60 marketable sells of 2,000 in 10 minutes: 6% ADV
        ts = k * 10 * NANOS_PER_SECOND
        hit.advance_to(ts)
        hit.submit(ts, 0, Side.SELL, 0, 2000, owner=1, flags=book.IOC)
    end = 900 * NANOS_PER_SECOND
    base.advance_to(end)
    hit.advance_to(end)
    i = hit.step_of(end) - 1
    assert hit.record.ref_path[i] < base.record.ref_path[i] - 5  # more than 5 bps lower


def test_client_fills_reach_the_callback_with_prices_and_leaves():
    sc = load_scenario("calm")
    m = SimMarket(sc, rng_for(2, "market"))
    got = []
    m.on_client_fill(lambda *row: got.append(row))
    snap = m.snapshot(0)
    # a resting buy at the best bid gets filled by background sellers within the hour
    res = m.submit(0, 0, Side.BUY, snap.venues[0].bid_ticks, 500, owner=77)
    assert res.slot >= 0 and res.leaves == 500
    m.advance_to(H)
    assert got, "no fill within an hour at the touch"
    owner, _ts, venue, price, qty, maker, leaves = got[0]
    assert (owner, venue, maker) == (77, 0, True)
    assert price == snap.venues[0].bid_ticks and 0 < qty <= 500 and leaves == 500 - qty


def test_a_parent_shorter_than_the_story_never_meets_its_news():
    # news-shock's news comes an hour in, after a 30-minute market's end: it was an
    # IndexError; now the market simply ends before the news
    sc = dataclasses.replace(load_scenario("news-shock"), horizon_s=1800.0)
    m = SimMarket(sc, rng_for(1, "market"))
    m.advance_to(int(1800 * NANOS_PER_SECOND))
    mids = m.mid_path()[: m.steps_done]
    assert np.isfinite(mids[-100:]).all()
    # no -40 bps jump anywhere in it: the largest 100 ms move stays far below
    moves = np.abs(np.diff(m.record.ref_path[: m.steps_done])) / m.record.ref_path[0] * 1e4
    assert moves.max() < 20.0


def test_forks_share_the_schedule_and_run_as_a_fresh_market_does():
    # the forks of one market read its schedule (nothing writes it) and still run each
    # as the unforked market would; a branch's fork gets a schedule of its own, since a
    # branch redraws its exogenous row as it advances
    sc = load_scenario("news-shock")
    m = SimMarket(sc, rng_for(4, "market"))
    m.advance_to(0)
    a, b = m.fork(), m.fork()
    assert a.sched is m.sched and b.sched is m.sched
    before = m.sched.copy()
    end = int(0.5 * H)
    for x in (a, b, m):
        x.advance_to(end)
    assert np.array_equal(m.sched, before)
    for x in (a, b):
        assert np.array_equal(x.record.ref_path, m.record.ref_path, equal_nan=True)
        assert all(
            np.array_equal(p, q, equal_nan=True) for p, q in zip(x.state, m.state, strict=True)
        )
    branch = SimMarket(sc, rng_for(4, "market")).branch(np.random.default_rng(5))
    fork = branch.fork()
    assert fork.sched is not branch.sched
    fork.advance_to(end)
    branch.advance_to(end)
    assert np.array_equal(fork.record.ref_path, branch.record.ref_path, equal_nan=True)


def test_a_snapshot_is_read_again_only_when_nothing_changed_the_books_since():
    # one instant, the same books: the same snapshot; an order, a cancel or the
    # background's steps in between: a new read, equal to what the feed itself shows
    m = SimMarket(load_scenario("calm"), rng_for(6, "market"))
    t = 10 * NANOS_PER_SECOND
    m.advance_to(t)
    first = m.snapshot(t)
    assert m.snapshot(t) is first
    bid = first.venues[0].bid_ticks
    res = m.submit(t, 0, Side.BUY, bid, 700, owner=5)
    after_order = m.snapshot(t)
    assert after_order == m.feed.snapshot(t)
    assert after_order.venues[0].bid_qty == first.venues[0].bid_qty + 700
    m.cancel(res.slot)
    after_cancel = m.snapshot(t)
    assert after_cancel.venues[0].bid_qty == first.venues[0].bid_qty
    assert m.snapshot(t + 1) is not after_cancel  # another instant: another read
    later = t + 5 * NANOS_PER_SECOND
    before_steps = m.snapshot(later)  # an instant the background has not reached yet
    m.advance_to(later)
    assert m.snapshot(later) == m.feed.snapshot(later) != before_steps
    # a fork and a branch read their own books
    fork = m.fork()
    fork.submit(later, 0, Side.BUY, bid - 3, 900, owner=6)
    assert fork.snapshot(later) == fork.feed.snapshot(later) != m.snapshot(later)
    branch = m.branch(np.random.default_rng(1))
    assert branch.snapshot(later) == branch.feed.snapshot(later)


def test_the_flow_runs_the_code_numba_would_pick_and_a_pickled_market_runs_on_alike():
    # the market calls flow.advance's machine code directly (simulators/jit.py): the
    # same steps through numba's dispatcher give the same books and path; a pickled
    # market looks its machine code up again and runs on as the original does
    m = SimMarket(load_scenario("news-shock"), rng_for(8, "market"))
    direct, dispatched = m.fork(), m.fork()
    end = int(0.25 * H)
    direct.advance_to(end)
    target = dispatched.grid.step_of(end) + 1
    dispatched._ensure_exo(target + int(dispatched.params[flow.P_LOOKAHEAD]))
    flow.advance(*dispatched._flow_args(dispatched.record.steps_done, target))
    for x, y in zip(direct.state, dispatched.state, strict=True):
        assert x.tobytes() == y.tobytes()
    assert direct.record.ref_path.tobytes() == dispatched.record.ref_path.tobytes()
    copy = pickle.loads(pickle.dumps(m))
    for x in (m, copy):
        x.advance_to(end)
    for x, y in zip(m.state, copy.state, strict=True):
        assert x.tobytes() == y.tobytes()
    assert m.record.bid_path.tobytes() == copy.record.bid_path.tobytes()


def test_an_order_in_anything_but_whole_numbers_is_refused_before_the_book():
    # the book's machine code takes whole numbers as it finds them (a float would be
    # truncated), so the market checks them first: a TypeError, and the book unchanged
    m = SimMarket(load_scenario("calm"), rng_for(7, "market"))
    t = 10 * NANOS_PER_SECOND
    m.advance_to(t)
    before = m.feed.snapshot(t)
    bid = before.venues[0].bid_ticks
    for price, qty in ((bid + 0.5, 700), (bid, 700.0)):
        with pytest.raises(TypeError):
            m.submit(t, 0, Side.BUY, price, qty, owner=5)  # type: ignore[arg-type]
        assert m.feed.snapshot(t) == before
    # numpy's integers are whole numbers: taken as Python's
    res = m.submit(t, np.int64(0), Side.BUY, np.int64(bid), np.int64(700), owner=5)
    assert m.feed.snapshot(t).venues[0].bid_qty == before.venues[0].bid_qty + 700
    assert m.cancel(np.int64(res.slot)) == 700
    assert m.feed.snapshot(t) == before
