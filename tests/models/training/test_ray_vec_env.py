"""PPO's environments as Ray actors: the same steps as SB3's own vectorised environment,
and an actor that dies stops the training with one clear error."""

from __future__ import annotations

import functools
import os
import signal

import numpy as np
import pytest

pytestmark = [
    pytest.mark.requires_extra("train", "stable_baselines3", "gymnasium"),
    pytest.mark.requires_extra("ray", "ray"),
]

BOND = ("illiquid-bond",)  # the cheapest regime to simulate


def _fns(n: int) -> list:
    from models.training.execenv import ExecutionEnv

    return [functools.partial(ExecutionEnv, BOND, seed_stride=n)] * n


@pytest.fixture(scope="module")
def ray():
    from router.ray_tasks import RayCluster

    with RayCluster(2) as connected:
        yield connected


def test_the_actors_step_as_sb3s_own_subprocess_environments(ray) -> None:
    from stable_baselines3.common.vec_env import SubprocVecEnv

    from models.training.ray_vec_env import RayVecEnv

    here, there = SubprocVecEnv(_fns(2)), RayVecEnv(_fns(2), ray)
    try:
        for venv in (here, there):
            venv.seed(5_000_200)
        a, b = here.reset(), there.reset()
        assert np.array_equal(a, b)
        rng = np.random.default_rng(1)
        dones = 0
        for _ in range(60):  # past the end of a bond episode: the auto-reset too
            actions = rng.uniform(-1, 1, (2, 1)).astype(np.float32)
            (oa, ra, da, ia), (ob, rb, db, ib) = here.step(actions), there.step(actions)
            assert np.array_equal(oa, ob) and np.array_equal(ra, rb) and np.array_equal(da, db)
            for x, y in zip(ia, ib, strict=True):
                assert x.keys() == y.keys()
                if "terminal_observation" in x:
                    assert np.array_equal(x["terminal_observation"], y["terminal_observation"])
            dones += int(da.sum())
        assert dones > 0
        assert there.get_attr("_stride") == [2, 2]
    finally:
        here.close()
        there.close()


def test_an_actor_killed_mid_episode_is_replaced_and_the_steps_are_unchanged(ray) -> None:
    from stable_baselines3.common.vec_env import SubprocVecEnv

    from models.training.ray_vec_env import RayVecEnv

    here, there = SubprocVecEnv(_fns(2)), RayVecEnv(_fns(2), ray)
    try:
        for venv in (here, there):
            venv.seed(5_000_200)
        assert np.array_equal(here.reset(), there.reset())
        rng = np.random.default_rng(2)
        for k in range(40):
            if k in (7, 25):  # mid-episode, then again in a later one (an auto-reset between)
                os.kill(there.actor_pids()[1], signal.SIGKILL)
            actions = rng.uniform(-1, 1, (2, 1)).astype(np.float32)
            (oa, ra, da, _), (ob, rb, db, _) = here.step(actions), there.step(actions)
            assert np.array_equal(oa, ob) and np.array_equal(ra, rb) and np.array_equal(da, db)
        assert there.restarts == 2
    finally:
        here.close()
        there.close()


def test_an_environment_that_does_not_say_its_seed_cannot_be_replayed(ray) -> None:
    from models.training.ray_vec_env import EnvironmentLost, RayVecEnv

    venv = RayVecEnv(_fns(2), ray)
    try:
        venv.reset()
        venv._episodes[1] = (None, None, [])  # as an environment whose info has no seed
        os.kill(venv.actor_pids()[1], signal.SIGKILL)
        with pytest.raises(EnvironmentLost, match="cannot be replayed") as caught:
            venv.step(np.zeros((2, 1), dtype=np.float32))
        assert "\n" not in str(caught.value)
    finally:
        venv.close()
