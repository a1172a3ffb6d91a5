"""The import contracts of pyproject.toml ([tool.importlinter]) hold: the layering is
checked with every test run, so CI fails on an import across the layers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold() -> None:
    # a process of its own: import-linter builds the graph from the files on disk
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            "--no-cache",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = out.stdout + out.stderr
    assert out.returncode == 0, report
    assert "6 kept, 0 broken" in report, report
