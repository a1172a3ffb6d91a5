"""A dealer's book of client trades and hedges (dealers/pnl.py), on hand-checked cases."""

from __future__ import annotations

import math

import pytest

from dealers.pnl import DealerBook, size_bucket
from dealers.pricing import CarryCost
from router.domain import DealerId, Side

ADV = 1_000_000.0
D = DealerId("D")


def charge() -> CarryCost:
    # the end of day's unwinding: 2/3 * 0.9 * 100 = 60 bps x sqrt(x / ADV) per unit
    return CarryCost(adv=ADV, sigma_bps=100.0, impact_y=0.9, risk_aversion=5.0, hold_s=900.0)


def u(x: float) -> float:
    return 60.0 * abs(x) * math.sqrt(abs(x) / ADV)


def test_a_hedged_buy_from_a_client() -> None:
    book = DealerBook(D, 0.0, ADV)
    # the client sells 10k to the dealer at 99.90, fair 100: 10 bps of edge
    k = book.trade(1, Side.SELL, 10_000, 99.90, 100.0)
    # it sells 8k back on the screen at 99.85 (spread and its own impact)
    book.hedge_fill(k, Side.SELL, 5_000, 99.86)
    book.hedge_fill(k, Side.SELL, 3_000, 99.83)
    (p,) = book.mark(99.80, charge())
    assert p.edge == pytest.approx(10_000 * 0.10)
    # long 10k bought at 100 (fair) marked at 99.80, short 8k sold at 99.86/99.83
    assert p.market == pytest.approx(10_000 * -0.20 + 5_000 * 0.06 + 3_000 * 0.03)
    # 2k left, charged its unwinding at the mark
    assert p.unwind == pytest.approx(u(2_000) * 99.80 / 1e4)
    assert p.pnl == pytest.approx(p.edge + p.market - p.unwind)
    # total: cash and marks, the long way round
    cash = -10_000 * 99.90 + 5_000 * 99.86 + 3_000 * 99.83
    assert p.pnl == pytest.approx(cash + 2_000 * 99.80 - u(2_000) * 99.80 / 1e4)
    assert p.pnl_bps == pytest.approx(p.pnl / (10_000 * 100.0) * 1e4)
    assert (p.size_adv, p.client_side, p.qty) == (0.01, Side.SELL, 10_000)


def test_charges_add_up_to_what_the_day_did_to_the_book() -> None:
    # long 50k at the start; sells 30k to one client, then buys 60k from another
    book = DealerBook(D, 50_000.0, ADV)
    book.trade(1, Side.BUY, 30_000, 100.05, 100.0)
    book.trade(2, Side.SELL, 60_000, 99.95, 100.0)
    first, second = book.mark(100.0, charge())
    # the first took 30k off the axe: credited what that saved
    assert first.unwind == pytest.approx((u(20_000) - u(50_000)) * 100.0 / 1e4)
    assert first.unwind < 0
    assert second.unwind == pytest.approx((u(80_000) - u(20_000)) * 100.0 / 1e4)
    assert first.unwind + second.unwind == pytest.approx((u(80_000) - u(50_000)) * 100.0 / 1e4)
    # a flat mark: only the edges and the charges
    assert first.market == pytest.approx(0.0)
    assert first.edge == pytest.approx(30_000 * 0.05)


def test_bad_trades_are_refused() -> None:
    book = DealerBook(D, 0.0, ADV)
    with pytest.raises(ValueError, match="qty, price and fair > 0"):
        book.trade(1, Side.BUY, 0, 100.0, 100.0)
    assert book.trades == []


@pytest.mark.parametrize(
    ("size", "bucket"),
    [(0.005, "<2%"), (0.02, "2-5%"), (0.07, "5-10%"), (0.2, "10-25%"), (0.3, None)],
)
def test_size_buckets(size: float, bucket: str | None) -> None:
    assert size_bucket(size) == bucket
