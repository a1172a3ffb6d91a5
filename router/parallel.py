"""Independent jobs spread over processes, their results in the jobs' order: this
machine's process pool or Ray tasks (`--executor local|ray`), for the commands whose
output must not depend on where or in which order the jobs ran (training data, the
models' evaluation)."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

EXECUTORS = ("local", "ray")


def ordered_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    workers: int = 1,
    executor: str = "local",
    ray_address: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    weight: Callable[[T], int] | None = None,
    max_batch: int | None = None,
    fork: bool = False,
) -> list[R]:
    """`[fn(item) for item in items]`: in this process (one local worker), on a pool of
    `workers` processes, or as Ray tasks (`executor` "ray": the cluster at
    `ray_address`, or one of `workers` CPUs started for the call; `max_batch` items a
    task at most, see router.ray_tasks). `progress(done, total)` counts items, or their
    `weight`. `fn` and the items must pickle for a pool or Ray. With `fork` the pool's
    workers are forks of this process, which see its state as it was when the pool
    started (what `fn` reads from there need not pickle); the caller checks that the
    platform forks.

    Raises ValueError for another executor, router.ray_tasks.ExecutorUnavailable if
    the cluster cannot be reached."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be local or ray, got {executor!r}")
    if executor == "ray":
        # the optional `ray` extra: imported on this path only
        from router.ray_tasks import MAX_BATCH
        from router.ray_tasks import ordered_map as on_ray

        batch = MAX_BATCH if max_batch is None else max_batch
        return on_ray(fn, items, workers, ray_address, progress, weight, batch)
    total = sum(weight(i) for i in items) if weight else len(items)
    results: list[R] = []
    done = 0

    def advance(item: T, result: R) -> None:
        nonlocal done
        results.append(result)
        done += weight(item) if weight else 1
        if progress is not None:
            progress(done, total)

    if workers <= 1:
        for item in items:
            advance(item, fn(item))
        return results
    context = mp.get_context("fork") if fork else None
    with ProcessPoolExecutor(min(workers, max(len(items), 1)), mp_context=context) as pool:
        for item, result in zip(items, pool.map(fn, items), strict=True):  # in order
            advance(item, result)
    return results
