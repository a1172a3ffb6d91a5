"""Trading with the dealer panel by request for quotes.

`RfqTactic` owns the workflow of one request at a time: the panel (from the selector),
the shares held back from the other tactics while the dealers answer, the quotes, the
hits best first at the time limit while each beats the lit alternative, the next quote
after a last-look refusal, and the end of the request. Its two subclasses decide when
to ask, for how much, and what a quote competes with:

- `BlockRfqTactic` (sor, sor-ml, ml): blocks of up to a share of the parent, never too
  far ahead of the schedule, with a cooldown that doubles while requests trade nothing;
  a quote competes with the block worked on the screen at once.
- `RiskBidTactic` (risk-bid): the whole parent, once, at the first decision that can
  ask; a quote competes with the parent worked by TWAP over the time left.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from router.allocation import agency_cost_bps, screen_cost_bps
from router.domain import (
    NANOS_PER_SECOND,
    ChildId,
    ChildOrderFilled,
    ChildOrderRejected,
    DealerId,
    Event,
    Nanos,
    OrdType,
    Quote,
    QuoteReceived,
    QuoteRequest,
    RfqClosed,
    TimeInForce,
    VenueId,
)
from router.execution.config import DEFAULT_RFQ_TIME_LIMIT_S, RfqConfig, RiskBidConfig
from router.execution.ledger import ChildOrderLedger
from router.execution.tactic import Decision, Tactic
from router.execution.venues import LitFees, RfqRouting
from router.ports import MarketData, MarketSnapshot
from router.shadow import take_shadow


@dataclass
class RfqWork:
    """The tactic's one RFQ in progress."""

    request: QuoteRequest
    quotes: dict[DealerId, Quote] = field(default_factory=dict)
    hits: dict[ChildId, int] = field(default_factory=dict)  # qty awaiting the last look
    tried: set[DealerId] = field(default_factory=set)
    lit_alternative_bps: float = 0.0
    traded: int = 0
    closed: bool = False


