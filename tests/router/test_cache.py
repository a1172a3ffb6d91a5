"""The user cache: where it lives, entries read back whole or not at all, a slot keeps
only its newest entry, and concurrent writers leave a whole file."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from router import cache


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "c"))
    return tmp_path / "c"


def test_the_folder_is_the_variable_s_else_xdg_s_else_under_home(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "mine"))
    assert cache.cache_dir() == tmp_path / "mine"
    for off in ("none", "OFF", ""):
        monkeypatch.setenv(cache.CACHE_ENV, off)
        assert cache.cache_dir() is None
    monkeypatch.delenv(cache.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "blockroute"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # invalid by the spec: ignored
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "blockroute"


def test_an_entry_reads_back_under_its_key_only(cache_home):
    path = cache.write("k", "slot", "key1", b"payload")
    assert path is not None and path.parent == cache_home / "k"
    assert cache.read("k", "slot", "key1") == b"payload"
    assert cache.read("k", "slot", "key2") is None
    assert cache.read("other", "slot", "key1") is None


def test_off_means_nothing_is_written_or_read(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.CACHE_ENV, "none")
    assert cache.write("k", "s", "key", b"x") is None
    assert cache.read("k", "s", "key") is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:-1],  # truncated
        lambda b: b[:-1] + bytes([b[-1] ^ 1]),  # one bit of the payload flipped
        lambda b: b"",  # empty
        lambda b: b"not a cache file at all",
    ],
)
def test_a_damaged_entry_reads_as_missing(cache_home, damage):
    path = cache.write("k", "s", "key", b"some payload bytes")
    assert path is not None
    path.write_bytes(damage(path.read_bytes()))
    assert cache.read("k", "s", "key") is None
    cache.write("k", "s", "key", b"some payload bytes")  # and the next write repairs it
    assert cache.read("k", "s", "key") == b"some payload bytes"


def test_a_new_entry_of_a_slot_replaces_the_older_ones_and_no_other_slot_s(cache_home):
    cache.write("k", "calm-equities", "old", b"1")
    cache.write("k", "calm-equities2", "x", b"2")
    cache.write("k", "calm-equities", "new", b"3")
    assert cache.read("k", "calm-equities", "old") is None
    assert cache.read("k", "calm-equities", "new") == b"3"
    assert cache.read("k", "calm-equities2", "x") == b"2"
    assert sorted(p.name for p in (cache_home / "k").iterdir()) == [
        "calm-equities.new.bin",
        "calm-equities2.x.bin",
    ]


def test_a_slot_is_one_harmless_file_name(cache_home):
    path = cache.write("k", "../../etc/passwd x.y", "key", b"v")
    assert path is not None and path.parent == cache_home / "k"
    assert cache.read("k", "../../etc/passwd x.y", "key") == b"v"


def test_a_folder_that_cannot_be_written_costs_only_the_keeping(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(cache.CACHE_ENV, str(blocker / "cache"))  # under a file: no folder
    assert cache.write("k", "s", "key", b"v") is None
    assert cache.read("k", "s", "key") is None


def test_digest_separates_its_parts():
    assert cache.digest("ab", "c") != cache.digest("a", "bc")
    assert cache.digest("a", b"b") == cache.digest(b"a", "b")


def test_source_digest_changes_with_any_file_s_content(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("A = 1\n")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("B = 1\n")
    (tmp_path / "one.py").write_text("C = 1\n")
    before = cache.source_digest(tmp_path, ["pkg", "one.py"])
    assert before == cache.source_digest(tmp_path, ["pkg", "one.py"])
    (tmp_path / "pkg" / "sub" / "b.py").write_text("B = 2\n")
    assert cache.source_digest(tmp_path, ["pkg", "one.py"]) != before


def _write_many(root: str, payload: bytes, n: int) -> None:
    os.environ[cache.CACHE_ENV] = root
    for _ in range(n):
        assert cache.write("k", "s", "key", payload) is not None


def test_concurrent_writers_leave_a_whole_entry_and_readers_never_see_half(cache_home):
    # 4 processes rewrite one entry of 2 MB 15 times each while this one reads it: every
    # read is the whole payload or (before the first write) nothing
    payload = os.urandom(2 << 20)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(4, mp_context=ctx) as pool:
        futures = [pool.submit(_write_many, str(cache_home), payload, 15) for _ in range(4)]
        while not all(f.done() for f in futures):
            got = cache.read("k", "s", "key")
            assert got is None or got == payload
        for f in futures:
            f.result()
    assert cache.read("k", "s", "key") == payload
    assert [p.name for p in (cache_home / "k").iterdir()] == ["s.key.bin"]  # no temporaries
