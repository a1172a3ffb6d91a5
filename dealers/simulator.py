"""The multi-dealer RFQ venue of a simulated world: a panel of dealer personalities
answering requests for quote through the RFQ protocol (dealers/rfq.py).

`SimRfqVenue` is the platform. It runs each RFQ's lifecycle on the kernel's clock (the
dealers' answers after their latency, the close at the time limit, quote expiry, hits
and the dealer's last look after its delay, the end) and publishes every event. The
dealers behind it are assembled from one part per concern:
- dealers/dealer.py: each dealer's state: position, credit used, what the client asked
  it lately, and its book of client trades with their hedges;
- dealers/quoting.py: what a dealer does with a request (answer, decline or quote, at
  what price) and its last look, all drawn from the dealer's own generator;
- dealers/leakage.py: what the dealers do on the lit screen once an RFQ ends: the ones
  that did not trade front-run, the one that traded hedges;
- dealers/axes.py: the axe feed, each dealer's published position;
- dealers/truth.py: the oracle, for every (request, dealer) the true probability that the
  dealer answers with a quote in time and that its quote is the best one (`truth`): for
  evaluation code (the models issue compares learned models with it), never the router.

Every client trade is booked with its hedges (dealers/pnl.py): `pnl()` values them at
the fair price now, so the dealers' own economics can be checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dealers.axes import AxeFeed
from dealers.config import DealerPanel
from dealers.dealer import SimDealer
from dealers.leakage import LitLeakage
from dealers.pnl import TradePnl
from dealers.quoting import Answer, QuoteModel, last_look_refusal
from dealers.rfq import LegState, RfqError, RfqSession
from dealers.truth import DealerTruth, p_lowest
from router.domain import (
    ChildId,
    ChildOrder,
    ChildOrderFilled,
    ChildOrderRejected,
    DealerId,
    DomainError,
    Event,
    Instrument,
    Nanos,
    QuoteRequest,
    RfqEnded,
    RfqId,
    Side,
    VenueId,
    VenueKind,
)
from router.ports import EventSink
from simulators.kernel import Kernel
from simulators.markets import LitMarket

#: one-way latency between the client and the RFQ platform
PLATFORM_LATENCY_NS = 2_000_000
DEALER_OWNER_BASE = 1_000_000  # book owner ids of dealers' own lit orders


@dataclass
class _Rfq:
    session: RfqSession
    side: Side | None
    answers: dict[DealerId, Answer]
    # per dealer and client side: the client's recent requests before this one
    flow: dict[DealerId, dict[Side, float]] = field(default_factory=dict)
    fair_at_quote: dict[DealerId, float] = field(default_factory=dict)
    traded_side: Side | None = None
    ended: bool = False


class SimDealerVenue:
    """One dealer as a `Venue` of kind RFQ: a child order sent here with `quote_id` hits
    that dealer's quote (FIX QuoteResponse, or NewOrderSingle with QuoteID)."""

    def __init__(self, dealer: DealerId, platform: SimRfqVenue) -> None:
        self._id = VenueId(dealer)
        self._platform = platform

    @property
    def venue_id(self) -> VenueId:
        return self._id

    @property
    def kind(self) -> VenueKind:
        return VenueKind.RFQ

    def submit(self, child: ChildOrder) -> None:
        self._platform.hit(child)

    def cancel(self, child_id: ChildId) -> None:
        """A hit cannot be called back: the fill or last-look answer will come."""

    def firm_up(self, child_id: ChildId, qty: int) -> None:
        """Dealers take no conditional orders."""


