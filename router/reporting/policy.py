"""The simulate report's section on the learned slicer: how `ml` traded, bucket by
bucket, next to TWAP (participation, share taken as taker) and the pace its policy chose,
with the scenario's market phases shaded."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from router.reporting.charts import (
    Band,
    Points,
    RefLine,
    Series,
    category_colors,
    xy_chart,
)
from router.reporting.document import (
    as_dict,
    as_list,
    as_num,
    as_nums,
    as_text,
    duration,
    seconds_label,
    sim_results,
    strategy_name,
)
from router.reporting.page import (
    FULL_W,
    fmt_num,
    not_available,
    section,
)
from router.reporting.ticks import nice_ticks

_POLICY_STRATEGY = "ml"  # the learned slicer, charted against `twap`
_POLICY_BUCKET_S = 300.0  # its behaviour per bucket of this length: the policy's step
_POLICY_MAX_BUCKETS = 400  # wider buckets beyond: a malformed horizon must not hang
_PHASE_COLOR = "#F0E442"


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
    fills = as_dict(result.get("fills"))
    labels = [as_text(x) for x in as_list(fills.get(key))]
    t, q = as_nums(fills.get("t_s")), as_nums(fills.get("qty"))
    if not labels or len(labels) != len(t):
        return None
    chosen = [j for j, label in enumerate(labels) if keep(label)]
    return _bucket_sums(
        [t[j] for j in chosen], [q[j] if j < len(q) else None for j in chosen], edges
    )


def _ratio(num: Sequence[float], den: Sequence[float]) -> list[float | None]:
    return [100 * a / b if b > 0 else None for a, b in zip(num, den, strict=True)]


def participation(result: Mapping[str, Any], edges: Sequence[float]) -> list[float | None]:
    """Own fills / all volume printed per bucket, in %: the lit tape (own trades
    included) plus the parent's own dark and RFQ fills, which the tape does not carry."""
    mv = as_dict(result.get("market_volume"))
    step = as_num(mv.get("bucket_s"))
    tape = as_nums(mv.get("qty"))
    own = _fill_sums(result, "kind", lambda k: True, edges)
    off_book = _fill_sums(result, "kind", lambda k: k in ("dark", "rfq"), edges)
    if not step or not tape or own is None or off_book is None:
        return []
    market = _bucket_sums([i * step for i in range(len(tape))], tape, edges)
    return _ratio(own, [m + a for m, a in zip(market, off_book, strict=True)])


def taker_share(result: Mapping[str, Any], edges: Sequence[float]) -> list[float | None]:
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
    for ph in as_list(doc.get("phases")):
        start, end = as_num(as_dict(ph).get("start_s")), as_num(as_dict(ph).get("end_s"))
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
    horizon = as_num(as_dict(doc.get("parent")).get("horizon_s"))
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
        width=FULL_W,
        height=300,
    )


def _sim_policy(doc: Mapping[str, Any]) -> str:
    """The learned slicer's behaviour over time next to TWAP's: participation, share
    taken as taker, and the pace its policy chose."""
    results = sim_results(doc)
    named = {strategy_name(r, i): r for i, r in enumerate(results)}
    horizon = as_num(as_dict(doc.get("parent")).get("horizon_s"))
    if _POLICY_STRATEGY not in named or not horizon or horizon <= 0:
        return not_available("The learned slicer's run")
    colors = category_colors(named)
    compared = [n for n in (_POLICY_STRATEGY, "twap") if n in named]
    bucket_s = max(_POLICY_BUCKET_S, horizon / _POLICY_MAX_BUCKETS)  # a day: still 5 min
    edges = _bucket_edges(horizon, bucket_s)
    bucket = f"per {duration(bucket_s)}"
    charts = []
    for what, measure, title, note in (
        (
            "participation",
            participation,
            f"Participation rate ({bucket})",
            "own fills / all volume printed: the lit tape (own trades included) plus the "
            "parent's own dark and RFQ fills",
        ),
        (
            "taker share",
            taker_share,
            f"Aggressiveness: share of filled quantity taken as taker ({bucket})",
            "lit fills that crossed the spread; passive, midpoint and RFQ fills are not",
        ),
    ):
        values = {n: measure(named[n], edges) for n in compared}
        series = [Series(n, *_held(edges, v), colors[n], step=True) for n, v in values.items() if v]
        if not series:
            charts.append(not_available(f"{what.capitalize()} (fills or market volume)"))
            continue
        top = max((y for v in values.values() for y in v if y is not None), default=0.0)
        y_top = min(100.0, nice_ticks(0.0, max(top, 1.0))[-1])
        charts.append(_policy_chart(doc, title, note, series, (0.0, y_top), "%", "%"))
    charts.append(_pace_chart(doc, named[_POLICY_STRATEGY], colors[_POLICY_STRATEGY], horizon))
    return "".join(charts)


def _pace_chart(doc: Mapping[str, Any], ml: Mapping[str, Any], color: str, horizon: float) -> str:
    """The pace multiplier the policy chose at each step, held until the next one."""
    paces = as_dict(ml.get("paces"))
    t, m = as_nums(paces.get("t_s")), as_nums(paces.get("multiplier"))
    actions = as_nums(paces.get("action")) + [None] * len(t)
    n = min(len(t), len(m))
    if n == 0:
        return not_available("The policy's pace")
    labels = [
        f"t = {seconds_label(t[j] or 0.0)}: action {fmt_num(actions[j])}, pace ×{fmt_num(m[j])}"
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


def policy_section(doc: Mapping[str, Any]) -> str:
    """Only where the learned slicer ran and the document has its choices (documents
    from before it existed have an `ml` without them: nothing to say there)."""
    ran = [r for i, r in enumerate(sim_results(doc)) if strategy_name(r, i) == _POLICY_STRATEGY]
    if not any(isinstance(r.get("paces"), Mapping) for r in ran):
        return ""
    return section(
        "The learned slicer over time",
        "How `ml` traded, bucket by bucket, next to TWAP: how much of the market's volume "
        "it was, how much it crossed the spread, and the pace its policy set every 5 "
        "minutes. Shaded: the scenario's market phases (the news), which no strategy sees.",
        lambda: _sim_policy(doc),
    )
