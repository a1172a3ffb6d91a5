"""The garbled-FIX corpus: bad framing, malformed and missing fields, absurd values,
oversized messages and logon abuse, replayed over real sockets against the real acceptor
(listener, quickfix, gateway) in front of the real desk on a simulated market.

Every message must get what FIX 4.4 prescribes for it:
- garbled (BeginString, BodyLength, MsgType or CheckSum broken, or not FIX at all):
  ignored; its MsgSeqNum is not consumed, so the next message reuses it (`probe`);
- a session-level fault in a well-framed message: Reject (35=3) with RefSeqNum and
  SessionRejectReason (and RefTagID where there is one);
- an order the service cannot take: ExecutionReport 39=8 with OrdRejReason and Text,
  and no order left in the desk; a cancel or replace it cannot do: OrderCancelReject;
- an unsupported message type: BusinessMessageReject;
- a fault that makes the session untrustworthy (wrong CompID, BeginString or MsgSeqNum):
  Logout, then disconnect;
- before a session exists: a refused Logon gets a Logout saying why; what is not a
  Logon for a client of this service is disconnected without an answer.
After each message the session still counts MsgSeqNums as the client does, and at the
end a well-behaved quickfix client trades through the same service.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio

from router.desk import Desk
from router.service import simulated_desk

from .env import PASSWORDS, USERNAMES, FixEnv
from .raw import RawFixClient, body, frame

pytestmark = pytest.mark.asyncio(loop_scope="module")

SEED = 24
CORPUS_LIMITS = {
    "LogonTimeout": "1",
    # each refused Logon below would count: the lockout itself is tested in test_listener
    "MaxFailedLogons": "100",
}
NOW = "20261121-12:00:00"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SimpleNamespace]:
    tmp: Path = tmp_path_factory.mktemp("corpus")
    async with simulated_desk(tmp, 1.0) as desk:
        env = FixEnv(tmp)
        gw = env.gateway(desk, extra=CORPUS_LIMITS)
        oms = await RawFixClient.connect(env.port)
        assert (await oms.logon(PASSWORDS["OMS"], USERNAMES["OMS"]))[35] == "A"
        yield SimpleNamespace(env=env, desk=desk, gw=gw, oms=oms)
        oms.close()
        await env.close()


# ------------------------------------------------------------------ the session's corpus

Build = Callable[[RawFixClient], bytes]


def nos(cl: str, **changes: str | None) -> list[tuple[int | str, str]]:
    """A NewOrderSingle's body: a market buy of 100 QDI, with fields changed ("f44": a
    value, None: left out)."""
    fields: dict[int, str] = {11: cl, 55: "QDI", 54: "1", 38: "100", 40: "1", 60: NOW}
    for key, value in changes.items():
        if value is None:
            fields.pop(int(key[1:]), None)
        else:
            fields[int(key[1:])] = value
    return list(fields.items())


def msg(msg_type: str, pairs: list[tuple[int | str, str]], **framing: Any) -> Build:
    """A message with the client's next MsgSeqNum; `framing` as raw.frame takes it."""
    return lambda c: frame(body([*c.header(msg_type), *pairs]), **framing)


def raw_body(make: Callable[[RawFixClient], str], **framing: Any) -> Build:
    return lambda c: frame(make(c), **framing)


@dataclass(frozen=True)
class Case:
    id: str
    build: Build
    answer: str  # ignored, reject, order-reject, business-reject, cancel-reject, accepted
    reason: str | None = None  # SessionRejectReason / OrdRejReason / ... expected
    tag: str | None = None  # RefTagID of a Reject; a word the Text must hold otherwise
    cl: str = ""


def _noise(n: int) -> bytes:
    rng = random.Random(SEED)
    return bytes(rng.randrange(256) for _ in range(n)).replace(b"8=", b"8-")


def _header_after_body(c: RawFixClient) -> str:
    return body([(35, "D"), *nos("HO1"), *c.header("D")[1:]])


