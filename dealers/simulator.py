"""The multi-dealer RFQ venue of a simulated world: a panel of dealer personalities
answering requests for quote through the RFQ protocol (dealers/rfq.py).

What a dealer does with a request, all drawn when the request reaches it, from the
dealer's own generator (so runs are reproducible and the oracle below is exact):
- answers at all with its response probability (lower for clients it tiers lower), after
  a lognormal latency; an answer after the time limit is ignored as late;
- declines for lack of credit (the day's notional with this client would pass its
  line), for lack of inventory (a client buy larger than its long position, with some
  probability) or just passes;
- otherwise quotes, at most `max_qty_adv` of ADV, around the fair price (the market's
  reference price, which it sees better than the screen), each side at its own cost of
  taking the trade on (dealers/pricing.py) plus a margin:

      cost  = marginal cost of moving its inventory by the trade: the square-root cost
              of unwinding it (the panel's impact_y, the day's volatility now) and a
              premium for carrying it meanwhile (risk_aversion, hedge time)
      flow  = what the client's net recent requests on that side (decayed, half-life
              30 min) say is still to come: the square-root law's peak on that
              flow, on the share of the trade the dealer does not hedge at once
      half  = tier * spread + cost + flow
              + competition * (dealers asked - 1)          the winner's curse
              + two_sided_bps on a two-sided request        it cannot pick the side
      offer = fair * (1 + (half_buy + noise) / 1e4)
      bid   = fair * (1 - (half_sell + noise) / 1e4)

  A flat dealer's cost grows with the square root of the size; a long dealer's offer is
  cheap (selling lowers its own cost) and its bid dear: axes come from the same rule.

A hit goes through the dealer's last look: refused if fair value moved against it by
more than `last_look_bps` since its quote, or at random with `last_look_prob`.

Information: every dealer asked learns the size, and the side of a one-sided request.
When the RFQ ends, each dealer that did not trade front-runs with `front_run_prob`: it
buys (for a client buy) `front_run_share` of the size in the lit market over
`front_run_s`. On a two-sided request it knows the side only if the client traded, and
guesses it right with the panel's `side_guess`. The dealer that traded hedges
`hedge_share` of what the trade added to its position (none of a trade that shrank it)
in the lit market over `hedge_s`. Both move later lit prices like any aggressor: the
leakage a desk pays for asking too many dealers.

Every client trade is booked with its hedges (dealers/pnl.py): `pnl()` values them at
the fair price now, so the dealers' own economics can be checked.

`truth` keeps, for every (request, dealer), the true probability that the dealer
answers with a quote in time and that its quote is the best one: for evaluation code
(the models issue compares learned models with it), never for the router.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from dealers.config import TIER_RESPONSE, TIER_SPREAD, DealerPanel, DealerSpec
from dealers.pnl import DealerBook, TradePnl
from dealers.pricing import FLOW_HALF_LIFE_S, CarryCost
from dealers.rfq import LegState, RfqError, RfqSession
from router.domain import (
    NANOS_PER_SECOND,
    ChildId,
    ChildOrder,
    ChildOrderFilled,
    ChildOrderRejected,
    DealerId,
    DomainError,
    Event,
    Instrument,
    Nanos,
    Quote,
    QuoteRejectReason,
    QuoteRequest,
    RfqEnded,
    RfqId,
    Side,
    VenueId,
    VenueKind,
)
from router.ports import EventSink
from simulators.kernel import Kernel
from simulators.market import SimMarket

#: one-way latency between the client and the RFQ platform
PLATFORM_LATENCY_NS = 2_000_000
DEALER_OWNER_BASE = 1_000_000  # book owner ids of dealers' own lit orders
FRONT_RUN_SLICES = 5
HEDGE_SLICES = 10
REACH_TICKS = 2  # how far past the touch a dealer's lit IOC may reach
MIN_TWO_SIDED_HALF_BPS = 0.5  # a two-sided quote's bid stays at least 1 bps below its offer
AXE_STEP_ADV = 0.025  # granularity of the published axes


@dataclass(frozen=True, slots=True)
class DealerTruth:
    """The simulator's own probabilities for one dealer on one request (oracle)."""

    rfq_id: RfqId
    dealer: DealerId
    ts_ns: Nanos
    p_respond: float  # answers with a quote within the time limit
    p_best_buy: float  # ... and its offer is the best one (client buys)
    p_best_sell: float  # ... and its bid is the best one (client sells)

    def p_best(self, side: Side) -> float:
        return self.p_best_buy if side is Side.BUY else self.p_best_sell


