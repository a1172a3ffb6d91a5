"""What the core needs from the outside world, as structural interfaces.

Simulated venues (simulators/, dealers/) and real ones implement the same ports; the
engine cannot tell them apart. This module imports only `router.domain`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from router.domain import (
    ChildId,
    ChildOrder,
    DealerId,
    Event,
    Nanos,
    ParentOrder,
    QuoteRequest,
    RfqId,
    Side,
    Symbol,
    VenueId,
    VenueKind,
)


@runtime_checkable
class Clock(Protocol):
    """Injected time: simulated in backtests, wall-clock in the live service."""

    def now_ns(self) -> Nanos: ...


class EventSink(Protocol):
    """Receives events; a sink never blocks and never raises into the producer."""

    def publish(self, event: Event) -> None: ...


@dataclass(frozen=True, slots=True)
class VenueQuote:
    """Top of one lit venue's book as a trader sees it (prices in ticks)."""

    venue: VenueId
    bid_ticks: int | None
    bid_qty: int
    ask_ticks: int | None
    ask_qty: int
    bid_depth: int = 0  # visible shares within the snapshot's depth window
    ask_depth: int = 0


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """Everything a trader can see at one instant; no simulator internals."""

    ts_ns: Nanos
    symbol: Symbol
    tick_size: float
    bid_ticks: int | None  # consolidated best bid across lit venues
    ask_ticks: int | None
    bid_depth: int  # shares within `depth_levels` ticks of the touch, all lit venues
    ask_depth: int
    venues: tuple[VenueQuote, ...]
    last_ticks: int | None
    volume: int  # market volume traded since the session opened (all lit venues)
    vwap_num: float  # sum of price * qty of that volume, for the market VWAP
    #: shares resting at each of the first BOOK_LEVELS prices from the touch, all lit
    #: venues (the touch first, then one tick further away each): depth of book
    bid_levels: tuple[int, ...] = ()
    ask_levels: tuple[int, ...] = ()

    @property
    def mid(self) -> float | None:
        if self.bid_ticks is None or self.ask_ticks is None:
            return None
        return 0.5 * (self.bid_ticks + self.ask_ticks) * self.tick_size

    @property
    def spread_ticks(self) -> int | None:
        if self.bid_ticks is None or self.ask_ticks is None:
            return None
        return self.ask_ticks - self.bid_ticks


class MarketData(Protocol):
    def snapshot(self) -> MarketSnapshot: ...

    def touches_before(self, lags_s: Sequence[float]) -> list[tuple[int, int] | None]:
        """The consolidated (bid, ask) in ticks `lag` seconds before now, for each lag,
        from the top-of-book feed's recent past; None where a side was empty then."""
        ...

    def flow_over(self, windows_s: Sequence[int]) -> list[tuple[int, int]]:
        """(buyer- minus seller-initiated volume, volume) of the public tape over the last
        `window` seconds (the current second included), for each window."""
        ...


class Venue(Protocol):
    """An order venue: a lit book, a dark pool, or a real exchange session.

    Orders are acknowledged, filled, canceled and rejected asynchronously through the
    sink given to the venue; calls return at once.
    """

    @property
    def venue_id(self) -> VenueId: ...

    @property
    def kind(self) -> VenueKind: ...

    def submit(self, child: ChildOrder) -> None: ...

    def cancel(self, child_id: ChildId) -> None: ...

    def firm_up(self, child_id: ChildId, qty: int) -> None:
        """Answer a FirmUpRequested for a conditional order (dark pools only)."""
        ...


class RfqChannel(Protocol):
    """A multi-dealer RFQ venue (the client side of the protocol).

    `request` sends a QuoteRequest; the answers come back through the venue's sink as
    QuoteReceived / QuoteRequestRejected / QuoteIgnored, then RfqClosed at the time limit.
    The client trades on a quote by submitting a ChildOrder with `quote_id` to the
    dealer's `Venue` (kind RFQ); the fill (ChildOrderFilled) or last-look rejection
    (ChildOrderRejected) comes back like any venue's. `finish` ends the RFQ: every quote
    not traded is passed, and the dealers learn the outcome (cover, done away...).
    """

    def request(self, request: QuoteRequest) -> None: ...

    def finish(self, rfq_id: RfqId) -> None: ...


