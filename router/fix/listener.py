"""The FIX listener: the socket FIX clients connect to, in front of quickfix.

quickfix 1.16's acceptor binds every interface (it has no bind address), starts a
thread per connection before reading a byte, keeps a connection that never logs on
forever, buffers whatever BodyLength a stranger claims, hangs on a Logon with an empty
field, and accepts messages of any size. So clients never reach it directly: this
listener accepts them on the configured address (asyncio on a thread of its own, no
thread per connection), frames their bytes (router.fix.framing) and relays only whole,
well-framed messages of a bounded size to quickfix, which listens on loopback only.

Before a session exists, a connection is pending: it has `LogonTimeout` to send its
Logon, and only so many may be pending at once (in all, and per address). The first
message must be a well-formed Logon for a configured client, else the connection is
dropped without an answer (there is no session to answer on, as in FIX). The listener
checks the Logon's fields and credentials itself, and the failed-logon throttle; then
it forwards the Logon to quickfix with Password(554) replaced by a one-time token that
carries its verdict, and quickfix's fromAdmin (router.fix.gateway) refuses it with that
verdict as the Logout's Text. A refusal goes through quickfix, not from here, because
only the session knows the sequence numbers a Logout must carry.

After the Logon, frames go on to quickfix as they are; garbled ones are dropped (FIX
ignores them: the MsgSeqNum is not consumed and the client's next message fills the
place). A message quickfix would silently drop although FIX wants an answer gets one:
an oversized message (skipped as it arrives) or one with a field that has no tag
number is answered with a session Reject, and quickfix gets a SequenceReset-GapFill in
its place (so that its MsgSeqNum counts as received, as for a message quickfix rejects
itself); a message without a MsgSeqNum ends the session with a Logout.
"""

from __future__ import annotations

import asyncio
import math
import re
import secrets
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from router.fix.framing import Frame, Framer, encode, split_fields
from router.fix.settings import Credentials, ListenerSettings
from router.fix.wire import format_utc_timestamp, parse_utc_timestamp

log = structlog.get_logger("blockroute.fix.listener")

UPSTREAM_HOST = "127.0.0.1"
_BUSY_WAIT_S = 5.0  # as quickfix: a session still held by a closing connection may free up
_TOKEN_TTL_S = 120.0
_MAX_QUEUED = 1 << 20  # bytes a client may send before quickfix's connection is up
_UNREAD_MESSAGES = 256  # MaxMessageSize times this: what a client may leave unread

# ------------------------------------------------------------------------- the Logon

_NAMES: Mapping[int, str] = {
    34: "MsgSeqNum",
    43: "PossDupFlag",
    49: "SenderCompID",
    50: "SenderSubID",
    52: "SendingTime",
    56: "TargetCompID",
    57: "TargetSubID",
    97: "PossResend",
    98: "EncryptMethod",
    108: "HeartBtInt",
    122: "OrigSendingTime",
    141: "ResetSeqNumFlag",
    142: "SenderLocationID",
    143: "TargetLocationID",
    383: "MaxMessageSize",
    464: "TestMessageIndicator",
    553: "Username",
    554: "Password",
    789: "NextExpectedMsgSeqNum",
}
_LOGON_TAGS = frozenset(_NAMES)
_HEADER_TAGS = frozenset({34, 43, 49, 50, 52, 56, 57, 97, 122, 142, 143})
_FLAGS = (43, 97, 141, 464)
_COUNTS = (383, 789)
_TIMES = (52, 122)
MAX_HEARTBEAT_S = 3600
_DEFAULT_HEARTBEAT = "30"


def _shown(value: str) -> str:
    """A client's value as quoted in a Text or a log line: never more than 40 chars."""
    return repr(value) if len(value) <= 40 else repr(value[:40]) + "..."


def _name(tag: int) -> str:
    return f"{_NAMES[tag]}({tag})" if tag in _NAMES else f"tag {tag}"


@dataclass(frozen=True)
class LogonCheck:
    """What the listener makes of a client's first message.

    `compid` None: not a Logon for a session here; the connection is dropped, `problem`
    says why. Else `problem` None means the fields are fine (the credentials are checked
    next) and `fields` is the Logon to forward, Password(554) left out; a `problem` is
    the Logout's Text.
    """

    compid: str | None
    problem: str | None
    fields: tuple[tuple[int, str], ...] = ()
    username: str | None = None
    password: str | None = None


