"""What the desk knows about its dealers, kept up to date from its own RFQ log: the
decayed history of each dealer (`dealers.panel.HeuristicPanel`), each dealer's pricing
(`models.quotecost`), its response rates by kind of request (side; more than its
published long or not), its credit line as bracketed by its answers and its declines
for credit, today's trades and quote distances, and the dealers' axe feed.

A request's rows compare the dealers' prices on the client's own side, also when the
request is two-sided: the dealers do not see that side, the desk does.

The same object builds the dealer models' feature rows when training replays a log
(models/dealer_data.py) and when the router asks for quotes (router's `ml` routing), so
the features cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from dealers.panel import HeuristicPanel, distances_behind_best
from dealers.simulator import p_lowest_unclipped
from models.features import (
    DEALER_BASE,
    DEALER_FEATURES,
    DEALER_IDS,
    DEALER_OWN,
    PANELS,
    MarketContext,
    dealer_head,
    dealer_own,
    side_feature,
)
from models.quotecost import AXE_UNIT, QuoteCostTracker, terms
from router.domain import (
    DealerId,
    Event,
    Quote,
    QuoteReceived,
    QuoteRejectReason,
    QuoteRequestRejected,
    RfqEnded,
    RfqId,
    RfqRequested,
    RfqTraded,
    Side,
)

MidAt = Callable[[int], float]  # the lit mid at a time (ns), price units
P_LOWEST_POINTS = 41  # the implied P(best) to about 1e-3, and cheap


@dataclass
class _Open:
    side: Side | None
    qty: int
    z: dict[DealerId, np.ndarray]
    axes: dict[DealerId, float]  # as published at the request
    # per dealer: the desk's notional with it today plus the request's (credit)
    totals: dict[DealerId, float]
    quotes: dict[DealerId, Quote] = field(default_factory=dict)
    declined: dict[DealerId, QuoteRejectReason] = field(default_factory=dict)
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
        # response counts by the side asked and whether the request was larger than the
        # dealer's published long (a dealer short of bonds declines buys), requests it
        # declined for credit left out (credit has its own estimate, below)
        self._asked_side: dict[tuple[DealerId, str | None, bool], float] = {}  # _kind
        self._quoted_side: dict[tuple[DealerId, str | None, bool], float] = {}
        # each dealer's credit line with the client, bracketed: the largest total (the
        # day's notional with it plus the request's) it answered without a credit
        # decline, the smallest it declined for credit. Lines outlast a day.
        self._credit_fits: dict[DealerId, float] = {}
        self._credit_short: dict[DealerId, float] = {}
        self._open: dict[RfqId, _Open] = {}
        self._index = {d: i for i, d in enumerate(self.dealers)}
        # each dealer's DEALER_IDS column and the panel's PANELS column (-1: not there)
        self._columns = np.array(
            [DEALER_IDS.index(d) if d in DEALER_IDS else -1 for d in self.dealers],
            dtype=np.int64,
        )
        self._panel_column = PANELS.index(panel) if panel in PANELS else -1
        self._own_memo: dict[
            tuple[Side | None, bool, int, float], tuple[np.ndarray, np.ndarray]
        ] = {}
        self._price_memo: dict[
            tuple[int, Side | None, int, float, bool],
            tuple[np.ndarray, np.ndarray, np.ndarray],
        ] = {}
        self.new_day()

    def new_day(self) -> None:
        self.position: dict[DealerId, float] = {}  # the dealers' side of today's trades
        self.notional: dict[DealerId, float] = {}
        # per dealer: (sum, count) of its quotes' distances behind the best today
        self._today: dict[DealerId, tuple[float, int]] = {}
        self.forget()

    def set_axes(self, axes: dict[DealerId, float]) -> None:
        """The axe feed as of now."""
        if axes != self.axes:
            self.axes = dict(axes)
            self.forget()

    def set_axe(self, dealer: DealerId, axe: float) -> None:
        """One dealer's axe, as a feed update."""
        if self.axes.get(dealer) != axe:
            self.axes[dealer] = axe
            self.forget()

    def forget(self) -> None:
        """Drop what is remembered between events: the desk has learned something."""
        self._own_memo.clear()
        self._price_memo.clear()
        self.costs.forget()

    def short_axe(self, dealer: DealerId, seen: Side | None, qty: int) -> bool:
        """Is a request for `qty` (on side `seen`, as the dealers see it) a sale larger
        than the dealer's published long position: one it may decline for inventory."""
        return _short_of(self.axes.get(dealer, 0.0), seen, qty)

    def _response_rate(
        self, dealer: DealerId, seen: Side | None, short: bool, overall: float
    ) -> float:
        """The response rate to requests like this one (side, short of the axe or not),
        shrunk towards the side's, itself shrunk towards the overall one."""
        asked_by, quoted_by = self._asked_side, self._quoted_side
        kind = _kind(seen)
        plain, short_of = (dealer, kind, False), (dealer, kind, True)
        asked_side = asked_by.get(plain, 0.0) + asked_by.get(short_of, 0.0)
        quoted_side = quoted_by.get(plain, 0.0) + quoted_by.get(short_of, 0.0)
        side_rate = (quoted_side + 2.0 * overall) / (asked_side + 2.0)
        asked = asked_by.get(short_of if short else plain, 0.0)
        quoted = quoted_by.get(short_of if short else plain, 0.0)
        return (quoted + 2.0 * side_rate) / (asked + 2.0)

    def p_credit(self, dealer: DealerId, total: float) -> float:
        """P(a request that brings the day's notional with `dealer` to `total` fits in
        its credit line): 1 below what it has answered, 0 from what it has declined for
        credit, in between a line anywhere alike."""
        fits = self._credit_fits.get(dealer, 0.0)
        declined = self._credit_short.get(dealer)
        if declined is None or total <= fits:
            return 1.0
        if total >= declined:
            return 0.0
        return (declined - total) / (declined - fits)

    def _own(
        self, side: Side | None, two_sided: bool, qty: int, mid: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every dealer's own columns (DEALER_OWN) and price quality, in `dealers` order,
        for a request of `qty` at `mid` (0: notional unknown). They change only with an
        event: remembered until the next one."""
        seen = None if two_sided else side  # the side the dealers are asked for
        key = (side, two_sided, qty, mid)
        hit = self._own_memo.get(key)
        if hit is None:
            own, quality = [], []
            for d in self.dealers:
                total, n = self._today.get(d, (0.0, 0))
                response, hit_rate, dist, asked = self.tracker.stats(d)
                short = self.short_axe(d, seen, qty)
                notional = self.notional.get(d, 0.0)
                p_credit = self.p_credit(d, notional + qty * mid) if mid > 0 else 1.0
                own.append(
                    dealer_own(
                        adv=self.adv,
                        side=side,
                        resp_rate=self._response_rate(d, seen, short, response) * p_credit,
                        hit_rate=hit_rate,
                        dist_bps=dist,
                        asked=asked,
                        axe=self.axes.get(d, 0.0),
                        position=self.position.get(d, 0.0),
                        notional=notional,
                        dist_today=total / n if n else None,
                        quotes_today=n,
                        p_credit=p_credit,
                        short_axe=short,
                    )
                )
                quality.append(total / n if n else dist)
            if len(self._own_memo) >= 16:
                self._own_memo.clear()
            hit = self._own_memo[key] = (np.array(own), np.array(quality))
        return hit

    def _priced(
        self,
        qty: int,
        side: Side | None,
        n_asked: int,
        market: MarketContext,
        two_sided: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every dealer's pricing terms (a row each), expected quote cost on `side` and
        its spread, in `dealers` order, if `n_asked` dealers are asked. They do not depend
        on who else is asked, only on how many: remembered until the next event, as a
        selection scores many panels."""
        key = (qty, side, n_asked, market.vol_bps, two_sided)
        hit = self._price_memo.get(key)
        if hit is None:
            w, sd = self.costs.stacked(self.dealers)
            z, pred = _price(
                terms(0.0, qty / self.adv, n_asked, market.vol_bps, two_sided or side is None),
                np.array([self.axes.get(d, 0.0) for d in self.dealers]),
                self.adv,
                side_feature(side),
                w,
            )
            sd = np.maximum(sd, 0.5)
            if len(self._price_memo) >= 64:  # a long quiet spell: one entry per decision
                self._price_memo.clear()
            hit = self._price_memo[key] = (z, pred, sd)
        return hit

    def rows(
        self,
        qty: int,
        side: Side | None,
        panel: Sequence[DealerId],
        market: MarketContext,
        instead_of_last: Sequence[DealerId] = (),
        *,
        two_sided: bool = False,
    ) -> np.ndarray:
        """Feature rows (DEALER_FEATURES) of asking `panel` for `qty`, in `panel` order;
        then, for each dealer of `instead_of_last`, its row if it were asked in the place
        of the panel's last dealer (what `rows` of that panel would give it): many
        candidates for a seat scored at the cost of one call. Nothing is changed.

        `side` is the client's own; `two_sided`: the request hides it from the dealers
        (who then answer as to a two-sided request, while the client still trades on its
        side: the side whose prices the rows compare)."""
        own, quality = self._own(side, two_sided, qty, market.mid)
        _, pred, sd = self._priced(qty, side, len(panel), market, two_sided)
        index = self._index
        out = np.zeros((len(panel) + len(instead_of_last), len(DEALER_FEATURES)))
        _panel_rows(
            out,
            np.array(dealer_head(qty, self.adv, side, len(panel), market, two_sided)),
            own,
            quality,
            pred,
            sd,
            self._columns,
            np.array([index[d] for d in panel], dtype=np.int64),
            np.array([index[d] for d in instead_of_last], dtype=np.int64),
            P_LOWEST_POINTS,
            self._panel_column,
        )
        return out

    def terms_of(
        self, qty: int, side: Side | None, panel: Sequence[DealerId], market: MarketContext
    ) -> dict[DealerId, np.ndarray]:
        """Each asked dealer's pricing terms (models.quotecost) for this request."""
        z, _, _ = self._priced(qty, side, len(panel), market)
        return {d: z[self._index[d]].copy() for d in panel}

    def observe(self, event: Event, mid_at: MidAt, market: MarketContext | None = None) -> None:
        """Learn from one event of the log. `market` (for a request) is the screen at that
        moment, needed to remember the dealers' pricing terms of the request."""
        if isinstance(event, RfqRequested):
            r = event.request
            z: dict[DealerId, np.ndarray] = {}
            if market is not None:
                z = self.terms_of(r.qty, r.side, r.dealers, market)
            axes = {d: self.axes.get(d, 0.0) for d in r.dealers}
            notional = r.qty * mid_at(event.ts_ns)
            totals = {d: self.notional.get(d, 0.0) + notional for d in r.dealers}
            self._open[r.rfq_id] = _Open(r.side, r.qty, z, axes, totals)
        elif isinstance(event, QuoteReceived):
            o = self._open.get(event.quote.rfq_id)
            if o is not None:
                o.quotes[event.quote.dealer] = event.quote
        elif isinstance(event, QuoteRequestRejected):
            o = self._open.get(event.rfq_id)
            if o is not None:
                o.declined[event.dealer] = event.reason
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
                self._learn_answers(o)
                self._learn_prices(o, mid_at)
        self.tracker.observe(event)
        self.forget()

    def _learn_answers(self, o: _Open) -> None:
        """Who answered, by the kind of request, and what that says of credit lines.
        A decline for credit, or silence where the line was known to be full, is left
        out of the response counts: `p_credit` accounts for it."""
        for d, total in o.totals.items():
            reason = o.declined.get(d)
            if reason is QuoteRejectReason.INSUFFICIENT_CREDIT:
                self._credit_short[d] = min(self._credit_short.get(d, math.inf), total)
                continue
            if d in o.quotes or reason is not None:  # credit is checked first
                self._credit_fits[d] = max(self._credit_fits.get(d, 0.0), total)
            elif self.p_credit(d, total) < 0.5:
                continue
            key = (d, _kind(o.side), _short_of(o.axes[d], o.side, o.qty))
            self._asked_side[key] = self._asked_side.get(key, 0.0) + 1.0
            if d in o.quotes:
                self._quoted_side[key] = self._quoted_side.get(key, 0.0) + 1.0

    def _learn_prices(self, o: _Open, mid_at: MidAt) -> None:
        side = o.side or o.traded_side
        if side is None:
            return
        prices = {d: p for d, q in o.quotes.items() if (p := q.price_for(side)) is not None}
        seen = []
        for d, p in prices.items():
            if d in o.z:
                z = o.z[d]
                if o.side is None:  # two-sided: the dealer's skew applies to the side traded
                    z = z.copy()
                    z[1] = o.axes[d] / self.adv * side.sign * AXE_UNIT
                mid = mid_at(o.quotes[d].ts_ns)
                seen.append((d, z, side.sign * (p - mid) / mid * 1e4))
        self.costs.observe_rfq(seen)
        for d, dist in distances_behind_best(o.quotes, side).items():
            total, n = self._today.get(d, (0.0, 0))
            self._today[d] = (total + dist, n + 1)


def _kind(seen: Side | None) -> str | None:
    # the side asked as it keys the response counts: its value, not the member, whose
    # hash is a Python call (a selection looks the counts up dozens of times)
    return None if seen is None else seen.value


def _short_of(axe: float, seen: Side | None, qty: int) -> bool:
    # a client buy (or a request that may be one) larger than the published long
    return seen is not Side.SELL and axe < qty


@njit(cache=True)
def _price(
    base: np.ndarray, axes: np.ndarray, adv: float, sign: float, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each dealer's pricing terms (`base` with its axe) and their dot product with its
    coefficients, summed in order as `QuoteCostTracker.predict` does."""
    z = np.empty((axes.shape[0], base.shape[0]))
    pred = np.empty(axes.shape[0])
    for i in range(axes.shape[0]):
        z[i] = base
        z[i, 1] = axes[i] / adv * sign * AXE_UNIT
        total = 0.0
        for j in range(base.shape[0]):
            total += z[i, j] * w[i, j]
        pred[i] = total
    return z, pred


# DEALER_FEATURES' layout: the base columns, then panel, dealer and competitor indicators
_OWN0 = DEALER_BASE.index(DEALER_OWN[0])
_REL_DIST, _OTHERS_RESP, _PRED, _REL_PRED, _P_EST = (
    DEALER_BASE.index(name)
    for name in (
        "rel_dist_bps",
        "others_resp",
        "pred_cost_bps",
        "rel_pred_cost_bps",
        "p_best_est",
    )
)
_N_DEALERS = DEALER_BASE.index("n_dealers")
_PANEL0 = len(DEALER_BASE)
_DEALER0 = _PANEL0 + len(PANELS)
_WITH0 = _DEALER0 + len(DEALER_IDS)


@njit(cache=True)
def _panel_rows(
    out: np.ndarray,
    head: np.ndarray,
    own: np.ndarray,
    quality: np.ndarray,
    pred: np.ndarray,
    sd: np.ndarray,
    columns: np.ndarray,
    panel: np.ndarray,
    candidates: np.ndarray,
    n_points: int,
    panel_column: int,
) -> None:
    """`DeskState.rows` into `out` (zeros); dealers as indices into the per-dealer
    arrays. The comparisons and indicators are `models.features.dealer_row`'s."""
    n = panel.shape[0]
    if n > 0:
        est = p_lowest_unclipped(own[panel, 0], pred[panel], sd[panel], n_points)
        for i in range(n):
            others = np.concatenate((panel[:i], panel[i + 1 :]))
            _one_row(out[i], head, own, quality, pred, columns, panel[i], others, est[i])
    base = panel[: n - 1] if n > 0 else panel
    seat = np.empty(base.shape[0] + 1, dtype=np.int64)
    seat[1:] = base
    for j in range(candidates.shape[0]):
        seat[0] = candidates[j]
        est = p_lowest_unclipped(own[seat, 0], pred[seat], sd[seat], n_points, True)
        _one_row(out[n + j], head, own, quality, pred, columns, seat[0], base, est[0])
    for i in range(out.shape[0]):
        if panel_column >= 0:
            out[i, _PANEL0 + panel_column] = 1.0


@njit(cache=True)
def _one_row(
    row: np.ndarray,
    head: np.ndarray,
    own: np.ndarray,
    quality: np.ndarray,
    pred: np.ndarray,
    columns: np.ndarray,
    d: int,
    others: np.ndarray,
    p_est: float,
) -> None:
    row[: head.shape[0]] = head
    row[_N_DEALERS] = others.shape[0] + 1.0
    row[_OWN0 : _OWN0 + own.shape[1]] = own[d]
    best_quality = 0.0  # no one else asked: compared with 0 bps
    cheapest = pred[d]
    resp = 0.0
    for j in range(others.shape[0]):
        o = others[j]
        best_quality = quality[o] if j == 0 else min(best_quality, quality[o])
        cheapest = pred[o] if j == 0 else min(cheapest, pred[o])
        resp += own[o, 0]
        if columns[o] >= 0:
            row[_WITH0 + columns[o]] = 1.0
    row[_REL_DIST] = quality[d] - best_quality
    row[_OTHERS_RESP] = resp
    row[_PRED] = pred[d]
    row[_REL_PRED] = pred[d] - cheapest
    row[_P_EST] = min(max(p_est, 0.0), 1.0)
    if columns[d] >= 0:
        row[_DEALER0 + columns[d]] = 1.0
