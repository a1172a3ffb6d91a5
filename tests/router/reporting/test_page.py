"""The page around the charts: escaping and a page with nothing to fetch."""

from __future__ import annotations

from router.reporting.page import esc, page

from .samples import assert_self_contained


def test_esc_escapes_markup_and_both_quotes():
    assert esc("<b>&\"'") == "&lt;b&gt;&amp;&quot;&#x27;"


def test_page_is_one_self_contained_document():
    html = page("a <title>", "<p>body</p>")
    assert html.startswith("<!DOCTYPE html>\n") and html.endswith("</html>\n")
    assert "<title>a &lt;title&gt;</title>" in html
    assert "<style>" in html and "python -m router.reporting" in html
    assert_self_contained(html)