def check_logon(msg: bytes, sender: str, compids: Collection[str]) -> LogonCheck:
    """Check a framed first message (router.fix.framing's "message") as a FIX 4.4 Logon."""
    pairs = split_fields(msg)[2:-1]  # without BeginString, BodyLength and CheckSum
    if not pairs or pairs[0] != ("35", "A"):
        got = pairs[0][1] if pairs and pairs[0][0] == "35" else "?"
        return LogonCheck(None, f"the first message is not a Logon (MsgType {got})")
    fields: dict[int, str] = {}
    problem = None
    for tag_text, value in pairs[1:]:
        if not tag_text.isdigit():
            problem = problem or f"{_shown(tag_text)} is not a tag number"
            continue
        tag = int(tag_text)
        if tag in fields:
            problem = problem or f"{_name(tag)} appears more than once"
            continue
        fields[tag] = value
    compid = fields.get(49, "")
    if compid not in compids:
        return LogonCheck(
            None, f"SenderCompID(49)={_shown(compid)} is not a client of this service"
        )
    target = fields.get(56)
    if target != sender:
        shown = _shown(target) if target is not None else "missing"
        return LogonCheck(None, f"TargetCompID(56)={shown} is not {sender}")
    problem = problem or _field_problem(fields)
    username = fields.get(553)
    password = fields.pop(554, None)
    header = [(t, v) for t, v in fields.items() if t in _HEADER_TAGS]
    body = [(t, v) for t, v in fields.items() if t not in _HEADER_TAGS]
    return LogonCheck(compid, problem, ((35, "A"), *header, *body), username, password)


def _field_problem(fields: Mapping[int, str]) -> str | None:
    for tag, value in fields.items():
        if tag not in _LOGON_TAGS:
            return f"tag {tag} is not used in a FIX 4.4 Logon"
        if value == "":
            return f"{_name(tag)} is empty"
    for tag in (34, 52, 98, 108):
        if tag not in fields:
            return f"{_name(tag)} is missing"
    if not _positive(fields[34]):
        return f"MsgSeqNum(34) must be a whole number >= 1, got {_shown(fields[34])}"
    if fields[98] != "0":
        return f"EncryptMethod(98)={_shown(fields[98])} is not supported: use 0 (none)"
    beat = fields[108]
    if not (beat.isdigit() and 1 <= int(beat) <= MAX_HEARTBEAT_S):
        return (
            f"HeartBtInt(108) must be whole seconds from 1 to {MAX_HEARTBEAT_S}, got {_shown(beat)}"
        )
    for tag in _TIMES:
        if tag in fields and not _timestamp(fields[tag]):
            return f"{_name(tag)} must be a UTC timestamp YYYYMMDD-HH:MM:SS[.sss]"
    for tag in _FLAGS:
        if tag in fields and fields[tag] not in ("Y", "N"):
            return f"{_name(tag)} must be Y or N, got {_shown(fields[tag])}"
    for tag in _COUNTS:
        if tag in fields and not _positive(fields[tag]):
            return f"{_name(tag)} must be a whole number >= 1, got {_shown(fields[tag])}"
    return None


INVALID_TAG_NUMBER = 0  # SessionRejectReason(373)
REJECT_OTHER = 99
_FIELDS = re.compile(rb"(?:[0-9]+=[^\x01]*\x01)+")
# FIX 4.4's length fields and the data fields they measure (whose values may hold SOH)
_DATA_LENGTHS = frozenset(
    {90, 93, 95, 212, 348, 350, 352, 354, 356, 358, 360, 362, 364, 445, 618, 621}
)


def field_syntax_problem(msg: bytes) -> str | None:
    """Why a framed message is not a run of tag=value fields with numeric tags (quickfix
    would ignore it as if garbled; FIX calls for a Reject: Invalid tag number)."""
    if _FIELDS.fullmatch(msg):
        return None
    pos, n, number = 0, 0, None
    while pos < len(msg):
        n += 1
        eq = msg.find(b"=", pos)
        soh = msg.find(b"\x01", pos)
        if soh == pos:
            return f"field {n} is empty (two field delimiters in a row)"
        tag = msg[pos:eq] if 0 <= eq < soh else msg[pos:soh]
        if eq < 0 or eq > soh or not tag.isdigit():
            return f"field {n} has no tag number: {tag.decode('latin-1')[:20]!r}"
        if number is not None:  # a data field: its length says where it ends
            soh = eq + 1 + number
            number = None
            if msg[soh : soh + 1] != b"\x01":
                return f"field {n} (tag {tag.decode()}) does not end where its length says"
        elif int(tag) in _DATA_LENGTHS:
            value = msg[eq + 1 : soh]
            number = int(value) if value.isdigit() else None
        pos = soh + 1
    return None


