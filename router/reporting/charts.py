"""Small, dependency-free SVG charts for the self-contained HTML reports.

matplotlib is deliberately not a dependency: the reports need a handful of chart kinds
(lines and steps with bands, scatter coloured by category, grouped or stacked bars with
error bars, stacked horizontal bars), drawn as inline SVG so that one HTML file carries
everything. Each chart function builds an ElementTree (with `router.reporting.svg`) and
returns it serialised, as an `SvgChart`: a `str` holding one ``<svg>`` element.

Conventions:
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

from router.reporting import svg
from router.reporting.svg import SvgChart, coord
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


Values = Sequence[float | None]


#: At most this many value ticks: enough resolution, still room for the labels.
_Y_TICKS = 7


def _finite(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


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


def _ref_lines(
    root: ET.Element,
    refs: Sequence[RefLine],
    ys: svg.Scale,
    left: float,
    right: float,
    *,
    labels: bool = True,
) -> None:
    for ref in refs:
        if not _finite(ref.value):
            continue
        y = ys.clamped(ref.value)
        svg.sub(
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
        label = svg.sub(
            root,
            "text",
            {
                "x": right - 4,
                "y": y - 5,
                "text-anchor": "end",
                "font-size": 11,
                "fill": ref.color,
                "stroke": svg.WHITE,
                "stroke-width": 3,
                "paint-order": "stroke",
            },
        )
        label.text = ref.label


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
        return svg.empty_chart(title, width, height)

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
    left = 16 + (18 if y_label else 0) + svg.tick_label_width(yticks, y_suffix) + 8
    right = width - 18
    root = svg.svg_root(width, height, title)
    top = svg.header(root, title, note, 12)
    items: list[svg.LegendItem] = []
    if legend:
        items += [
            svg.LegendItem(s.name, c, "dash" if s.dash else "line")
            for s, c in zip(series, line_colors, strict=True)
            if s.in_legend
        ]
        items += [svg.LegendItem(b.name, b.color, "box") for b in bands if b.name]
        items += [svg.LegendItem(p.name, c, "dot") for p, c in zip(points, dot_colors, strict=True)]
    top += svg.legend(root, items, left, top, right - left) + 10
    bottom = height - (22 + (18 if x_label else 0) + 6)
    if bottom - top < 60:  # a crowded legend grows the chart rather than squash the plot
        height += 60 - (bottom - top)
        bottom = top + 60

    xs = svg.Scale(x0, x1, left, right)
    ys = svg.Scale(y0, y1, bottom, top)

    svg.y_axis(root, ys, yticks, left, right, y_suffix)
    svg.y_axis_label(root, y_label, top, bottom)
    _x_axis(root, xs, xticks, bottom, x_label, time_axis)
    for band in bands:
        _band(root, band, xs, ys)
    for s, color in zip(series, line_colors, strict=True):
        _series_line(root, s, color, xs, ys)
    for p, color in zip(points, dot_colors, strict=True):
        _dots(root, p, color, xs, ys)
    _ref_lines(root, ref_lines, ys, left, right)
    return svg.finish(root, height)


def _x_axis(
    root: ET.Element,
    xs: svg.Scale,
    ticks: Sequence[float],
    bottom: float,
    label: str,
    time_axis: bool,
) -> None:
    """The axis line under the plot, a mark and a label per tick, and the axis name."""
    left, right = xs.r0, xs.r1
    svg.line(root, left, bottom, right, bottom, {"stroke": svg.AXIS})
    step_s = ticks[1] - ticks[0] if len(ticks) > 1 else 60.0
    decimals = tick_decimals(ticks)
    for t in ticks:
        x = xs(t)
        tick = time_label(t, step_s) if time_axis else format_number(t, decimals)
        svg.line(root, x, bottom, x, bottom + 4, {"stroke": svg.AXIS})
        svg.text(root, x, bottom + 17, tick, anchor="middle")
    if label:
        svg.text(root, (left + right) / 2, bottom + 36, label, anchor="middle")


def _band(root: ET.Element, band: Band, xs: svg.Scale, ys: svg.Scale) -> None:
    """One filled path per run of finite rows, clamped to the plot."""
    for run in _segments(band.x, band.lo, band.hi):
        upper = [f"{coord(xs(x))} {coord(ys.clamped(hi))}" for x, _, hi in run]
        lower = [f"{coord(xs(x))} {coord(ys.clamped(lo))}" for x, lo, _ in reversed(run)]
        svg.sub(
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


def _series_line(
    root: ET.Element, series: Series, color: str, xs: svg.Scale, ys: svg.Scale
) -> None:
    """One path per run of finite points; a step series holds each value to the next x."""
    for run in _segments(series.x, series.y):
        coords: list[tuple[float, float]] = []
        for i, (x, y) in enumerate(run):
            if series.step and i > 0:
                coords.append((x, run[i - 1][1]))
            coords.append((x, y))
        d = "L".join(f"{coord(xs(x))} {coord(ys.clamped(y))}" for x, y in coords)
        svg.sub(
            root,
            "path",
            {
                "d": f"M{d}",
                "fill": "none",
                "stroke": color,
                "stroke-width": f"{series.width:g}",
                "stroke-linejoin": "round",
                "stroke-linecap": "round",
                "stroke-dasharray": "6 4" if series.dash else None,
            },
            title=series.name,
        )


def _dots(root: ET.Element, points: Points, color: str, xs: svg.Scale, ys: svg.Scale) -> None:
    """A circle per finite point inside both domains, with its label as the tooltip."""
    n = len(points.x)
    radii = [float(points.r)] * n if isinstance(points.r, int | float) else list(points.r)
    for i, (px, py) in enumerate(zip(points.x, points.y, strict=False)):
        if px is None or py is None or not (_finite(px) and _finite(py)):
            continue
        if not (xs.d0 <= px <= xs.d1 and ys.d0 <= py <= ys.d1):
            continue
        r = radii[i] if i < len(radii) else 3.0
        labels = points.labels
        label = labels[i] if labels is not None and i < len(labels) else points.name
        svg.sub(
            root,
            "circle",
            {
                "cx": xs(px),
                "cy": ys(py),
                "r": r,
                "fill": color,
                "fill-opacity": "0.75",
                "stroke": svg.WHITE,
                "stroke-width": "0.6",
            },
            title=label,
        )


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
        return svg.empty_chart(title, width, height)
    refs = [r.value for r in ref_lines if _finite(r.value)]
    yticks = nice_ticks(min([0.0, *data_points, *refs]), max([0.0, *data_points, *refs]), _Y_TICKS)
    y0, y1 = yticks[0], yticks[-1]

    left = 16 + (18 if y_label else 0) + svg.tick_label_width(yticks, y_suffix) + 8
    right = width - 18
    band = (right - left) / n_cat
    label_w = max(svg.text_width(c, 12) for c in categories)
    rotate = label_w > band * 0.95
    x_label_h = label_w * 0.5 + 18 if rotate else 22.0

    root = svg.svg_root(width, height, title)
    top = svg.header(root, title, note, 12)
    items = [svg.LegendItem(s.name, c, "box") for s, c in zip(series, colors, strict=True)]
    if total_vals:
        items.append(svg.LegendItem(totals_label, svg.TEXT, "diamond"))
    if n_ser == 1 and not total_vals:
        items = []  # one series: the title says what the bars are
    # reference lines go in the legend: a label at the line's end would sit on a bar
    items += [svg.LegendItem(r.label, r.color, "dash" if r.dash else "line") for r in ref_lines]
    top += svg.legend(root, items, left, top, right - left)
    top += 10 + (14 if value_labels else 0)  # headroom for labels on top bars
    bottom = height - x_label_h - 6
    if bottom - top < 60:
        height += 60 - (bottom - top)
        bottom = top + 60
    ys = svg.Scale(y0, y1, bottom, top)
    svg.y_axis(root, ys, yticks, left, right, y_suffix)
    svg.y_axis_label(root, y_label, top, bottom)
    decimals = max(1, tick_decimals(yticks))

    group_w = band * 0.76
    bar_w = group_w if stacked else group_w / max(1, n_ser)
    for i, cat in enumerate(categories):
        cx = left + band * (i + 0.5)
        if rotate:
            svg.text(root, cx + 4, bottom + 14, cat, anchor="end", rotate=-30)
        else:
            svg.text(root, cx, bottom + 17, cat, anchor="middle")
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
            svg.sub(
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
                svg.error_bar(root, mid, ys(v + e), ys(v - e), min(6.0, bar_w * 0.3))
            if value_labels and not stacked:
                edge = v + (e or 0.0) if v >= 0 else v - (e or 0.0)
                ty = ys(edge) - 5 if v >= 0 else ys(edge) + 13
                svg.text(root, mid, ty, format_number(v, decimals), anchor="middle", size=10.5)
        if i < len(total_vals) and (t := total_vals[i]) is not None:
            svg.total_marker(root, cx, ys(t), f"{cat} · {totals_label}: ", t, decimals, y_suffix)
    _ref_lines(root, ref_lines, ys, left, right, labels=False)
    return svg.finish(root, height)


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
        return svg.empty_chart(title, width, max(140.0, height_guess))
    top_value = x_max if x_max is not None and x_max > 0 else max(totals)
    xticks = nice_ticks(0.0, top_value, 6)
    x1 = x_max if x_max is not None and x_max > 0 else xticks[-1]
    xticks = [t for t in xticks if t <= x1 + 1e-9]

    left = 16 + max(svg.text_width(c, 12) for c in categories) + 10
    right = width - 18
    root = svg.svg_root(width, height_guess, title)
    top = svg.header(root, title, note, 12)
    items = [svg.LegendItem(s.name, c, "box") for s, c in zip(segments, colors, strict=True)]
    top += svg.legend(root, items, left, top, right - left) + 10
    bottom = top + n_cat * row_height
    height = bottom + 22 + (18 if x_label else 0) + 6
    xs = svg.Scale(0.0, x1, left, right)
    decimals = tick_decimals(xticks)
    for t in xticks:
        x = xs(t)
        svg.line(root, x, top, x, bottom, {"stroke": svg.AXIS if t == 0 else svg.GRID})
        svg.text(root, x, bottom + 17, format_number(t, decimals) + x_suffix, anchor="middle")
    if x_label:
        svg.text(root, (left + right) / 2, bottom + 36, x_label, anchor="middle")

    bar_h = row_height * 0.68
    for i, cat in enumerate(categories):
        y = top + row_height * i + (row_height - bar_h) / 2
        svg.text(root, left - 8, y + bar_h / 2 + 4, cat, anchor="end")
        acc = 0.0
        for s, color in zip(segments, colors, strict=True):
            v = value(s, i)
            if v <= 0:
                continue
            xa, xb = xs(acc), xs(min(x1, acc + v))
            acc += v
            label = format_number(v, value_decimals) + x_suffix
            svg.sub(
                root,
                "rect",
                {
                    "x": xa,
                    "y": y,
                    "width": max(0.5, xb - xa),
                    "height": bar_h,
                    "fill": color,
                    "stroke": svg.WHITE,
                    "stroke-width": 0.8,
                },
                title=f"{cat} · {s.name}: {label}",
            )
            if xb - xa >= svg.text_width(label, 11) + 8:
                ink = svg.WHITE if svg.is_dark(color) else svg.TEXT
                xm, ym = (xa + xb) / 2, y + bar_h / 2 + 4
                svg.text(root, xm, ym, label, anchor="middle", size=11, color=ink)
    return svg.finish(root, height)
