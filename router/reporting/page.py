"""The reports' HTML: one self-contained page (inline CSS, no script, no external
reference) and the pieces its sections are made of. Every piece of text is escaped."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path

from router.reporting.document import as_num
from router.reporting.ticks import format_number

NA = "–"  # what a table cell shows for a missing number
FULL_W = 1160  # a chart across the page

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


def esc(text: object) -> str:
    """Escape text for HTML content or attributes (quotes included)."""
    return escape(str(text), quote=True)


def fmt_num(value: object, decimals: int = 2, suffix: str = "") -> str:
    v = as_num(value)
    return NA if v is None else format_number(v, decimals) + suffix


def fmt_pct(value: object, decimals: int = 1) -> str:
    """A fraction shown as a percentage."""
    v = as_num(value)
    return NA if v is None else format_number(100 * v, decimals) + "%"


def td(text: str, cls: str = "num") -> str:
    return f'<td class="{cls}">{esc(text)}</td>' if cls else f"<td>{esc(text)}</td>"


def html_table(headers: Sequence[tuple[str, str]], rows: Sequence[str]) -> str:
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


def not_available(what: str) -> str:
    return f'<p class="na">{esc(what)}: not available in this document.</p>'


def section(title: str, lead: str, build: Callable[[], str]) -> str:
    """A titled section; a malformed part of the document spoils only its own section."""
    try:
        body = build()
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        body = (
            f'<p class="na">{esc(title)}: could not be drawn from this document ({esc(exc)}).</p>'
        )
    intro = f'<p class="lead">{esc(lead)}</p>' if lead else ""
    return f"<section><h2>{esc(title)}</h2>{intro}{body}</section>"


def facts(items: Sequence[tuple[str, str]]) -> str:
    cells = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in items)
    return f'<dl class="facts">{cells}</dl>'


def page(title: str, body: str, footer: str = "") -> str:
    """A self-contained HTML page in the reports' style; `footer` is trusted markup."""
    footer = footer or (
        "IS (implementation shortfall) in basis points of the arrival mid, "
        "positive = cost, unfilled quantity charged at the horizon's mid. Generated by "
        "blockroute from a JSON document; rebuild with "
        "<code>python -m router.reporting DOC.json DIR</code>."
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
