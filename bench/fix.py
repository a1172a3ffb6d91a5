"""`blockroute bench fix`: NewOrderSingle -> ExecutionReport(New) over loopback.

A FIX gateway (router.fix.gateway) in front of a desk, on a free loopback port with a
temporary message store, and a real quickfix SocketInitiator in the same process (so
both ends share the interpreter). The client sends small market orders with distinct
ClOrdIDs and a long ExpireTime, either as fast as a window of orders in flight allows
(`rate` None) or paced at `rate` orders per second, and times each order from just
before `sendToTarget` to the moment its ExecutionReport (ExecType 0) reaches the
client's callback. `InstantDesk` accepts every order at once, so that the figure is the
FIX path's own cost; a real desk adds its admission work (give it a fresh journal: the
bench's gateway starts on an empty store, so it would re-send the reports of every FIX
order the desk already has). Not inside `blockroute serve`: one process serves a FIX
session id once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import quickfix as fix

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
    BEGIN_STRING,
    DEFAULT_ACCEPTOR_CFG,
    Credentials,
    GatewaySettings,
    load_acceptor_config,
)
from router.fix.wire import Outbound, format_utc_timestamp
from router.runtime import LoopClock
from router.service import simulated_desk, tune_gc

WARMUP_ORDERS = 50  # sent and acknowledged before timing starts
_CL_ORD_ID = re.compile(r"\x0111=([^\x01]*)\x01")
_NEW = "\x01150=0\x01"


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


class _Client(fix.Application):
    """The initiator's callbacks (quickfix's threads): stamp each ack on arrival."""

    def __init__(self, password: str, on_ack: Callable[[], None], post: Callable[..., Any]):
        super().__init__()
        self.password = password
        self.acked_ns: dict[str, int] = {}
        self._on_ack = on_ack
        self._post = post

    def onCreate(self, session_id: Any) -> None:
        pass

    def onLogon(self, session_id: Any) -> None:
        pass

    def onLogout(self, session_id: Any) -> None:
        pass

    def toAdmin(self, message: Any, session_id: Any) -> None:
        try:
            if message.getHeader().getField(35) == "A":
                message.setField(554, self.password)
        except Exception:  # an exception must never reach quickfix
            pass

    def fromAdmin(self, message: Any, session_id: Any) -> None:
        pass

    def toApp(self, message: Any, session_id: Any) -> None:
        pass

    def fromApp(self, message: Any, session_id: Any) -> None:
        t = time.perf_counter_ns()
        try:
            raw = message.toString()
            m = _CL_ORD_ID.search(raw)
            if m is not None and _NEW in raw:
                self.acked_ns[m.group(1)] = t
                self._post(self._on_ack)
        except Exception:
            pass


def _initiator_settings(sender: str, target: str, port: int, store: Path, dictionary: Path) -> Any:
    settings = fix.SessionSettings()
    d = fix.Dictionary()
    for key, value in {
        "ConnectionType": "initiator",
        "SocketConnectHost": "127.0.0.1",
        "SocketConnectPort": str(port),
        "HeartBtInt": "30",
        "ReconnectInterval": "1",
        "NonStopSession": "Y",
        "FileStorePath": str(store),
        "UseDataDictionary": "Y",
        "DataDictionary": str(dictionary),
        "CheckLatency": "N",
    }.items():
        d.setString(key, value)
    settings.set(d)
    settings.set(fix.SessionID(BEGIN_STRING, sender, target), fix.Dictionary())
    return settings


async def run_fix_bench(
    desk: DeskPort,
    orders: int,
    rate: float | None = None,
    *,
    window: int = 64,
    acceptor_cfg: Path = DEFAULT_ACCEPTOR_CFG,
    progress: Callable[[int, int], None] | None = None,
    timeout_s: float = 60.0,
    expire_s: float = 86_400.0,
) -> dict[str, Any]:
    """Send `orders` NewOrderSingles through a fresh gateway and time their acks.

    Returns {"orders", "orders_per_s", "ack_p50_ms", "ack_p99_ms"} (CONTRACT.md).
    `rate` None: as fast as `window` orders in flight allow; else paced at `rate`/s.
    Runs on the caller's loop (the desk's); `timeout_s` bounds the wait for the acks
    once the last order is sent.
    """
    if orders < 1:
        raise ValueError(f"orders must be >= 1, got {orders}")
    if rate is not None and not rate > 0:
        raise ValueError(f"rate must be > 0 orders/s, got {rate}")
    loop = asyncio.get_running_loop()
    acceptor = load_acceptor_config(acceptor_cfg)
    client_id = acceptor.compids[0]
    password = secrets.token_hex(12)
    with tempfile.TemporaryDirectory(prefix="blockroute-bench-fix-") as tmp:
        settings = GatewaySettings(
            acceptor=acceptor,
            credentials={c: Credentials(password) for c in acceptor.compids},
            data_dir=Path(tmp),
            port=0,  # a free port
            store_dir=Path(tmp) / "acceptor",
        )
        gateway = FixGateway(desk, settings, loop)
        slots = asyncio.Semaphore(window)
        app = _Client(password, slots.release, loop.call_soon_threadsafe)
        gateway.start()
        initiator: Any = None
        try:
            ini_settings = _initiator_settings(
                client_id,
                acceptor.sender_comp_id,
                gateway.port,
                Path(tmp) / "initiator",
                acceptor_cfg.parent / acceptor.defaults.get("DataDictionary", "FIX44.xml"),
            )
            store = fix.FileStoreFactory(ini_settings)
            initiator = fix.SocketInitiator(app, store, ini_settings)
            initiator.start()
            session_id = fix.SessionID(BEGIN_STRING, client_id, acceptor.sender_comp_id)
            await _wait(lambda: bool(initiator.isLoggedOn()), 10.0, "the client never logged on")
            expire = format_utc_timestamp(desk.now_ns() + int(expire_s * 1_000_000_000))
            send = _Sender(session_id, expire)
            warm = []
            for i in range(WARMUP_ORDERS):  # each ack releases a slot: take one per order
                await slots.acquire()
                warm.append(send(f"W{i}"))
            await _wait(lambda: all(c in app.acked_ns for c in warm), timeout_s, "no warm-up acks")
            sent_ns = await _send_all(send, orders, rate, slots, loop, app, progress)
            await _wait(
                lambda: len(app.acked_ns) >= orders + WARMUP_ORDERS,
                timeout_s,
                f"only {len(app.acked_ns) - WARMUP_ORDERS} of {orders} orders acknowledged",
            )
            if progress is not None:
                progress(orders, orders)
        finally:
            if initiator is not None:
                initiator.stop(True)
            await gateway.stop(timeout=1.0)
    return _summary(sent_ns, app.acked_ns)


@dataclasses.dataclass
class _Sender:
    session_id: Any
    expire: str

    def __call__(self, cl_ord_id: str) -> str:
        order = Outbound(
            "D",
            (
                (11, cl_ord_id),
                (55, "QDI"),
                (54, "1"),
                (38, "100"),
                (40, "1"),
                (60, self.expire),  # TransactTime: any valid time will do for the bench
                (126, self.expire),
            ),
        )
        fix.Session.sendToTarget(fix.Message(order.to_text(), False), self.session_id)
        return cl_ord_id


async def _send_all(
    send: _Sender,
    orders: int,
    rate: float | None,
    slots: asyncio.Semaphore,
    loop: asyncio.AbstractEventLoop,
    app: _Client,
    progress: Callable[[int, int], None] | None,
) -> dict[str, int]:
    sent_ns: dict[str, int] = {}
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
        sent_ns[cl_ord_id] = time.perf_counter_ns()
        send(cl_ord_id)
        if progress is not None and loop.time() >= next_progress:
            next_progress += 0.5
            progress(len(app.acked_ns) - WARMUP_ORDERS, orders)
    return sent_ns


def _summary(sent_ns: dict[str, int], acked_ns: dict[str, int]) -> dict[str, Any]:
    lat_ms = sorted((acked_ns[c] - t) / 1e6 for c, t in sent_ns.items())
    span_s = (max(acked_ns[c] for c in sent_ns) - min(sent_ns.values())) / 1e9
    return {
        "orders": len(sent_ns),
        "orders_per_s": len(sent_ns) / span_s if span_s > 0 else float("inf"),
        "ack_p50_ms": statistics.median(lat_ms),
        "ack_p99_ms": lat_ms[min(len(lat_ms) - 1, int(0.99 * len(lat_ms)))],
    }


async def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise TimeoutError(f"bench fix: {what} within {timeout:g} s")
        await asyncio.sleep(0.002)


def fix_bench(
    orders: int,
    rate: float | None = None,
    *,
    window: int = 64,
    real_desk: bool = False,
    progress: Callable[[int, int], None] | None = None,
    switch_interval_s: float | None = None,
) -> dict[str, Any]:
    """`run_fix_bench` on a fresh loop (the CLI's entry): against the service's own desk
    (`real_desk`: journal in a temporary SQLite file, QDI's simulated market, every order
    a working parent of one hour), or an `InstantDesk` to time the FIX path alone."""

    async def main() -> dict[str, Any]:
        if switch_interval_s is not None:
            sys.setswitchinterval(switch_interval_s)
        if not real_desk:
            clock = LoopClock(asyncio.get_running_loop(), time.time_ns())  # the service clock
            desk = InstantDesk(clock.now_ns)
            return await run_fix_bench(desk, orders, rate, window=window, progress=progress)
        with tempfile.TemporaryDirectory(prefix="blockroute-bench-desk-") as folder:
            async with simulated_desk(Path(folder), 1.0) as real:
                tune_gc()  # as `blockroute serve` does once its desk runs
                doc = await run_fix_bench(
                    real, orders, rate, window=window, progress=progress, expire_s=3600.0
                )
                doc["parents_open"] = len(real.parents())
                return doc

    return asyncio.run(main())
