"""ScheduleSlicer: piecewise-linear cumulative targets, clamped, validated."""

from __future__ import annotations

import itertools
import math

import pytest

from router.domain import NANOS_PER_SECOND, DomainError, ParentId, ParentOrder, Side, Symbol
from router.ports import ExecutionState, MarketSnapshot
from router.strategies.schedule import ScheduleSlicer

START_NS = 1_000 * NANOS_PER_SECOND


def state(elapsed_s: float, qty: int = 1_000) -> ExecutionState:
    parent = ParentOrder(
        ParentId("P1"), Symbol("QDI"), Side.SELL, qty, START_NS, 600 * NANOS_PER_SECOND
    )
    now = START_NS + round(elapsed_s * NANOS_PER_SECOND)
    snap = MarketSnapshot(now, Symbol("QDI"), 0.01, 9_999, 10_001, 0, 0, (), None, 0, 0.0)
    return ExecutionState(parent, now, 0, snap)


def test_interpolates_linearly_between_points_relative_to_start():
    s = ScheduleSlicer("plan", [0, 100, 300], [0, 500, 900])
    assert s.name == "plan"
    assert s.target_filled(state(0)) == 0
    assert s.target_filled(state(50)) == 250
    assert s.target_filled(state(100)) == 500
    assert s.target_filled(state(200)) == 700
    assert s.target_filled(state(299.999)) == 899  # floors, never ahead of the plan


def test_holds_the_end_values_outside_the_points():
    s = ScheduleSlicer("plan", [60, 120], [100, 400])
    assert s.target_filled(state(0)) == 100
    assert s.target_filled(state(-5)) == 100  # a decision before the start
    assert s.target_filled(state(10_000)) == 400


def test_clamps_to_the_parent_quantity():
    s = ScheduleSlicer("plan", [0, 100], [0, 2_000])
    assert s.target_filled(state(40, qty=1_000)) == 800
    assert s.target_filled(state(60, qty=1_000)) == 1_000
    assert s.target_filled(state(100, qty=1_000)) == 1_000


def test_repeated_time_is_a_step():
    s = ScheduleSlicer("oracle", [0, 100, 100, 200], [0, 0, 600, 1_000])
    assert s.target_filled(state(99.9)) == 0
    assert s.target_filled(state(100)) == 600
    assert s.target_filled(state(150)) == 800


def test_single_point_is_a_constant():
    s = ScheduleSlicer("flat", [0], [300])
    assert [s.target_at(t, 1_000) for t in (0, 10, 1e6)] == [300, 300, 300]


def test_targets_never_decrease_over_time():
    s = ScheduleSlicer("plan", [0, 7, 7, 31, 90, 600], [0, 13, 200, 201, 650, 1_000])
    targets = [s.target_at(t / 10, 1_000) for t in range(0, 7_000)]
    assert all(b >= a for a, b in itertools.pairwise(targets))
    assert targets[0] == 0 and targets[-1] == 1_000


def test_exposes_its_points():
    s = ScheduleSlicer("plan", (0, 10.5), (0, 7))
    assert s.times_s == (0.0, 10.5)
    assert s.cum_targets == (0, 7)


@pytest.mark.parametrize(
    ("times", "targets", "message"),
    [
        ([0, 1], [0], "2 times but 1 targets"),
        ([], [], "at least one point"),
        ([0, 10, 5], [0, 1, 2], "times_s must be non-decreasing"),
        ([-1, 10], [0, 1], r"times_s\[0\] must be >= 0"),
        ([0, math.nan], [0, 1], r"times_s\[1\]"),
        ([0, math.inf], [0, 1], r"times_s\[1\]"),
        ([0, 10], [5, 4], "cum_targets must be non-decreasing"),
        ([0, 10], [-1, 4], r"cum_targets\[0\] must be >= 0"),
        ([0, 10], [0, 2.5], "whole number"),
        ([0, 10], [0, math.nan], "whole number"),
    ],
)
def test_refuses_bad_schedules(times, targets, message):
    with pytest.raises(DomainError, match=message):
        ScheduleSlicer("plan", times, targets)


def test_refuses_an_empty_name():
    with pytest.raises(DomainError, match="name"):
        ScheduleSlicer("", [0], [0])
