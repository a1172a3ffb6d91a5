"""The market report: self-contained, well-formed, its charts there, robust to a
document with parts missing."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest

from router.reporting import write_report
from router.reporting.market import render_market_html, write_market_report
from router.reporting.rebuild import main

from .samples import assert_self_contained, svgs

TITLES = (
    "Mid and trade prints",
    "Spread",
    "Depth within 10 bps of the mid",
    "Size at the best bid and the best ask",
    "Depth profile: mean size resting by distance from the mid",
)


def market_doc(n: int = 240) -> dict[str, Any]:
    """Four minutes of a BTC book, one point a second, with six trades."""
    mid = [78_000 + 20 * math.sin(i / 30) for i in range(n)]
    return {
        "kind": "market",
        "replay": "bitstamp-btcusd",
        "instrument": {
            "symbol": "BTC/USD",
            "currency": "USD",
            "unit": "BTC",
            "tick_size": 1.0,
            "lot_size": 1e-8,
        },
        "start_ns": 1_777_689_381_262_000_000,
        "duration_s": float(n),
        "events": 40_000,
        "sample_ms": 100,
        "path": {
            "t_s": [float(i) for i in range(n)],
            "bid": [round(m - 0.5) for m in mid],
            "ask": [round(m - 0.5) + 1 for m in mid],
            "bid_touch": [0.3] * n,
            "ask_touch": [0.25] * n,
            "bid_band": [20.0] * n,
            "ask_band": [21.0] * (n - 1) + [None],
        },
        "band_bps": 10.0,
        "profile": {"bps": list(range(25)), "bid": [2.0] * 25, "ask": [1.5] * 25},
        "trades": {
            "t_s": [10.0, 50.0, 90.0, 130.0, 170.0, 210.0],
            "price": [78_001.0, 78_010.0, 78_019.0, 78_015.0, 78_004.0, 77_990.0],
            "qty": [0.01, 0.5, 0.002, 1.2, 0.03, 0.1],
            "side": ["buy", "sell", "buy", "buy", "sell", "sell"],
        },
    }


def test_the_report_is_self_contained_and_well_formed(tmp_path):
    index = write_market_report(market_doc(), tmp_path / "new" / "dir")
    html = index.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert_self_contained(html)
    assert not re.search(r"<script\b", html, re.I)
    charts = svgs(html)  # each chart parses as XML
    titles = [c.get("aria-label") for c in charts]
    assert titles == list(TITLES)
    assert "not available" not in html and "could not be drawn" not in html


def test_the_report_shows_the_trades_by_side_and_the_facts():
    html = render_market_html(market_doc())
    assert ">buy</text>" in html and ">sell</text>" in html  # the prints' legend
    assert "buy 1.2 BTC @ 78,015.00, t = 2:10" in html  # a print's hover text
    assert "bitstamp-btcusd" in html and "BTC/USD" in html
    assert "<dd>6</dd>" in html  # trades


def test_a_document_with_parts_missing_still_renders():
    doc = market_doc()
    del doc["profile"]
    doc["trades"] = {}
    html = render_market_html(doc)
    assert "Depth: could not be drawn" in html
    assert "0 trades" in html


def test_a_saved_document_rebuilds_the_same_page(tmp_path, capsys):
    saved = tmp_path / "market.json"
    saved.write_text(json.dumps(market_doc()))
    assert main([str(saved), str(tmp_path / "out")]) == 0
    rebuilt = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert rebuilt == render_market_html(json.loads(saved.read_text()))
    with pytest.raises(ValueError, match="market"):
        write_report({"kind": "other"}, tmp_path / "x")
