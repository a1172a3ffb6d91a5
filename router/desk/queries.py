"""The desk's reads: parents from memory; fills, decisions and schedules from the
journal (refused at once while it is unhealthy, cut off after journal_read_s: the loop
serves everyone else meanwhile); TCA and the dealer scorecard."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from dealers.scorecard import Scorecard
from router.desk.config import DeskConfig
from router.desk.market import MarketSession
from router.desk.orders import OrderBook, tca_report
from router.desk.outbox import Outbox
from router.desk.projection import Projector
from router.desk_api import InvalidStateError, JournalUnavailableError, OrderStatus, ParentView
from router.journal import Journal, SvcDecisionRow
from router.store import StoreError

log = structlog.get_logger("blockroute.desk")


class DeskQueries:
    """The read half of router.desk_api.DeskPort (see there for each one)."""

    def __init__(
        self,
        config: DeskConfig,
        journal: Journal,
        book: OrderBook,
        markets: Mapping[str, MarketSession],
        projector: Projector,
        outbox: Outbox,
    ) -> None:
        self._config = config
        self._journal = journal
        self._book = book
        self._markets = markets
        self._projector = projector
        self._outbox = outbox

    def find(self, client: str, cl_ord_id: str) -> ParentView | None:
        rec = self._book.find(client, cl_ord_id)
        return None if rec is None else rec.view()

    def parent(self, parent_id: str) -> ParentView:
        return self._book.get(parent_id).view()

    def parents(self, status: OrderStatus | None = None) -> list[ParentView]:
        orders = reversed(list(self._book.orders.values()))
        return [o.view() for o in orders if status is None or o.status is status]

    def fills(self, parent_id: str) -> list[dict[str, Any]]:
        self._book.get(parent_id)
        rows = self._read(lambda t: self._journal.fills(parent_id, timeout_s=t))
        return [
            {
                "exec_id": r.exec_id,
                "child_id": r.child_id,
                "ts_ns": r.ts_ns,
                "venue": r.venue,
                "venue_kind": r.venue_kind,
                "qty": r.qty,
                "price": r.price,
                "fee": r.fee,
                "liquidity": r.liquidity,
            }
            for r in rows
        ]

    def decisions(self, parent_id: str, limit: int = 50) -> list[dict[str, Any]]:
        self._book.get(parent_id)
        n = max(1, min(limit, 1000))
        rows = self._read(lambda t: self._journal.decisions(parent_id, n, timeout_s=t))
        return [_decision(r) for r in rows]

    def schedule(self, parent_id: str) -> list[dict[str, Any]]:
        self._book.get(parent_id)
        rows = self._read(lambda t: self._journal.schedule(parent_id, timeout_s=t))
        return [
            {"ts_ns": r.ts_ns, "target_qty": r.target_qty, "filled_qty": r.filled_qty} for r in rows
        ]

    def _read(self, fetch: Callable[[float], list[Any]]) -> list[Any]:
        """A read of the journal on the loop: refused at once while the journal is not
        healthy, and cut off after journal_read_s (the loop serves everyone else)."""
        if not self._outbox.ok:
            why = self._outbox.error or "a write is taking too long"
            raise JournalUnavailableError(f"the journal cannot be read now ({why}); try again")
        try:
            return fetch(self._config.journal_read_s)
        except StoreError as exc:
            log.error("journal read failed", error=str(exc))
            why = "no answer in time" if exc.timed_out else "database error"
            raise JournalUnavailableError(
                f"the journal cannot be read now ({why}); try again"
            ) from None

    def tca(self, parent_id: str) -> dict[str, Any]:
        order = self._book.get(parent_id)
        if not order.status.terminal:
            raise InvalidStateError(
                f"order {parent_id} is {order.status.value}: TCA comes at its end"
            )
        if order.row.tca_json:
            out: dict[str, Any] = json.loads(order.row.tca_json)
            return out
        return tca_report(order)

    def scorecard(self) -> dict[str, Any]:
        card = Scorecard()
        for symbol, m in self._markets.items():
            events = self._projector.rfq_events.get(symbol)
            if events:
                card.add_day(events, m.price_path())
        out = card.to_json()
        out["rfqs"] = card.n_rfqs
        return out


def _decision(row: SvcDecisionRow) -> dict[str, Any]:
    """A decision row as GET /api/orders/{id}/decisions answers it; with "shadow" (the
    challengers' answers by model family) where a challenger was asked."""
    out = {
        "decision_id": row.decision_id,
        "ts_ns": row.ts_ns,
        "chosen": row.chosen,
        "inputs": json.loads(row.inputs_json),
        "alternatives": json.loads(row.alternatives_json),
    }
    if row.fallback:  # only on a decision the heuristic router made in the models' place
        out["fallback"] = row.fallback
    if row.shadow_json is not None:
        out["shadow"] = json.loads(row.shadow_json)
    return out
