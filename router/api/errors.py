"""The API's errors: JSON ``{"error", "field", "message"}`` (plus "reason" for desk
refusals), and what a client may read of a desk refusal.

``error`` tells the two kinds of 422 apart: ``validation_error`` means the body breaks
the OpenAPI document's request schema (`field` names where), ``order_rejected`` means a
well-formed order the desk refused (risk limits, kill switch, duplicate ClOrdID, a
horizon past the session's close: `reason` is the FIX OrdRejReason).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from router.desk_api import (
    CancelRejectedError,
    CxlRejReason,
    DeskError,
    InvalidStateError,
    JournalUnavailableError,
    OrderRejectedError,
    OrdRejReason,
    UnknownOrderError,
)

_REJECT_FIELDS = {
    OrdRejReason.UNKNOWN_SYMBOL: "symbol",
    OrdRejReason.INCORRECT_QUANTITY: "qty",
    OrdRejReason.DUPLICATE_ORDER: "cl_ord_id",
}

# Where a database driver's own words start in a message: the SQLAlchemy class prefix,
# libpq's and SQLite's phrasings, or a database URL. They name the database's user,
# host, port and file; clients get "database error" and the service log keeps the rest.
_DB_DETAIL = re.compile(
    r"\((?:psycopg|sqlite3|sqlalchemy|pg8000|asyncpg)[^)]*\)"
    r"|connection to server|could not (?:connect|translate host name)"
    r"|password authentication failed|server closed the connection"
    r"|unable to open database file|\b(?:postgres(?:ql)?|sqlite|mysql)(?:\+\w+)?://",
    re.IGNORECASE,
)
DB_DETAIL_HIDDEN = "database error (details in the service log)"


def has_db_detail(text: str) -> bool:
    return _DB_DETAIL.search(text) is not None


def client_text(text: str) -> str:
    """`text` as a client may read it: from the first database driver detail on, only
    "database error". A desk reason such as "journal write failed: <driver message>"
    reaches REST and WebSocket clients; the driver message names the server."""
    m = _DB_DETAIL.search(text)
    return text if m is None else text[: m.start()] + DB_DETAIL_HIDDEN


class ApiError(Exception):
    """A request the API refuses before the desk sees it (or a desk error, mapped)."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        field: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.field = field
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "field": self.field, "message": self.message, **self.extra}


def invalid(field: str, message: str) -> ApiError:
    """422: the request breaks the documented schema at `field`."""
    return ApiError(422, "validation_error", message, field)


def desk_error(exc: DeskError, given: Mapping[str, Any] | None = None) -> ApiError:
    """A desk refusal as an HTTP error (see the module docstring); `given` is the request
    body, to name the field of a refusal that depends on which field the client sent.
    (Its text reaches the client through ws.json_text, which applies `client_text`.)"""
    text = str(exc)
    if isinstance(exc, OrderRejectedError):
        field = exc.field or _REJECT_FIELDS.get(exc.reason)
        if exc.reason is OrdRejReason.TOO_LATE_TO_ENTER:
            field = field or "expire_ns"
        return ApiError(
            422, "order_rejected", exc.text, _rest_field(field, given), reason=exc.reason.name
        )
    if isinstance(exc, CancelRejectedError):
        unknown = exc.reason is CxlRejReason.UNKNOWN_ORDER
        return ApiError(
            404 if unknown else 409,
            "not_found" if unknown else "cancel_rejected",
            exc.text,
            _rest_field(exc.field, given),
            reason=exc.reason.name,
        )
    if isinstance(exc, JournalUnavailableError):
        # the database is down or slow: a change already made is kept and reported once
        # it is stored, so "try again" is about reads and new requests
        return ApiError(503, "unavailable", text, headers={"Retry-After": "1"})
    if isinstance(exc, UnknownOrderError):
        return ApiError(404, "not_found", text or "unknown order")
    if isinstance(exc, InvalidStateError):
        return ApiError(409, "invalid_state", text)
    return ApiError(409, "refused", text)


def _rest_field(field: str | None, given: Mapping[str, Any] | None) -> str | None:
    """The desk's name for the end of an order (expire_ns) as the request spelt it."""
    if field != "expire_ns":
        return field
    ends = [f for f in ("horizon_s", "expire_at_ns") if given and given.get(f) is not None]
    return ends[0] if ends else None
