"""The MQTT event bus of `blockroute serve`: desk events out to a broker (aiomqtt).

The desk calls `MqttBus.publish` on the loop thread after each commit; it only encodes
the event and appends its messages to a bounded buffer, so trading never waits on the
broker. One task (`start()`/`stop()`, or `run()`) drains the buffer in order.

aiomqtt has no automatic reconnect: `run()` is the documented loop around
`async with Client(...)` that catches `MqttError`, with exponential backoff (0.5 s
doubling to 10 s, reset once connected). While the broker is away the buffer keeps
filling; when it is full the oldest QoS-0 message goes first and QoS-1 messages (fills,
RFQ facts, the kill switch) only when no QoS-0 one is left. After a reconnect the
buffer is flushed in the order the desk published.

Topics, under the root (default `blockroute/`), payload = the event's JSON payload:
- `orders/<parent_id>`: every event of a parent order; `orders/rejected` for a rejected
  new order (no parent was created) and for a cancel/replace reject of an unknown order;
- `fills/<symbol>`: child_order_filled;
- `rfq/<rfq_id>`: rfq;
- `decisions/<parent_id>`: decision_recorded;
- `service/kill_switch` (retained): kill_switch; other events without a parent go to
  `service/<type>`;
- `models/<family>/<alias>` (retained): model_alias_changed, each move of a model alias
  (`blockroute models promote|rollback`, the HTTP API, a registered training run);
- `models/<family>/served` (retained): model_served, the service swapped a family's
  models to its new champion (with the seconds the load took), or could not;
- `alerts/drift`: drift_alert, a drift alert raised or cleared (router.drift: features
  outside the training range, calibration, IS against the pre-trade estimate), and
  drift_fallback, the learned models withdrawn or given back; not retained (GET
  /api/drift has the state);

- `models/<family>/shadowed` (retained): model_shadowed, the challenger the service asks
  beside the champion changed (shadow mode), or could not be loaded;
- `service/status` (retained): "online" on each connect, "offline" on a clean stop and,
  as the Last Will, when the connection dies.
An id is one topic level: '%', '/', '+', '#' and NUL in it are percent-encoded (a '/'
in a symbol would otherwise split the level, and '+'/'#' are wildcards that a broker
refuses in a published topic); an empty id becomes '_'.

Delivery: QoS 1 is at least once, so a subscriber may see a fill twice across a
reconnect (a message in flight when the connection died is sent again); `exec_id`
identifies a fill. QoS 0 messages published just before the broker died may be lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import json
import math
import re
import socket
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
import structlog

from router.desk_api import (
    CancelRejected,
    DecisionMade,
    DeskEvent,
    DriftAlertChanged,
    DriftFallbackChanged,
    KillSwitchChanged,
    ModelAliasChanged,
    ModelServed,
    ModelShadowed,
    OrderFilled,
    OrderRejected,
    RfqUpdated,
)

log = structlog.get_logger("blockroute.mqtt")

DEFAULT_ROOT = "blockroute/"
DEFAULT_PORT = 1883
URL_FORM = "mqtt://[user:pass@]host[:port]"
STATUS_ONLINE = b"online"
STATUS_OFFLINE = b"offline"

# QoS per topic. Fills are QoS 1: a position or risk keeper downstream adds them up, and
# a lost fill leaves it wrong for good (duplicates are harmless, `exec_id` tells them
# apart). RFQ facts are QoS 1 too: a quote or a decline is said once and no later
# message repeats it, so a dealer blotter missing one stays wrong; there are a few per
# RFQ. The order topic stays QoS 0: it carries every event of a parent (child orders and
# decisions included), each with the parent's whole current state (cum qty, avg price,
# status), so the next message repairs a lost one, and the authoritative record is FIX
# and the database/REST API; QoS 1 there would cost a broker round trip per event on
# the busiest stream. Decisions are diagnostics, QoS 0. The kill switch and the service
# status are state, QoS 1 and retained so that a late subscriber learns the current one.
# Drift alerts are QoS 1: each is said once (raised, then cleared), and a desk that
# misses one does not learn that its models were withdrawn.
QOS_ORDERS = 0
QOS_FILLS = 1
QOS_RFQ = 1
QOS_DECISIONS = 0
QOS_SERVICE = 1
QOS_ALERTS = 1

_TOPIC_ESCAPES = str.maketrans({"%": "%25", "/": "%2F", "+": "%2B", "#": "%23", "\0": "%00"})
_USERINFO_PASSWORD = re.compile(r"(//[^/@:]*):[^/@]*@")


# --------------------------------------------------------------------------- addresses


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int = DEFAULT_PORT
    username: str | None = None
    password: str | None = None

    @property
    def display(self) -> str:
        """The URL without the password, for logs."""
        user = f"{self.username}@" if self.username is not None else ""
        return f"mqtt://{user}{self.host}:{self.port}"


def _redact(url: str) -> str:
    return _USERINFO_PASSWORD.sub(r"\1:***@", url)


def parse_mqtt_url(url: str) -> BrokerAddress:
    """`mqtt://[user:pass@]host[:port]` (port 1883 by default); ValueError otherwise."""
    shown = _redact(url)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"MQTT URL {shown!r}: {exc}; expected {URL_FORM}") from None
    if parts.scheme != "mqtt":
        what = f"scheme {parts.scheme!r} is not supported" if parts.scheme else "no scheme"
        raise ValueError(f"MQTT URL {shown!r}: {what}; expected {URL_FORM}")
    if not parts.hostname:
        raise ValueError(f"MQTT URL {shown!r}: no host; expected {URL_FORM}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(
            f"MQTT URL {shown!r}: a path or query is not allowed (the topic root is set "
            f"separately); expected {URL_FORM}"
        )
    if port == 0:
        raise ValueError(f"MQTT URL {shown!r}: port 0 is not a broker port")
    return BrokerAddress(
        host=parts.hostname,
        port=port if port is not None else DEFAULT_PORT,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def normalize_root(root: str) -> str:
    """The topic root with its trailing '/' ('' publishes at the top level)."""
    if any(c in root for c in "+#\0"):
        raise ValueError(f"MQTT topic root {root!r}: '+', '#' and NUL are not allowed")
    if root.startswith("$"):
        raise ValueError(f"MQTT topic root {root!r}: topics starting with '$' are the broker's")
    return root if not root or root.endswith("/") else root + "/"


# ---------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool = False


def topic_segment(value: str) -> str:
    """`value` as one valid topic level (see the module docstring)."""
    return value.translate(_TOPIC_ESCAPES) if value else "_"


def _json_default(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    if isinstance(value, set | frozenset):
        return list(value)
    return str(value)


def _finite(value: Any) -> Any:
    """NaN and infinities as null: strict JSON (and JavaScript) has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def encode_payload(payload: dict[str, Any]) -> bytes:
    def dump(obj: Any) -> str:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False, default=_json_default)

    try:
        return dump(payload).encode()
    except ValueError:  # a non-finite float somewhere
        return dump(_finite(payload)).encode()


