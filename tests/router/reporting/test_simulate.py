"""The simulate report: self-contained, well-formed, robust to older documents, escaped."""

from __future__ import annotations

import copy
import math
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from router.reporting import render_simulate_html, write_simulate_report

from .samples import DARK, LIT, STRATEGIES, assert_self_contained, news_shock_doc, svgs


@pytest.fixture(scope="module")
def sim_doc() -> dict[str, Any]:
    return news_shock_doc()


def test_simulate_report_is_written_self_contained_and_well_formed(tmp_path, sim_doc):
    index = write_simulate_report(sim_doc, tmp_path / "new" / "dir")
    assert index == tmp_path / "new" / "dir" / "index.html"
    html = index.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert_self_contained(html)
    charts = svgs(html)
    # schedule, one price panel per strategy, IS bars, venue mix
    assert len(charts) == 1 + len(STRATEGIES) + 2
    assert "not available" not in html


def test_simulate_report_names_every_strategy_and_venue(sim_doc):
    html = render_simulate_html(sim_doc)
    for name in STRATEGIES:
        assert f"<td>{name}</td>" in html  # results table
        assert f">{name}</text>" in html  # chart titles, legends or axis labels
    for venue in (*LIT, *DARK, "DLR2"):
        assert f"<td>{venue}</td>" in html  # per-venue table
    sections = ("Schedule vs realised", "Price path with fills", "IS by strategy", "Venue mix")
    for section in (*sections, "Why did you send this there?"):
        assert f"<h2>{section}</h2>" in html


def test_simulate_report_plots_every_fill_and_the_hindsight_line(sim_doc):
    html = render_simulate_html(sim_doc)
    n_fills = sum(len(r["fills"]["t_s"]) for r in sim_doc["results"])
    assert html.count("<circle") >= n_fills  # legend dots come on top
    assert "hindsight schedule" in html
    assert "bid–ask" in html


def test_simulate_report_degrades_when_extras_are_missing(tmp_path, sim_doc):
    doc = copy.deepcopy(sim_doc)
    for key in ("path", "hindsight", "gap_captured"):
        del doc[key]
    for r in doc["results"]:
        for key in ("tca", "schedule", "fills", "decisions"):
            del r[key]
    html = write_simulate_report(doc, tmp_path).read_text(encoding="utf-8")
    assert "not available" in html
    svgs(html)
    for name in STRATEGIES:
        assert f"<td>{name}</td>" in html
    # venue mix falls back to lit/dark/rfq from the contract keys
    assert "Share of filled quantity by venue kind" in html


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.clear(),
        lambda d: d.update(results=None, parent="oops"),
        lambda d: d["results"][0].update(tca={"venues": {"LITA": None}}, is_bps="n/a"),
        lambda d: d["results"][1]["fills"].update(qty=[], price=[None]),
        lambda d: d["results"][2]["schedule"].update(target=None, filled=[math.nan]),
        lambda d: d.update(path={"t_s": [0.0, 1.0], "bid": [99.0], "ask": "x"}),
        lambda d: d["results"][3].update(decisions=[{"inputs": [1, 2], "alternatives": 3}]),
        lambda d: d["results"][4]["tca"].update(markouts_bps={"later": 1.0}),
        lambda d: d["parent"].update(qty=0, horizon_s=None),
    ],
    ids=str.split(
        "empty wrong-types bad-tca ragged-fills bad-schedule ragged-path bad-decisions "
        "odd-markout-key zero-qty"
    ),
)
def test_simulate_report_never_crashes_on_malformed_documents(sim_doc, mutate):
    doc = copy.deepcopy(sim_doc)
    mutate(doc)
    html = render_simulate_html(doc)
    assert "</html>" in html
    svgs(html)
    assert "could not be drawn" not in html  # handled by design, not by the safety net


