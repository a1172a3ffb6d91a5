"""The FIX client of `blockroute bench fix`: a quickfix SocketInitiator that logs on,
sends NewOrderSingles and stamps each ExecutionReport(New) as it arrives.

`python -m bench.fix_client` is the client's own process, which bench.fix starts while
its main process serves the gateway: a real OMS is another process, and a client in the
gateway's interpreter would contend for its GIL and for quickfix's session lock. It
reads its `ClientConfig` as one JSON line on standard input and writes JSON lines to
standard output: ["alive", 0] and ["progress", acked] as it goes, then ["result",
[sent_ns, acked_ns]] once logged out, or ["error", one line] (exit status 1). Every
timestamp is taken here, on this process's `perf_counter_ns`; only timings go back to
the parent, never a clock reading for it to compare with its own. The module imports
quickfix and the FIX wire format alone (not the desk or the service), so that the
process starts in a fraction of a second. `Client`, `Endpoint`, `initiator_settings` and
`Sender` also serve bench.fix's in-process client.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

import quickfix as fix

from router.fix.wire import BEGIN_STRING, Outbound

WARMUP_ORDERS = 50  # sent and acknowledged before timing starts
LOGOUT_TIMEOUT_S = 5.0
_TICK_S = 0.5  # between two reports to the parent: progress, or that the client lives
_CL_ORD_ID = re.compile(r"\x0111=([^\x01]*)\x01")
_TEXT = re.compile(r"\x0158=([^\x01]*)\x01")
_NEW = "\x01150=0\x01"
_LOGOUT = "\x0135=5\x01"


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """What a client needs to log on to the bench's gateway."""

    port: int
    sender: str  # the client's SenderCompID
    target: str  # the gateway's
    password: str
    store: str  # the initiator's FileStore folder
    dictionary: str  # the FIX 4.4 data dictionary file
    host: str = "127.0.0.1"

    @property
    def session_id(self) -> Any:
        return fix.SessionID(BEGIN_STRING, self.sender, self.target)


@dataclasses.dataclass(frozen=True)
class ClientConfig:
    """One client run: log on to `endpoint`, warm up, send `orders` orders (`rate` None:
    as fast as `window` orders in flight allow; else paced at `rate`/s)."""

    endpoint: Endpoint
    orders: int
    rate: float | None
    window: int
    expire: str  # ExpireTime of every order, a FIX timestamp on the desk's clock
    timeout_s: float  # the longest wait for an ack (or for the last ones, once all are sent)
    logon_timeout_s: float

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ClientConfig:
        doc = json.loads(text)
        return cls(**{**doc, "endpoint": Endpoint(**doc["endpoint"])})


class Client(fix.Application):
    """The initiator's callbacks (quickfix's threads): stamp each ack on arrival, call
    `on_ack`, and keep the Text of a Logout (before logon: why the logon was refused)."""

    def __init__(self, password: str, on_ack: Callable[[], object]):
        super().__init__()
        self.password = password
        self.acked_ns: dict[str, int] = {}
        self.logout_text: str | None = None
        self.target = sys.maxsize  # `wait_acked`'s count: reaching it sets `reached`
        self.reached = threading.Event()
        self._on_ack = on_ack

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
        try:
            raw = message.toString()
            if _LOGOUT in raw:
                m = _TEXT.search(raw)
                self.logout_text = m.group(1) if m is not None else "no reason given"
        except Exception:
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
                self._on_ack()
                if len(self.acked_ns) >= self.target:
                    self.reached.set()
        except Exception:
            pass

    def wait_acked(self, n: int, timeout_s: float, tick: Callable[[], None]) -> bool:
        """Block until `n` orders are acknowledged (False: not within `timeout_s`),
        calling `tick` at least every `_TICK_S`."""
        deadline = time.perf_counter() + timeout_s
        self.target = n
        while len(self.acked_ns) < n:
            self.reached.clear()  # an earlier target may have set it
            if len(self.acked_ns) >= n:
                break
            left = deadline - time.perf_counter()
            if left <= 0:
                return False
            self.reached.wait(min(_TICK_S, left))
            tick()
        return True


def initiator_settings(endpoint: Endpoint) -> Any:
    settings = fix.SessionSettings()
    d = fix.Dictionary()
    for key, value in {
        "ConnectionType": "initiator",
        "SocketConnectHost": endpoint.host,
        "SocketConnectPort": str(endpoint.port),
        "HeartBtInt": "30",
        "ReconnectInterval": "1",
        "NonStopSession": "Y",
        "FileStorePath": endpoint.store,
        "UseDataDictionary": "Y",
        "DataDictionary": endpoint.dictionary,
        "CheckLatency": "N",
    }.items():
        d.setString(key, value)
    settings.set(d)
    settings.set(endpoint.session_id, fix.Dictionary())
    return settings


@dataclasses.dataclass
class Sender:
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


