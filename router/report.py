"""Self-contained HTML reports for `blockroute simulate` and `blockroute backtest`.

Input is the plain JSON-able document the commands write (CONTRACT.md keys plus extras),
so a report can be rebuilt later from a saved file: ``python -m router.report DOC DIR``.
Output is one ``index.html``: inline CSS, inline SVG charts from `router.svgplot`, no
external request and no JavaScript (hover text is native SVG ``<title>``).

Documents come from different versions of the code, so every key beyond the contract is
optional: a missing or malformed part makes its section say "not available" instead of
failing. Both TCA layouts in use are read: the decomposition flat in ``tca`` or nested
under ``tca["decomposition"]``; markout horizons keyed "60" or "60s"; a venue's share
as ``share`` or ``fill_share``. Every piece of text from the document is escaped.
"""

from __future__ import annotations

import bisect
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

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
    nice_ticks,
    points_by_category,
    stacked_hbar,
    xy_chart,
)

NA = "–"  # what a table cell shows for a missing number
_KIND_ORDER = {"lit": 0, "dark": 1, "rfq": 2}
_DECOMPOSITION = (
    ("spread_fees_bps", "spread + fees", "#56B4E9"),
    ("impact_bps", "impact", "#D55E00"),
    ("timing_bps", "timing", "#009E73"),
    ("opportunity_bps", "opportunity", "#CC79A7"),
)
_FULL_W = 1160
_PANEL_W = 570
_POLICY_STRATEGY = "ml"  # the learned slicer, charted against `twap`
_POLICY_BUCKET_S = 300.0  # its behaviour per bucket of this length: the policy's step
_POLICY_MAX_BUCKETS = 400  # wider buckets beyond: a malformed horizon must not hang
_PHASE_COLOR = "#F0E442"

#: The reports' stylesheet, shared by every self-contained HTML page blockroute writes.
REPORT_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', Arial,
       sans-serif; color: #1f2933; background: #ffffff; margin: 0; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 36px 0 6px; padding-top: 12px; border-top: 1px solid #e4e7eb; }
h3 { font-size: 15px; margin: 18px 0 6px; }
p.lead, p.note { color: #616e7c; margin: 4px 0 12px; max-width: 80ch; }
p.na { color: #8a4b08; background: #fffbea; padding: 8px 12px; border-radius: 4px; }
dl.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr));
           gap: 8px 20px; margin: 16px 0; }