@dataclass(frozen=True, slots=True)
class _Answer:
    """What a dealer decided to do with one request, drawn on arrival."""

    latency_ns: Nanos
    responds: bool
    reject: QuoteRejectReason | None
    noise_bps: float
    last_look_u: float


@dataclass
class _Dealer:
    spec: DealerSpec
    rng: np.random.Generator
    owner: int
    inventory: float  # units; > 0 long
    book: DealerBook
    credit_used: float = 0.0
    # what the client has asked this dealer for, per side (units, decayed with
    # FLOW_HALF_LIFE_S), and when that was last brought up to date
    asked: dict[Side, float] = field(default_factory=lambda: {Side.BUY: 0.0, Side.SELL: 0.0})
    asked_ns: Nanos = 0

    def _decay(self, now: Nanos) -> float:
        return float(0.5 ** ((now - self.asked_ns) / NANOS_PER_SECOND / FLOW_HALF_LIFE_S))

    def flow(self, client: Side, now: Nanos) -> float:
        """The client's net recent requests on side `client` (units, >= 0)."""
        net = self.asked[client] - self.asked[client.opposite]
        return max(0.0, net * self._decay(now))

    def remember(self, request: QuoteRequest, now: Nanos) -> None:
        decay = self._decay(now)
        for side in self.asked:
            self.asked[side] *= decay
        self.asked_ns = now
        if request.side is not None:  # a two-sided request does not say which
            self.asked[request.side] += request.qty