def _seq_in(msg: bytes) -> int | None:
    """The MsgSeqNum(34) of a message, None if it has none that is a number >= 1."""
    i = msg.find(b"\x0134=")
    if i < 0:
        return None
    j = msg.find(b"\x01", i + 4)
    text = msg[i + 4 : j if j >= 0 else len(msg)].decode("latin-1")
    return int(text) if _positive(text) else None


def _positive(text: str) -> bool:
    return text.isdigit() and len(text) <= 18 and int(text) >= 1


def _timestamp(text: str) -> bool:
    try:
        parse_utc_timestamp(text)
    except ValueError:
        return False
    return True


def _now_text() -> str:
    return format_utc_timestamp(time.time_ns())


# ------------------------------------------------------------------ throttle, tokens


class LogonThrottle:
    """Failed logons per key ("compid:OMS", "addr:10.0.0.5") in a sliding window; a key
    with `max_failures` failures in the window is refused until the oldest ages out.
    `max_failures` 0: never refused."""

    def __init__(
        self,
        max_failures: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, key: str) -> float | None:
        """Seconds until `key` may try again, or None if it may now."""
        if self.max_failures <= 0:
            return None
        times = self._recent(key)
        if times is None or len(times) < self.max_failures:
            return None
        return max(times[0] + self.window_s - self._clock(), 0.001)

    def failed(self, key: str) -> None:
        if self.max_failures <= 0:
            return
        times = self._recent(key)
        if times is None:
            if len(self._failures) >= self._max_keys:
                self._prune()
            times = self._failures[key] = deque(maxlen=self.max_failures)
        times.append(self._clock())

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def _recent(self, key: str) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        horizon = self._clock() - self.window_s
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def _prune(self) -> None:
        for key in list(self._failures):
            self._recent(key)
        while len(self._failures) >= self._max_keys:  # still full: forget the oldest
            del self._failures[next(iter(self._failures))]


