"""Model artifacts: write_family -> load_family serves exactly what was trained (trees,
clipping range, calibration map), and every missing or corrupt file raises ModelError
naming the file and the command that regenerates it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from models.serving.artifacts import ModelError, ServedModel, load_family, write_family
from models.serving.features import Clipper
from models.serving.trees import CompiledForest

NAMES = ("f0", "f1", "f2", "f3")
HINT = "blockroute train dealer"
CALIB = {"x": [0.0, 0.3, 0.7, 1.0], "y": [0.05, 0.2, 0.6, 0.9]}


def _train(seed: int) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(400, len(NAMES)))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(0.0, 0.5, 400) > 0).astype(np.float64)
    params = {"objective": "binary:logistic", "max_depth": 3, "seed": seed, "nthread": 1}
    booster = xgb.train(params, xgb.DMatrix(x, label=y), 20)
    return bytes(booster.save_raw("ubj")), x


@pytest.fixture(scope="module")
def trained() -> dict[str, tuple[bytes, np.ndarray]]:
    return {"respond": _train(1), "best": _train(2)}


def _write(directory: Path, trained: dict[str, tuple[bytes, np.ndarray]]) -> list[Path]:
    models: dict[str, tuple[bytes, Sequence[str], Clipper, dict[str, list[float]] | None]] = {
        "respond": (trained["respond"][0], NAMES, Clipper.fit(NAMES, trained["respond"][1]), CALIB),
        "best": (trained["best"][0], NAMES, Clipper.fit(NAMES, trained["best"][1]), None),
    }
    return write_family("dealer", directory, models, {"family": "dealer", "created_by": HINT})


def _probe() -> np.ndarray:
    rng = np.random.default_rng(9)
    return rng.uniform(-2.0, 2.0, size=(200, len(NAMES)))  # half of it out of range


def test_write_family_files_and_metadata(tmp_path: Path, trained: dict) -> None:
    out = tmp_path / "new" / "dir"
    written = _write(out, trained)
    assert [p.name for p in written] == [
        "dealer_respond.ubj",
        "dealer_best.ubj",
        "dealer.meta.json",
    ]
    assert all(p.is_file() for p in written)
    assert written[0].read_bytes() == trained["respond"][0]
    meta = json.loads(written[2].read_text())
    assert meta["created_by"] == HINT  # the caller's metadata is kept
    spec = meta["models"]["respond"]
    assert spec["file"] == "dealer_respond.ubj"
    assert spec["features"] == list(NAMES)
    assert spec["clip"]["lo"] == trained["respond"][1].min(axis=0).tolist()
    assert spec["clip"]["hi"] == trained["respond"][1].max(axis=0).tolist()
    assert spec["calibration"] == CALIB
    assert meta["models"]["best"]["calibration"] is None


def test_round_trip_serves_forest_clipper_and_calibration(tmp_path: Path, trained: dict) -> None:
    _write(tmp_path, trained)
    served = load_family("dealer", tmp_path)
    assert set(served) == {"respond", "best"}
    x = _probe()
    for name, calib in (("respond", CALIB), ("best", None)):
        raw, xtrain = trained[name]
        model = served[name]
        assert isinstance(model, ServedModel)
        assert model.name == name
        assert model.features == NAMES
        forest = CompiledForest.from_booster_bytes(raw)
        p = forest.predict(np.clip(x, xtrain.min(axis=0), xtrain.max(axis=0)))
        if calib is not None:
            p = np.interp(p, calib["x"], calib["y"])
        np.testing.assert_allclose(model.predict(x), p, rtol=0.0, atol=1e-12)
    # and the trees are XGBoost's own
    booster = xgb.Booster()
    booster.load_model(bytearray(trained["best"][0]))
    clipped = np.clip(x, trained["best"][1].min(axis=0), trained["best"][1].max(axis=0))
    np.testing.assert_allclose(
        served["best"].predict(x), booster.inplace_predict(clipped), atol=1e-5
    )


def test_calibration_map_is_applied(tmp_path: Path, trained: dict) -> None:
    _write(tmp_path, trained)
    model = load_family("dealer", tmp_path)["respond"]
    raw = model.forest.predict(np.clip(_probe(), model.clipper.lo, model.clipper.hi))
    p = model.predict(_probe())
    # the map is increasing from 0.05 to 0.9: every served value inside it, order kept
    assert np.all((p >= 0.05) & (p <= 0.9))
    order = np.argsort(raw, kind="stable")
    assert np.all(np.diff(p[order]) >= 0.0)
    assert not np.allclose(p, raw)


def test_out_of_range_features_are_clipped_and_counted(tmp_path: Path, trained: dict) -> None:
    _write(tmp_path, trained)
    model = load_family("dealer", tmp_path)["best"]
    lo, hi = model.clipper.lo, model.clipper.hi
    inside = (lo + hi) / 2.0
    x = np.tile(inside, (4, 1))
    x[0, 0] = hi[0] + 5.0  # f0 too high twice, f2 too low once
    x[1, 0] = hi[0] + 0.001
    x[2, 2] = lo[2] - 1.0
    p = model.predict(x)
    assert model.clipper.clipped == {"f0": 2, "f2": 1}
    assert model.clipper.rows == 4
    # clipped rows score as the edge of the training range
    edge = np.tile(inside, (3, 1))
    edge[0, 0] = edge[1, 0] = hi[0]
    edge[2, 2] = lo[2]
    np.testing.assert_allclose(p[:3], model.forest.predict(edge), atol=1e-12)
    model.predict(np.tile(inside, (10, 1)))
    assert model.clipper.clipped == {"f0": 2, "f2": 1}
    assert model.clipper.rows == 14


# ------------------------------------------------------------------------------- errors


def _error(directory: Path) -> str:
    with pytest.raises(ModelError) as info:
        load_family("dealer", directory)
    return str(info.value)


def test_missing_metadata(tmp_path: Path) -> None:
    msg = _error(tmp_path)
    assert str(tmp_path / "dealer.meta.json") in msg
    assert "metadata missing" in msg
    assert HINT in msg


def test_missing_model_file(tmp_path: Path, trained: dict) -> None:
    _write(tmp_path, trained)
    (tmp_path / "dealer_best.ubj").unlink()
    msg = _error(tmp_path)
    assert str(tmp_path / "dealer_best.ubj") in msg
    assert "missing" in msg
    assert HINT in msg


@pytest.mark.parametrize(
    "garbage",
    [b"garbage bytes \x00\x01\x02", bytes(range(256)) * 4, b"{}", b'{"learner": 1}'],
    ids=["text", "binary", "empty-json", "wrong-json"],
)
def test_corrupt_model_file(tmp_path: Path, trained: dict, garbage: bytes) -> None:
    _write(tmp_path, trained)
    (tmp_path / "dealer_respond.ubj").write_bytes(garbage)
    msg = _error(tmp_path)
    assert str(tmp_path / "dealer_respond.ubj") in msg
    assert "not a readable model" in msg
    assert HINT in msg


def test_truncated_model_file(tmp_path: Path, trained: dict) -> None:
    _write(tmp_path, trained)
    path = tmp_path / "dealer_best.ubj"
    path.write_bytes(path.read_bytes()[:300])
    msg = _error(tmp_path)
    assert str(path) in msg
    assert HINT in msg


def test_empty_model_file_raises_instead_of_aborting(tmp_path: Path, trained: dict) -> None:
    _write(tmp_path, trained)
    (tmp_path / "dealer_best.ubj").write_bytes(b"")
    # in a child process: the failure mode is an abort that would kill the test run
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from models.serving.artifacts import ModelError, load_family
        try:
            load_family("dealer", Path({str(tmp_path)!r}))
        except ModelError as exc:
            print("ModelError:", exc)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-500:]
    assert "ModelError:" in proc.stdout
    assert str(tmp_path / "dealer_best.ubj") in proc.stdout
    assert HINT in proc.stdout


@pytest.mark.parametrize(
    "text",
    ["{not json", "", "[1, 2, 3]", '{"family": "dealer"}', '{"models": {"respond": {}}}'],
    ids=["syntax", "empty", "list", "no-models", "no-file"],
)
def test_corrupt_metadata(tmp_path: Path, trained: dict, text: str) -> None:
    _write(tmp_path, trained)
    path = tmp_path / "dealer.meta.json"
    path.write_text(text)
    msg = _error(tmp_path)
    assert str(path) in msg
    assert "corrupt metadata" in msg
    assert HINT in msg


def test_metadata_without_clip_range(tmp_path: Path, trained: dict) -> None:
    _write(tmp_path, trained)
    path = tmp_path / "dealer.meta.json"
    meta = json.loads(path.read_text())
    del meta["models"]["best"]["clip"]["hi"]
    path.write_text(json.dumps(meta))
    msg = _error(tmp_path)
    assert str(path) in msg
    assert HINT in msg


def test_metadata_with_broken_calibration(tmp_path: Path, trained: dict) -> None:
    _write(tmp_path, trained)
    path = tmp_path / "dealer.meta.json"
    meta = json.loads(path.read_text())
    del meta["models"]["respond"]["calibration"]["y"]
    path.write_text(json.dumps(meta))
    msg = _error(tmp_path)
    assert str(path) in msg
    assert HINT in msg


def test_feature_count_mismatch(tmp_path: Path, trained: dict) -> None:
    _write(tmp_path, trained)
    path = tmp_path / "dealer.meta.json"
    meta = json.loads(path.read_text())
    meta["models"]["respond"]["features"] = ["f0", "f1", "f2"]
    path.write_text(json.dumps(meta))
    msg = _error(tmp_path)
    assert str(tmp_path / "dealer_respond.ubj") in msg
    assert "4 features, its metadata 3" in msg
    assert HINT in msg
