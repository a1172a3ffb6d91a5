"""The compiled order-by-order (L3) replay: a feed's events applied to the project's own
book (simulators/book.py), order by order, in price-time priority.

The feed reports the venue's matching itself (a fill is a change or a delete of the
orders involved), so real orders never match each other here: an order rests at the
back of its level (`book.rest`), a change lowers it in place (`book.reduce`, keeping its
place in the queue), a delete takes it out. What the book needs beyond a literal
reading, because a venue's book is never crossed:

- *Marketable orders* (a new order at or through the opposite touch, and market orders)
  are held back as pending instead of resting: on the venue they trade first, or are
  rejected (post-only) or canceled (IOC) at once. Their changes (which carry the fill
  price, not the limit) update the pending size only. At the end of their millisecond
  (the first event with a later timestamp), a pending limit order with size left rests
  at its limit; a market order's remainder is dropped. Nothing here needs the future: a
  live feed handler can do the same one message late.
- *Stale orders*: when a pending order rests although it still crosses the opposite
  side, the venue has just shown that the opposite orders it crosses do not exist (it
  would have matched them): they are removed, counted by where they came from (the
  start snapshot or the stream), and their later events are skipped, counted.

`literal=True` turns both off (every new order rests where the feed puts it), the
control that shows what they are worth.

*Client orders* (`Clients`, the replay market of simulators/replay/market.py) rest in
the same book with an owner id, so they queue behind the real orders at their level
and move up as those ahead leave. They trade with the real flow where the feed says a
real order reached them: a real trade fills the client orders ahead of its maker in
price-time priority (`_trade_through`), and a real order that rests, or tries to, across
client orders at levels no real order is at fills them first (`_sweep`). What client
orders take from real ones is counted per real order (`Clients.taken`) and subtracted
from that order's later sizes; an order taken entirely has its later events skipped,
counted (`taken_by_client`).

Events that cannot be applied are skipped and counted by reason (`SKIP_*`, one code per
event in `outcome`): never applied to the wrong order or left out silently.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from simulators import book
from simulators.book import ASK, BID, BookState
from simulators.jit import kernel
from simulators.replay.events import ADD, DELETE, MODIFY, NO_PRICE

# an order's status
UNSEEN = 0
RESTING = 1
PENDING = 2  # marketable, held back until the end of its millisecond
FILLED = 3  # size 0 (filled, or a market order's rest dropped); its delete is still to come
DELETED = 4
IGNORED = 5  # never booked or taken out (`why` says why): its events are skipped

# what became of an event: 0 applied, else why it was skipped
APPLIED = 0
SKIP_UNKNOWN_ORDER = 1
SKIP_DUPLICATE_ORDER = 2
SKIP_NEGATIVE_SIZE = 3
SKIP_ZERO_SIZE = 4
SKIP_OUTSIDE_BAND = 5
SKIP_REMOVED_AS_STALE = 6
SKIP_AFTER_DELETE = 7
SKIP_BOOK_FULL = 8
SKIP_TAKEN_BY_CLIENT = 9
SKIP_REASONS = (
    "applied",
    # a change or delete of an order the replay never saw: created before the stream
    # started and missing from the snapshot
    "unknown_order",
    "duplicate_order",
    "negative_size",
    "zero_size",
    # a limit order priced outside the book's band (stub quotes far from the market);
    # its own later events are skipped under the same reason
    "outside_price_band",
    # an event of an order removed as stale: the feed contradicts the removal
    "removed_as_stale",
    "after_delete",
    "book_full",
    # an event of a real order that client orders consumed entirely (replay market only)
    "taken_by_client",
)

# what the replay did that a literal reading would not (counts)
H_MARKETABLE_REJECTED = 0  # marketable limit order deleted without a fill: post-only/IOC
H_AGGRESSOR_FILLED = 1  # marketable order deleted after fills
H_AGGRESSOR_RESTED = 2  # marketable order that rested its remainder after fills
H_CROSSING_RESTED = 3  # marketable order that rested without a fill: it proved staleness
H_MARKET_ORDERS = 4
H_MARKET_LEFT = 5  # market orders with size left at the end of their millisecond
H_STALE_SNAPSHOT = 6  # snapshot orders removed as stale
H_STALE_STREAM = 7  # stream orders removed as stale
H_ZERO_CHANGE = 8  # a change to size 0 of a resting order: out of the book at once
H_SIZE_UP = 9  # a change that raised a resting order's size: to the back of its level
H_CHANGE_PRICE = 10  # a resting order's change printed another price (kept its own)
HANDLED = (
    "marketable_rejected",
    "aggressor_filled",
    "aggressor_rested",
    "crossing_rested",
    "market_orders",
    "market_left",
    "stale_snapshot_removed",
    "stale_stream_removed",
    "zero_change",
    "size_up_requeued",
    "change_price_ignored",
)

# a trade checked against the book at the maker's fill event (check.py): its outcome
CHK_OK = 0
CHK_PRICE_NOT_BEST = 1
CHK_MAKER_NOT_IN_BOOK = 2
CHK_MAKER_AT_OTHER_PRICE = 3
CHK_MAKER_TOO_SMALL = 4
CHK_NO_MAKER_EVENT = 5  # set by check.py: the feed never shows the maker's fill
CHK_NOT_REACHED = 6  # its event lies beyond the events applied
CHECK_REASONS = (
    "ok",
    "price_not_best",
    "maker_not_in_book",
    "maker_at_other_price",
    "maker_smaller_than_trade",
    "maker_fill_not_in_feed",
    "not_reached",
)

_M_N_PENDING = 0
_M_PENDING_TS = 1
_M_LAST_TS = 2  # -1 before the first event
_M_CROSSED_NS = 3
_M_NEXT_CHECK = 4
_M_LITERAL = 5
_M_LIVE_PENDING = 6  # pending orders not yet deleted (most are, within their millisecond)
_M_LEN = 7

_VENUE = 0


class ReplayState(NamedTuple):
    """Per-order state (indexed by dense order id) beside the book's slots."""

    slot_of: np.ndarray  # int32[M] resting slot, -1 if none
    order_of_slot: np.ndarray  # int32[capacity] dense order resting in a slot
    status: np.ndarray  # int8[M]
    why: np.ndarray  # int8[M] SKIP_* reason of an IGNORED order
    from_snapshot: np.ndarray  # int8[M] 1 if the order came with the start snapshot
    pend_side: np.ndarray  # int8[M]
    pend_price: np.ndarray  # int64[M] limit in ticks, NO_PRICE for a market order
    pend_qty: np.ndarray  # int64[M] size left
    pend_filled: np.ndarray  # int8[M] 1 once a change (a fill) has been seen
    pending: np.ndarray  # int32[M] pending orders in arrival order (lazily compacted)
    handled: np.ndarray  # int64[len(HANDLED)]
    meta: np.ndarray  # int64[_M_LEN]


