"""The REST API, auth, errors, metrics and WebSocket against the fake desk (conftest)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import WSCloseCode, WSMsgType
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from router.api import make_app
from router.api.ws import json_text
from router.desk_api import KillSwitchChanged, OrderStatus
from router.domain import OrdType, Side

TOKEN = "s3cret-token"  # the conftest's client is built with this token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NS = 1_000_000_000


async def _error(resp: aiohttp.ClientResponse, status: int) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert set(body) >= {"error", "field", "message"}, body
    assert body["message"], body
    return dict(body)


# ------------------------------------------------------------------------- service


async def test_health_and_readiness(client: TestClient, desk: Any) -> None:
    assert (await client.get("/health")).status == 200
    resp = await client.get("/ready")
    assert resp.status == 200 and (await resp.json()) == {"ready": True}
    desk.ready_flag = False
    resp = await client.get("/ready")
    assert resp.status == 503 and (await resp.json()) == {"ready": False}
    assert (await client.get("/health")).status == 200


async def test_info_lists_symbols_and_strategies(client: TestClient) -> None:
    info = await (await client.get("/api/info")).json()
    assert info["symbols"] == ["QDI", "XYZ"]
    assert "twap" in info["strategies"] and info["default_strategy"] == "ml"
    assert info["token_configured"] is True


# -------------------------------------------------------------------------- orders


async def test_create_order_passes_the_fields_to_the_desk(client: TestClient, desk: Any) -> None:
    body = {
        "symbol": "QDI",
        "side": "buy",
        "qty": 5000,
        "ord_type": "limit",
        "limit_price": 99.5,
        "horizon_s": "15m",
        "strategy": "pov",
        "participation": 0.1,
        "cl_ord_id": "mine-1",
    }
    before = desk.now_ns()
    resp = await client.post("/api/orders", json=body, headers=AUTH)
    assert resp.status == 201, await resp.text()
    view = await resp.json()
    assert resp.headers["Location"] == f"/api/orders/{view['parent_id']}"
    assert view["status"] == "working" and view["qty"] == 5000 and view["leaves_qty"] == 5000
    (order,) = desk.submitted
    assert order.client == "api" and order.cl_ord_id == "mine-1"
    assert (order.side, order.ord_type, order.limit_price) == (Side.BUY, OrdType.LIMIT, 99.5)
    assert (order.strategy, order.participation) == ("pov", 0.1)
    assert order.expire_ns is not None
    assert before + 900 * NS <= order.expire_ns <= desk.now_ns() + 900 * NS


async def test_create_order_defaults(client: TestClient, desk: Any) -> None:
    body = {"symbol": "QDI", "side": "sell", "qty": 100}
    resp = await client.post("/api/orders", json=body, headers=AUTH)
    assert resp.status == 201, await resp.text()
    (order,) = desk.submitted
    assert order.cl_ord_id.startswith("api-") and order.ord_type is OrdType.MARKET
    assert order.strategy is None and order.expire_ns is None and order.limit_price is None


async def test_limit_price_alone_makes_a_limit_order(client: TestClient, desk: Any) -> None:
    body = {"symbol": "QDI", "side": "sell", "qty": 100, "limit_price": 101}
    assert (await client.post("/api/orders", json=body, headers=AUTH)).status == 201
    assert desk.submitted[0].ord_type is OrdType.LIMIT


async def test_expire_at_ns_is_absolute(client: TestClient, desk: Any) -> None:
    at = desk.now_ns() + 3600 * NS
    body = {"symbol": "QDI", "side": "sell", "qty": 100, "expire_at_ns": at}
    assert (await client.post("/api/orders", json=body, headers=AUTH)).status == 201
    assert desk.submitted[0].expire_ns == at


_GOOD = {"symbol": "QDI", "side": "sell", "qty": 100}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"symbol": None}, "symbol"),
        ({"symbol": 7}, "symbol"),
        ({"symbol": "  "}, "symbol"),
        ({"side": "short"}, "side"),
        ({"side": None}, "side"),
        ({"qty": None}, "qty"),
        ({"qty": 0}, "qty"),
        ({"qty": -5}, "qty"),
        ({"qty": 10.5}, "qty"),
        ({"qty": "100"}, "qty"),
        ({"qty": True}, "qty"),
        ({"qty": 2**60}, "qty"),
        ({"ord_type": "stop"}, "ord_type"),
        ({"ord_type": "limit"}, "limit_price"),
        ({"ord_type": "market", "limit_price": 100}, "limit_price"),
        ({"limit_price": -1}, "limit_price"),
        ({"limit_price": "cheap"}, "limit_price"),
        ({"horizon_s": 0}, "horizon_s"),
        ({"horizon_s": "soon"}, "horizon_s"),
        ({"horizon_s": "0s"}, "horizon_s"),
        ({"horizon_s": 60, "expire_at_ns": 2 * 10**18}, "expire_at_ns"),
        ({"expire_at_ns": -1}, "expire_at_ns"),
        ({"expire_at_ns": 2**63}, "expire_at_ns"),
        ({"limit_price": 1e308}, "limit_price"),
        ({"symbol": "Q\u0000DI"}, "symbol"),
        ({"cl_ord_id": ""}, "cl_ord_id"),
        ({"strategy": "yolo"}, "strategy"),
        ({"strategy": "pov", "participation": 1.5}, "participation"),
        ({"strategy": "twap", "participation": 0.1}, "participation"),
        ({"cl_ord_id": "x" * 65}, "cl_ord_id"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_bad_order_fields_are_422_naming_the_field(
    client: TestClient, desk: Any, change: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in {**_GOOD, **change}.items() if v is not None}
    resp = await client.post("/api/orders", json=body, headers=AUTH)
    err = await _error(resp, 422)
    assert (err["error"], err["field"]) == ("validation_error", field)
    assert desk.submitted == [] and desk.events == []  # bad input changes nothing


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
async def test_a_body_that_is_not_a_json_object_is_400(
    client: TestClient, desk: Any, raw: Any
) -> None:
    resp = await client.post("/api/orders", data=raw, headers=AUTH)
    err = await _error(resp, 400)
    assert err["error"] == "bad_request" and err["field"] is None
    assert desk.submitted == []


@pytest.mark.parametrize(
    ("body", "reason", "field"),
    [
        ({"symbol": "NOPE"}, "UNKNOWN_SYMBOL", "symbol"),
        ({"cl_ord_id": "dup"}, "DUPLICATE_ORDER", "cl_ord_id"),
        # well-formed, but the end is too soon: the desk's refusal names the field given
        ({"expire_at_ns": 10}, "TOO_LATE_TO_ENTER", "expire_at_ns"),
        ({"horizon_s": "5s"}, "TOO_LATE_TO_ENTER", "horizon_s"),
    ],
)
async def test_desk_rejections_are_422_with_the_reason(
    client: TestClient, post_order: Any, desk: Any, body: Any, reason: Any, field: Any
) -> None:
    await post_order(cl_ord_id="dup")
    resp = await client.post("/api/orders", json={**_GOOD, **body}, headers=AUTH)
    err = await _error(resp, 422)
    assert (err["error"], err["reason"], err["field"]) == ("order_rejected", reason, field)
    assert desk.events[-1].type == "order_rejected"


async def test_list_and_get_orders(client: TestClient, post_order: Any) -> None:
    first = await post_order(qty=100)
    second = await post_order(qty=200)
    await client.post(f"/api/orders/{first['parent_id']}/cancel", headers=AUTH)
    listed = await (await client.get("/api/orders")).json()
    assert [o["parent_id"] for o in listed["orders"]] == [second["parent_id"], first["parent_id"]]
    working = await (await client.get("/api/orders?status=working")).json()
    assert [o["parent_id"] for o in working["orders"]] == [second["parent_id"]]
    one = await (await client.get(f"/api/orders/{first['parent_id']}")).json()
    assert one["status"] == "canceled"
    err = await _error(await client.get("/api/orders?status=bogus"), 422)
    assert err["field"] == "status"
    err = await _error(await client.get("/api/orders/P404"), 404)
    assert err["error"] == "not_found" and "P404" in err["message"]


async def test_cancel_pause_resume(client: TestClient, post_order: Any, desk: Any) -> None:
    pid = (await post_order())["parent_id"]
    resp = await client.post(f"/api/orders/{pid}/pause", headers=AUTH)
    assert resp.status == 200 and (await resp.json())["status"] == "paused"
    err = await _error(await client.post(f"/api/orders/{pid}/pause", headers=AUTH), 409)
    assert err["error"] == "invalid_state"
    resp = await client.post(f"/api/orders/{pid}/resume", headers=AUTH)
    assert (await resp.json())["status"] == "working"
    resp = await client.post(
        f"/api/orders/{pid}/cancel", json={"reason": "client changed its mind"}, headers=AUTH
    )
    assert resp.status == 200 and (await resp.json())["status"] == "canceled"
    (cancel,) = desk.cancels
    assert (cancel.client, cancel.parent_id) == ("api", pid)
    assert cancel.reason == "client changed its mind" and cancel.cl_ord_id.startswith("api-")
    err = await _error(await client.post(f"/api/orders/{pid}/cancel", headers=AUTH), 409)
    assert (err["error"], err["reason"]) == ("cancel_rejected", "TOO_LATE_TO_CANCEL")
    err = await _error(await client.post("/api/orders/P404/cancel", headers=AUTH), 404)
    assert err["reason"] == "UNKNOWN_ORDER"
    await _error(await client.post("/api/orders/P404/pause", headers=AUTH), 404)
    await _error(await client.post("/api/orders/P404/resume", headers=AUTH), 404)


async def test_replace(client: TestClient, post_order: Any, desk: Any) -> None:
    pid = (await post_order(ord_type="limit", limit_price=99.0))["parent_id"]
    resp = await client.post(
        f"/api/orders/{pid}/replace",
        json={"qty": 2500, "ord_type": "market", "horizon_s": 120},
        headers=AUTH,
    )
    assert resp.status == 200, await resp.text()
    view = await resp.json()
    assert view["qty"] == 2500 and view["ord_type"] == "market" and view["limit_price"] is None
    (req,) = desk.replaces
    assert (req.client, req.parent_id, req.qty, req.ord_type) == ("api", pid, 2500, OrdType.MARKET)
    assert req.expire_ns is not None and view["cl_ord_id"] == req.cl_ord_id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "qty"),
        ({"qty": 0}, "qty"),
        ({"limit_price": 0}, "limit_price"),
        ({"ord_type": "market", "limit_price": 99}, "limit_price"),
        ({"symbol": "XYZ"}, "symbol"),
    ],
)
async def test_bad_replace_is_422(
    client: TestClient, post_order: Any, desk: Any, body: Any, field: Any
) -> None:
    pid = (await post_order())["parent_id"]
    err = await _error(
        await client.post(f"/api/orders/{pid}/replace", json=body, headers=AUTH), 422
    )
    assert err["field"] == field and desk.replaces == []


async def test_replace_of_unknown_or_done_orders(client: TestClient, post_order: Any) -> None:
    err = await _error(
        await client.post("/api/orders/P404/replace", json={"qty": 5}, headers=AUTH), 404
    )
    assert err["reason"] == "UNKNOWN_ORDER"
    pid = (await post_order())["parent_id"]
    await client.post(f"/api/orders/{pid}/cancel", headers=AUTH)
    await _error(
        await client.post(f"/api/orders/{pid}/replace", json={"qty": 5}, headers=AUTH), 409
    )


async def test_decisions_fills_schedule_and_tca(
    client: TestClient, post_order: Any, desk: Any
) -> None:
    pid = (await post_order(qty=300))["parent_id"]
    err = await _error(await client.get(f"/api/orders/{pid}/tca"), 409)
    assert err["error"] == "invalid_state"
    for venue, qty in (("LIT-A", 100), ("DARK-X", 200)):
        desk.decide(pid, venue, qty)
        desk.fill(pid, qty, 100.0, venue, "dark" if venue.startswith("DARK") else "lit")
    decisions = await (await client.get(f"/api/orders/{pid}/decisions?limit=1")).json()
    assert [d["chosen"] for d in decisions["decisions"]] == ["DARK-X"]
    assert decisions["decisions"][0]["alternatives"]["DARK-X"] == 0.9
    fills = await (await client.get(f"/api/orders/{pid}/fills")).json()
    assert [(f["venue"], f["qty"]) for f in fills["fills"]] == [("LIT-A", 100), ("DARK-X", 200)]
    sched = await (await client.get(f"/api/orders/{pid}/schedule")).json()
    assert sched["qty"] == 300 and sched["schedule"][0]["target_qty"] == 0.0
    tca = await (await client.get(f"/api/orders/{pid}/tca")).json()
    assert tca["tca"]["is_bps"] == 3.5
    for sub in ("decisions", "fills", "schedule", "tca"):
        await _error(await client.get(f"/api/orders/P404/{sub}"), 404)
    for limit in ("0", "x", "501"):
        err = await _error(await client.get(f"/api/orders/{pid}/decisions?limit={limit}"), 422)
        assert err["field"] == "limit"


async def test_journal_reads_show_what_the_desk_did_before_them(
    client: TestClient, post_order: Any, desk: Any
) -> None:
    # the desk's view of an order changes at once, its journal once the outbox commits:
    # a client that saw the fill in the order must find it, and the decision behind it,
    # in the reads of the journal that follow
    pid = (await post_order(qty=300))["parent_id"]
    desk.read_lag = True
    desk.decide(pid, "LIT-A", 300)
    desk.fill(pid, 300, 100.0, "LIT-A")
    view = await (await client.get(f"/api/orders/{pid}")).json()
    assert view["filled_qty"] == 300 and view["status"] == "filled"
    decisions = await (await client.get(f"/api/orders/{pid}/decisions")).json()
    assert [d["chosen"] for d in decisions["decisions"]] == ["LIT-A"]
    fills = await (await client.get(f"/api/orders/{pid}/fills")).json()
    assert [(f["venue"], f["qty"]) for f in fills["fills"]] == [("LIT-A", 300)]


async def test_scorecard(client: TestClient) -> None:
    card = await (await client.get("/api/dealers/scorecard")).json()
    assert card["dealers"][0]["dealer"] == "DEALER-1"


async def test_kill_switch(client: TestClient, post_order: Any, desk: Any) -> None:
    pid = (await post_order())["parent_id"]
    state = await (await client.get("/api/kill-switch")).json()
    assert state["engaged"] is False
    err = await _error(await client.post("/api/kill-switch", json={}, headers=AUTH), 422)
    assert err["field"] == "reason"
    resp = await client.post("/api/kill-switch", json={"reason": "fat finger"}, headers=AUTH)
    assert resp.status == 200
    engaged = await resp.json()
    assert (engaged["engaged"], engaged["reason"], engaged["canceled_parents"]) == (
        True,
        "fat finger",
        1,
    )
    assert desk.parent(pid).status is OrderStatus.CANCELED
    state = await (await client.get("/api/kill-switch")).json()
    assert state["engaged"] is True and state["reason"] == "fat finger"
    err = await _error(await client.post("/api/orders", json=_GOOD, headers=AUTH), 422)
    assert err["reason"] == "BROKER_OPTION"
    resp = await client.delete("/api/kill-switch", headers=AUTH)
    assert resp.status == 200 and (await resp.json())["engaged"] is False
    assert (await client.post("/api/orders", json=_GOOD, headers=AUTH)).status == 201


async def test_drift_figures_alerts_and_the_operators_resume(client: TestClient, desk: Any) -> None:
    doc = await (await client.get("/api/drift")).json()
    assert doc["enabled"] is True and doc["alerts"] == [] and doc["history"] == []
    assert doc["fallback"]["engaged"] is False
    assert set(doc["models"]) == {"dealer", "fill"}
    assert set(doc["models"]["dealer"]["calibration"]) == {"respond", "best"}
    # nothing withdrawn: nothing to resume (409), the body checked first (422 by name)
    body = {"by": "ops", "reason": "looked at it"}
    err = await _error(await client.post("/api/drift/resume", json=body, headers=AUTH), 409)
    assert "not withdrawn" in err["message"]
    err = await _error(
        await client.post("/api/drift/resume", json={"by": "ops"}, headers=AUTH), 422
    )
    assert err["field"] == "reason"
    desk.drift_alert()
    doc = await (await client.get("/api/drift")).json()
    assert [(a["family"], a["figure"]) for a in doc["alerts"]] == [("fill", "ece_passive")]
    assert doc["alerts"][0]["value"] == pytest.approx(0.7)
    assert doc["fallback"]["engaged"] is True
    assert doc["fallback"]["reason"] == "drift alert: " + doc["alerts"][0]["message"]
    assert [h["kind"] for h in doc["history"]] == ["fallback_engaged", "alert_raised"]
    resp = await client.post("/api/drift/resume", json=body, headers=AUTH)
    assert resp.status == 200, await resp.text()
    after = await resp.json()
    assert after["fallback"]["engaged"] is False
    assert after["history"][0]["kind"] == "fallback_released"
    assert after["history"][0]["by"] == "ops"
    assert "alerts still active: fill/ece_passive" in after["history"][0]["message"]


# ---------------------------------------------------------------------------- auth

_MUTATING = [
    ("POST", "/api/orders", _GOOD),
    ("POST", "/api/orders/P1/cancel", None),
    ("POST", "/api/orders/P1/pause", None),
    ("POST", "/api/orders/P1/resume", None),
    ("POST", "/api/orders/P1/replace", {"qty": 5}),
    ("POST", "/api/kill-switch", {"reason": "x"}),
    ("DELETE", "/api/kill-switch", None),
    ("POST", "/api/drift/resume", {"by": "ops", "reason": "x"}),
]


@pytest.mark.parametrize(("method", "path", "body"), _MUTATING)
@pytest.mark.parametrize(
    ("header", "error_hint"),
    [(None, None), ("Bearer wrong", "invalid_token"), ("Basic czNjcmV0", None), ("Bearer ", None)],
)
async def test_mutating_calls_need_the_token(
    client: TestClient,
    post_order: Any,
    desk: Any,
    method: Any,
    path: Any,
    body: Any,
    header: Any,
    error_hint: Any,
) -> None:
    await post_order()  # P1 exists, so only auth can refuse
    events = len(desk.events)
    headers = {"Authorization": header} if header else {}
    resp = await client.request(method, path, json=body, headers=headers)
    err = await _error(resp, 401)
    assert err["error"] == "unauthorized"
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer")
    assert (error_hint in challenge) if error_hint else "error=" not in challenge
    assert len(desk.events) == events and not desk.kill


async def test_reads_are_open(client: TestClient, post_order: Any) -> None:
    pid = (await post_order())["parent_id"]
    for path in ("/api/orders", f"/api/orders/{pid}", "/api/kill-switch", "/metrics", "/"):
        assert (await client.get(path)).status == 200, path


@pytest.mark.parametrize("token", [None, ""])
async def test_no_configured_token_forbids_mutations(desk: Any, token: Any) -> None:
    async with TestClient(TestServer(make_app(desk, token))) as c:
        resp = await c.post("/api/orders", json=_GOOD, headers=AUTH)
        err = await _error(resp, 403)
        assert err["message"] == "no API token configured (set BLOCKROUTE_API_TOKEN)"
        assert (await c.get("/api/orders")).status == 200
        assert (await (await c.get("/api/info")).json())["token_configured"] is False
    assert desk.submitted == []


async def test_unknown_routes_and_methods_answer_json(client: TestClient) -> None:
    err = await _error(await client.get("/api/nothing"), 404)
    assert err["error"] == "not_found"
    resp = await client.put("/api/orders", json=_GOOD, headers=AUTH)
    err = await _error(resp, 405)
    assert "POST" in resp.headers["Allow"]
    await _error(await client.get("/static/../app.py"), 404)


async def test_default_strategies_come_from_the_registry(desk: Any) -> None:
    async with TestClient(TestServer(make_app(desk, TOKEN))) as c:
        info = await (await c.get("/api/info")).json()
    assert {"twap", "vwap", "pov", "ac", "sor", "ml"} <= set(info["strategies"])


# ------------------------------------------------------------------------- metrics


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The page's samples by name and labels, read by prometheus_client's own parser."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_text(client: TestClient, post_order: Any) -> None:
    pid = (await post_order())["parent_id"]
    await client.get(f"/api/orders/{pid}")
    await client.get(f"/api/orders/{pid}")
    await client.get("/api/orders/P404")
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await resp.text()
    lines = text.splitlines()
    assert "# TYPE blockroute_parents_working gauge" in lines
    assert "# TYPE blockroute_fills_total counter" in lines
    assert "# TYPE blockroute_http_requests_total counter" in lines
    samples = _samples(text)
    assert samples["blockroute_parents_working", ()] == 1
    assert samples["blockroute_odd_name_x", ()] == 1.5  # cleaned to a legal name
    route = ("route", "/api/orders/{id}")
    requests = "blockroute_http_requests_total"
    assert samples[requests, (("method", "GET"), route, ("status", "200"))] == 2
    assert samples[requests, (("method", "GET"), route, ("status", "404"))] == 1
    post = (("method", "POST"), ("route", "/api/orders"), ("status", "201"))
    assert samples[requests, post] == 1
    # every request's duration, by method and route
    durations = "blockroute_http_request_duration_seconds_count"
    assert samples[durations, (("method", "GET"), route)] == 3
    assert samples["blockroute_ws_clients", ()] == 0
    assert all(name.startswith("blockroute_") for name, _ in samples)
    assert text.endswith("\n")


async def test_every_app_counts_only_its_own_requests(desk: Any) -> None:
    """Each app keeps its metrics in a registry of its own (tests start several)."""
    async with (
        TestClient(TestServer(make_app(desk, TOKEN, strategies=["twap"]))) as a,
        TestClient(TestServer(make_app(desk, TOKEN, strategies=["twap"]))) as b,
    ):
        for _ in range(3):
            await a.get("/health")
        await b.get("/health")
        ok = (("method", "GET"), ("route", "/health"), ("status", "200"))
        for c, n in ((a, 3), (b, 1)):
            samples = _samples(await (await c.get("/metrics")).text())
            assert samples["blockroute_http_requests_total", ok] == n


async def test_the_service_registry_shows_the_desks_own_series_not_its_figures(
    desk: Any,
) -> None:
    """Given the service's registry, in which the desk registered its metrics, the app
    adds its own series only: the desk's figures would show each series twice."""
    registry = CollectorRegistry()
    Counter("blockroute_fills", "fills, as the desk counts them", registry=registry).inc(4)
    async with TestClient(TestServer(make_app(desk, TOKEN, registry=registry))) as c:
        await c.get("/health")
        samples = _samples(await (await c.get("/metrics")).text())
    assert samples["blockroute_fills_total", ()] == 4  # not the fake desk's figure (0)
    assert ("blockroute_odd_name_x", ()) not in samples
    ok = (("method", "GET"), ("route", "/health"), ("status", "200"))
    assert samples["blockroute_http_requests_total", ok] == 1
    assert samples["blockroute_ws_clients", ()] == 0