CORPUS = [
    # garbled: ignored, MsgSeqNum not consumed
    Case("checksum-wrong", msg("D", nos("G1"), checksum=0), "ignored", cl="G1"),
    Case("bodylength-short", msg("D", nos("G2"), length=20), "ignored", cl="G2"),
    Case("bodylength-long", msg("D", nos("G3"), length=4000), "ignored", cl="G3"),
    Case("bodylength-not-a-number", msg("D", nos("G4"), length="1x"), "ignored", cl="G4"),
    Case(
        "bodylength-missing",
        lambda c: msg("D", nos("G5"))(c).replace(b"\x019=", b"\x01"),
        "ignored",
        cl="G5",
    ),
    Case(
        "msgtype-not-third",
        raw_body(lambda c: body([*c.header("D")[1:], (35, "D"), *nos("G6")])),
        "ignored",
        cl="G6",
    ),
    Case("truncated", lambda c: msg("D", nos("G8"))(c)[:40], "ignored", cl="G8"),
    Case("not-fix", lambda c: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "ignored"),
    Case("binary-noise", lambda c: _noise(3000), "ignored"),
    # session level: Reject with SessionRejectReason (and RefTagID)
    Case(
        "empty-field",
        raw_body(lambda c: body([*c.header("D"), *nos("S0")]) + "\x01"),
        "reject",
        "0",
        "empty",
        cl="S0",
    ),
    Case("value-empty", msg("D", nos("S1", f58="")), "reject", "4", "58"),
    Case("tag-undefined", msg("D", [*nos("S2"), (9999, "x")]), "reject", "0", "9999"),
    Case("tag-not-in-message", msg("D", [*nos("S3"), (270, "1")]), "reject", "2", "270"),
    Case("tag-twice", msg("D", [*nos("S4"), (55, "QDI")]), "reject", "13", "55"),
    Case("tag-not-a-number", msg("D", [*nos("S5"), ("5x", "1")]), "reject", "0", "'5x'", cl="S5"),
    Case("header-after-body", raw_body(_header_after_body), "reject", "14"),
    Case("msgtype-unknown", msg("ZZ", [(11, "S6")]), "reject", "11"),
    Case("side-out-of-range", msg("D", nos("S7", f54="Z")), "reject", "5", "54"),
    Case(
        "symbol-missing", msg("D", nos("S8", f55=None)), "order-reject", "99", "Symbol(55)", cl="S8"
    ),
    Case("transacttime-missing", msg("D", nos("S9", f60=None)), "reject", "1", "60"),
    Case(
        "sendingtime-garbage",
        raw_body(lambda c: body([*c.header("D")[:4], (52, "noon"), *nos("S10")])),
        "reject",
        "6",
        "52",
    ),
    Case("expiretime-garbage", msg("D", nos("S11", f126="tomorrow")), "reject", "6", "126"),
    Case("price-1e308-exponent", msg("D", nos("S12", f40="2", f44="1e308")), "reject", "6", "44"),
    Case("price-nan", msg("D", nos("S13", f40="2", f44="nan")), "reject", "6", "44"),
    Case("price-inf", msg("D", nos("S14", f40="2", f44="inf")), "reject", "6", "44"),
    Case("qty-text", msg("D", nos("S15", f38="abc")), "reject", "6", "38"),
    Case("qty-exponent", msg("D", nos("S16", f38="1e20")), "reject", "6", "38"),
    Case(
        "oversized-1mb-text",
        msg("D", nos("S17", f58="x" * 1_000_000)),
        "reject",
        "99",
        "MaxMessageSize",
        cl="S17",
    ),
    # business level: ExecutionReport 39=8 with OrdRejReason and Text, nothing in the desk
    Case("accepted-first", msg("D", nos("ACC1")), "accepted", cl="ACC1"),
    Case("clordid-duplicate", msg("D", nos("ACC1")), "order-reject", "6", "duplicate", cl="ACC1"),
    Case("qty-zero", msg("D", nos("O1", f38="0")), "order-reject", "13", "OrderQty", cl="O1"),
    Case(
        "qty-negative", msg("D", nos("O2", f38="-100")), "order-reject", "13", "OrderQty", cl="O2"
    ),
    Case(
        "qty-fraction", msg("D", nos("O3", f38="12.5")), "order-reject", "13", "OrderQty", cl="O3"
    ),
    Case(
        "qty-400-digits",
        msg("D", nos("O4", f38="9" * 400)),
        "order-reject",
        "13",
        "OrderQty",
        cl="O4",
    ),
    Case(
        "qty-huge",
        msg("D", nos("O5", f38="1" + "0" * 30)),
        "order-reject",
        None,
        "quantity",
        cl="O5",
    ),
    Case(
        "price-zero", msg("D", nos("O6", f40="2", f44="0")), "order-reject", "99", "Price", cl="O6"
    ),
    Case(
        "price-negative",
        msg("D", nos("O7", f40="2", f44="-99.5")),
        "order-reject",
        "99",
        "Price",
        cl="O7",
    ),
    Case(
        "price-400-digits",
        msg("D", nos("O8", f40="2", f44="9" * 400)),
        "order-reject",
        "99",
        "Price",
        cl="O8",
    ),
    Case(
        "price-1e308-fixed",
        msg("D", nos("O9", f40="2", f44="1" + "0" * 308)),
        "order-reject",
        None,
        "limit",
        cl="O9",
    ),
    Case(
        "price-far-from-market",
        msg("D", nos("O10", f40="2", f44="99999999999.5")),
        "order-reject",
        None,
        "limit",
        cl="O10",
    ),
    Case(
        "price-off-tick",
        msg("D", nos("O11", f40="2", f44="100.000001")),
        "order-reject",
        None,
        "tick",
        cl="O11",
    ),
    Case(
        "limit-without-price",
        msg("D", nos("O12", f40="2")),
        "order-reject",
        "99",
        "Price",
        cl="O12",
    ),
    Case("ordtype-stop", msg("D", nos("O13", f40="3")), "order-reject", "11", "OrdType", cl="O13"),
    Case("side-sell-short", msg("D", nos("O14", f54="5")), "order-reject", "11", "Side", cl="O14"),
    Case(
        "strategy-unknown",
        msg("D", nos("O15", f847="3")),
        "order-reject",
        "11",
        "TargetStrategy",
        cl="O15",
    ),
    Case(
        "participation-over-1",
        msg("D", nos("O16", f847="2", f849="1.5")),
        "order-reject",
        "99",
        "ParticipationRate",
        cl="O16",
    ),
    Case("symbol-unknown", msg("D", nos("O17", f55="NOPE")), "order-reject", "1", "NOPE", cl="O17"),
    # other business answers
    Case("msgtype-unsupported", msg("AF", [(584, "MS1"), (585, "7")]), "business-reject", "3"),
    Case(
        "cancel-unknown-order",
        msg("F", [(11, "C1"), (41, "NOPE"), (55, "QDI"), (54, "1"), (60, NOW)]),
        "cancel-reject",
        "1",
        cl="C1",
    ),
    Case(
        "replace-qty-zero",
        msg(
            "G", [(11, "C2"), (41, "ACC1"), (55, "QDI"), (54, "1"), (38, "0"), (40, "1"), (60, NOW)]
        ),
        "cancel-reject",
        None,
        "OrderQty",
        cl="C2",
    ),
    Case("text-under-the-limit", msg("D", nos("ACC2", f58="y" * 15_000)), "accepted", cl="ACC2"),
]


