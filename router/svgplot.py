"""Small, dependency-free SVG charts for the self-contained HTML reports.

matplotlib is deliberately not a dependency: the reports need a handful of chart kinds
(lines and steps with bands, scatter coloured by category, grouped or stacked bars with
error bars, stacked horizontal bars), drawn as inline SVG so that one HTML file carries
everything. Each chart function returns one ``<svg>`` element as a string.

Conventions:
- Every piece of text goes through `esc`, so names from user input (strategies, venues,
  scenarios) cannot break the markup.
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

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

#: Steps for time axes, in minutes: 1-2-5 plus the clock's own 15/30/60 multiples.
_TIME_STEPS_MIN: tuple[float, ...] = (
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    180,
    240,
    360,
    720,
    1440,
)

Values = Sequence[float | None]

#: At most this many value ticks: enough resolution, still room for the labels.
_Y_TICKS = 7


# ----------------------------------------------------------------------------- text


def esc(text: object) -> str:
    """Escape text for HTML and XML content or attributes (quotes included)."""
    return escape(str(text), quote=True)


def _text_width(text: str, size: float) -> float:
    """Rough rendered width of `text` in a sans-serif font; enough for layout decisions."""
    return len(text) * size * 0.6


def _c(v: float) -> str:
    """A compact coordinate: one decimal, no trailing '.0'."""
    s = f"{v:.1f}"
    return s[:-2] if s.endswith(".0") else s


def _finite(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


# ----------------------------------------------------------------------------- ticks


def nice_ticks(lo: float, hi: float, max_ticks: int = 6) -> list[float]:
    """Evenly spaced ticks with a 1-2-5 step that cover [lo, hi].

    The first tick is <= lo and the last >= hi; there are at most `max_ticks` of them and
    the step is the smallest of the form {1, 2, 5} x 10^k that allows that. A degenerate
    range (lo == hi) is widened around the value. `max_ticks` must be >= 3: a range
    that straddles zero always needs a tick below, at and above it.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"tick range must be finite, got [{lo}, {hi}]")
    if max_ticks < 3:
        raise ValueError(f"max_ticks must be >= 3, got {max_ticks}")
    if lo > hi:
        lo, hi = hi, lo
    if hi - lo <= 1e-12 * max(1.0, abs(lo), abs(hi)):
        pad = abs(lo) * 0.05 if lo != 0 else 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / (max_ticks - 1)
    exp = math.floor(math.log10(raw))
    for k in range(exp, exp + 3):
        for mult in (1, 2, 5):
            step = mult * 10.0**k
            if step < raw * (1 - 1e-9):
                continue
            first = math.floor(lo / step + 1e-9)
            last = math.ceil(hi / step - 1e-9)
            if last - first + 1 <= max_ticks:
                digits = max(0, -k) + 1
                # round away float noise (0.30000000000000004); +0.0 turns -0.0 into 0.0
                return [round(i * step, digits) + 0.0 for i in range(first, last + 1)]
    # a step >= hi - lo spans the range with at most 3 ticks, and 100 * raw is one
    raise AssertionError("unreachable")  # pragma: no cover


def tick_decimals(ticks: Sequence[float]) -> int:
    """How many decimals tell the ticks apart (0 for integers, 1 for 0.5 steps...)."""
    if len(ticks) < 2:
        return 0 if not ticks or float(ticks[0]).is_integer() else 2
    step = abs(ticks[1] - ticks[0])
    if step == 0:
        return 0
    return max(0, -math.floor(math.log10(step) + 1e-9))


def format_number(value: float, decimals: int = 0) -> str:
    """Thousands separators, fixed decimals, and never a '-0'."""
    text = f"{value:,.{decimals}f}"
    if text.lstrip("-").strip("0.,") == "":
        text = text.lstrip("-")
    return text


