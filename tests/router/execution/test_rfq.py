"""The RFQ tactics against a fake ledger and a fake dealer venue: when they ask and for
how much, which quotes they hit, what a refusal, a pass or a pull does."""

from __future__ import annotations

import numpy as np
import pytest

from router.domain import (
    ChildOrderFilled,
    ChildOrderRejected,
    DealerId,
    OrdType,
    Quote,
    QuoteReceived,
    RfqClosed,
    RfqId,
    Side,
    TimeInForce,
    VenueId,
    VenueKind,
)
from router.execution import LitFees, RfqConfig, RfqRouting, RiskBidConfig
from router.execution.rfq import BlockRfqTactic, RiskBidTactic

from .fakes import (
    NS,
    FakeChannel,
    FakeLedger,
    FakeMarket,
    FakeSelector,
    decision,
    parent,
    quote,
    snapshot,
)

FEES = {VenueId("A"): LitFees(0.001, -0.001)}
SNAP = snapshot(quote("A", 99, 101))  # mid 1.00, two cents wide
RFQ = RfqId("P-R1")
DEALERS = {f"D{i}": VenueKind.RFQ for i in range(1, 5)}


def _routing(time_limit_s: float | None = 10.0) -> RfqRouting:
    return RfqRouting(FakeChannel(), FakeSelector(), 50.0, 1_000_000.0, time_limit_s)


def _ledger(qty: int = 100_000, horizon_s: float = 3_000.0, **kw) -> FakeLedger:
    return FakeLedger(parent(qty, horizon_s=horizon_s), kinds=DEALERS, **kw)


def _block(ledger, config=None, rfq=None) -> BlockRfqTactic:
    return BlockRfqTactic(
        config or RfqConfig(),
        ledger,
        rfq or _routing(),
        FakeMarket(SNAP),
        FEES,
        np.random.default_rng(0),
        60.0,
    )


def _quote(dealer: str, offer: float, qty: int = 10_000, rfq_id: RfqId = RFQ) -> QuoteReceived:
    q = Quote(f"q-{dealer}", rfq_id, DealerId(dealer), qty, None, offer, 1, 100 * NS)
    return QuoteReceived(1, q)


def _closed(tactic, *quotes: QuoteReceived, may_trade: bool = True) -> None:
    for q in quotes:
        tactic.on_event(q, may_trade)
    tactic.on_event(RfqClosed(2, RFQ, len(quotes)), may_trade)


def _fill(child, qty: int) -> ChildOrderFilled:
    return ChildOrderFilled(3, child.child_id, child.venue, Side.BUY, qty, 1.0, 0.0, "rfq", 0)


def _children(ledger):
    return [(s.venue, s.qty, s.quote_id) for s in ledger.sent]


def test_a_block_is_a_share_of_the_parent_held_back_while_the_dealers_answer():
    ledger = _ledger()
    rfq = _routing()
    tactic = _block(ledger, rfq=rfq)
    tactic.on_decision(decision(SNAP, 0))
    (request,) = rfq.channel.requests
    assert (request.rfq_id, request.qty, request.side) == (RFQ, 25_000, Side.BUY)
    assert request.dealers == tuple(DealerId(d) for d in ("D1", "D2", "D3", "D4"))
    assert request.time_limit_ns == 10 * NS
    assert ledger.held == 25_000 and ledger.uncommitted == 75_000
    ((key, chosen, inputs),) = ledger.records
    assert key == "P-R1-request" and chosen == "request quotes for 25000 from D1, D2, D3, D4"
    # half the spread and the fee (110 bps) and 2/3 of the block's impact
    impact = 2 / 3 * 50.0 * np.sqrt(25_000 / 1_000_000)
    assert inputs["lit_alternative_bps"] == pytest.approx(110.0 + impact)
    assert inputs["ahead_room"] == 35_000
    # one request at a time
    tactic.on_decision(decision(SNAP, 0, now=30 * NS))
    assert len(rfq.channel.requests) == 1


