"""Challenger versions for the shadow-mode tests: a byte-identical copy of a shipped
family, and one whose answers differ on purpose (no training needed)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

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


def altered(folder: Path, family: str) -> Path:
    """`folder`/other-<family>: the shipped files of `family` with answers that differ:
    the dealer models' P(best quote) turned upside down (another panel ranks first),
    the fill model's P(fill) scaled to 30% (other queue outflows, so other splits), and
    the slicer's validation rewritten so that its learned pace is served (where the
    shipped one runs the even pace)."""
    out = folder / f"other-{family}"
    out.mkdir(parents=True, exist_ok=True)
    for path in family_files(family, MODELS_DIR):
        shutil.copy(path, out / path.name)
    meta_path = out / f"{family}.meta.json"
    meta = json.loads(meta_path.read_text())
    if family == "dealer":
        meta["models"]["best"]["calibration"] = {"x": [0.0, 1.0], "y": [1.0, 0.0]}
    elif family == "fill":
        meta["models"]["passive"]["calibration"] = {"x": [0.0, 1.0], "y": [0.0, 0.3]}
    else:
        meta["validation"].update(diff_is_bps=-10.0, diff_stderr_bps=1.0)
    meta_path.write_text(json.dumps(meta))
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
