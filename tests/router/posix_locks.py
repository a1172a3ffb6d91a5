"""The POSIX record locks a process holds on a file, read from Linux's /proc/locks:
what SQLite holds on a database and on its wal-index (-shm) while it has them open."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

needs_proc_locks = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads Linux's /proc/locks"
)


def locks_held(pid: int, path: Path) -> list[tuple[str, int, str]]:
    """(READ or WRITE, first byte, last byte) of each POSIX lock `pid` holds on `path`."""
    inode = os.stat(path).st_ino
    held = []
    for line in Path("/proc/locks").read_text().splitlines():
        f = line.split()
        # "1: POSIX  ADVISORY  READ 1234 08:01:5678 128 128"; "->" marks a waiter
        if f[1] != "POSIX" or int(f[4]) != pid or int(f[5].split(":")[2]) != inode:
            continue
        held.append((f[3], int(f[6]), f[7]))
    return sorted(held)


#: SQLite's lock on the wal-index's DMS byte: held by every process that has the
#: database open in WAL mode; a process opening it that finds none resets the index
WAL_INDEX_DMS = ("READ", 128, "128")
