"""The drawing pieces: attributes, tooltips, serialisation, escaping by ElementTree."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from router.reporting import svg


def test_attributes_write_compact_numbers_and_leave_out_none():
    assert svg.attributes({"x": 12.0, "y": 3.25, "r": 2, "dash": None, "fill": "#fff"}) == {
        "x": "12",
        "y": "3.2",
        "r": "2",
        "fill": "#fff",
    }
    assert svg.coord(1234.56) == "1234.6" and svg.coord(7.0) == "7"


def test_a_tree_serialises_to_one_escaped_svg_element():
    root = svg.svg_root(100, 50, 'a "title"')
    svg.sub(root, "rect", {"x": 1, "y": 2, "width": 3, "height": 4}, title="<b>&")
    svg.text(root, 5, 6, "x < y", anchor="end", rotate=-90)
    chart = svg.finish(root, 80)  # the height a crowded legend grew to
    assert isinstance(chart, str) and chart.startswith("<svg ") and chart.endswith("</svg>")
    assert "<b>" not in chart and "x < y" not in chart
    parsed = ET.fromstring(chart)
    assert (parsed.get("height"), parsed.get("viewBox")) == ("80", "0 0 100 80")
    assert parsed.get("aria-label") == 'a "title"'
    rect, label = parsed
    assert rect.find("title").text == "<b>&"
    assert (label.text, label.get("text-anchor")) == ("x < y", "end")
    assert label.get("transform") == "rotate(-90 5 6)"
    assert label.get("font-weight") is None  # normal weight: no attribute


def test_empty_chart_says_no_data_under_its_title():
    root = ET.fromstring(svg.empty_chart("nothing", 300, 120))
    assert [t.text for t in root.iter("text")] == ["nothing", "no data"]
    assert root.find("rect").get("width") == "276"


def test_ink_on_dark_and_light_fills():
    assert svg.is_dark("#0072B2") and not svg.is_dark("#F0E442")
    assert svg.is_dark("navy")  # not #rrggbb: white ink, the safe side
