"""Dealer training rows replayed from RFQ logs: one row per (request, dealer), labels as
the module defines them, and no look-ahead (a request's features are the same whether
or not anything after it is in the log)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

import models.training.dealer_data as dealer_data
from dealers.config import load_panel
from dealers.panel import HeuristicPanel
from dealers.stream import RfqDay, run_rfq_day
from dealers.truth import DealerTruth
from models.serving.desk import DeskState
from models.serving.features import DEALER_FEATURES, HIT_FEATURES
from models.serving.quotecost import QuoteCostTracker, terms
from models.training.dealer_data import SESSION_S, DaySpec, DealerRows, generate, rows_from_log
from router.domain import (
    NANOS_PER_SECOND,
    ChildId,
    DealerId,
    Event,
    LastLookRejected,
    Quote,
    QuoteReceived,
    QuoteRejectReason,
    QuoteRequest,
    QuoteRequestRejected,
    RfqClosed,
    RfqEnded,
    RfqId,
    RfqRequested,
    RfqTraded,
    Side,
    Symbol,
)
from router.tca import PricePath
from simulators.scenario import SESSION_OPEN_S, load_scenario

A, B, C = DealerId("ALPHA"), DealerId("BRAVO"), DealerId("CHARLIE")
ADV = 100_000.0
START_TOD_S = SESSION_OPEN_S + 1_800.0  # 10:00
# a flat screen: mid 100, spread 2 bps, no volatility
PATH = PricePath(np.array([0.0, 5_000.0]), np.array([99.99, 99.99]), np.array([100.01, 100.01]))


def s(t: float) -> int:
    return round(t * NANOS_PER_SECOND)


# the axe feed: CHARLIE long before everything, BRAVO short before R4, BRAVO long again
# right after R4 was sent (R4 must not see it)
AXES = [(s(50), C, 5_000.0), (s(350), B, -3_000.0), (s(405), B, 8_000.0)]
LIMIT = s(10)
R1, R2, R3, R4 = (RfqId(f"R{i}") for i in range(1, 5))


def req(t: float, rfq: RfqId, side: Side | None, qty: int, *dealers: DealerId) -> RfqRequested:
    return RfqRequested(s(t), QuoteRequest(rfq, Symbol("QDI"), side, qty, dealers, LIMIT))


def quote(
    t: float, rfq: RfqId, dealer: DealerId, bid: float | None, offer: float | None
) -> QuoteReceived:
    return QuoteReceived(
        s(t), Quote(f"{rfq}-{dealer}", rfq, dealer, 2_000, bid, offer, s(t), s(t + 30))
    )


def traded(t: float, rfq: RfqId, dealer: DealerId, side: Side, qty: int, px: float) -> RfqTraded:
    return RfqTraded(s(t), rfq, dealer, ChildId(f"{rfq}-{dealer}"), side, qty, px)


LOG: list[Event] = [
    # R1: client buys 1_000; BRAVO's offer is best and is lifted, CHARLIE declines
    req(100, R1, Side.BUY, 1_000, A, B, C),
    quote(101, R1, A, None, 100.05),
    quote(102, R1, B, None, 100.03),
    QuoteRequestRejected(s(103), R1, C, QuoteRejectReason.PASS),
    RfqClosed(s(110), R1, 2),
    traded(110.1, R1, B, Side.BUY, 1_000, 100.03),
    RfqEnded(s(110.2), R1, "done", 1_000),
    # R2: two-sided, both quote, nothing trades: the client's side stays unknown
    req(200, R2, None, 1_000, A, B),
    quote(201, R2, A, 99.95, 100.05),
    quote(202, R2, B, 99.96, 100.04),
    RfqClosed(s(210), R2, 2),
    RfqEnded(s(210.2), R2, "passed", 0),
    # R3: two-sided, the client sells 2_000 on ALPHA's bid, the best: the side is known
    req(300, R3, None, 2_000, A, C),
    quote(301, R3, A, 99.97, 100.06),
    quote(302, R3, C, 99.95, 100.02),
    RfqClosed(s(310), R3, 2),
    traded(310.1, R3, A, Side.SELL, 2_000, 99.97),
    RfqEnded(s(310.2), R3, "done", 2_000),
    # R4: client sells 2_000, nobody quotes
    req(400, R4, Side.SELL, 2_000, B, C),
    RfqClosed(s(410), R4, 0),
    RfqEnded(s(410.1), R4, "expired", 0),
]
TRUTH = [DealerTruth(R1, A, s(100), 0.9, 0.3, 0.2), DealerTruth(R2, B, s(200), 0.7, 0.4, 0.1)]
COL = {name: j for j, name in enumerate(DEALER_FEATURES)}


def desk() -> DeskState:
    return DeskState((A, B, C), "equities", ADV)


def replay(
    events: Sequence[Event],
    path: PricePath = PATH,
    axes: Sequence[tuple[int, DealerId, float]] = AXES,
    truth: Sequence[DealerTruth] = TRUTH,
    state: DeskState | None = None,
) -> DealerRows:
    return rows_from_log(
        events,
        path,
        desk=state if state is not None else desk(),
        start_tod_s=START_TOD_S,
        axe_log=axes,
        day=3,
        truth=truth,
    )


@pytest.fixture(scope="module")
def rows() -> DealerRows:
    return replay(LOG)


def feat(rows: DealerRows, i: int, name: str) -> float:
    return float(rows.x[i, COL[name]])


# rows in the order the RFQs ended, each in its panel's order
R1A, R1B, R1C, R2A, R2B, R3A, R3C, R4B, R4C = range(9)


# ------------------------------------------------------------------------------ labels


def test_one_row_per_request_and_dealer(rows: DealerRows) -> None:
    assert rows.x.shape == (9, len(DEALER_FEATURES))
    assert rows.day.tolist() == [3] * 9
    dealer_of = [A, B, C, A, B, A, C, B, C]
    for i, d in enumerate(dealer_of):
        assert [n for n in COL if n.startswith("dealer_") and rows.x[i, COL[n]]] == [f"dealer_{d}"]
    assert rows.x[:, COL["n_dealers"]].tolist() == [3, 3, 3, 2, 2, 2, 2, 2, 2]
    assert rows.x[:, COL["side"]].tolist() == [1, 1, 1, 0, 0, 0, 0, -1, -1]


def test_respond_label(rows: DealerRows) -> None:
    # a quote within the limit; CHARLIE declined R1, nobody answered R4
    assert rows.respond.tolist() == [1, 1, 0, 1, 1, 1, 1, 0, 0]


def test_best_label(rows: DealerRows) -> None:
    best = rows.best.tolist()
    # R1 buy: BRAVO's 100.03 offer beats ALPHA's 100.05
    assert best[R1A : R1C + 1] == [0.0, 1.0, 0.0]
    # R2 two-sided, nothing traded: unknown
    assert math.isnan(best[R2A])
    assert math.isnan(best[R2B])
    # R3 two-sided but the client sold: ALPHA's 99.97 bid beats CHARLIE's 99.95
    assert best[R3A : R3C + 1] == [1.0, 0.0]
    # R4 side known, no quote: nobody is best
    assert best[R4B : R4C + 1] == [0.0, 0.0]


def test_hit_rows_are_the_priced_quotes(rows: DealerRows) -> None:
    assert rows.x_hit.shape == (4, len(HIT_FEATURES))
    assert rows.day_hit.tolist() == [3] * 4
    # R1 ALPHA, R1 BRAVO, R3 ALPHA, R3 CHARLIE (R2's side is unknown: no hit rows)
    assert rows.hit.tolist() == [0.0, 1.0, 1.0, 0.0]
    np.testing.assert_array_equal(rows.x_hit[:, : len(DEALER_FEATURES)], rows.x[[0, 1, 5, 6]])
    tail = rows.x_hit[:, len(DEALER_FEATURES) :]
    # quote_bps = side * (price - mid) / mid * 1e4 at mid 100: 100.05 -> 5, 100.03 -> 3;
    # selling on bids 99.97 -> 3, 99.95 -> 5; then rank and number of priced quotes
    np.testing.assert_allclose(
        tail, [[5.0, 2.0, 2.0], [3.0, 1.0, 2.0], [3.0, 1.0, 2.0], [5.0, 2.0, 2.0]], atol=1e-9
    )


def test_ties_go_to_the_earlier_quote_and_a_last_look_refusal_is_no_hit() -> None:
    log: list[Event] = [
        req(100, R1, Side.BUY, 1_000, B, A, C),
        quote(101, R1, A, None, 100.02),  # ALPHA first at 100.02
        quote(102, R1, B, None, 100.02),  # BRAVO ties, later (though first in the panel)
        quote(103, R1, C, None, 100.04),
        RfqClosed(s(110), R1, 3),
        LastLookRejected(s(110.1), R1, A, ChildId("R1-ALPHA"), "price moved"),
        traded(110.2, R1, B, Side.BUY, 1_000, 100.02),
        RfqEnded(s(110.3), R1, "done", 1_000),
    ]
    rows = replay(log)
    assert rows.respond.tolist() == [1.0, 1.0, 1.0]
    assert rows.best.tolist() == [0.0, 1.0, 0.0]  # rows in panel order: BRAVO, ALPHA, CHARLIE
    # hit rows in panel order too: BRAVO traded, ALPHA refused its hit in last look
    assert rows.hit.tolist() == [1.0, 0.0, 0.0]
    # quote_rank: BRAVO 2, ALPHA 1, CHARLIE 3, of 3 priced quotes
    assert rows.x_hit[:, -2].tolist() == [2.0, 1.0, 3.0]
    assert rows.x_hit[:, -1].tolist() == [3.0, 3.0, 3.0]
    np.testing.assert_allclose(rows.x_hit[:, -3], [2.0, 2.0, 4.0], atol=1e-9)


def test_oracle_rides_along(rows: DealerRows) -> None:
    assert rows.oracle_respond[R1A] == 0.9
    assert rows.oracle_best[R1A] == 0.3  # R1 is a buy: p_best_buy
    assert rows.oracle_respond[R2B] == 0.7
    assert math.isnan(rows.oracle_best[R2B])  # side unknown
    others = [i for i in range(9) if i not in (R1A, R2B)]
    assert np.all(np.isnan(rows.oracle_respond[others]))


# ---------------------------------------------------------------------------- features


def test_first_request_sees_only_priors(rows: DealerRows) -> None:
    # R1's own quotes, trade and end come after it: its features are the priors
    for i in (R1A, R1B, R1C):
        assert feat(rows, i, "resp_rate") == pytest.approx(0.8)
        assert feat(rows, i, "hit_rate") == pytest.approx(0.25)
        assert feat(rows, i, "dist_bps") == pytest.approx(5.0)
        assert feat(rows, i, "log_asked") == 0.0
        assert feat(rows, i, "dist_today_bps") == pytest.approx(5.0)
        assert feat(rows, i, "log_quotes_today") == 0.0
        assert feat(rows, i, "rel_dist_bps") == pytest.approx(0.0)
        assert feat(rows, i, "others_resp") == pytest.approx(1.6)
        assert feat(rows, i, "pos_side") == feat(rows, i, "notional_m") == 0.0
        # an unseen dealer's pricing: the prior 10 bps
        assert feat(rows, i, "pred_cost_bps") == pytest.approx(10.0)
        assert feat(rows, i, "rel_pred_cost_bps") == pytest.approx(0.0)
        # three alike dealers answering w.p. 0.8: (1 - 0.2^3) / 3 = 0.330667 each
        assert feat(rows, i, "p_best_est") == pytest.approx(0.992 / 3, abs=2e-3)
        assert feat(rows, i, "log_size_adv") == pytest.approx(math.log(0.01))
        assert feat(rows, i, "spread_bps") == pytest.approx(2.0)
        assert feat(rows, i, "vol_bps") == 0.0
        assert feat(rows, i, "tod") == pytest.approx(1_900.0 / SESSION_S)  # 10:01:40
    # CHARLIE's long axe, client buys: +5_000 / 100_000
    assert feat(rows, R1C, "axe_adv") == pytest.approx(0.05)
    assert feat(rows, R1A, "axe_adv") == 0.0


def test_second_request_sees_the_first(rows: DealerRows) -> None:
    # after R1: each asked once; ALPHA and BRAVO quoted, BRAVO won; ALPHA's offer was
    # (100.05 - 100.03) / 100.03 * 1e4 = 1.9994 bps behind; priors weigh 2
    gap = (100.05 - 100.03) / 100.03 * 1e4
    assert feat(rows, R2A, "resp_rate") == pytest.approx((1 + 2 * 0.8) / (1 + 2))
    assert feat(rows, R2B, "resp_rate") == pytest.approx((1 + 2 * 0.8) / (1 + 2))
    assert feat(rows, R2A, "hit_rate") == pytest.approx((0 + 2 * 0.25) / (1 + 2))
    assert feat(rows, R2B, "hit_rate") == pytest.approx((1 + 2 * 0.25) / (1 + 2))
    assert feat(rows, R2A, "dist_bps") == pytest.approx((gap + 2 * 5.0) / (1 + 2))
    assert feat(rows, R2B, "dist_bps") == pytest.approx((0 + 2 * 5.0) / (1 + 2))
    assert feat(rows, R2A, "log_asked") == pytest.approx(math.log(2.0))
    assert feat(rows, R2A, "dist_today_bps") == pytest.approx(gap)
    assert feat(rows, R2B, "dist_today_bps") == pytest.approx(0.0)
    assert feat(rows, R2A, "log_quotes_today") == pytest.approx(math.log(2.0))
    assert feat(rows, R2A, "rel_dist_bps") == pytest.approx(gap)
    assert feat(rows, R2B, "rel_dist_bps") == pytest.approx(-gap)
    # BRAVO sold 1_000 at 100.03 to the desk; R2 is two-sided so no position sign
    assert feat(rows, R2B, "notional_m") == pytest.approx(0.10003)
    assert feat(rows, R2B, "pos_side") == 0.0
    assert feat(rows, R2A, "notional_m") == 0.0


def test_pricing_features_learn_from_earlier_quotes(rows: DealerRows) -> None:
    # the same regression fed by hand: R1's quotes cost ALPHA 5 bps, BRAVO 3 bps, with the
    # terms of R1 (no axe, 1% of ADV, 3 dealers, flat vol, one-sided)
    costs = QuoteCostTracker()
    z1 = terms(0.0, 0.01, 3, 0.0, False)
    costs.observe(A, z1, 5.0)
    costs.observe(B, z1, 3.0)
    z2 = terms(0.0, 0.01, 2, 0.0, True)
    pa, pb = costs.predict(A, z2), costs.predict(B, z2)
    assert pb < pa < 10.0
    assert feat(rows, R2A, "pred_cost_bps") == pytest.approx(pa)
    assert feat(rows, R2B, "pred_cost_bps") == pytest.approx(pb)
    assert feat(rows, R2A, "rel_pred_cost_bps") == pytest.approx(pa - pb)
    assert feat(rows, R2B, "rel_pred_cost_bps") == pytest.approx(pb - pa)
    # the cheaper expected quote is the likelier best
    assert feat(rows, R2B, "p_best_est") > feat(rows, R2A, "p_best_est")


def test_unknown_side_teaches_no_distances(rows: DealerRows) -> None:
    # R2 traded nothing two-sided: today's distances still only hold R1's
    gap = (100.05 - 100.03) / 100.03 * 1e4
    assert feat(rows, R3A, "dist_today_bps") == pytest.approx(gap)
    assert feat(rows, R3A, "log_quotes_today") == pytest.approx(math.log(2.0))
    # CHARLIE has no price history: the prior 5 bps; ALPHA ahead of it by 5 - gap
    assert feat(rows, R3C, "dist_bps") == pytest.approx(5.0)
    assert feat(rows, R3A, "rel_dist_bps") == pytest.approx(gap - 5.0)
    assert feat(rows, R3C, "rel_dist_bps") == pytest.approx(5.0 - gap)
    # ALPHA asked in R1 and R2 (decay 0.995 per request): 0.995 + 1 = 1.995
    assert feat(rows, R3A, "log_asked") == pytest.approx(math.log1p(1.995))
    # the response rate is that of requests like R3: R2 asked ALPHA two-sided as R3
    # does, for more than its (empty) long, and it quoted; the rate of two-sided
    # requests is the prior, of weight 2, and the all-sides rate (1.995 + 1.6) /
    # (1.995 + 2) is that one's
    overall = (1.995 + 1.6) / (1.995 + 2)
    side_rate = (1.0 + 2.0 * overall) / (1.0 + 2.0)
    assert feat(rows, R3A, "short_axe") == 1.0
    assert feat(rows, R3A, "resp_rate") == pytest.approx((1.0 + 2.0 * side_rate) / (1.0 + 2.0))


def test_two_sided_rows_take_the_clients_side_from_its_order_records() -> None:
    # without them the side of R2 and R3 is unknown (0); with them, the client's own
    got = rows_from_log(
        LOG,
        PATH,
        desk=desk(),
        start_tod_s=START_TOD_S,
        axe_log=AXES,
        day=3,
        sides={R2: Side.BUY, R3: Side.SELL},
    )
    assert got.x[:, COL["side"]].tolist() == [1, 1, 1, 1, 1, -1, -1, -1, -1]
    assert got.x[:, COL["two_sided"]].tolist() == [0, 0, 0, 1, 1, 1, 1, 0, 0]
    # the labels do not change: they come from what followed
    np.testing.assert_array_equal(got.respond, replay(LOG).respond)


def test_axes_and_positions_signed_by_the_client_side(rows: DealerRows) -> None:
    # R4, client sells: BRAVO's short axe (-3_000, published at 350 s) is in its favour:
    # +0.03; its later long axe (405 s, after R4 was sent) is not seen
    assert feat(rows, R4B, "axe_adv") == pytest.approx(0.03)
    # CHARLIE long 5_000 while the client sells: against it
    assert feat(rows, R4C, "axe_adv") == pytest.approx(-0.05)
    # BRAVO is short 1_000 from R1 and the client sells: -0.01 * -1 = +0.01
    assert feat(rows, R4B, "pos_side") == pytest.approx(0.01)
    assert feat(rows, R4B, "notional_m") == pytest.approx(0.10003)
    assert feat(rows, R4C, "pos_side") == 0.0
    assert feat(rows, R4B, "log_size_adv") == pytest.approx(math.log(0.02))
    # R3's sale priced CHARLIE's bid (99.97 - 99.95) / 99.97 * 1e4 behind ALPHA's today
    assert feat(rows, R4C, "dist_today_bps") == pytest.approx((99.97 - 99.95) / 99.97 * 1e4)
    assert feat(rows, R4B, "dist_today_bps") == pytest.approx(0.0)


def test_a_new_day_forgets_todays_trades_but_not_the_history() -> None:
    state = desk()
    replay(LOG, state=state)
    second = replay(LOG[7:12], state=state)  # R2 again, the next day
    first = replay(LOG[7:12])
    # no trade today yet: BRAVO's position and notional start from zero
    assert second.x[1, COL["notional_m"]] == 0.0
    assert second.x[1, COL["log_quotes_today"]] == 0.0
    # but the decayed history of four RFQs carries over
    assert second.x[1, COL["log_asked"]] > first.x[1, COL["log_asked"]]


# ------------------------------------------------------------------------- look-ahead


def _truncate(
    events: Sequence[Event],
    path: PricePath,
    axes: Sequence[tuple[int, DealerId, float]],
    k: int,
) -> tuple[list[Event], PricePath, list[tuple[int, DealerId, float]]]:
    """The log as it stood when events[k] (a request) was sent: nothing after it, not
    even the screen or the axe feed; then the request's end, so that its rows come out."""
    e = events[k]
    assert isinstance(e, RfqRequested)
    keep = path.times_s <= e.ts_ns / NANOS_PER_SECOND
    cut_path = PricePath(path.times_s[keep], path.bid[keep], path.ask[keep])
    cut_axes = [a for a in axes if a[0] <= e.ts_ns]
    end = RfqEnded(e.ts_ns + 1, e.request.rfq_id, "expired", 0)
    return [*events[: k + 1], end], cut_path, cut_axes


