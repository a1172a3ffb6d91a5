"""The SVG charts: time axes, gaps and empty data, escaping, geometry."""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET

import pytest

from router.reporting.charts import (
    PALETTE,
    Band,
    BarSeries,
    Points,
    RefLine,
    Series,
    area_radii,
    bar_chart,
    category_colors,
    line_chart,
    points_by_category,
    scatter_chart,
    stacked_hbar,
    xy_chart,
)
from router.reporting.svg import SvgChart


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == "svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter("text")]


def test_time_axis_labels_are_minutes():
    svg = line_chart([Series("a", [0, 10800], [0, 1])], title="t", time_axis=True)
    labels = texts(parse(svg))
    for minute in ("0", "30", "90", "180"):
        assert minute in labels
    assert "10,800" not in labels


# ----------------------------------------------------------------------------- x-y charts


def test_line_chart_draws_each_series_and_breaks_at_gaps():
    svg = line_chart(
        [Series("one", [0, 1, 2, 3, 4], [1, 2, None, 4, 5]), Series("two", [0, 4], [0, 3])],
        title="lines",
        x_label="x",
        y_label="y",
    )
    root = parse(svg)
    paths = [p for p in root.iter("path") if p.get("fill") == "none"]
    assert len(paths) == 3  # 'one' is split by its gap
    assert {"one", "two", "lines", "x", "y"} <= set(texts(root))


def test_step_series_holds_values_until_the_next_point():
    svg = line_chart([Series("s", [0, 10], [0, 10], step=True)], title="s")
    d = next(p for p in parse(svg).iter("path") if p.get("fill") == "none").get("d")
    points = [tuple(map(float, seg.split())) for seg in d.lstrip("M").split("L")]
    assert len(points) == 3
    (_, y0), (x1, y1), (x2, y2) = points
    assert y1 == y0 and x1 == x2 and y2 < y1  # flat, then up


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"series": [Series("empty", [], [])]},
        {"series": [Series("nones", [None, None], [None, 1.0])]},
        {"series": [Series("nan", [0.0, 1.0], [math.nan, math.inf])]},
        {"points": [Points("p", [], [])]},
    ],
)
def test_charts_without_data_say_so(kwargs):
    root = parse(xy_chart(title="nothing", **kwargs))
    assert "no data" in texts(root)


def test_single_point_and_flat_series_still_draw():
    root = parse(
        line_chart([Series("one", [5.0], [3.0]), Series("flat", [0, 9], [3, 3])], title="x")
    )
    assert "no data" not in texts(root)


def test_xy_chart_with_band_points_and_reference():
    svg = xy_chart(
        title="price",
        bands=[Band("bid–ask", [0, 60, 120], [99.9, 99.8, 99.7], [100.1, 100.0, 99.9])],
        series=[Series("mid", [0, 60, 120], [100.0, 99.9, 99.8])],
        points=[Points("LITA", [30, 90], [99.95, 99.75], r=[2, 6], labels=["a", "b"])],
        ref_lines=[RefLine(100.0, "arrival mid")],
        time_axis=True,
    )
    root = parse(svg)
    assert {"arrival mid", "LITA", "bid–ask", "mid"} <= set(texts(root))
    circles = [c for c in root.iter("circle") if c.find("title") is not None]
    assert [c.find("title").text for c in circles] == ["a", "b"]
    assert [float(c.get("r")) for c in circles] == [2, 6]


def test_points_outside_a_given_domain_are_left_out():
    svg = xy_chart(
        title="d",
        points=[Points("p", [0, 5, 50], [1, 1, 1])],
        x_domain=(0, 10),
        y_domain=(0, 2),
    )
    assert len([c for c in parse(svg).iter("circle") if c.find("title") is not None]) == 2


