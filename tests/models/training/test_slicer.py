"""Training the learned slicer: a tiny PPO run end to end (artifacts, metadata, ONNX vs
torch parity, serving through OnnxPolicy), the export on its own, the seed rules and
the command line.

torch, stable-baselines3, gymnasium and onnx are the `train` extra: without them these
tests skip, except in CI (env CI set) where they fail, since CI must install the extra."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# skipped without the extra, failed in CI (tests/conftest.py)
pytestmark = pytest.mark.requires_extra(
    "train", "torch", "stable_baselines3", "gymnasium", "onnx", "onnxscript"
)

BOND = ("illiquid-bond",)  # the cheapest regime to simulate
TINY_PPO = {"n_steps": 48, "batch_size": 48, "n_epochs": 2}


def _observations(n_episodes: int = 2) -> np.ndarray:
    """Real observations: what the slicer sees over a few bond episodes."""
    from models.training.execenv import ExecutionEnv

    env = ExecutionEnv(BOND)
    rows = []
    rng = np.random.default_rng(0)
    for k in range(n_episodes):
        obs, _ = env.reset(seed=5_000_300 + k)
        done = False
        while not done:
            rows.append(obs)
            obs, _, done, _, _ = env.step(rng.uniform(-1, 1, 1).astype(np.float32))
    env.close()
    return np.array(rows, dtype=np.float32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    from models.training.slicer import train_slicer

    out = tmp_path_factory.mktemp("slicer")
    calls: list[tuple[int, int]] = []
    written, meta = train_slicer(
        out,
        timesteps=96,
        n_envs=1,
        seed=5_000_200,
        progress=lambda done, total: calls.append((done, total)),
        checkpoint_every=48,
        validation_episodes=2,
        scenarios=BOND,
        ppo=TINY_PPO,
    )
    assert written == [out / "slicer.onnx", out / "slicer.meta.json"]
    assert calls and calls[-1] == (96, 96)
    return out, meta


def test_tiny_training_writes_a_servable_policy(trained: tuple[Path, dict[str, Any]]) -> None:
    from router.strategies.learned import OBS_NAMES, PACE_RANGE, STEP_S, load_slicer_policy

    out, meta = trained
    on_disk = json.loads((out / "slicer.meta.json").read_text())
    assert on_disk == json.loads(json.dumps(meta))
    assert meta["obs_names"] == list(OBS_NAMES)
    assert meta["step_s"] == STEP_S and meta["pace_range"] == PACE_RANGE
    assert meta["onnx"]["input"] == "obs" and meta["onnx"]["output"] == "action"
    assert meta["parity"]["max_abs_diff"] < 1e-5 and meta["parity"]["rows"] > 0
    t = meta["training"]
    assert t["timesteps"] >= 96 and t["n_envs"] == 1 and t["steps_per_s"] > 0
    first, last = t["episode_seeds"]
    assert 5_000_200 <= first <= last and not (first <= 1999 and last >= 1000)
    assert meta["curve"]["episodes"] == t["episodes"] > 0
    assert meta["validation"]["episodes"] == 2
    assert set(meta["versions"]) >= {"torch", "stable_baselines3", "onnx"}
    assert meta["ppo"]["n_steps"] == 48 and meta["ppo"]["log_std_init"] == -1.0
    # checkpoints and the final model are written beside, not shipped
    assert (out / "checkpoints" / "slicer_final.zip").exists()
    assert list((out / "checkpoints").glob("slicer_*_steps.zip"))
    # serving loads it as the `ml` strategy does, and answers in [-1, 1]
    policy = load_slicer_policy(out)
    for obs in _observations(1):
        assert -1.0 <= policy(obs) <= 1.0


def test_onnx_matches_the_trained_torch_policy(trained: tuple[Path, dict[str, Any]]) -> None:
    from stable_baselines3 import PPO

    from models.training.slicer import parity_max_diff

    out, _ = trained
    model = PPO.load(out / "checkpoints" / "slicer_final.zip", device="cpu")
    obs = _observations(2)
    assert parity_max_diff(model.policy, out / "slicer.onnx", obs) < 1e-5


def test_export_is_the_deterministic_clipped_action(tmp_path: Path) -> None:
    """An untrained policy with a large output bias: ONNX gives torch's deterministic
    action, clipped to [-1, 1], on a batch of any size."""
    import onnxruntime as ort
    import torch

    from models.training.execenv import ExecutionEnv
    from models.training.slicer import _ppo, export_onnx

    env = ExecutionEnv(BOND)
    model = _ppo(env, 5_000_000, {"n_steps": 16, "batch_size": 16})
    with torch.no_grad():
        model.policy.action_net.bias.fill_(1.2)
        model.policy.action_net.weight.mul_(20.0)  # so some actions fall outside [-1, 1]
    path = tmp_path / "p.onnx"
    export_onnx(model.policy, path)
    obs = _observations(1)
    served = ort.InferenceSession(str(path)).run(["action"], {"obs": obs})[0]
    reference, _ = model.policy.predict(obs, deterministic=True)
    assert served.shape == (len(obs), 1)
    assert np.max(np.abs(served - reference)) < 1e-5
    assert served.max() == pytest.approx(1.0) and np.all(np.abs(served) <= 1.0)
    assert not (tmp_path / "p.onnx.data").exists()  # weights inside: one file ships
    # no trace of where it was traced: the exporter's per-node notes carry the training
    # machine's file paths
    import onnx

    graph = onnx.load(str(path)).graph
    assert all(not n.metadata_props and not n.doc_string for n in graph.node)
    assert str(Path(__file__).resolve().parents[3]).encode() not in path.read_bytes()
    env.close()


@pytest.mark.parametrize("seed", [0, 1000, 1999])
def test_seeds_near_the_held_out_ones_are_refused(seed: int) -> None:
    from models.training.slicer import TrainingError, check_settings

    with pytest.raises(TrainingError, match="held-out"):
        check_settings(1000, 2, seed)


def test_training_may_not_reach_the_validation_episodes() -> None:
    from models.training.slicer import VALIDATION_SEED0, TrainingError, check_settings

    with pytest.raises(TrainingError, match="validation"):
        check_settings(10_000, 2, VALIDATION_SEED0 - 5_000)
    check_settings(10_000, 2, 5_000_000)


def test_cli_refuses_a_held_out_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from router.cli import main

    rc = main(["train", "slicer", "--seed", "1500", "--out", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "held-out" in err[0]
    assert not any(tmp_path.iterdir())


@pytest.mark.requires_extra("ray", "ray")
def test_ppo_on_ray_actors_trains_the_same_policy_as_local_processes(tmp_path: Path) -> None:
    """Two environments as Ray actors (a 2-CPU cluster started for the run) and as
    SubprocVecEnv's processes: the same seeds, the same rollouts, the same policy."""
    from stable_baselines3 import PPO

    from models.training.slicer import train_slicer

    def train(executor: str) -> tuple[PPO, dict[str, Any]]:
        out = tmp_path / executor
        _, meta = train_slicer(
            out,
            timesteps=96,
            n_envs=2,
            seed=5_000_200,
            checkpoint_every=0,
            validation_episodes=1,
            scenarios=BOND,
            ppo=TINY_PPO,
            executor=executor,
        )
        return PPO.load(out / "checkpoints" / "slicer_final.zip", device="cpu"), meta

    here, meta_here = train("local")
    there, meta_there = train("ray")
    assert meta_there["training"]["executor"] == "ray"
    assert meta_here["curve"] == meta_there["curve"]
    assert meta_here["training"]["episode_seeds"] == meta_there["training"]["episode_seeds"]
    a, b = here.policy.state_dict(), there.policy.state_dict()
    assert a.keys() == b.keys()
    assert all(bool((a[k] == b[k]).all()) for k in a)
    assert meta_here["training"]["timesteps"] >= 96  # both learned from full rollouts
