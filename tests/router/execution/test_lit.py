"""The lit posting tactic against a fake ledger: the Cont-Kukanov split of a slice
between resting and taking, and the outflows it learns from its own orders."""

from __future__ import annotations

import math

import numpy as np
import pytest

from router.domain import (
    ChildId,
    ChildOrder,
    OrdType,
    ParentId,
    Side,
    TimeInForce,
    VenueId,
    VenueKind,
)
from router.execution import LitFees, LitPostConfig, TakeConfig
from router.execution.ledger import WorkingChild
from router.execution.lit import LitPostTactic
from router.execution.take import TakeTactic
from router.ports import PassiveOrderContext

from .fakes import NS, FakeLedger, FakeMarket, decision, parent, quote, snapshot

FEES = {VenueId("A"): LitFees(0.003, -0.002), VenueId("B"): LitFees(0.001, -0.001)}
CALM = snapshot(quote("A", 99, 101), quote("B", 99, 101))  # two ticks wide, 500 at each touch


def _tactic(ledger, snap=CALM, fill_model=None):
    taker = TakeTactic(TakeConfig(), ledger, FakeMarket(snap), FEES)
    rng = np.random.default_rng(1)
    return LitPostTactic(LitPostConfig(), ledger, FEES, taker, rng, 30.0, fill_model), taker


def test_on_schedule_a_slice_rests_inside_the_spread():
    ledger = FakeLedger(parent())
    lit, _ = _tactic(ledger)
    lit.on_decision(decision(CALM, 0, 1_000))
    assert ledger.sent
    for s in ledger.sent:
        assert s.passive and not s.aggressive and s.owner is lit
        assert (s.ord_type, s.tif) == (OrdType.LIMIT, TimeInForce.DAY)
        # a buy joins the bid (behind its queue) or improves it, never crosses the ask
        assert (s.limit, s.queue_ahead) in ((99, 500), (100, 0))
        assert s.inputs["behind_slices"] == 0.0 and s.inputs["slice_qty"] == 1_000.0
        assert s.inputs["queue_ahead"] == s.queue_ahead and "venue_share" in s.inputs
        assert {"A_join_outflow", "B_improve_outflow"} <= set(s.inputs)


def test_far_behind_schedule_it_takes_part_of_the_slice():
    ledger = FakeLedger(parent())
    lit, taker = _tactic(ledger)
    lit.on_decision(decision(CALM, 0, 1_000, behind=10.0))
    taken = [s for s in ledger.sent if s.aggressive]
    assert taken and all(s.owner is taker and s.tif is TimeInForce.IOC for s in taken)
    assert all(s.chosen.endswith("take part)") for s in taken)
    # ten slices behind: the taker reaches 2 + 10 ticks past the ask
    assert {s.limit for s in taken} == {113}


def test_resting_prices_stay_within_the_parent_limit():
    ledger = FakeLedger(parent(limit_ticks=98))
    lit, _ = _tactic(ledger)
    lit.on_decision(decision(CALM, 0, 1_000))
    assert ledger.sent and all(s.limit <= 98 for s in ledger.sent)


def test_nothing_new_while_lit_orders_cover_the_next_target():
    ledger = FakeLedger(parent(), filled=400, working={VenueKind.LIT: 600})
    lit, _ = _tactic(ledger)
    lit.on_decision(decision(CALM, 0, 1_000, filled=400))
    assert ledger.sent == []


def test_never_more_than_the_parent_has_left():
    ledger = FakeLedger(parent(qty=10_000), filled=9_500)
    lit, _ = _tactic(ledger)
    lit.on_decision(decision(CALM, 9_500, 10_000, filled=9_500, behind=10.0))
    assert 0 < sum(s.qty for s in ledger.sent) <= 500


def test_a_closed_order_teaches_its_venue_outflow():
    ledger = FakeLedger(parent())
    lit, _ = _tactic(ledger)
    lit.on_decision(decision(CALM, 0, 1_000))
    # half the screen's 50 shares/s hit the bids, half of them on A: 12.5/s over 30 s
    assert ledger.sent[0].inputs["A_join_outflow"] == pytest.approx(375.0)
    order = ChildOrder(
        ChildId("P-1"),
        ParentId("P"),
        VenueId("A"),
        Side.BUY,
        1_000,
        OrdType.LIMIT,
        TimeInForce.DAY,
        99,
    )
    # 300 filled behind 500 in 30 s: an outflow of 800 / 30 s seen in full
    lit.on_child_closed(WorkingChild(order, 0, 0, True, 500, 300), 30 * NS)
    ledger.sent.clear()
    lit.on_decision(decision(CALM, 0, 4_000))  # past the 2,000 the first one posted
    learned = (800 / 30 + 2 * 12.5) / 3  # the prior counts as two observations
    posted = next(s for s in ledger.sent if s.passive)
    assert posted.inputs["A_join_outflow"] == pytest.approx(learned * 30)
    assert posted.inputs["B_join_outflow"] == pytest.approx(375.0)


class _FixedFill:
    def __init__(self, p: float) -> None:
        self.p = p
        self.seen: list[PassiveOrderContext] = []

    def p_fill(self, orders):
        self.seen.extend(orders)
        return [self.p for _ in orders]


def _context(queue: float) -> PassiveOrderContext:
    return PassiveOrderContext(
        venue=VenueId("LITA"),
        dark=False,
        improve=False,
        side=Side.SELL,
        spread_ticks=2.0,
        queue_ahead=queue,
        qty=1_000.0,
        depth_ours=5_000.0,
        depth_other=5_000.0,
        venue_share=0.5,
        volume_rate=30.0,
        vol_bps=2.0,
    )


def test_the_fill_model_sets_the_outflow_prior():
    # P(D > Q) = exp(-Q / mean): with P = exp(-1) behind 1,500 shares, mean = 1,500 over
    # the 30 s interval, i.e. 50 shares/s; outside (0.01, 0.99) the volume prior stays
    model = _FixedFill(math.exp(-1.0))
    lit, _ = _tactic(FakeLedger(parent()), fill_model=model)
    joins = [_context(1_500.0), _context(0.0), _context(3_000.0)]
    assert lit.outflow_priors(joins, [7.0, 8.0, 9.0]) == pytest.approx([50.0, 8.0, 100.0])
    # one call for the decision, and nobody ahead: nothing to learn, nothing asked
    assert model.seen == [joins[0], joins[2]]
    sure, _ = _tactic(FakeLedger(parent()), fill_model=_FixedFill(0.999))
    assert sure.outflow_priors(joins[:1], [7.0]) == [7.0]
    without, _ = _tactic(FakeLedger(parent()))
    assert without.outflow_priors(joins[:1], [7.0]) == [7.0]