def test_scatter_colours_by_category_consistently():
    colors = {"B": "#111111", "A": "#222222"}
    svg = scatter_chart(
        [0, 1, 2], [1, 2, 3], ["A", "B", "A"], title="s", sizes=[1, 4, 1], colors=colors
    )
    root = parse(svg)
    fills = {
        c.find("title").text: c.get("fill")
        for c in root.iter("circle")
        if c.find("title") is not None
    }
    assert fills == {"A": "#222222", "B": "#111111"}
    layers = points_by_category([0, 1, 2], [1, 2, 3], ["A", "B", "A"], colors=colors)
    assert [p.name for p in layers] == ["B", "A"]  # the order of `colors`, for every panel alike
    assert layers[1].x == [0, 2]


def test_area_radii_encode_quantity_by_area():
    r = area_radii([100, 400, 0, None], r_max=10, r_min=1)
    assert r[1] == pytest.approx(10) and r[0] == pytest.approx(5)  # a quarter of the area
    assert r[2] == r[3] == 1
    shared = area_radii([100], v_max=400, r_max=10)
    assert shared == [pytest.approx(5)]


def test_category_colors_stable_and_cycling():
    names = [f"v{i}" for i in range(len(PALETTE) + 1)]
    colors = category_colors([*names, "v0"])
    assert list(colors) == names
    assert colors["v0"] == PALETTE[0] == colors[names[-1]]


# ----------------------------------------------------------------------------- bars


def _rects(root: ET.Element) -> dict[str, ET.Element]:
    return {r.find("title").text: r for r in root.iter("rect") if r.find("title") is not None}


def test_grouped_bars_with_error_bars_and_reference_line():
    svg = bar_chart(
        ["calm", "news"],
        [BarSeries("twap", [5, 30], [1, 3]), BarSeries("ml", [3, None], [1, None])],
        title="IS",
        ref_lines=[RefLine(10, "hindsight")],
    )
    root = parse(svg)
    rects = _rects(root)
    assert set(rects) == {
        "calm · twap: 5.0 ± 1.0",
        "news · twap: 30.0 ± 3.0",
        "calm · ml: 3.0 ± 1.0",
    }
    caps = [p for p in root.iter("path") if p.get("stroke-width") == "1.3"]
    assert len(caps) == 3
    assert "hindsight" in texts(root)  # in the legend, not over the bars
    # taller value, taller bar
    h = {k.split(":")[0]: float(r.get("height")) for k, r in rects.items()}
    assert h["news · twap"] > h["calm · twap"] > h["calm · ml"]


def test_stacked_bars_diverge_from_zero_and_mark_totals():
    svg = bar_chart(
        ["s"],
        [BarSeries("cost", [10.0]), BarSeries("gain", [-4.0]), BarSeries("more", [5.0])],
        title="parts",
        stacked=True,
        totals=[11.0],
    )
    root = parse(svg)
    rects = {k.split(":")[0]: r for k, r in _rects(root).items()}
    top = {k: float(r.get("y")) for k, r in rects.items()}
    bottom = {k: float(r.get("y")) + float(r.get("height")) for k, r in rects.items()}
    zero = bottom["s · cost"]
    assert top["s · gain"] == pytest.approx(zero, abs=0.2)  # the gain hangs below zero
    assert bottom["s · more"] == pytest.approx(top["s · cost"], abs=0.2)  # stacked on top
    assert "11.0" in texts(root)


def test_bar_chart_without_data():
    assert "no data" in texts(parse(bar_chart([], [], title="x")))
    assert "no data" in texts(parse(bar_chart(["a"], [BarSeries("s", [None])], title="x")))


def test_stacked_hbar_segments_proportional_and_labelled():
    svg = stacked_hbar(
        ["twap", "ml"],
        [BarSeries("LITA", [75, 20]), BarSeries("DARKX", [25, 80])],
        title="mix",
        x_max=100,
        x_suffix="%",
    )
    root = parse(svg)
    rects = {k.split(":")[0]: float(r.get("width")) for k, r in _rects(root).items()}
    assert rects["twap · LITA"] == pytest.approx(3 * rects["twap · DARKX"], rel=0.02)
    assert {"75%", "80%", "twap", "ml"} <= set(texts(root))


