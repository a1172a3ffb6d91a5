"""Simulated dark pools: the `Venue` port over hidden contra liquidity crossed at the lit
midpoint.

Why it looks like this:
- No pre-trade transparency. Contra interest is invisible to the router, which learns
  about it only through its own fills (and, for conditional orders, firm-up requests).
- Reproducible contra. The whole contra stream (arrival times, sizes, lifetimes, the
  informed flags and the uninformed sides) is drawn at construction from its own child
  generator; latency samples come from a second one. What the router does therefore
  never shifts the contra stream, and the same seed gives the same events.
- Adverse selection. An informed contra takes, at its arrival, the side that profits
  from the coming 60 s move of the exogenous price, so it trades with you just before
  the price moves against you; `toxicity` is the share of contra that is informed.
- Messages travel with the pool's latency both ways, as on the lit venues
  (simulators/lit.py): an order or a firm-up reaches the pool one latency after it is
  sent, and every report reaches the router one latency after the fact.

`contra_log` and the counters are for evaluation code and tests, never for strategies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from router.domain import (
    NANOS_PER_SECOND,
    ChildId,
    ChildOrder,
    ChildOrderAccepted,
    ChildOrderCanceled,
    ChildOrderExpired,
    ChildOrderFilled,
    ChildOrderRejected,
    Event,
    FirmUpRequested,
    Nanos,
    Side,
    TimeInForce,
    VenueId,
    VenueKind,
)
from router.ports import EventSink
from simulators.kernel import Kernel, LatencyModel
from simulators.markets import LitMarket
from simulators.scenario import DarkVenueSpec

INFORMED_HORIZON_S = 60.0  # how far ahead an informed contra sees the price move


@dataclass(slots=True)
class _Contra:
    """One piece of hidden contra interest, live in [arrival_ns, expires_ns)."""

    arrival_ns: Nanos
    expires_ns: Nanos
    qty: int  # remaining
    informed: bool
    u_side: float  # pre-drawn uniform: the side of an uninformed contra
    side: Side | None = None  # decided at arrival

    def live(self, now: Nanos) -> bool:
        return self.qty > 0 and self.arrival_ns <= now < self.expires_ns


@dataclass(slots=True)
class _Invite:
    """An outstanding firm-up request: which contra it is for, and until when."""

    contra: _Contra
    deadline_ns: Nanos


@dataclass(slots=True)
class _Working:
    child: ChildOrder
    leaves: int
    invite: _Invite | None = None  # conditionals: at most one outstanding request


class SimDarkPool:
    """A midpoint-crossing dark pool with min-qty and conditional (firm-up) orders."""

    def __init__(
        self,
        spec: DarkVenueSpec,
        market: LitMarket,
        kernel: Kernel,
        sink: EventSink,
        rng: np.random.Generator,
    ) -> None:
        self.spec = spec
        self._market = market
        self._kernel = kernel
        self._sink = sink
        contra_rng, latency_rng = rng.spawn(2)
        self._latency = LatencyModel.from_micros(spec.latency_us, spec.latency_jitter).draws(
            latency_rng
        )
        self._window_ns = round(spec.firm_up_window_s * NANOS_PER_SECOND)
        self._last_in_ns: Nanos = 0  # delivery time of the last message to the pool
        self._last_out_ns: Nanos = 0  # and of the last report to the router
        self._working: dict[ChildId, _Working] = {}  # insertion order = time priority
        self._live: list[_Contra] = []  # arrived contra, in arrival order
        # for evaluation code only, never for strategies:
        self.contra_log: list[tuple[Nanos, Side, int, bool]] = []  # as contra arrives
        self.fill_count = 0
        self.filled_qty = 0
        self.informed_fill_count = 0  # fills against informed contra
        self.firm_up_requests = 0
        self.firm_ups_firmed = 0  # firm-ups that traded
        self._pregenerate(contra_rng)

    @property
    def venue_id(self) -> VenueId:
        return self.spec.venue_id

    @property
    def kind(self) -> VenueKind:
        return VenueKind.DARK

    def open_orders(self) -> list[ChildId]:
        return list(self._working)

    # ---------------------------------------------------------------- Venue port

    def submit(self, child: ChildOrder) -> None:
        self._inbound(lambda: self._arrive(child))

    def cancel(self, child_id: ChildId) -> None:
        self._inbound(lambda: self._cancel(child_id))

    def firm_up(self, child_id: ChildId, qty: int) -> None:
        self._inbound(lambda: self._firm_up(child_id, qty))

    # ---------------------------------------------------------------- contra stream

    def _pregenerate(self, rng: np.random.Generator) -> None:
        """Draw every contra arrival over [0, market.end_ns) and schedule it.

        Draws happen in a fixed order and in full whatever the parameters, so specs that
        differ only in `toxicity` share arrivals, sizes, lifetimes and uninformed sides.
        """
        spec, lot = self.spec, self._market.instrument.lot_size
        end = self._market.end_ns
        rate_per_ns = 2.0 * spec.contra_per_hour / (3600.0 * NANOS_PER_SECOND)  # both sides
        n = int(rng.poisson(rate_per_ns * end)) if end > 0 else 0
        times = np.sort(rng.uniform(0.0, float(end), n)).astype(np.int64)
        sizes = rng.lognormal(math.log(spec.contra_median), spec.contra_sigma, n)
        lifetimes = rng.exponential(spec.contra_lifetime_s * NANOS_PER_SECOND, n)
        u_informed = rng.random(n)
        u_side = rng.random(n)
        min_lots = max(1, math.ceil(spec.min_qty / lot))
        now = self._kernel.clock.now_ns()
        for i in range(n):
            ts = int(times[i])
            if ts < now:  # cannot schedule in the past (a pool built mid-run)
                continue
            c = _Contra(
                arrival_ns=ts,
                expires_ns=ts + max(1, int(lifetimes[i])),
                qty=max(min_lots, round(sizes[i] / lot)) * lot,
                informed=bool(u_informed[i] < spec.toxicity),
                u_side=float(u_side[i]),
            )
            self._kernel.schedule(ts, partial(self._contra_arrives, c))

    def _contra_arrives(self, c: _Contra) -> None:
        now = self._now()
        if c.informed:
            up = self._market.future_move_sign(now, INFORMED_HORIZON_S) > 0
        else:
            up = c.u_side < 0.5
        side = c.side = Side.BUY if up else Side.SELL
        self.contra_log.append((now, side, c.qty, c.informed))
        self._live = [x for x in self._live if x.live(now)]
        self._live.append(c)
        for w in list(self._working.values()):  # time priority
            if not c.live(now):
                break
            if w.child.side is not side.opposite:
                continue
            if w.child.conditional:
                old = w.invite
                if old is None or now > old.deadline_ns or not old.contra.live(now):
                    self._invite(w, c, now)
            else:
                self._cross(w, c, min(w.leaves, c.qty), now)

    # ---------------------------------------------------------------- at the pool

    def _now(self) -> Nanos:
        return self._kernel.clock.now_ns()

    # Each direction is one ordered session (as over FIX/TCP): jitter delays messages
    # but never reorders them, so a cancel cannot overtake its order, nor a fill its ack.

    def _inbound(self, action: Callable[[], None]) -> None:
        at = max(self._now() + self._latency(), self._last_in_ns)
        self._last_in_ns = at
        self._kernel.schedule(at, action)

    def _report(self, event: Event) -> None:
        at = max(event.ts_ns, self._now()) + self._latency()
        at = max(at, self._last_out_ns)
        self._last_out_ns = at
        self._kernel.schedule(at, lambda: self._sink.publish(event))

    def _reject(self, now: Nanos, child_id: ChildId, reason: str) -> None:
        self._report(ChildOrderRejected(now, child_id, self.venue_id, reason))

    def _arrive(self, child: ChildOrder) -> None:
        now = self._now()
        if child.child_id in self._working:
            self._reject(now, child.child_id, "duplicate id")
            return
        if child.qty < self.spec.min_qty:
            why = f"quantity {child.qty} is below the pool minimum of {self.spec.min_qty}"
            self._reject(now, child.child_id, why)
            return
        if child.conditional and child.tif is TimeInForce.IOC:
            self._reject(now, child.child_id, "conditional orders must rest (DAY), not IOC")
            return
        w = _Working(child, leaves=child.qty)
        self._working[child.child_id] = w
        self._report(ChildOrderAccepted(now, child.child_id, self.venue_id))
        self._live = [c for c in self._live if c.live(now)]
        contras = [c for c in self._live if c.side is child.side.opposite]
        if child.conditional:
            for c in contras:
                if self._invite(w, c, now):
                    break
            return
        for c in contras:
            if w.leaves == 0:
                break
            self._cross(w, c, min(w.leaves, c.qty), now)
        if w.leaves > 0 and child.tif is TimeInForce.IOC:
            self._working.pop(child.child_id, None)
            self._report(ChildOrderExpired(now, child.child_id, self.venue_id, w.leaves))

    def _cancel(self, child_id: ChildId) -> None:
        now = self._now()
        w = self._working.pop(child_id, None)
        if w is None:
            self._report(ChildOrderCanceled(now, child_id, self.venue_id, 0, "too late: not open"))
            return
        self._report(ChildOrderCanceled(now, child_id, self.venue_id, w.leaves))

    def _firm_up(self, child_id: ChildId, qty: int) -> None:
        now = self._now()
        w = self._working.get(child_id)
        if w is None or not w.child.conditional:
            self._reject(now, child_id, "firm-up for no open conditional order")
            return
        invite, w.invite = w.invite, None  # one answer per request; the order keeps resting
        if invite is None or now > invite.deadline_ns or not invite.contra.live(now):
            self._reject(now, child_id, "firm-up too late: contra no longer available")
            return
        c = invite.contra
        fill = min(qty, w.leaves, c.qty)
        reason = self._no_cross_reason(w, c, fill)
        if reason:
            self._reject(now, child_id, f"firm-up did not trade: {reason}")
            return
        self._cross(w, c, fill, now)
        self.firm_ups_firmed += 1

    # ---------------------------------------------------------------- crossing

    def _no_cross_reason(self, w: _Working, c: _Contra, qty: int) -> str:
        """Why `qty` cannot cross between `w` and `c` now at the midpoint ("" if it can).

        Minimums apply to what is left when less than the minimum is left: the child's
        `min_qty` caps at its leaves, the pool's `min_qty` (the contra's own) at the
        contra's remaining quantity.
        """
        mid = self._market.mid_ticks()
        limit = w.child.limit_ticks
        if mid is None:
            return "no midpoint (one-sided or locked market)"
        if limit is not None and (mid > limit if w.child.side is Side.BUY else mid < limit):
            return f"midpoint {mid:g} is through the limit {limit}"
        if qty <= 0 or qty < min(w.child.min_qty, w.leaves):
            return f"{qty} is below the order's minimum quantity {w.child.min_qty}"
        if qty < min(self.spec.min_qty, c.qty):
            return f"{qty} is below the contra's minimum quantity {self.spec.min_qty}"
        return ""

    def _cross(self, w: _Working, c: _Contra, qty: int, now: Nanos) -> bool:
        """Trade `qty` at the midpoint if every rule allows it; True if it traded."""
        if self._no_cross_reason(w, c, qty):
            return False
        mid = self._market.mid_ticks()
        assert mid is not None  # checked above
        c.qty -= qty
        w.leaves -= qty
        # the client's side of the cross is its own flow in the price reaction, as a
        # passive lit fill is (SimMarket.record_passive_client_fill): without the client
        # the contra would have traded elsewhere, so the client's fill takes the place of
        # volume on its own side. A metaorder's impact follows the square-root law
        # however it is worked; a dark fill is not free of it
        self._market.record_passive_client_fill(w.child.side, qty)
        self.fill_count += 1
        self.filled_qty += qty
        self.informed_fill_count += int(c.informed)
        self._report(
            ChildOrderFilled(
                ts_ns=now,
                child_id=w.child.child_id,
                venue=self.venue_id,
                side=w.child.side,
                qty=qty,
                price=round(mid * self._market.instrument.tick_size, 6),
                fee=self.spec.fee * qty,
                liquidity="midpoint",
                leaves_qty=w.leaves,
            )
        )
        if w.leaves == 0:
            self._working.pop(w.child.child_id, None)
        return True

    def _invite(self, w: _Working, c: _Contra, now: Nanos) -> bool:
        """Ask the router to firm up a conditional against `c`; True if asked."""
        qty = min(c.qty, w.leaves)
        if self._no_cross_reason(w, c, qty):
            return False
        deadline = now + self._window_ns
        w.invite = _Invite(c, deadline)
        self.firm_up_requests += 1
        self._report(FirmUpRequested(now, w.child.child_id, self.venue_id, qty, deadline))
        return True
