"""Dealer scorecard: every number of a small hand-built RFQ day, checked by hand.

The day (times in seconds; the lit mid holds its last value):

    mid: t=0 100.00, 60 100.20, 300 100.30, 400 100.00, 460 99.80, 700 99.50,
         1000 100.00, 1060 100.10, 1300 99.60

A  t=10   BUY 1000, panel D1 D2 D3   D1 offer 100.05 (+0.2 s), D2 offer 100.10 (+0.5 s),
          D3 declines; hit D1, D1 trades 1000 @ 100.05 at t=11; D2 gets COVER 100.10.
B  t=400  two-sided 500, panel D1 D2 D1 99.90/100.10 (+0.3 s), D2 99.95/100.08 (+0.4 s);
          client sells to D2: 500 @ 99.95 at t=401.2 (the trade reveals SELL); D1 COVER.
C  t=1000 SELL 2000, panel D1 D2 D3  D1 bid 99.92 (+0.1 s), D3 bid 99.90 for 1000
          (+0.6 s), D2 TIMED_OUT then late (QuoteIgnored); hit D1, last-look rejected;
          hit D3, trades 1000 @ 99.90 at t=1006.2; no cover.
D  t=2000 two-sided 800, panel D1 D3 D1 99.80/100.20 (+0.5 s), D3 99.70/100.30 (+1.0 s);
          client passes: side never known, so no quote-vs-mid and no leakage.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dealers.scorecard import (
    CONTRACT_KEYS,
    LEAKAGE_S,
    MARKOUT_S,
    DealerScore,
    Scorecard,
    notes,
    table,
)
from router.domain import (
    ChildId,
    ChildOrderCanceled,
    DealerId,
    DomainError,
    Event,
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
    VenueId,
)
from router.tca import PricePath

HIT = QuoteRespType.HIT_LIFT
COVER = QuoteRespType.COVER
D1, D2, D3 = DealerId("D1"), DealerId("D2"), DealerId("D3")


def ns(t_s: float) -> int:
    return round(t_s * 1e9)


def path_of(points: list[tuple[float, float]]) -> PricePath:
    """Mids exactly as given: bid/ask at mid -/+ 0.5 average back exactly."""
    t = np.array([p[0] for p in points])
    mid = np.array([p[1] for p in points])
    return PricePath(t, mid - 0.5, mid + 0.5)


PATH = path_of(
    [
        (0, 100.00),
        (60, 100.20),
        (300, 100.30),
        (400, 100.00),
        (460, 99.80),
        (700, 99.50),
        (1000, 100.00),
        (1060, 100.10),
        (1300, 99.60),
    ]
)


def request(t: float, rid: str, side: Side | None, qty: int, *dealers: DealerId) -> RfqRequested:
    req = QuoteRequest(RfqId(rid), Symbol("XYZ"), side, qty, tuple(dealers), ns(5))
    return RfqRequested(ns(t), req)


def quote(
    t: float, rid: str, dealer: DealerId, qty: int, bid: float | None, offer: float | None
) -> QuoteReceived:
    q = Quote(f"{rid}-{dealer}-{t}", RfqId(rid), dealer, qty, bid, offer, ns(t), ns(t + 30))
    return QuoteReceived(ns(t), q)


def notice(
    t: float, rid: str, dealer: DealerId, kind: QuoteRespType, qty: int = 0, px: float | None = None
) -> QuoteResponseSent:
    return QuoteResponseSent(ns(t), RfqId(rid), dealer, kind, qty, px, None)


def traded(t: float, rid: str, dealer: DealerId, side: Side, qty: int, px: float) -> RfqTraded:
    return RfqTraded(ns(t), RfqId(rid), dealer, ChildId(f"c-{rid}-{dealer}"), side, qty, px)


def day_log() -> list[Event]:
    a, b, c, d = "A", "B", "C", "D"
    return [
        # A: one-sided buy
        request(10, a, Side.BUY, 1000, D1, D2, D3),
        QuoteRequestRejected(ns(10.1), RfqId(a), D3, QuoteRejectReason.NO_INVENTORY, "flat"),
        quote(10.2, a, D1, 1000, None, 100.05),
        quote(10.5, a, D2, 1000, None, 100.10),
        RfqClosed(ns(10.5), RfqId(a), 2),
        notice(10.8, a, D1, HIT, 1000, 100.05),
        traded(11, a, D1, Side.BUY, 1000, 100.05),
        notice(11, a, D2, COVER, 1000, 100.10),
        RfqEnded(ns(11), RfqId(a), "done", 1000),
        # B: two-sided, the client sells
        request(400, b, None, 500, D1, D2),
        quote(400.3, b, D1, 500, 99.90, 100.10),
        quote(400.4, b, D2, 500, 99.95, 100.08),
        RfqClosed(ns(400.4), RfqId(b), 2),
        notice(401, b, D2, HIT, 500, 99.95),
        traded(401.2, b, D2, Side.SELL, 500, 99.95),
        notice(401.2, b, D1, COVER, 500, 99.90),
        RfqEnded(ns(401.2), RfqId(b), "done", 500),
        # C: one-sided sell, a timeout, a late answer and a last-look reject
        request(1000, c, Side.SELL, 2000, D1, D2, D3),
        quote(1000.1, c, D1, 2000, 99.92, None),
        quote(1000.6, c, D3, 1000, 99.90, None),
        RfqClosed(ns(1005), RfqId(c), 2),
        notice(1005, c, D2, QuoteRespType.TIMED_OUT),
        notice(1005.5, c, D1, HIT, 2000, 99.92),
        LastLookRejected(ns(1005.7), RfqId(c), D1, ChildId("c-C-D1"), "price moved"),
        notice(1006, c, D3, HIT, 1000, 99.90),
        QuoteIgnored(ns(1006.1), RfqId(c), D2, "after the time limit"),
        traded(1006.2, c, D3, Side.SELL, 1000, 99.90),
        RfqEnded(ns(1006.2), RfqId(c), "done", 1000),
        # D: two-sided, passed
        request(2000, d, None, 800, D1, D3),
        quote(2000.5, d, D1, 800, 99.80, 100.20),
        quote(2001.0, d, D3, 800, 99.70, 100.30),
        RfqClosed(ns(2001), RfqId(d), 2),
        notice(2002, d, D1, QuoteRespType.PASS, 800, 100.20),
        notice(2002, d, D3, QuoteRespType.PASS, 800, 100.30),
        RfqEnded(ns(2002), RfqId(d), "passed", 0),
    ]


@pytest.fixture
def card() -> Scorecard:
    sc = Scorecard()
    sc.add_day(day_log(), PATH)
    return sc


def by_dealer(sc: Scorecard) -> dict[str, DealerScore]:
    return {r.dealer: r for r in sc.rows()}


def test_defaults() -> None:
    assert (MARKOUT_S, LEAKAGE_S) == (60.0, 300.0)


def test_rows_sorted_and_totals(card: Scorecard) -> None:
    assert [r.dealer for r in card.rows()] == ["D1", "D2", "D3"]
    assert (card.n_rfqs, card.n_trades, card.n_days) == (4, 3, 1)


def test_dealer_1(card: Scorecard) -> None:
    r = by_dealer(card)["D1"]
    # asked in A B C D, quoted all four; won A; covered B; hit in A and C, rejected C
    assert (r.rfqs, r.quotes, r.declines, r.late, r.wins, r.covers) == (4, 4, 0, 0, 1, 1)
    assert (r.hits, r.last_look_rejects, r.trades) == (2, 1, 1)
    assert r.response_rate == 1.0  # 4 / 4
    assert r.decline_rate == 0.0  # 0 / 4
    assert r.hit_ratio == 0.25  # 1 win / 4 quotes
    assert r.cover_rate == 0.25  # 1 cover / 4 quotes
    assert r.avg_response_ms == pytest.approx(275.0)  # (200 + 300 + 100 + 500) / 4
    # A buy @100.05, mid 100: (100 - 100.05) / 100 = -5 bps
    assert r.price_improvement_bps == pytest.approx(-5.0)
    # A -5 (offer 100.05); B sell revealed, bid 99.90: -(100 - 99.90)/100 = -10;
    # C bid 99.92: -8; D skipped (side never known): (-5 - 10 - 8) / 3
    assert r.quote_vs_mid_bps == pytest.approx(-23.0 / 3.0)
    # A: cover 100.10, win 100.05, mid 100: +(100.10 - 100.05)/100 = +5 bps
    assert r.winner_minus_cover_bps == pytest.approx(5.0)
    # A: mid(71) = 100.20: (100.20 - 100.05) / 100.05 = 14.99250... bps
    assert r.markout_bps == pytest.approx(0.15 / 100.05 * 1e4)
    assert r.markout_bps == pytest.approx(14.992503748, abs=1e-6)
    # not traded: B (sell, mid 100 -> 99.50: +50), C (sell, 100 -> 99.60: +40); D unknown
    assert r.leakage_bps == pytest.approx(45.0)
    assert r.last_look_reject_rate == 0.5  # 1 reject / 2 hits


def test_dealer_2(card: Scorecard) -> None:
    r = by_dealer(card)["D2"]
    # asked in A B C; quoted A and B; timed out then late in C; won B; covered A
    assert (r.rfqs, r.quotes, r.declines, r.late, r.wins, r.covers) == (3, 2, 0, 1, 1, 1)
    assert (r.hits, r.last_look_rejects, r.trades) == (1, 0, 1)
    assert r.response_rate == pytest.approx(2.0 / 3.0)
    assert r.decline_rate == 0.0
    assert r.hit_ratio == 0.5  # 1 / 2
    assert r.cover_rate == 0.5  # 1 / 2
    assert r.avg_response_ms == pytest.approx(450.0)  # (500 + 400) / 2
    # B sell @99.95, mid 100: -(100 - 99.95) / 100 = -5 bps
    assert r.price_improvement_bps == pytest.approx(-5.0)
    # A offer 100.10: -10; B bid 99.95 (sell revealed): -5 -> -7.5
    assert r.quote_vs_mid_bps == pytest.approx(-7.5)
    # B: cover 99.90, win 99.95, sell: -(99.90 - 99.95) / 100 = +5 bps
    assert r.winner_minus_cover_bps == pytest.approx(5.0)
    # B: mid(461.2) = 99.80: -(99.80 - 99.95) / 99.95 = +15.00750... bps
    assert r.markout_bps == pytest.approx(0.15 / 99.95 * 1e4)
    assert r.markout_bps == pytest.approx(15.007503752, abs=1e-6)
    # not traded: A (buy, 100 -> 100.30: +30), C (+40) -> 35
    assert r.leakage_bps == pytest.approx(35.0)
    assert r.last_look_reject_rate == 0.0  # 0 / 1


def test_dealer_3(card: Scorecard) -> None:
    r = by_dealer(card)["D3"]
    # asked in A C D; declined A; quoted C and D; won C (no cover there)
    assert (r.rfqs, r.quotes, r.declines, r.late, r.wins, r.covers) == (3, 2, 1, 0, 1, 0)
    assert (r.hits, r.last_look_rejects, r.trades) == (1, 0, 1)
    assert r.response_rate == pytest.approx(2.0 / 3.0)
    assert r.decline_rate == pytest.approx(1.0 / 3.0)
    assert r.hit_ratio == 0.5  # 1 / 2
    assert r.cover_rate == 0.0  # 0 / 2
    assert r.avg_response_ms == pytest.approx(800.0)  # (600 + 1000) / 2
    # C sell @99.90, mid 100: -10 bps
    assert r.price_improvement_bps == pytest.approx(-10.0)
    # C bid 99.90: -10; D skipped
    assert r.quote_vs_mid_bps == pytest.approx(-10.0)
    assert math.isnan(r.winner_minus_cover_bps)  # C had no cover
    # C: mid(1066.2) = 100.10: -(100.10 - 99.90) / 99.90 = -20.02002... bps
    assert r.markout_bps == pytest.approx(-0.20 / 99.90 * 1e4)
    assert r.markout_bps == pytest.approx(-20.020020020, abs=1e-6)
    # not traded: A (declined, +30); C traded; D unknown side
    assert r.leakage_bps == pytest.approx(30.0)
    assert r.last_look_reject_rate == 0.0  # 0 / 1


def test_panel_leakage(card: Scorecard) -> None:
    # size 3: A +30, C +40 -> 35; size 2: B +50 (D unknown side, left out)
    assert card.panel_leakage_bps() == pytest.approx({2: 50.0, 3: 35.0})
    assert list(card.panel_leakage_bps()) == [2, 3]


def test_days_accumulate() -> None:
    sc = Scorecard()
    sc.add_day(day_log(), PATH)
    sc.add_day(day_log(), PATH)  # ids are per day: the same log again is a second day
    r = by_dealer(sc)["D1"]
    assert (r.rfqs, r.quotes, r.wins, r.hits, r.last_look_rejects) == (8, 8, 2, 4, 2)
    assert r.hit_ratio == 0.25
    assert r.quote_vs_mid_bps == pytest.approx(-23.0 / 3.0)
    assert (sc.n_rfqs, sc.n_trades, sc.n_days) == (8, 6, 2)
    assert sc.panel_leakage_bps() == pytest.approx({2: 50.0, 3: 35.0})


def test_horizons_are_parameters() -> None:
    sc = Scorecard(markout_s=1.0, leakage_s=50.0)
    sc.add_day(day_log(), PATH)
    r = by_dealer(sc)["D1"]
    # A: mid(12) = 100: (100 - 100.05) / 100.05 = -4.99750... bps
    assert r.markout_bps == pytest.approx(-0.05 / 100.05 * 1e4)
    # B: mid(450) = 100 -> 0; C: mid(1050) = 100 -> 0
    assert r.leakage_bps == pytest.approx(0.0)
    # A: mid(60) = 100.20 -> +20; C: 0 -> mean 10
    assert sc.panel_leakage_bps()[3] == pytest.approx(10.0)


def test_qty_weighted_markout_and_mean_price_improvement() -> None:
    # Two fills with one dealer: markout is qty-weighted, price improvement is not.
    log = [
        request(10, "Q", Side.BUY, 400, D1),
        quote(10.1, "Q", D1, 400, None, 100.10),
        traded(11, "Q", D1, Side.BUY, 300, 100.10),
        traded(12, "Q", D1, Side.BUY, 100, 100.00),
    ]
    sc = Scorecard()
    sc.add_day(log, PATH)
    r = sc.rows()[0]
    assert (r.wins, r.trades) == (1, 2)
    # PI: (-10 + 0) / 2 = -5
    assert r.price_improvement_bps == pytest.approx(-5.0)
    # mid(71), mid(72) = 100.20: 300 * 0.10/100.10 + 100 * 0.20/100.00, / 400, bps
    expect = (300 * 0.10 / 100.10 + 100 * 0.20 / 100.00) / 400 * 1e4
    assert r.markout_bps == pytest.approx(expect)
    assert math.isnan(r.leakage_bps)  # traded its only RFQ
    assert math.isnan(r.last_look_reject_rate)  # no HIT_LIFT notice in this log


def test_dealer_never_quoted_has_nan() -> None:
    log = [
        request(10, "X", Side.BUY, 100, D1, D2),
        quote(10.3, "X", D1, 100, None, 100.05),
        RfqClosed(ns(15), RfqId("X"), 1),
        notice(15, "X", D2, QuoteRespType.TIMED_OUT),
        notice(16, "X", D1, QuoteRespType.PASS, 100, 100.05),
        RfqEnded(ns(16), RfqId("X"), "passed", 0),
    ]
    sc = Scorecard()
    sc.add_day(log, PATH)
    r = by_dealer(sc)["D2"]
    assert (r.rfqs, r.quotes, r.declines, r.late, r.wins, r.covers) == (1, 0, 0, 0, 0, 0)
    assert r.response_rate == 0.0
    assert r.decline_rate == 0.0
    for name in (
        "hit_ratio",
        "cover_rate",
        "avg_response_ms",
        "price_improvement_bps",
        "quote_vs_mid_bps",
        "winner_minus_cover_bps",
        "markout_bps",
        "last_look_reject_rate",
    ):
        assert math.isnan(getattr(r, name)), name
    # it still saw a buy that did not trade: mid 100 -> 100.30 at t=310: +30 bps
    assert r.leakage_bps == pytest.approx(30.0)
    row = next(d for d in sc.to_json()["dealers"] if d["dealer"] == "D2")
    assert row["hit_ratio"] is None
    assert row["avg_response_ms"] is None
    assert row["markout_bps"] is None
    assert row["response_rate"] == 0.0


def test_to_json(card: Scorecard) -> None:
    doc = card.to_json()
    keys = ["dealers", "panel_leakage_bps", "rfqs", "trades", "days", "markout_s", "leakage_s"]
    assert list(doc) == keys
    assert (doc["rfqs"], doc["trades"], doc["days"]) == (4, 3, 1)
    assert (doc["markout_s"], doc["leakage_s"]) == (60.0, 300.0)
    assert doc["panel_leakage_bps"] == pytest.approx({"2": 50.0, "3": 35.0})
    assert [d["dealer"] for d in doc["dealers"]] == ["D1", "D2", "D3"]
    for row in doc["dealers"]:
        assert tuple(row)[: len(CONTRACT_KEYS)] == CONTRACT_KEYS
        assert CONTRACT_KEYS == (
            "dealer",
            "rfqs",
            "response_rate",
            "hit_ratio",
            "cover_rate",
            "avg_response_ms",
            "price_improvement_bps",
            "markout_bps",
        )
        for extra in ("quotes", "declines", "leakage_bps", "last_look_reject_rate"):
            assert extra in row
    d3 = doc["dealers"][2]
    assert d3["winner_minus_cover_bps"] is None  # NaN -> null
    assert d3["rfqs"] == 3 and isinstance(d3["rfqs"], int)
    assert d3["avg_response_ms"] == pytest.approx(800.0)
    # strict JSON: no NaN anywhere
    text = json.dumps(doc, allow_nan=False)
    assert json.loads(text)["dealers"][2]["winner_minus_cover_bps"] is None


def test_unknown_rfq_id_raises() -> None:
    sc = Scorecard()
    log = [request(10, "A", Side.BUY, 100, D1), quote(10.2, "Z", D1, 100, None, 100.0)]
    with pytest.raises(DomainError, match="unknown RFQ 'Z'"):
        sc.add_day(log, PATH)
    with pytest.raises(DomainError, match="unknown RFQ"):
        sc.add_day([RfqEnded(ns(1), RfqId("A"), "done", 0)], PATH)
    # a failed day leaves nothing behind
    assert (sc.rows(), sc.n_rfqs, sc.n_days) == ([], 0, 0)


def test_ids_are_per_day() -> None:
    sc = Scorecard()
    sc.add_day([request(10, "A", Side.BUY, 100, D1)], PATH)
    with pytest.raises(DomainError, match="unknown RFQ 'A'"):
        sc.add_day([traded(11, "A", D1, Side.BUY, 100, 100.0)], PATH)


def test_inconsistent_logs_raise() -> None:
    sc = Scorecard()
    twice = [request(10, "A", Side.BUY, 100, D1), request(11, "A", Side.BUY, 100, D1)]
    with pytest.raises(DomainError, match="twice"):
        sc.add_day(twice, PATH)
    outsider = [request(10, "A", Side.BUY, 100, D1), quote(10.2, "A", D2, 100, None, 100.0)]
    with pytest.raises(DomainError, match="not on its panel"):
        sc.add_day(outsider, PATH)
    wrong_side = [request(10, "A", Side.BUY, 100, D1), traded(11, "A", D1, Side.SELL, 100, 99.0)]
    with pytest.raises(DomainError, match="trade side sell"):
        sc.add_day(wrong_side, PATH)
    with pytest.raises(DomainError, match="horizon"):
        Scorecard(markout_s=0.0)


def test_other_events_and_stray_late_answers_are_ignored() -> None:
    log = [
        ChildOrderCanceled(ns(1), ChildId("x"), VenueId("LIT"), 10),
        request(10, "A", Side.BUY, 100, D1),
        QuoteIgnored(ns(20), RfqId("A"), D2, "not on the panel"),
    ]
    sc = Scorecard()
    sc.add_day(log, PATH)
    assert [r.dealer for r in sc.rows()] == ["D1"]
    assert sc.rows()[0].late == 0


def test_the_table_has_a_row_per_dealer_under_names_and_units(card: Scorecard) -> None:
    headers, rows = table(card)
    assert headers[:3] == ["dealer", "RFQs", "response\nrate %"]
    assert "markout\n60s bps" in headers and "leakage\n300s bps" in headers
    assert all(len(r) == len(headers) for r in rows)
    by_dealer = {r[0]: dict(zip(headers, r, strict=True)) for r in rows}
    assert list(by_dealer) == ["D1", "D2", "D3"]
    d1 = by_dealer["D1"]
    assert (d1["RFQs"], d1["response\nrate %"], d1["hit\nratio %"]) == ("4", "100.0", "25.0")
    assert (d1["response\ntime ms"], d1["markout\n60s bps"]) == ("275", "14.99")
    assert (d1["quotes\nvs mid bps"], d1["ahead of\ncover bps"]) == ("-7.67", "5.00")
    assert (d1["leakage\n300s bps"], d1["last look\nreject %"]) == ("45.00", "50.0")
    assert by_dealer["D3"]["ahead of\ncover bps"] == "-"  # NaN shows as '-'


def test_the_notes_count_and_give_leakage_by_panel_size(card: Scorecard) -> None:
    text = "\n".join(notes(card))
    assert "4 RFQs, 3 trades over 1 day(s)" in text
    assert "2 dealer(s): 50.00, 3 dealer(s): 35.00" in text


def test_the_table_of_long_names_and_of_none() -> None:
    sc = Scorecard()
    sc.add_day([request(10, "A", Side.BUY, 100, DealerId("A-very-long-dealer-name"))], PATH)
    assert [r[0] for r in table(sc)[1]] == ["A-very-long-dealer-name"]
    assert table(Scorecard())[1] == []
