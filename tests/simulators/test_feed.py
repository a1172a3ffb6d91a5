import numpy as np
import pytest

from router.domain import NANOS_PER_SECOND
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