class PanelSelector(Protocol):
    """Chooses the dealers to ask for a quote, from the client's own RFQ history."""

    def select(
        self, side: Side, qty: int, n: int, rng: np.random.Generator, two_sided: bool = False
    ) -> tuple[list[DealerId], dict[str, float]]:
        """The panel (best first) and the scores it was chosen on, for the decision.
        `side` is the client's; `two_sided`: the request will not show it."""
        ...

    def observe(self, event: Event) -> None:
        """Learn from an RFQ event (quotes, rejects, trades, outcomes)."""
        ...


#: how far back the fill model looks at each touch's path, seconds: where liquidity
#: providers quote from (a fair price no screen shows) shows in how the touches just moved
TOUCH_LAGS_S = (0.1, 0.3, 0.5, 1.0, 3.0, 10.0, 30.0)
#: the windows of the tape's order flow that the fill model reads, seconds: takers lean
#: the way that price is going, and the market reacts to their net flow
FLOW_WINDOWS_S = (1, 3, 10, 30, 120, 600)
#: prices of depth of book per side that the fill model reads (MarketSnapshot.bid_levels)
BOOK_LEVELS = 5


# the decision record's names of those series (and the fill model's feature names)
NEAR_MOVE_KEYS = tuple(f"near_move_{lag:g}s" for lag in TOUCH_LAGS_S)
FAR_MOVE_KEYS = tuple(f"far_move_{lag:g}s" for lag in TOUCH_LAGS_S)
FLOW_IMBALANCE_KEYS = tuple(f"flow_imbalance_{w}s" for w in FLOW_WINDOWS_S)
FLOW_SHARE_KEYS = tuple(f"flow_share_{w}s" for w in FLOW_WINDOWS_S)
LEVELS_OURS_KEYS = tuple(f"level_ours_{k}" for k in range(BOOK_LEVELS))
LEVELS_OTHER_KEYS = tuple(f"level_other_{k}" for k in range(BOOK_LEVELS))


@dataclass(frozen=True, slots=True)
class RecentMarket:
    """The market's recent past as a passive order's fill chances read it, for an order
    on one side: the same for every order of one decision. Towards our fills > 0 means
    the way that brings takers to a resting order (down, and sellers, for a buy)."""

    #: the moves of our side's touch (near) and of the other side's (far) since each of
    #: TOUCH_LAGS_S ago, ticks, towards our fills > 0
    near_moves_ticks: tuple[float, ...] = (0.0,) * len(TOUCH_LAGS_S)
    far_moves_ticks: tuple[float, ...] = (0.0,) * len(TOUCH_LAGS_S)
    #: the tape's net flow towards our fills over each of FLOW_WINDOWS_S: as a share of
    #: that window's volume, and of what the recent volume rate trades in the window
    flow_imbalance: tuple[float, ...] = (0.0,) * len(FLOW_WINDOWS_S)
    flow_share: tuple[float, ...] = (0.0,) * len(FLOW_WINDOWS_S)
    #: shares at each of BOOK_LEVELS prices from the touch, on our side and the other
    levels_ours: tuple[float, ...] = (0.0,) * BOOK_LEVELS
    levels_other: tuple[float, ...] = (0.0,) * BOOK_LEVELS

    def as_inputs(self) -> dict[str, float]:
        return {
            **dict(zip(NEAR_MOVE_KEYS, self.near_moves_ticks, strict=True)),
            **dict(zip(FAR_MOVE_KEYS, self.far_moves_ticks, strict=True)),
            **dict(zip(FLOW_IMBALANCE_KEYS, self.flow_imbalance, strict=True)),
            **dict(zip(FLOW_SHARE_KEYS, self.flow_share, strict=True)),
            **dict(zip(LEVELS_OURS_KEYS, self.levels_ours, strict=True)),
            **dict(zip(LEVELS_OTHER_KEYS, self.levels_other, strict=True)),
        }

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, float]) -> RecentMarket:
        """From a decision record's inputs (KeyError where one is missing)."""
        return cls(
            tuple(inputs[k] for k in NEAR_MOVE_KEYS),
            tuple(inputs[k] for k in FAR_MOVE_KEYS),
            tuple(inputs[k] for k in FLOW_IMBALANCE_KEYS),
            tuple(inputs[k] for k in FLOW_SHARE_KEYS),
            tuple(inputs[k] for k in LEVELS_OURS_KEYS),
            tuple(inputs[k] for k in LEVELS_OTHER_KEYS),
        )


