from simulators import book
from simulators.fills import FillRouter


def _fill(fb, ts, price, qty, maker, taker, leaves=0):
    i = int(fb.n[0])
    fb.ts[i], fb.venue[i], fb.price[i], fb.qty[i] = ts, 0, price, qty
    fb.maker_owner[i], fb.maker_leaves[i], fb.taker_owner[i] = maker, leaves, taker
    fb.n[0] = i + 1


def test_each_client_side_of_a_fill_reaches_the_callback_in_buffer_order():
    router = FillRouter(book.new_fill_buffer(8))
    got = []
    router.callback = lambda *row: got.append(row)
    _fill(router.buffer, 5, 100, 30, maker=7, taker=0, leaves=70)
    _fill(router.buffer, 6, 101, 20, maker=7, taker=9)
    router.drain()
    assert got == [
        (7, 5, 0, 100, 30, True, 70),
        (7, 6, 0, 101, 20, True, 0),
        (9, 6, 0, 101, 20, False, 0),
    ]
    assert router.buffer.n[0] == 0


def test_the_taker_under_way_is_charged_what_it_paid_without_any_callback():
    router = FillRouter(book.new_fill_buffer(8))
    router.taker, router.taker_paid = 9, 0
    _fill(router.buffer, 1, 100, 30, maker=0, taker=9)
    _fill(router.buffer, 1, 102, 10, maker=0, taker=4)  # someone else's
    _fill(router.buffer, 1, 101, 20, maker=0, taker=9)
    router.drain()
    assert router.taker_paid == 100 * 30 + 101 * 20 and router.buffer.n[0] == 0
