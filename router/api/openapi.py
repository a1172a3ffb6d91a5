"""The OpenAPI 3.1 document served at GET /api/openapi.json, built in code.

One table (`_operations`) lists every route with its models; the tests check it
against the app's router both ways, so a route cannot be added to one and not the other.
The schemas are generated from pydantic models: the request bodies' (bodies.py) are those
the server validates with, so the two cannot disagree; the answers' (responses.py) are
checked against real answers by the tests and against the real service by schemathesis
(tests/router/api/test_schemathesis.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from router.api.bodies import (
    BODIES,
    PARENT_ID,
    CancelBody,
    KillSwitchBody,
    OrderBody,
    PromoteBody,
    ReplaceBody,
    ResumeModelsBody,
    RollbackBody,
)
from router.api.responses import (
    ANSWERS,
    DecisionList,
    Drift,
    Error,
    FillList,
    Health,
    Info,
    KillSwitch,
    ModelAliasChange,
    ModelList,
    ModelVersion,
    OrderList,
    ParentView,
    Ready,
    Schedule,
    Scorecard,
    ShadowReport,
    Tca,
    WheelReport,
)
from router.desk_api import OrderStatus

Schema = dict[str, Any]

_REF = "#/components/schemas/{model}"
_STR = {"type": "string"}
_FAMILY = {"type": "string", "enum": ["dealer", "fill", "slicer"]}
_VERSION = {"type": "string", "pattern": "^[1-9][0-9]{0,8}$", "description": "1, 2, ..."}


def _name(model: type[BaseModel]) -> str:
    """The model's component name: its title (the request bodies set one), else its class
    name."""
    return model.model_config.get("title") or model.__name__


def _ref(model: type[BaseModel]) -> Schema:
    return {"$ref": _REF.format(model=_name(model))}


def _components(models: Iterable[type[BaseModel]]) -> dict[str, Schema]:
    """Each model's JSON Schema under its name, and beside it those it refers to ($defs:
    models and enums)."""
    out: dict[str, Schema] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=_REF)
        defs = schema.pop("$defs", {})
        for name, sub in {_name(model): schema, **defs}.items():
            if out.setdefault(name, sub) != sub:
                raise ValueError(f"two different schemas named {name}")
    return out


def _schemas(strategies: Sequence[str], symbols: Sequence[str] | None) -> dict[str, Schema]:
    """The bodies' and answers' schemas, with what this service trades and runs as
    enums."""
    out = _components([*BODIES, *ANSWERS])
    order = out["NewOrder"]["properties"]
    order["strategy"] = {
        "type": ["string", "null"],
        "enum": [*strategies, None],
        "description": order["strategy"]["description"],
    }
    if symbols is not None:
        order["symbol"] = {**order["symbol"], "enum": list(symbols)}
    return out


# ---------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    op_id: str
    summary: str
    ok: int = 200
    response: type[BaseModel] | None = None  # JSON
    body: type[BaseModel] | None = None
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
    404: "unknown order (models: unknown family or version, or no model registry)",
    409: (
        "the order cannot do that now (models: nothing to roll back, already holds it; "
        "drift: the models are not withdrawn)"
    ),
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
        Op("get", "/health", "health", "Liveness", response=Health, tags=svc),
        Op("get", "/ready", "ready", "Readiness", response=Ready, also=(503,), tags=svc),
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
            response=Info,
            tags=svc,
        ),
        Op(
            "post",
            "/api/orders",
            "createOrder",
            "Create a parent order",
            ok=201,
            response=ParentView,
            body=OrderBody,
            errors=(400, 401, 403, 422, 503),
        ),
        Op(
            "get",
            "/api/orders",
            "listOrders",
            "Parent orders, newest first",
            response=OrderList,
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
            response=ParentView,
            errors=(404,),
        ),
        Op(
            "post",
            "/api/orders/{id}/cancel",
            "cancelOrder",
            "Cancel a parent order (pulls every child)",
            response=ParentView,
            body=CancelBody,
            body_required=False,
            errors=(400, 401, 403, 404, 409, 422, 503),
        ),
        Op(
            "post",
            "/api/orders/{id}/pause",
            "pauseOrder",
            "Pull the children and stop trading",
            response=ParentView,
            errors=(400, 401, 403, 404, 409, 503),
        ),
        Op(
            "post",
            "/api/orders/{id}/resume",
            "resumeOrder",
            "Resume a paused order",
            response=ParentView,
            errors=(400, 401, 403, 404, 409, 503),
        ),
        Op(
            "post",
            "/api/orders/{id}/replace",
            "replaceOrder",
            "Change quantity, limit or horizon",
            response=ParentView,
            body=ReplaceBody,
            errors=(400, 401, 403, 404, 409, 422, 503),
        ),
        Op(
            "get",
            "/api/orders/{id}/decisions",
            "orderDecisions",
            "Routing decisions, newest first: why this venue",
            response=DecisionList,
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
            response=FillList,
            errors=(404, 503),
        ),
        Op(
            "get",
            "/api/orders/{id}/schedule",
            "orderSchedule",
            "Schedule vs realised at each decision",
            response=Schedule,
            errors=(404, 503),
        ),
        Op(
            "get",
            "/api/orders/{id}/tca",
            "orderTca",
            "Transaction cost analysis (409 while the order works)",
            response=Tca,
            errors=(404, 409, 503),
        ),
        Op(
            "get",
            "/api/dealers/scorecard",
            "dealerScorecard",
            "The dealer scorecard of this service's RFQs",
            response=Scorecard,
            tags=("dealers",),
        ),
        Op(
            "get",
            "/api/kill-switch",
            "getKillSwitch",
            "Kill switch state",
            response=KillSwitch,
            tags=("kill switch",),
        ),
        Op(
            "post",
            "/api/kill-switch",
            "engageKillSwitch",
            "Engage: cancel every working order and refuse new ones",
            response=KillSwitch,
            body=KillSwitchBody,
            errors=(400, 401, 403, 422, 503),
            tags=("kill switch",),
        ),
        Op(
            "delete",
            "/api/kill-switch",
            "releaseKillSwitch",
            "Release: accept orders again",
            response=KillSwitch,
            errors=(401, 403, 409, 503),
            tags=("kill switch",),
        ),
        Op(
            "get",
            "/api/models",
            "listModels",
            "Every version of every model family, with its aliases",
            response=ModelList,
            errors=(404,),
            tags=("models",),
        ),
        Op(
            "get",
            "/api/models/shadow",
            "shadowModels",
            "Shadow mode: each challenger's agreement with its champion, its latency and "
            "its latest disagreements",
            response=ShadowReport,
            description="No family without a model registry ([models] registry = true).",
            tags=("models",),
        ),
        Op(
            "get",
            "/api/models/{family}/versions/{version}",
            "showModel",
            "One version: metrics, parameters, lineage",
            response=ModelVersion,
            errors=(404,),
            tags=("models",),
        ),
        Op(
            "post",
            "/api/models/{family}/promote",
            "promoteModel",
            "Give a version the champion (or challenger) alias: what the service serves",
            response=ModelAliasChange,
            body=PromoteBody,
            errors=(400, 401, 403, 404, 409, 422),
            tags=("models",),
        ),
        Op(
            "post",
            "/api/models/{family}/rollback",
            "rollbackModel",
            "Give the champion back to the previous champion",
            response=ModelAliasChange,
            body=RollbackBody,
            errors=(400, 401, 403, 404, 409, 422),
            tags=("models",),
        ),
        Op(
            "get",
            "/api/models/wheel",
            "modelWheel",
            "The algo wheel's live results: challenger against champion, promote or keep",
            response=WheelReport,
            errors=(404, 422),
            tags=("models",),
            query=(
                {
                    "name": "family",
                    "in": "query",
                    "required": False,
                    "schema": _FAMILY,
                    "description": "the arms must differ in it",
                },
                {
                    "name": "since",
                    "in": "query",
                    "required": False,
                    "schema": _STR,
                    "description": "a duration back from now (90m, 24h) or an ISO 8601 time",
                },
                {
                    "name": "min_effect_bps",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "number", "exclusiveMinimum": 0, "default": 2.0},
                },
                *(
                    {
                        "name": name,
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "number",
                            "exclusiveMinimum": 0,
                            "exclusiveMaximum": 1,
                            "default": default,
                        },
                    }
                    for name, default in (("alpha", 0.05), ("power", 0.8))
                ),
            ),
            description=(
                "From the journal: per arm the completed parents and their mean IS with its "
                "standard error; the difference challenger - champion (Welch, matched by "
                "symbol and side), the parents needed for the minimum effect, and the "
                "recommendation (`verdict` inconclusive until then). 404 while no parent "
                "of the wheel is journaled, or without a model registry."
            ),
        ),
        Op(
            "get",
            "/api/drift",
            "getDrift",
            "Drift of the learned models: inputs outside the training range, calibration, "
            "IS against the pre-trade estimate; the alerts and the fallback",
            response=Drift,
            tags=("models",),
        ),
        Op(
            "post",
            "/api/drift/resume",
            "resumeModels",
            "Serve the learned models again after a drift fallback",
            response=Drift,
            body=ResumeModelsBody,
            errors=(400, 401, 403, 409, 422, 503),
            tags=("models",),
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
            "content": {"application/json": {"schema": _ref(Error)}},
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
    if "{family}" in op.path:
        params.append({"name": "family", "in": "path", "required": True, "schema": _FAMILY})
    if "{version}" in op.path:
        params.append({"name": "version", "in": "path", "required": True, "schema": _VERSION})
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
