"""The smart order router: one parent order becomes child orders across venues.

One `ParentExecution` owns the state of one parent order. A scheduler (the simulated
kernel, or the asyncio loop of the service: `router.runtime`) wakes it at each decision
time, and the venues' events come back through `publish`. It never reads a clock of its
own and never touches a transport: everything arrives through the ports.

At each decision time the slicer says how much should be done by now; the router then
places what is missing with one of these tactics (`ml` is `smart` guided by models):

- `taker` (the schedule baselines twap/vwap/pov/ac): marketable IOC limit orders on the
  lit venues with the best fee-adjusted price, split by displayed depth; the further
  behind schedule, the further past the touch an order may reach.
- `smart` (`sor`): cancels last interval's passive orders, then splits the next slice
  between taking now and resting passively (join the touch, or improve it by a tick) on
  each lit venue by the Cont-Kukanov expected cost (router.allocation) with outflows
  learned from its own passive fills, and keeps midpoint orders resting in the dark pools
  for up to a capped amount ahead of schedule.
- `risk-bid`: the trader's first alternative to an algorithm. At arrival, one request
  for quotes for the whole parent to the dealer panel, traded on as `smart` trades on
  its blocks (best quotes first), while each beats what TWAP over the time left is
  expected to cost (`allocation.agency_cost_bps`: the trader's alternative is the
  algorithm); then the `taker` tactic works whatever the dealers did not take, and no
  more RFQs.

Every tactic sweeps what is left before the horizon, never has more shares working or
done than the parent's quantity, never prices through the parent's limit, passes every
child through the risk gate (router.risk) and records every decision with the
alternatives it weighed.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from router.allocation import (
    AllocationProblem,
    OutflowEstimator,
    PassiveOption,
    agency_cost_bps,
    allocate,
    screen_cost_bps,
)
from router.domain import (
    NANOS_PER_SECOND,
    ChildId,
    ChildOrder,
    ChildOrderCanceled,
    ChildOrderExpired,
    ChildOrderFilled,
    ChildOrderRejected,
    ChildOrderSent,
    DealerId,
    DecisionId,
    DecisionRecorded,
    DomainError,
    Event,
    Nanos,
    OrdType,
    ParentOrder,
    ParentOrderCompleted,
    Quote,
    QuoteReceived,
    QuoteRequest,
    RfqClosed,
    RfqId,
    Side,
    TimeInForce,
    VenueId,
    VenueKind,
)
from router.ports import (
    BOOK_LEVELS,
    FLOW_WINDOWS_S,
    TOUCH_LAGS_S,
    Clock,
    ExecutionState,
    FillModel,
    MarketData,
    MarketSnapshot,
    PanelSelector,
    PassiveOrderContext,
    RecentMarket,
    RfqChannel,
    SlicerPolicy,
    Venue,
    VenueQuote,
)
from router.risk import RiskGate

Scheduler = Callable[[Nanos, Callable[[], None]], None]

ROUTINGS = ("taker", "smart", "ml", "risk-bid")  # ml: smart, guided by the learned models
RFQ_ROUTINGS = ("smart", "ml", "risk-bid")  # the tactics that may ask the dealer panel
DEFAULT_RFQ_TIME_LIMIT_S = 10.0


@dataclass(frozen=True, slots=True)
class EngineConfig:
    routing: str = "taker"
    decision_interval_s: float = 30.0
    aggression_ticks: int = 2  # a marketable limit may reach this far past the touch
    final_sweep_s: float = 60.0  # start sweeping the remainder this long before the end
    sweep_interval_s: float = 5.0
    sweep_ticks: int = 15  # how far past the touch a catch-up or final sweep may reach
    # smart routing
    replan_delay_s: float = 0.05  # place after last interval's cancels have gone through
    urgency_ticks: float = 0.5  # lambda_u over the cost of taking: patience has a price
    urgency_per_slice_ticks: float = 1.0  # ... which grows with every slice behind
    ahead_cost_ticks: float = 0.25  # lambda_o: a share done ahead of the slice
    dark: bool = True
    dark_max_ahead: float = 0.2  # dark orders may work this share of the parent ahead
    warmup_s: float = 60.0  # participation is checked once this much volume was seen
    # dealers (smart and risk-bid routing, when the router has an RFQ channel; risk-bid
    # asks once, for the whole parent: of the block settings below it uses the panel's
    # size and sidedness, the time limit and the edge)
    rfq: bool = True
    rfq_panel_size: int = 4
    rfq_two_sided: bool = False
    rfq_time_limit_s: float | None = None  # None: the RFQ venue's usual time limit
    rfq_block_share: float = 0.25  # ask for up to this share of the parent at a time
    rfq_max_ahead: float = 0.35  # never more than this share of the parent ahead of schedule
    rfq_min_share: float = 0.03  # not worth a request below this share of the parent
    rfq_cooldown_s: float = 300.0  # between requests; doubles after each one not traded
    rfq_edge_bps: float = 0.0  # a quote must beat the lit alternative by this much

    def __post_init__(self) -> None:
        if self.routing not in ROUTINGS:
            raise DomainError(f"routing must be one of {', '.join(ROUTINGS)}, got {self.routing!r}")
        if self.decision_interval_s <= 0 or self.sweep_interval_s <= 0:
            raise DomainError("decision and sweep intervals must be > 0")
        if self.rfq_panel_size < 1:
            raise DomainError(f"rfq_panel_size must be >= 1, got {self.rfq_panel_size}")
        if (self.rfq_time_limit_s is not None and self.rfq_time_limit_s <= 0) or (
            self.rfq_cooldown_s < 0
        ):
            raise DomainError("rfq_time_limit_s must be > 0 and rfq_cooldown_s >= 0")


@dataclass(frozen=True, slots=True)
class LitFees:
    taker_fee: float  # per share, negative = rebate
    maker_fee: float


@dataclass(frozen=True, slots=True)
class RfqRouting:
    """The dealer side of the router: the RFQ venue, the panel selector, and what the
    router needs to price the lit alternative of a block (the square-root law)."""

    channel: RfqChannel
    selector: PanelSelector
    impact_bps: float  # Y * daily vol in bps: impact of q is impact_bps * sqrt(q / adv)
    adv: float


@dataclass(frozen=True, slots=True)
class _Screen:
    """What every passive order of one decision shares about the market: computed once
    per decision for the lit and the dark orders' contexts."""

    volume_rate: float  # market volume per second, recent
    vol_bps: float
    touch_imbalance: float
    momentum_bps: float
    recent: RecentMarket


