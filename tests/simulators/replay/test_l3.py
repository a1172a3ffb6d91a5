"""The compiled L3 replay (simulators/replay/l3.py, through Replayer) on hand-made events."""

from __future__ import annotations

import numpy as np
import pytest

from bench.pyl3book import PyL3Book
from simulators.book import ASK, BID
from simulators.replay import l3
from simulators.replay.events import ADD, DELETE, MARKET, MODIFY, NO_PRICE, OrderEvents
from simulators.replay.replayer import Replayer, price_band

MS = 1_000_000


def stream(rows: list[tuple[int, int, int, int, int, int]], n_snapshot: int = 0) -> OrderEvents:
    """Rows of (ms, order, side, price, qty, action)."""
    a = np.array(rows, dtype=np.int64).reshape(-1, 6)
    return OrderEvents(
        ts_ns=a[:, 0] * MS,
        recv_ns=a[:, 0] * MS,
        order=a[:, 1].astype(np.int32),
        side=a[:, 2].astype(np.int8),
        price=a[:, 3],
        qty=a[:, 4],
        action=a[:, 5].astype(np.int8),
        n_snapshot=n_snapshot,
    )


def replay(rows, n_snapshot=0, literal=False, finish=True, n_ticks=1000) -> Replayer:
    rp = Replayer(stream(rows, n_snapshot), 64, literal=literal, n_ticks=n_ticks)
    rp.run()
    if finish:
        rp.finish()
    return rp