def test_stacked_hbar_without_data():
    assert "no data" in texts(parse(stacked_hbar(["a"], [BarSeries("x", [0.0])], title="x")))
    assert "no data" in texts(parse(stacked_hbar([], [], title="x")))


# ----------------------------------------------------------------------------- escaping


def test_all_text_is_escaped():
    nasty = "<b>&\"'"
    charts = [
        line_chart([Series(nasty, [0, 1], [0, 1])], title=nasty, x_label=nasty, y_label=nasty),
        bar_chart(
            [nasty], [BarSeries(nasty, [1.0], [0.5])], title=nasty, ref_lines=[RefLine(1, nasty)]
        ),
        stacked_hbar([nasty], [BarSeries(nasty, [1.0])], title=nasty),
        scatter_chart([0], [0], [nasty], title=nasty),
        xy_chart(title=nasty),
    ]
    for svg in charts:
        assert "<b>" not in svg
        root = parse(svg)
        assert nasty in texts(root) or root.get("aria-label") == nasty
        assert "http" not in svg  # no namespace URL, nothing to fetch


# ----------------------------------------------------------------------------- structure


def _y(el: ET.Element) -> float:
    return float(el.get("y"))


def _x(el: ET.Element) -> float:
    return float(el.get("x"))


def test_a_chart_is_one_svg_element_in_a_str():
    chart = line_chart([Series("a", [0, 1], [0, 1])], title="t")
    assert isinstance(chart, SvgChart) and isinstance(chart, str)
    assert chart._repr_html_() == chart  # a notebook shows the chart itself
    root = parse(chart)
    assert root.get("class") == "chart" and root.get("role") == "img"
    assert root.get("aria-label") == "t"
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    assert not [el for el in root.iter() if "id" in el.attrib or "xmlns" in el.attrib]


def test_xy_chart_axes_series_legend_and_labels():
    chart = xy_chart(
        title="price",
        note="a note",
        bands=[Band("bid–ask", [0, 1800, 3600], [99.9, 99.8, 99.7], [100.1, 100.0, 99.9])],
        series=[
            Series("mid", [0, 1800, 3600], [100.0, 99.9, 99.8], color="#111111"),
            Series("plan", [0, 3600], [100.0, 99.9], dash=True),
        ],
        points=[Points("fills", [900, 2700], [99.95, 99.75], labels=["a", "b"])],
        ref_lines=[RefLine(100.05, "arrival")],
        x_label="minutes",
        y_label="price",
        time_axis=True,
    )
    root = parse(chart)
    text = root.findall("text")
    # header: the title in bold, then the note
    assert (text[0].text, text[0].get("font-weight")) == ("price", "600")
    assert text[1].text == "a note"
    # legend: every series, band and points layer, in that order
    labels = [t.text for t in text]
    legend = [labels.index(name) for name in ("mid", "plan", "bid–ask", "fills")]
    assert legend == sorted(legend)
    # y axis: one grid line per tick label, values rising as the labels go up the page
    y_ticks = [t for t in text if t.get("text-anchor") == "end" and t.get("stroke") is None]
    values = [float(t.text.replace(",", "")) for t in y_ticks]
    assert values == sorted(values) and len(values) >= 3
    assert [_y(t) for t in y_ticks] == sorted((_y(t) for t in y_ticks), reverse=True)
    grid = [ln for ln in root.findall("line") if ln.get("x1") != ln.get("x2")]
    assert len(grid) >= len(y_ticks) + 1  # the grid, the x axis and the reference line
    # x axis: minute labels under the plot, left to right, and the axis names
    x_ticks = [
        t
        for t in text
        if t.get("text-anchor") == "middle" and not t.get("transform") and t.text != "minutes"
    ]
    assert [t.text for t in x_ticks] == ["0", "10", "20", "30", "40", "50", "60"]
    assert [_x(t) for t in x_ticks] == sorted(_x(t) for t in x_ticks)
    y_name = next(t for t in text if t.text == "price" and t.get("transform"))
    assert y_name.get("transform").startswith("rotate(-90 ")
    assert any(t.text == "minutes" for t in text)
    # series: a path each, named by its tooltip, in its colour, the plan dashed
    lines = {p.find("title").text: p for p in root.findall("path") if p.get("fill") == "none"}
    assert set(lines) == {"mid", "plan"}
    assert lines["mid"].get("stroke") == "#111111"
    assert lines["plan"].get("stroke-dasharray") and not lines["mid"].get("stroke-dasharray")
    assert lines["mid"].get("d").count("L") == 2
    band = next(p for p in root.findall("path") if p.get("fill-opacity"))
    assert band.find("title").text == "bid–ask"
    dots = [c.find("title").text for c in root.findall("circle") if c.find("title") is not None]
    assert dots == ["a", "b"]
    ref = next(ln for ln in root.findall("line") if ln.find("title") is not None)
    assert ref.find("title").text == "arrival" and ref.get("stroke-dasharray")
    assert "arrival" in labels  # written at the line's end as well