@dataclass
class _Rfq:
    session: RfqSession
    side: Side | None
    answers: dict[DealerId, _Answer]
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
        market: SimMarket,
        kernel: Kernel,
        sink: EventSink,
        rng_for: Callable[[str], np.random.Generator],
    ) -> None:
        self.panel = panel
        self.instrument = instrument
        self._vol_bps = daily_vol * 1e4
        self._market = market
        self._kernel = kernel
        self._sink = sink
        self._dealers: dict[DealerId, _Dealer] = {}
        for i, spec in enumerate(panel.dealers):
            rng = rng_for(f"dealer/{spec.dealer_id}")
            adv = instrument.adv
            inventory = float(rng.normal(0.0, spec.inventory_sd * adv))
            if rng.random() < spec.axe_prob:
                sign = 1.0 if rng.random() < 0.5 else -1.0
                inventory = sign * spec.axe_size * adv
            book = DealerBook(spec.dealer_id, inventory, float(adv))
            self._dealers[spec.dealer_id] = _Dealer(
                spec, rng, DEALER_OWNER_BASE + i, inventory, book
            )
        self._rfqs: dict[RfqId, _Rfq] = {}
        self._quotes: dict[str, tuple[RfqId, DealerId]] = {}
        self.venues: dict[VenueId, SimDealerVenue] = {
            VenueId(d): SimDealerVenue(d, self) for d in self._dealers
        }
        self.truth: list[DealerTruth] = []
        # compiled (or loaded from the cache) now, not at a live service's first request
        p_lowest(np.ones(1), np.zeros(1), np.ones(1), n=2)
        self.log: list[Event] = []
        # the axe feed: each dealer's position, rounded to AXE_STEP_ADV of ADV, as it
        # publishes it to clients (what it wants to unwind); (ts, dealer, units) per change
        self._axe_step = AXE_STEP_ADV * instrument.adv
        self._published: dict[DealerId, float] = {}
        self.axe_log: list[tuple[Nanos, DealerId, float]] = []
        for d in self._dealers:
            self._update_axe(d)

    # ---------------------------------------------------------------- public

    def axes(self) -> dict[DealerId, float]:
        """The axe feed now: each dealer's published position in units (> 0 long: it
        wants the client to buy), rounded to a 40th of ADV; 0 = no axe."""
        return dict(self._published)

    def _update_axe(self, dealer_id: DealerId) -> None:
        inv = self._dealers[dealer_id].inventory
        published = round(inv / self._axe_step) * self._axe_step
        if self._published.get(dealer_id) != published:
            self._published[dealer_id] = published
            self.axe_log.append((self._kernel.clock.now_ns(), dealer_id, published))

    def inventory(self, dealer: DealerId) -> float:
        return self._dealers[dealer].inventory

    def pnl(self) -> list[TradePnl]:
        """Every dealer's client trades so far, valued at the fair price now: hedges as
        they traded, the rest charged its square-root unwinding cost at the normal
        daily volatility (dealers/pnl.py). In trade order per dealer, dealers in the
        panel's order."""
        fair = self._market.fair_ticks(self._kernel.clock.now_ns()) * self.instrument.tick_size
        out: list[TradePnl] = []
        for d in self._dealers.values():
            out.extend(d.book.mark(fair, self._carry_cost(d.spec, self._vol_bps)))
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
        answers = {d: self._draw(self._dealers[d], request) for d in request.dealers}
        flow = {}
        for d in request.dealers:
            dealer = self._dealers[d]
            flow[d] = {s: dealer.flow(s, now) for s in (Side.BUY, Side.SELL)}
            dealer.remember(request, now)
        rfq = _Rfq(session, request.side, answers, flow)
        self._rfqs[request.rfq_id] = rfq
        self._publish(session.log[:])
        self._record_truth(request, answers, now, flow)
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

    # ---------------------------------------------------------------- dealers

    def _draw(self, dealer: _Dealer, request: QuoteRequest) -> _Answer:
        """Every draw is made, whatever the outcome, so the generator's stream does not
        depend on earlier branches."""
        spec, rng = dealer.spec, dealer.rng
        u_resp, u_pass, u_inv, u_ll = rng.random(4)
        z_lat, z_noise = rng.standard_normal(2)
        latency_ns = int(spec.latency_ms * 1e6 * math.exp(spec.latency_jitter * z_lat))
        reject = None
        if self._credit_short(dealer, request.qty):
            reject = QuoteRejectReason.INSUFFICIENT_CREDIT
        elif self._short_of_inventory(dealer, request) and u_inv < spec.no_inventory_prob:
            reject = QuoteRejectReason.NO_INVENTORY
        elif u_pass < spec.pass_prob:
            reject = QuoteRejectReason.PASS
        return _Answer(
            latency_ns=max(1, latency_ns),
            responds=bool(u_resp < spec.response_prob * TIER_RESPONSE[spec.client_tier]),
            reject=reject,
            noise_bps=float(z_noise * spec.quote_noise_bps),
            last_look_u=float(u_ll),
        )

    def _credit_short(self, dealer: _Dealer, qty: int) -> bool:
        notional = qty * self._market.fair_ticks(self._kernel.clock.now_ns())
        notional *= self.instrument.tick_size
        return dealer.credit_used + notional > dealer.spec.credit_limit

    def _short_of_inventory(self, dealer: _Dealer, request: QuoteRequest) -> bool:
        # a client buy is a dealer sale: without the bonds it must borrow or decline
        return request.side is not Side.SELL and dealer.inventory < request.qty

    def _carry_cost(self, spec: DealerSpec, sigma_bps: float) -> CarryCost:
        return CarryCost(
            adv=float(self.instrument.adv),
            sigma_bps=sigma_bps,
            impact_y=self.panel.impact_y,
            risk_aversion=spec.risk_aversion,
            hold_s=spec.hedge_s,
        )

    def _half_spreads_bps(
        self, dealer: _Dealer, request: QuoteRequest, now: Nanos, flow: dict[Side, float]
    ) -> tuple[float, float]:
        """What the dealer asks over fair (bps) to sell to a buying client and to buy
        from a selling one: its margin, its own cost of each trade and what the client's
        recent requests on that side (`flow`, units) say is still to come
        (dealers/pricing.py)."""
        spec = dealer.spec
        vol = min(max(self._market.vol_ratio(now), 0.5), 5.0)
        cost = self._carry_cost(spec, self._vol_bps * vol**spec.vol_sensitivity)

        def half(client: Side) -> float:
            h = TIER_SPREAD[spec.client_tier] * spec.spread_bps
            h += cost.marginal_bps(dealer.inventory, -client.sign * float(request.qty))
            h += cost.flow_bps(flow[client], spec.hedge_share)
            h += spec.competition_bps * (len(request.dealers) - 1)
            if request.side is None:
                h += self.panel.two_sided_bps
            return h

        return half(Side.BUY), half(Side.SELL)

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
            fair = self._market.fair_ticks(now) * self.instrument.tick_size
            up, down = self._half_spreads_bps(dealer, request, now, rfq.flow[dealer_id])
            up += answer.noise_bps
            down += answer.noise_bps
            if request.side is None:  # both sides quoted: never crossed or locked
                widen = max(0.0, MIN_TWO_SIDED_HALF_BPS - 0.5 * (up + down))
                up, down = up + widen, down + widen
            offer = fair * (1 + up / 1e4)
            bid = fair * (1 - down / 1e4)
            lot = self.instrument.lot_size
            cap = max(lot, int(dealer.spec.max_qty_adv * self.instrument.adv) // lot * lot)
            quote = Quote(
                quote_id=f"{request.rfq_id}-{dealer_id}",
                rfq_id=request.rfq_id,
                dealer=dealer_id,
                qty=min(request.qty, cap),
                bid=round(bid, 6) if request.side is not Side.BUY else None,
                offer=round(offer, 6) if request.side is not Side.SELL else None,
                ts_ns=now,
                valid_until_ns=now + int(dealer.spec.quote_ttl_s * NANOS_PER_SECOND),
            )
            rfq.fair_at_quote[dealer_id] = fair
            events = session.quote(quote, now)  # a late quote is logged and ignored
            if session.legs[dealer_id].state is LegState.QUOTED:
                self._quotes[quote.quote_id] = (request.rfq_id, dealer_id)
                self._kernel.schedule(quote.valid_until_ns + 1, lambda: self._expire(rfq))
        self._publish(events)
        if session.state.value == "open" and session.all_answered:
            self._close(rfq)

    # ---------------------------------------------------------------- protocol steps

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
        fair_then = rfq.fair_at_quote[dealer_id]
        fair_now = self._market.fair_ticks(now) * self.instrument.tick_size
        # the dealer sells to a buying client: a rise since its quote is against it
        moved_bps = child.side.sign * (fair_now - fair_then) / fair_then * 1e4
        reason = None
        if moved_bps > dealer.spec.last_look_bps:
            reason = f"last look: price moved {moved_bps:.1f} bps"
        elif rfq.answers[dealer_id].last_look_u < dealer.spec.last_look_prob:
            reason = "last look: declined"
        if reason is not None:
            events = rfq.session.last_look_reject(dealer_id, reason, now)
            self._publish(events)
            self._publish([ChildOrderRejected(now, child.child_id, child.venue, reason)])
            return
        events = rfq.session.fill(dealer_id, now)
        rfq.traded_side = child.side
        qty = rfq.session.legs[dealer_id].hit_qty
        before = dealer.inventory
        dealer.inventory -= child.side.sign * qty
        dealer.credit_used += qty * price
        trade = dealer.book.trade(now, child.side, qty, price, fair_now)
        self._update_axe(dealer_id)
        self._publish(events)
        self._publish(
            [
                ChildOrderFilled(
                    now, child.child_id, child.venue, child.side, qty, price, 0.0, "rfq", 0
                )
            ]
        )
        # the dealer now holds the client's risk and lays part of what the trade added to
        # its position off on the screen; a trade that shrank the position needs no hedge
        added = max(0.0, abs(dealer.inventory) - abs(before))
        hedge = self._round_lot(dealer.spec.hedge_share * added)
        self._program(dealer, child.side, hedge, dealer.spec.hedge_s, HEDGE_SLICES, trade=trade)

    def _after(self, rfq: _Rfq, events: list[Event]) -> None:
        self._publish(events)
        if not rfq.ended and any(isinstance(e, RfqEnded) for e in events):
            rfq.ended = True
            self._leak(rfq)

    # ---------------------------------------------------------------- information leakage

    def _leak(self, rfq: _Rfq) -> None:
        request = rfq.session.request
        for dealer_id, leg in rfq.session.legs.items():
            if leg.state is LegState.FILLED:
                continue
            dealer = self._dealers[dealer_id]
            u_run, u_side, u_t = dealer.rng.random(3)
            if u_run >= dealer.spec.front_run_prob:
                continue
            side = request.side
            if side is None:  # two-sided: only a trade reveals the side, and not surely
                if rfq.traded_side is None:
                    continue
                right = u_side < self.panel.side_guess
                side = rfq.traded_side if right else rfq.traded_side.opposite
            qty = self._round_lot(dealer.spec.front_run_share * request.qty)
            self._program(dealer, side, qty, dealer.spec.front_run_s, FRONT_RUN_SLICES, u_t)

    def _program(
        self,
        dealer: _Dealer,
        side: Side,
        qty: int,
        over_s: float,
        slices: int,
        phase: float = 0.5,
        trade: int | None = None,
    ) -> None:
        """Trade `qty` on the lit screen in equal IOC slices spread over `over_s`, on
        the client's side (a front-run ahead of it, or the hedge of a trade against
        it); a hedge's fills are booked against `trade`."""
        if qty <= 0:
            return
        lot = self.instrument.lot_size
        each = max(lot, qty // slices // lot * lot)
        now = self._kernel.clock.now_ns()
        step = over_s / slices
        left = qty
        k = 0
        while left > 0 and k < slices:
            q = min(each, left) if k < slices - 1 else left
            at = now + int((k + phase) * step * NANOS_PER_SECOND)
            self._kernel.schedule(at, self._take_cb(dealer, side, q, trade))
            left -= q
            k += 1

    def _take_cb(
        self, dealer: _Dealer, side: Side, qty: int, trade: int | None
    ) -> Callable[[], None]:
        def take() -> None:
            now = self._kernel.clock.now_ns()
            filled, paid = self._market.take(now, side, qty, REACH_TICKS, dealer.owner)
            dealer.inventory += side.sign * filled
            if trade is not None and filled > 0:
                price = paid / filled * self.instrument.tick_size
                dealer.book.hedge_fill(trade, side, filled, price)
            self._update_axe(dealer.spec.dealer_id)

        return take

    def _round_lot(self, qty: float) -> int:
        lot = self.instrument.lot_size
        return int(qty) // lot * lot

    # ---------------------------------------------------------------- oracle

    def _record_truth(
        self,
        request: QuoteRequest,
        answers: dict[DealerId, _Answer],
        now: Nanos,
        flow: dict[DealerId, dict[Side, float]],
    ) -> None:
        """True P(quote in time) and P(best quote) per dealer, before any draw is used."""
        limit_ns = request.time_limit_ns
        p_resp: list[float] = []
        mu_buy: list[float] = []
        mu_sell: list[float] = []
        sd: list[float] = []
        for d in request.dealers:
            dealer = self._dealers[d]
            spec = dealer.spec
            p = spec.response_prob * TIER_RESPONSE[spec.client_tier]
            p *= _lognormal_cdf(limit_ns / 1e6, spec.latency_ms, spec.latency_jitter)
            if self._credit_short(dealer, request.qty):
                p = 0.0
            if self._short_of_inventory(dealer, request):
                p *= 1.0 - spec.no_inventory_prob
            p *= 1.0 - spec.pass_prob
            p_resp.append(p)
            # cost to a buying (selling) client, bps over (under) fair
            buy, sell = self._half_spreads_bps(dealer, request, now, flow[d])
            mu_buy.append(buy)
            mu_sell.append(sell)
            sd.append(max(spec.quote_noise_bps, 1e-3))
        best_buy = p_lowest(np.array(p_resp), np.array(mu_buy), np.array(sd))
        best_sell = p_lowest(np.array(p_resp), np.array(mu_sell), np.array(sd))
        for i, d in enumerate(request.dealers):
            self.truth.append(
                DealerTruth(
                    request.rfq_id,
                    d,
                    now,
                    p_resp[i],
                    float(best_buy[i]) if request.side is not Side.SELL else 0.0,
                    float(best_sell[i]) if request.side is not Side.BUY else 0.0,
                )
            )

    def _publish(self, events: list[Event]) -> None:
        for e in events:
            self.log.append(e)
            self._sink.publish(e)


def _lognormal_cdf(x: float, median: float, sigma: float) -> float:
    if sigma <= 0:
        return 1.0 if median <= x else 0.0
    return 0.5 * (1.0 + math.erf(math.log(x / median) / (sigma * math.sqrt(2.0))))


def p_lowest(p: np.ndarray, mu: np.ndarray, sd: np.ndarray, n: int = 1601) -> np.ndarray:
    """P(dealer i responds and has the lowest cost), costs independent normals N(mu, sd)
    and responses independent Bernoulli(p): the integral over i's cost c of its density
    times, for every other dealer, P(no answer or a higher cost). Trapezoid rule on `n`
    points over mu +- 8 sd; compiled, as the router's dealer features use it per panel."""
    p = np.ascontiguousarray(p, dtype=np.float64)
    mu = np.ascontiguousarray(mu, dtype=np.float64)
    sd = np.ascontiguousarray(sd, dtype=np.float64)
    return np.clip(p_lowest_unclipped(p, mu, sd, n), 0.0, 1.0)


@njit(cache=True)
def p_lowest_unclipped(
    p: np.ndarray, mu: np.ndarray, sd: np.ndarray, n: int, first_only: bool = False
) -> np.ndarray:
    """`p_lowest` before clipping rounding errors to [0, 1]; callable from compiled code.
    `first_only`: only the first dealer's (the others' entries are left at 0), for a
    third of the work when scoring one candidate against a panel."""
    k = p.shape[0]
    scored = 1 if first_only else k
    lo = np.min(mu - 8.0 * sd)
    hi = np.max(mu + 8.0 * sd)
    step = (hi - lo) / (n - 1)
    out = np.zeros(k)
    log_beaten = np.empty(k)
    pdf = np.empty(k)
    root2 = math.sqrt(2.0)
    norm = 1.0 / math.sqrt(2.0 * math.pi)
    for j in range(n):
        c = lo + j * step
        weight = step * (0.5 if j == 0 or j == n - 1 else 1.0)
        log_all = 0.0
        for i in range(k):
            z = (c - mu[i]) / sd[i]
            if i < scored:
                pdf[i] = math.exp(-0.5 * z * z) * norm / sd[i]
            b = 1.0 - p[i] * 0.5 * math.erfc(-z / root2)  # P(i does not undercut c)
            log_beaten[i] = math.log(max(b, 1e-300))
            log_all += log_beaten[i]
        for i in range(scored):
            out[i] += weight * pdf[i] * math.exp(log_all - log_beaten[i])
    for i in range(scored):
        out[i] *= p[i]
    return out
