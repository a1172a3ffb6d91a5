"""The desk's dealer rows: built a panel at a time by compiled code, they must equal the
readable one-row definition (`models.serving.features.dealer_row`) exactly, follow every event
and axe update at once, and score a candidate for a seat as if it were asked."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from dealers.truth import p_lowest
from models.serving.desk import FLOW_HALF_LIFE_TOD, P_LOWEST_POINTS, DeskState
from models.serving.features import DEALER_FEATURES, MarketContext, dealer_row
from models.serving.inventory import uniform
from models.serving.quotecost import AXE_UNIT, QuoteCostTracker, terms
from router.domain import (
    NANOS_PER_SECOND,
    ChildId,
    ChildOrderFilled,
    DealerId,
    Event,
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

A, B, C, D = (DealerId(x) for x in ("ALPHA", "BRAVO", "CHARLIE", "ZULU"))  # ZULU: no column
ADV = 100_000.0
MARKET = MarketContext(vol_bps=6.0, spread_bps=3.0, tod=0.4, mid=100.0)
COL = {name: j for j, name in enumerate(DEALER_FEATURES)}


def s(t: float) -> int:
    return round(t * NANOS_PER_SECOND)


def rfq(t: float, i: int, side: Side, qty: int, quotes: dict[DealerId, float]) -> list[Event]:
    """One request to every quoting dealer and B, the best quote lifted."""
    rid = RfqId(f"R{i}")
    asked = tuple(dict.fromkeys([*quotes, B]))
    events: list[Event] = [
        RfqRequested(s(t), QuoteRequest(rid, Symbol("QDI"), side, qty, asked, s(10)))
    ]
    for k, (d, px) in enumerate(quotes.items()):
        bid, offer = (None, px) if side is Side.BUY else (px, None)
        events.append(
            QuoteReceived(
                s(t + 1 + k), Quote(f"{rid}-{d}", rid, d, qty, bid, offer, s(t), s(t + 30))
            )
        )
    best = min(quotes, key=lambda d: quotes[d] * side.sign)
    events += [
        RfqClosed(s(t + 9), rid, len(quotes)),
        RfqTraded(s(t + 9.5), rid, best, ChildId(f"{rid}-{best}"), side, qty, quotes[best]),
        RfqEnded(s(t + 9.9), rid, "done", qty),
    ]
    return events


LOG: list[Event] = [
    *rfq(100, 1, Side.BUY, 2_000, {A: 100.05, B: 100.03, C: 100.04}),
    *rfq(200, 2, Side.SELL, 5_000, {A: 99.96, C: 99.98, D: 99.95}),
    *rfq(300, 3, Side.BUY, 1_000, {B: 100.02, D: 100.06}),
]


#: the desk's net requests to each dealer over LOG (units, > 0 buys), by hand: ALPHA and
#: CHARLIE were asked to buy 2,000 and sell 5,000; BRAVO also to buy 1,000; ZULU to sell
#: 5,000 and buy 1,000. All at one time of day (MARKET.tod): nothing decayed.
NET_ASKED = {A: -3_000.0, B: -2_000.0, C: -3_000.0, D: -4_000.0}


def desk_after(log: Sequence[Event] = LOG) -> DeskState:
    desk = DeskState((A, B, C, D), "equities", ADV)
    desk.set_axes({A: 4_000.0, C: -2_500.0})
    for e in log:
        desk.observe(e, lambda ts: 100.0, MARKET if isinstance(e, RfqRequested) else None)
    return desk


def expected_cost(desk: DeskState, d: DealerId, grid: np.ndarray) -> float:
    """The desk's expected quote cost of dealer `d` from its pricing terms at each offset of
    its position (`DeskState.terms_grid`), over its belief now (at MARKET's time), summed
    as the compiled rows do."""
    keep = float(desk._blur_keep(MARKET.tod)[desk.dealers.index(d)])
    belief = desk.positions.current(d, desk.axes.get(d, 0.0))
    total = 0.0
    for b, z in zip(belief, grid, strict=True):
        total += (keep * b + (1.0 - keep) / len(belief)) * desk.costs.predict(d, z)
    return total


def reference_rows(
    desk: DeskState, qty: int, side: Side, panel: Sequence[DealerId]
) -> list[list[float]]:
    """The rows as `dealer_row` defines them, one dealer at a time."""
    t = desk.tracker

    def short(d: DealerId) -> bool:  # a buy larger than its published long
        return side is Side.BUY and desk.axes.get(d, 0.0) < qty

    def counts(d: DealerId, flags: Sequence[bool]) -> tuple[float, float]:
        asked = sum(desk._asked_side.get((d, side.value, f), 0.0) for f in flags)
        return asked, sum(desk._quoted_side.get((d, side.value, f), 0.0) for f in flags)

    def credit(d: DealerId) -> float:
        return desk.p_credit(d, desk.notional.get(d, 0.0) + qty * MARKET.mid)

    def rate(d: DealerId) -> float:
        # the rate of requests like this one (side, short of the axe), shrunk to the
        # side's, shrunk to the overall one; times the chance its credit line allows it
        asked, quoted = counts(d, (False, True))
        side_rate = (quoted + 2.0 * t.response_rate(d)) / (asked + 2.0)
        asked, quoted = counts(d, (short(d),))
        return (quoted + 2.0 * side_rate) / (asked + 2.0) * credit(d)

    def today(d: DealerId) -> tuple[float | None, int]:
        total, n = desk._today.get(d, (0.0, 0))
        return (total / n if n else None), n

    def quality(d: DealerId) -> float:
        mean, _ = today(d)
        return t.distance_bps(d) if mean is None else mean

    def priced(d: DealerId) -> tuple[float, float]:
        # its expected cost and that cost's variance over the desk's belief of where its
        # position lies within its axe's step, blurred by the time since it was kept
        flow = max(NET_ASKED[d] * side.sign, 0.0) / ADV  # on the client's side
        axe = desk.axes.get(d, 0.0)
        grid = desk.terms_grid(qty, side, len(panel), 6.0, False, d, axe, flow)
        keep = float(desk._blur_keep(MARKET.tod)[desk.dealers.index(d)])
        belief = desk.positions.current(d, axe)
        m1 = m2 = 0.0
        for b, z in zip(belief, grid, strict=True):
            p, cost = keep * b + (1.0 - keep) / len(belief), desk.costs.predict(d, z)
            m1 += p * cost
            m2 += p * cost * cost
        return m1, max(m2 - m1 * m1, 0.0)

    def pred(d: DealerId) -> float:
        return priced(d)[0]

    def spread(d: DealerId) -> float:
        sd = max(desk.costs.sd(d), 0.5)
        return float(np.sqrt(sd * sd + priced(d)[1]))

    est = p_lowest(
        np.array([rate(d) for d in panel]),
        np.array([pred(d) for d in panel]),
        np.array([spread(d) for d in panel]),
        n=P_LOWEST_POINTS,
    )
    rows = []
    for i, d in enumerate(panel):
        others = [o for o in panel if o != d]
        mean, n = today(d)
        rows.append(
            dealer_row(
                qty=qty,
                adv=ADV,
                side=side,
                n_dealers=len(panel),
                market=MARKET,
                resp_rate=rate(d),
                hit_rate=t.hit_ratio(d),
                dist_bps=t.distance_bps(d),
                asked=t.history[d].asked,
                axe=desk.axes.get(d, 0.0),
                panel="equities",
                dealer=d,
                others=others,
                position=desk.position.get(d, 0.0),
                notional=desk.notional.get(d, 0.0),
                dist_today=mean,
                quotes_today=n,
                p_credit=credit(d),
                short_axe=short(d),
                rel_dist=quality(d) - min((quality(o) for o in others), default=0.0),
                others_resp=sum(rate(o) for o in others),
                pred_cost=pred(d),
                rel_pred_cost=pred(d) - min((pred(o) for o in others), default=pred(d)),
                p_best_est=float(est[i]),
            )
        )
    return rows


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
@pytest.mark.parametrize("panel", [(A, B, C), (C, D, A, B), (B,)])
def test_rows_equal_the_one_row_definition_exactly(side: Side, panel: tuple[DealerId, ...]) -> None:
    desk = desk_after()
    got = desk.rows(3_000, side, panel, MARKET)
    assert got.shape == (len(panel), len(DEALER_FEATURES))
    np.testing.assert_array_equal(got, np.array(reference_rows(desk, 3_000, side, panel)))


def test_a_candidate_for_the_last_seat_scores_as_if_asked() -> None:
    desk = desk_after()
    got = desk.rows(3_000, Side.SELL, (A, B, C), MARKET, instead_of_last=(D, C))
    np.testing.assert_array_equal(got[:3], desk.rows(3_000, Side.SELL, (A, B, C), MARKET))
    # ZULU in CHARLIE's seat: its row in the panel [ZULU, ALPHA, BRAVO]
    np.testing.assert_array_equal(got[3], desk.rows(3_000, Side.SELL, (D, A, B), MARKET)[0])
    np.testing.assert_array_equal(got[4], desk.rows(3_000, Side.SELL, (C, A, B), MARKET)[0])


def test_rows_change_nothing() -> None:
    desk = desk_after()
    first = desk.rows(3_000, Side.BUY, (A, B, C), MARKET)
    desk.forget()
    np.testing.assert_array_equal(desk.rows(3_000, Side.BUY, (A, B, C), MARKET), first)


def test_the_parents_own_orders_and_fills_leave_the_desk_as_it_was() -> None:
    """Only the RFQ's events teach the desk anything: the rest of the log (most of it)
    neither changes its rows nor sends it to rebuild its dealers' arrays."""
    desk = desk_after()
    first = desk.rows(3_000, Side.BUY, (A, B, C), MARKET)
    others: list[Event] = [
        ChildOrderFilled(
            s(400), ChildId("C9"), VenueId("LIT-A"), Side.BUY, 100, 100.01, 0.1, "maker", 0
        ),
        QuoteIgnored(s(401), RfqId("R1"), A, "late"),
        QuoteResponseSent(s(402), RfqId("R1"), C, QuoteRespType.PASS),
    ]
    for e in others:
        desk.observe(e, lambda ts: 100.0)
        assert not desk._stale
    np.testing.assert_array_equal(desk.rows(3_000, Side.BUY, (A, B, C), MARKET), first)
    # and an RFQ's event does
    desk.observe(LOG[0], lambda ts: 100.0, MARKET)
    assert desk._stale


def test_rows_follow_each_event_and_axe_update_at_once() -> None:
    desk = desk_after(LOG[:-6])  # R3 not yet seen
    before = desk.rows(1_000, Side.BUY, (B, D), MARKET)
    for e in LOG[-6:]:
        desk.observe(e, lambda ts: 100.0, MARKET if isinstance(e, RfqRequested) else None)
    after = desk.rows(1_000, Side.BUY, (B, D), MARKET)
    assert (after[:, COL["log_asked"]] > before[:, COL["log_asked"]]).all()
    assert after[0, COL["notional_m"]] > before[0, COL["notional_m"]]  # BRAVO traded R3
    np.testing.assert_array_equal(after, np.array(reference_rows(desk, 1_000, Side.BUY, (B, D))))
    desk.set_axe(D, 9_000.0)
    assert desk.rows(1_000, Side.BUY, (B, D), MARKET)[1, COL["axe_adv"]] == pytest.approx(0.09)
    desk.set_axes({D: -1_000.0})
    assert desk.rows(1_000, Side.BUY, (B, D), MARKET)[1, COL["axe_adv"]] == pytest.approx(-0.01)


def test_usual_order_is_the_heuristics_score_and_follows_events() -> None:
    desk = desk_after(LOG[:-6])
    t = desk.tracker

    def by_score() -> tuple[DealerId, ...]:
        return tuple(sorted((A, B, C, D), key=lambda d: (-t.score(d), d)))

    assert desk.usual() == by_score()
    before = desk.usual()
    for e in LOG[-6:]:
        desk.observe(e, lambda ts: 100.0, MARKET if isinstance(e, RfqRequested) else None)
    assert desk.usual() == by_score() != before


def test_indicators_of_a_dealer_without_a_column() -> None:
    row = desk_after().rows(1_000, Side.BUY, (D, A), MARKET)
    assert row[0, COL["dealer_ALPHA"]] == 0.0 and row[0, COL["with_ALPHA"]] == 1.0
    assert sum(row[0, COL[f"dealer_{x}"]] for x in ("ALPHA", "BRAVO", "CHARLIE")) == 0.0
    assert row[1, COL["dealer_ALPHA"]] == 1.0 and row[1, COL["panel_equities"]] == 1.0


def test_response_rates_are_kept_by_side_and_by_short_of_the_axe() -> None:
    desk = desk_after()
    # R1, a buy of 2_000: ALPHA's long 4_000 covers it, BRAVO and CHARLIE have none;
    # R3, a buy of 1_000 that CHARLIE was not asked for: BRAVO quoted, short again
    assert desk._asked_side == {
        (A, "buy", False): 1.0,
        (B, "buy", True): 2.0,
        (C, "buy", True): 1.0,
        (A, "sell", False): 1.0,
        (B, "sell", False): 1.0,
        (C, "sell", False): 1.0,
        (D, "sell", False): 1.0,
        (D, "buy", True): 1.0,
    }
    assert desk._quoted_side[B, "buy", True] == 2.0
    assert (B, "sell", False) not in desk._quoted_side  # asked in R2, did not quote
    rows = desk.rows(3_000, Side.BUY, (A, B), MARKET)
    assert rows[:, COL["short_axe"]].tolist() == [0.0, 1.0]  # 4_000 long covers 3_000
    assert desk.rows(5_000, Side.BUY, (A,), MARKET)[0, COL["short_axe"]] == 1.0
    assert desk.rows(5_000, Side.SELL, (A,), MARKET)[0, COL["short_axe"]] == 0.0


def _declines(
    t: float, i: int, qty: int, reasons: dict[DealerId, QuoteRejectReason]
) -> list[Event]:
    rid = RfqId(f"C{i}")
    request = QuoteRequest(rid, Symbol("QDI"), Side.SELL, qty, tuple(reasons), s(10))
    events: list[Event] = [RfqRequested(s(t), request)]
    events += [QuoteRequestRejected(s(t + 1), rid, d, r) for d, r in reasons.items()]
    return [*events, RfqEnded(s(t + 9.9), rid, "done", 0)]


def test_credit_lines_are_bracketed_by_declines_and_answers() -> None:
    desk = desk_after()
    notional_b = desk.notional[B]
    assert desk.p_credit(B, 1e12) == 1.0  # no credit decline seen: no line known
    log = [
        # 10_000 more at 100: BRAVO passes (credit fits), then declines 30_000 for credit
        *_declines(400, 1, 10_000, {B: QuoteRejectReason.PASS}),
        *_declines(500, 2, 30_000, {B: QuoteRejectReason.INSUFFICIENT_CREDIT}),
    ]
    asked_before = sum(v for (d, *_), v in desk._asked_side.items() if d == B)
    for e in log:
        desk.observe(e, lambda ts: 100.0, MARKET if isinstance(e, RfqRequested) else None)
    fits, short = notional_b + 1_000_000.0, notional_b + 3_000_000.0
    assert desk.p_credit(B, fits) == 1.0
    assert desk.p_credit(B, short) == 0.0
    assert desk.p_credit(B, 0.5 * (fits + short)) == pytest.approx(0.5)
    # the pass counts as an answer that was no quote; the credit decline is left out
    asked_after = sum(v for (d, *_), v in desk._asked_side.items() if d == B)
    assert asked_after == asked_before + 1.0
    # a request of 20_000 at 100 is halfway into the bracket: the rate halves
    row = desk.rows(20_000, Side.SELL, (B,), MARKET)[0]
    assert row[COL["p_credit"]] == pytest.approx(0.5)
    for qty in (20_000, 40_000):  # inside the bracket and past it, to the bit
        got = desk.rows(qty, Side.SELL, (B, A), MARKET)
        np.testing.assert_array_equal(got, reference_rows(desk, qty, Side.SELL, (B, A)))
    full = desk.rows(5_000, Side.SELL, (B,), MARKET)[0]
    assert full[COL["p_credit"]] == 1.0
    assert row[COL["resp_rate"]] == pytest.approx(0.5 * full[COL["resp_rate"]])
    # a new day: the notional starts again, the line is still known
    desk.new_day()
    assert desk.p_credit(B, 0.0 + 20_000 * 100.0) < 1.0
    assert desk.rows(10_000, Side.SELL, (B,), MARKET)[0, COL["p_credit"]] == 1.0
    assert desk.p_credit(B, short) == 0.0


def test_two_sided_rows_compare_prices_on_the_clients_side() -> None:
    desk = desk_after()
    buy = desk.rows(3_000, Side.BUY, (A, C), MARKET)
    two = desk.rows(3_000, Side.BUY, (A, C), MARKET, two_sided=True)
    assert two[:, COL["two_sided"]].tolist() == [1.0, 1.0]
    assert two[:, COL["side"]].tolist() == [1.0, 1.0]
    # the axes still count for the client's side: ALPHA is long, CHARLIE short
    np.testing.assert_array_equal(two[:, COL["axe_adv"]], buy[:, COL["axe_adv"]])
    # its response rates are those of two-sided requests (none seen: the prior)
    assert (two[:, COL["resp_rate"]] != buy[:, COL["resp_rate"]]).all()


def test_a_two_sided_request_teaches_the_prices_of_the_side_traded() -> None:
    desk = DeskState((A, B), "equities", ADV)
    desk.set_axes({A: 4_000.0})
    rid = RfqId("T1")
    log: list[Event] = [
        RfqRequested(s(10), QuoteRequest(rid, Symbol("QDI"), None, 2_000, (A, B), s(10))),
        QuoteReceived(s(11), Quote("T1-A", rid, A, 2_000, 99.97, 100.05, s(11), s(40))),
        QuoteReceived(s(12), Quote("T1-B", rid, B, 2_000, 99.96, 100.03, s(12), s(40))),
        RfqClosed(s(19), rid, 2),
        RfqTraded(s(19.5), rid, A, ChildId("T1-A"), Side.SELL, 2_000, 99.97),
        RfqEnded(s(19.9), rid, "done", 2_000),
    ]
    for e in log:
        desk.observe(e, lambda ts: 100.0, MARKET if isinstance(e, RfqRequested) else None)
    # the client sold: bids cost 3 and 4 bps; ALPHA's long axe was against a seller. The
    # terms are their expectation over each position within its axe's step (even odds
    # before any quote), on the side traded; the prior pricing (10 bps whatever the
    # position) knew no spread of its predictions
    by_hand = QuoteCostTracker()
    za = uniform() @ desk.terms_grid(2_000, Side.SELL, 2, 6.0, True, A, 4_000.0, 0.0)
    zb = uniform() @ desk.terms_grid(2_000, Side.SELL, 2, 6.0, True, B, 0.0, 0.0)
    assert za[1] == pytest.approx(-4_000.0 / ADV * AXE_UNIT)  # the axe term, even odds
    by_hand.observe_rfq([(A, za, 3.0), (B, zb, 4.0)], known_var=[0.0, 0.0])
    for d, z in ((A, za), (B, zb)):
        assert desk.costs.predict(d, z) == pytest.approx(by_hand.predict(d, z), abs=1e-9)
        assert desk.costs.sd(d) == pytest.approx(by_hand.sd(d))


def test_the_desk_remembers_its_net_requests_to_each_dealer_and_forgets_in_half_an_hour() -> None:
    desk = desk_after()
    flows = desk.flows(MARKET.tod)
    assert flows == {d: (max(n, 0.0) / ADV, max(-n, 0.0) / ADV) for d, n in NET_ASKED.items()}
    half_hour_later = MARKET.tod + FLOW_HALF_LIFE_TOD
    assert desk.flows(half_hour_later)[A] == pytest.approx((0.0, 1_500.0 / ADV))
    # the flow prices a request on the side asked for, not the other
    sell = desk.rows(3_000, Side.SELL, (A, C), MARKET)
    buy = desk.rows(3_000, Side.BUY, (A, C), MARKET)
    z_sell = desk.terms_grid(3_000, Side.SELL, 2, 6.0, False, A, 4_000.0, 3_000.0 / ADV)
    assert sell[0, COL["pred_cost_bps"]] == pytest.approx(expected_cost(desk, A, z_sell))
    z_buy = desk.terms_grid(3_000, Side.BUY, 2, 6.0, False, A, 4_000.0, 0.0)
    assert buy[0, COL["pred_cost_bps"]] == pytest.approx(expected_cost(desk, A, z_buy))
    # a two-sided request tells no one the side: the memory does not change
    rid = RfqId("T9")
    two = RfqRequested(s(400), QuoteRequest(rid, Symbol("QDI"), None, 9_000, (A, B), s(10)))
    desk.observe(two, lambda ts: 100.0, MARKET)
    assert desk.flows(MARKET.tod) == flows
    desk.new_day()
    assert desk.flows(MARKET.tod) == {}


def test_quotes_tell_the_desk_where_a_dealer_stands_within_its_axe() -> None:
    # both dealers have priced by their position for a while: 4 bps cheaper per percent
    # of ADV long, for a buying client. Then, both showing no axe, ALPHA offers 4 bps
    # below BRAVO: the desk believes ALPHA longer than BRAVO, within the step
    rng = np.random.default_rng(7)
    costs = QuoteCostTracker()
    for _ in range(400):
        for d in (A, B):
            axe_side = float(rng.uniform(-0.05, 0.05))
            z = terms(axe_side, 0.03, 2, 6.0, False)
            costs.observe(d, z, 8.0 - 4.0 * axe_side * 100 + float(rng.normal(0.0, 0.5)))
    desk = DeskState((A, B), "equities", ADV, costs=costs)
    desk.set_axes({A: 0.0, B: 0.0})
    for e in rfq(100, 1, Side.BUY, 3_000, {A: 100.06, B: 100.10}):
        desk.observe(e, lambda ts: 100.0, MARKET if isinstance(e, RfqRequested) else None)
    grid = desk.positions.grid
    # ALPHA traded 3,000 since: its belief is shifted by what it sold, against the feed
    desk.set_axe(A, -2_500.0)
    a = desk.positions.current(A, -2_500.0) @ grid - 2_500.0  # vs where it was
    b = desk.positions.current(B, 0.0) @ grid
    assert a + 3_000.0 > 300.0 > -300.0 > b
