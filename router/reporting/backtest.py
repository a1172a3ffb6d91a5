"""The report of `blockroute backtest`: mean IS with error bars, the rows, the paired
differences, completion, and the hindsight schedule with the gap each strategy captured.
Rows per side (``--both-sides``) stay apart, labelled with their side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from router.reporting.charts import (
    BarSeries,
    bar_chart,
    category_colors,
)
from router.reporting.document import (
    as_dict,
    as_list,
    as_num,
    as_text,
)
from router.reporting.page import (
    FULL_W,
    NA,
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


def _records(value: object) -> list[Mapping[str, Any]]:
    return [r for r in as_list(value) if isinstance(r, Mapping)]


def _ordered(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _bt_scenario(r: Mapping[str, Any]) -> str:
    """The scenario, with the parent's side where the rows come per side (--both-sides:
    buy, sell and both pooled), so that the sides' rows stay apart."""
    sc, side = as_text(r.get("scenario")), r.get("side")
    return sc if side is None else f"{sc} ({as_text(side)})"


def _bt_header(doc: Mapping[str, Any]) -> str:
    meta = as_dict(doc.get("meta"))
    rows = _records(doc.get("rows"))
    wall = as_num(meta.get("wall_s"))
    items = [
        ("Scenarios", str(len(_ordered([as_text(r.get("scenario")) for r in rows])))),
        ("Strategies", str(len(_ordered([as_text(r.get("strategy")) for r in rows])))),
        ("Episodes each", as_text(meta.get("episodes"), NA)),
        ("First seed", as_text(meta.get("seed0"), NA)),
        ("Workers", as_text(meta.get("workers"), NA)),
        ("Wall time", NA if wall is None else f"{wall:,.1f} s"),
    ]
    return (
        "<h1>Backtest</h1>"
        '<p class="lead">Each scenario ran for the same seeds under every strategy, so the '
        "strategies are compared on the same market paths (paired).</p>" + facts(items)
    )


def _bt_is_chart(doc: Mapping[str, Any]) -> str:
    rows = _records(doc.get("rows"))
    if not rows:
        return not_available("Backtest rows")
    scenarios = _ordered([_bt_scenario(r) for r in rows])
    strategies = _ordered([as_text(r.get("strategy")) for r in rows])
    cell = {(_bt_scenario(r), as_text(r.get("strategy"))): r for r in rows}
    colors = category_colors(strategies)
    series = [
        BarSeries(
            s,
            [as_num(as_dict(cell.get((sc, s))).get("is_bps_mean")) for sc in scenarios],
            [as_num(as_dict(cell.get((sc, s))).get("is_bps_stderr")) for sc in scenarios],
            colors[s],
        )
        for s in strategies
    ]
    hind = {_bt_scenario(h): h for h in _records(doc.get("hindsight"))}
    if hind:
        series.append(
            BarSeries(
                "hindsight schedule",
                [as_num(as_dict(hind.get(sc)).get("is_bps_mean")) for sc in scenarios],
                [as_num(as_dict(hind.get(sc)).get("is_bps_stderr")) for sc in scenarios],
                "#9aa5b1",
            )
        )
    return bar_chart(
        scenarios,
        series,
        title="Mean implementation shortfall by scenario (bps, positive = cost)",
        note="error bars: ±1 standard error of the mean over episodes",
        y_label="IS, bps of arrival mid",
        width=FULL_W,
        height=420,
    )


def _bt_rows_table(doc: Mapping[str, Any]) -> str:
    rows = _records(doc.get("rows"))
    if not rows:
        return not_available("Backtest rows")
    gaps = {
        (_bt_scenario(g), as_text(g.get("strategy"))): as_num(g.get("share"))
        for g in _records(doc.get("gap_captured"))
    }
    best: dict[str, float] = {}
    for r in rows:
        v, sc = as_num(r.get("is_bps_mean")), _bt_scenario(r)
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
        sc, st = _bt_scenario(r), as_text(r.get("strategy"))
        v = as_num(r.get("is_bps_mean"))
        cls = ' class="best"' if v is not None and best.get(sc) == v else ""
        cells = [
            td(sc, ""),
            td(st, ""),
            td(fmt_num(r.get("episodes"), 0)),
            td(fmt_num(v)),
            td(fmt_num(r.get("is_bps_std"))),
            td(fmt_num(r.get("is_bps_stderr"))),
            td(fmt_pct(r.get("completion_mean"))),
            td(fmt_pct(gaps.get((sc, st)), 0)),
        ]
        out.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return html_table(headers, out) + '<p class="note">Green: lowest mean IS in its scenario.</p>'