def _routes(event: DeskEvent, root: str) -> Iterator[tuple[str, int, bool]]:
    """(topic, qos, retain) for each message of `event`."""
    parent = event.parent_id
    if parent is not None:
        yield f"{root}orders/{topic_segment(parent)}", QOS_ORDERS, False
    if isinstance(event, OrderFilled):
        yield f"{root}fills/{topic_segment(event.view.symbol)}", QOS_FILLS, False
    elif isinstance(event, RfqUpdated):
        yield f"{root}rfq/{topic_segment(event.rfq_id)}", QOS_RFQ, False
    elif isinstance(event, DecisionMade) and parent is not None:
        yield f"{root}decisions/{topic_segment(parent)}", QOS_DECISIONS, False
    elif isinstance(event, OrderRejected):
        yield f"{root}orders/rejected", QOS_ORDERS, False
    elif isinstance(event, CancelRejected):
        order = topic_segment(event.order_id) if event.order_id else "rejected"
        yield f"{root}orders/{order}", QOS_ORDERS, False
    elif isinstance(event, KillSwitchChanged):
        yield f"{root}service/kill_switch", QOS_SERVICE, True
    elif isinstance(event, ModelAliasChanged):
        # state, like the kill switch: a late subscriber learns who holds each alias now
        family, alias = topic_segment(event.family), topic_segment(event.alias)
        yield f"{root}models/{family}/{alias}", QOS_SERVICE, True
    elif isinstance(event, ModelServed):
        # state too: what the service serves now (or why it does not serve the champion)
        yield f"{root}models/{topic_segment(event.family)}/served", QOS_SERVICE, True
    elif isinstance(event, DriftAlertChanged | DriftFallbackChanged):
        yield f"{root}alerts/drift", QOS_ALERTS, False

    elif isinstance(event, ModelShadowed):
        # and which challenger it asks beside the champion (shadow mode), if any
        yield f"{root}models/{topic_segment(event.family)}/shadowed", QOS_SERVICE, True
    elif parent is None:
        yield f"{root}service/{topic_segment(event.type)}", QOS_ORDERS, False