def run_kernel(
    ev: OrderEvents,
    n_orders: int,
    n_ticks: int,
    checks: l3.TradeChecks,
    clients: l3.Clients,
    literal: bool = False,
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """The kernel straight on `ev` and to its end, with `clients` (and its own copy of
    `checks`): every array of the book, the replay state and the events' outcomes, and
    the checks' columns."""
    st = l3.new_book(n_ticks, n_orders + 1)
    rs = l3.new_replay_state(n_orders, n_orders + 1, literal)
    outcome = np.zeros(len(ev), dtype=np.int8)
    ck = l3.TradeChecks(*(a.copy() for a in checks))
    args = (ev.ts_ns, ev.order, ev.side, ev.price, ev.qty, ev.action, ev.n_snapshot)
    l3.apply_events(st, rs, *args, 0, len(ev), outcome, ck, clients)
    l3.finish(st, rs, clients)
    return (*st, *rs, outcome), tuple(ck)


def assert_same_with_idle_clients(ev, n_orders, n_ticks, checks, literal=False):
    """Without clients the kernel skips their branches; with clients but none of their
    orders in the book it runs them: both must replay the same."""
    bare = run_kernel(ev, n_orders, n_ticks, checks, l3.no_clients(), literal)
    idle = run_kernel(ev, n_orders, n_ticks, checks, l3.new_clients(n_orders, 0, 0, 1), literal)
    for side_bare, side_idle in zip(bare, idle, strict=True):
        for x, y in zip(side_bare, side_idle, strict=True):
            assert np.array_equal(x, y)


def queue(rp: Replayer, side: int, price: int) -> list[tuple[int, int]]:
    """(order, qty) at a level, front first."""
    st, rs = rp.book, rp.state
    out = []
    slot = st.head[0, side, price]
    while slot != -1:
        out.append((int(rs.order_of_slot[slot]), int(st.o_qty[slot])))
        slot = st.o_next[slot]
    return out


def test_orders_queue_in_time_priority_and_a_change_down_keeps_its_place():
    rp = replay(
        [
            (1, 1, BID, 100, 5, ADD),
            (2, 2, BID, 100, 7, ADD),
            (3, 3, BID, 100, 9, ADD),
            (4, 1, BID, 100, 2, MODIFY),  # a fill: keeps its place
            (5, 2, BID, 100, 8, MODIFY),  # more size: to the back
            (6, 4, ASK, 103, 4, ADD),
        ]
    )
    assert queue(rp, BID, 100) == [(1, 2), (3, 9), (2, 8)]
    assert rp.levels(BID, 10) == [(100, 19)]
    assert rp.levels(ASK, 10) == [(103, 4)]
    assert rp.handled()["size_up_requeued"] == 1
    assert rp.skipped() == {} and rp.applied == 6


def test_deletes_move_the_touch_and_empty_sides_read_as_sentinels():
    rp = replay(
        [
            (1, 1, BID, 100, 5, ADD),
            (1, 2, BID, 98, 5, ADD),
            (1, 3, ASK, 101, 5, ADD),
            (2, 1, BID, 100, 0, DELETE),
            (3, 3, ASK, 101, 0, DELETE),
        ]
    )
    assert rp.best_bid == 98
    assert rp.best_ask == rp.n_ticks  # no ask left
    assert rp.levels(ASK, 3) == []


def test_a_marketable_order_deleted_in_its_millisecond_never_rests():
    # a post-only or IOC order priced through the touch: rejected at once on the venue
    rp = replay(
        [
            (1, 1, ASK, 101, 5, ADD),
            (1, 2, BID, 100, 5, ADD),
            (2, 3, BID, 102, 3, ADD),
            (2, 3, BID, 102, 3, DELETE),
            (3, 4, ASK, 105, 1, ADD),
        ]
    )
    assert rp.best_bid == 100 and rp.best_ask == 101
    assert rp.crossed_seconds == 0.0
    assert rp.handled()["marketable_rejected"] == 1


def test_an_aggressor_rests_its_remainder_at_its_limit_not_at_the_fill_price():
    rp = replay(
        [
            (1, 1, ASK, 101, 5, ADD),
            (1, 2, ASK, 102, 5, ADD),
            (2, 3, BID, 104, 12, ADD),  # takes both levels
            (2, 1, ASK, 101, 0, DELETE),
            (2, 3, BID, 101, 7, MODIFY),  # the change prints the fill price
            (2, 2, ASK, 102, 0, DELETE),
            (2, 3, BID, 102, 2, MODIFY),
        ],
        finish=False,
    )
    assert rp.levels(BID, 5) == []  # still pending: its millisecond is not over
    rp.finish()
    assert queue(rp, BID, 104) == [(3, 2)]
    assert rp.best_ask == rp.n_ticks
    assert rp.handled()["aggressor_rested"] == 1


def test_a_market_order_takes_and_never_rests():
    rp = replay(
        [
            (1, 1, BID, 100, 5, ADD),
            (2, 2, ASK, NO_PRICE, 8, MARKET),
            (2, 1, BID, 100, 0, DELETE),
            (2, 2, ASK, 100, 3, MODIFY),
            (3, 3, BID, 99, 1, ADD),  # the millisecond is over: its 3 lots are dropped
            (4, 2, ASK, 100, 0, DELETE),
        ]
    )
    assert rp.levels(ASK, 5) == []
    assert rp.levels(BID, 5) == [(99, 1)]
    h = rp.handled()
    assert h["market_orders"] == 1 and h["market_left"] == 1
    assert rp.skipped() == {}


def test_an_order_that_rests_through_a_snapshot_order_proves_it_stale():
    rows = [
        (1, 1, ASK, 101, 5, ADD),  # snapshot: already gone on the venue
        (1, 2, ASK, 103, 5, ADD),  # snapshot
        (1, 3, BID, 99, 5, ADD),  # snapshot
        (5, 4, BID, 102, 2, ADD),  # crosses the stale ask, yet neither trades nor goes
        (6, 5, BID, 98, 1, ADD),
        (9, 1, ASK, 101, 5, DELETE),  # the feed deletes what the replay removed
    ]
    rp = replay(rows, n_snapshot=3)
    assert rp.best_bid == 102 and rp.best_ask == 103
    h = rp.handled()
    assert h["stale_snapshot_removed"] == 1 and h["crossing_rested"] == 1
    assert rp.skipped() == {"removed_as_stale": 1}
    assert rp.crossed_seconds == 0.0


def test_read_literally_the_stale_order_crosses_the_book_until_the_end():
    rows = [
        (1, 1, ASK, 101, 5, ADD),
        (1, 2, ASK, 103, 5, ADD),
        (1, 3, BID, 99, 5, ADD),
        (5, 4, BID, 102, 2, ADD),
        (6, 5, BID, 98, 1, ADD),
        (9, 6, BID, 97, 1, ADD),
    ]
    rp = replay(rows, n_snapshot=3, literal=True)
    assert rp.best_bid == 102 and rp.best_ask == 101
    assert rp.crossed_seconds == pytest.approx(0.004)  # from 5 ms to 9 ms
    assert rp.handled()["stale_snapshot_removed"] == 0


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ([(1, 1, BID, 100, 5, DELETE)], "unknown_order"),
        ([(1, 1, BID, 100, 5, MODIFY)], "unknown_order"),
        ([(1, 1, BID, 100, 5, ADD), (2, 1, BID, 100, 5, ADD)], "duplicate_order"),
        ([(1, 1, BID, 100, -5, ADD)], "negative_size"),
        ([(1, 1, BID, 100, 5, ADD), (2, 1, BID, 100, -1, MODIFY)], "negative_size"),
        ([(1, 1, BID, 100, 0, ADD)], "zero_size"),
        ([(1, 1, ASK, 5000, 5, ADD)], "outside_price_band"),
        (
            [(1, 1, BID, 100, 5, ADD), (2, 1, BID, 100, 0, DELETE), (3, 1, BID, 100, 0, DELETE)],
            "after_delete",
        ),
    ],
)
def test_events_that_cannot_apply_are_skipped_and_counted(rows, reason):
    rp = replay(rows)
    assert rp.skipped() == {reason: 1}
    assert rp.applied == len(rows) - 1
    assert (rp.outcome == l3.SKIP_REASONS.index(reason)).sum() == 1