def _rows_of(events: Sequence[Event], rows: DealerRows, rfq: RfqId) -> np.ndarray:
    """The feature rows of `rfq` in a replay: rows come out in the order RFQs end."""
    panels = {e.request.rfq_id: e.request.dealers for e in events if isinstance(e, RfqRequested)}
    start = 0
    for e in events:
        if isinstance(e, RfqEnded):
            n = len(panels[e.rfq_id])
            if e.rfq_id == rfq:
                return rows.x[start : start + n]
            start += n
    raise AssertionError(f"{rfq} never ended")


@pytest.mark.parametrize("k", [0, 7, 12, 18])
def test_hand_log_features_ignore_everything_after_the_request(rows: DealerRows, k: int) -> None:
    request = LOG[k]
    assert isinstance(request, RfqRequested)
    events, path, axes = _truncate(LOG, PATH, AXES, k)
    cut = replay(events, path, axes)
    rfq = request.request.rfq_id
    np.testing.assert_array_equal(_rows_of(events, cut, rfq), _rows_of(LOG, rows, rfq))


@dataclass
class _Day:
    day: RfqDay
    adv: float
    start_tod_s: float


@pytest.fixture(scope="module")
def sim_day() -> _Day:
    sc = load_scenario("calm")
    panel = load_panel("equities")
    day = run_rfq_day(
        sc,
        panel,
        11,
        25,
        HeuristicPanel(panel.ids, explore=0.3),
        panel_size=(1, 2, 3, 4, 6),
        two_sided_share=0.3,
    )
    return _Day(day, float(sc.instrument.adv), sc.start_tod_s)


