"""The compiled forest scores exactly as XGBoost does (margins and probabilities), on
random data with missing values, shallow and deep trees, monotone constraints, sliced
boosters and every model shipped in models/."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost as xgb

from models.serving import trees
from models.serving.artifacts import MODELS_DIR
from models.serving.trees import CompiledForest

N_FEATURES = 5
TOL = 1e-5


def _data(rng: np.random.Generator, n: int, nan_share: float = 0.15) -> np.ndarray:
    x = rng.normal(size=(n, N_FEATURES))
    x[rng.random(x.shape) < nan_share] = np.nan
    return x


def _labels(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    z = np.nan_to_num(x)
    score = z[:, 0] - 0.7 * z[:, 1] ** 2 + np.sin(2 * z[:, 2]) + np.isnan(x[:, 3])
    return (score + rng.normal(size=len(x)) > 0).astype(np.float64)


def _booster(depth: int, rounds: int = 30, **params: Any) -> xgb.Booster:
    rng = np.random.default_rng(depth)
    x = _data(rng, 600)
    base = {"objective": "binary:logistic", "max_depth": depth, "eta": 0.3, "seed": 1}
    return xgb.train(
        {**base, "nthread": 1, **params}, xgb.DMatrix(x, label=_labels(rng, x)), rounds
    )


def _compile(booster: xgb.Booster) -> CompiledForest:
    return CompiledForest.from_booster_bytes(bytes(booster.save_raw("ubj")))


def _assert_same(forest: CompiledForest, booster: xgb.Booster, x: np.ndarray) -> None:
    margin = booster.inplace_predict(x, predict_type="margin")
    prob = booster.inplace_predict(x)
    assert np.max(np.abs(forest.margin(x) - margin)) < TOL
    assert np.max(np.abs(forest.predict(x) - prob)) < TOL


@pytest.mark.parametrize("depth", [2, 6])
def test_margins_and_probabilities_equal_xgboost(depth: int) -> None:
    booster = _booster(depth)
    forest = _compile(booster)
    assert forest.n_features == N_FEATURES
    assert forest.roots.size == 30  # one root per tree
    x = _data(np.random.default_rng(99), 2_000, nan_share=0.2)
    _assert_same(forest, booster, x)


def test_all_missing_and_infinite_values_follow_xgboost() -> None:
    booster = _booster(6)
    forest = _compile(booster)
    x = np.array(
        [
            [np.nan] * N_FEATURES,
            [np.inf, -np.inf, np.inf, -np.inf, np.nan],
            [1e30, -1e30, 0.0, 0.0, 0.0],
        ]
    )
    _assert_same(forest, booster, x)


def test_values_exactly_on_a_threshold_go_right() -> None:
    # XGBoost goes left only if x < threshold: rows sitting on every split value of the
    # model (and one float32 step below) must take the same branches
    booster = _booster(6)
    forest = _compile(booster)
    splits = forest.feature >= 0
    rows = []
    for f, t in zip(forest.feature[splits], forest.threshold[splits], strict=True):
        for v in (t, np.nextafter(t, np.float32(-np.inf))):
            r = np.zeros(N_FEATURES, dtype=np.float32)
            r[f] = v
            rows.append(r)
    x = np.asarray(rows, dtype=np.float32)
    assert len(x) > 50
    _assert_same(forest, booster, x)


def test_monotone_constraints_are_served_as_trained() -> None:
    booster = _booster(4, monotone_constraints="(-1,1,0,0,0)")
    forest = _compile(booster)
    rng = np.random.default_rng(5)
    _assert_same(forest, booster, _data(rng, 1_000))
    grid = np.linspace(-3.0, 3.0, 61)
    base = _data(rng, 20, nan_share=0.0)
    for row in base:
        x = np.tile(row, (grid.size, 1))
        x[:, 0] = grid
        assert np.all(np.diff(forest.margin(x)) <= 1e-9)  # non-increasing in feature 0
        x = np.tile(row, (grid.size, 1))
        x[:, 1] = grid
        assert np.all(np.diff(forest.margin(x)) >= -1e-9)  # non-decreasing in feature 1


def test_sliced_booster_keeps_only_its_trees() -> None:
    booster = _booster(4, rounds=40)
    x = _data(np.random.default_rng(11), 1_000)
    full = _compile(booster)
    for k in (1, 7, 25):
        part = booster[:k]
        forest = _compile(part)
        assert forest.roots.size == k
        _assert_same(forest, part, x)
        assert np.max(np.abs(forest.margin(x) - full.margin(x))) > 1e-3  # not the full model


def test_from_model_json_equals_the_ubj_route() -> None:
    booster = _booster(3)
    x = _data(np.random.default_rng(2), 500)
    forest = CompiledForest.from_model_json(json.loads(booster.save_raw("json")))
    _assert_same(forest, booster, x)
    via_json_bytes = CompiledForest.from_booster_bytes(bytes(booster.save_raw("json")))
    assert np.array_equal(via_json_bytes.margin(x), forest.margin(x))


def test_explicit_base_score_is_honoured() -> None:
    booster = _booster(2, base_score=0.2)
    forest = _compile(booster)
    assert forest.base_margin == pytest.approx(np.log(0.2 / 0.8), abs=1e-6)
    _assert_same(forest, booster, _data(np.random.default_rng(3), 300))


def test_single_leaf_trees_score_their_leaf() -> None:
    # min_split_loss this large forbids every split: each tree is one leaf
    booster = _booster(3, rounds=5, gamma=1e9)
    forest = _compile(booster)
    assert np.all(forest.feature == -1)
    assert forest.roots.tolist() == [0, 1, 2, 3, 4]
    x = _data(np.random.default_rng(4), 50)
    _assert_same(forest, booster, x)
    assert np.ptp(forest.margin(x)) == 0.0


@pytest.mark.parametrize("shape", [(5,), (3, 4), (3, 6), (2, 5, 1), (0, 4)])
def test_bad_input_shapes_raise(shape: tuple[int, ...]) -> None:
    forest = _compile(_booster(2, rounds=3))
    with pytest.raises(ValueError, match="expected rows of 5 features"):
        forest.margin(np.zeros(shape))
    with pytest.raises(ValueError, match="expected rows of 5 features"):
        forest.predict(np.zeros(shape))


def test_no_rows_give_no_scores() -> None:
    forest = _compile(_booster(2, rounds=3))
    assert forest.predict(np.zeros((0, N_FEATURES))).shape == (0,)


@pytest.mark.parametrize("objective", ["reg:squarederror", "binary:logitraw", "count:poisson"])
def test_other_objectives_are_refused(objective: str) -> None:
    rng = np.random.default_rng(0)
    x = _data(rng, 100)
    booster = xgb.train(
        {"objective": objective, "max_depth": 2, "nthread": 1},
        xgb.DMatrix(x, label=_labels(rng, x)),
        3,
    )
    with pytest.raises(ValueError, match=rf"only binary:logistic .*{objective}"):
        _compile(booster)


SHIPPED = sorted(MODELS_DIR.glob("*.ubj"))


@pytest.mark.skipif(not SHIPPED, reason="no model shipped in models/")
@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_model_compiles_to_xgboosts_scores(path: Path) -> None:
    booster = xgb.Booster()
    booster.load_model(bytearray(path.read_bytes()))
    forest = CompiledForest.from_booster_bytes(path.read_bytes())
    assert forest.n_features == booster.num_features()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, forest.n_features)) * 2.0
    x[rng.random(x.shape) < 0.05] = np.nan
    _assert_same(forest, booster, x)


def test_clipped_predict_is_the_prediction_of_the_clipped_rows_and_counts_them() -> None:
    booster = _booster(4)
    forest = _compile(booster)
    rng = np.random.default_rng(5)
    x = _data(rng, 300, nan_share=0.1) * 3.0
    lo, hi = np.full(N_FEATURES, -1.0), np.full(N_FEATURES, 1.5)
    counts = np.zeros(N_FEATURES, dtype=np.int64)
    got = forest.clipped_predict(x, lo, hi, counts)
    np.testing.assert_array_equal(got, forest.predict(np.clip(x, lo, hi)))
    outside = ((x < lo) | (x > hi)) & ~np.isnan(x)  # a missing value is not counted
    assert counts.tolist() == outside.sum(axis=0).tolist()
    assert np.isnan(x).any() and counts.sum() > 0
    forest.clipped_predict(x[:10], lo, hi, counts)  # counts accumulate
    assert counts.tolist() == (outside.sum(axis=0) + outside[:10].sum(axis=0)).tolist()


def test_clipped_predict_refuses_bad_shapes() -> None:
    forest = _compile(_booster(2))
    counts = np.zeros(N_FEATURES, dtype=np.int64)
    bounds = np.zeros(N_FEATURES), np.ones(N_FEATURES)
    with pytest.raises(ValueError, match="5 features"):
        forest.clipped_predict(np.zeros((2, 4)), *bounds, counts)


# ------------------------------------------------------------ the compiled-forest cache


@pytest.fixture
def user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from router.cache import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    return tmp_path / trees.TREES_CACHE


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The bytes each call of `from_booster_bytes` (the XGBoost route) compiled."""
    seen: list[bytes] = []
    real = CompiledForest.from_booster_bytes.__func__  # type: ignore[attr-defined]

    def counting(cls: type[CompiledForest], raw: bytes) -> CompiledForest:
        seen.append(raw)
        return real(cls, raw)

    monkeypatch.setattr(CompiledForest, "from_booster_bytes", classmethod(counting))
    return seen