async def _answer(c: RawFixClient, desk: Desk, case: Case, seq: int) -> None:
    if case.answer == "ignored":
        await c.probe()  # reuses `seq`: the garbled message did not take it
        assert not c.all(f35="3", f45=str(seq))
        assert not (case.cl and c.all(f11=case.cl))
        return
    c.seq += 1
    if case.answer == "reject":
        rej = await c.expect(f35="3", f45=str(seq))
        assert rej.get(58), rej
        if case.reason is not None:
            assert rej[373] == case.reason, rej
        if case.tag is not None and case.tag.isdigit():
            assert rej[371] == case.tag, rej
        elif case.tag is not None:
            assert case.tag in rej[58], rej
        assert not (case.cl and desk.find("OMS", case.cl))
    elif case.answer == "order-reject":
        er = await c.expect(f35="8", f11=case.cl, f150="8")
        assert er[39] == "8" and er[58] and er.get(103), er
        if case.reason is not None:
            assert er[103] == case.reason, er
        assert (case.tag or "") in er[58], er
        if case.reason != "6":  # a duplicate's ClOrdID is the first order's
            assert desk.find("OMS", case.cl) is None
    elif case.answer == "accepted":
        er = await c.expect(f35="8", f11=case.cl, f150="0")
        assert er[39] == "0"
    elif case.answer == "business-reject":
        rej = await c.expect(f35="j", f45=str(seq))
        assert rej[380] == case.reason and rej[58], rej
    elif case.answer == "cancel-reject":
        rej = await c.expect(f35="9", f11=case.cl)
        assert rej[58] and rej.get(102) and rej.get(434), rej
        if case.reason is not None:
            assert rej[102] == case.reason, rej
        assert (case.tag or "") in rej[58], rej
    else:
        raise AssertionError(f"unknown answer {case.answer}")


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
async def test_each_message_gets_the_fix_answer_and_the_session_goes_on(
    net: SimpleNamespace, case: Case
) -> None:
    c: RawFixClient = net.oms
    seq = c.seq
    await c.send_bytes(case.build(c))
    await _answer(c, net.desk, case, seq)
    if case.answer != "ignored":
        await c.probe()  # in step: the message took exactly one MsgSeqNum


