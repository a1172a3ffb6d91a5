"""The chart names under their old module name, for dealers/report.py, which still
imports them from here. The charts live in `router.reporting.svg`; import from there."""

from router.reporting.charts import BarSeries, bar_chart
from router.reporting.page import esc
from router.reporting.ticks import format_number

__all__ = ["BarSeries", "bar_chart", "esc", "format_number"]
