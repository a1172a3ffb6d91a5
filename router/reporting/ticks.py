"""Axis ticks and number labels for the charts: 1-2-5 steps, clock-friendly time steps,
thousands separators and never a '-0'."""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Steps for time axes, in minutes: 1-2-5 plus the clock's own 15/30/60 multiples.
_TIME_STEPS_MIN: tuple[float, ...] = (1, 2, 5, 10, 15, 30, 60, 120, 180, 240, 360, 720, 1440)


def nice_ticks(lo: float, hi: float, max_ticks: int = 6) -> list[float]:
    """Evenly spaced ticks with a 1-2-5 step that cover [lo, hi].

    The first tick is <= lo and the last >= hi; there are at most `max_ticks` of them and
    the step is the smallest of the form {1, 2, 5} x 10^k that allows that. A degenerate
    range (lo == hi) is widened around the value. Raises ValueError for a range that is
    not finite or a `max_ticks` under 3 (a range that straddles zero always needs a tick
    below, at and above it).
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"tick range must be finite, got [{lo}, {hi}]")
    if max_ticks < 3:
        raise ValueError(f"max_ticks must be >= 3, got {max_ticks}")
    if lo > hi:
        lo, hi = hi, lo
    if hi - lo <= 1e-12 * max(1.0, abs(lo), abs(hi)):
        pad = abs(lo) * 0.05 if lo != 0 else 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / (max_ticks - 1)
    exp = math.floor(math.log10(raw))
    for k in range(exp, exp + 3):
        for mult in (1, 2, 5):
            step = mult * 10.0**k
            if step < raw * (1 - 1e-9):
                continue
            first = math.floor(lo / step + 1e-9)
            last = math.ceil(hi / step - 1e-9)
            if last - first + 1 <= max_ticks:
                digits = max(0, -k) + 1
                # round away float noise (0.30000000000000004); +0.0 turns -0.0 into 0.0
                return [round(i * step, digits) + 0.0 for i in range(first, last + 1)]
    # a step >= hi - lo spans the range with at most 3 ticks, and 100 * raw is one
    raise AssertionError("unreachable")  # pragma: no cover


def tick_decimals(ticks: Sequence[float]) -> int:
    """How many decimals tell the ticks apart (0 for integers, 1 for 0.5 steps...)."""
    if len(ticks) < 2:
        return 0 if not ticks or float(ticks[0]).is_integer() else 2
    step = abs(ticks[1] - ticks[0])
    if step == 0:
        return 0
    return max(0, -math.floor(math.log10(step) + 1e-9))


def format_number(value: float, decimals: int = 0) -> str:
    """Thousands separators, fixed decimals, and never a '-0'."""
    text = f"{value:,.{decimals}f}"
    if text.lstrip("-").strip("0.,") == "":
        text = text.lstrip("-")
    return text


def time_ticks(lo_s: float, hi_s: float, max_ticks: int = 8) -> list[float]:
    """Ticks in seconds at whole-minute steps (1, 2, 5, 10, 15, 30, 60... minutes).

    Ranges shorter than a few minutes fall back to 1-2-5 steps on fractional minutes.
    Unlike `nice_ticks`, the ticks stay inside [lo_s, hi_s]: a time axis shows the horizon.
    Raises ValueError for a range that is not finite.
    """
    if not (math.isfinite(lo_s) and math.isfinite(hi_s)):
        raise ValueError(f"time range must be finite, got [{lo_s}, {hi_s}]")
    if lo_s > hi_s:
        lo_s, hi_s = hi_s, lo_s
    lo_m, hi_m = lo_s / 60.0, hi_s / 60.0
    for step in _TIME_STEPS_MIN if hi_m - lo_m >= 3 else ():
        first = math.ceil(lo_m / step - 1e-9)
        last = math.floor(hi_m / step + 1e-9)
        if last - first + 1 <= max_ticks:
            return [i * step * 60.0 for i in range(first, last + 1)]
    inside = [t for t in nice_ticks(lo_m, hi_m, max_ticks) if lo_m - 1e-9 <= t <= hi_m + 1e-9]
    return [t * 60.0 for t in inside]


def time_label(t_s: float, step_s: float) -> str:
    """A time tick in minutes, with as many decimals as the tick step needs."""
    minutes = t_s / 60.0
    decimals = 0 if step_s >= 60 else tick_decimals([0.0, step_s / 60.0])
    return format_number(minutes, decimals)
