import io
import re

import pytest

from router.cli.console import Progress, left, print_table

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal(io.StringIO):
    """What a terminal looks like to the code that writes to it."""

    def isatty(self) -> bool:
        return True


HEADERS = ["IS bps", "spread", "impact", "timing", "opport", "vs VWAP", "filled", "children"]
COLUMNS = [left("strategy"), *HEADERS, "done", "lit/dark/rfq", "gap"]
TWAP = ["twap", "88.41", "6.33", "23.63", "58.46", "-0.00", "5.55", "500,000", "521"]
SOR_LIT = ["sor-lit", "-1.82", "-1.82", "23.33", "57.33", "-0.00", "-1.56", "500,000", "1316"]
ROWS = [[*TWAP, "100.0%", "100%/0%/0%", "0%"], [*SOR_LIT, "100.0%", "73%/27%/0%", ""]]


def test_a_plain_table_is_as_wide_as_its_cells_with_no_trailing_blanks():
    out = io.StringIO()
    print_table(COLUMNS, ROWS, file=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3  # no rule, no box: header and rows
    assert len(lines[0]) > 80  # not wrapped at rich's default width for files
    words = ["strategy", *" ".join(HEADERS).split(), "done", "lit/dark/rfq", "gap"]
    assert lines[0].split() == words
    assert lines[1].split() == ROWS[0]
    assert lines[2].split() == ROWS[1][:-1]
    assert all(line == line.rstrip() for line in lines)
    assert "\x1b" not in out.getvalue()
    # names left, numbers right
    assert lines[2].startswith("sor-lit ")
    assert lines[1].index("88.41") + 5 == lines[2].index("-1.82") + 5 == lines[0].index("bps") + 3


def test_cells_are_text_not_markup():
    out = io.StringIO()
    print_table([left("dealer"), "95% interval"], [["[bold]ALPHA", "[4.3, 43.9]"]], file=out)
    assert "[bold]ALPHA" in out.getvalue() and "[4.3, 43.9]" in out.getvalue()


@pytest.mark.parametrize("width", [60, 100, 140])
def test_a_table_on_a_terminal_fits_it_and_keeps_every_digit(monkeypatch, width):
    monkeypatch.setenv("COLUMNS", str(width))
    out = Terminal()
    print_table(COLUMNS, ROWS, file=out)
    lines = ANSI.sub("", out.getvalue()).splitlines()
    assert all(len(line) <= width for line in lines)
    assert "…" not in "".join(lines)
    if width >= 100:  # room enough: one line per row, under a header rule
        assert [line.split() for line in lines if line.startswith(("twap", "sor"))] == [
            ROWS[0],
            ROWS[1][:-1],
        ]
        assert any(set(line.strip()) == {"─"} for line in lines)


def test_plain_progress_writes_a_line_per_tenth_with_rate_and_time_left(capsys):
    with Progress("backtest 20 episodes") as bar:
        for done in range(21):
            bar(done, 20)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 11
    assert lines[0] == "backtest 20 episodes [..............................] 0/20  0 s"
    assert re.fullmatch(
        r"backtest 20 episodes \[#{30}\] 20/20  \d+ s, [\d.,]+/s, about 0 s left", lines[-1]
    )


def test_terminal_progress_is_drawn_in_place_and_closed_on_failure(monkeypatch):
    err = Terminal()
    monkeypatch.setattr("sys.stderr", err)
    with pytest.raises(RuntimeError), Progress("train fill") as bar:
        bar(3, 10)
        raise RuntimeError("stop")
    text = ANSI.sub("", err.getvalue())
    assert "train fill" in text and " 3/10 " in text
    # closed: the last state is left on its own line and the cursor is shown again
    assert err.getvalue().endswith("\n\x1b[?25h")