# ----------------------------------------------------------------------- websocket


async def _next_json(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), timeout=2)
    assert msg.type == WSMsgType.TEXT, msg
    return dict(msg.json())


async def test_websocket_snapshot_then_events(
    client: TestClient, post_order: Any, desk: Any
) -> None:
    old = (await post_order(qty=100))["parent_id"]
    async with client.ws_connect("/ws") as ws:
        snap = await _next_json(ws)
        assert snap["type"] == "snapshot" and snap["now_ns"] > 0
        assert [o["parent_id"] for o in snap["orders"]] == [old]
        assert snap["kill_switch"]["engaged"] is False
        pid = (await post_order(qty=200))["parent_id"]
        accepted = await _next_json(ws)
        assert (accepted["type"], accepted["parent_id"]) == ("order_accepted", pid)
        assert accepted["order"]["qty"] == 200
        desk.fill(pid, 50, 100.25, "LIT-A")
        filled = await _next_json(ws)
        assert filled["type"] == "child_order_filled" and filled["venue"] == "LIT-A"
        assert filled["order"]["filled_qty"] == 50 and filled["last_px"] == 100.25
        await client.post("/api/kill-switch", json={"reason": "test"}, headers=AUTH)
        types = [(await _next_json(ws))["type"] for _ in range(3)]
        assert types == ["order_canceled", "order_canceled", "kill_switch"]


