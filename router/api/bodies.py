"""The REST request bodies as pydantic models: what the server accepts and what the
OpenAPI document says it accepts come from the same class (openapi.py publishes the
schemas of `BODIES`).

A body that breaks its model answers 422 ``validation_error`` naming the field; one that
fits the model may still be refused by the desk (risk limits, the kill switch, a horizon
past the session's close: 422 ``order_rejected`` with the reason). Rules between fields
(a limit order needs its price, participation is POV's) are checked by `check()` and
written into the schema as ``allOf`` of if/then, so a schema-valid body never fails them.
Null means absent for every optional field: clients that serialise None send it.

Every string excludes control characters: PostgreSQL cannot store NUL, and a value the
journal cannot write would stop the desk (its kill switch engages on a failed write).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.json_schema import JsonDict

from router.api.errors import invalid

# ECMA-262 semantics, as JSON Schema means them: `$` is the end of the text (Python's re
# would also let one final newline through), and whitespace spelled out, since every
# engine reads \s differently. pydantic's Rust engine reads them so, as jsonschema-rs does
# (schemathesis judges with it).
NO_CONTROL = r"^[^\u0000-\u001f\u007f]*$"
_BLANK = r"\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff"
VISIBLE = rf"^[^\u0000-\u001f\u007f]*[^{_BLANK}][^\u0000-\u001f\u007f]*$"
# A positive duration: digits with a non-zero one, an optional fraction, a unit ("90s",
# "1.5 h"); what router.config.parse_duration reads.
DURATION = r"^([0-9]*[1-9][0-9]*(\.[0-9]+)?|[0-9]+\.[0-9]*[1-9][0-9]*) ?(ms|s|m|h)?$"

PARENT_ID = r"^[A-Za-z0-9_.-]{1,64}$"  # the desk's parent ids (P0000001)
MAX_QTY = 2**53 - 1  # exact in every JSON reader (the dashboard's included)
MAX_NS = 2**63 - 1  # the database's 64-bit integers
# No instrument trades near a billion a unit; the bound keeps prices finite and their
# tick counts (price / tick) far inside 64-bit integers.
MAX_PRICE = 1e9
MAX_ID_LEN = 64
MAX_TEXT_LEN = 200


def _whole(value: object) -> object:
    """A JSON number with no fraction is an integer (JSON Schema says so: 100.0 is one)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The bounds before the validator: pydantic then writes them as JSON Schema's minimum and
# maximum; after it, it writes its own "ge"/"le", which no JSON Schema reader knows.
Qty = Annotated[int, Field(ge=1, le=MAX_QTY), BeforeValidator(_whole)]
EpochNs = Annotated[
    int,
    Field(ge=0, le=MAX_NS, description="absolute end, nanoseconds since the Unix epoch"),
    BeforeValidator(_whole),
]
Price = Annotated[float, Field(gt=0, le=MAX_PRICE)]
Seconds = Annotated[float, Field(gt=0, description="seconds")]
DurationText = Annotated[
    str, Field(max_length=32, pattern=DURATION, description="a duration: '90s', '15m', '3h'")
]
ClOrdId = Annotated[
    str,
    Field(min_length=1, max_length=MAX_ID_LEN, pattern=NO_CONTROL, description="unique per client"),
]
OrdTypeName = Literal["market", "limit"]

_CONFIG = ConfigDict(
    extra="forbid",
    strict=True,  # no "100" for 100, no true for 1: JSON Schema types, exactly
    allow_inf_nan=False,
)


def _given(name: str) -> JsonDict:
    """JSON Schema: `name` is present and not null."""
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


def _absent(name: str) -> JsonDict:
    return {"properties": {name: {"type": "null"}}}


_NEITHER_BOTH_ENDS: JsonDict = {"if": _given("horizon_s"), "then": _absent("expire_at_ns")}
_MARKET_HAS_NO_LIMIT: JsonDict = {
    "if": {"required": ["ord_type"], "properties": {"ord_type": {"const": "market"}}},
    "then": _absent("limit_price"),
}


