"""FIX message framing on a byte stream: pure code, no sockets, no quickfix.

The FIX listener (router.fix.listener) frames what a client sends before quickfix sees
any of it, so that quickfix only ever receives whole, well-framed messages of a bounded
size. A frame is one of:

- "message": BeginString(8) first, BodyLength(9) second and matching, MsgType(35)
  third, CheckSum(10) last and correct;
- "garbled": what the FIX session layer calls a garbled message (any of the above
  broken) or bytes between messages. FIX ignores these: no answer, and the MsgSeqNum is
  not consumed;
- "oversized": a message whose BodyLength makes it larger than the limit. Its first
  bytes (the header) are kept, the rest is skipped as it arrives, never buffered.

Resynchronisation follows quickfix's own parser (the next "8=FIX" starts a message),
with one difference: a message start inside the bytes a BodyLength claims (a
BodyLength(9) field after an "8=FIX", which no message body holds) ends the claim, so
that one wrong BodyLength or one cut-off message does not swallow the ones after it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SOH = b"\x01"
_START = b"8=FIX"
_LENGTH_FIELD = b"\x019="
_TRAILER = 7  # len(b"10=ddd\x01")
_MAX_BEGIN = 24  # "8=FIXT.1.1" and the like fit well inside this
_MAX_LENGTH_DIGITS = 9
HEAD_BYTES = 512  # kept of an oversized message: enough for its standard header


def checksum(data: bytes | bytearray) -> int:
    return sum(data) % 256


def encode(fields: Iterable[tuple[int, str]], begin: str = "FIX.4.4") -> bytes:
    """A complete FIX message (BodyLength and CheckSum computed) of MsgType and the
    other header and body fields in order."""
    body = "".join(f"{t}={v}\x01" for t, v in fields).encode("latin-1")
    msg = f"8={begin}\x019={len(body)}\x01".encode("latin-1") + body
    return msg + b"10=%03d\x01" % checksum(msg)


def split_fields(data: bytes) -> list[tuple[str, str]]:
    """(tag, value) pairs in order, as text; a part without "=" has value ""."""
    text = data.decode("latin-1")
    if text.endswith("\x01"):
        text = text[:-1]
    out = []
    for part in text.split("\x01"):
        tag, _, value = part.partition("=")
        out.append((tag, value))
    return out


@dataclass(frozen=True, slots=True)
class Frame:
    kind: str  # "message", "garbled" or "oversized"
    data: bytes  # the message; the dropped bytes (garbled); the first bytes (oversized)
    size: int  # the whole frame's size in bytes (oversized: as BodyLength claims)
    reason: str = ""  # why garbled or oversized

    @property
    def is_message(self) -> bool:
        return self.kind == "message"


class Framer:
    """Cuts a byte stream into frames: `feed` bytes, then take `next()` until None."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        # an oversized message is reported once its header fields have arrived (to
        # name its MsgSeqNum) unless this is off: then as soon as its BodyLength is read
        self.wait_for_head = True
        self._buf = bytearray()
        self._skip = 0  # bytes still to drop of an oversized message

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next(self) -> Frame | None:
        buf = self._buf
        if self._skip:
            self._drop_skipped()
            if self._skip:
                return None
        if not buf:
            return None
        start = buf.find(_START)
        if start != 0:
            if start < 0:  # keep a tail that may be the start of "8=FIX"
                keep = max(len(buf) - (len(_START) - 1), 0)
                if keep == 0:
                    return None
                return self._garbled(keep, "bytes outside a FIX message")
            return self._garbled(start, "bytes outside a FIX message")
        soh1 = buf.find(SOH, 0, _MAX_BEGIN)
        if soh1 < 0:
            if len(buf) < _MAX_BEGIN:
                return None
            return self._resync("BeginString(8) is not followed by a field delimiter")
        if len(buf) < soh1 + 3:
            return None
        if buf[soh1 + 1 : soh1 + 3] != b"9=":
            return self._resync("BodyLength(9) is not the second field")
        limit = soh1 + 3 + _MAX_LENGTH_DIGITS + 1
        soh2 = buf.find(SOH, soh1 + 3, limit)
        if soh2 < 0:
            if len(buf) < limit:
                return None
            return self._resync("BodyLength(9) is not a number")
        digits = bytes(buf[soh1 + 3 : soh2])
        if not digits.isdigit():
            return self._resync(f"BodyLength(9)={digits.decode('latin-1')!r} is not a number")
        body_start = soh2 + 1
        total = body_start + int(digits) + _TRAILER
        if total > self.max_size:
            return self._oversized(body_start, total)
        if len(buf) < total:
            inside = _message_start(buf, body_start, len(buf))
            if inside >= 0:  # another message begins where this one claims to go on
                return self._garbled(
                    inside, f"BodyLength(9)={int(digits)} runs into the next message"
                )
            return None
        trailer = bytes(buf[total - _TRAILER : total])
        if not (trailer.startswith(b"10=") and trailer[3:6].isdigit() and trailer[6:] == SOH):
            return self._resync(f"BodyLength(9)={int(digits)} does not end where CheckSum(10) is")
        msg = bytes(buf[:total])
        del buf[:total]
        expected = checksum(msg[: total - _TRAILER])
        if int(trailer[3:6]) != expected:
            return Frame(
                "garbled",
                msg,
                total,
                f"CheckSum(10)={trailer[3:6].decode()} is wrong (the bytes sum to {expected:03d})",
            )
        if not msg.startswith(b"35=", body_start):
            return Frame("garbled", msg, total, "MsgType(35) is not the third field")
        return Frame("message", msg, total)

    def _garbled(self, n: int, reason: str) -> Frame:
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return Frame("garbled", data, n, reason)

    def _resync(self, reason: str) -> Frame:
        """Drop up to the next message start after this one's."""
        nxt = self._buf.find(_START, 1)
        return self._garbled(nxt if nxt > 0 else len(self._buf), reason)

    def _oversized(self, body_start: int, total: int) -> Frame | None:
        head = min(total, body_start + HEAD_BYTES)
        waiting = len(self._buf) < head and _message_start(self._buf, body_start, head) < 0
        if waiting and self.wait_for_head:
            return None  # wait for the header fields (they come first)
        data = bytes(self._buf[:head])
        del self._buf[:body_start]  # its own start is not a next message's
        self._skip = total - body_start
        self._drop_skipped()
        return Frame(
            "oversized",
            data,
            total,
            f"message of {total} bytes is over the {self.max_size}-byte limit (MaxMessageSize)",
        )

    def _drop_skipped(self) -> None:
        """Drop what is left of an oversized message, as far as it has arrived; a
        message start inside it ends it early (its BodyLength was a lie)."""
        buf = self._buf
        inside = _message_start(buf, 0, min(len(buf), self._skip + _MAX_BEGIN))
        if 0 <= inside < self._skip:
            del buf[:inside]
            self._skip = 0
            return
        n = min(self._skip, len(buf))
        if n < self._skip:
            # keep a tail that may begin a message start split across reads
            n = max(n - _MAX_BEGIN, 0)
        del buf[:n]
        self._skip -= n


def _message_start(buf: bytearray, start: int, end: int) -> int:
    """Where a message begins in buf[start:end] ("8=FIX..." then BodyLength), or -1."""
    i = buf.find(_LENGTH_FIELD, start, end)
    while i >= 0:
        begin = buf.rfind(_START, max(start, i - _MAX_BEGIN), i)
        if begin >= 0:
            return begin
        i = buf.find(_LENGTH_FIELD, i + 1, end)
    return -1
