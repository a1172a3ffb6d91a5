"""Recovery at start: the desk rebuilt from its journal.

The journal's open parents resume with their exact filled quantities. Their child
orders rested at venues of the old process's markets; the new markets do not know them,
so they are reconciled as canceled by the venue (no fill of theirs can arrive any more)
and the parent re-plans from now. A row that cannot be loaded (an absurd price written by
an older version, a broken field) is quarantined: named in svc_quarantine with the
reason, logged, left out of the desk.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import structlog

from router.desk.admission import is_number, limit_problem
from router.desk.config import DeskConfig
from router.desk.execution import ExecutionWiring
from router.desk.market import MarketSession
from router.desk.orders import Order, OrderBook
from router.desk.outbox import Outbox
from router.desk.projection import Projector
from router.desk_api import ChildOrderUpdated, OrderStatus
from router.domain import ChildId, ChildOrderFilled, DomainError, OrdType, Side, VenueId
from router.journal import Journal, ParentRecord, SvcChildRow, SvcParentRow, SvcQuarantineRow

log = structlog.get_logger("blockroute.desk")


class Recovery:
    """Rebuilds the order book and the executions from the journal, once, at start."""

    def __init__(
        self,
        config: DeskConfig,
        journal: Journal,
        book: OrderBook,
        markets: Mapping[str, MarketSession],
        wiring: ExecutionWiring,
        projector: Projector,
        outbox: Outbox,
        now_ns: Callable[[], int],
    ) -> None:
        self._config = config
        self._journal = journal
        self._book = book
        self._markets = markets
        self._wiring = wiring
        self._projector = projector
        self._outbox = outbox
        self._now_ns = now_ns

    def recover(self) -> None:
        """Rebuild the book from the journal, the markets open (see the module
        docstring). A parent that cannot be rebuilt is quarantined, and the others start.
        Raises DomainError for an open parent of a symbol no longer configured, and
        StoreError if the journal cannot be read."""
        book, journal = self._book, self._journal
        book.next_parent = journal.meta("next_parent", 0) + 1
        for ids in journal.clordids():
            book.clordids[(ids.client, ids.cl_ord_id)] = ids.parent_id
        before = {q.parent_id: q.reason for q in journal.quarantined()}
        rows = journal.parents()
        ok: list[ParentRecord] = []
        for row in rows:
            if row.parent_id in before:
                book.quarantined[row.parent_id] = before[row.parent_id]
                log.warning(
                    "order quarantined before: skipped",
                    parent_id=row.parent_id,
                    reason=before[row.parent_id],
                )
                continue
            why = self._row_problem(row)
            if why is not None:
                self._quarantine(row.parent_id, why)
                continue
            ok.append(ParentRecord.from_row(row))
        open_ids = [r.parent_id for r in ok if not OrderStatus(r.status).terminal]
        open_children: dict[str, list[SvcChildRow]] = {}
        for c in journal.open_children(open_ids):
            open_children.setdefault(c.parent_id, []).append(c)
        now = self._now_ns()
        for r in ok:
            market = self._markets.get(r.symbol)
            if market is None:
                if not OrderStatus(r.status).terminal:
                    raise DomainError(
                        f"open order {r.parent_id} trades {r.symbol}, which is no longer configured"
                    )
                continue
            # all or nothing for each parent: what a failure left half done is undone
            mark = self._outbox.mark()
            rec = Order(r, market)
            try:
                self._recover_one(rec, open_children.get(r.parent_id, []), now)
            except Exception as exc:
                log.exception("order could not be recovered", parent_id=r.parent_id)
                self._wiring.drop(rec)
                book.orders.pop(r.parent_id, None)
                self._outbox.rollback(mark)
                self._quarantine(r.parent_id, f"recovery failed: {type(exc).__name__}: {exc}")

    def _recover_one(self, rec: Order, open_children: list[SvcChildRow], now: int) -> None:
        r, market = rec.row, rec.market
        self._book.orders[r.parent_id] = rec
        if OrderStatus(r.status).terminal:
            return
        rec.engine_strategy = self._wiring.engine_strategy(r.strategy)
        arm = self._wiring.arms.resume(r.parent_id, r.model_arm, rec.engine_strategy)
        if arm != r.model_arm:
            r.model_arm = arm
            self._projector.save(rec)
        rec.fills = [
            ChildOrderFilled(
                f.ts_ns,
                ChildId(f.child_id),
                VenueId(f.venue),
                Side(r.side),
                f.qty,
                f.price,
                f.fee,
                f.liquidity,
                0,
            )
            for f in self._journal.fills(r.parent_id)
        ]
        counts = self._journal.counts(r.parent_id)
        rec.decisions, rec.rfq_events = counts["decisions"], counts["rfq_events"]
        rec.schedule_base = counts["schedule"]
        for c in open_children:
            # the venue that held it died with the old process: nothing more can fill
            self._outbox.batch.upsert(
                SvcChildRow, {**c.model_dump(), "status": "canceled", "updated_ns": now}
            )
            self._outbox.events.append(
                ChildOrderUpdated(
                    now,
                    rec.view(),
                    c.child_id,
                    c.venue,
                    "canceled",
                    c.qty - c.filled_qty,
                    "venue state lost at restart: reconciled",
                )
            )
        if now >= r.end_ns or r.filled_qty >= r.qty:
            if r.filled_qty >= r.qty:
                self._projector.complete(rec, OrderStatus.FILLED, now)
            else:
                left = r.qty - r.filled_qty
                r.text = f"horizon passed while the service was down, {left} unfilled"
                self._projector.expired(rec, now)
            return
        restore = (r.n_children + 1, r.n_rfqs + 1)
        self._wiring.start(rec, market.world_ns(now), restore)
        if r.status == OrderStatus.PENDING_CANCEL.value:
            assert rec.execution is not None
            rec.execution.stop(rec.cancel_reason or "canceled before the restart")
            rec.cancel_reason = rec.cancel_reason or "canceled before the restart"
            self._projector.maybe_canceled(rec)
        elif r.status == OrderStatus.PAUSED.value:
            assert rec.execution is not None
            rec.execution.pause()
        log.warning(
            "order recovered",
            parent_id=r.parent_id,
            filled=r.filled_qty,
            qty=r.qty,
            status=r.status,
            reconciled_children=len(open_children),
        )

    def _row_problem(self, row: SvcParentRow) -> str | None:
        """Why a journal row cannot be a parent of this desk (None: it can). The checks
        of admission that do not depend on the market of the moment."""
        try:
            status, side, ord_type = OrderStatus(row.status), Side(row.side), OrdType(row.ord_type)
        except ValueError as exc:
            return str(exc)
        del status, side
        for name in ("qty", "filled_qty", "start_ns", "end_ns", "n_children", "n_fills"):
            value = getattr(row, name)
            if isinstance(value, bool) or not isinstance(value, int):
                return f"{name} is not an integer: {value!r}"
        if row.qty <= 0 or row.filled_qty < 0:
            return f"quantity {row.qty} with {row.filled_qty} filled"
        if row.end_ns < row.start_ns:
            return f"it ends ({row.end_ns}) before it starts ({row.start_ns})"
        for name in ("notional", "fees", "arrival_mid"):
            value = getattr(row, name)
            if not is_number(value) or not math.isfinite(value):
                return f"{name} is not a finite number: {value!r}"
        if ord_type is OrdType.LIMIT and row.limit_price is None:
            return "a limit order without a limit price"
        market = self._markets.get(row.symbol)
        if row.limit_price is not None and market is not None:
            why = limit_problem(row.limit_price, market.instrument.tick_size)
            if why is not None:
                return why
        p = row.participation
        if p is not None and not (is_number(p) and 0 < p <= 1):
            return f"participation rate {p!r} is not in (0, 1]"
        try:
            self._config.resolve_strategy(row.strategy)
        except DomainError as exc:
            return str(exc)
        return None

    def _quarantine(self, parent_id: str, reason: str) -> None:
        """Keep a parent the journal holds but this desk cannot run out of the way: it
        is named in svc_quarantine (its row stays as it was), logged, and skipped."""
        self._book.quarantined[parent_id] = reason
        self._outbox.batch.upsert(
            SvcQuarantineRow, {"parent_id": parent_id, "reason": reason, "ts_ns": self._now_ns()}
        )
        log.error(
            "order quarantined: its journal row cannot be recovered",
            parent_id=parent_id,
            reason=reason,
        )
