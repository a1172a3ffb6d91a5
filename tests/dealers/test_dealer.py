"""One simulated dealer's state: its opening inventory, its memory of what the client
asked, its trades and the axe feed that publishes its position."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from dealers.axes import AxeFeed
from dealers.config import DealerSpec, load_panel
from dealers.dealer import SimDealer
from dealers.pricing import FLOW_HALF_LIFE_S
from router.domain import NANOS_PER_SECOND, DealerId, QuoteRequest, RfqId, Side, Symbol

ADV = 2_000_000


@pytest.fixture(scope="module")
def spec() -> DealerSpec:
    return load_panel("equities").dealers[0]


def request(side: Side | None, qty: int) -> QuoteRequest:
    return QuoteRequest(RfqId("r"), Symbol("QDI"), side, qty, (DealerId("ALPHA"),), 10**10)


def test_a_dealer_opens_flat_or_axed_as_its_generator_draws(spec: DealerSpec) -> None:
    a = SimDealer.open(spec, np.random.default_rng(1), 7, ADV)
    b = SimDealer.open(spec, np.random.default_rng(1), 7, ADV)
    assert a.inventory == b.inventory == a.book.start_inventory and a.owner == 7
    axed_spec = replace(spec, axe_prob=1.0, axe_size=0.1)
    axed = SimDealer.open(axed_spec, np.random.default_rng(1), 7, ADV)
    assert abs(axed.inventory) == 0.1 * ADV


def test_the_clients_requests_are_remembered_net_and_fade_by_half_life(spec: DealerSpec) -> None:
    d = SimDealer.open(spec, np.random.default_rng(2), 7, ADV)
    d.remember(request(Side.SELL, 30_000), 0)
    d.remember(request(Side.BUY, 10_000), 0)
    d.remember(request(None, 50_000), 0)  # a two-sided request does not say which
    assert d.flow(Side.SELL, 0) == 20_000.0 and d.flow(Side.BUY, 0) == 0.0
    later = int(FLOW_HALF_LIFE_S * NANOS_PER_SECOND)
    assert d.flow(Side.SELL, later) == pytest.approx(10_000.0)


def test_a_client_trade_moves_the_position_and_the_credit_used(spec: DealerSpec) -> None:
    d = SimDealer.open(spec, np.random.default_rng(3), 7, ADV)
    d.inventory = 5_000.0
    assert d.short_of_inventory(request(Side.BUY, 20_000))
    assert not d.short_of_inventory(request(Side.SELL, 20_000))
    index = d.trade(0, Side.BUY, 20_000, 100.5, 100.0)  # the client buys: the dealer sells
    assert (index, d.inventory, d.credit_used) == (0, -15_000.0, 20_000 * 100.5)


def test_the_axe_feed_publishes_each_change_of_the_rounded_position(spec: DealerSpec) -> None:
    class Clock:
        now = 0

        def now_ns(self) -> int:
            return self.now

    clock = Clock()
    feed = AxeFeed(ADV, clock)
    d = SimDealer.open(spec, np.random.default_rng(4), 7, ADV)
    d.inventory = 0.07 * ADV  # shown to the nearest 40th of ADV
    feed.update(d)
    clock.now = 5
    d.inventory += 1_000.0  # the rounding does not change: nothing new to publish
    feed.update(d)
    d.inventory = -0.02 * ADV
    feed.update(d)
    dealer = spec.dealer_id
    assert feed.log == [(0, dealer, 0.075 * ADV), (5, dealer, -0.025 * ADV)]
    assert feed.axes() == {dealer: -0.025 * ADV}
