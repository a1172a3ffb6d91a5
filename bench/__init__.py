"""The project's benchmarks (`blockroute bench ...`)."""

from __future__ import annotations

import sys
from pathlib import Path


def blockroute_command(*args: str, config_dir: Path | None = None) -> list[str]:
    """`blockroute ARGS` as a child process: this interpreter, and so this checkout's
    code, reading the configuration in `config_dir` (default: the command's own)."""
    where = [] if config_dir is None else ["--config-dir", str(config_dir)]
    return [sys.executable, "-m", "router.cli", *where, *args]
