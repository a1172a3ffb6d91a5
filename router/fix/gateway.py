"""The FIX 4.4 acceptor of `blockroute serve`: quickfix sessions in, the desk's events out.

Clients connect to the FIX listener (router.fix.listener) on the configured address; it
checks their Logon and limits, and relays well-framed messages to quickfix, which
listens on a loopback port of its own. The listener's verdict on a Logon reaches
`fromAdmin` as a one-time token in Password(554); quickfix sends the refusal's Logout.

The acceptor is quickfix's ThreadedSocketAcceptor (a thread per connection): stopping
quickfix's single-threaded SocketAcceptor while its thread is busy can crash the
process (its server object is closed from one thread and deleted by the other).

Threads: quickfix calls the `_Callbacks` application on its own threads. A callback
copies what it needs (the message as text, the client's CompID), hands it to the asyncio
loop with `call_soon_threadsafe` and returns; it keeps no quickfix object and never
waits. Everything else (parsing, desk calls, sending) runs on the loop thread; quickfix
allows `Session.sendToTarget` from there. A Python exception escaping a callback would
end the process (quickfix's binding calls exit), so each callback catches everything.

Reports: ExecutionReports and OrderCancelRejects come only from the desk's event
stream, one per fact; a desk call's return value or exception is never reported (the
desk publishes OrderRejected and CancelRejected itself). What the gateway answers on its
own: fields the desk cannot use (ExecType 8, or an OrderCancelReject for F/G), status
requests (ExecType I), PossResends of known orders (ExecType I) and message types it
does not handle (BusinessMessageReject).

Exactly once across a crash: ExecIDs are deterministic (router.fix.wire) and `start`
runs `reconcile`, which rebuilds from the desk the reports each client's orders should
have had and sends those whose ExecID the session's store and the sent ledger do not
hold. quickfix persists every message before it sends it, and keeps messages sent while
a client is logged out for its resend request after the next logon.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
import time
from collections.abc import Callable, Mapping
from typing import Any

import quickfix as fix
import structlog
from prometheus_client import CollectorRegistry

from router.desk_api import (
    CancelRejected,
    DeskError,
    DeskEvent,
    DeskPort,
    ParentView,
)
from router.fix import wire
from router.fix.ledger import SentLedger, exec_ids_in_store, ledger_path
from router.fix.listener import UPSTREAM_HOST, FixListener, ListenerHooks, LogonTokens
from router.fix.orders import OrderHandlers
from router.fix.settings import BEGIN_STRING, GatewaySettings
from router.telemetry import FixMetrics

log = structlog.get_logger("blockroute.fix")

_LOGON_MARK = f"{wire.SOH}35={wire.LOGON}{wire.SOH}"
# quickfix's acceptor opens its listening threads from a thread of its own after start()
# returns; a stop before that leaves the port bound. Stay up at least this long.
_MIN_UP_S = 0.2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def _listening() -> dict[int, tuple[str, int]]:
    """This process's listening sockets: descriptor -> (host, port).

    Only sockets are duplicated to be asked. Closing a duplicate of a file's descriptor
    releases every POSIX record lock that the process holds on that file (fcntl's
    rule, whichever descriptor took them): duplicating the journal's descriptors here
    dropped SQLite's locks on the database and its wal-index, so that the next process
    to open the journal (`train --from-journal`, a report) found nobody holding it,
    reset the wal-index under the service, and the service died of SIGBUS on its next
    commit."""
    out = {}
    for name in os.listdir("/dev/fd"):
        try:
            fd = int(name)
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue  # fstat opens nothing: the file's locks stay
            copy = os.dup(fd)
        except (OSError, ValueError):
            continue  # already gone
        try:
            probe = socket.socket(fileno=copy)
        except OSError:
            os.close(copy)
            continue
        with probe:
            try:
                if probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                    host, port = probe.getsockname()[:2]
                    out[int(name)] = (str(host), int(port))
            except (OSError, ValueError, TypeError):
                continue
    return out


def _listening_fd(port: int) -> int | None:
    """This process's descriptor of the socket listening on every interface at `port`."""
    for fd, (host, bound) in _listening().items():
        if bound == port and host in ("0.0.0.0", "::"):
            return fd
    return None