def test_simulated_day_features_ignore_everything_after_each_request(sim_day: _Day) -> None:
    day = sim_day.day

    def run(
        events: Sequence[Event], path: PricePath, axes: Sequence[tuple[int, DealerId, float]]
    ) -> DealerRows:
        state = DeskState(day.panel.ids, day.panel.name, sim_day.adv)
        return rows_from_log(
            events, path, desk=state, start_tod_s=sim_day.start_tod_s, axe_log=axes, day=0
        )

    full = run(day.events, day.path, day.axe_log)
    requests = {k: e.request for k, e in enumerate(day.events) if isinstance(e, RfqRequested)}
    assert len(requests) == 25
    assert full.x.shape[0] == sum(len(r.dealers) for r in requests.values())
    for k, r in requests.items():
        rfq = r.rfq_id
        events, path, axes = _truncate(day.events, day.path, day.axe_log, k)
        cut = run(events, path, axes)
        np.testing.assert_array_equal(
            _rows_of(events, cut, rfq), _rows_of(day.events, full, rfq), err_msg=str(rfq)
        )


def test_simulated_day_rows_are_consistent(sim_day: _Day) -> None:
    day = sim_day.day
    state = DeskState(day.panel.ids, day.panel.name, sim_day.adv)
    rows = rows_from_log(
        day.events,
        day.path,
        desk=state,
        start_tod_s=sim_day.start_tod_s,
        axe_log=day.axe_log,
        day=0,
        truth=day.truth,
    )
    assert set(np.unique(rows.respond)) <= {0.0, 1.0}
    one_sided = rows.x[:, COL["side"]] != 0.0
    # a one-sided request always has a known side; unknown only when two-sided
    assert not np.any(np.isnan(rows.best[one_sided]))
    assert set(np.unique(rows.best[~np.isnan(rows.best)])) <= {0.0, 1.0}
    # a best quote is a quote
    assert np.all(rows.respond[rows.best == 1.0] == 1.0)
    # every quote of a one-sided request is priced: one hit row each, at least
    assert len(rows.hit) >= int(np.sum(rows.respond[one_sided]))
    assert not np.any(np.isnan(rows.oracle_respond))  # the simulator knows every pair


