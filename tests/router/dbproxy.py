"""A TCP proxy for the database fault tests, between the service and its database.

It passes bytes both ways, or refuses (closes its listening socket and resets every open
connection: "connection refused" to the client), or stalls (keeps every socket open,
accepts new connections, and passes nothing: the client's writes are acknowledged by
this machine's kernel and its reads wait forever, which no TCP timeout of the client
detects). It runs on its own thread and event loop, so a test whose loop is blocked by
a stalled database call can still end the stall (`stall(seconds)` resumes by itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any

from sqlalchemy.engine import make_url

_CHUNK = 65536


class TcpProxy:
    """`start()` binds 127.0.0.1 on a free port (`port`) and forwards to target."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.connections = 0  # accepted so far
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._passing: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._resume: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ control

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._refuse())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._loop.is_running():
            self._loop.close()

    def refuse(self, seconds: float | None = None) -> None:
        """Reset every connection and refuse new ones (for `seconds`, else until `resume`)."""
        self._call(self._refuse(seconds))

    def stall(self, seconds: float | None = None) -> None:
        """Pass nothing, keep every socket open (for `seconds`, else until `resume`)."""
        self._call(self._stall(seconds))

    def resume(self) -> None:
        self._call(self._pass())

    def url(self, url: str) -> str:
        """`url` (a database URL) pointed at this proxy."""
        u = make_url(url).set(host="127.0.0.1", port=self.port)
        return u.render_as_string(hide_password=False)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # ------------------------------------------------------------------ proxy thread

    async def _start(self) -> None:
        self._passing = asyncio.Event()
        self._passing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _pass(self) -> None:
        self._cancel_timer()
        assert self._passing is not None
        if self._server is None:  # refused: listen again on the same port
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self._passing.set()

    async def _stall(self, seconds: float | None) -> None:
        assert self._passing is not None
        self._passing.clear()
        self._timer(seconds)

    async def _refuse(self, seconds: float | None = None) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()  # a reset, as a dead server's host would answer
        self._writers.clear()
        self._timer(seconds)

    def _timer(self, seconds: float | None) -> None:
        self._cancel_timer()
        if seconds is not None:
            self._resume = self._loop.call_later(
                seconds, lambda: self._loop.create_task(self._pass())
            )

    def _cancel_timer(self) -> None:
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._passing is not None
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                await self._passing.wait()
                data = await reader.read(_CHUNK)
                if not data:
                    break
                await self._passing.wait()  # a stall holds what it has read
                if writer.transport.is_closing():
                    break
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError):
            writer.transport.abort()
