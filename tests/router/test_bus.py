"""The MQTT bus against real Mosquitto brokers.

The shared broker is BLOCKROUTE_MQTT_URL or mqtt://127.0.0.1:1883 (CI starts one); a
test that needs it fails, never skips, when it is not there. Outage tests start their
own `mosquitto` on a free port and stop and restart it. Every test publishes under its
own topic root, so runs side by side do not see each other's messages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import structlog

from router.bus import Backoff, MqttBus, messages_for, parse_mqtt_url
from router.desk_api import (
    CancelRejected,
    ChildOrderUpdated,
    CxlRejReason,
    DecisionMade,
    DeskEvent,
    KillSwitchChanged,
    OrderAccepted,
    OrderFilled,
    OrderRejected,
    OrderStatus,
    OrdRejReason,
    ParentView,
    RfqUpdated,
)
from router.domain import OrdType, Side

BROKER_ENV = "BLOCKROUTE_MQTT_URL"
DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
REPO = Path(__file__).resolve().parents[2]


def fast_bus(url: str, root: str = "blockroute/", max_buffer: int = 10_000) -> MqttBus:
    """A bus that retries every 0.05-0.2 s, to keep the reconnect tests short."""
    return MqttBus(url, root, max_buffer, backoff_initial=0.05, backoff_max=0.2)


# ----------------------------------------------------------------------------- events


def view(parent_id: str = "P-1", symbol: str = "QDI") -> ParentView:
    return ParentView(
        parent_id=parent_id,
        client="OMS",
        cl_ord_id="C-1",
        orig_cl_ord_id="C-1",
        symbol=symbol,
        side=Side.SELL,
        qty=500_000,
        ord_type=OrdType.MARKET,
        limit_price=None,
        strategy="ml",
        participation=None,
        status=OrderStatus.WORKING,
        start_ns=1,
        end_ns=2,
        filled_qty=0,
        avg_price=0.0,
        arrival_mid=100.0,
        n_children=0,
        updated_ns=1,
    )


def fill(n: int, parent_id: str = "P-1", symbol: str = "QDI") -> OrderFilled:
    return OrderFilled(
        ts_ns=n,
        view=view(parent_id, symbol),
        exec_id=f"E-{n}",
        child_id=f"K-{n}",
        venue="LIT1",
        venue_kind="lit",
        last_qty=100,
        last_px=99.95,
        liquidity="taker",
        fee=0.01,
    )


def child(n: int, parent_id: str = "P-1") -> ChildOrderUpdated:
    return ChildOrderUpdated(
        ts_ns=n, view=view(parent_id), child_id=f"K-{n}", venue="LIT1", what="sent", qty=100
    )


def rejected(n: int = 1) -> OrderRejected:
    return OrderRejected(
        ts_ns=n,
        client="OMS",
        cl_ord_id="C-9",
        symbol="NOPE",
        side="buy",
        qty=10,
        reason=OrdRejReason.UNKNOWN_SYMBOL,
        text="unknown symbol NOPE",
    )


def one_of_each(parent_id: str = "P-1") -> list[DeskEvent]:
    v = view(parent_id)
    return [
        OrderAccepted(ts_ns=1, view=v),
        child(2, parent_id),
        fill(3, parent_id),
        DecisionMade(
            ts_ns=4,
            view=v,
            decision_id="D-1",
            chosen="dark",
            inputs={"spread_bps": 5.0},
            alternatives={"lit": 1.2, "dark": 0.8},
        ),
        RfqUpdated(ts_ns=5, view=v, rfq_id="R-1", what="requested", detail={"dealers": 4}),
        rejected(6),
        KillSwitchChanged(ts_ns=7, engaged=True, reason="test"),
    ]


# ---------------------------------------------------------------------------- brokers


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def broker_url() -> str:
    url = os.environ.get(BROKER_ENV) or DEFAULT_BROKER
    address = parse_mqtt_url(url)
    if not _port_open(address.host, address.port):
        pytest.fail(
            f"no MQTT broker at {address.display}: start one with `mosquitto -d -p "
            f"{address.port}` (Debian/Ubuntu package mosquitto) or set {BROKER_ENV} to a "
            "reachable mqtt://host:port"
        )
    return url


async def _clear_retained(url: str, topics: list[str]) -> None:
    address = parse_mqtt_url(url)
    async with aiomqtt.Client(
        address.host, address.port, username=address.username, password=address.password
    ) as client:
        for topic in topics:  # an empty retained message deletes the retained one
            await client.publish(topic, b"", qos=1, retain=True)


@pytest.fixture
async def root(broker_url: str) -> AsyncIterator[str]:
    root = f"blockroute-test/{uuid.uuid4().hex[:12]}/"
    yield root
    address = parse_mqtt_url(broker_url)
    if _port_open(address.host, address.port):
        await _clear_retained(broker_url, [f"{root}service/status", f"{root}service/kill_switch"])


class Mosquitto:
    """A private broker on a free port that a test may stop and restart. It keeps its
    sessions across a restart (persistence) and queues QoS-0 messages for offline
    persistent subscribers, so a subscriber misses nothing while it reconnects.

    No in-flight quota: when the bus reconnects before the test's subscriber, the broker
    queues the flush for the subscriber's session, and Mosquitto 2.0.11 (Debian 12's)
    then sends only the first 20 queued QoS-1 messages at its return (the default
    quota) and holds the rest back until later traffic, or for good: the QoS-0 ones
    overtake them and the test saw the bus's order broken when it was not (fixes of
    the quota's accounting came in 2.0.13)."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            pytest.fail("mosquitto is not installed (Debian/Ubuntu: apt-get install mosquitto)")
        self.binary = binary
        self.port = _free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            "queue_qos0_messages true\n"
            "max_inflight_messages 0\n"
            f"user {getpass.getuser()}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.workdir / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 5.0
        while not _port_open("127.0.0.1", self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                text = (self.workdir / "mosquitto.log").read_text(errors="replace")
                pytest.fail(f"mosquitto did not start on port {self.port}:\n{text}")
            time.sleep(0.01)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: saves the sessions for the restart
            self.proc.wait(timeout=5)
        self.proc = None


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path)
    broker.start()
    yield broker
    broker.stop()


