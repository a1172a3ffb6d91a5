"""Challenger versions for the shadow-mode tests: a byte-identical copy of a shipped
family, and one whose answers differ on purpose (no training needed)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from bench.shadow import altered as altered  # re-exported: the bench's differing challengers
from models.serving.artifacts import MODELS_DIR, family_files
from router.registry import ModelRegistry

FAMILIES = ("dealer", "fill", "slicer")


def copy_of(folder: Path, family: str) -> Path:
    """`folder`/same-<family>: the shipped files of `family`, byte for byte."""
    out = folder / f"same-{family}"
    out.mkdir(parents=True, exist_ok=True)
    for path in family_files(family, MODELS_DIR):
        shutil.copy(path, out / path.name)
    return out


def shadowing(folders: dict[str, Path], version: int = 2) -> ModelRegistry:
    """A registry serving the shipped models (as version 1 of each family) with the
    challengers in `folders` (by family) loaded beside them, as the service's hot swap
    puts them."""
    registry = ModelRegistry(versions=dict.fromkeys(FAMILIES, 1))
    for family, folder in folders.items():
        loaded = ModelRegistry.load_family_now(family, folder)
        registry.set_challenger(family, version, folder, loaded, time.perf_counter)
    return registry
