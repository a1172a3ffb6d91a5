"""The dealers' cost of risk transfer (dealers/pricing.py), by hand."""

from __future__ import annotations

import math

import pytest

from dealers.pricing import CarryCost

ADV = 1_000_000.0


def cost(risk_aversion: float = 0.0, hold_s: float = 900.0) -> CarryCost:
    # 2/3 * Y 0.9 * 100 bps = 60 bps x sqrt(x / ADV) per unit
    return CarryCost(
        adv=ADV, sigma_bps=100.0, impact_y=0.9, risk_aversion=risk_aversion, hold_s=hold_s
    )


def test_a_flat_book_pays_the_square_root_law() -> None:
    c = cost()
    # 10% of ADV: 60 * sqrt(0.1) = 18.97 bps, either side
    assert c.marginal_bps(0.0, 100_000.0) == pytest.approx(60.0 * math.sqrt(0.1))
    assert c.marginal_bps(0.0, -100_000.0) == pytest.approx(60.0 * math.sqrt(0.1))
    # four times the size, twice the cost per unit
    assert c.marginal_bps(0.0, 400_000.0) == pytest.approx(2 * c.marginal_bps(0.0, 100_000.0))


def test_working_off_a_position_is_a_credit() -> None:
    c = cost()
    # long 100k selling 50k: U(50k) - U(100k) = 60 * (50k sqrt(.05) - 100k sqrt(.1)) / 50k
    expected = 60.0 * (50_000 * math.sqrt(0.05) - 100_000 * math.sqrt(0.1)) / 50_000
    assert c.marginal_bps(100_000.0, -50_000.0) == pytest.approx(expected)
    assert expected < 0
    # buying more of what it is long costs more than from flat
    assert c.marginal_bps(100_000.0, 50_000.0) > c.marginal_bps(0.0, 50_000.0)


def test_the_risk_premium() -> None:
    # 2 * 100 bps * sqrt(6.5 h / 6.5 h) * x / ADV: 20 bps at 10% of ADV from flat
    c = cost(risk_aversion=2.0, hold_s=6.5 * 3600)
    assert c.of(100_000.0) - cost().of(100_000.0) == pytest.approx(20.0 * 100_000.0)
    # a quarter of the time, half the premium
    quarter = cost(risk_aversion=2.0, hold_s=6.5 * 3600 / 4)
    assert quarter.of(100_000.0) - cost().of(100_000.0) == pytest.approx(10.0 * 100_000.0)
    # the end of day's charge leaves the premium out
    assert quarter.unwind_bps(100_000.0) == cost().of(100_000.0)


def test_no_trade_no_cost() -> None:
    assert cost(risk_aversion=1.0).marginal_bps(50_000.0, 0.0) == 0.0
    assert cost().of(0.0) == 0.0


def test_shedding_risk_earns_no_premium() -> None:
    # long 100k selling 50k: the unwinding saved, and not the premium it no longer needs
    c = cost(risk_aversion=3.0)
    saved = (cost().of(50_000.0) - cost().of(100_000.0)) / 50_000.0
    assert c.marginal_bps(100_000.0, -50_000.0) == pytest.approx(saved)
    # adding to it pays the premium's increase too
    added = (c.of(150_000.0) - c.of(100_000.0)) / 50_000.0
    assert c.marginal_bps(100_000.0, 50_000.0) == pytest.approx(added)


def test_what_a_clients_flow_reveals() -> None:
    # Y 0.9 * 100 bps * sqrt(10% of ADV) on the 40% not hedged at once
    c = cost()
    assert c.flow_bps(100_000.0, 0.6) == pytest.approx(90.0 * math.sqrt(0.1) * 0.4)
    assert c.flow_bps(0.0, 0.6) == 0.0
    assert c.flow_bps(100_000.0, 1.0) == 0.0  # all hedged at once: nothing left exposed
