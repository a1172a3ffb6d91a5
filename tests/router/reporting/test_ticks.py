"""Axis ticks and number labels: 1-2-5 steps, whole-minute time steps, no '-0'."""

from __future__ import annotations

import math

import numpy as np
import pytest

from router.reporting.ticks import format_number, nice_ticks, tick_decimals, time_ticks


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (0, 100, [0, 20, 40, 60, 80, 100]),
        (0, 97, [0, 20, 40, 60, 80, 100]),
        (-37, 112, [-50, 0, 50, 100, 150]),
        (0.1, 0.35, [0.1, 0.15, 0.2, 0.25, 0.3, 0.35]),
        (99.23, 100.18, [99.2, 99.4, 99.6, 99.8, 100.0, 100.2]),
        (0, 1e6, [0, 200_000, 400_000, 600_000, 800_000, 1_000_000]),
    ],
)
def test_nice_ticks_known_ranges(lo, hi, expected):
    assert nice_ticks(lo, hi) == expected


def test_nice_ticks_cover_the_range_with_1_2_5_steps():
    rng = np.random.default_rng(3)
    for _ in range(500):
        lo = float(rng.normal(0, 10 ** rng.uniform(-3, 6)))
        hi = lo + float(10 ** rng.uniform(-4, 6))
        max_ticks = int(rng.integers(3, 10))
        ticks = nice_ticks(lo, hi, max_ticks)
        assert 2 <= len(ticks) <= max_ticks
        assert ticks[0] <= lo + 1e-9 * abs(lo) and ticks[-1] >= hi - 1e-9 * abs(hi)
        step = ticks[1] - ticks[0]
        mantissa = step / 10 ** math.floor(math.log10(step))
        assert min(abs(mantissa - m) for m in (1, 2, 5, 10)) < 1e-6
        # equal gaps, up to the float resolution of the tick values themselves
        assert np.allclose(np.diff(ticks), step, rtol=1e-9, atol=1e-13 * max(map(abs, ticks)))


def test_nice_ticks_degenerate_reversed_and_bad_input():
    assert nice_ticks(5, 5)[0] < 5 < nice_ticks(5, 5)[-1]
    assert nice_ticks(0, 0)[0] < 0 < nice_ticks(0, 0)[-1]
    assert nice_ticks(10, 0) == nice_ticks(0, 10)
    assert all(not (t == 0 and math.copysign(1, t) < 0) for t in nice_ticks(-1, 1))  # no -0.0
    with pytest.raises(ValueError, match="finite"):
        nice_ticks(0, math.nan)
    with pytest.raises(ValueError, match="max_ticks"):
        nice_ticks(0, 1, 2)
    assert len(nice_ticks(-1, 1e5, 3)) == 3  # straddles zero: needs three


def test_tick_labels():
    assert tick_decimals([0, 20, 40]) == 0
    assert tick_decimals([99.2, 99.4]) == 1
    assert tick_decimals([0.1, 0.15]) == 2
    assert format_number(1234567.891, 0) == "1,234,568"
    assert format_number(-0.0001, 2) == "0.00"  # never "-0.00"
    assert format_number(-2.5, 1) == "-2.5"


def test_time_ticks_in_whole_minutes_inside_the_range():
    assert time_ticks(0, 3 * 3600) == [m * 60.0 for m in range(0, 181, 30)]
    assert time_ticks(0, 600) == [m * 60.0 for m in (0, 2, 4, 6, 8, 10)]
    assert time_ticks(100, 3 * 3600)[0] == 30 * 60.0  # never before the range starts
    short = time_ticks(0, 90)  # 1.5 minutes: fractional-minute ticks
    assert short[0] == 0 and short[-1] <= 90 and len(short) >= 3
    with pytest.raises(ValueError):
        time_ticks(0, math.inf)