async def test_websocket_fans_out_to_every_client(client: TestClient, post_order: Any) -> None:
    async with client.ws_connect("/ws") as a, client.ws_connect("/ws") as b:
        await _next_json(a), await _next_json(b)
        pid = (await post_order())["parent_id"]
        for ws in (a, b):
            assert (await _next_json(ws))["parent_id"] == pid


async def test_a_slow_websocket_client_is_dropped_not_waited_for(
    desk: Any, post_order: Any
) -> None:
    app = make_app(desk, TOKEN, strategies=["twap"], ws_queue_size=3)
    async with TestClient(TestServer(app)) as c:
        pid = (await c.post("/api/orders", json=_GOOD, headers=AUTH)).headers["Location"]
        pid = pid.rsplit("/", 1)[1]
        async with c.ws_connect("/ws") as ws:
            await _next_json(ws)
            for _ in range(10):  # one burst: the sender cannot drain between events
                desk.fill(pid, 1, 100.0, "LIT-A")
            msg = await asyncio.wait_for(ws.receive(), timeout=2)
            while msg.type == WSMsgType.TEXT:  # anything sent before the drop
                msg = await asyncio.wait_for(ws.receive(), timeout=2)
            assert msg.type == WSMsgType.CLOSE and msg.data == WSCloseCode.TRY_AGAIN_LATER
        metrics = _samples(await (await c.get("/metrics")).text())
        assert metrics["blockroute_ws_dropped_slow_total", ()] == 1
        async with c.ws_connect("/ws") as again:  # a reconnect starts from a snapshot
            snap = await _next_json(again)
            assert snap["orders"][0]["filled_qty"] == 10