def touch_moves(
    snap: MarketSnapshot, past: Sequence[tuple[int, int] | None], side: Side
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The moves (ticks) of a passive `side` order's own touch (near) and of the other
    side's (far) since each past (bid, ask) (MarketData.touches_before), towards the
    order's fills > 0 (as momentum is signed); 0 where a touch is unknown."""
    if snap.bid_ticks is None or snap.ask_ticks is None:
        zeros = (0.0,) * len(past)
        return zeros, zeros
    towards = -side.sign
    now_bid, now_ask = snap.bid_ticks, snap.ask_ticks
    # tuples of lists, not of generators: this runs in every decision's latency
    bid = tuple([0.0 if t is None else float(towards * (now_bid - t[0])) for t in past])
    ask = tuple([0.0 if t is None else float(towards * (now_ask - t[1])) for t in past])
    return (bid, ask) if side is Side.BUY else (ask, bid)


def tape_flow(
    flows: Sequence[tuple[int, int]], side: Side, volume_rate: float
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The tape's net flow towards a passive `side` order's fills (sellers hit a resting
    buy) over each of FLOW_WINDOWS_S (MarketData.flow_over): as a share of the window's
    volume, and of what the recent volume rate would trade in the window."""
    towards = -side.sign
    imbalance = tuple([towards * s / v if v > 0 else 0.0 for s, v in flows])
    share = tuple(
        [
            towards * s / (volume_rate * w) if volume_rate > 0 else 0.0
            for (s, _), w in zip(flows, FLOW_WINDOWS_S, strict=True)
        ]
    )
    return imbalance, share


def book_levels(snap: MarketSnapshot, side: Side) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Depth of book at BOOK_LEVELS prices from each touch: a passive `side` order's own
    side first; zeros where the feed shows none."""
    bids = tuple([float(q) for q in snap.bid_levels[:BOOK_LEVELS]])
    asks = tuple([float(q) for q in snap.ask_levels[:BOOK_LEVELS]])
    bids += (0.0,) * (BOOK_LEVELS - len(bids))
    asks += (0.0,) * (BOOK_LEVELS - len(asks))
    return (bids, asks) if side is Side.BUY else (asks, bids)


def recent_market(
    market: MarketData, snap: MarketSnapshot, side: Side, volume_rate: float
) -> RecentMarket:
    """The recent past of the market that a decision's passive orders share: both
    touches' paths, the tape's flow, depth of book."""
    near, far = touch_moves(snap, market.touches_before(TOUCH_LAGS_S), side)
    imbalance, share = tape_flow(market.flow_over(FLOW_WINDOWS_S), side, volume_rate)
    ours, other = book_levels(snap, side)
    return RecentMarket(near, far, imbalance, share, ours, other)


@dataclass
class _RfqWork:
    """The router's one RFQ in progress."""

    request: QuoteRequest
    reserved: int  # shares held back from lit and dark while the dealers answer
    quotes: dict[DealerId, Quote] = field(default_factory=dict)
    hits: dict[ChildId, int] = field(default_factory=dict)  # qty awaiting the last look
    tried: set[DealerId] = field(default_factory=set)
    lit_alternative_bps: float = 0.0
    traded: int = 0
    closed: bool = False


@dataclass
class _Child:
    order: ChildOrder
    open_qty: int
    sent_ns: Nanos
    passive: bool = False
    queue_ahead: int = 0
    filled: int = 0
    cancel_pending: bool = False


@dataclass
class ExecutionResult:
    parent: ParentOrder
    filled_qty: int = 0
    notional: float = 0.0
    fees: float = 0.0
    fills: list[ChildOrderFilled] = field(default_factory=list)
    decisions: list[DecisionRecorded] = field(default_factory=list)
    children: list[ChildOrder] = field(default_factory=list)
    sent_ns: dict[ChildId, Nanos] = field(default_factory=dict)
    # (time, target by then, filled by then) at every decision: schedule vs realised
    schedule: list[tuple[Nanos, int, int]] = field(default_factory=list)

    @property
    def avg_price(self) -> float:
        return self.notional / self.filled_qty if self.filled_qty else 0.0


class ParentExecution:
    def __init__(
        self,
        parent: ParentOrder,
        slicer: SlicerPolicy,
        venues: Mapping[VenueId, Venue],
        fees: Mapping[VenueId, LitFees],
        market: MarketData,
        clock: Clock,
        schedule: Scheduler,
        config: EngineConfig | None = None,
        lot_size: int = 1,
        on_event: Callable[[Event], None] | None = None,
        risk: RiskGate | None = None,
        rng: np.random.Generator | None = None,
        dark_min_qty: Mapping[VenueId, int] | None = None,
        volume_rate_hint: float = 0.0,
        rfq: RfqRouting | None = None,
        fill_model: FillModel | None = None,
    ) -> None:
        self.parent = parent
        self.slicer = slicer
        self._venues = venues
        self._fees = fees
        self._market = market
        self._clock = clock
        self._schedule = schedule
        self.config = config or EngineConfig()
        self._lot = lot_size
        self._on_event = on_event
        self.risk = risk or RiskGate()
        # the allocation's outflow samples; seeded by the composition root
        self._rng = rng if rng is not None else np.random.default_rng(0)
        self._dark_min = dict(dark_min_qty or {})
        self._volume_rate_hint = volume_rate_hint  # shares/s expected before any is seen
        self.result = ExecutionResult(parent)
        self._open: dict[ChildId, _Child] = {}
        self._sent: set[ChildId] = set()
        self._ids = itertools.count(1)
        self._volume_seen: deque[tuple[Nanos, int]] = deque()
        self._outflow = OutflowEstimator()
        self._sweeping = False
        self.done = False
        self._rfq = rfq if self.config.routing in RFQ_ROUTINGS and self.config.rfq else None
        self._fill_model = fill_model if self.config.routing == "ml" else None
        self._mids: deque[tuple[Nanos, float]] = deque()  # mid at each decision
        self._rfq_work: _RfqWork | None = None
        self._rfq_seq = itertools.count(1)
        self._rfq_next_ns = parent.start_ns
        self._rfq_passes = 0  # requests in a row that traded nothing
        self._risk_bid_asked = False  # risk-bid routing: its one request went out
        self.paused = False  # by the client: no new children until resumed
        self.stopped = False  # canceled by the client: no new children ever
        self._plan_gen = 0  # bumped by every re-plan (replace, resume)
        self.on_schedule: Callable[[], None] | None = None  # a schedule point was added

    # ------------------------------------------------------------ lifecycle

    def start(self, from_ns: Nanos | None = None) -> None:
        """Schedule the decisions from the parent's start (or from `from_ns`: a parent
        recovered after a restart, or re-planned after a replace) to its end."""
        self._plan(self.parent.start_ns if from_ns is None else from_ns)

    def _plan(self, from_ns: Nanos) -> None:
        """Decisions every interval until the final sweep, sweeps until the end, then
        the finish. Each step schedules the next one as it runs: a parent of hours keeps
        one callback in the scheduler, not hundreds (the live desk holds thousands)."""
        # A step of an earlier plan (before a replace) sees a newer generation and does
        # nothing: the scheduler has no way to take back what it was given.
        gen = self._plan_gen
        interval = int(self.config.decision_interval_s * NANOS_PER_SECOND)
        sweep_every = int(self.config.sweep_interval_s * NANOS_PER_SECOND)
        end = self.parent.end_ns
        sweep_start = end - int(self.config.final_sweep_s * NANOS_PER_SECOND)

        def plan() -> Iterator[tuple[Nanos, Callable[[], None]]]:
            t = from_ns
            while t < sweep_start:
                yield t, self._decide
                t += interval
            t = max(sweep_start, from_ns)
            while t < end:
                yield t, self._sweep
                t += sweep_every
            yield max(end, from_ns), self._finish

        steps = plan()

        def run(action: Callable[[], None]) -> None:
            if gen != self._plan_gen:
                return
            nxt = next(steps, None)  # queued before this step acts, as if planned up front
            if nxt is not None:
                self._schedule(nxt[0], functools.partial(run, nxt[1]))
            action()

        t0, first = next(steps)
        self._schedule(t0, functools.partial(run, first))

    # ------------------------------------------------------------ the client's changes

    def restore(
        self, filled_qty: int, notional: float, fees: float, next_child: int, next_rfq: int
    ) -> None:
        """Continue a parent after a restart: what it filled before, and ids that do not
        collide with the children and RFQs it already had."""
        self.result.filled_qty = filled_qty
        self.result.notional = notional
        self.result.fees = fees
        self._ids = itertools.count(next_child)
        self._rfq_seq = itertools.count(next_rfq)
        # a risk bid asks once in the parent's life: a restart does not make it ask again
        self._risk_bid_asked = next_rfq > 1

    def pause(self) -> None:
        """Stop trading: pull every child and pass on the RFQ at hand; decisions wait."""
        self.paused = True
        self._pull("paused")

    def resume(self) -> None:
        """Trade again from the next decision (now): behind schedule, it catches up."""
        if not self.paused:
            return
        self.paused = False
        self._replan()

    def stop(self, reason: str) -> None:
        """The parent is canceled: pull everything and send nothing more. Fills of
        children already at a venue still count; `in_flight` says when all are out."""
        self.stopped = True
        self._pull(reason)

    def amend(self, parent: ParentOrder, slicer: SlicerPolicy | None = None) -> None:
        """A replace: new quantity, limit or horizon (same id and start). The children
        priced for the old order are pulled and the plan restarts now."""
        if parent.parent_id != self.parent.parent_id or parent.start_ns != self.parent.start_ns:
            raise DomainError("a replace keeps the parent's id and start")
        self.parent = parent
        self.result.parent = parent
        if slicer is not None:
            self.slicer = slicer
        self._pull("replaced")
        self._sweeping = False
        if not self.paused:
            self._replan()

    def close(self) -> None:
        """Nothing more to do (filled, canceled): later callbacks are no-ops."""
        self.done = True

    def _pull(self, reason: str) -> None:
        self.halt(reason)
        work = self._rfq_work
        if work is not None and not work.hits:
            self._end_rfq()

    def _replan(self) -> None:
        self._plan_gen += 1
        now = self._clock.now_ns()
        if now < self.parent.end_ns:
            self._plan(now)
        else:
            self._schedule(now, self._finish)

    @property
    def remaining(self) -> int:
        return self.parent.qty - self.result.filled_qty

    @property
    def in_flight(self) -> int:
        reserved = self._rfq_work.reserved if self._rfq_work is not None else 0
        return sum(c.open_qty for c in self._open.values()) + reserved

    @property
    def uncommitted(self) -> int:
        """Shares neither done nor working anywhere: the most any new child may take."""
        return self.remaining - self.in_flight

    def halt(self, reason: str) -> None:
        """Pull every open child now (kill switch, cancel of the parent)."""
        for child_id in list(self._open):
            self._cancel(child_id)

    # ------------------------------------------------------------ decisions

    def _target(self, snap: MarketSnapshot, at_ns: Nanos) -> int:
        state = ExecutionState(self.parent, at_ns, self.result.filled_qty, snap)
        return max(0, min(self.slicer.target_filled(state), self.parent.qty))

    def _slice_qty(self) -> float:
        horizon_s = self.parent.horizon_ns / NANOS_PER_SECOND
        return max(1.0, self.parent.qty * self.config.decision_interval_s / horizon_s)

    def _sample(self, point: tuple[Nanos, int, int]) -> None:
        self.result.schedule.append(point)
        if self.on_schedule is not None:
            self.on_schedule()

    @property
    def idle(self) -> bool:
        """Sends nothing now: done, paused or stopped."""
        return self.done or self.paused or self.stopped

    def _decide(self) -> None:
        if self.idle:
            return
        if self.risk.kill.engaged:
            self.halt(self.risk.kill.reason)
            return
        now = self._clock.now_ns()
        snap = self._market.snapshot()
        self._volume_seen.append((now, snap.volume))
        target = self._target(snap, now)
        self._sample((now, target, self.result.filled_qty))
        if snap.mid is not None:
            self._mids.append((now, snap.mid))
        if self.config.routing == "risk-bid" and self._rfq is not None:
            # before the taker looks: the shares asked for are held back from it
            self._maybe_request_risk_bid(snap, now)
        if self.config.routing in ("smart", "ml"):
            self._smart_cancel()
            delay = int(self.config.replan_delay_s * NANOS_PER_SECOND)
            self._schedule(now + delay, self._smart_place)
            return
        want = self._round_lot(target - self.result.filled_qty - self.in_flight)
        if want > 0:
            # reach further the more slices we are behind the schedule
            behind = int(want / self._slice_qty())
            reach = min(self.config.aggression_ticks + behind, self.config.sweep_ticks)
            self._take(want, reach, "slice" if behind <= 1 else f"catch-up, {behind} slices")

    def _sweep(self) -> None:
        if self.idle:
            return
        if not self._sweeping:
            self._sweeping = True
            # the end is near: passive and dark orders would only hold shares back
            for child_id, child in list(self._open.items()):
                if child.passive:
                    self._cancel(child_id)
        now = self._clock.now_ns()
        self._sample((now, self.parent.qty, self.result.filled_qty))
        want = self.uncommitted
        if want > 0:
            self._take(want, self.config.sweep_ticks, "final sweep", exempt=True)

    def _finish(self) -> None:
        if self.done:
            return
        self.done = True
        for child_id in list(self._open):
            self._cancel(child_id)
        if self._rfq_work is not None and not self._rfq_work.hits:
            self._end_rfq()
        self._sample((self._clock.now_ns(), self.parent.qty, self.result.filled_qty))
        self._emit(
            ParentOrderCompleted(
                self._clock.now_ns(),
                self.parent.parent_id,
                self.result.filled_qty,
                self.result.avg_price,
            )
        )

    # ------------------------------------------------------------ taking liquidity

    def _take(self, qty: int, reach_ticks: int, why: str, exempt: bool = False) -> None:
        """Send `qty` as marketable IOC limits, best fee-adjusted venue first, each venue
        getting what its visible depth can absorb (the best venue takes the rest)."""
        snap = self._market.snapshot()
        side = self.parent.side
        scores: dict[str, float] = {}
        touches: dict[str, int] = {}
        depths: dict[str, int] = {}
        for q in snap.venues:
            touch = q.ask_ticks if side is Side.BUY else q.bid_ticks
            if touch is None:
                continue
            fee = self._fees[q.venue].taker_fee if q.venue in self._fees else 0.0
            # fee-adjusted price in ticks, signed so that lower is better for both sides
            scores[q.venue] = side.sign * touch + fee / snap.tick_size
            touches[q.venue] = touch
            depths[q.venue] = q.ask_depth if side is Side.BUY else q.bid_depth
        if not scores:
            return  # no lit liquidity on our side right now: try again next interval
        ranked = sorted(scores, key=lambda v: (scores[v], v))
        left = qty
        plan: list[tuple[str, int]] = []
        for venue in ranked:
            take = min(left, self._round_lot(depths[venue]) if venue != ranked[-1] else left)
            if take > 0:
                plan.append((venue, take))
                left -= take
            if left == 0:
                break
        if left > 0:  # more than all the visible depth: the best venue gets the rest
            plan[0] = (plan[0][0], plan[0][1] + left) if plan else (ranked[0], left)
        alternatives = {f"{v}_cost_ticks": side.sign * scores[v] for v in ranked}
        for venue, take in plan:
            touch = touches[venue]
            limit = touch + side.sign * reach_ticks
            if self.parent.limit_ticks is not None:
                if side.sign * (touch - self.parent.limit_ticks) > 0:
                    continue  # the market is through our limit here: wait
                limit = self._within_limit(limit)
            self._send(
                venue,
                take,
                OrdType.LIMIT,
                TimeInForce.IOC,
                limit,
                snap,
                chosen=f"take {take} on {venue} ({why})",
                inputs={
                    "qty": float(take),
                    "limit_ticks": float(limit),
                    "touch_ticks": float(touch),
                    "venue_depth": float(depths[venue]),
                    "filled": float(self.result.filled_qty),
                    "remaining": float(self.remaining),
                },
                alternatives=alternatives,
                aggressive=True,
                exempt=exempt,
            )

    # ------------------------------------------------------------ smart routing

    def _smart_cancel(self) -> None:
        """Pull last interval's passive and dark orders: the new plan re-places them at
        current prices and sizes (a dark pool keeps no queue worth keeping)."""
        for child_id, child in list(self._open.items()):
            if child.passive:
                self._cancel(child_id)

    def _smart_place(self) -> None:
        if self.idle or self._sweeping:
            return
        cfg = self.config
        now = self._clock.now_ns()
        snap = self._market.snapshot()
        if snap.bid_ticks is None or snap.ask_ticks is None:
            return  # one-sided market: nothing sensible to price against
        interval_ns = int(cfg.decision_interval_s * NANOS_PER_SECOND)
        filled = self.result.filled_qty
        target_now = self._target(snap, now)
        target_next = self._target(snap, now + interval_ns)
        slice_qty = self._slice_qty()
        behind = max(0.0, (target_now - filled) / slice_qty)
        if self._rfq is not None:
            self._maybe_request_quotes(snap, now, target_now)
        want = self._round_lot(target_next - filled - self._lit_in_flight())
        if want <= 0 and not cfg.dark:
            return
        screen = self._screen(snap, now)
        if want > 0:
            self._allocate_lit(want, behind, snap, screen)
        if cfg.dark:
            self._refresh_dark(target_next, snap, screen)

    def _lit_in_flight(self) -> int:
        return sum(
            c.open_qty for c in self._open.values() if self._kind(c.order.venue) is VenueKind.LIT
        )

    def _screen(self, snap: MarketSnapshot, now: Nanos) -> _Screen:
        side = self.parent.side
        rate = self._market_volume_rate(now)
        return _Screen(
            volume_rate=rate,
            vol_bps=self._vol_bps(now),
            touch_imbalance=self._touch_imbalance(snap),
            momentum_bps=self._momentum_bps(side),
            recent=recent_market(self._market, snap, side, rate),
        )

    def _allocate_lit(
        self, want: int, behind: float, snap: MarketSnapshot, screen: _Screen
    ) -> None:
        cfg = self.config
        side = self.parent.side
        assert snap.bid_ticks is not None and snap.ask_ticks is not None
        tick = snap.tick_size
        spread = snap.ask_ticks - snap.bid_ticks
        half = 0.5 * spread
        rate = screen.volume_rate
        depth_total = sum((q.ask_depth if side is Side.SELL else q.bid_depth) for q in snap.venues)
        options: list[PassiveOption] = []
        takers: list[float] = []
        other_total = sum((q.bid_depth if side is Side.SELL else q.ask_depth) for q in snap.venues)
        best_ours = snap.ask_ticks if side is Side.SELL else snap.bid_ticks
        contexts: dict[tuple[str, str], PassiveOrderContext] = {}
        # (quote, fees, touch, queue ahead, share of our side's depth) of each venue
        # with a price on our side
        live: list[tuple[VenueQuote, LitFees, int, int, float]] = []
        for q in snap.venues:
            fees = self._fees.get(q.venue, LitFees(0.0, 0.0))
            takers.append(fees.taker_fee)
            # we rest on the far side of a taker: a sell rests on the ask
            touch = q.ask_ticks if side is Side.SELL else q.bid_ticks
            queue = q.ask_qty if side is Side.SELL else q.bid_qty
            depth = q.ask_depth if side is Side.SELL else q.bid_depth
            if touch is None:
                continue
            share = depth / depth_total if depth_total > 0 else 1.0 / len(snap.venues)
            for level in ("join", "improve"):
                contexts[(q.venue, level)] = PassiveOrderContext(
                    venue=q.venue,
                    dark=False,
                    improve=level == "improve",
                    side=side,
                    spread_ticks=float(spread),
                    queue_ahead=float(queue if level == "join" else 0),
                    qty=float(want),
                    depth_ours=float(depth_total),
                    depth_other=float(other_total),
                    venue_share=share,
                    volume_rate=rate,
                    vol_bps=screen.vol_bps,
                    touch_gap_ticks=float(side.sign * (best_ours - touch))
                    - (1.0 if level == "improve" else 0.0),
                    touch_imbalance=screen.touch_imbalance,
                    momentum_bps=screen.momentum_bps,
                    recent=screen.recent,
                )
            live.append((q, fees, touch, queue, share))
        # half the traded volume hits each side; the venue's share of it by depth
        priors = self._outflow_priors(
            [contexts[(q.venue, "join")] for q, *_ in live],
            [0.5 * rate * share for *_, share in live],
        )
        for (q, fees, touch, queue, _), prior in zip(live, priors, strict=True):
            mean = self._outflow.rate(q.venue, prior) * cfg.decision_interval_s
            maker = fees.maker_fee / tick
            # our price vs the consolidated mid, in ticks earned per share (sign-aware)
            earn_join = side.sign * ((snap.bid_ticks + snap.ask_ticks) / 2 - touch)
            options.append(
                PassiveOption(
                    q.venue, "join", self._within_limit(touch), queue, mean, maker - earn_join
                )
            )
            better = touch + 1 if side is Side.BUY else touch - 1
            crosses = better >= snap.ask_ticks if side is Side.BUY else better <= snap.bid_ticks
            if not crosses:
                earn = earn_join - 1.0
                options.append(
                    PassiveOption(
                        q.venue, "improve", self._within_limit(better), 0, mean, maker - earn
                    )
                )
        taker = min(takers) / tick if takers else 0.0
        market_cost = half + taker
        problem = AllocationProblem(
            slice_qty=want,
            max_qty=max(0, self._round_lot(self.uncommitted)),
            market_cost_ticks=market_cost,
            under_cost_ticks=market_cost + cfg.urgency_ticks + cfg.urgency_per_slice_ticks * behind,
            over_cost_ticks=cfg.ahead_cost_ticks,
            lot=self._lot,
            options=tuple(o for o in options if self._price_ok(o.price_ticks)),
        )
        best, candidates = allocate(problem, self._rng)
        alternatives = {
            f"{c.label}: take {c.market_qty}, post {sum(q for _, q in c.passive)}": (
                c.expected_cost_ticks
            )
            for c in candidates[:8]
        }
        inputs = {
            "slice_qty": float(want),
            "behind_slices": round(behind, 3),
            "spread_ticks": float(spread),
            "market_cost_ticks": market_cost,
            "under_cost_ticks": problem.under_cost_ticks,
            "volume_rate": rate,
            "filled": float(self.result.filled_qty),
            "remaining": float(self.remaining),
            "expected_fill": best.expected_fill,
            **{f"{o.venue}_{o.level}_outflow": o.outflow_mean for o in problem.options},
            **{
                f"{o.venue}_queue": float(o.queue_ahead)
                for o in problem.options
                if o.level == "join"
            },
        }
        if best.market_qty > 0:
            reach = min(cfg.aggression_ticks + int(behind), cfg.sweep_ticks)
            self._take(best.market_qty, reach, f"{best.label}: take part")
        for option, qty in best.passive:
            qty = min(qty, self._round_lot(self.uncommitted))
            if qty <= 0:
                break
            self._send(
                option.venue,
                qty,
                OrdType.LIMIT,
                TimeInForce.DAY,
                option.price_ticks,
                snap,
                chosen=(
                    f"post {qty} on {option.venue} at {option.price_ticks} "
                    f"({option.level}; {best.label})"
                ),
                inputs={
                    **inputs,
                    **contexts[(option.venue, option.level)].as_inputs(),
                    "qty": float(qty),
                    "limit_ticks": float(option.price_ticks),
                },
                alternatives=alternatives,
                passive=True,
                queue_ahead=option.queue_ahead,
            )

    def _refresh_dark(self, target_next: int, snap: MarketSnapshot, screen: _Screen) -> None:
        """Rest midpoint orders in the dark pools for what the lit orders do not cover of
        the next slice plus a capped amount ahead of the schedule (midpoint fills save the
        spread and print nowhere), split evenly among the pools whose minimum it meets."""
        side = self.parent.side
        assert snap.bid_ticks is not None and snap.ask_ticks is not None
        # never cross in the dark at a worse price than the lit touch we would hit
        limit = self._within_limit(snap.bid_ticks if side is Side.SELL else snap.ask_ticks)
        if not self._price_ok(limit):
            return
        ahead_cap = int(self.config.dark_max_ahead * self.parent.qty)
        uncovered = max(0, target_next - self.result.filled_qty - self._lit_in_flight())
        total = self._round_lot(min(self.uncommitted, uncovered + ahead_cap))
        pools = [v for v, venue in self._venues.items() if venue.kind is VenueKind.DARK]
        while pools:
            share = self._round_lot(total // len(pools))
            small = [v for v in pools if share < self._dark_min.get(v, 0)]
            if not small:
                break
            pools.remove(max(small, key=lambda v: (self._dark_min.get(v, 0), v)))
        ours = snap.ask_depth if side is Side.SELL else snap.bid_depth
        other = snap.bid_depth if side is Side.SELL else snap.ask_depth

        def dark_context(venue_id: VenueId, qty: int) -> PassiveOrderContext:
            return PassiveOrderContext(
                venue=venue_id,
                dark=True,
                improve=False,
                side=side,
                spread_ticks=float(snap.ask_ticks - snap.bid_ticks),  # type: ignore[operator]
                queue_ahead=0.0,
                qty=float(qty),
                depth_ours=float(ours),
                depth_other=float(other),
                venue_share=0.0,
                volume_rate=screen.volume_rate,
                vol_bps=screen.vol_bps,
                touch_imbalance=screen.touch_imbalance,
                momentum_bps=screen.momentum_bps,
                recent=screen.recent,
            )

        for venue_id in pools:
            qty = self._round_lot(min(total // len(pools), self.uncommitted))
            pool_min = self._dark_min.get(venue_id, 0)
            if qty <= 0:
                continue
            self._send(
                venue_id,
                qty,
                OrdType.LIMIT,
                TimeInForce.DAY,
                limit,
                snap,
                chosen=f"rest {qty} at the midpoint in {venue_id} (limit {limit})",
                inputs={
                    **dark_context(venue_id, qty).as_inputs(),
                    "spread_ticks": float(snap.ask_ticks - snap.bid_ticks),
                    "volume_rate": screen.volume_rate,
                    "qty": float(qty),
                    "limit_ticks": float(limit),
                    "pool_min_qty": float(pool_min),
                    "ahead_cap": float(ahead_cap),
                    "uncovered": float(uncovered),
                    "filled": float(self.result.filled_qty),
                    "remaining": float(self.remaining),
                },
                alternatives={
                    "dark_saving_vs_taking_ticks": 0.5 * (snap.ask_ticks - snap.bid_ticks),
                },
                passive=True,
                min_qty=min(pool_min, qty),
            )

    # ------------------------------------------------------------ dealers (RFQ)

    def _maybe_request_quotes(self, snap: MarketSnapshot, now: Nanos, target_now: int) -> None:
        """Ask a panel of dealers for a block: up to `rfq_block_share` of the parent, never
        more than `rfq_max_ahead` of it ahead of the schedule. One RFQ at a time, and a
        cooldown after each that doubles while requests trade nothing: every request
        tells the dealers asked what we are doing, so asking in vain has a price."""
        assert self._rfq is not None
        cfg = self.config
        if self._rfq_work is not None or now < self._rfq_next_ns:
            return
        time_limit_s = cfg.rfq_time_limit_s or DEFAULT_RFQ_TIME_LIMIT_S
        time_left = self.parent.end_ns - now
        if time_left < (cfg.final_sweep_s + 2 * time_limit_s) * NANOS_PER_SECOND:
            return
        q = self.parent.qty
        committed = self.result.filled_qty + self.in_flight
        room = target_now + int(cfg.rfq_max_ahead * q) - committed
        size = self._round_lot(min(self.uncommitted, int(cfg.rfq_block_share * q), room))
        if size < max(self._lot, cfg.rfq_min_share * q):
            return
        self._request_quotes(
            snap,
            now,
            size,
            "request quotes for {size} from {panel}",
            {"ahead_room": float(room)},
        )

    def _maybe_request_risk_bid(self, snap: MarketSnapshot, now: Nanos) -> None:
        """The risk bid: everything not yet done, to the panel, at the first decision that
        can ask (arrival, unless the screen is one-sided or no dealer can be asked), and
        never again. None of the block limits apply: the whole parent is the point."""
        cfg = self.config
        if self._risk_bid_asked or self._rfq_work is not None:
            return
        time_limit_s = cfg.rfq_time_limit_s or DEFAULT_RFQ_TIME_LIMIT_S
        if self.parent.end_ns - now < (cfg.final_sweep_s + 2 * time_limit_s) * NANOS_PER_SECOND:
            return  # the answers would come during the final sweep, which passes on them
        size = self._round_lot(self.uncommitted)
        if size <= 0:
            return
        self._risk_bid_asked = self._request_quotes(
            snap,
            now,
            size,
            "request quotes for {size} from {panel} (risk bid: the whole parent at arrival)",
            {"parent_share": size / self.parent.qty},
        )

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
        assert self._rfq is not None
        cfg = self.config
        mid = snap.mid
        if mid is None:
            return False
        side = self.parent.side
        panel, scores = self._rfq.selector.select(
            side, size, cfg.rfq_panel_size, self._rng, two_sided=cfg.rfq_two_sided
        )
        if not panel:
            return False
        time_limit_s = cfg.rfq_time_limit_s or DEFAULT_RFQ_TIME_LIMIT_S
        rfq_id = RfqId(f"{self.parent.parent_id}-R{next(self._rfq_seq)}")
        request = QuoteRequest(
            rfq_id=rfq_id,
            symbol=self.parent.symbol,
            side=None if cfg.rfq_two_sided else side,
            qty=size,
            dealers=tuple(DealerId(d) for d in panel),
            time_limit_ns=int(time_limit_s * NANOS_PER_SECOND),
            parent_id=self.parent.parent_id,
        )
        lit_bps = self._lit_alternative_bps(snap, size)
        self._record(
            now,
            f"{rfq_id}-request",
            chosen.format(size=size, panel=", ".join(panel))
            + (" (two-sided)" if cfg.rfq_two_sided else ""),
            {
                "qty": float(size),
                **inputs,
                "panel_size": float(len(panel)),
                "lit_alternative_bps": lit_bps,
                "filled": float(self.result.filled_qty),
                "remaining": float(self.remaining),
            },
            {f"score_{k}": v for k, v in scores.items()},
        )
        self._rfq_work = _RfqWork(request, size, lit_alternative_bps=lit_bps)
        self._rfq.channel.request(request)
        return True

    def _lit_alternative_bps(self, snap: MarketSnapshot, qty: int) -> float:
        """What a dealer's quote for `qty` competes with: for a risk bid the whole
        parent worked by TWAP (`agency_cost_bps`), for a block of the router's own
        the block worked on the screen at once (`screen_cost_bps`)."""
        assert self._rfq is not None
        fee = min((f.taker_fee for f in self._fees.values()), default=0.0)
        rfq = self._rfq
        if self.config.routing == "risk-bid":
            left_s = max(0, self.parent.end_ns - self._clock.now_ns()) / NANOS_PER_SECOND
            return agency_cost_bps(snap, fee, qty, rfq.impact_bps, rfq.adv, left_s)
        return screen_cost_bps(snap, fee, qty, rfq.impact_bps, rfq.adv)

    def _trade_on_quotes(self) -> None:
        """At the time limit (or after a last-look refusal): hit the best quotes still
        valid, best first, while each beats the lit alternative; then end the RFQ."""
        work = self._rfq_work
        if work is None or not work.closed:
            return
        now = self._clock.now_ns()
        snap = self._market.snapshot()
        side = self.parent.side
        mid = snap.mid
        valid = [
            q
            for d, q in work.quotes.items()
            if d not in work.tried and q.valid_until_ns >= now and q.price_for(side) is not None
        ]
        if mid is None or self.idle or self._sweeping:
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
            if cost > work.lit_alternative_bps - self.config.rfq_edge_bps:
                break
            qty = self._round_lot(min(q.qty, want))
            work.tried.add(q.dealer)
            if qty <= 0:
                break
            # the shares come out of the reservation into a child order
            work.reserved = max(0, work.reserved - qty)
            cover = costs[valid[i + 1].dealer] if i + 1 < len(valid) else float("nan")
            child = self._send(
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
                    "filled": float(self.result.filled_qty),
                    "remaining": float(self.remaining),
                },
                alternatives=alternatives,
                aggressive=True,
                quote_id=q.quote_id,
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
                self._record(
                    now,
                    f"{work.request.rfq_id}-pass",
                    f"pass: {why}",
                    {"best_quote_bps": best, "lit_alternative_bps": work.lit_alternative_bps},
                    alternatives,
                )
            self._end_rfq()

    def _end_rfq(self) -> None:
        work = self._rfq_work
        if work is None or work.hits:
            return
        assert self._rfq is not None
        self._rfq_work = None
        self._rfq.channel.finish(work.request.rfq_id)
        self._rfq_passes = 0 if work.traded > 0 else self._rfq_passes + 1
        backoff = 2 ** min(self._rfq_passes, 4)
        cooldown = int(self.config.rfq_cooldown_s * backoff * NANOS_PER_SECOND)
        self._rfq_next_ns = self._clock.now_ns() + cooldown

    def _outflow_priors(
        self, joins: Sequence[PassiveOrderContext], volume_priors: Sequence[float]
    ) -> list[float]:
        """Each venue's expected outflow rate (shares/s) before its own fills say more:
        from the volume, or with `ml` routing from the fill model, which scores every
        queue worth asking about in one call. An exponential outflow D over the interval
        fills an order behind Q shares with P(D > Q) = exp(-Q / mean), so the model's
        P(fill) of joining the queue gives mean = -Q / ln P."""
        asked = [j for j in joins if j.queue_ahead > 0]  # nobody ahead: nothing to learn
        if self._fill_model is None or not asked:
            return list(volume_priors)
        p_fill = iter(self._fill_model.p_fill(asked))
        priors = []
        for join, prior in zip(joins, volume_priors, strict=True):
            if join.queue_ahead > 0:
                p = next(p_fill)
                if 0.01 < p < 0.99:
                    prior = -join.queue_ahead / np.log(p) / self.config.decision_interval_s
            priors.append(prior)
        return priors

    def _touch_imbalance(self, snap: MarketSnapshot) -> float:
        """(our side's quantity at the best price - the other side's) / their sum."""
        side = self.parent.side
        bid = sum(q.bid_qty for q in snap.venues if q.bid_ticks == snap.bid_ticks)
        ask = sum(q.ask_qty for q in snap.venues if q.ask_ticks == snap.ask_ticks)
        ours, other = (ask, bid) if side is Side.SELL else (bid, ask)
        return (ours - other) / (ours + other) if ours + other > 0 else 0.0

    def _momentum_bps(self, side: Side) -> float:
        """The mid's move over the last decision interval, signed so that a move that
        brings takers to our resting orders (up for a sell) is positive."""
        if len(self._mids) < 2:
            return 0.0
        (_, m0), (_, m1) = self._mids[-2], self._mids[-1]
        return -side.sign * (m1 - m0) / m0 * 1e4

    def _vol_bps(self, now: Nanos) -> float:
        """Volatility of the mid between decisions over the last 10 minutes, bps."""
        while self._mids and self._mids[0][0] < now - 600 * NANOS_PER_SECOND:
            self._mids.popleft()
        if len(self._mids) < 3:
            return 0.0
        mids = np.array([m for _, m in self._mids])
        return float(np.std(np.diff(np.log(mids))) * 1e4)

    def _market_volume_rate(self, now: Nanos) -> float:
        """Market volume per second over the recent past (the hint before any is seen)."""
        window = int(600 * NANOS_PER_SECOND)
        while len(self._volume_seen) > 2 and self._volume_seen[1][0] <= now - window:
            self._volume_seen.popleft()
        if len(self._volume_seen) < 2:
            return self._volume_rate_hint
        (t0, v0), (t1, v1) = self._volume_seen[0], self._volume_seen[-1]
        if t1 <= t0:
            return self._volume_rate_hint
        return (v1 - v0) / ((t1 - t0) / NANOS_PER_SECOND)

    # ------------------------------------------------------------ sending

    def _within_limit(self, price: int) -> int:
        lim = self.parent.limit_ticks
        if lim is None:
            return price
        return min(price, lim) if self.parent.side is Side.BUY else max(price, lim)

    def _price_ok(self, price: int) -> bool:
        lim = self.parent.limit_ticks
        return lim is None or self.parent.side.sign * (price - lim) <= 0

    def _send(
        self,
        venue: str,
        qty: int,
        ord_type: OrdType,
        tif: TimeInForce,
        limit: int | None,
        snap: MarketSnapshot,
        *,
        chosen: str,
        inputs: dict[str, float],
        alternatives: dict[str, float],
        aggressive: bool = False,
        passive: bool = False,
        exempt: bool = False,
        queue_ahead: int = 0,
        min_qty: int = 0,
        quote_id: str | None = None,
    ) -> ChildOrder | None:
        now = self._clock.now_ns()
        qty = min(qty, self.uncommitted)  # the last guard against overfilling
        if qty <= 0:
            return None
        child = ChildOrder(
            child_id=ChildId(f"{self.parent.parent_id}-{next(self._ids)}"),
            parent_id=self.parent.parent_id,
            venue=VenueId(venue),
            side=self.parent.side,
            qty=qty,
            ord_type=ord_type,
            tif=tif,
            limit_ticks=limit,
            post_only=passive and self._kind(VenueId(venue)) is VenueKind.LIT,
            min_qty=min_qty,
            quote_id=quote_id,
        )
        mid = None if snap.mid is None else snap.mid / snap.tick_size
        verdict = self.risk.check(
            child,
            mid,
            now,
            self._window_volume(now, snap),
            aggressive=aggressive,
            exempt_participation=exempt or self._too_early(now),
        )
        if verdict.qty < child.qty:
            if verdict.qty <= 0:
                self._record(now, child, f"blocked: {verdict.reason}", inputs, alternatives)
                return None
            child = dataclasses.replace(child, qty=verdict.qty, min_qty=min(min_qty, verdict.qty))
            chosen = f"{chosen}; {verdict.reason}"
        self._record(now, child, chosen, inputs, alternatives)
        self._open[child.child_id] = _Child(child, child.qty, now, passive, queue_ahead)
        self._sent.add(child.child_id)
        self.result.children.append(child)
        self.result.sent_ns[child.child_id] = now
        self._emit(ChildOrderSent(now, child))
        self._venues[child.venue].submit(child)
        return child

    def _record(
        self,
        now: Nanos,
        child: ChildOrder | str,
        chosen: str,
        inputs: dict[str, float],
        alternatives: dict[str, float],
    ) -> None:
        """Record a decision about a child order (or, given an id, one that sent none)."""
        key = child if isinstance(child, str) else child.child_id
        decision = DecisionRecorded(
            ts_ns=now,
            decision_id=DecisionId(f"{key}-d"),
            parent_id=self.parent.parent_id,
            chosen=chosen,
            inputs=inputs,
            alternatives=alternatives,
        )
        self.result.decisions.append(decision)
        self._emit(decision)

    def _too_early(self, now: Nanos) -> bool:
        return now - self.parent.start_ns < self.config.warmup_s * NANOS_PER_SECOND

    def _window_volume(self, now: Nanos, snap: MarketSnapshot) -> int:
        window = int(self.risk.limits.participation_window_s * NANOS_PER_SECOND)
        base = next((v for t, v in self._volume_seen if t >= now - window), snap.volume)
        return snap.volume - base

    def _cancel(self, child_id: ChildId) -> None:
        child = self._open.get(child_id)
        if child is None or child.cancel_pending:
            return
        child.cancel_pending = True
        self._venues[child.order.venue].cancel(child_id)

    def _kind(self, venue: VenueId) -> VenueKind:
        return self._venues[venue].kind

    def _round_lot(self, qty: int) -> int:
        if qty <= 0:
            return 0
        lots = qty // self._lot
        if lots:
            return lots * self._lot
        # below one lot: only the parent's final odd lot goes, so it completes exactly
        return min(qty, self.uncommitted) if self.uncommitted < self._lot else 0

    # ------------------------------------------------------------ venue events

    def publish(self, event: Event) -> None:
        self._emit(event)
        if self._rfq is not None:
            self._rfq.selector.observe(event)
            work = self._rfq_work
            if isinstance(event, QuoteReceived):
                if work is not None and event.quote.rfq_id == work.request.rfq_id:
                    work.quotes[event.quote.dealer] = event.quote
            elif (
                isinstance(event, RfqClosed)
                and work is not None
                and event.rfq_id == work.request.rfq_id
            ):
                work.closed = True
                self._trade_on_quotes()
        if isinstance(event, ChildOrderFilled):
            # a fill counts even if its child already left the open set: venues may report
            # an order's end before its last fill, and dropping that fill would overfill
            if event.child_id not in self._sent:
                return
            self.result.filled_qty += event.qty
            self.result.notional += event.qty * event.price
            self.result.fees += event.fee
            self.result.fills.append(event)
            child = self._open.get(event.child_id)
            passive = event.liquidity == "maker" or (child is not None and child.passive)
            if passive and self._kind(event.venue) is VenueKind.LIT:
                self.risk.record_lit_fill(event.ts_ns, event.qty)
            if child is not None:
                child.open_qty -= event.qty
                child.filled += event.qty
                if child.open_qty <= 0:
                    self._closed(event.child_id, event.ts_ns)
        elif isinstance(event, ChildOrderExpired | ChildOrderCanceled | ChildOrderRejected):
            self._closed(event.child_id, event.ts_ns)
        if isinstance(event, ChildOrderFilled | ChildOrderRejected):
            work = self._rfq_work
            if work is not None and event.child_id in work.hits:
                del work.hits[event.child_id]
                if isinstance(event, ChildOrderFilled):
                    work.traded += event.qty
                    self._end_rfq()
                else:  # last look said no: the next quote, if still worth it
                    self._trade_on_quotes()

    def _closed(self, child_id: ChildId, ts: Nanos) -> None:
        child = self._open.pop(child_id, None)
        if child is None:
            return
        if not child.passive:
            if child.open_qty > 0:
                self.risk.release(ts, child.open_qty)
            return
        if self._kind(child.order.venue) is VenueKind.LIT:
            rested_s = (ts - child.sent_ns) / NANOS_PER_SECOND
            self._outflow.observe(
                child.order.venue, child.queue_ahead, child.order.qty, child.filled, rested_s
            )

    def _emit(self, event: Event) -> None:
        if self._on_event is not None:
            self._on_event(event)