# ------------------------------------------------- messages that end the session

ENDERS = {
    "compid-wrong": (
        lambda c: frame(body([(35, "D"), (49, "OMSX"), *c.header("D")[2:], *nos("E1")])),
        "CompID",
    ),
    "beginstring-other-version": (msg("D", nos("E2"), begin="FIX.4.2"), "BeginString"),
    "msgseqnum-missing": (
        raw_body(
            lambda c: body([(35, "D"), (49, c.sender), (56, c.target), (52, NOW), *nos("E3")])
        ),
        "MsgSeqNum(34) is missing",
    ),
    "msgseqnum-too-low": (
        lambda c: frame(body([*c.header("D", seq=1), *nos("E4")])),
        "MsgSeqNum too low",
    ),
}


@pytest.mark.parametrize("name", list(ENDERS))
async def test_a_message_that_breaks_the_session_gets_a_logout(
    net: SimpleNamespace, name: str
) -> None:
    build, words = ENDERS[name]
    c = await RawFixClient.connect(net.env.port, sender="OMS2")
    reply = await c.logon(PASSWORDS["OMS2"], extra=[(141, "Y")])  # a fresh session
    assert reply[35] == "A", reply
    await c.probe()
    before = len(c.received)
    await c.send_bytes(build(c))
    await c.expect(f35="5")
    said = [m for m in c.received[before:] if m[35] in ("3", "5")]  # a Reject may come first
    assert any(words in m.get(58, "") for m in said), said
    await c.send("5")
    assert await c.closed(3.0)
    assert not c.all(f35="8")  # no order came of it


# ------------------------------------------------------------------------ logon abuse

LOGON_ANSWERS = ("dropped", "logout", "timeout")


_LOGON_FIELDS: dict[int, str] = {
    35: "A",
    49: "OMS2",
    56: "BLOCKROUTE",
    34: "1",
    52: NOW,
    98: "0",
    108: "30",
    554: PASSWORDS["OMS2"],
}


