"""The self-contained HTML reports of `blockroute simulate`, `backtest` and the dealer
scorecard, and the SVG charts in them.

- `charts`: the charts (lines, steps, bands, dots, grouped and stacked bars, stacked
  horizontal bars), each built as an ElementTree with the drawing pieces of `svg` and
  returned serialised (`SvgChart`); `ticks`: their axis ticks and number labels.
- `page`: the page around them (one stylesheet, no script, no external reference) and
  the tables and sections; `document`: defensive readers of the JSON documents.
- `simulate` (with `policy`, the learned slicer's section) and `backtest`: the two
  reports; `rebuild`: ``python -m router.reporting DOC.json DIR``.

Nothing here needs more than the standard library.
"""

from router.reporting.backtest import render_backtest_html, write_backtest_report
from router.reporting.page import REPORT_CSS, page, write_index
from router.reporting.rebuild import write_report
from router.reporting.simulate import render_simulate_html, write_simulate_report

__all__ = [
    "REPORT_CSS",
    "page",
    "render_backtest_html",
    "render_simulate_html",
    "write_backtest_report",
    "write_index",
    "write_report",
    "write_simulate_report",
]