def time_ticks(lo_s: float, hi_s: float, max_ticks: int = 8) -> list[float]:
    """Ticks in seconds at whole-minute steps (1, 2, 5, 10, 15, 30, 60... minutes).

    Ranges shorter than a few minutes fall back to 1-2-5 steps on fractional minutes.
    Unlike `nice_ticks`, the ticks stay inside [lo_s, hi_s]: a time axis shows the horizon.
    """
    if not (math.isfinite(lo_s) and math.isfinite(hi_s)):
        raise ValueError(f"time range must be finite, got [{lo_s}, {hi_s}]")
    if lo_s > hi_s:
        lo_s, hi_s = hi_s, lo_s
    lo_m, hi_m = lo_s / 60.0, hi_s / 60.0
    for step in _TIME_STEPS_MIN if hi_m - lo_m >= 3 else ():
        first = math.ceil(lo_m / step - 1e-9)
        last = math.floor(hi_m / step + 1e-9)
        if last - first + 1 <= max_ticks:
            return [i * step * 60.0 for i in range(first, last + 1)]
    inside = [t for t in nice_ticks(lo_m, hi_m, max_ticks) if lo_m - 1e-9 <= t <= hi_m + 1e-9]
    return [t * 60.0 for t in inside]


def _time_label(t_s: float, step_s: float) -> str:
    minutes = t_s / 60.0
    decimals = 0 if step_s >= 60 else tick_decimals([0.0, step_s / 60.0])
    return format_number(minutes, decimals)


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


def _svg_open(width: float, height: float, title: str) -> str:
    return (
        f'<svg class="chart" width="{_c(width)}" height="{_c(height)}" '
        f'viewBox="0 0 {_c(width)} {_c(height)}" role="img" aria-label="{esc(title)}" '
        f'font-family="{esc(FONT)}" font-size="12" fill="{_TEXT}">'
    )


def _text(
    x: float,
    y: float,
    text: str,
    *,
    anchor: str = "start",
    size: float = 12,
    color: str = _TEXT,
    weight: str = "normal",
    rotate: float = 0.0,
) -> str:
    transform = f' transform="rotate({_c(rotate)} {_c(x)} {_c(y)})"' if rotate else ""
    bold = f' font-weight="{weight}"' if weight != "normal" else ""
    return (
        f'<text x="{_c(x)}" y="{_c(y)}" text-anchor="{anchor}" font-size="{_c(size)}" '
        f'fill="{color}"{bold}{transform}>{esc(text)}</text>'
    )


def _header(out: list[str], title: str, note: str, left: float) -> float:
    """Title and optional note; returns the y below them."""
    out.append(_text(left, 20, title, size=14, weight="600"))
    if note:
        out.append(_text(left, 37, note, size=11.5, color=_MUTED))
        return 46.0
    return 30.0


def _legend(
    items: Sequence[_LegendItem], x0: float, y0: float, max_width: float
) -> tuple[str, float]:
    """Legend entries flowing left to right, wrapping; returns (svg, height used)."""
    if not items:
        return "", 0.0
    parts = []
    x, y, line_h = x0, y0 + 10, 18.0
    for item in items:
        w = 22 + _text_width(item.label, 12) + 16
        if x > x0 and x + w > x0 + max_width:
            x, y = x0, y + line_h
        color = esc(item.color)
        if item.kind in ("line", "dash"):
            dash = ' stroke-dasharray="5 3"' if item.kind == "dash" else ""
            parts.append(
                f'<line x1="{_c(x)}" y1="{_c(y)}" x2="{_c(x + 18)}" y2="{_c(y)}" '
                f'stroke="{color}" stroke-width="2.5"{dash}/>'
            )
        elif item.kind == "dot":
            parts.append(f'<circle cx="{_c(x + 9)}" cy="{_c(y)}" r="4.5" fill="{color}"/>')
        elif item.kind == "diamond":
            parts.append(f'<path d="{_diamond(x + 9, y, 5)}" fill="{color}"/>')
        else:
            parts.append(
                f'<rect x="{_c(x + 2)}" y="{_c(y - 6)}" width="14" height="12" rx="2" '
                f'fill="{color}"/>'
            )
        parts.append(_text(x + 22, y + 4, item.label))
        x += w
    return "".join(parts), y - y0 + 10


