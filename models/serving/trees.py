"""Serving XGBoost tree ensembles without XGBoost's per-call overhead.

A routing decision scores a handful of rows with two or three models; XGBoost's
`inplace_predict` costs about 130 us per call here whatever the batch (p99 280 us), which
alone would spend the 500 us decision budget. The trees are flattened once into arrays
(feature, threshold, children, missing branch, leaf value) and walked by a compiled
loop: a few microseconds for a decision. The margins equal XGBoost's own to float
rounding (tests/models/serving/test_trees.py checks it on every shipped model).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import math
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from numba import njit

from router import cache

log = structlog.get_logger(__name__)

FloatArray = np.ndarray


#: one node as the walk reads it, 16 bytes: a split's fields side by side (XGBoost puts
#: a right child right after the left one)
NODE = np.dtype(
    [
        ("feature", np.int32),  # -1 for a leaf
        ("threshold", np.float32),  # a leaf's value
        ("left", np.int32),  # the right child is left + 1
        ("missing", np.int32),
    ]
)


@dataclass(frozen=True)
class CompiledForest:
    feature: np.ndarray  # int32 per node, -1 for leaves
    threshold: np.ndarray  # float32 per node: go left if x < threshold
    left: np.ndarray  # int32 per node
    right: np.ndarray
    missing: np.ndarray  # child taken for NaN
    value: np.ndarray  # float32 leaf value
    roots: np.ndarray  # int32: each tree's root node
    base_margin: float
    n_features: int
    nodes: np.ndarray = field(init=False, repr=False)  # the walk's copy, one NODE each

    def __post_init__(self) -> None:
        split = self.feature >= 0
        if np.any(self.right[split] != self.left[split] + 1):
            raise ValueError("a right child is not stored right after its left sibling")
        nodes = np.zeros(self.feature.size, dtype=NODE)
        nodes["feature"] = self.feature
        nodes["threshold"] = np.where(split, self.threshold, self.value)
        nodes["left"] = self.left
        nodes["missing"] = self.missing
        object.__setattr__(self, "nodes", nodes)

    @classmethod
    def from_model_json(cls, model: dict[str, Any]) -> CompiledForest:
        """From XGBoost's JSON model (`Booster.save_raw("json")`)."""
        learner = model["learner"]
        trees = learner["gradient_booster"]["model"]["trees"]
        n_features = int(learner["learner_model_param"]["num_feature"])
        base_score = float(str(learner["learner_model_param"]["base_score"]).strip("[]"))
        objective = learner["objective"]["name"]
        if objective != "binary:logistic":
            raise ValueError(f"only binary:logistic models are served, got {objective}")
        base_margin = float(np.log(base_score / (1.0 - base_score)))
        feats, thr, lefts, rights, miss, vals, roots = [], [], [], [], [], [], []
        offset = 0
        for t in trees:
            left = np.asarray(t["left_children"], dtype=np.int32)
            right = np.asarray(t["right_children"], dtype=np.int32)
            leaf = left == -1
            feat = np.where(leaf, -1, np.asarray(t["split_indices"], dtype=np.int32))
            default_left = np.asarray(t["default_left"], dtype=bool)
            roots.append(offset)
            feats.append(feat)
            thr.append(np.asarray(t["split_conditions"], dtype=np.float32))
            lefts.append(np.where(leaf, -1, left + offset))
            rights.append(np.where(leaf, -1, right + offset))
            miss.append(np.where(leaf, -1, np.where(default_left, left, right) + offset))
            # a leaf's value is stored in split_conditions
            vals.append(np.where(leaf, np.asarray(t["split_conditions"], np.float32), 0.0))
            offset += left.size
        return cls(
            np.concatenate(feats).astype(np.int32),
            np.concatenate(thr).astype(np.float32),
            np.concatenate(lefts).astype(np.int32),
            np.concatenate(rights).astype(np.int32),
            np.concatenate(miss).astype(np.int32),
            np.concatenate(vals).astype(np.float32),
            np.asarray(roots, dtype=np.int32),
            base_margin,
            n_features,
        )

    @classmethod
    def from_booster_bytes(cls, raw: bytes) -> CompiledForest:
        """From a saved model (UBJ or JSON bytes), through XGBoost's own loader."""
        import xgboost as xgb  # only to read the file; serving never calls it

        booster = xgb.Booster()
        booster.load_model(bytearray(raw))
        return cls.from_model_json(json.loads(booster.save_raw("json")))

    @classmethod
    def from_artifact(cls, raw: bytes, name: str) -> CompiledForest:
        """`from_booster_bytes` through the user's cache (router.cache): the compiled
        arrays of these very bytes if they are there, else compiled now and kept.
        Loading them takes a millisecond; XGBoost's import and loader take about a
        second. `name` (the artifact's file name) only names the cache entry."""
        key = _cache_key(raw)
        hit = cache.read(TREES_CACHE, name, key)
        if hit is not None:
            try:
                return cls._from_npz(hit)
            except Exception as exc:  # a damaged or foreign entry: compile again
                log.warning("tree cache entry unreadable, rebuilt", model=name, error=str(exc))
        forest = cls.from_booster_bytes(raw)
        cache.write(TREES_CACHE, name, key, forest._to_npz())
        return forest

    def _to_npz(self) -> bytes:
        buf = io.BytesIO()
        np.savez(
            buf,
            base_margin=np.float64(self.base_margin),
            n_features=np.int64(self.n_features),
            **{k: getattr(self, k) for k in _ARRAYS},
        )
        return buf.getvalue()

    @classmethod
    def _from_npz(cls, payload: bytes) -> CompiledForest:
        with np.load(io.BytesIO(payload), allow_pickle=False) as z:
            arrays = {}
            for k, dtype in _ARRAYS.items():
                a = z[k]
                if a.dtype != dtype or a.ndim != 1:
                    raise ValueError(f"{k}: {a.dtype}{a.shape}, expected {dtype} 1-d")
                arrays[k] = a
            base_margin, n_features = float(z["base_margin"]), int(z["n_features"])
        n = arrays["feature"].size
        if any(arrays[k].size != n for k in _ARRAYS if k != "roots"):
            raise ValueError("arrays of different lengths")
        # the compiled walk does not check its indices: an entry must not make it stray
        for k, lo in (("left", -1), ("right", -1), ("missing", -1), ("roots", 0)):
            a = arrays[k]
            if a.size and (int(a.min()) < lo or int(a.max()) >= n):
                raise ValueError(f"{k}: a node index out of range")
        f = arrays["feature"]
        if f.size and (int(f.min()) < -1 or int(f.max()) >= n_features):
            raise ValueError("feature: an index out of range")
        return cls(
            arrays["feature"],
            arrays["threshold"],
            arrays["left"],
            arrays["right"],
            arrays["missing"],
            arrays["value"],
            arrays["roots"],
            base_margin,
            n_features,
        )

    def margin(self, x: FloatArray) -> FloatArray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        self._check(x)
        return _margins(x, *self._arrays())

    def predict(self, x: FloatArray) -> FloatArray:
        """P(y = 1) per row, before any calibration map."""
        return _logistic(self.margin(x))

    def clipped_predict(
        self, x: FloatArray, lo: FloatArray, hi: FloatArray, counts: np.ndarray
    ) -> FloatArray:
        """`predict` of `x` (float64) clipped to [lo, hi] per feature, in one compiled
        call; adds each feature's clipped values to `counts` (int64)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        self._check(x)
        return _clipped_probabilities(x, lo, hi, counts, *self._arrays())

    def _check(self, x: np.ndarray) -> None:
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {x.shape}")

    def _arrays(self) -> tuple[Any, ...]:
        return (self.nodes, self.roots, self.base_margin)


#: the cache's folder of compiled forests (router.cache)
TREES_CACHE = "trees"
#: bump when a cached forest's layout changes in a way this file's source does not show
TREES_CACHE_VERSION = 1
_ARRAYS = {
    "feature": np.dtype(np.int32),
    "threshold": np.dtype(np.float32),
    "left": np.dtype(np.int32),
    "right": np.dtype(np.int32),
    "missing": np.dtype(np.int32),
    "value": np.dtype(np.float32),
    "roots": np.dtype(np.int32),
}


def _cache_key(raw: bytes) -> str:
    """What a compiled forest depends on: the artifact's bytes, the code that compiles
    them (this file) and the XGBoost that reads them."""
    return cache.digest(
        str(TREES_CACHE_VERSION), Path(__file__).read_bytes(), _xgboost_version(), raw
    )


@functools.cache
def _xgboost_version() -> str:
    # the package's own VERSION file, found without importing it (a second) or asking
    # importlib.metadata (tens of milliseconds: it searches every path entry)
    spec = importlib.util.find_spec("xgboost")
    if spec is None or spec.origin is None:
        return "none"
    try:
        return (Path(spec.origin).parent / "VERSION").read_text().strip()
    except OSError:
        pass
    try:
        return metadata.version("xgboost")
    except metadata.PackageNotFoundError:
        return "unknown"


@njit(cache=True)
def _clipped_margins(
    x: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    counts: np.ndarray,
    nodes: np.ndarray,
    roots: np.ndarray,
    base: float,
) -> np.ndarray:
    # clipped in float64 (a missing value stays missing, uncounted), then compared in
    # float32 as XGBoost does
    x32 = np.empty(x.shape, dtype=np.float32)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            v = x[i, j]
            if v < lo[j]:
                v = lo[j]
                counts[j] += 1
            elif v > hi[j]:
                v = hi[j]
                counts[j] += 1
            x32[i, j] = v
    return _margins(x32, nodes, roots, base)


@njit(cache=True)
def _clipped_probabilities(
    x: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    counts: np.ndarray,
    nodes: np.ndarray,
    roots: np.ndarray,
    base: float,
) -> np.ndarray:
    return _logistic(_clipped_margins(x, lo, hi, counts, nodes, roots, base))


@njit(cache=True)
def _logistic(margins: np.ndarray) -> np.ndarray:
    # the one place probabilities are made, so that every path gives the same bits
    # (numpy's vectorised exp may differ from libm's in the last one, on AVX-512)
    out = np.empty_like(margins)
    for i in range(margins.shape[0]):
        out[i] = 1.0 / (1.0 + math.exp(-margins[i]))
    return out


@njit(cache=True)
def _margins(x: np.ndarray, nodes: np.ndarray, roots: np.ndarray, base: float) -> np.ndarray:
    # tree by tree, every row through it: one tree's nodes stay in cache for all rows;
    # each row still sums its trees' values in order
    n = x.shape[0]
    acc = np.zeros(n)
    for r in range(roots.shape[0]):
        for i in range(n):
            node = nodes[roots[r]]
            while node.feature >= 0:
                v = x[i, node.feature]
                if np.isnan(v):
                    node = nodes[node.missing]
                elif v < node.threshold:
                    node = nodes[node.left]
                else:
                    node = nodes[node.left + 1]
            acc[i] += node.threshold
    out = np.full(n, base)
    for i in range(n):
        out[i] += acc[i]
    return out
