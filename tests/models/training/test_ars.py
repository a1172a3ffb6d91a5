"""Training the slicer by random search (models/training/ars.py): the linear policy and
its ONNX graph, the paired episodes it learns from, one iteration's step, the seed rules
and the command line.

gymnasium and onnx are the `train` extra: without them these tests skip, except in CI
(env CI set) where they fail, since CI must install the extra."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

# skipped without the extra, failed in CI (tests/conftest.py)
pytestmark = pytest.mark.requires_extra("train", "gymnasium", "onnx")

BOND = ("illiquid-bond",)  # the cheapest regime to simulate


def _theta(**weights: float) -> np.ndarray:
    from router.strategies.learned import OBS_NAMES, OBS_SIZE

    theta = np.zeros(OBS_SIZE + 1)
    for name, w in weights.items():
        if name == "bias":
            theta[OBS_SIZE] = w
        else:
            theta[OBS_NAMES.index(name)] = w
    return theta


def test_the_linear_policy_is_tanh_of_the_weighted_observation() -> None:
    from models.training.ars import LinearPolicy
    from router.strategies.learned import OBS_NAMES, OBS_SIZE

    obs = np.zeros(OBS_SIZE, dtype=np.float32)
    obs[OBS_NAMES.index("price_vs_arrival")] = -2.0
    policy = LinearPolicy(_theta(price_vs_arrival=-0.5, bias=0.1))
    assert policy(obs) == pytest.approx(np.tanh(1.0 + 0.1))
    assert LinearPolicy(_theta())(obs) == 0.0  # no weights: the TWAP line
    assert LinearPolicy(_theta(bias=50.0))(obs) == 1.0
    with pytest.raises(ValueError, match="15 numbers"):
        LinearPolicy(np.zeros(3))


def test_onnx_graph_serves_the_same_actions(tmp_path: Path) -> None:
    from models.training.ars import export_linear_onnx, parity_max_diff
    from router.strategies.learned import OBS_SIZE, OnnxPolicy

    rng = np.random.default_rng(3)
    theta = rng.normal(0, 0.4, OBS_SIZE + 1)
    path = tmp_path / "slicer.onnx"
    export_linear_onnx(theta, path)
    obs = rng.uniform(-5, 5, (256, OBS_SIZE))
    assert parity_max_diff(theta, path, obs) < 1e-5
    served = OnnxPolicy(path.read_bytes())  # what the `ml` strategy runs
    a = served(obs[0].astype(np.float32))
    assert -1.0 <= a <= 1.0 and a == pytest.approx(np.tanh(obs[0] @ theta[:-1] + theta[-1]), 1e-5)


def test_zero_weights_run_sor_ml_to_the_bit() -> None:
    """theta = 0 is a = 0 throughout: the schedule sor-ml runs, the same fills."""
    from models.training.ars import LinearPolicy, paced
    from models.training.execenv import regime_for
    from router.app import Episode

    regime = regime_for(BOND, 5_000_400)
    episode = Episode(regime.scenario, 5_000_400)
    ours = episode.run(paced(LinearPolicy(_theta())))
    theirs = episode.run("sor-ml")
    assert ours.tca.is_bps == theirs.tca.is_bps
    assert ours.tca.filled_qty == theirs.tca.filled_qty


def test_regime_for_is_the_environments_draw() -> None:
    from models.training.execenv import ExecutionEnv, regime_for

    env = ExecutionEnv(("calm", "illiquid-bond"))
    try:
        for seed in (5_000_500, 5_000_501, 5_000_502):
            _, info = env.reset(seed=seed)
            assert regime_for(("calm", "illiquid-bond"), seed).describe() == info["regime"]
    finally:
        env.close()
    with pytest.raises(ValueError, match="held-out"):
        regime_for(BOND, 1500)


def test_one_iteration_steps_against_the_costlier_side(monkeypatch: pytest.MonkeyPatch) -> None:
    """With costs a known function of theta, the step goes downhill, and the same seed
    gives the same theta."""
    from models.training import ars

    target = _theta(price_vs_arrival=-0.8, spread=0.3)

    def costs(scenarios: tuple[str, ...], seed: int, thetas: np.ndarray) -> np.ndarray:
        return np.array([float(np.sum((t - target) ** 2)) for t in thetas])

    monkeypatch.setattr(ars, "episode_costs", costs)
    settings = ars.ArsSettings(iterations=40, directions=6, top=3, episodes=2, step_size=0.05)
    theta, run = ars.train_ars(BOND, settings, seed=5_000_600)
    assert np.sum((theta - target) ** 2) < 0.2 * np.sum(target**2)
    again, _ = ars.train_ars(BOND, settings, seed=5_000_600)
    assert np.array_equal(theta, again)
    assert run["episodes"] == 80 and run["policy_runs"] == 80 * 14
    assert [r["seeds"][0] for r in run["curve"][:2]] == [5_000_600, 5_000_602]


def test_tiny_training_writes_a_servable_policy(tmp_path: Path) -> None:
    from models.training.ars import ArsSettings, train_slicer_ars
    from router.strategies.learned import OBS_NAMES, load_slicer_policy

    settings = ArsSettings(iterations=1, directions=1, top=1, episodes=1)
    written, meta = train_slicer_ars(
        tmp_path, settings, workers=1, seed=5_000_700, validation_episodes=2, scenarios=BOND
    )
    assert written == [tmp_path / "slicer.onnx", tmp_path / "slicer.meta.json"]
    assert json.loads((tmp_path / "slicer.meta.json").read_text()) == json.loads(json.dumps(meta))
    assert list(meta["policy"]["weights"]) == list(OBS_NAMES)
    assert meta["training"]["episode_seeds"] == [5_000_700, 5_000_700]
    assert meta["training"]["policy_runs"] == 4 and len(meta["curve"]) == 1
    assert meta["validation"]["episodes"] == 2 and meta["parity"]["max_abs_diff"] < 1e-5
    policy = load_slicer_policy(tmp_path)  # checks the observation and pacing
    assert -1.0 <= policy(np.zeros(len(OBS_NAMES), dtype=np.float32)) <= 1.0


def test_cli_refuses_a_held_out_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from router.cli import main

    rc = main(["train", "slicer", "--algorithm", "ars", "--seed", "1000", "--out", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "held-out" in err[0]
    assert not any(tmp_path.iterdir())


def _die_once(marker: str, x: int) -> int:
    """Kills its worker process the first time it runs (marker file absent)."""
    import os

    path = Path(marker)
    if not path.exists():
        path.write_text("died")
        os.kill(os.getpid(), 9)
    return x * x


def test_a_dead_worker_has_its_batch_run_again(tmp_path: Path) -> None:
    from models.training.ars import RetryingPool

    marker = str(tmp_path / "died")
    with RetryingPool(2) as pool:
        assert pool.map(_die_once, [marker] * 4, [1, 2, 3, 4]) == [1, 4, 9, 16]
    assert Path(marker).exists()


@pytest.mark.requires_extra("ray", "ray")
def test_ray_tasks_train_the_same_policy_as_this_process() -> None:
    """Episodes as Ray tasks (a cluster of one CPU started for the run) give the costs,
    hence the steps and the policy, of the same training run in this process."""
    from models.training import ars

    settings = ars.ArsSettings(iterations=1, directions=1, top=1, episodes=2)
    here, run_here = ars.train_ars(BOND, settings, seed=5_000_800)
    with ars.RayMapper(1) as mapper:
        there, run_there = ars.train_ars(BOND, settings, seed=5_000_800, workers=mapper)
    assert np.array_equal(here, there) and not np.array_equal(here, np.zeros_like(here))
    assert run_here["curve"] == run_there["curve"]


@pytest.mark.requires_extra("ray", "ray")
@pytest.mark.parametrize("algorithm", ["ars", "ppo"])
def test_cli_refuses_an_unreachable_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], algorithm: str
) -> None:
    import socket

    from router.cli import main

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "out"
    args = ["train", "slicer", "--algorithm", algorithm, "--executor", "ray"]
    rc = main([*args, "--ray-address", f"ray://127.0.0.1:{port}", "--out", str(out)])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach" in err[0]
    assert not out.exists()
