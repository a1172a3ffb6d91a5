"""The last look on its own: the pricing itself is tested through the venue
(tests/dealers/test_simulator.py), where the market's fair price is real."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dealers.config import DealerSpec, load_panel
from dealers.quoting import last_look_refusal
from router.domain import Side


@pytest.fixture(scope="module")
def spec() -> DealerSpec:
    return replace(load_panel("equities").dealers[0], last_look_bps=2.0, last_look_prob=0.1)


def test_a_move_against_the_dealer_past_its_tolerance_is_refused(spec: DealerSpec) -> None:
    # the client buys from the dealer: a rise of 3 bps since the quote is against it
    why = last_look_refusal(spec, Side.BUY, 100.0, 100.03, 0.9)
    assert why is not None and "moved 3.0 bps" in why
    # the same rise is in its favour when the client sells to it
    assert last_look_refusal(spec, Side.SELL, 100.0, 100.03, 0.9) is None


def test_within_tolerance_it_declines_with_its_probability(spec: DealerSpec) -> None:
    assert last_look_refusal(spec, Side.BUY, 100.0, 100.01, 0.05) == "last look: declined"
    assert last_look_refusal(spec, Side.BUY, 100.0, 100.01, 0.5) is None
