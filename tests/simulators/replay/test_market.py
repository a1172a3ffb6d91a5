"""The replay market: client orders queue in the real book and trade with the real flow
(simulators/replay/market.py), on a hand-made capture whose every step is known."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from router.domain import (
    NANOS_PER_SECOND,
    Event,
    Instrument,
    QuoteReceived,
    QuoteRequest,
    RfqId,
    Side,
    Symbol,
    VenueId,
)
from simulators import book
from simulators.book import BID
from simulators.replay.fake import tiny_source, write_bitstamp_capture
from simulators.replay.market import ReplayMarket, measure_capture
from simulators.scenario import LitVenueSpec, MarketParams, ReplaySpec, Scenario

MS = 1_000_000  # ns


def _queue_capture(folder: Path) -> Path:
    """Bids 100 (101: 1.0, then 103: 0.5 from 2000 ms), asks 102 (201: 1.0) and 103.
    The live stream starts at 2000 ms; the tests' parent arrives 1 s later (3000 ms):

    - 3500: bid 104 0.4 at 100 (behind a client that joined at 3000);
    - 4000: a market sell takes all of 101 (trade 9001);
    - 5000: 103 is canceled;
    - 6000: a market sell takes 0.2 of 104 (trade 9002);
    - 7000: a market buy takes 0.5 of ask 201 (trade 9003);
    - 8500: bid 105 0.1 at 101, inside the spread, canceled at 8800.

    Prices in whole dollars (tick 1), sizes in 0.01 (lot)."""
    snapshot = [
        (101, 1000, 1000, "100", "1.0", "created", "bid"),
        (102, 1000, 1000, "99", "1.0", "created", "bid"),
        (201, 1000, 1000, "102", "1.0", "created", "ask"),
        (202, 1000, 1000, "103", "1.01", "created", "ask"),
    ]
    live = [
        (103, 2000, 2000, "100", "0.5", "created", "bid"),
        (104, 3500, 3500, "100", "0.4", "created", "bid"),
        (301, 4000, 4000, "0", "1.0", "created", "ask"),
        (101, 4000, 4000, "100", "0.0", "changed", "bid"),
        (101, 4000, 4000, "100", "0.0", "deleted", "bid"),
        (301, 4000, 4000, "100", "0.0", "changed", "ask"),
        (301, 4000, 4000, "100", "0.0", "deleted", "ask"),
        (103, 5000, 5000, "100", "0.5", "deleted", "bid"),
        (302, 6000, 6000, "0", "0.2", "created", "ask"),
        (104, 6000, 6000, "100", "0.2", "changed", "bid"),
        (302, 6000, 6000, "100", "0.0", "changed", "ask"),
        (302, 6000, 6000, "100", "0.0", "deleted", "ask"),
        (303, 7000, 7000, "0", "0.5", "created", "bid"),
        (201, 7000, 7000, "102", "0.5", "changed", "ask"),
        (303, 7000, 7000, "102", "0.0", "changed", "bid"),
        (303, 7000, 7000, "102", "0.0", "deleted", "bid"),
        (102, 8000, 8000, "99", "1.0", "deleted", "bid"),
        (105, 8500, 8500, "101", "0.1", "created", "bid"),
        (105, 8800, 8800, "101", "0.1", "deleted", "bid"),
    ]
    trades = [
        (9001, 4000, 4000, "100", "1.0", 101, 301, "sell"),
        (9002, 6000, 6000, "100", "0.2", 104, 302, "sell"),
        (9003, 7000, 7000, "102", "0.5", 303, 201, "buy"),
    ]
    return write_bitstamp_capture(folder, snapshot, live, [], trades)


@pytest.fixture(scope="module")
def queue_market(tmp_path_factory: pytest.TempPathFactory) -> ReplayMarket:
    """The queue capture's market at the parent's arrival (fork it: never touch it)."""
    folder = _queue_capture(tmp_path_factory.mktemp("queue"))
    data = measure_capture(tiny_source(folder, "queue").load())
    scenario = Scenario(
        name="replay:queue",
        description="",
        instrument=Instrument(Symbol("BTC/USD"), 1.0, "USD", adv=10_000),
        lit=(LitVenueSpec(VenueId("REAL"), 1.0, 0.0, 0.0, 100.0, 0.0),),
        dark=(),
        start_tod_s=43_200.0,
        horizon_s=10.0,
        side=Side.BUY,
        qty=50,
        market=MarketParams(price=101.0, spread_ticks=2.0, daily_vol=0.01),
        replay=ReplaySpec("queue", (1.0,), 1_000, 10_000),
    )
    return ReplayMarket(scenario, data, 1.0)


class _Client:
    """A market with one client attached: its fills, as the venues receive them."""

    def __init__(self, market: ReplayMarket) -> None:
        self.market = market.fork()
        self.fills: list[tuple[int, int, int, int, bool]] = []
        self.market.on_client_fill(self._fill)

    def _fill(
        self, owner: int, ts: int, _v: int, price: int, qty: int, maker: bool, _left: int
    ) -> None:
        self.fills.append((owner, ts, price, qty, maker))

    def at(self, ms: int) -> ReplayMarket:
        """The market at exchange time `ms` (world time 0 is 3000 ms)."""
        self.market.advance_to((ms - 3000) * MS)
        return self.market


def _ahead(market: ReplayMarket, slot: int) -> int:
    """Lots queued ahead of `slot` at its level."""
    st, ahead = market.state, 0
    prv = int(st.o_prev[slot])
    while prv != -1:
        ahead += int(st.o_qty[prv])
        prv = int(st.o_prev[prv])
    return ahead


def test_the_book_at_arrival_is_the_capture_s(queue_market: ReplayMarket) -> None:
    snap = queue_market.snapshot(0)
    assert (snap.bid_ticks, snap.ask_ticks) == (100, 102)
    assert snap.bid_levels[0] == 150  # 101 and 103: 1.5 in lots of 0.01
    assert queue_market.instrument.tick_size == 1.0


def test_a_passive_child_fills_only_after_the_real_orders_ahead(
    queue_market: ReplayMarket,
) -> None:
    c = _Client(queue_market)
    res = c.market.submit(0, 0, Side.BUY, 100, 50, owner=1)
    assert res.slot >= 0 and res.leaves == 50
    assert _ahead(c.market, res.slot) == 150  # behind 101 and 103
    c.at(4500)  # a real sell took all of 101, which was ahead: nothing for the client
    assert c.fills == []
    assert _ahead(c.market, res.slot) == 50  # 103 is still ahead
    c.at(6500)  # 103 canceled, then a real sell of 0.2 hit 104, behind the client
    assert c.fills == [(1, 3000 * MS, 100, 20, True)]
    assert int(c.market.state.o_qty[res.slot]) == 30


def test_a_real_cancel_ahead_moves_the_child_up(queue_market: ReplayMarket) -> None:
    c = _Client(queue_market)
    res = c.market.submit(0, 0, Side.BUY, 100, 50, owner=1)
    c.at(4500)
    assert _ahead(c.market, res.slot) == 50
    c.at(5500)  # 103, the last order ahead, is canceled
    assert _ahead(c.market, res.slot) == 0
    assert int(c.market.state.head[0, BID, 100]) == res.slot
    assert c.fills == []  # a cancel fills nothing


def test_a_taking_child_removes_real_liquidity_and_the_later_trade_is_counted(
    queue_market: ReplayMarket,
) -> None:
    c = _Client(queue_market)
    res = c.market.submit(0, 0, Side.BUY, 102, 100, owner=7, flags=book.IOC)
    assert res.leaves == 0
    assert c.fills == [(7, 0, 102, 100, False)]  # all of ask 201, as taker
    snap = c.market.snapshot(0)
    assert snap.ask_ticks == 103  # 201 is gone for everybody after
    c.at(9000)
    effects = c.market.interaction()
    assert effects["real_orders_taken"] == 1
    assert effects["real_lots_taken"] == 100
    # trade 9003 (a real buy against 201) cannot happen any more: its maker is gone
    assert effects["real_trades_unmatched_because_of_clients"] == 1
    assert effects["real_events_skipped_taken_by_client"] == 1  # 201's change
    # and the replay without the client matched every trade
    untouched = queue_market.fork()
    untouched.advance_to(6000 * MS)
    assert untouched.interaction()["real_trades_unmatched_because_of_clients"] == 0


def test_a_real_trade_fills_a_client_quote_at_a_better_price_first(
    queue_market: ReplayMarket,
) -> None:
    """A client ask inside the spread (101) is ahead of every real ask: the real market
    buy at 7000, printed against ask 201 at 102, takes the client's ask first."""
    c = _Client(queue_market)
    res = c.market.submit(0, 0, Side.SELL, 101, 30, owner=3)
    assert res.slot >= 0
    c.at(7500)
    assert c.fills == [(3, 4000 * MS, 101, 30, True)]


