"""The simulated market of one instrument: its lit books, the background participants
and the exogenous price path, built from a scenario and one master seed.

`SimMarket` is the kernel's continuous process. It assembles its parts: the per-step
schedule drawn from the scenario (simulators/schedule.py), the books (simulators/book.py)
and the compiled background flow over them (simulators/flow.py), which it runs in
100 ms steps whenever the kernel asks it to catch up, the router of client fills
(simulators/fills.py) and the feed (simulators/feed.py), which serves `MarketData`
snapshots (what a trader sees) and reads the path the flow records (reference price,
consolidated best bid/ask per step): that record is for TCA and measurement, never for
strategies. `SimMarket.branch` gives copies of the present with a redrawn future, for
Monte Carlo (simulators/oracle.py).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from operator import index
from typing import Any

import numpy as np

from router.domain import Nanos, Side, VenueId
from router.ports import MarketSnapshot
from simulators import book, flow
from simulators.feed import FeedReaders, MarketFeed, PathRecord
from simulators.fills import BookFullError, FillCallback, FillRouter, outside_take
from simulators.jit import machine_code
from simulators.scenario import Scenario
from simulators.schedule import STEP_S, StepGrid, build_schedule

EXO_BLOCK = 2048  # steps of a branch's exogenous future redrawn at a time


@dataclass(frozen=True, slots=True)
class SubmitResult:
    slot: int  # resting slot, -1 if nothing rests
    leaves: int  # quantity not filled on arrival
    status: int  # simulators.book status code


class SimMarket(FeedReaders):
    def __init__(self, scenario: Scenario, rng: np.random.Generator) -> None:
        self.scenario = scenario
        self.instrument = scenario.instrument
        self.venue_ids: tuple[VenueId, ...] = tuple(v.venue_id for v in scenario.lit)
        self.price_ticks0 = scenario.market.price / self.instrument.tick_size
        self.grid = StepGrid.for_horizon(scenario.horizon_s)
        self._gen = rng
        self.sched, self.params, self._exo = build_schedule(
            scenario, self.grid, self.price_ticks0, rng
        )
        # a branch redraws its exogenous future lazily, in blocks from its own generator:
        # sched[S_EXO, i] is valid for i < _exo_ready (always all of it outside branches)
        self._exo_ready = self.grid.n_steps
        self._exo_rng: np.random.Generator | None = None
        n_ticks = int(self.price_ticks0 * 2) + 1
        self.state = book.new_book_state(len(self.venue_ids), n_ticks, 1 << 16, self.grid.n_bars)
        self._fills = FillRouter(book.new_fill_buffer(1 << 14))
        shares = np.array([v.share for v in scenario.lit], dtype=np.float64)
        self._cum_share = np.cumsum(shares) / shares.sum()
        self.impact = np.zeros(flow.N_IMPACT, dtype=np.float64)
        self.record = PathRecord.empty(self.grid.n_steps)
        # what last changed the books (a count of the calls that may have), and the last
        # snapshot with the instant and count it was taken at: see `snapshot`
        self._changes = 0
        self._last_snap: tuple[Nanos, int, MarketSnapshot] | None = None
        self.feed = MarketFeed(
            self.grid,
            self.instrument,
            self.venue_ids,
            self.price_ticks0,
            scenario.market.daily_vol,
            self.state,
            self.record,
        )
        # compiled (or loaded from the cache) now, not at a live service's first order
        self._resolve_code()
        self.advance_to(0)  # warm the book up to the parent's arrival
        # the feed's compiled readers too, before any decision reads them
        self.touches_before(0, (0.0,))
        self.flow_over(0, (0,))

    def _flow_args(self, i0: int, i1: int) -> tuple[Any, ...]:
        """flow.advance's arguments for steps [i0, i1): the market's own arrays."""
        rec, g = self.record, self.grid
        return (
            self.state,
            self._fills.buffer,
            self._gen,
            self.sched,
            self.params,
            self._cum_share,
            self.impact,
            rec.ref_path,
            rec.bid_path,
            rec.ask_path,
            i0,
            i1,
            g.t0_ns,
            0,
            g.steps_per_bar,
        )

    def _resolve_code(self) -> None:
        """Look up the machine code of the compiled calls that take the whole book (its
        22 arrays in a named tuple, which numba's dispatcher types in Python, about 5 us
        a call), past the dispatch (simulators/jit.py machine_code): the arguments are
        always this market's arrays, made as here (a fork's and a branch's are copies of
        them), and whole numbers (`submit` checks), so their types never change."""
        self._advance = machine_code(flow.advance, self._flow_args(0, 0))
        self._submit = machine_code(book.submit, (self.state, self._fills.buffer, *(0,) * 9))
        self._cancel = machine_code(book.cancel, (self.state, 0))

    def __getstate__(self) -> dict[str, Any]:
        # machine code does not pickle: an unpickled market (or a deep copy) looks it up
        # again, for its own arrays; the last snapshot is not worth a copy, the copy's
        # first read takes its own
        state = self.__dict__.copy()
        for name in ("_advance", "_submit", "_cancel"):
            del state[name]
        state["_last_snap"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._resolve_code()

    def fork(self) -> SimMarket:
        """An independent copy in the same state (books, generator, impact): the
        strategies of one episode each get one at arrival instead of redoing the
        warm-up. Only a market no client has touched may be forked."""
        if self._fills.callback is not None:
            raise RuntimeError("fork a market before any client is attached to it")
        new = self._copy_parts()
        new._gen = copy.deepcopy(self._gen)  # the same stream from here on
        if self._exo_rng is not None:
            # a branch's schedule is its own, redrawn ahead lazily from its own generator
            new.sched = self.sched.copy()
            new._exo_rng = copy.deepcopy(self._exo_rng)
        # else the schedule is whole and nothing ever writes it (only a branch redraws
        # its exogenous row, in a copy of its own), so every fork of an episode shares
        # it: 8 MB and four fifths of a fork's time (32 -> 7 ms)
        return new

    def _copy_parts(self) -> SimMarket:
        """A copy with its own books, fill buffer, impact, path and feed, sharing every
        other attribute (the immutable parts: scenario, params, shares; the machine code,
        since the copy's arrays are made as these were). Not `copy.copy`: that goes
        through `__getstate__` and would look the machine code up again."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.state = book.BookState(*(a.copy() for a in self.state))
        # between calls the fill buffer is always drained: an empty one is an exact copy
        new._fills = FillRouter(book.new_fill_buffer(self._fills.buffer.ts.shape[0]))
        new.impact = self.impact.copy()
        new.record = self.record.copy()
        new.feed = self.feed.over(new.state, new.record)
        new._last_snap = None  # the copy's first read takes its own
        return new

    def branch(self, rng: np.random.Generator, *, reuse: SimMarket | None = None) -> SimMarket:
        """An independent copy in the current state (books, impact, paths so far) whose
        future is redrawn: the background flow draws from `rng`, and the exogenous path
        after the last step run is redrawn from the same process (same per-step
        volatility, drift and scenario phase jumps; new shocks and random jumps) from a
        generator spawned from `rng`. Same `rng` seed, same branch.

        Unlike `fork`, a market with clients attached may be branched: their resting
        orders stay in the copy's books, but the copy has no fill callback (set one with
        `on_client_fill`). The original is not touched.

        `reuse`: a branch that is no longer needed, of this market or of any market of
        the same construction (branches, branches of branches). Its arrays are
        overwritten and it is returned as the new branch: that saves allocating and
        page-faulting ~17 MB per branch (0.3 ms instead of up to several ms).
        """
        # spawn first: it does not draw from `rng`, so the flow's stream starts at its top
        exo_rng = rng.spawn(1)[0]
        k = self.record.steps_done
        if reuse is None:
            new = self._copy_parts()
            new.sched = self.sched.copy()
        else:
            if reuse is self or reuse._exo_rng is None:
                raise ValueError("only a branch that is no longer needed can be reused")
            if reuse.params is not self.params:
                raise ValueError("reuse a branch of the same market (same construction)")
            new = reuse
            own = new.state, new._fills, new.impact, new.record, new.sched, new.feed
            new.__dict__.update(self.__dict__)  # every other attribute as in `self`
            new.state, new._fills, new.impact, new.record, new.sched, new.feed = own
            for dst, src in zip(new.state, self.state, strict=True):
                np.copyto(dst, src)
            new._fills.buffer.n[0] = 0
            np.copyto(new.impact, self.impact)
            new.record.copy_from(self.record)
            # the other rows are the construction's schedule, which nothing ever writes
            new.sched[flow.S_EXO, :k] = self.sched[flow.S_EXO, :k]
        new._gen = rng
        new._last_snap = None  # a reused branch took `self`'s with its attributes too
        new._fills.callback = None
        # NaN, not the original's future: a read before the redraw would show at once
        new.sched[flow.S_EXO, k:] = np.nan
        new._exo_ready = k
        new._exo_rng = exo_rng
        return new

    def _ensure_exo(self, upto: int) -> None:
        """Redraw a branch's exogenous path up to step `upto` (exclusive), in fixed blocks
        from the branch's own generator, so the path does not depend on how the branch
        is advanced."""
        n_steps = self.grid.n_steps
        upto = min(upto, n_steps)
        exo = self.sched[flow.S_EXO]
        while self._exo_ready < upto:
            assert self._exo_rng is not None  # only a branch has a future left to draw
            i0 = self._exo_ready
            i1 = min(i0 + EXO_BLOCK, n_steps)
            start = float(exo[i0 - 1]) if i0 > 0 else self.price_ticks0
            exo[i0:i1] = self._exo.draw(self._exo_rng, i0, i1, start)
            self._exo_ready = i1

    # ------------------------------------------------------------------ time

    def scheduled_move(self, i0: int, i1: int) -> float:
        """The exogenous path's scheduled move from the end of step `i0` to the end of
        step `i1` (ticks): the phases' drifts and jumps, without the random part. For
        studies of the market itself (bench/drift.py), never for strategies."""
        return float(self._exo.drift[i0 + 1 : i1 + 1].sum())

    def step_of(self, ts: Nanos) -> int:
        return self.grid.step_of(ts)

    def bar_of(self, ts: Nanos) -> int:
        return self.grid.bar_of(ts)

    def advance_to(self, ts: Nanos) -> None:
        """Run every background step that starts at or before `ts`."""
        g, rec = self.grid, self.record
        target = min(g.step_of(ts) + 1, g.n_steps)
        if target <= rec.steps_done:
            return
        # informed takers of step i read the exogenous path at i + lookahead
        self._ensure_exo(target + int(self.params[flow.P_LOOKAHEAD]))
        self._advance(*self._flow_args(rec.steps_done, target))
        rec.steps_done = target
        self._changes += 1
        self._fills.drain()

    @property
    def end_ns(self) -> Nanos:
        return self.grid.end_ns

    @property
    def steps_done(self) -> int:
        """Background steps run so far: the market's state is that at the end of step
        `steps_done - 1` (advance_to(ts) leaves it at step_of(ts) + 1)."""
        return self.record.steps_done

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
        s = book.BID if side is Side.BUY else book.ASK
        # whole numbers only: the machine code would truncate a float where numba's
        # dispatch would have compiled (or refused) another version
        slot, leaves, status = self._submit(
            self.state,
            self._fills.buffer,
            index(venue),
            s,
            index(price_ticks),
            index(qty),
            index(peak),
            index(owner),
            index(flags),
            index(ts),
            self.grid.bar_of(ts),
        )
        self._changes += 1
        self._fills.drain()
        if status == book.BOOK_FULL:
            raise BookFullError("order book capacity exhausted")
        return SubmitResult(int(slot), int(leaves), int(status))

    def cancel(self, slot: int) -> int:
        self._changes += 1
        return int(self._cancel(self.state, index(slot)))

    def record_passive_client_fill(self, side: Side, qty: int) -> None:
        """Count a client's passive fill as the client's own signed flow in the price
        reaction. The aggressor who hit the client order is already counted, but without
        the client it would have hit someone else's: the difference the client makes is
        its own side's volume, as for an aggressive fill. So a metaorder's impact follows
        the square-root law whether it is worked passively or aggressively, as measured
        on real metaorders (Toth et al. 2011), instead of passive selling being free."""
        self.state.meta[flow.M_SIGNED_CUM] += side.sign * qty

    def take(
        self, ts: Nanos, side: Side, qty: int, reach_ticks: int, owner: int
    ) -> tuple[int, int]:
        """An outside participant's marketable IOC on the lit venue with the best price
        for it, reaching `reach_ticks` past that touch; returns the quantity filled and
        what it paid, in ticks x units. Simulated dealers hedge and front-run through it:
        their flow moves the price like any aggressor's, and they pay for it."""
        return outside_take(
            self.state,
            self._fills,
            side,
            qty,
            reach_ticks,
            owner,
            lambda v, limit: self.submit(ts, v, side, limit, qty, owner, book.IOC).leaves,
        )

    # ------------------------------------------------------------------ market data
    # what the feed shows: FeedReaders (simulators/feed.py)

    def snapshot(self, ts: Nanos) -> MarketSnapshot:
        """The feed's snapshot; the last one again if it was taken at the same instant
        and nothing that may change the books (the background steps, a client's order or
        cancel) has run since. A decision that takes reads the book twice at one instant,
        to decide and then to place, and a snapshot is a tenth of a backtest's time. A
        snapshot is immutable, and its numbers are a function of the books and the
        instant only, so the answer is the one a new read would give."""
        last = self._last_snap
        if last is not None and last[0] == ts and last[1] == self._changes:
            return last[2]
        snap = self.feed.snapshot(ts)
        self._last_snap = (ts, self._changes, snap)
        return snap

    def interaction(self) -> None:
        """Nothing to count: the simulated participants react to the clients."""
        return None

    def future_move_sign(self, ts: Nanos, horizon_s: float) -> float:
        """Sign of the exogenous move over the next `horizon_s`: for informed simulated
        participants (dark pool contra), never for strategies."""
        n_steps = self.grid.n_steps
        i = min(max(self.step_of(ts), 0), n_steps - 1)
        j = min(i + int(horizon_s / STEP_S), n_steps - 1)
        self._ensure_exo(j + 1)
        return float(np.sign(self.sched[flow.S_EXO, j] - self.sched[flow.S_EXO, i]))