def _diamond(x: float, y: float, r: float) -> str:
    return f"M{_c(x)} {_c(y - r)}L{_c(x + r)} {_c(y)}L{_c(x)} {_c(y + r)}L{_c(x - r)} {_c(y)}Z"


def _empty_chart(title: str, width: float, height: float, message: str = "no data") -> str:
    return (
        _svg_open(width, height, title)
        + _text(12, 20, title, size=14, weight="600")
        + f'<rect x="12" y="32" width="{_c(width - 24)}" height="{_c(height - 44)}" '
        f'fill="#f5f7fa" stroke="{_GRID}"/>'
        + _text(width / 2, height / 2 + 10, message, anchor="middle", color=_MUTED)
        + "</svg>"
    )


def _y_axis(
    out: list[str],
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
        stroke = _AXIS if t == 0 else _GRID
        out.append(
            f'<line x1="{_c(left)}" y1="{_c(y)}" x2="{_c(right)}" y2="{_c(y)}" '
            f'stroke="{stroke}" stroke-width="1"/>'
        )
        out.append(_text(left - 6, y + 4, format_number(t, decimals) + suffix, anchor="end"))


def _y_label(out: list[str], label: str, top: float, bottom: float) -> None:
    if label:
        out.append(_text(14, (top + bottom) / 2, label, anchor="middle", rotate=-90))


def _y_label_width(ticks: Sequence[float], suffix: str) -> float:
    decimals = tick_decimals(ticks)
    return max(_text_width(format_number(t, decimals) + suffix, 12) for t in ticks)


def _ref_lines(
    out: list[str],
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
        dash = ' stroke-dasharray="6 4"' if ref.dash else ""
        out.append(
            f'<line x1="{_c(left)}" y1="{_c(y)}" x2="{_c(right)}" y2="{_c(y)}" '
            f'stroke="{esc(ref.color)}" stroke-width="1.5"{dash}>'
            f"<title>{esc(ref.label)}</title></line>"
        )
        if not labels:
            continue
        out.append(
            f'<text x="{_c(right - 4)}" y="{_c(y - 5)}" text-anchor="end" font-size="11" '
            f'fill="{esc(ref.color)}" stroke="#ffffff" stroke-width="3" paint-order="stroke">'
            f"{esc(ref.label)}</text>"
        )


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
) -> str:
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
    out: list[str] = []
    top = _header(out, title, note, 12)
    items: list[_LegendItem] = []
    if legend:
        items += [
            _LegendItem(s.name, c, "dash" if s.dash else "line")
            for s, c in zip(series, line_colors, strict=True)
            if s.in_legend
        ]
        items += [_LegendItem(b.name, b.color, "box") for b in bands if b.name]
        items += [_LegendItem(p.name, c, "dot") for p, c in zip(points, dot_colors, strict=True)]
    legend_svg, legend_h = _legend(items, left, top, right - left)
    out.append(legend_svg)
    top += legend_h + 10
    bottom = height - (22 + (18 if x_label else 0) + 6)
    if bottom - top < 60:  # a crowded legend grows the chart rather than squash the plot
        height += 60 - (bottom - top)
        bottom = top + 60

    xs = _Scale(x0, x1, left, right)
    ys = _Scale(y0, y1, bottom, top)

    _y_axis(out, ys, yticks, left, right, y_suffix)
    _y_label(out, y_label, top, bottom)
    out.append(
        f'<line x1="{_c(left)}" y1="{_c(bottom)}" x2="{_c(right)}" y2="{_c(bottom)}" '
        f'stroke="{_AXIS}"/>'
    )
    step_s = xticks[1] - xticks[0] if len(xticks) > 1 else 60.0
    x_dec = tick_decimals(xticks)
    for t in xticks:
        x = xs(t)
        label = _time_label(t, step_s) if time_axis else format_number(t, x_dec)
        out.append(
            f'<line x1="{_c(x)}" y1="{_c(bottom)}" x2="{_c(x)}" y2="{_c(bottom + 4)}" '
            f'stroke="{_AXIS}"/>'
        )
        out.append(_text(x, bottom + 17, label, anchor="middle"))
    if x_label:
        out.append(_text((left + right) / 2, bottom + 36, x_label, anchor="middle"))

    for band in bands:
        for run in _segments(band.x, band.lo, band.hi):
            upper = [f"{_c(xs(x))} {_c(ys.clamped(hi))}" for x, _, hi in run]
            lower = [f"{_c(xs(x))} {_c(ys.clamped(lo))}" for x, lo, _ in reversed(run)]
            out.append(
                f'<path d="M{"L".join(upper + lower)}Z" fill="{esc(band.color)}" '
                f'fill-opacity="{band.opacity:g}" stroke="none"><title>{esc(band.name)}</title>'
                "</path>"
            )

    for s, color in zip(series, line_colors, strict=True):
        for run in _segments(s.x, s.y):
            coords: list[tuple[float, float]] = []
            for i, (x, y) in enumerate(run):
                if s.step and i > 0:
                    coords.append((x, run[i - 1][1]))
                coords.append((x, y))
            d = "L".join(f"{_c(xs(x))} {_c(ys.clamped(y))}" for x, y in coords)
            dash = ' stroke-dasharray="6 4"' if s.dash else ""
            out.append(
                f'<path d="M{d}" fill="none" stroke="{esc(color)}" stroke-width="{s.width:g}" '
                f'stroke-linejoin="round" stroke-linecap="round"{dash}>'
                f"<title>{esc(s.name)}</title></path>"
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
            out.append(
                f'<circle cx="{_c(xs(px))}" cy="{_c(ys(py))}" r="{_c(r)}" fill="{esc(color)}" '
                f'fill-opacity="0.75" stroke="#ffffff" stroke-width="0.6">'
                f"<title>{esc(label)}</title></circle>"
            )

    _ref_lines(out, ref_lines, ys, left, right)
    return _svg_open(width, height, title) + "".join(out) + "</svg>"


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
) -> str:
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
) -> str:
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
) -> str:
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

    out: list[str] = []
    top = _header(out, title, note, 12)
    items = [_LegendItem(s.name, c, "box") for s, c in zip(series, colors, strict=True)]
    if total_vals:
        items.append(_LegendItem(totals_label, _TEXT, "diamond"))
    if n_ser == 1 and not total_vals:
        items = []  # one series: the title says what the bars are
    # reference lines go in the legend: a label at the line's end would sit on a bar
    items += [_LegendItem(r.label, r.color, "dash" if r.dash else "line") for r in ref_lines]
    legend_svg, legend_h = _legend(items, left, top, right - left)
    out.append(legend_svg)
    top += legend_h + 10 + (14 if value_labels else 0)  # headroom for labels on top bars
    bottom = height - x_label_h - 6
    if bottom - top < 60:
        height += 60 - (bottom - top)
        bottom = top + 60
    ys = _Scale(y0, y1, bottom, top)
    _y_axis(out, ys, yticks, left, right, y_suffix)
    _y_label(out, y_label, top, bottom)
    decimals = max(1, tick_decimals(yticks))

    group_w = band * 0.76
    bar_w = group_w if stacked else group_w / max(1, n_ser)
    for i, cat in enumerate(categories):
        cx = left + band * (i + 0.5)
        if rotate:
            out.append(_text(cx + 4, bottom + 14, cat, anchor="end", rotate=-30))
        else:
            out.append(_text(cx, bottom + 17, cat, anchor="middle"))
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
            out.append(
                f'<rect x="{_c(bx + 0.5)}" y="{_c(top_px)}" width="{_c(max(1.0, bar_w - 1))}" '
                f'height="{_c(max(0.5, bot_px - top_px))}" fill="{esc(color)}">'
                f"<title>{esc(tip)}</title></rect>"
            )
            mid = bx + bar_w / 2
            if e is not None and not stacked:
                y_hi, y_lo = ys(v + e), ys(v - e)
                cap = min(6.0, bar_w * 0.3)
                out.append(
                    f'<path d="M{_c(mid)} {_c(y_hi)}V{_c(y_lo)}M{_c(mid - cap)} {_c(y_hi)}'
                    f'H{_c(mid + cap)}M{_c(mid - cap)} {_c(y_lo)}H{_c(mid + cap)}" '
                    f'stroke="{_TEXT}" stroke-width="1.3" fill="none"/>'
                )
            if value_labels and not stacked:
                edge = v + (e or 0.0) if v >= 0 else v - (e or 0.0)
                ty = ys(edge) - 5 if v >= 0 else ys(edge) + 13
                out.append(_text(mid, ty, format_number(v, decimals), anchor="middle", size=10.5))
        if i < len(total_vals) and (t := total_vals[i]) is not None:
            ty = ys(t)
            out.append(
                f'<path d="{_diamond(cx, ty, 6)}" fill="{_TEXT}" stroke="#ffffff" '
                f'stroke-width="1"><title>{esc(f"{cat} · {totals_label}: ")}'
                f"{esc(format_number(t, decimals) + y_suffix)}</title></path>"
            )
            out.append(
                f'<text x="{_c(cx + 9)}" y="{_c(ty + 4)}" font-size="11" font-weight="600" '
                f'stroke="#ffffff" stroke-width="3" paint-order="stroke">'
                f"{esc(format_number(t, decimals))}</text>"
            )
    _ref_lines(out, ref_lines, ys, left, right, labels=False)
    return _svg_open(width, height, title) + "".join(out) + "</svg>"


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
) -> str:
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
    out: list[str] = []
    top = _header(out, title, note, 12)
    items = [_LegendItem(s.name, c, "box") for s, c in zip(segments, colors, strict=True)]
    legend_svg, legend_h = _legend(items, left, top, right - left)
    out.append(legend_svg)
    top += legend_h + 10
    bottom = top + n_cat * row_height
    height = bottom + 22 + (18 if x_label else 0) + 6
    xs = _Scale(0.0, x1, left, right)
    decimals = tick_decimals(xticks)
    for t in xticks:
        x = xs(t)
        out.append(
            f'<line x1="{_c(x)}" y1="{_c(top)}" x2="{_c(x)}" y2="{_c(bottom)}" '
            f'stroke="{_AXIS if t == 0 else _GRID}"/>'
        )
        out.append(_text(x, bottom + 17, format_number(t, decimals) + x_suffix, anchor="middle"))
    if x_label:
        out.append(_text((left + right) / 2, bottom + 36, x_label, anchor="middle"))

    bar_h = row_height * 0.68
    for i, cat in enumerate(categories):
        y = top + row_height * i + (row_height - bar_h) / 2
        out.append(_text(left - 8, y + bar_h / 2 + 4, cat, anchor="end"))
        acc = 0.0
        for s, color in zip(segments, colors, strict=True):
            v = value(s, i)
            if v <= 0:
                continue
            xa, xb = xs(acc), xs(min(x1, acc + v))
            acc += v
            label = format_number(v, value_decimals) + x_suffix
            out.append(
                f'<rect x="{_c(xa)}" y="{_c(y)}" width="{_c(max(0.5, xb - xa))}" '
                f'height="{_c(bar_h)}" fill="{esc(color)}" stroke="#ffffff" stroke-width="0.8">'
                f"<title>{esc(f'{cat} · {s.name}: {label}')}</title></rect>"
            )
            if xb - xa >= _text_width(label, 11) + 8:
                ink = "#ffffff" if _is_dark(color) else _TEXT
                out.append(
                    _text(
                        (xa + xb) / 2, y + bar_h / 2 + 4, label, anchor="middle", size=11, color=ink
                    )
                )
    return _svg_open(width, height, title) + "".join(out) + "</svg>"


def _is_dark(color: str) -> bool:
    """Whether white text reads better than black on this '#rrggbb' fill."""
    if len(color) != 7 or not color.startswith("#"):
        return True
    try:
        r, g, b = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    except ValueError:
        return True
    return 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.5