class RfqTactic(Tactic):
    """The request workflow; subclasses say when to ask (`on_decision`) and what a
    quote for `qty` competes with (`lit_alternative_bps`).

    `final_sweep_s`: the plan's; a request whose answers would come during the final
    sweep (which passes on them) is not sent."""

    def __init__(
        self,
        config: RfqConfig | RiskBidConfig,
        ledger: ChildOrderLedger,
        rfq: RfqRouting,
        market: MarketData,
        fees: Mapping[VenueId, LitFees],
        rng: np.random.Generator,
        final_sweep_s: float,
    ) -> None:
        self.config = config
        self._ledger = ledger
        self._rfq = rfq
        self._market = market
        self._fees = fees
        self._rng = rng
        self._final_sweep_s = final_sweep_s
        self.time_limit_s = config.time_limit_s or rfq.time_limit_s or DEFAULT_RFQ_TIME_LIMIT_S
        self.work: RfqWork | None = None

    def lit_alternative_bps(self, snap: MarketSnapshot, qty: int) -> float:
        """What a dealer's quote for `qty` competes with, in bps of the mid."""
        raise NotImplementedError

    def _after(self, traded: bool) -> None:
        """The request just ended (`traded`: some of it traded)."""

    def _answers_in_time(self, now: Nanos) -> bool:
        """The dealers' answers would come before the final sweep."""
        sweep_and_answers_s = self._final_sweep_s + 2 * self.time_limit_s
        return not self._ledger.parent.end_ns - now < sweep_and_answers_s * NANOS_PER_SECOND

    # ------------------------------------------------------------ asking

    def _request_quotes(
        self,
        snap: MarketSnapshot,
        now: Nanos,
        size: int,
        chosen: str,
        inputs: dict[str, float],
    ) -> bool:
        """Send one request for `size` to a panel chosen by the selector, holding the
        shares back from lit and dark while it is open, and record why (`chosen`, with
        {size} and {panel} filled in). False if nothing went out: no mid to price the
        screen alternative against, or no dealer to ask."""
        cfg = self.config
        ledger = self._ledger
        if snap.mid is None:
            return False
        side = ledger.parent.side
        selector = self._rfq.selector
        panel, scores = selector.select(
            side, size, cfg.panel_size, self._rng, two_sided=cfg.two_sided
        )
        # shadow mode: the panel the dealer models' challenger would have asked
        answer = take_shadow(selector)
        if answer is None:
            return self._request(snap, now, size, chosen, inputs, panel, scores)
        ledger.begin_shadow(answer)
        try:
            return self._request(snap, now, size, chosen, inputs, panel, scores)
        finally:
            ledger.end_shadow(answer)

    def _request(
        self,
        snap: MarketSnapshot,
        now: Nanos,
        size: int,
        chosen: str,
        inputs: dict[str, float],
        panel: list[DealerId],
        scores: dict[str, float],
    ) -> bool:
        """`_request_quotes` once the selector has chosen `panel` on `scores`."""
        cfg = self.config
        ledger = self._ledger
        if not panel:
            return False
        side = ledger.parent.side
        rfq_id = ledger.next_rfq_id()
        request = QuoteRequest(
            rfq_id=rfq_id,
            symbol=ledger.parent.symbol,
            side=None if cfg.two_sided else side,
            qty=size,
            dealers=tuple(DealerId(d) for d in panel),
            time_limit_ns=int(self.time_limit_s * NANOS_PER_SECOND),
            parent_id=ledger.parent.parent_id,
        )
        lit_bps = self.lit_alternative_bps(snap, size)
        ledger.record(
            now,
            f"{rfq_id}-request",
            chosen.format(size=size, panel=", ".join(panel))
            + (" (two-sided)" if cfg.two_sided else ""),
            {
                "qty": float(size),
                **inputs,
                "panel_size": float(len(panel)),
                "lit_alternative_bps": lit_bps,
                "filled": float(ledger.filled),
                "remaining": float(ledger.remaining),
            },
            {f"score_{k}": v for k, v in scores.items()},
        )
        self.work = RfqWork(request, lit_alternative_bps=lit_bps)
        ledger.held = size
        self._rfq.channel.request(request)
        return True

    # ------------------------------------------------------------ answers

    def on_event(self, event: Event, may_trade: bool) -> None:
        self._rfq.selector.observe(event)
        work = self.work
        if work is not None:
            rfq_id = work.request.rfq_id
            if isinstance(event, QuoteReceived) and event.quote.rfq_id == rfq_id:
                work.quotes[event.quote.dealer] = event.quote
            elif isinstance(event, RfqClosed) and event.rfq_id == rfq_id:
                work.closed = True
                self._trade_on_quotes(may_trade)
        work = self.work
        if not isinstance(event, ChildOrderFilled | ChildOrderRejected) or work is None:
            return
        if event.child_id in work.hits:
            del work.hits[event.child_id]
            if isinstance(event, ChildOrderFilled):
                work.traded += event.qty
                self._end()
            else:  # last look said no: the next quote, if still worth it
                self._trade_on_quotes(may_trade)

    def on_pull(self) -> None:
        if self.work is not None and not self.work.hits:
            self._end()

    def _trade_on_quotes(self, may_trade: bool) -> None:
        """At the time limit (or after a last-look refusal): hit the best quotes still
        valid, best first, while each beats the lit alternative; then end the RFQ."""
        work = self.work
        if work is None or not work.closed:
            return
        ledger = self._ledger
        now = ledger.now()
        snap = self._market.snapshot()
        side = ledger.parent.side
        mid = snap.mid
        valid = [
            q
            for d, q in work.quotes.items()
            if d not in work.tried and q.valid_until_ns >= now and q.price_for(side) is not None
        ]
        if mid is None or not may_trade:
            valid = []

        def price(q: Quote) -> float:
            p = q.price_for(side)
            assert p is not None
            return p

        valid.sort(key=lambda q: (side.sign * price(q), q.ts_ns, q.dealer))
        costs = {q.dealer: side.sign * (price(q) - mid) / mid * 1e4 for q in valid} if mid else {}
        alternatives = {f"{d}_bps": c for d, c in costs.items()}
        alternatives["lit_alternative_bps"] = work.lit_alternative_bps
        want = work.request.qty - work.traded - sum(work.hits.values())
        for i, q in enumerate(valid):
            if want <= 0:
                break
            cost = costs[q.dealer]
            if cost > work.lit_alternative_bps - self.config.edge_bps:
                break
            qty = ledger.round_lot(min(q.qty, want))
            work.tried.add(q.dealer)
            if qty <= 0:
                break
            # the shares come out of the reservation into a child order
            ledger.held = max(0, ledger.held - qty)
            cover = costs[valid[i + 1].dealer] if i + 1 < len(valid) else float("nan")
            child = ledger.send(
                q.dealer,
                qty,
                OrdType.LIMIT,
                TimeInForce.IOC,
                round(price(q) / snap.tick_size),
                snap,
                chosen=(
                    f"hit {q.dealer} for {qty} at {price(q):g}: {cost:.1f} bps vs "
                    f"{work.lit_alternative_bps:.1f} bps on the screen"
                ),
                inputs={
                    "qty": float(qty),
                    "quote_bps": cost,
                    "cover_bps": cover,
                    "lit_alternative_bps": work.lit_alternative_bps,
                    "n_quotes": float(len(work.quotes)),
                    "filled": float(ledger.filled),
                    "remaining": float(ledger.remaining),
                },
                alternatives=alternatives,
                aggressive=True,
                quote_id=q.quote_id,
                owner=self,
            )
            if child is not None:
                work.hits[child.child_id] = child.qty
                want -= child.qty
        if not work.hits:
            if work.traded == 0:
                best = min(costs.values(), default=float("nan"))
                why = (
                    f"best quote {best:.1f} bps vs {work.lit_alternative_bps:.1f} bps on the "
                    f"screen ({len(work.quotes)} quotes)"
                    if costs
                    else f"no quote left to trade on ({len(work.quotes)} quotes, "
                    f"{len(work.tried)} refused at last look)"
                )
                ledger.record(
                    now,
                    f"{work.request.rfq_id}-pass",
                    f"pass: {why}",
                    {"best_quote_bps": best, "lit_alternative_bps": work.lit_alternative_bps},
                    alternatives,
                )
            self._end()

    def _end(self) -> None:
        work = self.work
        if work is None or work.hits:
            return
        self.work = None
        self._ledger.held = 0
        self._rfq.channel.finish(work.request.rfq_id)
        self._after(work.traded > 0)