def _confine_to_loopback(port: int) -> int:
    """Move quickfix's listening socket from every interface to loopback; returns the
    port it listens on now.

    quickfix 1.16 binds its acceptor to INADDR_ANY with no setting to change that, and
    a stranger's connection to it costs a thread before a byte is read. Its accept
    thread calls accept() on the descriptor number each time, so a loopback socket put
    in that descriptor's place (dup2) is what it accepts from next; one connection to
    the old port wakes an accept() already blocked on the old socket, which then closes.
    """
    fd = _listening_fd(port)
    if fd is None:
        found = sorted(set(_listening().values()))
        raise FixGatewayError(
            f"quickfix's listening socket on port {port} was not found (listening: {found})"
        )
    with socket.socket(fileno=os.dup(fd)) as old:
        nodelay = old.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as inner:
        inner.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        inner.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, nodelay)
        inner.bind((UPSTREAM_HOST, 0))
        inner.listen(64)
        os.dup2(inner.fileno(), fd, inheritable=False)
        moved = int(inner.getsockname()[1])
    with contextlib.suppress(OSError), socket.create_connection((UPSTREAM_HOST, port), 1.0):
        pass
    return moved


class FixGatewayError(RuntimeError):
    """The acceptor could not start (port taken, unreadable dictionary, bad store path)."""


class _Callbacks(fix.Application):
    """quickfix's Application: runs on quickfix's threads, hands everything to the loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        compid_of: Mapping[str, str],
        tokens: LogonTokens,
        max_message_size: int,
        on_app: Callable[[str, str, float], None],
        on_logon: Callable[[str, bool], None],
    ) -> None:
        super().__init__()
        self._loop = loop
        self._compid_of = dict(compid_of)  # SessionID text -> client CompID
        self._tokens = tokens
        self._max_message_size = str(max_message_size)
        self._on_app = on_app
        self._on_logon = on_logon

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: the service is going away
            self._loop.call_soon_threadsafe(fn, *args)

    def _compid(self, session_id: Any) -> str:
        text = session_id.toString()
        return self._compid_of.get(text) or text.rpartition("->")[2]

    def onCreate(self, session_id: Any) -> None:
        pass

    def onLogon(self, session_id: Any) -> None:
        try:
            self._post(self._on_logon, self._compid(session_id), True)
        except Exception:
            log.exception("FIX onLogon callback failed")

    def onLogout(self, session_id: Any) -> None:
        try:
            self._post(self._on_logon, self._compid(session_id), False)
        except Exception:
            log.exception("FIX onLogout callback failed")

    def toAdmin(self, message: Any, session_id: Any) -> None:
        try:  # the Logon that answers a client's tells it the listener's size limit
            if message.getHeader().getField(wire.MSG_TYPE) == wire.LOGON:
                message.setField(wire.MAX_MESSAGE_SIZE, self._max_message_size)
        except Exception:
            log.exception("FIX toAdmin callback failed")

    def toApp(self, message: Any, session_id: Any) -> None:
        pass

    def fromAdmin(self, message: Any, session_id: Any) -> None:
        why = self._logon_refusal(message, session_id)
        if why is not None:
            raise fix.RejectLogon(why)  # quickfix answers with a Logout carrying `why`

    def _logon_refusal(self, message: Any, session_id: Any) -> str | None:
        """Why this Logon is refused (None: accepted, or not a Logon). The listener
        checked it and put its verdict's token in Password(554)."""
        try:
            raw = message.toString()
            if _LOGON_MARK not in raw:
                return None
            known, why = self._tokens.redeem(wire.parse_fields(raw).get(wire.PASSWORD))
            if not known:
                log.warning("FIX logon without the listener's token", session=session_id)
                return "the Logon did not come through blockroute's FIX listener"
            return why
        except Exception:
            log.exception("FIX logon check failed")
            return "logon could not be checked"

    def fromApp(self, message: Any, session_id: Any) -> None:
        try:
            text = message.toString()
            self._post(self._on_app, self._compid(session_id), text, time.perf_counter())
        except Exception:
            log.exception("FIX message could not be handed to the service")