@dataclass(frozen=True, slots=True)
class PassiveOrderContext:
    """The facts about a passive order the router is weighing, as a fill model needs
    them (and as the decision record logs them)."""

    venue: VenueId
    dark: bool  # a midpoint order in a dark pool, else a post-only lit order
    improve: bool  # one tick better than the touch, else joining it
    side: Side
    spread_ticks: float
    queue_ahead: float  # shares ahead of us at that price
    qty: float
    depth_ours: float  # visible depth on our side near the touch
    depth_other: float
    venue_share: float  # the venue's share of our side's depth
    volume_rate: float  # market volume per second, recent
    vol_bps: float  # 30-s mid volatility over the last minutes, bps
    touch_gap_ticks: float = 0.0  # our price behind the best price on our side (< 0: better)
    touch_imbalance: float = 0.0  # (our side's best-price qty - the other's) / their sum
    momentum_bps: float = 0.0  # mid move since the last decision, towards our fills > 0
    recent: RecentMarket = RecentMarket()

    def as_inputs(self) -> dict[str, float]:
        return {
            **self.recent.as_inputs(),
            "dark": float(self.dark),
            "improve": float(self.improve),
            "queue_ahead": self.queue_ahead,
            "depth_ours": self.depth_ours,
            "depth_other": self.depth_other,
            "venue_share": self.venue_share,
            "vol30_bps": self.vol_bps,
            "touch_gap_ticks": self.touch_gap_ticks,
            "touch_imbalance": self.touch_imbalance,
            "momentum_bps": self.momentum_bps,
        }


class FillModel(Protocol):
    """P(a passive order gets any fill within the decision interval), per order; NaN
    for no estimate (a live desk's models withdrawn: router.registry.LiveModels), which
    leaves the tactic to its own prior."""

    def p_fill(self, orders: Sequence[PassiveOrderContext]) -> list[float]: ...


@dataclass(frozen=True, slots=True)
class ExecutionState:
    """A parent order's progress, as the slicer sees it."""

    parent: ParentOrder
    now_ns: Nanos
    filled_qty: int
    market: MarketSnapshot

    @property
    def remaining_qty(self) -> int:
        return self.parent.qty - self.filled_qty

    @property
    def elapsed_fraction(self) -> float:
        return min(1.0, max(0.0, (self.now_ns - self.parent.start_ns) / self.parent.horizon_ns))


class SlicerPolicy(Protocol):
    """Says how much of the parent should be done by now (cumulative target shares)."""

    name: str

    def target_filled(self, state: ExecutionState) -> int: ...


@dataclass(frozen=True, slots=True)
class MarketHistory:
    """What a desk knows about an instrument before a parent order arrives: statistics of
    past days and of the session so far. Slicers calibrate on it; it never holds the
    future of the day being traded."""

    symbol: Symbol
    tick_size: float
    price: float  # last consolidated mid before arrival
    adv: float  # average daily volume (shares)
    daily_vol: float  # daily return volatility, as a fraction of price
    spread: float  # typical quoted spread, price units
    impact_y: float  # prefactor Y of the square-root law, impact = Y * daily_vol * sqrt(Q/ADV)
    bucket_s: float  # length of one bucket of `volume_profile`
    volume_profile: tuple[float, ...]  # expected share of the horizon's volume per bucket
    horizon_volume: float  # expected market volume over the horizon (shares)
    taker_fee: float = 0.0  # typical fee per share for taking liquidity


#: A callable that schedules `callback` to run at a clock time (simulated or live).
Scheduler = Callable[[Nanos, Callable[[], None]], None]