def test_grouped_bars_sit_on_their_category_labels():
    chart = bar_chart(
        ["calm", "news", "squeeze"],
        [BarSeries("twap", [5, 30, 12]), BarSeries("ml", [3, 20, -4])],
        title="IS",
        y_label="bps",
    )
    root = parse(chart)
    rects = _rects(root)
    assert len(rects) == 6
    categories = [t for t in root.findall("text") if t.text in ("calm", "news", "squeeze")]
    assert [t.text for t in categories] == ["calm", "news", "squeeze"]
    for label in categories:
        bars = [r for tip, r in rects.items() if tip.startswith(f"{label.text} · ")]
        left = min(_x(r) for r in bars)
        right = max(_x(r) + float(r.get("width")) for r in bars)
        assert left < _x(label) < right  # the label is centred under its group
        twap, ml = sorted(bars, key=_x)
        assert twap.get("fill") != ml.get("fill")
    # two series: a legend box and label each
    assert {"twap", "ml"} <= set(texts(root))
    # the negative bar hangs from the zero line, which is drawn darker than the grid
    zero = next(t for t in root.findall("text") if t.text == "0" and t.get("text-anchor") == "end")
    zero_line = next(
        ln for ln in root.findall("line") if abs(_y(zero) - 4 - float(ln.get("y1"))) < 0.2
    )
    neg = rects["squeeze · ml: -4.0"]
    assert _y(neg) == pytest.approx(float(zero_line.get("y1")), abs=0.2)
    assert zero_line.get("stroke") == "#9aa5b1"


def test_stacked_hbar_rows_are_contiguous_segments():
    chart = stacked_hbar(
        ["twap", "ml"],
        [BarSeries("LITA", [50, 20]), BarSeries("DARKX", [30, 30]), BarSeries("DLR", [20, 50])],
        title="mix",
        x_max=100,
        x_suffix="%",
    )
    root = parse(chart)
    rows = [t for t in root.findall("text") if t.text in ("twap", "ml")]
    assert [t.get("text-anchor") for t in rows] == ["end", "end"]
    assert _y(rows[0]) < _y(rows[1])
    for row in ("twap", "ml"):
        parts = sorted((r for tip, r in _rects(root).items() if tip.startswith(row)), key=_x)
        assert len(parts) == 3
        for a, b in itertools.pairwise(parts):
            assert _x(a) + float(a.get("width")) == pytest.approx(_x(b), abs=0.2)
        assert len({r.get("y") for r in parts}) == 1
    ticks = [t.text for t in root.findall("text") if (t.text or "").endswith("%")]
    assert ticks[:6] == ["0%", "20%", "40%", "60%", "80%", "100%"]
