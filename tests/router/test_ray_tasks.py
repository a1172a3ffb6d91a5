"""Ray's tasks for the commands that spread work: batches that shrink at the end, and an
ordered map whose results come back in the jobs' order."""

from __future__ import annotations

import operator
import socket
from collections.abc import Iterator

import pytest

from router.ray_tasks import (
    CLIENT_ATTEMPTS,
    MAX_BATCH,
    ExecutorUnavailable,
    RayCluster,
    _reason,
    batch_sizes,
)


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


def test_a_refusal_names_its_cause_in_one_line():
    # Ray's client puts the server's traceback after a header line; the cause is last
    server = ConnectionAbortedError(
        "Initialization failure from server:\nTraceback (most recent call last):\n"
        '  File "proxier.py", line 771, in Datapath\n'
        "RuntimeError: Proxy failed to Connect to backend!\n"
    )
    assert _reason(server) == (
        "Initialization failure from server: RuntimeError: Proxy failed to Connect to backend!"
    )
    assert _reason(ConnectionError("no GCS at 10.0.0.1:6379\nretrying...")) == (
        "no GCS at 10.0.0.1:6379"
    )
    assert _reason(TimeoutError()) == "TimeoutError"


class _FlakyRay:
    """Ray's module as RayCluster uses it: `init` raises the given errors first."""

    class exceptions:
        RayError = RuntimeError

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.inits = 0

    def is_initialized(self) -> bool:
        return False

    def init(self, address: str, **options: object) -> None:
        self.inits += 1
        if self.errors:
            raise self.errors.pop(0)


def _refused(msg: str) -> ConnectionAbortedError:
    return ConnectionAbortedError(f"Initialization failure from server:\nTraceback\n{msg}")


@pytest.fixture
def listening() -> Iterator[str]:
    """A ray:// address that takes TCP connections (RayCluster checks that first)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield f"ray://127.0.0.1:{server.getsockname()[1]}"


def test_a_client_server_that_fails_to_start_a_server_is_tried_again(listening, capsys):
    ray = _FlakyRay(_refused("RuntimeError: Starting Ray client server failed."))
    assert RayCluster(1, listening)._connect(ray) is ray
    assert ray.inits == 2
    err = capsys.readouterr().err
    assert "Starting Ray client server failed." in err and "trying again (2 of 3)" in err


def test_it_gives_up_after_three_tries_and_other_refusals_at_once(listening):
    ray = _FlakyRay(*[_refused(f"RuntimeError: try {i}") for i in range(1, 4)])
    with pytest.raises(ExecutorUnavailable, match="try 3"):
        RayCluster(1, listening)._connect(ray)
    assert ray.inits == CLIENT_ATTEMPTS == 3
    ray = _FlakyRay(ConnectionError("version mismatch"))
    with pytest.raises(ExecutorUnavailable, match="version mismatch"):
        RayCluster(1, listening)._connect(ray)
    assert ray.inits == 1
