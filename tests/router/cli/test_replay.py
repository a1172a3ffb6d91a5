"""`blockroute replay check`: the document, the table and the exit status on bad input."""

import importlib.util
import json

import pytest

from router.cli import main
from simulators.replay import sources
from simulators.replay.fake import TINY_SKIPPED, tiny_bitstamp_capture, tiny_source

CONTRACT_KEYS = {
    "replay", "events", "applied", "skipped", "crossed_seconds", "trades", "trades_matched",
    "unmatched", "final_book",
}  # fmt: skip


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A hand-made capture registered as `tiny` (no extra needed)."""
    folder = tiny_bitstamp_capture(tmp_path / "tiny")
    monkeypatch.setitem(sources.REPLAYS, "tiny", lambda: tiny_source(folder))
    return folder


def test_check_writes_the_contract_document(tiny, capsys):
    assert main(["replay", "check", "tiny", "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) >= CONTRACT_KEYS
    assert doc["replay"] == "tiny"
    assert (doc["trades"], doc["trades_matched"], doc["unmatched"]) == (5, 5, [])
    assert doc["skipped"] == TINY_SKIPPED
    assert doc["final_book"]["asks"] == [[104.0, 0.5]]
    assert all(len(level) == 2 for level in doc["final_book"]["bids"])


def test_check_prints_a_table_and_writes_the_file(tiny, tmp_path, capsys):
    out = tmp_path / "check.json"
    assert main(["replay", "check", "tiny", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "trades matched" in text and "skipped: unknown_order" in text
    assert "end state vs the capture's own" in text and "tick 0.5 USD" in text
    assert json.loads(out.read_text())["trades_matched"] == 5


def test_literal_shows_the_unmatched_trades(tiny, capsys):
    assert main(["replay", "check", "tiny", "--literal"]) == 0
    text = capsys.readouterr().out
    assert "literal reading" in text and "price_not_best" in text


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_an_unknown_name_exits_2(capsys):
    assert main(["replay", "check", "nowhere"]) == 2
    assert "unknown replay 'nowhere'" in one_line_error(capsys)


def test_a_truncated_capture_exits_2_and_writes_nothing(tiny, tmp_path, capsys):
    path = tiny / "orders.csv.gz"
    path.write_bytes(path.read_bytes()[:-30])
    out = tmp_path / "check.json"
    assert main(["replay", "check", "tiny", "--json", str(out)]) == 2
    assert "truncated" in capsys.readouterr().err
    assert not out.exists()


def test_without_the_data_extra_it_exits_2_naming_it(monkeypatch, capsys):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert main(["replay", "check", "bitstamp-btcusd"]) == 2
    assert "[data]" in one_line_error(capsys)


def test_bad_arguments_exit_2(tiny, capsys):
    assert main(["replay", "check"]) == 2
    assert main(["replay", "check", "tiny", "--json", "/no/such/folder/x.json"]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.requires_extra("data", "ob_analytics")
def test_the_real_capture_matches_every_trade(capsys):
    assert main(["replay", "check", "bitstamp-btcusd", "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["events"], doc["trades"], doc["trades_matched"]) == (307_539, 284, 284)
    assert doc["crossed_seconds"] == 0.0
    assert len(doc["final_book"]["bids"]) == len(doc["final_book"]["asks"]) == 10
