"""`blockroute serve` as a real process with the drift monitor's thresholds set so that
its first judged figure is an alert (every real ECE is above 0.001): the alert and the
fallback are published on a real Mosquitto broker, the working ml parents' decisions
record the fallback and the parents finish; after a restart the models stay withdrawn
until an operator resumes them over the HTTP API."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.router.service_harness import Service, Services, write_config
from tests.router.test_bus import Subscriber, broker_url  # noqa: F401  (the shared broker)

#: judged after 20 outcomes or rows; any ECE above 0.001 is an alert
TOUCHY = {"window": 20, "min_samples": 20, "range_window": 1000, "max_ece": 0.001, "fallback": True}
#: the same, with thresholds no figure reaches
QUIET = {**TOUCHY, "max_ece": 1.0, "max_out_of_range": 1.0, "max_is_z": 1e9}


@pytest.fixture
def services() -> Iterator[Services]:
    with Services() as started:
        yield started


def _payloads(sub: Subscriber, root: str) -> list[dict[str, Any]]:
    return [json.loads(bytes(m.payload)) for m in sub.on("alerts/drift", root)]  # type: ignore[arg-type]


def _wait(what: str, cond: Any, s: float = 60.0) -> Any:
    deadline = time.monotonic() + s
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {s:g} s")


def _ml(service: Service, cl: str, horizon_s: float) -> str:
    body = {
        "symbol": "QDI",
        "side": "sell",
        "qty": 60_000,
        "horizon_s": horizon_s,
        "strategy": "ml",
        "cl_ord_id": cl,
    }
    return str(service.post("/api/orders", body)["parent_id"])


def _decisions(service: Service, pid: str) -> list[dict[str, Any]]:
    return list(service.get(f"/api/orders/{pid}/decisions?limit=500")["decisions"])


async def test_a_drift_alert_is_published_and_the_models_fall_back_until_resumed(
    tmp_path: Path,
    services: Services,
    broker_url: str,  # noqa: F811
) -> None:
    root = f"blockroute-test/{uuid.uuid4().hex[:12]}/"
    config = write_config(tmp_path, mqtt_url=broker_url, mqtt_root=root, drift=TOUCHY)
    async with Subscriber(broker_url, root + "alerts/#") as sub:
        service = services.start(config)
        pid = _ml(service, "drift-1", 900.0)
        await sub.wait_until(
            lambda _: any(p["type"] == "drift_fallback" for p in _payloads(sub, root)), 60
        )
        alerts = [p for p in _payloads(sub, root) if p["type"] == "drift_alert"]
        (engaged,) = [p for p in _payloads(sub, root) if p["type"] == "drift_fallback"]
        first = alerts[0]
        assert first["raised"] is True and first["value"] > first["threshold"]
        assert first["family"] in ("dealer", "fill") and first["n"] >= 20
        assert engaged["engaged"] is True and engaged["by"] == "drift"
        assert engaged["reason"] == "drift alert: " + first["message"]
        assert all(m.qos == 1 for m in sub.on("alerts/drift", root))

        # the working parent decides the heuristic way from then on, says why, and ends
        view = _wait(
            "the ml parent ended",
            lambda: (v := service.get(f"/api/orders/{pid}"))["status"] != "working" and v,
        )
        assert view["status"] in ("filled", "expired") and view["filled_qty"] > 0
        decisions = _decisions(service, pid)
        fell_back = [d for d in decisions if "fallback" in d]
        assert fell_back and all(d["fallback"] == engaged["reason"] for d in fell_back)
        drift = service.get("/api/drift")
        assert drift["fallback"]["engaged"] is True
        assert {(a["family"], a["figure"]) for a in drift["alerts"]} >= {
            (first["family"], first["figure"])
        }
        metrics = service.page("/metrics")
        assert "blockroute_drift_fallback 1.0" in metrics
        assert f'blockroute_drift_alerts_total{{family="{first["family"]}"' in metrics
        assert service.terminate() == 0

        # restarted with thresholds nothing reaches: still withdrawn until resumed
        quiet = write_config(tmp_path, mqtt_url=broker_url, mqtt_root=root, drift=QUIET)
        service = services.start(quiet)
        drift = service.get("/api/drift")
        assert drift["fallback"]["engaged"] is True and drift["alerts"] == []
        assert drift["fallback"]["reason"] == engaged["reason"]
        resumed = service.post("/api/drift/resume", {"by": "ops", "reason": "checked"})
        assert resumed["fallback"]["engaged"] is False
        await sub.wait_until(
            lambda _: sum(p["type"] == "drift_fallback" for p in _payloads(sub, root)) == 2, 10
        )
        released = [p for p in _payloads(sub, root) if p["type"] == "drift_fallback"][-1]
        assert (released["engaged"], released["by"], released["reason"]) == (
            False,
            "ops",
            "checked",
        )
        again = _ml(service, "drift-2", 300.0)
        _wait(
            "the second parent ended",
            lambda: service.get(f"/api/orders/{again}")["status"] != "working",
        )
        decisions = _decisions(service, again)
        assert decisions and not any("fallback" in d for d in decisions)
        assert service.terminate() == 0

    engine = create_engine(f"sqlite:///{tmp_path / 'blockroute.db'}")
    with engine.connect() as conn:
        kinds = [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT kind, by FROM svc_drift_events"
                    " WHERE kind LIKE 'fallback%' ORDER BY ts_ns"
                )
            )
        ]
        stored = conn.execute(
            text("SELECT count(*) FROM svc_decisions WHERE fallback IS NOT NULL")
        ).scalar_one()
    engine.dispose()
    assert kinds == [("fallback_engaged", "drift"), ("fallback_released", "ops")]
    assert stored == len(fell_back)