async def test_websocket_closes_cleanly_on_shutdown(desk: Any) -> None:
    server = TestServer(make_app(desk, TOKEN, strategies=["twap"]))
    await server.start_server()
    assert desk.listeners == 1  # one subscription for the app, not one per client
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(server.make_url("/ws"))
        await _next_json(ws)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await server.close()
        msg = await asyncio.wait_for(ws.receive(), timeout=3)
        assert msg.type == WSMsgType.CLOSE and msg.data == WSCloseCode.GOING_AWAY
        assert loop.time() - started < 2.5
        await ws.close()
    assert desk.listeners == 0


def test_json_text_is_strict_json() -> None:
    class Count:  # stands for a numpy scalar: has .item()
        def item(self) -> int:
            return 3

    text = json_text({"a": float("nan"), "b": [float("inf"), 1.5], "c": Side.BUY, "d": Count()})
    assert json.loads(text) == {"a": None, "b": [None, 1.5], "c": "buy", "d": 3}


async def test_an_unserialisable_event_never_raises_into_the_desk(
    client: TestClient, desk: Any
) -> None:
    async with client.ws_connect("/ws") as ws:
        await _next_json(ws)
        desk.publish(KillSwitchChanged(desk.now_ns(), False, object()))  # type: ignore[arg-type]
        desk.publish(KillSwitchChanged(desk.now_ns(), False, "fine"))
        assert (await _next_json(ws))["reason"] == "fine"


