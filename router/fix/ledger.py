"""Which ExecutionReports each FIX client already has: the memory of the restart check.

Two sources, read together: quickfix's FileStore body (every message it sent or queued
for a session, persisted before it reaches the socket, so it covers a crash between
the desk's commit and the send), and the gateway's own append-only list of the ExecIDs
it sent, which survives a sequence reset (a client's Logon with ResetSeqNumFlag makes
quickfix delete the body).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TextIO

from router.fix.settings import BEGIN_STRING

_EXEC_ID = re.compile(rb"\x0117=([^\x01]*)\x01")
_HEADER_ENTRY = re.compile(rb"(\d+),(\d+),(\d+)")


def store_prefix(store_dir: Path, sender: str, target: str) -> Path:
    """The FileStore's file prefix of a session (as quickfix names it)."""
    return store_dir / f"{BEGIN_STRING}-{sender}-{target}."


def exec_ids_in_store(store_dir: Path, sender: str, target: str) -> set[str]:
    """ExecIDs of the ExecutionReports in a session's FileStore (empty if none yet)."""
    prefix = str(store_prefix(store_dir, sender, target))
    try:
        body = Path(prefix + "body").read_bytes()
        header = Path(prefix + "header").read_bytes()
    except FileNotFoundError:
        return set()
    out: set[str] = set()
    for m in _HEADER_ENTRY.finditer(header):  # "seqnum,offset,size " per message
        offset, size = int(m.group(2)), int(m.group(3))
        msg = body[offset : offset + size]
        if b"\x0135=8\x01" in msg:
            found = _EXEC_ID.search(msg)
            if found:
                out.add(found.group(1).decode("latin-1"))
    return out


class SentLedger:
    """The gateway's list of ExecIDs sent to one client, one per line, appended after
    each send and flushed to the operating system (a process crash loses nothing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: TextIO | None = None

    def read(self) -> set[str]:
        try:
            return {line for line in self.path.read_text("latin-1").splitlines() if line}
        except FileNotFoundError:
            return set()

    def add(self, exec_id: str) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="latin-1")
        self._fh.write(exec_id + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def ledger_path(store_dir: Path, sender: str, target: str) -> Path:
    return Path(str(store_prefix(store_dir, sender, target)) + "execids")