class TradeChecks(NamedTuple):
    """Trades to check, sorted by `event` (the maker's fill event, checked before it is
    applied); the `code`, `best`, `ahead` and `maker_qty` columns are outputs."""

    event: np.ndarray  # int64
    maker: np.ndarray  # int32 dense order
    maker_side: np.ndarray  # int8
    price: np.ndarray  # int64 ticks
    qty: np.ndarray  # int64 lots
    code: np.ndarray  # int8 CHK_*
    best: np.ndarray  # int64 best price on the maker's side at the check
    ahead: np.ndarray  # int64 size queued ahead of the maker at its level
    maker_qty: np.ndarray  # int64 the maker's size in the book at the check (-1: absent)


def new_replay_state(n_orders: int, capacity: int, literal: bool = False) -> ReplayState:
    meta = np.zeros(_M_LEN, dtype=np.int64)
    meta[_M_LAST_TS] = -1
    meta[_M_LITERAL] = int(literal)
    return ReplayState(
        slot_of=np.full(n_orders, -1, dtype=np.int32),
        order_of_slot=np.full(capacity, -1, dtype=np.int32),
        status=np.zeros(n_orders, dtype=np.int8),
        why=np.zeros(n_orders, dtype=np.int8),
        from_snapshot=np.zeros(n_orders, dtype=np.int8),
        pend_side=np.zeros(n_orders, dtype=np.int8),
        pend_price=np.zeros(n_orders, dtype=np.int64),
        pend_qty=np.zeros(n_orders, dtype=np.int64),
        pend_filled=np.zeros(n_orders, dtype=np.int8),
        pending=np.zeros(n_orders, dtype=np.int32),
        handled=np.zeros(len(HANDLED), dtype=np.int64),
        meta=meta,
    )


