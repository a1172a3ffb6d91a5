"""PPO's environments as Ray actors: a stable-baselines3 `VecEnv` whose sub-environments
each live in an actor on a Ray cluster (`train slicer --executor ray`).

Why actors and not RLlib: the slicer's PPO is stable-baselines3's, whose policy, export
and validation the project already has; only the rollouts need to move. SB3's learner
asks all its environments for one step at a time (`step_async`, then `step_wait`), which
is exactly an actor method call per environment and a `ray.get` on all of them. An
episode's steps stay in the actor that began it, so the environment's state (its market
simulation) never crosses the network; only actions, observations and rewards do.

The same environment factories and seeds give the same observations in the same order
as `SubprocVecEnv` on the same number of environments, so the same policy (tested).

An actor that dies (its node lost, its process killed) takes its episode's state with
it. The driver keeps, for each environment, the seed its episode began with (the
`sim_seed` of the reset's info, which `ExecutionEnv` gives) and the actions since; a new
actor is reset to that seed and replays the actions, which brings it to the same state,
since an episode is a function of its seed and its actions alone; then the step that
was lost runs there. The training goes on with the same rollouts (tested by killing an
actor). An environment whose resets do not say their seed, or one that dies
MAX_RESTARTS times on one step, stops the training with EnvironmentLost."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn
from stable_baselines3.common.vec_env.patch_gym import _patch_env

SEED_KEY = "sim_seed"  # where an episode's seed is in its reset's info (ExecutionEnv)
MAX_RESTARTS = 3  # new actors for one environment on one step, before giving up


class EnvironmentLost(RuntimeError):
    """An environment's actor died: its episode cannot be continued."""


