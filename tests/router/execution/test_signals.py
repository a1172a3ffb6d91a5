"""What the execution reads of the market: the signals it keeps across decisions and
the recent past its passive orders share."""

from __future__ import annotations

import random

import pytest

from router.domain import Side, Symbol
from router.execution.signals import (
    MarketSignals,
    book_levels,
    recent_market,
    tape_flow,
    touch_imbalance,
    touch_moves,
)
from router.ports import FLOW_WINDOWS_S, TOUCH_LAGS_S, MarketSnapshot

from .fakes import NS, FakeMarket, quote, snapshot


def _snap(bid: int | None, ask: int | None, **kw: object) -> MarketSnapshot:
    args: dict[str, object] = dict(
        ts_ns=0,
        symbol=Symbol("X"),
        tick_size=0.01,
        bid_ticks=bid,
        ask_ticks=ask,
        bid_depth=0,
        ask_depth=0,
        venues=(),
        last_ticks=None,
        volume=0,
        vwap_num=0.0,
    )
    args.update(kw)
    return MarketSnapshot(**args)  # type: ignore[arg-type]


def test_touch_moves_are_signed_towards_the_orders_fills():
    snap = _snap(100, 103)
    past = [(101, 103), (100, 101), None]
    # a resting buy fills when prices fall: its bid fell 1 tick (+1), the ask rose 2 (-2)
    assert touch_moves(snap, past, Side.BUY) == ((1.0, 0.0, 0.0), (0.0, -2.0, 0.0))
    # a resting sell rests on the ask (near) and fills when prices rise
    assert touch_moves(snap, past, Side.SELL) == ((0.0, 2.0, 0.0), (-1.0, 0.0, 0.0))
    assert touch_moves(_snap(None, 103), past, Side.BUY) == ((0.0,) * 3, (0.0,) * 3)


def test_tape_flow_counts_the_takers_that_fill_a_resting_order():
    flows = [(-30, 60), (0, 0), (10, 100), (0, 10), (-200, 1_000), (400, 4_000)]
    imbalance, share = tape_flow(flows, Side.BUY, 10.0)
    # sellers (negative signed volume) hit a resting buy
    assert imbalance == pytest.approx((0.5, 0.0, -0.1, 0.0, 0.2, -0.1))
    # net flow / (10 shares/s * window)
    assert share == pytest.approx((3.0, 0.0, -0.1, 0.0, 200 / 1_200, -400 / 6_000))
    sell_imbalance, sell_share = tape_flow(flows, Side.SELL, 0.0)
    assert sell_imbalance == pytest.approx(tuple(-x for x in imbalance))
    assert sell_share == (0.0,) * len(FLOW_WINDOWS_S)  # no volume rate yet: no scale


def test_book_levels_put_the_orders_side_first_and_pad_a_short_book():
    snap = _snap(100, 103, bid_levels=(5, 6, 7, 8, 9), ask_levels=(1, 2))
    assert book_levels(snap, Side.BUY) == ((5.0, 6.0, 7.0, 8.0, 9.0), (1.0, 2.0, 0.0, 0.0, 0.0))
    assert book_levels(snap, Side.SELL)[0] == (1.0, 2.0, 0.0, 0.0, 0.0)


def test_recent_market_reads_the_feed_at_the_ports_lags_and_windows():
    class Feed:
        def __init__(self) -> None:
            self.asked: list[tuple[object, ...]] = []

        def touches_before(self, lags_s):
            self.asked.append(tuple(lags_s))
            return [(99, 103)] * len(lags_s)

        def flow_over(self, windows_s):
            self.asked.append(tuple(windows_s))
            return [(-w, 2 * w) for w in windows_s]

    feed = Feed()
    got = recent_market(feed, _snap(100, 103, bid_levels=(1,) * 5), Side.BUY, 4.0)  # type: ignore[arg-type]
    assert feed.asked == [TOUCH_LAGS_S, FLOW_WINDOWS_S]
    assert got.near_moves_ticks == (-1.0,) * len(TOUCH_LAGS_S)  # the bid rose: away
    assert got.flow_imbalance == (0.5,) * len(FLOW_WINDOWS_S)
    assert got.flow_share == (0.25,) * len(FLOW_WINDOWS_S)
    assert got.levels_ours == (1.0,) * 5 and got.levels_other == (0.0,) * 5


