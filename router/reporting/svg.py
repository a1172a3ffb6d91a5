"""Small, dependency-free SVG charts for the self-contained HTML reports.

matplotlib is deliberately not a dependency: the reports need a handful of chart kinds
(lines and steps with bands, scatter coloured by category, grouped or stacked bars with
error bars, stacked horizontal bars), drawn as inline SVG so that one HTML file carries
everything. Each chart is built as an `xml.etree.ElementTree` tree and returned
serialised, as an `SvgChart` (a `str` holding one ``<svg>`` element).

Conventions:
- Text and attribute values are escaped by ElementTree on serialisation, so names from
  user input (strategies, venues, scenarios) cannot break the markup.
- No ``xmlns`` attribute: inline SVG in HTML5 does not need one, and the reports must not
  contain any ``http(s)://`` reference. No element ids either, so several charts can share
  one page without clashes.
- Missing values (``None``, NaN, infinities) are gaps, never errors; a chart with no data
  at all renders a titled "no data" panel.
- Hover text uses SVG ``<title>`` children (native tooltips, no JavaScript).
- The palette is Okabe-Ito (distinguishable with the common colour-vision deficiencies).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from router.reporting.ticks import (
    format_number,
    nice_ticks,
    tick_decimals,
    time_label,
    time_ticks,
)

#: Okabe-Ito, black left out (kept for axes and markers) and yellow last (weak on white).
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
)

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', Arial, sans-serif"
_TEXT = "#1f2933"
_MUTED = "#616e7c"
_GRID = "#e4e7eb"
_AXIS = "#9aa5b1"
_WHITE = "#ffffff"  # also the halo that keeps a label readable over lines and bars

Values = Sequence[float | None]

#: At most this many value ticks: enough resolution, still room for the labels.
_Y_TICKS = 7


class SvgChart(str):
    """One serialised ``<svg>`` element, ready to be put inline in an HTML page.

    A notebook shows it as the chart itself (`_repr_html_`: inline SVG needs no
    namespace there either).
    """

    __slots__ = ()

    def _repr_html_(self) -> str:
        return str(self)


# ----------------------------------------------------------------------------- elements


def _c(v: float) -> str:
    """A compact coordinate: one decimal, no trailing '.0'."""
    s = f"{v:.1f}"
    return s[:-2] if s.endswith(".0") else s


def _attrs(attrs: Mapping[str, object]) -> dict[str, str]:
    """Attribute values as SVG text: numbers as compact coordinates, None left out (so
    optional attributes need no `if`s)."""
    out: dict[str, str] = {}
    for key, value in attrs.items():
        if value is None:
            continue
        out[key] = _c(value) if isinstance(value, int | float) else str(value)
    return out


def _sub(
    parent: ET.Element, tag: str, attrs: Mapping[str, object], *, title: str | None = None
) -> ET.Element:
    """A child element; `title` adds the native tooltip (an SVG ``<title>`` child)."""
    el = ET.SubElement(parent, tag, _attrs(attrs))
    if title is not None:
        ET.SubElement(el, "title").text = title
    return el


def _svg(width: float, height: float, title: str) -> ET.Element:
    return ET.Element(
        "svg",
        _attrs(
            {
                "class": "chart",
                "width": width,
                "height": height,
                "viewBox": f"0 0 {_c(width)} {_c(height)}",
                "role": "img",
                "aria-label": title,
                "font-family": FONT,
                "font-size": 12,
                "fill": _TEXT,
            }
        ),
    )


def _finish(root: ET.Element, height: float) -> SvgChart:
    """Serialise; `height` is final only once the legend has been laid out."""
    root.set("height", _c(height))
    root.set("viewBox", f"0 0 {root.get('width')} {_c(height)}")
    return SvgChart(ET.tostring(root, encoding="unicode"))


def _text(
    parent: ET.Element,
    x: float,
    y: float,
    text: str,
    *,
    anchor: str = "start",
    size: float = 12,
    color: str = _TEXT,
    weight: str = "normal",
    rotate: float = 0.0,
) -> None:
    el = _sub(
        parent,
        "text",
        {
            "x": x,
            "y": y,
            "text-anchor": anchor,
            "font-size": size,
            "fill": color,
            "font-weight": weight if weight != "normal" else None,
            "transform": f"rotate({_c(rotate)} {_c(x)} {_c(y)})" if rotate else None,
        },
    )
    el.text = text


def _line(
    parent: ET.Element, x1: float, y1: float, x2: float, y2: float, attrs: Mapping[str, object]
) -> ET.Element:
    return _sub(parent, "line", {"x1": x1, "y1": y1, "x2": x2, "y2": y2, **attrs})


def _text_width(text: str, size: float) -> float:
    """Rough rendered width of `text` in a sans-serif font; enough for layout decisions."""
    return len(text) * size * 0.6


def _finite(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


# ----------------------------------------------------------------------------- data types


@dataclass(frozen=True, slots=True)
class Series:
    """A line (or step line) through (x, y); `None` values break it into pieces."""

    name: str
    x: Values
    y: Values
    color: str | None = None
    dash: bool = False
    step: bool = False  # hold each value until the next x (cumulative quantities)
    width: float = 2.0
    in_legend: bool = True


@dataclass(frozen=True, slots=True)
class Band:
    """A shaded area between `lo` and `hi` (e.g. the bid-ask spread)."""

    name: str
    x: Values
    lo: Values
    hi: Values
    color: str = "#9aa5b1"
    opacity: float = 0.35


@dataclass(frozen=True, slots=True)
class Points:
    """Dots of one category; `r` is one radius for all or one per point."""

    name: str
    x: Values
    y: Values
    r: float | Sequence[float] = 3.0
    color: str | None = None
    labels: Sequence[str] | None = None  # hover text, one per point


@dataclass(frozen=True, slots=True)
class RefLine:
    """A labelled horizontal reference line (a benchmark, a bound)."""

    value: float
    label: str
    color: str = "#323f4b"
    dash: bool = True


@dataclass(frozen=True, slots=True)
class BarSeries:
    """One value per category (and optionally a symmetric error, e.g. one stderr)."""

    name: str
    values: Values
    errors: Values | None = None
    color: str | None = None


@dataclass(frozen=True, slots=True)
class _LegendItem:
    label: str
    color: str
    kind: str  # "line", "dash", "dot", "box", "diamond"


@dataclass(frozen=True, slots=True)
class _Scale:
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


# ----------------------------------------------------------------------------- helpers


def category_colors(names: Iterable[str], palette: Sequence[str] = PALETTE) -> dict[str, str]:
    """A stable colour per distinct name, in order of first appearance (cycling)."""
    colors: dict[str, str] = {}
    for name in names:
        if name not in colors:
            colors[name] = palette[len(colors) % len(palette)]
    return colors


def area_radii(
    values: Values, *, v_max: float | None = None, r_max: float = 8.0, r_min: float = 1.5
) -> list[float]:
    """Radii whose dot *area* is proportional to the value (the honest encoding).

    Pass the same `v_max` to several charts (small multiples) to share one scale.
    """
    finite = [float(v) for v in values if v is not None and _finite(v) and v > 0]
    top = v_max if v_max is not None and v_max > 0 else max(finite, default=0.0)
    radii = []
    for v in values:
        if v is None or not _finite(v) or v <= 0 or top <= 0:
            radii.append(r_min)
        else:
            radii.append(max(r_min, r_max * math.sqrt(min(float(v), top) / top)))
    return radii


def points_by_category(
    x: Values,
    y: Values,
    categories: Sequence[str],
    *,
    radii: Sequence[float] | None = None,
    colors: Mapping[str, str] | None = None,
    labels: Sequence[str] | None = None,
) -> list[Points]:
    """Split parallel columns into one `Points` layer per category.

    Layers (and so legend entries) follow the order of `colors` when given, so that
    small multiples list their categories alike; otherwise the order of first appearance.
    """
    colors = dict(colors) if colors is not None else category_colors(categories)
    groups: dict[str, list[int]] = {}
    for i, cat in enumerate(categories[: min(len(x), len(y))]):
        groups.setdefault(cat, []).append(i)
    rank = {name: k for k, name in enumerate(colors)}
    groups = dict(sorted(groups.items(), key=lambda g: rank.get(g[0], len(rank))))
    layers = []
    for cat, idx in groups.items():
        layers.append(
            Points(
                name=cat,
                x=[x[i] for i in idx],
                y=[y[i] for i in idx],
                r=[radii[i] for i in idx] if radii is not None else 3.0,
                color=colors.get(cat, category_colors([cat])[cat]),
                labels=[labels[i] for i in idx] if labels is not None else None,
            )
        )
    return layers


def _segments(*columns: Values) -> list[list[tuple[float, ...]]]:
    """Runs of consecutive rows in which every column is a finite number."""
    runs: list[list[tuple[float, ...]]] = []
    current: list[tuple[float, ...]] = []
    for row in zip(*columns, strict=False):
        if all(_finite(v) for v in row):
            current.append(tuple(float(v) for v in row if v is not None))
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def _finite_values(*columns: Iterable[float | None]) -> list[float]:
    return [float(v) for col in columns for v in col if v is not None and _finite(v)]


def _header(root: ET.Element, title: str, note: str, left: float) -> float:
    """Title and optional note; returns the y below them."""
    _text(root, left, 20, title, size=14, weight="600")
    if note:
        _text(root, left, 37, note, size=11.5, color=_MUTED)
        return 46.0
    return 30.0


def _legend(
    root: ET.Element, items: Sequence[_LegendItem], x0: float, y0: float, max_width: float
) -> float:
    """Legend entries flowing left to right, wrapping; returns the height used."""
    if not items:
        return 0.0
    x, y, line_h = x0, y0 + 10, 18.0
    for item in items:
        w = 22 + _text_width(item.label, 12) + 16
        if x > x0 and x + w > x0 + max_width:
            x, y = x0, y + line_h
        if item.kind in ("line", "dash"):
            dash = "5 3" if item.kind == "dash" else None
            _line(
                root,
                x,
                y,
                x + 18,
                y,
                {"stroke": item.color, "stroke-width": 2.5, "stroke-dasharray": dash},
            )
        elif item.kind == "dot":
            _sub(root, "circle", {"cx": x + 9, "cy": y, "r": 4.5, "fill": item.color})
        elif item.kind == "diamond":
            _sub(root, "path", {"d": _diamond(x + 9, y, 5), "fill": item.color})
        else:
            _sub(
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
        _text(root, x + 22, y + 4, item.label)
        x += w
    return y - y0 + 10


def _diamond(x: float, y: float, r: float) -> str:
    return f"M{_c(x)} {_c(y - r)}L{_c(x + r)} {_c(y)}L{_c(x)} {_c(y + r)}L{_c(x - r)} {_c(y)}Z"


def _empty_chart(title: str, width: float, height: float, message: str = "no data") -> SvgChart:
    root = _svg(width, height, title)
    _text(root, 12, 20, title, size=14, weight="600")
    _sub(
        root,
        "rect",
        {
            "x": 12,
            "y": 32,
            "width": width - 24,
            "height": height - 44,
            "fill": "#f5f7fa",
            "stroke": _GRID,
        },
    )
    _text(root, width / 2, height / 2 + 10, message, anchor="middle", color=_MUTED)
    return _finish(root, height)


def _y_axis(
    root: ET.Element,
    ys: _Scale,
    ticks: Sequence[float],
    left: float,
    right: float,
    suffix: str,
) -> None:
    """Horizontal grid lines with labels; the zero line is drawn darker."""
    decimals = tick_decimals(ticks)
    for t in ticks:
        y = ys(t)
        _line(root, left, y, right, y, {"stroke": _AXIS if t == 0 else _GRID, "stroke-width": 1})
        _text(root, left - 6, y + 4, format_number(t, decimals) + suffix, anchor="end")


def _y_label(root: ET.Element, label: str, top: float, bottom: float) -> None:
    if label:
        _text(root, 14, (top + bottom) / 2, label, anchor="middle", rotate=-90)


def _y_label_width(ticks: Sequence[float], suffix: str) -> float:
    decimals = tick_decimals(ticks)
    return max(_text_width(format_number(t, decimals) + suffix, 12) for t in ticks)


def _ref_lines(
    root: ET.Element,
    refs: Sequence[RefLine],
    ys: _Scale,
    left: float,
    right: float,
    *,
    labels: bool = True,
) -> None:
    for ref in refs:
        if not _finite(ref.value):
            continue
        y = ys.clamped(ref.value)
        _sub(
            root,
            "line",
            {
                "x1": left,
                "y1": y,
                "x2": right,
                "y2": y,
                "stroke": ref.color,
                "stroke-width": 1.5,
                "stroke-dasharray": "6 4" if ref.dash else None,
            },
            title=ref.label,
        )
        if not labels:
            continue
        label = _sub(
            root,
            "text",
            {
                "x": right - 4,
                "y": y - 5,
                "text-anchor": "end",
                "font-size": 11,
                "fill": ref.color,
                "stroke": _WHITE,
                "stroke-width": 3,
                "paint-order": "stroke",
            },
        )
        label.text = ref.label


# ----------------------------------------------------------------------------- x-y charts


def xy_chart(
    *,
    title: str,
    series: Sequence[Series] = (),
    bands: Sequence[Band] = (),
    points: Sequence[Points] = (),
    ref_lines: Sequence[RefLine] = (),
    x_label: str = "",
    y_label: str = "",
    time_axis: bool = False,
    x_domain: tuple[float, float] | None = None,
    y_domain: tuple[float, float] | None = None,
    y_suffix: str = "",
    note: str = "",
    legend: bool = True,
    width: float = 860,
    height: float = 340,
) -> SvgChart:
    """Lines, step lines, shaded bands and dots on shared linear axes.

    With `time_axis`, x values are seconds and the axis is labelled in minutes. Pass
    `x_domain`/`y_domain` to give several small-multiple panels the same scales.
    """
    palette = iter(PALETTE * (1 + (len(series) + len(points)) // len(PALETTE)))
    line_colors = [s.color or next(palette) for s in series]
    dot_colors = [p.color or next(palette) for p in points]

    xs_all = _finite_values(*(s.x for s in series), *(b.x for b in bands), *(p.x for p in points))
    ys_all = _finite_values(
        *(s.y for s in series),
        *(b.lo for b in bands),
        *(b.hi for b in bands),
        *(p.y for p in points),
    )
    if (x_domain is None and not xs_all) or (y_domain is None and not ys_all):
        return _empty_chart(title, width, height)

    x0, x1 = x_domain if x_domain is not None else (min(xs_all), max(xs_all))
    if x1 <= x0:
        x0, x1 = x0 - 1.0, x0 + 1.0
    if time_axis:
        xticks = time_ticks(x0, x1)
    else:
        xticks = [t for t in nice_ticks(x0, x1, 8) if x0 - 1e-9 <= t <= x1 + 1e-9]

    if y_domain is not None:
        y0, y1 = y_domain
        yticks = [t for t in nice_ticks(y0, y1, _Y_TICKS) if y0 - 1e-9 <= t <= y1 + 1e-9]
    else:
        refs = [r.value for r in ref_lines if _finite(r.value)]
        yticks = nice_ticks(min(ys_all + refs), max(ys_all + refs), _Y_TICKS)
        y0, y1 = yticks[0], yticks[-1]
    if not yticks:
        yticks = [y0, y1]

    # layout: title, note, legend above the plot; tick labels and axis names around it
    left = 16 + (18 if y_label else 0) + _y_label_width(yticks, y_suffix) + 8
    right = width - 18
    root = _svg(width, height, title)
    top = _header(root, title, note, 12)
    items: list[_LegendItem] = []
    if legend:
        items += [
            _LegendItem(s.name, c, "dash" if s.dash else "line")
            for s, c in zip(series, line_colors, strict=True)
            if s.in_legend
        ]
        items += [_LegendItem(b.name, b.color, "box") for b in bands if b.name]
        items += [_LegendItem(p.name, c, "dot") for p, c in zip(points, dot_colors, strict=True)]
    top += _legend(root, items, left, top, right - left) + 10
    bottom = height - (22 + (18 if x_label else 0) + 6)
    if bottom - top < 60:  # a crowded legend grows the chart rather than squash the plot
        height += 60 - (bottom - top)
        bottom = top + 60

    xs = _Scale(x0, x1, left, right)
    ys = _Scale(y0, y1, bottom, top)

    _y_axis(root, ys, yticks, left, right, y_suffix)
    _y_label(root, y_label, top, bottom)
    _line(root, left, bottom, right, bottom, {"stroke": _AXIS})
    step_s = xticks[1] - xticks[0] if len(xticks) > 1 else 60.0
    x_dec = tick_decimals(xticks)
    for t in xticks:
        x = xs(t)
        label = time_label(t, step_s) if time_axis else format_number(t, x_dec)
        _line(root, x, bottom, x, bottom + 4, {"stroke": _AXIS})
        _text(root, x, bottom + 17, label, anchor="middle")
    if x_label:
        _text(root, (left + right) / 2, bottom + 36, x_label, anchor="middle")

    for band in bands:
        for run in _segments(band.x, band.lo, band.hi):
            upper = [f"{_c(xs(x))} {_c(ys.clamped(hi))}" for x, _, hi in run]
            lower = [f"{_c(xs(x))} {_c(ys.clamped(lo))}" for x, lo, _ in reversed(run)]
            _sub(
                root,
                "path",
                {
                    "d": f"M{'L'.join(upper + lower)}Z",
                    "fill": band.color,
                    "fill-opacity": f"{band.opacity:g}",
                    "stroke": "none",
                },
                title=band.name,
            )

    for s, color in zip(series, line_colors, strict=True):
        for run in _segments(s.x, s.y):
            coords: list[tuple[float, float]] = []
            for i, (x, y) in enumerate(run):
                if s.step and i > 0:
                    coords.append((x, run[i - 1][1]))
                coords.append((x, y))
            d = "L".join(f"{_c(xs(x))} {_c(ys.clamped(y))}" for x, y in coords)
            _sub(
                root,
                "path",
                {
                    "d": f"M{d}",
                    "fill": "none",
                    "stroke": color,
                    "stroke-width": f"{s.width:g}",
                    "stroke-linejoin": "round",
                    "stroke-linecap": "round",
                    "stroke-dasharray": "6 4" if s.dash else None,
                },
                title=s.name,
            )

    for p, color in zip(points, dot_colors, strict=True):
        radii = [float(p.r)] * len(p.x) if isinstance(p.r, int | float) else list(p.r)
        for i, (px, py) in enumerate(zip(p.x, p.y, strict=False)):
            if px is None or py is None or not (_finite(px) and _finite(py)):
                continue
            if not (x0 <= px <= x1 and y0 <= py <= y1):
                continue
            r = radii[i] if i < len(radii) else 3.0
            label = p.labels[i] if p.labels is not None and i < len(p.labels) else p.name
            _sub(
                root,
                "circle",
                {
                    "cx": xs(px),
                    "cy": ys(py),
                    "r": r,
                    "fill": color,
                    "fill-opacity": "0.75",
                    "stroke": _WHITE,
                    "stroke-width": "0.6",
                },
                title=label,
            )

    _ref_lines(root, ref_lines, ys, left, right)
    return _finish(root, height)


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str = "",
    y_label: str = "",
    time_axis: bool = False,
    y_suffix: str = "",
    ref_lines: Sequence[RefLine] = (),
    note: str = "",
    width: float = 860,
    height: float = 340,
) -> SvgChart:
    """Several line or step series on one chart (a thin front to `xy_chart`)."""
    return xy_chart(
        title=title,
        series=series,
        ref_lines=ref_lines,
        x_label=x_label,
        y_label=y_label,
        time_axis=time_axis,
        y_suffix=y_suffix,
        note=note,
        width=width,
        height=height,
    )


def scatter_chart(
    x: Values,
    y: Values,
    categories: Sequence[str],
    *,
    title: str,
    sizes: Values | None = None,
    colors: Mapping[str, str] | None = None,
    x_label: str = "",
    y_label: str = "",
    time_axis: bool = False,
    note: str = "",
    width: float = 860,
    height: float = 340,
) -> SvgChart:
    """Dots coloured by category, dot area proportional to `sizes` when given."""
    radii = area_radii(sizes) if sizes is not None else None
    return xy_chart(
        title=title,
        points=points_by_category(x, y, categories, radii=radii, colors=colors),
        x_label=x_label,
        y_label=y_label,
        time_axis=time_axis,
        note=note,
        width=width,
        height=height,
    )


# ----------------------------------------------------------------------------- bar charts


def bar_chart(
    categories: Sequence[str],
    series: Sequence[BarSeries],
    *,
    title: str,
    y_label: str = "",
    stacked: bool = False,
    totals: Values | None = None,
    totals_label: str = "total",
    ref_lines: Sequence[RefLine] = (),
    y_suffix: str = "",
    value_labels: bool = False,
    note: str = "",
    width: float = 860,
    height: float = 340,
) -> SvgChart:
    """Vertical bars per category: grouped side by side, or stacked.

    Stacking diverges from zero (positive parts up, negative parts down), so a cost
    decomposition with a negative part stays readable; `totals` are drawn as diamonds.
    Error bars (grouped only) span value +/- error.
    """
    n_cat, n_ser = len(categories), len(series)
    colors = [s.color or PALETTE[i % len(PALETTE)] for i, s in enumerate(series)]

    def value(s: BarSeries, i: int) -> float | None:
        v = s.values[i] if i < len(s.values) else None
        return float(v) if v is not None and _finite(v) else None

    def error(s: BarSeries, i: int) -> float | None:
        if s.errors is None or i >= len(s.errors):
            return None
        e = s.errors[i]
        return abs(float(e)) if e is not None and _finite(e) else None

    extent: list[float] = []
    for i in range(n_cat):
        if stacked:
            parts = [v for s in series if (v := value(s, i)) is not None]
            extent += [sum(v for v in parts if v > 0), sum(v for v in parts if v < 0)]
        else:
            for s in series:
                v = value(s, i)
                if v is not None:
                    err = error(s, i) or 0.0
                    extent += [v - err, v + err]
    total_vals = [
        (float(t) if t is not None and _finite(t) else None)
        for t in (list(totals) if totals is not None else [])
    ]
    data_points = extent + [t for t in total_vals if t is not None]
    if n_cat == 0 or not data_points:
        return _empty_chart(title, width, height)
    refs = [r.value for r in ref_lines if _finite(r.value)]
    yticks = nice_ticks(min([0.0, *data_points, *refs]), max([0.0, *data_points, *refs]), _Y_TICKS)
    y0, y1 = yticks[0], yticks[-1]

    left = 16 + (18 if y_label else 0) + _y_label_width(yticks, y_suffix) + 8
    right = width - 18
    band = (right - left) / n_cat
    label_w = max(_text_width(c, 12) for c in categories)
    rotate = label_w > band * 0.95
    x_label_h = label_w * 0.5 + 18 if rotate else 22.0

    root = _svg(width, height, title)
    top = _header(root, title, note, 12)
    items = [_LegendItem(s.name, c, "box") for s, c in zip(series, colors, strict=True)]
    if total_vals:
        items.append(_LegendItem(totals_label, _TEXT, "diamond"))
    if n_ser == 1 and not total_vals:
        items = []  # one series: the title says what the bars are
    # reference lines go in the legend: a label at the line's end would sit on a bar
    items += [_LegendItem(r.label, r.color, "dash" if r.dash else "line") for r in ref_lines]
    top += _legend(root, items, left, top, right - left)
    top += 10 + (14 if value_labels else 0)  # headroom for labels on top bars
    bottom = height - x_label_h - 6
    if bottom - top < 60:
        height += 60 - (bottom - top)
        bottom = top + 60
    ys = _Scale(y0, y1, bottom, top)
    _y_axis(root, ys, yticks, left, right, y_suffix)
    _y_label(root, y_label, top, bottom)
    decimals = max(1, tick_decimals(yticks))

    group_w = band * 0.76
    bar_w = group_w if stacked else group_w / max(1, n_ser)
    for i, cat in enumerate(categories):
        cx = left + band * (i + 0.5)
        if rotate:
            _text(root, cx + 4, bottom + 14, cat, anchor="end", rotate=-30)
        else:
            _text(root, cx, bottom + 17, cat, anchor="middle")
        pos, neg = 0.0, 0.0
        for j, (s, color) in enumerate(zip(series, colors, strict=True)):
            v = value(s, i)
            if v is None:
                continue
            if stacked:
                base = pos if v >= 0 else neg
                lo, hi = (base, base + v) if v >= 0 else (base + v, base)
                if v >= 0:
                    pos += v
                else:
                    neg += v
                bx = cx - bar_w / 2
            else:
                lo, hi = min(0.0, v), max(0.0, v)
                bx = cx - group_w / 2 + j * bar_w
            e = error(s, i)
            tip = f"{cat} · {s.name}: {format_number(v, decimals)}{y_suffix}"
            if e is not None:
                tip += f" ± {format_number(e, decimals)}"
            top_px, bot_px = ys(hi), ys(lo)
            _sub(
                root,
                "rect",
                {
                    "x": bx + 0.5,
                    "y": top_px,
                    "width": max(1.0, bar_w - 1),
                    "height": max(0.5, bot_px - top_px),
                    "fill": color,
                },
                title=tip,
            )
            mid = bx + bar_w / 2
            if e is not None and not stacked:
                _error_bar(root, mid, ys(v + e), ys(v - e), min(6.0, bar_w * 0.3))
            if value_labels and not stacked:
                edge = v + (e or 0.0) if v >= 0 else v - (e or 0.0)
                ty = ys(edge) - 5 if v >= 0 else ys(edge) + 13
                _text(root, mid, ty, format_number(v, decimals), anchor="middle", size=10.5)
        if i < len(total_vals) and (t := total_vals[i]) is not None:
            _total_marker(root, cx, ys(t), f"{cat} · {totals_label}: ", t, decimals, y_suffix)
    _ref_lines(root, ref_lines, ys, left, right, labels=False)
    return _finish(root, height)


def _error_bar(root: ET.Element, x: float, y_hi: float, y_lo: float, cap: float) -> None:
    """A vertical whisker from y_hi to y_lo with caps `cap` wide on each side."""
    d = (
        f"M{_c(x)} {_c(y_hi)}V{_c(y_lo)}M{_c(x - cap)} {_c(y_hi)}"
        f"H{_c(x + cap)}M{_c(x - cap)} {_c(y_lo)}H{_c(x + cap)}"
    )
    _sub(root, "path", {"d": d, "stroke": _TEXT, "stroke-width": 1.3, "fill": "none"})


def _total_marker(
    root: ET.Element, x: float, y: float, tip: str, total: float, decimals: int, suffix: str
) -> None:
    """A stacked bar's total: a diamond with its value written beside it."""
    _sub(
        root,
        "path",
        {"d": _diamond(x, y, 6), "fill": _TEXT, "stroke": _WHITE, "stroke-width": 1},
        title=tip + format_number(total, decimals) + suffix,
    )
    label = _sub(
        root,
        "text",
        {
            "x": x + 9,
            "y": y + 4,
            "font-size": 11,
            "font-weight": "600",
            "stroke": _WHITE,
            "stroke-width": 3,
            "paint-order": "stroke",
        },
    )
    label.text = format_number(total, decimals)


