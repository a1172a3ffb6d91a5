"""The report of `blockroute simulate`: one page of tables and charts per simulate document.

Input is the plain JSON-able document the command writes (CONTRACT.md keys plus extras),
so a report can be rebuilt later from a saved file (``python -m router.reporting DOC
DIR``). A missing or malformed part makes its section say "not available" instead of
failing; a venue's share is read as ``share`` or ``fill_share``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from router.reporting.charts import (
    PALETTE,
    Band,
    BarSeries,
    RefLine,
    Series,
    area_radii,
    bar_chart,
    category_colors,
    points_by_category,
    stacked_hbar,
    xy_chart,
)
from router.reporting.document import (
    as_dict,
    as_list,
    as_num,
    as_nums,
    as_text,
    decomposition,
    duration,
    horizon_label,
    markout_keys,
    seconds_label,
    sim_results,
    strategy_name,
)
from router.reporting.page import (
    FULL_W,
    NA,
    esc,
    facts,
    fmt_num,
    fmt_pct,
    html_table,
    not_available,
    page,
    section,
    td,
    write_index,
)
from router.reporting.policy import policy_section
from router.reporting.ticks import format_number, nice_ticks

_KIND_ORDER = {"lit": 0, "dark": 1, "rfq": 2}
_PANEL_W = 570  # two price panels side by side
_DECOMPOSITION = (
    ("spread_fees_bps", "spread + fees", "#56B4E9"),
    ("impact_bps", "impact", "#D55E00"),
    ("timing_bps", "timing", "#009E73"),
    ("opportunity_bps", "opportunity", "#CC79A7"),
)


def _venue_rows(result: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(venue, stats) ordered lit, dark, rfq, then by name."""
    venues = as_dict(as_dict(result.get("tca")).get("venues"))
    rows = [(str(v), as_dict(s)) for v, s in venues.items()]
    return sorted(rows, key=lambda r: (_KIND_ORDER.get(as_text(r[1].get("kind")), 9), r[0]))


def _venue_share(stats: Mapping[str, Any]) -> float | None:
    share = as_num(stats.get("share"))
    return share if share is not None else as_num(stats.get("fill_share"))


