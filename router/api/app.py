"""The HTTP edge of `blockroute serve`: REST API, WebSocket and dashboard in one aiohttp app.

`make_app(desk, token)` builds it; the service runs it (127.0.0.1:8080 by default).
Reads are open; every mutating call (POST, PUT, PATCH, DELETE) needs
``Authorization: Bearer <token>``; an unknown path or method answers 404/405 before
that. Errors are JSON ``{"error", "field", "message"}`` (plus "reason" for desk
rejections, see errors.py): 400 for a body that is not a JSON object, 422 for a field
that breaks the request schema (named in "field") or an order the desk refused, 401/403
for auth, 404 for an unknown order, 409 for an order that cannot do that now. Bodies are
the pydantic models of bodies.py, which the OpenAPI document publishes, and are checked
in full before the desk is called, so bad input changes nothing; the desk itself
refuses what it must (duplicate ClOrdID, risk limits, kill switch) and publishes the
rejection.

The REST client is the desk client "api": its ClOrdIDs are generated when absent.

/api/drift is the drift monitor's (router.drift): its figures, alerts and fallback;
POST /api/drift/resume (behind the token) serves the models again after a fallback.

/api/models is the model registry's (router.model_admin; its handlers are
router/api/models.py), when the service has one:
list and show versions, promote and roll back (behind the token, like every move);
without one it answers 404 `no_registry`. Its work reads and writes a database and
files, so it runs off the loop, one move at a time. A move is served at once (the
service swaps its models live, router.hotswap): the answer and GET /api/models say what
is served. A promotion to champion of a version worse than the champion on the held-out
set answers 409 `worse_than_champion` naming the field `force`. GET /api/models/wheel
reports the algo wheel's live results (router.wheel_stats): 404 until the journal holds
a parent of the wheel, 422 naming the query parameter at fault. GET /api/models/shadow
reports shadow mode: each family's challenger asked beside its champion, how often
they agree, the challenger's latency and its latest disagreements.
"""

from __future__ import annotations

import hmac
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from router.api.bodies import (
    MAX_NS,
    PARENT_ID,
    CancelBody,
    KillSwitchBody,
    OrderBody,
    ReplaceBody,
    ResumeModelsBody,
    parse,
)
from router.api.errors import ApiError, desk_error, invalid
from router.api.http import DIGITS, json_response, read_object
from router.api.models import ModelsApi, ModelSwaps
from router.api.openapi import openapi_document
from router.api.ws import WsHub
from router.config import parse_duration
from router.desk_api import (
    ML_STRATEGY,
    CancelRequest,
    DeskError,
    DeskPort,
    NewOrder,
    OrderStatus,
    ParentView,
    ReplaceRequest,
    UnknownOrderError,
)
from router.domain import OrdType, Side
from router.model_admin import ModelAdmin
from router.reporting import REPORT_CSS
from router.strategies import STRATEGIES
from router.telemetry import CONTENT_TYPE, FigureCollector, HttpMetrics, exposition

log = structlog.get_logger("blockroute.api")

API_CLIENT = "api"
STATIC_DIR = Path(__file__).resolve().parent / "static"
_STATIC_FILES = {
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
}
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_NANOS = 1_000_000_000
_DECISIONS_MAX = 500
# Any other id is an unknown order without asking the desk, so that no garbage reaches
# its rejection events and journal.
_PARENT_ID = re.compile(PARENT_ID)
NO_TOKEN_MESSAGE = "no API token configured (set BLOCKROUTE_API_TOKEN)"


def default_strategies() -> list[str]:
    """The strategy names a client may ask for: the registry's (which has "ml", the
    default), each once."""
    return list(dict.fromkeys([*STRATEGIES, ML_STRATEGY]))


# ------------------------------------------------------------------- bodies to commands


ORDER_FIELDS = tuple(OrderBody.model_fields)
REPLACE_FIELDS = tuple(ReplaceBody.model_fields)


def _expire_ns(horizon: float | str | None, expire_at_ns: int | None, now_ns: int) -> int | None:
    """The absolute end from horizon_s (relative) or expire_at_ns (absolute)."""
    if horizon is None:
        return expire_at_ns
    seconds = parse_duration(horizon)  # the schema's pattern lets only durations through
    # An absurd horizon ends after the session's close, which the desk refuses by name;
    # capped here so that it stays a 64-bit integer on the way.
    return min(now_ns + round(min(seconds, MAX_NS / _NANOS) * _NANOS), MAX_NS)


def _cl_ord_id(given: str | None) -> str:
    return given if given is not None else f"api-{uuid.uuid4().hex[:20]}"