def _same_forest(a: CompiledForest, b: CompiledForest) -> None:
    for k in (*trees._ARRAYS, "nodes"):
        x, y = getattr(a, k), getattr(b, k)
        assert x.dtype == y.dtype and np.array_equal(x, y), k
    assert a.base_margin == b.base_margin and a.n_features == b.n_features


def test_a_cached_forest_is_the_compiled_one_without_compiling_again(user_cache, compiles):
    raw = bytes(_booster(4).save_raw("ubj"))
    first = CompiledForest.from_artifact(raw, "m.ubj")
    second = CompiledForest.from_artifact(raw, "m.ubj")
    assert len(compiles) == 1
    _same_forest(first, second)
    _same_forest(second, CompiledForest.from_booster_bytes(raw))
    x = _data(np.random.default_rng(8), 400)
    assert np.array_equal(first.margin(x), second.margin(x))  # bit for bit
    assert [p.name.split(".")[0] for p in user_cache.iterdir()] == ["m_ubj"]


def test_changed_bytes_or_code_version_compile_again(user_cache, compiles, monkeypatch):
    raw1 = bytes(_booster(2, rounds=5).save_raw("ubj"))
    raw2 = bytes(_booster(3, rounds=5).save_raw("ubj"))
    CompiledForest.from_artifact(raw1, "m.ubj")
    forest2 = CompiledForest.from_artifact(raw2, "m.ubj")  # the artifact was retrained
    assert compiles == [raw1, raw2]
    _same_forest(forest2, CompiledForest.from_booster_bytes(raw2))
    monkeypatch.setattr(trees, "TREES_CACHE_VERSION", trees.TREES_CACHE_VERSION + 1)
    CompiledForest.from_artifact(raw2, "m.ubj")
    assert len(compiles) == 4  # (3: the direct call above)
    assert len(list(user_cache.iterdir())) == 1  # the slot keeps its newest entry only


