"""Fixtures: a gateway environment (stopped at the end of each test) and a fake desk."""

from __future__ import annotations

from pathlib import Path

import pytest

from .env import FixEnv
from .fakes import FakeDesk


@pytest.fixture
async def env(tmp_path: Path):
    e = FixEnv(tmp_path)
    yield e
    await e.close()


@pytest.fixture
def desk() -> FakeDesk:
    return FakeDesk()