@pytest.mark.parametrize(
    ("ledger", "now_s", "target"),
    [
        (dict(filled=99_000), 0, 99_000),  # 1,000 left: below 3% of the parent
        (dict(working={VenueKind.LIT: 65_000}), 0, 0),  # 35% ahead of the schedule already
        (dict(), 3_000 - 80 + 1, 0),  # the answers would come in the final sweep
    ],
)
def test_no_block_when_small_ahead_or_late(ledger, now_s, target):
    rfq = _routing()
    _block(_ledger(**ledger), rfq=rfq).on_decision(decision(SNAP, target, now=now_s * NS))
    assert rfq.channel.requests == []


def test_the_best_quotes_are_hit_while_they_beat_the_screen():
    ledger = _ledger()
    rfq = _routing()
    tactic = _block(ledger, rfq=rfq)
    tactic.on_decision(decision(SNAP, 0))
    _closed(tactic, _quote("D1", 1.001), _quote("D2", 1.0005), _quote("D3", 1.5))
    # D2 (5 bps) then D1 (10 bps); D3's 5,000 bps lose to the screen
    assert _children(ledger) == [("D2", 10_000, "q-D2"), ("D1", 10_000, "q-D1")]
    for s in ledger.sent:
        assert (s.ord_type, s.tif, s.aggressive) == (OrdType.LIMIT, TimeInForce.IOC, True)
        assert s.inputs["quote_bps"] <= s.inputs["lit_alternative_bps"]
    assert [s.limit for s in ledger.sent] == [100, 100]
    assert ledger.held == 5_000  # what is not hit stays held until the request ends
    first, second = ledger.children
    tactic.on_event(_fill(first, 10_000), True)
    assert rfq.channel.finished == []  # the other hit is still in its last look
    tactic.on_event(_fill(second, 10_000), True)
    assert rfq.channel.finished == [RFQ] and ledger.held == 0 and tactic.work is None
    # it traded: the next block after the plain cooldown
    tactic.on_decision(decision(SNAP, 0, now=299 * NS))
    assert len(rfq.channel.requests) == 1
    tactic.on_decision(decision(SNAP, 0, now=300 * NS))
    assert len(rfq.channel.requests) == 2


def test_a_request_that_trades_nothing_is_passed_and_the_next_waits_twice_as_long():
    ledger = _ledger()
    rfq = _routing()
    tactic = _block(ledger, RfqConfig(edge_bps=200.0), rfq)
    tactic.on_decision(decision(SNAP, 0))
    _closed(tactic, _quote("D1", 1.001))  # 10 bps: not 200 better than the screen
    assert ledger.sent == [] and rfq.channel.finished == [RFQ]
    key, chosen, inputs = ledger.records[-1]
    assert key == "P-R1-pass" and chosen.startswith("pass: best quote 10.0 bps")
    assert inputs["best_quote_bps"] == pytest.approx(10.0)
    tactic.on_decision(decision(SNAP, 0, now=599 * NS))
    assert len(rfq.channel.requests) == 1
    tactic.on_decision(decision(SNAP, 0, now=600 * NS))
    assert len(rfq.channel.requests) == 2


def test_a_last_look_refusal_moves_on_to_the_next_quote():
    ledger = _ledger()
    tactic = _block(ledger)
    tactic.on_decision(decision(SNAP, 0))
    _closed(tactic, _quote("D1", 1.001, 25_000), _quote("D2", 1.0005, 25_000))
    assert _children(ledger) == [("D2", 25_000, "q-D2")]  # the best covers the block
    (hit,) = ledger.children
    tactic.on_event(ChildOrderRejected(3, hit.child_id, hit.venue, "last look"), True)
    assert _children(ledger)[1:] == [("D1", 25_000, "q-D1")]


