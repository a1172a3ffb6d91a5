"""Exact decimal text to integers and the grids found in them (simulators/replay/decimals.py)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from simulators.replay.decimals import DecimalColumn, find_grid, parse_decimal


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("78318.0", (78318, 0)),
        ("0.06384146", (6384146, 8)),
        ("7.18e-06", (718, 8)),  # Python's repr of a small float, as the feed prints it
        ("1e-08", (1, 8)),
        ("1.5e+03", (1500, 0)),
        ("-12.3400", (-1234, 2)),
        ("0.0", (0, 0)),
        (".5", (5, 1)),
        ("999999999.0", (999999999, 0)),
    ],
)
def test_parse_decimal_reads_the_text_exactly(text, value):
    assert parse_decimal(text) == value


@pytest.mark.parametrize(
    "text", ["", "-", ".", "1.2.3", "abc", "1e", "e5", " 1", "nan", "--1", "1e-20"]
)
def test_parse_decimal_refuses_what_is_not_a_decimal(text):
    with pytest.raises(ValueError):
        parse_decimal(text)


def test_a_column_scales_to_its_finest_decimals_without_float_rounding():
    col = DecimalColumn()
    for text in ("0.1", "0.2", "7.18e-06", "138800.0", "0.30000001"):
        col.add(text)
    assert col.decimals == 8
    assert col.exponent_notation == 1
    assert col.scaled(8).tolist() == [10_000_000, 20_000_000, 718, 13_880_000_000_000, 30_000_001]


def test_a_column_refuses_fewer_decimals_than_it_holds_and_overflow():
    col = DecimalColumn()
    col.add("0.25")
    with pytest.raises(ValueError):
        col.scaled(1)
    big = DecimalColumn()
    big.add("99999999999.5")
    with pytest.raises(ValueError, match="too large"):
        big.scaled(12)


def test_the_grid_is_the_common_divisor_of_the_values():
    grid = find_grid(np.array([1000, 1005, 0, 1010, -995], dtype=np.int64), 1)
    assert (grid.step, grid.size) == (5, Fraction(1, 2))
    assert grid.describe("USD") == "0.5 USD"
    assert find_grid(np.array([1, 3], dtype=np.int64), 8).describe("BTC") == "0.00000001 BTC"
    assert find_grid(np.zeros(3, dtype=np.int64), 0).step == 1
