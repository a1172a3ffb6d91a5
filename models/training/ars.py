"""Training the slicer by random search over linear policies (`blockroute train slicer
--algorithm ars`): Augmented Random Search (Mania, Guy and Recht, 2018, "Simple random
search provides a competitive approach to reinforcement learning"), on common random
numbers.

Why not only PPO (models/training/slicer.py): the value of timing is a few bps on
episodes whose IS varies by tens of bps with the market's own moves. PPO learns from
each episode's returns against a critic's estimate, so that market noise is what it
mostly sees; 65k steps (2,700 episodes, 40 minutes on two cores) left it within one
standard error of the even pace. Random search compares two policies on the same
episode (the same seed: the same regime, market and dealers), so the market's moves
cancel in the difference and only what the policies did differently is left. With a
linear policy, whose 15 numbers a reader can check, that is enough to learn a pace
from a few thousand episodes.

The policy: a = tanh(w . obs + b), clipped to [-1, 1], on the slicer's own observation
(router.strategies.learned.OBS_NAMES). w = 0, b = 0 is a = 0 throughout, the TWAP line:
sor-ml exactly, where training starts.

One iteration (ARS V1-t): draw `directions` perturbations d_k ~ N(0, I) and a batch of
`episodes` training seeds; run theta + nu d_k and theta - nu d_k on every episode of the
batch (and theta itself and a = 0, for the learning curve); keep the `top` directions
whose better side did best; step theta -= alpha / (top * sd) * sum_k (C+_k - C-_k) d_k,
C the batch's mean cost (IS plus the unfilled penalty, bps) and sd the standard
deviation of the costs used. An episode is one task with all its policies on it: its
market at arrival is simulated once and forked for each run.

Seeds: iteration i runs the training episodes seed + i * episodes ... + episodes - 1;
the perturbations come from a generator seeded by `seed`. The same settings give the
same policy on any number of workers (the costs are gathered in seed order).
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import math
import multiprocessing
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import structlog

from models.training.slicer import (
    ONNX_OPSET,
    PARITY_ROWS,
    PARITY_TOLERANCE,
    SEED0,
    VALIDATION_EPISODES,
    check_settings,
    serving_meta,
    validate,
)
from router.app import Episode
from router.strategies import StrategySpec, strategy_spec
from router.strategies.learned import (
    CLIP,
    OBS_NAMES,
    OBS_SIZE,
    ONNX_INPUT,
    ONNX_OUTPUT,
    SLICER_META,
    SLICER_ONNX,
    PacedSlicer,
)

Progress = Callable[[int, int], None]
log = structlog.get_logger("blockroute.train.ars")

UNFILLED_PENALTY_BPS = 100.0  # as the PPO environment's (models.training.execenv)
MAX_RETRIES = 3  # a batch whose worker died runs again, up to this many times


@dataclasses.dataclass(frozen=True, slots=True)
class ArsSettings:
    """Augmented Random Search's settings (the defaults: 30 iterations of 60 policy runs,
    20-60 minutes on two cores as busy as they are)."""

    iterations: int = 30
    directions: int = 4  # perturbations per iteration, each run on both sides
    top: int = 2  # directions kept for the step (the best of each pair's two sides)
    episodes: int = 6  # training episodes per iteration, common to every policy
    step_size: float = 0.02  # alpha
    noise: float = 0.05  # nu: perturbation scale, in weight units


class LinearPolicy:
    """a = clip(tanh(w . obs + b), -1, 1): the policy ARS trains and ONNX serves."""

    def __init__(self, theta: np.ndarray) -> None:
        theta = np.asarray(theta, dtype=np.float64)
        if theta.shape != (OBS_SIZE + 1,):
            raise ValueError(f"theta must have {OBS_SIZE + 1} numbers, got {theta.shape}")
        self.w = theta[:OBS_SIZE].copy()
        self.b = float(theta[OBS_SIZE])

    def __call__(self, obs: np.ndarray) -> float:
        z = float(np.dot(self.w, np.asarray(obs, dtype=np.float64))) + self.b
        return max(-1.0, min(1.0, math.tanh(z)))


def paced(policy: Callable[[np.ndarray], float]) -> StrategySpec:
    """The `ml` strategy with `policy` setting its pace (a = 0 throughout: sor-ml)."""
    return dataclasses.replace(
        strategy_spec("ml"),
        slicer=lambda history, qty, horizon, models: PacedSlicer(history, policy),
        preload=None,
    )


def episode_costs(scenarios: tuple[str, ...], seed: int, thetas: np.ndarray) -> np.ndarray:
    """Each policy's cost on training episode `seed` (its regime drawn as the PPO
    environment draws it): IS plus the unfilled penalty, bps of the parent's notional."""
    # the environment module imports gymnasium (train extra): training code only
    from models.training.execenv import regime_for

    regime = regime_for(scenarios, seed)
    episode = Episode(regime.scenario, seed)
    out = np.empty(len(thetas))
    for k, theta in enumerate(thetas):
        tca = episode.run(paced(LinearPolicy(theta))).tca
        unfilled = 1.0 - tca.completion
        out[k] = tca.is_bps + UNFILLED_PENALTY_BPS * unfilled
    # the runs' worlds are reference cycles holding the market's arrays: free them now,
    # not when Python's own schedule gets to them (models.training.execenv.GC_EVERY)
    gc.collect()
    return out


