"""The protocol state machine of one multi-dealer RFQ, as an RFQ platform runs it.

It mirrors FIX 4.4: the QuoteRequest (R) goes to a panel of dealers, each answers with a
Quote (S) or a QuoteRequestReject (AG) within the time limit, the client hits or lifts
quotes with a QuoteResponse (AJ, type 1), the dealer confirms (ExecutionReport) or turns
the hit down in its last look, and at the end every dealer that did not trade hears the
outcome in an AJ notice (cover, done away, pass, timed out, expired).

The machine is pure: no clock, no randomness, no I/O. The venue that drives it passes the
timestamp of every message; every method returns the domain events it produced, in
order, and appends them to `RfqSession.log`. A refused message raises `RfqError` and
leaves the session exactly as it was (every check runs before the first change).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from router.domain import (
    ChildId,
    DealerId,
    DomainError,
    Event,
    LastLookRejected,
    Nanos,
    Quote,
    QuoteIgnored,
    QuoteReceived,
    QuoteRejectReason,
    QuoteRequest,
    QuoteRequestRejected,
    QuoteResponseSent,
    QuoteRespType,
    RfqClosed,
    RfqEnded,
    RfqRequested,
    RfqTraded,
    Side,
)


class RfqState(enum.Enum):
    """Where the RFQ stands as a whole."""

    OPEN = "open"  # dealers may answer; the client may already hit
    CLOSED = "closed"  # the time limit passed: the client decides on the quotes it has
    DONE = "done"  # ended, something traded
    PASSED = "passed"  # ended, the client traded with nobody
    EXPIRED = "expired"  # ended, no quote, or every quote lapsed unanswered


class LegState(enum.Enum):
    """Where one dealer's part of the RFQ stands."""

    REQUESTED = "requested"  # asked, no answer yet
    QUOTED = "quoted"  # quoted in time; the client may hit it
    REJECTED = "rejected"  # declined to quote (AG)
    LATE = "late"  # answered after the time limit or after the RFQ closed: ignored
    HIT = "hit"  # the client hit or lifted the quote; the dealer is in its last look
    FILLED = "filled"  # the dealer confirmed the hit
    LAST_LOOK_REJECTED = "last_look_rejected"  # the dealer turned the hit down
    COVER = "cover"  # told: the client traded elsewhere, this was the best other quote
    DONE_AWAY = "done_away"  # told: the client traded elsewhere
    PASSED = "passed"  # told: the client traded with nobody
    TIMED_OUT = "timed_out"  # no answer within the time limit
    EXPIRED = "expired"  # the quote's validity ended before the client answered


class RfqError(DomainError):
    """A message the RFQ protocol refuses in the session's current state."""


_TERMINAL = frozenset({RfqState.DONE, RfqState.PASSED, RfqState.EXPIRED})
# Legs whose dealer may still answer: in time, or late (and ignored) once timed out.
_ANSWERABLE = frozenset({LegState.REQUESTED, LegState.TIMED_OUT})


@dataclass(slots=True)
class Leg:
    """One dealer's part of the RFQ: its answer and what the client did with it.

    `quote` is only set for an answer that arrived in time (a late quote is ignored, not
    kept). `side` is the side the client hit, which a two-sided request only learns then.
    """

    dealer: DealerId
    state: LegState
    quote: Quote | None = None
    hit_qty: int = 0
    child_id: ChildId | None = None
    answered_ns: Nanos | None = None
    side: Side | None = None