class Subscriber:
    """Collects every message under `topic_filter` (QoS 1 subscription), reconnecting
    with a persistent session when its broker goes away."""

    def __init__(self, url: str, topic_filter: str) -> None:
        self.address = parse_mqtt_url(url)
        self.topic_filter = topic_filter
        self.client_id = f"test-sub-{uuid.uuid4().hex[:12]}"
        self.messages: list[aiomqtt.Message] = []
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Subscriber:
        self._task = asyncio.create_task(self._collect())
        async with asyncio.timeout(5):
            await self.ready.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _collect(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    self.address.host,
                    self.address.port,
                    identifier=self.client_id,
                    clean_session=False,
                ) as client:
                    await client.subscribe(self.topic_filter, qos=1)
                    self.ready.set()
                    async for message in client.messages:
                        self.messages.append(message)
            except aiomqtt.MqttError:
                self.ready.clear()
                await asyncio.sleep(0.05)

    def on(self, suffix: str, root: str) -> list[aiomqtt.Message]:
        return [m for m in self.messages if m.topic.value == root + suffix]

    async def wait_until(self, done: Callable[[list[aiomqtt.Message]], bool], s: float = 5) -> None:
        async with asyncio.timeout(s):
            while not done(self.messages):
                await asyncio.sleep(0.01)


async def _until(cond: Callable[[], bool], s: float = 5.0) -> None:
    async with asyncio.timeout(s):
        while not cond():
            await asyncio.sleep(0.01)


def payload(m: aiomqtt.Message) -> Any:
    assert isinstance(m.payload, bytes)
    return json.loads(m.payload)


def data_messages(sub: Subscriber, root: str) -> list[tuple[str, Any, int]]:
    """(topic below the root, JSON payload, QoS) of everything but the service status."""
    out = []
    for m in sub.messages:
        topic = m.topic.value.removeprefix(root)
        if topic != "service/status":
            out.append((topic, payload(m), m.qos))
    return out


def expected(events: list[DeskEvent], root: str) -> list[tuple[str, Any, int]]:
    return [
        (m.topic.removeprefix(root), json.loads(m.payload), m.qos)
        for e in events
        for m in messages_for(e, root)
    ]


# ------------------------------------------------------------------- URLs and topics


