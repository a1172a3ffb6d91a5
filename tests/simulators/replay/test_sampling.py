"""The replayed book on a fixed clock, and the market report's document."""

import numpy as np
import pytest

from simulators.replay.fake import tiny_bitstamp_capture, tiny_source
from simulators.replay.pictures import market_document
from simulators.replay.sampling import PROFILE_BPS, sample_book


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_source(tiny_bitstamp_capture(tmp_path_factory.mktemp("tiny"))).load()


def test_the_tiny_book_every_100_ms(tiny):
    s = sample_book(tiny.events, len(tiny.order_ids))
    assert len(s) == 10  # 1100 to 2000 ms
    # ticks of 0.5: the market sell at 1300 takes the bid at 101; the stale ask goes at
    # 1600; the asks at 103 are taken at 1700; the rest of the bid at 103.5 rests at 1800
    assert s.spread.tolist() == [2, 2, 4, 4, 4, 1, 3, 1, 1, 1]
    assert s.bid.tolist()[:3] == [202, 202, 200]
    assert s.bid_touch[0] == 20  # the bid at 101: 0.2 in lots of 0.01
    assert s.ask_touch[0] == 30  # the (stale) ask at 102
    assert s.profile.shape == (2, PROFILE_BPS) and np.all(s.profile >= 0)


def test_a_sample_shows_the_book_after_its_millisecond_s_events(tiny):
    s = sample_book(tiny.events, len(tiny.order_ids), every_ms=300)
    assert s.t_ns.tolist() == [1_100_000_000, 1_400_000_000, 1_700_000_000, 2_000_000_000]
    assert s.spread.tolist() == [2, 4, 3, 1]


def test_the_market_document(tiny):
    doc = market_document(tiny)
    assert doc["kind"] == "market" and doc["replay"] == tiny.name
    assert doc["instrument"]["unit"] == "BTC"
    assert doc["path"]["t_s"] == [0.0]  # one point a second: under a second of capture
    assert doc["path"]["bid"] == [101.0] and doc["path"]["ask"] == [102.0]
    assert doc["trades"]["side"] == ["sell", "sell", "buy", "buy", "sell"]
    assert doc["trades"]["price"] == [101.0, 100.0, 103.0, 103.0, 103.5]
    assert len(doc["profile"]["bid"]) == PROFILE_BPS