def test_the_volume_rate_is_the_hint_until_two_decisions_saw_volume():
    signals = MarketSignals(FakeMarket(snapshot()), volume_rate_hint=40.0)
    assert signals.volume_rate(0) == 40.0
    signals.observe(0, snapshot(volume=1_000))
    assert signals.volume_rate(0) == 40.0
    signals.observe(30 * NS, snapshot(volume=2_500))
    assert signals.volume_rate(30 * NS) == 50.0
    # ten minutes on, the first decision's count is out of the window
    signals.observe(630 * NS, snapshot(volume=32_500))
    assert signals.volume_rate(630 * NS) == pytest.approx(30_000 / 600)


def test_momentum_is_signed_towards_a_resting_orders_fills_and_volatility_needs_three_mids():
    signals = MarketSignals(FakeMarket(snapshot()))
    assert signals.momentum_bps(Side.SELL) == 0.0
    for t, (bid, ask) in enumerate([(99, 101), (100, 102)]):
        signals.observe(t * 30 * NS, snapshot(quote("A", bid, ask)))
    # the mid rose 1 cent on 1.00: +100 bps for a resting sell, -100 for a buy
    assert signals.momentum_bps(Side.SELL) == pytest.approx(100.0)
    assert signals.momentum_bps(Side.BUY) == pytest.approx(-100.0)
    assert signals.vol_bps(60 * NS) == 0.0
    signals.observe(60 * NS, snapshot(quote("A", 99, 101)))
    assert signals.vol_bps(60 * NS) > 0.0
    # one-sided books leave no mid to remember
    signals.observe(90 * NS, snapshot(quote("A", 99, None)))
    assert signals.momentum_bps(Side.SELL) == pytest.approx(-100.0 / 1.01)


def test_the_participation_window_counts_from_the_first_decision_inside_it():
    signals = MarketSignals(FakeMarket(snapshot()))
    for t, volume in ((0, 100), (300, 1_000), (600, 4_000)):
        signals.observe(t * NS, snapshot(volume=volume))
    assert signals.window_volume(600 * NS, snapshot(volume=5_000), 300.0) == 4_000
    assert signals.window_volume(600 * NS, snapshot(volume=5_000), 1e6) == 4_900
    # nothing seen inside the window: no base, no volume
    assert signals.window_volume(900 * NS, snapshot(volume=5_000), 100.0) == 0


def test_the_participation_window_finds_what_a_scan_from_the_oldest_decision_finds():
    # decisions share timestamps at times (one per venue report): the base is the first
    # of them inside the window, as a scan of what the signals keep from the oldest
    # entry finds it
    rng = random.Random(7)
    signals = MarketSignals(FakeMarket(snapshot()))
    t, volume, hits = 0, 0, 0
    for _ in range(2_000):
        t += rng.choice((0, 0, 1, 5, 30)) * NS
        volume += rng.randrange(0, 500)
        signals.observe(t, snapshot(volume=volume))
        signals.volume_rate(t)  # drops what is older than the recent past, as decisions do
        window_s = rng.choice((1.0, 30.0, 60.0, 300.0, 1e6))
        now = t + rng.choice((0, 10, 100)) * NS
        start = now - int(window_s * NS)
        kept = list(signals._volume_seen)
        assert [s for s, _ in kept] == sorted(s for s, _ in kept)
        base = next((v for s, v in kept if s >= start), None)
        expected = 0 if base is None else volume + 7 - base
        hits += base is not None and base != kept[0][1]
        assert signals.window_volume(now, snapshot(volume=volume + 7), window_s) == expected
    assert hits > 500  # most windows start after the oldest entry kept


def test_touch_imbalance_weighs_our_side_against_the_other_at_the_best_prices():
    snap = snapshot(quote("A", 99, 101, qty=300), quote("B", 98, 101, qty=100))
    # a sell rests on the ask: 400 there against 300 at the best bid (B's is worse)
    assert touch_imbalance(snap, Side.SELL) == pytest.approx(100 / 700)
    assert touch_imbalance(snap, Side.BUY) == pytest.approx(-100 / 700)
    assert touch_imbalance(snapshot(), Side.BUY) == 0.0