# ------------------------------------------------------------------------ hardening


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/api/nothing", 404),
        ("DELETE", "/api/orders/P1/fills", 405),
        ("PUT", "/api/orders", 405),
        ("PATCH", "/api/kill-switch", 405),
    ],
)
async def test_unknown_paths_and_methods_answer_before_authentication(
    client: TestClient, method: str, path: str, status: int
) -> None:
    resp = await client.request(method, path)  # no token
    err = await _error(resp, status)
    assert err["error"] in ("not_found", "method_not_allowed")
    assert "WWW-Authenticate" not in resp.headers


async def test_info_lists_each_strategy_once(desk: Any) -> None:
    async with TestClient(TestServer(make_app(desk, TOKEN))) as c:
        info = await (await c.get("/api/info")).json()
    assert len(info["strategies"]) == len(set(info["strategies"]))
    assert info["default_strategy"] in info["strategies"]


async def test_info_names_the_desks_default_strategy(fake_desk_type: Any) -> None:
    desk = fake_desk_type(default_strategy="sor")
    async with TestClient(TestServer(make_app(desk, TOKEN))) as c:
        info = await (await c.get("/api/info")).json()
    assert info["default_strategy"] == "sor"


@pytest.mark.parametrize("body", [{"reason": ""}, {"reason": "   "}, {"reason": None}, {}])
async def test_a_cancel_with_no_reason_gets_the_default_one(
    client: TestClient, post_order: Any, desk: Any, body: Any
) -> None:
    pid = (await post_order())["parent_id"]
    resp = await client.post(f"/api/orders/{pid}/cancel", json=body, headers=AUTH)
    assert resp.status == 200, await resp.text()
    assert desk.cancels[-1].reason == "canceled through the API"