@pytest.mark.parametrize(
    ("url", "host", "port", "user", "password"),
    [
        ("mqtt://127.0.0.1", "127.0.0.1", 1883, None, None),
        ("mqtt://broker.example:1884/", "broker.example", 1884, None, None),
        ("mqtt://ann:s%40cret@10.0.0.5:2883", "10.0.0.5", 2883, "ann", "s@cret"),
        ("mqtt://[::1]:1883", "::1", 1883, None, None),
    ],
)
def test_url_parsing(
    url: str, host: str, port: int, user: str | None, password: str | None
) -> None:
    a = parse_mqtt_url(url)
    assert (a.host, a.port, a.username, a.password) == (host, port, user, password)
    assert "cret" not in a.display


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("mqtts://h:8883", "scheme 'mqtts' is not supported"),
        ("http://h", "scheme 'http' is not supported"),
        ("127.0.0.1:1883", "expected mqtt://"),
        ("mqtt://", "no host"),
        ("mqtt://h:99999", "out of range"),
        ("mqtt://h:port", "expected mqtt://"),
        ("mqtt://h/topic", "path or query is not allowed"),
        ("mqtt://ann:hunter2@h:0", "port 0"),
    ],
)
def test_bad_url_raises_at_construction_without_the_password(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as info:
        MqttBus(url)
    assert "hunter2" not in str(info.value)


def test_bad_settings_raise() -> None:
    with pytest.raises(ValueError, match="max_buffer"):
        MqttBus(DEFAULT_BROKER, max_buffer=0)
    with pytest.raises(ValueError, match="'#'"):
        MqttBus(DEFAULT_BROKER, root="blockroute/#")
    with pytest.raises(ValueError, match="backoff"):
        MqttBus(DEFAULT_BROKER, backoff_initial=2.0, backoff_max=1.0)


def test_topics_qos_and_retain_of_each_event() -> None:
    got = [(m.topic, m.qos, m.retain) for e in one_of_each("P-1") for m in messages_for(e)]
    assert got == [
        ("blockroute/orders/P-1", 0, False),
        ("blockroute/orders/P-1", 0, False),
        ("blockroute/orders/P-1", 0, False),
        ("blockroute/fills/QDI", 1, False),
        ("blockroute/orders/P-1", 0, False),
        ("blockroute/decisions/P-1", 0, False),
        ("blockroute/orders/P-1", 0, False),
        ("blockroute/rfq/R-1", 1, False),
        ("blockroute/orders/rejected", 0, False),
        ("blockroute/service/kill_switch", 1, True),
    ]
    unknown = CancelRejected(
        ts_ns=1,
        client="OMS",
        cl_ord_id="X",
        orig_cl_ord_id="Y",
        order_id=None,
        status=None,
        reason=CxlRejReason.UNKNOWN_ORDER,
        response_to="cancel",
        text="unknown order",
    )
    assert [m.topic for m in messages_for(unknown, "r/")] == ["r/orders/rejected"]


def test_shadow_mode_on_the_bus() -> None:
    """The challenger a service asks (retained, per family), and a decision's
    challengers' answers in its payload only when it has some."""
    from router.desk_api import ModelShadowed

    shadowed = ModelShadowed(1, "fill", None, 2, True, 0.02)
    ((topic, qos, retain, payload),) = [
        (m.topic, m.qos, m.retain, json.loads(m.payload)) for m in messages_for(shadowed, "b/")
    ]
    assert (topic, qos, retain) == ("b/models/fill/shadowed", 1, True)
    assert payload["type"] == "model_shadowed" and payload["to_version"] == 2
    plain = next(e for e in one_of_each() if isinstance(e, DecisionMade))
    assert "shadow" not in json.loads(messages_for(plain)[-1].payload)
    answer = {"agree": False, "champion": {"action": 0.0}, "challenger": {"action": 0.5}}
    with_shadow = dataclasses.replace(plain, shadow={"slicer": answer})
    decision_message = messages_for(with_shadow)[-1]
    assert decision_message.topic == "blockroute/decisions/P-1"
    assert json.loads(decision_message.payload)["shadow"] == {"slicer": answer}


def test_ids_become_one_valid_topic_level() -> None:
    event = fill(1, parent_id="P/1+#", symbol="XS 12/34")
    topics = [m.topic for m in messages_for(event, "b/")]
    assert topics == ["b/orders/P%2F1%2B%23", "b/fills/XS 12%2F34"]
    assert messages_for(fill(1, parent_id=""), "b/")[0].topic == "b/orders/_"


def test_payload_is_the_events_json_and_stays_strict_json() -> None:
    event = fill(7)
    assert json.loads(messages_for(event)[0].payload) == event.payload()
    odd = DecisionMade(
        ts_ns=1,
        view=view(),
        decision_id="D",
        chosen="lit",
        inputs={"edge": math.nan},
        alternatives={"dark": math.inf},
    )
    raw = messages_for(odd)[0].payload
    assert b"NaN" not in raw and b"Infinity" not in raw
    body = json.loads(raw)
    assert body["inputs"] == {"edge": None} and body["alternatives"] == {"dark": None}


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    backoff = Backoff(0.5, 10.0)
    assert [backoff.next() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    backoff.reset()
    assert backoff.next() == 0.5


async def test_bound_drops_oldest_qos0_first_and_logs_once() -> None:
    bus = MqttBus(f"mqtt://127.0.0.1:{_free_port()}", root="t/", max_buffer=4)
    with structlog.testing.capture_logs() as logs:
        for n in range(3):
            bus.publish(fill(n))  # orders (QoS 0) + fills (QoS 1): 6 messages
    # 6 messages for 4 places: the order copies of fills 0 and 1 went, the fills stay
    assert (bus.dropped, bus.buffered, bus.published, bus.connected) == (2, 4, 0, 0)
    bus.publish(child(9))  # QoS 0 and the buffer full of newer messages: oldest goes
    assert (bus.dropped, bus.buffered) == (3, 4)
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["event"] for e in warnings] == [
        "mqtt buffer full: dropping the oldest QoS-0 messages"
    ]


# ------------------------------------------------------------------ the shared broker


async def test_delivers_every_topic_with_its_payload_and_qos(broker_url: str, root: str) -> None:
    events = one_of_each(f"P-{uuid.uuid4().hex[:6]}")
    async with Subscriber(broker_url, root + "#") as sub:
        bus = MqttBus(broker_url, root=root)
        bus.start()
        try:
            await _until(lambda: bus.connected == 1)
            for event in events:
                bus.publish(event)
            want = expected(events, root)
            await sub.wait_until(lambda _: len(data_messages(sub, root)) >= len(want))
            assert data_messages(sub, root) == want
            assert {t: q for t, _, q in want}["fills/QDI"] == 1
            assert [m.payload for m in sub.on("service/status", root)] == [b"online"]
            assert (bus.published, bus.buffered, bus.dropped) == (len(want), 0, 0)
            # a late subscriber learns the state from the retained messages
            async with Subscriber(broker_url, root + "service/#") as late:
                await late.wait_until(lambda ms: len(ms) >= 2)
                retained = {m.topic.value.removeprefix(root): m for m in late.messages}
                assert retained["service/status"].payload == b"online"
                assert retained["service/status"].retain
                assert payload(retained["service/kill_switch"])["engaged"] is True
        finally:
            await bus.stop()
        await sub.wait_until(lambda _: len(sub.on("service/status", root)) == 2)
        assert sub.on("service/status", root)[-1].payload == b"offline"
    assert bus.connected == 0


async def test_buffer_overflow_keeps_fills_and_logs_a_summary(broker_url: str, root: str) -> None:
    async with Subscriber(broker_url, root + "#") as sub:
        bus = MqttBus(broker_url, root=root, max_buffer=5)
        events: list[DeskEvent] = [child(1), fill(2), child(3), fill(4), child(5), fill(6)]
        with structlog.testing.capture_logs() as logs:
            for event in events:
                bus.publish(event)  # not started yet: everything waits in the buffer
            bus.start()
            try:
                # 9 messages for 5 places: c1, f2.orders, c3, f4.orders dropped, oldest first
                f2, f4, f6 = (expected([fill(n)], root) for n in (2, 4, 6))
                want = [f2[1], f4[1], expected([child(5)], root)[0], f6[0], f6[1]]
                await sub.wait_until(lambda _: len(data_messages(sub, root)) >= 5)
            finally:
                await bus.stop()
        assert data_messages(sub, root) == want
        assert (bus.dropped, bus.published, bus.buffered) == (4, 5, 0)
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["event"] for e in warnings] == [
        "mqtt buffer full: dropping the oldest QoS-0 messages",
        "mqtt buffer drops stopped",
    ]
    assert warnings[1]["dropped"] == 4 and warnings[1]["dropped_qos1"] == 0


