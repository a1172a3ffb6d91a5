"""Feature vectors of the learned models, built the same way from a live decision and
from a logged one (so the training pipeline could run on production logs).

Only what the desk knows at the moment of the decision goes in: the request, the market
as the screen shows it up to that instant, the dealers' published axes and the desk's
own RFQ history before this request. Out-of-range values are clipped to the training
range and counted (`Clipper`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from router.domain import Side, VenueId
from router.ports import (
    FAR_MOVE_KEYS,
    FLOW_IMBALANCE_KEYS,
    FLOW_SHARE_KEYS,
    LEVELS_OTHER_KEYS,
    LEVELS_OURS_KEYS,
    NEAR_MOVE_KEYS,
    PassiveOrderContext,
    RecentMarket,
)

#: every dealer id of the shipped panels, one indicator each (a panel is one-hot too)
DEALER_IDS = (
    "ALPHA",
    "BRAVO",
    "CHARLIE",
    "DELTA",
    "ECHO",
    "FOXTROT",
    "GOLF",
    "HOTEL",
    "INDIA",
    "JULIET",
)
PANELS = ("equities", "bonds")

DEALER_BASE = (
    "log_size_adv",  # log(qty / ADV)
    "side",  # the client's side: +1 buys, -1 sells (also when the request hides it),
    # 0 unknown
    "two_sided",  # 1 the request asks for a bid and an offer, hiding the client's side
    "n_dealers",  # dealers asked
    "vol_bps",  # realised 10-s mid volatility over the last 10 min, bps
    "spread_bps",  # lit spread now, bps of the mid
    "tod",  # time of day, share of the session
    "resp_rate",  # the desk's decayed history of this dealer
    "hit_rate",
    "dist_bps",
    "log_asked",
    "axe_adv",  # the dealer's published axe / ADV, times the client's side: > 0 it wants
    # to do what the client asks (long when the client buys)
    "pos_side",  # the dealer's position from its trades with the desk today, / ADV, times
    # the client's side: > 0 it is long and the client buys (it is keen to sell)
    "notional_m",  # notional the desk traded with the dealer today, millions (credit)
    "dist_today_bps",  # its quotes' mean distance behind the best today (its skew today)
    "log_quotes_today",
    "p_credit",  # P(the request fits in its credit line with the client), from the
    # desk's notional with it today and the totals it did and did not decline for credit
    "short_axe",  # 1 a buy (or two-sided) larger than its published long position: it
    # may have to decline for lack of inventory
    "rel_dist_bps",  # its price quality minus the best of the others asked (< 0: ahead)
    "others_resp",  # how many of the others are expected to answer
    "pred_cost_bps",  # its expected quote, from its past quotes (models/serving/quotecost.py)
    "rel_pred_cost_bps",  # that minus the cheapest expected quote of the others
    "p_best_est",  # P(it answers and is cheapest) if quotes were normal around those
    # predictions, with its past errors as spread and its response rate
)
#: the dealer's own columns of DEALER_BASE (`dealer_own`), then those comparing it with
#: the others asked
DEALER_OWN = DEALER_BASE[DEALER_BASE.index("resp_rate") : DEALER_BASE.index("rel_dist_bps")]
DEALER_FEATURES = (
    *DEALER_BASE,
    *(f"panel_{p}" for p in PANELS),
    *(f"dealer_{d}" for d in DEALER_IDS),
    *(f"with_{d}" for d in DEALER_IDS),  # who else is asked: the competition
)
#: the hit model also sees the dealer's quote: distance from the mid, bps (cost to the
#: client), monotone decreasing
HIT_FEATURES = (*DEALER_FEATURES, "quote_bps", "quote_rank", "n_quotes")

FILL_FEATURES = (
    "dark",  # 1 dark pool midpoint order, 0 lit post-only
    "improve",  # 1 one tick better than the touch, 0 join
    "side",
    "spread_ticks",
    "queue_ahead_rel",  # queue ahead of us / our size
    "log_queue_ahead",
    "log_qty",
    "depth_ratio",  # our side's depth / the other side's, within 10 ticks
    "venue_share",  # the venue's share of the depth on our side
    "log_volume_rate",  # market volume per second, recent
    "vol_bps",  # 30-s mid volatility over the last 10 minutes
    "touch_gap_ticks",
    "touch_imbalance",
    "momentum_bps",
    # the market's recent past (router.ports.RecentMarket): where the fair price that
    # liquidity providers quote from sits inside the spread shows in how each touch just
    # moved, in the tape's net flow and in the shape of the book
    *NEAR_MOVE_KEYS,
    *FAR_MOVE_KEYS,
    *FLOW_IMBALANCE_KEYS,
    *FLOW_SHARE_KEYS,
    *(f"log_{k}" for k in LEVELS_OURS_KEYS),
    *(f"log_{k}" for k in LEVELS_OTHER_KEYS),
)


@dataclass(frozen=True, slots=True)
class MarketContext:
    """What the screen shows at a decision, reduced to the models' market features."""

    vol_bps: float
    spread_bps: float
    tod: float
    mid: float = 0.0  # price units; 0 unknown (a request's notional then is too)

    @classmethod
    def from_mids(
        cls,
        mids_10s: Sequence[float],
        bid: float | None,
        ask: float | None,
        tod: float,
    ) -> MarketContext:
        """`mids_10s`: the mid every 10 s over the last 10 minutes, oldest first."""
        m = np.asarray([x for x in mids_10s if x == x and x > 0], dtype=np.float64)
        vol = float(np.std(np.diff(np.log(m))) * 1e4) if m.size >= 3 else 0.0
        if bid is None or ask is None or not (ask > bid > 0):
            spread = 0.0
            mid = float(m[-1]) if m.size else 0.0
        else:
            mid = 0.5 * (ask + bid)
            spread = (ask - bid) / mid * 1e4
        return cls(vol, spread, tod, mid)


