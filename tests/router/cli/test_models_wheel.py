"""`blockroute models wheel`: the algo wheel's statistics from a journal (hand-made rows:
tests/router/test_wheel_stats.py works them out), and bad input refused with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router import model_compare
from router.cli import main, models_wheel
from router.journal import Batch, Journal, SvcMetaRow
from tests.router.test_wheel_stats import T0, S, hand_rows, parents, write


def test_the_parser_defaults_are_the_modules() -> None:
    assert models_wheel._MIN_EFFECT_BPS == model_compare.MIN_EFFECT_BPS
    assert models_wheel._ALPHA == model_compare.ALPHA
    assert models_wheel._POWER == model_compare.POWER


@pytest.fixture
def journal_url(tmp_path: Path) -> str:
    """A journal holding the hand-made parents, its clock 20 s after the last one."""
    url = f"sqlite:///{tmp_path / 'service.db'}"
    journal = Journal.open(url)
    write(journal, hand_rows())
    batch = Batch()
    batch.upsert(SvcMetaRow, {"key": "clock_ns", "value": T0 + 33 * S})
    journal.commit(batch)
    journal.close()
    return url


def test_the_report_of_a_journal(journal_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from router.wheel_stats import wheel_report

    assert main(["models", "wheel", "--db-url", journal_url, "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == json.loads(json.dumps(wheel_report(parents(hand_rows()))))
    assert (doc["recommendation"], doc["verdict"], doc["pooled"]["parents"]) == (
        "promote",
        "promote",
        10,
    )
    # the table, for a person
    assert main(["models", "wheel", "dealer", "--db-url", journal_url]) == 0
    text = capsys.readouterr().out
    assert "families changed: dealer" in text
    assert "matched in 2 strata: -5.50 +- 1.71 bps" in text
    assert "-> 58 completed parents needed" in text
    assert "recommendation: promote (promote: pooled -5.50" in text


def test_since_counts_back_from_the_journals_clock(
    journal_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "wheel.json"
    # the clock is at parent 33 s: 25 s back keeps the parents created from 8 s on
    argv = ["models", "wheel", "--db-url", journal_url, "--since", "25s", "--json", str(out)]
    assert main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["window"]["since_ns"] == T0 + 8 * S and doc["window"]["first_ns"] == T0 + 8 * S
    assert doc["arms"]["champion"]["completed"] + doc["arms"]["challenger"]["completed"] == 6


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["nope"], "unknown model family 'nope'"),
        (["fill"], "the wheel's arms run the same fill version"),
        (["--since", "last week"], "--since: 'last week' is neither a duration"),
        (["--since", "1s"], "no parent of the algo wheel in the time asked"),
        (["--alpha", "1.5"], "--alpha: must lie between 0 and 1, got 1.5"),
        (["--min-effect-bps", "0"], "--min-effect-bps: must be > 0"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    journal_url: str, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["models", "wheel", "--db-url", journal_url, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_a_journal_without_the_wheel_or_none_at_all_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    Journal.open(url).close()
    assert main(["models", "wheel", "--db-url", url]) == 2
    err = capsys.readouterr().err
    assert "no parent of the algo wheel: the wheel runs with [models] wheel_share > 0" in err
    assert len(err.strip().splitlines()) == 1
    missing = f"sqlite:///{tmp_path / 'missing.db'}"
    assert main(["models", "wheel", "--db-url", missing]) == 2
    err = capsys.readouterr().err
    assert "cannot open: no such file" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "missing.db").exists()  # nothing created
