"""The WebSocket hub behind GET /ws: one desk subscription fanned out to every client.

A client gets a snapshot first ({"type": "snapshot", "orders", "kill_switch", "now_ns"})
and then every desk event's `payload()` in the order the desk published them. The desk
calls listeners synchronously on the loop thread and must never wait on a client, so
each event is serialised once and put on every client's bounded queue without waiting;
a client whose queue is full (it reads slower than the desk trades) is dropped with
close code 1013 and can reconnect for a fresh snapshot. The snapshot is taken and the
client registered in one synchronous step, so no event falls between the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from router.api.errors import client_text, has_db_detail
from router.desk_api import DeskEvent, DeskPort, KillSwitchChanged, ParentView

log = structlog.get_logger("blockroute.api")

#: Working orders are always in a snapshot; finished ones only up to this many (newest).
SNAPSHOT_DONE_LIMIT = 200


# --------------------------------------------------------------------------------- json


def _plain(value: object) -> object:
    """JSON-safe copy: non-finite floats become null (JSON has no NaN), enums their value,
    strings what a client may read (errors.client_text)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return client_text(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    return value


def _default(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    for convert in ("tolist", "item"):  # numpy arrays and scalars, without importing numpy
        method = getattr(value, convert, None)
        if callable(method):
            return method()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_text(doc: object) -> str:
    """Strict JSON (what browsers' JSON.parse accepts): NaN and infinities become null.
    Every answer and event of the HTTP edge passes here, so this is where a database
    driver's message (its user, host and port) is cut out of whatever text carries it."""
    try:
        text = json.dumps(doc, allow_nan=False, separators=(",", ":"), default=_default)
    except ValueError:  # a NaN somewhere: take the slow path once
        text = ""
    if not text or has_db_detail(text):  # one scan of the text; the copy is rare
        text = json.dumps(_plain(doc), allow_nan=False, separators=(",", ":"), default=_default)
    return text


# ----------------------------------------------------------------------------- kill state


@dataclass(slots=True)
class KillState:
    """What the service knows of the kill switch beyond `desk.kill_engaged`: why and when
    it last changed (from the desk's KillSwitchChanged events)."""

    reason: str = ""
    changed_ns: int | None = None
    canceled_parents: int = 0

    def apply(self, event: KillSwitchChanged) -> None:
        self.reason = event.reason
        self.changed_ns = event.ts_ns
        self.canceled_parents = event.canceled_parents

    def to_json(self, engaged: bool) -> dict[str, Any]:
        return {
            "engaged": engaged,
            "reason": self.reason if engaged else "",
            "changed_ns": self.changed_ns,
            "canceled_parents": self.canceled_parents if engaged else 0,
        }


# ---------------------------------------------------------------------------------- hub

_CLOSE = "close"  # queue sentinels: close the socket with this code and message
_OVERFLOW = "overflow"


@dataclass(eq=False, slots=True)
class _Client:
    ws: web.WebSocketResponse
    queue: asyncio.Queue[str | tuple[str, int, str]]


@dataclass(slots=True)
class HubStats:
    connected: int = 0
    dropped_slow: int = 0
    events: int = 0


@dataclass(eq=False)
class WsHub:
    """Fans desk events out to WebSocket clients; `attach` wires it into an app."""

    desk: DeskPort
    queue_size: int = 1024
    heartbeat_s: float = 30.0
    kill: KillState = field(default_factory=KillState)
    stats: HubStats = field(default_factory=HubStats)
    _clients: set[_Client] = field(default_factory=set)
    _unsubscribe: Callable[[], None] | None = None

    def attach(self, app: web.Application) -> None:
        """Subscribe now (so the kill-switch state is tracked from the start), close the
        clients on shutdown and unsubscribe on cleanup."""
        self._unsubscribe = self.desk.subscribe(self._on_event)
        app.on_shutdown.append(self._on_shutdown)
        app.on_cleanup.append(self._on_cleanup)

    @property
    def clients(self) -> int:
        return len(self._clients)

    # ---- desk side (synchronous, on the loop thread, never blocks)

    def _on_event(self, event: DeskEvent) -> None:
        if isinstance(event, KillSwitchChanged):
            self.kill.apply(event)
        self.stats.events += 1
        if not self._clients:
            return
        try:
            text = json_text(event.payload())
        except (TypeError, ValueError):  # a listener must never raise into the desk
            log.exception("desk event not serialisable, not sent", type=event.type)
            return
        for client in list(self._clients):
            try:
                client.queue.put_nowait(text)
            except asyncio.QueueFull:
                self._drop(client, _OVERFLOW)

    def _drop(self, client: _Client, why: str) -> None:
        """Unregister and ask the client's sender to close; the queue is emptied first so
        the close request always fits."""
        self._clients.discard(client)
        while not client.queue.empty():
            client.queue.get_nowait()
        if why == _OVERFLOW:
            self.stats.dropped_slow += 1
            log.warning("websocket client too slow, dropped", queue_size=self.queue_size)
            client.queue.put_nowait(
                (_CLOSE, int(WSCloseCode.TRY_AGAIN_LATER), "slow consumer: reconnect")
            )
        else:
            client.queue.put_nowait((_CLOSE, int(WSCloseCode.GOING_AWAY), "server shutdown"))

    # ---- snapshot

    def snapshot(self) -> dict[str, Any]:
        views = self.desk.parents()
        working = [v for v in views if not v.status.terminal]
        done = [v for v in views if v.status.terminal][:SNAPSHOT_DONE_LIMIT]
        ordered: list[ParentView] = sorted(
            working + done, key=lambda v: (v.start_ns, v.parent_id), reverse=True
        )
        return {
            "type": "snapshot",
            "orders": [v.to_json() for v in ordered],
            "kill_switch": self.kill.to_json(self.desk.kill_engaged),
            "now_ns": self.desk.now_ns(),
        }

    # ---- client side

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """GET /ws."""
        ws = web.WebSocketResponse(heartbeat=self.heartbeat_s)
        await ws.prepare(request)
        client = _Client(ws, asyncio.Queue(maxsize=self.queue_size + 1))  # +1: the close
        client.queue.put_nowait(json_text(self.snapshot()))
        self._clients.add(client)
        self.stats.connected += 1
        sender = asyncio.create_task(self._send_loop(client))
        try:
            async for msg in ws:  # clients have nothing to say; read to see the close
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._clients.discard(client)
            if not sender.done():
                sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        return ws

    async def _send_loop(self, client: _Client) -> None:
        ws = client.ws
        try:
            while True:
                item = await client.queue.get()
                if isinstance(item, tuple):
                    _, code, message = item
                    await ws.close(code=code, message=message.encode())
                    return
                await ws.send_str(item)
        except (ConnectionError, RuntimeError):  # the peer went away mid-send
            self._clients.discard(client)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.close()

    # ---- app lifecycle

    async def _on_shutdown(self, app: web.Application) -> None:
        clients = list(self._clients)
        for client in clients:
            self._drop(client, _CLOSE)
        # the handlers end when their sockets close; give them a moment, never hang
        deadline = asyncio.get_running_loop().time() + 2.0
        while any(not c.ws.closed for c in clients):
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.01)

    async def _on_cleanup(self, app: web.Application) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