def test_simulate_report_reads_the_nested_tca_layout(sim_doc):
    """router.tca's own JSON nests the decomposition and says fill_share and '60s'."""
    doc = copy.deepcopy(sim_doc)
    for r in doc["results"]:
        tca = r["tca"]
        tca["decomposition"] = {
            k: tca.pop(k)
            for k in ("spread_fees_bps", "impact_bps", "timing_bps", "opportunity_bps")
        }
        for stats in tca["venues"].values():
            stats["fill_share"] = stats.pop("share")
            stats["markouts_bps"] = {f"{k}s": v for k, v in stats["markouts_bps"].items()}
    html = render_simulate_html(doc)
    assert "Implementation shortfall and its parts" in html
    assert "markout 300 s" in html
    twap_lita = doc["results"][0]["tca"]["venues"]["LITA"]["fill_share"]
    assert f"{100 * twap_lita:.1f}%" in html


def test_text_from_the_document_is_escaped(sim_doc):
    doc = copy.deepcopy(sim_doc)
    doc["scenario"] = "<script>alert(1)</script>"
    doc["results"][0]["strategy"] = "<b>&"
    doc["results"][0]["fills"]["venue"][0] = 'V"1'
    html = render_simulate_html(doc)
    assert "<b>&" not in html and "<script>" not in html
    assert "&lt;b&gt;&amp;" in html
    assert "&lt;script&gt;" in html
    svgs(html)  # still well-formed XML with the odd names inside


def test_report_is_deterministic(sim_doc):
    assert render_simulate_html(sim_doc) == render_simulate_html(copy.deepcopy(sim_doc))


# ----------------------------------------------------------------------------- charts


def _titled(root: ET.Element, tag: str) -> list[tuple[str, ET.Element]]:
    """The elements of a kind that carry a tooltip, with its text (legend marks have none)."""
    return [(el.find("title").text, el) for el in root.iter(tag) if el.find("title") is not None]


def _tips(root: ET.Element, tag: str) -> list[str]:
    return [tip for tip, _ in _titled(root, tag)]


def test_simulate_charts_in_order_with_their_series(sim_doc):
    charts = svgs(render_simulate_html(sim_doc))
    assert [c.get("aria-label") for c in charts] == [
        "Cumulative filled vs target",
        *STRATEGIES,
        "Implementation shortfall and its parts (bps, positive = cost)",
        "Share of filled quantity by venue",
    ]
    schedule, *panels, is_chart, mix = charts
    # the schedule: a filled step line and a dashed target per strategy, one colour each
    lines = dict(_titled(schedule, "path"))
    assert set(lines) == {*STRATEGIES, *(f"{s} target" for s in STRATEGIES)}
    for name in STRATEGIES:
        assert lines[name].get("stroke") == lines[f"{name} target"].get("stroke")
        assert lines[f"{name} target"].get("stroke-dasharray")
    assert {"% of parent quantity", "time since start (min)", "100%"} <= set(texts(schedule))
    # the price panels: one dot per fill, the band and the mid, on shared scales
    for panel, r in zip(panels, sim_doc["results"], strict=True):
        assert len(_titled(panel, "circle")) == len(r["fills"]["t_s"])
        assert _tips(panel, "path") == ["bid–ask", "mid"]
        assert f"{len(r['fills']['t_s']):,} fills" in texts(panel)
    y_ticks = {
        tuple(t.text for t in p.iter("text") if t.get("text-anchor") == "end") for p in panels
    }
    assert len(y_ticks) == 1
    # IS: a bar per strategy and non-empty part, a total per strategy, the hindsight line
    parts = ("spread + fees", "impact", "timing", "opportunity")
    bars = [tip.split(":")[0] for tip in _tips(is_chart, "rect")]
    assert sorted(bars) == sorted(f"{s} · {p}" for s in STRATEGIES for p in parts)
    totals = [tip.split(":")[0] for tip in _tips(is_chart, "path")]
    assert totals == [f"{s} · IS (total)" for s in STRATEGIES]
    assert [t.split(" ")[:2] for t in _tips(is_chart, "line")] == [["hindsight", "schedule"]]
    # venue mix: a row per strategy, a segment per venue it used
    for r in sim_doc["results"]:
        name = r["strategy"]
        segments = {tip.split(":")[0] for tip in _tips(mix, "rect") if tip.startswith(name)}
        assert segments == {f"{name} · {venue}" for venue in r["fills"]["venue"]}


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter("text")]
