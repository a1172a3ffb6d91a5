"""Dealer scorecards: how each dealer of the panel treats the desk, from its own RFQ log.

Input is what the RFQ state machine logs (router/domain.py events), one list per trading
day with all of that day's RFQs interleaved in time order, plus the day's lit market as a
`router.tca.PricePath` on the same time origin (seconds = ``ts_ns / 1e9``).

Sign conventions follow router/tca.py: s = +1 when the client buys, -1 when it sells.
- price improvement and quote-vs-mid: s (mid(t) - p) / mid(t), bps; positive = better
  than the fair mid (rare), negative = the spread paid;
- markout: s (mid(t + markout_s) - p) / p, bps, qty-weighted; positive = good for the
  client, negative = the dealer's price was adverse for the client;
- leakage: s (mid(t_req + leakage_s) - mid(t_req)) / mid(t_req), bps, over the RFQs a
  dealer was asked in but did not trade; positive = the market moved against the client
  after it showed its hand.

A two-sided request (side None) reveals the client's side only through a trade; its
quotes and its leakage are skipped unless it traded. Rates and means are NaN where the
denominator is 0 (``to_json`` writes null).

Decisions where the log could be ambiguous:
- RFQ ids are scoped to one day (ids may restart each day); an id requested twice in one
  day, or an event for an id not yet requested that day, is a `DomainError`, as is an
  event from a dealer outside the RFQ's panel. A late answer (`QuoteIgnored`) from a
  dealer outside the panel is a stray message and is not counted.
- Counts are per RFQ: a dealer that quotes twice in one RFQ counts one quote (its response
  time is that of its first quote) and one win however many trades it did; every in-time
  quote counts in quote-vs-mid and every trade in the trade measures.
- Events of other kinds (orders, fills) in the list are ignored.
- A measure whose mid is missing (NaN path) is left out of its mean, not propagated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from router.domain import (
    NANOS_PER_SECOND,
    DealerId,
    DomainError,
    Event,
    LastLookRejected,
    Quote,
    QuoteIgnored,
    QuoteReceived,
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
)
from router.tca import PricePath

MARKOUT_S = 60.0  # headline post-trade markout horizon
LEAKAGE_S = 300.0  # leakage markout horizon

#: The per-dealer keys CONTRACT.md requires, in the order `to_json` writes them first.
CONTRACT_KEYS: tuple[str, ...] = (
    "dealer",
    "rfqs",
    "response_rate",
    "hit_ratio",
    "cover_rate",
    "avg_response_ms",
    "price_improvement_bps",
    "markout_bps",
)

NAN = math.nan


@dataclass(frozen=True, slots=True)
class DealerScore:
    """One dealer's record over every day added to a `Scorecard` (see the module doc)."""

    dealer: str
    rfqs: int  # RFQs it was asked in
    quotes: int  # RFQs it quoted in time
    declines: int  # RFQs it declined (QuoteRequestReject)
    late: int  # RFQs where its answer came too late (QuoteIgnored)
    wins: int  # RFQs in which it traded with the client
    covers: int  # COVER notices: best quote not traded
    last_look_rejects: int
    response_rate: float  # quotes / rfqs
    decline_rate: float  # declines / rfqs
    hit_ratio: float  # wins / quotes
    cover_rate: float  # covers / quotes
    avg_response_ms: float  # mean time from request to its first in-time quote
    price_improvement_bps: float  # mean over trades of s (mid(t) - p) / mid(t)
    quote_vs_mid_bps: float  # the same over in-time quotes, client side only
    winner_minus_cover_bps: float  # mean over won RFQs with a cover: s (cover - win) / mid
    markout_bps: float  # qty-weighted s (mid(t + markout_s) - p) / p over trades
    leakage_bps: float  # mean s (mid(t_req + leakage_s) - mid(t_req)) / mid, not traded
    last_look_reject_rate: float  # last_look_rejects / hits
    hits: int = 0  # HIT_LIFT notices: the client tried to trade on its quote
    trades: int = 0  # confirmed trades (RfqTraded)

    def to_json(self) -> dict[str, Any]:
        """CONTRACT keys first, then the rest; NaN as None (JSON null)."""
        out: dict[str, Any] = {k: _json_value(getattr(self, k)) for k in CONTRACT_KEYS}
        for name in self.__dataclass_fields__:
            if name not in out:
                out[name] = _json_value(getattr(self, name))
        return out


