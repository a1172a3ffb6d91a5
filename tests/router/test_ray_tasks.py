"""Ray's tasks for the commands that spread work: batches that shrink at the end, and an
ordered map whose results come back in the jobs' order."""

from __future__ import annotations

import operator

import pytest

from router.ray_tasks import MAX_BATCH, batch_sizes


def test_tasks_shrink_to_single_jobs_at_the_end_and_cover_every_job():
    sizes = batch_sizes(200, 2)
    assert sum(sizes) == 200 and max(sizes) == MAX_BATCH
    assert sizes == sorted(sizes, reverse=True)  # the large ones first
    assert sizes[-4:] == [1, 1, 1, 1]  # no CPU waits long on another's last task
    assert batch_sizes(3, 8) == [1, 1, 1]
    assert batch_sizes(10, 1, max_batch=1) == [1] * 10
    assert batch_sizes(0, 2) == []


@pytest.mark.requires_extra("ray", "ray")
def test_ordered_map_gives_the_results_in_the_jobs_order_and_counts_their_weight():
    import ray

    from router.ray_tasks import ordered_map

    seen: list[tuple[int, int]] = []
    items = list(range(40))
    out = ordered_map(
        operator.neg, items, 2, progress=lambda *p: seen.append(p), weight=lambda i: 1 + i % 2
    )
    assert out == [-i for i in items]
    assert seen[-1] == (60, 60) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert not ray.is_initialized()  # the cluster started for the call went with it