def test_a_real_order_resting_across_a_client_quote_trades_with_it(
    queue_market: ReplayMarket,
) -> None:
    """Bid 105 rests at 101 in the capture; a client ask at 101 stands there in this
    replay, so the venue would have matched them: the client sells 0.1, and 105 is
    gone (its cancel is skipped, counted)."""
    c = _Client(queue_market)
    c.at(8000)
    res = c.market.submit(5000 * MS, 0, Side.SELL, 101, 30, owner=3)
    assert res.slot >= 0
    c.at(9000)
    assert c.fills == [(3, 5500 * MS, 101, 10, True)]
    assert int(c.market.state.o_qty[res.slot]) == 20
    assert c.market.snapshot(6000 * MS).bid_ticks == 100
    assert c.market.interaction()["real_events_skipped_taken_by_client"] == 1


def test_forks_are_independent_and_runs_repeat(queue_market: ReplayMarket) -> None:
    runs = []
    for _ in range(2):
        c = _Client(queue_market)
        c.market.submit(0, 0, Side.BUY, 100, 50, owner=1)
        c.at(9000)
        mids = np.nan_to_num(c.market.mid_path(), nan=-1.0).tolist()
        runs.append((c.fills, c.market.interaction(), mids))
    assert runs[0] == runs[1]
    assert queue_market.snapshot(0).bid_levels[0] == 150  # the original is untouched