dl.facts div { background: #f5f7fa; border-radius: 6px; padding: 8px 12px; }
dl.facts dt { color: #616e7c; font-size: 12px; }
dl.facts dd { margin: 2px 0 0; font-size: 16px; font-weight: 600; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 16px; }
th, td { padding: 5px 7px; border-bottom: 1px solid #e4e7eb; text-align: left;
         vertical-align: top; }
th { background: #f5f7fa; font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.best td { background: #e3f8ef; }
td.good { color: #0b6e4f; } td.bad { color: #a61b1b; }
.scroll { overflow-x: auto; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 12px; }
svg.chart { max-width: 100%; height: auto; display: block; margin: 8px 0; }
details { margin: 8px 0; border: 1px solid #e4e7eb; border-radius: 6px; padding: 6px 12px; }
summary { cursor: pointer; font-weight: 600; }
td.kv { font-size: 12px; line-height: 1.45; }
td.kv .k { color: #616e7c; }
td.kv .chosen { font-weight: 700; }
dl.defs dt { font-weight: 600; margin-top: 6px; }
dl.defs dd { margin: 2px 0 0 16px; color: #3e4c59; }
footer { color: #616e7c; font-size: 12px; margin-top: 40px; border-top: 1px solid #e4e7eb;
         padding-top: 10px; }
"""


# ----------------------------------------------------------------------------- reading


def _num(value: object) -> float | None:
    """A finite number, or None (bools, strings, NaN and infinities are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _nums(value: object) -> list[float | None]:
    return [_num(v) for v in _list(value)]


def _text(value: object, default: str = "") -> str:
    return default if value is None else str(value)


def _decomposition(tca: Mapping[str, Any]) -> Mapping[str, Any]:
    """The IS parts, flat in `tca` or nested under "decomposition" (both layouts exist)."""
    nested = _dict(tca.get("decomposition"))
    return {**tca, **nested}


def _horizon_key(key: str) -> float:
    """'60' or '60s' -> 60.0, for sorting markout horizons; unknown shapes sort last."""
    try:
        return float(key.rstrip("s"))
    except ValueError:
        return math.inf


def _markout_keys(*maps: Mapping[str, Any]) -> list[str]:
    keys = {str(k) for m in maps for k in m}
    return sorted(keys, key=lambda k: (_horizon_key(k), k))


def _horizon_label(key: str) -> str:
    h = _horizon_key(key)
    return f"{h:g} s" if math.isfinite(h) else key


def _seconds_label(t_s: float) -> str:
    """Seconds since the start as h:mm:ss (or m:ss under an hour)."""
    total = round(t_s)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _duration(t_s: float) -> str:
    h, rest = divmod(round(t_s), 3600)
    m, s = divmod(rest, 60)
    parts = [f"{h} h" if h else "", f"{m} min" if m else "", f"{s} s" if s else ""]
    return " ".join(p for p in parts if p) or "0 s"


# ----------------------------------------------------------------------------- html bits


def _fmt(value: object, decimals: int = 2, suffix: str = "") -> str:
    v = _num(value)
    return NA if v is None else format_number(v, decimals) + suffix


def _pct(value: object, decimals: int = 1) -> str:
    """A fraction shown as a percentage."""
    v = _num(value)
    return NA if v is None else format_number(100 * v, decimals) + "%"


def _td(text: str, cls: str = "num") -> str:
    return f'<td class="{cls}">{esc(text)}</td>' if cls else f"<td>{esc(text)}</td>"


def _table(headers: Sequence[tuple[str, str]], rows: Sequence[str]) -> str:
    """`headers` are (label, tooltip); a label ending in '#' is a right-aligned column."""
    cells = []
    for label, tip in headers:
        cls = ' class="num"' if label.endswith("#") else ""
        title = f' title="{esc(tip)}"' if tip else ""
        cells.append(f"<th{cls}{title}>{esc(label.rstrip('#'))}</th>")
    return (
        f'<div class="scroll"><table><thead><tr>{"".join(cells)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _na(what: str) -> str:
    return f'<p class="na">{esc(what)}: not available in this document.</p>'


def _section(title: str, lead: str, build: Callable[[], str]) -> str:
    """A titled section; a malformed part of the document spoils only its own section."""
    try:
        body = build()
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        body = (
            f'<p class="na">{esc(title)}: could not be drawn from this document ({esc(exc)}).</p>'
        )
    intro = f'<p class="lead">{esc(lead)}</p>' if lead else ""
    return f"<section><h2>{esc(title)}</h2>{intro}{body}</section>"


def _facts(items: Sequence[tuple[str, str]]) -> str:
    cells = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in items)
    return f'<dl class="facts">{cells}</dl>'


def page(title: str, body: str, footer: str = "") -> str:
    """A self-contained HTML page in the reports' style; `footer` is trusted markup."""
    footer = footer or (
        "IS (implementation shortfall) in basis points of the arrival mid, "
        "positive = cost, unfilled quantity charged at the horizon's mid. Generated by "
        "blockroute from a JSON document; rebuild with "
        "<code>python -m router.report DOC.json DIR</code>."
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{REPORT_CSS}</style></head>"
        f"<body><main>{body}<footer>{footer}</footer></main></body></html>\n"
    )


def write_index(html: str, out_dir: Path) -> Path:
    """Write `html` as out_dir/index.html (creating the folder); OSError if it cannot."""
    out_dir.mkdir(parents=True, exist_ok=True)
    index = out_dir / "index.html"
    index.write_text(html, encoding="utf-8")
    return index


# ----------------------------------------------------------------------------- simulate


def _results(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [r for r in _list(doc.get("results")) if isinstance(r, Mapping)]


def _name(result: Mapping[str, Any], i: int) -> str:
    return _text(result.get("strategy"), f"strategy {i + 1}")


def _venue_rows(result: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(venue, stats) ordered lit, dark, rfq, then by name."""
    venues = _dict(_dict(result.get("tca")).get("venues"))
    rows = [(str(v), _dict(s)) for v, s in venues.items()]
    return sorted(rows, key=lambda r: (_KIND_ORDER.get(_text(r[1].get("kind")), 9), r[0]))


def _venue_share(stats: Mapping[str, Any]) -> float | None:
    share = _num(stats.get("share"))
    return share if share is not None else _num(stats.get("fill_share"))


def _all_venues(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """Venues seen anywhere (TCA tables or fills), in kind-then-name order."""
    kinds: dict[str, str] = {}
    for r in results:
        for venue, stats in _venue_rows(r):
            kinds.setdefault(venue, _text(stats.get("kind")))
        fills = _dict(r.get("fills"))
        fill_kinds = _list(fills.get("kind"))
        for j, venue in enumerate(_list(fills.get("venue"))):
            kinds.setdefault(_text(venue), _text(fill_kinds[j]) if j < len(fill_kinds) else "")
    return sorted(kinds, key=lambda v: (_KIND_ORDER.get(kinds[v], 9), v))


def _sim_header(doc: Mapping[str, Any]) -> str:
    parent = _dict(doc.get("parent"))
    horizon = _num(parent.get("horizon_s"))
    qty = _num(parent.get("qty"))
    hindsight = _num(_dict(doc.get("hindsight")).get("is_bps"))
    items = [
        ("Scenario", _text(doc.get("scenario"), NA)),
        ("Symbol", _text(parent.get("symbol"), NA)),
        ("Side", _text(parent.get("side"), NA)),
        ("Quantity", NA if qty is None else format_number(qty)),
        ("Horizon", NA if horizon is None else _duration(horizon)),
        ("Arrival mid", _fmt(parent.get("arrival_mid"), 4)),
        ("Seed", _text(doc.get("seed"), NA)),
    ]
    if hindsight is not None:
        items.append(("Hindsight schedule IS", format_number(hindsight, 2) + " bps"))
    return (
        f"<h1>Simulation: {esc(_text(doc.get('scenario'), 'unnamed scenario'))}</h1>"
        '<p class="lead">Every strategy ran on the same simulated market path (same seed).</p>'
        + _facts(items)
    )


def _sim_results_table(doc: Mapping[str, Any]) -> str:
    results = _results(doc)
    if not results:
        return _na("Results")
    gaps = _dict(doc.get("gap_captured"))
    costs = [c for r in results if (c := _num(r.get("is_bps"))) is not None]
    best = min(costs) if costs else None
    headers = [
        ("Strategy", ""),
        ("IS bps#", "implementation shortfall vs arrival mid, positive = cost"),
        ("spread+fees#", "paid against the live mid, fees included"),
        ("impact#", "our own footprint on the mid"),
        ("timing#", "the market's own drift while we traded"),
        ("opportunity#", "unfilled quantity charged at the horizon's mid"),
        ("vs VWAP bps#", "average price vs market VWAP, positive = worse"),
        ("completion#", "filled / parent quantity"),
        ("filled#", ""),
        ("avg price#", ""),
        ("children#", "child orders sent"),
        ("lit#", "share of filled quantity"),
        ("dark#", "share of filled quantity"),
        ("RFQ#", "share of filled quantity"),
        ("gap captured#", "share of the TWAP-to-hindsight IS gap: 0 = TWAP, 100% = hindsight"),
    ]
    rows = []
    for i, r in enumerate(results):
        parts = _decomposition(_dict(r.get("tca")))
        mix = _dict(r.get("venue_mix"))
        name = _name(r, i)
        is_bps = _num(r.get("is_bps"))
        cls = ' class="best"' if best is not None and is_bps == best and len(results) > 1 else ""
        filled = _num(r.get("filled_qty"))
        cells = [
            _td(name, ""),
            _td(_fmt(is_bps)),
            *(_td(_fmt(parts.get(key))) for key, _, _ in _DECOMPOSITION),
            _td(_fmt(r.get("vwap_slippage_bps"))),
            _td(_pct(r.get("completion"))),
            _td(NA if filled is None else format_number(filled)),
            _td(_fmt(r.get("avg_price"), 4)),
            _td(_fmt(r.get("n_child_orders"), 0)),
            *(_td(_pct(mix.get(k), 0)) for k in ("lit", "dark", "rfq")),
            _td(_pct(gaps.get(name), 0)),
        ]
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    note = '<p class="note">Green row: lowest IS. Hover a column title for its definition.</p>'
    return _table(headers, rows) + note


def _sim_schedule(doc: Mapping[str, Any]) -> str:
    results = _results(doc)
    qty = _num(_dict(doc.get("parent")).get("qty"))
    if not qty or qty <= 0:
        return _na("Parent quantity")
    colors = category_colors(_name(r, i) for i, r in enumerate(results))

    def pct(values: list[float | None]) -> list[float | None]:
        return [None if v is None else 100 * v / qty for v in values]

    series: list[Series] = []
    for i, r in enumerate(results):
        sched = _dict(r.get("schedule"))
        t = _nums(sched.get("t_s"))
        if not t:
            continue
        name = _name(r, i)
        series.append(Series(name, t, pct(_nums(sched.get("filled"))), colors[name], step=True))
        target = _nums(sched.get("target"))
        if any(v is not None for v in target):
            # one legend entry per strategy: the chart's note explains solid vs dashed
            target_line = Series(
                f"{name} target",
                t,
                pct(target),
                colors[name],
                dash=True,
                width=1.4,
                in_legend=False,
            )
            series.append(target_line)
    if not series:
        return _na("Schedules")
    horizon = _num(_dict(doc.get("parent")).get("horizon_s"))
    return xy_chart(
        title="Cumulative filled vs target",
        note="solid: filled; dashed: the strategy's target at each decision time",
        series=series,
        x_label="time since start (min)",
        y_label="% of parent quantity",
        y_suffix="%",
        time_axis=True,
        x_domain=(0.0, horizon) if horizon else None,
        width=_FULL_W,
        height=420,
    )


def _bucket_edges(horizon_s: float, bucket_s: float) -> list[float]:
    """Bucket edges from 0 to the horizon; the last bucket may be shorter."""
    n = max(1, math.ceil(horizon_s / bucket_s - 1e-9))
    return [min(i * bucket_s, horizon_s) for i in range(n + 1)]


def _bucket_sums(
    t: Sequence[float | None], q: Sequence[float | None], edges: Sequence[float]
) -> list[float]:
    """Sum of `q` per bucket [edges[i], edges[i+1]) (the last one closed)."""
    sums = [0.0] * (len(edges) - 1)
    for ti, qi in zip(t, q, strict=False):
        if ti is None or qi is None or not edges[0] <= ti <= edges[-1]:
            continue
        sums[min(bisect.bisect_right(edges, ti) - 1, len(sums) - 1)] += qi
    return sums


def _fill_sums(
    result: Mapping[str, Any], key: str, keep: Callable[[str], bool], edges: Sequence[float]
) -> list[float] | None:
    """Filled quantity per bucket of the fills whose `key` ("kind", "liquidity") passes
    `keep`; None when the document has no such column."""
    fills = _dict(result.get("fills"))
    labels = [_text(x) for x in _list(fills.get(key))]
    t, q = _nums(fills.get("t_s")), _nums(fills.get("qty"))
    if not labels or len(labels) != len(t):
        return None
    chosen = [j for j, label in enumerate(labels) if keep(label)]
    return _bucket_sums(
        [t[j] for j in chosen], [q[j] if j < len(q) else None for j in chosen], edges
    )


def _ratio(num: Sequence[float], den: Sequence[float]) -> list[float | None]:
    return [100 * a / b if b > 0 else None for a, b in zip(num, den, strict=True)]


def _participation(result: Mapping[str, Any], edges: Sequence[float]) -> list[float | None]:
    """Own fills / all volume printed per bucket, in %: the lit tape (own trades
    included) plus the parent's own dark and RFQ fills, which the tape does not carry."""
    mv = _dict(result.get("market_volume"))
    step = _num(mv.get("bucket_s"))
    tape = _nums(mv.get("qty"))
    own = _fill_sums(result, "kind", lambda k: True, edges)
    off_book = _fill_sums(result, "kind", lambda k: k in ("dark", "rfq"), edges)
    if not step or not tape or own is None or off_book is None:
        return []
    market = _bucket_sums([i * step for i in range(len(tape))], tape, edges)
    return _ratio(own, [m + a for m, a in zip(market, off_book, strict=True)])


def _taker_share(result: Mapping[str, Any], edges: Sequence[float]) -> list[float | None]:
    """Share of each bucket's filled quantity taken as taker on a lit book, in %."""
    every = _fill_sums(result, "liquidity", lambda x: True, edges)
    taker = _fill_sums(result, "liquidity", lambda x: x == "taker", edges)
    if every is None or taker is None:
        return []
    return _ratio(taker, every)


def _held(
    edges: Sequence[float], values: Sequence[float | None]
) -> tuple[list[float | None], list[float | None]]:
    """A step line through per-bucket values, the last one held to the final edge."""
    return list(edges), [*values, values[-1] if values else None]


def _phase_bands(doc: Mapping[str, Any], y0: float, y1: float) -> list[Band]:
    """The scenario's market phases (the news) as shaded spans over the whole plot."""
    bands = []
    for ph in _list(doc.get("phases")):
        start, end = _num(_dict(ph).get("start_s")), _num(_dict(ph).get("end_s"))
        if start is None or end is None or end <= start:
            continue
        label = f"market phase {start / 60:g}–{end / 60:g} min (unseen by strategies)"
        bands.append(Band(label, [start, end], [y0, y0], [y1, y1], _PHASE_COLOR, 0.22))
    return bands


def _policy_chart(
    doc: Mapping[str, Any],
    title: str,
    note: str,
    series: Sequence[Series],
    y_domain: tuple[float, float],
    y_label: str,
    y_suffix: str = "",
    refs: Sequence[RefLine] = (),
    points: Sequence[Points] = (),
) -> str:
    """One of the learned slicer's charts: over the horizon, the market phases shaded."""
    horizon = _num(_dict(doc.get("parent")).get("horizon_s"))
    return xy_chart(
        title=title,
        note=note,
        series=series,
        points=points,
        bands=_phase_bands(doc, *y_domain),
        ref_lines=refs,
        x_label="time since start (min)",
        y_label=y_label,
        y_suffix=y_suffix,
        time_axis=True,
        x_domain=(0.0, horizon) if horizon else None,
        y_domain=y_domain,
        width=_FULL_W,
        height=300,
    )


def _sim_policy(doc: Mapping[str, Any]) -> str:
    """The learned slicer's behaviour over time next to TWAP's: participation, share
    taken as taker, and the pace its policy chose."""
    results = _results(doc)
    named = {_name(r, i): r for i, r in enumerate(results)}
    horizon = _num(_dict(doc.get("parent")).get("horizon_s"))
    if _POLICY_STRATEGY not in named or not horizon or horizon <= 0:
        return _na("The learned slicer's run")
    colors = category_colors(named)
    compared = [n for n in (_POLICY_STRATEGY, "twap") if n in named]
    bucket_s = max(_POLICY_BUCKET_S, horizon / _POLICY_MAX_BUCKETS)  # a day: still 5 min
    edges = _bucket_edges(horizon, bucket_s)
    bucket = f"per {_duration(bucket_s)}"
    charts = []
    for what, measure, title, note in (
        (
            "participation",
            _participation,
            f"Participation rate ({bucket})",
            "own fills / all volume printed: the lit tape (own trades included) plus the "
            "parent's own dark and RFQ fills",
        ),
        (
            "taker share",
            _taker_share,
            f"Aggressiveness: share of filled quantity taken as taker ({bucket})",
            "lit fills that crossed the spread; passive, midpoint and RFQ fills are not",
        ),
    ):
        values = {n: measure(named[n], edges) for n in compared}
        series = [Series(n, *_held(edges, v), colors[n], step=True) for n, v in values.items() if v]
        if not series:
            charts.append(_na(f"{what.capitalize()} (fills or market volume)"))
            continue
        top = max((y for v in values.values() for y in v if y is not None), default=0.0)
        y_top = min(100.0, nice_ticks(0.0, max(top, 1.0))[-1])
        charts.append(_policy_chart(doc, title, note, series, (0.0, y_top), "%", "%"))
    charts.append(_pace_chart(doc, named[_POLICY_STRATEGY], colors[_POLICY_STRATEGY], horizon))
    return "".join(charts)


def _pace_chart(doc: Mapping[str, Any], ml: Mapping[str, Any], color: str, horizon: float) -> str:
    """The pace multiplier the policy chose at each step, held until the next one."""
    paces = _dict(ml.get("paces"))
    t, m = _nums(paces.get("t_s")), _nums(paces.get("multiplier"))
    actions = _nums(paces.get("action")) + [None] * len(t)
    n = min(len(t), len(m))
    if n == 0:
        return _na("The policy's pace")
    labels = [
        f"t = {_seconds_label(t[j] or 0.0)}: action {_fmt(actions[j])}, pace ×{_fmt(m[j])}"
        for j in range(n)
    ]
    top = max([1.0, *(v for v in m[:n] if v is not None)])
    return _policy_chart(
        doc,
        "The pace the policy chose",
        f"{n} choices (dots; hover for the action), each held for a step: a multiple of the "
        "even rate that would finish the rest by the horizon",
        [Series("pace", [*t[:n], horizon], [*m[:n], m[n - 1]], color, step=True)],
        (0.0, nice_ticks(0.0, top)[-1]),
        "× even rate",
        refs=[RefLine(1.0, "even pace (TWAP catching up)")],
        points=[Points("policy's choice", t[:n], m[:n], 3.5, color, labels)],
    )


def _sim_price_panels(doc: Mapping[str, Any]) -> str:
    results = _results(doc)
    common = _dict(doc.get("path"))
    # each strategy's own realised market when the document has it (its own impact is
    # in it), else the common path
    paths = []
    for r in results:
        p = _dict(r.get("path")) or common
        pt_, bid_, ask_ = _nums(p.get("t_s")), _nums(p.get("bid")), _nums(p.get("ask"))
        mid_ = [
            None if b is None or a is None else (a + b) / 2
            for b, a in zip(bid_, ask_, strict=False)
        ]
        paths.append((pt_, bid_, ask_, mid_))
    fills = [_dict(r.get("fills")) for r in results]
    if not any(_list(f.get("t_s")) for f in fills) and not any(p[0] for p in paths):
        return _na("Market path and fills")

    prices = [v for p in paths for v in p[1] + p[2] if v is not None]
    qty_max = 0.0
    t_max = max((v for p in paths for v in p[0] if v is not None), default=0.0)
    for f in fills:
        prices += [v for v in _nums(f.get("price")) if v is not None]
        qty_max = max([qty_max, *(v for v in _nums(f.get("qty")) if v is not None)])
        t_max = max([t_max, *(v for v in _nums(f.get("t_s")) if v is not None)])
    parent = _dict(doc.get("parent"))
    arrival = _num(parent.get("arrival_mid"))
    if arrival is not None:
        prices.append(arrival)
    if not prices:
        return _na("Prices")
    ticks = nice_ticks(min(prices), max(prices))
    y_domain = (ticks[0], ticks[-1])
    horizon = _num(parent.get("horizon_s")) or t_max
    x_domain = (0.0, max(horizon, t_max)) if max(horizon, t_max) > 0 else None
    venue_colors = category_colors(_all_venues(results))
    refs = [RefLine(arrival, "arrival mid")] if arrival is not None else []

    panels = []
    for i, (r, f, (pt, bid, ask, mid)) in enumerate(zip(results, fills, paths, strict=True)):
        t = _nums(f.get("t_s"))
        price = _nums(f.get("price"))
        q = _nums(f.get("qty"))
        venues = [_text(v) for v in _list(f.get("venue"))]
        kinds = [_text(k) for k in _list(f.get("kind"))] + [""] * len(t)
        n = min(len(t), len(price), len(venues))
        labels = [
            f"{venues[j]} {kinds[j]}: {_fmt(q[j] if j < len(q) else None, 0)} @ "
            f"{_fmt(price[j], 4)}, t = {_seconds_label(t[j] or 0.0)}"
            for j in range(n)
        ]
        radii = area_radii(
            q[:n] + [None] * (n - len(q[:n])), v_max=qty_max or None, r_max=9.0, r_min=2.0
        )
        panels.append(
            xy_chart(
                title=_name(r, i),
                note=f"{n:,} fills" if n else "no fills",
                bands=[Band("bid–ask", pt, bid, ask)] if pt else [],
                series=[Series("mid", pt, mid, "#52606d", width=1.1)] if pt else [],
                points=points_by_category(
                    t[:n], price[:n], venues[:n], radii=radii, colors=venue_colors, labels=labels
                ),
                ref_lines=refs,
                time_axis=True,
                x_domain=x_domain,
                y_domain=y_domain,
                x_label="time since start (min)",
                y_label="price",
                width=_PANEL_W,
                height=330,
            )
        )
    if not panels:
        return _na("Fills")
    return f'<div class="grid">{"".join(panels)}</div>'


def _sim_is_chart(doc: Mapping[str, Any]) -> str:
    results = _results(doc)
    names = [_name(r, i) for i, r in enumerate(results)]
    totals = [_num(r.get("is_bps")) for r in results]
    hindsight = _num(_dict(doc.get("hindsight")).get("is_bps"))
    refs = [RefLine(hindsight, f"hindsight schedule {hindsight:.1f} bps")] if hindsight else []
    parts = [_decomposition(_dict(r.get("tca"))) for r in results]
    have_parts = any(_num(p.get(k)) is not None for p in parts for k, _, _ in _DECOMPOSITION)
    if not any(v is not None for v in totals) and not have_parts:
        return _na("Implementation shortfall")
    if have_parts:
        series = [
            BarSeries(label, [_num(p.get(key)) for p in parts], color=color)
            for key, label, color in _DECOMPOSITION
        ]
        return bar_chart(
            names,
            series,
            title="Implementation shortfall and its parts (bps, positive = cost)",
            note="parts stacked up from zero when they cost, down when they gain; "
            "the diamond is the total IS",
            stacked=True,
            totals=totals,
            totals_label="IS (total)",
            ref_lines=refs,
            y_label="bps of arrival mid",
            width=_FULL_W,
            height=400,
        )
    return bar_chart(
        names,
        [BarSeries("IS", totals, color=PALETTE[0])],
        title="Implementation shortfall (bps, positive = cost)",
        note="decomposition not available in this document",
        ref_lines=refs,
        value_labels=True,
        y_label="bps of arrival mid",
        width=_FULL_W,
        height=380,
    )


def _sim_venue_mix(doc: Mapping[str, Any]) -> str:
    results = _results(doc)
    names = [_name(r, i) for i, r in enumerate(results)]
    if not results:
        return _na("Venue mix")
    shares = [{v: _venue_share(s) for v, s in _venue_rows(r)} for r in results]
    if any(shares):
        # same colours as the price panels: both come from every venue seen
        colors = category_colors(_all_venues(results))
        venues = [v for v in _all_venues(results) if any(v in s for s in shares)]
        segments = [
            BarSeries(
                v, [None if (x := s.get(v)) is None else 100 * x for s in shares], None, colors[v]
            )
            for v in venues
        ]
        title, note = "Share of filled quantity by venue", "lit venues first, then dark, then RFQ"
    else:
        mixes = [_dict(r.get("venue_mix")) for r in results]
        kinds = ("lit", "dark", "rfq")
        segments = [
            BarSeries(k, [None if (x := _num(m.get(k))) is None else 100 * x for m in mixes])
            for k in kinds
        ]
        title, note = "Share of filled quantity by venue kind", "per-venue detail not available"
    return stacked_hbar(
        names,
        segments,
        title=title,
        note=note,
        x_max=100.0,
        x_suffix="%",
        x_label="% of filled quantity",
        width=_FULL_W,
    )


def _sim_venue_table(doc: Mapping[str, Any]) -> str:
    results = _results(doc)
    per_strategy = [(_name(r, i), _venue_rows(r)) for i, r in enumerate(results)]
    if not any(rows for _, rows in per_strategy):
        return _na("Per-venue TCA")
    keys = _markout_keys(
        *(_dict(s.get("markouts_bps")) for _, rows in per_strategy for _, s in rows)
    )
    headers = [
        ("Strategy", ""),
        ("Venue", ""),
        ("Kind", ""),
        ("share#", "of the strategy's filled quantity"),
        ("sent#", "quantity sent in child orders"),
        ("filled#", ""),
        ("fill rate#", "filled / sent"),
        ("price impr. bps#", "vs the far touch, positive = better than crossing"),
        *(
            (f"markout {_horizon_label(k)}#", "mid move after the fill, positive = good")
            for k in keys
        ),
    ]
    rows = []
    for name, venue_rows in per_strategy:
        for j, (venue, s) in enumerate(venue_rows):
            marks = _dict(s.get("markouts_bps"))
            first = _td(name, "") if j == 0 else "<td></td>"
            cells = [
                first,
                _td(venue, ""),
                _td(_text(s.get("kind"), NA), ""),
                _td(_pct(_venue_share(s))),
                _td(_fmt(s.get("sent_qty"), 0)),
                _td(_fmt(s.get("filled_qty"), 0)),
                _td(_pct(s.get("fill_rate"))),
                _td(_fmt(s.get("price_improvement_bps"))),
                *(_signed_td(marks.get(k)) for k in keys),
            ]
            rows.append(f"<tr>{''.join(cells)}</tr>")
    return _table(headers, rows)


def _signed_td(value: object) -> str:
    """A bps cell coloured by sign (positive = good for us)."""
    v = _num(value)
    cls = "num" if v is None or v == 0 else ("num good" if v > 0 else "num bad")
    return _td(_fmt(v), cls)


def _sim_markouts_table(doc: Mapping[str, Any]) -> str:
    results = _results(doc)
    tcas = [(_name(r, i), _dict(r.get("tca"))) for i, r in enumerate(results)]
    marks = [(n, _dict(t.get("markouts_bps")), t) for n, t in tcas]
    keys = _markout_keys(*(m for _, m, _ in marks))
    if not keys and not any(_num(t.get("arrival_to_completion_bps")) is not None for _, t in tcas):
        return ""
    headers = [
        ("Strategy", ""),
        (
            "arrival→completion bps#",
            "mid move from arrival to the last fill, positive = against us",
        ),
        *((f"markout {_horizon_label(k)}#", "") for k in keys),
    ]
    rows = [
        f"<tr>{_td(n, '')}{_td(_fmt(t.get('arrival_to_completion_bps')))}"
        f"{''.join(_signed_td(m.get(k)) for k in keys)}</tr>"
        for n, m, t in marks
    ]
    return "<h3>Markouts of all fills</h3>" + _table(headers, rows)


def _kv(value: object, chosen: str = "", depth: int = 0) -> str:
    """Nested dicts as 'key = value' lines; the chosen alternative in bold."""
    if isinstance(value, Mapping):
        if not value:
            return esc(NA)
        lines = []
        for k, v in value.items():
            inner = _kv(v, depth=depth + 1)
            if isinstance(v, Mapping) and depth == 0:
                inner = "{" + inner.replace("<br>", ", ") + "}"
            key = f'<span class="k">{esc(k)}</span>'
            line = f"{key} = {inner}"
            if chosen and str(k) == chosen:
                line = f'<span class="chosen">{line}</span>'
            lines.append(line)
        return "<br>".join(lines)
    if isinstance(value, list | tuple):
        return esc(", ".join(_scalar(v) for v in value[:12])) + (" …" if len(value) > 12 else "")
    return esc(_scalar(value))


def _scalar(value: object) -> str:
    v = _num(value)
    if v is None:
        return NA if value is None else str(value)
    if isinstance(value, int):
        return format_number(v, 0)
    if abs(v) >= 1000:  # quantities and notionals: separators, not exponents
        return format_number(v, 0 if v.is_integer() else 1)
    return f"{v:.4g}"


def _sim_decisions(doc: Mapping[str, Any]) -> str:
    blocks: list[str] = []
    for i, r in enumerate(_results(doc)):
        decisions = [d for d in _list(r.get("decisions")) if isinstance(d, Mapping)]
        if not decisions:
            continue
        rows = []
        for d in decisions:
            chosen = _text(d.get("chosen"), NA)
            t = _num(d.get("t_s"))
            rows.append(
                "<tr>"
                + _td(NA if t is None else _seconds_label(t))
                + _td(chosen, "")
                + f'<td class="kv">{_kv(_dict(d.get("inputs")))}</td>'
                + f'<td class="kv">{_kv(_dict(d.get("alternatives")), chosen)}</td>'
                + "</tr>"
            )
        table = _table(
            [
                ("time#", "since the parent's start"),
                ("chosen", ""),
                ("inputs", "what the router saw"),
                ("alternatives", "the scores of every option considered; bold = chosen"),
            ],
            rows,
        )
        open_attr = " open" if not blocks else ""
        blocks.append(
            f"<details{open_attr}><summary>{esc(_name(r, i))}: {len(decisions)} decisions"
            f"</summary>{table}</details>"
        )
    return "".join(blocks) if blocks else _na("Decision samples")


def _policy_section(doc: Mapping[str, Any]) -> str:
    """Only where the learned slicer ran and the document has its choices (documents
    from before it existed have an `ml` without them: nothing to say there)."""
    ran = [r for i, r in enumerate(_results(doc)) if _name(r, i) == _POLICY_STRATEGY]
    if not any(isinstance(r.get("paces"), Mapping) for r in ran):
        return ""
    return _section(
        "The learned slicer over time",
        "How `ml` traded, bucket by bucket, next to TWAP: how much of the market's volume "
        "it was, how much it crossed the spread, and the pace its policy set every 5 "
        "minutes. Shaded: the scenario's market phases (the news), which no strategy sees.",
        lambda: _sim_policy(doc),
    )


def render_simulate_html(doc: Mapping[str, Any]) -> str:
    """The simulate report as one HTML page (see the module docstring)."""
    doc = _dict(doc)
    body = "".join(
        [
            _sim_header(doc),
            _section(
                "Results",
                "One row per strategy; IS = spread+fees + impact + timing + opportunity.",
                lambda: _sim_results_table(doc),
            ),
            _section(
                "Schedule vs realised",
                "How much of the parent each strategy had filled over time, against its plan.",
                lambda: _sim_schedule(doc),
            ),
            _policy_section(doc),
            _section(
                "Price path with fills",
                "The realised bid-ask band and mid; each fill is a dot coloured by venue, its "
                "area proportional to the quantity. All panels share their scales.",
                lambda: _sim_price_panels(doc),
            ),
            _section(
                "IS by strategy",
                "What each strategy paid, split into its causes; the dashed line, where shown, is "
                "the hindsight schedule (the best taking schedule knowing the future path; a "
                "reference, not a bound).",
                lambda: _sim_is_chart(doc),
            ),
            _section("Venue mix", "", lambda: _sim_venue_mix(doc)),
            _section(
                "Per-venue quality",
                "Fill rates, price improvement and markouts (bps of the fill price, positive "
                "= good for us: the price moved our way after the fill).",
                lambda: _sim_venue_table(doc) + _sim_markouts_table(doc),
            ),
            _section(
                "Why did you send this there?",
                "A sample of routing decisions with the inputs the router saw and the "
                "alternatives it scored.",
                lambda: _sim_decisions(doc),
            ),
        ]
    )
    return page(f"blockroute simulation: {_text(doc.get('scenario'), '')}", body)


# ----------------------------------------------------------------------------- backtest


def _records(value: object) -> list[Mapping[str, Any]]:
    return [r for r in _list(value) if isinstance(r, Mapping)]


def _ordered(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _bt_scenario(r: Mapping[str, Any]) -> str:
    """The scenario, with the parent's side where the rows come per side (--both-sides:
    buy, sell and both pooled), so that the sides' rows stay apart."""
    sc, side = _text(r.get("scenario")), r.get("side")
    return sc if side is None else f"{sc} ({_text(side)})"


def _bt_header(doc: Mapping[str, Any]) -> str:
    meta = _dict(doc.get("meta"))
    rows = _records(doc.get("rows"))
    wall = _num(meta.get("wall_s"))
    items = [
        ("Scenarios", str(len(_ordered([_text(r.get("scenario")) for r in rows])))),
        ("Strategies", str(len(_ordered([_text(r.get("strategy")) for r in rows])))),
        ("Episodes each", _text(meta.get("episodes"), NA)),
        ("First seed", _text(meta.get("seed0"), NA)),
        ("Workers", _text(meta.get("workers"), NA)),
        ("Wall time", NA if wall is None else f"{wall:,.1f} s"),
    ]
    return (
        "<h1>Backtest</h1>"
        '<p class="lead">Each scenario ran for the same seeds under every strategy, so the '
        "strategies are compared on the same market paths (paired).</p>" + _facts(items)
    )


def _bt_is_chart(doc: Mapping[str, Any]) -> str:
    rows = _records(doc.get("rows"))
    if not rows:
        return _na("Backtest rows")
    scenarios = _ordered([_bt_scenario(r) for r in rows])
    strategies = _ordered([_text(r.get("strategy")) for r in rows])
    cell = {(_bt_scenario(r), _text(r.get("strategy"))): r for r in rows}
    colors = category_colors(strategies)
    series = [
        BarSeries(
            s,
            [_num(_dict(cell.get((sc, s))).get("is_bps_mean")) for sc in scenarios],
            [_num(_dict(cell.get((sc, s))).get("is_bps_stderr")) for sc in scenarios],
            colors[s],
        )
        for s in strategies
    ]
    hind = {_bt_scenario(h): h for h in _records(doc.get("hindsight"))}
    if hind:
        series.append(
            BarSeries(
                "hindsight schedule",
                [_num(_dict(hind.get(sc)).get("is_bps_mean")) for sc in scenarios],
                [_num(_dict(hind.get(sc)).get("is_bps_stderr")) for sc in scenarios],
                "#9aa5b1",
            )
        )
    return bar_chart(
        scenarios,
        series,
        title="Mean implementation shortfall by scenario (bps, positive = cost)",
        note="error bars: ±1 standard error of the mean over episodes",
        y_label="IS, bps of arrival mid",
        width=_FULL_W,
        height=420,
    )


def _bt_rows_table(doc: Mapping[str, Any]) -> str:
    rows = _records(doc.get("rows"))
    if not rows:
        return _na("Backtest rows")
    gaps = {
        (_bt_scenario(g), _text(g.get("strategy"))): _num(g.get("share"))
        for g in _records(doc.get("gap_captured"))
    }
    best: dict[str, float] = {}
    for r in rows:
        v, sc = _num(r.get("is_bps_mean")), _bt_scenario(r)
        if v is not None and (sc not in best or v < best[sc]):
            best[sc] = v
    headers = [
        ("Scenario", ""),
        ("Strategy", ""),
        ("episodes#", ""),
        ("IS mean bps#", "positive = cost"),
        ("IS std#", "standard deviation over episodes"),
        ("IS stderr#", "standard error of the mean"),
        ("completion#", "mean filled / parent quantity"),
        ("gap captured#", "share of the TWAP-to-hindsight gap: 0 = TWAP, 100% = hindsight"),
    ]
    out = []
    for r in rows:
        sc, st = _bt_scenario(r), _text(r.get("strategy"))
        v = _num(r.get("is_bps_mean"))
        cls = ' class="best"' if v is not None and best.get(sc) == v else ""
        cells = [
            _td(sc, ""),
            _td(st, ""),
            _td(_fmt(r.get("episodes"), 0)),
            _td(_fmt(v)),
            _td(_fmt(r.get("is_bps_std"))),
            _td(_fmt(r.get("is_bps_stderr"))),
            _td(_pct(r.get("completion_mean"))),
            _td(_pct(gaps.get((sc, st)), 0)),
        ]
        out.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return _table(headers, out) + '<p class="note">Green: lowest mean IS in its scenario.</p>'


def _bt_paired(doc: Mapping[str, Any]) -> str:
    paired = _records(doc.get("paired"))
    if not paired:
        return _na("Paired differences")
    headers = [
        ("Scenario", ""),
        ("Strategy", ""),
        ("Baseline", ""),
        ("diff mean bps#", "strategy IS minus baseline IS on the same paths; negative = cheaper"),
        ("stderr#", "standard error of the paired difference"),
        ("t#", "diff / stderr"),
        ("n#", "paired episodes"),
        ("verdict", "|t| >= 2: about 95% confidence"),
    ]
    rows = []
    for p in paired:
        diff, se = _num(p.get("diff_mean_bps")), _num(p.get("diff_stderr_bps"))
        t = diff / se if diff is not None and se else None
        if t is None:
            verdict, cls = NA, ""
        elif abs(t) < 2:
            verdict, cls = "no clear difference", ""
        else:
            verdict, cls = ("cheaper", "good") if t < 0 else ("costlier", "bad")
        cells = [
            _td(_bt_scenario(p), ""),
            _td(_text(p.get("strategy")), ""),
            _td(_text(p.get("baseline")), ""),
            _td(_fmt(diff)),
            _td(_fmt(se)),
            _td(_fmt(t)),
            _td(_fmt(p.get("n"), 0)),
            _td(verdict, cls),
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return _table(headers, rows)


def _bt_completion(doc: Mapping[str, Any]) -> str:
    rows = _records(doc.get("rows"))
    scenarios = _ordered([_bt_scenario(r) for r in rows])
    strategies = _ordered([_text(r.get("strategy")) for r in rows])
    cell = {(_bt_scenario(r), _text(r.get("strategy"))): r for r in rows}
    colors = category_colors(strategies)

    def pct(r: Mapping[str, Any]) -> float | None:
        v = _num(r.get("completion_mean"))
        return None if v is None else 100 * v

    series = [
        BarSeries(s, [pct(_dict(cell.get((sc, s)))) for sc in scenarios], None, colors[s])
        for s in strategies
    ]
    return bar_chart(
        scenarios,
        series,
        title="Mean completion by scenario",
        value_labels=True,
        y_label="% of parent filled",
        y_suffix="%",
        width=_FULL_W,
        height=340,
    )


def _bt_hindsight(doc: Mapping[str, Any]) -> str:
    hind = _records(doc.get("hindsight"))
    gaps = _records(doc.get("gap_captured"))
    if not hind and not gaps:
        return _na("Hindsight schedule and gap captured")
    parts = []
    if hind:
        rows = [
            f"<tr>{_td(_bt_scenario(h), '')}{_td(_fmt(h.get('is_bps_mean')))}"
            f"{_td(_fmt(h.get('is_bps_stderr')))}</tr>"
            for h in hind
        ]
        parts.append(
            _table(
                [("Scenario", ""), ("hindsight IS mean bps#", ""), ("stderr#", "")],
                rows,
            )
        )
    if gaps:
        scenarios = _ordered([_bt_scenario(g) for g in gaps])
        strategies = _ordered([_text(g.get("strategy")) for g in gaps])
        share = {(_bt_scenario(g), _text(g.get("strategy"))): g.get("share") for g in gaps}
        rows = [
            f"<tr>{_td(sc, '')}{''.join(_td(_pct(share.get((sc, st)), 0)) for st in strategies)}"
            "</tr>"
            for sc in scenarios
        ]
        parts.append(
            "<h3>Gap captured</h3>"
            '<p class="note">Share of the TWAP-to-hindsight IS gap each strategy closed: 0% = '
            "as TWAP, 100% = as the hindsight schedule, negative = worse than TWAP.</p>"
            + _table([("Scenario", ""), *((f"{st}#", "") for st in strategies)], rows)
        )
    return "".join(parts)


def render_backtest_html(doc: Mapping[str, Any]) -> str:
    """The backtest report as one HTML page (see the module docstring)."""
    doc = _dict(doc)
    body = "".join(
        [
            _bt_header(doc),
            _section("Implementation shortfall", "", lambda: _bt_is_chart(doc)),
            _section("Results", "", lambda: _bt_rows_table(doc)),
            _section(
                "Paired differences",
                "Each strategy against a baseline on the same market paths: pairing removes "
                "the path-to-path noise that both share.",
                lambda: _bt_paired(doc),
            ),
            _section("Completion", "", lambda: _bt_completion(doc)),
            _section("Hindsight schedule and gap captured", "", lambda: _bt_hindsight(doc)),
        ]
    )
    return page("blockroute backtest", body)


# ----------------------------------------------------------------------------- writing


def write_simulate_report(doc: Mapping[str, Any], out_dir: Path) -> Path:
    """Write `out_dir`/index.html for a simulate document; returns its path.

    The folder is created if missing; an OSError from the file system propagates.
    """
    return write_index(render_simulate_html(doc), Path(out_dir))


def write_backtest_report(doc: Mapping[str, Any], out_dir: Path) -> Path:
    """Write `out_dir`/index.html for a backtest document; returns its path."""
    return write_index(render_backtest_html(doc), Path(out_dir))


def write_report(doc: Mapping[str, Any], out_dir: Path) -> Path:
    """Either report, chosen by the document's shape ("results" or "rows")."""
    if "results" in doc:
        return write_simulate_report(doc, out_dir)
    if "rows" in doc:
        return write_backtest_report(doc, out_dir)
    raise ValueError("not a simulate or backtest document: it has neither 'results' nor 'rows'")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m router.report DOC.json DIR``: rebuild a report from a saved document."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m router.report DOC.json OUT_DIR", file=sys.stderr)
        return 2
    try:
        doc = json.loads(Path(args[0]).read_text(encoding="utf-8"))
        if not isinstance(doc, Mapping):
            raise ValueError("the document is not a JSON object")
        index = write_report(doc, Path(args[1]))
    except (OSError, ValueError) as exc:
        print(f"report: {args[0]}: {exc}", file=sys.stderr)
        return 2
    print(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