def _json_value(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _ratio(num: int, den: int) -> float:
    return num / den if den else NAN


@dataclass(slots=True)
class _Mean:
    """Running (weighted) mean; non-finite values are skipped, the empty mean is NaN."""

    total: float = 0.0
    weight: float = 0.0

    def add(self, value: float, weight: float = 1.0) -> None:
        if math.isfinite(value) and weight > 0:
            self.total += value * weight
            self.weight += weight

    @property
    def value(self) -> float:
        return self.total / self.weight if self.weight > 0 else NAN


@dataclass(slots=True)
class _DealerAcc:
    """Mutable totals of one dealer across days; `Scorecard.rows` freezes them."""

    rfqs: int = 0
    quotes: int = 0
    declines: int = 0
    late: int = 0
    wins: int = 0
    covers: int = 0
    hits: int = 0
    last_look_rejects: int = 0
    trades: int = 0
    response_ms: _Mean = field(default_factory=_Mean)
    price_improvement: _Mean = field(default_factory=_Mean)
    quote_vs_mid: _Mean = field(default_factory=_Mean)
    winner_minus_cover: _Mean = field(default_factory=_Mean)
    markout: _Mean = field(default_factory=_Mean)
    leakage: _Mean = field(default_factory=_Mean)


@dataclass(slots=True)
class _RfqLog:
    """Everything one RFQ's events said, gathered before scoring (late events included)."""

    request: QuoteRequest
    ts_ns: int
    quotes: dict[DealerId, list[tuple[int, Quote]]] = field(default_factory=dict)
    declined: set[DealerId] = field(default_factory=set)
    late: set[DealerId] = field(default_factory=set)
    hits: dict[DealerId, int] = field(default_factory=dict)
    last_look_rejects: dict[DealerId, int] = field(default_factory=dict)
    covers: dict[DealerId, float | None] = field(default_factory=dict)
    trades: list[RfqTraded] = field(default_factory=list)

    def check_dealer(self, dealer: DealerId, what: str) -> None:
        if dealer not in self.request.dealers:
            raise DomainError(
                f"RFQ {self.request.rfq_id}: {what} from dealer {dealer!r}, who is not on "
                f"its panel {list(self.request.dealers)}"
            )


def _seconds(ts_ns: int) -> float:
    return ts_ns / NANOS_PER_SECOND


def _vs_mid_bps(s: int, mid: float, price: float) -> float:
    """s (mid - price) / mid in bps: positive = better than the mid for the client."""
    return s * (mid - price) / mid * 1e4 if mid > 0 else NAN


class Scorecard:
    """Accumulates dealer statistics over trading days; `rows()` reads them out."""

    def __init__(self, markout_s: float = MARKOUT_S, leakage_s: float = LEAKAGE_S) -> None:
        if not (math.isfinite(markout_s) and markout_s > 0):
            raise DomainError(f"markout horizon must be > 0 s, got {markout_s}")
        if not (math.isfinite(leakage_s) and leakage_s > 0):
            raise DomainError(f"leakage horizon must be > 0 s, got {leakage_s}")
        self.markout_s = float(markout_s)
        self.leakage_s = float(leakage_s)
        self._dealers: dict[str, _DealerAcc] = {}
        self._panel_leakage: dict[int, _Mean] = {}
        self._rfqs = 0
        self._trades = 0
        self._days = 0

    @property
    def n_rfqs(self) -> int:
        """RFQs over all days added."""
        return self._rfqs

    @property
    def n_trades(self) -> int:
        """Confirmed trades (RfqTraded) over all days added."""
        return self._trades

    @property
    def n_days(self) -> int:
        return self._days

    def add_day(self, events: Sequence[Event], path: PricePath) -> None:
        """Score one day's RFQ log against that day's lit market.

        The whole day is read before anything is counted, so a day with a bad event
        (`DomainError`) leaves the scorecard as it was.
        """
        logs = self._gather(events)
        for log in logs.values():
            self._score(log, path)
        self._rfqs += len(logs)
        self._days += 1

    @staticmethod
    def _gather(events: Sequence[Event]) -> dict[RfqId, _RfqLog]:
        logs: dict[RfqId, _RfqLog] = {}

        def log_of(rfq_id: RfqId, what: str) -> _RfqLog:
            try:
                return logs[rfq_id]
            except KeyError:
                raise DomainError(
                    f"{what} for unknown RFQ {rfq_id!r}: no RfqRequested before it that day"
                ) from None

        for ev in events:
            if isinstance(ev, RfqRequested):
                rid = ev.request.rfq_id
                if rid in logs:
                    raise DomainError(f"RFQ {rid!r} is requested twice in one day")
                logs[rid] = _RfqLog(ev.request, ev.ts_ns)
            elif isinstance(ev, QuoteReceived):
                log = log_of(ev.quote.rfq_id, "quote")
                log.check_dealer(ev.quote.dealer, "a quote")
                log.quotes.setdefault(ev.quote.dealer, []).append((ev.ts_ns, ev.quote))
            elif isinstance(ev, QuoteRequestRejected):
                log = log_of(ev.rfq_id, "quote request reject")
                log.check_dealer(ev.dealer, "a decline")
                log.declined.add(ev.dealer)
            elif isinstance(ev, QuoteIgnored):
                log = log_of(ev.rfq_id, "ignored quote")
                if ev.dealer in log.request.dealers:  # a stray from outside is not scored
                    log.late.add(ev.dealer)
            elif isinstance(ev, QuoteResponseSent):
                log = log_of(ev.rfq_id, "quote response")
                log.check_dealer(ev.dealer, f"a {ev.resp_type.name} notice")
                if ev.resp_type is QuoteRespType.HIT_LIFT:
                    log.hits[ev.dealer] = log.hits.get(ev.dealer, 0) + 1
                elif ev.resp_type is QuoteRespType.COVER:
                    log.covers[ev.dealer] = ev.price
            elif isinstance(ev, RfqTraded):
                log = log_of(ev.rfq_id, "trade")
                log.check_dealer(ev.dealer, "a trade")
                if log.request.side is not None and ev.side is not log.request.side:
                    raise DomainError(
                        f"RFQ {ev.rfq_id}: trade side {ev.side.value} against a "
                        f"{log.request.side.value} request"
                    )
                log.trades.append(ev)
            elif isinstance(ev, LastLookRejected):
                log = log_of(ev.rfq_id, "last-look reject")
                log.check_dealer(ev.dealer, "a last-look reject")
                n = log.last_look_rejects.get(ev.dealer, 0)
                log.last_look_rejects[ev.dealer] = n + 1
            elif isinstance(ev, RfqClosed | RfqEnded):
                log_of(ev.rfq_id, type(ev).__name__)
        return logs

    def _score(self, log: _RfqLog, path: PricePath) -> None:
        req = log.request
        side: Side | None = req.side
        if side is None and log.trades:
            side = log.trades[0].side  # a trade reveals a two-sided client's side
        s = side.sign if side is not None else 0
        t_req = _seconds(log.ts_ns)
        leak = NAN
        if side is not None:
            m0 = path.mid_at(t_req)
            m1 = path.mid_at(t_req + self.leakage_s)
            leak = s * (m1 - m0) / m0 * 1e4 if m0 > 0 else NAN
            self._panel_leakage.setdefault(len(req.dealers), _Mean()).add(leak)

        traders = {t.dealer for t in log.trades}
        cover_px = self._cover_price(log, side)
        for dealer in req.dealers:
            acc = self._dealers.setdefault(dealer, _DealerAcc())
            acc.rfqs += 1
            quotes = log.quotes.get(dealer, [])
            if quotes:
                acc.quotes += 1
                acc.response_ms.add((quotes[0][0] - log.ts_ns) / 1e6)
                for ts_ns, quote in quotes:
                    px = quote.price_for(side) if side is not None else None
                    if px is not None:
                        mid = path.mid_at(_seconds(ts_ns))
                        acc.quote_vs_mid.add(_vs_mid_bps(s, mid, px))
            acc.declines += int(dealer in log.declined)
            acc.late += int(dealer in log.late)
            acc.covers += int(dealer in log.covers)
            acc.hits += log.hits.get(dealer, 0)
            acc.last_look_rejects += log.last_look_rejects.get(dealer, 0)
            if dealer not in traders:
                acc.leakage.add(leak)
                continue
            trades = [t for t in log.trades if t.dealer == dealer]
            acc.wins += 1
            acc.trades += len(trades)
            for t in trades:
                t_s = _seconds(t.ts_ns)
                acc.price_improvement.add(_vs_mid_bps(s, path.mid_at(t_s), t.price))
                later = path.mid_at(t_s + self.markout_s)
                acc.markout.add(s * (later - t.price) / t.price * 1e4, t.qty)
            qty = sum(t.qty for t in trades)
            if cover_px is not None and qty > 0:
                win_px = sum(t.qty * t.price for t in trades) / qty
                mid = path.mid_at(_seconds(trades[0].ts_ns))
                ahead = s * (cover_px - win_px) / mid * 1e4 if mid > 0 else NAN
                acc.winner_minus_cover.add(ahead)
        self._trades += len(log.trades)

    @staticmethod
    def _cover_price(log: _RfqLog, side: Side | None) -> float | None:
        """The cover's price: as the notice gives it, else the cover dealer's last quote."""
        for dealer, price in log.covers.items():
            if price is not None:
                return price
            quotes = log.quotes.get(dealer)
            if quotes and side is not None:
                px = quotes[-1][1].price_for(side)
                if px is not None:
                    return px
        return None

    def rows(self) -> list[DealerScore]:
        """One score per dealer ever asked, sorted by dealer id."""
        out = []
        for dealer in sorted(self._dealers):
            a = self._dealers[dealer]
            out.append(
                DealerScore(
                    dealer=dealer,
                    rfqs=a.rfqs,
                    quotes=a.quotes,
                    declines=a.declines,
                    late=a.late,
                    wins=a.wins,
                    covers=a.covers,
                    last_look_rejects=a.last_look_rejects,
                    response_rate=_ratio(a.quotes, a.rfqs),
                    decline_rate=_ratio(a.declines, a.rfqs),
                    hit_ratio=_ratio(a.wins, a.quotes),
                    cover_rate=_ratio(a.covers, a.quotes),
                    avg_response_ms=a.response_ms.value,
                    price_improvement_bps=a.price_improvement.value,
                    quote_vs_mid_bps=a.quote_vs_mid.value,
                    winner_minus_cover_bps=a.winner_minus_cover.value,
                    markout_bps=a.markout.value,
                    leakage_bps=a.leakage.value,
                    last_look_reject_rate=_ratio(a.last_look_rejects, a.hits),
                    hits=a.hits,
                    trades=a.trades,
                )
            )
        return out

    def panel_leakage_bps(self) -> dict[int, float]:
        """Mean leakage per RFQ by panel size, over every RFQ whose client side is known
        (whatever its outcome): does asking more dealers move the market more?"""
        return {n: self._panel_leakage[n].value for n in sorted(self._panel_leakage)}

    def to_json(self) -> dict[str, Any]:
        """The CONTRACT.md document (plus extras); NaN written as None (JSON null)."""
        return {
            "dealers": [row.to_json() for row in self.rows()],
            "panel_leakage_bps": {
                str(n): _json_value(v) for n, v in self.panel_leakage_bps().items()
            },
            "rfqs": self._rfqs,
            "trades": self._trades,
            "days": self._days,
            "markout_s": self.markout_s,
            "leakage_s": self.leakage_s,
        }


# ----------------------------------------------------------------------------- terminal

_NA = "-"

#: (attribute, header line 1, header line 2 with the unit, scale, decimals)
_COLUMNS: tuple[tuple[str, str, str, float, int], ...] = (
    ("rfqs", "RFQs", "", 1.0, 0),
    ("response_rate", "response", "rate %", 100.0, 1),
    ("decline_rate", "decline", "rate %", 100.0, 1),
    ("late", "late", "answers", 1.0, 0),
    ("hit_ratio", "hit", "ratio %", 100.0, 1),
    ("cover_rate", "cover", "rate %", 100.0, 1),
    ("avg_response_ms", "response", "time ms", 1.0, 0),
    ("price_improvement_bps", "price impr", "vs mid bps", 1.0, 2),
    ("quote_vs_mid_bps", "quotes", "vs mid bps", 1.0, 2),
    ("winner_minus_cover_bps", "ahead of", "cover bps", 1.0, 2),
    ("markout_bps", "markout", "{markout} bps", 1.0, 2),
    ("leakage_bps", "leakage", "{leakage} bps", 1.0, 2),
    ("last_look_reject_rate", "last look", "reject %", 100.0, 1),
)


def _cell(value: object, scale: float, decimals: int) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float) and math.isfinite(value):
        text = f"{value * scale:,.{decimals}f}"
        return text.lstrip("-") if text.lstrip("-").strip("0.,") == "" else text  # no "-0.0"
    return _NA