async def test_last_will_says_offline_when_the_process_dies(broker_url: str, root: str) -> None:
    script = (
        "import asyncio, sys\n"
        "from router.bus import MqttBus\n"
        "async def main():\n"
        "    bus = MqttBus(sys.argv[1], root=sys.argv[2])\n"
        "    bus.start()\n"
        "    while not bus.connected:\n"
        "        await asyncio.sleep(0.01)\n"
        "    print('connected', flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    async with Subscriber(broker_url, root + "service/status") as sub:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, broker_url, root, env=env, stdout=subprocess.PIPE
        )
        try:
            assert proc.stdout is not None
            async with asyncio.timeout(10):  # structlog's default also writes here
                while (line := await proc.stdout.readline()).strip() != b"connected":
                    assert line, "the publishing process ended before it connected"
            await sub.wait_until(lambda ms: [m.payload for m in ms] == [b"online"])
            proc.kill()  # no DISCONNECT: the broker publishes the will
            await sub.wait_until(lambda ms: len(ms) == 2, s=5)
            assert sub.messages[-1].payload == b"offline"
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()


# --------------------------------------------------------------- a broker that fails


async def test_broker_down_buffers_without_blocking_then_flushes_in_order(
    own_broker: Mosquitto,
) -> None:
    root = "blockroute/"  # the real names: this broker is the test's own
    async with Subscriber(own_broker.url, root + "#") as sub:
        bus = fast_bus(own_broker.url, root)
        with structlog.testing.capture_logs() as logs:
            bus.start()
            try:
                await _until(lambda: bus.connected == 1)
                before = [child(1), fill(2)]
                for event in before:
                    bus.publish(event)
                await sub.wait_until(lambda _: len(data_messages(sub, root)) == 3)

                own_broker.stop()
                await _until(lambda: bus.connected == 0)  # noticed while idle
                during: list[DeskEvent] = [child(n) if n % 3 else fill(n) for n in range(3, 203)]
                t0 = time.perf_counter()
                for event in during:
                    bus.publish(event)
                publish_s = time.perf_counter() - t0
                await asyncio.sleep(0.3)  # a few reconnects fail meanwhile
                assert bus.buffered == len(expected(during, root)) and bus.connected == 0

                own_broker.start()  # same port
                want = expected(before + during, root)
                await sub.wait_until(lambda _: len(data_messages(sub, root)) >= len(want))
                got = data_messages(sub, root)
                assert got == want
                assert [q for t, _, q in got if t.startswith("fills/")] == [1] * 68
                assert (bus.connected, bus.reconnects, bus.dropped, bus.buffered) == (1, 1, 0, 0)
                assert bus.published == len(want)
            finally:
                await bus.stop()
    assert publish_s < 0.5, f"publishing 200 events while the broker was down took {publish_s}s"
    # the loss is a warning; the info lines (connected, reconnected) may be filtered out
    # by a log level an earlier test configured, and the counters above already say them
    said = [e["event"] for e in logs if e["log_level"] == "warning"]
    assert said == ["mqtt connection lost; buffering and reconnecting"]


async def test_stop_is_prompt_when_the_broker_never_answers() -> None:
    bus = fast_bus(f"mqtt://127.0.0.1:{_free_port()}")
    with structlog.testing.capture_logs() as logs:
        bus.start()
        bus.publish(fill(1))
        await asyncio.sleep(0.5)  # several failed attempts
        t0 = time.perf_counter()
        await bus.stop(timeout=2.0)
        stop_s = time.perf_counter() - t0
    assert stop_s < 0.5
    assert (bus.connected, bus.published, bus.buffered, bus.reconnects) == (0, 0, 2, 0)
    events = [e["event"] for e in logs if e["log_level"] == "warning"]
    assert events == [
        "mqtt broker unreachable; buffering and retrying",
        "mqtt bus stopped with messages not delivered",
    ]
