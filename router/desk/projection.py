"""From the engine's events to journal rows and desk events.

Each execution reports what happened to its parent (children sent, filled, canceled;
decisions; RFQ facts; the end of its horizon) as domain events in its market's world
time. The projector brings each to the service clock, updates the parent's record,
stages the rows that record the fact and the desk event that reports it in the outbox,
and moves the parent to its end state when the fact ends it (filled, expired, canceled
once no child is left at a venue).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import structlog

from router.desk.drift import DriftFeed
from router.desk.metrics import DeskMetrics
from router.desk.orders import Order, tca_report
from router.desk.outbox import Outbox
from router.desk.shadow import ShadowBook
from router.desk_api import (
    ChildOrderUpdated,
    DecisionMade,
    DeskEvent,
    OrderCanceled,
    OrderCompleted,
    OrderExpired,
    OrderFilled,
    OrderStatus,
    RfqUpdated,
)
from router.domain import (
    NANOS_PER_SECOND,
    ChildId,
    ChildOrderAccepted,
    ChildOrderCanceled,
    ChildOrderExpired,
    ChildOrderFilled,
    ChildOrderRejected,
    ChildOrderSent,
    DecisionRecorded,
    Event,
    LastLookRejected,
    ParentOrderCompleted,
    QuoteIgnored,
    QuoteReceived,
    QuoteRequestRejected,
    QuoteResponseSent,
    RfqClosed,
    RfqEnded,
    RfqRequested,
    RfqTraded,
    ShadowAnswer,
    ShadowCompared,
    VenueKind,
)
from router.journal import (
    SvcChildRow,
    SvcDecisionRow,
    SvcFillRow,
    SvcParentRow,
    SvcRfqEventRow,
    SvcScheduleRow,
    dumps,
)
from router.store import child_order_columns

log = structlog.get_logger("blockroute.desk")


class Projector:
    """Stages every fact of the desk's parents in `outbox` (see the module docstring)."""

    def __init__(
        self,
        outbox: Outbox,
        now_ns: Callable[[], int],
        metrics: DeskMetrics,
        drift: DriftFeed | None = None,
        shadow: ShadowBook | None = None,
    ) -> None:
        self._outbox = outbox
        self._now_ns = now_ns
        self._metrics = metrics
        self._drift = drift  # sees every engine event and every end, after the journal
        self.shadow = shadow if shadow is not None else ShadowBook()
        # the JSON of the challengers' answers the last records carried: an answer rides
        # on every record of its decision (a split's posts), made into JSON once
        self._shadow_json: tuple[tuple[ShadowAnswer, ...], dict[str, Any], str] | None = None
        self._children: dict[str, dict[str, Any]] = {}  # rows of the open child orders
        self._schedule_dirty: dict[str, Order] = {}  # parents with new schedule points
        self.rfq_events: dict[str, list[Event]] = {}  # symbol -> this session's RFQ facts

    # ------------------------------------------------------------------ records

    def save(self, rec: Order, ts: int | None = None) -> None:
        """Stage the parent's row as it is now (`ts`: the fact's time, if later)."""
        if ts is not None:
            rec.row.updated_ns = max(rec.row.updated_ns, ts)
        self._outbox.batch.upsert(SvcParentRow, rec.row.as_row())

    def complete(self, rec: Order, status: OrderStatus, ts: int) -> None:
        """End the parent in `status` at `ts`: its schedule closed, its TCA computed,
        OrderCompleted staged (last: a caller inserts the fact that ended it before)."""
        rec.row.status = status.value
        rec.row.updated_ns = ts
        if rec.execution is not None:
            rec.execution.close()
            # the schedule ends where the order did: realised vs the target by then
            points = rec.execution.result.schedule
            target = points[-1][1] if points else 0
            w = rec.market.world_ns(ts)
            if not points or points[-1][0] < w or points[-1][2] != rec.row.filled_qty:
                points.append((w, target, rec.row.filled_qty))
            self.journal_schedule(rec)
        tca = tca_report(rec)
        rec.row.tca_json = dumps(tca)
        self.save(rec, ts)
        self._outbox.events.append(OrderCompleted(ts, rec.view(), tca))
        if self._drift is not None:
            self._drift.completed(rec, status, tca)
        log.info(
            "order done",
            parent_id=rec.row.parent_id,
            status=status.value,
            filled=rec.row.filled_qty,
            qty=rec.row.qty,
            is_bps=tca.get("is_bps"),
        )

    def expired(self, rec: Order, ts: int) -> None:
        """End the parent unfilled at its horizon (`rec.row.text` says why)."""
        self.complete(rec, OrderStatus.EXPIRED, ts)
        self._insert_before_completed(OrderExpired(ts, rec.view()))

    def maybe_canceled(self, rec: Order) -> None:
        """A pending cancel ends once no child is left at any venue."""
        if rec.status is not OrderStatus.PENDING_CANCEL:
            return
        if rec.execution is not None and rec.execution.in_flight > 0:
            return
        now = self._now_ns()
        if rec.execution is not None:
            rec.execution.close()
        if rec.row.filled_qty >= rec.row.qty:  # the last fills were in flight
            self.complete(rec, OrderStatus.FILLED, now)
            return
        rec.row.text = rec.cancel_reason
        self._metrics.orders_canceled.inc()
        self.complete(rec, OrderStatus.CANCELED, now)
        self._insert_before_completed(
            OrderCanceled(
                now, rec.view(), rec.cancel_cl_ord_id, rec.row.cl_ord_id, rec.cancel_reason
            )
        )

    def _insert_before_completed(self, event: DeskEvent) -> None:
        events = self._outbox.events
        events.insert(len(events) - 1, event)  # before its OrderCompleted

    # ------------------------------------------------------------------ engine events

    def on_engine_event(self, rec: Order, e: Event) -> None:
        m = rec.market
        row = rec.row
        ts = m.epoch_ns(e.ts_ns)
        if isinstance(e, ChildOrderSent):
            c = e.child
            row.n_children += 1
            self._metrics.child_orders.inc()
            child_row = {
                **child_order_columns(c),
                "quote_id": c.quote_id,
                "sent_ns": ts,
                "filled_qty": 0,
                "status": "open",
                "updated_ns": ts,
            }
            self._children[c.child_id] = child_row
            self._outbox.batch.upsert(SvcChildRow, dict(child_row))
            self.save(rec, ts)
            self._outbox.events.append(
                ChildOrderUpdated(ts, rec.view(), c.child_id, c.venue, "sent", c.qty)
            )
        elif isinstance(e, ChildOrderFilled):
            self._on_fill(rec, e, ts)
        elif isinstance(e, ChildOrderCanceled | ChildOrderExpired | ChildOrderRejected):
            what = {ChildOrderCanceled: "canceled", ChildOrderExpired: "expired"}.get(
                type(e), "rejected"
            )
            qty = getattr(e, "canceled_qty", getattr(e, "expired_qty", 0))
            detail = getattr(e, "reason", "")
            self._child_status(e.child_id, what, ts)
            self._outbox.events.append(
                ChildOrderUpdated(ts, rec.view(), e.child_id, e.venue, what, qty, detail)
            )
            self.maybe_canceled(rec)
        elif isinstance(e, ChildOrderAccepted):
            pass  # the child's row says open already; acks are not journaled
        elif isinstance(e, DecisionRecorded):
            self._on_decision(rec, e, ts)
        elif isinstance(e, ShadowCompared):
            self._on_shadow(e, ts)
        elif isinstance(e, ParentOrderCompleted):
            self.journal_schedule(rec)
            if rec.status is OrderStatus.PENDING_CANCEL:
                self.maybe_canceled(rec)
            elif not rec.status.terminal:
                if row.filled_qty >= row.qty:
                    self.complete(rec, OrderStatus.FILLED, ts)
                else:
                    row.text = f"horizon reached with {row.qty - row.filled_qty} unfilled"
                    self._metrics.orders_expired.inc()
                    self.expired(rec, ts)
        else:
            rfq = _rfq_fact(e)
            if rfq is not None:
                self._on_rfq(rec, e, ts, *rfq)
        if self._drift is not None:
            self._drift.on_event(rec, e, ts)

    def _on_fill(self, rec: Order, e: ChildOrderFilled, ts: int) -> None:
        row = rec.row
        row.filled_qty += e.qty
        row.notional += e.qty * e.price
        row.fees += e.fee
        row.n_fills += 1
        row.updated_ns = ts
        self._metrics.fills.inc()
        exec_id = f"{row.parent_id}-F{row.n_fills}"
        kind = rec.market.kinds.get(e.venue, VenueKind.LIT).value
        self._outbox.batch.insert(
            SvcFillRow,
            {
                "exec_id": exec_id,
                "parent_id": row.parent_id,
                "seq": row.n_fills,
                "child_id": e.child_id,
                "ts_ns": ts,
                "venue": e.venue,
                "venue_kind": kind,
                "qty": e.qty,
                "price": e.price,
                "fee": e.fee,
                "liquidity": e.liquidity,
            },
        )
        rec.fills.append(dataclasses.replace(e, ts_ns=ts))
        self._child_status(e.child_id, "filled" if e.leaves_qty <= 0 else "open", ts, filled=e.qty)
        if row.filled_qty >= row.qty and row.status != OrderStatus.PENDING_CANCEL.value:
            row.status = OrderStatus.FILLED.value
        self.save(rec, ts)
        self._outbox.events.append(
            OrderFilled(
                ts,
                rec.view(),
                exec_id,
                e.child_id,
                e.venue,
                kind,
                e.qty,
                e.price,
                e.liquidity,
                e.fee,
            )
        )
        if row.status == OrderStatus.FILLED.value:
            self._metrics.orders_filled.inc()
            if rec.execution is not None:
                rec.execution.close()
            self.journal_schedule(rec)
            self.complete(rec, OrderStatus.FILLED, ts)

    def _child_status(self, child_id: ChildId, status: str, ts: int, filled: int = 0) -> None:
        row = self._children.get(child_id)
        if row is None:
            return  # a child of a previous process, already reconciled
        row["filled_qty"] += filled
        row["status"] = status
        row["updated_ns"] = ts
        self._outbox.batch.upsert(SvcChildRow, dict(row))
        if status != "open":
            del self._children[child_id]

    def _on_decision(self, rec: Order, e: DecisionRecorded, ts: int) -> None:
        rec.decisions += 1
        self._metrics.decisions.inc()
        # made now, so made the heuristic router's way if the models are withdrawn now
        fallback = self._drift.fallback_for(rec) if self._drift is not None else ""
        shadow, shadow_text = self._shadow_of(e.shadow)
        self._outbox.batch.insert(
            SvcDecisionRow,
            {
                "parent_id": rec.row.parent_id,
                "seq": rec.decisions,
                "decision_id": e.decision_id,
                "ts_ns": ts,
                "chosen": e.chosen,
                "inputs_json": dumps(_finite(e.inputs)),
                "alternatives_json": dumps(_finite(e.alternatives)),
                "fallback": fallback or None,
                "shadow_json": shadow_text,
            },
        )
        self._outbox.events.append(
            DecisionMade(
                ts,
                rec.view(),
                e.decision_id,
                e.chosen,
                _finite(e.inputs),
                _finite(e.alternatives),
                fallback,
                shadow,
            )
        )

    def _shadow_of(
        self, answers: tuple[ShadowAnswer, ...]
    ) -> tuple[dict[str, Any] | None, str | None]:
        """A decision's challengers' answers by family, and as journaled (None, None
        without)."""
        if not answers:
            return None, None
        cached = self._shadow_json
        if cached is not None and _same(cached[0], answers):
            return cached[1], cached[2]
        doc = {a.family: _json_numbers(a.to_json()) for a in answers}
        self._shadow_json = (answers, doc, dumps(doc))
        return doc, self._shadow_json[2]

    def _on_shadow(self, e: ShadowCompared, ts: int) -> None:
        """A challenger asked beside its champion: counted once per asking."""
        family = e.answer.family
        self._metrics.shadow_decisions.labels(family).inc()
        agreements = self._metrics.shadow_agreements.labels(family)  # 0 is a figure too
        if e.answer.agree:
            agreements.inc()
        self._metrics.shadow_latency.labels(family).observe(e.answer.latency_us / 1e6)
        self.shadow.observe(ts, e.parent_id, e.answer, e.decision_ids)

    def _on_rfq(
        self, rec: Order, e: Event, ts: int, rfq_id: str, what: str, detail: dict[str, Any]
    ) -> None:
        self.rfq_events.setdefault(rec.row.symbol, []).append(e)
        rec.rfq_events += 1
        if what == "requested":
            rec.row.n_rfqs += 1
            self._metrics.rfqs.inc()
            self.save(rec, ts)
        self._outbox.batch.insert(
            SvcRfqEventRow,
            {
                "parent_id": rec.row.parent_id,
                "seq": rec.rfq_events,
                "rfq_id": rfq_id,
                "ts_ns": ts,
                "what": what,
                "detail_json": dumps(_learnable(rec, e, detail)),
            },
        )
        self._outbox.events.append(RfqUpdated(ts, rec.view(), rfq_id, what, detail))

    # ------------------------------------------------------------------ schedules

    def mark_schedule(self, rec: Order) -> None:
        """The parent's execution added a schedule point (journaled after the step)."""
        self._schedule_dirty[rec.row.parent_id] = rec

    def journal_schedules(self) -> None:
        """The schedule points added since the last step (only those parents: a desk
        with thousands open must not visit every one at every step)."""
        dirty, self._schedule_dirty = self._schedule_dirty, {}
        for rec in dirty.values():
            if rec.execution is not None:
                self.journal_schedule(rec)

    def journal_schedule(self, rec: Order) -> None:
        if rec.execution is None:
            return
        points = rec.execution.result.schedule
        base = rec.schedule_base
        for i in range(rec.schedule_seen, len(points)):
            t, target, filled = points[i]
            self._outbox.batch.insert(
                SvcScheduleRow,
                {
                    "parent_id": rec.row.parent_id,
                    "seq": base + i + 1,
                    "ts_ns": rec.market.epoch_ns(t),
                    "target_qty": target,
                    "filled_qty": filled,
                },
            )
        rec.schedule_seen = len(points)


