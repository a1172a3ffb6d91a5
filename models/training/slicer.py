"""Training the learned slicer (`blockroute train slicer`): PPO on the execution
environment (models/training/execenv.py), exported to ONNX for serving.

The policy is a small MLP (Stable-Baselines3 `MlpPolicy`, tanh); its action is the pace
of router.strategies.learned.PacedSlicer. It starts near a = 0, the even pace (the
TWAP line, sor-ml's schedule): SB3 initialises the action mean near zero, and a small
initial log-std keeps early exploration near it too, so the router is never worse than
TWAP pacing by much while it learns.

What ships is the deterministic actor only (features -> actor MLP -> action head, then
clipped to [-1, 1] as SB3 clips a Box action), as ONNX: input "obs" float32
[batch, OBS_SIZE], output "action" float32 [batch, 1]. Serving runs it with ONNX Runtime
(router.strategies.learned.OnnxPolicy) and never imports torch. The metadata records the
observation and pacing it was trained on (serving refuses a mismatch), the seeds, PPO's
settings, the learning curve, ONNX-vs-torch parity and a paired validation against the
even pace on episodes of their own.

Seeds: training episodes are numbered from `seed` (5,000,000 by default) upwards, one
stream per worker; validation episodes from VALIDATION_SEED0. Seeds 1000-1999 are the
held-out evaluation episodes of `blockroute backtest` and are never used.

torch, stable-baselines3, gymnasium and onnx are the `train` extra: this module imports
them only inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import multiprocessing
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.serving.artifacts import MODELS_DIR
from router.strategies.learned import (
    OBS_NAMES,
    OBS_SIZE,
    ONNX_INPUT,
    ONNX_OUTPUT,
    PACE_RANGE,
    PACING,
    SLICER_META,
    SLICER_ONNX,
    STEP_S,
)

if TYPE_CHECKING:
    from stable_baselines3 import PPO
    from stable_baselines3.common.policies import ActorCriticPolicy

SEED0 = 5_000_000  # the first training episode
VALIDATION_SEED0 = 5_900_000  # paired validation episodes: after any training run's
HELD_OUT = range(1000, 2000)  # evaluation episodes (blockroute backtest): never here
DEFAULT_TIMESTEPS = 32_768  # 5-14 min on 2 cores (100-40 steps/s, as busy as they are)
DEFAULT_ENVS = 2
CHECKPOINT_EVERY = 20_000  # environment steps between checkpoints
VALIDATION_EPISODES = 100
ONNX_OPSET = 18
PARITY_ROWS = 512  # real observations kept for the ONNX-vs-torch check
PARITY_TOLERANCE = 1e-5

# PPO on episodes of 12-36 steps: gamma 1 (the objective is the undiscounted IS), a
# rollout of several episodes per worker, full-batch-ish updates.
PPO_PARAMS: dict[str, Any] = {
    "n_steps": 256,  # per worker and rollout: several episodes
    "batch_size": 128,
    "n_epochs": 10,
    "learning_rate": 3e-4,
    "gamma": 1.0,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "ent_coef": 0.0,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
}
NET_ARCH = (64, 64)
LOG_STD_INIT = -1.0  # exploration sd exp(-1) = 0.37 in action units at the start
# models.training.execenv: the IS reward marked to market (potential-based shaping: the same
# episode sums and best policy, less noise per step). "paired" (against the even pace on
# the same episode) did no better at this budget and costs a second simulation.
REWARD = "mark"

Progress = Callable[[int, int], None]


class TrainingError(ValueError):
    """Settings that cannot give a valid training run (seeds, sizes)."""


def check_settings(timesteps: int, n_envs: int, seed: int) -> None:
    if timesteps < 1:
        raise TrainingError(f"--timesteps must be >= 1, got {timesteps}")
    if n_envs < 1:
        raise TrainingError(f"--envs must be >= 1, got {n_envs}")
    if seed < HELD_OUT.stop:
        raise TrainingError(
            f"--seed {seed}: training episodes are numbered upwards from the seed and must "
            f"stay clear of the held-out evaluation seeds {HELD_OUT.start}-{HELD_OUT.stop - 1} "
            f"(use {HELD_OUT.stop} or more; the default is {SEED0:,})"
        )
    if seed + timesteps >= VALIDATION_SEED0 and seed < VALIDATION_SEED0 + VALIDATION_EPISODES:
        raise TrainingError(
            f"--seed {seed}: training episodes could reach the validation episodes "
            f"({VALIDATION_SEED0:,} on); choose a seed below {VALIDATION_SEED0 - timesteps:,} "
            f"or from {VALIDATION_SEED0 + VALIDATION_EPISODES:,} on"
        )


def train_slicer(
    out_dir: Path = MODELS_DIR,
    timesteps: int = DEFAULT_TIMESTEPS,
    n_envs: int = DEFAULT_ENVS,
    seed: int = SEED0,
    progress: Progress | None = None,
    command: str = "blockroute train slicer",
    checkpoint_every: int = CHECKPOINT_EVERY,
    validation_episodes: int = VALIDATION_EPISODES,
    scenarios: Sequence[str] | None = None,
    reward: str = REWARD,
    ppo: dict[str, Any] | None = None,
    executor: str = "local",
    ray_address: str | None = None,
) -> tuple[list[Path], dict[str, Any]]:
    """Train, export, check and describe the slicer; returns (files written, metadata).

    Checkpoints, and the final model as `slicer_final.zip` (to resume or inspect with
    torch), go to `out_dir`/checkpoints: they are not shipped. `ppo` overrides entries
    of PPO_PARAMS (tests run tiny rollouts). `executor` "ray": the environments are Ray
    actors (models.training.ray_vec_env) on the cluster at `ray_address`, or on one of
    `n_envs` CPUs started for the training; the same seeds give the same policy as the
    local processes. Raises router.ray_tasks.ExecutorUnavailable if the cluster cannot
    be reached."""
    check_settings(timesteps, n_envs, seed)
    params = {**PPO_PARAMS, **(ppo or {})}
    # the train extra's libraries, the environment's too (gymnasium): this module must
    # import without them, for the CLI and the plain install's test collection
    import gymnasium
    import onnx
    import onnxruntime
    import stable_baselines3
    import torch

    from models.training.execenv import SCENARIOS, ExecutionEnv

    names = tuple(scenarios or SCENARIOS)
    torch.set_num_threads(1)  # the environments own the cores; the MLP is tiny
    make_env = functools.partial(ExecutionEnv, names, seed_stride=n_envs, reward=reward)
    recorder = _Recorder(timesteps, progress)
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if executor == "ray":
            from models.training.ray_vec_env import RayVecEnv
            from router.ray_tasks import RayCluster

            ray = stack.enter_context(RayCluster(n_envs, ray_address))
            venv = RayVecEnv([make_env] * n_envs, ray)
        else:
            venv = _vec_env([make_env] * n_envs)
        stack.callback(venv.close)
        # made once the environments run: a cluster that cannot be reached leaves none
        out_dir.mkdir(parents=True, exist_ok=True)
        model = _ppo(venv, seed, params)
        callbacks = [recorder.callback()]
        if checkpoint_every > 0:
            callbacks.append(_checkpoints(out_dir / "checkpoints", checkpoint_every, n_envs))
        model.learn(total_timesteps=timesteps, callback=callbacks)
    wall_s = time.perf_counter() - started
    (out_dir / "checkpoints").mkdir(exist_ok=True)
    model.save(out_dir / "checkpoints" / "slicer_final.zip")
    onnx_path = out_dir / SLICER_ONNX
    export_onnx(model.policy, onnx_path)
    obs = recorder.observations()
    parity = parity_max_diff(model.policy, onnx_path, obs)
    if not parity < PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX and torch disagree by {parity:.3g} (> {PARITY_TOLERANCE:g})")
    validation = validate(onnx_path, validation_episodes, n_envs, names, progress=None)
    meta = {
        **serving_meta(
            command,
            "extract_features -> mlp_extractor.forward_actor -> action_net -> "
            "clip to [-1, 1] (the deterministic action)",
        ),
        "training": {
            "algorithm": "PPO (stable-baselines3 MlpPolicy)",
            "scenarios": list(names),
            "seed": seed,
            "episode_seeds": recorder.seed_range(),
            "episode_seed_rule": f"worker i runs seeds {seed} + i + k * n_envs",
            "timesteps": int(model.num_timesteps),
            "timesteps_asked": timesteps,
            "n_envs": n_envs,
            "executor": executor,
            "episodes": len(recorder.is_bps),
            "wall_s": round(wall_s, 1),
            "steps_per_s": round(model.num_timesteps / wall_s, 1),
            "episodes_per_s": round(len(recorder.is_bps) / wall_s, 2),
        },
        "ppo": {
            **params,
            "net_arch": list(NET_ARCH),
            "activation": "tanh",
            "log_std_init": LOG_STD_INIT,
        },
        "reward": _reward_meta(reward),
        "curve": recorder.curve(),
        "parity": {"rows": int(obs.shape[0]), "max_abs_diff": parity},
        "validation": validation,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "stable_baselines3": stable_baselines3.__version__,
            "gymnasium": gymnasium.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
    }
    meta_path = out_dir / SLICER_META
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return [onnx_path, meta_path], meta


def serving_meta(command: str, graph: str) -> dict[str, Any]:
    """The metadata that serving reads and checks (router.strategies.learned), the same
    whichever algorithm trained the policy: what the observation and the action mean,
    and the ONNX graph's signature. `graph` says what the graph computes."""
    return {
        "family": "slicer",
        "created_by": command,
        "obs_names": list(OBS_NAMES),
        "step_s": STEP_S,
        "pace_range": PACE_RANGE,
        "pacing": PACING,
        "onnx": {
            "file": SLICER_ONNX,
            "input": ONNX_INPUT,
            "output": ONNX_OUTPUT,
            "input_shape": ["batch", OBS_SIZE],
            "output_shape": ["batch", 1],
            "opset": ONNX_OPSET,
            "graph": graph,
        },
    }