def test_no_trading_on_quotes_when_the_plan_says_no():
    ledger = _ledger()
    rfq = _routing()
    tactic = _block(ledger, rfq=rfq)
    tactic.on_decision(decision(SNAP, 0))
    _closed(tactic, _quote("D1", 1.0001), may_trade=False)
    assert ledger.sent == [] and rfq.channel.finished == [RFQ]
    assert (
        ledger.records[-1][1]
        == "pass: no quote left to trade on (1 quotes, 0 refused at last look)"
    )


def test_a_pull_ends_the_request_unless_a_hit_awaits_its_last_look():
    ledger = _ledger()
    rfq = _routing()
    tactic = _block(ledger, rfq=rfq)
    tactic.on_decision(decision(SNAP, 0))
    tactic.on_pull()
    assert rfq.channel.finished == [RFQ] and ledger.held == 0
    # the next one (after twice the cooldown: the first traded nothing) gets a hit
    tactic.on_decision(decision(SNAP, 0, now=600 * NS))
    second = RfqId("P-R2")
    tactic.on_event(_quote("D1", 1.001, rfq_id=second), True)
    tactic.on_event(RfqClosed(2, second, 1), True)
    assert len(ledger.sent) == 1
    tactic.on_pull()
    assert rfq.channel.finished == [RFQ]  # the hit's last look decides


def test_the_selector_sees_every_event_and_other_rfqs_quotes_are_ignored():
    rfq = _routing()
    tactic = _block(_ledger(), rfq=rfq)
    tactic.on_decision(decision(SNAP, 0))
    stray = _quote("D1", 1.001, rfq_id=RfqId("OTHER-R1"))
    tactic.on_event(stray, True)
    assert rfq.selector.observed == [stray] and tactic.work is not None
    assert tactic.work.quotes == {}


def test_the_time_limit_is_the_configs_else_the_venues_else_ten_seconds():
    assert _block(_ledger(), RfqConfig(time_limit_s=3.0)).time_limit_s == 3.0
    assert _block(_ledger(), rfq=_routing(7.0)).time_limit_s == 7.0
    assert _block(_ledger(), rfq=_routing(None)).time_limit_s == 10.0


def _risk_bid(ledger, rfq, edge_bps=0.0) -> RiskBidTactic:
    return RiskBidTactic(
        RiskBidConfig(edge_bps=edge_bps),
        ledger,
        rfq,
        FakeMarket(SNAP),
        FEES,
        np.random.default_rng(0),
        60.0,
    )


def test_a_risk_bid_asks_for_everything_left_once():
    ledger = _ledger(filled=10_000)
    rfq = _routing()
    tactic = _risk_bid(ledger, rfq)
    tactic.on_decision(decision(SNAP, 0))
    (request,) = rfq.channel.requests
    assert request.qty == 90_000 and ledger.held == 90_000
    assert ledger.records[0][1].endswith("(risk bid: the whole parent at arrival)")
    _closed(tactic)  # no quote
    assert rfq.channel.finished == [RFQ] and ledger.held == 0
    tactic.on_decision(decision(SNAP, 0, now=3_000 * NS))
    assert len(rfq.channel.requests) == 1


def test_a_risk_bid_that_asked_before_a_restart_does_not_ask_again():
    ledger = _ledger()
    ledger.next_rfq_id()  # the desk restored the parent past its first RFQ
    rfq = _routing()
    _risk_bid(ledger, rfq).on_decision(decision(SNAP, 0))
    assert rfq.channel.requests == []


def test_a_risk_bid_competes_with_twap_over_the_time_left():
    # the same block costs less worked over three hours than over half an hour
    def alternative(horizon_s: float) -> float:
        ledger = _ledger(horizon_s=horizon_s)
        _risk_bid(ledger, _routing()).on_decision(decision(SNAP, 0))
        return ledger.records[0][2]["lit_alternative_bps"]

    half_hour, three_hours = alternative(1_800.0), alternative(10_800.0)
    assert 110.0 < three_hours < half_hour
