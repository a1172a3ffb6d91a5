"""The order messages' handlers against the fake desk: what is answered here (a field
error, a desk fault) and what is left to the desk's events."""

from __future__ import annotations

from typing import Any

import pytest

from router.fix import wire
from router.fix.orders import FAULT_TEXT, OrderHandlers
from tests.router.fix.fakes import FakeDesk


class _Broken(FakeDesk):
    def cancel(self, request: Any) -> Any:
        raise RuntimeError("the desk failed")

    def replace(self, request: Any) -> Any:
        raise RuntimeError("the desk failed")


def _handlers(desk: FakeDesk) -> tuple[OrderHandlers, list[wire.Outbound]]:
    sent: list[wire.Outbound] = []

    def send(compid: str, out: wire.Outbound) -> bool:
        sent.append(out)
        return True

    return OrderHandlers(desk, send), sent


@pytest.mark.parametrize(("kind", "response_to"), [("cancel", "1"), ("replace", "2")])
def test_a_cancel_or_replace_without_orig_cl_ord_id_is_answered_here(
    kind: str, response_to: str
) -> None:
    desk = FakeDesk()
    handlers, sent = _handlers(desk)
    handlers.by_msg_type()[{"cancel": "F", "replace": "G"}[kind]]("OMS", {11: "C1", 40: "1"})
    assert desk.cancels == [] and desk.replaces == []  # nothing reached the desk
    (out,) = sent
    assert out.msg_type == wire.ORDER_CANCEL_REJECT
    assert out.get(wire.CXL_REJ_RESPONSE_TO) == response_to
    assert "OrigClOrdID" in (out.get(wire.TEXT) or "")


@pytest.mark.parametrize(("msg_type", "response_to"), [("F", "1"), ("G", "2")])
def test_a_desk_fault_on_cancel_or_replace_still_gets_an_answer(
    msg_type: str, response_to: str
) -> None:
    handlers, sent = _handlers(_Broken())
    handlers.by_msg_type()[msg_type]("OMS", {11: "C2", 41: "C1", 40: "1"})
    (out,) = sent
    assert out.msg_type == wire.ORDER_CANCEL_REJECT
    assert out.get(wire.CXL_REJ_RESPONSE_TO) == response_to
    assert out.get(wire.TEXT) == FAULT_TEXT


def test_a_refusal_the_desk_publishes_is_not_answered_twice() -> None:
    desk = FakeDesk()
    handlers, sent = _handlers(desk)
    handlers.cancel("OMS", {11: "C2", 41: "unknown"})  # the desk publishes CancelRejected
    assert len(desk.cancels) == 1 and sent == []
