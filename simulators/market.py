"""The simulated market of one instrument: its lit books, the background participants
and the exogenous price path, built from a scenario and one master seed.

`SimMarket` is the kernel's continuous process. It turns the scenario into a per-step
schedule (numpy, here), keeps the books (simulators/book.py) and runs the compiled
background flow (simulators/flow.py) in 100 ms steps whenever the kernel asks it to
catch up. It also serves `MarketData` snapshots (what a trader sees) and records the
path that evaluation code needs (reference price, consolidated best bid/ask per step):
that record is for TCA and measurement, never for strategies. `SimMarket.branch` gives
copies of the present with a redrawn future, for Monte Carlo (simulators/oracle.py).
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from router.domain import NANOS_PER_SECOND, Nanos, Side, VenueId
from router.ports import BOOK_LEVELS, MarketSnapshot, VenueQuote
from simulators import book, flow
from simulators.scenario import SESSION_CLOSE_S, SESSION_OPEN_S, Scenario

STEP_S = 0.1
WARMUP_S = 600.0  # background flow runs this long before the parent arrives
TAIL_S = 900.0  # and this long after the horizon, for post-trade markouts
SESSION_S = SESSION_CLOSE_S - SESSION_OPEN_S
DEPTH_LEVELS = 10  # ticks counted in a snapshot's bid_depth / ask_depth
EXO_BLOCK = 2048  # steps of a branch's exogenous future redrawn at a time

#: called for every fill of a client order: (owner, ts, venue index, price ticks, qty,
#: client was maker, maker's leaves after the fill)
FillCallback = Callable[[int, Nanos, int, int, int, bool, int], None]


class BookFullError(RuntimeError):
    pass


def volume_profile(tod_s: np.ndarray) -> np.ndarray:
    """Intraday U-shape of volume intensity, mean 1 over the session (09:30-16:00)."""
    x = np.clip((tod_s - SESSION_OPEN_S) / SESSION_S, 0.0, 1.0)
    return 0.6 + 1.2 * (2.0 * x - 1.0) ** 2


@dataclass(frozen=True, slots=True)
class SubmitResult:
    slot: int  # resting slot, -1 if nothing rests
    leaves: int  # quantity not filled on arrival
    status: int  # simulators.book status code


@dataclass(frozen=True, slots=True)
class ExoProcess:
    """The law of the exogenous reference path's per-step move, kept from the schedule's
    construction so that a branch can redraw the future: move[i] = sigma[i] * N(0, 1)
    + drift[i] + (with probability jump_p) jump_ticks * N(0, 1)."""

    sigma: np.ndarray  # per-step sd of the diffusive move (stochastic vol included), ticks
    drift: np.ndarray  # deterministic per-step move: phase drift and phase jumps, ticks
    jump_p: float  # probability of a random jump per step
    jump_ticks: float  # sd of a random jump, ticks

    def draw(self, rng: np.random.Generator, i0: int, i1: int, start: float) -> np.ndarray:
        """A fresh path for steps [i0, i1) that continues from `start` (the path at i0 - 1)."""
        n = i1 - i0
        dx = self.sigma[i0:i1] * rng.standard_normal(n) + self.drift[i0:i1]
        jumps = rng.random(n) < self.jump_p
        dx[jumps] += rng.standard_normal(int(jumps.sum())) * self.jump_ticks
        return start + np.cumsum(dx)


class SimMarket:
    def __init__(self, scenario: Scenario, rng: np.random.Generator) -> None:
        self.scenario = scenario
        self.instrument = scenario.instrument
        self.venue_ids: tuple[VenueId, ...] = tuple(v.venue_id for v in scenario.lit)
        m = scenario.market
        tick = self.instrument.tick_size
        self.price_ticks0 = m.price / tick
        self.step_ns = int(STEP_S * NANOS_PER_SECOND)
        self.t0_ns = -int(WARMUP_S * NANOS_PER_SECOND)  # time of step 0
        self.n_steps = round((WARMUP_S + scenario.horizon_s + TAIL_S) / STEP_S)
        self.steps_per_bar = round(1.0 / STEP_S)
        self._gen = rng
        self.sched, self.params, self._exo = self._build_schedule(rng)
        # a branch redraws its exogenous future lazily, in blocks from its own generator:
        # sched[S_EXO, i] is valid for i < _exo_ready (always all of it outside branches)
        self._exo_ready = self.n_steps
        self._exo_rng: np.random.Generator | None = None
        n_ticks = int(self.price_ticks0 * 2) + 1
        n_bars = self.n_steps // self.steps_per_bar + 1
        self.state = book.new_book_state(len(self.venue_ids), n_ticks, 1 << 16, n_bars)
        self.fills = book.new_fill_buffer(1 << 14)
        # compiled (or loaded from the cache) now, not at a live service's first cancel:
        # there is no order in slot -1, so nothing changes
        book.cancel(self.state, -1)
        shares = np.array([v.share for v in scenario.lit], dtype=np.float64)
        self._cum_share = np.cumsum(shares) / shares.sum()
        self.impact = np.zeros(flow.N_IMPACT, dtype=np.float64)
        self.ref_path = np.full(self.n_steps, np.nan)
        self.bid_path = np.full(self.n_steps, -1, dtype=np.int64)
        self.ask_path = np.full(self.n_steps, -1, dtype=np.int64)
        self._steps_done = 0
        self._on_fill: FillCallback | None = None
        # the owner of the `take` under way, and what it has paid so far (ticks x units)
        self._taker = 0
        self._taker_paid = 0
        self.advance_to(0)  # warm the book up to the parent's arrival
        # the feed's compiled readers too, before any decision reads them
        self.touches_before(0, (0.0,))
        self.flow_over(0, (0,))

    def fork(self) -> SimMarket:
        """An independent copy in the same state (books, generator, impact): the
        strategies of one episode each get one at arrival instead of redoing the
        warm-up. Only a market no client has touched may be forked."""
        if self._on_fill is not None:
            raise RuntimeError("fork a market before any client is attached to it")
        return copy.deepcopy(self)

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
        k = self._steps_done
        if reuse is None:
            new = copy.copy(self)  # shares the immutable parts (scenario, params, shares)
            new.state = book.BookState(*(a.copy() for a in self.state))
            # between calls the fill buffer is always drained: an empty one is an exact copy
            new.fills = book.new_fill_buffer(self.fills.ts.shape[0])
            new.impact = self.impact.copy()
            new.ref_path = self.ref_path.copy()
            new.bid_path = self.bid_path.copy()
            new.ask_path = self.ask_path.copy()
            new.sched = self.sched.copy()
        else:
            if reuse is self or reuse._exo_rng is None:
                raise ValueError("only a branch that is no longer needed can be reused")
            if reuse.params is not self.params:
                raise ValueError("reuse a branch of the same market (same construction)")
            new = reuse
            st, fb, imp = new.state, new.fills, new.impact
            ref, bid, ask, sched = new.ref_path, new.bid_path, new.ask_path, new.sched
            new.__dict__.update(self.__dict__)  # every other attribute as in `self`
            new.state, new.fills, new.impact = st, fb, imp
            new.ref_path, new.bid_path, new.ask_path, new.sched = ref, bid, ask, sched
            for dst, src in zip(new.state, self.state, strict=True):
                np.copyto(dst, src)
            new.fills.n[0] = 0
            np.copyto(new.impact, self.impact)
            np.copyto(new.ref_path, self.ref_path)
            np.copyto(new.bid_path, self.bid_path)
            np.copyto(new.ask_path, self.ask_path)
            # the other rows are the construction's schedule, which nothing ever writes
            new.sched[flow.S_EXO, :k] = self.sched[flow.S_EXO, :k]
        new._gen = rng
        new._on_fill = None
        # NaN, not the original's future: a read before the redraw would show at once
        new.sched[flow.S_EXO, k:] = np.nan
        new._exo_ready = k
        new._exo_rng = exo_rng
        return new

    def _ensure_exo(self, upto: int) -> None:
        """Redraw a branch's exogenous path up to step `upto` (exclusive), in fixed blocks
        from the branch's own generator, so the path does not depend on how the branch
        is advanced."""
        upto = min(upto, self.n_steps)
        exo = self.sched[flow.S_EXO]
        while self._exo_ready < upto:
            assert self._exo_rng is not None  # only a branch has a future left to draw
            i0 = self._exo_ready
            i1 = min(i0 + EXO_BLOCK, self.n_steps)
            start = float(exo[i0 - 1]) if i0 > 0 else self.price_ticks0
            exo[i0:i1] = self._exo.draw(self._exo_rng, i0, i1, start)
            self._exo_ready = i1

    # ------------------------------------------------------------------ schedule

    def _build_schedule(
        self, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, ExoProcess]:
        sc, m, inst = self.scenario, self.scenario.market, self.instrument
        n = self.n_steps
        t = self.t0_ns / NANOS_PER_SECOND + np.arange(n) * STEP_S  # seconds from arrival
        profile = volume_profile(sc.start_tod_s + t)

        def phased(attr: str, default: float, combine: str = "mul") -> np.ndarray:
            out = np.full(n, default)
            for ph in sc.phases:
                active = (t >= ph.start_s) & (t < ph.end_s)
                if combine == "mul":
                    out[active] *= getattr(ph, attr)
                else:
                    out[active] += getattr(ph, attr)
            return out

        # exogenous reference price: stochastic volatility, drift, jumps
        px = self.price_ticks0
        sigma_step = m.daily_vol * px / math.sqrt(SESSION_S / STEP_S)
        decay = math.exp(-STEP_S / m.vol_reversion_s)
        shocks = rng.standard_normal(n) * m.vol_of_vol * math.sqrt(1 - decay * decay)
        logvol = _ar1(rng.standard_normal() * m.vol_of_vol, decay, shocks)
        # exp(h - vv^2) has E[vol^2] = 1, so daily_vol is the session's volatility
        vol = np.exp(logvol - m.vol_of_vol**2) * phased("vol", 1.0) * np.sqrt(profile)
        # (the same operations in the same order as ever: a seed keeps giving the same path)
        sigma = sigma_step * vol
        dx = sigma * rng.standard_normal(n)
        drift = phased("drift_bps_per_h", 0.0, "add") * 1e-4 * px * STEP_S / 3600.0
        dx += drift
        jump_p = m.jumps_per_day * STEP_S / SESSION_S
        jumps = rng.random(n) < jump_p
        dx[jumps] += rng.standard_normal(int(jumps.sum())) * m.jump_bps * 1e-4 * px
        for ph in sc.phases:
            i = round((ph.start_s - t[0]) / STEP_S)
            # a phase that starts after the simulated span (a parent shorter than the
            # scenario's story) never happens in it
            if ph.jump_bps and 0 <= i < n:
                dx[i] += ph.jump_bps * 1e-4 * px
                drift[i] += ph.jump_bps * 1e-4 * px
        exo = px + np.cumsum(dx)
        exo_process = ExoProcess(sigma, drift, jump_p, m.jump_bps * 1e-4 * px)

        # participants' rates
        mean_size = m.order_size_median * math.exp(0.5 * m.order_size_sigma**2)
        flow_mult = phased("flow", 1.0) * profile
        taker_orders = inst.adv / SESSION_S * STEP_S * flow_mult / mean_size
        informed = taker_orders * m.informed_share * phased("informed", 1.0)
        momentum = taker_orders * m.momentum_share * phased("momentum", 1.0)
        noise = taker_orders * (1.0 - m.informed_share - m.momentum_share)
        pressure = phased("buy_pressure", 0.0, "add").clip(-1.0, 1.0)
        depth_orders = m.book_depth_adv * inst.adv / mean_size
        refill = depth_orders * STEP_S / m.order_lifetime_s
        adds = refill * profile + 0.5 * taker_orders

        sched = np.empty((flow.N_SCHEDULE_ROWS, n))
        sched[flow.S_EXO] = exo
        sched[flow.S_HALF_SPREAD] = 0.5 * (m.spread_ticks * phased("spread", 1.0) - 1.0)
        sched[flow.S_ADD_BID] = adds * phased("bid_depth", 1.0)
        sched[flow.S_ADD_ASK] = adds * phased("ask_depth", 1.0)
        sched[flow.S_NOISE_BUY] = noise * 0.5 * (1.0 + pressure)
        sched[flow.S_NOISE_SELL] = noise * 0.5 * (1.0 - pressure)
        sched[flow.S_MOMENTUM] = momentum
        sched[flow.S_INFORMED] = informed

        params = np.zeros(flow.N_PARAMS)
        params[flow.P_ADV] = inst.adv
        params[flow.P_Y_SIGMA] = m.impact_y * m.daily_vol * px
        params[flow.P_MEMORY_DECAY] = math.exp(-STEP_S / m.impact_memory_s)
        params[flow.P_LOCK_RATE] = STEP_S / m.impact_lock_s
        params[flow.P_CANCEL_HAZARD] = STEP_S / m.order_lifetime_s
        params[flow.P_LOG_SIZE] = math.log(max(m.order_size_median / inst.lot_size, 1.0))
        params[flow.P_SIZE_SIGMA] = m.order_size_sigma
        params[flow.P_DEPTH_SCALE] = m.depth_scale_ticks
        params[flow.P_LOOKAHEAD] = round(60.0 / STEP_S)
        params[flow.P_LOOKBACK] = round(60.0 / STEP_S)
        params[flow.P_MAX_SLIPPAGE] = 3.0 * m.spread_ticks
        params[flow.P_LOT] = inst.lot_size
        params[flow.P_STEP_NS] = self.step_ns
        return sched, params, exo_process

    # ------------------------------------------------------------------ time

    def step_of(self, ts: Nanos) -> int:
        return (ts - self.t0_ns) // self.step_ns

    def bar_of(self, ts: Nanos) -> int:
        return min(self.step_of(ts) // self.steps_per_bar, self.state.tape_vol.shape[0] - 1)

    def advance_to(self, ts: Nanos) -> None:
        """Run every background step that starts at or before `ts`."""
        target = min(self.step_of(ts) + 1, self.n_steps)
        if target <= self._steps_done:
            return
        # informed takers of step i read the exogenous path at i + lookahead
        self._ensure_exo(target + int(self.params[flow.P_LOOKAHEAD]))
        flow.advance(
            self.state,
            self.fills,
            self._gen,
            self.sched,
            self.params,
            self._cum_share,
            self.impact,
            self.ref_path,
            self.bid_path,
            self.ask_path,
            self._steps_done,
            target,
            self.t0_ns,
            0,
            self.steps_per_bar,
        )
        self._steps_done = target
        self._drain_fills()

    @property
    def end_ns(self) -> Nanos:
        return self.t0_ns + self.n_steps * self.step_ns

    @property
    def steps_done(self) -> int:
        """Background steps run so far: the market's state is that at the end of step
        `steps_done - 1` (advance_to(ts) leaves it at step_of(ts) + 1)."""
        return self._steps_done

    # ------------------------------------------------------------------ client orders

    def on_client_fill(self, callback: FillCallback) -> None:
        self._on_fill = callback

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
        slot, leaves, status = book.submit(
            self.state,
            self.fills,
            venue,
            s,
            price_ticks,
            qty,
            peak,
            owner,
            flags,
            ts,
            self.bar_of(ts),
        )
        self._drain_fills()
        if status == book.BOOK_FULL:
            raise BookFullError("order book capacity exhausted")
        return SubmitResult(int(slot), int(leaves), int(status))

    def cancel(self, slot: int) -> int:
        return int(book.cancel(self.state, slot))

    def record_passive_client_fill(self, side: Side, qty: int) -> None:
        """Count a client's passive fill as the client's own signed flow in the price
        reaction. The aggressor who hit the client order is already counted, but without
        the client it would have hit someone else's: the difference the client makes is
        its own side's volume, as for an aggressive fill. So a metaorder's impact follows
        the square-root law whether it is worked passively or aggressively, as measured
        on real metaorders (Toth et al. 2011), instead of passive selling being free."""
        self.state.meta[flow.M_SIGNED_CUM] += side.sign * qty

    def _drain_fills(self) -> None:
        fb = self.fills
        n = int(fb.n[0])
        if n == 0:
            return
        if n > fb.ts.shape[0]:
            raise BookFullError(f"fill buffer overflow: {n} client fills in one step")
        cb = self._on_fill
        if cb is not None or self._taker:
            # copy out first: the callback may submit orders that append new fills
            rows = [
                (
                    int(fb.ts[i]),
                    int(fb.venue[i]),
                    int(fb.price[i]),
                    int(fb.qty[i]),
                    int(fb.maker_owner[i]),
                    int(fb.maker_leaves[i]),
                    int(fb.taker_owner[i]),
                )
                for i in range(n)
            ]
            fb.n[0] = 0
            for ts, v, p, q, maker, leaves, taker in rows:
                if taker and taker == self._taker:
                    self._taker_paid += p * q
                if cb is None:
                    continue
                if maker:
                    cb(maker, ts, v, p, q, True, leaves)
                if taker:
                    cb(taker, ts, v, p, q, False, 0)
        else:
            fb.n[0] = 0

    # ------------------------------------------------------------------ market data

    def snapshot(self, ts: Nanos) -> MarketSnapshot:
        st = self.state
        n_ticks = st.depth.shape[2]
        quotes = []
        bb, ba = -1, n_ticks
        for v in range(len(self.venue_ids)):
            bb = max(bb, int(st.best[v, book.BID]))
            ba = min(ba, int(st.best[v, book.ASK]))
        lo, hi = max(0, bb - DEPTH_LEVELS + 1), ba + DEPTH_LEVELS
        for v, vid in enumerate(self.venue_ids):
            b, a = int(st.best[v, book.BID]), int(st.best[v, book.ASK])
            quotes.append(
                VenueQuote(
                    venue=vid,
                    bid_ticks=b if b >= 0 else None,
                    bid_qty=int(st.depth[v, book.BID, b]) if b >= 0 else 0,
                    ask_ticks=a if a < n_ticks else None,
                    ask_qty=int(st.depth[v, book.ASK, a]) if a < n_ticks else 0,
                    bid_depth=int(st.depth[v, book.BID, lo : bb + 1].sum()) if bb >= 0 else 0,
                    ask_depth=int(st.depth[v, book.ASK, ba:hi].sum()) if ba < n_ticks else 0,
                )
            )
        bid_depth = sum(q.bid_depth for q in quotes)
        ask_depth = sum(q.ask_depth for q in quotes)
        bar = self.bar_of(ts)
        last = int(st.last_px.max())
        bid_levels: tuple[int, ...] = ()
        ask_levels: tuple[int, ...] = ()
        if bb >= 0:  # the touch first, then away from it; 0 past the grid's edge
            lv = st.depth[:, book.BID, max(0, bb - BOOK_LEVELS + 1) : bb + 1].sum(axis=0)
            bid_levels = (*lv[::-1].tolist(), *(0,) * (BOOK_LEVELS - lv.shape[0]))
        if ba < n_ticks:
            lv = st.depth[:, book.ASK, ba : ba + BOOK_LEVELS].sum(axis=0)
            ask_levels = (*lv.tolist(), *(0,) * (BOOK_LEVELS - lv.shape[0]))
        return MarketSnapshot(
            ts_ns=ts,
            symbol=self.instrument.symbol,
            tick_size=self.instrument.tick_size,
            bid_ticks=bb if bb >= 0 else None,
            ask_ticks=ba if ba < n_ticks else None,
            bid_depth=bid_depth,
            ask_depth=ask_depth,
            venues=tuple(quotes),
            last_ticks=last if last >= 0 else None,
            volume=int(st.tape_vol[self.bar_of(0) : bar + 1].sum()),
            vwap_num=float(st.tape_pv[self.bar_of(0) : bar + 1].sum()) * self.instrument.tick_size,
            bid_levels=bid_levels,
            ask_levels=ask_levels,
        )

    def mid_ticks(self) -> float | None:
        """Consolidated lit midpoint now (what a dark pool crosses at)."""
        st = self.state
        bb = int(st.best[:, book.BID].max())
        ba = int(st.best[:, book.ASK].min())
        if bb < 0 or ba >= st.depth.shape[2] or bb >= ba:
            return None
        return 0.5 * (bb + ba)

    def touches_before(self, ts: Nanos, lags_s: Sequence[float]) -> list[tuple[int, int] | None]:
        """The consolidated (bid, ask) in ticks at the last step run at or before
        `ts - lag`, for each lag: the top-of-book feed's recent past. None where a side
        was empty."""
        lags_ns = _nanos(tuple(lags_s))
        touches = _touches_before(
            self.bid_path,
            self.ask_path,
            self.state.depth.shape[2],
            self._steps_done - 1,
            (ts - self.t0_ns) - lags_ns,
            self.step_ns,
        ).tolist()
        return [(b, a) if b >= 0 else None for b, a in touches]

    def flow_over(self, ts: Nanos, windows_s: Sequence[int]) -> list[tuple[int, int]]:
        """(buyer- minus seller-initiated volume, volume) of the tape's 1-s bars over
        the last `window` seconds before `ts` plus the bar in progress, per window: what
        a trade feed with aggressor flags has shown (clients' trades included)."""
        st = self.state
        flows = _flow_over(
            st.tape_signed, st.tape_vol, self.bar_of(ts), np.asarray(windows_s, dtype=np.int64)
        ).tolist()
        return [(signed, volume) for signed, volume in flows]

    def mid_at(self, ts: Nanos) -> float:
        """Consolidated mid (ticks) at the last step at or before `ts` that had one."""
        mids = self.mid_path()[: min(self.step_of(ts), self.n_steps - 1) + 1]
        valid = np.flatnonzero(~np.isnan(mids))
        if valid.size == 0:
            raise RuntimeError("the lit market never had two sides")
        return float(mids[valid[-1]])

    def mid_path(self) -> np.ndarray:
        """Consolidated mid per step (ticks), NaN where a side was empty or not yet run."""
        bid = self.bid_path.astype(np.float64)
        ask = self.ask_path.astype(np.float64)
        n_ticks = self.state.depth.shape[2]
        bad = (self.bid_path < 0) | (self.ask_path >= n_ticks) | (self.ask_path < 0)
        mid = 0.5 * (bid + ask)
        mid[bad] = np.nan
        mid[self._steps_done :] = np.nan
        return mid

    def top_of_book(self, from_s: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(time s, consolidated bid, ask) in price units for the steps run so far from
        `from_s` on, NaN where a side was empty: the path that TCA and markouts read."""
        n = self._steps_done
        t = self.step_time_s()[:n]
        keep = t >= from_s
        tick = self.instrument.tick_size
        n_ticks = self.state.depth.shape[2]
        bid = self.bid_path[:n].astype(np.float64)
        ask = self.ask_path[:n].astype(np.float64)
        bid[(self.bid_path[:n] < 0)] = np.nan
        ask[(self.ask_path[:n] < 0) | (self.ask_path[:n] >= n_ticks)] = np.nan
        return t[keep], bid[keep] * tick, ask[keep] * tick

    def step_time_s(self) -> np.ndarray:
        """Time (seconds from the parent's arrival) at the end of each step."""
        return (self.t0_ns / NANOS_PER_SECOND) + (np.arange(self.n_steps) + 1) * STEP_S

    def fair_ticks(self, ts: Nanos) -> float:
        """The reference ("fair") price in ticks at the last step run at or before `ts`,
        own and others' impact included: what a dealer prices against. Simulated
        participants only; strategies see the books."""
        i = min(max(self.step_of(ts), 0), self._steps_done - 1)
        if i < 0:
            return float(self.price_ticks0)
        return float(self.ref_path[i])

    def vol_ratio(self, ts: Nanos, window_s: float = 600.0, every_s: float = 10.0) -> float:
        """Realised volatility of the fair price over the last `window_s` relative to the
        scenario's normal daily volatility (1 = normal), from `every_s` samples."""
        stride = max(1, round(every_s / STEP_S))
        i1 = min(max(self.step_of(ts), 0), self._steps_done - 1)
        i0 = max(0, i1 - round(window_s / STEP_S))
        ref = self.ref_path[i0 : i1 + 1 : stride]
        if ref.size < 3:
            return 1.0
        m = self.scenario.market
        normal = m.daily_vol * self.price_ticks0 * math.sqrt(every_s / SESSION_S)
        return float(np.std(np.diff(ref)) / normal)

    def take(
        self, ts: Nanos, side: Side, qty: int, reach_ticks: int, owner: int
    ) -> tuple[int, int]:
        """An outside participant's marketable IOC on the lit venue with the best price
        for it, reaching `reach_ticks` past that touch; returns the quantity filled and
        what it paid, in ticks x units. Simulated dealers hedge and front-run through it:
        their flow moves the price like any aggressor's, and they pay for it."""
        st = self.state
        if side is Side.BUY:
            asks = st.best[:, book.ASK]
            v = int(np.argmin(asks))
            touch = int(asks[v])
            if touch >= st.depth.shape[2]:
                return 0, 0
            limit = min(touch + reach_ticks, st.depth.shape[2] - 1)
        else:
            bids = st.best[:, book.BID]
            v = int(np.argmax(bids))
            touch = int(bids[v])
            if touch < 0:
                return 0, 0
            limit = max(touch - reach_ticks, 0)
        self._taker, self._taker_paid = owner, 0
        try:
            result = self.submit(ts, v, side, limit, qty, owner, book.IOC)
        finally:
            self._taker = 0
        return qty - result.leaves, self._taker_paid

    def future_move_sign(self, ts: Nanos, horizon_s: float) -> float:
        """Sign of the exogenous move over the next `horizon_s`: for informed simulated
        participants (dark pool contra), never for strategies."""
        i = min(max(self.step_of(ts), 0), self.n_steps - 1)
        j = min(i + int(horizon_s / STEP_S), self.n_steps - 1)
        self._ensure_exo(j + 1)
        return float(np.sign(self.sched[flow.S_EXO, j] - self.sched[flow.S_EXO, i]))


@njit(cache=True)
def _ar1(h: float, decay: float, shocks: np.ndarray) -> np.ndarray:
    """h[i] = h[i - 1] * decay + shocks[i] from `h`: compiled, as a reset of the
    execution environment builds a fresh schedule (1e5 steps) every episode."""
    out = np.empty(shocks.shape[0])
    for i in range(shocks.shape[0]):
        h = h * decay + shocks[i]
        out[i] = h
    return out


@functools.lru_cache(maxsize=16)
def _nanos(seconds: tuple[float, ...]) -> np.ndarray:
    # a feed is asked for the same few lags at every decision
    out = np.array([int(x * NANOS_PER_SECOND) for x in seconds], dtype=np.int64)
    out.setflags(write=False)
    return out


@njit(cache=True)
def _touches_before(
    bid_path: np.ndarray,
    ask_path: np.ndarray,
    n_ticks: int,
    last: int,
    since_t0_ns: np.ndarray,
    step_ns: int,
) -> np.ndarray:
    """`SimMarket.touches_before`: (bid, ask) at the step of each time (ns since t0),
    capped at `last`; (-1, -1) where there was none or a side was empty."""
    out = np.full((since_t0_ns.shape[0], 2), -1, dtype=np.int64)
    for k in range(since_t0_ns.shape[0]):
        i = min(since_t0_ns[k] // step_ns, last)
        if i < 0:
            continue
        b, a = bid_path[i], ask_path[i]
        if b >= 0 and 0 <= a < n_ticks:
            out[k, 0] = b
            out[k, 1] = a
    return out


@njit(cache=True)
def _flow_over(signed: np.ndarray, volume: np.ndarray, bar: int, windows: np.ndarray) -> np.ndarray:
    """`SimMarket.flow_over`: per window, the sums over bars `bar - window` (not before
    the first) to `bar`."""
    out = np.zeros((windows.shape[0], 2), dtype=np.int64)
    for k in range(windows.shape[0]):
        for b in range(max(0, bar - windows[k]), bar + 1):
            out[k, 0] += signed[b]
            out[k, 1] += volume[b]
    return out
