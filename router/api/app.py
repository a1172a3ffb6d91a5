"""The HTTP edge of `blockroute serve`: REST API, WebSocket and dashboard in one aiohttp app.

`make_app(desk, token)` builds it; the service runs it (127.0.0.1:8080 by default).
Reads are open; every mutating call (POST, PUT, PATCH, DELETE) needs
``Authorization: Bearer <token>``. Errors are JSON ``{"error", "field", "message"}``
(plus "reason" for desk rejections): 400 for a body that is not a JSON object, 422 for
a field that is wrong (named in "field"), 401/403 for auth, 404 for an unknown order,
409 for an order that cannot do that now. Input is checked in full before the desk is
called, so bad input changes nothing; the desk itself refuses what it must (duplicate
ClOrdID, risk limits, kill switch) and publishes the rejection.

The REST client is the desk client "api": its ClOrdIDs are generated when absent.
"""

from __future__ import annotations

import hmac
import json
import math
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from router.api.metrics import CONTENT_TYPE, RequestCounters, exposition
from router.api.openapi import openapi_document
from router.api.ws import WsHub, json_text
from router.config import parse_duration
from router.desk_api import (
    ML_STRATEGY,
    CancelRejectedError,
    CancelRequest,
    CxlRejReason,
    DeskError,
    DeskPort,
    InvalidStateError,
    NewOrder,
    OrderRejectedError,
    OrderStatus,
    OrdRejReason,
    ParentView,
    ReplaceRequest,
    UnknownOrderError,
)
from router.domain import OrdType, Side
from router.report import REPORT_CSS

log = structlog.get_logger("blockroute.api")

API_CLIENT = "api"
STATIC_DIR = Path(__file__).resolve().parent / "static"
_STATIC_FILES = {
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
}
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_NANOS = 1_000_000_000
_MAX_NS = 2**63 - 1  # the database's 64-bit integers
MAX_QTY = 2**53 - 1  # exact in every JSON reader (the dashboard's included)
MAX_ID_LEN = 64
_DECISIONS_MAX = 500
_REJECT_FIELDS = {
    OrdRejReason.UNKNOWN_SYMBOL: "symbol",
    OrdRejReason.INCORRECT_QUANTITY: "qty",
    OrdRejReason.DUPLICATE_ORDER: "cl_ord_id",
}
NO_TOKEN_MESSAGE = "no API token configured (set BLOCKROUTE_API_TOKEN)"


def default_strategies() -> list[str]:
    """The strategy names a client may ask for: the registry's plus "ml"."""
    from router.strategies import STRATEGIES  # the registry, not the engine

    return [*STRATEGIES, ML_STRATEGY]


# ------------------------------------------------------------------------------- errors


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
    return ApiError(422, "validation_error", message, field)


def desk_error(exc: DeskError) -> ApiError:
    """A desk refusal as an HTTP error (see the module docstring)."""
    if isinstance(exc, OrderRejectedError):
        return ApiError(
            422,
            "order_rejected",
            exc.text,
            _REJECT_FIELDS.get(exc.reason),
            reason=exc.reason.name,
        )
    if isinstance(exc, CancelRejectedError):
        unknown = exc.reason is CxlRejReason.UNKNOWN_ORDER
        return ApiError(
            404 if unknown else 409,
            "not_found" if unknown else "cancel_rejected",
            exc.text,
            reason=exc.reason.name,
        )
    if isinstance(exc, UnknownOrderError):
        return ApiError(404, "not_found", str(exc) or "unknown order")
    if isinstance(exc, InvalidStateError):
        return ApiError(409, "invalid_state", str(exc))
    return ApiError(409, "refused", str(exc))


# --------------------------------------------------------------------------- validation


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


