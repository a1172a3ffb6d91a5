"""What the commands show people: progress bars on standard error and result tables on
standard output, through rich on a terminal and as plain lines otherwise.

Whether a stream is a terminal is asked of the stream itself (`isatty`), not of rich's
environment rules (FORCE_COLOR, TTY_COMPATIBLE): CI logs and tests capture the output
and read the plain form.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, TextIO

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Table
from rich.text import Text

# wider than any table: a plain table is as wide as its cells need, never wrapped
_PLAIN_WIDTH = 10_000


def _rate(per_s: float) -> str:
    if per_s >= 100:
        return f"{per_s:,.0f}/s"
    return f"{per_s:.2g}/s"


class _RateColumn(ProgressColumn):
    """Steps per second, whatever a step is (a strategy, an episode, an RFQ day)."""

    def render(self, task: Task) -> Text:
        return Text(_rate(task.speed) if task.speed else "", style="progress.data.speed")


class _LeftColumn(TimeRemainingColumn):
    """The time left, once the rate is known (until then, nothing)."""

    def render(self, task: Task) -> Text:
        if task.time_remaining is None:
            return Text("")
        left = super().render(task)
        return Text.assemble("about ", left, " left")


class Progress:
    """A progress bar for a `progress(done, total)` callback, on standard error.

    On a terminal: rich's bar with the rate and the time elapsed and left, redrawn in
    place. Otherwise: a plain line at each tenth of the way (and at the first call), so
    that a log shows the pace without a line per step. Use it as a context manager, so
    that the bar is closed even when the work fails.
    """

    def __init__(self, label: str) -> None:
        self._label = label
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None
        self._start = time.perf_counter()
        self._last_tenth = -1

    def __enter__(self) -> Progress:
        self._start = time.perf_counter()
        if sys.stderr.isatty():
            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                _RateColumn(),
                TimeElapsedColumn(),
                _LeftColumn(),
                console=Console(file=sys.stderr),
                # Worker processes are forked while the bar runs: they must write to the
                # real streams, not through the parent's console and its lock.
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._task = self._bar.add_task(self._label, total=None)
            self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done, total=total)
            return
        elapsed = time.perf_counter() - self._start
        if (tenth := 10 * done // max(total, 1)) == self._last_tenth:
            return
        self._last_tenth = tenth
        width = 30
        filled = max(0, min(width, int(width * done / total) if total else width))
        bar = "#" * filled + "." * (width - filled)
        line = f"{self._label} [{bar}] {done}/{total}  {elapsed:.0f} s"
        if done > 0:
            eta = elapsed / done * (total - done)
            rate = f", {_rate(done / elapsed)}" if elapsed > 0 else ""
            line += f"{rate}, about {eta:.0f} s left"
        print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Col:
    """A table column: its header and how its cells are aligned (numbers right)."""

    header: str
    justify: Literal["left", "right"] = "right"


def left(header: str) -> Col:
    """A column of names, aligned left."""
    return Col(header, "left")


def print_table(
    columns: Sequence[Col | str],
    rows: Iterable[Sequence[str]],
    file: TextIO | None = None,
) -> None:
    """Print a table of pre-formatted cells (a `str` column is a number column).

    On a terminal it fits the terminal's width: cells that do not fit fold onto more
    lines, never lose digits. Otherwise it is plain text, as wide as its cells, with
    columns two spaces apart and no trailing blanks.
    """
    out = file if file is not None else sys.stdout
    cols = [c if isinstance(c, Col) else Col(c) for c in columns]
    terminal = out.isatty()
    table = Table(
        box=box.SIMPLE_HEAD if terminal else None,
        header_style="bold" if terminal else "",
        pad_edge=False,
        show_edge=False,
        # a box's column separator is a space already: one space of padding is enough
        collapse_padding=terminal,
    )
    for c in cols:
        table.add_column(Text(c.header), justify=c.justify, overflow="fold")
    for row in rows:
        # Text, not str: rich would read "[4.3, 43.9]" in a cell as markup
        table.add_row(*(Text(cell) for cell in row))
    if terminal:
        console = Console(file=out, highlight=False)
        natural = console.measure(table, options=console.options.update_width(_PLAIN_WIDTH))
        if natural.maximum > console.width:
            # columns one space apart (the box's separator) before any cell must fold
            table.padding = (0, 0)
        console.print(table)
        return
    console = Console(
        file=out,
        force_terminal=False,
        no_color=True,
        highlight=False,
        width=_PLAIN_WIDTH,
    )
    with console.capture() as captured:
        console.print(table)
    out.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
