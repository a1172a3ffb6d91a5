"""The OpenAPI 3.1 document served at GET /api/openapi.json, built in code.

One table (`_operations`) lists every route with its schemas; the tests check it
against the app's router both ways, so a route cannot be added to one and not the other.
The request bodies' schemas are the pydantic models' (bodies.py) that the server
validates with, so the two cannot disagree; the answers' schemas are written here and
checked against the real service by schemathesis (tests/router/api/test_schemathesis.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from router.api.bodies import PARENT_ID, request_schemas
from router.desk_api import CxlRejReason, OrderStatus, OrdRejReason

Schema = dict[str, Any]

_INT = {"type": "integer"}
_NUM = {"type": "number"}
_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_NS = {"type": "integer", "description": "nanoseconds since the Unix epoch, service clock"}


def _nullable(schema: Schema) -> Schema:
    return {**schema, "type": [schema["type"], "null"]}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Schema], required: Sequence[str] = (), **extra: Any) -> Schema:
    out: Schema = {"type": "object", "properties": props, **extra}
    if required:
        out["required"] = list(required)
    return out


def _list_of(key: str, item: Schema, **more: Schema) -> Schema:
    return _obj({**more, key: {"type": "array", "items": item}}, [*more, key])


def _requests(strategies: Sequence[str], symbols: Sequence[str] | None) -> dict[str, Schema]:
    """The bodies' schemas, with what this service trades and runs as enums."""
    out = request_schemas()
    order = out["NewOrder"]["properties"]
    order["strategy"] = {
        "type": ["string", "null"],
        "enum": [*strategies, None],
        "description": order["strategy"]["description"],
    }
    if symbols is not None:
        order["symbol"] = {**order["symbol"], "enum": list(symbols)}
    return out