def new_order(data: Mapping[str, Any], strategies: Collection[str], now_ns: int) -> NewOrder:
    """The NewOrder a POST /api/orders body asks for (ApiError 422 naming the field)."""
    body = parse(OrderBody, data)
    if body.strategy is not None and body.strategy not in strategies:
        names = ", ".join(sorted(strategies))
        raise invalid("strategy", f"strategy must be one of {names}, got {body.strategy!r}")
    ord_type = body.ord_type or ("limit" if body.limit_price is not None else "market")
    return NewOrder(
        client=API_CLIENT,
        cl_ord_id=_cl_ord_id(body.cl_ord_id),
        symbol=body.symbol,
        side=Side(body.side),
        qty=body.qty,
        ord_type=OrdType(ord_type),
        limit_price=body.limit_price,
        expire_ns=_expire_ns(body.horizon_s, body.expire_at_ns, now_ns),
        strategy=body.strategy,
        participation=body.participation,
    )


def replace_request(data: Mapping[str, Any], parent_id: str, now_ns: int) -> ReplaceRequest:
    body = parse(ReplaceBody, data)
    return ReplaceRequest(
        client=API_CLIENT,
        cl_ord_id=_cl_ord_id(body.cl_ord_id),
        parent_id=parent_id,
        qty=body.qty,
        ord_type=None if body.ord_type is None else OrdType(body.ord_type),
        limit_price=body.limit_price,
        expire_ns=_expire_ns(body.horizon_s, body.expire_at_ns, now_ns),
    )


def _parent_id(request: web.Request) -> str:
    parent_id = request.match_info["id"]
    if not _PARENT_ID.fullmatch(parent_id):
        raise UnknownOrderError(f"unknown order {parent_id!r}")
    return parent_id


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
    registry: CollectorRegistry  # what GET /metrics shows
    http: HttpMetrics
    registry_api: ModelsApi  # /api/models... (router/api/models.py)
    static_dir: Path = STATIC_DIR

    # ---- middleware

    @web.middleware
    async def count_requests(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        status = 500
        start = time.perf_counter()
        try:
            resp = await handler(request)
            status = resp.status
            return resp
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            elapsed = time.perf_counter() - start
            self.http.record(request.method, _route_of(request), status, elapsed)

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
        no_route = request.match_info.http_exception
        if no_route is not None:
            # 404/405 first: whether a path exists is no secret (the OpenAPI document
            # lists them all), and a client that asks for the wrong one must be told so
            # rather than to authenticate
            raise no_route
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
        resp = web.Response(body=exposition(self.registry))
        resp.headers["Content-Type"] = CONTENT_TYPE
        return resp

    def ws_figures(self) -> dict[str, float]:
        """The WebSocket hub's figures for the metrics page."""
        return {
            "ws_clients": self.hub.clients,
            "ws_connections_total": self.hub.stats.connected,
            "ws_dropped_slow_total": self.hub.stats.dropped_slow,
        }

    async def openapi(self, request: web.Request) -> web.Response:
        return json_response(openapi_document(self.strategies, self.desk.symbols()))

    async def info(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "symbols": self.desk.symbols(),
                "strategies": self.strategies,
                "default_strategy": self.desk.default_strategy,
                "client": API_CLIENT,
                "token_configured": bool(self.token),
                "now_ns": self.desk.now_ns(),
            }
        )

    # ---- orders

    async def create_order(self, request: web.Request) -> web.Response:
        data = await read_object(request)
        order = new_order(data, self.strategies, self.desk.now_ns())
        try:
            view = self.desk.submit(order)
        except DeskError as exc:
            raise desk_error(exc, data) from None
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
        return self.desk.parent(_parent_id(request))

    async def get_order(self, request: web.Request) -> web.Response:
        return json_response(self._parent(request).to_json())

    async def cancel(self, request: web.Request) -> web.Response:
        parent_id = _parent_id(request)
        body = parse(CancelBody, await read_object(request, required=False))
        req = CancelRequest(
            client=API_CLIENT,
            cl_ord_id=_cl_ord_id(body.cl_ord_id),
            parent_id=parent_id,
            reason=(body.reason or "").strip() or "canceled through the API",
        )
        view = self.desk.cancel(req)
        await self.desk.sync()
        return json_response(view.to_json())

    async def replace(self, request: web.Request) -> web.Response:
        parent_id = _parent_id(request)
        data = await read_object(request)
        req = replace_request(data, parent_id, self.desk.now_ns())
        try:
            view = self.desk.replace(req)
        except DeskError as exc:
            raise desk_error(exc, data) from None
        await self.desk.sync()
        return json_response(view.to_json())

    async def pause(self, request: web.Request) -> web.Response:
        parent_id = _parent_id(request)
        await read_object(request, required=False)
        view = self.desk.pause(parent_id)
        await self.desk.sync()
        return json_response(view.to_json())

    async def resume(self, request: web.Request) -> web.Response:
        parent_id = _parent_id(request)
        await read_object(request, required=False)
        view = self.desk.resume(parent_id)
        await self.desk.sync()
        return json_response(view.to_json())

    async def decisions(self, request: web.Request) -> web.Response:
        limit_text = request.query.get("limit", "50")
        # ASCII digits only: str.isdigit() would pass "²", which int() refuses
        if not DIGITS.fullmatch(limit_text) or not 1 <= int(limit_text) <= _DECISIONS_MAX:
            raise invalid("limit", f"limit must be a whole number from 1 to {_DECISIONS_MAX}")
        view = self._parent(request)
        await self._committed()
        rows = self.desk.decisions(view.parent_id, int(limit_text))
        return json_response({"parent_id": view.parent_id, "decisions": rows})

    async def fills(self, request: web.Request) -> web.Response:
        view = self._parent(request)
        await self._committed()
        return json_response(
            {"parent_id": view.parent_id, "fills": self.desk.fills(view.parent_id)}
        )

    async def schedule(self, request: web.Request) -> web.Response:
        view = self._parent(request)
        await self._committed()
        return json_response(
            {
                "parent_id": view.parent_id,
                "qty": view.qty,
                "start_ns": view.start_ns,
                "end_ns": view.end_ns,
                "schedule": self.desk.schedule(view.parent_id),
            }
        )

    async def _committed(self) -> None:
        """Before a read of the journal (decisions, fills, schedule): what the desk did
        so far is committed first. The order's view changes at once and the journal only
        when the outbox has written (router/desk/outbox.py), so a client that saw a fill
        or the end in the view would otherwise miss the last rows behind it. 503 while
        the journal cannot write, as for a change."""
        await self.desk.sync()

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
        body = parse(KillSwitchBody, await read_object(request))
        canceled = self.desk.engage_kill(body.reason.strip())
        await self.desk.sync()
        return json_response({**self._kill_json(), "canceled_parents": canceled})

    async def release_kill(self, request: web.Request) -> web.Response:
        self.desk.release_kill()
        await self.desk.sync()
        return json_response(self._kill_json())

    # ---- drift

    async def drift(self, request: web.Request) -> web.Response:
        return json_response(self.desk.drift())

    async def resume_models(self, request: web.Request) -> web.Response:
        body = parse(ResumeModelsBody, await read_object(request))
        doc = self.desk.resume_models(body.by.strip(), body.reason.strip())
        await self.desk.sync()  # answered once the resume is journaled
        return json_response(doc)

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
    models = api.registry_api
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
        get("/api/drift", api.drift, allow_head=False),
        post("/api/drift/resume", api.resume_models),
        get("/api/models", models.list_models, allow_head=False),
        get("/api/models/shadow", models.shadow_models, allow_head=False),
        get("/api/models/{family}/versions/{version}", models.show_model, allow_head=False),
        post("/api/models/{family}/promote", models.promote_model),
        post("/api/models/{family}/rollback", models.rollback_model),
        get("/api/models/wheel", models.model_wheel, allow_head=False),
    ]


