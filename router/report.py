"""The report functions under their old module name, for the modules that still import
them from here (router/cli.py, router/api/app.py, dealers/report.py and the learned
slicer's tests). The reports live in `router.reporting`; import from there."""

from router.reporting.backtest import write_backtest_report
from router.reporting.page import REPORT_CSS, page, write_index
from router.reporting.policy import participation as _participation
from router.reporting.policy import taker_share as _taker_share
from router.reporting.simulate import render_simulate_html, write_simulate_report

__all__ = [
    "REPORT_CSS",
    "_participation",
    "_taker_share",
    "page",
    "render_simulate_html",
    "write_backtest_report",
    "write_index",
    "write_simulate_report",
]