def no_checks() -> TradeChecks:
    e64 = np.zeros(0, dtype=np.int64)
    return TradeChecks(
        event=e64,
        maker=np.zeros(0, dtype=np.int32),
        maker_side=np.zeros(0, dtype=np.int8),
        price=e64,
        qty=e64,
        code=np.zeros(0, dtype=np.int8),
        best=e64.copy(),
        ahead=e64.copy(),
        maker_qty=e64.copy(),
    )


# a replay's client settings and counters (`Clients.conf`)
_C_ON = 0  # 1: client orders may rest in the book
_C_SHIFT = 1  # exchange-clock ns of the clients' time 0
_C_T0 = 2  # clients' ns of the tape's bar 0
_C_BAR_NS = 3  # length of a tape bar
_C_SHORT = 4  # real size changes below what clients had taken from the order (count)
_C_LEN = 5


class Clients(NamedTuple):
    """Client orders in a replayed book (their fills go to `fb`, on the clients' clock)."""

    fb: book.FillBuffer
    taken: np.ndarray  # int64[M] size of each real order that traded with clients instead
    conf: np.ndarray  # int64[_C_LEN]


def no_clients() -> Clients:
    """A replay with no client orders (the reconstruction as the feed shows it)."""
    return Clients(book.new_fill_buffer(1), np.zeros(1, dtype=np.int64), np.zeros(_C_LEN, np.int64))


def new_clients(n_orders: int, shift_ns: int, bar0_ns: int, bar_ns: int) -> Clients:
    conf = np.zeros(_C_LEN, dtype=np.int64)
    conf[_C_ON] = 1
    conf[_C_SHIFT] = shift_ns
    conf[_C_T0] = bar0_ns
    conf[_C_BAR_NS] = bar_ns
    return Clients(book.new_fill_buffer(1 << 12), np.zeros(n_orders, dtype=np.int64), conf)


def short_changes(cl: Clients) -> int:
    """Real size changes that asked for more than clients had left of the order."""
    return int(cl.conf[_C_SHORT])


# ----------------------------------------------------------------------------------
# kernels
#
# They are `simulators.jit.kernel`s: compiled without numba's reference counting, which
# took nine tenths of the replay's time. Each inlined helper that an add, a change or a
# delete goes through counted the references of the book's 22 arrays and the replay
# state's 12 on entry and at its return: 68 calls to the runtime per event. The client
# orders' 12 arrays, handed to the add and the change too, added 24 more (the replay ran
# a sixth slower for them).
# ----------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _crosses(st: BookState, side: int, price: int) -> bool:
    if side == BID:
        return price >= st.best[_VENUE, ASK]
    return price <= st.best[_VENUE, BID]


@njit(cache=True, inline="always")
def _place(st: BookState, rs: ReplayState, o: int, side: int, price: int, qty: int) -> int:
    """Rest order `o`; returns APPLIED or SKIP_BOOK_FULL."""
    slot = book.rest_at(st, _VENUE, side, price, qty, 0)
    if slot < 0:
        rs.status[o] = IGNORED
        rs.why[o] = SKIP_BOOK_FULL
        return SKIP_BOOK_FULL
    rs.slot_of[o] = slot
    rs.order_of_slot[slot] = o
    rs.status[o] = RESTING
    return APPLIED


