"""SVG drawing with ElementTree: the pieces every chart of `router.reporting.charts` is
made of, in the manner of python-chess's svg module.

A chart is an `ET.Element` tree: `svg_root` makes the root, `sub` adds a child whose
attributes go through `attributes` (numbers written as compact coordinates, None left
out, so optional attributes need no `if`s) and, given a `title`, a native tooltip (an
SVG ``<title>`` child: no JavaScript). `finish` serialises the tree into an `SvgChart`.
ElementTree escapes text and attribute values on serialisation, so names from user
input (strategies, venues, scenarios) cannot break the markup.

No ``xmlns`` attribute: inline SVG in HTML5 does not need one, and the reports must not
contain any ``http(s)://`` reference. No element ids either, so several charts can share
one page without clashes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from router.reporting.ticks import format_number, tick_decimals

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', Arial, sans-serif"


TEXT = "#1f2933"


MUTED = "#616e7c"


GRID = "#e4e7eb"


AXIS = "#9aa5b1"


WHITE = "#ffffff"  # also the halo that keeps a label readable over lines and bars


class SvgChart(str):
    """One serialised ``<svg>`` element, ready to be put inline in an HTML page.

    A notebook shows it as the chart itself (`_repr_html_`: inline SVG needs no
    namespace there either).
    """

    __slots__ = ()

    def _repr_html_(self) -> str:
        return str(self)


def coord(v: float) -> str:
    """A compact coordinate: one decimal, no trailing '.0'."""
    s = f"{v:.1f}"
    return s[:-2] if s.endswith(".0") else s


def attributes(attrs: Mapping[str, object]) -> dict[str, str]:
    """Attribute values as SVG text: numbers as compact coordinates, None left out (so
    optional attributes need no `if`s)."""
    out: dict[str, str] = {}
    for key, value in attrs.items():
        if value is None:
            continue
        out[key] = coord(value) if isinstance(value, int | float) else str(value)
    return out


def sub(
    parent: ET.Element, tag: str, attrs: Mapping[str, object], *, title: str | None = None
) -> ET.Element:
    """A child element; `title` adds the native tooltip (an SVG ``<title>`` child)."""
    el = ET.SubElement(parent, tag, attributes(attrs))
    if title is not None:
        ET.SubElement(el, "title").text = title
    return el


def svg_root(width: float, height: float, title: str) -> ET.Element:
    return ET.Element(
        "svg",
        attributes(
            {
                "class": "chart",
                "width": width,
                "height": height,
                "viewBox": f"0 0 {coord(width)} {coord(height)}",
                "role": "img",
                "aria-label": title,
                "font-family": FONT,
                "font-size": 12,
                "fill": TEXT,
            }
        ),
    )


def finish(root: ET.Element, height: float) -> SvgChart:
    """Serialise; `height` is final only once the legend has been laid out."""
    root.set("height", coord(height))
    root.set("viewBox", f"0 0 {root.get('width')} {coord(height)}")
    return SvgChart(ET.tostring(root, encoding="unicode"))


def text(
    parent: ET.Element,
    x: float,
    y: float,
    text: str,
    *,
    anchor: str = "start",
    size: float = 12,
    color: str = TEXT,
    weight: str = "normal",
    rotate: float = 0.0,
) -> None:
    el = sub(
        parent,
        "text",
        {
            "x": x,
            "y": y,
            "text-anchor": anchor,
            "font-size": size,
            "fill": color,
            "font-weight": weight if weight != "normal" else None,
            "transform": f"rotate({coord(rotate)} {coord(x)} {coord(y)})" if rotate else None,
        },
    )
    el.text = text


def line(
    parent: ET.Element, x1: float, y1: float, x2: float, y2: float, attrs: Mapping[str, object]
) -> ET.Element:
    return sub(parent, "line", {"x1": x1, "y1": y1, "x2": x2, "y2": y2, **attrs})


def text_width(text: str, size: float) -> float:
    """Rough rendered width of `text` in a sans-serif font; enough for layout decisions."""
    return len(text) * size * 0.6


@dataclass(frozen=True, slots=True)
class LegendItem:
    label: str
    color: str
    kind: str  # "line", "dash", "dot", "box", "diamond"


@dataclass(frozen=True, slots=True)
class Scale:
    """Linear map from a data domain [d0, d1] to pixels [r0, r1]."""

    d0: float
    d1: float
    r0: float
    r1: float

    def __call__(self, v: float) -> float:
        span = self.d1 - self.d0
        if span == 0:
            return (self.r0 + self.r1) / 2
        return self.r0 + (v - self.d0) / span * (self.r1 - self.r0)

    def clamped(self, v: float) -> float:
        lo, hi = min(self.r0, self.r1), max(self.r0, self.r1)
        return min(hi, max(lo, self(v)))


def header(root: ET.Element, title: str, note: str, left: float) -> float:
    """Title and optional note; returns the y below them."""
    text(root, left, 20, title, size=14, weight="600")
    if note:
        text(root, left, 37, note, size=11.5, color=MUTED)
        return 46.0
    return 30.0


def legend(
    root: ET.Element, items: Sequence[LegendItem], x0: float, y0: float, max_width: float
) -> float:
    """Legend entries flowing left to right, wrapping; returns the height used."""
    if not items:
        return 0.0
    x, y, line_h = x0, y0 + 10, 18.0
    for item in items:
        w = 22 + text_width(item.label, 12) + 16
        if x > x0 and x + w > x0 + max_width:
            x, y = x0, y + line_h
        if item.kind in ("line", "dash"):
            dash = "5 3" if item.kind == "dash" else None
            line(
                root,
                x,
                y,
                x + 18,
                y,
                {"stroke": item.color, "stroke-width": 2.5, "stroke-dasharray": dash},
            )
        elif item.kind == "dot":
            sub(root, "circle", {"cx": x + 9, "cy": y, "r": 4.5, "fill": item.color})
        elif item.kind == "diamond":
            sub(root, "path", {"d": diamond(x + 9, y, 5), "fill": item.color})
        else:
            sub(
                root,
                "rect",
                {
                    "x": x + 2,
                    "y": y - 6,
                    "width": 14,
                    "height": 12,
                    "rx": 2,
                    "fill": item.color,
                },
            )
        text(root, x + 22, y + 4, item.label)
        x += w
    return y - y0 + 10


def diamond(x: float, y: float, r: float) -> str:
    top, right, bottom, left = coord(y - r), coord(x + r), coord(y + r), coord(x - r)
    return f"M{coord(x)} {top}L{right} {coord(y)}L{coord(x)} {bottom}L{left} {coord(y)}Z"


def empty_chart(title: str, width: float, height: float, message: str = "no data") -> SvgChart:
    root = svg_root(width, height, title)
    text(root, 12, 20, title, size=14, weight="600")
    sub(
        root,
        "rect",
        {
            "x": 12,
            "y": 32,
            "width": width - 24,
            "height": height - 44,
            "fill": "#f5f7fa",
            "stroke": GRID,
        },
    )
    text(root, width / 2, height / 2 + 10, message, anchor="middle", color=MUTED)
    return finish(root, height)


def y_axis(
    root: ET.Element,
    ys: Scale,
    ticks: Sequence[float],
    left: float,
    right: float,
    suffix: str,
) -> None:
    """Horizontal grid lines with labels; the zero line is drawn darker."""
    decimals = tick_decimals(ticks)
    for t in ticks:
        y = ys(t)
        line(root, left, y, right, y, {"stroke": AXIS if t == 0 else GRID, "stroke-width": 1})
        text(root, left - 6, y + 4, format_number(t, decimals) + suffix, anchor="end")


def y_axis_label(root: ET.Element, label: str, top: float, bottom: float) -> None:
    if label:
        text(root, 14, (top + bottom) / 2, label, anchor="middle", rotate=-90)


def tick_label_width(ticks: Sequence[float], suffix: str) -> float:
    decimals = tick_decimals(ticks)
    return max(text_width(format_number(t, decimals) + suffix, 12) for t in ticks)


def error_bar(root: ET.Element, x: float, y_hi: float, y_lo: float, cap: float) -> None:
    """A vertical whisker from y_hi to y_lo with caps `cap` wide on each side."""
    d = (
        f"M{coord(x)} {coord(y_hi)}V{coord(y_lo)}M{coord(x - cap)} {coord(y_hi)}"
        f"H{coord(x + cap)}M{coord(x - cap)} {coord(y_lo)}H{coord(x + cap)}"
    )
    sub(root, "path", {"d": d, "stroke": TEXT, "stroke-width": 1.3, "fill": "none"})


def total_marker(
    root: ET.Element, x: float, y: float, tip: str, total: float, decimals: int, suffix: str
) -> None:
    """A stacked bar's total: a diamond with its value written beside it."""
    sub(
        root,
        "path",
        {"d": diamond(x, y, 6), "fill": TEXT, "stroke": WHITE, "stroke-width": 1},
        title=tip + format_number(total, decimals) + suffix,
    )
    label = sub(
        root,
        "text",
        {
            "x": x + 9,
            "y": y + 4,
            "font-size": 11,
            "font-weight": "600",
            "stroke": WHITE,
            "stroke-width": 3,
            "paint-order": "stroke",
        },
    )
    label.text = format_number(total, decimals)


def is_dark(color: str) -> bool:
    """Whether white text reads better than black on this '#rrggbb' fill."""
    if len(color) != 7 or not color.startswith("#"):
        return True
    try:
        r, g, b = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    except ValueError:
        return True
    return 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.5
