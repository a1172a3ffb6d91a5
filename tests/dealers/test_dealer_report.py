"""The dealer scorecard page: self-contained, well-formed SVG, escaped, errors surface.

The log: two RFQs on a flat-then-rising mid (100 until t=60, then 100.20).
R1 t=10 BUY 1000 to "<b>" and "D&Co": "<b>" offers 100.05, "D&Co" 100.10; "<b>" trades.
R2 t=100 SELL 500 to "<b>" alone: it declines.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from dealers.report import render_scorecard_html, write_scorecard_report
from dealers.scorecard import Scorecard
from router.domain import (
    ChildId,
    DealerId,
    Quote,
    QuoteReceived,
    QuoteRejectReason,
    QuoteRequest,
    QuoteRequestRejected,
    QuoteResponseSent,
    QuoteRespType,
    RfqId,
    RfqRequested,
    RfqTraded,
    Side,
    Symbol,
)
from router.tca import PricePath

BOLD, AMP = DealerId("<b>"), DealerId("D&Co")
SVG_RE = re.compile(r"<svg\b.*?</svg>", re.S)


def ns(t_s: float) -> int:
    return round(t_s * 1e9)


def make_card() -> Scorecard:
    path = PricePath(np.array([0.0, 60.0]), np.array([99.5, 99.7]), np.array([100.5, 100.7]))
    r1 = QuoteRequest(RfqId("R1"), Symbol("XYZ"), Side.BUY, 1000, (BOLD, AMP), ns(5))
    r2 = QuoteRequest(RfqId("R2"), Symbol("XYZ"), Side.SELL, 500, (BOLD,), ns(5))
    log = [
        RfqRequested(ns(10), r1),
        QuoteReceived(ns(10.2), Quote("q1", r1.rfq_id, BOLD, 1000, None, 100.05, ns(10.2), ns(40))),
        QuoteReceived(ns(10.4), Quote("q2", r1.rfq_id, AMP, 1000, None, 100.10, ns(10.4), ns(40))),
        QuoteResponseSent(ns(11), r1.rfq_id, BOLD, QuoteRespType.HIT_LIFT, 1000, 100.05),
        RfqTraded(ns(11), r1.rfq_id, BOLD, ChildId("c1"), Side.BUY, 1000, 100.05),
        QuoteResponseSent(ns(11), r1.rfq_id, AMP, QuoteRespType.COVER, 1000, 100.10),
        RfqRequested(ns(100), r2),
        QuoteRequestRejected(ns(100.1), r2.rfq_id, BOLD, QuoteRejectReason.OTHER),
    ]
    card = Scorecard()
    card.add_day(log, path)
    return card


META = {"scenario": "calm <script>alert(1)</script>", "seed": "7", "rfqs": "2"}


def test_card_numbers_behind_the_page() -> None:
    rows = {r.dealer: r for r in make_card().rows()}
    # "<b>": asked 2, quoted 1, won 1 -> response 50 %, hit 100 %; 200 ms
    assert (rows["<b>"].rfqs, rows["<b>"].response_rate, rows["<b>"].hit_ratio) == (2, 0.5, 1.0)
    assert rows["<b>"].avg_response_ms == pytest.approx(200.0)
    # markout: mid(71) = 100.20: (100.20 - 100.05) / 100.05 = 14.99 bps
    assert rows["<b>"].markout_bps == pytest.approx(0.15 / 100.05 * 1e4)
    # "D&Co" lost a buy: mid 100 -> 100.20 at t=310: +20 bps leakage; cover 1 / 1 quote
    assert rows["D&Co"].leakage_bps == pytest.approx(20.0)
    assert rows["D&Co"].cover_rate == 1.0


def test_report_written_self_contained_and_escaped(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "scorecard"
    index = write_scorecard_report(out, make_card(), "Dealers <i>today</i>", META)
    assert index == out / "index.html"
    assert index.is_file()
    html = index.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "<svg" in html
    assert "http://" not in html and "https://" not in html
    assert "<link" not in html and "<script" not in html and "src=" not in html
    # names and meta are text, never markup
    assert "<b>" not in html and "&lt;b&gt;" in html
    assert "D&Co" not in html and "D&amp;Co" in html
    assert "<i>" not in html and "Dealers &lt;i&gt;today&lt;/i&gt;" in html
    assert "calm &lt;script&gt;alert(1)&lt;/script&gt;" in html
    # meta shown; a meta "rfqs" replaces the card's own "RFQs" fact
    assert "<dt>seed</dt><dd>7</dd>" in html
    assert "<dt>RFQs</dt>" not in html
    assert "<dt>trades</dt><dd>1</dd>" in html


def test_report_table_and_charts() -> None:
    html = render_scorecard_html(make_card(), "t", {})
    # the table: one row per dealer, "<b>" row with 50.0% response and 100.0% hit ratio
    bold_row = re.search(r"<tr><td>&lt;b&gt;</td>(.*?)</tr>", html)
    assert bold_row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", bold_row.group(1))
    assert cells[:7] == ["2", "1", "50.0%", "50.0%", "0", "1", "100.0%"]
    assert "<tr><td>D&amp;Co</td>" in html
    assert "<dt>RFQs</dt><dd>2</dd>" in html  # no meta: the card's own facts
    svgs = SVG_RE.findall(html)
    assert len(svgs) == 5
    for block in svgs:
        ET.fromstring(block)  # well-formed with the odd names inside
    for title in (
        "Response rate and hit ratio",
        "Price improvement and markout (bps)",
        "Leakage by dealer",
        "Leakage by panel size",
        "Average response time (ms)",
    ):
        assert title in html, title
    assert "1 dealer" in html and "2 dealers" in html  # panel sizes of R2 and R1


def test_empty_card_renders() -> None:
    html = render_scorecard_html(Scorecard(), "empty", {"scenario": "none"})
    assert "No RFQs in this log." in html
    assert "no data" in html  # the charts say so instead of failing


def test_unwritable_directory_raises_oserror(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.raises(OSError):
        write_scorecard_report(blocker, make_card(), "t", {})
    with pytest.raises(OSError):
        write_scorecard_report(blocker / "sub", make_card(), "t", {})