def test_the_later_events_of_an_order_never_booked_are_skipped_for_the_same_reason():
    rp = replay(
        [(1, 1, ASK, 5000, 5, ADD), (2, 1, ASK, 5000, 4, MODIFY), (3, 1, ASK, 0, 0, DELETE)]
    )
    assert rp.skipped() == {"outside_price_band": 3}
    assert rp.resting().order.size == 0


def test_a_change_to_zero_takes_the_order_out_before_its_delete():
    rp = replay(
        [(1, 1, BID, 100, 5, ADD), (2, 1, BID, 100, 0, MODIFY), (3, 1, BID, 100, 0, DELETE)]
    )
    assert rp.levels(BID, 1) == [] and rp.skipped() == {}
    assert rp.handled()["zero_change"] == 1


def test_running_in_steps_gives_the_same_book_as_one_run():
    rows = [
        (k, k, k % 2, 100 + (k % 7) * (1 if k % 2 else -1), 1 + k % 3, ADD) for k in range(1, 40)
    ]
    rows += [(40 + k, k, k % 2, 0, 0, DELETE) for k in range(1, 40, 3)]
    whole = replay(rows)
    steps = Replayer(stream(rows), 64, n_ticks=1000)
    for stop in (5, 17, 30, len(rows)):
        steps.run(stop)
    steps.finish()
    for side in (BID, ASK):
        assert steps.levels(side, 20) == whole.levels(side, 20)
    assert np.array_equal(steps.outcome, whole.outcome)


def test_the_price_band_is_twice_the_opening_mid():
    ev = stream([(1, 1, BID, 100, 1, ADD), (1, 2, ASK, 102, 1, ADD)], n_snapshot=2)
    assert price_band(ev) == 203
    assert price_band(stream([(1, 1, ASK, 50, 1, ADD)])) == 101  # no snapshot: first order