@pytest.mark.parametrize(
    "body", [{"reason": ""}, {"reason": " \t"}, {"reason": None}, {"reason": "x" * 201}]
)
async def test_the_kill_switch_needs_a_reason(client: TestClient, desk: Any, body: Any) -> None:
    resp = await client.post("/api/kill-switch", json=body, headers=AUTH)
    err = await _error(resp, 422)
    assert (err["error"], err["field"]) == ("validation_error", "reason")
    assert not desk.kill


@pytest.mark.parametrize(
    "raw",
    [
        b'{"symbol": "QDI", "side": "sell", "qty": NaN}',
        b"[" * 100_000,
        b'{"qty": ' + b"9" * 5000 + b"}",
    ],
)
async def test_what_python_reads_but_json_is_not_is_400(client: TestClient, raw: bytes) -> None:
    resp = await client.post("/api/orders", data=raw, headers=AUTH)
    err = await _error(resp, 400)
    assert err["error"] == "bad_request"


async def test_odd_ids_and_limits_are_client_errors(client: TestClient, post_order: Any) -> None:
    pid = (await post_order())["parent_id"]
    for limit in ("²", "1e3", "-1", "9" * 30):
        err = await _error(await client.get(f"/api/orders/{pid}/decisions?limit={limit}"), 422)
        assert err["field"] == "limit"
    for odd in ("P%00", "%C2%B2", "x" * 65):
        await _error(await client.get(f"/api/orders/{odd}"), 404)
        await _error(await client.post(f"/api/orders/{odd}/cancel", headers=AUTH), 404)


async def test_an_absurd_horizon_is_passed_on_as_a_far_end(client: TestClient, desk: Any) -> None:
    """No overflow on the way: the desk sees an end after any session and refuses it."""
    for horizon in (1e300, "99999999999999999999h"):
        body = {**_GOOD, "horizon_s": horizon}
        assert (await client.post("/api/orders", json=body, headers=AUTH)).status == 201
        assert desk.submitted[-1].expire_ns == 2**63 - 1


async def test_integral_floats_are_integers(client: TestClient, desk: Any) -> None:
    body = {**_GOOD, "qty": 100.0, "expire_at_ns": float(desk.now_ns() + 3600 * NS)}
    assert (await client.post("/api/orders", json=body, headers=AUTH)).status == 201
    assert desk.submitted[-1].qty == 100 and isinstance(desk.submitted[-1].qty, int)


_PG_ERROR = (
    '(psycopg2.OperationalError) connection to server at "db.internal" (10.1.2.3), port 5432 '
    'failed: FATAL:  password authentication failed for user "trader"'
)


def _no_db_detail(text: str) -> None:
    for secret in ("db.internal", "10.1.2.3", "5432", "trader", "psycopg2"):
        assert secret not in text, text