def _same(a: tuple[ShadowAnswer, ...], b: tuple[ShadowAnswer, ...]) -> bool:
    """The same answers (the objects themselves: their dicts make them unhashable)."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def _finite(values: Mapping[str, float]) -> dict[str, float]:
    """JSON has no NaN: drop what is not a finite number."""
    out = {}
    for k, v in values.items():
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if np.isfinite(f):
            out[k] = f
    return out


def _learnable(rec: Order, e: Event, detail: dict[str, Any]) -> dict[str, Any]:
    """The journaled detail of an RFQ fact: what is published, plus what retraining the
    dealer models from the journal needs (models/training/journal_data.py) and only the
    market can tell: the screen and the axe feed at a request, the lit mid when a quote
    came (its distance from the mid is a feature), a quote's validity, the client's
    side of a trade. Kept off the bus: it is the desk's knowledge, not the event's."""
    m = rec.market
    if isinstance(e, RfqRequested):
        screen = m.rfq_screen(e.ts_ns)
        return detail if screen is None else {**detail, "screen": _json_numbers(screen)}
    if isinstance(e, QuoteReceived):
        return {
            **detail,
            "mid": m.lit_mid_at(e.quote.ts_ns),
            "quote_ts_ns": m.epoch_ns(e.quote.ts_ns),
            "valid_until_ns": m.epoch_ns(e.quote.valid_until_ns),
        }
    if isinstance(e, RfqTraded):
        return {**detail, "side": e.side.value}
    return detail


def _json_numbers(value: Any) -> Any:
    """JSON has no NaN: a number that is not finite is journaled as null."""
    if isinstance(value, dict):
        return {k: _json_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_numbers(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _rfq_fact(e: Event) -> tuple[str, str, dict[str, Any]] | None:
    """(rfq_id, what, detail) of an RFQ protocol event; None for anything else."""
    if isinstance(e, RfqRequested):
        r = e.request
        return (
            r.rfq_id,
            "requested",
            {
                "qty": r.qty,
                "side": None if r.side is None else r.side.value,
                "dealers": list(r.dealers),
                "time_limit_s": r.time_limit_ns / NANOS_PER_SECOND,
            },
        )
    if isinstance(e, QuoteReceived):
        q = e.quote
        return (
            q.rfq_id,
            "quote_received",
            {
                "dealer": q.dealer,
                "quote_id": q.quote_id,
                "bid": q.bid,
                "offer": q.offer,
                "qty": q.qty,
            },
        )
    if isinstance(e, QuoteRequestRejected):
        return e.rfq_id, "declined", {"dealer": e.dealer, "reason": e.reason.name, "text": e.text}
    if isinstance(e, QuoteIgnored):
        return e.rfq_id, "late", {"dealer": e.dealer, "reason": e.reason}
    if isinstance(e, RfqClosed):
        return e.rfq_id, "closed", {"n_quotes": e.n_quotes}
    if isinstance(e, QuoteResponseSent):
        return (
            e.rfq_id,
            "response",
            {
                "dealer": e.dealer,
                "resp_type": e.resp_type.name,
                "qty": e.qty,
                "price": e.price,
                "child_id": e.child_id,
            },
        )
    if isinstance(e, RfqTraded):
        return (
            e.rfq_id,
            "traded",
            {"dealer": e.dealer, "qty": e.qty, "price": e.price, "child_id": e.child_id},
        )
    if isinstance(e, LastLookRejected):
        return (
            e.rfq_id,
            "last_look_rejected",
            {"dealer": e.dealer, "child_id": e.child_id, "reason": e.reason},
        )
    if isinstance(e, RfqEnded):
        return e.rfq_id, "ended", {"state": e.state, "traded_qty": e.traded_qty}
    return None