def _bt_paired(doc: Mapping[str, Any]) -> str:
    paired = _records(doc.get("paired"))
    if not paired:
        return not_available("Paired differences")
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
        diff, se = as_num(p.get("diff_mean_bps")), as_num(p.get("diff_stderr_bps"))
        t = diff / se if diff is not None and se else None
        if t is None:
            verdict, cls = NA, ""
        elif abs(t) < 2:
            verdict, cls = "no clear difference", ""
        else:
            verdict, cls = ("cheaper", "good") if t < 0 else ("costlier", "bad")
        cells = [
            td(_bt_scenario(p), ""),
            td(as_text(p.get("strategy")), ""),
            td(as_text(p.get("baseline")), ""),
            td(fmt_num(diff)),
            td(fmt_num(se)),
            td(fmt_num(t)),
            td(fmt_num(p.get("n"), 0)),
            td(verdict, cls),
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return html_table(headers, rows)


def _bt_completion(doc: Mapping[str, Any]) -> str:
    rows = _records(doc.get("rows"))
    scenarios = _ordered([_bt_scenario(r) for r in rows])
    strategies = _ordered([as_text(r.get("strategy")) for r in rows])
    cell = {(_bt_scenario(r), as_text(r.get("strategy"))): r for r in rows}
    colors = category_colors(strategies)

    def pct(r: Mapping[str, Any]) -> float | None:
        v = as_num(r.get("completion_mean"))
        return None if v is None else 100 * v

    series = [
        BarSeries(s, [pct(as_dict(cell.get((sc, s)))) for sc in scenarios], None, colors[s])
        for s in strategies
    ]
    return bar_chart(
        scenarios,
        series,
        title="Mean completion by scenario",
        value_labels=True,
        y_label="% of parent filled",
        y_suffix="%",
        width=FULL_W,
        height=340,
    )


def _bt_hindsight(doc: Mapping[str, Any]) -> str:
    hind = _records(doc.get("hindsight"))
    gaps = _records(doc.get("gap_captured"))
    if not hind and not gaps:
        return not_available("Hindsight schedule and gap captured")
    parts = []
    if hind:
        rows = [
            f"<tr>{td(_bt_scenario(h), '')}{td(fmt_num(h.get('is_bps_mean')))}"
            f"{td(fmt_num(h.get('is_bps_stderr')))}</tr>"
            for h in hind
        ]
        parts.append(
            html_table(
                [("Scenario", ""), ("hindsight IS mean bps#", ""), ("stderr#", "")],
                rows,
            )
        )
    if gaps:
        scenarios = _ordered([_bt_scenario(g) for g in gaps])
        strategies = _ordered([as_text(g.get("strategy")) for g in gaps])
        share = {(_bt_scenario(g), as_text(g.get("strategy"))): g.get("share") for g in gaps}
        rows = [
            f"<tr>{td(sc, '')}{''.join(td(fmt_pct(share.get((sc, st)), 0)) for st in strategies)}"
            "</tr>"
            for sc in scenarios
        ]
        parts.append(
            "<h3>Gap captured</h3>"
            '<p class="note">Share of the TWAP-to-hindsight IS gap each strategy closed: 0% = '
            "as TWAP, 100% = as the hindsight schedule, negative = worse than TWAP.</p>"
            + html_table([("Scenario", ""), *((f"{st}#", "") for st in strategies)], rows)
        )
    return "".join(parts)


def render_backtest_html(doc: Mapping[str, Any]) -> str:
    """The backtest report as one HTML page (see the module docstring)."""
    doc = as_dict(doc)
    body = "".join(
        [
            _bt_header(doc),
            section("Implementation shortfall", "", lambda: _bt_is_chart(doc)),
            section("Results", "", lambda: _bt_rows_table(doc)),
            section(
                "Paired differences",
                "Each strategy against a baseline on the same market paths: pairing removes "
                "the path-to-path noise that both share.",
                lambda: _bt_paired(doc),
            ),
            section("Completion", "", lambda: _bt_completion(doc)),
            section("Hindsight schedule and gap captured", "", lambda: _bt_hindsight(doc)),
        ]
    )
    return page("blockroute backtest", body)


def write_backtest_report(doc: Mapping[str, Any], out_dir: Path) -> Path:
    """Write `out_dir`/index.html for a backtest document; returns its path."""
    return write_index(render_backtest_html(doc), Path(out_dir))
