"""The stylized facts of the simulated market (simulators/market.py), measured from the
outside: the market is advanced one 100 ms step at a time, as the kernel would, and its
books are compared before and after each step. Nothing of the simulator is changed or
instrumented, so the run is the one `simulate` sees (same seed, same path).

What a step's comparison shows: the orders that appeared (their size), the orders that
vanished and the orders that shrank (partial fills: background orders are only ever
canceled whole), and the volume traded on each side (the tape). What it cannot show is
why an order vanished: the takers' volume on its side, less the partial fills, is
attributed to the vanished orders best price first (the takers sweep the book from the
touch); the rest are cancels. Orders that appear and vanish within one step, and the
takers' own orders, are not seen. Time is the step's: events have no finer clock.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from simulators import book
from simulators.facts.measures import (
    DEPTH_BAND_BPS,
    SAMPLE_MS,
    MarketFacts,
    Returns,
    Spread,
    ratio,
)
from simulators.kernel import rng_for
from simulators.market import SimMarket
from simulators.scenario import Scenario
from simulators.schedule import STEP_S

F64 = npt.NDArray[np.float64]


class StepObserver:
    """Compares a market's books across steps and keeps what it saw."""

    def __init__(self, state: book.BookState) -> None:
        self.state = state
        self._hi = 0
        self._live = np.zeros(0, dtype=bool)
        self._qty = np.zeros(0, dtype=state.o_qty.dtype)
        self._px = np.zeros(0, dtype=state.o_price.dtype)
        self._side = np.zeros(0, dtype=state.o_side.dtype)
        self._live, self._qty, self._px, self._side = self._read()
        self._birth = np.full(state.live_pos.shape[0], -1, dtype=np.int64)
        self._volume = int(state.meta[3])
        self._bar = -1
        self._bar_signed = 0
        self.sizes: list[np.ndarray] = []
        self.lifetimes: list[np.ndarray] = []
        self.added = 0
        self.vanished = 0
        self.partial = 0
        self.filled = 0  # vanished orders attributed to fills
        self.traded = 0  # volume

    def _read(self) -> tuple[np.ndarray, ...]:
        """The slots' state up to the highest resting slot seen so far (a book holds a
        few thousand of its 65,536 slots: reading only those is most of the
        observer's speed)."""
        st = self.state
        n_live = int(st.meta[1])
        top = int(st.live_list[:n_live].max()) + 1 if n_live else 0
        hi = max(self._hi, top)
        if hi > self._hi:
            grow = hi - self._hi
            self._live = np.concatenate([self._live, np.zeros(grow, dtype=bool)])
            self._qty = np.concatenate([self._qty, np.zeros(grow, dtype=self._qty.dtype)])
            self._px = np.concatenate([self._px, np.zeros(grow, dtype=self._px.dtype)])
            self._side = np.concatenate([self._side, np.zeros(grow, dtype=self._side.dtype)])
        self._hi = hi
        return (
            st.live_pos[:hi] >= 0,
            st.o_qty[:hi] + st.o_hidden[:hi],
            st.o_price[:hi].copy(),
            st.o_side[:hi].copy(),
        )

    def step(self, i: int, bar: int) -> None:
        """Step `i` (in tape bar `bar`) has just run."""
        st = self.state
        live, qty, px, side = self._read()
        was = self._live
        same = was & live & (px == self._px) & (side == self._side) & (qty <= self._qty)
        gone = was & ~same
        born = live & ~same
        shrunk = same & (qty < self._qty)

        volume = int(st.meta[3])
        traded = volume - self._volume
        self._volume = volume
        if bar != self._bar:
            self._bar, self._bar_signed = bar, 0
        signed = int(st.tape_signed[bar]) - self._bar_signed
        self._bar_signed = int(st.tape_signed[bar])
        # buyers lift asks, sellers hit bids
        taken = {book.ASK: (traded + signed) // 2, book.BID: (traded - signed) // 2}
        filled = 0
        for s in (book.BID, book.ASK):
            on_side = self._side == s
            left = taken[s] - int(np.sum((self._qty - qty)[shrunk & on_side]))
            g = np.flatnonzero(gone & on_side)
            if left <= 0 or g.size == 0:
                continue
            order = np.argsort(self._px[g], kind="stable")
            if s == book.BID:
                order = order[::-1]
            before = np.cumsum(self._qty[g][order]) - self._qty[g][order]
            filled += int(np.count_nonzero(before < left))

        birth = self._birth[: self._hi]
        seen = gone & (birth >= 0)
        self.lifetimes.append((i - birth[seen]) * STEP_S)
        self.sizes.append(qty[born])
        birth[gone] = -1
        birth[born] = i
        self.added += int(np.count_nonzero(born))
        self.vanished += int(np.count_nonzero(gone))
        self.partial += int(np.count_nonzero(shrunk))
        self.filled += filled
        self.traded += traded
        self._live, self._qty, self._px, self._side = live, qty, px, side


def simulated_facts(
    scenario: Scenario,
    seed: int = 0,
    window_s: float = 1800.0,
    progress: Callable[[int, int], None] | None = None,
) -> MarketFacts:
    """The facts of `scenario`'s market for `seed` (the market `simulate --seed` runs):
    the book and the orders over the first `window_s` after the parent's arrival, the
    returns over the whole run from the arrival to the end of the market's tail."""
    market = SimMarket(scenario, rng_for(seed, "market"))
    return observe_market(market, f"{scenario.name} (seed {seed})", window_s, progress)


def observe_market(
    market: SimMarket,
    name: str,
    window_s: float,
    progress: Callable[[int, int], None] | None = None,
) -> MarketFacts:
    """Run `market` (no client attached) from where it stands to its end, observing the
    first `window_s` of it step by step (`simulated_facts`)."""
    scenario = market.scenario
    st, grid = market.state, market.grid
    first = market.steps_done
    last = min(grid.n_steps, first + round(window_s / STEP_S))
    n = last - first
    bid, ask = np.full(n, np.nan), np.full(n, np.nan)
    b_touch, a_touch = np.full(n, np.nan), np.full(n, np.nan)
    b_band, a_band = np.full(n, np.nan), np.full(n, np.nan)
    n_ticks = st.depth.shape[2]
    obs = StepObserver(st)
    every = max(1, n // 100)
    for k, i in enumerate(range(first, last)):
        market.advance_to(grid.t0_ns + i * grid.step_ns)
        obs.step(i, i // grid.steps_per_bar)
        bb = int(st.best[:, book.BID].max())
        ba = int(st.best[:, book.ASK].min())
        if bb >= 0:
            bid[k], b_touch[k] = bb, st.depth[:, book.BID, bb].sum()
        if ba < n_ticks:
            ask[k], a_touch[k] = ba, st.depth[:, book.ASK, ba].sum()
        if bb >= 0 and ba < n_ticks:
            mid = 0.5 * (bb + ba)
            width = mid * DEPTH_BAND_BPS / 1e4
            b_band[k] = st.depth[:, book.BID, max(0, int(np.ceil(mid - width))) : bb + 1].sum()
            a_band[k] = st.depth[:, book.ASK, ba : int(np.floor(mid + width)) + 1].sum()
        if progress is not None and (k % every == 0 or k == n - 1):
            progress(k + 1, n)
    market.advance_to(market.end_ns - 1)
    path = market.mid_path()[first:]

    inst = scenario.instrument
    spread = ask - bid
    mid = 0.5 * (bid + ask)
    touch = 0.5 * (b_touch + a_touch)
    touch_med = Spread.of(touch).median
    sizes = np.concatenate(obs.sizes).astype(np.float64) if obs.sizes else np.zeros(0)
    lifetimes = np.concatenate(obs.lifetimes) if obs.lifetimes else np.zeros(0)
    cancels = obs.vanished - obs.filled
    trades = obs.partial + obs.filled
    events = obs.added + obs.vanished + obs.partial
    span = n * STEP_S
    per_s = round(1.0 / STEP_S)
    return MarketFacts(
        name=name,
        source="simulator",
        unit=str(inst.symbol),
        window_s=span,
        tick_size=inst.tick_size,
        lot_size=float(inst.lot_size),
        price=inst.tick_size * float(np.nanmedian(mid)) if np.isfinite(mid).any() else 0.0,
        spread_ticks=Spread.of(spread),
        spread_bps=Spread.of(spread / mid * 1e4),
        touch_depth=Spread.of(touch),
        depth_10bps=Spread.of(0.5 * (b_band + a_band)),
        order_size=Spread.of(sizes),
        order_size_lots=Spread.of(sizes / inst.lot_size),
        order_size_over_touch=Spread.of(sizes / touch_med if touch_med else []),
        orders=obs.added,
        rejected_at_once=0,
        cancels=cancels,
        trades=trades,
        traded=float(obs.traded),
        cancel_to_trade=ratio(cancels, trades),
        lifetime_s=Spread.of(lifetimes),
        events=events,
        events_per_s=events / span if span > 0 else 0.0,
        interarrival_ms=Spread(None, None),
        returns=(
            Returns.of(path, per_s, 1.0),
            Returns.of(path, 60 * per_s, 60.0),
        ),
        notes={
            "book": f"consolidated over the lit venues, every {SAMPLE_MS} ms step",
            "orders": "limit orders seen resting after a step (the takers' orders, "
            "which never rest, are not seen)",
            "cancels": "orders that vanished in a step, less those the step's traded "
            "volume on their side accounts for (best price first): an estimate",
            "interarrival": "no finer clock than the 100 ms step",
            "returns": f"over the whole run from the arrival ({len(path) * STEP_S:g} s)",
        },
    )