class _Body(BaseModel):
    def check(self) -> None:
        """Rules between fields (ApiError 422 naming the field); see the module doc."""


def _check_terms(
    ord_type: str | None, limit_price: float | None, horizon: object, expire_ns: int | None
) -> None:
    """The rules that a new order and a replace share."""
    if horizon is not None and expire_ns is not None:
        raise invalid("expire_at_ns", "give horizon_s or expire_at_ns, not both")
    if ord_type == "market" and limit_price is not None:
        raise invalid("limit_price", "a market order takes no limit_price")


class OrderBody(_Body):
    """POST /api/orders."""

    model_config = ConfigDict(
        **_CONFIG,
        title="NewOrder",
        json_schema_extra={
            "allOf": [
                _NEITHER_BOTH_ENDS,
                _MARKET_HAS_NO_LIMIT,
                {
                    "if": {
                        "required": ["ord_type"],
                        "properties": {"ord_type": {"const": "limit"}},
                    },
                    "then": _given("limit_price"),
                },
                {
                    "if": _given("participation"),
                    "then": {
                        "required": ["strategy"],
                        "properties": {"strategy": {"const": "pov"}},
                    },
                },
            ]
        },
    )

    symbol: Annotated[str, Field(max_length=32, pattern=VISIBLE)]
    side: Literal["buy", "sell"]
    qty: Qty
    ord_type: OrdTypeName | None = Field(
        None, description="absent: limit if limit_price is given, else market"
    )
    limit_price: Price | None = Field(
        None, description="required for limit orders; implies ord_type limit"
    )
    horizon_s: Seconds | DurationText | None = Field(
        None,
        description="seconds, or a duration such as '90s', '15m', '3h'; absent (and no "
        "expire_at_ns): the service's default horizon",
    )
    expire_at_ns: EpochNs | None = Field(None, description="absolute end (instead of horizon_s)")
    strategy: Annotated[str, Field(max_length=32)] | None = Field(
        None, description="absent or null: the service's default strategy"
    )
    participation: Annotated[float, Field(gt=0, le=1)] | None = Field(
        None, description="pov only: the share of market volume"
    )
    cl_ord_id: ClOrdId | None = Field(None, description="generated if absent")

    def check(self) -> None:
        _check_terms(self.ord_type, self.limit_price, self.horizon_s, self.expire_at_ns)
        if self.ord_type == "limit" and self.limit_price is None:
            raise invalid("limit_price", "limit_price is required for a limit order")
        if self.participation is not None and self.strategy != "pov":
            raise invalid("participation", "participation applies to the pov strategy only")


class ReplaceBody(_Body):
    """POST /api/orders/{id}/replace: what changes; at least one of the order's terms."""

    model_config = ConfigDict(
        **_CONFIG,
        title="ReplaceOrder",
        json_schema_extra={
            "allOf": [
                _NEITHER_BOTH_ENDS,
                _MARKET_HAS_NO_LIMIT,
                {
                    "anyOf": [
                        _given(f)
                        for f in ("qty", "ord_type", "limit_price", "horizon_s", "expire_at_ns")
                    ]
                },
            ]
        },
    )

    qty: Qty | None = None
    ord_type: OrdTypeName | None = None
    limit_price: Price | None = None
    horizon_s: Seconds | DurationText | None = Field(
        None, description="the new end, from now: seconds or a duration such as '15m'"
    )
    expire_at_ns: EpochNs | None = Field(None, description="the new absolute end")
    cl_ord_id: ClOrdId | None = Field(None, description="generated if absent")

    def check(self) -> None:
        terms = (self.qty, self.ord_type, self.limit_price, self.horizon_s, self.expire_at_ns)
        if all(t is None for t in terms):
            raise invalid("qty", "nothing to replace: give qty, limit_price, ord_type or horizon_s")
        _check_terms(self.ord_type, self.limit_price, self.horizon_s, self.expire_at_ns)


