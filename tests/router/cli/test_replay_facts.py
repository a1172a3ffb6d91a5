"""`blockroute replay facts` and `replay report`: the documents, the table, the page
and the exit status on bad input."""

import importlib.util
import json

import pytest

from router.cli import main
from simulators.replay import sources
from simulators.replay.fake import tiny_bitstamp_capture, tiny_source


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A hand-made capture registered as `tiny` (no extra needed)."""
    folder = tiny_bitstamp_capture(tmp_path / "tiny")
    monkeypatch.setitem(sources.REPLAYS, "tiny", lambda: tiny_source(folder))
    return folder


def one_line_error(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1, err
    return err[0]


def test_facts_of_the_capture_alone(tiny, capsys):
    assert main(["replay", "facts", "tiny", "--scenario", "none", "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["replay"] == "tiny" and doc["simulator"] is None
    real = doc["real"]
    assert real["spread_ticks"] == {"median": 2.0, "p90": 4.0}
    assert (real["cancels"], real["trades"], real["cancel_to_trade"]) == (1, 5, 0.2)
    assert set(real["returns"]) == {"1s", "60s"}


def test_facts_beside_the_simulator_print_a_table(tiny, tmp_path, capsys):
    out = tmp_path / "facts.json"
    assert main(["replay", "facts", "tiny", "--window", "20", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "tiny (replay)" in text and "calm (seed 0) (simulator)" in text
    assert "cancel-to-trade ratio" in text and "spread, bps: median / p90" in text
    doc = json.loads(out.read_text())
    assert doc["simulator"]["source"] == "simulator"
    assert doc["simulator"]["window_s"] == pytest.approx(20.0)


def test_report_writes_a_page(tiny, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["replay", "report", "tiny", "--out", str(out)]) == 0
    index = out / "index.html"
    assert capsys.readouterr().out.strip() == str(index)
    html = index.read_text(encoding="utf-8")
    assert "Market replay: tiny" in html and "<script" not in html


def test_report_json_is_the_page_s_document(tiny, tmp_path, capsys):
    assert main(["replay", "report", "tiny", "--out", str(tmp_path / "r"), "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "market" and len(doc["trades"]["side"]) == 5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["replay", "facts", "nowhere"], "unknown replay 'nowhere'"),
        (["replay", "facts", "tiny", "--scenario", "nope"], "unknown scenario 'nope'"),
        (["replay", "facts", "tiny", "--window", "0"], "--window"),
        (["replay", "facts", "tiny", "--json", "/no/such/folder/x.json"], "does not exist"),
        (["replay", "report", "nowhere", "--out", "x"], "unknown replay 'nowhere'"),
    ],
)
def test_bad_input_exits_2_with_one_line(tiny, capsys, argv, message):
    assert main(argv) == 2
    assert message in one_line_error(capsys)


def test_report_into_a_file_or_without_out_exits_2(tiny, tmp_path, capsys):
    a_file = tmp_path / "taken"
    a_file.write_text("")
    assert main(["replay", "report", "tiny", "--out", str(a_file)]) == 2
    assert "not a folder" in one_line_error(capsys)
    assert main(["replay", "report", "tiny"]) == 2


def test_without_the_data_extra_it_exits_2_naming_it(monkeypatch, capsys):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert main(["replay", "facts", "bitstamp-btcusd", "--scenario", "none"]) == 2
    assert "[data]" in one_line_error(capsys)


def test_a_truncated_capture_exits_2(tiny, tmp_path, capsys):
    path = tiny / "orders.csv.gz"
    path.write_bytes(path.read_bytes()[:-30])
    out = tmp_path / "r"
    assert main(["replay", "report", "tiny", "--out", str(out)]) == 2
    assert "truncated" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.requires_extra("data", "ob_analytics")
def test_the_real_capture_beside_calm(capsys):
    """The README's table (`replay facts bitstamp-btcusd`)."""
    assert main(["replay", "facts", "bitstamp-btcusd", "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    real, sim = doc["real"], doc["simulator"]
    assert real["spread_ticks"] == {"median": 1.0, "p90": 1.0}
    assert (real["cancels"], real["trades"], real["rejected_at_once"]) == (49_103, 284, 101_035)
    assert real["traded"] == pytest.approx(15.02983915)
    assert sim["name"] == "calm (seed 0)"
    assert sim["window_s"] == pytest.approx(real["window_s"], abs=0.1)
    assert sim["spread_bps"]["median"] > 20 * real["spread_bps"]["median"]
    assert sim["cancel_to_trade"] < real["cancel_to_trade"] / 10
