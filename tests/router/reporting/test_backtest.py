"""The backtest report: complete, paired verdicts, sides kept apart, empty documents."""

from __future__ import annotations

from router.reporting import render_backtest_html, write_backtest_report

from .samples import STRATEGIES, assert_self_contained, backtest_doc, svgs


def test_backtest_report_is_written_and_complete(tmp_path):
    doc = backtest_doc()
    html = write_backtest_report(doc, tmp_path).read_text(encoding="utf-8")
    assert_self_contained(html)
    charts = svgs(html)
    assert len(charts) == 2  # IS with error bars, completion
    for name in STRATEGIES:
        assert f"<td>{name}</td>" in html
    for sc in ("calm", "news-shock", "liquidity-squeeze", "trending"):
        assert f">{sc}</text>" in html
    assert "hindsight schedule" in html
    assert "Gap captured" in html
    assert "not available" not in html
    # error bars: one path with caps per strategy-scenario bar plus the hindsight bars
    assert html.count('stroke-width="1.3"') == 4 * (len(STRATEGIES) + 1)


def test_backtest_paired_verdicts_follow_the_t_statistic():
    doc = backtest_doc()
    doc["paired"] = [
        {
            "scenario": "calm",
            "strategy": st,
            "baseline": "twap",
            "diff_mean_bps": diff,
            "diff_stderr_bps": 1.0,
            "n": 20,
        }
        for st, diff in (("ml", -3.0), ("pov", 3.0), ("ac", -1.0))
    ]
    html = render_backtest_html(doc)
    assert '<td class="good">cheaper</td>' in html
    assert '<td class="bad">costlier</td>' in html
    assert "<td>no clear difference</td>" in html


def test_backtest_report_with_only_contract_keys():
    doc = backtest_doc()
    for key in ("paired", "hindsight", "gap_captured", "meta"):
        del doc[key]
    html = render_backtest_html(doc)
    assert "not available" in html
    assert len(svgs(html)) == 2
    assert "hindsight schedule" not in html


def test_backtest_report_keeps_the_sides_apart():
    """--both-sides: rows, pairs and bounds per side and pooled, each labelled."""
    doc = backtest_doc()
    for key in ("rows", "paired", "hindsight", "gap_captured"):
        doc[key] = [
            {**r, "side": side}
            for side in ("buy", "sell", "both")
            for r in doc[key]
            if r["scenario"] == "calm"
        ]
    html = render_backtest_html(doc)
    for side in ("buy", "sell", "both"):
        assert f"<td>calm ({side})</td>" in html and f">calm ({side})</text>" in html
    assert "<td>calm</td>" not in html
    svgs(html)


def test_backtest_report_of_an_empty_document():
    html = render_backtest_html({})
    assert "</html>" in html
    svgs(html)


def test_backtest_charts_group_the_strategies_by_scenario():
    doc = backtest_doc()
    is_chart, completion = svgs(render_backtest_html(doc))
    scenarios = ["calm", "news-shock", "liquidity-squeeze", "trending"]
    series = [*STRATEGIES, "hindsight schedule"]
    for chart in (is_chart, completion):
        labels = [t.text for t in chart.iter("text")]
        assert [s for s in labels if s in scenarios] == scenarios  # under the bars, in order
    # IS: a bar with an error bar per scenario and series, each series in its own colour
    bars = [r for r in is_chart.iter("rect") if r.find("title") is not None]
    tips = [r.find("title").text for r in bars]
    assert [t.split(":")[0] for t in tips] == [f"{sc} · {s}" for sc in scenarios for s in series]
    assert all(" ± " in t for t in tips)
    whiskers = [p for p in is_chart.iter("path") if p.get("stroke-width") == "1.3"]
    assert len(whiskers) == len(bars)
    colours: dict[str, set[str]] = {}
    for tip, bar in zip(tips, bars, strict=True):
        colours.setdefault(tip.split(" · ")[1].split(":")[0], set()).add(bar.get("fill"))
    assert all(len(c) == 1 for c in colours.values())
    assert len(set.union(*colours.values())) == len(series)
    # completion: a value written over every bar, in % of the parent
    rows = {(r["scenario"], r["strategy"]): r["completion_mean"] for r in doc["rows"]}
    values = [t.text for t in completion.iter("text") if t.get("font-size") == "10.5"]
    assert values == [f"{100 * rows[sc, s]:.1f}" for sc in scenarios for s in STRATEGIES]
