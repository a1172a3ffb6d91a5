"""FIX framing on a byte stream (router.fix.framing): pure code, no sockets."""

from __future__ import annotations

import random

import pytest

from router.fix.framing import Frame, Framer, checksum, encode, split_fields

from .raw import body, frame

ORDER = [(35, "D"), (49, "OMS"), (56, "BLOCKROUTE"), (34, "2"), (52, "20261121-12:00:00")]


def _frames(framer: Framer) -> list[Frame]:
    out = []
    while (f := framer.next()) is not None:
        out.append(f)
    return out


def _cut(data: bytes, max_size: int = 4096) -> list[Frame]:
    framer = Framer(max_size)
    framer.feed(data)
    return _frames(framer)


def test_encode_computes_body_length_and_checksum() -> None:
    msg = encode([(35, "0"), (49, "A")])
    assert msg == b"8=FIX.4.4\x019=10\x0135=0\x0149=A\x0110=%03d\x01" % checksum(msg[:-7])
    assert split_fields(msg)[:3] == [("8", "FIX.4.4"), ("9", "10"), ("35", "0")]


def test_whole_messages_come_out_as_sent_even_one_byte_at_a_time() -> None:
    msgs = [encode(ORDER), encode([(35, "0"), (49, "OMS"), (34, "3")]), encode(ORDER)]
    stream = b"".join(msgs)
    framer = Framer(4096)
    got: list[Frame] = []
    for i in range(len(stream)):
        framer.feed(stream[i : i + 1])
        got += _frames(framer)
    assert [f.data for f in got] == msgs and all(f.is_message for f in got)
    assert framer.buffered == 0


def test_random_splits_give_the_same_frames() -> None:
    rng = random.Random(24)
    msgs = [encode([*ORDER, (58, "x" * rng.randrange(0, 300))]) for _ in range(20)]
    stream = b"".join(msgs)
    framer = Framer(4096)
    got: list[bytes] = []
    i = 0
    while i < len(stream):
        n = rng.randrange(1, 200)
        framer.feed(stream[i : i + n])
        got += [f.data for f in _frames(framer)]
        i += n
    assert got == msgs


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (frame(body(ORDER), checksum=7), "CheckSum(10)=007 is wrong"),
        (frame(body(ORDER), length=20), "does not end where CheckSum(10) is"),
        (frame(body(ORDER), length="x1"), "BodyLength(9)='x1' is not a number"),
        (frame(body([(49, "OMS"), (35, "D"), (34, "2")])), "MsgType(35) is not the third field"),
        (b"8=FIX.4.4\x0135=D\x0110=000\x01", "BodyLength(9) is not the second field"),
        (b"hello\r\n", "bytes outside a FIX message"),
    ],
)
def test_garbled_messages_are_named_and_the_next_one_still_comes_through(
    data: bytes, reason: str
) -> None:
    good = encode(ORDER)
    frames = _cut(data + good)
    assert [f.kind for f in frames] == ["garbled", "message"]
    assert reason in frames[0].reason
    assert frames[1].data == good


def test_a_body_length_that_runs_into_the_next_message_does_not_swallow_it() -> None:
    good = encode(ORDER)
    frames = _cut(frame(body(ORDER), length=400) + good)
    assert [f.kind for f in frames] == ["garbled", "message"]
    assert "runs into the next message" in frames[0].reason
    assert frames[1].data == good


def test_an_oversized_message_is_skipped_as_it_arrives_keeping_its_header() -> None:
    framer = Framer(1024)
    big = encode([*ORDER, (58, "x" * 100_000)])
    after = encode(ORDER)
    stream = big + after
    got: list[Frame] = []
    for i in range(0, len(stream), 1000):  # never more than a read's worth held
        framer.feed(stream[i : i + 1000])
        got += _frames(framer)
        assert framer.buffered <= 1000 + 1024
    assert [f.kind for f in got] == ["oversized", "message"]
    assert got[0].size == len(big) and b"\x0134=2\x01" in got[0].data
    assert "over the 1024-byte limit" in got[0].reason
    assert got[1].data == after


def test_an_oversized_claim_ends_where_the_next_message_starts() -> None:
    """A BodyLength of a billion on a short message does not eat the session."""
    liar = frame(body(ORDER), length=999_999_999)
    after = encode(ORDER)
    frames = _cut(liar + after)
    assert [f.kind for f in frames] == ["oversized", "message"]
    assert frames[1].data == after


def test_a_claim_too_long_for_the_limit_is_known_from_the_header_alone() -> None:
    framer = Framer(1024)
    framer.feed(b"8=FIX.4.4\x019=999999999\x0135=A\x0134=1\x01" + b"x" * 600)
    first = framer.next()
    assert first is not None and first.kind == "oversized" and first.size > 10**9


def test_garbage_never_piles_up() -> None:
    framer = Framer(1024)
    for _ in range(100):
        framer.feed(b"\x00" * 10_000)
        _frames(framer)
        assert framer.buffered < 8


def test_a_message_cut_off_mid_field_does_not_swallow_the_next() -> None:
    good = encode(ORDER)
    frames = _cut(encode(ORDER)[:40] + good)
    assert [f.kind for f in frames] == ["garbled", "message"]
    assert frames[1].data == good
