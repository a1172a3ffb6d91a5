"""VwapSlicer: follows the historical cumulative volume profile, never realised volume."""

from __future__ import annotations

import itertools
import math

import pytest

from router.domain import NANOS_PER_SECOND, DomainError, ParentId, ParentOrder, Side, Symbol
from router.ports import ExecutionState, MarketHistory, MarketSnapshot
from router.strategies.twap import TwapSlicer
from router.strategies.vwap import VwapSlicer

START_NS = 3_600 * NANOS_PER_SECOND


def state(elapsed_s: float, qty: int = 1_000, volume: int = 0) -> ExecutionState:
    parent = ParentOrder(
        ParentId("P1"), Symbol("QDI"), Side.BUY, qty, START_NS, 400 * NANOS_PER_SECOND
    )
    now = START_NS + round(elapsed_s * NANOS_PER_SECOND)
    snap = MarketSnapshot(now, Symbol("QDI"), 0.01, 9_999, 10_001, 0, 0, (), None, volume, 0.0)
    return ExecutionState(parent, now, 0, snap)


def history(profile: tuple[float, ...], bucket_s: float = 100.0) -> MarketHistory:
    return MarketHistory(
        symbol=Symbol("QDI"),
        tick_size=0.01,
        price=100.0,
        adv=2e6,
        daily_vol=0.015,
        spread=0.05,
        impact_y=0.8,
        bucket_s=bucket_s,
        volume_profile=profile,
        horizon_volume=1e6,
    )


def test_follows_the_cumulative_profile_at_bucket_ends():
    s = VwapSlicer(100.0, [4, 1, 1, 4])
    assert s.name == "vwap"
    targets = [s.target_filled(state(t)) for t in (0, 100, 200, 300, 400)]
    assert targets == [0, 400, 500, 600, 1_000]


def test_is_linear_within_a_bucket():
    s = VwapSlicer(100.0, [4, 1, 1, 4])
    assert s.target_filled(state(50)) == 200
    assert s.target_filled(state(150)) == 450
    assert s.target_filled(state(375)) == 900


def test_whole_parent_is_due_after_the_profile_ends():
    s = VwapSlicer(100.0, [3, 1, 1])
    assert s.horizon_s == 300.0
    assert s.target_filled(state(300, qty=999_983)) == 999_983
    assert s.target_filled(state(10_000, qty=7)) == 7


def test_weights_only_matter_as_shares():
    a = VwapSlicer(60.0, [1, 2, 3])
    b = VwapSlicer(60.0, [1000, 2000, 3000])
    for t in range(0, 200, 7):
        assert a.target_at(t, 123_457) == b.target_at(t, 123_457)


def test_flat_profile_is_twap():
    s, twap = VwapSlicer(40.0, [1.0] * 10), TwapSlicer()
    for t in range(0, 401, 10):
        assert s.target_filled(state(t)) == twap.target_filled(state(t))


def test_does_not_react_to_realised_volume():
    s = VwapSlicer(100.0, [1, 3])
    assert s.target_filled(state(100, volume=0)) == s.target_filled(state(100, volume=10**9))


def test_floats_do_not_lose_a_share():
    # (0.1 + 0.7) / 1.0 * 1000 is 799.9999999999999 in floats
    s = VwapSlicer(1.0, [0.1, 0.7, 0.2])
    assert 1_000 * s.fraction_at(2.0) < 800
    assert s.target_at(2.0, 1_000) == 800


def test_from_history_uses_the_historical_profile():
    h = history((0.5, 0.1, 0.1, 0.3), bucket_s=100.0)
    s = VwapSlicer.from_history(h, 1_000)
    assert s.target_filled(state(100)) == 500
    assert s.target_filled(state(300)) == 700
    assert s.fraction_at(400) == 1.0
    with pytest.raises(DomainError, match="quantity"):
        VwapSlicer.from_history(h, 0)


def test_targets_never_decrease():
    s = VwapSlicer(30.0, [0, 5, 0, 0, 2, 9, 1])
    targets = [s.target_at(t / 4, 50_000) for t in range(0, 900)]
    assert all(b >= a for a, b in itertools.pairwise(targets))


@pytest.mark.parametrize(
    ("bucket_s", "weights", "message"),
    [
        (0.0, [1.0], "bucket_s must be > 0"),
        (math.nan, [1.0], "bucket_s must be > 0"),
        (60.0, [], "at least one bucket"),
        (60.0, [1.0, -0.5], "bucket 1 must be >= 0"),
        (60.0, [1.0, math.inf], "bucket 1 must be >= 0"),
        (60.0, [0.0, 0.0], "all zero"),
    ],
)
def test_refuses_bad_profiles(bucket_s, weights, message):
    with pytest.raises(DomainError, match=message):
        VwapSlicer(bucket_s, weights)
