"""The market report: a replayed capture as pictures (`blockroute replay report`).

Its document (simulators/replay/pictures.py) holds the replayed book one point a
second, the depth profile and the trade prints. The page: the facts of the capture,
the mid with the trade prints (buys and sells) over it, the spread over time, the depth
near the mid and at the touch over time, and the depth profile by distance from the mid.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from router.reporting.charts import (
    BarSeries,
    Series,
    area_radii,
    bar_chart,
    points_by_category,
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
)
from router.reporting.page import FULL_W, NA, esc, facts, fmt_num, page, section, write_index
from router.reporting.ticks import format_number

BUY, SELL = "#0b6e4f", "#a61b1b"
BID_C, ASK_C = "#0072B2", "#D55E00"


def _mid(path: Mapping[str, Any]) -> tuple[list[float | None], list[float | None]]:
    bid, ask = as_nums(path.get("bid")), as_nums(path.get("ask"))
    mid = [None if b is None or a is None else (a + b) / 2 for b, a in zip(bid, ask, strict=False)]
    return as_nums(path.get("t_s")), mid


def _header(doc: Mapping[str, Any]) -> str:
    inst = as_dict(doc.get("instrument"))
    cur, unit = as_text(inst.get("currency")), as_text(inst.get("unit"))
    trades = as_dict(doc.get("trades"))
    qty = [q for q in as_nums(trades.get("qty")) if q is not None]
    span = as_num(doc.get("duration_s"))
    events = as_num(doc.get("events"))
    items = [
        ("Capture", as_text(doc.get("replay"), NA)),
        ("Instrument", as_text(inst.get("symbol"), NA)),
        ("Length", NA if span is None else duration(span)),
        ("Live events", NA if events is None else format_number(events)),
        ("Trades", format_number(len(qty))),
        ("Traded", f"{format_number(sum(qty), 4)} {unit}".strip()),
        ("Tick", f"{fmt_num(inst.get('tick_size'), 8)} {cur}".strip()),
    ]
    return (
        f"<h1>Market replay: {esc(as_text(doc.get('replay'), 'capture'))}</h1>"
        '<p class="lead">The capture replayed order by order through the project\'s own '
        "book; the book sampled every "
        f"{esc(as_text(doc.get('sample_ms'), '100'))} ms of exchange time and shown one "
        "point a second.</p>" + facts(items)
    )


def _prices(doc: Mapping[str, Any]) -> str:
    t, mid = _mid(as_dict(doc.get("path")))
    trades = as_dict(doc.get("trades"))
    tt, px, q = as_nums(trades.get("t_s")), as_nums(trades.get("price")), as_nums(trades.get("qty"))
    side = [as_text(s) for s in as_list(trades.get("side"))]
    n = min(len(tt), len(px), len(side))
    inst = as_dict(doc.get("instrument"))
    cur, unit = as_text(inst.get("currency")), as_text(inst.get("unit"))

    def label(i: int) -> str:
        size = q[i] if i < len(q) else None
        amount = NA if size is None else f"{size:.8g} {unit}".strip()
        return f"{side[i]} {amount} @ {fmt_num(px[i], 2)}, t = {seconds_label(tt[i] or 0.0)}"

    labels = [label(i) for i in range(n)]
    return xy_chart(
        title="Mid and trade prints",
        note=f"{n:,} trades; dot area ∝ size",
        series=[Series("mid", t, mid, "#52606d", width=1.1)],
        points=points_by_category(
            tt[:n],
            px[:n],
            side[:n],
            radii=area_radii(q[:n], r_max=9.0, r_min=2.0),
            colors={"buy": BUY, "sell": SELL},
            labels=labels,
        ),
        time_axis=True,
        x_label="time since start (min)",
        y_label=f"price ({cur})" if cur else "price",
        width=FULL_W,
        height=380,
    )


def _spread(doc: Mapping[str, Any]) -> str:
    path = as_dict(doc.get("path"))
    t = as_nums(path.get("t_s"))
    bid, ask = as_nums(path.get("bid")), as_nums(path.get("ask"))
    bps = [
        None if b is None or a is None or a + b <= 0 else (a - b) / ((a + b) / 2) * 1e4
        for b, a in zip(bid, ask, strict=False)
    ]
    return xy_chart(
        title="Spread",
        series=[Series("spread", t, bps, "#0072B2", width=1.0, step=True)],
        time_axis=True,
        x_label="time since start (min)",
        y_label="bps of the mid",
        legend=False,
        width=FULL_W,
        height=260,
    )


def _depth_over_time(doc: Mapping[str, Any]) -> str:
    path = as_dict(doc.get("path"))
    t = as_nums(path.get("t_s"))
    unit = as_text(as_dict(doc.get("instrument")).get("unit"))
    band = fmt_num(doc.get("band_bps"), 0)
    near = xy_chart(
        title=f"Depth within {band} bps of the mid",
        series=[
            Series("bids", t, as_nums(path.get("bid_band")), BID_C, width=1.2),
            Series("asks", t, as_nums(path.get("ask_band")), ASK_C, width=1.2),
        ],
        time_axis=True,
        x_label="time since start (min)",
        y_label=unit,
        width=FULL_W,
        height=300,
    )
    touch = xy_chart(
        title="Size at the best bid and the best ask",
        series=[
            Series("best bid", t, as_nums(path.get("bid_touch")), BID_C, width=1.0, step=True),
            Series("best ask", t, as_nums(path.get("ask_touch")), ASK_C, width=1.0, step=True),
        ],
        time_axis=True,
        x_label="time since start (min)",
        y_label=unit,
        width=FULL_W,
        height=260,
    )
    return near + touch


def _profile(doc: Mapping[str, Any]) -> str:
    prof = as_dict(doc.get("profile"))
    bps = as_nums(prof.get("bps"))
    if not bps:
        raise ValueError("no depth profile")
    cats = [f"{b:g}" for b in bps if b is not None]
    unit = as_text(as_dict(doc.get("instrument")).get("unit"))
    return bar_chart(
        cats,
        [
            BarSeries("bids", as_nums(prof.get("bid")), color=BID_C),
            BarSeries("asks", as_nums(prof.get("ask")), color=ASK_C),
        ],
        title="Depth profile: mean size resting by distance from the mid",
        note="bin k: k to k+1 bps from the mid, averaged over the samples",
        y_label=unit,
        width=FULL_W,
        height=320,
    )


def render_market_html(doc: Mapping[str, Any]) -> str:
    """The market report as one HTML page (see the module docstring)."""
    doc = as_dict(doc)
    body = "".join(
        [
            _header(doc),
            section(
                "Mid and trades",
                "The replayed mid; each trade print is a dot at its price, green where a "
                "buyer took the offer, red where a seller hit the bid.",
                lambda: _prices(doc),
            ),
            section("Spread", "Best ask less best bid, in bps of the mid.", lambda: _spread(doc)),
            section(
                "Depth",
                "Size resting near the mid and at the best price, per side, and how it "
                "lies by distance from the mid.",
                lambda: _depth_over_time(doc) + _profile(doc),
            ),
        ]
    )
    footer = (
        "Generated by blockroute from a replayed capture; rebuild with "
        "<code>python -m router.reporting DOC.json DIR</code>."
    )
    return page(f"blockroute market replay: {as_text(doc.get('replay'), '')}", body, footer)


def write_market_report(doc: Mapping[str, Any], out_dir: Path) -> Path:
    """Write `out_dir`/index.html for a market document; returns its path."""
    return write_index(render_market_html(doc), Path(out_dir))
