"""The simulator's stylized facts: the step observer on a hand-built book, and on the
calm market, whose run it must leave exactly as it is."""

import dataclasses

import numpy as np
import pytest

from simulators import book
from simulators.facts.simulated import StepObserver, observe_market, simulated_facts
from simulators.kernel import rng_for
from simulators.market import SimMarket
from simulators.scenario import load_scenario


def rest(st, fb, side, price, qty):
    slot, leaves, status = book.submit(st, fb, 0, side, price, qty, 0, 0, 0, 0, 0)
    assert status == book.OK and leaves == qty
    return slot


def test_the_observer_tells_cancels_from_fills_on_a_hand_built_book():
    st, fb = book.new_book_state(1, 100, 64, 10), book.new_fill_buffer(16)
    obs = StepObserver(st)
    rest(st, fb, book.BID, 50, 300)
    low_bid = rest(st, fb, book.BID, 49, 200)
    rest(st, fb, book.ASK, 52, 100)
    rest(st, fb, book.ASK, 53, 400)
    obs.step(0, 0)
    assert (obs.added, obs.vanished, obs.partial) == (4, 0, 0)
    assert sorted(np.concatenate(obs.sizes).tolist()) == [100, 200, 300, 400]

    # step 1: the bid at 49 is canceled; a buyer takes the ask at 52 and 150 of 53
    book.cancel(st, low_bid)
    book.submit(st, fb, 0, book.BID, 53, 250, 0, 0, book.IOC, 100, 0)
    obs.step(1, 0)
    assert (obs.vanished, obs.partial, obs.filled) == (2, 1, 1)
    assert np.concatenate(obs.lifetimes).tolist() == pytest.approx([0.1, 0.1])

    # step 2 (a new tape bar): a seller takes the whole bid at 50; a bid rests at 48
    book.submit(st, fb, 0, book.ASK, 50, 300, 0, 0, book.IOC, 200, 1)
    rest(st, fb, book.BID, 48, 70)
    obs.step(2, 1)
    assert (obs.added, obs.vanished, obs.partial, obs.filled) == (5, 3, 1, 2)
    cancels, trades = obs.vanished - obs.filled, obs.partial + obs.filled
    assert (cancels, trades) == (1, 3)
    assert obs.traded == 250 + 300


@pytest.fixture(scope="module")
def short_calm():
    calm = load_scenario("calm")
    return dataclasses.replace(calm, horizon_s=300.0)


def test_observing_leaves_the_market_s_run_as_it_is(short_calm):
    watched = SimMarket(short_calm, rng_for(7, "market"))
    observe_market(watched, "calm", 120.0)
    plain = SimMarket(short_calm, rng_for(7, "market"))
    plain.advance_to(plain.end_ns - 1)
    for a, b in zip(
        (watched.record.ref_path, watched.record.bid_path, watched.record.ask_path),
        (plain.record.ref_path, plain.record.bid_path, plain.record.ask_path),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    assert watched.steps_done == plain.steps_done == plain.grid.n_steps


def test_calm_facts_are_those_of_its_parameters(short_calm):
    f = simulated_facts(short_calm, seed=3, window_s=120.0)
    assert f.source == "simulator" and f.window_s == pytest.approx(120.0)
    # order sizes: lognormal around the scenario's median (300 shares, 3 lots of 100)
    assert f.order_size.median == short_calm.market.order_size_median
    assert f.order_size_lots.median == 3.0
    # liquidity providers quote a few ticks from the reference price
    assert f.spread_ticks.median is not None and 2 <= f.spread_ticks.median <= 12
    assert f.trades > 0 and f.cancels > 0 and f.cancel_to_trade is not None
    assert f.interarrival_ms.median is None  # no clock finer than the step
    assert f.returns[0].n > 100
