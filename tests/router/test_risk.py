"""Pre-trade risk checks (router/risk.py)."""

import numpy as np
import pytest

from router.domain import (
    ChildId,
    ChildOrder,
    DomainError,
    OrdType,
    ParentId,
    Side,
    TimeInForce,
    VenueId,
)
from router.risk import KillSwitch, RiskGate, RiskLimits

NS = 1_000_000_000


def child(qty=1_000, limit=10_000, side=Side.SELL, ord_type=OrdType.LIMIT):
    return ChildOrder(
        ChildId("c"),
        ParentId("p"),
        VenueId("LITA"),
        side,
        qty,
        ord_type,
        TimeInForce.IOC,
        limit if ord_type is OrdType.LIMIT else None,
    )


def test_passes_unchanged():
    v = RiskGate().check(child(), 10_000.0, 0, 1_000_000, aggressive=True)
    assert v.qty == 1_000 and v.reason == ""


def test_max_child_size_cuts():
    gate = RiskGate(RiskLimits(max_child_qty=500))
    v = gate.check(child(), 10_000.0, 0, 10**9, aggressive=True)
    assert v.qty == 500 and "max child size" in v.reason and gate.shrunk == 1


@pytest.mark.parametrize(
    "side,limit,ok",
    [
        (Side.SELL, 9_940, True),  # 60 bps below the mid: inside a 100 bps collar
        (Side.SELL, 9_890, False),  # 110 bps below
        (Side.BUY, 10_090, True),
        (Side.BUY, 10_110, False),
        (Side.BUY, 9_000, True),  # far on the passive side is no fat finger
    ],
)
def test_price_collar(side, limit, ok):
    gate = RiskGate(RiskLimits(collar_bps=100))
    v = gate.check(child(limit=limit, side=side), 10_000.0, 0, 10**9, aggressive=True)
    assert (v.qty > 0) is ok
    if not ok:
        assert "price collar" in v.reason and gate.blocked == 1


def test_participation_cap_counts_own_fills_in_the_window():
    gate = RiskGate(RiskLimits(max_participation=0.2, participation_window_s=60))
    gate.record_lit_fill(10 * NS, 1_500)
    # market 10,000 in the window, own 1,500: room = (0.2*10,000 - 1,500) / 0.8 = 625
    v = gate.check(child(), 10_000.0, 20 * NS, 10_000, aggressive=True)
    assert v.qty == 625 and "participation" in v.reason
    # passive orders are not capped (they add liquidity)
    assert gate.check(child(), 10_000.0, 20 * NS, 10_000, aggressive=False).qty == 1_000
    # fills older than the window drop out
    assert gate.own_volume(100 * NS) == 0
    gate.record_lit_fill(100 * NS, 2_500)
    blocked = gate.check(child(), 10_000.0, 100 * NS, 10_000, aggressive=True)
    assert blocked.qty == 0 and "cap" in blocked.reason
    exempt = gate.check(
        child(), 10_000.0, 100 * NS, 10_000, aggressive=True, exempt_participation=True
    )
    assert exempt.qty == 1_000


def test_own_volume_is_the_sum_of_what_is_in_the_window():
    # the gate keeps a running sum: after any mix of fills, reservations and their
    # releases, it is what summing the window's entries gives
    rng = np.random.default_rng(7)
    gate = RiskGate(RiskLimits(max_participation=0.5, participation_window_s=30))
    entries: list[tuple[int, int]] = []
    now = 0
    for _ in range(2_000):
        now += int(rng.integers(0, 3 * NS))
        qty = int(rng.integers(1, 5_000))
        kind = rng.integers(0, 3)
        if kind == 0:
            gate.record_lit_fill(now, qty)
            entries.append((now, qty))
        elif kind == 1:
            gate.release(now, qty)
            entries.append((now, -qty))
        else:
            v = gate.check(child(qty=qty), 10_000.0, now, 10**6, aggressive=True)
            entries.append((now, v.qty))
        later = now + int(rng.integers(0, 40 * NS))
        expected = sum(q for t, q in entries if t >= later - 30 * NS)
        assert gate.own_volume(later) == expected
        now = later


def test_kill_switch_blocks_everything_until_released():
    kill = KillSwitch()
    gate = RiskGate(kill=kill)
    kill.engage("desk halt")
    v = gate.check(child(), 10_000.0, 0, 10**9, aggressive=False)
    assert v.qty == 0 and "desk halt" in v.reason
    kill.release()
    assert gate.check(child(), 10_000.0, 0, 10**9, aggressive=False).qty == 1_000


def test_kill_switch_remembers_who_engaged_it_and_when():
    kill = KillSwitch()
    assert (kill.source, kill.changed_ns) == ("", None)
    kill.engage("journal write failed", 123, KillSwitch.JOURNAL)
    assert (kill.engaged, kill.source, kill.changed_ns) == (True, "journal", 123)
    kill.engage("a person", 456)  # a person's engagement takes it over
    assert (kill.reason, kill.source, kill.changed_ns) == ("a person", "manual", 456)
    kill.release(789)
    assert (kill.engaged, kill.reason, kill.source, kill.changed_ns) == (False, "", "", 789)


@pytest.mark.parametrize(
    "kw",
    [
        {"max_child_qty": 0},
        {"collar_bps": 0},
        {"max_participation": 0},
        {"max_participation": 1.5},
        {"participation_window_s": 0},
    ],
)
def test_bad_limits_are_refused(kw):
    with pytest.raises(DomainError):
        RiskLimits(**kw)