class EnvActor:
    """One environment, held by a Ray actor; its methods are SubprocVecEnv's worker's
    commands, with the same auto-reset at the end of an episode."""

    def __init__(self, make_env: Callable[[], Any]) -> None:
        self.env = _patch_env(make_env())

    def spaces(self) -> tuple[Any, Any]:
        return self.env.observation_space, self.env.action_space

    def step(self, action: np.ndarray) -> tuple[Any, Any, bool, dict[str, Any], dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        done = terminated or truncated
        info["TimeLimit.truncated"] = truncated and not terminated
        reset_info: dict[str, Any] = {}
        if done:
            info["terminal_observation"] = observation
            observation, reset_info = self.env.reset()
        return observation, reward, done, info, reset_info

    def reset(self, seed: int | None, options: dict[str, Any] | None) -> tuple[Any, Any]:
        return self.env.reset(seed=seed, **({"options": options} if options else {}))

    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return self.env.get_wrapper_attr(name)(*args, **kwargs)

    def get_attr(self, name: str) -> Any:
        return self.env.get_wrapper_attr(name)

    def has_attr(self, name: str) -> bool:
        try:
            self.env.get_wrapper_attr(name)
        except AttributeError:
            return False
        return True

    def set_attr(self, name: str, value: Any) -> None:
        setattr(self.env, name, value)

    def pid(self) -> int:
        return os.getpid()

    def is_wrapped(self, wrapper_class: type) -> bool:
        from stable_baselines3.common.env_util import is_wrapped

        return is_wrapped(self.env, wrapper_class)


class RayVecEnv(VecEnv):
    """`len(env_fns)` environments, one Ray actor each (one CPU each), on the cluster
    that `ray` is connected to (router.ray_tasks.RayCluster holds the connection)."""

    def __init__(self, env_fns: Sequence[Callable[[], Any]], ray: Any) -> None:
        self._ray = ray
        self._fns = list(env_fns)
        self._class = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(EnvActor)
        self._actors = [self._class.remote(fn) for fn in self._fns]
        self._pending: list[Any] | None = None
        self._actions: np.ndarray | None = None
        # per environment: its episode's seed and options, and the actions since
        self._episodes: list[tuple[int | None, Any, list[np.ndarray]]] = [
            (None, None, []) for _ in self._fns
        ]
        self.restarts = 0  # actors replaced, over the whole training
        self.closed = False
        observation_space, action_space = ray.get(self._actors[0].spaces.remote())
        super().__init__(len(env_fns), observation_space, action_space)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.array(actions)
        self._pending = [a.step.remote(act) for a, act in zip(self._actors, actions, strict=True)]

    def step_wait(self) -> VecEnvStepReturn:
        assert self._pending is not None and self._actions is not None, "step_async first"
        try:
            results = [self._result(i, ref) for i, ref in enumerate(self._pending)]
        finally:
            self._pending = None
        for i, (_, _, done, _, reset_info) in enumerate(results):
            if done:  # the actor began the next episode
                self._episodes[i] = (reset_info.get(SEED_KEY), None, [])
            else:
                self._episodes[i][2].append(self._actions[i])
        obs, rewards, dones, infos, reset_infos = zip(*results, strict=True)
        self.reset_infos = list(reset_infos)
        return np.stack(obs), np.stack(rewards), np.stack(dones), list(infos)

    def _result(self, i: int, ref: Any) -> Any:
        """Environment `i`'s step, from its actor or, if the actor died, from a new one
        brought to the same state (see the module's docstring)."""
        assert self._actions is not None
        for _ in range(MAX_RESTARTS + 1):
            try:
                return self._ray.get(ref)
            except self._ray.exceptions.RayActorError as exc:
                ref = self._replace(i, exc)
        raise EnvironmentLost(
            f"environment {i}: its Ray actor died {MAX_RESTARTS + 1} times on one step; "
            "the training stops"
        )

    def _replace(self, i: int, exc: Exception) -> Any:
        """A new actor for environment `i`, reset to its episode's seed, its actions
        replayed; the reference of the lost step run again there."""
        assert self._actions is not None
        seed, options, actions = self._episodes[i]
        if seed is None:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise EnvironmentLost(
                f"environment {i}: its Ray actor died and its episode's seed is not known "
                f"(no '{SEED_KEY}' in the reset's info), so it cannot be replayed: {first}"
            ) from None
        self.restarts += 1
        actor = self._class.remote(self._fns[i])
        self._actors[i] = actor
        # an actor runs one caller's calls in order: no need to wait between them
        actor.reset.remote(seed, options)
        for action in actions:
            actor.step.remote(action)
        return actor.step.remote(self._actions[i])

    def reset(self) -> Any:
        calls = [
            a.reset.remote(self._seeds[i], self._options[i]) for i, a in enumerate(self._actors)
        ]
        obs, reset_infos = zip(*self._ray.get(calls), strict=True)
        self.reset_infos = list(reset_infos)
        self._episodes = [
            (info.get(SEED_KEY), self._options[i], []) for i, info in enumerate(reset_infos)
        ]
        self._reset_seeds()  # seeds and options are used once, as SB3's own VecEnvs do
        self._reset_options()
        return np.stack(obs)

    def close(self) -> None:
        if self.closed:
            return
        if self._pending is not None:  # a step in flight: let it end, lost or not
            with contextlib.suppress(self._ray.exceptions.RayActorError):
                self._ray.get(self._pending)
        for a in self._actors:
            self._ray.kill(a)
        self.closed = True

    def _targets(self, indices: VecEnvIndices) -> list[Any]:
        return [self._actors[i] for i in self._get_indices(indices)]

    def has_attr(self, attr_name: str) -> bool:
        return all(self._ray.get([a.has_attr.remote(attr_name) for a in self._actors]))

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return list(self._ray.get([a.get_attr.remote(attr_name) for a in self._targets(indices)]))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._ray.get([a.set_attr.remote(attr_name, value) for a in self._targets(indices)])

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        calls = [
            a.call.remote(method_name, method_args, method_kwargs) for a in self._targets(indices)
        ]
        return list(self._ray.get(calls))

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        calls = [a.is_wrapped.remote(wrapper_class) for a in self._targets(indices)]
        return list(self._ray.get(calls))

    def actor_pids(self) -> list[int]:
        """The actors' processes, in the environments' order (to watch them, or kill
        one in a test)."""
        return list(self._ray.get([a.pid.remote() for a in self._actors]))

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs  # the execution environment draws nothing