class Body:
    """A JSON object from a request, read field by field with 422s naming the field."""

    def __init__(self, data: Mapping[str, Any], allowed: Collection[str]) -> None:
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise invalid(
                unknown[0],
                f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})",
            )
        self.data = data

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def string(self, name: str, *, required: bool = False, max_len: int = 200) -> str | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise invalid(name, f"{name} is required")
            return None
        if not isinstance(value, str):
            raise invalid(name, f"{name} must be a string, got {_type_name(value)}")
        value = value.strip()
        if not value:
            raise invalid(name, f"{name} must not be empty")
        if len(value) > max_len:
            raise invalid(name, f"{name} is longer than {max_len} characters")
        return value

    def choice(self, name: str, choices: Collection[str], *, required: bool = False) -> str | None:
        value = self.string(name, required=required)
        if value is not None and value not in choices:
            raise invalid(name, f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def integer(
        self, name: str, *, required: bool = False, minimum: int = 1, maximum: int = MAX_QTY
    ) -> int | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise invalid(name, f"{name} is required")
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(name, f"{name} must be a whole number, got {value!r}")
        if value < minimum:
            raise invalid(name, f"{name} must be >= {minimum}, got {value}")
        if value > maximum:
            raise invalid(name, f"{name} is too large (at most {maximum})")
        return value

    def number(self, name: str, *, high: float | None = None) -> float | None:
        """A finite number > 0 (and <= `high`)."""
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalid(name, f"{name} must be a number, got {_type_name(value)}")
        if not math.isfinite(value) or value <= 0:
            raise invalid(name, f"{name} must be a positive number, got {value!r}")
        if high is not None and value > high:
            raise invalid(name, f"{name} must be at most {high:g}, got {value!r}")
        return float(value)

    def duration(self, name: str) -> float | None:
        """Seconds: a number, or a string like "90s", "15m", "3h"."""
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                seconds = parse_duration(value)
            except ValueError as exc:
                raise invalid(name, f"{name}: {exc}") from None
            if seconds <= 0:
                raise invalid(name, f"{name} must be positive, got {value!r}")
            return seconds
        return self.number(name)


def _order_type(body: Body) -> OrdType | None:
    value = body.choice("ord_type", [t.value for t in OrdType])
    return None if value is None else OrdType(value)


def _expiry(body: Body, now_ns: int) -> int | None:
    """expire_ns from horizon_s (relative) or expire_at_ns (absolute), never both."""
    if body.has("horizon_s") and body.has("expire_at_ns"):
        raise invalid("expire_at_ns", "give horizon_s or expire_at_ns, not both")
    horizon = body.duration("horizon_s")
    if horizon is not None:
        return now_ns + round(horizon * _NANOS)
    expire = body.integer("expire_at_ns", minimum=0, maximum=_MAX_NS)
    if expire is not None and expire <= now_ns:
        raise invalid("expire_at_ns", f"expire_at_ns {expire} is not after now ({now_ns})")
    return expire


def _check_limit(ord_type: OrdType | None, limit_price: float | None, *, new: bool) -> None:
    if ord_type is OrdType.LIMIT and limit_price is None and new:
        raise invalid("limit_price", "limit_price is required for a limit order")
    if ord_type is OrdType.MARKET and limit_price is not None:
        raise invalid("limit_price", "a market order takes no limit_price")


def _cl_ord_id(body: Body) -> str:
    given = body.string("cl_ord_id", max_len=MAX_ID_LEN)
    return given if given is not None else f"api-{uuid.uuid4().hex[:20]}"


ORDER_FIELDS = (
    "symbol",
    "side",
    "qty",
    "ord_type",
    "limit_price",
    "horizon_s",
    "expire_at_ns",
    "strategy",
    "participation",
    "cl_ord_id",
)
REPLACE_FIELDS = ("qty", "ord_type", "limit_price", "horizon_s", "expire_at_ns", "cl_ord_id")


def new_order(data: Mapping[str, Any], strategies: Collection[str], now_ns: int) -> NewOrder:
    """The NewOrder a POST /api/orders body asks for (ApiError 422 naming the field)."""
    body = Body(data, ORDER_FIELDS)
    symbol = body.string("symbol", required=True, max_len=32)
    side = body.choice("side", [s.value for s in Side], required=True)
    qty = body.integer("qty", required=True)
    limit_price = body.number("limit_price")
    ord_type = _order_type(body) or (OrdType.LIMIT if limit_price is not None else OrdType.MARKET)
    _check_limit(ord_type, limit_price, new=True)
    strategy = body.choice("strategy", sorted(strategies))
    participation = body.number("participation", high=1.0)
    if participation is not None and strategy != "pov":
        raise invalid("participation", "participation applies to the pov strategy only")
    expire_ns = _expiry(body, now_ns)
    assert symbol is not None and side is not None and qty is not None  # required above
    return NewOrder(
        client=API_CLIENT,
        cl_ord_id=_cl_ord_id(body),
        symbol=symbol,
        side=Side(side),
        qty=qty,
        ord_type=ord_type,
        limit_price=limit_price,
        expire_ns=expire_ns,
        strategy=strategy,
        participation=participation,
    )


def replace_request(data: Mapping[str, Any], parent_id: str, now_ns: int) -> ReplaceRequest:
    body = Body(data, REPLACE_FIELDS)
    if not any(body.has(f) for f in REPLACE_FIELDS if f != "cl_ord_id"):
        raise invalid("qty", "nothing to replace: give qty, limit_price, ord_type or horizon_s")
    qty = body.integer("qty")
    ord_type = _order_type(body)
    limit_price = body.number("limit_price")
    _check_limit(ord_type, limit_price, new=False)
    return ReplaceRequest(
        client=API_CLIENT,
        cl_ord_id=_cl_ord_id(body),
        parent_id=parent_id,
        qty=qty,
        ord_type=ord_type,
        limit_price=limit_price,
        expire_ns=_expiry(body, now_ns),
    )


async def read_object(request: web.Request, *, required: bool = True) -> dict[str, Any]:
    """The request body as a JSON object (400 if it is not one); {} for an empty optional
    body."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise ApiError(400, "bad_request", "the request body is empty: send a JSON object")
        return {}
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "bad_request", f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(
            400, "bad_request", f"the request body must be a JSON object, got {_type_name(data)}"
        )
    return data


def json_response(doc: object, status: int = 200) -> web.Response:
    return web.Response(text=json_text(doc), status=status, content_type="application/json")


# ---------------------------------------------------------------------------- middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _error_response(exc: ApiError) -> web.Response:
    resp = json_response(exc.body(), exc.status)
    resp.headers.update(exc.headers)
    return resp


def _http_error(exc: web.HTTPException) -> web.StreamResponse:
    """aiohttp's own errors (no route, wrong method, body too large) as JSON errors."""
    names = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
    keep = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate")}
    error = ApiError(exc.status, names.get(exc.status, "http_error"), exc.reason, headers=keep)
    return _error_response(error)


# ---------------------------------------------------------------------------------- app


@dataclass(eq=False)
class Api:
    """The handlers, with what they share (no module state)."""

    desk: DeskPort
    token: str | None
    strategies: list[str]
    hub: WsHub
    requests: RequestCounters = field(default_factory=RequestCounters)
    static_dir: Path = STATIC_DIR

    # ---- middleware

    @web.middleware
    async def count_requests(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        status = 500
        try:
            resp = await handler(request)
            status = resp.status
            return resp
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self.requests.record(request.method, _route_of(request), status)

    @web.middleware
    async def errors_as_json(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return _error_response(exc)
        except DeskError as exc:
            return _error_response(desk_error(exc))
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _http_error(exc)
        except Exception:
            log.exception("API request failed", method=request.method, path=request.path)
            error = ApiError(500, "internal_error", "internal error: see the service log")
            return _error_response(error)

    @web.middleware
    async def require_token(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method in _MUTATING:
            self._authorize(request.headers.get("Authorization", ""))
        return await handler(request)

    def _authorize(self, header: str) -> None:
        if not self.token:
            raise ApiError(403, "forbidden", NO_TOKEN_MESSAGE)
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise ApiError(
                401,
                "unauthorized",
                "this call needs an 'Authorization: Bearer <token>' header",
                headers={"WWW-Authenticate": 'Bearer realm="blockroute"'},
            )
        if not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            raise ApiError(
                401,
                "unauthorized",
                "the bearer token is not valid",
                headers={"WWW-Authenticate": 'Bearer realm="blockroute", error="invalid_token"'},
            )

    # ---- service

    async def health(self, request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def ready(self, request: web.Request) -> web.Response:
        ready = self.desk.ready
        return json_response({"ready": ready}, 200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        gauges = {
            "ws_clients": self.hub.clients,
            "ws_connections_total": self.hub.stats.connected,
            "ws_dropped_slow_total": self.hub.stats.dropped_slow,
        }
        text = exposition(self.desk.metrics(), self.requests, gauges)
        resp = web.Response(text=text)
        resp.headers["Content-Type"] = CONTENT_TYPE
        return resp

    async def openapi(self, request: web.Request) -> web.Response:
        return json_response(openapi_document(self.strategies))

    async def info(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "symbols": self.desk.symbols(),
                "strategies": self.strategies,
                "default_strategy": ML_STRATEGY,
                "client": API_CLIENT,
                "token_configured": bool(self.token),
                "now_ns": self.desk.now_ns(),
            }
        )

    # ---- orders

    async def create_order(self, request: web.Request) -> web.Response:
        order = new_order(await read_object(request), self.strategies, self.desk.now_ns())
        view = self.desk.submit(order)
        await self.desk.sync()  # the response acknowledges: only once it is stored
        resp = json_response(view.to_json(), 201)
        resp.headers["Location"] = f"/api/orders/{view.parent_id}"
        return resp

    async def list_orders(self, request: web.Request) -> web.Response:
        status_text = request.query.get("status")
        status = None
        if status_text is not None:
            try:
                status = OrderStatus(status_text)
            except ValueError:
                known = ", ".join(s.value for s in OrderStatus)
                raise invalid("status", f"status must be one of {known}") from None
        views = self.desk.parents(status)
        return json_response({"orders": [v.to_json() for v in views]})

    def _parent(self, request: web.Request) -> ParentView:
        return self.desk.parent(request.match_info["id"])

    async def get_order(self, request: web.Request) -> web.Response:
        return json_response(self._parent(request).to_json())

    async def cancel(self, request: web.Request) -> web.Response:
        body = Body(await read_object(request, required=False), ("reason", "cl_ord_id"))
        reason = body.string("reason") or "canceled through the API"
        req = CancelRequest(
            client=API_CLIENT,
            cl_ord_id=_cl_ord_id(body),
            parent_id=request.match_info["id"],
            reason=reason,
        )
        view = self.desk.cancel(req)
        await self.desk.sync()
        return json_response(view.to_json())

    async def replace(self, request: web.Request) -> web.Response:
        data = await read_object(request)
        req = replace_request(data, request.match_info["id"], self.desk.now_ns())
        view = self.desk.replace(req)
        await self.desk.sync()
        return json_response(view.to_json())

    async def pause(self, request: web.Request) -> web.Response:
        await read_object(request, required=False)
        view = self.desk.pause(request.match_info["id"])
        await self.desk.sync()
        return json_response(view.to_json())

    async def resume(self, request: web.Request) -> web.Response:
        await read_object(request, required=False)
        view = self.desk.resume(request.match_info["id"])
        await self.desk.sync()
        return json_response(view.to_json())

    async def decisions(self, request: web.Request) -> web.Response:
        limit_text = request.query.get("limit", "50")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= _DECISIONS_MAX:
            raise invalid("limit", f"limit must be a whole number from 1 to {_DECISIONS_MAX}")
        view = self._parent(request)
        rows = self.desk.decisions(view.parent_id, int(limit_text))
        return json_response({"parent_id": view.parent_id, "decisions": rows})

    async def fills(self, request: web.Request) -> web.Response:
        view = self._parent(request)
        return json_response(
            {"parent_id": view.parent_id, "fills": self.desk.fills(view.parent_id)}
        )

    async def schedule(self, request: web.Request) -> web.Response:
        view = self._parent(request)
        return json_response(
            {
                "parent_id": view.parent_id,
                "qty": view.qty,
                "start_ns": view.start_ns,
                "end_ns": view.end_ns,
                "schedule": self.desk.schedule(view.parent_id),
            }
        )

    async def tca(self, request: web.Request) -> web.Response:
        view = self._parent(request)
        return json_response({"parent_id": view.parent_id, "tca": self.desk.tca(view.parent_id)})

    # ---- desk-wide

    async def scorecard(self, request: web.Request) -> web.Response:
        return json_response(self.desk.scorecard())

    def _kill_json(self) -> dict[str, Any]:
        return self.hub.kill.to_json(self.desk.kill_engaged)

    async def get_kill(self, request: web.Request) -> web.Response:
        return json_response(self._kill_json())

    async def engage_kill(self, request: web.Request) -> web.Response:
        body = Body(await read_object(request), ("reason",))
        reason = body.string("reason", required=True)
        assert reason is not None
        canceled = self.desk.engage_kill(reason)
        await self.desk.sync()
        return json_response({**self._kill_json(), "canceled_parents": canceled})

    async def release_kill(self, request: web.Request) -> web.Response:
        self.desk.release_kill()
        await self.desk.sync()
        return json_response(self._kill_json())

    # ---- dashboard

    async def dashboard(self, request: web.Request) -> web.StreamResponse:
        return self._file("dashboard.html", "text/html")

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name == "report.css":  # the reports' look, from its one source
            return web.Response(text=REPORT_CSS, content_type="text/css")
        if name not in _STATIC_FILES:
            raise ApiError(404, "not_found", f"no static file {name!r}")
        return self._file(name, _STATIC_FILES[name])

    def _file(self, name: str, content_type: str) -> web.Response:
        text = (self.static_dir / name).read_text(encoding="utf-8")
        resp = web.Response(text=text, content_type=content_type)
        resp.headers["Cache-Control"] = "no-cache"
        return resp


def _routes(api: Api) -> list[web.RouteDef]:
    get = web.get
    post = web.post
    return [
        get("/", api.dashboard, allow_head=False),
        get("/static/{name}", api.static, allow_head=False),
        get("/ws", api.hub.handle, allow_head=False),
        get("/health", api.health, allow_head=False),
        get("/ready", api.ready, allow_head=False),
        get("/metrics", api.metrics, allow_head=False),
        get("/api/openapi.json", api.openapi, allow_head=False),
        get("/api/info", api.info, allow_head=False),
        post("/api/orders", api.create_order),
        get("/api/orders", api.list_orders, allow_head=False),
        get("/api/orders/{id}", api.get_order, allow_head=False),
        post("/api/orders/{id}/cancel", api.cancel),
        post("/api/orders/{id}/pause", api.pause),
        post("/api/orders/{id}/resume", api.resume),
        post("/api/orders/{id}/replace", api.replace),
        get("/api/orders/{id}/decisions", api.decisions, allow_head=False),
        get("/api/orders/{id}/fills", api.fills, allow_head=False),
        get("/api/orders/{id}/schedule", api.schedule, allow_head=False),
        get("/api/orders/{id}/tca", api.tca, allow_head=False),
        get("/api/dealers/scorecard", api.scorecard, allow_head=False),
        get("/api/kill-switch", api.get_kill, allow_head=False),
        post("/api/kill-switch", api.engage_kill),
        web.delete("/api/kill-switch", api.release_kill),
    ]


API_KEY = web.AppKey("blockroute_api", Api)


def make_app(
    desk: DeskPort,
    token: str | None,
    *,
    strategies: Collection[str] | None = None,
    ws_queue_size: int = 1024,
    ws_heartbeat_s: float = 30.0,
) -> web.Application:
    """The API, WebSocket and dashboard app over `desk`.

    `token` None or empty: mutating calls answer 403. `strategies`: the names a client
    may ask for (default: the registry's plus "ml"). `ws_queue_size`: events a slow
    WebSocket client may fall behind before it is dropped.
    """
    hub = WsHub(desk, queue_size=ws_queue_size, heartbeat_s=ws_heartbeat_s)
    names = list(strategies) if strategies is not None else default_strategies()
    api = Api(desk=desk, token=token or None, strategies=names, hub=hub)
    app = web.Application(middlewares=[api.count_requests, api.errors_as_json, api.require_token])
    app[API_KEY] = api
    app.add_routes(_routes(api))
    hub.attach(app)
    return app
