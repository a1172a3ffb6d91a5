"""A FIX client over a plain socket for the listener and corpus tests: it sends exactly
the bytes it is told (garbled ones included), so it is not a FIX engine; it keeps the
MsgSeqNum the way a client that knows what it sent would, and reads what comes back."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable

from router.fix.framing import Framer, encode, split_fields

Fields = dict[int, str]
SENDING_TIME = "20261121-12:00:00.000"
_ids = itertools.count(1)


def fields_of(msg: bytes) -> Fields:
    out: Fields = {}
    for tag, value in split_fields(msg):
        if tag.isdigit():
            out.setdefault(int(tag), value)
    return out


def frame(
    body: str,
    *,
    begin: str = "FIX.4.4",
    length: int | str | None = None,
    checksum: int | None = None,
) -> bytes:
    """A message of raw body text ("35=D\\x01..."), with BodyLength and CheckSum as
    given (None: correct)."""
    head = f"8={begin}\x019={len(body.encode('latin-1')) if length is None else length}\x01"
    data = (head + body).encode("latin-1")
    total = sum(data) % 256 if checksum is None else checksum
    return data + b"10=%03d\x01" % total


def body(pairs: Iterable[tuple[int | str, str]]) -> str:
    return "".join(f"{t}={v}\x01" for t, v in pairs)


class RawFixClient:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sender: str
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.sender = sender
        self.target = "BLOCKROUTE"
        self.seq = 1  # the MsgSeqNum of the next message that counts
        self.received: list[Fields] = []
        self._taken: set[int] = set()
        self._framer = Framer(1 << 24)
        self.eof = False

    @classmethod
    async def connect(
        cls, port: int, host: str = "127.0.0.1", *, source: str | None = None, sender: str = "OMS"
    ) -> RawFixClient:
        local = (source, 0) if source else None
        reader, writer = await asyncio.open_connection(host, port, local_addr=local)
        return cls(reader, writer, sender)

    # ----------------------------------------------------------------- sending

    def header(self, msg_type: str, seq: int | None = None) -> list[tuple[int | str, str]]:
        return [
            (35, msg_type),
            (49, self.sender),
            (56, self.target),
            (34, str(self.seq if seq is None else seq)),
            (52, SENDING_TIME),
        ]

    def message(self, msg_type: str, pairs: Iterable[tuple[int | str, str]] = ()) -> bytes:
        """A well-formed message with the next MsgSeqNum (not taken until `counted`)."""
        return frame(body([*self.header(msg_type), *pairs]))

    async def send_bytes(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send(
        self, msg_type: str, pairs: Iterable[tuple[int | str, str]] = (), counted: bool = True
    ) -> int:
        """Send a well-formed message; returns its MsgSeqNum."""
        seq = self.seq
        await self.send_bytes(self.message(msg_type, pairs))
        if counted:
            self.seq += 1
        return seq

    async def logon(
        self,
        password: str | None,
        username: str | None = None,
        extra: Iterable[tuple[int | str, str]] = (),
        timeout: float = 3.0,
    ) -> Fields:
        pairs: list[tuple[int | str, str]] = [(98, "0"), (108, "30")]
        if username is not None:
            pairs.append((553, username))
        if password is not None:
            pairs.append((554, password))
        await self.send("A", [*pairs, *extra])
        return await self.expect(lambda m: m.get(35) in ("A", "5"), timeout)

    async def probe(self) -> None:
        """A TestRequest that must be answered by a Heartbeat echoing its id: the session
        is up and counts MsgSeqNums as this client does."""
        test_id = f"T{next(_ids)}"
        await self.send("1", [(112, test_id)])
        await self.expect(f35="0", f112=test_id)

    # ----------------------------------------------------------------- reading

    async def _read_more(self, timeout: float) -> bool:
        try:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
        except TimeoutError:
            return False
        except ConnectionError:
            data = b""
        if not data:
            self.eof = True
            return False
        self._framer.feed(data)
        while (f := self._framer.next()) is not None:
            if f.is_message:
                self.received.append(fields_of(f.data))
        return True

    async def expect(
        self, pred: Callable[[Fields], bool] | None = None, timeout: float = 3.0, **match: str
    ) -> Fields:
        """The next message not returned before that matches (keys like f35="3")."""
        wanted = {int(k[1:]): v for k, v in match.items()}

        def ok(m: Fields) -> bool:
            return all(m.get(t) == v for t, v in wanted.items()) and (pred is None or pred(m))

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i, m in enumerate(self.received):
                if i not in self._taken and ok(m):
                    self._taken.add(i)
                    return m
            left = deadline - loop.time()
            if self.eof or left <= 0:
                raise AssertionError(
                    f"no message with {wanted} in {timeout}s (eof={self.eof}); got {self.received}"
                )
            await self._read_more(left)

    async def closed(self, timeout: float = 3.0) -> bool:
        """Whether the other end closes the connection within `timeout` s (what it sent
        before is in `received`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.eof:
            left = deadline - loop.time()
            if left <= 0:
                return False
            await self._read_more(left)
        return True

    def all(self, **match: str) -> list[Fields]:
        wanted = {int(k[1:]): v for k, v in match.items()}
        return [m for m in self.received if all(m.get(t) == v for t, v in wanted.items())]

    def close(self) -> None:
        self.writer.close()


__all__ = ["RawFixClient", "body", "encode", "fields_of", "frame"]