def _schemas(strategies: Sequence[str], symbols: Sequence[str] | None) -> dict[str, Schema]:
    status = {"type": "string", "enum": [s.value for s in OrderStatus]}
    side = {"type": "string", "enum": ["buy", "sell"]}
    ord_type = {"type": "string", "enum": ["market", "limit"]}
    parent_view = _obj(
        {
            "parent_id": _STR,
            "client": {**_STR, "description": 'FIX SenderCompID, or "api"'},
            "cl_ord_id": {**_STR, "description": "the latest accepted ClOrdID"},
            "orig_cl_ord_id": {**_STR, "description": "the ClOrdID it was created with"},
            "symbol": _STR,
            "side": side,
            "qty": _INT,
            "ord_type": ord_type,
            "limit_price": _nullable(_NUM),
            "strategy": _STR,
            "participation": _nullable(_NUM),
            "status": status,
            "start_ns": _NS,
            "end_ns": _NS,
            "filled_qty": _INT,
            "avg_price": {**_NUM, "description": "0 before the first fill"},
            "arrival_mid": _NUM,
            "n_children": _INT,
            "updated_ns": _NS,
            "text": {**_STR, "description": "why it ended, when it did not fill"},
            "leaves_qty": _INT,
        },
        [
            "parent_id",
            "client",
            "cl_ord_id",
            "orig_cl_ord_id",
            "symbol",
            "side",
            "qty",
            "ord_type",
            "limit_price",
            "strategy",
            "participation",
            "status",
            "start_ns",
            "end_ns",
            "filled_qty",
            "avg_price",
            "arrival_mid",
            "n_children",
            "updated_ns",
            "text",
            "leaves_qty",
        ],
    )
    error = _obj(
        {
            "error": {**_STR, "description": "a short code: validation_error, not_found, ..."},
            "field": {"type": ["string", "null"], "description": "the field at fault"},
            "message": _STR,
            "reason": {
                "type": "string",
                "description": "OrdRejReason or CxlRejReason name, for desk refusals",
                "enum": sorted({r.name for r in OrdRejReason} | {r.name for r in CxlRejReason}),
            },
        },
        ["error", "field", "message"],
    )
    kill = _obj(
        {
            "engaged": _BOOL,
            "reason": _STR,
            "changed_ns": _nullable(_INT),
            "canceled_parents": _INT,
        },
        ["engaged", "reason", "changed_ns", "canceled_parents"],
    )
    fill = _obj(
        {
            "exec_id": _STR,
            "child_id": _STR,
            "ts_ns": _NS,
            "venue": _STR,
            "venue_kind": {"type": "string", "enum": ["lit", "dark", "rfq"]},
            "qty": _INT,
            "price": _NUM,
            "fee": _NUM,
            "liquidity": _STR,
        },
        ["exec_id", "child_id", "ts_ns", "venue", "venue_kind", "qty", "price"],
    )
    decision = _obj(
        {
            "decision_id": _STR,
            "ts_ns": _NS,
            "chosen": {**_STR, "description": "the venue or action chosen"},
            "inputs": {"type": "object", "additionalProperties": _NUM},
            "alternatives": {
                "type": "object",
                "additionalProperties": _NUM,
                "description": "every candidate with its score (expected cost)",
            },
        },
        ["decision_id", "ts_ns", "chosen", "inputs", "alternatives"],
    )
    point = _obj(
        {"ts_ns": _NS, "target_qty": _NUM, "filled_qty": _NUM},
        ["ts_ns", "target_qty", "filled_qty"],
    )
    # null where there is nothing to measure yet (no answer, no trade): a rate of 0 would
    # say something false, and JSON has no NaN
    ratio = {"type": ["number", "null"], "description": "null until there is data"}
    dealer = _obj(
        {
            "dealer": _STR,
            "rfqs": _INT,
            "response_rate": ratio,
            "hit_ratio": ratio,
            "cover_rate": ratio,
            "avg_response_ms": ratio,
            "price_improvement_bps": ratio,
            "markout_bps": ratio,
        },
        ["dealer", "rfqs"],
    )
    return {
        **_requests(strategies, symbols),
        "ParentView": parent_view,
        "Error": error,
        "OrderList": _list_of("orders", _ref("ParentView")),
        "Fill": fill,
        "FillList": _list_of("fills", _ref("Fill"), parent_id=_STR),
        "Decision": decision,
        "DecisionList": _list_of("decisions", _ref("Decision"), parent_id=_STR),
        "SchedulePoint": point,
        "Schedule": _list_of(
            "schedule", _ref("SchedulePoint"), parent_id=_STR, qty=_INT, start_ns=_NS, end_ns=_NS
        ),
        "Tca": _obj(
            {
                "parent_id": _STR,
                "tca": {
                    "type": "object",
                    "description": "implementation shortfall (bps, positive = cost) and parts",
                },
            },
            ["parent_id", "tca"],
        ),
        "Scorecard": _list_of("dealers", _ref("Dealer")),
        "Dealer": dealer,
        "KillSwitch": kill,
        "Info": _obj(
            {
                "symbols": {"type": "array", "items": _STR},
                "strategies": {"type": "array", "items": _STR},
                "default_strategy": _STR,
                "client": _STR,
                "token_configured": _BOOL,
                "now_ns": _NS,
            },
            ["symbols", "strategies", "default_strategy", "token_configured", "now_ns"],
        ),
        "Health": _obj({"status": {"const": "ok"}}, ["status"]),
        "Ready": _obj({"ready": _BOOL}, ["ready"]),
        "Snapshot": _obj(
            {
                "type": {"const": "snapshot"},
                "orders": {"type": "array", "items": _ref("ParentView")},
                "kill_switch": _ref("KillSwitch"),
                "now_ns": _NS,
            },
            ["type", "orders", "kill_switch", "now_ns"],
        ),
    }


