"""`ReplayMarket`: a real order-by-order capture as the lit market of a simulated world
(simulators/markets.py `LitMarket`), in place of the simulated background flow.

The capture's events are applied to one book (l3.py) as the kernel's clock passes their
exchange times, the parent arriving at time 0 = `offset` after the live stream starts
(the events before it are the warm-up). Client orders (the router's children, the
dealers' hedges) go into the same book with an owner id:

- a passive child rests at the back of its level, behind the real orders there, and
  moves up as real orders ahead of it are canceled or filled;
- a real trade fills the client orders ahead of its maker in price-time priority before
  the feed's own fill of the maker is applied, and a real order that rests across
  client orders at prices no real order is at trades with them first (l3.py);
- an aggressive child takes real resting orders, which are then gone: what it took is
  counted per real order and subtracted from that order's later sizes, and the real
  trades and events that can no longer be applied because of it are counted
  (`interaction`).

What is not modelled: the real participants do not react to the client orders. A real
aggressor that filled a client order still fills the real maker the feed says it
filled (the client's fill adds to the real trade instead of displacing it), nobody
re-prices around a client's quote, and a client's trades move no later price. The tape
(volume, VWAP, flow) is the capture's trades plus the clients' own.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass

import numpy as np

from router.domain import NANOS_PER_SECOND, Nanos, Side, VenueId
from simulators import book
from simulators.book import ASK, BID
from simulators.feed import FeedReaders, MarketFeed, PathRecord
from simulators.fills import BookFullError, FillCallback, FillRouter, outside_take
from simulators.market import SubmitResult
from simulators.replay import l3
from simulators.replay.check import align_trades
from simulators.replay.events import Capture
from simulators.replay.replayer import Replayer, price_band
from simulators.replay.sources import load_replay
from simulators.scenario import Scenario
from simulators.schedule import SESSION_S, STEP_S, TAIL_S, StepGrid

#: order slots beyond the capture's orders, for client orders
CLIENT_SLOTS = 1 << 16


@dataclass(frozen=True, slots=True)
class ReplayData:
    """What every replay of one capture shares, measured once on the capture replayed
    without clients: its clock, its trades aligned to their makers' fill events, the
    outcome of each trade's check, and the mid second by second."""

    capture: Capture
    n_ticks: int
    live_start_ns: int  # exchange time of the first live event
    live_end_ns: int
    ts_max: np.ndarray  # running maximum of the events' exchange times (searchable)
    checks: l3.TradeChecks
    pure_codes: np.ndarray  # int8 per check: its outcome with no client orders
    mid_per_s: np.ndarray  # mid (ticks) at the end of each second of the live stream
    spread_per_s: np.ndarray  # spread (ticks) at the same instants, NaN if one-sided

    @property
    def span_s(self) -> float:
        return (self.live_end_ns - self.live_start_ns) / NANOS_PER_SECOND

    @property
    def traded(self) -> int:
        """Lots the capture's trades printed."""
        return int(self.capture.trades.qty.sum())

    @property
    def volume_per_s(self) -> float:
        return self.traded / self.span_s

    def mid_at(self, offset_s: float) -> float:
        """The mid (ticks) `offset_s` after the live stream starts (the last one known
        then, without clients)."""
        mids = self.mid_per_s[: max(1, min(int(offset_s), self.mid_per_s.size))]
        known = mids[~np.isnan(mids)]
        return float(known[-1]) if known.size else float(self.n_ticks) / 2

    def daily_vol(self) -> float:
        """Volatility of the mid's 1-minute log returns, scaled to the desk's session
        (6.5 h) as the simulated scenarios state theirs."""
        mids = self.mid_per_s[::60]
        mids = mids[~np.isnan(mids)]
        r = np.diff(np.log(mids))
        return float(np.std(r) * math.sqrt(SESSION_S / 60.0)) if r.size > 1 else 0.01


@functools.lru_cache(maxsize=2)
def replay_data(name: str) -> ReplayData:
    """The capture `name` loaded and replayed once without clients (cached: a backtest's
    episodes all replay the same capture)."""
    return measure_capture(load_replay(name))