@njit(cache=True, inline="always")
def _take_out(st: BookState, rs: ReplayState, o: int, status: int) -> None:
    slot = rs.slot_of[o]
    book.remove_at(st, slot)
    rs.order_of_slot[slot] = -1
    rs.slot_of[o] = -1
    rs.status[o] = status


@kernel
def _remove_stale(
    st: BookState, rs: ReplayState, cl: Clients, side: int, price: int, t: int
) -> None:
    """The venue let a `side` order at `price` rest: whatever it crosses is not there."""
    o_side = 1 - side
    while _crosses(st, side, price):
        p = st.best[_VENUE, o_side]
        slot = st.head[_VENUE, o_side, p]
        if st.o_owner[slot] != 0:
            # a client order behind a stale one: the order resting through it takes it
            _client_fill(st, cl, slot, st.o_qty[slot], t)
            continue
        stale = rs.order_of_slot[slot]
        _take_out(st, rs, stale, IGNORED)
        rs.why[stale] = SKIP_REMOVED_AS_STALE
        if rs.from_snapshot[stale]:
            rs.handled[H_STALE_SNAPSHOT] += 1
        else:
            rs.handled[H_STALE_STREAM] += 1


@kernel
def _flush_pending(st: BookState, rs: ReplayState, cl: Clients) -> None:
    """The end of the pending orders' millisecond: rest what is left of them."""
    t = rs.meta[_M_PENDING_TS]
    for k in range(rs.meta[_M_N_PENDING]):
        o = rs.pending[k]
        if rs.status[o] != PENDING:
            continue
        rs.meta[_M_LIVE_PENDING] -= 1
        q = rs.pend_qty[o]
        p = rs.pend_price[o]
        if p == NO_PRICE:
            rs.status[o] = FILLED
            if q > 0:
                rs.handled[H_MARKET_LEFT] += 1
            continue
        if q <= 0:
            rs.status[o] = FILLED
            continue
        s = rs.pend_side[o]
        if cl.conf[_C_ON]:
            got = _sweep(st, cl, s, p, q, t)
            cl.taken[o] += got
            q -= got
            if q == 0:
                rs.status[o] = IGNORED
                rs.why[o] = SKIP_TAKEN_BY_CLIENT
                continue
        _remove_stale(st, rs, cl, s, p, t)
        if _place(st, rs, o, s, p, q) == APPLIED:
            if rs.pend_filled[o]:
                rs.handled[H_AGGRESSOR_RESTED] += 1
            else:
                rs.handled[H_CROSSING_RESTED] += 1
    rs.meta[_M_N_PENDING] = 0


@njit(cache=True, inline="always")
def _hold(rs: ReplayState, o: int, side: int, price: int, qty: int, ts: int) -> None:
    rs.status[o] = PENDING
    rs.pend_side[o] = side
    rs.pend_price[o] = price
    rs.pend_qty[o] = qty
    rs.pend_filled[o] = 0
    n = rs.meta[_M_N_PENDING]
    rs.pending[n] = o
    rs.meta[_M_N_PENDING] = n + 1
    rs.meta[_M_PENDING_TS] = ts
    rs.meta[_M_LIVE_PENDING] += 1


@njit(cache=True, inline="always")
def _skip_known(rs: ReplayState, o: int) -> int:
    """The skip reason of an event for an order that is neither resting nor pending."""
    s = rs.status[o]
    if s == UNSEEN:
        return SKIP_UNKNOWN_ORDER
    if s == IGNORED:
        return rs.why[o]
    return SKIP_AFTER_DELETE


