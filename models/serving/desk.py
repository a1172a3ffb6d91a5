"""What the desk knows about its dealers, kept up to date from its own RFQ log: the
decayed history of each dealer (`dealers.panel.HeuristicPanel`), each dealer's pricing
(`models.serving.quotecost`), its response rates by kind of request (side; more than its
published long or not), its credit line as bracketed by its answers and its declines
for credit, today's trades and quote distances, and the dealers' axe feed.

A request's rows compare the dealers' prices on the client's own side, also when the
request is two-sided: the dealers do not see that side, the desk does.

The same object builds the dealer models' feature rows when training replays a log
(models/training/dealer_data.py) and when the router asks for quotes (router's `ml` routing), so
the features cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from dealers.panel import HeuristicPanel, distances_behind_best
from dealers.truth import p_lowest_unclipped
from models.serving.features import (
    DEALER_BASE,
    DEALER_FEATURES,
    DEALER_IDS,
    DEALER_OWN,
    PANELS,
    MarketContext,
    dealer_head,
    side_feature,
)
from models.serving.inventory import (
    BLUR_HALF_LIFE_TOD,
    PositionBeliefs,
    gaussian_likelihood,
)
from models.serving.quotecost import (
    AXE_UNIT,
    N_TERMS,
    QuoteCostTracker,
    carry_shapes,
    flow_term,
    terms,
)
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
#: the events that change what the desk knows of its dealers (those `DeskState.observe`
#: and its tracker, dealers.panel.HeuristicPanel, read)
_LEARNED_FROM = (RfqRequested, QuoteReceived, QuoteRequestRejected, RfqTraded, RfqEnded)
#: how long the desk remembers what it asked each dealer for, as a share of the session
#: (half-life; `MarketContext.tod` is the clock): half an hour, about how long a dealer
#: can be expected to remember a client's flow. The regression weighs the term, so a
#: dealer that forgets sooner or later only gets a smaller coefficient.
FLOW_HALF_LIFE_TOD = 1800.0 / (6.5 * 3600.0)
# indices in the pricing terms (`models.serving.quotecost.terms`): the volatility, the flow and
# the dealer's cost shapes
_VOL, _FLOW, _UNWIND, _RISK = 5, 7, 8, 9
P_LOWEST_POINTS = 41  # the implied P(best) to about 1e-3, and cheap

#: a dealer's row of `DeskState._state`: its history as the heuristic keeps it, its axe,
#: today's trades and quote distances with the desk, its credit line's bracket
_STATE = (
    "response",
    "hit",
    "dist",
    "asked",
    "axe",
    "position",
    "notional",
    "today_dist_sum",
    "today_quotes",
    "credit_fits",
    "credit_short",  # inf: never declined for credit
)
_RESPONSE, _HIT, _DIST, _ASKED, _AXE, _POSITION, _NOTIONAL = range(7)
_TODAY_SUM, _TODAY_N, _CREDIT_FITS, _CREDIT_SHORT = range(7, 11)
#: the kinds of request the response counts are kept by (`_kind`); a dealer's row of
#: `DeskState._counts`: asked, then quoted, each at 2 * kind + short of its axe
_KINDS = (None, Side.BUY.value, Side.SELL.value)
_QUOTED0 = 2 * len(_KINDS)
_KIND_INDEX = {kind: k for k, kind in enumerate(_KINDS)}
_N_OWN = len(DEALER_OWN)


@dataclass
class _Open:
    side: Side | None
    qty: int
    z: dict[DealerId, np.ndarray]
    axes: dict[DealerId, float]  # as published at the request
    # per dealer asked: the desk's belief of its position within the axe's step, as kept
    # at the request (models.serving.inventory), and the axe it refers to
    beliefs: dict[DealerId, np.ndarray]
    # per dealer: the desk's notional with it today plus the request's (credit)
    totals: dict[DealerId, float]
    quotes: dict[DealerId, Quote] = field(default_factory=dict)
    declined: dict[DealerId, QuoteRejectReason] = field(default_factory=dict)
    traded_side: Side | None = None
    # per dealer: the client's net recent requests to it on each side (buy, sell) before
    # this one, / ADV: a two-sided request learns the traded side's price with its own
    flows: dict[DealerId, tuple[float, float]] = field(default_factory=dict)


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
        self.positions = PositionBeliefs(adv)
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
        # every dealer's state as the decision reads it, one row each (`_STATE`
        # columns, response counts, pricing coefficients and spreads): rebuilt from the dicts
        # above after each event (`refresh`), so a decision is one compiled call
        n = len(self.dealers)
        self._state = np.zeros((n, len(_STATE)))
        self._counts = np.zeros((n, 2 * len(_KINDS) * 2))
        self._w = np.zeros((n, N_TERMS))
        self._sd = np.zeros(n)
        # each dealer's belief of its position within its axe's step (rows: dealers,
        # columns: `PositionBeliefs.grid`) and the time of day it was kept, from which
        # the rows blur it
        self._beliefs = np.zeros((n, self.positions.grid.shape[0]))
        self._belief_tod = np.zeros(n)
        self._usual: tuple[DealerId, ...] = self.dealers
        self._stale = True
        self.new_day()

    def new_day(self) -> None:
        self.position: dict[DealerId, float] = {}  # the dealers' side of today's trades
        self.notional: dict[DealerId, float] = {}
        # per dealer: (sum, count) of its quotes' distances behind the best today
        self._today: dict[DealerId, tuple[float, int]] = {}
        # what the desk asked each dealer for (units, buy and sell), decayed with
        # FLOW_HALF_LIFE_TOD, and the time of day it was last brought up to date
        self._asked_flow: dict[DealerId, tuple[float, float]] = {}
        self._flow_tod = 0.0
        self.positions.new_day()
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
        """The desk has learned something: rebuild the dealers' arrays before the next
        rows are built."""
        self._stale = True

    def refresh(self) -> None:
        """Rebuild the dealers' arrays now, if anything was learned since the last time.
        The live desk calls it as each event is learned (`MlPanel.observe`) so that a
        decision finds them ready; `rows` calls it too, so a replay never reads them
        stale."""
        if not self._stale:
            return
        rows = []
        for d in self.dealers:
            response, hit_rate, dist, asked = self.tracker.stats(d)
            total, n = self._today.get(d, (0.0, 0))
            rows.append(
                (
                    response,
                    hit_rate,
                    dist,
                    asked,
                    self.axes.get(d, 0.0),
                    self.position.get(d, 0.0),
                    self.notional.get(d, 0.0),
                    total,
                    n,
                    self._credit_fits.get(d, 0.0),
                    self._credit_short.get(d, math.inf),
                )
            )
        self._state = np.array(rows, dtype=np.float64)
        counts = np.zeros_like(self._counts)
        index = self._index
        for offset, by in ((0, self._asked_side), (_QUOTED0, self._quoted_side)):
            for (d, kind, short), v in by.items():
                i = index.get(d)
                if i is not None:
                    counts[i, offset + 2 * _KIND_INDEX[kind] + short] = v
        self._counts = counts
        w, sd = self.costs.stacked(self.dealers)
        self._w[:] = w
        self._sd[:] = np.maximum(sd, 0.5)
        for i, d in enumerate(self.dealers):
            self._beliefs[i] = self.positions.current(d, self.axes.get(d, 0.0))
            self._belief_tod[i] = self.positions.kept_tod(d)
        tracker = self.tracker
        self._usual = tuple(sorted(self.dealers, key=lambda d: (-tracker.score(d), d)))
        self._stale = False

    def usual(self) -> tuple[DealerId, ...]:
        """The dealers by the heuristic's score from the desk's history, best first."""
        self.refresh()
        return self._usual

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
        self.refresh()
        index = self._index
        seen = None if two_sided else side  # the side the dealers are asked for
        out = np.zeros((len(panel) + len(instead_of_last), len(DEALER_FEATURES)))
        _desk_rows(
            out,
            np.array(dealer_head(qty, self.adv, side, len(panel), market, two_sided)),
            terms(0.0, qty / self.adv, len(panel), market.vol_bps, two_sided or side is None),
            self._flow_terms(side, market),
            self._state,
            self._counts,
            self._w,
            self._sd,
            self._beliefs,
            self._blur_keep(market.tod),
            self.positions.grid,
            self._columns,
            np.array([index[d] for d in panel], dtype=np.int64),
            np.array([index[d] for d in instead_of_last], dtype=np.int64),
            P_LOWEST_POINTS,
            self._panel_column,
            side_feature(side),
            _KIND_INDEX[_kind(seen)],
            seen is Side.SELL,
            qty,
            market.mid,
            self.adv,
        )
        return out

    def _blur_keep(self, tod: float) -> np.ndarray:
        """How much of each dealer's kept belief still holds at `tod`
        (`models.serving.inventory.blur`)."""
        elapsed = np.maximum(tod - self._belief_tod, 0.0)
        return np.asarray(0.5 ** (elapsed / BLUR_HALF_LIFE_TOD))

    def terms_grid(
        self,
        qty: int,
        side: Side | None,
        n_dealers: int,
        vol_bps: float,
        two_sided: bool,
        dealer: DealerId,
        axe: float,
        flow_adv: float,
    ) -> np.ndarray:
        """One dealer's pricing terms (models.serving.quotecost) for this request at
        each offset of its position from the axe (`PositionBeliefs.grid`), a row each."""
        sign = side_feature(side)
        size = qty / self.adv
        base = terms(0.0, size, n_dealers, vol_bps, two_sided, flow_adv)
        out = np.empty((self.positions.grid.shape[0], base.shape[0]))
        for g, offset in enumerate(self.positions.grid):
            axe_side = (axe + offset) / self.adv * sign
            out[g] = base
            out[g, 1] = axe_side * AXE_UNIT
            unwind, risk = carry_shapes(axe_side, size)
            out[g, _UNWIND] = unwind * vol_bps
            out[g, _RISK] = risk * vol_bps
        return out

    def flows(self, tod: float) -> dict[DealerId, tuple[float, float]]:
        """Per dealer: the client's net recent requests to it to buy and to sell (each
        >= 0, at most one of them > 0), / ADV, decayed to `tod`: what the dealer is
        taken to remember of the desk's flow when it prices."""
        decay = self._flow_decay(tod)
        out = {}
        for d, (buy, sell) in self._asked_flow.items():
            net = (buy - sell) * decay / self.adv
            out[d] = (max(net, 0.0), max(-net, 0.0))
        return out

    def _flow_decay(self, tod: float) -> float:
        """How much of the memory of the desk's requests is left at `tod`."""
        return float(0.5 ** (max(tod - self._flow_tod, 0.0) / FLOW_HALF_LIFE_TOD))

    def _flow_terms(self, side: Side | None, market: MarketContext) -> np.ndarray:
        """Each dealer's flow term (`models.serving.quotecost.flow_term`) on the client's side
        `side`, in `self.dealers` order; zeros for an unknown side."""
        out = np.zeros(len(self.dealers))
        if side is None or not self._asked_flow:
            return out
        k = 0 if side is Side.BUY else 1
        flows = self.flows(market.tod)
        for i, d in enumerate(self.dealers):
            f = flows.get(d)
            if f is not None:
                out[i] = flow_term(f[k], market.vol_bps)
        return out

    def _remember_asked(
        self, request_side: Side | None, qty: int, dealers: Sequence[DealerId], tod: float
    ) -> None:
        """Add a request to the dealers' memory of the desk's flow (a two-sided one
        says nothing of the side, to them as to us)."""
        if request_side is None:
            return
        decay = self._flow_decay(tod)
        self._asked_flow = {d: (b * decay, s * decay) for d, (b, s) in self._asked_flow.items()}
        self._flow_tod = max(tod, self._flow_tod)
        for d in dealers:
            buy, sell = self._asked_flow.get(d, (0.0, 0.0))
            if request_side is Side.BUY:
                buy += qty
            else:
                sell += qty
            self._asked_flow[d] = (buy, sell)

    def observe(self, event: Event, mid_at: MidAt, market: MarketContext | None = None) -> None:
        """Learn from one event of the log. `market` (for a request) is the screen at that
        moment, needed to remember the dealers' pricing terms of the request. Any other
        event (the parent's own orders and fills, most of the log) teaches the desk
        nothing: the dealers' arrays stay as they are, not rebuilt."""
        if not isinstance(event, _LEARNED_FROM):
            return
        if isinstance(event, RfqRequested):
            r = event.request
            z: dict[DealerId, np.ndarray] = {}
            flows: dict[DealerId, tuple[float, float]] = {}
            beliefs: dict[DealerId, np.ndarray] = {}
            axes = {d: self.axes.get(d, 0.0) for d in r.dealers}
            if market is not None:
                # the pricing terms of each dealer's flow term, vol and request; the
                # position's terms at each offset, with the belief that weighs them
                k = 0 if r.side is Side.BUY else 1
                asked = self.flows(market.tod)
                for d in r.dealers:
                    flow = asked.get(d, (0.0, 0.0))[k] if r.side is not None else 0.0
                    z[d] = self.terms_grid(
                        r.qty,
                        r.side,
                        len(r.dealers),
                        market.vol_bps,
                        r.side is None,
                        d,
                        axes[d],
                        flow,
                    )
                    beliefs[d] = self.positions.commit(d, axes[d], market.tod)
                if r.side is None:
                    flows = asked
                self._remember_asked(r.side, r.qty, r.dealers, market.tod)
            notional = r.qty * mid_at(event.ts_ns)
            totals = {d: self.notional.get(d, 0.0) + notional for d in r.dealers}
            self._open[r.rfq_id] = _Open(r.side, r.qty, z, axes, beliefs, totals, flows=flows)
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
            self.positions.traded(d, -event.side.sign * event.qty)
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
        quoted: list[tuple[DealerId, np.ndarray, float]] = []  # terms at each offset, cost
        for d, p in prices.items():
            if d in o.z:
                z = o.z[d]
                if o.side is None:  # two-sided: the dealer's skew applies to the side traded
                    flow = o.flows.get(d, (0.0, 0.0))[0 if side is Side.BUY else 1]
                    n, vol = int(z[0, 4]), float(z[0, _VOL])
                    z = self.terms_grid(o.qty, side, n, vol, True, d, o.axes[d], flow)
                mid = mid_at(o.quotes[d].ts_ns)
                quoted.append((d, z, side.sign * (p - mid) / mid * 1e4))
        # each quote as the pricing before it predicted it, at every offset of the
        # dealer's position and on average over the belief kept at the request
        preds = [z @ self.costs.coefficients(d) for d, z, _ in quoted]
        means = [float(o.beliefs[d] @ pg) for (d, _, _), pg in zip(quoted, preds, strict=True)]
        spreads = [
            max(float(o.beliefs[d] @ (pg * pg)) - m * m, 0.0)
            for (d, _, _), pg, m in zip(quoted, preds, means, strict=True)
        ]
        k = len(quoted)
        if k >= 2:  # one quote alone cannot be told from the shock the quotes share
            errs = [cost - m for (_, _, cost), m in zip(quoted, means, strict=True)]
            noise = [
                max(self.costs.sd(d), 0.5) ** 2 + v
                for (d, _, _), v in zip(quoted, spreads, strict=True)
            ]
            for i, (d, _, cost) in enumerate(quoted):
                others = (sum(errs) - errs[i]) / (k - 1)
                their = (sum(noise) - noise[i]) / (k - 1) ** 2
                own = max(self.costs.sd(d), 0.5) ** 2
                residuals = cost - preds[i] - others
                self.positions.weigh(
                    d, o.axes[d], gaussian_likelihood(residuals, math.sqrt(own + their))
                )
        self.costs.observe_rfq(
            [(d, o.beliefs[d] @ z, cost) for d, z, cost in quoted], known_var=spreads
        )
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
    base: np.ndarray,
    axes: np.ndarray,
    flows: np.ndarray,
    size_adv: float,
    adv: float,
    sign: float,
    w: np.ndarray,
    beliefs: np.ndarray,
    keep: np.ndarray,
    grid: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Each dealer's expected quote cost and its variance over the desk's belief of its
    position: the pricing terms (`base` with its axe plus each offset of `grid`, and the
    desk's recent flow to it) dotted with its coefficients, weighed by its belief
    (`beliefs`, blurred towards even odds as `keep` says)."""
    n, points = axes.shape[0], grid.shape[0]
    z = base.copy()
    mean = np.empty(n)
    var = np.empty(n)
    for i in range(n):
        z[_FLOW] = flows[i]
        m1 = 0.0
        m2 = 0.0
        for g in range(points):
            p = keep[i] * beliefs[i, g] + (1.0 - keep[i]) / points
            axe = (axes[i] + grid[g]) / adv * sign
            z[1] = axe * AXE_UNIT
            unwind, risk = carry_shapes(axe, size_adv)
            z[_UNWIND] = unwind * base[_VOL]
            z[_RISK] = risk * base[_VOL]
            total = 0.0
            for j in range(base.shape[0]):
                total += z[j] * w[i, j]
            m1 += p * total
            m2 += p * total * total
        mean[i] = m1
        var[i] = max(m2 - m1 * m1, 0.0)
    return mean, var


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
    arrays. The comparisons and indicators are `models.serving.features.dealer_row`'s."""
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


@njit(cache=True)
def _desk_rows(
    out: np.ndarray,
    head: np.ndarray,
    base: np.ndarray,
    flows: np.ndarray,
    state: np.ndarray,
    counts: np.ndarray,
    w: np.ndarray,
    sd: np.ndarray,
    beliefs: np.ndarray,
    keep: np.ndarray,
    grid: np.ndarray,
    columns: np.ndarray,
    panel: np.ndarray,
    candidates: np.ndarray,
    n_points: int,
    panel_column: int,
    sign: float,
    kind: int,
    seen_sell: bool,
    qty: int,
    mid: float,
    adv: float,
) -> None:
    """`DeskState.rows` into `out` (zeros), from the dealers' arrays: every dealer's own
    columns and pricing, then the panel's rows."""
    own = np.empty((state.shape[0], _N_OWN))
    quality = np.empty(state.shape[0])
    _own_columns(own, quality, state, counts, sign, kind, seen_sell, qty, mid, adv)
    pred, var = _price(base, state[:, _AXE], flows, qty / adv, adv, sign, w, beliefs, keep, grid)
    spread = np.sqrt(sd * sd + var)  # the dealer's own noise and what the desk cannot see
    _panel_rows(
        out, head, own, quality, pred, spread, columns, panel, candidates, n_points, panel_column
    )


@njit(cache=True)
def _own_columns(
    own: np.ndarray,
    quality: np.ndarray,
    state: np.ndarray,
    counts: np.ndarray,
    sign: float,
    kind: int,
    seen_sell: bool,
    qty: int,
    mid: float,
    adv: float,
) -> None:
    """Every dealer's own columns (DEALER_OWN, as `models.serving.features.dealer_own` defines
    them) and price quality, for a request of `qty` at `mid` (0: notional unknown), the
    client on side `sign`, the dealers asked for the side of `kind` (`_KINDS`). The
    arithmetic is that of `DeskState.p_credit` and of the readable definition in
    tests/models/serving/test_desk_rows.py, in their order: equal to the bit."""
    for i in range(state.shape[0]):
        s = state[i]
        axe, notional, n = s[_AXE], s[_NOTIONAL], s[_TODAY_N]
        short = not seen_sell and axe < qty  # `_short_of`
        p_credit = 1.0  # `DeskState.p_credit`
        if mid > 0:
            total = notional + qty * mid
            fits, declined = s[_CREDIT_FITS], s[_CREDIT_SHORT]
            if declined == math.inf or total <= fits:
                p_credit = 1.0
            elif total >= declined:
                p_credit = 0.0
            else:
                p_credit = (declined - total) / (declined - fits)
        # the response rate to requests like this one (side, short of the axe or not),
        # shrunk towards the side's, itself shrunk towards the overall one
        c = counts[i]
        asked_side = c[2 * kind] + c[2 * kind + 1]
        quoted_side = c[_QUOTED0 + 2 * kind] + c[_QUOTED0 + 2 * kind + 1]
        side_rate = (quoted_side + 2.0 * s[_RESPONSE]) / (asked_side + 2.0)
        j = 2 * kind + (1 if short else 0)
        rate = (c[_QUOTED0 + j] + 2.0 * side_rate) / (c[j] + 2.0)
        today = s[_TODAY_SUM] / n if n > 0 else s[_DIST]
        row = own[i]
        row[0] = rate * p_credit
        row[1] = s[_HIT]
        row[2] = s[_DIST]
        row[3] = math.log1p(s[_ASKED])
        row[4] = axe / adv * sign
        row[5] = s[_POSITION] / adv * sign
        row[6] = notional / 1e6
        row[7] = today
        row[8] = math.log1p(n)
        row[9] = p_credit
        row[10] = 1.0 if short else 0.0
        quality[i] = today
