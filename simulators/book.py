"""Limit order book matching engine: price-time priority on integer ticks.

The book is a set of flat arrays (one `BookState` holds several venues of one
instrument) and the operations are numba-compiled functions over them, so a whole
burst of background order flow runs without returning to Python. They are
`simulators.jit.kernel`s: compiled without numba's reference counting, they allocate
nothing and keep no array past their call.

Layout:
- price levels are indexed by absolute tick `0 <= p < n_ticks`; each level is a
  doubly linked FIFO of order slots (`head`, `tail`, `o_next`, `o_prev`) with its
  visible quantity in `depth`;
- `best[v, BID]` is the highest bid tick (-1 when empty), `best[v, ASK]` the lowest
  ask tick (`n_ticks` when empty);
- order slots come from a free stack; `live_list` holds every resting slot so that a
  uniformly random resting order can be drawn in O(1) (zero-intelligence cancels);
- icebergs show `o_qty` and keep `o_hidden` in reserve; a refilled slice goes to the
  back of its level (it loses time priority, as on most exchanges).

Every function returns status codes instead of raising (numba code cannot raise
rich exceptions cheaply); `LitBook` in simulators/lit.py turns them into errors.
Fills in which a client order (owner != 0) takes part are appended to a `FillBuffer`;
all trades update the per-second tape (`tape_vol`, `tape_pv`, `tape_signed`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from simulators.jit import kernel

BID = 0
ASK = 1

# submit flags
IOC = 1
POST_ONLY = 2

# status codes
OK = 0
REJECT_POST_ONLY = 1
REJECT_PRICE = 2
REJECT_QTY = 3
BOOK_FULL = 4

_M_FREE_TOP = 0
_M_N_LIVE = 1
_M_SIGNED_CUM = 2  # buyer- minus seller-initiated volume since creation
_M_VOLUME_CUM = 3


class BookState(NamedTuple):
    head: np.ndarray  # int32[V, 2, P]
    tail: np.ndarray  # int32[V, 2, P]
    depth: np.ndarray  # int64[V, 2, P] visible quantity at the level
    best: np.ndarray  # int32[V, 2]
    o_price: np.ndarray  # int32[N]
    o_qty: np.ndarray  # int64[N] visible remaining
    o_hidden: np.ndarray  # int64[N] iceberg reserve
    o_peak: np.ndarray  # int64[N] iceberg display size (0 = plain order)
    o_side: np.ndarray  # int8[N]
    o_venue: np.ndarray  # int32[N]
    o_next: np.ndarray  # int32[N]
    o_prev: np.ndarray  # int32[N]
    o_owner: np.ndarray  # int64[N] 0 = background participant
    free: np.ndarray  # int32[N] stack of free slots
    live_list: np.ndarray  # int32[N] resting slots, unordered
    live_pos: np.ndarray  # int32[N] index of a slot in live_list, -1 if not resting
    meta: np.ndarray  # int64[4]: free_top, n_live, signed volume, volume (cumulative)
    last_px: np.ndarray  # int32[V] last trade tick, -1 before the first trade
    tape_vol: np.ndarray  # int64[T] traded volume per bar, all venues
    tape_pv: np.ndarray  # float64[T] sum of tick * qty per bar
    tape_signed: np.ndarray  # int64[T] buyer-initiated minus seller-initiated volume
    venue_vol: np.ndarray  # int64[V] traded volume per venue since creation


class FillBuffer(NamedTuple):
    """Fills with a client order on either side, in the order they happened."""

    ts: np.ndarray  # int64
    venue: np.ndarray  # int32
    price: np.ndarray  # int32 ticks
    qty: np.ndarray  # int64
    taker_side: np.ndarray  # int8
    maker_slot: np.ndarray  # int32
    maker_owner: np.ndarray  # int64
    maker_leaves: np.ndarray  # int64 visible + hidden left on the maker after this fill
    taker_owner: np.ndarray  # int64
    n: np.ndarray  # int64[1] number of valid rows


def new_book_state(n_venues: int, n_ticks: int, capacity: int, n_bars: int) -> BookState:
    if n_venues <= 0 or n_ticks <= 2 or capacity <= 0 or n_bars <= 0:
        raise ValueError("book dimensions must be positive")
    best = np.empty((n_venues, 2), dtype=np.int32)
    best[:, BID] = -1
    best[:, ASK] = n_ticks
    meta = np.zeros(4, dtype=np.int64)
    meta[_M_FREE_TOP] = capacity
    return BookState(
        head=np.full((n_venues, 2, n_ticks), -1, dtype=np.int32),
        tail=np.full((n_venues, 2, n_ticks), -1, dtype=np.int32),
        depth=np.zeros((n_venues, 2, n_ticks), dtype=np.int64),
        best=best,
        o_price=np.zeros(capacity, dtype=np.int32),
        o_qty=np.zeros(capacity, dtype=np.int64),
        o_hidden=np.zeros(capacity, dtype=np.int64),
        o_peak=np.zeros(capacity, dtype=np.int64),
        o_side=np.zeros(capacity, dtype=np.int8),
        o_venue=np.zeros(capacity, dtype=np.int32),
        o_next=np.full(capacity, -1, dtype=np.int32),
        o_prev=np.full(capacity, -1, dtype=np.int32),
        o_owner=np.zeros(capacity, dtype=np.int64),
        # slots are handed out from the top of the stack: lowest slot first
        free=np.arange(capacity - 1, -1, -1, dtype=np.int32),
        live_list=np.zeros(capacity, dtype=np.int32),
        live_pos=np.full(capacity, -1, dtype=np.int32),
        meta=meta,
        last_px=np.full(n_venues, -1, dtype=np.int32),
        tape_vol=np.zeros(n_bars, dtype=np.int64),
        tape_pv=np.zeros(n_bars, dtype=np.float64),
        tape_signed=np.zeros(n_bars, dtype=np.int64),
        venue_vol=np.zeros(n_venues, dtype=np.int64),
    )


def new_fill_buffer(capacity: int = 4096) -> FillBuffer:
    return FillBuffer(
        ts=np.zeros(capacity, dtype=np.int64),
        venue=np.zeros(capacity, dtype=np.int32),
        price=np.zeros(capacity, dtype=np.int32),
        qty=np.zeros(capacity, dtype=np.int64),
        taker_side=np.zeros(capacity, dtype=np.int8),
        maker_slot=np.zeros(capacity, dtype=np.int32),
        maker_owner=np.zeros(capacity, dtype=np.int64),
        maker_leaves=np.zeros(capacity, dtype=np.int64),
        taker_owner=np.zeros(capacity, dtype=np.int64),
        n=np.zeros(1, dtype=np.int64),
    )


# ----------------------------------------------------------------------------------
# internal helpers
#
# The operations below are kernels (simulators/jit.py). With numba's reference counting,
# the optimised code of apply_events held 336 increfs and 762 decrefs of the book's and
# the fill buffer's arrays, submit 174 and 429, cancel_random 93 and 224 (a call
# counts every array it is handed on the way in and out), and `bench book` ran
# 1.2-1.5M events/s. Without it there are none, and the same events run 6-9 times as
# fast, with the same results.
# ----------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _level_append(st: BookState, v: int, s: int, p: int, slot: int) -> None:
    t = st.tail[v, s, p]
    st.o_prev[slot] = t
    st.o_next[slot] = -1
    if t == -1:
        st.head[v, s, p] = slot
    else:
        st.o_next[t] = slot
    st.tail[v, s, p] = slot
    st.depth[v, s, p] += st.o_qty[slot]


@njit(cache=True, inline="always")
def _level_unlink(st: BookState, v: int, s: int, p: int, slot: int) -> None:
    prv = st.o_prev[slot]
    nxt = st.o_next[slot]
    if prv == -1:
        st.head[v, s, p] = nxt
    else:
        st.o_next[prv] = nxt
    if nxt == -1:
        st.tail[v, s, p] = prv
    else:
        st.o_prev[nxt] = prv
    st.o_next[slot] = -1
    st.o_prev[slot] = -1


@kernel
def _fix_best_after_empty(st: BookState, v: int, s: int, p: int) -> None:
    """Level `p` of side `s` became empty: move the best price if it was the best."""
    n_ticks = st.depth.shape[2]
    if s == BID:
        if st.best[v, BID] != p:
            return
        q = p - 1
        while q >= 0 and st.head[v, BID, q] == -1:
            q -= 1
        st.best[v, BID] = q
    else:
        if st.best[v, ASK] != p:
            return
        q = p + 1
        while q < n_ticks and st.head[v, ASK, q] == -1:
            q += 1
        st.best[v, ASK] = q


@njit(cache=True, inline="always")
def _alloc(st: BookState) -> int:
    top = st.meta[_M_FREE_TOP]
    if top == 0:
        return -1
    top -= 1
    st.meta[_M_FREE_TOP] = top
    slot = st.free[top]
    n = st.meta[_M_N_LIVE]
    st.live_list[n] = slot
    st.live_pos[slot] = n
    st.meta[_M_N_LIVE] = n + 1
    return slot


@njit(cache=True, inline="always")
def _release(st: BookState, slot: int) -> None:
    # swap-remove from the live list
    n = st.meta[_M_N_LIVE] - 1
    pos = st.live_pos[slot]
    last = st.live_list[n]
    st.live_list[pos] = last
    st.live_pos[last] = pos
    st.live_pos[slot] = -1
    st.meta[_M_N_LIVE] = n
    st.o_qty[slot] = 0
    st.o_hidden[slot] = 0
    top = st.meta[_M_FREE_TOP]
    st.free[top] = slot
    st.meta[_M_FREE_TOP] = top + 1


@njit(cache=True, inline="always")
def _record(
    st: BookState,
    fb: FillBuffer,
    ts: int,
    bar: int,
    v: int,
    p: int,
    q: int,
    taker_side: int,
    maker: int,
    taker_owner: int,
) -> None:
    st.tape_vol[bar] += q
    st.tape_pv[bar] += p * q
    if taker_side == BID:
        st.tape_signed[bar] += q
        st.meta[_M_SIGNED_CUM] += q
    else:
        st.tape_signed[bar] -= q
        st.meta[_M_SIGNED_CUM] -= q
    st.meta[_M_VOLUME_CUM] += q
    st.venue_vol[v] += q
    st.last_px[v] = p
    mo = st.o_owner[maker]
    if mo != 0 or taker_owner != 0:
        i = fb.n[0]
        if i < fb.ts.shape[0]:
            fb.ts[i] = ts
            fb.venue[i] = v
            fb.price[i] = p
            fb.qty[i] = q
            fb.taker_side[i] = taker_side
            fb.maker_slot[i] = maker
            fb.maker_owner[i] = mo
            fb.maker_leaves[i] = st.o_qty[maker] + st.o_hidden[maker]
            fb.taker_owner[i] = taker_owner
        # rows past the capacity are counted, so the caller can detect the overflow
        fb.n[0] = i + 1


@kernel
def _match(
    st: BookState,
    fb: FillBuffer,
    v: int,
    side: int,
    limit: int,
    qty: int,
    owner: int,
    ts: int,
    bar: int,
) -> int:
    """Match an incoming order against the opposite side; returns the quantity left."""
    o = 1 - side
    while qty > 0:
        p = st.best[v, o]
        # an empty ask side has best == n_ticks > any limit; an empty bid side has -1
        if side == BID:
            if p > limit:
                break
        elif p < 0 or p < limit:
            break
        m = st.head[v, o, p]
        while m != -1 and qty > 0:
            avail = st.o_qty[m]
            q = qty if qty < avail else avail
            qty -= q
            st.o_qty[m] = avail - q
            st.depth[v, o, p] -= q
            nxt = st.o_next[m]
            _record(st, fb, ts, bar, v, p, q, side, m, owner)
            if st.o_qty[m] == 0:
                _level_unlink(st, v, o, p, m)
                if st.o_hidden[m] > 0:
                    # iceberg: show the next slice at the back of the queue
                    show = st.o_peak[m] if st.o_peak[m] < st.o_hidden[m] else st.o_hidden[m]
                    st.o_hidden[m] -= show
                    st.o_qty[m] = show
                    _level_append(st, v, o, p, m)
                    if nxt == -1:
                        nxt = m
                else:
                    _release(st, m)
            m = nxt
        if st.head[v, o, p] == -1:
            _fix_best_after_empty(st, v, o, p)
    return qty


@kernel
def _rest(st: BookState, v: int, side: int, price: int, qty: int, peak: int, owner: int) -> int:
    if not 0 < peak < qty:
        return rest_at(st, v, side, price, qty, owner)
    # an iceberg: its peak shows (and counts in the level's depth), the rest is hidden
    slot = rest_at(st, v, side, price, peak, owner)
    if slot >= 0:
        st.o_hidden[slot] = qty - peak
        st.o_peak[slot] = peak
    return slot


# ----------------------------------------------------------------------------------
# public operations
# ----------------------------------------------------------------------------------


@kernel
def submit(
    st: BookState,
    fb: FillBuffer,
    v: int,
    side: int,
    price: int,
    qty: int,
    peak: int,
    owner: int,
    flags: int,
    ts: int,
    bar: int,
) -> tuple[int, int, int]:
    """Add a limit order (a market order is a limit at the far end of the book).

    Returns (resting slot or -1, quantity left unfilled, status).
    """
    n_ticks = st.depth.shape[2]
    if qty <= 0:
        return -1, qty, REJECT_QTY
    if price < 0 or price >= n_ticks:
        return -1, qty, REJECT_PRICE
    crosses = (side == BID and st.best[v, ASK] <= price) or (
        side == ASK and st.best[v, BID] >= price
    )
    if crosses:
        if flags & POST_ONLY:
            return -1, qty, REJECT_POST_ONLY
        qty = _match(st, fb, v, side, price, qty, owner, ts, bar)
    if qty == 0 or flags & IOC:
        return -1, qty, OK
    slot = _rest(st, v, side, price, qty, peak, owner)
    if slot < 0:
        return -1, qty, BOOK_FULL
    return slot, qty, OK


@kernel
def cancel(st: BookState, slot: int) -> int:
    """Remove a resting order; returns the quantity canceled (0 if it was not resting)."""
    if slot < 0 or slot >= st.live_pos.shape[0] or st.live_pos[slot] < 0:
        return 0
    v = st.o_venue[slot]
    s = st.o_side[slot]
    p = st.o_price[slot]
    left = st.o_qty[slot] + st.o_hidden[slot]
    st.depth[v, s, p] -= st.o_qty[slot]
    _level_unlink(st, v, s, p, slot)
    _release(st, slot)
    if st.head[v, s, p] == -1:
        _fix_best_after_empty(st, v, s, p)
    return left


@kernel
def reduce(st: BookState, slot: int, new_qty: int) -> int:
    """Lower a resting order's total quantity in place, keeping its time priority.

    Returns the quantity removed; 0 when the order is not resting or new_qty is not lower.
    """
    if slot < 0 or slot >= st.live_pos.shape[0] or st.live_pos[slot] < 0:
        return 0
    total = st.o_qty[slot] + st.o_hidden[slot]
    if new_qty >= total:
        return 0
    if new_qty <= 0:
        return cancel(st, slot)
    removed = total - new_qty
    # take from the hidden reserve first, then from the displayed slice
    from_hidden = removed if removed < st.o_hidden[slot] else st.o_hidden[slot]
    st.o_hidden[slot] -= from_hidden
    from_shown = removed - from_hidden
    st.o_qty[slot] -= from_shown
    st.depth[st.o_venue[slot], st.o_side[slot], st.o_price[slot]] -= from_shown
    return removed


@kernel
def replace(
    st: BookState,
    fb: FillBuffer,
    slot: int,
    new_price: int,
    new_qty: int,
    flags: int,
    ts: int,
    bar: int,
) -> tuple[int, int, int]:
    """Cancel/replace. Same price and lower quantity keeps priority; anything else is a
    new order at the back of its level (and may trade if it now crosses).

    Returns (resting slot or -1, quantity left unfilled, status); status REJECT_QTY when
    the original order is no longer resting.
    """
    if slot < 0 or slot >= st.live_pos.shape[0] or st.live_pos[slot] < 0:
        return -1, 0, REJECT_QTY
    if new_qty <= 0:
        return -1, 0, REJECT_QTY
    if new_price < 0 or new_price >= st.depth.shape[2]:
        return slot, st.o_qty[slot] + st.o_hidden[slot], REJECT_PRICE
    total = st.o_qty[slot] + st.o_hidden[slot]
    if new_price == st.o_price[slot] and new_qty <= total:
        reduce(st, slot, new_qty)
        return slot, new_qty, OK
    v = st.o_venue[slot]
    s = st.o_side[slot]
    owner = st.o_owner[slot]
    peak = st.o_peak[slot]
    # a post-only replace that would cross is refused and leaves the original intact
    would_cross = (s == BID and st.best[v, ASK] <= new_price) or (
        s == ASK and st.best[v, BID] >= new_price
    )
    if flags & POST_ONLY and would_cross:
        return slot, total, REJECT_POST_ONLY
    cancel(st, slot)
    return submit(st, fb, v, s, new_price, new_qty, peak, owner, flags, ts, bar)


@kernel
def depth_near(st: BookState, v: int, side: int, n_levels: int) -> int:
    """Visible quantity within `n_levels` ticks of the touch on one side."""
    p = st.best[v, side]
    total = 0
    if side == BID:
        lo = p - n_levels + 1
        if lo < 0:
            lo = 0
        for q in range(lo, p + 1):
            total += st.depth[v, BID, q]
    else:
        hi = p + n_levels
        if hi > st.depth.shape[2]:
            hi = st.depth.shape[2]
        for q in range(p, hi):
            total += st.depth[v, ASK, q]
    return total


@kernel
def cancel_random(st: BookState, u: float) -> int:
    """Cancel the resting background order at position floor(u * n_live) of the live list."""
    n = st.meta[_M_N_LIVE]
    if n == 0:
        return 0
    slot = st.live_list[int(u * n)]
    if st.o_owner[slot] != 0:
        return 0
    return cancel(st, slot)


# ----------------------------------------------------------------------------------
# batch entry point (benchmarks and replay)
# ----------------------------------------------------------------------------------

EV_ADD = 0
EV_CANCEL = 1
EV_MARKET = 2


@kernel
def apply_events(
    st: BookState,
    fb: FillBuffer,
    v: int,
    kinds: np.ndarray,
    sides: np.ndarray,
    offsets: np.ndarray,
    qtys: np.ndarray,
    uniforms: np.ndarray,
    mid0: int,
) -> int:
    """Apply a stream of background events to venue `v`; returns the events applied.

    EV_ADD places a limit `offsets[i]` ticks behind the same-side touch (or behind
    `mid0` on an empty side), EV_CANCEL cancels a uniformly random resting order,
    EV_MARKET sends a marketable order of `qtys[i]`.
    """
    n_ticks = st.depth.shape[2]
    for i in range(kinds.shape[0]):
        k = kinds[i]
        s = sides[i]
        if k == EV_ADD:
            if s == BID:
                ref = st.best[v, BID] if st.best[v, BID] >= 0 else mid0
                p = ref - offsets[i]
                # never cross: an add that would cross rests at the touch instead
                if p >= st.best[v, ASK]:
                    p = st.best[v, ASK] - 1
            else:
                ref = st.best[v, ASK] if st.best[v, ASK] < n_ticks else mid0 + 1
                p = ref + offsets[i]
                if p <= st.best[v, BID]:
                    p = st.best[v, BID] + 1
            if 0 <= p < n_ticks:
                submit(st, fb, v, s, p, qtys[i], 0, 0, 0, 0, 0)
        elif k == EV_CANCEL:
            cancel_random(st, uniforms[i])
        else:
            limit = n_ticks - 1 if s == BID else 0
            submit(st, fb, v, s, limit, qtys[i], 0, 0, IOC, 0, 0)
    return kinds.shape[0]


# ----------------------------------------------------------------------------------
# inlined building blocks for order-by-order replays (simulators/replay/l3.py)
# ----------------------------------------------------------------------------------
# A replay applies a feed's events by the million in one loop, so these are inlined
# into it. When numba counted the references of the book's 22 arrays at each call of an
# operation above, a call cost about 0.15 us, more than the work of an add or a delete;
# as kernels, a call from another kernel costs about a nanosecond. They never match: the
# feed reports the venue's own matching as changes and deletes.


@njit(cache=True, inline="always")
def rest_at(st: BookState, v: int, side: int, price: int, qty: int, owner: int) -> int:
    """Rest an order at the back of level `price` (0 <= price < n_ticks, qty > 0: the
    caller checks) without matching it; returns its slot, -1 if the book is full."""
    slot = _alloc(st)
    if slot < 0:
        return -1
    st.o_price[slot] = price
    st.o_side[slot] = side
    st.o_venue[slot] = v
    st.o_owner[slot] = owner
    st.o_qty[slot] = qty
    st.o_hidden[slot] = 0
    st.o_peak[slot] = 0
    _level_append(st, v, side, price, slot)
    if side == BID:
        if price > st.best[v, BID]:
            st.best[v, BID] = price
    elif price < st.best[v, ASK]:
        st.best[v, ASK] = price
    return slot


@njit(cache=True, inline="always")
def remove_at(st: BookState, slot: int) -> None:
    """Take a resting order (the caller knows it rests) out of the book."""
    v = st.o_venue[slot]
    s = st.o_side[slot]
    p = st.o_price[slot]
    st.depth[v, s, p] -= st.o_qty[slot]
    _level_unlink(st, v, s, p, slot)
    _release(st, slot)
    if st.head[v, s, p] == -1 and st.best[v, s] == p:
        _fix_best_after_empty(st, v, s, p)


@njit(cache=True, inline="always")
def shrink_at(st: BookState, slot: int, new_qty: int) -> None:
    """Lower a resting plain order's size to 0 < new_qty < its size, keeping its place."""
    st.depth[st.o_venue[slot], st.o_side[slot], st.o_price[slot]] -= st.o_qty[slot] - new_qty
    st.o_qty[slot] = new_qty
