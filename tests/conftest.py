"""Shared test options: long simulations run only with --runslow; tests of an optional
extra (`@pytest.mark.requires_extra("train", "torch", ...)`) skip, with the reason,
where the extra is not installed, and fail in CI (CI set), which must install it. The
README's plain install (`.[dev]`) thus runs the suite green, and CI cannot pass by
skipping what it was meant to test. Every test session has a user cache of its own."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run @pytest.mark.slow tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="long simulation: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(tryfirst=True)  # before any fixture, module-scoped ones included, is set up
def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("requires_extra"):
        extra, *modules = mark.args
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if missing:
            how = f"pip install -e '.[{extra}]'"
            why = f"{', '.join(missing)} not installed (the `{extra}` extra: {how})"
            if os.environ.get("CI"):
                pytest.fail(f"{why}; CI must install it", pytrace=False)
            pytest.skip(f"{why}; in CI this fails")


@pytest.fixture(autouse=True, scope="session")
def _session_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The user cache (router.cache) of this test session, not the user's own: a test
    neither reads what another checkout cached nor leaves entries behind. Commands run
    as child processes inherit it."""
    from router.cache import CACHE_ENV

    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("user-cache"))
    yield
    if before is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = before
