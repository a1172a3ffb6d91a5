"""Rebuilding a report from a saved JSON document: ``python -m router.reporting DOC DIR``."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from router.reporting.backtest import write_backtest_report
from router.reporting.market import write_market_report
from router.reporting.simulate import write_simulate_report


def write_report(doc: Mapping[str, Any], out_dir: Path) -> Path:
    """Write out_dir/index.html for the report the document's shape calls for
    ("results": simulate, "rows": backtest, kind "market": a replayed capture); returns
    its path. Raises ValueError for a document of none of these shapes, OSError when
    the folder or file cannot be written."""
    if doc.get("kind") == "market":
        return write_market_report(doc, out_dir)
    if "results" in doc:
        return write_simulate_report(doc, out_dir)
    if "rows" in doc:
        return write_backtest_report(doc, out_dir)
    raise ValueError(
        "not a simulate, backtest or market document: it has neither 'results' nor "
        "'rows' nor kind 'market'"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Rebuild a report from a saved document; prints the index's path. Returns the exit
    status: 0, or 2 (with a message on standard error) for bad arguments, an unreadable
    or malformed document, or a folder that cannot be written."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m router.reporting DOC.json OUT_DIR", file=sys.stderr)
        return 2
    try:
        doc = json.loads(Path(args[0]).read_text(encoding="utf-8"))
        if not isinstance(doc, Mapping):
            raise ValueError("the document is not a JSON object")
        index = write_report(doc, Path(args[1]))
    except (OSError, ValueError) as exc:
        print(f"report: {args[0]}: {exc}", file=sys.stderr)
        return 2
    print(index)
    return 0
