"""The model registry: it loads the slicer policy once, from its own folder, forgets it
on `clear`, and is where the `ml` strategy's slicer comes from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.serving.artifacts import ModelError
from router.app import Episode, apply_overrides
from router.domain import ChildOrderFilled
from router.registry import ModelRegistry
from router.strategies import strategy_spec
from router.strategies.learned import OBS_SIZE, EvenPace, OnnxPolicy, PacedSlicer
from router.strategies.twap import TwapSlicer
from simulators.scenario import load_scenario
from tests.router.strategies.test_learned import (
    HISTORY,
    HORIZON_S,
    QTY,
    WEIGHTS,
    _models_dir,
    _policy_model,
    _write_policy,
)

OBS = np.full(OBS_SIZE, 0.5, dtype=np.float32)
UNPROVEN = {"episodes": 100, "diff_is_bps": -1.31, "diff_stderr_bps": 1.39}


def _folder(tmp_path: Path, name: str) -> Path:
    """The shipped dealer and fill models in a folder of their own, without a policy."""
    (tmp_path / name).mkdir()
    return _models_dir(tmp_path / name, with_policy=False)


def test_the_slicer_policy_is_loaded_once_and_kept(tmp_path: Path) -> None:
    d = _write_policy(_folder(tmp_path, "a"))
    registry = ModelRegistry(d)
    policy = registry.slicer_policy()
    assert isinstance(policy, OnnxPolicy) and registry.shipped_slicer_policy() is policy
    (d / "slicer.onnx").unlink()  # read once: what is kept needs the file no more
    assert registry.slicer_policy() is policy


def test_clear_loads_the_slicer_policy_again(tmp_path: Path) -> None:
    d = _write_policy(_folder(tmp_path, "a"))
    registry = ModelRegistry(d)
    before = registry.slicer_policy()
    _write_policy(d, _policy_model(WEIGHTS, bias=0.5))
    assert registry.slicer_policy() is before  # not until cleared
    registry.clear()
    after = registry.slicer_policy()
    assert after is not before and after(OBS) != before(OBS)
    (d / "slicer.onnx").unlink()
    registry.clear()
    with pytest.raises(ModelError, match="policy file missing"):
        registry.slicer_policy()


def test_the_slicer_policy_loads_apart_from_the_other_models(tmp_path: Path) -> None:
    """sor-ml needs the dealer and fill models, not the slicer: a folder without a
    policy serves those, and the policy's absence is an error only when it is asked for."""
    registry = ModelRegistry(_folder(tmp_path, "a"))
    registry.load()
    assert registry.dealer_models() and registry.fill_model() is not None
    with pytest.raises(ModelError, match=r"slicer\.meta\.json: metadata missing"):
        registry.slicer_policy()


def test_an_unproven_policy_is_kept_but_the_even_pace_served(tmp_path: Path) -> None:
    registry = ModelRegistry(_write_policy(_folder(tmp_path, "a"), validation=UNPROVEN))
    assert isinstance(registry.slicer_policy(), EvenPace)
    assert isinstance(registry.shipped_slicer_policy(), OnnxPolicy)  # for `bench decide`


def test_warm_up_loads_the_slicer_policy(tmp_path: Path) -> None:
    d = _write_policy(_folder(tmp_path, "a"))
    registry = ModelRegistry(d)
    registry.warm_up()
    (d / "slicer.onnx").unlink()
    assert isinstance(registry.slicer_policy(), OnnxPolicy)  # loaded by warm_up


def test_ml_takes_its_slicer_policy_from_the_registry_it_is_given(tmp_path: Path) -> None:
    spec = strategy_spec("ml")
    a = ModelRegistry(_write_policy(_folder(tmp_path, "a")))
    b = ModelRegistry(_write_policy(_folder(tmp_path, "b"), _policy_model(WEIGHTS, bias=0.5)))
    unproven = ModelRegistry(_write_policy(_folder(tmp_path, "c"), validation=UNPROVEN))
    slicer_a = spec.slicer(HISTORY, QTY, HORIZON_S, a)
    slicer_b = spec.slicer(HISTORY, QTY, HORIZON_S, b)
    assert isinstance(slicer_a, PacedSlicer) and isinstance(slicer_b, PacedSlicer)
    assert slicer_a.policy is a.slicer_policy() and slicer_b.policy is b.slicer_policy()
    assert slicer_a.policy(OBS) != slicer_b.policy(OBS)
    assert isinstance(spec.slicer(HISTORY, QTY, HORIZON_S, unproven), TwapSlicer)


def test_a_new_execution_of_ml_runs_the_policy_of_its_registry(tmp_path: Path) -> None:
    """The same episode, the `ml` strategy with registries whose folders hold other
    policies: a policy in a hurry (always a = +1, three times the even pace) trades
    otherwise than one the registry does not serve (the even pace, so sor-ml)."""
    hurry = _policy_model(np.zeros(OBS_SIZE), bias=1.0)
    fast = ModelRegistry(_write_policy(_folder(tmp_path, "fast"), hurry))
    even = ModelRegistry(_write_policy(_folder(tmp_path, "even"), hurry, validation=UNPROVEN))
    scenario = apply_overrides(load_scenario("calm"), 200_000, None, 1800.0)

    def fills(models: ModelRegistry, strategy: str = "ml") -> list[ChildOrderFilled]:
        return list(Episode(scenario, 7, models=models).run(strategy).fills)

    at_even = fills(even)
    assert at_even == fills(even, "sor-ml")
    in_a_hurry = fills(fast)
    assert in_a_hurry != at_even
    # ahead of the even pace at mid-horizon
    half = 900 * 10**9

    def done_by_half(run: list[ChildOrderFilled]) -> int:
        return sum(f.qty for f in run if f.ts_ns <= half)

    assert done_by_half(in_a_hurry) > done_by_half(at_even)


def test_withdrawn_live_views_score_in_the_shadow_and_answer_the_heuristic_way() -> None:
    from router import app
    from tests.models.serving.test_predictors import _order

    live = app.MODELS.live()
    fill = app.MODELS.fill_model()
    orders = [_order(100.0), _order(5_000.0)]
    served = live.fill_model().p_fill(orders)
    assert served == fill.p_fill(orders) and all(0 < p < 1 for p in served)
    live.withdrawn = "drift alert: fill: ECE 0.2"
    try:
        rows = fill.model.clipper.rows
        assert all(np.isnan(p) for p in live.fill_model().p_fill(orders))
        assert fill.model.clipper.rows == rows + 2  # scored all the same: the figures go on
        assert live.slicer_policy()(OBS) == 0.0  # the even pace
        assert live.withdrawal() == "drift alert: fill: ECE 0.2"
    finally:
        live.withdrawn = ""
    assert live.fill_model().p_fill(orders) == served
