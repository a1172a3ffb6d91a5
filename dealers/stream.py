"""Days of RFQ flow against the simulated panel: the data behind dealer scorecards and the
desk's history that panel selection starts from.

A simple desk sends `n_rfqs` requests spread over the scenario's horizon, each for a
block (lognormal around `block_share` of the scenario's parent, either side), to a panel
picked by the selector. At the time limit it hits the best quote if that beats what the
block would cost on the screen (half spread, fee and square-root impact), tries the
next quote after a last-look refusal, then ends the RFQ. Everything is logged as the
platform logs it, with the dealers' true probabilities alongside.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from dealers.config import DealerPanel
from dealers.panel import HeuristicPanel
from dealers.pnl import TradePnl
from dealers.simulator import SimRfqVenue
from dealers.truth import DealerTruth
from router.allocation import screen_cost_bps
from router.domain import (
    NANOS_PER_SECOND,
    ChildId,
    ChildOrder,
    ChildOrderFilled,
    ChildOrderRejected,
    DealerId,
    Event,
    OrdType,
    ParentId,
    Quote,
    QuoteReceived,
    QuoteRequest,
    RfqClosed,
    RfqId,
    Side,
    TimeInForce,
    VenueId,
)
from router.tca import PricePath
from simulators.kernel import rng_for
from simulators.scenario import Scenario
from simulators.world import SimWorld

IMPACT_Y = 0.84  # the desk's square-root-law estimate (`blockroute bench impact`)
TAIL_S = 600.0  # the market runs on after the last RFQ, for leakage markouts


@dataclass
class RfqDay:
    seed: int
    events: list[Event]
    path: PricePath
    truth: list[DealerTruth]
    panel: DealerPanel
    axe_log: list[tuple[int, DealerId, float]]  # the axe feed: (ts, dealer, units)
    # the client's own side of each request, as its order records keep it: a two-sided
    # request hides it from the dealers, not from the desk's log
    sides: dict[RfqId, Side]
    # every dealer's client trades of the day, valued at its end (dealers/pnl.py)
    pnl: list[TradePnl] = field(default_factory=list)


@dataclass
class _Pending:
    request: QuoteRequest
    quotes: dict[str, Quote] = field(default_factory=dict)
    tried: set[str] = field(default_factory=set)
    hit: ChildId | None = None


class _Desk:
    """The client side of one day: requests, hits, passes."""

    def __init__(
        self,
        world: SimWorld,
        venue: SimRfqVenue,
        selector: HeuristicPanel,
        rng: np.random.Generator,
        panel_sizes: Sequence[int],
        two_sided_share: float,
    ) -> None:
        self.world = world
        self.venue = venue
        self.selector = selector
        self.rng = rng
        self.panel_sizes = tuple(panel_sizes)
        self.two_sided_share = two_sided_share
        self.pending: dict[RfqId, _Pending] = {}
        self.sides: dict[RfqId, Side] = {}  # a two-sided request still has one true side
        self.by_child: dict[ChildId, RfqId] = {}
        self.events: list[Event] = []
        sc = world.scenario
        self._impact_bps = IMPACT_Y * sc.market.daily_vol * 1e4
        self._fee = min((v.taker_fee for v in sc.lit), default=0.0)
        self._seq = 0

    def publish(self, event: Event) -> None:
        self.events.append(event)
        self.selector.observe(event)
        if isinstance(event, QuoteReceived):
            p = self.pending.get(event.quote.rfq_id)
            if p is not None:
                p.quotes[event.quote.dealer] = event.quote
        elif isinstance(event, RfqClosed):
            if event.rfq_id in self.pending:
                self._decide(event.rfq_id)
        elif isinstance(event, ChildOrderFilled | ChildOrderRejected):
            rfq_id = self.by_child.pop(event.child_id, None)
            if rfq_id is not None:
                self.pending[rfq_id].hit = None
                if isinstance(event, ChildOrderFilled):
                    self._end(rfq_id)
                else:
                    self._decide(rfq_id)

    def send(self, side: Side, qty: int) -> None:
        self._seq += 1
        rfq_id = RfqId(f"Q{self.world.seed}-{self._seq}")
        two_sided = self.rng.random() < self.two_sided_share
        n = self.panel_sizes[0]
        if len(self.panel_sizes) > 1:  # one size draws nothing: the stream stays the same
            n = self.panel_sizes[int(self.rng.integers(len(self.panel_sizes)))]
        dealers, _ = self.selector.select(side, qty, n, self.rng, two_sided=two_sided)
        request = QuoteRequest(
            rfq_id=rfq_id,
            symbol=self.world.scenario.instrument.symbol,
            side=None if two_sided else side,
            qty=qty,
            dealers=tuple(dealers),
            time_limit_ns=int(self.venue.panel.time_limit_s * NANOS_PER_SECOND),
        )
        self.pending[rfq_id] = _Pending(request)
        self.sides[rfq_id] = side
        self.venue.request(request)

    def _decide(self, rfq_id: RfqId) -> None:
        p = self.pending[rfq_id]
        side = self.sides[rfq_id]
        now = self.world.clock.now_ns()
        snap = self.world.market.snapshot(now)
        mid = snap.mid
        best: Quote | None = None
        if mid is not None:
            valid = [
                q
                for d, q in p.quotes.items()
                if d not in p.tried and q.valid_until_ns >= now and q.price_for(side) is not None
            ]
            valid.sort(key=lambda q: side.sign * (q.price_for(side) or 0.0))
            best = valid[0] if valid else None
        if best is not None and mid is not None:
            price = best.price_for(side)
            assert price is not None
            cost = side.sign * (price - mid) / mid * 1e4
            adv = self.world.scenario.instrument.adv
            lit = screen_cost_bps(snap, self._fee, p.request.qty, self._impact_bps, adv)
            if cost <= lit:
                p.tried.add(best.dealer)
                child = ChildOrder(
                    child_id=ChildId(f"{rfq_id}-{best.dealer}"),
                    parent_id=ParentId(f"desk-{self.world.seed}"),
                    venue=VenueId(best.dealer),
                    side=side,
                    qty=min(best.qty, p.request.qty),
                    ord_type=OrdType.LIMIT,
                    tif=TimeInForce.IOC,
                    limit_ticks=round(price / snap.tick_size),
                    quote_id=best.quote_id,
                )
                p.hit = child.child_id
                self.by_child[child.child_id] = rfq_id
                self.venue.hit(child)
                return
        self._end(rfq_id)

    def _end(self, rfq_id: RfqId) -> None:
        self.pending.pop(rfq_id)
        self.venue.finish(rfq_id)


def run_rfq_day(
    scenario: Scenario,
    panel: DealerPanel,
    seed: int,
    n_rfqs: int,
    selector: HeuristicPanel,
    *,
    panel_size: int | Sequence[int] = 4,
    block_share: float = 0.2,
    two_sided_share: float = 0.0,
    size_adv: tuple[float, float] | None = None,
) -> RfqDay:
    """One simulated day of `n_rfqs` RFQs over the scenario's horizon. With several
    panel sizes, each RFQ asks a number of dealers drawn from them (a leakage study).
    Sizes are lognormal around `block_share` of the scenario's parent, or, with
    `size_adv`, log-uniform between those shares of ADV (a study across sizes)."""
    if n_rfqs <= 0:
        raise ValueError(f"n_rfqs must be > 0, got {n_rfqs}")
    sizes = (panel_size,) if isinstance(panel_size, int) else tuple(panel_size)
    if not sizes or min(sizes) < 1 or max(sizes) > len(panel.dealers):
        raise ValueError(f"panel sizes must be within 1..{len(panel.dealers)}, got {sizes}")
    sink = _Sink()
    world = SimWorld.build(scenario, seed, sink, panel=panel)
    assert world.rfq is not None
    rng = rng_for(seed, "desk")
    desk = _Desk(world, world.rfq, selector, rng, sizes, two_sided_share)
    sink.target = desk.publish
    inst = scenario.instrument
    horizon = scenario.horizon_s
    times = np.sort(rng.uniform(30.0, max(60.0, horizon - 120.0), n_rfqs))
    median = block_share * scenario.qty
    for t in times:
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        if size_adv is None:
            size = median * math.exp(0.5 * rng.standard_normal())
        else:
            lo, hi = math.log(size_adv[0]), math.log(size_adv[1])
            size = inst.adv * math.exp(rng.uniform(lo, hi))
        qty = int(size) // inst.lot_size * inst.lot_size
        qty = max(inst.lot_size, qty)
        world.kernel.schedule(int(t * NANOS_PER_SECOND), _sender(desk, side, qty))
    end = int((horizon + TAIL_S) * NANOS_PER_SECOND)
    world.kernel.run_until(end)
    path = PricePath(*world.market.top_of_book(0.0))
    return RfqDay(
        seed,
        desk.events,
        path,
        world.rfq.truth,
        panel,
        world.rfq.axe_log,
        dict(desk.sides),
        world.rfq.pnl(),
    )


def _sender(desk: _Desk, side: Side, qty: int) -> Callable[[], None]:
    return lambda: desk.send(side, qty)


class _Sink:
    def __init__(self) -> None:
        self.target: Callable[[Event], None] | None = None

    def publish(self, event: Event) -> None:
        if self.target is not None:
            self.target(event)
