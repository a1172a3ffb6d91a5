"""Training rows of the fill model, from the router's log of its passive orders."""

from __future__ import annotations

import numpy as np
import pytest

from models.serving.features import FILL_FEATURES
from models.training.fill_data import EpisodeSpec, generate

EPISODES = (EpisodeSpec("calm", 200_000), EpisodeSpec("illiquid-bond", 200_005))


def test_generate_gives_the_same_rows_on_any_number_of_workers() -> None:
    seen: list[tuple[int, int]] = []
    one = generate(EPISODES, lambda done, total: seen.append((done, total)))
    two = generate(EPISODES, workers=2)
    assert seen == [(1, 2), (2, 2)]
    assert one.x.shape[1] == len(FILL_FEATURES) and one.x.shape[0] > 100
    for field in ("x", "y", "day", "dark"):
        assert np.array_equal(getattr(one, field), getattr(two, field))
    # episodes keep their order in generation (the split's time axis)
    assert set(np.unique(one.day)) == {0, 1} and np.all(np.diff(one.day) >= 0)
    # both lit and dark passive orders, and both labels
    assert one.dark.any() and (~one.dark).any() and 0 < one.y.mean() < 1


@pytest.mark.requires_extra("ray", "ray")
def test_generate_on_ray_gives_the_local_rows() -> None:
    local = generate(EPISODES)
    on_ray = generate(EPISODES, workers=2, executor="ray")
    for field in ("x", "y", "day", "dark"):
        assert np.array_equal(getattr(local, field), getattr(on_ray, field))
