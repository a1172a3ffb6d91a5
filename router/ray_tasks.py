"""Ray for the commands that spread simulations over processes (`--executor ray`): the
cluster to join or start (`RayCluster`), and an ordered map of jobs as batched tasks
(`ordered_map`), whose results come back in the jobs' order whatever the tasks'
finishing order, so that a command's output is its local run's.

Ray is an optional extra (`.[ray]`): it is imported inside the functions below, and the
callers import this module only when the Ray executor is asked for.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import sys
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")
R = TypeVar("R")

CONNECT_CHECK_S = 3.0  # a ray:// address that takes no TCP connection in this long is down
MAX_RETRIES = 3  # a task whose worker dies (killed, out of memory) runs again elsewhere
# Ray's client server on the head starts a server process for each driver that connects
# through ray://, by a fork while its own gRPC threads run; now and then the child dies
# at once (the head's ray_client_server.err: "Other threads are currently calling into
# gRPC, skipping fork() handlers", then "SpecificServer startup failed"), and the
# driver is told "Initialization failure from server". Seen in 2 of 12 runs of the
# two-node test with the head's two cores busy, and once in CI. The next try forks a
# fresh one. Anything else fails at once.
CLIENT_ATTEMPTS = 3
SERVER_START_FAILURE = "Initialization failure from server"
# Jobs per task: each task takes 1/(TAIL_SHARE * CPUs) of the jobs not yet handed out
# (guided self-scheduling), at most MAX_BATCH: a task of a second or more dwarfs Ray's
# few milliseconds per task, the tasks shrink to single jobs at the end so that no CPU
# idles long while another finishes, and a task stays short enough for the progress
# bar to move and for a retry (a worker killed) to cost little.
TAIL_SHARE = 2
MAX_BATCH = 8
# The object store of a cluster started for one run: the shared inputs take a few MB,
# the results travel inline; Ray's own default (30% of memory) reserves far more.
OBJECT_STORE_BYTES = 128 * 2**20


class ExecutorUnavailable(Exception):
    """The executor cannot run the work: e.g. a Ray cluster out of reach."""


def batch_sizes(n_jobs: int, cpus: int, max_batch: int = MAX_BATCH) -> list[int]:
    """The jobs of each task, in order of submission (see TAIL_SHARE)."""
    sizes: list[int] = []
    left = n_jobs
    while left > 0:
        size = min(max_batch, max(1, math.ceil(left / (TAIL_SHARE * max(cpus, 1)))))
        sizes.append(size)
        left -= size
    return sizes


class RayCluster:
    """The cluster at `address` ("auto", a GCS host:port, "ray://host:10001") joined for
    a `with` block, or with None one started in this process with `cpus` CPUs and
    stopped at the block's end. Raises ExecutorUnavailable if it cannot be reached."""

    def __init__(self, cpus: int, address: str | None = None) -> None:
        self.cpus = cpus
        self.address = address
        self._owned = False
        self._stdout = contextlib.ExitStack()

    def __enter__(self) -> Any:
        """Ray itself, connected."""
        import ray  # the optional `ray` extra (see the module's docstring)

        # Ray's driver prints the cluster's error notices ("(raylet) A worker died ...")
        # to standard output whatever `log_to_driver` says: while connected, standard
        # output is standard error, so that `--json -` (written after) stays one document
        self._stdout.enter_context(contextlib.redirect_stdout(sys.stderr))
        try:
            return self._connect(ray)
        except BaseException:
            self._stdout.close()
            raise

    def _connect(self, ray: Any) -> Any:
        if ray.is_initialized():
            return ray
        # log_to_driver=False: the workers' output must not reach our stdout, where
        # `--json -` writes the document; their errors come back as exceptions anyway
        options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        if self.address is not None:
            _check_reachable(self.address)
        else:
            # a cluster of our own, for this run only: its start-up notices are noise
            options.update(
                num_cpus=self.cpus,
                include_dashboard=False,
                object_store_memory=OBJECT_STORE_BYTES,
                logging_level=logging.ERROR,
            )
        attempts = CLIENT_ATTEMPTS if (self.address or "").startswith("ray://") else 1
        for attempt in range(1, attempts + 1):
            try:
                ray.init(address=self.address, **options)
                break
            except (
                ConnectionError,
                TimeoutError,
                RuntimeError,
                ValueError,
                ray.exceptions.RayError,
            ) as exc:
                if attempt < attempts and SERVER_START_FAILURE in str(exc):
                    # Ray's client has disconnected itself: a new try starts clean
                    print(
                        f"blockroute: {self.address}: {_reason(exc)}; "
                        f"trying again ({attempt + 1} of {attempts})",
                        file=sys.stderr,
                    )
                    continue
                self._refuse(exc)
        self._owned = True
        return ray

    def _refuse(self, exc: BaseException) -> NoReturn:
        """ExecutorUnavailable for Ray's refusal `exc`, in one line."""
        where = self.address or "a local cluster"
        hint = ""
        if self.address is not None and os.environ.get("RAY_AUTH_MODE") != "token":
            # Ray 2.60's heads require a token, which a driver given an address sends
            # only when told to
            hint = " (a cluster with token authentication needs RAY_AUTH_MODE=token)"
        raise ExecutorUnavailable(f"--ray-address: cannot reach {where}: {_reason(exc)}{hint}")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._owned:
                import ray

                ray.shutdown()
                self._owned = False
        finally:
            self._stdout.close()


