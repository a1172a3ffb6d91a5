"""The OpenAPI document: it covers the app's routes exactly, is a valid 3.1 document, and
what the API really answers matches its schemas."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from router.api import make_app, responses
from router.api.app import ORDER_FIELDS, REPLACE_FIELDS
from router.api.openapi import openapi_document

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STRATEGIES = ["twap", "vwap", "pov", "ac", "sor", "ml"]
_MUTATING = {"post", "put", "patch", "delete"}


def _app_routes(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        assert route.resource is not None
        out.add((route.method.lower(), route.resource.canonical))
    return out


def _doc_routes(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m, path) for path, ops in doc["paths"].items() for m in ops}


def test_every_route_is_documented_and_every_documented_route_exists(desk: Any) -> None:
    app = make_app(desk, TOKEN, strategies=STRATEGIES)
    doc = openapi_document(STRATEGIES)
    app_routes, doc_routes = _app_routes(app), _doc_routes(doc)
    assert app_routes - doc_routes == set(), "routes missing from the OpenAPI document"
    assert doc_routes - app_routes == set(), "documented routes the app does not serve"
    assert len(app_routes) >= 20


def test_the_document_is_valid_openapi_3_1() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    doc = openapi_document(STRATEGIES)
    assert doc["openapi"].startswith("3.1")
    validator.validate(doc)


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_refs_resolve_and_mutations_need_the_bearer_token() -> None:
    doc = openapi_document(STRATEGIES)
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            secured = op["security"] == [{"bearerAuth": []}]
            assert secured == (method in _MUTATING), (method, path)
            if secured:
                assert {"401", "403"} <= set(op["responses"]), (method, path)
            assert op["operationId"] and op["responses"]


def test_request_schemas_match_what_the_api_accepts() -> None:
    schemas = openapi_document(STRATEGIES)["components"]["schemas"]
    assert set(schemas["NewOrder"]["properties"]) == set(ORDER_FIELDS)
    assert set(schemas["ReplaceOrder"]["properties"]) == set(REPLACE_FIELDS)
    assert schemas["NewOrder"]["properties"]["strategy"]["enum"] == [*STRATEGIES, None]


async def test_served_document_is_the_built_one(client: TestClient) -> None:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    assert await resp.json() == openapi_document(STRATEGIES, ["QDI", "XYZ"])


def _undocumented(value: Any, schema: dict[str, Any], components: dict[str, Any]) -> list[str]:
    """The keys of `value`, at any depth, that its schema does not name (the schemas allow
    more keys, so that validating does not catch them)."""
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    if isinstance(value, list) and "items" in schema:
        return [k for v in value for k in _undocumented(v, schema["items"], components)]
    if not isinstance(value, dict) or "properties" not in schema:
        return []
    props = schema["properties"]
    return [k for k in value if k not in props] + [
        f"{k}.{sub}"
        for k, v in value.items()
        if k in props
        for sub in _undocumented(v, props[k], components)
    ]


async def test_real_answers_match_the_schemas(
    client: TestClient, post_order: Any, desk: Any
) -> None:
    """Each documented 2xx/4xx body of a few real calls validates against its schema and
    its response model, and sends no key that they leave out."""
    jsonschema = pytest.importorskip("jsonschema")
    doc = openapi_document(STRATEGIES)
    components = doc["components"]["schemas"]

    async def check(method: str, path: str, template: str, body: Any = None) -> None:
        resp = await client.request(method, path, json=body, headers=AUTH)
        op = doc["paths"][template][method.lower()]
        assert str(resp.status) in op["responses"], (method, path, resp.status)
        schema = op["responses"][str(resp.status)]["content"]["application/json"]["schema"]
        answer = await resp.json()
        jsonschema.validate(
            answer,
            {**schema, "components": doc["components"]},
            cls=jsonschema.Draft202012Validator,
        )
        model = getattr(responses, schema["$ref"].rsplit("/", 1)[1])
        model.model_validate_json(await resp.text(), strict=True)
        assert _undocumented(answer, schema, components) == [], (method, path)

    view = await post_order(ord_type="limit", limit_price=99.0, strategy="pov", participation=0.2)
    pid = view["parent_id"]
    desk.decide(pid, "LIT-A", 100)
    desk.fill(pid, 100, 99.0, "LIT-A")
    item = "/api/orders/{id}"
    await check("GET", "/api/orders", "/api/orders")
    await check("GET", f"/api/orders/{pid}", item)
    await check("GET", f"/api/orders/{pid}/fills", item + "/fills")
    await check("GET", f"/api/orders/{pid}/decisions", item + "/decisions")
    await check("GET", f"/api/orders/{pid}/schedule", item + "/schedule")
    await check("GET", f"/api/orders/{pid}/tca", item + "/tca")  # 409 while working
    await check("GET", "/api/dealers/scorecard", "/api/dealers/scorecard")
    await check("GET", "/api/info", "/api/info")
    await check("GET", "/health", "/health")
    await check("GET", "/ready", "/ready")
    await check("POST", "/api/orders", "/api/orders", {"symbol": "QDI", "side": "up", "qty": 1})
    await check("POST", "/api/orders", "/api/orders", {"symbol": "NOPE", "side": "buy", "qty": 1})
    await check("POST", f"{item}/replace".replace("{id}", pid), item + "/replace", {"qty": 900})
    await check("POST", f"/api/orders/{pid}/pause", item + "/pause")
    await check("POST", f"/api/orders/{pid}/cancel", item + "/cancel", {"reason": "done"})
    await check("POST", "/api/orders/P404/cancel", item + "/cancel")
    await check("GET", "/api/orders/P404", item)
    await check("POST", "/api/kill-switch", "/api/kill-switch", {"reason": "drill"})
    await check("GET", "/api/kill-switch", "/api/kill-switch")
    await check("DELETE", "/api/kill-switch", "/api/kill-switch")
    resume = {"by": "ops", "reason": "checked"}
    await check("GET", "/api/drift", "/api/drift")
    await check("POST", "/api/drift/resume", "/api/drift/resume", resume)  # 409
    desk.drift_alert()
    await check("GET", "/api/drift", "/api/drift")
    await check("POST", "/api/drift/resume", "/api/drift/resume", resume)
    # the answers of a desk with nothing to show yet, not ready, its journal down
    desk.scorecard_rows = [
        {"dealer": "DEALER-9", "rfqs": 0, "response_rate": None, "hit_ratio": None}
        | dict.fromkeys(("cover_rate", "avg_response_ms", "price_improvement_bps"))
        | {"markout_bps": None}
    ]
    await check("GET", "/api/dealers/scorecard", "/api/dealers/scorecard")
    desk.ready_flag = False
    await check("GET", "/ready", "/ready")
    desk.journal_down = "the database did not answer in time"
    await check("POST", "/api/orders", "/api/orders", {"symbol": "QDI", "side": "buy", "qty": 1})
    await check("GET", "/api/kill-switch", "/api/kill-switch")


async def test_the_shadow_answers_match_their_schemas(
    desk: Any, post_order: Any, shadow_report: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    """GET /api/models/shadow (with a desk's report, and without a registry) and a
    decision that carries its challengers' answers validate against their schemas and
    models, and send no key they leave out."""
    jsonschema = pytest.importorskip("jsonschema")
    doc = openapi_document(STRATEGIES)
    components = doc["components"]["schemas"]
    report, panel = shadow_report
    pid = (await post_order(strategy="ml"))["parent_id"]
    desk.decide(pid, "LIT-A", 100, shadow={"dealer": panel})
    for shadow in (lambda: report, None):
        async with TestClient(TestServer(make_app(desk, TOKEN, shadow=shadow))) as client:
            for path, template in (
                ("/api/models/shadow", "/api/models/shadow"),
                (f"/api/orders/{pid}/decisions", "/api/orders/{id}/decisions"),
            ):
                resp = await client.get(path)
                assert resp.status == 200
                answer = await resp.json()
                op = doc["paths"][template]["get"]
                schema = op["responses"]["200"]["content"]["application/json"]["schema"]
                jsonschema.validate(
                    answer,
                    {**schema, "components": doc["components"]},
                    cls=jsonschema.Draft202012Validator,
                )
                model = getattr(responses, schema["$ref"].rsplit("/", 1)[1])
                model.model_validate_json(await resp.text(), strict=True)
                assert _undocumented(answer, schema, components) == [], path
                if path == "/api/models/shadow":
                    assert answer == (report if shadow is not None else {"families": []})


_KEYWORDS = {
    *("type", "enum", "const", "properties", "required", "additionalProperties"),
    *("anyOf", "allOf", "oneOf", "not", "if", "then", "else", "items"),
    *("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"),
    *("minLength", "maxLength", "pattern", "minProperties"),
    *("title", "description", "default", "examples"),
}


def _subschemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    out = list(schema.get("properties", {}).values())
    out += [s for k in ("anyOf", "allOf", "oneOf") for s in schema.get(k, [])]
    out += [schema[k] for k in ("not", "if", "then", "else", "items") if k in schema]
    extra = schema.get("additionalProperties")
    return out + ([extra] if isinstance(extra, dict) else [])


def test_request_schemas_speak_only_json_schema() -> None:
    """A pydantic constraint that it cannot express (a bound placed after a validator)
    comes out as its own word ("ge"), which every validator ignores: the document would
    then accept what the server refuses (schemathesis found qty 0 that way)."""
    todo = list(openapi_document(STRATEGIES, ["QDI"])["components"]["schemas"].values())
    while todo:
        schema = todo.pop()
        assert set(schema) <= _KEYWORDS | {"$ref"}, set(schema) - _KEYWORDS
        todo += _subschemas(schema)
