"""The files a command writes: `--json` documents and `--report` folders, checked before
any work is done so that bad input fails fast and writes nothing."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from router.cli.args import UsageError


def check_json_path(path: str | None) -> None:
    """Raises `UsageError` if `--json PATH` names a file in a folder that does not exist."""
    if path not in (None, "-"):
        parent = Path(path).resolve().parent
        if not parent.is_dir():
            raise UsageError(f"--json: folder {parent} does not exist")


def check_report_dir(path: Path | None) -> None:
    """Raises `UsageError` if `--report DIR` exists and is not a folder."""
    if path is not None and path.exists() and not path.is_dir():
        raise UsageError(f"--report: {path} exists and is not a folder")


def emit_json(path: str | None, doc: dict[str, Any]) -> None:
    """Write `doc` as indented JSON to `path` (`-`: standard output; None: nowhere)."""
    if path is None:
        return
    text = json.dumps(doc, indent=2, sort_keys=False) + "\n"
    if path == "-":
        sys.stdout.write(text)
    else:
        Path(path).write_text(text)


def write_report(
    writer: Callable[[dict[str, Any], Path], Path], doc: dict[str, Any], out: Path
) -> Path:
    """Run a report writer; returns the report's index page. Raises `UsageError` if the
    folder cannot be written."""
    try:
        return writer(doc, out)
    except OSError as exc:
        raise UsageError(f"--report: cannot write {out}: {exc.strerror or exc}") from None
