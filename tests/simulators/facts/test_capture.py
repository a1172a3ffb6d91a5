"""The stylized facts of a replayed capture: the hand-made one, checked by hand, and a
slice of the real one (the `data` extra)."""

import pytest

from simulators.facts.capture import capture_facts
from simulators.replay.fake import tiny_bitstamp_capture, tiny_source


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tiny_bitstamp_capture(tmp_path_factory.mktemp("tiny"))
    return tiny_source(folder).load()


def test_the_tiny_capture_s_facts_by_hand(tiny):
    f = capture_facts(tiny)
    # the book every 100 ms from 1100 to 2000 ms, in ticks of 0.5: spreads
    # 2, 2, 4, 4, 4 (the market sell took the bid at 101), 1 (the stale ask gone, the bid
    # at 102.5 rests), 3 (both asks at 103 taken), 1, 1, 1 (the bid rests at 103.5)
    assert (f.spread_ticks.median, f.spread_ticks.p90) == (2.0, 4.0)
    assert f.window_s == pytest.approx(0.9)
    # resting new orders: 101 (0.2), 102.5 (0.1), 104 (0.5) and the rest of 103.5 (1.5);
    # the crossing ask at 100 went in its millisecond untraded; the negative size is no order
    assert f.orders == 4 and f.rejected_at_once == 1
    assert f.order_size.median == pytest.approx(0.35)
    assert f.order_size_lots.median == pytest.approx(35.0)
    # one cancel (the stale snapshot ask's own delete) against five trades: every other
    # delete of a resting order is a maker's fill
    assert (f.cancels, f.trades, f.cancel_to_trade) == (1, 5, 0.2)
    assert f.traded == pytest.approx(0.2 + 0.05 + 1.0 + 0.25 + 0.1)
    # only the bid at 101 rested and went (a fill, 200 ms later)
    assert f.lifetime_s.median == pytest.approx(0.2)
    assert f.events == 23
    assert (f.interarrival_ms.median, f.interarrival_ms.p90) == (0.0, 100.0)
    assert f.returns[0].n == 0  # under a second of capture
    doc = f.to_json()
    assert doc["returns"]["1s"]["kurtosis"] is None and doc["unit"] == "BTC"


@pytest.mark.requires_extra("data", "ob_analytics")
def test_a_slice_of_the_real_capture(bitstamp):
    f = capture_facts(bitstamp.head(5000))
    assert f.trades >= 15 and f.window_s > 10
    # a one-dollar tick on a $78,000 coin: the spread is one tick nearly always
    assert f.spread_ticks.median == 1.0
    assert f.spread_bps.median == pytest.approx(1e4 / f.price, rel=1e-3)
    assert 70_000 < f.price < 90_000
    # most new orders are marketable and go in their millisecond (post-only, IOC)
    assert f.rejected_at_once > f.orders
    assert f.cancel_to_trade is not None and f.cancel_to_trade > 10
    assert f.lifetime_s.median is not None and f.lifetime_s.median < 5
    assert f.touch_depth.median is not None and 0 < f.touch_depth.median < f.depth_10bps.median
    assert f.interarrival_ms.median is not None and f.interarrival_ms.median <= 5
