"""The vocabulary of blockroute: typed ids, orders, fills, quotes and events.

This module imports nothing of the project. Prices inside books are integer ticks and
quantities are integers; `Instrument` converts ticks to prices at the edges. Events
are immutable, one per fact, named in the past tense, and carry the timestamp (in
nanoseconds of the injected clock, simulated or live) at which the fact happened.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NewType

Symbol = NewType("Symbol", str)
VenueId = NewType("VenueId", str)
DealerId = NewType("DealerId", str)
ParentId = NewType("ParentId", str)
ChildId = NewType("ChildId", str)
RfqId = NewType("RfqId", str)
DecisionId = NewType("DecisionId", str)

#: Timestamps are integer nanoseconds since the epoch of the clock that produced them.
Nanos = int
NANOS_PER_SECOND = 1_000_000_000


class DomainError(ValueError):
    """Input that the domain refuses; the message says what to change."""


class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for buys, -1 for sells: cost = sign * (price - benchmark)."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY

    @classmethod
    def parse(cls, text: str) -> Side:
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise DomainError(f"side must be 'buy' or 'sell', got {text!r}") from None


class VenueKind(enum.Enum):
    LIT = "lit"
    DARK = "dark"
    RFQ = "rfq"


class OrdType(enum.Enum):
    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(enum.Enum):
    DAY = "day"  # rests until cancelled or the session ends
    IOC = "ioc"  # immediate or cancel: never rests


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable instrument and its static reference data."""

    symbol: Symbol
    tick_size: float
    currency: str
    adv: int  # average daily volume, shares (or bond units)
    lot_size: int = 1

    def __post_init__(self) -> None:
        if self.tick_size <= 0:
            raise DomainError(f"{self.symbol}: tick_size must be > 0, got {self.tick_size}")
        if self.adv <= 0:
            raise DomainError(f"{self.symbol}: adv must be > 0, got {self.adv}")
        if self.lot_size <= 0:
            raise DomainError(f"{self.symbol}: lot_size must be > 0, got {self.lot_size}")

    def to_price(self, ticks: float) -> float:
        return round(ticks * self.tick_size, 10)

    def to_ticks(self, price: float) -> int:
        return round(price / self.tick_size)


@dataclass(frozen=True, slots=True)
class ParentOrder:
    """A block order from the desk: what to trade and by when."""

    parent_id: ParentId
    symbol: Symbol
    side: Side
    qty: int
    start_ns: Nanos
    horizon_ns: Nanos
    limit_ticks: int | None = None  # None: no limit price

    def __post_init__(self) -> None:
        if self.qty <= 0:
            raise DomainError(f"parent {self.parent_id}: quantity must be > 0, got {self.qty}")
        if self.horizon_ns <= 0:
            raise DomainError(
                f"parent {self.parent_id}: horizon must be > 0 s, got {self.horizon_ns / 1e9:g}"
            )

    @property
    def end_ns(self) -> Nanos:
        return self.start_ns + self.horizon_ns


@dataclass(frozen=True, slots=True)
class ChildOrder:
    """One order sent to one venue on behalf of a parent."""

    child_id: ChildId
    parent_id: ParentId
    venue: VenueId
    side: Side
    qty: int
    ord_type: OrdType
    tif: TimeInForce
    limit_ticks: int | None = None
    post_only: bool = False
    min_qty: int = 0  # dark pools: smallest acceptable execution
    conditional: bool = False  # dark pools: an indication that must firm up before it trades
    quote_id: str | None = None  # RFQ: the dealer quote this order hits (FIX QuoteID 117)

    def __post_init__(self) -> None:
        if self.qty <= 0:
            raise DomainError(f"child {self.child_id}: quantity must be > 0, got {self.qty}")
        if self.ord_type is OrdType.LIMIT and self.limit_ticks is None:
            raise DomainError(f"child {self.child_id}: a limit order needs a limit price")
        if self.min_qty < 0 or self.min_qty > self.qty:
            raise DomainError(
                f"child {self.child_id}: min_qty must be within [0, {self.qty}], got {self.min_qty}"
            )


class QuoteRespType(enum.IntEnum):
    """FIX QuoteRespType (694): what a QuoteResponse (AJ) tells a dealer about its quote."""

    HIT_LIFT = 1  # the client trades on this quote
    COUNTER = 2
    EXPIRED = 3  # the quote's validity ended before the client answered
    COVER = 4  # the client traded elsewhere; this was the best quote not traded
    DONE_AWAY = 5  # the client traded elsewhere
    PASS = 6  # the client traded with nobody
    END_TRADE = 7
    TIMED_OUT = 8  # the dealer did not answer within the RFQ's time limit