def test_a_corrupt_entry_is_compiled_again_and_rewritten(user_cache, compiles):
    from router import cache

    raw = bytes(_booster(2, rounds=5).save_raw("ubj"))
    good = CompiledForest.from_artifact(raw, "m.ubj")
    key = trees._cache_key(raw)
    # whole entries (their checksum holds) whose payload is not a forest, or one of
    # another layout: rebuilt
    for bad in (b"garbage", _npz(good, feature=np.int16), _npz(good, roots=None)):
        cache.write(trees.TREES_CACHE, "m.ubj", key, bad)
        _same_forest(CompiledForest.from_artifact(raw, "m.ubj"), good)
        assert cache.read(trees.TREES_CACHE, "m.ubj", key) == good._to_npz()
    (path,) = user_cache.iterdir()
    path.write_bytes(path.read_bytes()[:-10])  # truncated: its checksum fails
    _same_forest(CompiledForest.from_artifact(raw, "m.ubj"), good)
    assert len(compiles) == 5


def _npz(forest: CompiledForest, **changes: Any) -> bytes:
    """`forest`'s cache payload with arrays of another type, or left out (None)."""
    arrays = {k: getattr(forest, k) for k in trees._ARRAYS}
    for k, dtype in changes.items():
        if dtype is None:
            del arrays[k]
        else:
            arrays[k] = arrays[k].astype(dtype)
    buf = io.BytesIO()
    np.savez(buf, base_margin=forest.base_margin, n_features=forest.n_features, **arrays)
    return buf.getvalue()


def test_without_a_cache_the_forest_is_compiled_each_time(monkeypatch, compiles):
    from router.cache import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, "none")
    raw = bytes(_booster(2, rounds=5).save_raw("ubj"))
    CompiledForest.from_artifact(raw, "m.ubj")
    CompiledForest.from_artifact(raw, "m.ubj")
    assert len(compiles) == 2
