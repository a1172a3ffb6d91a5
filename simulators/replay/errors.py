"""The replay's errors: each names the capture, the file and, where there is one, the line."""

from __future__ import annotations


class ReplayError(Exception):
    """A replay cannot be built: reported as one line (the CLI exits with status 2)."""


class UnknownReplayError(ReplayError):
    """No capture is registered under that name."""


class ReplayDataError(ReplayError):
    """A capture's files are missing, truncated or malformed, or its extra is not installed."""
