import pytest


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    # simulate stores its runs in ./blockroute.db by default: keep that out of the checkout
    monkeypatch.chdir(tmp_path)
