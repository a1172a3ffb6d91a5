"""`bench book --replay` (bench/replay_book.py) on a hand-made capture: the kernel and the
plain Python L3 book on the same events."""

from __future__ import annotations

import json

import pytest

from bench.replay_book import run_replay_book_bench
from router.cli import main
from simulators.replay import sources
from simulators.replay.fake import tiny_bitstamp_capture, tiny_source


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    folder = tiny_bitstamp_capture(tmp_path / "tiny")
    monkeypatch.setitem(sources.REPLAYS, "tiny", lambda: tiny_source(folder))
    return folder


def test_the_replay_bench_times_both_books_on_the_same_events(tiny):
    doc = run_replay_book_bench("tiny", repeat=2)
    assert doc["events"] == 30 and doc["repeat"] == 2
    assert doc["seconds"] <= doc["seconds_median"]
    for key in ("parse_seconds", "events_per_s", "python_events_per_s", "speedup_vs_python"):
        assert doc[key] > 0, key
    assert doc["events_per_s"] == pytest.approx(30 / doc["seconds"])
    assert doc["books_agree"] is True


def test_without_python_only_the_kernel_is_timed(tiny):
    doc = run_replay_book_bench("tiny", repeat=1, compare_python=False)
    assert "python_events_per_s" not in doc and "books_agree" not in doc


def test_bench_book_adds_a_replay_section_beside_the_synthetic_figure(tiny, tmp_path, capsys):
    argv = ["bench", "book", "--events", "2000", "--no-python", "--replay", "tiny"]
    assert main([*argv, "--repeat", "2", "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["events"] == 2000 and doc["events_per_s"] > 0
    assert doc["replay"]["replay"] == "tiny" and doc["replay"]["events"] == 30
    assert main([*argv, "--json", str(tmp_path / "b.json")]) == 0
    text = capsys.readouterr().out
    assert text.startswith("book: 2,000 events") and "replay tiny: 30 events" in text


def test_bench_book_without_replay_is_unchanged(capsys):
    assert main(["bench", "book", "--events", "2000", "--no-python", "--json", "-"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"events", "seconds", "events_per_s"}


def test_bench_book_with_an_unknown_replay_exits_2(capsys):
    assert main(["bench", "book", "--events", "2000", "--replay", "nowhere"]) == 2
    assert "unknown replay" in capsys.readouterr().err