class Mapper(Protocol):
    def map(self, fn: Callable[..., Any], *iterables: Sequence[Any]) -> Iterable[Any]: ...


def _map(
    workers: Mapper | None, scenarios: tuple[str, ...], seeds: Sequence[int], thetas: np.ndarray
) -> np.ndarray:
    """Costs [episode, policy], in seed order whatever order the workers finish in."""
    if workers is None:
        rows = [episode_costs(scenarios, s, thetas) for s in seeds]
    else:
        n = len(seeds)
        rows = list(workers.map(episode_costs, [scenarios] * n, seeds, [thetas] * n))
    return np.asarray(rows)


def _apply(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    return fn(*args)


class RayMapper:
    """Episodes as Ray tasks, one episode (all its policies) a task: on the cluster at
    `address`, or one of `cpus` CPUs started for the training. Enter it once for the
    whole training (`with`): the cluster and its worker processes, with the models and
    the dealers' history they loaded, stay up from one iteration to the next. A task
    whose worker dies runs again (router.ray_tasks.MAX_RETRIES), with the same costs."""

    def __init__(self, cpus: int, address: str | None = None) -> None:
        # the optional `ray` extra: this class is built only when Ray is asked for
        from router.ray_tasks import RayCluster

        self._cluster = RayCluster(cpus, address)
        self._cpus = cpus
        self._address = address

    def map(self, fn: Callable[..., Any], *iterables: Sequence[Any]) -> list[Any]:
        from router.ray_tasks import ordered_map

        jobs = list(zip(*iterables, strict=True))
        return ordered_map(
            functools.partial(_apply, fn), jobs, self._cpus, self._address, max_batch=1
        )

    def __enter__(self) -> RayMapper:
        self._cluster.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._cluster.__exit__(*exc)


class RetryingPool:
    """Worker processes whose `map` survives a worker's death (killed, out of memory):
    the pool is started again and the batch runs again, which gives the same costs
    (an episode's costs depend on its seed and the policies only)."""

    def __init__(self, workers: int, retries: int = MAX_RETRIES) -> None:
        self._workers = workers
        self._retries = retries
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # forkserver, as the PPO workers; each keeps its models and the dealers'
        # history loaded from one iteration to the next
        context = multiprocessing.get_context("forkserver")
        return ProcessPoolExecutor(self._workers, mp_context=context)

    def map(self, fn: Callable[..., Any], *iterables: Sequence[Any]) -> list[Any]:
        for attempt in range(1, self._retries + 2):
            try:
                return list(self._pool.map(fn, *iterables))
            except BrokenProcessPool:
                if attempt > self._retries:
                    raise
                log.warning("a worker process died: its batch runs again", attempt=attempt)
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._start()
        raise AssertionError("unreachable")

    def __enter__(self) -> RetryingPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(cancel_futures=True)


def train_ars(
    scenarios: Sequence[str],
    settings: ArsSettings,
    seed: int,
    workers: Mapper | None = None,
    progress: Progress | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """theta after `settings.iterations` iterations, and the learning curve."""
    names = tuple(scenarios)
    s = settings
    rng = np.random.default_rng(seed)
    theta = np.zeros(OBS_SIZE + 1)
    curve: list[dict[str, Any]] = []
    started = time.perf_counter()
    for i in range(s.iterations):
        deltas = rng.standard_normal((s.directions, OBS_SIZE + 1))
        thetas = np.concatenate(
            [
                theta + s.noise * deltas,
                theta - s.noise * deltas,
                [theta, np.zeros_like(theta)],
            ]
        )
        seeds = [seed + i * s.episodes + j for j in range(s.episodes)]
        costs = _map(workers, names, seeds, thetas)  # [episode, policy]
        mean = costs.mean(axis=0)
        plus, minus = mean[: s.directions], mean[s.directions : 2 * s.directions]
        keep = np.argsort(np.minimum(plus, minus))[: s.top]
        used = np.concatenate([plus[keep], minus[keep]])
        sd = float(used.std()) or 1.0
        step = ((plus[keep] - minus[keep])[:, None] * deltas[keep]).sum(axis=0)
        theta = theta - s.step_size / (s.top * sd) * step
        centre_vs_even = costs[:, -2] - costs[:, -1]
        curve.append(
            {
                "iteration": i,
                "seeds": [seeds[0], seeds[-1]],
                "centre_vs_even_bps": round(float(centre_vs_even.mean()), 3),
                "even_pace_is_bps": round(float(costs[:, -1].mean()), 3),
                "sd_bps": round(sd, 3),
                "theta_norm": round(float(np.linalg.norm(theta)), 4),
            }
        )
        log.info("ars iteration", **curve[-1])  # a long run's learning curve, as it goes
        if progress is not None:
            progress(i + 1, s.iterations)
    wall = time.perf_counter() - started
    runs = s.iterations * s.episodes * (2 * s.directions + 2)
    return theta, {
        "curve": curve,
        "wall_s": round(wall, 1),
        "episodes": s.iterations * s.episodes,
        "policy_runs": runs,
    }


# ----------------------------------------------------------------------------- ONNX


def export_linear_onnx(theta: np.ndarray, path: Path) -> None:
    """The linear policy as the ONNX graph serving expects: input "obs" float32
    [batch, OBS_SIZE], output "action" float32 [batch, 1] = clip(tanh(obs W + b))."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.asarray(theta[:OBS_SIZE], dtype=np.float32).reshape(OBS_SIZE, 1)
    b = np.asarray([theta[OBS_SIZE]], dtype=np.float32)
    inits = [
        numpy_helper.from_array(w, "W"),
        numpy_helper.from_array(b, "b"),
        numpy_helper.from_array(np.array(-1.0, dtype=np.float32), "lo"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "hi"),
    ]
    nodes = [
        helper.make_node("MatMul", [ONNX_INPUT, "W"], ["z0"]),
        helper.make_node("Add", ["z0", "b"], ["z"]),
        helper.make_node("Tanh", ["z"], ["t"]),
        helper.make_node("Clip", ["t", "lo", "hi"], [ONNX_OUTPUT]),
    ]
    graph = helper.make_graph(
        nodes,
        "slicer-linear",
        [helper.make_tensor_value_info(ONNX_INPUT, TensorProto.FLOAT, ["batch", OBS_SIZE])],
        [helper.make_tensor_value_info(ONNX_OUTPUT, TensorProto.FLOAT, ["batch", 1])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)], producer_name="blockroute"
    )
    model.ir_version = 10  # what ONNX Runtime 1.2x reads; the opset says the operators
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def parity_max_diff(theta: np.ndarray, onnx_path: Path, obs: np.ndarray) -> float:
    """Max |ONNX Runtime's action - LinearPolicy's| on `obs` (float32 against float64)."""
    import onnxruntime as ort

    x = np.ascontiguousarray(obs, dtype=np.float32).reshape(-1, OBS_SIZE)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    served = session.run([ONNX_OUTPUT], {ONNX_INPUT: x})[0].reshape(-1)
    policy = LinearPolicy(theta)
    reference = np.array([policy(row) for row in x])
    return float(np.max(np.abs(served - reference)))


# ----------------------------------------------------------------------------- the command


def train_slicer_ars(
    out_dir: Path,
    settings: ArsSettings = ArsSettings(),
    workers: int = 2,
    seed: int = SEED0,
    progress: Progress | None = None,
    command: str = "blockroute train slicer --algorithm ars",
    validation_episodes: int = VALIDATION_EPISODES,
    scenarios: Sequence[str] | None = None,
    executor: str = "local",
    ray_address: str | None = None,
) -> tuple[list[Path], dict[str, Any]]:
    """Train (ARS), export, check and describe the slicer; returns (files written,
    metadata). The metadata has the PPO command's keys that serving and the reports
    read (observation, pacing, ONNX signature, validation), with ARS's own settings."""
    check_settings(settings.iterations * settings.episodes, workers, seed)
    import onnx
    import onnxruntime

    from models.training.execenv import SCENARIOS

    names = tuple(scenarios or SCENARIOS)
    mapper: RayMapper | RetryingPool | None = None
    if executor == "ray":
        mapper = RayMapper(workers, ray_address)
    elif workers > 1:
        mapper = RetryingPool(workers)
    if mapper is None:
        theta, run = train_ars(names, settings, seed, None, progress)
    else:
        with mapper:
            theta, run = train_ars(names, settings, seed, mapper, progress)
    out_dir.mkdir(parents=True, exist_ok=True)  # not before: a failed start leaves nothing
    onnx_path = out_dir / SLICER_ONNX
    export_linear_onnx(theta, onnx_path)
    probe = np.random.default_rng(seed).uniform(-CLIP, CLIP, (PARITY_ROWS, OBS_SIZE))
    parity = parity_max_diff(theta, onnx_path, probe)
    if not parity < PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX and numpy disagree by {parity:.3g} (> {PARITY_TOLERANCE:g})")
    validation = validate(onnx_path, validation_episodes, workers, names, progress=None)
    meta = {
        **serving_meta(command, "MatMul(obs, W) + b -> tanh -> clip to [-1, 1]"),
        "policy": {
            "kind": "linear",
            "weights": {n: round(float(w), 6) for n, w in zip(OBS_NAMES, theta, strict=False)},
            "bias": round(float(theta[OBS_SIZE]), 6),
        },
        "training": {
            "algorithm": "ARS V1-t (Mania, Guy and Recht 2018), antithetic, common random "
            "numbers (every policy of an iteration on the same episodes)",
            "scenarios": list(names),
            "seed": seed,
            "episode_seeds": [seed, seed + run["episodes"] - 1],
            "episode_seed_rule": f"iteration i runs seeds {seed} + i * episodes + j",
            "settings": dataclasses.asdict(settings),
            "episodes": run["episodes"],
            "policy_runs": run["policy_runs"],
            "workers": workers,
            "executor": executor,
            "wall_s": run["wall_s"],
            "unfilled_penalty_bps": UNFILLED_PENALTY_BPS,
        },
        "curve": run["curve"],
        "parity": {"rows": PARITY_ROWS, "max_abs_diff": parity, "against": "numpy float64"},
        "validation": validation,
        "versions": {
            "python": platform.python_version(),
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
    }
    meta_path = out_dir / SLICER_META
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return [onnx_path, meta_path], meta