# ---------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    op_id: str
    summary: str
    ok: int = 200
    response: str | None = None  # a component schema name (JSON)
    body: str | None = None
    body_required: bool = True
    errors: tuple[int, ...] = ()  # answered with an Error
    also: tuple[int, ...] = ()  # answered with the same schema as `ok`
    media: str = "application/json"
    query: tuple[Schema, ...] = ()
    description: str = ""
    tags: tuple[str, ...] = field(default=("orders",))

    @property
    def secured(self) -> bool:
        return self.method in ("post", "put", "patch", "delete")


_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": PARENT_ID},
    "description": "parent_id",
}
_ERROR_TEXT = {
    400: "the body is not a JSON object",
    401: "missing or wrong bearer token",
    403: "no API token configured (set BLOCKROUTE_API_TOKEN)",
    404: "unknown order",
    409: "the order cannot do that now",
    422: (
        "`error` validation_error: the request breaks this document's schema (`field` names "
        "where); `error` order_rejected: the desk refused a well-formed order (`reason`)"
    ),
    503: "the database cannot be written or read now: try again (Retry-After)",
}
_ALSO_TEXT = {503: "not ready: starting, stopping, or the database cannot be written"}


def _operations() -> list[Op]:
    svc = ("service",)
    return [
        Op("get", "/", "dashboard", "The live dashboard (HTML)", media="text/html", tags=svc),
        Op(
            "get",
            "/static/{name}",
            "staticFile",
            "The dashboard's script and stylesheets",
            media="text/plain",
            errors=(404,),
            tags=svc,
        ),
        Op(
            "get",
            "/ws",
            "events",
            "WebSocket of desk events",
            ok=101,
            media="",
            tags=svc,
            description=(
                "Upgrade to a WebSocket. The first message is a Snapshot; then every desk "
                "event's JSON payload (`type`, `ts_ns`, `parent_id` and the event's fields; "
                "`order` carries the ParentView) as it happens. A client that falls too far "
                "behind is closed with code 1013 and should reconnect."
            ),
        ),
        Op("get", "/health", "health", "Liveness", response="Health", tags=svc),
        Op("get", "/ready", "ready", "Readiness", response="Ready", also=(503,), tags=svc),
        Op(
            "get",
            "/metrics",
            "metrics",
            "Prometheus metrics (text format 0.0.4)",
            media="text/plain",
            tags=svc,
        ),
        Op("get", "/api/openapi.json", "openapi", "This document", tags=svc),
        Op(
            "get",
            "/api/info",
            "info",
            "Symbols, strategies, auth set-up",
            response="Info",
            tags=svc,
        ),
        Op(
            "post",
            "/api/orders",
            "createOrder",
            "Create a parent order",
            ok=201,
            response="ParentView",
            body="NewOrder",
            errors=(400, 401, 403, 422, 503),
        ),
        Op(
            "get",
            "/api/orders",
            "listOrders",
            "Parent orders, newest first",
            response="OrderList",
            errors=(422,),
            query=(
                {
                    "name": "status",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "enum": [s.value for s in OrderStatus]},
                },
            ),
        ),
        Op(
            "get",
            "/api/orders/{id}",
            "getOrder",
            "One parent order",
            response="ParentView",
            errors=(404,),
        ),
        Op(
            "post",
            "/api/orders/{id}/cancel",
            "cancelOrder",
            "Cancel a parent order (pulls every child)",
            response="ParentView",
            body="CancelOrder",
            body_required=False,
            errors=(400, 401, 403, 404, 409, 422, 503),
        ),
        Op(
            "post",
            "/api/orders/{id}/pause",
            "pauseOrder",
            "Pull the children and stop trading",
            response="ParentView",
            errors=(400, 401, 403, 404, 409, 503),
        ),
        Op(
            "post",
            "/api/orders/{id}/resume",
            "resumeOrder",
            "Resume a paused order",
            response="ParentView",
            errors=(400, 401, 403, 404, 409, 503),
        ),
        Op(
            "post",
            "/api/orders/{id}/replace",
            "replaceOrder",
            "Change quantity, limit or horizon",
            response="ParentView",
            body="ReplaceOrder",
            errors=(400, 401, 403, 404, 409, 422, 503),
        ),
        Op(
            "get",
            "/api/orders/{id}/decisions",
            "orderDecisions",
            "Routing decisions, newest first: why this venue",
            response="DecisionList",
            errors=(404, 422, 503),
            query=(
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                },
            ),
        ),
        Op(
            "get",
            "/api/orders/{id}/fills",
            "orderFills",
            "Child fills",
            response="FillList",
            errors=(404, 503),
        ),
        Op(
            "get",
            "/api/orders/{id}/schedule",
            "orderSchedule",
            "Schedule vs realised at each decision",
            response="Schedule",
            errors=(404, 503),
        ),
        Op(
            "get",
            "/api/orders/{id}/tca",
            "orderTca",
            "Transaction cost analysis (409 while the order works)",
            response="Tca",
            errors=(404, 409, 503),
        ),
        Op(
            "get",
            "/api/dealers/scorecard",
            "dealerScorecard",
            "The dealer scorecard of this service's RFQs",
            response="Scorecard",
            tags=("dealers",),
        ),
        Op(
            "get",
            "/api/kill-switch",
            "getKillSwitch",
            "Kill switch state",
            response="KillSwitch",
            tags=("kill switch",),
        ),
        Op(
            "post",
            "/api/kill-switch",
            "engageKillSwitch",
            "Engage: cancel every working order and refuse new ones",
            response="KillSwitch",
            body="KillSwitchEngage",
            errors=(400, 401, 403, 422, 503),
            tags=("kill switch",),
        ),
        Op(
            "delete",
            "/api/kill-switch",
            "releaseKillSwitch",
            "Release: accept orders again",
            response="KillSwitch",
            errors=(401, 403, 409, 503),
            tags=("kill switch",),
        ),
    ]


