"""`blockroute bench fix`: NewOrderSingle -> ExecutionReport(New) over loopback.

A FIX gateway (router.fix.gateway) in front of a desk, on a free loopback port with a
temporary message store, in this process; a real quickfix SocketInitiator as the client,
by default in a process of its own (bench.fix_client), as an OMS would be, or on the
gateway's loop (`client="inproc"`), where it shares the interpreter, the GIL and
quickfix's session locks with the service. The client sends small market orders with
distinct ClOrdIDs and a long ExpireTime, either as fast as a window of orders in flight
allows (`rate` None) or paced at `rate` orders per second, and times each order from
just before `sendToTarget` to the moment its ExecutionReport (ExecType 0) reaches the
client's callback, on the client's own clock. `InstantDesk` accepts every order at
once, so that the figure is the FIX path's own cost; a real desk adds its admission work
(give it a fresh journal: the bench's gateway starts on an empty store, so it would
re-send the reports of every FIX order the desk already has). Not inside `blockroute
serve`: one process serves a FIX session id once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import quickfix as fix

from bench.fix_client import (
    WARMUP_ORDERS,
    Client,
    ClientConfig,
    Endpoint,
    Sender,
    initiator_settings,
)
from router.desk_api import (
    DeskPort,
    InvalidStateError,
    Listener,
    NewOrder,
    OrderAccepted,
    OrderStatus,
    ParentView,
    UnknownOrderError,
)
from router.fix.gateway import FixGateway
from router.fix.settings import (
    DEFAULT_ACCEPTOR_CFG,
    Credentials,
    GatewaySettings,
    load_acceptor_config,
)
from router.fix.wire import format_utc_timestamp
from router.runtime import LoopClock
from router.service import simulated_desk, tune_gc

__all__ = [
    "CLIENTS",
    "WARMUP_ORDERS",
    "FixBenchError",
    "InstantDesk",
    "bench_gateway",
    "fix_bench",
    "run_client_process",
    "run_fix_bench",
]


class InstantDesk:
    """A DeskPort that accepts every order at once (publishing OrderAccepted) and does
    nothing else: the gateway's cost alone."""

    def __init__(self, now_ns: Callable[[], int]) -> None:
        self.now_ns = now_ns
        self._listeners: list[Listener] = []
        self._n = 0

    @property
    def ready(self) -> bool:
        return True

    @property
    def kill_engaged(self) -> bool:
        return False

    def symbols(self) -> list[str]:
        return ["QDI"]

    @property
    def default_strategy(self) -> str:
        return "ml"

    def submit(self, order: NewOrder) -> ParentView:
        self._n += 1
        now = self.now_ns()
        view = ParentView.accepted(order, f"B{self._n}", now, order.expire_ns or now, 0.0)
        for listener in list(self._listeners):
            listener(OrderAccepted(now, view))
        return view

    async def sync(self) -> None:
        """Commits nothing: every call takes effect at once."""

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def find(self, client: str, cl_ord_id: str) -> ParentView | None:
        return None

    def parents(self, status: OrderStatus | None = None) -> list[ParentView]:
        return []  # nothing to reconcile: the bench's store is new

    def fills(self, parent_id: str) -> list[dict[str, Any]]:
        return []

    def _unsupported(self, *args: Any, **kwargs: Any) -> Any:
        raise InvalidStateError("the bench desk only accepts orders")

    cancel = replace = pause = resume = engage_kill = release_kill = _unsupported
    decisions = schedule = tca = drift = resume_models = _unsupported

    def parent(self, parent_id: str) -> ParentView:
        raise UnknownOrderError(parent_id)

    def scorecard(self) -> dict[str, Any]:
        return {"dealers": []}

    def metrics(self) -> dict[str, float]:
        return {}


CLIENTS = ("process", "inproc")


class FixBenchError(RuntimeError):
    """The run failed: the client did not log on, an ack did not come, the client
    process died."""


