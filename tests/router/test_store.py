"""Tests of router.store on SQLite (tmp_path) and PostgreSQL.

PostgreSQL: BLOCKROUTE_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/test);
an unreachable server fails these tests; set the variable to `skip` to skip them. Each
test gets a fresh schema (search_path through the URL's `options`), dropped afterwards.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.engine import make_url

from router.domain import (
    ChildId,
    ChildOrder,
    ChildOrderAccepted,
    ChildOrderCanceled,
    ChildOrderExpired,
    ChildOrderFilled,
    ChildOrderRejected,
    ChildOrderSent,
    DealerId,
    DecisionId,
    DecisionRecorded,
    Event,
    LastLookRejected,
    OrdType,
    ParentId,
    ParentOrder,
    ParentOrderAccepted,
    ParentOrderCompleted,
    ParentOrderRejected,
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
    TimeInForce,
    VenueId,
)
from router.store import RunMeta, Store, StoreError, mask_url

T0 = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
NS0 = 1_709_303_400_000_000_000  # 2024-03-01 14:30 UTC: far beyond int4
SEC = 1_000_000_000
P1 = ParentId("P1")
PARENT = ParentOrder(P1, Symbol("QDI"), Side.SELL, 1_000, NS0, 3 * 3600 * SEC, limit_ticks=1_990)


def _meta(batch: str | None = None, seed: int = 7, strategy: str = "sor") -> RunMeta:
    return RunMeta("backtest" if batch else "simulate", "news-shock", seed, strategy, T0, batch)


def _child(
    n: int,
    qty: int,
    venue: str = "LIT1",
    *,
    ord_type: OrdType = OrdType.LIMIT,
    tif: TimeInForce = TimeInForce.DAY,
    limit_ticks: int | None = 2_000,
    post_only: bool = False,
    min_qty: int = 0,
    conditional: bool = False,
) -> ChildOrder:
    return ChildOrder(
        ChildId(f"P1-C{n}"),
        P1,
        VenueId(venue),
        Side.SELL,
        qty,
        ord_type,
        tif,
        limit_ticks,
        post_only,
        min_qty,
        conditional,
    )


def _fill(ts: int, child: ChildOrder, qty: int, price: float, leaves: int) -> ChildOrderFilled:
    liquidity = "midpoint" if child.venue.startswith("DARK") else "maker"
    return ChildOrderFilled(
        NS0 + ts, child.child_id, child.venue, Side.SELL, qty, price, 0.01 * qty, liquidity, leaves
    )


# Six children, one of each ending: the expected final (filled_qty, status) of each.
C1 = _child(1, 100)  # filled in two fills
C2 = _child(2, 200, "DARK1", ord_type=OrdType.MARKET, limit_ticks=None)
C3 = _child(3, 50, tif=TimeInForce.IOC)  # the IOC remainder expires
C4 = _child(4, 60, post_only=True)  # rejected by the venue
C5 = _child(5, 300, "DARK1", min_qty=100, conditional=True)  # partially filled, still open
C6 = _child(6, 40)  # canceled, then a late fill completes it
CHILDREN = [C1, C2, C3, C4, C5, C6]
EXPECTED = {
    "P1-C1": (100, "filled"),
    "P1-C2": (80, "canceled"),
    "P1-C3": (0, "expired"),
    "P1-C4": (0, "rejected"),
    "P1-C5": (150, "open"),
    "P1-C6": (40, "filled"),
}


def _events() -> list[Event]:
    d1 = DecisionRecorded(NS0, DecisionId("D1"), P1, "lit", {"spread": 5.0}, {"dark": 0.4})
    d2 = DecisionRecorded(NS0 + 60 * SEC, DecisionId("D2"), P1, "dark", {"p_fill": 0.7}, {})
    return [
        ParentOrderAccepted(NS0, PARENT, "sor", 100.025),
        d1,
        ChildOrderSent(NS0 + 1, C1),
        ChildOrderAccepted(NS0 + 2, C1.child_id, C1.venue),
        _fill(5 * SEC, C1, 30, 100.00, 70),
        _fill(6 * SEC, C1, 70, 99.99, 0),
        d2,
        _fill(61 * SEC, C2, 80, 100.01, 120),
        ChildOrderCanceled(NS0 + 62 * SEC, C2.child_id, C2.venue, 120, "reprice"),
        ChildOrderExpired(NS0 + 63 * SEC, C3.child_id, C3.venue, 50),
        ChildOrderRejected(NS0 + 64 * SEC, C4.child_id, C4.venue, "post-only would cross"),
        _fill(70 * SEC, C5, 150, 100.02, 150),
        ChildOrderCanceled(NS0 + 80 * SEC, C6.child_id, C6.venue, 40),
        _fill(80 * SEC + 5, C6, 40, 99.98, 0),  # late fill after the cancel was sent
        ParentOrderCompleted(NS0 + PARENT.horizon_ns, P1, 370, 100.0),
    ]


# C1's sent time comes from its ChildOrderSent event, the others from the mapping.
SENT = {c.child_id: NS0 + 10 * n * SEC for n, c in enumerate(CHILDREN) if c is not C1}
TCA = {"is_bps": 12.5, "filled_qty": 370, "venue_mix": {"lit": 0.4, "dark": 0.6, "rfq": 0.0}}


def _record(store: Store, meta: RunMeta | None = None) -> int:
    return store.record_run(meta or _meta(), PARENT, CHILDREN, SENT, _events(), TCA)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    with Store.open(url) as s:
        yield s


# --------------------------------------------------------------------------- round trips


def test_round_trip_rows_and_values(store: Store) -> None:
    run_id = _record(store, _meta(seed=2**40))

    (run,) = store.runs()
    assert run.run_id == run_id
    assert (run.kind, run.scenario, run.seed, run.strategy, run.batch) == (
        "simulate",
        "news-shock",
        2**40,
        "sor",
        None,
    )
    assert run.created_at == T0 and run.created_at.tzinfo is not None
    assert run.is_bps == 12.5
    assert run.filled_qty == 370 and run.n_child_orders == 6
    assert run.completion == pytest.approx(0.37)
    notional = 30 * 100.00 + 70 * 99.99 + 80 * 100.01 + 150 * 100.02 + 40 * 99.98
    assert run.avg_price == pytest.approx(notional / 370)
    assert run.tca() == TCA

    (parent,) = store.parents(run_id)
    assert (parent.parent_id, parent.symbol, parent.side, parent.qty) == ("P1", "QDI", "sell", 1000)
    assert (parent.start_ns, parent.horizon_ns, parent.limit_ticks) == (NS0, 10_800 * SEC, 1_990)
    assert parent.arrival_mid == 100.025
    assert (parent.filled_qty, parent.status) == (370, "done")
    assert parent.avg_price == pytest.approx(notional / 370)

    children = store.children(run_id)
    assert [c.child_id for c in children] == [c.child_id for c in CHILDREN]
    c2, c5 = children[1], children[4]
    assert (c2.venue, c2.side, c2.qty, c2.ord_type, c2.tif, c2.limit_ticks) == (
        "DARK1",
        "sell",
        200,
        "market",
        "day",
        None,
    )
    assert (c5.min_qty, c5.conditional, c5.post_only, c5.limit_ticks) == (100, True, False, 2000)
    assert children[3].post_only is True
    assert children[0].sent_ns == NS0 + 1  # from the ChildOrderSent event
    assert children[5].sent_ns == NS0 + 50 * SEC

    fills = store.fills(run_id)
    assert [(f.child_id, f.qty) for f in fills] == [
        ("P1-C1", 30),
        ("P1-C1", 70),
        ("P1-C2", 80),
        ("P1-C5", 150),
        ("P1-C6", 40),
    ]
    f = fills[3]
    assert (f.venue, f.ts_ns, f.price, f.fee, f.liquidity) == (
        "DARK1",
        NS0 + 70 * SEC,
        100.02,
        1.5,
        "midpoint",
    )

    decisions = store.decisions(run_id)
    assert [d.decision_id for d in decisions] == ["D1", "D2"]
    assert (decisions[0].chosen, decisions[0].ts_ns, decisions[0].parent_id) == ("lit", NS0, "P1")
    assert decisions[0].inputs() == {"spread": 5.0}
    assert decisions[0].alternatives() == {"dark": 0.4}
    assert decisions[1].alternatives() == {}


def test_child_final_status_and_filled_qty_come_from_the_events(store: Store) -> None:
    run_id = _record(store)
    got = {c.child_id: (c.filled_qty, c.status) for c in store.children(run_id)}
    assert got == EXPECTED


def test_two_runs_in_one_batch_and_one_apart(store: Store) -> None:
    a = _record(store, _meta(batch="bt-1", strategy="twap"))
    b = _record(store, _meta(batch="bt-1", strategy="sor"))
    alone = _record(store, _meta())
    assert len({a, b, alone}) == 3

    assert [(r.run_id, r.strategy) for r in store.runs(batch="bt-1")] == [(a, "twap"), (b, "sor")]
    assert [r.run_id for r in store.runs()] == [a, b, alone]
    assert store.runs(batch="other") == []
    # Each run's rows are its own.
    assert len(store.fills(a)) == len(store.fills(b)) == 5
    assert {f.run_id for f in store.fills(b)} == {b}
    assert store.run(b).strategy == "sor"


def test_decisions_filter_by_parent(store: Store) -> None:
    run_id = _record(store)
    assert [d.decision_id for d in store.decisions(run_id, parent_id="P1")] == ["D1", "D2"]
    assert store.decisions(run_id, parent_id="P9") == []
    assert store.decisions(run_id + 1) == []


def test_a_failed_run_leaves_nothing_behind(store: Store) -> None:
    # A decision of a parent that is not this run's breaks a foreign key at the last
    # insert: the whole run must be rolled back.
    stray = DecisionRecorded(NS0, DecisionId("DX"), ParentId("P9"), "lit")
    with pytest.raises(StoreError, match="cannot record a run"):
        store.record_run(_meta(), PARENT, CHILDREN, SENT, [*_events(), stray], TCA)
    assert store.runs() == []
    assert _record(store) >= 1  # and the store still works


def test_numpy_values_in_the_tca_are_stored_as_plain_json(sqlite_url: str) -> None:
    tca = {"is_bps": np.float64(3.25), "n": np.int64(4), "path": np.array([1.0, 2.0])}
    with Store.open(sqlite_url) as s:
        run_id = s.record_run(_meta(), PARENT, CHILDREN, SENT, _events(), tca)
        assert s.run(run_id).tca() == {"is_bps": 3.25, "n": 4, "path": [1.0, 2.0]}
        assert s.run(run_id).is_bps == 3.25


def test_parent_status_filled_and_rejected(sqlite_url: str) -> None:
    small = ParentOrder(P1, Symbol("QDI"), Side.SELL, 100, NS0, SEC)
    with Store.open(sqlite_url) as s:
        full = s.record_run(_meta(), small, [C1], SENT, _events()[:6], {"is_bps": 1.0})
        rejected = s.record_run(
            _meta(), small, [], {}, [ParentOrderRejected(NS0, P1, "limit breached")], {}
        )
        assert [(p.filled_qty, p.status) for p in s.parents(full)] == [(100, "filled")]
        assert [(p.filled_qty, p.status) for p in s.parents(rejected)] == [(0, "rejected")]
        assert s.run(rejected).is_bps is None
        assert s.children(rejected) == []


def test_created_at_is_stored_in_utc(sqlite_url: str) -> None:
    paris = timezone(timedelta(hours=1))
    meta = RunMeta("simulate", "calm", 1, "twap", datetime(2024, 3, 1, 15, 30, tzinfo=paris))
    with Store.open(sqlite_url) as s:
        run = s.run(_record(s, meta))
    assert run.created_at == T0 and run.created_at.utcoffset() == timedelta(0)


# --------------------------------------------------------------------------- RFQs

# The sequences of dealers/rfq.py. R1 (sell 500 for P1, 5 s to answer) at 100 s: D1..D4
# all quote; D1 is hit and turns the hit down in its last look, D2 is hit and fills; at the
# end D3 (the best quote left) gets the cover, D1 and D4 a done-away. R2 (two-sided 200, no
# parent, 3 s) at 150 s: D5 declines, D3's quote lapses at 2 s unanswered, D1 is timed out
# at the close and its late answer is ignored.
R1, R2 = RfqId("R1"), RfqId("R2")
D1, D2, D3, D4, D5 = (DealerId(f"D{n}") for n in range(1, 6))
RQ1 = NS0 + 100 * SEC
RQ2 = NS0 + 150 * SEC
C7 = _child(7, 300, "RFQ-D1", ord_type=OrdType.MARKET, limit_ticks=None)  # hits D1
C8 = _child(8, 500, "RFQ-D2", ord_type=OrdType.MARKET, limit_ticks=None)  # hits D2
RFQ_CHILDREN = [*CHILDREN, C7, C8]
RFQ_SENT = {**SENT, C7.child_id: RQ1 + 4_100_000_000, C8.child_id: RQ1 + 4_400_000_000}


def _quote(
    qid: str,
    rfq: RfqId,
    dealer: DealerId,
    at: int,
    qty: int,
    bid: float,
    offer: float | None,
    valid_until: int,
) -> QuoteReceived:
    return QuoteReceived(at, Quote(qid, rfq, dealer, qty, bid, offer, at, valid_until))


def _rfq_events() -> list[Event]:
    ms = 1_000_000
    r1 = QuoteRequest(R1, Symbol("QDI"), Side.SELL, 500, (D1, D2, D3, D4), 5 * SEC, P1)
    r2 = QuoteRequest(R2, Symbol("QDI"), None, 200, (D3, D5, D1), 3 * SEC)
    hit = QuoteRespType.HIT_LIFT
    return [
        RfqRequested(RQ1, r1),
        _quote("Q1", R1, D1, RQ1 + 800 * ms, 300, 99.97, None, RQ1 + 30 * SEC),
        _quote("Q2", R1, D2, RQ1 + 1_200 * ms, 500, 99.95, None, RQ1 + 30 * SEC),
        _quote("Q3", R1, D3, RQ1 + 2_500 * ms, 500, 99.90, None, RQ1 + 31 * SEC),
        _quote("Q4", R1, D4, RQ1 + 4_000 * ms, 500, 99.85, None, RQ1 + 32 * SEC),
        RfqClosed(RQ1 + 4_000 * ms, R1, 4),  # every dealer answered
        QuoteResponseSent(RQ1 + 4_100 * ms, R1, D1, hit, 300, 99.97, C7.child_id),
        LastLookRejected(RQ1 + 4_350 * ms, R1, D1, C7.child_id, "price moved"),
        ChildOrderRejected(RQ1 + 4_350 * ms, C7.child_id, C7.venue, "last look"),
        QuoteResponseSent(RQ1 + 4_400 * ms, R1, D2, hit, 500, 99.95, C8.child_id),
        RfqTraded(RQ1 + 4_600 * ms, R1, D2, C8.child_id, Side.SELL, 500, 99.95),
        _fill(100 * SEC + 4_600 * ms, C8, 500, 99.95, 0),
        QuoteResponseSent(RQ1 + 4_700 * ms, R1, D1, QuoteRespType.DONE_AWAY, 300, 99.97),
        QuoteResponseSent(RQ1 + 4_700 * ms, R1, D3, QuoteRespType.COVER, 500, 99.90),
        QuoteResponseSent(RQ1 + 4_700 * ms, R1, D4, QuoteRespType.DONE_AWAY, 500, 99.85),
        RfqEnded(RQ1 + 4_700 * ms, R1, "done", 500),
        RfqRequested(RQ2, r2),
        QuoteRequestRejected(
            RQ2 + 500 * ms, R2, D5, QuoteRejectReason.NO_INVENTORY, "axed the other way"
        ),
        _quote("Q5", R2, D3, RQ2 + 1_000 * ms, 200, 99.80, 100.20, RQ2 + 2 * SEC),
        QuoteResponseSent(RQ2 + 2_500 * ms, R2, D3, QuoteRespType.EXPIRED, 200),
        RfqClosed(RQ2 + 3 * SEC, R2, 1),
        QuoteResponseSent(RQ2 + 3 * SEC, R2, D1, QuoteRespType.TIMED_OUT),
        RfqEnded(RQ2 + 3 * SEC, R2, "expired", 0),
        # After the venue's timed-out notice: stored, but the leg stays timed out.
        QuoteIgnored(RQ2 + 3_500 * ms, R2, D1, "late: after the time limit"),
    ]


def _record_rfqs(store: Store, *, detail: bool = True) -> int:
    events = _events()
    # The RFQs happen before the parent completes at its horizon (the last event).
    events[-1:-1] = _rfq_events()
    return store.record_run(_meta(), PARENT, RFQ_CHILDREN, RFQ_SENT, events, TCA, detail=detail)


def test_rfqs_round_trip_with_every_field(store: Store) -> None:
    run_id = _record_rfqs(store)

    r1, r2 = store.rfqs(run_id)
    assert r1.model_dump() == {
        "run_id": run_id,
        "rfq_id": "R1",
        "seq": 0,
        "parent_id": "P1",
        "symbol": "QDI",
        "side": "sell",
        "qty": 500,
        "dealers": "D1,D2,D3,D4",
        "n_dealers": 4,
        "time_limit_s": 5.0,
        "requested_at": RQ1,
        "closed_at": RQ1 + 4_000_000_000,
        "n_quotes": 4,
        "ended_at": RQ1 + 4_700_000_000,
        "state": "done",
        "traded_qty": 500,
    }
    assert r1.panel() == ["D1", "D2", "D3", "D4"]
    assert r2.model_dump() == {
        "run_id": run_id,
        "rfq_id": "R2",
        "seq": 1,
        "parent_id": None,
        "symbol": "QDI",
        "side": None,  # two-sided
        "qty": 200,
        "dealers": "D3,D5,D1",
        "n_dealers": 3,
        "time_limit_s": 3.0,
        "requested_at": RQ2,
        "closed_at": RQ2 + 3 * SEC,
        "n_quotes": 1,
        "ended_at": RQ2 + 3 * SEC,
        "state": "expired",
        "traded_qty": 0,
    }

    none = dict.fromkeys(
        [
            "response_ms", "quote_id", "quote_qty", "bid", "offer", "valid_until",
            "reject_reason", "reject_text", "late_reason", "hit_qty", "hit_price",
            "child_id", "last_look_ms", "traded_qty", "traded_price", "last_look_reason",
        ]
    )  # fmt: skip

    def leg(rfq: str, dealer: str, position: int, outcome: str, **values: object) -> dict:
        return {**none, "run_id": run_id, "rfq_id": rfq, "dealer": dealer,
                "position": position, "outcome": outcome, **values}  # fmt: skip

    def quote(qid: str, qty: int, bid: float, offer: float | None, until: int) -> dict:
        return {"quote_id": qid, "quote_qty": qty, "bid": bid, "offer": offer,
                "valid_until": until}  # fmt: skip

    legs = [row.model_dump() for row in store.rfq_legs(run_id)]
    assert legs == [
        # Hit at 4.1 s, rejected at 4.35 s (250 ms of last look), then the final notice.
        leg("R1", "D1", 0, "done_away", response_ms=800.0,
            **quote("Q1", 300, 99.97, None, RQ1 + 30 * SEC), hit_qty=300, hit_price=99.97,
            child_id="P1-C7", last_look_ms=250.0, last_look_reason="price moved"),
        # Hit at 4.4 s, filled at 4.6 s: 200 ms.
        leg("R1", "D2", 1, "filled", response_ms=1200.0,
            **quote("Q2", 500, 99.95, None, RQ1 + 30 * SEC), hit_qty=500, hit_price=99.95,
            child_id="P1-C8", last_look_ms=200.0, traded_qty=500, traded_price=99.95),
        leg("R1", "D3", 2, "cover", response_ms=2500.0,
            **quote("Q3", 500, 99.90, None, RQ1 + 31 * SEC)),
        leg("R1", "D4", 3, "done_away", response_ms=4000.0,
            **quote("Q4", 500, 99.85, None, RQ1 + 32 * SEC)),
        leg("R2", "D3", 0, "expired", response_ms=1000.0,
            **quote("Q5", 200, 99.80, 100.20, RQ2 + 2 * SEC)),
        leg("R2", "D5", 1, "declined", response_ms=500.0, reject_reason="NO_INVENTORY",
            reject_text="axed the other way"),
        # Its only answer came 3.5 s after the request, after its timed-out notice.
        leg("R2", "D1", 2, "timed_out", response_ms=3500.0,
            late_reason="late: after the time limit"),
    ]  # fmt: skip
    assert [row.model_dump() for row in store.rfq_legs(run_id, rfq_id="R2")] == legs[4:]
    assert store.rfq_legs(run_id, rfq_id="R9") == []
    assert store.rfqs(run_id + 1) == store.rfq_legs(run_id + 1) == []
    # The rest of the run is stored as before, the RFQ children with it.
    got = {c.child_id: (c.filled_qty, c.status) for c in store.children(run_id)}
    assert got == {**EXPECTED, "P1-C7": (0, "rejected"), "P1-C8": (500, "filled")}
    assert store.run(run_id).filled_qty == 370 + 500


def test_rfqs_are_stored_only_with_detail(store: Store) -> None:
    run_id = _record_rfqs(store, detail=False)
    assert store.rfqs(run_id) == [] and store.rfq_legs(run_id) == []
    assert store.children(run_id) == []
    assert store.run(run_id).filled_qty == 870  # still summarised from every event


def test_rfqs_in_progress_when_the_run_ends_and_a_passed_one(store: Store) -> None:
    ms = 1_000_000
    r3 = QuoteRequest(RfqId("R3"), Symbol("QDI"), Side.SELL, 100, (D1, D2), 5 * SEC, P1)
    r4 = QuoteRequest(RfqId("R4"), Symbol("QDI"), Side.SELL, 100, (D4,), 5 * SEC, P1)
    r5 = QuoteRequest(RfqId("R5"), Symbol("QDI"), Side.BUY, 100, (D5,), SEC, P1)
    events: list[Event] = [
        RfqRequested(NS0, r4),
        _quote("Q7", r4.rfq_id, D4, NS0 + 300 * ms, 100, 99.5, None, NS0 + 10 * SEC),
        RfqClosed(NS0 + 300 * ms, r4.rfq_id, 1),
        QuoteResponseSent(NS0 + 900 * ms, r4.rfq_id, D4, QuoteRespType.PASS, 100, 99.5),
        RfqEnded(NS0 + 900 * ms, r4.rfq_id, "passed", 0),
        RfqRequested(NS0 + SEC, r3),  # the run ends 1.2 s later, before the time limit
        _quote("Q6", r3.rfq_id, D2, NS0 + 2_200 * ms, 100, 99.9, None, NS0 + 9 * SEC),
        RfqRequested(NS0 + 2 * SEC, r5),
        _quote("Q8", r5.rfq_id, D5, NS0 + 2_100 * ms, 100, 99.0, 100.5, NS0 + 9 * SEC),
        RfqClosed(NS0 + 2_100 * ms, r5.rfq_id, 1),
        QuoteResponseSent(NS0 + 2_150 * ms, r5.rfq_id, D5, QuoteRespType.HIT_LIFT, 60, 100.5),
        LastLookRejected(NS0 + 2_170 * ms, r5.rfq_id, D5, ChildId("P1-C9"), "credit"),
    ]
    run_id = store.record_run(_meta(), PARENT, [], {}, events, {})

    r4_row, r3_row, r5_row = store.rfqs(run_id)
    assert (r4_row.rfq_id, r4_row.state, r4_row.traded_qty) == ("R4", "passed", 0)
    assert (r3_row.rfq_id, r3_row.requested_at, r3_row.n_dealers) == ("R3", NS0 + SEC, 2)
    assert (r3_row.closed_at, r3_row.n_quotes) == (None, None)
    assert (r3_row.ended_at, r3_row.state, r3_row.traded_qty) == (None, None, None)
    assert (r5_row.closed_at, r5_row.n_quotes, r5_row.state) == (NS0 + 2_100 * ms, 1, None)
    got = [(g.rfq_id, g.dealer, g.outcome, g.response_ms) for g in store.rfq_legs(run_id)]
    assert got == [
        ("R4", "D4", "passed", 300.0),
        ("R3", "D1", "asked", None),  # nothing heard yet
        ("R3", "D2", "quoted", 1200.0),
        ("R5", "D5", "last_look_rejected", 100.0),  # no notice after it: the run ended
    ]
    (d5,) = store.rfq_legs(run_id, rfq_id="R5")
    # The child comes from the last look when the hit named none; 20 ms from hit to reject.
    assert (d5.hit_qty, d5.hit_price, d5.child_id) == (60, 100.5, "P1-C9")
    assert (d5.last_look_ms, d5.last_look_reason, d5.traded_qty) == (20.0, "credit", None)


def test_rfq_of_another_parent_fails_the_whole_run(store: Store) -> None:
    stray = QuoteRequest(RfqId("RX"), Symbol("QDI"), Side.BUY, 10, (D1,), SEC, ParentId("P9"))
    with pytest.raises(StoreError, match="cannot record a run"):
        store.record_run(_meta(), PARENT, [], {}, [RfqRequested(NS0, stray)], {})
    assert store.runs() == []


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (RfqClosed(NS0, RfqId("R9"), 0), "RfqClosed at .* for unknown RFQ 'R9'"),
        (
            QuoteIgnored(NS0, RfqId("R9"), D1, "late"),
            "QuoteIgnored at .* for unknown RFQ 'R9'",
        ),
        (
            QuoteResponseSent(NS0, R2, D2, QuoteRespType.PASS),
            "QuoteResponseSent at .*: dealer 'D2' is not on the panel of RFQ 'R2'",
        ),
        (
            RfqRequested(NS0, QuoteRequest(R2, Symbol("QDI"), None, 1, (D1,), SEC)),
            "RFQ 'R2' requested twice",
        ),
    ],
)
def test_inconsistent_rfq_events_are_refused_before_writing(
    sqlite_url: str, event: Event, message: str
) -> None:
    events = [*_rfq_events(), event]
    with Store.open(sqlite_url) as s:
        for detail in (True, False):
            with pytest.raises(ValueError, match=message):
                s.record_run(_meta(), PARENT, RFQ_CHILDREN, RFQ_SENT, events, TCA, detail=detail)
        assert s.runs() == []


# --------------------------------------------------------------------------- input checks


def test_inconsistent_input_is_refused_before_writing(sqlite_url: str) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        RunMeta("simulate", "calm", 1, "twap", datetime(2024, 3, 1))
    stranger = ChildOrderFilled(
        NS0, ChildId("X9"), VenueId("LIT1"), Side.SELL, 1, 1.0, 0, "taker", 0
    )
    with Store.open(sqlite_url) as s:
        with pytest.raises(ValueError, match="unknown child 'X9'"):
            s.record_run(_meta(), PARENT, CHILDREN, SENT, [*_events(), stranger], TCA)
        with pytest.raises(ValueError, match="'P1-C2': no sent time"):
            s.record_run(_meta(), PARENT, CHILDREN, {}, _events(), TCA)
        with pytest.raises(ValueError, match="not JSON-serialisable"):
            s.record_run(_meta(), PARENT, CHILDREN, SENT, _events(), {"x": object()})
        assert s.runs() == []


# --------------------------------------------------------------------------- SQLite setup


def test_sqlite_uses_wal_foreign_keys_and_a_busy_timeout(sqlite_url: str) -> None:
    with Store.open(sqlite_url) as s, s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 1000


def test_default_database_is_blockroute_db_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with Store.open(None) as s:
        _record(s)
        assert s.url == "sqlite:///blockroute.db"
    assert (tmp_path / "blockroute.db").is_file()
    with Store.open(f"sqlite:///{tmp_path / 'blockroute.db'}", create=False) as again:
        assert len(again.runs()) == 1


def test_concurrent_writers_on_one_file(sqlite_url: str) -> None:
    # Backtest workers: separate stores (as separate processes would have) open a new
    # file at once and write at once; the busy timeout serialises them, none fails.
    n_workers, runs_each = 4, 5
    start = threading.Barrier(n_workers)
    errors: list[BaseException] = []
    ids: list[int] = []

    def work(w: int) -> None:
        try:
            start.wait()
            with Store.open(sqlite_url) as s:
                for _ in range(runs_each):
                    ids.append(_record(s, _meta(batch=f"w{w}")))
        except BaseException as exc:  # reported below, with the thread's cause
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(n_workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(ids)) == n_workers * runs_each
    with Store.open(sqlite_url) as s:
        assert len(s.runs()) == n_workers * runs_each
        assert len(s.runs(batch="w2")) == runs_each


# --------------------------------------------------------------------------- errors


def _one_line(exc: pytest.ExceptionInfo[StoreError]) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text and "sqlalche.me" not in text
    return text


def test_error_bad_url() -> None:
    with pytest.raises(StoreError) as exc:
        Store.open("not a url")
    assert _one_line(exc) == (
        "database not a url: cannot open: not a database URL (use sqlite:///PATH or postgresql://...)"
    )


def test_error_unsupported_database_masks_the_password() -> None:
    with pytest.raises(StoreError) as exc:
        Store.open("mysql://trader:hunter2@db.example/oms")
    assert _one_line(exc) == (
        "database mysql://trader:***@db.example/oms: cannot open: "
        "unsupported database 'mysql' (use sqlite or postgresql)"
    )


def test_error_unknown_driver() -> None:
    with pytest.raises(StoreError) as exc:
        Store.open("sqlite+nosuchdriver:///x.db")
    text = _one_line(exc)
    assert text.startswith("database sqlite+nosuchdriver:///x.db: cannot open: no driver")


def test_error_unreachable_postgresql_names_url_without_password() -> None:
    port = _closed_port()
    with pytest.raises(StoreError) as exc:
        Store.open(f"postgresql://postgres:s3cret@127.0.0.1:{port}/test")
    text = _one_line(exc)
    assert text.startswith(
        f"database postgresql://postgres:***@127.0.0.1:{port}/test: cannot open:"
    )
    assert "Connection refused" in text
    assert "s3cret" not in text


def test_error_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    with pytest.raises(StoreError) as exc:
        Store.open(f"sqlite:///{missing / 'runs.db'}")
    assert _one_line(exc) == (
        f"database sqlite:///{missing / 'runs.db'}: cannot open: folder '{missing}' does not exist"
    )
    assert not missing.exists()


def test_error_read_only_database(sqlite_url: str) -> None:
    # SQLite's own read-only mode: file permissions do not stop root, which tests may be.
    Store.open(sqlite_url).close()
    path = make_url(sqlite_url).database
    ro_url = f"sqlite:///file:{path}?mode=ro&uri=true"
    with Store.open(ro_url) as ro:
        assert ro.runs() == []  # reading works
        with pytest.raises(StoreError) as exc:
            _record(ro)
    assert _one_line(exc) == (
        f"database {ro_url}: cannot record a run: attempt to write a readonly database"
    )


def test_error_tables_missing_without_create(sqlite_url: str) -> None:
    with Store.open(sqlite_url, create=False) as s, pytest.raises(StoreError) as exc:
        s.runs()
    assert _one_line(exc) == f"database {sqlite_url}: cannot read: no such table: runs"


def test_error_unknown_run_id(sqlite_url: str) -> None:
    with Store.open(sqlite_url) as s, pytest.raises(StoreError, match="no run with run_id 42"):
        s.run(42)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h:5432/d", "postgresql://u:***@h:5432/d"),
        ("postgresql+psycopg2://u:p%40ss:w@h/d", "postgresql+psycopg2://u:***@h/d"),
        (
            "postgresql://u@h/d?password=pw&sslmode=require",
            "postgresql://u@h/d?password=***&sslmode=require",
        ),
        ("postgresql://u@h/d", "postgresql://u@h/d"),
        ("sqlite:///runs.db", "sqlite:///runs.db"),
        ("garbage://a:b@c", "garbage://a:***@c"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


# --------------------------------------------------------------------------- speed


def test_speed_sanity_news_shock_sized_run(sqlite_url: str) -> None:
    """Prints rows/s for a run of news-shock size (see with -s); asserts only the rows."""
    n = 3_000
    parent = ParentOrder(P1, Symbol("QDI"), Side.SELL, 100 * n, NS0, 3 * 3600 * SEC)
    children = [_child(i, 100) for i in range(n)]
    events: list[Event] = []
    for i, c in enumerate(children):
        events.append(DecisionRecorded(NS0 + i, DecisionId(f"D{i}"), P1, "lit", {"a": 1.0}))
        events.append(_fill(i, c, 100, 99.5, 0))
    sent = {c.child_id: NS0 + i for i, c in enumerate(children)}
    with Store.open(sqlite_url) as s:
        t = time.perf_counter()
        run_id = s.record_run(_meta(), parent, children, sent, events, {"is_bps": 40.0})
        seconds = time.perf_counter() - t
        rows = 2 + 3 * n
        print(
            f"\nrecord_run on SQLite: {rows} rows in {seconds:.3f} s = {rows / seconds:,.0f} rows/s"
        )
        assert len(s.children(run_id)) == len(s.fills(run_id)) == len(s.decisions(run_id)) == n
        assert s.run(run_id).completion == 1.0


# --------------------------------------------------------------------------- bounded calls


def test_bounded_sqlite_call_fails_in_time_when_another_writer_holds_the_file(
    sqlite_url: str,
) -> None:
    import sqlite3

    from sqlalchemy import text

    from router.store import DbTimeouts

    with Store.open(sqlite_url, timeouts=DbTimeouts(statement_s=0.5)) as s:
        with s.engine.connect() as conn:
            busy = conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
        assert busy == 500
        holder = sqlite3.connect(make_url(sqlite_url).database or "", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        t0 = time.monotonic()

        def write() -> None:
            with s.bounded() as conn, conn.begin():
                conn.execute(text("DELETE FROM runs"))

        with pytest.raises(StoreError) as err:
            s._guard("write", write)
        assert time.monotonic() - t0 < 2.0 and err.value.timed_out
        holder.execute("ROLLBACK")
        holder.close()


def test_bounded_postgresql_call_is_cut_off_when_the_link_stalls(pg_url: str) -> None:
    """A stall that TCP cannot see (the proxy's kernel acknowledges every byte): the
    watchdog aborts the call at its deadline; the next call, on a new connection,
    works once the link passes again. The URL's own options (search_path) stay."""
    from sqlalchemy import text

    from router.store import DbTimeouts
    from tests.router.dbproxy import TcpProxy

    u = make_url(pg_url)
    with TcpProxy(u.host or "127.0.0.1", u.port or 5432) as proxy:
        timeouts = DbTimeouts(connect_s=2.0, statement_s=1.0)
        with Store.open(proxy.url(pg_url), timeouts=timeouts) as s:

            def read() -> object:
                with s.bounded() as conn:
                    return conn.execute(text("SELECT count(*) FROM runs")).scalar()

            assert s._guard("read", read) == 0  # the test's own schema (search_path)
            with s.bounded() as conn:
                assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "1s"
            proxy.stall()
            t0 = time.monotonic()
            with pytest.raises(StoreError) as err:
                s._guard("read", read)
            took = time.monotonic() - t0
            assert 0.9 < took < 3.0 and err.value.timed_out, took
            assert "no answer within 1 s" in str(err.value)
            proxy.resume()
            assert s._guard("read", read) == 0


def test_postgresql_refused_fails_fast_and_recovers(pg_url: str) -> None:
    from sqlalchemy import text

    from router.store import DbTimeouts
    from tests.router.dbproxy import TcpProxy

    u = make_url(pg_url)
    timeouts = DbTimeouts(statement_s=1.0)
    with (
        TcpProxy(u.host or "127.0.0.1", u.port or 5432) as proxy,
        Store.open(proxy.url(pg_url), timeouts=timeouts) as s,
    ):

        def read() -> object:
            with s.bounded() as conn:
                return conn.execute(text("SELECT 1")).scalar()

        proxy.refuse()
        t0 = time.monotonic()
        for _ in range(2):  # the pooled connection is reset, then no new one opens
            with pytest.raises(StoreError):
                s._guard("read", read)
        assert time.monotonic() - t0 < 1.0
        proxy.resume()
        assert s._guard("read", read) == 1


def test_a_journal_batch_committed_twice_is_stored_once(sqlite_url: str) -> None:
    """A retried commit (the first went through but its answer was lost) adds nothing."""
    from router.journal import Batch, Journal, SvcFillRow, SvcMetaRow

    journal = Journal.open(sqlite_url)
    try:
        batch = Batch()
        batch.upsert(SvcMetaRow, {"key": "next_parent", "value": 3})
        fill = {
            "exec_id": "P0000001-F1",
            "parent_id": "P0000001",
            "seq": 1,
            "child_id": "P0000001-1",
            "ts_ns": NS0,
            "venue": "LIT1",
            "venue_kind": "lit",
            "qty": 100,
            "price": 100.0,
            "fee": 0.1,
            "liquidity": "taker",
        }
        batch.insert(SvcFillRow, fill)
        journal.commit(batch)
        journal.commit(batch)
        assert [f.exec_id for f in journal.fills("P0000001")] == ["P0000001-F1"]
        assert journal.meta("next_parent") == 3
    finally:
        journal.close()
