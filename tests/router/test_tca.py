import pytest

from router.domain import ChildId, ChildOrderFilled, Side, VenueId, VenueKind
from router.tca import implementation_shortfall_bps, summarize


def fill(qty, price, fee=0.0, venue="LITA"):
    return ChildOrderFilled(0, ChildId("c"), VenueId(venue), Side.SELL, qty, price, fee, "taker", 0)


def test_sell_below_arrival_is_a_cost():
    # sold 1,000 at 99.90 against an arrival mid of 100: 10 bps
    assert implementation_shortfall_bps(Side.SELL, 1000, 100.0, 100.0, [fill(1000, 99.9)]) == (
        pytest.approx(10.0)
    )


def test_buy_above_arrival_is_a_cost_and_fees_add():
    f = fill(1000, 100.1, fee=3.0)
    assert implementation_shortfall_bps(Side.BUY, 1000, 100.0, 100.0, [f]) == pytest.approx(
        10.0 + 1e4 * 3.0 / 100_000
    )


def test_unfilled_quantity_is_charged_at_the_horizon_mid():
    # half sold at arrival, the other half never: the price fell 1% meanwhile
    is_bps = implementation_shortfall_bps(Side.SELL, 1000, 100.0, 99.0, [fill(500, 100.0)])
    assert is_bps == pytest.approx(50.0)


def test_summary_mix_and_completion():
    fills = [fill(600, 99.9), fill(400, 99.95, venue="DARKX")]
    s = summarize(
        Side.SELL,
        2000,
        100.0,
        100.0,
        99.9,
        fills,
        {VenueId("LITA"): VenueKind.LIT, VenueId("DARKX"): VenueKind.DARK},
    )
    assert s.completion == 0.5
    assert s.venue_mix == pytest.approx({"lit": 0.6, "dark": 0.4, "rfq": 0.0})
    assert s.avg_price == pytest.approx(99.92)
    # sold above the market VWAP: negative slippage (a gain) for a seller
    assert s.vwap_slippage_bps < 0
