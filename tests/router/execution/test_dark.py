"""The dark resting tactic against a fake ledger: midpoint orders for what the lit
orders leave of the next slice, plus a capped amount ahead, across the pools whose
minimum the share meets."""

from __future__ import annotations

from router.domain import OrdType, Side, TimeInForce, VenueId, VenueKind
from router.execution import DarkRestConfig
from router.execution.dark import DarkRestTactic

from .fakes import FakeLedger, decision, parent, quote, snapshot

POOLS = (VenueId("DARK1"), VenueId("DARK2"))
KINDS = {p: VenueKind.DARK for p in POOLS}
SNAP = snapshot(quote("A", 99, 101))


def _tactic(ledger, min_qty=None, max_ahead=0.2):
    return DarkRestTactic(DarkRestConfig(max_ahead), ledger, POOLS, min_qty or {})


def test_the_uncovered_slice_and_the_ahead_cap_split_evenly_at_the_far_touch():
    ledger = FakeLedger(parent(qty=10_000), filled=1_000, working={VenueKind.LIT: 500}, kinds=KINDS)
    _tactic(ledger).on_decision(decision(SNAP, 1_000, 2_000))
    # uncovered: 2,000 - 1,000 done - 500 lit = 500, plus 20% of the parent ahead
    assert [(s.venue, s.qty) for s in ledger.sent] == [("DARK1", 1_200), ("DARK2", 1_200)]
    for s in ledger.sent:
        # a buy never pays more in the dark than the ask it would take on the screen
        assert (s.ord_type, s.tif, s.limit) == (OrdType.LIMIT, TimeInForce.DAY, 101)
        assert s.passive and s.min_qty == 0
        assert s.inputs["uncovered"] == 500 and s.inputs["ahead_cap"] == 2_000
        assert s.inputs["dark"] == 1.0 and s.alternatives == {"dark_saving_vs_taking_ticks": 1.0}


def test_a_pool_whose_minimum_the_share_misses_is_left_out():
    ledger = FakeLedger(parent(qty=10_000), kinds=KINDS)
    mins = {POOLS[0]: 1_500, POOLS[1]: 200}
    _tactic(ledger, mins, max_ahead=0.2).on_decision(decision(SNAP, 0, 600))
    # 2,600 halved is below DARK1's 1,500: it all goes to DARK2, which shows its minimum
    ((venue, qty, min_qty),) = [(s.venue, s.qty, s.min_qty) for s in ledger.sent]
    assert (venue, qty, min_qty) == ("DARK2", 2_600, 200)


def test_the_parent_limit_caps_the_dark_price():
    # a sell rests no lower than the bid it would hit, a buy no higher than the ask,
    # and neither through its limit
    for side, limit, price in ((Side.SELL, 98, 99), (Side.SELL, 100, 100), (Side.BUY, 100, 100)):
        ledger = FakeLedger(parent(side=side, limit_ticks=limit), kinds=KINDS)
        _tactic(ledger).on_decision(decision(SNAP, 0, 1_000))
        assert ledger.sent and {s.limit for s in ledger.sent} == {price}


def test_nothing_beyond_what_the_parent_has_left():
    ledger = FakeLedger(parent(qty=10_000), filled=9_600, kinds=KINDS)
    _tactic(ledger).on_decision(decision(SNAP, 9_600, 10_000))
    assert [s.qty for s in ledger.sent] == [200, 200]