@njit(cache=True, inline="always")
def _add(
    st: BookState,
    rs: ReplayState,
    cl: Clients,
    o: int,
    side: int,
    price: int,
    qty: int,
    ts: int,
    snap: bool,
) -> int:
    if rs.status[o] != UNSEEN:
        return SKIP_DUPLICATE_ORDER
    rs.from_snapshot[o] = 1 if snap else 0
    why = APPLIED
    if qty < 0:
        why = SKIP_NEGATIVE_SIZE
    elif qty == 0:
        why = SKIP_ZERO_SIZE
    elif price < 0 or price >= st.depth.shape[2]:
        why = SKIP_OUTSIDE_BAND
    if why != APPLIED:
        rs.status[o] = IGNORED
        rs.why[o] = why
        return why
    if cl.conf[_C_ON] and _crosses(st, side, price):
        rb = _real_best(st, 1 - side)
        if not ((side == BID and price >= rb) or (side == ASK and price <= rb)):
            # it crosses client orders only: the venue would have matched it with them
            got = _sweep(st, cl, side, price, qty, ts)
            cl.taken[o] += got
            qty -= got
            if qty == 0:
                rs.status[o] = IGNORED
                rs.why[o] = SKIP_TAKEN_BY_CLIENT
                return APPLIED
    if rs.meta[_M_LITERAL] == 0 and _crosses(st, side, price):
        _hold(rs, o, side, price, qty, ts)
        return APPLIED
    return _place(st, rs, o, side, price, qty)


@njit(cache=True, inline="always")
def _market(rs: ReplayState, o: int, side: int, qty: int, ts: int) -> int:
    if rs.status[o] != UNSEEN:
        return SKIP_DUPLICATE_ORDER
    if qty < 0:
        rs.status[o] = IGNORED
        rs.why[o] = SKIP_NEGATIVE_SIZE
        return SKIP_NEGATIVE_SIZE
    # a size of 0 is a buy sized in quote currency: it still takes, so it is held
    rs.handled[H_MARKET_ORDERS] += 1
    _hold(rs, o, side, NO_PRICE, qty, ts)
    return APPLIED


@njit(cache=True, inline="always")
def _modify(st: BookState, rs: ReplayState, cl: Clients, o: int, price: int, qty: int) -> int:
    s = rs.status[o]
    if qty < 0:
        return SKIP_NEGATIVE_SIZE
    taken = cl.taken[o] if cl.conf[_C_ON] else 0
    if s == PENDING:
        # an aggressor's change prints its fill price: its limit stays what it was
        rs.pend_qty[o] = qty - taken if qty > taken else 0
        rs.pend_filled[o] = 1
        return APPLIED
    if s == FILLED:
        return APPLIED if qty == 0 else SKIP_AFTER_DELETE
    if s != RESTING:
        return _skip_known(rs, o)
    slot = rs.slot_of[o]
    if price != st.o_price[slot]:
        rs.handled[H_CHANGE_PRICE] += 1
    total = st.o_qty[slot] + st.o_hidden[slot]
    if taken > 0:
        # clients took part of it: the feed's sizes are less what they took
        if qty < taken:
            cl.conf[_C_SHORT] += 1
        qty = qty - taken if qty > taken else 0
        if qty == 0:
            _take_out(st, rs, o, FILLED)
            return APPLIED
    if qty == 0:
        _take_out(st, rs, o, FILLED)
        rs.handled[H_ZERO_CHANGE] += 1
    elif qty < total:
        book.shrink_at(st, slot, qty)
    elif qty > total:
        side = st.o_side[slot]
        p = st.o_price[slot]
        _take_out(st, rs, o, UNSEEN)
        rs.handled[H_SIZE_UP] += 1
        return _place(st, rs, o, side, p, qty)
    return APPLIED


