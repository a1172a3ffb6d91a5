"""Heuristic panel selection: priors, learning from a hand-made RFQ log, exploration of
the last seat, and copies."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from dealers.panel import HeuristicPanel
from router.domain import (
    ChildId,
    DealerId,
    Event,
    Quote,
    QuoteReceived,
    QuoteRequest,
    RfqEnded,
    RfqId,
    RfqRequested,
    RfqTraded,
    Side,
    Symbol,
)

A, B, C, D, E = (DealerId(x) for x in "ABCDE")


def rfq_log(
    rfq_id: str,
    side: Side | None,
    asked: tuple[DealerId, ...],
    quotes: dict[DealerId, tuple[float | None, float | None]],
    traded: tuple[DealerId, Side] | None,
    ts: int = 0,
) -> list[Event]:
    """The events of one RFQ: requested, quotes (dealer: (bid, offer)), trade, end."""
    rid = RfqId(rfq_id)
    events: list[Event] = [
        RfqRequested(ts, QuoteRequest(rid, Symbol("XYZ"), side, 1000, asked, 10))
    ]
    for d, (bid, offer) in quotes.items():
        q = Quote(f"{rfq_id}-{d}", rid, d, 1000, bid, offer, ts + 1, ts + 100)
        events.append(QuoteReceived(ts + 1, q))
    if traded is not None:
        dealer, traded_side = traded
        bid_offer = quotes[dealer]
        price = bid_offer[1] if traded_side is Side.BUY else bid_offer[0]
        assert price is not None
        child = ChildId(f"{rfq_id}-child")
        events.append(RfqTraded(ts + 5, rid, dealer, child, traded_side, 1000, price))
    state = "done" if traded is not None else "passed"
    events.append(RfqEnded(ts + 6, rid, state, 1000 if traded is not None else 0))
    return events


def history_log() -> list[Event]:
    """Two client buys asked of A, B, C: A quotes best and wins both, B quotes 5 and then
    10 bps behind, C never answers. D is never asked."""
    return [
        *rfq_log("r1", Side.BUY, (A, B, C), {A: (None, 100.0), B: (None, 100.05)}, (A, Side.BUY)),
        *rfq_log("r2", Side.BUY, (A, B, C), {A: (None, 100.0), B: (None, 100.1)}, (A, Side.BUY)),
    ]


# --------------------------------------------------------------------------------------
# Priors
# --------------------------------------------------------------------------------------


def test_fresh_selector_ranks_by_priors_ties_by_id() -> None:
    sel = HeuristicPanel([D, B, E, A, C], explore=0.0)
    rng = np.random.default_rng(0)
    panel, scores = sel.select(Side.BUY, 1000, 3, rng)
    assert panel == [A, B, C]
    # prior score = 0.8 * 0.25 - 0.02 * 5.0 = 0.2 - 0.1 = 0.1 for everyone
    assert scores == {"A": 0.1, "B": 0.1, "C": 0.1, "D": 0.1, "E": 0.1, "explore": 0.0}
    assert list(scores) == ["A", "B", "C", "D", "E", "explore"]  # ranked order
    assert sel.response_rate(A) == pytest.approx(0.8)
    assert sel.hit_ratio(A) == pytest.approx(0.25)
    assert sel.distance_bps(A) == pytest.approx(5.0)


def test_custom_priors() -> None:
    sel = HeuristicPanel(
        [A], prior_response=0.5, prior_hit=0.4, prior_distance_bps=10.0, price_weight=0.01
    )
    # 0.5 * 0.4 - 0.01 * 10 = 0.1
    assert sel.score(A) == pytest.approx(0.1)


def test_select_returns_n_or_every_dealer() -> None:
    sel = HeuristicPanel([A, B, C], explore=1.0)
    rng = np.random.default_rng(1)
    assert len(sel.select(Side.SELL, 10, 2, rng)[0]) == 2
    # asking for more than the panel: everyone, nobody outside to explore
    panel, scores = sel.select(Side.SELL, 10, 5, rng)
    assert panel == [A, B, C]
    assert scores["explore"] == 0.0


def test_selector_needs_dealers_and_a_valid_explore() -> None:
    with pytest.raises(ValueError, match="at least one dealer"):
        HeuristicPanel([])
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"explore must be within \[0, 1\]"):
            HeuristicPanel([A, B], explore=bad)


# --------------------------------------------------------------------------------------
# Learning from the log
# --------------------------------------------------------------------------------------


def test_history_counts_and_scores_by_hand() -> None:
    sel = HeuristicPanel.from_log([A, B, C, D], history_log(), decay=1.0)
    h = sel.history
    assert (h[A].asked, h[A].quotes, h[A].wins) == (2, 2, 2)
    assert (h[B].asked, h[B].quotes, h[B].wins) == (2, 2, 0)
    assert (h[C].asked, h[C].quotes, h[C].wins) == (2, 0, 0)
    assert (h[D].asked, h[D].quotes, h[D].wins) == (0, 0, 0)
    # B's offers: (100.05 - 100) / 100 * 1e4 = 5 bps, then 10 bps behind the best
    assert h[B].distance_sum == pytest.approx(15.0)
    assert (h[A].distance_sum, h[A].distance_n, h[B].distance_n, h[C].distance_n) == (0, 2, 2, 0)
    # priors weigh 2: response (quotes + 1.6) / (asked + 2)
    assert sel.response_rate(A) == pytest.approx(3.6 / 4)  # 0.9
    assert sel.response_rate(B) == pytest.approx(0.9)
    assert sel.response_rate(C) == pytest.approx(1.6 / 4)  # 0.4
    assert sel.response_rate(D) == pytest.approx(0.8)
    # hit (wins + 0.5) / (quotes + 2)
    assert sel.hit_ratio(A) == pytest.approx(2.5 / 4)  # 0.625
    assert sel.hit_ratio(B) == pytest.approx(0.5 / 4)  # 0.125
    assert sel.hit_ratio(C) == pytest.approx(0.25)
    # distance (sum + 10) / (n + 2)
    assert sel.distance_bps(A) == pytest.approx(10 / 4)  # 2.5
    assert sel.distance_bps(B) == pytest.approx(25 / 4)  # 6.25
    assert sel.distance_bps(C) == pytest.approx(5.0)
    # score = response * hit - 0.02 * distance
    assert sel.score(A) == pytest.approx(0.9 * 0.625 - 0.02 * 2.5)  # 0.5125
    assert sel.score(B) == pytest.approx(0.9 * 0.125 - 0.02 * 6.25)  # -0.0125
    assert sel.score(C) == pytest.approx(0.4 * 0.25 - 0.02 * 5.0)  # 0.0
    assert sel.score(D) == pytest.approx(0.1)


def test_the_winner_ranks_first_and_the_silent_dealer_falls() -> None:
    sel = HeuristicPanel.from_log([A, B, C, D], history_log(), decay=1.0, explore=0.0)
    panel, scores = sel.select(Side.BUY, 1000, 4, np.random.default_rng(0))
    # A 0.5125 > D 0.1 (prior) > C 0.0 (never answers) > B -0.0125 (answers, loses, wide)
    assert panel == [A, D, C, B]
    assert scores == {"A": 0.5125, "D": 0.1, "C": 0.0, "B": -0.0125, "explore": 0.0}
    top2, _ = sel.select(Side.BUY, 1000, 2, np.random.default_rng(0))
    assert top2 == [A, D]


def test_two_sided_distance_uses_the_traded_side() -> None:
    # two-sided, the client sold to B at the best bid 100.0; A bid 99.9: 10 bps behind
    log = rfq_log("r1", None, (A, B), {A: (99.9, 100.2), B: (100.0, 100.3)}, (B, Side.SELL))
    sel = HeuristicPanel.from_log([A, B], log, decay=1.0)
    assert sel.history[A].distance_sum == pytest.approx(10.0)
    assert sel.history[B].distance_sum == 0.0
    assert (sel.history[A].distance_n, sel.history[B].distance_n) == (1, 1)


def test_no_distance_without_a_side_or_a_second_quote() -> None:
    # two-sided and nothing traded: no side to price against
    log = rfq_log("r1", None, (A, B), {A: (99.9, 100.2), B: (100.0, 100.3)}, None)
    # one-sided with a single quote: nothing to compare with
    log += rfq_log("r2", Side.SELL, (A, B), {A: (99.9, None)}, (A, Side.SELL))
    sel = HeuristicPanel.from_log([A, B], log, decay=1.0)
    assert all(h.distance_n == 0 and h.distance_sum == 0 for h in sel.history.values())
    assert sel.history[A].quotes == 2  # the quotes still count as answers
    assert sel.history[A].wins == 1


def test_decay_weighs_recent_rfqs_more() -> None:
    log = history_log()
    sel = HeuristicPanel.from_log([A, B, C, D], log, decay=0.5)
    # counts are halved at every new request: asked = 1 * 0.5 + 1 = 1.5
    assert sel.history[A].asked == pytest.approx(1.5)
    assert sel.history[A].quotes == pytest.approx(1.5)
    assert sel.history[A].wins == pytest.approx(1.5)
    assert sel.history[D].asked == 0.0
    # C, asked twice and silent: (0 + 1.6) / (1.5 + 2)
    assert sel.response_rate(C) == pytest.approx(1.6 / 3.5)
    # distance: r1 5 bps decayed to 2.5, plus r2 10 bps; over 0.5 + 1 quotes
    assert sel.history[B].distance_sum == pytest.approx(12.5)
    assert sel.history[B].distance_n == pytest.approx(1.5)


def test_events_of_unknown_rfqs_and_dealers_are_ignored() -> None:
    sel = HeuristicPanel([A, B], decay=1.0)
    # a quote for an RFQ it never saw requested, and a dealer outside its panel
    stray = rfq_log("r9", Side.BUY, (A, E), {A: (None, 100.0), E: (None, 99.0)}, (E, Side.BUY))
    for e in stray[1:]:
        sel.observe(e)
    assert all(h.asked == h.quotes == h.wins == 0 for h in sel.history.values())
    sel.observe(stray[0])
    for e in stray[1:]:
        sel.observe(e)
    assert (sel.history[A].asked, sel.history[A].quotes, sel.history[A].wins) == (1, 1, 0)
    assert E not in sel.history


# --------------------------------------------------------------------------------------
# Exploration
# --------------------------------------------------------------------------------------


def explorer(explore: float) -> HeuristicPanel:
    """A and B answer and win every time (the top two, A first by id); of the others C
    was never asked, D once and E nine times, without an answer."""
    sel = HeuristicPanel([A, B, C, D, E], explore=explore)
    for d in (A, B):
        sel.history[d].asked = sel.history[d].quotes = sel.history[d].wins = 10.0
    sel.history[D].asked = 1.0
    sel.history[E].asked = 9.0
    # A, B: (11.6 / 12) * (10.5 / 12) - 0.1 = 0.7458; C 0.1; D 0.0333; E -0.0636
    assert sel.score(A) == sel.score(B) > 0.7
    assert max(sel.score(d) for d in (C, D, E)) < 0.2
    return sel


def test_explore_always_gives_the_last_seat_to_an_outsider() -> None:
    sel = explorer(1.0)
    rng = np.random.default_rng(42)
    picks: Counter[DealerId] = Counter()
    n_draws = 4000
    for _ in range(n_draws):
        panel, scores = sel.select(Side.BUY, 1000, 2, rng)
        assert panel[0] == A
        assert panel[1] in (C, D, E)
        assert scores["explore"] == 1.0
        picks[panel[1]] += 1
    # weights 1 / (1 + asked): C 1, D 0.5, E 0.1 -> 0.625, 0.3125, 0.0625
    assert picks[C] > picks[D] > picks[E]
    for d, p in ((C, 0.625), (D, 0.3125), (E, 0.0625)):
        se = (p * (1 - p) / n_draws) ** 0.5
        assert abs(picks[d] / n_draws - p) < 4 * se, (d, picks[d])


def test_explore_is_reproducible_with_a_seeded_generator() -> None:
    sel = explorer(0.5)
    a = [sel.select(Side.BUY, 1000, 2, np.random.default_rng(7))[0] for _ in range(3)]
    rng1, rng2 = np.random.default_rng(11), np.random.default_rng(11)
    run1 = [sel.select(Side.BUY, 1000, 2, rng1)[0] for _ in range(50)]
    run2 = [sel.select(Side.BUY, 1000, 2, rng2)[0] for _ in range(50)]
    assert a[0] == a[1] == a[2]
    assert run1 == run2
    # with explore 0.5 both outcomes occur
    assert {tuple(p) for p in run1} >= {(A, B)}
    assert any(p[1] != B for p in run1)


def test_no_exploration_at_zero() -> None:
    sel = explorer(0.0)
    rng = np.random.default_rng(3)
    for _ in range(500):
        panel, scores = sel.select(Side.SELL, 1000, 2, rng)
        assert panel == [A, B]
        assert scores["explore"] == 0.0


# --------------------------------------------------------------------------------------
# Copies
# --------------------------------------------------------------------------------------


def test_copy_is_independent() -> None:
    sel = HeuristicPanel.from_log(
        [A, B, C, D], history_log(), decay=1.0, explore=0.3, price_weight=0.05
    )
    twin = sel.copy()
    assert (twin.explore, twin.decay, twin.price_weight) == (0.3, 1.0, 0.05)
    assert {d: twin.score(d) for d in twin.dealers} == {d: sel.score(d) for d in sel.dealers}
    before = {d: sel.score(d) for d in sel.dealers}
    # the twin learns that D answers and wins: the original must not
    for e in rfq_log("r3", Side.SELL, (C, D), {D: (99.0, None)}, (D, Side.SELL)):
        twin.observe(e)
    assert twin.history[D].wins == 1
    assert sel.history[D].wins == 0
    assert {d: sel.score(d) for d in sel.dealers} == before
    # and the other way round
    sel.history[A].wins = 0.0
    assert twin.history[A].wins == 2
