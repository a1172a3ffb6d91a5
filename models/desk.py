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

from dealers.panel import HeuristicPanel, distances_behind_best
from dealers.simulator import p_lowest, p_lowest_each
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

MidAt = Callable[[int], float]
P_LOWEST_POINTS = (
    41  # the implied P(best) to about 1e-3, and cheap  # the lit mid at a time (ns), price units
)


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
        self._memo: dict[tuple[object, ...], tuple[np.ndarray, float, float]] = {}
        self.new_day()

    def new_day(self) -> None:
        self.position: dict[DealerId, float] = {}  # the dealers' side of today's trades
        self.notional: dict[DealerId, float] = {}
        # per dealer: (sum, count) of its quotes' distances behind the best today
        self._today: dict[DealerId, tuple[float, int]] = {}
        self._memo.clear()

    def set_axes(self, axes: dict[DealerId, float]) -> None:
        """The axe feed as of now."""
        if axes != self.axes:
            self.axes = dict(axes)
            self._memo.clear()

    def side_response_rate(self, dealer: DealerId, side: Side | None) -> float:
        asked = self._asked_side.get((dealer, side), 0.0)
        quoted = self._quoted_side.get((dealer, side), 0.0)
        return (quoted + 2.0 * self.tracker.response_rate(dealer)) / (asked + 2.0)

    def _terms(
        self, panel: Sequence[DealerId], qty: int, side: Side | None, market: MarketContext
    ) -> tuple[dict[DealerId, np.ndarray], dict[DealerId, float], dict[DealerId, float]]:
        """Each dealer's pricing terms, expected quote cost and response rate. They do not
        depend on who else is asked, only on how many: remembered until the next event,
        as a selection scores many panels."""
        zs, pred, resp = {}, {}, {}
        for d in panel:
            key = (d, qty, side, len(panel), market.vol_bps)
            hit = self._memo.get(key)
            if hit is None:
                z = terms(
                    self.axes.get(d, 0.0) / self.adv * side_feature(side),
                    qty / self.adv,
                    len(panel),
                    market.vol_bps,
                    side is None,
                )
                hit = self._memo[key] = (
                    z,
                    self.costs.predict(d, z),
                    self.side_response_rate(d, side),
                )
            zs[d], pred[d], resp[d] = hit
        return zs, pred, resp

    def _today_mean(self, d: DealerId) -> float | None:
        total, n = self._today.get(d, (0.0, 0))
        return total / n if n else None

    def _quality(self, d: DealerId) -> float:
        today = self._today_mean(d)
        return today if today is not None else self.tracker.distance_bps(d)

    def _row(
        self,
        d: DealerId,
        others: Sequence[DealerId],
        qty: int,
        side: Side | None,
        market: MarketContext,
        pred: dict[DealerId, float],
        resp: dict[DealerId, float],
        p_est: float,
    ) -> list[float]:
        t = self.tracker
        quality = self._quality(d)
        return dealer_row(
            qty=qty,
            adv=self.adv,
            side=side,
            n_dealers=len(others) + 1,
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
            dist_today=self._today_mean(d),
            quotes_today=self._today.get(d, (0.0, 0))[1],
            rel_dist=quality - min((self._quality(o) for o in others), default=0.0),
            others_resp=sum(resp[o] for o in others),
            pred_cost=pred[d],
            rel_pred_cost=pred[d] - min((pred[o] for o in others), default=pred[d]),
            p_best_est=p_est,
        )

    def _sd(self, d: DealerId) -> float:
        return max(self.costs.sd(d), 0.5)

    def rows(
        self, qty: int, side: Side | None, panel: Sequence[DealerId], market: MarketContext
    ) -> tuple[dict[DealerId, list[float]], dict[DealerId, np.ndarray]]:
        """Feature rows (DEALER_FEATURES) of asking `panel` for `qty`, and each dealer's
        pricing terms; nothing is changed."""
        zs, pred, resp = self._terms(panel, qty, side, market)
        est = p_lowest(
            np.array([resp[d] for d in panel]),
            np.array([pred[d] for d in panel]),
            np.array([self._sd(d) for d in panel]),
            n=P_LOWEST_POINTS,
        )
        rows = {}
        for i, d in enumerate(panel):
            others = [o for o in panel if o != d]
            rows[d] = self._row(d, others, qty, side, market, pred, resp, float(est[i]))
        return rows, zs

    def candidate_rows(
        self,
        qty: int,
        side: Side | None,
        base: Sequence[DealerId],
        candidates: Sequence[DealerId],
        market: MarketContext,
    ) -> dict[DealerId, list[float]]:
        """For each candidate, its row if it were asked together with `base`: what
        `rows(qty, side, [candidate, *base], market)` gives it, for many candidates at
        the cost of one call."""
        _, pred, resp = self._terms([*base, candidates[0]], qty, side, market)
        for c in candidates[1:]:  # same panel size: the same remembered terms
            _, p1, r1 = self._terms([c, *base], qty, side, market)
            pred[c], resp[c] = p1[c], r1[c]
        est = p_lowest_each(
            np.array([resp[d] for d in base]),
            np.array([pred[d] for d in base]),
            np.array([self._sd(d) for d in base]),
            np.array([resp[d] for d in candidates]),
            np.array([pred[d] for d in candidates]),
            np.array([self._sd(d) for d in candidates]),
            n=P_LOWEST_POINTS,
        )
        return {
            c: self._row(c, list(base), qty, side, market, pred, resp, float(est[j]))
            for j, c in enumerate(candidates)
        }

    def observe(self, event: Event, mid_at: MidAt, market: MarketContext | None = None) -> None:
        """Learn from one event of the log. `market` (for a request) is the screen at that
        moment, needed to remember the dealers' pricing terms of the request."""
        self._memo.clear()
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
        for d, dist in distances_behind_best(o.quotes, side).items():
            total, n = self._today.get(d, (0.0, 0))
            self._today[d] = (total + dist, n + 1)
