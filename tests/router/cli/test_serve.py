"""`blockroute serve` refuses a port another process holds with one line and exit 2,
not an internal error with a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.router.service_harness import PASSWORD, TOKEN, free_port, write_config


@pytest.mark.parametrize("which", ["fix", "http"])
def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path, which: str) -> None:
    config = write_config(tmp_path)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        other = free_port()
        fix, http = (taken, other) if which == "fix" else (other, taken)
        done = subprocess.run(
            [sys.executable, "-m", "router.cli", "serve", "--config", str(config),
             "--fix-port", str(fix), "--http-port", str(http)],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "BLOCKROUTE_FIX_PASSWORD_OMS": PASSWORD,
                 "BLOCKROUTE_API_TOKEN": TOKEN},
        )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("blockroute: error: "), done.stderr[-2000:]
    assert f"port {taken}" in lines[0] and f"--{which}-port" in lines[0]
    assert "Traceback" not in done.stdout + done.stderr