def _reason(exc: BaseException) -> str:
    """One line of why Ray refused: its message's first line, and where that only
    introduces what follows ("Initialization failure from server:" then the server's
    traceback), the last line too, which names the cause."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[-1]}"
    return lines[0]


def cluster_cpus(ray: Any, default: int) -> int:
    """The CPUs of the connected cluster, all nodes together."""
    return int(ray.cluster_resources().get("CPU", default)) or 1


def collect(
    ray: Any,
    refs: Sequence[Any],
    weights: Sequence[int],
    progress: Callable[[int, int], None] | None,
    also_cancel: Sequence[Any] = (),
) -> list[Any]:
    """Each task's result, in the order of `refs`; `progress(done, total)` in `weights`
    (e.g. each task's number of jobs) as each finishes, in any order. Ctrl-C cancels
    the tasks still pending (and `also_cancel`), then propagates."""
    index = {ref: i for i, ref in enumerate(refs)}
    results: list[Any] = [None] * len(refs)
    total, done = sum(weights), 0
    pending = list(refs)
    try:
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            for ref in finished:
                i = index[ref]
                results[i] = ray.get(ref)
                done += weights[i]
            if progress:
                progress(done, total)
    except KeyboardInterrupt:
        for ref in [*pending, *also_cancel]:
            ray.cancel(ref, force=True)
        raise
    return results


def _run_batch(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """One task of `ordered_map`: its items, one after the other."""
    return [fn(item) for item in items]


def ordered_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    cpus: int,
    address: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    weight: Callable[[T], int] | None = None,
    max_batch: int = MAX_BATCH,
) -> list[R]:
    """`[fn(item) for item in items]` as Ray tasks of a few items each (at most
    `max_batch`: 1 for jobs long enough on their own) on the cluster at `address` (see
    RayCluster); `progress(done, total)` counts items, or their `weight`. `fn` and the
    items must pickle (a module-level function, a `functools.partial` of one)."""
    with RayCluster(cpus, address) as ray:
        remote = ray.remote(max_retries=MAX_RETRIES)(_run_batch)
        fn_ref = ray.put(fn)  # once, not with every task
        refs, weights, at = [], [], 0
        for size in batch_sizes(len(items), cluster_cpus(ray, cpus), max_batch):
            batch = list(items[at : at + size])
            refs.append(remote.remote(fn_ref, batch))
            weights.append(sum(weight(i) for i in batch) if weight else size)
            at += size
        return [r for batch in collect(ray, refs, weights, progress) for r in batch]


def _check_reachable(address: str) -> None:
    """Refuse an address that takes no TCP connection within CONNECT_CHECK_S, before Ray
    spends its own time on it: 30-odd seconds for a `ray://host:port` client address,
    and for a GCS `host:port` minutes of retries. "auto" (a cluster on this host) is left
    to Ray, which fails at once when there is none."""
    if "://" in address:
        parts = urlsplit(address)
        if parts.scheme != "ray" or not parts.hostname:
            return
        host, port = parts.hostname, parts.port or 10001
    else:
        host, _, port_text = address.rpartition(":")
        if not host or not port_text.isdigit():
            return  # "auto", or nothing Ray takes: Ray's own error
        host, port = host.strip("[]"), int(port_text)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_CHECK_S):
            pass
    except OSError as exc:
        raise ExecutorUnavailable(
            f"--ray-address: cannot reach {address} ({exc.strerror or exc})"
        ) from None