# ----------------------------------------------------------------------------- generate


def test_generate_rows_by_day_without_look_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dealer_data, "RFQS_PER_DAY", 12)
    first = [DaySpec("calm", 5)]
    alone = generate(first)
    seen: list[tuple[int, int]] = []
    days = [*first, DaySpec("calm", 6), DaySpec("illiquid-bond", 7)]
    both = generate(days, lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]  # progress: done, total
    assert set(both.day.tolist()) == {0, 1, 2}
    assert np.all(np.diff(both.day) >= 0)  # rows in day order
    assert np.all(np.diff(both.day_hit) >= 0)
    # day 0's rows do not change when later days follow it
    d0 = both.day == 0
    np.testing.assert_array_equal(both.x[d0], alone.x)
    np.testing.assert_array_equal(both.respond[d0], alone.respond)
    np.testing.assert_array_equal(both.best[d0], alone.best)
    np.testing.assert_array_equal(both.x_hit[both.day_hit == 0], alone.x_hit)
    # the bond day uses the bonds panel
    bonds = both.day == 2
    assert np.all(both.x[bonds, COL["panel_bonds"]] == 1.0)
    assert np.all(both.x[~bonds, COL["panel_equities"]] == 1.0)
    assert both.x.shape[1] == len(DEALER_FEATURES)
    assert both.x_hit.shape[1] == len(HIT_FEATURES)


