"""Training rows from what a running service journaled (`blockroute train dealer|fill
--from-journal`), built by the same replays as the simulated history's rows.

The journal (router/journal.py) keeps every RFQ fact of the desk's parents, every child
order, its decision record and its fills. They are turned back into the domain events
the desk saw and handed to the simulated history's own functions:

- dealer rows: `dealer_data.rows_from_log`, one replay per symbol over its whole
  journaled history (the desk's knowledge of its dealers is built from every request
  before the range, as the live desk's was), keeping the rows of the requests sent from
  `since_ns` on. The screen at each request (volatility, spread, time of day, mid), the
  axe feed and the lit mid when each quote came are journaled with the facts
  (router/desk/projection.py, `_learnable`): a journal written before they were lacks
  them, and its requests give no rows (counted in `skipped`).
- fill rows: `fill_data.rows_from_events` over the passive child orders sent in the
  range. A child still open whose `HORIZON_S` has not passed by the journal's last fact
  has no label yet and is left out.

Each row's `day` is the request's (the child's) order in time within the journal: the
split into training, validation and test days then is one in time, as for simulated
days (models/training/boosting.py).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.serving.desk import DeskState
from models.serving.features import MarketContext
from models.training.dealer_data import DealerRows, rows_from_log
from models.training.fill_data import HORIZON_S, FillRows, rows_from_events
from router.domain import (
    NANOS_PER_SECOND,
    ChildId,
    ChildOrder,
    ChildOrderFilled,
    ChildOrderSent,
    DealerId,
    DecisionId,
    DecisionRecorded,
    Event,
    LastLookRejected,
    OrdType,
    ParentId,
    Quote,
    QuoteIgnored,
    QuoteReceived,
    QuoteRejectReason,
    QuoteRequest,
    QuoteRequestRejected,
    QuoteResponseSent,
    QuoteRespType,
    RfqClosed,
    RfqEnded,
    RfqId,
    RfqRequested,
    RfqTraded,
    Side,
    Symbol,
    TimeInForce,
    VenueId,
)
from router.journal import Journal, SvcChildRow, SvcRfqEventRow


class JournalDataError(ValueError):
    """The journal cannot give what was asked (no rows in the range, too few)."""


@dataclass
class JournalScreen:
    """The market as the journal recorded it (a `dealer_data.Screen`): the screen at
    each request and the lit mid at each request and quote, by time (ns, service
    clock)."""

    contexts: dict[int, MarketContext] = field(default_factory=dict)
    mids: dict[int, float] = field(default_factory=dict)

    def context(self, ts_ns: int) -> MarketContext:
        return self.contexts[ts_ns]

    def mid_at(self, ts_ns: int) -> float:
        return self.mids.get(ts_ns, float("nan"))


@dataclass
class SymbolLog:
    """One symbol's journaled RFQ facts as domain events, with what the replay reads."""

    events: list[Event] = field(default_factory=list)
    screen: JournalScreen = field(default_factory=JournalScreen)
    axe_log: list[tuple[int, DealerId, float]] = field(default_factory=list)
    sides: dict[RfqId, Side] = field(default_factory=dict)
    panel: str = ""
    dealers: tuple[str, ...] = ()
    adv: float = 0.0


@dataclass
class JournalDealerRows:
    rows: DealerRows
    requests: int  # requests in the range that gave rows
    skipped: int  # requests in the range without a journaled screen (an older journal)
    first_ns: int | None
    last_ns: int | None


@dataclass
class JournalFillRows:
    rows: FillRows
    pending: int  # passive children in the range whose outcome is not known yet
    first_ns: int | None
    last_ns: int | None