class LogonTokens:
    """One-time tokens that carry the listener's verdict on a Logon to quickfix's
    fromAdmin (another thread) in place of the Password(554). A Logon whose token is
    unknown did not come through the listener."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._verdicts: dict[str, tuple[float, str | None]] = {}

    def issue(self, verdict: str | None) -> str:
        token = secrets.token_hex(16)
        now = time.monotonic()
        with self._lock:
            stale = [t for t, (at, _) in self._verdicts.items() if now - at > _TOKEN_TTL_S]
            for t in stale:
                del self._verdicts[t]
            self._verdicts[token] = (now, verdict)
        return token

    def redeem(self, token: str | None) -> tuple[bool, str | None]:
        """(known, verdict): verdict None means the Logon may go ahead."""
        with self._lock:
            entry = self._verdicts.pop(token or "", None)
        return (False, None) if entry is None else (True, entry[1])


# ----------------------------------------------------------------------- the listener


@dataclass(frozen=True)
class ListenerHooks:
    """What the listener asks of the gateway (called on the listener's thread).

    session_busy(compid): a connection still holds the client's quickfix session;
    expected_seq(compid): the MsgSeqNum quickfix expects next from that client;
    refuse(compid, seq, msg_type, reason, text): answer a message the listener did not
    pass on (a session Reject of MsgSeqNum `seq` with SessionRejectReason `reason`; seq
    None: the message had no MsgSeqNum, and FIX ends the session with a Logout).
    """

    session_busy: Callable[[str], bool]
    expected_seq: Callable[[str], int]
    refuse: Callable[[str, int | None, str, int, str], None]


class _LogLimiter:
    """At most `rate` warnings a second about refused connections: a flood of them
    must not become a flood of log lines."""

    def __init__(self, rate: float = 10.0) -> None:
        self._rate = rate
        self._allowance = rate
        self._last = time.monotonic()
        self.suppressed = 0

    def allow(self) -> bool:
        now = time.monotonic()
        self._allowance = min(self._rate, self._allowance + (now - self._last) * self._rate)
        self._last = now
        if self._allowance >= 1:
            self._allowance -= 1
            return True
        self.suppressed += 1
        return False


class FixListener:
    """The clients' socket: `bind` (synchronous, so a taken port fails the start),
    `serve` once quickfix listens on `upstream_port`, then `stop_accepting` and `close`
    (awaited on the caller's loop).

    It runs on an event loop of its own, in a thread of its own: the gateway's thread
    calls quickfix's send, which blocks while the socket to the listener is full, and
    only the listener empties it (quickfix lets go of the GIL while it waits). Hooks are
    called on the listener's thread.
    """

    def __init__(
        self,
        settings: ListenerSettings,
        *,
        sender: str,
        credentials: Mapping[str, Credentials],
        tokens: LogonTokens,
        hooks: ListenerHooks,
    ) -> None:
        self.settings = settings
        self.sender = sender
        self.credentials = dict(credentials)
        self.tokens = tokens
        self.hooks = hooks
        self.throttle = LogonThrottle(settings.max_failed_logons, settings.failed_logon_window_s)
        self.upstream_port = 0
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._server: asyncio.AbstractServer | None = None
        self._conns: set[_Connection] = set()
        self._pending: dict[_Connection, None] = {}  # oldest first
        self._pending_by_addr: Counter[str] = Counter()
        self._log_limit = _LogLimiter()

    @property
    def pending(self) -> int:
        """Connections that have not logged on yet."""
        return len(self._pending)

    @property
    def connections(self) -> int:
        return len(self._conns)

    def bind(self, port: int) -> int:
        """Bind and listen on the configured host; returns the port (for a port of 0,
        the one the system picked). Raises OSError."""
        host = self.settings.host
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self.port = int(sock.getsockname()[1])
        return self.port

    def serve(self, upstream_port: int) -> None:
        """Start accepting (connections made since `bind` wait in the backlog)."""
        sock = self._sock
        if sock is None:
            raise RuntimeError("bind the FIX listener first")
        self.upstream_port = upstream_port
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self._server = self.loop.run_until_complete(
                    self.loop.create_server(lambda: _Connection(self), sock=sock)
                )
            except BaseException as exc:
                failure.append(exc)
                started.set()
                self.loop.close()
                return
            started.set()
            try:
                self.loop.run_forever()
            finally:
                self.loop.close()

        self._thread = threading.Thread(target=run, name="fix-listener", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self._thread = None
            raise failure[0]

    async def stop_accepting(self) -> None:
        if self._thread is None:
            self.close_now()
            return
        await self._on_own_loop(self._stop_accepting_here)

    async def close(self) -> None:
        """Stop accepting, drop every connection, end the listener's thread."""
        thread = self._thread
        if thread is None:
            self.close_now()
            return
        await self._on_own_loop(self._close_here)
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(thread.join, 5.0)
        self._thread = None

    def close_now(self) -> None:
        """The synchronous close for a start that failed before `serve`."""
        if self._thread is not None:
            return
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if not self.loop.is_closed():
            self.loop.close()

    async def _on_own_loop(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        done = asyncio.run_coroutine_threadsafe(fn(), self.loop)
        await asyncio.wrap_future(done)

    async def _stop_accepting_here(self) -> None:
        if self._server is not None:
            self._server.close()
        self._sock = None

    async def _close_here(self) -> None:
        await self._stop_accepting_here()
        for conn in list(self._conns):
            conn.close(abort=True)  # the gateway's Logouts went out before this
        await asyncio.sleep(0)  # let the transports run their connection_lost

    # ------------------------------------------------------------ called by connections

    def admit(self, conn: _Connection) -> str | None:
        """Take a new connection as pending, or say why not. When MaxPendingLogons are
        pending already, the one that has waited longest without sending a Logon makes
        room: a client that logs on sends its Logon at once, so it is never the one
        evicted, and idle connections cannot keep it out."""
        wait = self.throttle.retry_after(f"addr:{conn.addr}")
        if wait is not None:
            return f"too many failed logons from {conn.addr}: refused for {math.ceil(wait)} s"
        s = self.settings
        if self._pending_by_addr[conn.addr] >= s.max_pending_per_address:
            return (
                f"{s.max_pending_per_address} connections from {conn.addr} are already "
                "waiting to log on (MaxPendingLogonsPerAddress)"
            )
        if len(self._pending) >= s.max_pending:
            idle = next((c for c in self._pending if c.state == "waiting"), None)
            if idle is None:
                return f"{s.max_pending} connections are already logging on (MaxPendingLogons)"
            idle.drop(
                f"closed to make room: {s.max_pending} connections were waiting to log on "
                "(MaxPendingLogons) and this one had waited longest",
                count=False,
            )
        self._pending_by_addr[conn.addr] += 1
        self._pending[conn] = None
        self._conns.add(conn)
        return None

    def leave_pending(self, conn: _Connection) -> None:
        self._pending.pop(conn, None)
        self._pending_by_addr[conn.addr] -= 1
        if self._pending_by_addr[conn.addr] <= 0:
            del self._pending_by_addr[conn.addr]

    def forget(self, conn: _Connection) -> None:
        self._conns.discard(conn)

    def refused(self, addr: str, why: str) -> None:
        if self._log_limit.allow():
            suppressed, self._log_limit.suppressed = self._log_limit.suppressed, 0
            log.warning("FIX connection refused", addr=addr, why=why, suppressed=suppressed)

    def verdict(self, check: LogonCheck, addr: str) -> str | None:
        """Why this well-formed Logon is refused (None: it may log on); counts the
        failure against its CompID and its address."""
        compid = check.compid or ""
        why = check.problem
        if why is None:
            wait = self.throttle.retry_after(f"compid:{compid}")
            if wait is not None:
                why = f"too many failed logons for {compid}: try again in {math.ceil(wait)} s"
                self.throttle.failed(f"addr:{addr}")  # not the CompID's: it is locked already
                return why
            creds = self.credentials.get(compid)
            if creds is None:
                why = f"no credentials for {compid}"
            else:
                why = creds.check(check.username, check.password)
        if why is not None:
            self.throttle.failed(f"compid:{compid}")
            self.throttle.failed(f"addr:{addr}")
        return why

    def logged_on(self, conn: _Connection) -> None:
        self.throttle.succeeded(f"compid:{conn.compid}")
        self.throttle.succeeded(f"addr:{conn.addr}")


class _Connection(asyncio.Protocol):
    """One client connection and, once it has sent a Logon, its connection to quickfix.

    States: waiting (for the Logon) -> holding (the client's session is still held by
    another connection) -> forwarded (quickfix has the Logon) -> open (quickfix answered
    with a Logon) -> closed.
    """

    def __init__(self, listener: FixListener) -> None:
        self.l = listener
        self.loop = listener.loop
        self.addr = "?"
        self.compid = ""
        self.state = "waiting"
        self.client: asyncio.Transport | None = None
        self.upstream: asyncio.Transport | None = None
        self.framer = Framer(listener.settings.max_message_size)
        self.framer.wait_for_head = False  # an oversized Logon is dropped at once
        self._pending = False
        self._queue: list[bytes] = []  # for quickfix, before its connection is up
        self._out: list[bytes] = []  # for quickfix, from the read being handled
        self._queued = 0
        self._timer: asyncio.TimerHandle | None = None
        self._garbled = 0

    # ------------------------------------------------------------------ client side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.client = transport
        peer = transport.get_extra_info("peername")
        self.addr = str(peer[0]) if peer else "?"
        why = self.l.admit(self)
        if why is not None:
            self.l.refused(self.addr, why)
            self.state = "closed"
            transport.abort()  # nothing was said: free the socket now
            return
        self._pending = True
        self._timer = self.loop.call_later(self.l.settings.logon_timeout_s, self._timed_out)

    def data_received(self, data: bytes) -> None:
        if self.state == "closed":
            return
        self.framer.feed(data)
        while self.state != "closed":
            frame = self.framer.next()
            if frame is None:
                break
            if self.state == "waiting":
                self._first(frame)
            else:
                self._relay(frame)
        if self._out:  # one write for what one read brought: one system call, not many
            out = b"".join(self._out) if len(self._out) > 1 else self._out[0]
            self._out.clear()
            if self.upstream is not None:
                self.upstream.write(out)
            elif self.state != "closed":
                self._queue.append(out)
                self._queued += len(out)
                if self._queued > _MAX_QUEUED and self.client is not None:
                    self.client.pause_reading()  # until quickfix's connection is up

    def eof_received(self) -> bool | None:
        return False  # close: a FIX client that stops sending is gone

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    # ------------------------------------------------------------------ the Logon

    def _first(self, frame: Frame) -> None:
        if not frame.is_message:
            self.drop(f"first message: {frame.reason}")
            return
        check = check_logon(frame.data, self.l.sender, self.l.credentials)
        if check.compid is None:
            self.drop(check.problem or "not a Logon")
            return
        self.compid = check.compid
        self.framer.wait_for_head = True
        verdict = self.l.verdict(check, self.addr)
        if verdict is not None:
            log.warning("FIX logon refused", compid=self.compid, addr=self.addr, why=verdict)
        self.state = "holding"
        self.loop.create_task(self._forward(check, verdict))

    def _logon(self, check: LogonCheck, verdict: str | None) -> bytes:
        """The Logon quickfix gets: the client's, with a token for a password."""
        if verdict is None:
            return encode([*check.fields, (554, self.l.tokens.issue(None))])
        return self._refusal_logon(verdict)

    def _refusal_logon(self, verdict: str) -> bytes:
        """A Logon quickfix will take to its fromAdmin whatever the client sent, so that
        the client gets a Logout saying why: the client's own MsgSeqNum might be too
        low (quickfix would answer that instead), and a ResetSeqNumFlag must not reset
        a session that is refused."""
        fields = [
            (35, "A"),
            (49, self.compid),
            (56, self.l.sender),
            (34, str(self.l.hooks.expected_seq(self.compid))),
            (52, _now_text()),
            (98, "0"),
            (108, _DEFAULT_HEARTBEAT),
            (554, self.l.tokens.issue(verdict)),
        ]
        return encode(fields)

    async def _forward(self, check: LogonCheck, verdict: str | None) -> None:
        """Connect to quickfix and hand it the Logon (and what came after it), once no
        other connection holds the client's session (quickfix would wait for that
        with a thread; here it costs nothing)."""
        deadline = self.loop.time() + _BUSY_WAIT_S
        while self.l.hooks.session_busy(self.compid):
            if self.state == "closed":
                return
            if self.loop.time() > deadline:
                self.drop(f"{self.compid} is already connected", count=False)
                return
            await asyncio.sleep(0.05)
        if self.state == "closed":
            return
        self._queue.insert(0, self._logon(check, verdict))
        self.state = "forwarded"
        try:
            transport, _ = await self.loop.create_connection(
                lambda: _Upstream(self), UPSTREAM_HOST, self.l.upstream_port
            )
        except OSError as exc:
            log.error("FIX listener cannot reach quickfix", port=self.l.upstream_port, exc=str(exc))
            self.close()
            return
        if self.state == "closed":
            transport.close()
            return
        assert isinstance(transport, asyncio.Transport)
        self.upstream = transport
        for data in self._queue:
            transport.write(data)
        self._queue.clear()
        if self._queued > _MAX_QUEUED and self.client is not None:
            self.client.resume_reading()
        self._queued = 0

    def logged_on(self) -> None:
        """quickfix answered the Logon with a Logon."""
        if self.state != "forwarded":
            return
        self.state = "open"
        self._leave_pending()
        self.l.logged_on(self)

    # ------------------------------------------------------------ after the Logon

    def _relay(self, frame: Frame) -> None:
        if frame.kind == "message":
            if _seq_in(frame.data) is None:
                self._unnumbered(frame)
                return
            problem = field_syntax_problem(frame.data)
            if problem is None:
                self._out.append(frame.data)
            else:
                self._skip(frame.data, INVALID_TAG_NUMBER, problem)
        elif frame.kind == "garbled":
            self._garbled += 1
            if self._garbled <= 10 or self._garbled % 1000 == 0:
                log.warning(
                    "FIX garbled message ignored",
                    compid=self.compid,
                    why=frame.reason,
                    count=self._garbled,
                )
        else:
            self._skip(frame.data, REJECT_OTHER, frame.reason)

    def _unnumbered(self, frame: Frame) -> None:
        """quickfix would drop a message without a usable MsgSeqNum in silence; FIX says
        such a message ends the session (the sender is broken)."""
        fields = dict(split_fields(frame.data))
        text = fields.get("34")
        why = (
            "MsgSeqNum(34) is missing"
            if text is None
            else f"MsgSeqNum(34) must be a whole number >= 1, got {_shown(text)}"
        )
        if self.state != "open":  # no session yet to say it on
            self.drop(f"{why}, before the Logon was answered", count=False)
            return
        log.warning("FIX message without a MsgSeqNum: logging out", compid=self.compid, why=why)
        self.l.hooks.refuse(self.compid, None, fields.get("35", ""), REJECT_OTHER, why)

    def _skip(self, data: bytes, reason: int, text: str) -> None:
        """Answer a message that quickfix does not get (too large, or fields it cannot
        parse) with a session Reject, and put a SequenceReset-GapFill in its place so
        that quickfix counts its MsgSeqNum as received, as for one it rejected itself.
        `data` is the message or, for an oversized one, its first bytes."""
        head = data[: data.rfind(b"\x01") + 1]
        fields = dict(split_fields(head)) if head else {}
        seq = _seq_in(head)
        msg_type = fields.get("35", "")
        log.warning(
            "FIX message rejected by the listener",
            compid=self.compid,
            why=text,
            seq=seq,
            msg_type=msg_type,
        )
        if seq is not None:
            sent = fields.get("52", "")
            sent = sent if _timestamp(sent) else _now_text()
            gap_fill = [
                (35, "4"),
                (49, self.compid),
                (56, self.l.sender),
                (34, str(seq)),
                (52, sent),
                (43, "Y"),
                (122, sent),
                (123, "Y"),
                (36, str(seq + 1)),
            ]
            self._out.append(encode(gap_fill))
        else:
            text = f"{text}; MsgSeqNum(34) not found"
        self.l.hooks.refuse(self.compid, seq, msg_type, reason, text)

    # ------------------------------------------------------------------ the end

    def _timed_out(self) -> None:
        self._timer = None
        if self.state == "closed" or not self._pending:
            return
        limit = self.l.settings.logon_timeout_s
        if self.state == "waiting":
            self.drop(f"no Logon within {limit:g} s (LogonTimeout)")
        else:
            self.drop(f"the Logon was not answered within {limit:g} s", count=False)

    def drop(self, why: str, count: bool = True) -> None:
        if count:
            self.l.throttle.failed(f"addr:{self.addr}")
        self.l.refused(self.addr, why)
        self.close()

    def _leave_pending(self) -> None:
        if self._pending:
            self._pending = False
            self.l.leave_pending(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self, abort: bool = False) -> None:
        """Close both sides; what quickfix said last (a Logout) still reaches the client,
        unless `abort` (a client that does not read would hold the socket open)."""
        if self.state == "closed" and self.client is None:
            return
        self.state = "closed"
        self._leave_pending()
        self.l.forget(self)
        client, self.client = self.client, None
        upstream, self.upstream = self.upstream, None
        if client is not None:
            if abort:
                client.abort()
            else:
                client.close()
        if upstream is not None:
            upstream.close()

    def upstream_lost(self) -> None:
        self.upstream = None
        self.close()


class _Upstream(asyncio.Protocol):
    """The connection to quickfix for one client: everything quickfix sends goes to the
    client as it is."""

    def __init__(self, conn: _Connection) -> None:
        self.conn = conn
        self._head = b""
        self._max_unread = conn.l.settings.max_message_size * _UNREAD_MESSAGES

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if conn.state == "forwarded":
            self._head = (self._head + data)[:64]
            start = self._head.find(b"\x0135=")
            end = self._head.find(b"\x01", start + 1) if start >= 0 else -1
            if end > 0:
                if self._head[start + 4 : end] == b"A":
                    conn.logged_on()
                else:  # quickfix's first word was not a Logon: a refusal
                    conn.state = "refused"
        client = conn.client
        if client is not None:
            client.write(data)
            # quickfix must never wait on a client that does not read: its send would
            # block the thread that called it (the loop's, for reports). The reports stay
            # in quickfix's store for the client's next logon.
            if client.get_write_buffer_size() > self._max_unread:
                log.warning(
                    "FIX client does not read what it is sent: disconnected",
                    compid=conn.compid,
                    addr=conn.addr,
                )
                conn.close(abort=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.upstream_lost()

    def pause_writing(self) -> None:
        if self.conn.client is not None:
            self.conn.client.pause_reading()

    def resume_writing(self) -> None:
        if self.conn.client is not None:
            self.conn.client.resume_reading()
