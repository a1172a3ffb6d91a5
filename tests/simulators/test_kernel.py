import numpy as np
import pytest

from simulators.kernel import Kernel, LatencyDraws, LatencyModel, SimClock, rng_for


class Recorder:
    def __init__(self):
        self.calls = []

    def advance_to(self, ts):
        self.calls.append(ts)


def test_events_run_in_time_order_and_ties_keep_scheduling_order():
    clock = SimClock(0)
    market = Recorder()
    k = Kernel(clock, market)
    seen = []
    k.schedule(30, lambda: seen.append(("b", clock.now_ns())))
    k.schedule(10, lambda: seen.append(("a", clock.now_ns())))
    k.schedule(30, lambda: seen.append(("c", clock.now_ns())))
    k.run_until(25)
    assert seen == [("a", 10)]
    assert clock.now_ns() == 25
    k.run_until(100)
    assert seen == [("a", 10), ("b", 30), ("c", 30)]
    # the market caught up before each delivery and at the end
    assert market.calls == [10, 25, 30, 30, 100]


def test_events_scheduled_by_events_run_in_the_same_pass():
    clock = SimClock(0)
    k = Kernel(clock)
    seen = []
    k.schedule(5, lambda: k.schedule_in(5, lambda: seen.append(clock.now_ns())))
    k.run_until(20)
    assert seen == [10]


def test_no_scheduling_in_the_past():
    clock = SimClock(0)
    k = Kernel(clock)
    k.run_until(50)
    with pytest.raises(ValueError, match="past"):
        k.schedule(10, lambda: None)


def test_rng_streams_are_reproducible_and_independent():
    a1 = rng_for(7, "market").random(5)
    a2 = rng_for(7, "market").random(5)
    b = rng_for(7, "lit/LITA").random(5)
    c = rng_for(8, "market").random(5)
    assert np.array_equal(a1, a2)
    assert not np.array_equal(a1, b)
    assert not np.array_equal(a1, c)


def test_latency_model():
    rng = np.random.default_rng(1)
    assert LatencyModel(1000, 0.0).sample(rng) == 1000
    samples = [LatencyModel.from_micros(500, 0.3).sample(rng) for _ in range(2000)]
    assert min(samples) > 0
    assert 450_000 < float(np.median(samples)) < 550_000


def test_latency_draws_are_the_samples_one_at_a_time_gives():
    # a venue's draws take their normals a block at a time from its own generator:
    # across several blocks, the latencies of LatencyModel.sample on the same stream
    for model in (LatencyModel.from_micros(500, 0.3), LatencyModel(1000, 0.0)):
        draws = model.draws(np.random.default_rng(9))
        one_by_one = np.random.default_rng(9)
        n = 3 * LatencyDraws.BLOCK + 17
        assert [draws() for _ in range(n)] == [model.sample(one_by_one) for _ in range(n)]