@contextlib.asynccontextmanager
async def bench_gateway(
    desk: DeskPort, acceptor_cfg: Path = DEFAULT_ACCEPTOR_CFG
) -> AsyncIterator[Endpoint]:
    """A FixGateway in front of `desk` on a free loopback port, with a temporary message
    store and a fresh password for `acceptor_cfg`'s first client; yields what that client
    needs to log on. Runs on the caller's loop (the desk's)."""
    acceptor = load_acceptor_config(acceptor_cfg)
    password = secrets.token_hex(12)
    with tempfile.TemporaryDirectory(prefix="blockroute-bench-fix-") as tmp:
        settings = GatewaySettings(
            acceptor=acceptor,
            credentials={c: Credentials(password) for c in acceptor.compids},
            data_dir=Path(tmp),
            port=0,  # a free port
            store_dir=Path(tmp) / "acceptor",
        )
        gateway = FixGateway(desk, settings, asyncio.get_running_loop())
        gateway.start()
        try:
            yield Endpoint(
                port=gateway.port,
                sender=acceptor.compids[0],
                target=acceptor.sender_comp_id,
                password=password,
                store=str(Path(tmp) / "initiator"),
                dictionary=str(
                    acceptor_cfg.parent / acceptor.defaults.get("DataDictionary", "FIX44.xml")
                ),
            )
        finally:
            await gateway.stop(timeout=1.0)


async def run_fix_bench(
    desk: DeskPort,
    orders: int,
    rate: float | None = None,
    *,
    window: int = 64,
    client: str = "process",
    acceptor_cfg: Path = DEFAULT_ACCEPTOR_CFG,
    progress: Callable[[int, int], None] | None = None,
    timeout_s: float = 60.0,
    logon_timeout_s: float = 10.0,
    expire_s: float = 86_400.0,
) -> dict[str, Any]:
    """Send `orders` NewOrderSingles through a fresh gateway and time their acks.

    Returns {"orders", "orders_per_s", "ack_p50_ms", "ack_p99_ms"} (CONTRACT.md) and
    "client". `rate` None: as fast as `window` orders in flight allow; else paced at
    `rate`/s. `client` "process": the client runs in a process of its own (as an OMS
    would); "inproc": on the caller's loop, sharing the gateway's interpreter. Runs the
    gateway on the caller's loop (the desk's); `timeout_s` bounds each wait for an ack
    (and for the last ones once every order is sent). Raises FixBenchError if the run
    fails.
    """
    if orders < 1:
        raise ValueError(f"orders must be >= 1, got {orders}")
    if rate is not None and not rate > 0:
        raise ValueError(f"rate must be > 0 orders/s, got {rate}")
    if client not in CLIENTS:
        raise ValueError(f"client must be one of {', '.join(CLIENTS)}, got {client!r}")
    async with bench_gateway(desk, acceptor_cfg) as endpoint:
        config = ClientConfig(
            endpoint=endpoint,
            orders=orders,
            rate=rate,
            window=window,
            expire=format_utc_timestamp(desk.now_ns() + int(expire_s * 1_000_000_000)),
            timeout_s=timeout_s,
            logon_timeout_s=logon_timeout_s,
        )
        if client == "process":
            sent_ns, acked_ns = await run_client_process(config, progress)
        else:
            sent_ns, acked_ns = await _run_inproc_client(config, progress)
        if progress is not None:
            progress(orders, orders)
    return {**_summary(sent_ns, acked_ns), "client": client}


