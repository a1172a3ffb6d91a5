"""Jobs over processes, results in the jobs' order, whichever executor runs them."""

from __future__ import annotations

import operator

import pytest

from router.parallel import ordered_map


@pytest.mark.parametrize("workers", [1, 3])
def test_the_local_executor_keeps_the_jobs_order_and_counts_progress(workers):
    seen: list[tuple[int, int]] = []
    out = ordered_map(operator.neg, range(7), workers, progress=lambda *p: seen.append(p))
    assert out == [0, -1, -2, -3, -4, -5, -6]
    assert seen == [(k, 7) for k in range(1, 8)]


def test_an_unknown_executor_is_refused():
    with pytest.raises(ValueError, match="local or ray"):
        ordered_map(operator.neg, [1], executor="dask")


@pytest.mark.requires_extra("ray", "ray")
def test_ray_gives_the_local_results():
    assert ordered_map(operator.neg, range(9), 2, "ray") == ordered_map(operator.neg, range(9))