def side_feature(side: Side | None) -> float:
    return 0.0 if side is None else float(side.sign)


def dealer_head(
    qty: int,
    adv: float,
    side: Side | None,
    n_dealers: int,
    market: MarketContext,
    two_sided: bool = False,
) -> list[float]:
    """The request's and the market's columns of a dealer row (DEALER_BASE up to
    `tod`): the same for every dealer asked together."""
    return [
        math.log(max(qty, 1) / adv),
        side_feature(side),
        1.0 if two_sided else 0.0,
        float(n_dealers),
        market.vol_bps,
        market.spread_bps,
        market.tod,
    ]


def dealer_own(
    *,
    adv: float,
    side: Side | None,
    resp_rate: float,
    hit_rate: float,
    dist_bps: float,
    asked: float,
    axe: float,
    position: float = 0.0,
    notional: float = 0.0,
    dist_today: float | None = None,
    quotes_today: int = 0,
    p_credit: float = 1.0,
    short_axe: bool = False,
) -> list[float]:
    """The dealer's own columns (DEALER_OWN): what the desk knows of it, whoever else is
    asked. `position` and `notional`: the dealer's side of today's trades with the desk
    (units, > 0 long) and their notional."""
    sign = side_feature(side)
    return [
        resp_rate,
        hit_rate,
        dist_bps,
        math.log1p(asked),
        axe / adv * sign,
        position / adv * sign,
        notional / 1e6,
        dist_bps if dist_today is None else dist_today,
        math.log1p(quotes_today),
        p_credit,
        1.0 if short_axe else 0.0,
    ]


def dealer_row(
    *,
    qty: int,
    adv: float,
    side: Side | None,
    n_dealers: int,
    market: MarketContext,
    two_sided: bool = False,
    resp_rate: float,
    hit_rate: float,
    dist_bps: float,
    asked: float,
    axe: float,
    panel: str,
    dealer: str,
    others: Sequence[str] = (),
    position: float = 0.0,
    notional: float = 0.0,
    dist_today: float | None = None,
    quotes_today: int = 0,
    p_credit: float = 1.0,
    short_axe: bool = False,
    rel_dist: float = 0.0,
    others_resp: float = 0.0,
    pred_cost: float = 0.0,
    rel_pred_cost: float = 0.0,
    p_best_est: float = 0.0,
) -> list[float]:
    """One (request, dealer) row in DEALER_FEATURES order, from values already compared
    with the rest of the panel (`others`). The desk builds its rows a panel at a time
    (`models.serving.desk.DeskState.rows`); this one-row form is the readable definition."""
    return [
        *dealer_head(qty, adv, side, n_dealers, market, two_sided),
        *dealer_own(
            adv=adv,
            side=side,
            resp_rate=resp_rate,
            hit_rate=hit_rate,
            dist_bps=dist_bps,
            asked=asked,
            axe=axe,
            position=position,
            notional=notional,
            dist_today=dist_today,
            quotes_today=quotes_today,
            p_credit=p_credit,
            short_axe=short_axe,
        ),
        rel_dist,
        others_resp,
        pred_cost,
        rel_pred_cost,
        p_best_est,
        *(1.0 if panel == p else 0.0 for p in PANELS),
        *(1.0 if dealer == d else 0.0 for d in DEALER_IDS),
        *(1.0 if d in others else 0.0 for d in DEALER_IDS),
    ]