class RfqSession:
    """One RFQ from QuoteRequest to its end; see the module docstring for the protocol."""

    def __init__(self, request: QuoteRequest, ts_ns: Nanos) -> None:
        self.request = request
        self.opened_ns: Nanos = ts_ns
        self.deadline_ns: Nanos = ts_ns + request.time_limit_ns
        self.state = RfqState.OPEN
        self.legs: dict[DealerId, Leg] = {
            d: Leg(dealer=d, state=LegState.REQUESTED) for d in request.dealers
        }
        self.log: list[Event] = [RfqRequested(ts_ns, request)]

    # ----------------------------------------------------------------------------------
    # Views
    # ----------------------------------------------------------------------------------

    @property
    def terminal(self) -> bool:
        """True once the RFQ ended (done, passed or expired): nothing changes any more."""
        return self.state in _TERMINAL

    @property
    def all_answered(self) -> bool:
        """True when no dealer is still expected to answer."""
        return all(leg.state is not LegState.REQUESTED for leg in self.legs.values())

    @property
    def traded_qty(self) -> int:
        """The quantity the dealers confirmed (filled legs)."""
        return sum(leg.hit_qty for leg in self.legs.values() if leg.state is LegState.FILLED)

    @property
    def pending_hits(self) -> int:
        """How many hits are waiting for the dealer's last look."""
        return sum(1 for leg in self.legs.values() if leg.state is LegState.HIT)

    def best_quotes(self, ts_ns: Nanos, side: Side | None = None) -> list[Quote]:
        """The hittable quotes still valid at `ts_ns`, best first for the client's side
        (lowest offer for a buy, highest bid for a sell; ties: earlier answer, then panel
        order). `side` is required for a two-sided request."""
        side = self._resolve_side(side)
        legs = [
            leg
            for leg in self.legs.values()
            if leg.state is LegState.QUOTED
            and leg.quote is not None
            and ts_ns <= leg.quote.valid_until_ns
        ]
        return [leg.quote for leg in self._ranked(legs, side) if leg.quote is not None]

    # ----------------------------------------------------------------------------------
    # Dealer messages
    # ----------------------------------------------------------------------------------

    def quote(self, quote: Quote, ts_ns: Nanos) -> list[Event]:
        """A dealer's Quote (S): used if it is in time, ignored as late otherwise."""
        rid = self.request.rfq_id
        if quote.rfq_id != rid:
            raise RfqError(f"RFQ {rid}: quote {quote.quote_id} is for RFQ {quote.rfq_id}")
        leg = self._answering_leg(quote.dealer)
        if quote.qty > self.request.qty:
            raise RfqError(
                f"RFQ {rid}: quote {quote.quote_id} is for {quote.qty}, "
                f"more than the {self.request.qty} requested"
            )
        sides = (Side.BUY, Side.SELL) if self.request.side is None else (self.request.side,)
        for side in sides:
            if quote.price_for(side) is None:
                name = "an offer" if side is Side.BUY else "a bid"
                raise RfqError(
                    f"RFQ {rid}: quote {quote.quote_id} needs {name} (the client may {side.value})"
                )
        if quote.bid is not None and quote.offer is not None and not quote.bid < quote.offer:
            raise RfqError(
                f"RFQ {rid}: quote {quote.quote_id} bid {quote.bid:g} must be below "
                f"its offer {quote.offer:g}"
            )
        late = self._late_reason(ts_ns)
        if late:
            return self._ignore(leg, late, ts_ns)
        leg.state = LegState.QUOTED
        leg.quote = quote
        leg.answered_ns = ts_ns
        return self._emit([QuoteReceived(ts_ns, quote)])

    def reject(
        self, dealer: DealerId, reason: QuoteRejectReason, text: str, ts_ns: Nanos
    ) -> list[Event]:
        """A dealer's QuoteRequestReject (AG): recorded if in time, ignored as late otherwise."""
        leg = self._answering_leg(dealer)
        late = self._late_reason(ts_ns)
        if late:
            return self._ignore(leg, late, ts_ns)
        leg.state = LegState.REJECTED
        leg.answered_ns = ts_ns
        return self._emit([QuoteRequestRejected(ts_ns, self.request.rfq_id, dealer, reason, text)])

    def fill(self, dealer: DealerId, ts_ns: Nanos) -> list[Event]:
        """The dealer confirms a hit after its last look: the ExecutionReport."""
        leg = self._hit_leg(dealer)
        assert leg.quote is not None and leg.child_id is not None and leg.side is not None
        price = leg.quote.price_for(leg.side)
        assert price is not None  # checked by `hit`
        leg.state = LegState.FILLED
        return self._emit(
            [
                RfqTraded(
                    ts_ns,
                    self.request.rfq_id,
                    dealer,
                    leg.child_id,
                    leg.side,
                    leg.hit_qty,
                    price,
                )
            ]
        )

    def last_look_reject(self, dealer: DealerId, reason: str, ts_ns: Nanos) -> list[Event]:
        """The dealer turns a hit down in its last look; the client may hit another quote."""
        leg = self._hit_leg(dealer)
        assert leg.child_id is not None
        leg.state = LegState.LAST_LOOK_REJECTED
        return self._emit(
            [LastLookRejected(ts_ns, self.request.rfq_id, dealer, leg.child_id, reason)]
        )

    # ----------------------------------------------------------------------------------
    # Venue and client actions
    # ----------------------------------------------------------------------------------

    def close(self, ts_ns: Nanos) -> list[Event]:
        """The time limit passed (or every dealer answered): silent dealers time out.

        With nothing the client could still trade on and nothing traded (no leg quoted,
        hit or filled), the RFQ ends here as expired.
        """
        self._require_open("close")
        out: list[Event] = []
        self._close_into(out, ts_ns)
        return self._emit(out)

    def hit(
        self,
        dealer: DealerId,
        qty: int,
        child_id: ChildId,
        ts_ns: Nanos,
        *,
        side: Side | None = None,
    ) -> list[Event]:
        """The client hits or lifts a dealer's quote (QuoteResponse AJ, type 1) for `qty`.

        `side` is the client's side: required for a two-sided request (and every hit of
        one RFQ trades the same side), optional but checked for a one-sided one.
        """
        rid = self.request.rfq_id
        if self.state not in (RfqState.OPEN, RfqState.CLOSED):
            raise RfqError(f"RFQ {rid}: cannot hit, the RFQ is {self.state.value}")
        leg = self._leg(dealer)
        if leg.state is not LegState.QUOTED or leg.quote is None:
            raise RfqError(f"RFQ {rid}: cannot hit {dealer!r}, its leg is {leg.state.value}")
        side = self._resolve_side(side)
        traded_side = self._client_side()
        if traded_side is not None and side is not traded_side:
            raise RfqError(
                f"RFQ {rid}: the client already hit to {traded_side.value}, cannot {side.value}"
            )
        q = leg.quote
        if not 0 < qty <= q.qty:
            raise RfqError(f"RFQ {rid}: hit qty must be within [1, {q.qty}], got {qty}")
        if ts_ns > q.valid_until_ns:
            raise RfqError(
                f"RFQ {rid}: quote {q.quote_id} of {dealer!r} expired at {q.valid_until_ns}"
            )
        price = q.price_for(side)
        if price is None:
            raise RfqError(f"RFQ {rid}: quote {q.quote_id} has no price to {side.value}")
        committed = sum(
            other.hit_qty
            for other in self.legs.values()
            if other.state in (LegState.HIT, LegState.FILLED)
        )
        if committed + qty > self.request.qty:
            raise RfqError(
                f"RFQ {rid}: hitting {qty} would trade {committed + qty}, "
                f"more than the {self.request.qty} requested"
            )
        leg.state = LegState.HIT
        leg.hit_qty = qty
        leg.child_id = child_id
        leg.side = side
        return self._emit(
            [QuoteResponseSent(ts_ns, rid, dealer, QuoteRespType.HIT_LIFT, qty, price, child_id)]
        )

    def finish(self, ts_ns: Nanos) -> list[Event]:
        """The client is done: closes the RFQ if still open, tells every dealer that did
        not trade the outcome (cover, done away, pass, timed out) and ends it."""
        rid = self.request.rfq_id
        if self.terminal:
            raise RfqError(f"RFQ {rid}: cannot finish, the RFQ is already {self.state.value}")
        if self.pending_hits:
            raise RfqError(f"RFQ {rid}: cannot finish while a hit awaits the dealer's last look")
        out: list[Event] = []
        if self.state is RfqState.OPEN:
            self._close_into(out, ts_ns)
        if not self.terminal:
            self._end_into(out, ts_ns, expired=False)
        return self._emit(out)

    def expire_quotes(self, ts_ns: Nanos) -> list[Event]:
        """Quotes whose validity ended before `ts_ns` lapse (AJ notice, type 3). A closed RFQ
        left with nothing to hit and no hit pending ends here. A no-op once terminal (the
        venue's timers may fire after the end)."""
        if self.terminal:
            return []
        out: list[Event] = []
        side = self._client_side()
        for leg in self.legs.values():
            q = leg.quote
            if leg.state is LegState.QUOTED and q is not None and q.valid_until_ns < ts_ns:
                leg.state = LegState.EXPIRED
                price = q.price_for(side) if side is not None else None
                out.append(
                    QuoteResponseSent(
                        ts_ns,
                        self.request.rfq_id,
                        leg.dealer,
                        QuoteRespType.EXPIRED,
                        q.qty,
                        price,
                    )
                )
        live = (LegState.QUOTED, LegState.HIT)
        if self.state is RfqState.CLOSED and not any(
            leg.state in live for leg in self.legs.values()
        ):
            self._end_into(out, ts_ns, expired=True)
        return self._emit(out)

    # ----------------------------------------------------------------------------------
    # Internals
    # ----------------------------------------------------------------------------------

    def _emit(self, events: list[Event]) -> list[Event]:
        self.log.extend(events)
        return events

    def _leg(self, dealer: DealerId) -> Leg:
        leg = self.legs.get(dealer)
        if leg is None:
            raise RfqError(f"RFQ {self.request.rfq_id}: dealer {dealer!r} is not on the panel")
        return leg

    def _answering_leg(self, dealer: DealerId) -> Leg:
        """The leg of a dealer that may still answer (in time, or late once timed out)."""
        leg = self._leg(dealer)
        if leg.state not in _ANSWERABLE:
            raise RfqError(
                f"RFQ {self.request.rfq_id}: dealer {dealer!r} already answered "
                f"(its leg is {leg.state.value})"
            )
        return leg

    def _hit_leg(self, dealer: DealerId) -> Leg:
        leg = self._leg(dealer)
        if leg.state is not LegState.HIT:
            raise RfqError(
                f"RFQ {self.request.rfq_id}: dealer {dealer!r} has no hit pending "
                f"(its leg is {leg.state.value})"
            )
        return leg

    def _require_open(self, action: str) -> None:
        if self.state is not RfqState.OPEN:
            raise RfqError(
                f"RFQ {self.request.rfq_id}: cannot {action}, the RFQ is {self.state.value}"
            )

    def _late_reason(self, ts_ns: Nanos) -> str:
        """Why an answer at `ts_ns` is ignored; "" when it is in time. The time limit is
        named first: it is the rule the dealer broke even if the RFQ has moved on since."""
        if ts_ns > self.deadline_ns:
            return "late: after the time limit"
        if self.state is not RfqState.OPEN:
            return f"late: rfq {self.state.value}"
        return ""

    def _ignore(self, leg: Leg, reason: str, ts_ns: Nanos) -> list[Event]:
        leg.state = LegState.LATE
        leg.answered_ns = ts_ns
        return self._emit([QuoteIgnored(ts_ns, self.request.rfq_id, leg.dealer, reason)])

    def _resolve_side(self, side: Side | None) -> Side:
        """The client's side: the request's, or the given one for a two-sided request."""
        rid = self.request.rfq_id
        if self.request.side is None:
            if side is None:
                raise RfqError(f"RFQ {rid}: a two-sided request needs the client's side")
            return side
        if side is not None and side is not self.request.side:
            raise RfqError(
                f"RFQ {rid}: the request is to {self.request.side.value}, not {side.value}"
            )
        return self.request.side

    def _client_side(self) -> Side | None:
        """The request's side, or for a two-sided request the side the client hit (None
        while it has hit nothing)."""
        if self.request.side is not None:
            return self.request.side
        return next((leg.side for leg in self.legs.values() if leg.side is not None), None)

    def _ranked(self, legs: list[Leg], side: Side) -> list[Leg]:
        """`legs` (all quoted) best first for the client's `side`; ties: earlier answer,
        then panel order (dicts keep the panel order and `sorted` is stable)."""

        def key(leg: Leg) -> tuple[float, Nanos]:
            assert leg.quote is not None and leg.answered_ns is not None
            price = leg.quote.price_for(side)
            assert price is not None  # `quote` checked the client's side(s)
            return (side.sign * price, leg.answered_ns)

        return sorted(legs, key=key)

    def _close_into(self, out: list[Event], ts_ns: Nanos) -> None:
        for leg in self.legs.values():
            if leg.state is LegState.REQUESTED:
                leg.state = LegState.TIMED_OUT
        n_quotes = sum(1 for leg in self.legs.values() if leg.quote is not None)
        out.append(RfqClosed(ts_ns, self.request.rfq_id, n_quotes))
        self.state = RfqState.CLOSED
        # Nothing to hit, no hit settling, nothing traded: the RFQ is over.
        live = (LegState.QUOTED, LegState.HIT, LegState.FILLED)
        if not any(leg.state in live for leg in self.legs.values()):
            self._end_into(out, ts_ns, expired=True)

    def _end_into(self, out: list[Event], ts_ns: Nanos, *, expired: bool) -> None:
        """The notices to the dealers that did not trade, then RfqEnded. Called with no
        hit pending. Ends done if something traded, otherwise expired (`expired`: the RFQ
        ran out of quotes on its own) or passed (the client chose to trade with nobody)."""
        rid = self.request.rfq_id
        traded = self.traded_qty
        side = self._client_side()
        cover: Leg | None = None
        if traded > 0:
            assert side is not None  # a fill needs a hit, and a hit fixes the side
            quoted = [leg for leg in self.legs.values() if leg.state is LegState.QUOTED]
            cover = next(iter(self._ranked(quoted, side)), None)
        for leg in self.legs.values():
            resp: QuoteRespType
            if leg.state is LegState.TIMED_OUT:
                resp = QuoteRespType.TIMED_OUT
            elif leg.state in (LegState.QUOTED, LegState.LAST_LOOK_REJECTED):
                if traded == 0:
                    resp, leg.state = QuoteRespType.PASS, LegState.PASSED
                elif leg is cover:
                    resp, leg.state = QuoteRespType.COVER, LegState.COVER
                else:
                    resp, leg.state = QuoteRespType.DONE_AWAY, LegState.DONE_AWAY
            else:
                continue  # rejected, late, expired (already told) and filled legs
            q = leg.quote
            price = q.price_for(side) if q is not None and side is not None else None
            out.append(QuoteResponseSent(ts_ns, rid, leg.dealer, resp, q.qty if q else 0, price))
        if traded > 0:
            self.state = RfqState.DONE
        else:
            self.state = RfqState.EXPIRED if expired else RfqState.PASSED
        out.append(RfqEnded(ts_ns, rid, self.state.value, traded))
