import dataclasses

import numpy as np
import pytest

from router.domain import NANOS_PER_SECOND, Side
from simulators import book
from simulators.kernel import rng_for
from simulators.market import SESSION_CLOSE_S, SESSION_OPEN_S, SimMarket, volume_profile
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
    assert a.ref_path.tobytes() == b.ref_path.tobytes()
    c = run("news-shock", 4)
    assert a.bid_path.tobytes() != c.bid_path.tobytes()


def test_book_is_two_sided_and_uncrossed_most_of_the_time():
    m = run("calm", 1)
    sel = slice(m.step_of(0), m.step_of(3 * H))
    bid, ask = m.bid_path[sel], m.ask_path[sel]
    two_sided = (bid >= 0) & (ask < m.state.depth.shape[2])
    assert two_sided.mean() > 0.99
    assert np.all(bid[two_sided] < ask[two_sided])


def test_touches_before_reads_the_top_of_book_path_at_each_lag():
    m = run("calm", 2, until_s=120.0)
    now = int(120.0 * NANOS_PER_SECOND)
    got = m.touches_before(now, (0.0, 0.1, 3.0, 30.0))
    for lag, touch in zip((0.0, 0.1, 3.0, 30.0), got, strict=True):
        step = min(m.step_of(now - int(lag * NANOS_PER_SECOND)), m.steps_done - 1)
        assert touch == (m.bid_path[step], m.ask_path[step])
    # the path moved over the last half minute: these are not all one value
    assert len({x for x in got if x is not None}) > 1
    # before the simulation's first step there is no past to read
    warmup = m.t0_ns
    assert m.touches_before(now, ((now - warmup) / NANOS_PER_SECOND + 1.0,)) == [None]


def test_flow_over_sums_the_tapes_last_bars_per_window():
    m = run("calm", 2, until_s=120.0)
    now = int(120.0 * NANOS_PER_SECOND)
    bar = m.bar_of(now)
    got = m.flow_over(now, (1, 10, 600, 10**6))
    for w, (signed, volume) in zip((1, 10, 600), got, strict=False):
        assert signed == m.state.tape_signed[bar - w : bar + 1].sum()
        assert volume == m.state.tape_vol[bar - w : bar + 1].sum()
    # a window longer than the tape reads all of it; signed flow never exceeds volume
    assert got[-1] == (m.state.tape_signed[: bar + 1].sum(), m.state.tape_vol[: bar + 1].sum())
    assert all(abs(s) <= v for s, v in got) and got[2][1] > got[1][1] > 0


def test_snapshot_levels_are_the_consolidated_depth_from_each_touch_outwards():
    m = run("calm", 3, until_s=60.0)
    snap = m.snapshot(int(60.0 * NANOS_PER_SECOND))
    depth = m.state.depth
    assert snap.bid_ticks is not None and snap.ask_ticks is not None
    bids = [int(depth[:, 0, snap.bid_ticks - k].sum()) for k in range(5)]
    asks = [int(depth[:, 1, snap.ask_ticks + k].sum()) for k in range(5)]
    assert snap.bid_levels == tuple(bids) and snap.ask_levels == tuple(asks)
    # the touch holds shares on every venue's best, summed
    at_touch = [q.bid_qty for q in snap.venues if q.bid_ticks == snap.bid_ticks]
    assert snap.bid_levels[0] == sum(at_touch)


def _window(m, a_s, b_s, arr):
    t = m.step_time_s()
    return arr[(t >= a_s) & (t < b_s)]


def test_news_shock_widens_the_spread_thins_bids_and_declines():
    spreads_before, spreads_after, drops = [], [], []
    for seed in range(4):
        m = run("news-shock", seed)
        two_sided = (m.bid_path >= 0) & (m.ask_path < m.state.depth.shape[2])
        assert _window(m, 600, 7100, two_sided).mean() > 0.95
        spread = np.where(two_sided, (m.ask_path - m.bid_path) * 0.01, np.nan)
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
    assert hit.ref_path[i] < base.ref_path[i] - 5  # more than 5 bps lower


def test_u_shaped_volume_profile():
    tod = np.linspace(SESSION_OPEN_S, SESSION_CLOSE_S, 391)
    p = volume_profile(tod)
    assert p.mean() == pytest.approx(1.0, abs=0.02)
    assert p[0] > 1.5 * p[195] and p[-1] > 1.5 * p[195]


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
    moves = np.abs(np.diff(m.ref_path[: m.steps_done])) / m.ref_path[0] * 1e4
    assert moves.max() < 20.0
