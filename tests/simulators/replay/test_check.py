"""The reconstruction check (simulators/replay/check.py) on the hand-made capture."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.replay import l3
from simulators.replay.check import align_trades, check_reconstruction
from simulators.replay.events import DELETE, MODIFY
from simulators.replay.fake import (
    TINY_HANDLED,
    TINY_SKIPPED,
    TINY_TRADES,
    tiny_bitstamp_capture,
    tiny_source,
)

CONTRACT_KEYS = {
    "replay",
    "events",
    "applied",
    "skipped",
    "crossed_seconds",
    "trades",
    "trades_matched",
    "unmatched",
    "final_book",
}


@pytest.fixture
def tiny(tmp_path):
    return tiny_source(tiny_bitstamp_capture(tmp_path / "tiny")).load()


def test_each_trade_is_checked_at_its_makers_fill_event(tiny):
    checks, index = align_trades(tiny)
    ev = tiny.events
    assert (index >= 0).all()
    for j in range(len(tiny.trades)):
        i = int(checks.event[index[j]])
        assert ev.order[i] == tiny.trades.maker[j]
        assert ev.action[i] in (MODIFY, DELETE)
        assert ev.ts_ns[i] >= tiny.trades.ts_ns[j]
    assert np.all(np.diff(checks.event) >= 0)


def test_the_hand_made_capture_rebuilds_exactly(tiny):
    r = check_reconstruction(tiny)
    doc = r.to_json()
    assert set(doc) >= CONTRACT_KEYS
    assert (doc["trades"], doc["trades_matched"], doc["unmatched"]) == (
        TINY_TRADES,
        TINY_TRADES,
        [],
    )
    assert doc["skipped"] == TINY_SKIPPED
    assert doc["events"] == doc["applied"] + sum(doc["skipped"].values())
    assert {k: v for k, v in doc["handled"].items() if v} == TINY_HANDLED
    assert doc["crossed_seconds"] == 0.0
    assert doc["final_book"] == {
        "bids": [[103.5, 0.15], [102.5, 0.1], [100.0, 1.45], [99.0, 2.0]],
        "asks": [[104.0, 0.5]],
    }
    assert doc["end_state"]["in_both"] == 6
    assert doc["end_state"]["only_in_capture_why"] == {"outside_price_band": 1}
    assert doc["makers_at_queue_front"] == TINY_TRADES


def test_read_literally_the_stale_ask_is_best_and_two_trades_fail(tiny):
    r = check_reconstruction(tiny, literal=True)
    assert r.trades_matched == 3
    assert [(u.trade_id, u.reason) for u in r.unmatched] == [
        (9003, "price_not_best"),
        (9004, "price_not_best"),
    ]
    assert "best ask 102" in r.unmatched[0].detail
    assert r.crossed_seconds == pytest.approx(0.4)  # the bid at 102.5 over the ask at 102


def test_a_trade_whose_maker_never_shows_a_fill_is_unmatched_with_that_reason(tiny):
    # the maker of trade 9005 made to be another order, whose fill the feed never shows
    tr = tiny.trades
    maker = tr.maker.copy()
    maker[4] = tiny.events.order[2]  # order 103: resting, never changed or deleted
    other = type(tr)(**{**{f: getattr(tr, f) for f in tr.__slots__}, "maker": maker})
    cap = type(tiny)(**{**{f: getattr(tiny, f) for f in tiny.__slots__}, "trades": other})
    r = check_reconstruction(cap)
    assert [(u.trade_id, u.reason) for u in r.unmatched] == [(9005, "maker_fill_not_in_feed")]


def test_a_head_of_the_stream_checks_only_its_own_trades(tiny):
    r = check_reconstruction(tiny.head(17))  # through 1700 ms, the trades of 1300 ms
    assert (r.trades, r.trades_matched) == (2, 2)
    assert r.end_state is None
    assert l3.CHECK_REASONS[l3.CHK_NOT_REACHED] == "not_reached"
