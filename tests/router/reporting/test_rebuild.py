"""Rebuilding a report from a saved JSON document."""

from __future__ import annotations

import json

import pytest

from router.reporting import render_simulate_html, write_report
from router.reporting.rebuild import main

from .samples import backtest_doc, news_shock_doc


def test_reports_rebuild_from_saved_json(tmp_path, capsys):
    sim_doc = news_shock_doc()
    saved = tmp_path / "sim.json"
    saved.write_text(json.dumps(sim_doc))
    assert main([str(saved), str(tmp_path / "out")]) == 0
    rebuilt = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert rebuilt == render_simulate_html(json.loads(saved.read_text()))
    assert write_report(backtest_doc(), tmp_path / "bt").name == "index.html"
    with pytest.raises(ValueError, match="neither"):
        write_report({"other": 1}, tmp_path / "x")
    assert main([str(tmp_path / "missing.json"), str(tmp_path)]) == 2
    assert "report:" in capsys.readouterr().err
