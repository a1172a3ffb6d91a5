"""The vocabulary of blockroute: typed ids, orders, fills, quotes and events.

This module imports nothing of the project. Prices inside books are integer ticks and
quantities are integers; `Instrument` converts ticks to prices at the edges. Events
are immutable, one per fact, named in the past tense, and carry the timestamp (in
nanoseconds of the injected clock, simulated or live) at which the fact happened.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NewType

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

    def __post_init__(self) -> None:
        if self.qty <= 0:
            raise DomainError(f"child {self.child_id}: quantity must be > 0, got {self.qty}")
        if self.ord_type is OrdType.LIMIT and self.limit_ticks is None:
            raise DomainError(f"child {self.child_id}: a limit order needs a limit price")
        if self.min_qty < 0 or self.min_qty > self.qty:
            raise DomainError(
                f"child {self.child_id}: min_qty must be within [0, {self.qty}], got {self.min_qty}"
            )


@dataclass(frozen=True, slots=True)
class Quote:
    """A dealer's firm price for a quantity, valid until `valid_until_ns`."""

    rfq_id: RfqId
    dealer: DealerId
    side: Side  # the side the dealer would take the client's order on (client's side)
    qty: int
    price: float
    ts_ns: Nanos
    valid_until_ns: Nanos


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


@dataclass(frozen=True, slots=True)
class QuoteReceived(Event):
    quote: Quote


@dataclass(frozen=True, slots=True)
class RfqExpired(Event):
    rfq_id: RfqId


@dataclass(frozen=True, slots=True)
class DecisionRecorded(Event):
    """Why the router did what it did: the inputs, the alternatives and the choice."""

    decision_id: DecisionId
    parent_id: ParentId
    chosen: str
    inputs: dict[str, float] = field(default_factory=dict)
    alternatives: dict[str, float] = field(default_factory=dict)