class BlockRfqTactic(RfqTactic):
    """Blocks while the parent is worked: up to `block_share` of the parent, never more
    than `max_ahead` of it ahead of the schedule. One RFQ at a time, and a cooldown
    after each that doubles while requests trade nothing: every request tells the
    dealers asked what we are doing, so asking in vain has a price."""

    config: RfqConfig

    def __init__(
        self,
        config: RfqConfig,
        ledger: ChildOrderLedger,
        rfq: RfqRouting,
        market: MarketData,
        fees: Mapping[VenueId, LitFees],
        rng: np.random.Generator,
        final_sweep_s: float,
    ) -> None:
        super().__init__(config, ledger, rfq, market, fees, rng, final_sweep_s)
        self._next_ns = ledger.parent.start_ns
        self._passes = 0  # requests in a row that traded nothing

    def on_decision(self, d: Decision) -> None:
        cfg = self.config
        ledger = self._ledger
        now = d.now
        if self.work is not None or now < self._next_ns or not self._answers_in_time(now):
            return
        q = ledger.parent.qty
        committed = ledger.filled + ledger.in_flight
        room = d.target + int(cfg.max_ahead * q) - committed
        size = ledger.round_lot(min(ledger.uncommitted, int(cfg.block_share * q), room))
        if size < max(ledger.lot, cfg.min_share * q):
            return
        self._request_quotes(
            d.snap,
            now,
            size,
            "request quotes for {size} from {panel}",
            {"ahead_room": float(room)},
        )

    def lit_alternative_bps(self, snap: MarketSnapshot, qty: int) -> float:
        """The block worked on the screen at once (`screen_cost_bps`)."""
        fee = min((f.taker_fee for f in self._fees.values()), default=0.0)
        return screen_cost_bps(snap, fee, qty, self._rfq.impact_bps, self._rfq.adv)

    def _after(self, traded: bool) -> None:
        self._passes = 0 if traded else self._passes + 1
        backoff = 2 ** min(self._passes, 4)
        cooldown = int(self.config.cooldown_s * backoff * NANOS_PER_SECOND)
        self._next_ns = self._ledger.now() + cooldown


class RiskBidTactic(RfqTactic):
    """The risk bid: everything not yet done, to the panel, at the first decision that
    can ask (arrival, unless the screen is one-sided or no dealer can be asked), and
    never again, not after a restart either. It acts before the other tactics of its
    decision look: the shares asked for are held back from them."""

    config: RiskBidConfig

    def on_decision(self, d: Decision) -> None:
        ledger = self._ledger
        if ledger.rfqs_sent or self.work is not None or not self._answers_in_time(d.now):
            return
        size = ledger.round_lot(ledger.uncommitted)
        if size <= 0:
            return
        self._request_quotes(
            d.snap,
            d.now,
            size,
            "request quotes for {size} from {panel} (risk bid: the whole parent at arrival)",
            {"parent_share": size / ledger.parent.qty},
        )

    def lit_alternative_bps(self, snap: MarketSnapshot, qty: int) -> float:
        """The whole parent worked by TWAP over the time left (`agency_cost_bps`): the
        trader's alternative to a risk bid is the algorithm."""
        fee = min((f.taker_fee for f in self._fees.values()), default=0.0)
        left_ns = max(0, self._ledger.parent.end_ns - self._ledger.now())
        rfq = self._rfq
        return agency_cost_bps(snap, fee, qty, rfq.impact_bps, rfq.adv, left_ns / NANOS_PER_SECOND)
