"""A FIX 4.4 client for the gateway's tests: a real quickfix SocketInitiator.

Callbacks run on quickfix's threads and only record copies of the messages; the test
(on the asyncio loop) polls them with `expect`, which never blocks the loop, so the
gateway under test keeps running meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import quickfix as fix

from router.fix.settings import DEFAULT_ACCEPTOR_CFG
from router.fix.wire import parse_fields

Fields = dict[int, str]
DICTIONARY = DEFAULT_ACCEPTOR_CFG.parent / "FIX44.xml"


class _App(fix.Application):
    def __init__(self, client: FixTestClient) -> None:
        super().__init__()
        self.c = client

    def onCreate(self, sid: Any) -> None:
        pass

    def onLogon(self, sid: Any) -> None:
        self.c.logons += 1

    def onLogout(self, sid: Any) -> None:
        self.c.logouts += 1

    def toAdmin(self, message: Any, sid: Any) -> None:
        try:
            if message.getHeader().getField(35) == "A":
                if self.c.password is not None:
                    message.setField(554, self.c.password)
                if self.c.username is not None:
                    message.setField(553, self.c.username)
        except Exception as exc:  # never let an exception reach quickfix
            self.c.errors.append(repr(exc))

    def fromAdmin(self, message: Any, sid: Any) -> None:
        with self.c.lock:
            self.c.admin.append(parse_fields(message.toString()))

    def toApp(self, message: Any, sid: Any) -> None:
        pass

    def fromApp(self, message: Any, sid: Any) -> None:
        with self.c.lock:
            self.c.app.append(parse_fields(message.toString()))


class FixTestClient:
    def __init__(
        self,
        port: int,
        store_dir: Path,
        *,
        sender: str = "OMS",
        target: str = "BLOCKROUTE",
        password: str | None = None,
        username: str | None = None,
        source: str | None = None,
        reset: bool = False,
    ) -> None:
        self.port = port
        self.password = password
        self.username = username
        self.lock = threading.Lock()
        self.app: list[Fields] = []
        self.admin: list[Fields] = []
        self.errors: list[str] = []
        self.logons = 0
        self.logouts = 0
        self._taken: set[int] = set()
        self.session_id = fix.SessionID("FIX.4.4", sender, target)
        settings = fix.SessionSettings()
        d = fix.Dictionary()
        for key, value in {
            "ConnectionType": "initiator",
            "SocketConnectHost": "127.0.0.1",
            "SocketConnectPort": str(port),
            "HeartBtInt": "1",
            "ReconnectInterval": "1",
            "NonStopSession": "Y",
            "FileStorePath": str(store_dir),
            "UseDataDictionary": "Y",
            "DataDictionary": str(DICTIONARY),
            "CheckLatency": "N",
        }.items():
            d.setString(key, value)
        if source is not None:  # connect from another loopback address (127.0.0.0/8)
            d.setString("SocketConnectSourceHost", source)
        if reset:  # log on with ResetSeqNumFlag=Y: both sides start again at 1
            d.setString("ResetOnLogon", "Y")
        settings.set(d)
        settings.set(self.session_id, fix.Dictionary())
        self._settings = settings
        self._application = _App(self)
        self._store = fix.FileStoreFactory(settings)
        self._initiator = fix.SocketInitiator(self._application, self._store, settings)
        self._running = False

    def start(self) -> FixTestClient:
        self._initiator.start()
        self._running = True
        return self

    def stop(self) -> None:
        """Drop the connection at once (a clean logout takes a heartbeat tick)."""
        if self._running:
            self._initiator.stop(True)
            self._running = False
        self._initiator = None  # frees quickfix's session, so a new client may take its id

    @property
    def logged_on(self) -> bool:
        session = fix.Session.lookupSession(self.session_id)
        return bool(session is not None and session.isLoggedOn())

    async def wait_logged_on(self, timeout: float = 3.0) -> None:
        await until(lambda: self.logged_on, timeout, "the client never logged on")

    def send(
        self,
        msg_type: str,
        fields: Iterable[tuple[int, str]],
        header: Iterable[tuple[int, str]] = (),
    ) -> None:
        msg = fix.Message()
        msg.getHeader().setField(35, msg_type)
        for tag, value in header:
            msg.getHeader().setField(tag, value)
        for tag, value in fields:
            msg.setField(tag, value)
        assert fix.Session.sendToTarget(msg, self.session_id)

    def new_order(
        self,
        cl_ord_id: str,
        qty: str = "1000",
        side: str = "1",
        symbol: str = "QDI",
        extra: Iterable[tuple[int, str]] = (),
        header: Iterable[tuple[int, str]] = (),
    ) -> None:
        fields = [(11, cl_ord_id), (55, symbol), (54, side), (38, qty), (40, "1")]
        fields.append((60, "20261121-12:00:00.000"))
        self.send("D", [*fields, *extra], header)

    async def expect(
        self, pred: Callable[[Fields], bool] | None = None, timeout: float = 3.0, **match: str
    ) -> Fields:
        """The next application message not returned before that matches `pred` and the
        `match` fields (keys like f35="8", f150="0")."""
        wanted = {int(k[1:]): v for k, v in match.items()}

        def ok(m: Fields) -> bool:
            return all(m.get(t) == v for t, v in wanted.items()) and (pred is None or pred(m))

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self.lock:
                for i, m in enumerate(self.app):
                    if i not in self._taken and ok(m):
                        self._taken.add(i)
                        return m
            if loop.time() > deadline:
                raise AssertionError(f"no message with {wanted} in {timeout}s; got {self.app}")
            await asyncio.sleep(0.005)

    def all_app(self, **match: str) -> list[Fields]:
        wanted = {int(k[1:]): v for k, v in match.items()}
        with self.lock:
            return [m for m in self.app if all(m.get(t) == v for t, v in wanted.items())]


async def until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(what)
        await asyncio.sleep(0.005)
