"""The real capture (ob-analytics' Bitstamp BTC/USD sample, the `data` extra): the
replay on a few thousand of its events, and the whole of it with --runslow."""

from __future__ import annotations

import numpy as np
import pytest

from bench.pyl3book import PyL3Book
from simulators.book import ASK, BID
from simulators.replay.check import align_trades, check_reconstruction
from simulators.replay.replayer import Replayer, price_band
from tests.simulators.replay.test_l3 import assert_same_with_idle_clients

pytestmark = pytest.mark.requires_extra("data", "ob_analytics")


def test_the_capture_is_what_its_meta_says(bitstamp):
    assert len(bitstamp.events) == 6512 + 301_027  # the end's 6,518 synthetic deletes apart
    assert bitstamp.events.n_snapshot == 6512
    assert len(bitstamp.trades) == 284
    assert (bitstamp.instrument.tick_size, bitstamp.instrument.lot_size) == (1.0, 1e-08)
    n = bitstamp.notes
    assert n["market_orders"] == 7
    assert n["numbers_in_exponent_notation"] > 0  # e.g. 7.18e-06: read exactly all the same
    # the receive clock lags the exchange's by a varying 60-550 ms, the snapshot's by more
    assert 50 <= n["receive_lag_ms_min"] < n["receive_lag_ms_max"] <= 600
    assert n["snapshot_receive_lag_ms"] > 2000
    assert np.all(np.diff(bitstamp.events.ts_ns[6512:]) >= 0)


def test_the_first_3000_live_events_rebuild_the_book_their_trades_see(bitstamp):
    r = check_reconstruction(bitstamp.head(3000))
    assert r.trades >= 15 and r.trades_matched == r.trades
    assert r.crossed_seconds == 0.0
    # orders created between the snapshot and the stream's start: their deletes are unknown
    assert r.skipped["unknown_order"] > 0
    # stub asks far above the market (up to $999,999,999) are outside the book's band
    assert r.skipped["outside_price_band"] == 780
    assert r.events == r.applied + sum(r.skipped.values())
    # most marketable orders are rejected post-only/IOC orders: never in the book
    assert r.handled["marketable_rejected"] > 1000
    bids, asks = r.final_book["bids"], r.final_book["asks"]
    assert len(bids) == len(asks) == 10 and bids[0][0] < asks[0][0]


def test_the_stale_snapshot_ask_goes_when_the_feed_contradicts_it(bitstamp):
    head = bitstamp.head(40_000)  # past 1777689534584 ms, when a bid rests through it
    r = check_reconstruction(head)
    assert r.handled["stale_snapshot_removed"] == 1
    assert (r.trades_matched, r.crossed_seconds) == (r.trades, 0.0)
    lit = check_reconstruction(head, literal=True)
    assert lit.crossed_seconds > 30
    assert {u.reason for u in lit.unmatched} == {"price_not_best"}


def test_the_plain_python_book_agrees_on_real_events(bitstamp):
    ev = bitstamp.events.head(20_000)
    rp = Replayer(ev, len(bitstamp.order_ids))
    rp.run()
    rp.finish()
    py = PyL3Book(rp.n_ticks)
    py.apply(
        *(a.tolist() for a in (ev.ts_ns, ev.order, ev.side, ev.price, ev.qty, ev.action)),
        ev.n_snapshot,
    )
    py.finish()
    assert py.outcome == rp.outcome.tolist()
    assert py.handled == rp.state.handled.tolist()
    for side in (BID, ASK):
        assert py.top(side, 10) == rp.levels(side, 10)


@pytest.mark.parametrize("literal", [False, True])
def test_real_events_replay_the_same_with_clients_that_have_no_orders(bitstamp, literal):
    head = bitstamp.head(40_000)  # the stale snapshot ask goes, trades are checked
    checks, _ = align_trades(head)
    assert len(checks.event) >= 30
    n_orders = len(head.order_ids)
    band = price_band(head.events)
    assert_same_with_idle_clients(head.events, n_orders, band, checks, literal)


@pytest.mark.slow
def test_the_whole_capture_rebuilds_every_trade(bitstamp):
    r = check_reconstruction(bitstamp)
    assert (r.trades, r.trades_matched, r.unmatched) == (284, 284, [])
    assert r.skipped == {"unknown_order": 13, "outside_price_band": 784}
    assert r.crossed_seconds == 0.0
    assert r.handled["stale_snapshot_removed"] == 2
    assert r.handled["marketable_rejected"] > 100_000
    # the one maker behind another order sits behind the stale snapshot ask, 5 s before
    # a resting bid proves that ask gone
    assert r.makers_at_queue_front == 283
    e = r.end_state
    assert e is not None
    assert (e["in_both"], e["size_differs"], e["price_differs"], e["only_in_replay"]) == (
        5736,
        0,
        0,
        0,
    )
    assert e["only_in_capture_why"] == {"outside_price_band": 780, "removed_as_stale": 2}
    assert r.final_book["bids"][0] == [78350.0, 0.2381507]
    assert r.final_book["asks"][0] == [78351.0, 2.20347504]
    lit = check_reconstruction(bitstamp, literal=True)
    assert lit.crossed_seconds > 1600  # of 1,800: crossed for most of the capture
    assert lit.trades_matched == 146