def fill_row(ctx: PassiveOrderContext) -> list[float]:
    """One passive order in FILL_FEATURES order."""
    return fill_order_columns(ctx) + fill_recent_columns(ctx.recent)


def fill_order_columns(ctx: PassiveOrderContext) -> list[float]:
    """The order's own columns of `fill_row`, up to the market's recent past."""
    return [
        1.0 if ctx.dark else 0.0,
        1.0 if ctx.improve else 0.0,
        float(ctx.side.sign),
        ctx.spread_ticks,
        ctx.queue_ahead / max(ctx.qty, 1.0),
        math.log1p(ctx.queue_ahead),
        math.log1p(ctx.qty),
        (ctx.depth_ours + 1.0) / (ctx.depth_other + 1.0),
        ctx.venue_share,
        math.log1p(max(ctx.volume_rate, 0.0)),
        ctx.vol_bps,
        ctx.touch_gap_ticks,
        ctx.touch_imbalance,
        ctx.momentum_bps,
    ]


def fill_recent_columns(r: RecentMarket) -> list[float]:
    """The market's recent past, the rest of `fill_row`: the same for every order of a
    decision."""
    return [
        *r.near_moves_ticks,
        *r.far_moves_ticks,
        *r.flow_imbalance,
        *r.flow_share,
        *(math.log1p(q) for q in r.levels_ours),
        *(math.log1p(q) for q in r.levels_other),
    ]


def context_from_inputs(
    venue: str, side: Side, inputs: Mapping[str, float]
) -> PassiveOrderContext | None:
    """The context of a logged passive order from its decision record (None if the
    record predates the fields)."""
    try:
        return PassiveOrderContext(
            venue=VenueId(venue),
            dark=bool(inputs["dark"]),
            improve=bool(inputs["improve"]),
            side=side,
            spread_ticks=inputs["spread_ticks"],
            queue_ahead=inputs["queue_ahead"],
            qty=inputs["qty"],
            depth_ours=inputs["depth_ours"],
            depth_other=inputs["depth_other"],
            venue_share=inputs["venue_share"],
            volume_rate=inputs["volume_rate"],
            vol_bps=inputs["vol30_bps"],
            touch_gap_ticks=inputs["touch_gap_ticks"],
            touch_imbalance=inputs["touch_imbalance"],
            momentum_bps=inputs["momentum_bps"],
            recent=RecentMarket.from_inputs(inputs),
        )
    except KeyError:
        return None


@dataclass
class Clipper:
    """Clips features to the training range and counts what it clipped, per feature."""

    names: tuple[str, ...]
    lo: np.ndarray
    hi: np.ndarray
    rows: int = 0
    counts: np.ndarray = field(init=False)  # values clipped, per feature

    def __post_init__(self) -> None:
        self.counts = np.zeros(len(self.names), dtype=np.int64)

    @classmethod
    def fit(cls, names: Sequence[str], x: np.ndarray) -> Clipper:
        return cls(tuple(names), np.nanmin(x, axis=0), np.nanmax(x, axis=0))

    @property
    def clipped(self) -> dict[str, int]:
        """Values clipped so far, by feature (only those with any)."""
        return {self.names[j]: int(self.counts[j]) for j in np.flatnonzero(self.counts)}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = np.clip(x, self.lo, self.hi)
        changed = (out != x) & ~np.isnan(x)  # a missing value is left to the trees
        self.counts += np.sum(changed, axis=0)
        self.rows += x.shape[0]
        return out