def measure_capture(capture: Capture) -> ReplayData:
    """`capture` replayed once without clients."""
    ev = capture.events
    checks, _ = align_trades(capture)
    rp = Replayer(ev, len(capture.order_ids))
    rp.run(ev.n_snapshot)
    live = ev.ts_ns[ev.n_snapshot :]
    start = int(live[0]) if live.size else int(ev.ts_ns[-1])
    end = int(live.max()) if live.size else start
    ts_max = np.maximum.accumulate(ev.ts_ns)
    n_s = (end - start) // NANOS_PER_SECOND + 1
    mids = np.full(n_s, np.nan)
    spreads = np.full(n_s, np.nan)
    for k in range(n_s):
        rp.run(int(np.searchsorted(ts_max, start + (k + 1) * NANOS_PER_SECOND)), checks)
        b, a = rp.best_bid, rp.best_ask
        if b >= 0 and a < rp.n_ticks:
            mids[k] = 0.5 * (b + a)
            spreads[k] = a - b
    rp.run(checks=checks)
    return ReplayData(
        capture=capture,
        n_ticks=price_band(ev),
        live_start_ns=start,
        live_end_ns=end,
        ts_max=ts_max,
        checks=checks,
        pure_codes=checks.code.copy(),
        mid_per_s=mids,
        spread_per_s=spreads,
    )


def _fresh_checks(checks: l3.TradeChecks) -> l3.TradeChecks:
    return l3.TradeChecks(*(a.copy() for a in checks))