async def test_no_answer_or_event_shows_the_database(
    client: TestClient, post_order: Any, desk: Any
) -> None:
    """A desk reason that carries a driver's message (kill switch after a failed journal
    write) reaches clients as "database error"; the log keeps the details."""
    reason = f"journal write failed: {_PG_ERROR}"
    await post_order()
    async with client.ws_connect("/ws") as ws:
        await _next_json(ws)
        desk.engage_kill(reason)
        events = [await ws.receive_str() for _ in range(2)]  # order_canceled, kill_switch
    resp = await client.post("/api/orders", json=_GOOD, headers=AUTH)
    err = await _error(resp, 422)
    assert err["message"] == "kill switch engaged: journal write failed: database error " + (
        "(details in the service log)"
    )
    texts = [
        await resp.text(),
        await (await client.get("/api/kill-switch")).text(),
        await (await client.get("/api/orders")).text(),
        *events,
    ]
    for text in texts:
        _no_db_detail(text)
    assert '"reason":"journal write failed: database error' in texts[1]


async def test_a_journal_that_cannot_write_answers_503(
    client: TestClient, post_order: Any, desk: Any
) -> None:
    pid = (await post_order())["parent_id"]
    desk.journal_down = "the database did not answer in time"
    for method, path, body in (
        ("POST", "/api/orders", _GOOD),
        ("POST", f"/api/orders/{pid}/pause", None),
        ("POST", "/api/kill-switch", {"reason": "db"}),
        # reads of the journal commit what came before them first (as the real desk's
        # would, with rows waiting)
        ("GET", f"/api/orders/{pid}/decisions", None),
        ("GET", f"/api/orders/{pid}/fills", None),
    ):
        resp = await client.request(method, path, json=body, headers=AUTH)
        err = await _error(resp, 503)
        assert err["error"] == "unavailable" and "did not answer" in err["message"]
        assert resp.headers["Retry-After"] == "1"
    assert (await client.get(f"/api/orders/{pid}")).status == 200  # reads from memory


@pytest.mark.parametrize(
    ("body", "field"), [({"horizon_s": "5s"}, "horizon_s"), ({"expire_at_ns": 10}, "expire_at_ns")]
)
async def test_a_refused_replace_names_the_field_the_client_gave(
    client: TestClient, post_order: Any, body: Any, field: str
) -> None:
    pid = (await post_order())["parent_id"]
    resp = await client.post(f"/api/orders/{pid}/replace", json=body, headers=AUTH)
    err = await _error(resp, 409)
    assert (err["error"], err["field"]) == ("cancel_rejected", field)


# -------------------------------------------------------------------- model registry


@pytest.fixture
async def models_client(desk: Any, tmp_path: Any, registry_db_url: str) -> Any:
    """The app over a model registry on SQLite in tmp_path, with a dealer challenger."""
    import shutil

    from models.serving.artifacts import MODELS_DIR, family_files
    from router.model_admin import open_admin

    admin = open_admin(registry_db_url, lambda: 7 * NS)
    trained = tmp_path / "trained"
    trained.mkdir()
    for path in family_files("dealer", MODELS_DIR):
        shutil.copy(path, trained / path.name)
    admin.register("dealer", trained, "ci", "trained", {"seed": 7})
    seen: list[Any] = []
    admin.listeners.append(seen.append)
    app = make_app(desk, TOKEN, models=admin)
    async with TestClient(TestServer(app)) as c:
        c.seen = seen  # type: ignore[attr-defined]
        c.admin = admin  # type: ignore[attr-defined]
        yield c
    admin.close()


@pytest.mark.requires_extra("registry", "mlflow")
async def test_models_list_show_promote_rollback(models_client: Any) -> None:
    doc = await (await models_client.get("/api/models")).json()
    assert [(m["family"], m["version"], m["aliases"]) for m in doc["models"]] == [
        ("dealer", 1, ["champion"]),
        ("dealer", 2, ["challenger"]),
        ("fill", 1, ["champion"]),
        ("slicer", 1, ["champion"]),
    ]
    shown = await (await models_client.get("/api/models/dealer/versions/2")).json()
    assert shown["params"]["seed"] == "7" and shown["lineage"]["replaces"] == "1"
    body = {"by": "alice", "reason": "better"}
    resp = await models_client.post("/api/models/dealer/promote", json=body, headers=AUTH)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {
        "family": "dealer", "alias": "champion", "from_version": 1, "to_version": 2,
        "action": "promote", "by": "alice", "reason": "better", "ts_ns": 7 * NS,
        "forced": False, "override": None,
    }  # fmt: skip
    resp = await models_client.post(
        "/api/models/dealer/rollback", json={"by": "bob", "reason": "worse"}, headers=AUTH
    )
    assert (await resp.json())["to_version"] == 1
    assert [e.action for e in models_client.seen] == ["promote", "rollback"]


_PROMOTE = "/api/models/dealer/promote"
_WHO = {"by": "a", "reason": "r"}