def test_each_scenarios_days_run_apart_and_the_rows_keep_the_days_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dealer_data, "RFQS_PER_DAY", 12)  # a pool's workers fork: theirs too
    days = [DaySpec("calm", 5), DaySpec("illiquid-bond", 7), DaySpec("calm", 6)]
    seen: list[tuple[int, int]] = []
    one = generate(days)
    two = generate(days, lambda done, total: seen.append((done, total)), workers=2)
    assert seen == [(2, 3), (3, 3)]  # a scenario's days at a time, in days
    assert np.all(np.diff(two.day) >= 0)
    for field in ("x", "respond", "best", "hit", "x_hit", "day", "day_hit"):
        np.testing.assert_array_equal(getattr(one, field), getattr(two, field))


@pytest.mark.requires_extra("ray", "ray")
def test_generate_on_ray_gives_the_local_rows() -> None:
    # RFQS_PER_DAY as shipped: Ray's workers are fresh processes, not forks of this one
    days = [DaySpec("calm", 5), DaySpec("illiquid-bond", 7)]
    local = generate(days)
    on_ray = generate(days, workers=2, executor="ray")
    for field in ("x", "respond", "best", "hit", "x_hit", "day", "day_hit"):
        np.testing.assert_array_equal(getattr(local, field), getattr(on_ray, field))


def test_generate_refuses_a_scenario_without_dealers(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    sc = load_scenario("calm")
    monkeypatch.setattr(
        dealer_data, "load_scenario", lambda name: dataclasses.replace(sc, dealer_panel=None)
    )
    with pytest.raises(ValueError, match="has no dealer panel"):
        generate([DaySpec("calm", 1)])


def test_concat_of_nothing_has_the_right_widths() -> None:
    empty = DealerRows.concat([])
    assert empty.x.shape == (0, len(DEALER_FEATURES))
    assert empty.x_hit.shape == (0, len(HIT_FEATURES))
    assert empty.respond.shape == (0,)
