from router.domain import (
    ChildId,
    ChildOrder,
    ChildOrderAccepted,
    ChildOrderCanceled,
    ChildOrderFilled,
    OrdType,
    ParentId,
    Side,
    TimeInForce,
    VenueId,
)
from simulators.scenario import load_scenario
from simulators.world import SimWorld


class Sink:
    def __init__(self):
        self.events = []

    def publish(self, e):
        self.events.append(e)


def child(cid, side, qty, limit, tif=TimeInForce.DAY, post_only=False):
    return ChildOrder(
        ChildId(cid),
        ParentId("P"),
        VenueId("LITA"),
        side,
        qty,
        OrdType.LIMIT,
        tif,
        limit_ticks=limit,
        post_only=post_only,
    )


def test_cancel_right_after_submit_never_overtakes_it():
    for seed in range(20):
        sink = Sink()
        w = SimWorld.build(load_scenario("calm"), seed, sink)
        bid = w.market.snapshot(0).bid_ticks
        venue = w.lit[VenueId("LITA")]
        venue.submit(child("a", Side.BUY, 500, bid - 5))
        venue.cancel(ChildId("a"))
        w.kernel.run_until(10**9)
        kinds = [type(e) for e in sink.events]
        assert kinds == [ChildOrderAccepted, ChildOrderCanceled], seed
        assert sink.events[1].canceled_qty == 500


def test_taker_fills_pay_the_taker_fee_and_report_in_order():
    sink = Sink()
    w = SimWorld.build(load_scenario("calm"), 1, sink)
    snap = w.market.snapshot(0)
    w.lit[VenueId("LITA")].submit(child("t", Side.SELL, 300, snap.bid_ticks - 3, TimeInForce.IOC))
    w.kernel.run_until(10**9)
    assert isinstance(sink.events[0], ChildOrderAccepted)
    fills = [e for e in sink.events if isinstance(e, ChildOrderFilled)]
    assert fills and all(f.liquidity == "taker" for f in fills)
    assert all(abs(f.fee - 0.0030 * f.qty) < 1e-12 for f in fills)
    assert [f.leaves_qty for f in fills] == sorted((f.leaves_qty for f in fills), reverse=True)


def test_post_only_that_would_cross_is_rejected():
    from router.domain import ChildOrderRejected

    sink = Sink()
    w = SimWorld.build(load_scenario("calm"), 1, sink)
    ask = w.market.snapshot(0).venues[0].ask_ticks
    w.lit[VenueId("LITA")].submit(child("p", Side.BUY, 100, ask, post_only=True))
    w.kernel.run_until(10**9)
    rejected = [e for e in sink.events if isinstance(e, ChildOrderRejected)]
    assert rejected and "post-only" in rejected[0].reason