class CancelBody(_Body):
    """POST /api/orders/{id}/cancel (the body is optional)."""

    model_config = ConfigDict(**_CONFIG, title="CancelOrder")

    reason: Annotated[str, Field(max_length=MAX_TEXT_LEN, pattern=NO_CONTROL)] | None = Field(
        None, description="absent or blank: 'canceled through the API'"
    )
    cl_ord_id: ClOrdId | None = Field(None, description="generated if absent")


class KillSwitchBody(_Body):
    """POST /api/kill-switch."""

    model_config = ConfigDict(**_CONFIG, title="KillSwitchEngage")

    reason: Annotated[str, Field(max_length=MAX_TEXT_LEN, pattern=VISIBLE)] = Field(
        description="why: shown with the kill switch and in every rejection while engaged"
    )


Person = Annotated[
    str,
    Field(max_length=MAX_TEXT_LEN, pattern=VISIBLE, description="who moves the alias"),
]
Why = Annotated[
    str, Field(max_length=MAX_TEXT_LEN, pattern=VISIBLE, description="why: kept in the journal")
]


class PromoteBody(_Body):
    """POST /api/models/{family}/promote."""

    model_config = ConfigDict(**_CONFIG, title="PromoteModel")

    version: Annotated[int, Field(ge=1, le=2**31 - 1), BeforeValidator(_whole)] | None = Field(
        None, description="absent: the challenger (to make it champion)"
    )
    alias: Literal["champion", "challenger"] = "champion"
    by: Person
    reason: Why
    force: bool = Field(
        False,
        description="make it champion even if it is worse than the champion on the held-out "
        "set (else 409 naming this field); journaled as forced",
    )


class RollbackBody(_Body):
    """POST /api/models/{family}/rollback."""

    model_config = ConfigDict(**_CONFIG, title="RollbackModel")

    version: Annotated[int, Field(ge=1, le=2**31 - 1), BeforeValidator(_whole)] | None = Field(
        None, description="an earlier champion in force to go back to; absent: the one before"
    )
    by: Person
    reason: Why


class ResumeModelsBody(_Body):
    """POST /api/drift/resume."""

    model_config = ConfigDict(**_CONFIG, title="ResumeModels")

    by: Annotated[
        str,
        Field(max_length=MAX_TEXT_LEN, pattern=VISIBLE, description="who gives the models back"),
    ]
    reason: Why


B = TypeVar("B", bound=_Body)

_MESSAGES = {
    "string_pattern_mismatch": "contains a control character, or is blank",
    "string_too_long": "is too long",
    "string_too_short": "must not be empty",
}


def parse(model: type[B], data: Mapping[str, Any]) -> B:
    """`data` as `model`, its field rules checked (ApiError 422 naming the first bad field;
    an unknown field first, since it is the likeliest typo)."""
    try:
        body = model.model_validate(data)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        raise _invalid(model, errors[0]) from None
    body.check()
    return body


def _invalid(model: type[_Body], error: Any) -> Exception:
    name = str(error["loc"][0]) if error["loc"] else "body"
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = ", ".join(model.model_fields)
        return invalid(name, f"unknown field {name!r} (allowed: {allowed})")
    if kind == "missing":
        return invalid(name, f"{name} is required")
    if name == "horizon_s":
        return invalid(
            name, "horizon_s must be seconds > 0 or a duration such as '90s', '15m', '3h'"
        )
    got = repr(error.get("input"))
    got = got if len(got) <= 40 else got[:37] + "..."
    what = _MESSAGES.get(kind) or str(error["msg"])[0].lower() + str(error["msg"])[1:]
    return invalid(name, f"{name}: {what} (got {got})")


# The request bodies; the OpenAPI document publishes their schemas under their titles.
BODIES: tuple[type[_Body], ...] = (
    OrderBody,
    ReplaceBody,
    CancelBody,
    KillSwitchBody,
    PromoteBody,
    RollbackBody,
    ResumeModelsBody,
)