def table(card: Scorecard) -> tuple[list[str], list[list[str]]]:
    """The scorecard as the cells of a text table for the terminal: each column's header
    (its name over its unit, on two lines) and a row per dealer."""
    horizons = {"markout": f"{card.markout_s:g}s", "leakage": f"{card.leakage_s:g}s"}
    headers = ["dealer"]
    for _, name, unit, _, _ in _COLUMNS:
        unit = unit.format(**horizons)
        headers.append(f"{name}\n{unit}" if unit else name)
    rows = [
        [r.dealer] + [_cell(getattr(r, attr), scale, dec) for attr, _, _, scale, dec in _COLUMNS]
        for r in card.rows()
    ]
    return headers, rows


def notes(card: Scorecard) -> list[str]:
    """The lines under the table: what it counts, its horizons and signs, and the
    leakage by panel size."""
    lines = [
        f"{card.n_rfqs:,} RFQs, {card.n_trades:,} trades over {card.n_days} day(s); "
        f"markout at +{card.markout_s:g} s after the trade, leakage at +{card.leakage_s:g} s "
        "after the request",
        "bps: positive = good for the client, except leakage (positive = the market moved "
        "against the client)",
    ]
    panel = card.panel_leakage_bps()
    if panel:
        parts = [f"{n} dealer(s): {_cell(v, 1.0, 2)}" for n, v in panel.items()]
        lines.append("leakage by panel size, bps: " + ", ".join(parts))
    return lines