def messages_for(event: DeskEvent, root: str = DEFAULT_ROOT) -> list[Message]:
    """The MQTT messages of one desk event (one JSON payload, one or two topics)."""
    payload = encode_payload(event.payload())
    return [Message(topic, payload, qos, retain) for topic, qos, retain in _routes(event, root)]


# ---------------------------------------------------------------------------- buffering


class _Buffer:
    """Messages waiting for the broker, in publish order, holding at most `capacity`.

    Two lanes keyed by a sequence number keep both the global order (pop takes the
    lower head) and an O(1) drop of the oldest QoS-0 message when full."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._qos0: deque[tuple[int, Message]] = deque()
        self._qos1: deque[tuple[int, Message]] = deque()
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._qos0) + len(self._qos1)

    def _lane(self, msg: Message) -> deque[tuple[int, Message]]:
        return self._qos0 if msg.qos == 0 else self._qos1

    def push(self, msg: Message) -> list[Message]:
        """Append; returns the messages dropped to stay within capacity."""
        self._lane(msg).append((next(self._seq), msg))
        return self._trim()

    def push_front(self, item: tuple[int, Message]) -> list[Message]:
        """Put back a popped message (its send failed): it is again the first."""
        self._lane(item[1]).appendleft(item)
        return self._trim()

    def pop(self) -> tuple[int, Message] | None:
        q0, q1 = self._qos0, self._qos1
        if q0 and (not q1 or q0[0][0] < q1[0][0]):
            return q0.popleft()
        return q1.popleft() if q1 else None

    def _trim(self) -> list[Message]:
        dropped: list[Message] = []
        while len(self) > self.capacity:
            lane = self._qos0 or self._qos1
            dropped.append(lane.popleft()[1])
        return dropped


class Backoff:
    """Reconnect delays: `initial`, doubling up to `maximum`; `reset()` once connected."""

    def __init__(self, initial: float, maximum: float) -> None:
        if not 0 < initial <= maximum:
            raise ValueError(
                f"reconnect backoff: need 0 < initial <= maximum, got {initial}, {maximum}"
            )
        self.initial = initial
        self.maximum = maximum
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(delay * 2.0, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = self.initial


async def _until_disconnected(client: aiomqtt.Client) -> None:
    """Raises MqttError when the connection ends: we subscribe to nothing, so the message
    iterator only wakes up for that (aiomqtt's public way to notice a lost broker)."""
    async for _ in client.messages:
        pass


# ---------------------------------------------------------------------------------- bus


class MqttBus:
    """Publishes desk events to an MQTT broker without ever making the desk wait.

    `publish` is the desk listener (`desk.subscribe(bus.publish)`); it must be called on
    the event loop's thread. Counters: `published`, `dropped`, `buffered`, `connected`,
    `reconnects` (also as `metrics()`)."""

    def __init__(
        self,
        url: str,
        root: str = DEFAULT_ROOT,
        max_buffer: int = 10_000,
        client_id: str | None = None,
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 10.0,
        keepalive: int = 30,
        timeout: float = 10.0,
    ) -> None:
        if max_buffer < 1:
            raise ValueError(f"MQTT max_buffer must be at least 1, got {max_buffer}")
        self._address = parse_mqtt_url(url)
        self._root = normalize_root(root)
        self._buffer = _Buffer(max_buffer)
        self._client_id = client_id
        self._backoff = Backoff(backoff_initial, backoff_max)
        self._keepalive = keepalive
        self._timeout = timeout
        self._status_topic = f"{self._root}service/status"
        self._wakeup = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._finished = asyncio.Event()
        self._stopping = False
        self._running = False
        self._task: asyncio.Task[None] | None = None
        self._inflight = False
        self._published = 0
        self._dropped = 0
        self._reconnects = 0
        self._connected = False
        self._ever_connected = False
        self._outage_logged = False
        self._episode_dropped = 0  # drops since the buffer last filled up (0: not dropping)
        self._episode_dropped_qos1 = 0

    # -------------------------------------------------------------------- counters

    @property
    def url(self) -> str:
        return self._address.display

    @property
    def root(self) -> str:
        return self._root

    @property
    def published(self) -> int:
        """Messages the broker took (QoS 1: acknowledged)."""
        return self._published

    @property
    def dropped(self) -> int:
        """Messages thrown away: buffer full, or an event that could not be encoded."""
        return self._dropped

    @property
    def buffered(self) -> int:
        """Messages waiting, the one in flight included."""
        return len(self._buffer) + int(self._inflight)

    @property
    def connected(self) -> int:
        return int(self._connected)

    @property
    def reconnects(self) -> int:
        """Connections made again after the first one."""
        return self._reconnects

    def metrics(self) -> dict[str, float]:
        return {
            "mqtt_published_total": self._published,
            "mqtt_dropped_total": self._dropped,
            "mqtt_buffered": self.buffered,
            "mqtt_connected": self.connected,
            "mqtt_reconnects_total": self._reconnects,
        }

    # ------------------------------------------------------------------ publishing

    def publish(self, event: DeskEvent) -> None:
        """Queue `event`'s messages for the broker; never blocks, never raises."""
        try:
            messages = messages_for(event, self._root)
        except Exception as exc:  # a listener that raises would break the desk's dispatch
            self._dropped += 1
            log.error("mqtt event not encodable, dropped", event=event.type, error=str(exc))
            return
        for msg in messages:
            self._note_drops(self._buffer.push(msg))
        self._wakeup.set()

    def _note_drops(self, dropped: list[Message]) -> None:
        if not dropped:
            return
        if self._episode_dropped == 0:
            log.warning(
                "mqtt buffer full: dropping the oldest QoS-0 messages",
                max_buffer=self._buffer.capacity,
                connected=self._connected,
                broker=self.url,
            )
        n_qos1 = sum(1 for m in dropped if m.qos > 0)
        self._episode_dropped += len(dropped)
        self._episode_dropped_qos1 += n_qos1
        self._dropped += len(dropped)

    def _end_drop_episode(self, force: bool = False) -> None:
        """Log the summary once the buffer has drained to half (hysteresis: no log line
        per message while a fast desk keeps the buffer at the brim)."""
        if self._episode_dropped == 0:
            return
        if not force and len(self._buffer) > self._buffer.capacity // 2:
            return
        log.warning(
            "mqtt buffer drops stopped",
            dropped=self._episode_dropped,
            dropped_qos1=self._episode_dropped_qos1,
            dropped_total=self._dropped,
            buffered=self.buffered,
        )
        self._episode_dropped = 0
        self._episode_dropped_qos1 = 0

    # -------------------------------------------------------------------- lifecycle

    def start(self) -> asyncio.Task[None]:
        """Run the bus in a task of the running loop; `await stop()` ends it."""
        if self._task is not None and not self._task.done():
            raise RuntimeError("the MQTT bus is already running")
        self._stopping = False
        self._stop_requested.clear()
        self._task = asyncio.get_running_loop().create_task(self.run(), name="mqtt-bus")
        return self._task

    async def stop(self, timeout: float = 5.0) -> None:
        """Flush what is buffered if connected, publish "offline", disconnect. Waits at
        most `timeout` seconds; messages still buffered then are lost (logged)."""
        self._stopping = True
        self._stop_requested.set()
        self._wakeup.set()
        task = self._task
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        elif self._running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), timeout)
        self._end_drop_episode(force=True)
        if self.buffered:
            log.warning("mqtt bus stopped with messages not delivered", buffered=self.buffered)

    async def run(self) -> None:
        """Connect, drain, reconnect with backoff; returns once `stop()` is called."""
        self._running = True
        self._finished.clear()
        loop = asyncio.get_running_loop()
        down_since = loop.time()
        try:
            while not self._stopping:
                try:
                    async with self._new_client() as client:
                        self._on_connected(loop.time() - down_since)
                        await self._serve(client)
                except aiomqtt.MqttError as exc:
                    self._on_connection_failed(exc)
                finally:
                    if self._connected:
                        down_since = loop.time()
                    self._connected = False
                if not self._stopping:
                    await self._pause(self._backoff.next())
        finally:
            self._connected = False
            self._running = False
            self._finished.set()

    def _new_client(self) -> aiomqtt.Client:
        address = self._address
        return aiomqtt.Client(
            address.host,
            address.port,
            username=address.username,
            password=address.password,
            identifier=self._client_id,
            will=aiomqtt.Will(self._status_topic, STATUS_OFFLINE, qos=QOS_SERVICE, retain=True),
            keepalive=self._keepalive,
            timeout=self._timeout,
            # Without it Nagle holds a QoS-1 publish that follows a QoS-0 one until the
            # broker's delayed ACK (40 ms): ~90 messages/s instead of thousands.
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        )

    def _on_connected(self, outage_s: float) -> None:
        self._connected = True
        self._backoff.reset()
        if self._ever_connected:
            self._reconnects += 1
            log.info(
                "mqtt reconnected",
                broker=self.url,
                outage_s=round(outage_s, 3),
                buffered=self.buffered,
            )
        else:
            log.info("mqtt connected", broker=self.url, root=self._root)
        self._ever_connected = True
        self._outage_logged = False

    def _on_connection_failed(self, exc: aiomqtt.MqttError) -> None:
        if self._stopping:
            return
        if self._connected:
            log.warning("mqtt connection lost; buffering and reconnecting", error=str(exc))
            self._outage_logged = True
        elif not self._outage_logged:
            log.warning(
                "mqtt broker unreachable; buffering and retrying",
                broker=self.url,
                error=str(exc),
            )
            self._outage_logged = True
        else:
            log.debug("mqtt reconnect failed", error=str(exc))

    async def _pause(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_requested.wait(), delay)

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Drain until stopped; raises MqttError as soon as the connection is gone, even
        while idle, so that `connected` is right and the reconnect starts at once."""
        await client.publish(self._status_topic, STATUS_ONLINE, qos=QOS_SERVICE, retain=True)
        drain = asyncio.ensure_future(self._drain(client))
        gone = asyncio.ensure_future(_until_disconnected(client))
        try:
            await asyncio.wait((drain, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            drain.cancel()
            gone.cancel()
            await asyncio.gather(drain, gone, return_exceptions=True)
        for task in (drain, gone):
            if not task.cancelled() and (error := task.exception()) is not None:
                raise error

    async def _drain(self, client: aiomqtt.Client) -> None:
        while True:
            item = self._buffer.pop()
            if item is None:
                self._end_drop_episode()
                if self._stopping:
                    # A clean DISCONNECT suppresses the Last Will: say it ourselves.
                    await client.publish(
                        self._status_topic, STATUS_OFFLINE, qos=QOS_SERVICE, retain=True
                    )
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            self._inflight = True
            try:
                sent = await self._send(client, item[1])
            except BaseException:  # MqttError or cancelled: send it again after reconnect
                self._note_drops(self._buffer.push_front(item))
                raise
            finally:
                self._inflight = False
            if sent:
                self._published += 1
                self._end_drop_episode()

    async def _send(self, client: aiomqtt.Client, msg: Message) -> bool:
        try:
            await client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
        except ValueError as exc:  # refused by paho (topic or size): retrying cannot help
            self._dropped += 1
            log.error("mqtt message refused, dropped", topic=msg.topic, error=str(exc))
            return False
        return True


async def publish_once(
    url: str, event: DeskEvent, root: str = DEFAULT_ROOT, timeout: float = 5.0
) -> None:
    """Publish one event's messages and disconnect: for a command that runs once (e.g.
    `blockroute models promote --mqtt-url ...`), where the buffering bus is not worth
    starting. Raises aiomqtt.MqttError (or TimeoutError) if the broker does not take
    them within `timeout` seconds."""
    address = parse_mqtt_url(url)
    client = aiomqtt.Client(
        address.host,
        address.port,
        username=address.username,
        password=address.password,
        timeout=timeout,
    )
    async with asyncio.timeout(timeout), client:
        for msg in messages_for(event, normalize_root(root)):
            await client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
