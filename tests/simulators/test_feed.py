import numpy as np
import pytest

from router.domain import NANOS_PER_SECOND
from router.ports import BOOK_LEVELS
from simulators.feed import DEPTH_LEVELS
from simulators.kernel import rng_for
from simulators.market import SimMarket
from simulators.scenario import load_scenario
from simulators.schedule import STEP_S


def run(name, seed, until_s):
    m = SimMarket(load_scenario(name), rng_for(seed, "market"))
    m.advance_to(int(until_s * NANOS_PER_SECOND))
    return m


def test_touches_before_reads_the_top_of_book_path_at_each_lag():
    m = run("calm", 2, until_s=120.0)
    now = int(120.0 * NANOS_PER_SECOND)
    got = m.feed.touches_before(now, (0.0, 0.1, 3.0, 30.0))
    for lag, touch in zip((0.0, 0.1, 3.0, 30.0), got, strict=True):
        step = min(m.step_of(now - int(lag * NANOS_PER_SECOND)), m.steps_done - 1)
        assert touch == (m.record.bid_path[step], m.record.ask_path[step])
    # the path moved over the last half minute: these are not all one value
    assert len({x for x in got if x is not None}) > 1
    # before the simulation's first step there is no past to read
    warmup = m.grid.t0_ns
    assert m.feed.touches_before(now, ((now - warmup) / NANOS_PER_SECOND + 1.0,)) == [None]


def test_flow_over_sums_the_tapes_last_bars_per_window():
    m = run("calm", 2, until_s=120.0)
    now = int(120.0 * NANOS_PER_SECOND)
    bar = m.bar_of(now)
    got = m.feed.flow_over(now, (1, 10, 600, 10**6))
    for w, (signed, volume) in zip((1, 10, 600), got, strict=False):
        assert signed == m.state.tape_signed[bar - w : bar + 1].sum()
        assert volume == m.state.tape_vol[bar - w : bar + 1].sum()
    # a window longer than the tape reads all of it; signed flow never exceeds volume
    assert got[-1] == (m.state.tape_signed[: bar + 1].sum(), m.state.tape_vol[: bar + 1].sum())
    assert all(abs(s) <= v for s, v in got) and got[2][1] > got[1][1] > 0


def test_snapshot_levels_are_the_consolidated_depth_from_each_touch_outwards():
    m = run("calm", 3, until_s=60.0)
    snap = m.feed.snapshot(int(60.0 * NANOS_PER_SECOND))
    depth = m.state.depth
    assert snap.bid_ticks is not None and snap.ask_ticks is not None
    bids = [int(depth[:, 0, snap.bid_ticks - k].sum()) for k in range(5)]
    asks = [int(depth[:, 1, snap.ask_ticks + k].sum()) for k in range(5)]
    assert snap.bid_levels == tuple(bids) and snap.ask_levels == tuple(asks)
    # the touch holds shares on every venue's best, summed
    at_touch = [q.bid_qty for q in snap.venues if q.bid_ticks == snap.bid_ticks]
    assert snap.bid_levels[0] == sum(at_touch)


def _readable_snapshot_numbers(m, ts):
    """`MarketFeed.snapshot`'s numbers as numpy reads them: what the compiled kernel
    must equal (it replaced this code, byte for byte in every run)."""
    st, n_ticks = m.state, m.state.depth.shape[2]
    bb, ba = int(st.best[:, 0].max()), int(st.best[:, 1].min())
    lo, hi = max(0, bb - DEPTH_LEVELS + 1), ba + DEPTH_LEVELS
    venues = []
    for v in range(st.best.shape[0]):
        b, a = int(st.best[v, 0]), int(st.best[v, 1])
        venues.append(
            (
                b if b >= 0 else None,
                int(st.depth[v, 0, b]) if b >= 0 else 0,
                a if a < n_ticks else None,
                int(st.depth[v, 1, a]) if a < n_ticks else 0,
                int(st.depth[v, 0, lo : bb + 1].sum()) if bb >= 0 else 0,
                int(st.depth[v, 1, ba:hi].sum()) if ba < n_ticks else 0,
            )
        )
    bids = asks = ()
    if bb >= 0:
        lv = st.depth[:, 0, max(0, bb - BOOK_LEVELS + 1) : bb + 1].sum(axis=0)
        bids = (*lv[::-1].tolist(), *(0,) * (BOOK_LEVELS - lv.shape[0]))
    if ba < n_ticks:
        lv = st.depth[:, 1, ba : ba + BOOK_LEVELS].sum(axis=0)
        asks = (*lv.tolist(), *(0,) * (BOOK_LEVELS - lv.shape[0]))
    first, bar = m.grid.bar_of(0), m.grid.bar_of(ts)
    tick = m.feed._instrument.tick_size
    return (
        bb if bb >= 0 else None,
        ba if ba < n_ticks else None,
        sum(v[4] for v in venues),
        sum(v[5] for v in venues),
        venues,
        bids,
        asks,
        int(st.last_px.max()) if st.last_px.max() >= 0 else None,
        int(st.tape_vol[first : bar + 1].sum()),
        float(st.tape_pv[first : bar + 1].sum()) * tick,
    )