@njit(cache=True, inline="always")
def _delete(st: BookState, rs: ReplayState, o: int) -> int:
    s = rs.status[o]
    if s == RESTING:
        _take_out(st, rs, o, DELETED)
    elif s == PENDING:
        rs.status[o] = DELETED
        rs.meta[_M_LIVE_PENDING] -= 1
        if rs.pend_price[o] != NO_PRICE:
            if rs.pend_filled[o]:
                rs.handled[H_AGGRESSOR_FILLED] += 1
            else:
                rs.handled[H_MARKETABLE_REJECTED] += 1
    elif s == FILLED:
        rs.status[o] = DELETED
    else:
        return _skip_known(rs, o)
    return APPLIED


@kernel
def _client_fill(st: BookState, cl: Clients, slot: int, q: int, t: int) -> None:
    """The client order in `slot` trades `q` (at most its size) at its own price with a
    real order (the taker) at exchange time `t`: on the tape and into the fill buffer."""
    s = st.o_side[slot]
    p = st.o_price[slot]
    st.o_qty[slot] -= q
    st.depth[_VENUE, s, p] -= q
    ts = t - cl.conf[_C_SHIFT]
    bar = (ts - cl.conf[_C_T0]) // cl.conf[_C_BAR_NS]
    bar = min(max(bar, 0), st.tape_vol.shape[0] - 1)
    book._record(st, cl.fb, ts, bar, _VENUE, p, q, 1 - s, slot, 0)
    if st.o_qty[slot] == 0:
        book.remove_at(st, slot)


@kernel
def _real_best(st: BookState, side: int) -> int:
    """The best price of `side` at which a real order rests (-1 / n_ticks: none)."""
    n = st.depth.shape[2]
    step = -1 if side == BID else 1
    p = st.best[_VENUE, side]
    while 0 <= p < n:
        m = st.head[_VENUE, side, p]
        while m != -1:
            if st.o_owner[m] == 0:
                return p
            m = st.o_next[m]
        p += step
    return p


@kernel
def _sweep(st: BookState, cl: Clients, side: int, price: int, qty: int, t: int) -> int:
    """A real `side` order limited at `price` takes the client orders in front of every
    real one on the other side, up to `qty`; returns the size it took."""
    o_side = 1 - side
    n = st.depth.shape[2]
    left = qty
    while left > 0:
        p = st.best[_VENUE, o_side]
        if p < 0 or p >= n or (side == BID and p > price) or (side == ASK and p < price):
            break
        slot = st.head[_VENUE, o_side, p]
        if st.o_owner[slot] == 0:
            break
        q = min(left, st.o_qty[slot])
        _client_fill(st, cl, slot, q, t)
        left -= q
    return qty - left


@kernel
def _trade_through(
    st: BookState, rs: ReplayState, cl: Clients, ck: TradeChecks, k: int, t: int
) -> None:
    """Real trade `k` is about to be applied to its maker: first it fills the client
    orders ahead of that maker, in price-time priority (better prices, then its own
    level up to the maker), up to the trade's size. The maker's fill is applied as the
    feed prints it afterwards: the participants do not react to the clients."""
    ms = ck.maker_side[k]
    price = ck.price[k]
    left = ck.qty[k]
    o = ck.maker[k]
    maker_slot = rs.slot_of[o] if rs.status[o] == RESTING else -1
    n = st.depth.shape[2]
    step = -1 if ms == BID else 1
    p = st.best[_VENUE, ms]
    while left > 0 and 0 <= p < n and ((ms == BID and p >= price) or (ms == ASK and p <= price)):
        m = st.head[_VENUE, ms, p]
        while m != -1 and left > 0:
            if m == maker_slot:
                return
            nxt = st.o_next[m]
            if st.o_owner[m] != 0:
                q = min(left, st.o_qty[m])
                _client_fill(st, cl, m, q, t)
                left -= q
            m = nxt
        p += step