def _logon(length: int | None = None, **changes: str | None) -> Build:
    fields = dict(_LOGON_FIELDS)
    for key, value in changes.items():
        if value is None:
            fields.pop(int(key[1:]), None)
        else:
            fields[int(key[1:])] = value
    return lambda c: frame(body(list(fields.items())), length=length)


ABUSE: dict[str, tuple[Build, str, str]] = {
    "garbage-first": (lambda c: b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "dropped", ""),
    "order-first": (msg("D", nos("L1")), "dropped", ""),
    "logon-checksum-wrong": (lambda c: _logon()(c)[:-4] + b"000\x01", "dropped", ""),
    "logon-bodylength-short": (_logon(length=10), "dropped", ""),
    "logon-bodylength-long": (_logon(length=400), "timeout", ""),  # waits for the rest
    "logon-unknown-compid": (_logon(f49="EVIL"), "dropped", ""),
    "logon-wrong-target": (_logon(f56="SOMEONE"), "dropped", ""),
    "logon-oversized": (_logon(f554="p" * 20_000), "dropped", ""),
    "logon-length-claim-huge": (lambda c: b"8=FIX.4.4\x019=999999999\x0135=A\x01", "dropped", ""),
    "no-logon-at-all": (lambda c: b"", "timeout", ""),
    "logon-incomplete": (lambda c: _logon()(c)[:30], "timeout", ""),
    "password-empty": (_logon(f554=""), "logout", "Password(554) is empty"),
    "password-missing": (_logon(f554=None), "logout", "Password(554) missing"),
    "password-wrong": (_logon(f554="guess"), "logout", "Password(554) is wrong"),
    "password-twice": (
        lambda c: frame(body([*_LOGON_FIELDS.items(), (554, "again")])),
        "logout",
        "Password(554) appears more than once",
    ),
    "heartbtint-negative": (_logon(f108="-1"), "logout", "HeartBtInt(108)"),
    "heartbtint-text": (_logon(f108="often"), "logout", "HeartBtInt(108)"),
    "encryption-asked": (_logon(f98="1"), "logout", "EncryptMethod(98)"),
    "msgseqnum-missing": (_logon(f34=None), "logout", "MsgSeqNum(34) is missing"),
    "sendingtime-garbage": (_logon(f52="now"), "logout", "SendingTime(52)"),
    "tag-undefined": (_logon(f9999="x"), "logout", "tag 9999"),
    "value-empty": (_logon(f553=""), "logout", "Username(553) is empty"),
}


@pytest.mark.parametrize("name", list(ABUSE))
async def test_logon_abuse_gets_the_fix_answer_at_once(net: SimpleNamespace, name: str) -> None:
    build, answer, words = ABUSE[name]
    loop = asyncio.get_running_loop()
    c = await RawFixClient.connect(net.env.port, sender="OMS2")
    t0 = loop.time()
    data = build(c)
    if data:
        await c.send_bytes(data)
    assert await c.closed(3.0), f"still open: {c.received}"
    took = loop.time() - t0
    if answer == "logout":
        (logout,) = c.received
        assert logout[35] == "5" and words in logout[58], logout
        assert took < 1.0
    elif answer == "dropped":
        assert not c.received and took < 1.0
    else:
        assert not c.received and 0.9 < took < 2.0  # LogonTimeout


# ------------------------------------------------------------------------- afterwards


async def test_the_service_still_serves_a_well_behaved_client(net: SimpleNamespace) -> None:
    oms: RawFixClient = net.oms
    await oms.probe()
    await oms.send("D", nos("AFTER1"))
    await oms.expect(f35="8", f11="AFTER1", f150="0")
    client = net.env.client("OMS2", reset=True)  # a real quickfix initiator
    await client.wait_logged_on(5.0)
    client.new_order("AFTER2", qty="200", side="2")
    er = await client.expect(f35="8", f11="AFTER2", f150="0", timeout=5.0)
    assert net.desk.find("OMS2", "AFTER2").parent_id == er[37]
    assert net.gw.running and net.gw.listener.pending == 0