API_KEY = web.AppKey("blockroute_api", Api)


def make_app(
    desk: DeskPort,
    token: str | None,
    *,
    strategies: Collection[str] | None = None,
    ws_queue_size: int = 1024,
    ws_heartbeat_s: float = 30.0,
    registry: CollectorRegistry | None = None,
    models: ModelAdmin | None = None,
    swapper: ModelSwaps | None = None,
    shadow: Callable[[], dict[str, Any]] | None = None,
) -> web.Application:
    """The API, WebSocket and dashboard app over `desk`.

    `token` None or empty: mutating calls answer 403. `strategies`: the names a client
    may ask for (default: the registry's plus "ml"). `ws_queue_size`: events a slow
    WebSocket client may fall behind before it is dropped. `registry`: the service's
    metrics, in which the desk registered its own, and to which the API adds its own;
    GET /metrics shows them (default: a registry of this app's alone, with the desk's
    `metrics()` figures read at each scrape). `models`: the model registry that
    /api/models lists and moves (None: those answer 404 no_registry); `swapper`: what
    serves a moved champion at once (the service's; None: nothing is swapped); `shadow`:
    shadow mode's report, GET /api/models/shadow (the desk's `shadow_report`).
    """
    hub = WsHub(desk, queue_size=ws_queue_size, heartbeat_s=ws_heartbeat_s)
    names = list(strategies) if strategies is not None else default_strategies()
    if registry is None:
        registry = CollectorRegistry()
        # the desk's figures first: on a name clash the page keeps the first family
        registry.register(FigureCollector(desk.metrics, lambda raw: f"desk metric {raw}"))
    api = Api(
        desk=desk,
        token=token or None,
        strategies=names,
        hub=hub,
        registry=registry,
        http=HttpMetrics(registry),
        registry_api=ModelsApi(desk, models, swapper, shadow),
    )
    registry.register(FigureCollector(api.ws_figures, lambda raw: f"API {raw.replace('_', ' ')}"))
    app = web.Application(middlewares=[api.count_requests, api.errors_as_json, api.require_token])
    app[API_KEY] = api
    app.add_routes(_routes(api))
    hub.attach(app)
    return app
