"""What the desk knows about its dealers, kept up to date from its own RFQ log: the
decayed history of each dealer (`dealers.panel.HeuristicPanel`), each dealer's pricing
(`models.quotecost`), today's trades and quote distances, and the dealers' axe feed.

The same object builds the dealer models' feature rows when training replays a log
(models/dealer_data.py) and when the router asks for quotes (router's `ml` routing), so
the features cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from dealers.panel import HeuristicPanel
from dealers.simulator import p_lowest
from models.features import MarketContext, dealer_row, side_feature
from models.quotecost import QuoteCostTracker, terms
from router.domain import (
    DealerId,
    Event,
    Quote,
    QuoteReceived,
    RfqEnded,
    RfqId,
    RfqRequested,
    RfqTraded,
    Side,
)

MidAt = Callable[[int], float]  # the lit mid at a time (ns), price units


@dataclass
class _Open:
    side: Side | None
    z: dict[DealerId, np.ndarray]
    quotes: dict[DealerId, Quote] = field(default_factory=dict)
    traded_side: Side | None = None


class DeskState:
    def __init__(
        self,
        dealers: Sequence[str],
        panel: str,
        adv: float,
        tracker: HeuristicPanel | None = None,
        costs: QuoteCostTracker | None = None,
    ) -> None:
        self.dealers = tuple(DealerId(d) for d in dealers)
        self.panel = panel
        self.adv = adv
        self.tracker = tracker if tracker is not None else HeuristicPanel(self.dealers)
        self.costs = costs if costs is not None else QuoteCostTracker()
        self.axes: dict[DealerId, float] = {}
        # response counts by the side asked (a dealer short of bonds declines buys)
        self._asked_side: dict[tuple[DealerId, Side | None], float] = {}
        self._quoted_side: dict[tuple[DealerId, Side | None], float] = {}
        self._open: dict[RfqId, _Open] = {}
        self._pending_z: dict[DealerId, np.ndarray] = {}
        self.new_day()

    def new_day(self) -> None:
        self.position: dict[DealerId, float] = {}  # the dealers' side of today's trades
        self.notional: dict[DealerId, float] = {}
        self.today: dict[DealerId, list[float]] = {}  # distances behind the best today

    def side_response_rate(self, dealer: DealerId, side: Side | None) -> float:
        asked = self._asked_side.get((dealer, side), 0.0)
        quoted = self._quoted_side.get((dealer, side), 0.0)
        return (quoted + 2.0 * self.tracker.response_rate(dealer)) / (asked + 2.0)

    def rows(
        self, qty: int, side: Side | None, panel: Sequence[DealerId], market: MarketContext
    ) -> tuple[dict[DealerId, list[float]], dict[DealerId, np.ndarray]]:
        """Feature rows (DEALER_FEATURES) of asking `panel` for `qty`, and each dealer's
        pricing terms; nothing is changed."""
        t, adv = self.tracker, self.adv
        zs = {
            d: terms(
                self.axes.get(d, 0.0) / adv * side_feature(side),
                qty / adv,
                len(panel),
                market.vol_bps,
                side is None,
            )
            for d in panel
        }
        pred = {d: self.costs.predict(d, zs[d]) for d in panel}
        resp = {d: self.side_response_rate(d, side) for d in panel}
        est = p_lowest(
            np.array([resp[d] for d in panel]),
            np.array([pred[d] for d in panel]),
            np.array([max(self.costs.sd(d), 0.5) for d in panel]),
            n=161,
        )
        p_est = dict(zip(panel, est, strict=True))
        quality = {
            d: float(np.mean(self.today[d])) if self.today.get(d) else t.distance_bps(d)
            for d in panel
        }
        rows = {}
        for d in panel:
            others = [o for o in panel if o != d]
            rows[d] = dealer_row(
                qty=qty,
                adv=adv,
                side=side,
                n_dealers=len(panel),
                market=market,
                resp_rate=resp[d],
                hit_rate=t.hit_ratio(d),
                dist_bps=t.distance_bps(d),
                asked=t.history[d].asked,
                axe=self.axes.get(d, 0.0),
                panel=self.panel,
                dealer=d,
                others=others,
                position=self.position.get(d, 0.0),
                notional=self.notional.get(d, 0.0),
                dist_today=float(np.mean(self.today[d])) if self.today.get(d) else None,
                quotes_today=len(self.today.get(d, ())),
                rel_dist=quality[d] - min((quality[o] for o in others), default=0.0),
                others_resp=sum(resp[o] for o in others),
                pred_cost=pred[d],
                rel_pred_cost=pred[d] - min((pred[o] for o in others), default=pred[d]),
                p_best_est=float(p_est[d]),
            )
        return rows, zs

    def observe(self, event: Event, mid_at: MidAt, market: MarketContext | None = None) -> None:
        """Learn from one event of the log. `market` (for a request) is the screen at that
        moment, needed to remember the dealers' pricing terms of the request."""
        if isinstance(event, RfqRequested):
            r = event.request
            z: dict[DealerId, np.ndarray] = {}
            if market is not None:
                _, z = self.rows(r.qty, r.side, r.dealers, market)
            self._open[r.rfq_id] = _Open(r.side, z)
            for d in r.dealers:
                key = (d, r.side)
                self._asked_side[key] = self._asked_side.get(key, 0.0) + 1.0
        elif isinstance(event, QuoteReceived):
            o = self._open.get(event.quote.rfq_id)
            if o is not None:
                o.quotes[event.quote.dealer] = event.quote
                key = (event.quote.dealer, o.side)
                self._quoted_side[key] = self._quoted_side.get(key, 0.0) + 1.0
        elif isinstance(event, RfqTraded):
            o = self._open.get(event.rfq_id)
            if o is not None:
                o.traded_side = event.side
            d = event.dealer
            self.position[d] = self.position.get(d, 0.0) - event.side.sign * event.qty
            self.notional[d] = self.notional.get(d, 0.0) + event.qty * event.price
        elif isinstance(event, RfqEnded):
            o = self._open.pop(event.rfq_id, None)
            if o is not None:
                self._learn_prices(o, mid_at)
        self.tracker.observe(event)

    def _learn_prices(self, o: _Open, mid_at: MidAt) -> None:
        side = o.side or o.traded_side
        if side is None:
            return
        prices = {d: p for d, q in o.quotes.items() if (p := q.price_for(side)) is not None}
        for d, p in prices.items():
            if d in o.z:
                mid = mid_at(o.quotes[d].ts_ns)
                self.costs.observe(d, o.z[d], side.sign * (p - mid) / mid * 1e4)
        if len(prices) >= 2:
            best = min(prices.values()) if side is Side.BUY else max(prices.values())
            for d, p in prices.items():
                self.today.setdefault(d, []).append(side.sign * (p - best) / best * 1e4)
