"""The Bitstamp adapter on hand-made captures (simulators/replay/fake.py): what it reads,
and the clear error for each kind of bad file."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from simulators.book import ASK, BID
from simulators.replay.errors import ReplayDataError
from simulators.replay.events import ADD, DELETE, MARKET, MODIFY, NO_PRICE
from simulators.replay.fake import tiny_bitstamp_capture, tiny_source, write_bitstamp_capture


@pytest.fixture
def tiny(tmp_path):
    return tiny_bitstamp_capture(tmp_path / "tiny")


def test_the_capture_is_read_into_ticks_lots_and_dense_ids(tiny):
    cap = tiny_source(tiny).load()
    inst = cap.instrument
    assert (inst.tick_size, inst.lot_size) == (0.5, 0.01)
    assert "greatest common divisor" in inst.how
    ev = cap.events
    assert (len(ev), ev.n_snapshot) == (7 + 23, 7)
    assert ev.price[0] == 200 and ev.qty[0] == 100  # 100.0 USD, 1.0 BTC
    assert ev.side[0] == BID and ev.side[3] == ASK
    assert ev.ts_ns[0] == 1000 * 1_000_000 and ev.recv_ns[0] == 1500 * 1_000_000
    assert cap.order_ids[ev.order].tolist()[:3] == [101, 102, 103]
    assert np.bincount(ev.action, minlength=4).tolist() == [14, 1, 7, 8]
    assert cap.notes["snapshot_receive_lag_ms"] == 500
    assert cap.notes["market_orders"] == 1
    assert cap.notes["numbers_in_exponent_notation"] == 0


def test_a_placeholder_price_makes_a_market_order(tiny):
    ev = tiny_source(tiny).load().events
    i = int(np.flatnonzero(ev.action == MARKET)[0])
    assert ev.price[i] == NO_PRICE and ev.side[i] == ASK and ev.qty[i] == 25


def test_the_synthetic_end_deletes_are_the_end_state_not_events(tiny):
    cap = tiny_source(tiny).load()
    assert cap.end_state is not None
    assert cap.order_ids[cap.end_state.order].tolist() == [101, 102, 103, 304, 306, 204, 305]
    assert cap.end_state.qty.tolist()[:2] == [95, 50]
    assert not (cap.events.ts_ns == 2100 * 1_000_000).any()


def test_trades_name_their_maker_and_taker(tiny):
    cap = tiny_source(tiny).load()
    t = cap.trades
    assert t.trade_id.tolist() == [9001, 9002, 9003, 9004, 9005]
    assert cap.order_ids[t.maker].tolist() == [301, 101, 202, 203, 306]
    assert cap.order_ids[t.taker].tolist() == [303, 303, 306, 306, 307]
    assert t.aggressor.tolist() == [ASK, ASK, BID, BID, ASK]
    assert t.price.tolist() == [202, 200, 206, 206, 207]


def test_head_keeps_the_snapshot_and_the_trades_before_the_cut(tiny):
    cap = tiny_source(tiny).load()
    head = cap.head(9)  # through the market sell's delete at 1300 ms
    assert len(head.events) == 16 and head.events.n_snapshot == 7
    assert head.trades.trade_id.tolist() == []  # 1300 ms is the cut's own millisecond
    assert head.end_state is None
    assert cap.head(100).end_state is not None


# ---------------------------------------------------------------------------- bad input


def rows(folder):
    with gzip.open(folder / "orders.csv.gz", "rt") as f:
        return f.read().splitlines()


def rewrite(folder, lines):
    with gzip.open(folder / "orders.csv.gz", "wt") as f:
        f.write("\n".join(lines) + "\n")


@pytest.mark.parametrize("name", ["orders.csv.gz", "trades.csv", "meta.json"])
def test_a_missing_file_is_named(tiny, name):
    (tiny / name).unlink()
    with pytest.raises(ReplayDataError, match=f"{name} is missing"):
        tiny_source(tiny).load()


def test_a_file_cut_inside_its_compression_is_truncated(tiny):
    path = tiny / "orders.csv.gz"
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(ReplayDataError, match="truncated"):
        tiny_source(tiny).load()


def test_a_file_cut_at_a_line_disagrees_with_meta(tiny):
    rewrite(tiny, rows(tiny)[:-3])
    with pytest.raises(ReplayDataError, match=r"rows where meta\.json says"):
        tiny_source(tiny).load()


def test_a_cut_line_is_named(tiny):
    lines = rows(tiny)
    lines[12] = lines[12].rsplit(",", 2)[0]
    rewrite(tiny, lines)
    with pytest.raises(ReplayDataError, match="line 13: 5 fields, expected 7"):
        tiny_source(tiny).load()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (3, "1O1.0", "not a decimal number"),
        (0, "x1", "invalid literal"),
        (5, "amended", "unknown action"),
        (6, "buy", "unknown action or direction"),
    ],
)
def test_a_malformed_field_is_named_with_its_line(tiny, field, value, message):
    lines = rows(tiny)
    cells = lines[9].split(",")
    cells[field] = value
    lines[9] = ",".join(cells)
    rewrite(tiny, lines)
    with pytest.raises(ReplayDataError, match=f"line 10: .*{message}"):
        tiny_source(tiny).load()


def test_an_exchange_clock_going_backwards_is_an_error(tiny):
    lines = rows(tiny)
    cells = lines[12].split(",")
    cells[2] = "1050"
    lines[12] = ",".join(cells)
    rewrite(tiny, lines)
    with pytest.raises(ReplayDataError, match="line 13: the exchange clock goes backwards"):
        tiny_source(tiny).load()


def test_another_header_is_refused(tiny):
    lines = rows(tiny)
    lines[0] = lines[0].replace("volume", "amount")
    rewrite(tiny, lines)
    with pytest.raises(ReplayDataError, match="header"):
        tiny_source(tiny).load()


def test_meta_counts_must_fit_the_rows(tiny):
    meta = json.loads((tiny / "meta.json").read_text())
    meta["synthetic_created"] = 10  # the 10th row is a live delete
    (tiny / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ReplayDataError, match="snapshot"):
        tiny_source(tiny).load()
    del meta["trades"]
    (tiny / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ReplayDataError, match="'trades' missing"):
        tiny_source(tiny).load()


def test_a_trade_count_off_meta_is_an_error(tiny):
    lines = (tiny / "trades.csv").read_text().splitlines()
    (tiny / "trades.csv").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ReplayDataError, match=r"trades\.csv: 4 trades"):
        tiny_source(tiny).load()


def test_an_empty_capture_loads_as_an_empty_stream(tmp_path):
    cap = tiny_source(write_bitstamp_capture(tmp_path, [], [], [], [])).load()
    assert len(cap.events) == 0 and len(cap.trades) == 0


def test_actions_map_to_the_normal_form(tmp_path):
    snap = [(1, 10, 5, "10.0", "1.0", "created", "bid")]
    live = [
        (1, 20, 15, "10.0", "0.5", "changed", "bid"),
        (2, 21, 16, "999999999.0", "0.0", "created", "bid"),  # a market buy sized in USD
        (1, 22, 17, "10.0", "0.0", "deleted", "bid"),
    ]
    ev = tiny_source(write_bitstamp_capture(tmp_path, snap, live, [], [])).load().events
    assert ev.action.tolist() == [ADD, MODIFY, MARKET, DELETE]
    assert ev.qty.tolist() == [2, 1, 0, 0]  # lot 0.5