@pytest.mark.requires_extra("registry", "mlflow")
@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("get", "/api/models/nope/versions/1", None, 404, "family"),
        ("get", "/api/models/dealer/versions/9", None, 404, "version"),
        ("get", "/api/models/dealer/versions/0", None, 404, "version"),
        ("post", "/api/models/nope/promote", _WHO, 404, "family"),
        ("post", _PROMOTE, {**_WHO, "version": 9}, 422, "version"),
        ("post", _PROMOTE, {**_WHO, "version": "2"}, 422, "version"),
        ("post", _PROMOTE, {"by": "a"}, 422, "reason"),
        ("post", _PROMOTE, {**_WHO, "by": " "}, 422, "by"),
        ("post", _PROMOTE, {**_WHO, "alias": "boss"}, 422, "alias"),
        ("post", _PROMOTE, {**_WHO, "version": 1}, 409, "version"),
        ("post", "/api/models/fill/rollback", _WHO, 409, "family"),
    ],
)
async def test_models_bad_input_names_the_field_and_changes_nothing(
    models_client: Any, method: str, path: str, body: Any, status: int, field: str
) -> None:
    resp = await getattr(models_client, method)(path, json=body, headers=AUTH)
    assert (await _error(resp, status))["field"] == field
    doc = await (await models_client.get("/api/models")).json()
    assert {m["family"]: m["version"] for m in doc["models"] if "champion" in m["aliases"]} == {
        "dealer": 1,
        "fill": 1,
        "slicer": 1,
    }
    assert models_client.seen == []


@pytest.mark.requires_extra("registry", "mlflow")
async def test_a_worse_challenger_answers_409_naming_force_unless_forced(
    models_client: Any, tmp_path: Any
) -> None:
    import json
    import shutil

    from models.serving.artifacts import MODELS_DIR, family_files

    worse = tmp_path / "worse"
    worse.mkdir()
    for path in family_files("dealer", MODELS_DIR):
        shutil.copy(path, worse / path.name)
    meta = json.loads((worse / "dealer.meta.json").read_text())
    meta["metrics"]["best"]["auc"] = 0.9  # the champion's: 0.918
    (worse / "dealer.meta.json").write_text(json.dumps(meta))
    models_client.admin.register("dealer", worse, "ci", "trained", {})  # version 3
    models_client.seen.clear()
    body = {"version": 3, "by": "alice", "reason": "try"}
    resp = await models_client.post(_PROMOTE, json=body, headers=AUTH)
    doc = await _error(resp, 409)
    assert (doc["error"], doc["field"]) == ("worse_than_champion", "force")
    assert "best.auc 0.9000 vs the champion's 0.9181" in doc["message"]
    assert models_client.seen == []
    resp = await models_client.post(_PROMOTE, json={**body, "force": True}, headers=AUTH)
    assert resp.status == 200, await resp.text()
    moved = await resp.json()
    assert (moved["to_version"], moved["forced"]) == (3, True)
    assert moved["override"] == "best.auc 0.9000 vs the champion's 0.9181"
    resp = await models_client.post(_PROMOTE, json={**body, "force": "yes"}, headers=AUTH)
    assert (await _error(resp, 422))["field"] == "force"


async def test_models_need_the_token_and_a_registry(client: TestClient) -> None:
    body = {"by": "a", "reason": "r"}
    await _error(await client.post("/api/models/dealer/promote", json=body), 401)
    resp = await client.post("/api/models/dealer/promote", json=body, headers=AUTH)
    assert (await _error(resp, 404))["error"] == "no_registry"
    assert (await _error(await client.get("/api/models"), 404))["error"] == "no_registry"


@pytest.mark.requires_extra("registry", "mlflow")
async def test_the_wheels_live_results(models_client: Any) -> None:
    from router.api.responses import WheelReport
    from router.wheel_stats import wheel_report
    from tests.router.test_wheel_stats import hand_rows, parents, write

    resp = await models_client.get("/api/models/wheel")
    doc = await _error(resp, 404)
    assert doc["error"] == "not_found" and "no parent of the algo wheel" in doc["message"]
    write(models_client.admin.journal, hand_rows())
    resp = await models_client.get("/api/models/wheel")
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    WheelReport.model_validate(doc)
    assert doc == json.loads(json.dumps(wheel_report(parents(hand_rows()))))
    resp = await models_client.get("/api/models/wheel?family=dealer&min_effect_bps=4&power=0.9")
    doc = await resp.json()
    assert (doc["family"], doc["sample_size"]["min_effect_bps"], doc["sample_size"]["power"]) == (
        "dealer",
        4.0,
        0.9,
    )


@pytest.mark.requires_extra("registry", "mlflow")
@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("family=nope", "family", "unknown model family 'nope'"),
        ("family=fill", "family", "the wheel's arms run the same fill version"),
        ("since=soon", "since", "since: 'soon' is neither a duration"),
        ("alpha=1", "alpha", "alpha must lie between 0 and 1"),
        ("power=nan", "power", "power must be a finite number"),
        ("min_effect_bps=two", "min_effect_bps", "min_effect_bps must be a number"),
        ("min_effect_bps=-1", "min_effect_bps", "min_effect_bps must be > 0 bps"),
    ],
)
async def test_the_wheels_bad_queries_are_422_naming_the_parameter(
    models_client: Any, query: str, field: str, message: str
) -> None:
    from tests.router.test_wheel_stats import hand_rows, write

    write(models_client.admin.journal, hand_rows())
    doc = await _error(await models_client.get(f"/api/models/wheel?{query}"), 422)
    assert doc["field"] == field and message in doc["message"], doc


async def test_the_wheel_needs_a_registry(client: TestClient) -> None:
    resp = await client.get("/api/models/wheel")
    assert (await _error(resp, 404))["error"] == "no_registry"
