"""A small in-memory DeskPort for the API tests, and an app + client over it.

`FakeDesk` keeps the real desk's contract where the API depends on it: refusals raise
the desk's errors and publish the matching events, every change publishes its event
synchronously on the loop thread, views are immutable snapshots. With `auto_fill` it
works a new order off by itself in a few slices `fill_interval_s` apart (a decision, a
fill, a schedule point each), so the dashboard has something live to show.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from router.api import make_app
from router.desk_api import (
    CancelRejected,
    CancelRejectedError,
    CancelRequest,
    CxlRejReason,
    DecisionMade,
    DeskEvent,
    DriftAlertChanged,
    DriftFallbackChanged,
    InvalidStateError,
    JournalUnavailableError,
    KillSwitchChanged,
    Listener,
    NewOrder,
    OrderAccepted,
    OrderCanceled,
    OrderCompleted,
    OrderFilled,
    OrderPaused,
    OrderRejected,
    OrderRejectedError,
    OrderReplaced,
    OrderResumed,
    OrderStatus,
    OrdRejReason,
    ParentView,
    ReplaceRequest,
    UnknownOrderError,
)
from router.domain import OrdType
from router.drift import DriftConfig, DriftError, DriftMonitor

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STRATEGIES = ["twap", "vwap", "pov", "ac", "sor", "ml"]
BASE_NS = 1_790_000_000 * 1_000_000_000
_NS = 1_000_000_000
_VENUES = (("LIT-A", "lit"), ("DARK-X", "dark"), ("LIT-B", "lit"), ("DEALER-1", "rfq"))


class FakeDesk:
    """An in-memory desk; see the module docstring."""

    def __init__(
        self,
        *,
        auto_fill: bool = False,
        slices: int = 4,
        fill_interval_s: float = 0.12,
        speed: float = 100.0,
        default_strategy: str = "ml",
    ) -> None:
        self.default_strategy = default_strategy
        self.ready_flag = True
        self.kill = False
        self.kill_reason = ""
        self.journal_down = ""  # why the journal cannot write; "" while it can
        # as the real desk's journal (router/desk/outbox.py): with `read_lag` set, the
        # rows of decisions and fills are readable only once `sync` has committed them,
        # while the order's view has them at once
        self.read_lag = False
        self._uncommitted: list[Callable[[], None]] = []
        self.scorecard_rows: list[dict[str, Any]] | None = None
        # the real drift monitor's logic (router.drift), fed by `drift_alert`
        self.drift_monitor = DriftMonitor(DriftConfig(window=20, min_samples=20, fallback=True))
        self.drift_history: list[dict[str, Any]] = []
        self.auto_fill = auto_fill
        self.slices = slices
        self.fill_interval_s = fill_interval_s
        self.speed = speed
        self.submitted: list[NewOrder] = []
        self.cancels: list[CancelRequest] = []
        self.replaces: list[ReplaceRequest] = []
        self.events: list[DeskEvent] = []
        self._listeners: list[Listener] = []
        self._orders: dict[str, ParentView] = {}
        self._ids: dict[tuple[str, str], str] = {}
        self._fills: dict[str, list[dict[str, Any]]] = {}
        self._decisions: dict[str, list[dict[str, Any]]] = {}
        self._schedule: dict[str, list[dict[str, Any]]] = {}
        self._t0 = time.monotonic()
        self._seq = 0

    # ---- clock and state

    def now_ns(self) -> int:
        return BASE_NS + int((time.monotonic() - self._t0) * self.speed * _NS)

    @property
    def ready(self) -> bool:
        return self.ready_flag

    @property
    def kill_engaged(self) -> bool:
        return self.kill

    def symbols(self) -> list[str]:
        return ["QDI", "XYZ"]

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    def _next(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq}"

    def publish(self, event: DeskEvent) -> None:
        self.events.append(event)
        for listener in list(self._listeners):
            listener(event)

    def _set(self, view: ParentView, **changes: Any) -> ParentView:
        new = dataclasses.replace(view, updated_ns=self.now_ns(), **changes)
        self._orders[new.parent_id] = new
        return new

    # ---- commands

    def submit(self, order: NewOrder) -> ParentView:
        reject = None
        if self.kill:
            reject = (OrdRejReason.BROKER_OPTION, f"kill switch engaged: {self.kill_reason}")
        elif order.symbol not in self.symbols():
            reject = (OrdRejReason.UNKNOWN_SYMBOL, f"unknown symbol {order.symbol!r}")
        elif (order.client, order.cl_ord_id) in self._ids:
            reject = (OrdRejReason.DUPLICATE_ORDER, f"duplicate ClOrdID {order.cl_ord_id!r}")
        elif order.expire_ns is not None and order.expire_ns < self.now_ns() + 30 * _NS:
            # the real desk's minimum (DeskConfig.min_horizon_s): a horizon of 60 s passes
            reject = (OrdRejReason.TOO_LATE_TO_ENTER, "ExpireTime is less than 30 s from now")
        if reject is not None:
            self.publish(OrderRejected.of(self.now_ns(), order, *reject))
            raise OrderRejectedError(*reject)
        self.submitted.append(order)
        now = self.now_ns()
        view = ParentView.accepted(
            order, self._next("P"), now, order.expire_ns or now + 1800 * _NS, 100.0
        )
        self._orders[view.parent_id] = view
        self._ids[(order.client, order.cl_ord_id)] = view.parent_id
        self._fills[view.parent_id] = []
        self._decisions[view.parent_id] = []
        self._schedule[view.parent_id] = [{"ts_ns": now, "target_qty": 0.0, "filled_qty": 0.0}]
        self.publish(OrderAccepted(now, view))
        if self.auto_fill:
            self._plan_fills(view.parent_id)
        return view

    def _plan_fills(self, parent_id: str) -> None:
        loop = asyncio.get_running_loop()
        for k in range(1, self.slices + 1):
            loop.call_later(k * self.fill_interval_s, self._work_slice, parent_id, k)

    def _work_slice(self, parent_id: str, k: int) -> None:
        view = self._orders[parent_id]
        if view.status is not OrderStatus.WORKING:
            return
        target = view.qty * k // self.slices
        qty = target - view.filled_qty
        venue, kind = _VENUES[(k - 1) % len(_VENUES)]
        px = 100.0 + (0.01 * k if view.side.value == "buy" else -0.01 * k)
        self.decide(parent_id, venue, qty)
        self.fill(parent_id, qty, px, venue, kind)
        self._schedule[parent_id].append(
            {"ts_ns": self.now_ns(), "target_qty": float(target), "filled_qty": float(target)}
        )

    def decide(
        self, parent_id: str, chosen: str, qty: int, shadow: dict[str, Any] | None = None
    ) -> None:
        """A decision; `shadow`: its challengers' answers by family (shadow mode)."""
        view = self._orders[parent_id]
        alternatives = {v: 1.5 + 0.5 * i for i, (v, _) in enumerate(_VENUES)}
        alternatives[chosen] = 0.9
        inputs = {"spread_bps": 5.0, "slice_qty": float(qty), "imbalance": 0.12}
        fallback = self.drift_monitor.fallback  # the desk's: the heuristic decided
        event = DecisionMade(
            self.now_ns(), view, self._next("D"), chosen, inputs, alternatives, fallback, shadow
        )
        row = {k: event.payload()[k] for k in ("decision_id", "ts_ns", "chosen")}
        extra: dict[str, Any] = {} if shadow is None else {"shadow": shadow}
        if fallback:
            extra["fallback"] = fallback
        decision = {**row, "inputs": inputs, "alternatives": alternatives, **extra}
        self._journal(lambda: self._decisions[parent_id].insert(0, decision))
        self.publish(event)

    def fill(self, parent_id: str, qty: int, px: float, venue: str, kind: str = "lit") -> None:
        view = self._orders[parent_id]
        filled = view.filled_qty + qty
        avg = (view.avg_price * view.filled_qty + px * qty) / filled
        done = filled >= view.qty
        view = self._set(
            view,
            filled_qty=filled,
            avg_price=avg,
            n_children=view.n_children + 1,
            status=OrderStatus.FILLED if done else view.status,
        )
        event = OrderFilled(
            self.now_ns(),
            view,
            self._next("E"),
            self._next("C"),
            venue,
            kind,
            qty,
            px,
            "taker",
            0.0,
        )
        row = {
            "exec_id": event.exec_id,
            "child_id": event.child_id,
            "ts_ns": event.ts_ns,
            "venue": venue,
            "venue_kind": kind,
            "qty": qty,
            "price": px,
            "fee": 0.0,
            "liquidity": "taker",
        }
        self._journal(lambda: self._fills[parent_id].append(row))
        self.publish(event)
        if done:
            self.publish(OrderCompleted(self.now_ns(), view, self.tca(parent_id)))

    def _cancel_reject(self, request: CancelRequest | ReplaceRequest, what: str) -> None:
        view = self._orders.get(request.parent_id or "")
        if view is None:
            reason, text = CxlRejReason.UNKNOWN_ORDER, f"unknown order {request.parent_id!r}"
        elif view.status.terminal:
            reason, text = CxlRejReason.TOO_LATE_TO_CANCEL, f"order is {view.status.value}"
        else:
            return
        self.publish(
            CancelRejected(
                self.now_ns(),
                request.client,
                request.cl_ord_id,
                request.orig_cl_ord_id or "",
                request.parent_id,
                view.status if view else None,
                reason,
                what,
                text,
            )
        )
        raise CancelRejectedError(reason, text)

    def cancel(self, request: CancelRequest) -> ParentView:
        self._cancel_reject(request, "cancel")
        self.cancels.append(request)
        view = self._orders[request.parent_id or ""]
        view = self._set(view, status=OrderStatus.CANCELED, text=request.reason)
        self.publish(
            OrderCanceled(self.now_ns(), view, request.cl_ord_id, view.cl_ord_id, request.reason)
        )
        return view

    def replace(self, request: ReplaceRequest) -> ParentView:
        self._cancel_reject(request, "replace")
        view = self._orders[request.parent_id or ""]
        if request.qty is not None and request.qty < view.filled_qty:
            raise CancelRejectedError(CxlRejReason.OTHER, "qty below the filled quantity")
        if request.expire_ns is not None and request.expire_ns < self.now_ns() + 60 * _NS:
            raise CancelRejectedError(CxlRejReason.OTHER, "the end is too soon", "expire_ns")
        self.replaces.append(request)
        changes: dict[str, Any] = {"cl_ord_id": request.cl_ord_id}
        if request.qty is not None:
            changes["qty"] = request.qty
        if request.ord_type is not None:
            changes["ord_type"] = request.ord_type
            if request.ord_type is OrdType.MARKET:
                changes["limit_price"] = None
        if request.limit_price is not None:
            changes["limit_price"] = request.limit_price
        if request.expire_ns is not None:
            changes["end_ns"] = request.expire_ns
        old = view.cl_ord_id
        view = self._set(view, **changes)
        self.publish(OrderReplaced(self.now_ns(), view, request.cl_ord_id, old))
        return view

    def pause(self, parent_id: str) -> ParentView:
        view = self.parent(parent_id)
        if view.status is not OrderStatus.WORKING:
            raise InvalidStateError(f"cannot pause a {view.status.value} order")
        view = self._set(view, status=OrderStatus.PAUSED)
        self.publish(OrderPaused(self.now_ns(), view))
        return view

    def resume(self, parent_id: str) -> ParentView:
        view = self.parent(parent_id)
        if view.status is not OrderStatus.PAUSED:
            raise InvalidStateError(f"cannot resume a {view.status.value} order")
        view = self._set(view, status=OrderStatus.WORKING)
        self.publish(OrderResumed(self.now_ns(), view))
        return view

    def engage_kill(self, reason: str) -> int:
        working = [v for v in self._orders.values() if not v.status.terminal]
        self.kill = True
        self.kill_reason = reason
        for view in working:
            view = self._set(view, status=OrderStatus.CANCELED, text=f"kill switch: {reason}")
            self.publish(OrderCanceled(self.now_ns(), view, "", view.cl_ord_id, reason))
        self.publish(KillSwitchChanged(self.now_ns(), True, reason, len(working)))
        return len(working)

    def release_kill(self) -> None:
        self.kill = False
        self.publish(KillSwitchChanged(self.now_ns(), False, ""))

    # ---- queries

    def find(self, client: str, cl_ord_id: str) -> ParentView | None:
        pid = self._ids.get((client, cl_ord_id))
        return self._orders[pid] if pid else None

    def parent(self, parent_id: str) -> ParentView:
        try:
            return self._orders[parent_id]
        except KeyError:
            raise UnknownOrderError(f"unknown order {parent_id!r}") from None

    def parents(self, status: OrderStatus | None = None) -> list[ParentView]:
        views = sorted(self._orders.values(), key=lambda v: v.start_ns, reverse=True)
        return [v for v in views if status is None or v.status is status]

    def fills(self, parent_id: str) -> list[dict[str, Any]]:
        return list(self._fills.get(parent_id, []))

    def decisions(self, parent_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return self._decisions.get(parent_id, [])[:limit]

    def schedule(self, parent_id: str) -> list[dict[str, Any]]:
        return list(self._schedule.get(parent_id, []))

    def tca(self, parent_id: str) -> dict[str, Any]:
        view = self.parent(parent_id)
        if not view.status.terminal:
            raise InvalidStateError("TCA is available once the order is done")
        return {"is_bps": 3.5, "filled_qty": view.filled_qty, "avg_price": view.avg_price}

    def scorecard(self) -> dict[str, Any]:
        if self.scorecard_rows is not None:
            return {"dealers": self.scorecard_rows}
        return {
            "dealers": [
                {
                    "dealer": "DEALER-1",
                    "rfqs": 12,
                    "response_rate": 0.83,
                    "hit_ratio": 0.42,
                    "cover_rate": 0.25,
                    "avg_response_ms": 180.0,
                    "price_improvement_bps": 1.2,
                    "markout_bps": -0.4,
                }
            ]
        }

    def metrics(self) -> dict[str, float]:
        working = sum(1 for v in self._orders.values() if not v.status.terminal)
        fills = sum(len(f) for f in self._fills.values())
        return {"parents_working": working, "fills_total": fills, "odd name-x": 1.5}

    # ---- drift

    def drift(self) -> dict[str, Any]:
        return {"enabled": True, **self.drift_monitor.report(), "history": self.drift_history}

    def drift_alert(self) -> None:
        """The fill model's calibration drifts: 20 outcomes at P 0.3, all of which
        happened; the monitor raises its alert and withdraws the models."""
        for _ in range(20):
            self.drift_monitor.outcome("fill", "passive", 0.3, True)
        changes, fallback = self.drift_monitor.evaluate(self.now_ns())
        for ch in changes:
            self._drift_row(
                "alert_raised" if ch.raised else "alert_cleared",
                ch.family,
                ch.figure,
                ch.value,
                ch.threshold,
                ch.n,
                ch.message,
            )
            self.publish(
                DriftAlertChanged(
                    self.now_ns(),
                    ch.family,
                    ch.figure,
                    ch.raised,
                    ch.value,
                    ch.threshold,
                    ch.n,
                    ch.message,
                    bool(self.drift_monitor.fallback),
                )
            )
        if fallback is not None:
            self._drift_row("fallback_engaged", "", "", None, None, 0, fallback.reason)
            self.publish(DriftFallbackChanged(self.now_ns(), True, fallback.reason, "drift"))

    def _drift_row(
        self,
        kind: str,
        family: str,
        figure: str,
        value: float | None,
        threshold: float | None,
        n: int,
        message: str,
        by: str = "drift",
    ) -> None:
        self.drift_history.insert(
            0,
            {
                "ts_ns": self.now_ns(),
                "kind": kind,
                "family": family,
                "figure": figure,
                "value": value,
                "threshold": threshold,
                "n": n,
                "by": by,
                "message": message,
            },
        )

    def resume_models(self, by: str, reason: str) -> dict[str, Any]:
        try:
            change = self.drift_monitor.resume(by, reason)
        except DriftError as exc:
            raise InvalidStateError(str(exc)) from None
        self._drift_row("fallback_released", "", "", None, None, 0, change.reason, by)
        self.publish(DriftFallbackChanged(self.now_ns(), False, change.reason, by))
        return self.drift()

    async def sync(self) -> None:
        """Commits what `read_lag` held back; otherwise every call takes effect at once
        (with `journal_down` set, it is kept for a journal that cannot write, like the
        desk's)."""
        if self.journal_down:
            raise JournalUnavailableError(f"the journal cannot write now ({self.journal_down})")
        staged, self._uncommitted = self._uncommitted, []
        for commit in staged:
            commit()

    def _journal(self, commit: Callable[[], None]) -> None:
        """A row for the journal: readable now, or after the next `sync` with `read_lag`."""
        if self.read_lag:
            self._uncommitted.append(commit)
        else:
            commit()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe


@pytest.fixture
def desk() -> FakeDesk:
    return FakeDesk()


@pytest.fixture
async def client(desk: FakeDesk) -> AsyncIterator[TestClient]:
    app = make_app(desk, TOKEN, strategies=STRATEGIES)
    async with TestClient(TestServer(app)) as c:
        yield c


PostOrder = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def post_order(client: TestClient) -> PostOrder:
    """POST /api/orders with sensible defaults; asserts 201 and returns the view."""

    async def post(**fields: Any) -> dict[str, Any]:
        body = {"symbol": "QDI", "side": "sell", "qty": 1000, "horizon_s": 600, **fields}
        resp = await client.post("/api/orders", json=body, headers=AUTH)
        assert resp.status == 201, await resp.text()
        return dict(await resp.json())

    return post


@pytest.fixture
def fake_desk_type() -> type[FakeDesk]:
    """The class, for tests that need a desk set up differently (test files cannot import
    this conftest by name)."""
    return FakeDesk


@pytest.fixture
def shadow_report() -> tuple[dict[str, Any], dict[str, Any]]:
    """A desk's shadow-mode report after a disagreeing dealer panel and an agreeing pace
    (router.desk.shadow.ShadowBook, fed as the projector feeds it), and the panel's
    answer as a decision carries it."""
    from router.desk.shadow import ShadowBook
    from router.shadow import Challenger, compare_pace, compare_panel

    challenger = Challenger(None, 3, 2, lambda: 0.0)
    book = ShadowBook()
    panel = compare_panel(
        challenger, (["A", "B"], {"A": 0.6, "B": 0.3}, 0.9), (["A", "C"], {"C": 0.5}, 0.8), 4e-5
    )
    book.observe(10, "P1", panel, ("P1-R1-request-d",))
    book.observe(20, "P1", compare_pace(challenger, (0.0, 1.0), (0.01, 1.01), 3e-6), ())
    report = book.report({"dealer": 2, "fill": 1, "slicer": 2}, {"dealer": 3, "slicer": 3})
    return report, panel.to_json()
