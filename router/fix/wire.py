"""FIX 4.4 <-> desk vocabulary (router.desk_api): pure functions, no sockets, no quickfix.

Inbound, a message arrives as the raw tag=value text that the gateway copied inside
quickfix's callback; `parse_fields` turns it into {tag: value} and the `parse_*`
functions into desk commands, raising `FieldError` for what the data dictionary let
through but the desk cannot use (the gateway answers that itself). Outbound, each
`Outbound` is a message type and its body fields, built from a desk event or view.

ExecIDs are deterministic, so that a restart can tell which ExecutionReports a client
already has (see `expected_reports`): New f"{parent_id}-N", a fill its own exec_id,
Replaced f"{parent_id}-R-{cl_ord_id}", Canceled f"{parent_id}-C", Expired
f"{parent_id}-X".
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from router.desk_api import (
    CancelRejected,
    CancelRequest,
    CxlRejReason,
    DeskEvent,
    NewOrder,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderStatus,
    OrdRejReason,
    ParentView,
    ReplaceRequest,
)
from router.domain import OrdType, Side

SOH = "\x01"
BEGIN_STRING = "FIX.4.4"

# tags (FIX 4.4)
AVG_PX = 6
CL_ORD_ID = 11
CUM_QTY = 14
EXEC_ID = 17
LAST_MKT = 30
LAST_PX = 31
LAST_QTY = 32
MSG_SEQ_NUM = 34
MSG_TYPE = 35
ORDER_ID = 37
ORDER_QTY = 38
ORD_STATUS = 39
ORD_TYPE = 40
ORIG_CL_ORD_ID = 41
PRICE = 44
REF_SEQ_NUM = 45
SENDER_COMP_ID = 49
SIDE = 54
SYMBOL = 55
TEXT = 58
TRANSACT_TIME = 60
POSS_RESEND = 97
CXL_REJ_REASON = 102
ORD_REJ_REASON = 103
EXPIRE_TIME = 126
EXEC_TYPE = 150
LEAVES_QTY = 151
REF_MSG_TYPE = 372
SESSION_REJECT_REASON = 373
BUSINESS_REJECT_REASON = 380
MAX_MESSAGE_SIZE = 383
CXL_REJ_RESPONSE_TO = 434
USERNAME = 553
PASSWORD = 554
TARGET_STRATEGY = 847
PARTICIPATION_RATE = 849

# message types
NEW_ORDER_SINGLE = "D"
ORDER_CANCEL_REQUEST = "F"
ORDER_CANCEL_REPLACE_REQUEST = "G"
ORDER_STATUS_REQUEST = "H"
EXECUTION_REPORT = "8"
ORDER_CANCEL_REJECT = "9"
BUSINESS_MESSAGE_REJECT = "j"
SESSION_REJECT = "3"
LOGON = "A"

UNSUPPORTED_MESSAGE_TYPE = 3  # BusinessRejectReason(380)
_MSG_TYPE = re.compile(r"^[0-9A-Za-z]{1,4}$")

STRATEGIES: Mapping[str, str] = {
    "1": "vwap",
    "2": "pov",
    "1000": "twap",
    "1001": "ac",
    "1002": "sor",
    "1003": "ml",
}
_SIDES = {"1": Side.BUY, "2": Side.SELL}
_SIDE_CODES = {Side.BUY: "1", Side.SELL: "2"}
_ORD_TYPES = {"1": OrdType.MARKET, "2": OrdType.LIMIT}
_ORD_TYPE_CODES = {OrdType.MARKET: "1", OrdType.LIMIT: "2"}
_UTC_TIMESTAMP = re.compile(r"^(\d{8})-(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$")
_NONE = "NONE"  # OrderID(37) when there is no order


class FieldError(ValueError):
    """A field the desk cannot use; `text` names it (the reject's Text(58))."""

    def __init__(self, reason: OrdRejReason, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message to send: MsgType and body fields in order (the header is quickfix's)."""

    msg_type: str
    fields: tuple[tuple[int, str], ...]

    def get(self, tag: int) -> str | None:
        for t, v in self.fields:
            if t == tag:
                return v
        return None

    @property
    def exec_id(self) -> str | None:
        return self.get(EXEC_ID) if self.msg_type == EXECUTION_REPORT else None

    def to_text(self) -> str:
        """The message as FIX text for quickfix's `Message(text, False)`: one call into
        quickfix instead of one per field (each call releases and retakes the GIL).
        BodyLength and CheckSum are placeholders that quickfix recomputes on send."""
        body = "".join(f"{t}={v.replace(SOH, ' ')}{SOH}" for t, v in self.fields)
        return f"8={BEGIN_STRING}{SOH}9=0{SOH}35={self.msg_type}{SOH}{body}10=000{SOH}"


# --------------------------------------------------------------------------- parsing


def parse_fields(raw: str) -> dict[int, str]:
    """{tag: value} of a raw FIX message; the first occurrence of a tag wins (the
    messages mapped here carry no repeating groups that matter)."""
    out: dict[int, str] = {}
    for part in raw.split(SOH):
        tag, sep, value = part.partition("=")
        if sep and tag.isdigit():
            out.setdefault(int(tag), value)
    return out


def parse_utc_timestamp(text: str) -> int:
    """Epoch nanoseconds of a FIX UTCTimestamp (YYYYMMDD-HH:MM:SS[.fff[fff[fff]]])."""
    m = _UTC_TIMESTAMP.match(text)
    if not m:
        raise ValueError(f"not a UTCTimestamp: {text!r}")
    day, hh, mm, ss, frac = m.groups()
    dt = datetime(int(day[:4]), int(day[4:6]), int(day[6:]), int(hh), int(mm), int(ss))
    seconds = calendar.timegm(dt.timetuple())
    return seconds * 1_000_000_000 + int((frac or "").ljust(9, "0"))


def format_utc_timestamp(ns: int) -> str:
    """YYYYMMDD-HH:MM:SS.ffffff (microseconds) of epoch nanoseconds."""
    seconds, rest = divmod(ns, 1_000_000_000)
    dt = datetime.fromtimestamp(seconds, UTC)
    return f"{dt:%Y%m%d-%H:%M:%S}.{rest // 1000:06d}"


def _required(fields: Mapping[int, str], tag: int, name: str) -> str:
    value = fields.get(tag)
    if value is None or value == "":
        raise FieldError(OrdRejReason.OTHER, f"{name}({tag}) is missing")
    return value


def parse_qty(fields: Mapping[int, str], tag: int = ORDER_QTY, name: str = "OrderQty") -> int:
    text = _required(fields, tag, name)
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or not value.is_integer():
        raise FieldError(
            OrdRejReason.INCORRECT_QUANTITY,
            f"{name}({tag}) must be a positive whole number of shares, got {text!r}",
        )
    return int(value)


def parse_side(fields: Mapping[int, str]) -> Side:
    code = _required(fields, SIDE, "Side")
    side = _SIDES.get(code)
    if side is None:
        raise FieldError(
            OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC,
            f"Side(54)={code} is not supported: use 1 (buy) or 2 (sell)",
        )
    return side


def parse_ord_type(fields: Mapping[int, str]) -> tuple[OrdType, float | None]:
    """OrdType(40) and, for a limit order, its Price(44)."""
    code = _required(fields, ORD_TYPE, "OrdType")
    ord_type = _ORD_TYPES.get(code)
    if ord_type is None:
        raise FieldError(
            OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC,
            f"OrdType(40)={code} is not supported: use 1 (market) or 2 (limit with Price)",
        )
    if ord_type is OrdType.MARKET:
        return ord_type, None  # a Price on a market order means nothing
    text = fields.get(PRICE)
    if not text:
        raise FieldError(OrdRejReason.OTHER, "Price(44) is missing: a limit order needs one")
    try:
        price = float(text)
    except ValueError:
        price = float("nan")
    if not price > 0 or price == float("inf"):
        raise FieldError(OrdRejReason.OTHER, f"Price(44) must be a positive price, got {text!r}")
    return ord_type, price


def parse_expire(fields: Mapping[int, str]) -> int | None:
    text = fields.get(EXPIRE_TIME)
    if not text:
        return None
    try:
        return parse_utc_timestamp(text)
    except ValueError:
        raise FieldError(
            OrdRejReason.OTHER,
            f"ExpireTime(126) must be a UTC timestamp YYYYMMDD-HH:MM:SS[.sss], got {text!r}",
        ) from None


def parse_strategy(fields: Mapping[int, str]) -> tuple[str | None, float | None]:
    """TargetStrategy(847) as a strategy name (None: the desk's default, ML) and
    ParticipationRate(849) as a fraction in (0, 1]."""
    code = fields.get(TARGET_STRATEGY)
    strategy = None
    if code:
        strategy = STRATEGIES.get(code)
        if strategy is None:
            known = ", ".join(f"{k} {v}" for k, v in STRATEGIES.items())
            raise FieldError(
                OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC,
                f"TargetStrategy(847)={code} is not supported: use one of {known}",
            )
    text = fields.get(PARTICIPATION_RATE)
    if not text:
        return strategy, None
    try:
        rate = float(text)
    except ValueError:
        rate = float("nan")
    if not 0 < rate <= 1:
        raise FieldError(
            OrdRejReason.OTHER, f"ParticipationRate(849) must be in (0, 1], got {text!r}"
        )
    return strategy, rate


def parse_new_order(fields: Mapping[int, str], client: str) -> NewOrder:
    """A NewOrderSingle (D) as the desk's NewOrder; raises FieldError."""
    cl_ord_id = _required(fields, CL_ORD_ID, "ClOrdID")
    symbol = _required(fields, SYMBOL, "Symbol")
    side = parse_side(fields)
    qty = parse_qty(fields)
    ord_type, price = parse_ord_type(fields)
    strategy, participation = parse_strategy(fields)
    return NewOrder(
        client=client,
        cl_ord_id=cl_ord_id,
        symbol=symbol,
        side=side,
        qty=qty,
        ord_type=ord_type,
        limit_price=price,
        expire_ns=parse_expire(fields),
        strategy=strategy,
        participation=participation,
        poss_resend=fields.get(POSS_RESEND) == "Y",
    )


def parse_cancel(fields: Mapping[int, str], client: str) -> CancelRequest:
    """An OrderCancelRequest (F): by OrigClOrdID, as FIX clients name their orders."""
    return CancelRequest(
        client=client,
        cl_ord_id=_required(fields, CL_ORD_ID, "ClOrdID"),
        orig_cl_ord_id=_required(fields, ORIG_CL_ORD_ID, "OrigClOrdID"),
        reason=fields.get(TEXT, ""),
    )


def parse_replace(fields: Mapping[int, str], client: str) -> ReplaceRequest:
    """An OrderCancelReplaceRequest (G): new OrderQty, OrdType/Price and ExpireTime."""
    ord_type, price = parse_ord_type(fields)
    return ReplaceRequest(
        client=client,
        cl_ord_id=_required(fields, CL_ORD_ID, "ClOrdID"),
        orig_cl_ord_id=_required(fields, ORIG_CL_ORD_ID, "OrigClOrdID"),
        qty=parse_qty(fields) if fields.get(ORDER_QTY) else None,
        ord_type=ord_type,
        limit_price=price,
        expire_ns=parse_expire(fields),
    )


# ------------------------------------------------------------------------ outbound


def fix_side(side: Side | str) -> str:
    """Side(54) of a Side, or of what a client sent ("buy"/"sell" or a FIX code)."""
    if isinstance(side, Side):
        return _SIDE_CODES[side]
    return {"buy": "1", "sell": "2"}.get(side, side) or "1"


def ord_status(view: ParentView) -> str:
    """OrdStatus(39) of a parent as it is now."""
    match view.status:
        case OrderStatus.FILLED:
            return "2"
        case OrderStatus.CANCELED:
            return "4"
        case OrderStatus.EXPIRED:
            return "C"
        case OrderStatus.PENDING_CANCEL:
            return "6"
        case _:
            return "1" if view.filled_qty > 0 else "0"


def _fmt_px(x: float) -> str:
    """A FIX Price/AvgPx: fixed point (never 1e-05), 10 decimals at most, "100.0" style."""
    if not math.isfinite(x):
        return "0.0"
    text = f"{x:.10f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def execution_report(
    view: ParentView,
    *,
    exec_id: str,
    exec_type: str,
    status: str,
    transact_ns: int,
    cl_ord_id: str | None = None,
    orig_cl_ord_id: str | None = None,
    qty: int | None = None,
    cum_qty: int | None = None,
    avg_px: float | None = None,
    leaves_qty: int | None = None,
    extra: Sequence[tuple[int, str]] = (),
) -> Outbound:
    """An ExecutionReport (8) about a parent order; quantities default to the view's."""
    qty = view.qty if qty is None else qty
    cum = view.filled_qty if cum_qty is None else cum_qty
    fields: list[tuple[int, str]] = [
        (ORDER_ID, view.parent_id),
        (CL_ORD_ID, cl_ord_id or view.cl_ord_id),
    ]
    if orig_cl_ord_id:
        fields.append((ORIG_CL_ORD_ID, orig_cl_ord_id))
    fields += [
        (EXEC_ID, exec_id),
        (EXEC_TYPE, exec_type),
        (ORD_STATUS, status),
        (SYMBOL, view.symbol),
        (SIDE, fix_side(view.side)),
        (ORDER_QTY, str(qty)),
        (ORD_TYPE, _ORD_TYPE_CODES[view.ord_type]),
    ]
    if view.ord_type is OrdType.LIMIT and view.limit_price is not None:
        fields.append((PRICE, _fmt_px(view.limit_price)))
    fields += [
        (TRANSACT_TIME, format_utc_timestamp(transact_ns)),
        (CUM_QTY, str(cum)),
        (LEAVES_QTY, str(view.leaves_qty if leaves_qty is None else leaves_qty)),
        (AVG_PX, _fmt_px(view.avg_price if avg_px is None else avg_px)),
        *extra,
    ]
    return Outbound(EXECUTION_REPORT, tuple(fields))


def new_exec_id(parent_id: str) -> str:
    return f"{parent_id}-N"


def replaced_exec_id(parent_id: str, cl_ord_id: str) -> str:
    return f"{parent_id}-R-{cl_ord_id}"


def canceled_exec_id(parent_id: str) -> str:
    return f"{parent_id}-C"


def expired_exec_id(parent_id: str) -> str:
    return f"{parent_id}-X"


def event_client(event: DeskEvent) -> str | None:
    """The client (FIX SenderCompID, or "api") an event is reported to, if any."""
    view = getattr(event, "view", None)
    if isinstance(view, ParentView):
        return view.client
    client = getattr(event, "client", None)
    return client if isinstance(client, str) else None


def report_for_event(event: DeskEvent, view: ParentView | None = None) -> Outbound | None:
    """The message a desk event becomes for its client, or None (not a client fact).
    `view` is the order a CancelRejected names, when the desk still knows it."""
    match event:
        case OrderAccepted(view=v):
            return execution_report(
                v,
                exec_id=new_exec_id(v.parent_id),
                exec_type="0",
                status="0",
                transact_ns=event.ts_ns,
                cum_qty=0,
                avg_px=0.0,
                leaves_qty=v.qty,
            )
        case OrderFilled(view=v):
            return fill_report(
                v,
                exec_id=event.exec_id,
                venue=event.venue,
                last_qty=event.last_qty,
                last_px=event.last_px,
                transact_ns=event.ts_ns,
            )
        case OrderCanceled(view=v):
            return _canceled(v, event.ts_ns, event.cl_ord_id, event.orig_cl_ord_id, event.reason)
        case OrderReplaced(view=v):
            return execution_report(
                v,
                exec_id=replaced_exec_id(v.parent_id, event.cl_ord_id),
                exec_type="5",
                status=ord_status(v),
                transact_ns=event.ts_ns,
                cl_ord_id=event.cl_ord_id,
                orig_cl_ord_id=event.orig_cl_ord_id,
            )
        case OrderExpired(view=v):
            return _expired(v, event.ts_ns)
        case OrderRejected():
            return rejected_report(
                cl_ord_id=event.cl_ord_id,
                symbol=event.symbol,
                side=event.side,
                qty=event.qty,
                reason=event.reason,
                text=event.text,
                transact_ns=event.ts_ns,
            )
        case CancelRejected():
            return cancel_reject(
                cl_ord_id=event.cl_ord_id,
                orig_cl_ord_id=event.orig_cl_ord_id,
                order_id=event.order_id,
                status=ord_status(view) if view is not None else _status_code(event.status),
                reason=event.reason,
                response_to=event.response_to,
                text=event.text,
            )
    return None


def fill_report(
    view: ParentView,
    *,
    exec_id: str,
    venue: str,
    last_qty: int,
    last_px: float,
    transact_ns: int,
    cum_qty: int | None = None,
    avg_px: float | None = None,
    leaves_qty: int | None = None,
    status: str | None = None,
) -> Outbound:
    """ExecType F: one child fill, with the parent's running totals after it."""
    cum = view.filled_qty if cum_qty is None else cum_qty
    if status is None:
        status = "2" if view.status is OrderStatus.FILLED else "1"
    return execution_report(
        view,
        exec_id=exec_id,
        exec_type="F",
        status=status,
        transact_ns=transact_ns,
        cum_qty=cum,
        avg_px=avg_px,
        leaves_qty=leaves_qty,
        extra=((LAST_MKT, venue), (LAST_PX, _fmt_px(last_px)), (LAST_QTY, str(last_qty))),
    )


def _canceled(
    v: ParentView, ts_ns: int, cl_ord_id: str, orig_cl_ord_id: str, text: str
) -> Outbound:
    return execution_report(
        v,
        exec_id=canceled_exec_id(v.parent_id),
        exec_type="4",
        status="4",
        transact_ns=ts_ns,
        cl_ord_id=cl_ord_id or v.cl_ord_id,
        orig_cl_ord_id=orig_cl_ord_id or v.cl_ord_id,
        leaves_qty=0,
        extra=((TEXT, text),) if text else (),
    )


def _expired(v: ParentView, ts_ns: int) -> Outbound:
    return execution_report(
        v,
        exec_id=expired_exec_id(v.parent_id),
        exec_type="C",
        status="C",
        transact_ns=ts_ns,
        leaves_qty=0,
        extra=((TEXT, v.text),) if v.text else (),
    )


def _status_code(status: OrderStatus | None) -> str:
    """OrdStatus(39) from a status alone (no quantities): working reads as New."""
    if status is None:
        return "8"  # no such order: reported as Rejected
    return {
        OrderStatus.FILLED: "2",
        OrderStatus.CANCELED: "4",
        OrderStatus.EXPIRED: "C",
        OrderStatus.PENDING_CANCEL: "6",
    }.get(status, "0")


def rejected_report(
    *,
    cl_ord_id: str,
    symbol: str,
    side: Side | str,
    qty: int | str,
    reason: OrdRejReason,
    text: str,
    transact_ns: int,
    exec_type: str = "8",
) -> Outbound:
    """ExecType 8 (or I for a status request) with OrdStatus 8: no order exists.
    ExecID f"{cl_ord_id}-J-{transact_ns}": unique, and never part of a restart's check."""
    return Outbound(
        EXECUTION_REPORT,
        (
            (ORDER_ID, _NONE),
            (CL_ORD_ID, cl_ord_id),
            (EXEC_ID, f"{cl_ord_id}-J-{transact_ns}"),
            (EXEC_TYPE, exec_type),
            (ORD_STATUS, "8"),
            (SYMBOL, symbol or "?"),
            (SIDE, fix_side(side)),
            (ORDER_QTY, str(qty)),
            (TEXT, text),
            (TRANSACT_TIME, format_utc_timestamp(transact_ns)),
            (CUM_QTY, "0"),
            (LEAVES_QTY, "0"),
            (AVG_PX, "0"),
            (ORD_REJ_REASON, str(int(reason))),
        ),
    )


def field_reject(fields: Mapping[int, str], error: FieldError, transact_ns: int) -> Outbound:
    """The gateway's own ExecType 8 for a NewOrderSingle the mapping refused."""
    qty = fields.get(ORDER_QTY, "0")
    try:
        float(qty)
    except ValueError:
        qty = "0"  # echo only what the client's dictionary will parse
    return rejected_report(
        cl_ord_id=fields.get(CL_ORD_ID, ""),
        symbol=fields.get(SYMBOL, ""),
        side=fields.get(SIDE, "1"),
        qty=qty,
        reason=error.reason,
        text=error.text,
        transact_ns=transact_ns,
    )


def cancel_reject(
    *,
    cl_ord_id: str,
    orig_cl_ord_id: str,
    order_id: str | None,
    status: str,
    reason: CxlRejReason,
    response_to: str,
    text: str,
) -> Outbound:
    """OrderCancelReject (9); `response_to` "cancel" or "replace" (CxlRejResponseTo 1/2)."""
    return Outbound(
        ORDER_CANCEL_REJECT,
        (
            (ORDER_ID, order_id or _NONE),
            (CL_ORD_ID, cl_ord_id),
            (ORD_STATUS, status),
            (ORIG_CL_ORD_ID, orig_cl_ord_id),
            (TEXT, text),
            (CXL_REJ_REASON, str(int(reason))),
            (CXL_REJ_RESPONSE_TO, "2" if response_to == "replace" else "1"),
        ),
    )


def status_report(view: ParentView, transact_ns: int) -> Outbound:
    """ExecType I: the answer to an OrderStatusRequest (H) about a known order."""
    return execution_report(
        view,
        exec_id=f"{view.parent_id}-I-{transact_ns}",
        exec_type="I",
        status=ord_status(view),
        transact_ns=transact_ns,
    )


def unknown_order_status(fields: Mapping[int, str], transact_ns: int) -> Outbound:
    """ExecType I with OrdStatus 8 and OrdRejReason 5: no order has that ClOrdID."""
    cl_ord_id = fields.get(CL_ORD_ID, "")
    return rejected_report(
        cl_ord_id=cl_ord_id,
        symbol=fields.get(SYMBOL, ""),
        side=fields.get(SIDE, "1"),
        qty=0,
        reason=OrdRejReason.UNKNOWN_ORDER,
        text=f"unknown order: no order with ClOrdID {cl_ord_id}",
        transact_ns=transact_ns,
        exec_type="I",
    )


def business_reject(fields: Mapping[int, str], text: str) -> Outbound:
    """BusinessMessageReject (j) of an application message this service does not handle."""
    out: list[tuple[int, str]] = []
    if MSG_SEQ_NUM in fields:
        out.append((REF_SEQ_NUM, fields[MSG_SEQ_NUM]))
    out += [
        (TEXT, text),
        (REF_MSG_TYPE, fields.get(MSG_TYPE, "")),
        (BUSINESS_REJECT_REASON, str(UNSUPPORTED_MESSAGE_TYPE)),
    ]
    return Outbound(BUSINESS_MESSAGE_REJECT, tuple(out))


def session_reject(ref_seq: int, ref_msg_type: str, reason: int, text: str) -> Outbound:
    """A session-level Reject (3) of the client's message `ref_seq` with
    SessionRejectReason `reason` (99 Other for a message over the size limit: FIX has
    no reason of its own for that)."""
    out: list[tuple[int, str]] = [(REF_SEQ_NUM, str(ref_seq))]
    if _MSG_TYPE.match(ref_msg_type):  # echo only a MsgType the client can read back
        out.append((REF_MSG_TYPE, ref_msg_type))
    out += [(SESSION_REJECT_REASON, str(reason)), (TEXT, text)]
    return Outbound(SESSION_REJECT, tuple(out))


# -------------------------------------------------------------------- reconciliation


def expected_reports(view: ParentView, fills: Sequence[Mapping[str, Any]]) -> list[Outbound]:
    """The ExecutionReports a client should have had for this parent, in order: New,
    each fill with the running CumQty/AvgPx, the last replace, the terminal report.

    Rebuilt from the desk's committed state after a restart, so values the desk does
    not keep (the quantity before a replace, intermediate replaces) are today's.
    """
    pid = view.parent_id
    out = [
        execution_report(
            view,
            exec_id=new_exec_id(pid),
            exec_type="0",
            status="0",
            transact_ns=view.start_ns,
            cl_ord_id=view.orig_cl_ord_id,
            cum_qty=0,
            avg_px=0.0,
            leaves_qty=view.qty,
        )
    ]
    cum, notional = 0, 0.0
    for fill in sorted(fills, key=lambda f: int(f["ts_ns"])):
        qty, px = int(fill["qty"]), float(fill["price"])
        cum += qty
        notional += qty * px
        done = view.status is OrderStatus.FILLED and cum >= view.qty
        out.append(
            fill_report(
                view,
                exec_id=str(fill["exec_id"]),
                venue=str(fill["venue"]),
                last_qty=qty,
                last_px=px,
                transact_ns=int(fill["ts_ns"]),
                cum_qty=cum,
                avg_px=notional / cum,
                leaves_qty=0 if done else max(view.qty - cum, 0),
                status="2" if done else "1",
            )
        )
    if view.cl_ord_id != view.orig_cl_ord_id:
        out.append(
            execution_report(
                view,
                exec_id=replaced_exec_id(pid, view.cl_ord_id),
                exec_type="5",
                status="1" if view.filled_qty else "0",
                transact_ns=view.updated_ns,
                orig_cl_ord_id=view.orig_cl_ord_id,
                leaves_qty=max(view.qty - view.filled_qty, 0),
            )
        )
    if view.status is OrderStatus.CANCELED:
        out.append(_canceled(view, view.updated_ns, "", "", view.text))
    elif view.status is OrderStatus.EXPIRED:
        out.append(_expired(view, view.updated_ns))
    return out