def _snapshot_numbers(snap):
    return (
        snap.bid_ticks,
        snap.ask_ticks,
        snap.bid_depth,
        snap.ask_depth,
        [
            (q.bid_ticks, q.bid_qty, q.ask_ticks, q.ask_qty, q.bid_depth, q.ask_depth)
            for q in snap.venues
        ],
        snap.bid_levels,
        snap.ask_levels,
        snap.last_ticks,
        snap.volume,
        snap.vwap_num,
    )


@pytest.mark.parametrize(("name", "seed"), [("calm", 5), ("news-shock", 6), ("illiquid-bond", 7)])
def test_snapshot_is_the_readable_definition_to_the_bit(name, seed):
    m = run(name, seed, until_s=5.0)
    for until_s in (5.0, 300.0, 1800.0):
        ts = int(until_s * NANOS_PER_SECOND)
        m.advance_to(ts)
        got = _snapshot_numbers(m.feed.snapshot(ts))
        assert got == _readable_snapshot_numbers(m, ts)
    assert got[-2] > 0  # by then the tape has traded
    # the edges: one side of the book empty, and the touch at the grid's last ticks
    st = m.state
    saved = st.best.copy(), st.depth.copy()
    try:
        n_ticks = st.depth.shape[2]
        st.best[:, 0] = -1
        got = _snapshot_numbers(m.feed.snapshot(ts))
        assert got == _readable_snapshot_numbers(m, ts) and got[0] is None and got[5] == ()
        st.best[:] = saved[0]
        st.best[:, 1] = n_ticks - 2
        st.depth[:, 1, n_ticks - 2 :] = 7
        got = _snapshot_numbers(m.feed.snapshot(ts))
        assert got == _readable_snapshot_numbers(m, ts)
        assert got[6] == (7 * st.best.shape[0],) * 2 + (0, 0, 0)
    finally:
        st.best[:], st.depth[:] = saved


def test_mid_at_is_the_last_two_sided_mid_of_the_path_so_far():
    m = run("news-shock", 8, until_s=600.0)

    def readable(ts):  # what mid_at read before it scanned back from `ts`
        mids = m.feed.mid_path()[: min(m.grid.step_of(ts), m.grid.n_steps - 1) + 1]
        return float(mids[np.flatnonzero(~np.isnan(mids))[-1]])

    for t_s in (0.0, 1.0, 299.95, 600.0, 7200.0):  # the last: not simulated yet
        ts = int(t_s * NANOS_PER_SECOND)
        assert m.feed.mid_at(ts) == readable(ts)
    # a step with an empty side has no mid: the one before it counts
    step = m.steps_done - 1
    saved = int(m.record.ask_path[step])
    m.record.ask_path[step] = m.state.depth.shape[2]
    try:
        now = int(600.0 * NANOS_PER_SECOND)
        assert m.feed.mid_at(now) == readable(now)
        assert m.feed.mid_at(now) == 0.5 * (
            m.record.bid_path[step - 1] + m.record.ask_path[step - 1]
        )
    finally:
        m.record.ask_path[step] = saved


def test_fair_price_is_the_recorded_reference_and_the_open_before_any_step():
    m = run("calm", 4, until_s=30.0)
    now = int(30.0 * NANOS_PER_SECOND)
    assert m.feed.fair_ticks(now) == m.record.ref_path[m.steps_done - 1]
    # a time past the last step run reads that step, not the future
    assert m.feed.fair_ticks(now + 10 * NANOS_PER_SECOND) == m.feed.fair_ticks(now)
    nothing_run = m.record.copy()
    nothing_run.steps_done = 0
    assert m.feed.over(m.state, nothing_run).fair_ticks(now) == m.price_ticks0


def test_mid_path_hides_the_steps_not_run_yet():
    m = run("calm", 5, until_s=10.0)
    mid = m.feed.mid_path()
    assert np.isnan(mid[m.steps_done :]).all()
    assert np.isfinite(mid[m.steps_done - 10 : m.steps_done]).all()
    t, bid, ask = m.feed.top_of_book(0.0)
    assert t.shape == bid.shape == ask.shape and t[0] >= 0.0
    # the last step run is the one that starts at 10 s: the path ends at its end
    assert t[-1] == pytest.approx(10.0 + STEP_S)


def test_the_feeds_of_forks_and_branches_read_their_own_books():
    m = run("calm", 6, until_s=0.0)
    fork = m.fork()
    spare = m.branch(np.random.default_rng(1))
    reused = m.branch(np.random.default_rng(2), reuse=spare)
    for copy in (fork, reused, m.branch(np.random.default_rng(3))):
        assert copy.feed.state is copy.state and copy.feed.record is copy.record
    later = int(60.0 * NANOS_PER_SECOND)
    reused.advance_to(later)
    assert m.steps_done < reused.steps_done
    assert reused.snapshot(later).ts_ns == later
    assert reused.fair_ticks(later) == reused.record.ref_path[reused.steps_done - 1]
    assert m.fair_ticks(later) == m.record.ref_path[m.steps_done - 1]