async def run_client_process(
    config: ClientConfig, progress: Callable[[int, int], None] | None = None
) -> tuple[list[int], list[int]]:
    """Run the client in a process of its own (`python -m bench.fix_client`) against a
    gateway served on this loop, which keeps serving meanwhile; returns its timings.
    Raises FixBenchError if the client fails, dies or hangs; the process is gone when
    this returns or raises."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-P",
        "-m",
        "bench.fix_client",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=_child_environment(),
        limit=_MAX_REPLY_BYTES,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(config.to_json().encode() + b"\n")
        await proc.stdin.drain()
        proc.stdin.close()
        kind, value = await _receive(proc.stdout, config, progress)
        if kind == "error":
            raise FixBenchError(f"bench fix: {value}")
        if kind is None:
            code = await _exit_code(proc)
            raise FixBenchError(
                f"bench fix: the client process ended without a result (exit status {code})"
            )
        if kind == _SILENT:
            raise FixBenchError(f"bench fix: the client process said nothing for {value:g} s")
        if kind != "result":
            raise FixBenchError(f"bench fix: the client process replied {kind!r}")
        if await _exit_code(proc) is None:
            raise FixBenchError(
                f"bench fix: the client process did not exit within {_EXIT_TIMEOUT_S:g} s "
                "of its result"
            )
        sent_ns, acked_ns = value
        return list(sent_ns), list(acked_ns)
    finally:
        await _reap(proc)


def _child_environment() -> dict[str, str]:
    # with -P, this makes the child import the project from where this process did,
    # whatever its working directory. (A function: a failure's logged traceback shows
    # the locals of its frames, and the environment can hold secrets.)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    return env


_PROJECT_ROOT = Path(__file__).resolve().parent.parent  # where `bench` and `router` are
_MAX_REPLY_BYTES = 1 << 28  # the result is one line: two integers per order
_EXIT_TIMEOUT_S = 5.0
_SILENT = "silent"


async def _receive(
    stdout: asyncio.StreamReader,
    config: ClientConfig,
    progress: Callable[[int, int], None] | None,
) -> tuple[str | None, Any]:
    """The child's first reply other than a report that it lives: ("result", timings),
    ("error", text), (None, None) at the end of its output, or (_SILENT, seconds) if it
    stops reporting."""
    # the client reports at least every half second except while it waits for one ack
    # (up to timeout_s) or logs on: longer silence means it hangs
    silence_s = max(config.timeout_s, config.logon_timeout_s) + 10.0
    while True:
        try:
            line = await asyncio.wait_for(stdout.readline(), silence_s)
        except TimeoutError:
            return _SILENT, silence_s
        if not line:
            return None, None
        try:
            kind, value = json.loads(line)
        except ValueError:
            return "error", f"the client process wrote {line[:200]!r}"
        if kind == "progress":
            if progress is not None:
                progress(value, config.orders)
        elif kind != "alive":
            return kind, value


async def _exit_code(proc: asyncio.subprocess.Process) -> int | None:
    try:
        return await asyncio.wait_for(proc.wait(), _EXIT_TIMEOUT_S)
    except TimeoutError:
        return None


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """Never leave the client running: it may hang in quickfix, or be mid-run when this
    side fails or is interrupted."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):  # it may have ended just now
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), 2.0)
    except TimeoutError:
        proc.kill()
        await proc.wait()


async def _run_inproc_client(
    config: ClientConfig, progress: Callable[[int, int], None] | None
) -> tuple[list[int], list[int]]:
    """The client on this loop, sharing the interpreter (and the GIL) with the gateway:
    the comparison for `run_client_process`."""
    loop = asyncio.get_running_loop()
    endpoint = config.endpoint
    slots = asyncio.Semaphore(config.window)
    app = Client(endpoint.password, lambda: loop.call_soon_threadsafe(slots.release))
    settings = initiator_settings(endpoint)
    initiator = fix.SocketInitiator(app, fix.FileStoreFactory(settings), settings)
    initiator.start()
    orders, timeout_s = config.orders, config.timeout_s
    try:
        await _wait(
            lambda: bool(initiator.isLoggedOn()),
            config.logon_timeout_s,
            f"the client never logged on to {endpoint.host} port {endpoint.port}",
            lambda: app.logout_text,
        )
        send = Sender(endpoint.session_id, config.expire)
        warm = []
        for i in range(WARMUP_ORDERS):  # each ack releases a slot: take one per order
            await slots.acquire()
            warm.append(send(f"W{i}"))
        await _wait(lambda: all(c in app.acked_ns for c in warm), timeout_s, "no warm-up acks")
        sent_ns = await _send_all(send, orders, config.rate, slots, loop, app, progress)
        await _wait(
            lambda: len(app.acked_ns) >= orders + WARMUP_ORDERS,
            timeout_s,
            lambda: f"only {len(app.acked_ns) - WARMUP_ORDERS} of {orders} orders acknowledged",
        )
    finally:
        initiator.stop(True)
    return sent_ns, [app.acked_ns[f"B{i}"] for i in range(orders)]


