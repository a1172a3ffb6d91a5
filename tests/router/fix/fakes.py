"""A small in-memory desk implementing DeskPort, for the FIX gateway's tests.

It accepts orders on known symbols, refuses duplicate ClOrdIDs (publishing
OrderRejected, as the real desk does), fills, expires and cancels on demand, and can be
told to commit facts without publishing them (a process that died before sending).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from router.desk_api import (
    CancelRejected,
    CancelRejectedError,
    CancelRequest,
    CxlRejReason,
    DeskEvent,
    Listener,
    NewOrder,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRejectedError,
    OrderReplaced,
    OrderStatus,
    OrdRejReason,
    ParentView,
    ReplaceRequest,
    UnknownOrderError,
)
from router.domain import OrdType

T0_NS = 1_795_000_000 * 1_000_000_000  # 2026-11-18: a fixed service clock


class FakeDesk:
    def __init__(self, symbols: tuple[str, ...] = ("QDI", "XYZ")) -> None:
        self._symbols = list(symbols)
        self._listeners: list[Listener] = []
        self._orders: dict[str, ParentView] = {}
        self._fills: dict[str, list[dict[str, Any]]] = {}
        self._clordids: dict[tuple[str, str], str] = {}
        self.submitted: list[NewOrder] = []  # every submit call, duplicates included
        self.cancels: list[CancelRequest] = []
        self.replaces: list[ReplaceRequest] = []
        self.published: list[DeskEvent] = []
        self.mute = False  # commit without publishing: a crash before the send
        self.t_ns = T0_NS
        self.default_strategy = "ml"

    # ----------------------------------------------------------------- helpers

    def now_ns(self) -> int:
        self.t_ns += 1_000_000
        return self.t_ns

    def _publish(self, event: DeskEvent) -> None:
        if self.mute:
            return
        self.published.append(event)
        for listener in list(self._listeners):
            listener(event)

    def _update(self, pid: str, **changes: Any) -> ParentView:
        view = dataclasses.replace(self._orders[pid], updated_ns=self.now_ns(), **changes)
        self._orders[pid] = view
        return view

    def fill(self, pid: str, qty: int, px: float, venue: str = "LIT-A") -> ParentView:
        old = self._orders[pid]
        cum = old.filled_qty + qty
        avg = (old.avg_price * old.filled_qty + px * qty) / cum
        status = OrderStatus.FILLED if cum >= old.qty else old.status
        view = self._update(pid, filled_qty=cum, avg_price=avg, status=status)
        n = len(self._fills[pid]) + 1
        exec_id = f"{pid}-F{n}"
        ts = view.updated_ns
        self._fills[pid].append(
            {
                "exec_id": exec_id,
                "child_id": f"{pid}-c{n}",
                "ts_ns": ts,
                "venue": venue,
                "venue_kind": "lit",
                "qty": qty,
                "price": px,
                "fee": 0.0,
                "liquidity": "taker",
            }
        )
        self._publish(
            OrderFilled(ts, view, exec_id, f"{pid}-c{n}", venue, "lit", qty, px, "taker", 0.0)
        )
        return view

    def expire(self, pid: str) -> None:
        view = self._update(pid, status=OrderStatus.EXPIRED, text="horizon reached")
        self._publish(OrderExpired(view.updated_ns, view))

    # -------------------------------------------------------------------- port

    @property
    def ready(self) -> bool:
        return True

    @property
    def kill_engaged(self) -> bool:
        return False

    def symbols(self) -> list[str]:
        return list(self._symbols)

    def submit(self, order: NewOrder) -> ParentView:
        self.submitted.append(order)
        key = (order.client, order.cl_ord_id)
        if key in self._clordids and order.poss_resend:
            return self._orders[self._clordids[key]]
        reason = None
        if key in self._clordids:
            reason = (OrdRejReason.DUPLICATE_ORDER, f"duplicate ClOrdID {order.cl_ord_id}")
        elif order.symbol not in self._symbols:
            reason = (OrdRejReason.UNKNOWN_SYMBOL, f"unknown symbol {order.symbol}")
        if reason is not None:
            self._publish(OrderRejected.of(self.now_ns(), order, *reason))
            raise OrderRejectedError(*reason)
        pid = f"P{len(self._orders) + 1}"
        now = self.now_ns()
        view = ParentView.accepted(order, pid, now, order.expire_ns or now + 3600 * 10**9, 100.0)
        self._orders[pid] = view
        self._fills[pid] = []
        self._clordids[key] = pid
        self._publish(OrderAccepted(now, view))
        return view

    def _refuse(self, client: str, cl_ord_id: str, orig: str, response_to: str) -> Exception:
        pid = self._clordids.get((client, orig))
        view = self._orders.get(pid) if pid else None
        if view is None:
            reason, text = CxlRejReason.UNKNOWN_ORDER, f"unknown order {orig}"
        else:
            reason, text = CxlRejReason.TOO_LATE_TO_CANCEL, f"order {orig} is {view.status}"
        self._publish(
            CancelRejected(
                self.now_ns(),
                client,
                cl_ord_id,
                orig,
                pid,
                view.status if view else None,
                reason,
                response_to,
                text,
            )
        )
        return CancelRejectedError(reason, text)

    def _live(self, client: str, orig: str | None) -> ParentView | None:
        pid = self._clordids.get((client, orig or ""))
        view = self._orders.get(pid) if pid else None
        return view if view is not None and not view.status.terminal else None

    def cancel(self, request: CancelRequest) -> ParentView:
        self.cancels.append(request)
        view = self._live(request.client, request.orig_cl_ord_id)
        if view is None:
            raise self._refuse(
                request.client, request.cl_ord_id, request.orig_cl_ord_id or "", "cancel"
            )
        self._clordids[(request.client, request.cl_ord_id)] = view.parent_id
        view = self._update(view.parent_id, status=OrderStatus.CANCELED, text=request.reason)
        self._publish(
            OrderCanceled(
                view.updated_ns,
                view,
                request.cl_ord_id,
                request.orig_cl_ord_id or "",
                request.reason,
            )
        )
        return view

    def replace(self, request: ReplaceRequest) -> ParentView:
        self.replaces.append(request)
        view = self._live(request.client, request.orig_cl_ord_id)
        if view is None:
            raise self._refuse(
                request.client, request.cl_ord_id, request.orig_cl_ord_id or "", "replace"
            )
        self._clordids[(request.client, request.cl_ord_id)] = view.parent_id
        ord_type = request.ord_type or view.ord_type
        view = self._update(
            view.parent_id,
            cl_ord_id=request.cl_ord_id,
            qty=request.qty or view.qty,
            ord_type=ord_type,
            limit_price=request.limit_price if ord_type is OrdType.LIMIT else None,
        )
        self._publish(
            OrderReplaced(view.updated_ns, view, request.cl_ord_id, request.orig_cl_ord_id or "")
        )
        return view

    def pause(self, parent_id: str) -> ParentView:
        raise NotImplementedError

    def resume(self, parent_id: str) -> ParentView:
        raise NotImplementedError

    def engage_kill(self, reason: str) -> int:
        raise NotImplementedError

    def release_kill(self) -> None:
        raise NotImplementedError

    def find(self, client: str, cl_ord_id: str) -> ParentView | None:
        pid = self._clordids.get((client, cl_ord_id))
        return self._orders[pid] if pid else None

    def parent(self, parent_id: str) -> ParentView:
        if parent_id not in self._orders:
            raise UnknownOrderError(f"unknown order {parent_id}")
        return self._orders[parent_id]

    def parents(self, status: OrderStatus | None = None) -> list[ParentView]:
        views = reversed(list(self._orders.values()))
        return [v for v in views if status is None or v.status is status]

    def fills(self, parent_id: str) -> list[dict[str, Any]]:
        return list(self._fills[parent_id])

    def decisions(self, parent_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return []

    def schedule(self, parent_id: str) -> list[dict[str, Any]]:
        return []

    def tca(self, parent_id: str) -> dict[str, Any]:
        return {}

    def scorecard(self) -> dict[str, Any]:
        return {"dealers": []}

    def metrics(self) -> dict[str, float]:
        return {}

    async def sync(self) -> None:
        """Commits nothing: every call takes effect at once."""

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe
