"""Shipped model artifacts: XGBoost boosters (UBJ) plus one metadata file per model
family (features, clipping range, calibration map, training seeds, metrics), and their
loading for serving.

Serving never calls XGBoost: the trees are compiled once (models/serving/trees.py; kept
in the user's cache, router/cache.py, for the next process), features are
clipped to the training range (and counted), and the calibration map is a piecewise
linear isotonic fit. A missing or corrupt file raises `ModelError` naming the file and
the command that regenerates it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.serving.features import Clipper
from models.serving.trees import CompiledForest

MODELS_DIR = Path(__file__).resolve().parents[1]


class ModelError(RuntimeError):
    """A model artifact is missing, corrupt or does not match this code."""


@dataclass
class ServedModel:
    """One binary classifier as served: clip -> trees -> calibration map."""

    name: str
    features: tuple[str, ...]
    forest: CompiledForest
    clipper: Clipper
    calib_x: np.ndarray | None = None
    calib_y: np.ndarray | None = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        c = self.clipper
        p = self.forest.clipped_predict(x, c.lo, c.hi, c.counts)
        c.rows += p.shape[0]
        return self._calibrated(p)

    def score(self, x: np.ndarray) -> np.ndarray:
        """`predict`, counting nothing (rows, clipped values): a monitor's own question
        (router/desk/drift.py), which the counts of the model's use must not see."""
        c = self.clipper
        return self._calibrated(self.forest.clipped_predict(x, c.lo, c.hi, np.zeros_like(c.counts)))

    def _calibrated(self, p: np.ndarray) -> np.ndarray:
        if self.calib_x is not None and self.calib_y is not None:
            p = np.interp(p, self.calib_x, self.calib_y)
        return p


def regenerate_hint(family: str) -> str:
    return f"regenerate it with `blockroute train {family}`"


def load_family(family: str, directory: Path = MODELS_DIR) -> dict[str, ServedModel]:
    """Every model of a family (e.g. "dealer": respond, best, hit) from `directory`."""
    meta_path = directory / f"{family}.meta.json"
    meta = _read_meta(meta_path, family)
    models = {}
    for name, spec in meta["models"].items():
        path = directory / spec["file"]
        if not path.exists():
            raise ModelError(f"{path}: model file missing; {regenerate_hint(family)}")
        if path.stat().st_size == 0:  # XGBoost's loader aborts the process on empty input
            raise ModelError(f"{path}: empty model file; {regenerate_hint(family)}")
        try:
            forest = CompiledForest.from_artifact(path.read_bytes(), path.name)
        except Exception as exc:  # xgboost raises its own error types for bad bytes
            raise ModelError(
                f"{path}: not a readable model ({type(exc).__name__}); {regenerate_hint(family)}"
            ) from None
        features = tuple(spec["features"])
        if forest.n_features != len(features):
            raise ModelError(
                f"{path}: has {forest.n_features} features, its metadata {len(features)}; "
                f"{regenerate_hint(family)}"
            )
        clip = spec["clip"]
        clipper = Clipper(features, np.asarray(clip["lo"]), np.asarray(clip["hi"]))
        calib = spec.get("calibration")
        models[name] = ServedModel(
            name,
            features,
            forest,
            clipper,
            None if calib is None else np.asarray(calib["x"]),
            None if calib is None else np.asarray(calib["y"]),
        )
    return models


def _read_meta(path: Path, family: str) -> dict[str, Any]:
    if not path.exists():
        raise ModelError(f"{path}: metadata missing; {regenerate_hint(family)}")
    try:
        meta = json.loads(path.read_text())
        if not isinstance(meta, dict) or not isinstance(meta.get("models"), dict):
            raise ValueError("no 'models' table")
        for spec in meta["models"].values():
            for key in ("file", "features", "clip"):
                if key not in spec:
                    raise KeyError(key)
            if "lo" not in spec["clip"] or "hi" not in spec["clip"]:
                raise KeyError("clip range")
            calib = spec.get("calibration")
            if calib is not None and len(calib["x"]) != len(calib["y"]):
                raise ValueError("calibration x and y differ in length")
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path}: corrupt metadata ({exc}); {regenerate_hint(family)}") from None
    return meta


def family_files(family: str, directory: Path) -> list[Path]:
    """The files one family's version consists of: its metadata and the files it names
    (each model's booster; the slicer's ONNX graph). The model registry copies these.
    Raises ModelError if the metadata is missing or unreadable or a file is missing."""
    meta_path = directory / f"{family}.meta.json"
    if not meta_path.exists():
        raise ModelError(f"{meta_path}: metadata missing; {regenerate_hint(family)}")
    try:
        meta = json.loads(meta_path.read_text())
        names = [str(spec["file"]) for spec in meta.get("models", {}).values()]
        if family == "slicer":
            # router.strategies.learned.SLICER_ONNX: the name the loader reads
            names.append("slicer.onnx")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(
            f"{meta_path}: corrupt metadata ({exc}); {regenerate_hint(family)}"
        ) from None
    files = [meta_path, *(directory / n for n in names)]
    for path in files:
        if not path.is_file():
            raise ModelError(f"{path}: model file missing; {regenerate_hint(family)}")
    return files


def write_family(
    family: str,
    directory: Path,
    models: dict[str, tuple[bytes, Sequence[str], Clipper, dict[str, list[float]] | None]],
    meta: dict[str, Any],
) -> list[Path]:
    """Write each model's booster and one metadata file; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    specs = {}
    for name, (raw, features, clipper, calib) in models.items():
        path = directory / f"{family}_{name}.ubj"
        path.write_bytes(raw)
        written.append(path)
        specs[name] = {
            "file": path.name,
            "features": list(features),
            "clip": {"lo": clipper.lo.tolist(), "hi": clipper.hi.tolist()},
            "calibration": calib,
        }
    meta_path = directory / f"{family}.meta.json"
    meta_path.write_text(json.dumps({**meta, "models": specs}, indent=1) + "\n")
    written.append(meta_path)
    return written