class FixGateway:
    """The acceptor and its bridge to the desk. Construct and call every method on the
    loop's thread: `start()` (binds the port, reconciles, subscribes to the desk),
    `await stop()` (logs every client out, then closes). Its metrics go to `registry`
    (the service's; default: one of its own), as `metrics`."""

    def __init__(
        self,
        desk: DeskPort,
        settings: GatewaySettings,
        loop: asyncio.AbstractEventLoop,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._desk = desk
        self.metrics = FixMetrics(registry if registry is not None else CollectorRegistry())
        self._settings = settings
        self._loop = loop
        self._sender = settings.acceptor.sender_comp_id
        self._session_ids = {
            c: fix.SessionID(BEGIN_STRING, self._sender, c) for c in settings.acceptor.compids
        }
        self._ledgers = {
            c: SentLedger(ledger_path(settings.store_path, self._sender, c))
            for c in settings.acceptor.compids
        }
        self._acceptor: Any = None
        self._listener: FixListener | None = None
        self._tokens = LogonTokens()
        self._started_at = 0.0
        self._port = settings.port if settings.port is not None else settings.acceptor.port
        self._quickfix_port = 0
        self._keep: list[Any] = []  # quickfix objects that must outlive the acceptor
        self._unsubscribe: Callable[[], None] | None = None
        self.logged_on: set[str] = set()
        self._disabled: set[str] = set()  # logged out by the gateway: see _session_busy
        self._handlers = OrderHandlers(desk, self._send).by_msg_type()

    @property
    def port(self) -> int:
        """The port it listens on (after `start`, the one picked for a configured 0)."""
        return self._port

    @property
    def listener(self) -> FixListener | None:
        """The clients' socket (while running)."""
        return self._listener

    @property
    def running(self) -> bool:
        return self._acceptor is not None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._acceptor is not None:
            raise RuntimeError("the FIX gateway is already running")
        taken = [
            str(sid) for sid in self._session_ids.values() if fix.Session.doesSessionExist(sid)
        ]
        if taken:  # quickfix keeps one session per id per process
            raise FixGatewayError(f"FIX session {taken[0]} is already served in this process")
        limits = self._settings.listener
        listener = FixListener(
            limits,
            sender=self._sender,
            credentials=self._settings.credentials,
            tokens=self._tokens,
            hooks=ListenerHooks(self._session_busy, self._expected_seq, self._post_refuse),
        )
        try:
            self._port = listener.bind(self._port)
        except OSError as exc:
            listener.close_now()
            raise FixGatewayError(
                f"FIX listener on {limits.host} port {self._port} did not start: {exc}"
            ) from exc
        try:
            self._start_quickfix(limits.max_message_size)
            listener.serve(self._quickfix_port)
        except BaseException:
            listener.close_now()
            self._abort_start()
            raise
        self._listener = listener
        log.info(
            "FIX acceptor started",
            host=limits.host,
            port=self.port,
            sender=self._sender,
            clients=list(self._session_ids),
            store=str(self._settings.store_path),
        )

    def _start_quickfix(self, max_message_size: int) -> None:
        self._quickfix_port = _free_port()
        self._settings.store_path.mkdir(parents=True, exist_ok=True)
        app = _Callbacks(
            self._loop,
            {sid.toString(): c for c, sid in self._session_ids.items()},
            self._tokens,
            max_message_size,
            self._on_app,
            self._on_logon,
        )
        acceptor: Any = None
        try:
            settings = self._quickfix_settings()
            store = fix.FileStoreFactory(settings)
            if self._settings.log_path is not None:
                self._settings.log_path.mkdir(parents=True, exist_ok=True)
                logs = fix.FileLogFactory(settings)
                acceptor = fix.ThreadedSocketAcceptor(app, store, settings, logs)
                self._keep = [settings, app, store, logs]
            else:
                acceptor = fix.ThreadedSocketAcceptor(app, store, settings)
                self._keep = [settings, app, store]
            acceptor.start()
        except (fix.ConfigError, fix.RuntimeError) as exc:
            acceptor = None  # the traceback keeps this frame: free quickfix's sessions now
            self._keep = []
            raise FixGatewayError(
                f"FIX acceptor on port {self._quickfix_port} did not start: {exc}"
            ) from exc
        self._acceptor = acceptor
        self._started_at = self._loop.time()
        # synchronous from here on: no desk event can slip between the check and the
        # subscription, as both run on this thread
        self._quickfix_port = _confine_to_loopback(self._quickfix_port)
        self.reconcile()
        self._unsubscribe = self._desk.subscribe(self._on_event)

    def _abort_start(self) -> None:
        """Undo a start that failed half way: nothing is left running."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._acceptor is not None:
            time.sleep(_MIN_UP_S)  # a rare failure path: blocking the loop briefly is fine
            self._acceptor.stop(True)
            self._acceptor = None
        self._keep = []

    async def stop(self, timeout: float = 5.0) -> None:
        """Log every client out (waiting up to `timeout` s for their Logout), then close."""
        if self._acceptor is None:
            return
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._listener is not None:
            await self._listener.stop_accepting()
        await asyncio.sleep(max(0.0, self._started_at + _MIN_UP_S - self._loop.time()))
        sessions = [fix.Session.lookupSession(sid) for sid in self._session_ids.values()]
        sessions = [s for s in sessions if s is not None]
        for s in sessions:
            if s.isLoggedOn():
                s.logout("blockroute is shutting down")
        deadline = self._loop.time() + timeout
        while any(s.isLoggedOn() for s in sessions) and self._loop.time() < deadline:
            await asyncio.sleep(0.02)
        for s in sessions:
            if s.isLoggedOn():  # no Logout came back: drop the connection (else stop spins)
                s.disconnect()
        self._acceptor.stop(True)
        self._acceptor = None
        self._keep = []
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        self.logged_on.clear()
        for ledger in self._ledgers.values():
            ledger.close()
        log.info("FIX acceptor stopped")

    def _quickfix_settings(self) -> Any:
        settings = fix.SessionSettings()
        defaults = fix.Dictionary()
        values = {
            **self._settings.quickfix_defaults(),
            "SocketAcceptPort": str(self._quickfix_port),
        }
        for key, value in values.items():
            defaults.setString(key, value)
        settings.set(defaults)
        for values in self._settings.quickfix_sessions():
            d = fix.Dictionary()
            for key, value in values.items():
                d.setString(key, value)
            settings.set(self._session_ids[values["TargetCompID"]], d)
        return settings

    # ------------------------------------------------------------ the listener's hooks

    def _session_busy(self, compid: str) -> bool:
        """Whether a connection still holds the session. Once none does, a session the
        gateway logged out is enabled again, here, just before the next Logon reaches
        quickfix: enabling it any sooner could cancel a Logout not sent yet."""
        sid = self._session_ids[compid]
        if fix.Session.isSessionRegistered(sid):
            return True
        if compid in self._disabled:
            self._disabled.discard(compid)
            session = fix.Session.lookupSession(sid)
            if session is not None:
                session.logon()  # an acceptor's logon() only enables the session
        return False

    def _expected_seq(self, compid: str) -> int:
        session = fix.Session.lookupSession(self._session_ids[compid])
        return int(session.getExpectedTargetNum()) if session is not None else 1

    def _post_refuse(
        self, compid: str, seq: int | None, msg_type: str, reason: int, text: str
    ) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: the service is going away
            self._loop.call_soon_threadsafe(
                self._refuse_message, compid, seq, msg_type, reason, text
            )

    def _refuse_message(
        self, compid: str, seq: int | None, msg_type: str, reason: int, text: str
    ) -> None:
        """A message the listener did not pass on: a session Reject names it (the
        listener told quickfix its MsgSeqNum is taken); without a MsgSeqNum to name, the
        session cannot go on: a Logout says why."""
        if seq is not None:
            self._send(compid, wire.session_reject(seq, msg_type, reason, text))
            return
        session = fix.Session.lookupSession(self._session_ids[compid])
        if session is not None:
            # this also disables the session: quickfix would refuse every later Logon
            # (see `_session_busy`)
            self._disabled.add(compid)
            session.logout(text)

    # ---------------------------------------------------------------- reconcile

    def sent_exec_ids(self, compid: str) -> set[str]:
        """ExecIDs this client already has: in the session's store or the sent ledger."""
        store = exec_ids_in_store(self._settings.store_path, self._sender, compid)
        return store | self._ledgers[compid].read()

    def reconcile(self) -> int:
        """Send every ExecutionReport a FIX client's orders should have had and did not
        get (a crash between the desk's commit and the send), oldest order first.
        Returns how many were sent. Needs the acceptor started (sessions exist)."""
        sent = {c: self.sent_exec_ids(c) for c in self._session_ids}
        n = 0
        for view in reversed(self._desk.parents()):  # parents() is newest first
            have = sent.get(view.client)
            if have is None:
                continue  # "api" or a client no longer configured
            for out in wire.expected_reports(view, self._desk.fills(view.parent_id)):
                if out.exec_id not in have and self._send(view.client, out):
                    n += 1
        if n:
            log.warning("FIX reports sent after a restart", count=n)
        return n

    # ------------------------------------------------------------------ inbound

    def _on_logon(self, compid: str, on: bool) -> None:
        if on:
            self.logged_on.add(compid)
            log.info("FIX client logged on", compid=compid)
        else:
            self.logged_on.discard(compid)
            log.info("FIX client logged out", compid=compid)
        self.metrics.clients_logged_on(len(self.logged_on))

    def _on_app(self, compid: str, raw: str, received_at: float) -> None:
        if self._acceptor is None:
            log.warning("FIX message after the gateway stopped, dropped", compid=compid)
            return
        fields = wire.parse_fields(raw)
        msg_type = fields.get(wire.MSG_TYPE, "")
        self.metrics.received(msg_type)
        if msg_type == wire.NEW_ORDER_SINGLE:
            self.metrics.order_received((compid, fields.get(wire.CL_ORD_ID, "")), received_at)
        handler = self._handlers.get(msg_type)
        try:
            if handler is None:
                text = f"MsgType {msg_type} is not supported by blockroute (D, F, G, H are)"
                self._send(compid, wire.business_reject(fields, text))
            else:
                handler(compid, fields)
        except Exception:
            log.exception("FIX message failed", compid=compid, msg_type=msg_type)

    # ----------------------------------------------------------------- outbound

    def _on_event(self, event: DeskEvent) -> None:
        try:
            client = wire.event_client(event)
            if client is None or client not in self._session_ids:
                return  # "api" orders and events about no client are not FIX's
            view: ParentView | None = None
            if isinstance(event, CancelRejected) and event.order_id:
                try:
                    view = self._desk.parent(event.order_id)
                except DeskError:
                    view = None
            out = wire.report_for_event(event, view)
            if out is not None:
                self._send(client, out)
        except Exception:  # a listener must not break the desk's publishing
            log.exception("FIX report failed", event=event.type)

    def _send(self, compid: str, out: wire.Outbound) -> bool:
        """Send (or, while the client is logged out, store for its resend request)."""
        msg = fix.Message(out.to_text(), False)
        try:
            ok = bool(fix.Session.sendToTarget(msg, self._session_ids[compid]))
        except fix.SessionNotFound:
            log.error("FIX session not found: report not sent", compid=compid)
            return False
        exec_id = out.exec_id
        if ok and exec_id is not None:
            self._ledgers[compid].add(exec_id)
        if ok:
            self.metrics.sent(out.msg_type)
        if out.msg_type == wire.EXECUTION_REPORT:  # stored for a resend if not sent: answered
            self.metrics.report_sent((compid, out.get(wire.CL_ORD_ID)), time.perf_counter())
        return ok