Report = Callable[[str, int], None]  # (kind, acked so far): "alive" or "progress"


def run_client(config: ClientConfig, report: Report) -> tuple[list[int], list[int]]:
    """Log on, warm up, send and log out; returns each timed order's send and ack
    `perf_counter_ns`, in the order sent. Raises RuntimeError when the run fails."""
    endpoint = config.endpoint
    slots = threading.Semaphore(config.window)  # an ack frees one; paced sends take none
    app = Client(endpoint.password, slots.release)
    settings = initiator_settings(endpoint)
    initiator = fix.SocketInitiator(app, fix.FileStoreFactory(settings), settings)
    initiator.start()
    try:
        _log_on(initiator, app, config, lambda: report("alive", 0))
        timings = _send_orders(config, app, slots, report)
    except BaseException:
        initiator.stop(True)
        raise
    _log_out(initiator, endpoint)
    return timings


def _log_on(initiator: Any, app: Client, config: ClientConfig, alive: Callable[[], None]) -> None:
    endpoint = config.endpoint
    deadline = time.perf_counter() + config.logon_timeout_s
    next_tick = time.perf_counter() + _TICK_S
    while not initiator.isLoggedOn():
        if app.logout_text is not None:  # quickfix would retry in vain every second
            raise RuntimeError(f"the gateway refused the client's logon: {app.logout_text}")
        now = time.perf_counter()
        if now > deadline:
            raise RuntimeError(
                f"the client did not log on to {endpoint.host} port {endpoint.port} "
                f"within {config.logon_timeout_s:g} s"
            )
        if now >= next_tick:
            next_tick += _TICK_S
            alive()
        time.sleep(0.002)


def _send_orders(
    config: ClientConfig, app: Client, slots: threading.Semaphore, report: Report
) -> tuple[list[int], list[int]]:
    send = Sender(config.endpoint.session_id, config.expire)
    orders, rate = config.orders, config.rate

    def acquire(what: str) -> None:
        if not slots.acquire(timeout=config.timeout_s):
            raise RuntimeError(
                f"no ExecutionReport(New) for {config.timeout_s:g} s with {config.window} "
                f"orders in flight, {what}"
            )

    for i in range(WARMUP_ORDERS):
        acquire("warming up")
        send(f"W{i}")
    if not app.wait_acked(WARMUP_ORDERS, config.timeout_s, lambda: report("alive", 0)):
        raise RuntimeError(f"no warm-up acks within {config.timeout_s:g} s")

    def acked() -> int:
        return len(app.acked_ns) - WARMUP_ORDERS

    sent_ns = [0] * orders
    t0 = time.perf_counter()
    next_tick = t0 + _TICK_S
    for i in range(orders):
        if rate is None:
            acquire(f"{acked()} of {orders} orders acknowledged")
        else:
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        cl_ord_id = f"B{i}"
        sent_ns[i] = time.perf_counter_ns()
        send(cl_ord_id)
        if time.perf_counter() >= next_tick:
            next_tick += _TICK_S
            report("progress", acked())
    if not app.wait_acked(
        orders + WARMUP_ORDERS, config.timeout_s, lambda: report("progress", acked())
    ):
        raise RuntimeError(
            f"only {acked()} of {orders} orders acknowledged within {config.timeout_s:g} s"
        )
    return sent_ns, [app.acked_ns[f"B{i}"] for i in range(orders)]


def _log_out(initiator: Any, endpoint: Endpoint) -> None:
    session = fix.Session.lookupSession(endpoint.session_id)
    if session is not None and session.isLoggedOn():
        session.logout("bench done")
        deadline = time.perf_counter() + LOGOUT_TIMEOUT_S
        while session.isLoggedOn() and time.perf_counter() < deadline:
            time.sleep(0.002)
    answered = not initiator.isLoggedOn()
    initiator.stop(True)  # stop(False) would sleep a whole second per session
    if not answered:
        raise RuntimeError(
            f"the gateway did not answer the client's Logout in {LOGOUT_TIMEOUT_S:g} s"
        )


def main() -> None:
    """The client process (see the module's docstring)."""
    # the replies get their own copy of standard output, and the rest of the process
    # (quickfix's C++ included) writes to standard error: a stray line cannot garble them
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # a Ctrl-C at the terminal reaches this process too: the parent, interrupted, ends it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(serve(sys.stdin, out))


def serve(config_in: TextIO, out: TextIO) -> int:
    """Run the client on the config read from `config_in`, replying on `out`; returns
    the exit status."""

    def reply(kind: str, value: Any) -> None:
        out.write(json.dumps([kind, value]) + "\n")
        out.flush()

    try:
        config = ClientConfig.from_json(config_in.readline())
        timings = run_client(config, reply)
    except Exception as exc:
        reply("error", str(exc) or type(exc).__name__)
        return 1
    reply("result", timings)
    return 0


if __name__ == "__main__":
    main()