class SimRfqVenue:
    """The RFQ platform and the dealers behind it; implements `router.ports.RfqChannel`."""

    def __init__(
        self,
        panel: DealerPanel,
        instrument: Instrument,
        daily_vol: float,
        market: LitMarket,
        kernel: Kernel,
        sink: EventSink,
        rng_for: Callable[[str], np.random.Generator],
    ) -> None:
        self.panel = panel
        self.instrument = instrument
        self._market = market
        self._kernel = kernel
        self._sink = sink
        self._dealers: dict[DealerId, SimDealer] = {
            spec.dealer_id: SimDealer.open(
                spec, rng_for(f"dealer/{spec.dealer_id}"), DEALER_OWNER_BASE + i, instrument.adv
            )
            for i, spec in enumerate(panel.dealers)
        }
        self._quoting = QuoteModel(panel, instrument, daily_vol, market)
        self._rfqs: dict[RfqId, _Rfq] = {}
        self._quotes: dict[str, tuple[RfqId, DealerId]] = {}
        self.venues: dict[VenueId, SimDealerVenue] = {
            VenueId(d): SimDealerVenue(d, self) for d in self._dealers
        }
        self.truth: list[DealerTruth] = []
        # compiled (or loaded from the cache) now, not at a live service's first request
        p_lowest(np.ones(1), np.zeros(1), np.ones(1), n=2)
        self.log: list[Event] = []
        self._axes = AxeFeed(instrument.adv, kernel.clock)
        for dealer in self._dealers.values():
            self._axes.update(dealer)
        self._leakage = LitLeakage(panel, instrument, self._dealers, market, kernel, self._axes)

    # ---------------------------------------------------------------- public

    def axes(self) -> dict[DealerId, float]:
        """The axe feed now: each dealer's published position in units (> 0 long: it
        wants the client to buy), rounded to a 40th of ADV; 0 = no axe."""
        return self._axes.axes()

    @property
    def axe_log(self) -> list[tuple[Nanos, DealerId, float]]:
        """Every change of the axe feed: (ts, dealer, units)."""
        return self._axes.log

    def inventory(self, dealer: DealerId) -> float:
        return self._dealers[dealer].inventory

    def pnl(self) -> list[TradePnl]:
        """Every dealer's client trades so far, valued at the fair price now: hedges as
        they traded, the rest charged its square-root unwinding cost at the normal
        daily volatility (dealers/pnl.py). In trade order per dealer, dealers in the
        panel's order."""
        q = self._quoting
        fair = q.fair(self._kernel.clock.now_ns())
        out: list[TradePnl] = []
        for d in self._dealers.values():
            out.extend(d.book.mark(fair, q.carry_cost(d.spec, q.vol_bps)))
        return out

    def session(self, rfq_id: RfqId) -> RfqSession:
        return self._rfqs[rfq_id].session

    def request(self, request: QuoteRequest) -> None:
        """Send a QuoteRequest. Bad input raises DomainError and changes nothing."""
        if request.symbol != self.instrument.symbol:
            raise DomainError(
                f"RFQ {request.rfq_id}: unknown symbol {request.symbol!r} for this panel"
            )
        unknown = [d for d in request.dealers if d not in self._dealers]
        if unknown:
            raise DomainError(f"RFQ {request.rfq_id}: unknown dealer {unknown[0]!r}")
        if request.rfq_id in self._rfqs:
            raise DomainError(f"RFQ {request.rfq_id}: duplicate RFQ id")
        now = self._kernel.clock.now_ns()
        session = RfqSession(request, now)
        answers = {d: self._quoting.draw(self._dealers[d], request, now) for d in request.dealers}
        flow = {}
        for d in request.dealers:
            dealer = self._dealers[d]
            flow[d] = {s: dealer.flow(s, now) for s in (Side.BUY, Side.SELL)}
            dealer.remember(request, now)
        rfq = _Rfq(session, request.side, answers, flow)
        self._rfqs[request.rfq_id] = rfq
        self._publish(session.log[:])
        asked = [self._dealers[d] for d in request.dealers]
        self.truth.extend(self._quoting.truths(request, asked, now, flow))
        for d, answer in answers.items():
            if answer.responds:
                self._kernel.schedule(now + answer.latency_ns, self._answer_cb(rfq, d))
        self._kernel.schedule(session.deadline_ns, lambda: self._close(rfq))

    def finish(self, rfq_id: RfqId) -> None:
        rfq = self._rfqs.get(rfq_id)
        if rfq is None:
            raise DomainError(f"unknown RFQ {rfq_id!r}")
        self._kernel.schedule_in(PLATFORM_LATENCY_NS, lambda: self._finish(rfq))

    def hit(self, child: ChildOrder) -> None:
        self._kernel.schedule_in(PLATFORM_LATENCY_NS, lambda: self._hit(child))

    # ---------------------------------------------------------------- protocol steps

    def _answer_cb(self, rfq: _Rfq, dealer_id: DealerId) -> Callable[[], None]:
        return lambda: self._answer(rfq, dealer_id)

    def _answer(self, rfq: _Rfq, dealer_id: DealerId) -> None:
        session, request = rfq.session, rfq.session.request
        dealer = self._dealers[dealer_id]
        answer = rfq.answers[dealer_id]
        now = self._kernel.clock.now_ns()
        if session.legs[dealer_id].state not in (LegState.REQUESTED, LegState.TIMED_OUT):
            return
        if answer.reject is not None:
            events = session.reject(dealer_id, answer.reject, answer.reject.name.lower(), now)
        else:
            flow = rfq.flow[dealer_id]
            quote, fair = self._quoting.quote(dealer, request, answer.noise_bps, flow, now)
            rfq.fair_at_quote[dealer_id] = fair
            events = session.quote(quote, now)  # a late quote is logged and ignored
            if session.legs[dealer_id].state is LegState.QUOTED:
                self._quotes[quote.quote_id] = (request.rfq_id, dealer_id)
                self._kernel.schedule(quote.valid_until_ns + 1, lambda: self._expire(rfq))
        self._publish(events)
        if session.state.value == "open" and session.all_answered:
            self._close(rfq)

    def _close(self, rfq: _Rfq) -> None:
        if rfq.session.state.value != "open":
            return
        self._after(rfq, rfq.session.close(self._kernel.clock.now_ns()))

    def _finish(self, rfq: _Rfq) -> None:
        if rfq.session.terminal:
            return
        try:
            events = rfq.session.finish(self._kernel.clock.now_ns())
        except RfqError:
            # a hit is still in its last look: finish once it is answered
            self._kernel.schedule_in(PLATFORM_LATENCY_NS, lambda: self._finish(rfq))
            return
        self._after(rfq, events)

    def _expire(self, rfq: _Rfq) -> None:
        self._after(rfq, rfq.session.expire_quotes(self._kernel.clock.now_ns()))

    def _hit(self, child: ChildOrder) -> None:
        now = self._kernel.clock.now_ns()
        ref = self._quotes.get(child.quote_id or "")
        if ref is None:
            why = "unknown quote" if child.quote_id else "needs the quote_id of a live quote"
            self._publish([ChildOrderRejected(now, child.child_id, child.venue, why)])
            return
        rfq_id, dealer_id = ref
        rfq = self._rfqs[rfq_id]
        if dealer_id != child.venue:
            reason = f"quote {child.quote_id} is {dealer_id}'s, not {child.venue}'s"
            self._publish([ChildOrderRejected(now, child.child_id, child.venue, reason)])
            return
        try:  # the session refuses a side the request did not ask for
            events = rfq.session.hit(dealer_id, child.qty, child.child_id, now, side=child.side)
        except RfqError as exc:
            self._publish([ChildOrderRejected(now, child.child_id, child.venue, str(exc))])
            return
        self._publish(events)
        spec = self._dealers[dealer_id].spec
        delay = int(spec.last_look_ms * 1e6)
        self._kernel.schedule_in(delay, lambda: self._last_look(rfq, dealer_id, child))

    def _last_look(self, rfq: _Rfq, dealer_id: DealerId, child: ChildOrder) -> None:
        now = self._kernel.clock.now_ns()
        dealer = self._dealers[dealer_id]
        quote = rfq.session.legs[dealer_id].quote
        assert quote is not None
        price = quote.price_for(child.side)
        assert price is not None
        fair_now = self._quoting.fair(now)
        u = rfq.answers[dealer_id].last_look_u
        reason = last_look_refusal(
            dealer.spec, child.side, rfq.fair_at_quote[dealer_id], fair_now, u
        )
        if reason is not None:
            events = rfq.session.last_look_reject(dealer_id, reason, now)
            self._publish(events)
            self._publish([ChildOrderRejected(now, child.child_id, child.venue, reason)])
            return
        events = rfq.session.fill(dealer_id, now)
        rfq.traded_side = child.side
        qty = rfq.session.legs[dealer_id].hit_qty
        before = dealer.inventory
        trade = dealer.trade(now, child.side, qty, price, fair_now)
        self._axes.update(dealer)
        self._publish(events)
        self._publish(
            [
                ChildOrderFilled(
                    now, child.child_id, child.venue, child.side, qty, price, 0.0, "rfq", 0
                )
            ]
        )
        self._leakage.hedge(dealer, child.side, before, trade)

    def _after(self, rfq: _Rfq, events: list[Event]) -> None:
        self._publish(events)
        if not rfq.ended and any(isinstance(e, RfqEnded) for e in events):
            rfq.ended = True
            self._leakage.front_run(rfq.session, rfq.traded_side)

    def _publish(self, events: list[Event]) -> None:
        for e in events:
            self.log.append(e)
            self._sink.publish(e)
