"""How the simulated dealers answer a request for quote, at what price, and whether they
stand by it.

What a dealer does with a request, all drawn when the request reaches it, from the
dealer's own generator (`QuoteModel.draw`: every draw is made whatever the outcome, so
runs are reproducible and the oracle is exact):
- answers at all with its response probability (lower for clients it tiers lower), after
  a lognormal latency; an answer after the time limit is ignored as late;
- declines for lack of credit (the day's notional with this client would pass its
  line), for lack of inventory (a client buy larger than its long position, with some
  probability) or just passes;
- otherwise quotes (`QuoteModel.quote`), at most `max_qty_adv` of ADV, around the fair
  price (the market's reference price, which it sees better than the screen), each side
  at its own cost of taking the trade on (dealers/pricing.py) plus a margin:

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

A hit goes through the dealer's last look (`last_look_refusal`): refused if fair value
moved against it by more than `last_look_bps` since its quote, or at random with
`last_look_prob`.

`QuoteModel.truths` gives the same law in closed form: for every dealer asked, the true
probability that it answers with a quote in time and that its quote is the best one
(dealers/truth.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dealers.config import TIER_RESPONSE, TIER_SPREAD, DealerPanel, DealerSpec
from dealers.dealer import SimDealer
from dealers.pricing import CarryCost
from dealers.truth import DealerTruth, lognormal_cdf, p_lowest
from router.domain import (
    NANOS_PER_SECOND,
    DealerId,
    Instrument,
    Nanos,
    Quote,
    QuoteRejectReason,
    QuoteRequest,
    Side,
)
from simulators.markets import LitMarket

MIN_TWO_SIDED_HALF_BPS = 0.5  # a two-sided quote's bid stays at least 1 bps below its offer


@dataclass(frozen=True, slots=True)
class Answer:
    """What a dealer decided to do with one request, drawn on arrival."""

    latency_ns: Nanos
    responds: bool
    reject: QuoteRejectReason | None
    noise_bps: float
    last_look_u: float


class QuoteModel:
    """The panel's dealers' answers and prices, against the market's fair price and
    volatility now (what a dealer sees better than the screen)."""

    def __init__(
        self, panel: DealerPanel, instrument: Instrument, daily_vol: float, market: LitMarket
    ) -> None:
        self._panel = panel
        self._instrument = instrument
        self.vol_bps = daily_vol * 1e4  # the scenario's normal daily volatility
        self._market = market

    def fair(self, now: Nanos) -> float:
        """The fair price now, in price units."""
        return self._market.fair_ticks(now) * self._instrument.tick_size

    def draw(self, dealer: SimDealer, request: QuoteRequest, now: Nanos) -> Answer:
        """Every draw is made, whatever the outcome, so the generator's stream does not
        depend on earlier branches."""
        spec, rng = dealer.spec, dealer.rng
        u_resp, u_pass, u_inv, u_ll = rng.random(4)
        z_lat, z_noise = rng.standard_normal(2)
        latency_ns = int(spec.latency_ms * 1e6 * math.exp(spec.latency_jitter * z_lat))
        reject = None
        if self._credit_short(dealer, request.qty, now):
            reject = QuoteRejectReason.INSUFFICIENT_CREDIT
        elif dealer.short_of_inventory(request) and u_inv < spec.no_inventory_prob:
            reject = QuoteRejectReason.NO_INVENTORY
        elif u_pass < spec.pass_prob:
            reject = QuoteRejectReason.PASS
        return Answer(
            latency_ns=max(1, latency_ns),
            responds=bool(u_resp < spec.response_prob * TIER_RESPONSE[spec.client_tier]),
            reject=reject,
            noise_bps=float(z_noise * spec.quote_noise_bps),
            last_look_u=float(u_ll),
        )

    def _credit_short(self, dealer: SimDealer, qty: int, now: Nanos) -> bool:
        notional = qty * self._market.fair_ticks(now)
        notional *= self._instrument.tick_size
        return dealer.credit_used + notional > dealer.spec.credit_limit

    def carry_cost(self, spec: DealerSpec, sigma_bps: float) -> CarryCost:
        return CarryCost(
            adv=float(self._instrument.adv),
            sigma_bps=sigma_bps,
            impact_y=self._panel.impact_y,
            risk_aversion=spec.risk_aversion,
            hold_s=spec.hedge_s,
        )

    def half_spreads_bps(
        self, dealer: SimDealer, request: QuoteRequest, now: Nanos, flow: dict[Side, float]
    ) -> tuple[float, float]:
        """What the dealer asks over fair (bps) to sell to a buying client and to buy
        from a selling one: its margin, its own cost of each trade and what the client's
        recent requests on that side (`flow`, units) say is still to come
        (dealers/pricing.py)."""
        spec = dealer.spec
        vol = min(max(self._market.vol_ratio(now), 0.5), 5.0)
        cost = self.carry_cost(spec, self.vol_bps * vol**spec.vol_sensitivity)

        def half(client: Side) -> float:
            h = TIER_SPREAD[spec.client_tier] * spec.spread_bps
            h += cost.marginal_bps(dealer.inventory, -client.sign * float(request.qty))
            h += cost.flow_bps(flow[client], spec.hedge_share)
            h += spec.competition_bps * (len(request.dealers) - 1)
            if request.side is None:
                h += self._panel.two_sided_bps
            return h

        return half(Side.BUY), half(Side.SELL)

    def quote(
        self,
        dealer: SimDealer,
        request: QuoteRequest,
        noise_bps: float,
        flow: dict[Side, float],
        now: Nanos,
    ) -> tuple[Quote, float]:
        """The dealer's quote now and the fair price it is quoted against."""
        fair = self.fair(now)
        up, down = self.half_spreads_bps(dealer, request, now, flow)
        up += noise_bps
        down += noise_bps
        if request.side is None:  # both sides quoted: never crossed or locked
            widen = max(0.0, MIN_TWO_SIDED_HALF_BPS - 0.5 * (up + down))
            up, down = up + widen, down + widen
        offer = fair * (1 + up / 1e4)
        bid = fair * (1 - down / 1e4)
        spec, inst = dealer.spec, self._instrument
        lot = inst.lot_size
        cap = max(lot, int(spec.max_qty_adv * inst.adv) // lot * lot)
        quote = Quote(
            quote_id=f"{request.rfq_id}-{spec.dealer_id}",
            rfq_id=request.rfq_id,
            dealer=spec.dealer_id,
            qty=min(request.qty, cap),
            bid=round(bid, 6) if request.side is not Side.BUY else None,
            offer=round(offer, 6) if request.side is not Side.SELL else None,
            ts_ns=now,
            valid_until_ns=now + int(spec.quote_ttl_s * NANOS_PER_SECOND),
        )
        return quote, fair

    def truths(
        self,
        request: QuoteRequest,
        dealers: list[SimDealer],
        now: Nanos,
        flow: dict[DealerId, dict[Side, float]],
    ) -> list[DealerTruth]:
        """True P(quote in time) and P(best quote) of each dealer asked (`dealers`, in the
        request's order), before any of their draws is used."""
        limit_ns = request.time_limit_ns
        p_resp: list[float] = []
        mu_buy: list[float] = []
        mu_sell: list[float] = []
        sd: list[float] = []
        for dealer in dealers:
            spec = dealer.spec
            p = spec.response_prob * TIER_RESPONSE[spec.client_tier]
            p *= lognormal_cdf(limit_ns / 1e6, spec.latency_ms, spec.latency_jitter)
            if self._credit_short(dealer, request.qty, now):
                p = 0.0
            if dealer.short_of_inventory(request):
                p *= 1.0 - spec.no_inventory_prob
            p *= 1.0 - spec.pass_prob
            p_resp.append(p)
            # cost to a buying (selling) client, bps over (under) fair
            buy, sell = self.half_spreads_bps(dealer, request, now, flow[spec.dealer_id])
            mu_buy.append(buy)
            mu_sell.append(sell)
            sd.append(max(spec.quote_noise_bps, 1e-3))
        best_buy = p_lowest(np.array(p_resp), np.array(mu_buy), np.array(sd))
        best_sell = p_lowest(np.array(p_resp), np.array(mu_sell), np.array(sd))
        return [
            DealerTruth(
                request.rfq_id,
                dealer.spec.dealer_id,
                now,
                p_resp[i],
                float(best_buy[i]) if request.side is not Side.SELL else 0.0,
                float(best_sell[i]) if request.side is not Side.BUY else 0.0,
            )
            for i, dealer in enumerate(dealers)
        ]


def last_look_refusal(
    spec: DealerSpec, client: Side, fair_then: float, fair_now: float, u: float
) -> str | None:
    """Why the dealer refuses a hit on its quote at its last look, or None if it fills:
    fair value moved against it by more than `last_look_bps` since its quote, or (with
    `last_look_prob`, from the uniform `u` drawn with the request) it just declines."""
    # the dealer sells to a buying client: a rise since its quote is against it
    moved_bps = client.sign * (fair_now - fair_then) / fair_then * 1e4
    if moved_bps > spec.last_look_bps:
        return f"last look: price moved {moved_bps:.1f} bps"
    if u < spec.last_look_prob:
        return "last look: declined"
    return None
