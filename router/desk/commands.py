"""The clients' commands: new orders (through admission), cancel, replace, pause, resume
and the kill switch. Each does all it says or raises and changes nothing; what it changed
is staged in the outbox, committed at the end of the loop's turn and published after."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from router.desk.admission import Admission
from router.desk.cancel import CancelWorkflow
from router.desk.config import DeskConfig
from router.desk.execution import ExecutionWiring
from router.desk.metrics import DeskMetrics
from router.desk.orders import Order, OrderBook
from router.desk.outbox import Outbox
from router.desk.projection import Projector
from router.desk_api import (
    CancelRejectedError,
    CancelRequest,
    CxlRejReason,
    InvalidStateError,
    KillSwitchChanged,
    NewOrder,
    OrderAccepted,
    OrderPaused,
    OrderRejected,
    OrderRejectedError,
    OrderReplaced,
    OrderResumed,
    OrderStatus,
    ParentView,
    ReplaceRequest,
)
from router.domain import NANOS_PER_SECOND, OrdType, ParentId, ParentOrder, Side, Symbol
from router.journal import SvcClOrdIdRow, SvcMetaRow
from router.risk import KillSwitch

log = structlog.get_logger("blockroute.desk")


class Commands:
    """The command half of router.desk_api.DeskPort (see there for each one)."""

    def __init__(
        self,
        config: DeskConfig,
        book: OrderBook,
        admission: Admission,
        cancels: CancelWorkflow,
        wiring: ExecutionWiring,
        projector: Projector,
        outbox: Outbox,
        kill: KillSwitch,
        kick: Callable[[], None],
        now_ns: Callable[[], int],
        metrics: DeskMetrics,
    ) -> None:
        self._config = config
        self._book = book
        self._admission = admission
        self._cancels = cancels
        self._wiring = wiring
        self._projector = projector
        self._outbox = outbox
        self._kill = kill
        self._kick = kick  # step the markets now: the command may have made something due
        self._now_ns = now_ns
        self._metrics = metrics

    def submit(self, order: NewOrder) -> ParentView:
        book, outbox = self._book, self._outbox
        known = book.clordids.get((order.client, order.cl_ord_id))
        if known is not None and order.poss_resend and known in book.orders:
            return book.orders[known].view()  # a resend of what we have: never twice
        try:
            rec = self._admission.admit(order, known)
        except OrderRejectedError as exc:
            self._metrics.orders_rejected.inc()
            rejected = OrderRejected.of(self._now_ns(), order, exc.reason, exc.text)
            if outbox.error:
                # nothing of it is stored, and the client must not wait for the
                # journal to hear that (during an outage the kill switch refuses all)
                outbox.publish_soon(rejected)
            else:
                outbox.events.append(rejected)
                outbox.commit_soon()
            log.info("order rejected", client=order.client, cl_ord_id=order.cl_ord_id, why=exc.text)
            raise
        # admitted and started: from here on nothing can fail, and it is all recorded
        row = rec.row
        book.orders[row.parent_id] = rec
        book.clordids[(order.client, order.cl_ord_id)] = row.parent_id
        outbox.batch.upsert(SvcMetaRow, {"key": "next_parent", "value": book.next_parent})
        self._clordid(order.client, order.cl_ord_id, row.parent_id, "new")
        self._projector.save(rec)
        self._metrics.orders_accepted.inc()
        outbox.events.append(OrderAccepted(row.created_ns, rec.view()))
        outbox.commit_soon()
        self._kick()
        log.info(
            "order accepted",
            parent_id=row.parent_id,
            client=order.client,
            symbol=row.symbol,
            side=row.side,
            qty=row.qty,
            strategy=row.strategy,
        )
        return rec.view()

    def cancel(self, request: CancelRequest) -> ParentView:
        rec = self._cancels.target(
            request.client, request.cl_ord_id, request.orig_cl_ord_id, request.parent_id, "cancel"
        )
        rec.cancel_cl_ord_id = request.cl_ord_id
        rec.cancel_reason = request.reason or "canceled by the client"
        self._book.clordids[(request.client, request.cl_ord_id)] = rec.row.parent_id
        self._clordid(request.client, request.cl_ord_id, rec.row.parent_id, "cancel")
        self._cancels.begin(rec)
        self._outbox.commit_soon()
        self._kick()
        return rec.view()

    def replace(self, request: ReplaceRequest) -> ParentView:
        rec = self._cancels.target(
            request.client, request.cl_ord_id, request.orig_cl_ord_id, request.parent_id, "replace"
        )
        row = rec.row
        now = self._now_ns()
        changed = self._amended(request, rec, now)
        qty, ord_type, limit, end_ns = changed
        m = rec.market
        parent = ParentOrder(
            parent_id=ParentId(row.parent_id),
            symbol=Symbol(row.symbol),
            side=Side(row.side),
            qty=qty,
            start_ns=m.world_ns(row.start_ns),
            horizon_ns=end_ns - row.start_ns,
            limit_ticks=None if limit is None else m.instrument.to_ticks(limit),
        )
        slicer = self._wiring.slicer(rec, qty, (end_ns - row.start_ns) / NANOS_PER_SECOND)
        # everything checked: the execution first (it refuses a change of id or start
        # before it changes anything), then the record
        assert rec.execution is not None
        rec.execution.amend(parent, slicer)
        orig = row.cl_ord_id
        row.qty, row.ord_type, row.limit_price, row.end_ns = qty, ord_type.value, limit, end_ns
        row.cl_ord_id = request.cl_ord_id
        row.updated_ns = now
        self._book.clordids[(request.client, request.cl_ord_id)] = row.parent_id
        self._clordid(request.client, request.cl_ord_id, row.parent_id, "replace")
        self._metrics.orders_replaced.inc()
        self._projector.save(rec)
        self._outbox.events.append(OrderReplaced(now, rec.view(), request.cl_ord_id, orig))
        if row.filled_qty >= qty:
            self._projector.complete(rec, OrderStatus.FILLED, now)
        self._outbox.commit_soon()
        self._kick()
        return rec.view()

    def _amended(
        self, request: ReplaceRequest, rec: Order, now: int
    ) -> tuple[int, OrdType, float | None, int]:
        """(qty, ord_type, limit, end) of `rec` as `request` changes them, each checked
        as admission checks a new order's; raises (and publishes) CancelRejectedError."""
        row = rec.row

        def refuse(text: str, field: str | None = None) -> CancelRejectedError:
            return self._cancels.reject(
                request.client,
                request.cl_ord_id,
                row.cl_ord_id,
                rec,
                CxlRejReason.OTHER,
                "replace",
                text,
                field,
            )

        admission = self._admission
        qty = row.qty if request.qty is None else request.qty
        if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
            raise refuse(f"quantity must be a positive integer, got {qty!r}", "qty")
        if qty < row.filled_qty:
            raise refuse(f"quantity {qty} is below the {row.filled_qty} already filled", "qty")
        if qty > admission.max_qty(rec.market):
            raise refuse(
                f"quantity {qty} is above the limit of {admission.max_qty(rec.market)} "
                f"({self._config.max_order_adv:.0%} of ADV)",
                "qty",
            )
        ord_type = OrdType(row.ord_type) if request.ord_type is None else request.ord_type
        limit = row.limit_price
        if ord_type is OrdType.MARKET:
            limit = None
        elif request.limit_price is not None:
            limit = request.limit_price
        if ord_type is OrdType.LIMIT:
            if limit is None:
                raise refuse("a limit order needs a limit price", "limit_price")
            try:
                reference = rec.market.mid() or row.arrival_mid
                limit = admission.check_limit(rec.market, Side(row.side), limit, reference)
            except OrderRejectedError as exc:
                raise refuse(exc.text, "limit_price") from None
        end_ns = row.end_ns if request.expire_ns is None else request.expire_ns
        if end_ns != row.end_ns:
            try:
                admission.check_expiry(rec.market, end_ns, now)
            except OrderRejectedError as exc:
                raise refuse(exc.text, "expire_ns") from None
        if rec.execution is None:  # cannot happen (admission is all or nothing): be sure
            raise refuse("the order has no execution to change")
        return qty, ord_type, limit, end_ns

    def pause(self, parent_id: str) -> ParentView:
        rec = self._book.get(parent_id)
        if rec.status is not OrderStatus.WORKING:
            raise InvalidStateError(
                f"order {parent_id} is {rec.status.value}: only a working order pauses"
            )
        assert rec.execution is not None
        rec.execution.pause()
        rec.row.status = OrderStatus.PAUSED.value
        rec.row.updated_ns = self._now_ns()
        self._projector.save(rec)
        self._outbox.events.append(OrderPaused(rec.row.updated_ns, rec.view()))
        self._outbox.commit_soon()
        return rec.view()

    def resume(self, parent_id: str) -> ParentView:
        rec = self._book.get(parent_id)
        if rec.status is not OrderStatus.PAUSED:
            raise InvalidStateError(
                f"order {parent_id} is {rec.status.value}: only a paused order resumes"
            )
        if self._kill.engaged:
            raise InvalidStateError(
                f"the kill switch is engaged ({self._kill.reason}): nothing resumes"
            )
        assert rec.execution is not None
        rec.market.advance(self._now_ns())
        rec.execution.resume()
        rec.row.status = OrderStatus.WORKING.value
        rec.row.updated_ns = self._now_ns()
        self._projector.save(rec)
        self._outbox.events.append(OrderResumed(rec.row.updated_ns, rec.view()))
        self._outbox.commit_soon()
        self._kick()
        return rec.view()

    def engage_kill(self, reason: str) -> int:
        reason = reason or "kill switch"
        now = self._now_ns()
        self._kill.engage(reason, now, KillSwitch.MANUAL)  # first: nothing more goes out
        n = 0
        for rec in list(self._book.orders.values()):
            if rec.status in (OrderStatus.WORKING, OrderStatus.PAUSED):
                rec.cancel_reason = f"kill switch: {reason}"
                try:
                    self._cancels.begin(rec)
                except Exception:  # one broken parent must not keep the others trading
                    self._metrics.pump_errors.inc()
                    log.exception("kill switch: cancel failed", parent_id=rec.row.parent_id)
                    continue
                n += 1
        # the switch's state is no journaled fact: every edge hears it now, journal or not
        self._outbox.publish_soon(KillSwitchChanged(now, True, reason, n))
        self._outbox.commit_soon()
        self._kick()
        log.warning("kill switch engaged", reason=reason, canceled=n)
        return n

    def release_kill(self) -> None:
        if self._outbox.error:
            # trading on would pile up facts that a crash would lose: the journal first
            raise InvalidStateError(
                f"the journal cannot write ({self._outbox.error}): the kill switch stays "
                "engaged until it writes again"
            )
        self.lift_kill("")
        log.warning("kill switch released")

    def lift_kill(self, reason: str) -> None:
        """Release the kill switch and say so; `reason`: why, where no person did."""
        now = self._now_ns()
        self._kill.release(now)
        self._outbox.publish_soon(KillSwitchChanged(now, False, reason))
        self._kick()  # the parents trade again from their next decision

    def _clordid(self, client: str, cl_ord_id: str, parent_id: str, kind: str) -> None:
        row: dict[str, Any] = {
            "client": client,
            "cl_ord_id": cl_ord_id,
            "parent_id": parent_id,
            "kind": kind,
            "ts_ns": self._now_ns(),
        }
        self._outbox.batch.insert(SvcClOrdIdRow, row)