class _Log:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)


def test_dealers_around_the_replay_quote_off_its_mid(queue_market: ReplayMarket) -> None:
    """The replay's dealer panel (config/dealers/crypto.toml) in a world on the replayed
    book: the fair value they price against is the replayed mid, not the scenario's
    nominal price, and their quotes sit within a few bps of it on a small request (its
    cost is their margin)."""
    from dealers.config import load_panel
    from simulators.world import SimWorld

    panel = load_panel("crypto")
    log = _Log()
    sc = queue_market.scenario
    sc = replace(sc, market=replace(sc.market, price=150.0))
    world = SimWorld.build(sc, 0, log, queue_market.fork(), panel)
    assert world.rfq is not None
    assert world.rfq.venues.keys() == set(panel.ids)
    request = QuoteRequest(
        RfqId("R1"), Symbol("BTC/USD"), Side.BUY, 10, panel.ids[:4], 5 * NANOS_PER_SECOND
    )
    world.rfq.request(request)
    world.kernel.run_until(6 * NANOS_PER_SECOND)
    mid = 101.0  # bid 100, ask 102 from arrival to the end of the answers (6000 ms)
    quotes = [e.quote for e in log.events if isinstance(e, QuoteReceived)]
    assert quotes, [type(e).__name__ for e in log.events]
    for q in quotes:
        assert q.offer is not None and q.bid is None
        assert abs(q.offer / mid - 1) * 1e4 < 25, q
