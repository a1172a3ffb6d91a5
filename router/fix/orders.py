"""What the FIX gateway does with a client's order messages: NewOrderSingle,
OrderCancelRequest, OrderCancelReplaceRequest and OrderStatusRequest, each parsed, handed
to the desk and, where the desk publishes no event (a field error, a refusal without one,
a fault), answered here. Whatever the desk publishes is reported from its event stream by
the gateway, so a message is answered exactly once."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TypeVar

import structlog

from router.desk_api import (
    CancelRejectedError,
    CxlRejReason,
    DeskError,
    DeskPort,
    OrderRejectedError,
    OrdRejReason,
)
from router.fix import wire

log = structlog.get_logger("blockroute.fix")

FAULT_TEXT = "internal error in blockroute: the request was not carried out (logged)"

#: sends an outbound message to a client (by SenderCompID); True if it went out
Send = Callable[[str, wire.Outbound], bool]
Handler = Callable[[str, dict[int, str]], None]
R = TypeVar("R")  # a parsed cancel or replace request


class OrderHandlers:
    """The order messages' handlers over `desk`, answering through `send`."""

    def __init__(self, desk: DeskPort, send: Send) -> None:
        self.desk = desk
        self.send = send

    def by_msg_type(self) -> dict[str, Handler]:
        return {
            wire.NEW_ORDER_SINGLE: self.new_order,
            wire.ORDER_CANCEL_REQUEST: self.cancel,
            wire.ORDER_CANCEL_REPLACE_REQUEST: self.replace,
            wire.ORDER_STATUS_REQUEST: self.status,
        }

    def new_order(self, compid: str, fields: dict[int, str]) -> None:
        try:
            order = wire.parse_new_order(fields, compid)
        except wire.FieldError as exc:
            self.send(compid, wire.field_reject(fields, exc, self.desk.now_ns()))
            return
        if order.poss_resend:
            known = self.desk.find(compid, order.cl_ord_id)
            if known is not None:  # the client is unsure we got it: say what it is now
                self.send(compid, wire.status_report(known, self.desk.now_ns()))
                return
        try:
            self.desk.submit(order)
        except OrderRejectedError:
            pass  # the desk published OrderRejected: reported from the event stream
        except DeskError as exc:  # refused without an event: answer here
            error = wire.FieldError(OrdRejReason.OTHER, str(exc))
            self.send(compid, wire.field_reject(fields, error, self.desk.now_ns()))
        except Exception:  # a fault in the desk: the client must still hear an answer
            log.exception("FIX order failed in the desk", compid=compid, cl_ord_id=order.cl_ord_id)
            self._answer_fault(compid, fields, order.cl_ord_id)

    def _answer_fault(self, compid: str, fields: dict[int, str], cl_ord_id: str) -> None:
        """After a desk fault: the order as the desk holds it, if it does (it may have
        kept it before failing), else a reject."""
        known = None
        with contextlib.suppress(Exception):
            known = self.desk.find(compid, cl_ord_id)
        now = time.time_ns()
        with contextlib.suppress(Exception):
            now = self.desk.now_ns()
        if known is not None:
            self.send(compid, wire.status_report(known, now))
        else:
            error = wire.FieldError(OrdRejReason.OTHER, FAULT_TEXT)
            self.send(compid, wire.field_reject(fields, error, now))

    def cancel(self, compid: str, fields: dict[int, str]) -> None:
        self._amend(compid, fields, "cancel", wire.parse_cancel, self.desk.cancel)

    def replace(self, compid: str, fields: dict[int, str]) -> None:
        self._amend(compid, fields, "replace", wire.parse_replace, self.desk.replace)

    def _amend(
        self,
        compid: str,
        fields: dict[int, str],
        response_to: str,
        parse: Callable[[dict[int, str], str], R],
        call: Callable[[R], object],
    ) -> None:
        """A cancel or a replace: parsed, then handed to the desk; every refusal the desk
        does not publish is answered with an OrderCancelReject."""
        try:
            request = parse(fields, compid)
        except wire.FieldError as exc:
            self._cancel_field_error(compid, fields, exc, response_to)
            return
        try:
            call(request)
        except CancelRejectedError:
            pass  # published as CancelRejected
        except DeskError as exc:
            self._cancel_field_error(compid, fields, exc, response_to)
        except Exception:
            log.exception(f"FIX {response_to} failed in the desk", compid=compid)
            self._cancel_field_error(compid, fields, RuntimeError(FAULT_TEXT), response_to)

    def _cancel_field_error(
        self, compid: str, fields: dict[int, str], exc: Exception, response_to: str
    ) -> None:
        orig = fields.get(wire.ORIG_CL_ORD_ID, "")
        view = None
        with contextlib.suppress(Exception):  # this also answers after a desk fault
            view = self.desk.find(compid, orig) if orig else None
        self.send(
            compid,
            wire.cancel_reject(
                cl_ord_id=fields.get(wire.CL_ORD_ID, ""),
                orig_cl_ord_id=orig,
                order_id=view.parent_id if view else None,
                status=wire.ord_status(view) if view else "8",
                reason=CxlRejReason.OTHER,
                response_to=response_to,
                text=str(exc),
            ),
        )

    def status(self, compid: str, fields: dict[int, str]) -> None:
        now = self.desk.now_ns()
        view = self.desk.find(compid, fields.get(wire.CL_ORD_ID, ""))
        if view is None:
            self.send(compid, wire.unknown_order_status(fields, now))
        else:
            self.send(compid, wire.status_report(view, now))
