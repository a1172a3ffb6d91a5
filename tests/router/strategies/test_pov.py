"""PovSlicer: a fixed share of the market volume traded since the parent's start."""

from __future__ import annotations

import math

import pytest

from router.domain import NANOS_PER_SECOND, DomainError, ParentId, ParentOrder, Side, Symbol
from router.ports import ExecutionState, MarketHistory, MarketSnapshot
from router.strategies.pov import MIN_RATE, PovSlicer


def state(volume: int, qty: int = 10_000, parent_id: str = "P1", t_s: int = 0) -> ExecutionState:
    parent = ParentOrder(
        ParentId(parent_id), Symbol("QDI"), Side.SELL, qty, 0, 3_600 * NANOS_PER_SECOND
    )
    now = t_s * NANOS_PER_SECOND
    snap = MarketSnapshot(now, Symbol("QDI"), 0.01, 9_999, 10_001, 0, 0, (), None, volume, 0.0)
    return ExecutionState(parent, now, 0, snap)


def history(horizon_volume: float) -> MarketHistory:
    return MarketHistory(
        symbol=Symbol("QDI"),
        tick_size=0.01,
        price=100.0,
        adv=2e6,
        daily_vol=0.015,
        spread=0.05,
        impact_y=0.8,
        bucket_s=1_800.0,
        volume_profile=(1.0, 1.0),
        horizon_volume=horizon_volume,
    )


def test_targets_a_share_of_the_volume_since_the_first_call():
    s = PovSlicer(0.1)
    assert s.name == "pov"
    assert s.target_filled(state(250_000, t_s=0)) == 0  # session volume before the parent
    assert s.target_filled(state(260_000, t_s=30)) == 1_000
    assert s.target_filled(state(262_345, t_s=60)) == 1_234  # floors


def test_clamps_to_the_parent_quantity():
    s = PovSlicer(0.5)
    s.target_filled(state(1_000, qty=10_000))
    assert s.target_filled(state(1_000 + 19_998, qty=10_000)) == 9_999
    assert s.target_filled(state(1_000 + 50_000, qty=10_000)) == 10_000


def test_keeps_a_base_per_parent():
    s = PovSlicer(0.2)
    s.target_filled(state(100_000, parent_id="A"))
    s.target_filled(state(150_000, parent_id="B"))
    assert s.target_filled(state(200_000, parent_id="A")) == 20_000 // 2
    assert s.target_filled(state(200_000, parent_id="B")) == 10_000
    assert s.target_filled(state(200_000, parent_id="A", qty=30_000)) == 20_000


def test_never_negative_if_the_volume_counter_goes_back():
    s = PovSlicer(0.3)
    s.target_filled(state(5_000))
    assert s.target_filled(state(4_000)) == 0


def test_from_history_sizes_the_rate_with_a_buffer():
    # our share of the total tape: 100,000 / (100,000 + 1,000,000), times the buffer
    s = PovSlicer.from_history(history(1_000_000), 100_000)
    assert s.rate == pytest.approx(0.1)
    s = PovSlicer.from_history(history(1_000_000), 100_000, buffer=1.5)
    assert s.rate == pytest.approx(1.5 / 11)


def test_from_history_caps_and_floors_the_rate():
    assert PovSlicer.from_history(history(1_000_000), 900_000).rate == 0.5
    assert PovSlicer.from_history(history(1_000_000), 900_000, max_rate=0.25).rate == 0.25
    assert PovSlicer.from_history(history(1e9), 100).rate == MIN_RATE


@pytest.mark.parametrize("rate", [0.0, -0.1, 1.01, math.nan, math.inf])
def test_refuses_bad_rates(rate):
    with pytest.raises(DomainError, match="participation rate"):
        PovSlicer(rate)


@pytest.mark.parametrize(
    ("horizon_volume", "qty", "kwargs", "message"),
    [
        (0.0, 100, {}, "horizon_volume must be > 0"),
        (math.nan, 100, {}, "horizon_volume must be > 0"),
        (1e6, 0, {}, "quantity must be > 0"),
        (1e6, 100, {"max_rate": 0.001}, "max_rate"),
        (1e6, 100, {"max_rate": 1.5}, "max_rate"),
        (1e6, 100, {"buffer": 0.0}, "buffer"),
    ],
)
def test_from_history_refuses_bad_inputs(horizon_volume, qty, kwargs, message):
    with pytest.raises(DomainError, match=message):
        PovSlicer.from_history(history(horizon_volume), qty, **kwargs)
