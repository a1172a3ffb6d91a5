"""The FIX listener's decisions (router.fix.listener) without sockets: the Logon check,
the failed-logon throttle and the verdict tokens."""

from __future__ import annotations

import threading

import pytest

from router.fix.listener import (
    LogonCheck,
    LogonThrottle,
    LogonTokens,
    check_logon,
    field_syntax_problem,
)

from .raw import body, frame

HEADER: list[tuple[int | str, str]] = [
    (49, "OMS"),
    (56, "BLOCKROUTE"),
    (34, "1"),
    (52, "20261121-12:00:00.000"),
]
LOGON: list[tuple[int | str, str]] = [
    (35, "A"),
    *HEADER,
    (98, "0"),
    (108, "30"),
    (553, "oms-user"),
    (554, "pw"),
]


Pairs = list[tuple[int | str, str]]


def _check(fields: Pairs) -> LogonCheck:
    return check_logon(frame(body(fields)), "BLOCKROUTE", {"OMS", "OMS2"})


def _with(tag: int, value: str | None) -> Pairs:
    out: Pairs = [(t, v) for t, v in LOGON if t != tag]
    return out if value is None else [*out, (tag, value)]


def test_a_good_logon_is_forwarded_without_its_password() -> None:
    check = _check(LOGON)
    assert (check.compid, check.problem) == ("OMS", None)
    assert (check.username, check.password) == ("oms-user", "pw")
    assert check.fields == ((35, "A"), *HEADER, (98, "0"), (108, "30"), (553, "oms-user"))


def test_header_fields_are_forwarded_before_body_fields() -> None:
    check = _check([(35, "A"), (49, "OMS"), (98, "0"), (56, "BLOCKROUTE"), *LOGON[3:]])
    tags = [t for t, _ in check.fields]
    assert tags.index(56) < tags.index(98)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ([(35, "D"), *LOGON[1:]], "the first message is not a Logon (MsgType D)"),
        ([(35, "A"), (49, "EVIL"), *LOGON[2:]], "SenderCompID(49)='EVIL' is not a client"),
        ([(35, "A"), (49, "OMS"), (56, "OTHER"), *LOGON[3:]], "TargetCompID(56)='OTHER' is not"),
    ],
)
def test_no_session_to_answer_on_means_the_connection_is_dropped(fields: Pairs, why: str) -> None:
    check = _check(fields)
    assert check.compid is None and check.problem is not None and why in check.problem


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        (_with(554, ""), "Password(554) is empty"),
        (_with(553, ""), "Username(553) is empty"),
        (_with(34, None), "MsgSeqNum(34) is missing"),
        (_with(34, "0"), "MsgSeqNum(34) must be a whole number >= 1, got '0'"),
        (_with(52, "yesterday"), "SendingTime(52) must be a UTC timestamp"),
        (_with(98, "1"), "EncryptMethod(98)='1' is not supported: use 0 (none)"),
        (_with(108, None), "HeartBtInt(108) is missing"),
        (_with(108, "0"), "HeartBtInt(108) must be whole seconds from 1 to 3600, got '0'"),
        (_with(108, "-30"), "HeartBtInt(108) must be whole seconds from 1 to 3600"),
        (_with(141, "maybe"), "ResetSeqNumFlag(141) must be Y or N, got 'maybe'"),
        (_with(789, "x"), "NextExpectedMsgSeqNum(789) must be a whole number >= 1"),
        ([*LOGON, (9999, "x")], "tag 9999 is not used in a FIX 4.4 Logon"),
        ([*LOGON, (58, "hi")], "tag 58 is not used in a FIX 4.4 Logon"),
        ([*LOGON, (554, "again")], "Password(554) appears more than once"),
        ([*LOGON, ("x1", "y")], "'x1' is not a tag number"),
    ],
)
def test_a_bad_logon_of_a_client_is_refused_with_the_reason(fields: Pairs, why: str) -> None:
    check = _check(fields)
    assert check.compid == "OMS"
    assert check.problem == why or (check.problem or "").startswith(why)


def test_the_throttle_locks_a_key_after_max_failures_in_the_window() -> None:
    now = [1000.0]
    t = LogonThrottle(3, 60.0, clock=lambda: now[0])
    for _ in range(2):
        t.failed("compid:OMS")
    assert t.retry_after("compid:OMS") is None
    t.failed("compid:OMS")
    assert t.retry_after("compid:OMS") == pytest.approx(60.0)
    assert t.retry_after("addr:1.2.3.4") is None  # keys are separate
    now[0] += 59.5
    assert t.retry_after("compid:OMS") == pytest.approx(0.5)
    now[0] += 1
    assert t.retry_after("compid:OMS") is None  # the oldest failure aged out
    t.failed("compid:OMS")
    assert t.retry_after("compid:OMS") is None
    t.succeeded("compid:OMS")
    t.failed("compid:OMS")
    t.failed("compid:OMS")
    assert t.retry_after("compid:OMS") is None  # a success started the count again


def test_a_throttle_of_zero_never_locks() -> None:
    t = LogonThrottle(0, 60.0)
    for _ in range(100):
        t.failed("addr:x")
    assert t.retry_after("addr:x") is None


def test_the_throttle_stays_bounded_under_many_addresses() -> None:
    now = [0.0]
    t = LogonThrottle(2, 60.0, clock=lambda: now[0], max_keys=100)
    for i in range(1000):
        t.failed(f"addr:10.0.{i // 256}.{i % 256}")
        now[0] += 0.001
    assert len(t._failures) <= 100


def test_tokens_are_one_time_and_carry_the_verdict_across_threads() -> None:
    tokens = LogonTokens()
    ok, bad = tokens.issue(None), tokens.issue("Password(554) is wrong")
    assert ok != bad and len(ok) == 32
    got: list[tuple[bool, str | None]] = []
    thread = threading.Thread(target=lambda: got.extend([tokens.redeem(ok), tokens.redeem(bad)]))
    thread.start()
    thread.join()
    assert got == [(True, None), (True, "Password(554) is wrong")]
    assert tokens.redeem(ok) == (False, None)  # used
    assert tokens.redeem("s3cret") == (False, None)  # a password is not a token
    assert tokens.redeem(None) == (False, None)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"8=FIX.4.4\x019=5\x0135=0\x0110=000\x01", None),
        (b"8=FIX.4.4\x0135=0\x015x=1\x0110=000\x01", "field 3 has no tag number: '5x'"),
        (b"8=FIX.4.4\x0135=0\x01\x0110=000\x01", "field 3 is empty (two field delimiters"),
        (b"8=FIX.4.4\x0135=0\x01novalue\x0110=000\x01", "field 3 has no tag number: 'novalue'"),
        # a data field may hold SOH: its length field says where it ends
        (b"8=FIX.4.4\x0135=0\x0195=3\x0196=a\x01b\x0110=000\x01", None),
        (
            b"8=FIX.4.4\x0135=0\x0195=3\x0196=a\x01bcd\x0110=000\x01",
            "field 4 (tag 96) does not end where its length says",
        ),
    ],
)
def test_fields_without_a_tag_number_are_named(raw: bytes, why: str | None) -> None:
    problem = field_syntax_problem(raw)
    assert problem == why or (why is not None and problem is not None and why in problem)
