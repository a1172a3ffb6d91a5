"""The desk's parents in memory: each one's journal row, market session and execution,
and the book that finds them by parent id or by any of their clients' ClOrdIDs."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from router.desk.market import MarketSession
from router.desk_api import OrderStatus, ParentView, UnknownOrderError
from router.domain import NANOS_PER_SECOND, ChildOrderFilled, OrdType, Side
from router.execution import ParentExecution
from router.journal import ParentRecord
from router.ports import MarketHistory
from router.tca import PricePath, analyze


@dataclass
class Order:
    """The desk's record of one parent: what the journal row says, plus its execution."""

    row: ParentRecord
    market: MarketSession
    execution: ParentExecution | None = None
    history: MarketHistory | None = None
    engine_strategy: str = ""
    fills: list[ChildOrderFilled] = field(default_factory=list)  # service-clock times
    schedule_seen: int = 0  # engine schedule points already journaled
    schedule_base: int = 0  # points journaled before a restart
    decisions: int = 0
    rfq_events: int = 0
    cancel_cl_ord_id: str = ""
    cancel_reason: str = ""
    _versions_text: str | None = field(default=None, repr=False)
    _versions: dict[str, int] | None = field(default=None, repr=False)

    @property
    def status(self) -> OrderStatus:
        return OrderStatus(self.row.status)

    def view(self) -> ParentView:
        r = self.row
        return ParentView(
            parent_id=r.parent_id,
            client=r.client,
            cl_ord_id=r.cl_ord_id,
            orig_cl_ord_id=r.orig_cl_ord_id,
            symbol=r.symbol,
            side=Side(r.side),
            qty=r.qty,
            ord_type=OrdType(r.ord_type),
            limit_price=r.limit_price,
            strategy=r.strategy,
            participation=r.participation,
            status=OrderStatus(r.status),
            start_ns=r.start_ns,
            end_ns=r.end_ns,
            filled_qty=r.filled_qty,
            avg_price=r.notional / r.filled_qty if r.filled_qty else 0.0,
            arrival_mid=r.arrival_mid,
            n_children=r.n_children,
            updated_ns=r.updated_ns,
            text=r.text,
            model_arm=r.model_arm,
            model_versions=self._model_versions(),
        )

    def _model_versions(self) -> dict[str, int] | None:
        # parsed once: a view is built for every event of the parent
        text = self.row.model_versions
        if text != self._versions_text:
            self._versions = None if text is None else json.loads(text)
            self._versions_text = text
        return self._versions


class OrderBook:
    """Every parent this desk runs or ran (quarantined ones apart), every ClOrdID its
    clients used, and the number of the next parent."""

    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self.clordids: dict[tuple[str, str], str] = {}  # (client, ClOrdID) -> parent id
        self.quarantined: dict[str, str] = {}  # parent_id -> why recovery refused it
        self.next_parent = 1

    def get(self, parent_id: str) -> Order:
        """Raises UnknownOrderError."""
        rec = self.orders.get(parent_id)
        if rec is None:
            raise UnknownOrderError(f"unknown order {parent_id!r}")
        return rec

    def find(self, client: str, cl_ord_id: str) -> Order | None:
        pid = self.clordids.get((client, cl_ord_id))
        return None if pid is None else self.orders.get(pid)  # quarantined: none


def tca_report(rec: Order) -> dict[str, Any]:
    """Implementation shortfall and its parts on this session's market path; the
    unfilled rest is charged at the end mid (CONTRACT.md)."""
    row, m = rec.row, rec.market
    t0 = m.world_ns(row.start_ns) / NANOS_PER_SECOND
    end_s = max(1e-3, (row.updated_ns - row.start_ns) / NANOS_PER_SECOND)
    full = m.price_path(from_s=max(t0, -1e9))
    path = PricePath(full.times_s - t0, full.bid, full.ask)
    fills = [dataclasses.replace(f, ts_ns=f.ts_ns - row.start_ns) for f in rec.fills]
    children = rec.execution.result.children if rec.execution is not None else []
    w0 = max(m.world_ns(row.start_ns), 0)
    vwap = m.vwap(w0, m.world_ns(row.updated_ns))
    report = analyze(
        Side(row.side),
        row.qty,
        row.arrival_mid,
        end_s,
        fills,
        children,
        path,
        None,
        m.kinds,
        vwap,
    )
    return report.to_json()
