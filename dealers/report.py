"""The dealer scorecard as one self-contained HTML page.

Same look as the reports of `router.reporting`, whose stylesheet and charts it shares:
inline CSS, inline SVG, no JavaScript and no external reference of any kind. Every piece
of text (dealer ids, title, meta) is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from dealers.scorecard import DealerScore, Scorecard
from router.reporting import page, write_index
from router.reporting.charts import BarSeries, bar_chart
from router.reporting.page import esc
from router.reporting.ticks import format_number

NA = "–"  # what a table cell shows for a missing number
_PANEL_W = 570


#: (attribute, header, tooltip, kind): kind "int", "pct" (a fraction), "ms", "bps", "bps+"
#: (bps where positive is good for the client: coloured) or "bps-" (positive is bad).
_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("rfqs", "RFQs", "RFQs the dealer was asked in", "int"),
    ("quotes", "quotes", "RFQs it quoted within the time limit", "int"),
    ("response_rate", "response rate", "quotes / RFQs", "pct"),
    ("decline_rate", "decline rate", "declines (QuoteRequestReject) / RFQs", "pct"),
    ("late", "late", "answers after the time limit (not used)", "int"),
    ("wins", "wins", "RFQs in which it traded with the client", "int"),
    ("hit_ratio", "hit ratio", "wins / quotes", "pct"),
    ("cover_rate", "cover rate", "cover notices (best quote not traded) / quotes", "pct"),
    ("avg_response_ms", "response time (ms)", "mean time from request to quote", "ms"),
    (
        "price_improvement_bps",
        "price improvement (bps)",
        "trades: s (mid - price) / mid; negative = spread paid",
        "bps+",
    ),
    (
        "quote_vs_mid_bps",
        "quotes vs mid (bps)",
        "in-time quotes on the client's side: s (mid - price) / mid",
        "bps+",
    ),
    (
        "winner_minus_cover_bps",
        "ahead of cover (bps)",
        "won RFQs with a cover: s (cover - price) / mid",
        "bps+",
    ),
    ("markout_bps", "markout (bps)", "s (mid(t + h) - price) / price, qty-weighted", "bps+"),
    (
        "leakage_bps",
        "leakage (bps)",
        "RFQs not traded with it: s (mid(t + h) - mid(t)) / mid; positive = adverse",
        "bps-",
    ),
    ("last_look_reject_rate", "last-look rejects", "last-look rejects / hits", "pct"),
)


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _cell(value: object, kind: str) -> str:
    v = _finite(value)
    if v is None:
        return f'<td class="num">{NA}</td>'
    if kind == "int":
        text = format_number(v)
    elif kind == "pct":
        text = format_number(100 * v, 1) + "%"
    elif kind == "ms":
        text = format_number(v, 0)
    else:
        text = format_number(v, 2)
    cls = "num"
    if kind in ("bps+", "bps-") and text.lstrip("-").strip("0.,") != "":
        good = v > 0 if kind == "bps+" else v < 0
        cls += " good" if good else " bad"
    return f'<td class="{cls}">{esc(text)}</td>'


def _table(rows: Sequence[DealerScore]) -> str:
    head = ["<th>dealer</th>"] + [
        f'<th class="num" title="{esc(tip)}">{esc(label)}</th>' for _, label, tip, _ in _COLUMNS
    ]
    body = [
        "<tr><td>"
        + esc(r.dealer)
        + "</td>"
        + "".join(_cell(getattr(r, attr), kind) for attr, _, _, kind in _COLUMNS)
        + "</tr>"
        for r in rows
    ]
    return (
        f'<div class="scroll"><table><thead><tr>{"".join(head)}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _facts(card: Scorecard, meta: Mapping[str, str]) -> str:
    items = [(str(k), str(v)) for k, v in meta.items()]
    given = {k.strip().lower() for k, _ in items}
    extra = [
        ("RFQs", format_number(card.n_rfqs)),
        ("trades", format_number(card.n_trades)),
        ("days", format_number(card.n_days)),
        ("dealers", format_number(len(card.rows()))),
        ("markout horizon", f"{card.markout_s:g} s"),
        ("leakage horizon", f"{card.leakage_s:g} s"),
    ]
    items += [(k, v) for k, v in extra if k.lower() not in given]
    cells = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in items)
    return f'<dl class="facts">{cells}</dl>'


def _scaled(values: Sequence[float], scale: float = 1.0) -> list[float | None]:
    return [v * scale if math.isfinite(v) else None for v in values]


def _charts(card: Scorecard) -> str:
    rows = card.rows()
    names = [r.dealer for r in rows]
    h_mark = f"{card.markout_s:g} s"
    h_leak = f"{card.leakage_s:g} s"
    rates = bar_chart(
        names,
        [
            BarSeries("response rate", _scaled([r.response_rate for r in rows], 100.0)),
            BarSeries("hit ratio", _scaled([r.hit_ratio for r in rows], 100.0)),
        ],
        title="Response rate and hit ratio",
        y_label="% of RFQs / % of quotes",
        y_suffix="%",
        note="response rate = quotes / RFQs asked; hit ratio = wins / quotes",
        width=_PANEL_W,
    )
    quality = bar_chart(
        names,
        [
            BarSeries(
                "price improvement vs mid",
                _scaled([r.price_improvement_bps for r in rows]),
            ),
            BarSeries(f"markout at {h_mark}", _scaled([r.markout_bps for r in rows])),
        ],
        title="Price improvement and markout (bps)",
        y_label="bps, positive = good for the client",
        note="per trade with the dealer; markout is qty-weighted",
        width=_PANEL_W,
    )
    leakage = bar_chart(
        names,
        [BarSeries(f"leakage at {h_leak}", _scaled([r.leakage_bps for r in rows]))],
        title=f"Leakage by dealer (bps, {h_leak} after the request)",
        y_label="bps, positive = moved against the client",
        note="RFQs the dealer saw but did not trade (lost, declined, timed out, passed)",
        width=_PANEL_W,
    )
    panel = card.panel_leakage_bps()
    by_panel = bar_chart(
        [f"{n} dealer{'s' if n != 1 else ''}" for n in panel],
        [BarSeries(f"leakage at {h_leak}", _scaled(list(panel.values())))],
        title=f"Leakage by panel size (bps, {h_leak} after the request)",
        y_label="bps, positive = moved against the client",
        note="mean over RFQs whose side is known, whatever their outcome",
        width=_PANEL_W,
    )
    speed = bar_chart(
        names,
        [BarSeries("response time", _scaled([r.avg_response_ms for r in rows]))],
        title="Average response time (ms)",
        y_label="ms from request to quote",
        width=_PANEL_W,
    )
    return f'<div class="grid">{rates}{quality}{leakage}{by_panel}{speed}</div>'


_DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("s", "+1 when the client buys, -1 when it sells."),
    (
        "price improvement, quotes vs mid",
        "s (mid - price) / mid in bps, mid at the trade (quote) time: positive = better "
        "than the fair mid, negative = spread paid. Two-sided requests count only if a trade "
        "revealed the client's side.",
    ),
    ("ahead of cover", "s (cover price - winning price) / mid in bps: how far ahead it won."),
    ("markout", "s (mid(t + h) - price) / price in bps, qty-weighted: positive = good."),
    (
        "leakage",
        "s (mid(t_request + h) - mid(t_request)) / mid(t_request) in bps over the RFQs a "
        "dealer saw without trading: positive = the market moved against the client.",
    ),
)


def render_scorecard_html(card: Scorecard, title: str, meta: Mapping[str, str]) -> str:
    """The whole page as a string (see the module docstring)."""
    rows = card.rows()
    defs = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in _DEFINITIONS)
    body = (
        f"<h1>{esc(title)}</h1>"
        '<p class="lead">How each dealer answers the desk\'s requests for quote, the prices '
        "it gives, and what happens to the market after it sees the desk's interest.</p>"
        + _facts(card, meta)
        + "<section><h2>Scorecard</h2>"
        + (_table(rows) if rows else '<p class="note">No RFQs in this log.</p>')
        + "</section><section><h2>Charts</h2>"
        + _charts(card)
        + "</section><section><h2>Definitions</h2>"
        + f'<dl class="defs">{defs}</dl></section>'
    )
    return page(
        title,
        body,
        "Generated by blockroute from the desk's RFQ log and the lit market path. "
        "Missing values (–) have no data behind them.",
    )


def write_scorecard_report(
    directory: Path, card: Scorecard, title: str, meta: Mapping[str, str]
) -> Path:
    """Write `directory`/index.html (creating the folder) and return its path.

    An unwritable or invalid directory raises the file system's OSError.
    """
    return write_index(render_scorecard_html(card, title, meta), Path(directory))