def _operation(op: Op) -> Schema:
    content: Schema = {}
    if op.response:
        content = {"content": {op.media: {"schema": _ref(op.response)}}}
    elif op.media:
        kind = "object" if op.media == "application/json" else "string"
        content = {"content": {op.media: {"schema": {"type": kind}}}}
    responses: Schema = {str(op.ok): {"description": op.summary, **content}}
    for status in op.also:
        responses[str(status)] = {"description": _ALSO_TEXT[status], **content}
    for status in op.errors:
        responses[str(status)] = {
            "description": _ERROR_TEXT[status],
            "content": {"application/json": {"schema": _ref("Error")}},
        }
    out: Schema = {
        "operationId": op.op_id,
        "summary": op.summary,
        "tags": list(op.tags),
        "responses": responses,
    }
    if op.description:
        out["description"] = op.description
    params = [*(p for p in ([_ID] if "{id}" in op.path else [])), *op.query]
    if "{name}" in op.path:
        params.append({"name": "name", "in": "path", "required": True, "schema": _STR})
    if params:
        out["parameters"] = params
    if op.body:
        out["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    out["security"] = [{"bearerAuth": []}] if op.secured else []
    return out


def openapi_document(
    strategies: Sequence[str], symbols: Sequence[str] | None = None
) -> dict[str, Any]:
    """The whole document; `strategies` are the names POST /api/orders accepts, `symbols`
    (if given) those the desk trades."""
    ops = _operations()
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    # What a client can do with the order it created: links from the 201 to every
    # per-order operation (schemathesis's stateful phase follows them too)
    paths["/api/orders"]["post"]["responses"]["201"]["links"] = {
        op.op_id: {"operationId": op.op_id, "parameters": {"id": "$response.body#/parent_id"}}
        for op in ops
        if "{id}" in op.path
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "blockroute",
            "version": "1",
            "description": (
                "Smart order router and multi-dealer RFQ desk. Reads are open; mutating "
                "calls need `Authorization: Bearer <token>` (BLOCKROUTE_API_TOKEN). Times "
                "are nanoseconds since the Unix epoch on the service clock; quantities in "
                "shares; prices in the instrument's currency."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(strategies, symbols),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
