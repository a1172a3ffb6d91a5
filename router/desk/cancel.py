"""The cancel workflow's requests: which parent a cancel or replace names, the reasons
to refuse one (published as CancelRejected), and the start of a cancel: every child
pulled, the parent pending cancel. It ends in the projection, once the venues confirmed
that no child is left (`Projector.maybe_canceled`)."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from router.desk.metrics import DeskMetrics
from router.desk.orders import Order, OrderBook
from router.desk.outbox import Outbox
from router.desk.projection import Projector
from router.desk_api import CancelRejected, CancelRejectedError, CxlRejReason, OrderStatus

log = structlog.get_logger("blockroute.desk")


class CancelWorkflow:
    """Cancel and replace requests: their target, their refusals, a cancel's start."""

    def __init__(
        self,
        book: OrderBook,
        outbox: Outbox,
        projector: Projector,
        now_ns: Callable[[], int],
        metrics: DeskMetrics,
    ) -> None:
        self._book = book
        self._outbox = outbox
        self._projector = projector
        self._now_ns = now_ns
        self._metrics = metrics

    def target(
        self, client: str, cl_ord_id: str, orig: str | None, parent_id: str | None, what: str
    ) -> Order:
        """The parent a cancel or replace (`what`) names, by its id or the client's
        `orig` ClOrdID; raises (and publishes) a CancelRejectedError if it is unknown,
        done or already pending cancel, or if `cl_ord_id` is taken."""
        book = self._book
        pid = parent_id if parent_id is not None else book.clordids.get((client, orig or ""))
        rec = book.orders.get(pid) if pid is not None else None
        orig_text = orig or (rec.row.cl_ord_id if rec else "")
        if rec is None or (parent_id is None and rec.row.client != client):
            raise self.reject(
                client,
                cl_ord_id,
                orig_text,
                None,
                CxlRejReason.UNKNOWN_ORDER,
                what,
                f"unknown order {orig or parent_id!r}",
            )
        if (client, cl_ord_id) in book.clordids:
            raise self.reject(
                client,
                cl_ord_id,
                orig_text,
                rec,
                CxlRejReason.DUPLICATE_CLORDID,
                what,
                f"duplicate ClOrdID {cl_ord_id!r}",
            )
        if rec.status is OrderStatus.PENDING_CANCEL:
            raise self.reject(
                client,
                cl_ord_id,
                orig_text,
                rec,
                CxlRejReason.ALREADY_PENDING,
                what,
                "a cancel is already pending",
            )
        if rec.status.terminal:
            raise self.reject(
                client,
                cl_ord_id,
                orig_text,
                rec,
                CxlRejReason.TOO_LATE_TO_CANCEL,
                what,
                f"order is already {rec.status.value}",
            )
        return rec

    def reject(
        self,
        client: str,
        cl_ord_id: str,
        orig: str,
        rec: Order | None,
        reason: CxlRejReason,
        what: str,
        text: str,
        field: str | None = None,
    ) -> CancelRejectedError:
        """Stage CancelRejected and return the error for the caller to raise."""
        self._outbox.events.append(
            CancelRejected(
                self._now_ns(),
                client,
                cl_ord_id,
                orig,
                rec.row.parent_id if rec else None,
                rec.status if rec else None,
                reason,
                what,
                text,
            )
        )
        self._outbox.commit_soon()
        return CancelRejectedError(reason, text, field)

    def begin(self, rec: Order) -> None:
        """Pull every child of `rec` (rec.cancel_reason says why); the parent is pending
        cancel until the venues confirm, or canceled at once if nothing is out."""
        if rec.execution is not None:
            try:
                rec.market.advance(self._now_ns())
            except Exception:  # another parent's step: the pump's failure, not the cancel's
                self._metrics.pump_errors.inc()
                log.exception("desk step failed")
            rec.execution.stop(rec.cancel_reason)
        # (without an execution nothing is at any venue: it is canceled at once below)
        rec.row.status = OrderStatus.PENDING_CANCEL.value
        rec.row.updated_ns = self._now_ns()
        self._projector.save(rec)
        self._projector.maybe_canceled(rec)