class ReplayMarket(FeedReaders):
    """One capture replayed from its start, the parent arriving `offset_s` after it."""

    def __init__(self, scenario: Scenario, data: ReplayData, offset_s: float) -> None:
        if len(scenario.lit) != 1:
            raise ValueError("a replayed market has one lit venue, the capture's")
        self.scenario = scenario
        self.instrument = scenario.instrument
        self.venue_ids: tuple[VenueId, ...] = (scenario.lit[0].venue_id,)
        self.offset_s = offset_s
        self._data = data
        step_ns = int(STEP_S * NANOS_PER_SECOND)
        warmup_steps = round(offset_s / STEP_S)
        self.grid = StepGrid(
            t0_ns=-warmup_steps * step_ns,
            step_ns=step_ns,
            n_steps=warmup_steps + round((scenario.horizon_s + TAIL_S) / STEP_S),
            steps_per_bar=round(1.0 / STEP_S),
        )
        #: exchange time of the world's time 0
        self.shift_ns = data.live_start_ns + warmup_steps * step_ns
        n_orders = len(data.capture.order_ids)
        capacity = n_orders + 1 + CLIENT_SLOTS
        self.state = book.new_book_state(1, data.n_ticks, capacity, self.grid.n_bars)
        self._rs = l3.new_replay_state(n_orders, capacity)
        bar_ns = step_ns * self.grid.steps_per_bar
        self._clients = l3.new_clients(n_orders, self.shift_ns, self.grid.t0_ns, bar_ns)
        self._fills = FillRouter(self._clients.fb)
        self._checks = _fresh_checks(data.checks)
        self._outcome = np.zeros(len(data.capture.events), dtype=np.int8)
        self._position = 0  # next event to apply
        self._printed = 0  # next real trade to print on the tape
        self._finished = False
        self._now: Nanos = self.grid.t0_ns - 1  # world time the book is at
        self._taken_orders = 0
        self._taken_qty = 0
        self.record = PathRecord.empty(self.grid.n_steps)
        # the mid at arrival, as the capture shows it: the scale of `vol_ratio`
        self.price_ticks0 = data.mid_at(offset_s)
        self.feed = MarketFeed(
            self.grid,
            self.instrument,
            self.venue_ids,
            self.price_ticks0,
            scenario.market.daily_vol,
            self.state,
            self.record,
        )
        self._apply(data.capture.events.n_snapshot)  # the start snapshot
        self.advance_to(0)  # the warm-up: the capture up to the parent's arrival

    @classmethod
    def for_scenario(cls, scenario: Scenario, seed: int) -> ReplayMarket:
        """The market of a replayed scenario, for the episode of master seed `seed`."""
        if scenario.replay is None:
            raise ValueError(f"scenario {scenario.name!r} is not a replay")
        spec = scenario.replay
        return cls(scenario, replay_data(spec.capture), spec.offset_s(seed))

    def fork(self) -> ReplayMarket:
        """An independent copy in the same state (books, replay position), sharing the
        capture. Only a market no client has touched may be forked."""
        if self._fills.callback is not None:
            raise RuntimeError("fork a market before any client is attached to it")
        new = copy.copy(self)
        new.state = book.BookState(*(a.copy() for a in self.state))
        new._rs = l3.ReplayState(*(a.copy() for a in self._rs))
        new._clients = l3.Clients(
            book.new_fill_buffer(self._clients.fb.ts.shape[0]),
            self._clients.taken.copy(),
            self._clients.conf.copy(),
        )
        new._fills = FillRouter(new._clients.fb)
        new._checks = _fresh_checks(self._checks)
        new._outcome = self._outcome.copy()
        new.record = self.record.copy()
        new.feed = self.feed.over(new.state, new.record)
        return new

    # ------------------------------------------------------------------ time

    @property
    def end_ns(self) -> Nanos:
        return self.grid.end_ns

    @property
    def steps_done(self) -> int:
        return self.record.steps_done

    def step_of(self, ts: Nanos) -> int:
        return self.grid.step_of(ts)

    def bar_of(self, ts: Nanos) -> int:
        return self.grid.bar_of(ts)

    def _event_index(self, ts: Nanos, *, inclusive: bool) -> int:
        """The first event after world time `ts` (at or after it if not `inclusive`)."""
        t = self.shift_ns + ts
        if inclusive:
            return int(np.searchsorted(self._data.ts_max, t, side="right"))
        return int(np.searchsorted(self._data.ts_max, t, side="left"))

    def _apply(self, stop: int) -> None:
        ev = self._data.capture.events
        if stop > self._position:
            l3.apply_events(
                self.state,
                self._rs,
                ev.ts_ns,
                ev.order,
                ev.side,
                ev.price,
                ev.qty,
                ev.action,
                ev.n_snapshot,
                self._position,
                stop,
                self._outcome,
                self._checks,
                self._clients,
            )
            self._position = stop

    def _print_trades(self, ts: Nanos) -> None:
        """The capture's trades up to world time `ts` on the tape."""
        tr = self._data.capture.trades
        st = self.state
        while self._printed < len(tr) and int(tr.ts_ns[self._printed]) - self.shift_ns <= ts:
            j = self._printed
            bar = self.grid.bar_of(max(int(tr.ts_ns[j]) - self.shift_ns, self.grid.t0_ns))
            q, p = int(tr.qty[j]), int(tr.price[j])
            st.tape_vol[bar] += q
            st.tape_pv[bar] += p * q
            st.tape_signed[bar] += q if tr.aggressor[j] == BID else -q
            st.last_px[0] = p
            self._printed += 1

    def _record_step(self, i: int) -> None:
        st, rec = self.state, self.record
        b, a = int(st.best[0, BID]), int(st.best[0, ASK])
        rec.bid_path[i] = b
        rec.ask_path[i] = a
        if b >= 0 and a < st.depth.shape[2]:
            rec.ref_path[i] = 0.5 * (b + a)
        else:
            rec.ref_path[i] = rec.ref_path[i - 1] if i > 0 else self.price_ticks0

    def advance_to(self, ts: Nanos) -> None:
        """Apply the capture's events up to world time `ts` (inclusive) in feed order,
        recording the touch at the end of every step passed on the way."""
        if ts <= self._now:
            return
        g, rec = self.grid, self.record
        done = min(max((ts - g.t0_ns) // g.step_ns, 0), g.n_steps)
        for i in range(rec.steps_done, done):
            end = g.t0_ns + (i + 1) * g.step_ns
            self._apply(self._event_index(end, inclusive=False))
            self._print_trades(end - 1)
            self._record_step(i)
        rec.steps_done = max(rec.steps_done, done)
        self._apply(self._event_index(ts, inclusive=True))
        self._print_trades(ts)
        if not self._finished and self.shift_ns + ts > self._data.live_end_ns:
            l3.finish(self.state, self._rs, self._clients)  # its last millisecond is over
            self._finished = True
        self._now = ts
        self._fills.drain()

    # ------------------------------------------------------------------ client orders

    def on_client_fill(self, callback: FillCallback) -> None:
        self._fills.callback = callback

    def submit(
        self,
        ts: Nanos,
        venue: int,
        side: Side,
        price_ticks: int,
        qty: int,
        owner: int,
        flags: int = 0,
        peak: int = 0,
    ) -> SubmitResult:
        s = BID if side is Side.BUY else ASK
        slot, leaves, status = book.submit(
            self.state,
            self._fills.buffer,
            0,
            s,
            price_ticks,
            qty,
            peak,
            owner,
            flags,
            ts,
            self.grid.bar_of(ts),
        )
        self._settle_takes()
        self._fills.drain()
        if status == book.BOOK_FULL:
            raise BookFullError("order book capacity exhausted")
        return SubmitResult(int(slot), int(leaves), int(status))

    def _settle_takes(self) -> None:
        """A client order just took real resting orders: what it took is gone for them
        (l3.py subtracts it from their later sizes), and an order taken entirely has
        left the book, so its later events are skipped (`taken_by_client`)."""
        fb, rs, taken = self._fills.buffer, self._rs, self._clients.taken
        for i in range(int(fb.n[0])):
            if fb.maker_owner[i] != 0:
                continue
            slot = int(fb.maker_slot[i])
            o = int(rs.order_of_slot[slot])
            if o < 0:
                continue
            q = int(fb.qty[i])
            taken[o] += q
            self._taken_qty += q
            if fb.maker_leaves[i] == 0:
                # the book has freed the slot (a client order may rest in it now)
                rs.order_of_slot[slot] = -1
                rs.slot_of[o] = -1
                rs.status[o] = l3.IGNORED
                rs.why[o] = l3.SKIP_TAKEN_BY_CLIENT
                self._taken_orders += 1

    def cancel(self, slot: int) -> int:
        return int(book.cancel(self.state, slot))

    def record_passive_client_fill(self, side: Side, qty: int) -> None:
        """Nothing: the replayed prices do not react to the clients' trades."""

    def take(
        self, ts: Nanos, side: Side, qty: int, reach_ticks: int, owner: int
    ) -> tuple[int, int]:
        """An outside participant's marketable IOC reaching `reach_ticks` past the
        touch; returns the quantity filled and what it paid (ticks x units)."""
        return outside_take(
            self.state,
            self._fills,
            side,
            qty,
            reach_ticks,
            owner,
            lambda v, limit: self.submit(ts, v, side, limit, qty, owner, book.IOC).leaves,
        )

    def interaction(self) -> dict[str, int]:
        """How the clients changed the replay so far: real orders and lots their
        aggressive orders took, and what of the feed could not be applied as printed
        because of that (trades whose maker was no longer there with the traded size,
        although it was in the replay without clients; events skipped; size changes
        below what the clients had left of an order)."""
        ck = self._checks
        reached = ck.code != l3.CHK_NOT_REACHED
        was_ok = self._data.pure_codes == l3.CHK_OK
        lost = reached & was_ok & (ck.code != l3.CHK_OK)
        skipped = int(np.count_nonzero(self._outcome == l3.SKIP_TAKEN_BY_CLIENT))
        return {
            "real_orders_taken": self._taken_orders,
            "real_lots_taken": self._taken_qty,
            "real_trades_reached": int(np.count_nonzero(reached)),
            "real_trades_unmatched_because_of_clients": int(np.count_nonzero(lost)),
            "real_events_skipped_taken_by_client": skipped,
            "real_changes_short": l3.short_changes(self._clients),
        }

    # ------------------------------------------------------------------ market data

    def future_move_sign(self, ts: Nanos, horizon_s: float) -> float:
        """Sign of the capture's own mid move over the next `horizon_s` (without
        clients): for informed simulated participants (dark pool contra) only."""
        mids = self._data.mid_per_s
        i = (self.shift_ns + ts - self._data.live_start_ns) // NANOS_PER_SECOND
        i = min(max(int(i), 0), mids.size - 1)
        j = min(i + int(horizon_s), mids.size - 1)
        move = mids[j] - mids[i]
        return 0.0 if np.isnan(move) else float(np.sign(move))