def _all_venues(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """Venues seen anywhere (TCA tables or fills), in kind-then-name order."""
    kinds: dict[str, str] = {}
    for r in results:
        for venue, stats in _venue_rows(r):
            kinds.setdefault(venue, as_text(stats.get("kind")))
        fills = as_dict(r.get("fills"))
        fill_kinds = as_list(fills.get("kind"))
        for j, venue in enumerate(as_list(fills.get("venue"))):
            kinds.setdefault(as_text(venue), as_text(fill_kinds[j]) if j < len(fill_kinds) else "")
    return sorted(kinds, key=lambda v: (_KIND_ORDER.get(kinds[v], 9), v))


def _sim_header(doc: Mapping[str, Any]) -> str:
    parent = as_dict(doc.get("parent"))
    horizon = as_num(parent.get("horizon_s"))
    qty = as_num(parent.get("qty"))
    hindsight = as_num(as_dict(doc.get("hindsight")).get("is_bps"))
    items = [
        ("Scenario", as_text(doc.get("scenario"), NA)),
        ("Symbol", as_text(parent.get("symbol"), NA)),
        ("Side", as_text(parent.get("side"), NA)),
        ("Quantity", NA if qty is None else format_number(qty)),
        ("Horizon", NA if horizon is None else duration(horizon)),
        ("Arrival mid", fmt_num(parent.get("arrival_mid"), 4)),
        ("Seed", as_text(doc.get("seed"), NA)),
    ]
    if hindsight is not None:
        items.append(("Hindsight schedule IS", format_number(hindsight, 2) + " bps"))
    return (
        f"<h1>Simulation: {esc(as_text(doc.get('scenario'), 'unnamed scenario'))}</h1>"
        '<p class="lead">Every strategy ran on the same simulated market path (same seed).</p>'
        + facts(items)
    )


def _sim_results_table(doc: Mapping[str, Any]) -> str:
    results = sim_results(doc)
    if not results:
        return not_available("Results")
    gaps = as_dict(doc.get("gap_captured"))
    costs = [c for r in results if (c := as_num(r.get("is_bps"))) is not None]
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
        parts = decomposition(as_dict(r.get("tca")))
        mix = as_dict(r.get("venue_mix"))
        name = strategy_name(r, i)
        is_bps = as_num(r.get("is_bps"))
        cls = ' class="best"' if best is not None and is_bps == best and len(results) > 1 else ""
        filled = as_num(r.get("filled_qty"))
        cells = [
            td(name, ""),
            td(fmt_num(is_bps)),
            *(td(fmt_num(parts.get(key))) for key, _, _ in _DECOMPOSITION),
            td(fmt_num(r.get("vwap_slippage_bps"))),
            td(fmt_pct(r.get("completion"))),
            td(NA if filled is None else format_number(filled)),
            td(fmt_num(r.get("avg_price"), 4)),
            td(fmt_num(r.get("n_child_orders"), 0)),
            *(td(fmt_pct(mix.get(k), 0)) for k in ("lit", "dark", "rfq")),
            td(fmt_pct(gaps.get(name), 0)),
        ]
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    note = '<p class="note">Green row: lowest IS. Hover a column title for its definition.</p>'
    return html_table(headers, rows) + note


def _sim_schedule(doc: Mapping[str, Any]) -> str:
    results = sim_results(doc)
    qty = as_num(as_dict(doc.get("parent")).get("qty"))
    if not qty or qty <= 0:
        return not_available("Parent quantity")
    colors = category_colors(strategy_name(r, i) for i, r in enumerate(results))

    def pct(values: list[float | None]) -> list[float | None]:
        return [None if v is None else 100 * v / qty for v in values]

    series: list[Series] = []
    for i, r in enumerate(results):
        sched = as_dict(r.get("schedule"))
        t = as_nums(sched.get("t_s"))
        if not t:
            continue
        name = strategy_name(r, i)
        series.append(Series(name, t, pct(as_nums(sched.get("filled"))), colors[name], step=True))
        target = as_nums(sched.get("target"))
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
        return not_available("Schedules")
    horizon = as_num(as_dict(doc.get("parent")).get("horizon_s"))
    return xy_chart(
        title="Cumulative filled vs target",
        note="solid: filled; dashed: the strategy's target at each decision time",
        series=series,
        x_label="time since start (min)",
        y_label="% of parent quantity",
        y_suffix="%",
        time_axis=True,
        x_domain=(0.0, horizon) if horizon else None,
        width=FULL_W,
        height=420,
    )


def _sim_price_panels(doc: Mapping[str, Any]) -> str:
    results = sim_results(doc)
    common = as_dict(doc.get("path"))
    # each strategy's own realised market when the document has it (its own impact is
    # in it), else the common path
    paths = []
    for r in results:
        p = as_dict(r.get("path")) or common
        pt_, bid_, ask_ = as_nums(p.get("t_s")), as_nums(p.get("bid")), as_nums(p.get("ask"))
        mid_ = [
            None if b is None or a is None else (a + b) / 2
            for b, a in zip(bid_, ask_, strict=False)
        ]
        paths.append((pt_, bid_, ask_, mid_))
    fills = [as_dict(r.get("fills")) for r in results]
    if not any(as_list(f.get("t_s")) for f in fills) and not any(p[0] for p in paths):
        return not_available("Market path and fills")

    prices = [v for p in paths for v in p[1] + p[2] if v is not None]
    qty_max = 0.0
    t_max = max((v for p in paths for v in p[0] if v is not None), default=0.0)
    for f in fills:
        prices += [v for v in as_nums(f.get("price")) if v is not None]
        qty_max = max([qty_max, *(v for v in as_nums(f.get("qty")) if v is not None)])
        t_max = max([t_max, *(v for v in as_nums(f.get("t_s")) if v is not None)])
    parent = as_dict(doc.get("parent"))
    arrival = as_num(parent.get("arrival_mid"))
    if arrival is not None:
        prices.append(arrival)
    if not prices:
        return not_available("Prices")
    ticks = nice_ticks(min(prices), max(prices))
    y_domain = (ticks[0], ticks[-1])
    horizon = as_num(parent.get("horizon_s")) or t_max
    x_domain = (0.0, max(horizon, t_max)) if max(horizon, t_max) > 0 else None
    venue_colors = category_colors(_all_venues(results))
    refs = [RefLine(arrival, "arrival mid")] if arrival is not None else []

    panels = []
    for i, (r, f, (pt, bid, ask, mid)) in enumerate(zip(results, fills, paths, strict=True)):
        t = as_nums(f.get("t_s"))
        price = as_nums(f.get("price"))
        q = as_nums(f.get("qty"))
        venues = [as_text(v) for v in as_list(f.get("venue"))]
        kinds = [as_text(k) for k in as_list(f.get("kind"))] + [""] * len(t)
        n = min(len(t), len(price), len(venues))
        labels = [
            f"{venues[j]} {kinds[j]}: {fmt_num(q[j] if j < len(q) else None, 0)} @ "
            f"{fmt_num(price[j], 4)}, t = {seconds_label(t[j] or 0.0)}"
            for j in range(n)
        ]
        radii = area_radii(
            q[:n] + [None] * (n - len(q[:n])), v_max=qty_max or None, r_max=9.0, r_min=2.0
        )
        panels.append(
            xy_chart(
                title=strategy_name(r, i),
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
        return not_available("Fills")
    return f'<div class="grid">{"".join(panels)}</div>'


def _sim_is_chart(doc: Mapping[str, Any]) -> str:
    results = sim_results(doc)
    names = [strategy_name(r, i) for i, r in enumerate(results)]
    totals = [as_num(r.get("is_bps")) for r in results]
    hindsight = as_num(as_dict(doc.get("hindsight")).get("is_bps"))
    refs = [RefLine(hindsight, f"hindsight schedule {hindsight:.1f} bps")] if hindsight else []
    parts = [decomposition(as_dict(r.get("tca"))) for r in results]
    have_parts = any(as_num(p.get(k)) is not None for p in parts for k, _, _ in _DECOMPOSITION)
    if not any(v is not None for v in totals) and not have_parts:
        return not_available("Implementation shortfall")
    if have_parts:
        series = [
            BarSeries(label, [as_num(p.get(key)) for p in parts], color=color)
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
            width=FULL_W,
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
        width=FULL_W,
        height=380,
    )


def _sim_venue_mix(doc: Mapping[str, Any]) -> str:
    results = sim_results(doc)
    names = [strategy_name(r, i) for i, r in enumerate(results)]
    if not results:
        return not_available("Venue mix")
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
        mixes = [as_dict(r.get("venue_mix")) for r in results]
        kinds = ("lit", "dark", "rfq")
        segments = [
            BarSeries(k, [None if (x := as_num(m.get(k))) is None else 100 * x for m in mixes])
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
        width=FULL_W,
    )


def _sim_venue_table(doc: Mapping[str, Any]) -> str:
    results = sim_results(doc)
    per_strategy = [(strategy_name(r, i), _venue_rows(r)) for i, r in enumerate(results)]
    if not any(rows for _, rows in per_strategy):
        return not_available("Per-venue TCA")
    keys = markout_keys(
        *(as_dict(s.get("markouts_bps")) for _, rows in per_strategy for _, s in rows)
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
            (f"markout {horizon_label(k)}#", "mid move after the fill, positive = good")
            for k in keys
        ),
    ]
    rows = []
    for name, venue_rows in per_strategy:
        for j, (venue, s) in enumerate(venue_rows):
            marks = as_dict(s.get("markouts_bps"))
            first = td(name, "") if j == 0 else "<td></td>"
            cells = [
                first,
                td(venue, ""),
                td(as_text(s.get("kind"), NA), ""),
                td(fmt_pct(_venue_share(s))),
                td(fmt_num(s.get("sent_qty"), 0)),
                td(fmt_num(s.get("filled_qty"), 0)),
                td(fmt_pct(s.get("fill_rate"))),
                td(fmt_num(s.get("price_improvement_bps"))),
                *(_signed_td(marks.get(k)) for k in keys),
            ]
            rows.append(f"<tr>{''.join(cells)}</tr>")
    return html_table(headers, rows)


def _signed_td(value: object) -> str:
    """A bps cell coloured by sign (positive = good for us)."""
    v = as_num(value)
    cls = "num" if v is None or v == 0 else ("num good" if v > 0 else "num bad")
    return td(fmt_num(v), cls)


def _sim_markouts_table(doc: Mapping[str, Any]) -> str:
    results = sim_results(doc)
    tcas = [(strategy_name(r, i), as_dict(r.get("tca"))) for i, r in enumerate(results)]
    marks = [(n, as_dict(t.get("markouts_bps")), t) for n, t in tcas]
    keys = markout_keys(*(m for _, m, _ in marks))
    if not keys and not any(
        as_num(t.get("arrival_to_completion_bps")) is not None for _, t in tcas
    ):
        return ""
    headers = [
        ("Strategy", ""),
        (
            "arrival→completion bps#",
            "mid move from arrival to the last fill, positive = against us",
        ),
        *((f"markout {horizon_label(k)}#", "") for k in keys),
    ]
    rows = [
        f"<tr>{td(n, '')}{td(fmt_num(t.get('arrival_to_completion_bps')))}"
        f"{''.join(_signed_td(m.get(k)) for k in keys)}</tr>"
        for n, m, t in marks
    ]
    return "<h3>Markouts of all fills</h3>" + html_table(headers, rows)


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
    v = as_num(value)
    if v is None:
        return NA if value is None else str(value)
    if isinstance(value, int):
        return format_number(v, 0)
    if abs(v) >= 1000:  # quantities and notionals: separators, not exponents
        return format_number(v, 0 if v.is_integer() else 1)
    return f"{v:.4g}"


def _sim_decisions(doc: Mapping[str, Any]) -> str:
    blocks: list[str] = []
    for i, r in enumerate(sim_results(doc)):
        decisions = [d for d in as_list(r.get("decisions")) if isinstance(d, Mapping)]
        if not decisions:
            continue
        rows = []
        for d in decisions:
            chosen = as_text(d.get("chosen"), NA)
            t = as_num(d.get("t_s"))
            rows.append(
                "<tr>"
                + td(NA if t is None else seconds_label(t))
                + td(chosen, "")
                + f'<td class="kv">{_kv(as_dict(d.get("inputs")))}</td>'
                + f'<td class="kv">{_kv(as_dict(d.get("alternatives")), chosen)}</td>'
                + "</tr>"
            )
        table = html_table(
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
            f"<details{open_attr}><summary>{esc(strategy_name(r, i))}: {len(decisions)} decisions"
            f"</summary>{table}</details>"
        )
    return "".join(blocks) if blocks else not_available("Decision samples")


def render_simulate_html(doc: Mapping[str, Any]) -> str:
    """The simulate report as one HTML page (see the module docstring)."""
    doc = as_dict(doc)
    body = "".join(
        [
            _sim_header(doc),
            section(
                "Results",
                "One row per strategy; IS = spread+fees + impact + timing + opportunity.",
                lambda: _sim_results_table(doc),
            ),
            section(
                "Schedule vs realised",
                "How much of the parent each strategy had filled over time, against its plan.",
                lambda: _sim_schedule(doc),
            ),
            policy_section(doc),
            section(
                "Price path with fills",
                "The realised bid-ask band and mid; each fill is a dot coloured by venue, its "
                "area proportional to the quantity. All panels share their scales.",
                lambda: _sim_price_panels(doc),
            ),
            section(
                "IS by strategy",
                "What each strategy paid, split into its causes; the dashed line, where shown, is "
                "the hindsight schedule (the best taking schedule knowing the future path; a "
                "reference, not a bound).",
                lambda: _sim_is_chart(doc),
            ),
            section("Venue mix", "", lambda: _sim_venue_mix(doc)),
            section(
                "Per-venue quality",
                "Fill rates, price improvement and markouts (bps of the fill price, positive "
                "= good for us: the price moved our way after the fill).",
                lambda: _sim_venue_table(doc) + _sim_markouts_table(doc),
            ),
            section(
                "Why did you send this there?",
                "A sample of routing decisions with the inputs the router saw and the "
                "alternatives it scored.",
                lambda: _sim_decisions(doc),
            ),
        ]
    )
    return page(f"blockroute simulation: {as_text(doc.get('scenario'), '')}", body)


def write_simulate_report(doc: Mapping[str, Any], out_dir: Path) -> Path:
    """Write `out_dir`/index.html for a simulate document; returns its path.

    The folder is created if missing; an OSError from the file system propagates.
    """
    return write_index(render_simulate_html(doc), Path(out_dir))
