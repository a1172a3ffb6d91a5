"""The SVG charts: nice ticks, time axes, gaps and empty data, escaping, geometry."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from router.svgplot import (
    PALETTE,
    Band,
    BarSeries,
    Points,
    RefLine,
    Series,
    area_radii,
    bar_chart,
    category_colors,
    esc,
    format_number,
    line_chart,
    nice_ticks,
    points_by_category,
    scatter_chart,
    stacked_hbar,
    tick_decimals,
    time_ticks,
    xy_chart,
)


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == "svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter("text")]


# ----------------------------------------------------------------------------- ticks


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (0, 100, [0, 20, 40, 60, 80, 100]),
        (0, 97, [0, 20, 40, 60, 80, 100]),
        (-37, 112, [-50, 0, 50, 100, 150]),
        (0.1, 0.35, [0.1, 0.15, 0.2, 0.25, 0.3, 0.35]),
        (99.23, 100.18, [99.2, 99.4, 99.6, 99.8, 100.0, 100.2]),
        (0, 1e6, [0, 200_000, 400_000, 600_000, 800_000, 1_000_000]),
    ],
)
def test_nice_ticks_known_ranges(lo, hi, expected):
    assert nice_ticks(lo, hi) == expected


def test_nice_ticks_cover_the_range_with_1_2_5_steps():
    rng = np.random.default_rng(3)
    for _ in range(500):
        lo = float(rng.normal(0, 10 ** rng.uniform(-3, 6)))
        hi = lo + float(10 ** rng.uniform(-4, 6))
        max_ticks = int(rng.integers(3, 10))
        ticks = nice_ticks(lo, hi, max_ticks)
        assert 2 <= len(ticks) <= max_ticks
        assert ticks[0] <= lo + 1e-9 * abs(lo) and ticks[-1] >= hi - 1e-9 * abs(hi)
        step = ticks[1] - ticks[0]
        mantissa = step / 10 ** math.floor(math.log10(step))
        assert min(abs(mantissa - m) for m in (1, 2, 5, 10)) < 1e-6
        # equal gaps, up to the float resolution of the tick values themselves
        assert np.allclose(np.diff(ticks), step, rtol=1e-9, atol=1e-13 * max(map(abs, ticks)))


def test_nice_ticks_degenerate_reversed_and_bad_input():
    assert nice_ticks(5, 5)[0] < 5 < nice_ticks(5, 5)[-1]
    assert nice_ticks(0, 0)[0] < 0 < nice_ticks(0, 0)[-1]
    assert nice_ticks(10, 0) == nice_ticks(0, 10)
    assert all(not (t == 0 and math.copysign(1, t) < 0) for t in nice_ticks(-1, 1))  # no -0.0
    with pytest.raises(ValueError, match="finite"):
        nice_ticks(0, math.nan)
    with pytest.raises(ValueError, match="max_ticks"):
        nice_ticks(0, 1, 2)
    assert len(nice_ticks(-1, 1e5, 3)) == 3  # straddles zero: needs three


def test_tick_labels():
    assert tick_decimals([0, 20, 40]) == 0
    assert tick_decimals([99.2, 99.4]) == 1
    assert tick_decimals([0.1, 0.15]) == 2
    assert format_number(1234567.891, 0) == "1,234,568"
    assert format_number(-0.0001, 2) == "0.00"  # never "-0.00"
    assert format_number(-2.5, 1) == "-2.5"


def test_time_ticks_in_whole_minutes_inside_the_range():
    assert time_ticks(0, 3 * 3600) == [m * 60.0 for m in range(0, 181, 30)]
    assert time_ticks(0, 600) == [m * 60.0 for m in (0, 2, 4, 6, 8, 10)]
    assert time_ticks(100, 3 * 3600)[0] == 30 * 60.0  # never before the range starts
    short = time_ticks(0, 90)  # 1.5 minutes: fractional-minute ticks
    assert short[0] == 0 and short[-1] <= 90 and len(short) >= 3
    with pytest.raises(ValueError):
        time_ticks(0, math.inf)


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
    assert esc(nasty) == "&lt;b&gt;&amp;&quot;&#x27;"
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
