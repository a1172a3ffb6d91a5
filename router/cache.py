"""The user's cache of results that are slow to compute and cheap to keep: the compiled
tree models (models/serving/trees.py) and the desk's dealer history (router/app.py).

A leaf module like `router.config` (the standard library only), so that any layer may
keep its results here.

Where: `$BLOCKROUTE_CACHE_DIR` if set (`none` or empty turns caching off), else
`$XDG_CACHE_HOME/blockroute`, else `~/.cache/blockroute`; never inside the checkout.

An entry is one file, `<kind>/<slot>.<key>.bin`: `key` hashes everything the value
depends on (the caller says what: see `digest` and `source_digest`), so a changed input
is a different file, never a stale hit; `slot` names what the entry is of (a model
file, a scenario and panel), and writing an entry removes the slot's older ones, so the
cache does not grow with every change of code or configuration. The file holds a
SHA-256 of its payload: a truncated or damaged file reads as a miss (the caller computes
the value again and rewrites it), never as wrong data. Writes go to a temporary file in
the same folder, then `os.replace`: concurrent writers of one entry each put a whole
file in place (the last one stays; they hold the same value), and a reader sees the old
file, the new one or none, never half of one. A cache that cannot be written (read-only
home, full disk) costs the recomputation and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

CACHE_ENV = "BLOCKROUTE_CACHE_DIR"
_MAGIC = b"blockroute-cache 1\n"
_SUM = hashlib.sha256().digest_size


def cache_dir() -> Path | None:
    """The cache's folder (not created here), or None when caching is off."""
    env = os.environ.get(CACHE_ENV)
    if env is not None:
        return None if env.strip().lower() in ("", "none", "off") else Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # the XDG spec: a relative path is invalid and is to be ignored
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "blockroute"


def digest(*parts: bytes | str) -> str:
    """A key from `parts`, in order; each is length-prefixed, so that ("ab", "c") and
    ("a", "bc") differ."""
    h = hashlib.sha256()
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def source_digest(root: Path, paths: Iterable[str]) -> str:
    """A key of the Python source of `paths` (files or folders, relative to `root`,
    folders searched for *.py recursively): any edit of that code changes it."""
    files: list[Path] = []
    for rel in paths:
        p = root / rel
        files.extend(sorted(p.rglob("*.py")) if p.is_dir() else [p])
    parts: list[bytes | str] = []
    for f in files:
        parts += [f.relative_to(root).as_posix(), f.read_bytes()]
    return digest(*parts)


def _path(kind: str, slot: str, key: str) -> Path | None:
    base = cache_dir()
    if base is None:
        return None
    return base / kind / f"{_safe(slot)}.{key}.bin"


def _safe(slot: str) -> str:
    # a slot names its entry's file: keep it one harmless path component
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in slot) or "_"


def read(kind: str, slot: str, key: str) -> bytes | None:
    """The payload of an entry, or None if there is none or it is damaged."""
    path = _path(kind, slot, key)
    if path is None:
        return None
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    head = len(_MAGIC)
    if len(blob) < head + _SUM or not blob.startswith(_MAGIC):
        return None
    payload = blob[head + _SUM :]
    if hashlib.sha256(payload).digest() != blob[head : head + _SUM]:
        return None
    return payload


def write(kind: str, slot: str, key: str, payload: bytes) -> Path | None:
    """Store an entry atomically; returns its path, or None if caching is off or the
    folder cannot be written (the value is then simply not kept)."""
    path = _path(kind, slot, key)
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_MAGIC + hashlib.sha256(payload).digest() + payload)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        return None
    # the slot's other entries are of inputs that have changed since: drop them (a
    # reader that has one open keeps reading it; one that has not yet misses)
    for old in path.parent.glob(f"{_safe(slot)}.*.bin"):
        if old != path:
            with contextlib.suppress(OSError):
                old.unlink()
    return path