class QuoteRejectReason(enum.IntEnum):
    """FIX QuoteRequestRejectReason (658): why a dealer declined to quote."""

    UNKNOWN_SYMBOL = 1
    EXCEEDS_LIMIT = 3
    TOO_LATE = 4
    NO_INVENTORY = 9
    PASS = 10
    INSUFFICIENT_CREDIT = 11
    OTHER = 99


@dataclass(frozen=True, slots=True)
class QuoteRequest:
    """A request for quote (FIX QuoteRequest, 35=R) to a panel of dealers.

    `side` None is a two-sided request: the client asks for a bid and an offer and does
    not reveal which one it wants. `time_limit_ns` is how long the dealers have to answer.
    """

    rfq_id: RfqId
    symbol: Symbol
    side: Side | None
    qty: int
    dealers: tuple[DealerId, ...]
    time_limit_ns: Nanos
    parent_id: ParentId | None = None

    def __post_init__(self) -> None:
        if self.qty <= 0:
            raise DomainError(f"RFQ {self.rfq_id}: quantity must be > 0, got {self.qty}")
        if not self.dealers:
            raise DomainError(f"RFQ {self.rfq_id}: needs at least one dealer")
        dup = sorted({d for d in self.dealers if self.dealers.count(d) > 1})
        if dup:
            raise DomainError(f"RFQ {self.rfq_id}: dealer {dup[0]!r} is asked twice")
        if self.time_limit_ns <= 0:
            raise DomainError(f"RFQ {self.rfq_id}: time limit must be > 0")


@dataclass(frozen=True, slots=True)
class Quote:
    """A dealer's firm answer to an RFQ (FIX Quote, 35=S), valid until `valid_until_ns`.

    `bid` is what the dealer pays if the client sells, `offer` what it asks if the client
    buys; a one-sided request gets only the side the client asked for. `qty` may be less
    than requested: a dealer may quote part of the size.
    """

    quote_id: str
    rfq_id: RfqId
    dealer: DealerId
    qty: int
    bid: float | None
    offer: float | None
    ts_ns: Nanos
    valid_until_ns: Nanos

    def __post_init__(self) -> None:
        if self.qty <= 0:
            raise DomainError(f"quote {self.quote_id}: quantity must be > 0, got {self.qty}")
        if self.bid is None and self.offer is None:
            raise DomainError(f"quote {self.quote_id}: needs a bid or an offer")
        for name, px in (("bid", self.bid), ("offer", self.offer)):
            if px is not None and not px > 0:
                raise DomainError(f"quote {self.quote_id}: {name} must be > 0, got {px}")

    def price_for(self, side: Side) -> float | None:
        """The price at which the client can trade `side` on this quote."""
        return self.offer if side is Side.BUY else self.bid


# --------------------------------------------------------------------------------------
# Commands: imperative, from the outside in.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouteParentOrder:
    parent: ParentOrder
    strategy: str


@dataclass(frozen=True, slots=True)
class CancelParentOrder:
    parent_id: ParentId
    reason: str = ""


# --------------------------------------------------------------------------------------
# Events: one per fact, past tense, immutable.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    ts_ns: Nanos


@dataclass(frozen=True, slots=True)
class ParentOrderAccepted(Event):
    parent: ParentOrder
    strategy: str
    arrival_mid: float


@dataclass(frozen=True, slots=True)
class ParentOrderRejected(Event):
    parent_id: ParentId
    reason: str


@dataclass(frozen=True, slots=True)
class ParentOrderCompleted(Event):
    parent_id: ParentId
    filled_qty: int
    avg_price: float


@dataclass(frozen=True, slots=True)
class ChildOrderSent(Event):
    child: ChildOrder


@dataclass(frozen=True, slots=True)
class ChildOrderAccepted(Event):
    child_id: ChildId
    venue: VenueId


@dataclass(frozen=True, slots=True)
class ChildOrderRejected(Event):
    child_id: ChildId
    venue: VenueId
    reason: str


@dataclass(frozen=True, slots=True)
class ChildOrderFilled(Event):
    child_id: ChildId
    venue: VenueId
    side: Side
    qty: int
    price: float
    fee: float  # positive = paid, negative = rebate received, in currency
    liquidity: str  # "maker", "taker" or "midpoint"
    leaves_qty: int


@dataclass(frozen=True, slots=True)
class ChildOrderCanceled(Event):
    child_id: ChildId
    venue: VenueId
    canceled_qty: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ChildOrderExpired(Event):
    """A child order ended unfilled without a cancel request (IOC remainder, no contra)."""

    child_id: ChildId
    venue: VenueId
    expired_qty: int


