"""The desk's dealer rows: built a panel at a time by compiled code, they must equal the
readable one-row definition (`models.features.dealer_row`) exactly, follow every event
and axe update at once, and score a candidate for a seat as if it were asked."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from dealers.simulator import p_lowest
from models.desk import P_LOWEST_POINTS, DeskState
from models.features import DEALER_FEATURES, MarketContext, dealer_row
from models.quotecost import terms
from router.domain import (
    NANOS_PER_SECOND,
    ChildId,
    DealerId,
    Event,
    Quote,
    QuoteReceived,
    QuoteRequest,
    RfqClosed,
    RfqEnded,
    RfqId,
    RfqRequested,
    RfqTraded,
    Side,
    Symbol,
)

A, B, C, D = (DealerId(x) for x in ("ALPHA", "BRAVO", "CHARLIE", "ZULU"))  # ZULU: no column
ADV = 100_000.0
MARKET = MarketContext(vol_bps=6.0, spread_bps=3.0, tod=0.4)
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


def desk_after(log: Sequence[Event] = LOG) -> DeskState:
    desk = DeskState((A, B, C, D), "equities", ADV)
    desk.set_axes({A: 4_000.0, C: -2_500.0})
    for e in log:
        desk.observe(e, lambda ts: 100.0, MARKET if isinstance(e, RfqRequested) else None)
    return desk


def reference_rows(
    desk: DeskState, qty: int, side: Side, panel: Sequence[DealerId]
) -> list[list[float]]:
    """The rows as `dealer_row` defines them, one dealer at a time."""
    t = desk.tracker

    def rate(d: DealerId) -> float:  # the side's response rate, shrunk to the overall one
        asked = desk._asked_side.get((d, side), 0.0)
        quoted = desk._quoted_side.get((d, side), 0.0)
        return (quoted + 2.0 * t.response_rate(d)) / (asked + 2.0)

    def today(d: DealerId) -> tuple[float | None, int]:
        total, n = desk._today.get(d, (0.0, 0))
        return (total / n if n else None), n

    def quality(d: DealerId) -> float:
        mean, _ = today(d)
        return t.distance_bps(d) if mean is None else mean

    def pred(d: DealerId) -> float:
        z = terms(desk.axes.get(d, 0.0) / ADV * side.sign, qty / ADV, len(panel), 6.0, False)
        return desk.costs.predict(d, z)

    est = p_lowest(
        np.array([rate(d) for d in panel]),
        np.array([pred(d) for d in panel]),
        np.array([max(desk.costs.sd(d), 0.5) for d in panel]),
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


def test_indicators_of_a_dealer_without_a_column() -> None:
    row = desk_after().rows(1_000, Side.BUY, (D, A), MARKET)
    assert row[0, COL["dealer_ALPHA"]] == 0.0 and row[0, COL["with_ALPHA"]] == 1.0
    assert sum(row[0, COL[f"dealer_{x}"]] for x in ("ALPHA", "BRAVO", "CHARLIE")) == 0.0
    assert row[1, COL["dealer_ALPHA"]] == 1.0 and row[1, COL["panel_equities"]] == 1.0