@pytest.mark.parametrize("literal", [False, True])
def test_the_plain_python_book_agrees_event_by_event(literal):
    rng = np.random.default_rng(5)
    rows, live, next_id = [], [], 1
    for t in range(1, 3000):
        r = rng.random()
        if r < 0.5 or not live:
            side = int(rng.integers(0, 2))
            px = 100 + int(rng.integers(-6, 7))
            rows.append((t // 3, next_id, side, px, int(rng.integers(1, 9)), ADD))
            live.append((next_id, side))
            next_id += 1
        elif r < 0.8:
            o, side = live.pop(int(rng.integers(0, len(live))))
            rows.append((t // 3, o, side, 0, 0, DELETE))
        else:
            o, side = live[int(rng.integers(0, len(live)))]
            rows.append((t // 3, o, side, 0, int(rng.integers(0, 9)), MODIFY))
    ev = stream(rows, n_snapshot=20)
    rp = Replayer(ev, next_id, literal=literal, n_ticks=300)
    rp.run()
    rp.finish()
    py = PyL3Book(300, literal=literal)
    py.apply(
        *(a.tolist() for a in (ev.ts_ns, ev.order, ev.side, ev.price, ev.qty, ev.action)),
        ev.n_snapshot,
    )
    py.finish()
    assert py.outcome == rp.outcome.tolist()
    assert py.handled == rp.state.handled.tolist()
    assert py.crossed_ns == rp.crossed_ns
    for side in (BID, ASK):
        assert py.top(side, 30) == rp.levels(side, 30)
        for p, _ in rp.levels(side, 30):
            assert list(py.levels[side][p].items()) == queue(rp, side, p)


@pytest.mark.parametrize("literal", [False, True])
def test_with_clients_that_have_no_orders_the_replay_and_its_checks_are_the_same(literal):
    rows = [
        (1, 1, ASK, 101, 5, ADD),  # snapshot: stale
        (1, 2, ASK, 103, 5, ADD),  # snapshot
        (1, 3, BID, 99, 5, ADD),  # snapshot
        (2, 4, BID, 99, 3, ADD),
        (3, 5, BID, 104, 2, ADD),  # marketable, rejected in its millisecond
        (3, 5, BID, 104, 2, DELETE),
        (5, 6, BID, 102, 2, ADD),  # rests through the stale ask
        (6, 7, ASK, NO_PRICE, 4, MARKET),
        (6, 6, BID, 102, 0, DELETE),  # the market order's fills
        (6, 3, BID, 99, 3, MODIFY),
        (7, 4, BID, 99, 6, MODIFY),  # more size: to the back
        (8, 8, ASK, 100, 1, ADD),
        (9, 1, ASK, 101, 5, DELETE),
        (9, 9, ASK, 90_000, 1, ADD),  # outside the band
        (10, 2, ASK, 103, 0, MODIFY),
    ]
    ev = stream(rows, n_snapshot=3)
    # the market order's two fills, checked at its makers' events
    checks = l3.TradeChecks(
        event=np.array([8, 9], dtype=np.int64),
        maker=np.array([6, 3], dtype=np.int32),
        maker_side=np.array([BID, BID], dtype=np.int8),
        price=np.array([102, 99], dtype=np.int64),
        qty=np.array([2, 2], dtype=np.int64),
        code=np.full(2, l3.CHK_NOT_REACHED, dtype=np.int8),
        best=np.zeros(2, dtype=np.int64),
        ahead=np.full(2, -1, dtype=np.int64),
        maker_qty=np.full(2, -1, dtype=np.int64),
    )
    assert_same_with_idle_clients(ev, 64, 1000, checks, literal)
    _, ck = run_kernel(ev, 64, 1000, checks, l3.no_clients(), literal)
    code = ck[l3.TradeChecks._fields.index("code")]
    if not literal:
        assert code.tolist() == [l3.CHK_OK, l3.CHK_OK]