@dataclass(frozen=True, slots=True)
class FirmUpRequested(Event):
    """A dark pool found contra for a conditional order: firm it up before the deadline."""

    child_id: ChildId
    venue: VenueId
    contra_qty: int
    deadline_ns: Nanos


# RFQ workflow: one event per FIX message or protocol fact (dealers/rfq.py runs it).


@dataclass(frozen=True, slots=True)
class RfqRequested(Event):
    """QuoteRequest (R) went to the panel."""

    request: QuoteRequest


@dataclass(frozen=True, slots=True)
class QuoteReceived(Event):
    """Quote (S) arrived within the time limit."""

    quote: Quote


@dataclass(frozen=True, slots=True)
class QuoteRequestRejected(Event):
    """QuoteRequestReject (AG): the dealer declined to quote."""

    rfq_id: RfqId
    dealer: DealerId
    reason: QuoteRejectReason
    text: str = ""


@dataclass(frozen=True, slots=True)
class QuoteIgnored(Event):
    """A dealer's answer came after the time limit (or after the RFQ ended): not used."""

    rfq_id: RfqId
    dealer: DealerId
    reason: str


@dataclass(frozen=True, slots=True)
class RfqClosed(Event):
    """The time limit passed (or every dealer answered): the client decides now."""

    rfq_id: RfqId
    n_quotes: int


@dataclass(frozen=True, slots=True)
class QuoteResponseSent(Event):
    """QuoteResponse (AJ) for one dealer: the client's hit/lift or pass, or the venue's
    notice of the outcome to a dealer it did not trade with (cover, done away, timed out,
    expired). `price` is the dealer's own quoted price where it had one."""

    rfq_id: RfqId
    dealer: DealerId
    resp_type: QuoteRespType
    qty: int = 0
    price: float | None = None
    child_id: ChildId | None = None


@dataclass(frozen=True, slots=True)
class RfqTraded(Event):
    """ExecutionReport (8) of a hit quote: the dealer confirmed after its last look."""

    rfq_id: RfqId
    dealer: DealerId
    child_id: ChildId
    side: Side
    qty: int
    price: float


@dataclass(frozen=True, slots=True)
class LastLookRejected(Event):
    """The dealer turned the hit down in its last-look window."""

    rfq_id: RfqId
    dealer: DealerId
    child_id: ChildId
    reason: str


@dataclass(frozen=True, slots=True)
class RfqEnded(Event):
    """The RFQ is over: `state` is "done" (something traded), "passed" (the client traded
    with nobody) or "expired" (no quote, or every quote lapsed unanswered)."""

    rfq_id: RfqId
    state: str
    traded_qty: int


@dataclass(frozen=True, slots=True)
class ShadowAnswer:
    """What a model family's challenger answered where its champion was asked, in one
    decision (shadow mode: the router acts on the champion's answer only).

    `champion` and `challenger`: each one's answer as the decision reads it (the panel it
    would ask, the venue split it would send, the pace it would set), JSON-ready;
    `agree`: the two would act alike; `diffs`: the key numbers that differ, name ->
    (champion's, challenger's); `latency_us`: the challenger's own calls, microseconds."""

    family: str
    champion_version: int | None
    challenger_version: int
    champion: Mapping[str, Any]
    challenger: Mapping[str, Any]
    agree: bool
    diffs: Mapping[str, tuple[float, float]]
    latency_us: float

    def to_json(self) -> dict[str, Any]:
        return {
            "champion_version": self.champion_version,
            "challenger_version": self.challenger_version,
            "agree": self.agree,
            "champion": dict(self.champion),
            "challenger": dict(self.challenger),
            "diffs": {k: [a, b] for k, (a, b) in self.diffs.items()},
            "latency_us": self.latency_us,
        }


@dataclass(frozen=True, slots=True)
class DecisionRecorded(Event):
    """Why the router did what it did: the inputs, the alternatives and the choice.
    `shadow`: what the challengers of the models this decision asked would have answered
    (shadow mode; empty without a challenger)."""

    decision_id: DecisionId
    parent_id: ParentId
    chosen: str
    inputs: dict[str, float] = field(default_factory=dict)
    alternatives: dict[str, float] = field(default_factory=dict)
    shadow: tuple[ShadowAnswer, ...] = ()


@dataclass(frozen=True, slots=True)
class ShadowCompared(Event):
    """A challenger was asked beside its champion (one per asking, whatever the number of
    decision records it led to): `decision_ids` are those records (none if the champion's
    answer sent nothing)."""

    parent_id: ParentId
    answer: ShadowAnswer
    decision_ids: tuple[DecisionId, ...] = ()