def iso(ts_ns: int | None) -> str | None:
    """A journal time (ns since the epoch, service clock) as ISO 8601, UTC."""
    if ts_ns is None:
        return None
    # to the microsecond below (never after it: `--since` this time includes it)
    return (_EPOCH + dt.timedelta(microseconds=ts_ns // 1000)).isoformat()


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def symbol_logs(
    journal: Journal, until_ns: int | None = None
) -> tuple[dict[str, SymbolLog], dict[str, int]]:
    """Every symbol's RFQ facts up to `until_ns`, as the desk saw them, in time order;
    and the requests whose screen was not journaled (a journal older than the screen),
    with their times: their facts are left out, since without the screen the desk's
    replay cannot learn from them."""
    parents = journal.parent_sides()
    logs: dict[str, SymbolLog] = {}
    unscreened: dict[str, int] = {}
    for row in journal.rfq_history(until_ns):
        symbol, side = parents.get(row.parent_id, ("", ""))
        detail = json.loads(row.detail_json)
        if row.what == "requested" and not isinstance(detail.get("screen"), dict):
            unscreened[row.rfq_id] = row.ts_ns
        if row.rfq_id in unscreened:
            continue
        log = logs.setdefault(symbol, SymbolLog())
        event = _rfq_event(row, detail, Side(side), symbol, log)
        if event is not None:
            log.events.append(event)
    return logs, unscreened


def _rfq_event(
    row: SvcRfqEventRow, d: dict[str, Any], side: Side, symbol: str, log: SymbolLog
) -> Event | None:
    """The domain event of one journaled RFQ fact (None for a kind the replay ignores),
    noting in `log` what the replay reads of the market."""
    ts, rfq = row.ts_ns, RfqId(row.rfq_id)
    if row.what == "requested":
        s = d["screen"]
        log.panel, log.dealers, log.adv = s["panel"], tuple(s["dealers"]), float(s["adv"])
        log.screen.contexts[ts] = MarketContext(
            _num(s["vol_bps"]), _num(s["spread_bps"]), _num(s["tod"]), _num(s["mid"])
        )
        log.screen.mids[ts] = _num(s["mid"])
        log.axe_log.extend((ts, DealerId(k), float(v)) for k, v in s["axes"].items())
        log.sides[rfq] = side
        request = QuoteRequest(
            rfq_id=rfq,
            symbol=Symbol(symbol),
            side=None if d["side"] is None else Side(d["side"]),
            qty=int(d["qty"]),
            dealers=tuple(DealerId(x) for x in d["dealers"]),
            time_limit_ns=round(float(d["time_limit_s"]) * NANOS_PER_SECOND),
            parent_id=ParentId(row.parent_id),
        )
        return RfqRequested(ts, request)
    if row.what == "quote_received":
        quote_ts = int(d.get("quote_ts_ns", ts))
        log.screen.mids[quote_ts] = _num(d.get("mid"))
        quote = Quote(
            quote_id=d["quote_id"],
            rfq_id=rfq,
            dealer=DealerId(d["dealer"]),
            qty=int(d["qty"]),
            bid=d["bid"],
            offer=d["offer"],
            ts_ns=quote_ts,
            valid_until_ns=int(d.get("valid_until_ns", quote_ts)),
        )
        return QuoteReceived(ts, quote)
    dealer = DealerId(d.get("dealer", ""))
    if row.what == "declined":
        return QuoteRequestRejected(ts, rfq, dealer, QuoteRejectReason[d["reason"]], d["text"])
    if row.what == "late":
        return QuoteIgnored(ts, rfq, dealer, d["reason"])
    if row.what == "closed":
        return RfqClosed(ts, rfq, int(d["n_quotes"]))
    if row.what == "response":
        child = None if d["child_id"] is None else ChildId(d["child_id"])
        return QuoteResponseSent(
            ts, rfq, dealer, QuoteRespType[d["resp_type"]], int(d["qty"]), d["price"], child
        )
    if row.what == "traded":
        traded_side = Side(d["side"]) if "side" in d else side  # the client's: its parent's
        return RfqTraded(
            ts, rfq, dealer, ChildId(d["child_id"]), traded_side, int(d["qty"]), float(d["price"])
        )
    if row.what == "last_look_rejected":
        return LastLookRejected(ts, rfq, dealer, ChildId(d["child_id"]), d["reason"])
    if row.what == "ended":
        return RfqEnded(ts, rfq, d["state"], int(d["traded_qty"]))
    return None


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def dealer_rows(
    journal: Journal, since_ns: int = 0, until_ns: int | None = None
) -> JournalDealerRows:
    """The dealer models' rows of the requests sent in [since_ns, until_ns] (see the
    module docstring); each row's `day` is its request's order in time."""
    logs, unscreened = symbol_logs(journal, until_ns)
    parts: list[DealerRows] = []
    # requests numbered in time across symbols (ties: by id), so one split fits all
    ranked = sorted(
        (e.ts_ns, e.request.rfq_id)
        for log in logs.values()
        for e in log.events
        if isinstance(e, RfqRequested) and e.ts_ns >= since_ns
    )
    order = {rfq: i for i, (_, rfq) in enumerate(ranked)}

    def day_of(e: RfqRequested) -> int | None:
        return order.get(e.request.rfq_id)

    for symbol in sorted(logs):
        log = logs[symbol]
        desk = DeskState(log.dealers, log.panel, log.adv)
        parts.append(
            rows_from_log(
                log.events,
                log.screen,
                desk=desk,
                axe_log=log.axe_log,
                day=-1,
                sides=log.sides,
                day_of=day_of,
            )
        )
    rows = DealerRows.concat(parts)
    # rows in the requests' time order, whatever symbol they came from (a stable sort:
    # a request's dealers stay in panel order)
    by_time = np.argsort(rows.day, kind="stable")
    hit_by_time = np.argsort(rows.day_hit, kind="stable")
    rows = DealerRows(
        rows.x[by_time],
        rows.respond[by_time],
        rows.best[by_time],
        rows.oracle_respond[by_time],
        rows.oracle_best[by_time],
        rows.day[by_time],
        rows.x_hit[hit_by_time],
        rows.hit[hit_by_time],
        rows.day_hit[hit_by_time],
    )
    kept = len(np.unique(rows.day))
    skipped = sum(1 for ts in unscreened.values() if ts >= since_ns)
    return JournalDealerRows(
        rows,
        kept,
        skipped,
        ranked[0][0] if ranked else None,
        ranked[-1][0] if ranked else None,
    )


def fill_rows(journal: Journal, since_ns: int = 0, until_ns: int | None = None) -> JournalFillRows:
    """The fill model's rows of the passive children sent in [since_ns, until_ns]; each
    row's `day` is its child's order in time. A child still open whose horizon ends
    after the journal's last fact is left out (`pending`): its label is not known yet."""
    children = journal.children_sent(since_ns, until_ns)
    decisions = {r.decision_id: r for r in journal.decisions_since(since_ns)}
    fills = journal.fills_since(since_ns)
    last_ns = max(
        [r.ts_ns for r in fills]
        + [c.updated_ns for c in children]
        + [r.ts_ns for r in decisions.values()],
        default=0,
    )
    horizon_ns = int(HORIZON_S * NANOS_PER_SECOND)
    events: list[Event] = []
    pending = 0
    kept: list[SvcChildRow] = []
    for c in children:
        if c.status == "open" and c.sent_ns + horizon_ns > last_ns:
            pending += int(_is_passive(c))
            continue
        kept.append(c)
        child = _child(c)
        d = decisions.get(f"{c.child_id}-d")
        if d is not None:
            events.append(
                DecisionRecorded(
                    d.ts_ns,
                    DecisionId(d.decision_id),
                    ParentId(d.parent_id),
                    d.chosen,
                    json.loads(d.inputs_json),
                    json.loads(d.alternatives_json),
                )
            )
        events.append(ChildOrderSent(c.sent_ns, child))
    sides = {c.child_id: Side(c.side) for c in kept}
    for f in fills:
        side = sides.get(f.child_id)
        if side is not None:
            events.append(
                ChildOrderFilled(
                    f.ts_ns,
                    ChildId(f.child_id),
                    VenueId(f.venue),
                    side,
                    int(f.qty),
                    float(f.price),
                    float(f.fee),
                    f.liquidity,
                    0,  # not journaled; the label reads only the first fill's time
                )
            )
    rows = rows_from_events(events, 0)
    rows.day = np.arange(rows.x.shape[0])  # the children in the order they were sent
    passive = [c.sent_ns for c in kept if _is_passive(c)]
    return JournalFillRows(
        rows, pending, min(passive) if passive else None, max(passive) if passive else None
    )


def _is_passive(c: SvcChildRow) -> bool:
    """As `rows_from_events` picks them: post-only lit or minimum-quantity dark, no hit
    of a quote."""
    return c.quote_id is None and (c.post_only or c.min_qty > 0)


def _child(c: SvcChildRow) -> ChildOrder:
    return ChildOrder(
        child_id=ChildId(c.child_id),
        parent_id=ParentId(c.parent_id),
        venue=VenueId(c.venue),
        side=Side(c.side),
        qty=int(c.qty),
        ord_type=OrdType(c.ord_type),
        tif=TimeInForce(c.tif),
        limit_ticks=c.limit_ticks,
        post_only=bool(c.post_only),
        min_qty=int(c.min_qty),
        quote_id=c.quote_id,
    )


def check_enough(n_rows: int, minimum: int, what: str, in_range: str) -> None:
    """Raises JournalDataError if `n_rows` < `minimum` (none at all is said so)."""
    if n_rows == 0:
        raise JournalDataError(f"the journal holds no {what} {in_range}")
    if n_rows < minimum:
        raise JournalDataError(
            f"the journal holds {n_rows} {what} {in_range}; training needs at least {minimum}"
        )


def describe(
    url: str,
    since_ns: int | None,
    first_ns: int | None,
    last_ns: int | None,
    counts: Mapping[str, int],
) -> dict[str, Any]:
    """The journal's part of a training's metadata: which journal (its URL without a
    password: `Journal.url`), the range asked and found, and the rows it gave."""
    return {
        "url": url,
        "since": iso(since_ns) if since_ns else None,
        "first": iso(first_ns),
        "last": iso(last_ns),
        **{f"rows_{k}": int(v) for k, v in counts.items()},
    }