@kernel
def _check_trade(st: BookState, rs: ReplayState, ck: TradeChecks, k: int) -> None:
    ms = ck.maker_side[k]
    best = st.best[_VENUE, ms]
    ck.best[k] = best
    o = ck.maker[k]
    ck.maker_qty[k] = -1
    ck.ahead[k] = -1
    if rs.status[o] == RESTING:
        slot = rs.slot_of[o]
        ck.maker_qty[k] = st.o_qty[slot]
        ahead = 0
        prv = st.o_prev[slot]
        while prv != -1:
            ahead += st.o_qty[prv]
            prv = st.o_prev[prv]
        ck.ahead[k] = ahead
    if ck.price[k] != best:
        ck.code[k] = CHK_PRICE_NOT_BEST
    elif rs.status[o] != RESTING:
        ck.code[k] = CHK_MAKER_NOT_IN_BOOK
    elif st.o_price[rs.slot_of[o]] != ck.price[k]:
        ck.code[k] = CHK_MAKER_AT_OTHER_PRICE
    elif ck.maker_qty[k] < ck.qty[k]:
        ck.code[k] = CHK_MAKER_TOO_SMALL
    else:
        ck.code[k] = CHK_OK


@kernel
def apply_events(
    st: BookState,
    rs: ReplayState,
    ts: np.ndarray,
    order: np.ndarray,
    side: np.ndarray,
    price: np.ndarray,
    qty: np.ndarray,
    action: np.ndarray,
    n_snapshot: int,
    start: int,
    stop: int,
    outcome: np.ndarray,
    ck: TradeChecks,
    cl: Clients,
) -> None:
    """Apply events `start <= i < stop` (each stream's events in order, once each);
    `outcome[i]` gets APPLIED or the SKIP_* reason. Trades in `ck` whose event falls in
    the range are checked just before their event, and with clients (`cl`) they fill
    the client orders ahead of their maker there."""
    n_chk = ck.event.shape[0]
    # the loop's own counters live in locals (registers), written back at the end
    last = rs.meta[_M_LAST_TS]
    crossed = rs.meta[_M_CROSSED_NS]
    k = rs.meta[_M_NEXT_CHECK]
    for i in range(start, stop):
        t = ts[i]
        if rs.meta[_M_N_PENDING] > 0 and t > rs.meta[_M_PENDING_TS]:
            if rs.meta[_M_LIVE_PENDING] > 0:
                _flush_pending(st, rs, cl)
            else:
                rs.meta[_M_N_PENDING] = 0
        if last >= 0 and st.best[_VENUE, BID] >= st.best[_VENUE, ASK]:
            crossed += t - last
        last = t
        while k < n_chk and ck.event[k] <= i:
            if ck.event[k] == i:
                _check_trade(st, rs, ck, k)
                if cl.conf[_C_ON]:
                    _trade_through(st, rs, cl, ck, k, t)
            k += 1
        o = order[i]
        a = action[i]
        if a == ADD:
            outcome[i] = _add(st, rs, cl, o, side[i], price[i], qty[i], t, i < n_snapshot)
        elif a == MODIFY:
            outcome[i] = _modify(st, rs, cl, o, price[i], qty[i])
        elif a == DELETE:
            outcome[i] = _delete(st, rs, o)
        else:  # MARKET
            outcome[i] = _market(rs, o, side[i], qty[i], t)
    rs.meta[_M_LAST_TS] = last
    rs.meta[_M_CROSSED_NS] = crossed
    rs.meta[_M_NEXT_CHECK] = k


@kernel
def finish(st: BookState, rs: ReplayState, cl: Clients) -> None:
    """The stream has ended: its last millisecond is over."""
    if rs.meta[_M_N_PENDING] > 0:
        _flush_pending(st, rs, cl)


def crossed_ns(rs: ReplayState) -> int:
    """Time (exchange clock, ns) the book has spent crossed or locked so far."""
    return int(rs.meta[_M_CROSSED_NS])


def new_book(n_ticks: int, capacity: int) -> BookState:
    """A one-venue book for a replay (nothing matches in it: no tape is kept)."""
    return book.new_book_state(1, n_ticks, capacity, 1)