def stacked_hbar(
    categories: Sequence[str],
    segments: Sequence[BarSeries],
    *,
    title: str,
    x_label: str = "",
    x_max: float | None = None,
    x_suffix: str = "",
    value_decimals: int = 0,
    note: str = "",
    width: float = 860,
    row_height: float = 28,
) -> SvgChart:
    """One horizontal bar per category, split into segments (e.g. shares by venue).

    Negative or missing parts count as zero. Segments wide enough get their value
    written inside, in white or black depending on the fill.
    """
    n_cat = len(categories)
    colors = [s.color or PALETTE[i % len(PALETTE)] for i, s in enumerate(segments)]

    def value(s: BarSeries, i: int) -> float:
        v = s.values[i] if i < len(s.values) else None
        return float(v) if v is not None and _finite(v) and v > 0 else 0.0

    totals = [sum(value(s, i) for s in segments) for i in range(n_cat)]
    height_guess = 90 + n_cat * row_height
    if n_cat == 0 or not segments or max(totals, default=0.0) <= 0:
        return _empty_chart(title, width, max(140.0, height_guess))
    top_value = x_max if x_max is not None and x_max > 0 else max(totals)
    xticks = nice_ticks(0.0, top_value, 6)
    x1 = x_max if x_max is not None and x_max > 0 else xticks[-1]
    xticks = [t for t in xticks if t <= x1 + 1e-9]

    left = 16 + max(_text_width(c, 12) for c in categories) + 10
    right = width - 18
    root = _svg(width, height_guess, title)
    top = _header(root, title, note, 12)
    items = [_LegendItem(s.name, c, "box") for s, c in zip(segments, colors, strict=True)]
    top += _legend(root, items, left, top, right - left) + 10
    bottom = top + n_cat * row_height
    height = bottom + 22 + (18 if x_label else 0) + 6
    xs = _Scale(0.0, x1, left, right)
    decimals = tick_decimals(xticks)
    for t in xticks:
        x = xs(t)
        _line(root, x, top, x, bottom, {"stroke": _AXIS if t == 0 else _GRID})
        _text(root, x, bottom + 17, format_number(t, decimals) + x_suffix, anchor="middle")
    if x_label:
        _text(root, (left + right) / 2, bottom + 36, x_label, anchor="middle")

    bar_h = row_height * 0.68
    for i, cat in enumerate(categories):
        y = top + row_height * i + (row_height - bar_h) / 2
        _text(root, left - 8, y + bar_h / 2 + 4, cat, anchor="end")
        acc = 0.0
        for s, color in zip(segments, colors, strict=True):
            v = value(s, i)
            if v <= 0:
                continue
            xa, xb = xs(acc), xs(min(x1, acc + v))
            acc += v
            label = format_number(v, value_decimals) + x_suffix
            _sub(
                root,
                "rect",
                {
                    "x": xa,
                    "y": y,
                    "width": max(0.5, xb - xa),
                    "height": bar_h,
                    "fill": color,
                    "stroke": _WHITE,
                    "stroke-width": 0.8,
                },
                title=f"{cat} · {s.name}: {label}",
            )
            if xb - xa >= _text_width(label, 11) + 8:
                ink = _WHITE if _is_dark(color) else _TEXT
                xm, ym = (xa + xb) / 2, y + bar_h / 2 + 4
                _text(root, xm, ym, label, anchor="middle", size=11, color=ink)
    return _finish(root, height)


def _is_dark(color: str) -> bool:
    """Whether white text reads better than black on this '#rrggbb' fill."""
    if len(color) != 7 or not color.startswith("#"):
        return True
    try:
        r, g, b = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    except ValueError:
        return True
    return 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.5