def _reward_meta(reward: str) -> dict[str, Any]:
    # the environment imports gymnasium (train extra): see train_slicer
    from models.training.execenv import REWARD_SCALE, UNFILLED_PENALTY_BPS, RegimeRanges

    return {
        "kind": reward,
        "per_step": "-(IS of the step's fills vs the arrival mid, bps of the parent's "
        "notional, fees in) / scale; the unfilled rest at the horizon's mid plus a penalty"
        + _REWARD_NOTES[reward][0],
        "sum": _REWARD_NOTES[reward][1],
        "scale_bps": REWARD_SCALE,
        "unfilled_penalty_bps": UNFILLED_PENALTY_BPS,
        "regimes": _ranges_dict(RegimeRanges()),
    }


_REWARD_NOTES = {
    "arrival": ("", "-(IS + penalty) / scale, IS as router.tca's"),
    "mark": (
        "; plus the change of the unfilled rest's mark-to-market value (potential-based shaping)",
        "-(IS + penalty) / scale, IS as router.tca's",
    ),
    "paired": (
        ", marked to market; minus the same for the even pace (a = 0) run beside it on "
        "the same episode",
        "-((IS + penalty) - (IS + penalty of the even pace)) / scale",
    ),
}


def _ranges_dict(ranges: Any) -> dict[str, Any]:
    import dataclasses

    return {
        f.name: list(v) if isinstance(v := getattr(ranges, f.name), tuple) else v
        for f in dataclasses.fields(ranges)
    }


