"""The desk's belief of each dealer's position within the step of its published axe:
narrowed by the desk's own trades (against where the feed then shows it), moved to the
edge it crossed by a feed change the desk did not cause, weighed by quotes, blurred by
time and reset each day."""

from __future__ import annotations

import numpy as np
import pytest

from dealers.axes import AXE_STEP_ADV
from models.serving.inventory import (
    BLUR_HALF_LIFE_TOD,
    GRID,
    PositionBeliefs,
    gaussian_likelihood,
    uniform,
)

ADV = 100_000.0
STEP = AXE_STEP_ADV * ADV  # 2,500 units
HALF = STEP / 2


def test_an_unseen_dealer_is_even_odds_within_half_a_step() -> None:
    b = PositionBeliefs(ADV)
    assert b.grid[0] == -HALF and b.grid[-1] == HALF and b.grid.size == GRID
    np.testing.assert_allclose(b.current("A", 0.0), uniform())


def test_a_trade_and_the_feed_after_it_intersect() -> None:
    # at axe 0 the position is within [-1250, 1250]; the dealer buys 1,875 from the
    # client, so it is within [625, 3125], and the feed shows 2,500: [1250, 3750]. Both
    # hold: [1250, 3125], offsets [-1250, 625] from the new axe
    b = PositionBeliefs(ADV)
    b.commit("A", 0.0, tod=0.1)
    b.traded("A", 1_875.0)
    w = b.current("A", STEP, tod=0.1)
    assert w.sum() == pytest.approx(1.0)
    assert np.all(w[b.grid > 625.0 + 1e-6] == 0.0)
    inside = w[b.grid < 625.0 - 1e-6]
    np.testing.assert_allclose(inside, inside[0])  # still even odds where possible
    # the same, whichever the desk learns first: nothing is kept until `commit`
    b2 = PositionBeliefs(ADV)
    b2.commit("A", 0.0, tod=0.1)
    w_feed_first = b2.current("A", STEP, tod=0.1)
    b2.traded("A", 1_875.0)
    np.testing.assert_allclose(b2.current("A", STEP, tod=0.1), w)
    assert not np.allclose(w_feed_first, w)


def test_a_feed_change_nobody_explains_puts_the_position_at_the_edge_it_crossed() -> None:
    b = PositionBeliefs(ADV)
    b.commit("A", 0.0, tod=0.1)
    up = b.current("A", STEP, tod=0.1)  # its hedges or other business bought
    assert up[0] == up.max() and np.all(np.diff(up) < 0)
    down = b.current("A", -STEP, tod=0.1)
    np.testing.assert_allclose(down, up[::-1])


def test_quotes_weigh_the_belief_and_time_blurs_it() -> None:
    b = PositionBeliefs(ADV)
    b.commit("A", 0.0, tod=0.2)
    # a quote explained best by a long position (offset +625)
    residuals = (b.grid - 625.0) / 100.0
    b.weigh("A", 0.0, gaussian_likelihood(residuals, 2.0))
    w = b.current("A", 0.0)
    assert float(w @ b.grid) == pytest.approx(625.0, abs=60.0)
    # a belief kept for another axe is left alone
    b.weigh("A", STEP, gaussian_likelihood(-residuals, 2.0))
    np.testing.assert_array_equal(b.current("A", 0.0), w)
    # half of it after a half-life, even odds after many
    half = b.current("A", 0.0, tod=0.2 + BLUR_HALF_LIFE_TOD)
    np.testing.assert_allclose(half, 0.5 * w + 0.5 / GRID)
    later = b.current("A", 0.0, tod=0.2 + 30 * BLUR_HALF_LIFE_TOD)
    np.testing.assert_allclose(later, uniform(), atol=1e-9)


def test_a_new_day_forgets_every_position() -> None:
    b = PositionBeliefs(ADV)
    b.commit("A", 0.0, tod=0.1)
    b.weigh("A", 0.0, gaussian_likelihood(b.grid / 100.0, 1.0))
    b.new_day()
    np.testing.assert_allclose(b.current("A", 0.0), uniform())
    assert b.kept_tod("A") == 0.0


def test_likelihood_is_scaled_to_its_best_offset() -> None:
    like = gaussian_likelihood(np.array([3.0, -1.0, 40.0]), 2.0)
    assert like[1] == 1.0
    assert like[0] == pytest.approx(np.exp(-0.5 * (9.0 - 1.0) / 4.0))
    assert like[2] > 0.0  # far, yet not lost to underflow against the best
