"""The RFQ protocol state machine: every transition, every refusal, every notice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from dealers.rfq import Leg, LegState, RfqError, RfqSession, RfqState
from router.domain import (
    ChildId,
    DealerId,
    DomainError,
    LastLookRejected,
    Quote,
    QuoteIgnored,
    QuoteReceived,
    QuoteRejectReason,
    QuoteRequest,
    QuoteRequestRejected,
    QuoteResponseSent,
    QuoteRespType,
    RfqClosed,
    RfqEnded,
    RfqId,
    RfqRequested,
    RfqTraded,
    Side,
    Symbol,
)

RID = RfqId("rfq-1")
A, B, C, D, E = (DealerId(x) for x in "ABCDE")
T0 = 1_000
LIMIT = 100
DEADLINE = T0 + LIMIT  # 1_100
VALID = 5_000  # quotes' default valid_until_ns: far after everything below
K1, K2 = ChildId("k1"), ChildId("k2")
R = QuoteRespType
R_PASS = QuoteRejectReason.PASS


def make(
    side: Side | None = Side.BUY, qty: int = 1000, dealers: tuple[DealerId, ...] = (A, B, C)
) -> RfqSession:
    req = QuoteRequest(RID, Symbol("XYZ"), side, qty, dealers, LIMIT)
    return RfqSession(req, T0)


def offer(dealer: DealerId, px: float, qty: int = 1000, valid: int = VALID) -> Quote:
    return Quote(f"q-{dealer}", RID, dealer, qty, None, px, T0 + 5, valid)


def bid(dealer: DealerId, px: float, qty: int = 1000, valid: int = VALID) -> Quote:
    return Quote(f"q-{dealer}", RID, dealer, qty, px, None, T0 + 5, valid)


def two_way(dealer: DealerId, b: float, o: float, qty: int = 1000, valid: int = VALID) -> Quote:
    return Quote(f"q-{dealer}", RID, dealer, qty, b, o, T0 + 5, valid)


def notice(
    ts: int, dealer: DealerId, resp: QuoteRespType, qty: int = 0, px: float | None = None
) -> QuoteResponseSent:
    return QuoteResponseSent(ts, RID, dealer, resp, qty, px)


def states(s: RfqSession) -> dict[DealerId, LegState]:
    return {d: leg.state for d, leg in s.legs.items()}


def snapshot(s: RfqSession) -> tuple[object, ...]:
    legs: list[Leg] = [replace(leg) for leg in s.legs.values()]  # Leg is mutable: copy
    return (s.state, legs, list(s.log))


def refused(s: RfqSession, match: str, fn: Callable[..., object], *args: Any, **kw: Any) -> None:
    """`fn` raises RfqError matching `match` and leaves state, legs and log untouched."""
    before = snapshot(s)
    with pytest.raises(RfqError, match=match):
        fn(*args, **kw)
    assert snapshot(s) == before


# --------------------------------------------------------------------------------------
# Opening, views
# --------------------------------------------------------------------------------------


def test_new_session_opens_with_every_dealer_requested_in_panel_order() -> None:
    s = make(dealers=(C, A, B))
    assert s.log == [RfqRequested(T0, s.request)]
    assert s.opened_ns == 1_000
    assert s.deadline_ns == 1_100
    assert s.state is RfqState.OPEN
    assert list(s.legs) == [C, A, B]
    assert all(leg.state is LegState.REQUESTED and leg.quote is None for leg in s.legs.values())
    assert not s.terminal
    assert not s.all_answered
    assert s.traded_qty == 0
    assert s.pending_hits == 0


def test_rfq_error_is_a_domain_error() -> None:
    assert issubclass(RfqError, DomainError)
    assert [x.value for x in RfqState] == ["open", "closed", "done", "passed", "expired"]


# --------------------------------------------------------------------------------------
# Quotes, rejects and the time limit
# --------------------------------------------------------------------------------------


def test_quote_in_time_is_received() -> None:
    s = make()
    q = offer(A, 100.1)
    assert s.quote(q, T0 + 10) == [QuoteReceived(1_010, q)]
    leg = s.legs[A]
    assert (leg.state, leg.quote, leg.answered_ns) == (LegState.QUOTED, q, 1_010)
    assert s.log[1:] == [QuoteReceived(1_010, q)]


def test_quote_exactly_at_the_deadline_counts() -> None:
    s = make()
    q = offer(A, 100.1)
    assert s.quote(q, DEADLINE) == [QuoteReceived(1_100, q)]
    assert s.legs[A].state is LegState.QUOTED


def test_quote_one_ns_after_the_deadline_is_ignored_as_late() -> None:
    s = make()
    out = s.quote(offer(A, 100.1), DEADLINE + 1)
    assert out == [QuoteIgnored(1_101, RID, A, "late: after the time limit")]
    leg = s.legs[A]
    assert (leg.state, leg.quote, leg.answered_ns) == (LegState.LATE, None, 1_101)
    assert s.state is RfqState.OPEN  # only `close` moves the RFQ on
    assert s.log[1:] == out


def test_partial_quote_is_accepted() -> None:
    s = make(qty=1000)
    q = offer(A, 100.1, qty=400)
    assert s.quote(q, T0 + 10) == [QuoteReceived(1_010, q)]


def test_reject_in_time_and_late() -> None:
    s = make()
    out = s.reject(A, QuoteRejectReason.NO_INVENTORY, "axed the other way", T0 + 20)
    assert out == [
        QuoteRequestRejected(1_020, RID, A, QuoteRejectReason.NO_INVENTORY, "axed the other way")
    ]
    assert s.legs[A].state is LegState.REJECTED
    assert s.legs[A].answered_ns == 1_020
    late = s.reject(B, QuoteRejectReason.PASS, "", DEADLINE + 1)
    assert late == [QuoteIgnored(1_101, RID, B, "late: after the time limit")]
    assert s.legs[B].state is LegState.LATE
    assert s.log[1:] == out + late


def test_quote_refusals_change_nothing() -> None:
    s = make(side=Side.BUY, qty=1000)
    s.quote(offer(A, 100.1), T0 + 10)
    wrong_rfq = Quote("q-x", RfqId("other"), B, 100, None, 100.0, T0, VALID)
    refused(s, "is for RFQ other", s.quote, wrong_rfq, T0 + 20)
    refused(s, "'Z' is not on the panel", s.quote, offer(DealerId("Z"), 100.0), T0 + 20)
    refused(s, "'A' already answered", s.quote, offer(A, 99.0), T0 + 20)
    refused(s, "more than the 1000 requested", s.quote, offer(B, 100.0, qty=1001), T0 + 20)
    refused(s, "needs an offer", s.quote, bid(B, 99.9), T0 + 20)
    refused(s, "must be below its offer", s.quote, two_way(B, 100.2, 100.2), T0 + 20)
    # checked even when the answer is late
    refused(s, "needs an offer", s.quote, bid(B, 99.9), DEADLINE + 1)


def test_sell_request_needs_a_bid() -> None:
    s = make(side=Side.SELL)
    refused(s, "needs a bid", s.quote, offer(A, 100.0), T0 + 10)
    q = two_way(A, 99.9, 100.1)  # the other side too is harmless
    assert s.quote(q, T0 + 10) == [QuoteReceived(1_010, q)]


def test_reject_refusals_change_nothing() -> None:
    s = make()
    s.reject(A, QuoteRejectReason.OTHER, "", T0 + 10)
    s.quote(offer(B, 100.0), T0 + 10)
    refused(s, "'Z' is not on the panel", s.reject, DealerId("Z"), R_PASS, "", T0 + 20)
    refused(s, "'A' already answered", s.reject, A, QuoteRejectReason.PASS, "", T0 + 20)
    refused(s, "'B' already answered", s.reject, B, QuoteRejectReason.PASS, "", T0 + 20)


def test_all_answered() -> None:
    s = make(dealers=(A, B))
    s.quote(offer(A, 100.0), T0 + 10)
    assert not s.all_answered
    s.reject(B, QuoteRejectReason.PASS, "", T0 + 20)
    assert s.all_answered


# --------------------------------------------------------------------------------------
# Close
# --------------------------------------------------------------------------------------


def test_close_times_out_silent_dealers() -> None:
    s = make()
    s.quote(offer(A, 100.1), T0 + 10)
    s.reject(B, QuoteRejectReason.EXCEEDS_LIMIT, "", T0 + 20)
    n = len(s.log)
    assert s.close(DEADLINE) == [RfqClosed(1_100, RID, 1)]
    assert s.state is RfqState.CLOSED
    assert states(s) == {A: LegState.QUOTED, B: LegState.REJECTED, C: LegState.TIMED_OUT}
    assert s.log[n:] == [RfqClosed(1_100, RID, 1)]
    refused(s, "cannot close, the RFQ is closed", s.close, DEADLINE + 1)


def test_close_counts_hit_quotes() -> None:
    s = make()
    s.quote(offer(A, 100.1, qty=300), T0 + 10)
    s.quote(offer(B, 100.2, qty=300), T0 + 20)
    s.quote(offer(C, 100.3, qty=300), T0 + 30)
    s.hit(A, 300, K1, T0 + 40)  # before the time limit
    s.fill(A, T0 + 45)
    s.hit(B, 300, K2, T0 + 50)
    # A filled, B hit, C quoted: three quotes
    assert s.close(DEADLINE) == [RfqClosed(1_100, RID, 3)]
    assert s.state is RfqState.CLOSED


def test_no_quotes_expires_at_close() -> None:
    s = make()
    s.reject(A, QuoteRejectReason.NO_INVENTORY, "", T0 + 10)
    s.quote(offer(B, 100.0), DEADLINE + 1)  # late
    n = len(s.log)
    out = s.close(DEADLINE + 1)
    # A rejected and B late hear nothing; C timed out.
    assert out == [
        RfqClosed(1_101, RID, 0),
        notice(1_101, C, R.TIMED_OUT),
        RfqEnded(1_101, RID, "expired", 0),
    ]
    assert s.log[n:] == out
    assert s.state is RfqState.EXPIRED
    assert s.terminal
    assert states(s) == {A: LegState.REJECTED, B: LegState.LATE, C: LegState.TIMED_OUT}


def test_late_quote_after_close() -> None:
    s = make()
    s.quote(offer(A, 100.1), T0 + 10)
    s.close(T0 + 50)  # the venue may close early
    out = s.quote(offer(B, 100.0), T0 + 60)  # before the deadline, but the RFQ closed
    assert out == [QuoteIgnored(1_060, RID, B, "late: rfq closed")]
    out = s.reject(C, QuoteRejectReason.PASS, "", DEADLINE + 5)
    assert out == [QuoteIgnored(1_105, RID, C, "late: after the time limit")]
    assert states(s) == {A: LegState.QUOTED, B: LegState.LATE, C: LegState.LATE}
    assert s.legs[B].quote is None
    refused(s, "'B' already answered", s.quote, offer(B, 99.0), T0 + 70)


def test_late_quote_after_finish() -> None:
    s = make()
    s.quote(offer(A, 100.1), T0 + 10)
    s.finish(T0 + 50)  # the client passes before the time limit
    n = len(s.log)
    assert s.quote(offer(B, 100.0), T0 + 60) == [QuoteIgnored(1_060, RID, B, "late: rfq passed")]
    out = s.quote(offer(C, 100.0), DEADLINE + 1)
    assert out == [QuoteIgnored(1_101, RID, C, "late: after the time limit")]
    assert s.state is RfqState.PASSED
    assert states(s) == {A: LegState.PASSED, B: LegState.LATE, C: LegState.LATE}
    assert len(s.log) == n + 2


# --------------------------------------------------------------------------------------
# Hit, fill, last look
# --------------------------------------------------------------------------------------


def test_hit_then_fill() -> None:
    s = make(qty=1000)
    s.quote(offer(A, 100.1, qty=600), T0 + 10)
    out = s.hit(A, 500, K1, T0 + 20)
    assert out == [QuoteResponseSent(1_020, RID, A, R.HIT_LIFT, 500, 100.1, K1)]
    leg = s.legs[A]
    assert (leg.state, leg.hit_qty, leg.child_id, leg.side) == (LegState.HIT, 500, K1, Side.BUY)
    assert s.pending_hits == 1
    assert s.traded_qty == 0
    assert s.fill(A, T0 + 30) == [RfqTraded(1_030, RID, A, K1, Side.BUY, 500, 100.1)]
    assert s.legs[A].state is LegState.FILLED
    assert s.pending_hits == 0
    assert s.traded_qty == 500
    assert s.state is RfqState.OPEN


def test_partial_quantities_and_hitting_two_dealers() -> None:
    s = make(qty=1000)
    s.quote(offer(A, 100.1, qty=600), T0 + 10)
    s.quote(offer(B, 100.2, qty=500), T0 + 20)
    s.quote(offer(C, 100.3), T0 + 30)
    s.close(DEADLINE)
    n = len(s.log)
    out = s.hit(A, 600, K1, DEADLINE + 10) + s.hit(B, 400, K2, DEADLINE + 10)
    assert s.pending_hits == 2
    out += s.fill(B, DEADLINE + 20) + s.fill(A, DEADLINE + 30)
    assert out == [
        QuoteResponseSent(1_110, RID, A, R.HIT_LIFT, 600, 100.1, K1),
        QuoteResponseSent(1_110, RID, B, R.HIT_LIFT, 400, 100.2, K2),
        RfqTraded(1_120, RID, B, K2, Side.BUY, 400, 100.2),
        RfqTraded(1_130, RID, A, K1, Side.BUY, 600, 100.1),
    ]
    assert s.traded_qty == 1000  # 600 + 400
    end = s.finish(DEADLINE + 40)
    # C is the only quote not hit: it is the cover, with its full quoted size.
    assert end == [notice(1_140, C, R.COVER, 1000, 100.3), RfqEnded(1_140, RID, "done", 1000)]
    assert s.log[n:] == out + end
    assert s.state is RfqState.DONE
    assert states(s) == {A: LegState.FILLED, B: LegState.FILLED, C: LegState.COVER}


def test_over_hitting_is_refused() -> None:
    s = make(qty=1000)
    s.quote(offer(A, 100.1, qty=600), T0 + 10)
    s.quote(offer(B, 100.2, qty=600), T0 + 20)
    s.hit(A, 600, K1, T0 + 30)
    # 600 + 500 = 1100 > 1000, pending or filled alike
    refused(s, "would trade 1100, more than the 1000", s.hit, B, 500, K2, T0 + 40)
    s.fill(A, T0 + 50)
    refused(s, "would trade 1100, more than the 1000", s.hit, B, 500, K2, T0 + 60)
    refused(s, "would trade 1001, more than the 1000", s.hit, B, 401, K2, T0 + 60)
    assert s.hit(B, 400, K2, T0 + 60)[0] == QuoteResponseSent(
        1_060, RID, B, R.HIT_LIFT, 400, 100.2, K2
    )


def test_last_look_rejected_qty_does_not_count_against_the_size() -> None:
    s = make(qty=1000)
    s.quote(offer(A, 100.1), T0 + 10)
    s.quote(offer(B, 100.2), T0 + 20)
    s.hit(A, 1000, K1, T0 + 30)
    s.last_look_reject(A, "price moved", T0 + 35)
    s.hit(B, 1000, K2, T0 + 40)  # 0 committed + 1000 <= 1000
    assert s.legs[B].state is LegState.HIT


def test_hit_refusals_change_nothing() -> None:
    s = make(qty=1000)
    s.quote(offer(A, 100.1, qty=600, valid=T0 + 200), T0 + 10)
    s.reject(B, QuoteRejectReason.PASS, "", T0 + 20)
    refused(s, "'Z' is not on the panel", s.hit, DealerId("Z"), 100, K1, T0 + 30)
    refused(s, "cannot hit 'B', its leg is rejected", s.hit, B, 100, K1, T0 + 30)
    refused(s, "cannot hit 'C', its leg is requested", s.hit, C, 100, K1, T0 + 30)
    refused(s, r"within \[1, 600\], got 0", s.hit, A, 0, K1, T0 + 30)
    refused(s, r"within \[1, 600\], got 601", s.hit, A, 601, K1, T0 + 30)
    refused(s, "the request is to buy, not sell", s.hit, A, 100, K1, T0 + 30, side=Side.SELL)
    # valid until T0 + 200 inclusive
    refused(s, "quote q-A of 'A' expired at 1200", s.hit, A, 100, K1, T0 + 201)
    assert s.hit(A, 100, K1, T0 + 200, side=Side.BUY)[0].ts_ns == 1_200
    refused(s, "cannot hit 'A', its leg is hit", s.hit, A, 100, K2, T0 + 200)


def test_hit_refused_once_terminal() -> None:
    s = make()
    s.quote(offer(A, 100.1), T0 + 10)
    s.finish(T0 + 20)
    refused(s, "cannot hit, the RFQ is passed", s.hit, A, 100, K1, T0 + 30)


def test_fill_and_last_look_need_a_pending_hit() -> None:
    s = make()
    s.quote(offer(A, 100.1), T0 + 10)
    refused(s, "'A' has no hit pending \\(its leg is quoted\\)", s.fill, A, T0 + 20)
    refused(s, "'B' has no hit pending", s.last_look_reject, B, "x", T0 + 20)
    refused(s, "'Z' is not on the panel", s.fill, DealerId("Z"), T0 + 20)
    s.hit(A, 100, K1, T0 + 30)
    s.fill(A, T0 + 40)
    refused(s, "its leg is filled", s.fill, A, T0 + 50)
    refused(s, "its leg is filled", s.last_look_reject, A, "x", T0 + 50)


def test_last_look_reject_then_hitting_the_cover() -> None:
    s = make(qty=1000)
    s.quote(offer(A, 100.1), T0 + 10)
    s.quote(offer(B, 100.2), T0 + 20)
    s.quote(offer(C, 100.3), T0 + 30)
    s.close(DEADLINE)
    n = len(s.log)
    out = s.hit(A, 1000, K1, DEADLINE + 1)
    out += s.last_look_reject(A, "price moved", DEADLINE + 2)
    assert s.legs[A].state is LegState.LAST_LOOK_REJECTED
    assert [q.dealer for q in s.best_quotes(DEADLINE + 3)] == [B, C]
    out += s.hit(B, 1000, K2, DEADLINE + 3)
    out += s.fill(B, DEADLINE + 4)
    out += s.finish(DEADLINE + 5)
    assert out == [
        QuoteResponseSent(1_101, RID, A, R.HIT_LIFT, 1000, 100.1, K1),
        LastLookRejected(1_102, RID, A, K1, "price moved"),
        QuoteResponseSent(1_103, RID, B, R.HIT_LIFT, 1000, 100.2, K2),
        RfqTraded(1_104, RID, B, K2, Side.BUY, 1000, 100.2),
        notice(1_105, A, R.DONE_AWAY, 1000, 100.1),  # turned the hit down: done away
        notice(1_105, C, R.COVER, 1000, 100.3),
        RfqEnded(1_105, RID, "done", 1000),
    ]
    assert s.log[n:] == out
    assert states(s) == {A: LegState.DONE_AWAY, B: LegState.FILLED, C: LegState.COVER}


# --------------------------------------------------------------------------------------
# Finish and its notices
# --------------------------------------------------------------------------------------


def test_finish_notices_for_a_buy() -> None:
    s = make(side=Side.BUY, qty=1000, dealers=(A, B, C, D, E))
    s.quote(offer(A, 100.10, qty=500), T0 + 10)
    s.quote(offer(B, 100.30, qty=800), T0 + 20)
    s.quote(offer(C, 100.20, qty=700), T0 + 30)
    s.reject(E, QuoteRejectReason.INSUFFICIENT_CREDIT, "", T0 + 40)
    s.close(DEADLINE)  # D timed out
    s.hit(A, 500, K1, DEADLINE + 10)
    s.fill(A, DEADLINE + 20)
    n = len(s.log)
    out = s.finish(DEADLINE + 30)
    # Lowest offer not hit: C 100.20 < B 100.30, so C covers; E rejected hears nothing.
    assert out == [
        notice(1_130, B, R.DONE_AWAY, 800, 100.30),
        notice(1_130, C, R.COVER, 700, 100.20),
        notice(1_130, D, R.TIMED_OUT),
        RfqEnded(1_130, RID, "done", 500),
    ]
    assert s.log[n:] == out
    assert s.state is RfqState.DONE
    assert states(s) == {
        A: LegState.FILLED,
        B: LegState.DONE_AWAY,
        C: LegState.COVER,
        D: LegState.TIMED_OUT,
        E: LegState.REJECTED,
    }
    refused(s, "cannot finish, the RFQ is already done", s.finish, DEADLINE + 40)


def test_finish_notices_for_a_sell() -> None:
    s = make(side=Side.SELL, qty=1000, dealers=(A, B, C, D))
    s.quote(bid(A, 99.90), T0 + 10)
    s.quote(bid(B, 99.80), T0 + 20)
    s.quote(bid(C, 99.95), T0 + 30)
    s.quote(bid(D, 99.85), T0 + 40)
    s.close(DEADLINE)
    s.hit(C, 1000, K1, DEADLINE + 10)
    assert s.log[-1] == QuoteResponseSent(1_110, RID, C, R.HIT_LIFT, 1000, 99.95, K1)
    s.fill(C, DEADLINE + 20)
    assert s.log[-1] == RfqTraded(1_120, RID, C, K1, Side.SELL, 1000, 99.95)
    # Highest bid not hit: A 99.90 > D 99.85 > B 99.80.
    assert s.finish(DEADLINE + 30) == [
        notice(1_130, A, R.COVER, 1000, 99.90),
        notice(1_130, B, R.DONE_AWAY, 1000, 99.80),
        notice(1_130, D, R.DONE_AWAY, 1000, 99.85),
        RfqEnded(1_130, RID, "done", 1000),
    ]


def test_cover_tie_goes_to_the_earlier_quote_then_panel_order() -> None:
    s = make(qty=1000, dealers=(A, B, C, D))
    s.quote(offer(A, 100.0), T0 + 10)
    s.quote(offer(C, 100.2), T0 + 20)
    s.quote(offer(B, 100.2), T0 + 30)  # same price as C, answered later
    s.quote(offer(D, 100.2), T0 + 30)  # same price and time as B, later in the panel
    s.hit(A, 1000, K1, T0 + 40)
    s.fill(A, T0 + 50)
    out = s.finish(T0 + 60)
    assert [(e.dealer, e.resp_type) for e in out if isinstance(e, QuoteResponseSent)] == [
        (B, R.DONE_AWAY),
        (C, R.COVER),
        (D, R.DONE_AWAY),
    ]
    s2 = make(qty=1000, dealers=(A, B, C))
    s2.quote(offer(A, 100.0), T0 + 10)
    s2.quote(offer(C, 100.2), T0 + 30)
    s2.quote(offer(B, 100.2), T0 + 30)
    s2.hit(A, 1000, K1, T0 + 40)
    s2.fill(A, T0 + 50)
    s2.finish(T0 + 60)
    assert states(s2) == {A: LegState.FILLED, B: LegState.COVER, C: LegState.DONE_AWAY}


def test_finish_with_nothing_traded_passes() -> None:
    s = make(qty=1000, dealers=(A, B, C, D))
    s.quote(offer(A, 100.1, qty=400), T0 + 10)
    s.quote(offer(B, 100.2), T0 + 20)
    s.reject(C, QuoteRejectReason.PASS, "", T0 + 30)
    s.close(DEADLINE)  # D timed out
    s.hit(A, 400, K1, DEADLINE + 10)
    s.last_look_reject(A, "away", DEADLINE + 20)
    n = len(s.log)
    out = s.finish(DEADLINE + 30)
    assert out == [
        notice(1_130, A, R.PASS, 400, 100.1),
        notice(1_130, B, R.PASS, 1000, 100.2),
        notice(1_130, D, R.TIMED_OUT),
        RfqEnded(1_130, RID, "passed", 0),
    ]
    assert s.log[n:] == out
    assert s.state is RfqState.PASSED
    assert states(s) == {
        A: LegState.PASSED,
        B: LegState.PASSED,
        C: LegState.REJECTED,
        D: LegState.TIMED_OUT,
    }


def test_finish_while_open_closes_first() -> None:
    s = make()
    s.quote(offer(A, 100.1), T0 + 10)
    s.hit(A, 1000, K1, T0 + 20)
    s.fill(A, T0 + 30)
    s.quote(offer(B, 100.2), T0 + 40)
    out = s.finish(T0 + 50)  # C never answered
    assert out == [
        RfqClosed(1_050, RID, 2),
        notice(1_050, B, R.COVER, 1000, 100.2),
        notice(1_050, C, R.TIMED_OUT),
        RfqEnded(1_050, RID, "done", 1000),
    ]
    assert s.state is RfqState.DONE


def test_finish_while_open_without_quotes_expires_as_close_would() -> None:
    s = make(dealers=(A, B))
    s.reject(A, QuoteRejectReason.PASS, "", T0 + 10)
    assert s.finish(T0 + 20) == [
        RfqClosed(1_020, RID, 0),
        notice(1_020, B, R.TIMED_OUT),
        RfqEnded(1_020, RID, "expired", 0),
    ]
    assert s.state is RfqState.EXPIRED


def test_finish_while_a_hit_is_pending_is_refused() -> None:
    s = make()
    s.quote(offer(A, 100.1), T0 + 10)
    s.hit(A, 1000, K1, T0 + 20)
    refused(s, "while a hit awaits the dealer's last look", s.finish, T0 + 30)
    s.close(DEADLINE)
    refused(s, "while a hit awaits the dealer's last look", s.finish, DEADLINE + 1)
    s.fill(A, DEADLINE + 2)
    assert s.finish(DEADLINE + 3)[-1] == RfqEnded(1_103, RID, "done", 1000)


# --------------------------------------------------------------------------------------
# Two-sided requests
# --------------------------------------------------------------------------------------


def test_two_sided_request_needs_both_prices() -> None:
    s = make(side=None)
    refused(s, "needs an offer", s.quote, bid(A, 99.9), T0 + 10)
    refused(s, "needs a bid", s.quote, offer(A, 100.1), T0 + 10)
    refused(s, "bid 100.1 must be below its offer 100", s.quote, two_way(A, 100.1, 100.0), T0)
    q = two_way(A, 99.9, 100.1)
    assert s.quote(q, T0 + 10) == [QuoteReceived(1_010, q)]


def test_two_sided_hit_needs_the_side() -> None:
    s = make(side=None, qty=1000)
    s.quote(two_way(A, 99.90, 100.10, qty=500), T0 + 10)
    s.quote(two_way(B, 99.95, 100.05, qty=500), T0 + 20)
    s.quote(two_way(C, 99.85, 100.15, qty=500), T0 + 30)
    s.close(DEADLINE)
    refused(s, "two-sided request needs the client's side", s.hit, A, 500, K1, DEADLINE + 1)
    refused(s, "needs the client's side", s.best_quotes, DEADLINE + 1)
    assert [q.dealer for q in s.best_quotes(DEADLINE + 1, Side.SELL)] == [B, A, C]
    assert [q.dealer for q in s.best_quotes(DEADLINE + 1, Side.BUY)] == [B, A, C]
    out = s.hit(B, 500, K1, DEADLINE + 1, side=Side.SELL)
    assert out == [QuoteResponseSent(1_101, RID, B, R.HIT_LIFT, 500, 99.95, K1)]
    # one RFQ trades one way
    refused(s, "already hit to sell, cannot buy", s.hit, A, 500, K2, DEADLINE + 2, side=Side.BUY)
    s.fill(B, DEADLINE + 3)
    assert s.log[-1] == RfqTraded(1_103, RID, B, K1, Side.SELL, 500, 99.95)
    s.hit(A, 500, K2, DEADLINE + 4, side=Side.SELL)
    s.fill(A, DEADLINE + 5)
    # only C is left: it covers, with its bid (the side that traded)
    assert s.finish(DEADLINE + 6) == [
        notice(1_106, C, R.COVER, 500, 99.85),
        RfqEnded(1_106, RID, "done", 1000),
    ]


def test_two_sided_pass_carries_no_price() -> None:
    s = make(side=None, dealers=(A,))
    s.quote(two_way(A, 99.9, 100.1), T0 + 10)
    assert s.finish(T0 + 20) == [
        RfqClosed(1_020, RID, 1),
        notice(1_020, A, R.PASS, 1000, None),  # the client never revealed its side
        RfqEnded(1_020, RID, "passed", 0),
    ]


# --------------------------------------------------------------------------------------
# Quote expiry
# --------------------------------------------------------------------------------------


def test_expire_quotes_while_open_does_not_end() -> None:
    s = make()
    s.quote(offer(A, 100.1, valid=T0 + 50), T0 + 10)
    s.quote(offer(B, 100.2, valid=T0 + 80), T0 + 20)
    assert s.expire_quotes(T0 + 50) == []  # valid until 1_050 inclusive
    n = len(s.log)
    out = s.expire_quotes(T0 + 51)
    assert out == [notice(1_051, A, R.EXPIRED, 1000, 100.1)]
    assert s.log[n:] == out
    assert s.state is RfqState.OPEN
    assert states(s) == {A: LegState.EXPIRED, B: LegState.QUOTED, C: LegState.REQUESTED}
    refused(s, "cannot hit 'A', its leg is expired", s.hit, A, 100, K1, T0 + 52)


def test_expire_quotes_ends_the_rfq_as_expired() -> None:
    s = make()
    s.quote(offer(A, 100.1, valid=1_500), T0 + 10)
    s.quote(offer(B, 100.2, valid=1_200), T0 + 20)
    s.close(DEADLINE)  # C timed out
    assert s.expire_quotes(1_201) == [notice(1_201, B, R.EXPIRED, 1000, 100.2)]
    assert s.state is RfqState.CLOSED
    n = len(s.log)
    out = s.expire_quotes(1_501)
    assert out == [
        notice(1_501, A, R.EXPIRED, 1000, 100.1),
        notice(1_501, C, R.TIMED_OUT),
        RfqEnded(1_501, RID, "expired", 0),
    ]
    assert s.log[n:] == out
    assert s.state is RfqState.EXPIRED
    assert states(s) == {A: LegState.EXPIRED, B: LegState.EXPIRED, C: LegState.TIMED_OUT}
    # timers may fire after the end: no error, nothing happens
    n = len(s.log)
    assert s.expire_quotes(2_000) == []
    assert len(s.log) == n


def test_expire_quotes_ends_a_traded_rfq_as_done() -> None:
    s = make(qty=1000)
    s.quote(offer(A, 100.1, qty=600), T0 + 10)
    s.quote(offer(B, 100.2, valid=1_300), T0 + 20)
    s.close(DEADLINE)  # C timed out
    s.hit(A, 600, K1, DEADLINE + 10)
    s.fill(A, DEADLINE + 20)
    assert s.expire_quotes(1_301) == [
        notice(1_301, B, R.EXPIRED, 1000, 100.2),
        notice(1_301, C, R.TIMED_OUT),
        RfqEnded(1_301, RID, "done", 600),
    ]
    assert s.state is RfqState.DONE
    assert s.traded_qty == 600


def test_expire_quotes_waits_for_a_pending_hit() -> None:
    s = make()
    s.quote(offer(A, 100.1, valid=1_200), T0 + 10)
    s.quote(offer(B, 100.2, valid=1_200), T0 + 20)
    s.reject(C, QuoteRejectReason.PASS, "", T0 + 30)
    s.close(DEADLINE)
    s.hit(A, 1000, K1, 1_200)
    # A's quote lapses too, but it is hit: only B expires and the RFQ stays closed.
    assert s.expire_quotes(1_201) == [notice(1_201, B, R.EXPIRED, 1000, 100.2)]
    assert s.state is RfqState.CLOSED
    s.last_look_reject(A, "moved", 1_202)
    # nothing left to hit, nothing traded: the next timer ends it; A hears pass
    assert s.expire_quotes(1_203) == [
        notice(1_203, A, R.PASS, 1000, 100.1),
        RfqEnded(1_203, RID, "expired", 0),
    ]


def test_close_after_a_trade_waits_for_the_client() -> None:
    s = make(qty=1000)
    s.quote(offer(A, 100.1, qty=600), T0 + 10)
    s.reject(B, QuoteRejectReason.PASS, "", T0 + 20)
    s.hit(A, 600, K1, T0 + 30)
    s.fill(A, T0 + 40)
    # nothing left to hit, but something traded: closed, not expired
    assert s.close(DEADLINE) == [RfqClosed(1_100, RID, 1)]
    assert s.state is RfqState.CLOSED
    assert s.finish(DEADLINE + 10) == [
        notice(1_110, C, R.TIMED_OUT),
        RfqEnded(1_110, RID, "done", 600),
    ]


def test_close_with_every_quote_lapsed_expires() -> None:
    s = make(dealers=(A, B))
    s.quote(offer(A, 100.1, valid=T0 + 20), T0 + 10)
    s.expire_quotes(T0 + 21)
    assert s.close(DEADLINE) == [
        RfqClosed(1_100, RID, 1),
        notice(1_100, B, R.TIMED_OUT),
        RfqEnded(1_100, RID, "expired", 0),
    ]


# --------------------------------------------------------------------------------------
# best_quotes
# --------------------------------------------------------------------------------------


def test_best_quotes_orders_valid_quotes_for_the_client() -> None:
    s = make(side=Side.BUY, dealers=(A, B, C, D))
    qa = offer(A, 100.3)
    qb = offer(B, 100.1, valid=1_050)
    qc = offer(C, 100.2)
    qd = offer(D, 100.2)
    for i, q in enumerate((qa, qb, qc, qd)):
        s.quote(q, T0 + 10 + i)
    assert s.best_quotes(1_050) == [qb, qc, qd, qa]
    assert s.best_quotes(1_051) == [qc, qd, qa]  # B lapsed (not yet expired by a timer)
    assert s.best_quotes(1_051, Side.BUY) == [qc, qd, qa]
    refused(s, "the request is to buy, not sell", s.best_quotes, 1_051, Side.SELL)
    s.hit(C, 100, K1, 1_060)
    assert s.best_quotes(1_060) == [qb, qd, qa][1:]  # hit quotes are no longer offered


def test_best_quotes_for_a_sell_is_highest_bid_first() -> None:
    s = make(side=Side.SELL)
    qa, qb, qc = bid(A, 99.8), bid(B, 99.9), bid(C, 99.7)
    s.quote(qa, T0 + 1)
    s.quote(qb, T0 + 2)
    s.quote(qc, T0 + 3)
    assert s.best_quotes(T0 + 4) == [qb, qa, qc]