# ----------------------------------------------------------------------------- PPO


def _vec_env(fns: Sequence[Callable[[], Any]]) -> Any:
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    if len(fns) == 1:
        return DummyVecEnv(list(fns))
    return SubprocVecEnv(list(fns))


def _ppo(venv: Any, seed: int, params: dict[str, Any]) -> PPO:
    import torch
    from stable_baselines3 import PPO

    kwargs = {
        "net_arch": {"pi": list(NET_ARCH), "vf": list(NET_ARCH)},
        "activation_fn": torch.nn.Tanh,
        "log_std_init": LOG_STD_INIT,
    }
    return PPO(
        "MlpPolicy", venv, seed=seed, device="cpu", policy_kwargs=kwargs, verbose=0, **params
    )


def _checkpoints(folder: Path, every: int, n_envs: int) -> Any:
    from stable_baselines3.common.callbacks import CheckpointCallback

    # the callback counts vectorised steps: n_envs environment steps each
    return CheckpointCallback(max(every // n_envs, 1), str(folder), name_prefix="slicer")


class _Recorder:
    """Collects what the metadata reports while PPO trains: each finished episode's IS
    and seed, a sample of real observations, and the progress bar."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total = total
        self.progress = progress
        self.is_bps: list[float] = []
        self.vs_even_bps: list[float] = []  # paired reward: IS minus the even pace's
        self.seeds: list[int] = []
        self._obs: list[np.ndarray] = []
        self._every = 7  # keep every 7th vectorised observation (spread over training)
        self._calls = 0

    def on_step(self, n_timesteps: int, infos: Sequence[dict[str, Any]], obs: np.ndarray) -> None:
        for info in infos:
            if "is_bps" in info:
                self.is_bps.append(float(info["is_bps"]))
                self.seeds.append(int(info["sim_seed"]))
                if "even_pace_is_bps" in info:
                    self.vs_even_bps.append(float(info["is_bps"] - info["even_pace_is_bps"]))
        self._calls += 1
        if self._calls % self._every == 0:
            self._obs.append(np.array(obs, dtype=np.float32).reshape(-1, OBS_SIZE))
        if self.progress is not None:
            self.progress(min(n_timesteps, self.total), self.total)

    def callback(self) -> Any:
        from stable_baselines3.common.callbacks import BaseCallback

        recorder = self

        class _Callback(BaseCallback):
            def _on_step(self) -> bool:
                recorder.on_step(self.num_timesteps, self.locals["infos"], self.locals["new_obs"])
                return True

        return _Callback()

    def observations(self) -> np.ndarray:
        if not self._obs:
            return np.zeros((1, OBS_SIZE), dtype=np.float32)
        rows = np.concatenate(self._obs)
        step = max(1, rows.shape[0] // PARITY_ROWS)
        return np.ascontiguousarray(rows[::step][:PARITY_ROWS])

    def seed_range(self) -> list[int]:
        return [min(self.seeds), max(self.seeds)] if self.seeds else []

    def curve(self) -> dict[str, Any]:
        """Mean episode IS (bps) over the first and last 10% of episodes, and by tenth."""
        x = np.asarray(self.is_bps)
        if x.size == 0:
            return {"episodes": 0}
        out: dict[str, Any] = {"episodes": int(x.size), **_tenths(x, "is_bps")}
        if len(self.vs_even_bps) == x.size:  # the same episodes: far less noisy
            out.update(_tenths(np.asarray(self.vs_even_bps), "vs_even_pace_bps"))
        out["note"] = (
            "IS differs by regime and size from episode to episode; vs_even_pace is the "
            "exploring policy's IS minus the even pace's on the same episode"
        )
        return out


def _tenths(x: np.ndarray, name: str) -> dict[str, Any]:
    tenth = max(1, x.size // 10)
    bins = np.array_split(x, min(10, x.size))
    return {
        f"first_10pct_{name}": float(x[:tenth].mean()),
        f"last_10pct_{name}": float(x[-tenth:].mean()),
        f"by_tenth_{name}": [round(float(b.mean()), 2) for b in bins],
    }


# ----------------------------------------------------------------------------- ONNX


def _actor(policy: ActorCriticPolicy) -> Any:
    """The deterministic action as a torch module: what `predict(deterministic=True)`
    computes for a Box action, without the distribution (not exportable)."""
    import torch

    class Actor(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.policy = policy

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            features = self.policy.extract_features(obs, self.policy.pi_features_extractor)
            assert isinstance(features, torch.Tensor)  # one extractor (a Box observation)
            latent = self.policy.mlp_extractor.forward_actor(features)
            return torch.clamp(self.policy.action_net(latent), -1.0, 1.0)

    return Actor().eval()


def export_onnx(policy: ActorCriticPolicy, path: Path) -> None:
    import torch

    actor = _actor(policy)
    example = torch.zeros((1, OBS_SIZE), dtype=torch.float32)
    # the exporter logs optional-operator notes (torchvision) and deprecations: noise here
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            actor,
            (example,),
            str(path),
            input_names=[ONNX_INPUT],
            output_names=[ONNX_OUTPUT],
            dynamic_shapes=({0: "batch"},),
            opset_version=ONNX_OPSET,
            external_data=False,  # one self-contained file: serving loads its bytes
            verbose=False,
        )
    strip_provenance(path)


def strip_provenance(path: Path) -> None:
    """Drop the exporter's per-node notes (the Python stack trace of each traced call,
    with the training machine's file paths, module names and scopes): they describe
    where the graph was traced, not what it computes, and a shipped artifact should be
    the same bytes wherever the project trains it."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for function in model.functions:
        for node in function.node:
            del node.metadata_props[:]
            node.doc_string = ""
    onnx.save(model, str(path))


def parity_max_diff(policy: ActorCriticPolicy, onnx_path: Path, obs: np.ndarray) -> float:
    """Max |ONNX Runtime action - the torch policy's deterministic action| on `obs`."""
    import onnxruntime as ort

    x = np.ascontiguousarray(obs, dtype=np.float32).reshape(-1, OBS_SIZE)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    served = session.run([ONNX_OUTPUT], {ONNX_INPUT: x})[0]
    reference, _ = policy.predict(x, deterministic=True)
    return float(np.max(np.abs(np.asarray(served) - np.asarray(reference))))


# ----------------------------------------------------------------------------- validation


def validate(
    onnx_path: Path,
    episodes: int,
    workers: int,
    scenarios: Sequence[str],
    seed0: int = VALIDATION_SEED0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The exported policy against a = 0 (sor-ml's TWAP line: PacedSlicer's schedule
    with no lead) on the same episodes (paired: same seed, regime and market): mean IS
    of each and of the difference, in bps."""
    if episodes <= 0:
        return {"episodes": 0}
    model = onnx_path.read_bytes()
    seeds = [seed0 + k for k in range(episodes)]
    run = functools.partial(_paired_episode, model, tuple(scenarios))
    if workers > 1:
        # forkserver, as the training's workers: never fork a process that runs torch
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            rows = list(pool.map(run, seeds))
    else:
        rows = [run(s) for s in seeds]
    policy = np.array([r[1] for r in rows])
    even = np.array([r[2] for r in rows])
    diff = policy - even
    by_scenario: dict[str, list[float]] = {}
    for name, p, e in rows:
        by_scenario.setdefault(name, []).append(p - e)
    return {
        "episodes": episodes,
        "seeds": [seeds[0], seeds[-1]],
        "policy_is_bps": float(policy.mean()),
        "even_pace_is_bps": float(even.mean()),
        "diff_is_bps": float(diff.mean()),  # < 0: the policy did better
        "diff_stderr_bps": float(diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else 0.0,
        "diff_by_scenario_bps": {k: round(float(np.mean(v)), 2) for k, v in by_scenario.items()},
    }


def _paired_episode(
    model: bytes, scenarios: tuple[str, ...], seed: int
) -> tuple[str, float, float]:
    # the environment imports gymnasium (train extra): see train_slicer
    from models.training.execenv import ExecutionEnv
    from router.strategies.learned import OnnxPolicy

    policy = OnnxPolicy(model)
    env = ExecutionEnv(scenarios)
    try:
        out = []
        for act in (policy, None):
            obs, info = env.reset(seed=seed)
            name = info["regime"]["scenario"]
            done = False
            while not done:
                a = act(obs) if act is not None else 0.0
                obs, _, done, _, info = env.step(np.array([a], dtype=np.float32))
            out.append(float(info["is_bps"]))
    finally:
        env.close()
    return name, out[0], out[1]
