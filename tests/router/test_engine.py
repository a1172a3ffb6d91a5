from collections import defaultdict

import pytest

from router.app import apply_overrides, run_strategy
from router.domain import ChildOrderFilled, ChildOrderSent, DecisionRecorded, Side
from simulators.scenario import load_scenario


@pytest.fixture(scope="module")
def news_run():
    run, _ = run_strategy(load_scenario("news-shock"), 11, "twap")
    return run


def test_twap_completes_exactly_and_never_overfills(news_run):
    fills = [e for e in news_run.events if isinstance(e, ChildOrderFilled)]
    assert sum(f.qty for f in fills) == 500_000
    sent = [e.child for e in news_run.events if isinstance(e, ChildOrderSent)]
    filled_by_child = defaultdict(int)
    for f in fills:
        filled_by_child[f.child_id] += f.qty
    for child in sent:
        assert filled_by_child[child.child_id] <= child.qty
        assert child.side is Side.SELL


def test_twap_follows_its_schedule(news_run):
    fills = [e for e in news_run.events if isinstance(e, ChildOrderFilled)]
    done_by_half = sum(f.qty for f in fills if f.ts_ns <= 5400 * 10**9)
    assert 0.4 * 500_000 <= done_by_half <= 0.6 * 500_000


def test_every_child_has_a_decision_with_alternatives(news_run):
    decisions = {e.decision_id: e for e in news_run.events if isinstance(e, DecisionRecorded)}
    sent = [e.child for e in news_run.events if isinstance(e, ChildOrderSent)]
    assert len(decisions) == len(sent)
    for d in decisions.values():
        assert d.alternatives and "touch_ticks" in d.inputs


def test_parent_limit_is_never_crossed():
    from router.app import EventForwarder, WorldMarketData
    from router.domain import ParentId, ParentOrder
    from router.engine import LitFees, ParentExecution
    from router.strategies import make_slicer
    from simulators.world import SimWorld

    sc = apply_overrides(load_scenario("news-shock"), 100_000, None, 5400.0)
    sink = EventForwarder()
    world = SimWorld.build(sc, 3, sink)
    arrival = world.market.mid_ticks()
    limit = int(arrival) - 20  # sell no lower than 20 bps under arrival
    parent = ParentOrder(
        ParentId("P"),
        sc.instrument.symbol,
        Side.SELL,
        100_000,
        0,
        int(5400 * 1e9),
        limit_ticks=limit,
    )
    ex = ParentExecution(
        parent,
        make_slicer("twap"),
        world.venues,
        {s.venue_id: LitFees(s.taker_fee, s.maker_fee) for s in sc.lit},
        WorldMarketData(world),
        world.clock,
        world.kernel.schedule,
        lot_size=100,
    )
    sink.target = ex.publish
    ex.start()
    world.kernel.run_until(parent.end_ns)
    assert ex.result.fills, "expected some fills above the limit"
    assert all(f.price >= limit * 0.01 - 1e-9 for f in ex.result.fills)
    assert all(c.limit_ticks >= limit for c in ex.result.children)
    assert ex.result.filled_qty <= 100_000
