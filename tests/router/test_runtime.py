"""The engine on an asyncio loop (router/runtime.py), with fake venues."""

import asyncio

from router.domain import (
    ChildOrder,
    ChildOrderAccepted,
    ChildOrderExpired,
    ChildOrderFilled,
    ParentId,
    ParentOrder,
    Side,
    Symbol,
    VenueId,
    VenueKind,
)
from router.execution import ExecutionPorts, LitFees, build_execution
from router.ports import MarketSnapshot, VenueQuote
from router.risk import RiskGate, RiskLimits
from router.runtime import AsyncioScheduler, LoopClock
from router.strategies import strategy_spec
from router.strategies.twap import TwapSlicer

NS = 1_000_000_000


class FakeMarket:
    def __init__(self, clock):
        self.clock = clock

    def touches_before(self, lags_s):
        return [(9_999, 10_001) for _ in lags_s]  # a still market

    def flow_over(self, windows_s):
        return [(0, 0) for _ in windows_s]  # and a quiet tape

    def snapshot(self):
        quote = VenueQuote(VenueId("LIT"), 9_999, 5_000, 10_001, 5_000, 20_000, 20_000)
        return MarketSnapshot(
            self.clock.now_ns(),
            Symbol("X"),
            0.01,
            9_999,
            10_001,
            20_000,
            20_000,
            (quote,),
            None,
            0,
            0.0,
        )


class FakeVenue:
    """Fills every order at once at the touch, from the loop (as a real session would)."""

    venue_id = VenueId("LIT")
    kind = VenueKind.LIT

    def __init__(self, loop, clock):
        self.loop, self.clock, self.sink = loop, clock, None

    def submit(self, child: ChildOrder) -> None:
        def report():
            now = self.clock.now_ns()
            self.sink(ChildOrderAccepted(now, child.child_id, self.venue_id))
            px = 99.99 if child.side is Side.SELL else 100.01
            self.sink(
                ChildOrderFilled(
                    now, child.child_id, self.venue_id, child.side, child.qty, px, 0.0, "taker", 0
                )
            )

        self.loop.call_soon(report)

    def cancel(self, child_id):
        self.loop.call_soon(
            lambda: self.sink(ChildOrderExpired(self.clock.now_ns(), child_id, self.venue_id, 0))
        )

    def firm_up(self, child_id, qty):
        pass


async def test_parent_runs_to_completion_on_the_loop_at_200x():
    loop = asyncio.get_running_loop()
    clock = LoopClock(loop, origin_ns=0, speed=200.0)
    scheduler = AsyncioScheduler(loop, clock)
    venue = FakeVenue(loop, clock)
    done = loop.create_future()
    parent = ParentOrder(ParentId("P"), Symbol("X"), Side.SELL, 12_000, 0, 300 * NS)

    def on_event(e):
        if type(e).__name__ == "ParentOrderCompleted" and not done.done():
            done.set_result(e)

    ports = ExecutionPorts(
        {venue.venue_id: venue},
        {venue.venue_id: LitFees(0.0, 0.0)},
        FakeMarket(clock),
        clock,
        scheduler,
        lot_size=100,
    )
    ex = build_execution(
        parent,
        TwapSlicer(),
        strategy_spec("twap"),
        ports,
        on_event=on_event,
        # the fake market prints no volume: no participation cap to measure against
        risk=RiskGate(RiskLimits(max_participation=1.0)),
    )
    venue.sink = ex.publish
    ex.start()
    completed = await asyncio.wait_for(done, timeout=10.0)  # 300 s of clock in ~1.5 s
    assert completed.filled_qty == 12_000
    assert ex.result.filled_qty == 12_000 and ex.in_flight == 0
    # fills spread over the horizon at the decision times, as TWAP asks (loose bounds:
    # the loop's own delays shift a 200x clock by a few seconds)
    assert len({f.ts_ns // (10 * NS) for f in ex.result.fills}) >= 6
    assert sum(f.qty for f in ex.result.fills if f.ts_ns < 100 * NS) <= 0.5 * 12_000
    assert scheduler.pending == 0


async def test_cancel_all_drops_pending_callbacks():
    loop = asyncio.get_running_loop()
    clock = LoopClock(loop, speed=1.0)
    scheduler = AsyncioScheduler(loop, clock)
    ran = []
    scheduler(clock.now_ns() + 10 * NS, lambda: ran.append(1))
    scheduler(clock.now_ns(), lambda: ran.append(0))
    assert scheduler.pending == 2
    await asyncio.sleep(0.01)
    scheduler.cancel_all()
    await asyncio.sleep(0.01)
    assert ran == [0] and scheduler.pending == 0