async def _send_all(
    send: Sender,
    orders: int,
    rate: float | None,
    slots: asyncio.Semaphore,
    loop: asyncio.AbstractEventLoop,
    app: Client,
    progress: Callable[[int, int], None] | None,
) -> list[int]:
    sent_ns = [0] * orders
    t0 = loop.time()
    next_progress = t0 + 0.5
    for i in range(orders):
        if rate is None:
            await slots.acquire()
        else:
            delay = t0 + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        cl_ord_id = f"B{i}"
        sent_ns[i] = time.perf_counter_ns()
        send(cl_ord_id)
        if progress is not None and loop.time() >= next_progress:
            next_progress += 0.5
            progress(len(app.acked_ns) - WARMUP_ORDERS, orders)
    return sent_ns


def _summary(sent_ns: Sequence[int], acked_ns: Sequence[int]) -> dict[str, Any]:
    """The contract's figures from each order's send and ack times, both taken by the
    client on its own clock."""
    lat_ms = sorted((a - s) / 1e6 for s, a in zip(sent_ns, acked_ns, strict=True))
    span_s = (max(acked_ns) - min(sent_ns)) / 1e9
    return {
        "orders": len(sent_ns),
        "orders_per_s": len(sent_ns) / span_s if span_s > 0 else float("inf"),
        "ack_p50_ms": statistics.median(lat_ms),
        "ack_p99_ms": lat_ms[min(len(lat_ms) - 1, int(0.99 * len(lat_ms)))],
    }


async def _wait(
    cond: Callable[[], bool],
    timeout: float,
    what: str | Callable[[], str],  # a callable: read when the wait fails
    refusal: Callable[[], str | None] = lambda: None,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        why = refusal()
        if why is not None:
            raise FixBenchError(f"bench fix: the gateway refused the client's logon: {why}")
        if loop.time() > deadline:
            text = what() if callable(what) else what
            raise FixBenchError(f"bench fix: {text} within {timeout:g} s")
        await asyncio.sleep(0.002)


def fix_bench(
    orders: int,
    rate: float | None = None,
    *,
    window: int = 64,
    client: str = "process",
    real_desk: bool = False,
    progress: Callable[[int, int], None] | None = None,
    switch_interval_s: float | None = None,
) -> dict[str, Any]:
    """`run_fix_bench` on a fresh loop (the CLI's entry): against the service's own desk
    (`real_desk`: journal in a temporary SQLite file, QDI's simulated market, every order
    a working parent of one hour), or an `InstantDesk` to time the FIX path alone;
    `client` as there."""

    async def main() -> dict[str, Any]:
        if switch_interval_s is not None:
            sys.setswitchinterval(switch_interval_s)
        if not real_desk:
            clock = LoopClock(asyncio.get_running_loop(), time.time_ns())  # the service clock
            desk = InstantDesk(clock.now_ns)
            return await run_fix_bench(
                desk, orders, rate, window=window, client=client, progress=progress
            )
        with tempfile.TemporaryDirectory(prefix="blockroute-bench-desk-") as folder:
            async with simulated_desk(Path(folder), 1.0) as real:
                tune_gc()  # as `blockroute serve` does once its desk runs
                doc = await run_fix_bench(
                    real,
                    orders,
                    rate,
                    window=window,
                    client=client,
                    progress=progress,
                    expire_s=3600.0,
                )
                doc["parents_open"] = len(real.parents())
                return doc

    return asyncio.run(main())
