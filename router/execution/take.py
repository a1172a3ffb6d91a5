"""Taking liquidity: marketable IOC limit orders on the lit venues.

The schedule baselines (twap, vwap, pov, ac) work every slice this way: at each
decision, what the schedule asks that is neither done nor working goes to the lit
venues with the best fee-adjusted price, split by displayed depth; the further behind
schedule, the further past the touch an order may reach. Every strategy takes the same
way when it takes at all: a lit allocation's market part and the final sweep.
"""

from __future__ import annotations

from collections.abc import Mapping

from router.domain import OrdType, Side, TimeInForce, VenueId
from router.execution.config import TakeConfig
from router.execution.ledger import ChildOrderLedger
from router.execution.tactic import Decision, Tactic
from router.execution.venues import LitFees
from router.ports import MarketData


class TakeTactic(Tactic):
    def __init__(
        self,
        config: TakeConfig,
        ledger: ChildOrderLedger,
        market: MarketData,
        fees: Mapping[VenueId, LitFees],
    ) -> None:
        self.config = config
        self._ledger = ledger
        self._market = market
        self._fees = fees

    def on_decision(self, d: Decision) -> None:
        ledger = self._ledger
        want = ledger.round_lot(d.target - ledger.filled - ledger.in_flight)
        if want > 0:
            # reach further the more slices we are behind the schedule
            behind = int(want / d.slice_qty)
            why = "slice" if behind <= 1 else f"catch-up, {behind} slices"
            self.take(want, self.reach(behind), why)

    def reach(self, behind: int) -> int:
        """How far past the touch to reach when `behind` slices behind schedule."""
        return min(self.config.aggression_ticks + behind, self.config.sweep_ticks)

    def sweep(self, qty: int) -> None:
        """Take `qty` as the final sweep does: as far as it may reach, outside the
        participation cap."""
        self.take(qty, self.config.sweep_ticks, "final sweep", exempt=True)

    def take(self, qty: int, reach_ticks: int, why: str, exempt: bool = False) -> None:
        """Send `qty` as marketable IOC limits, best fee-adjusted venue first, each venue
        getting what its visible depth can absorb (the best venue takes the rest)."""
        ledger = self._ledger
        snap = self._market.snapshot()
        side = ledger.parent.side
        scores: dict[str, float] = {}
        touches: dict[str, int] = {}
        depths: dict[str, int] = {}
        for q in snap.venues:
            touch = q.ask_ticks if side is Side.BUY else q.bid_ticks
            if touch is None:
                continue
            fee = self._fees[q.venue].taker_fee if q.venue in self._fees else 0.0
            # fee-adjusted price in ticks, signed so that lower is better for both sides
            scores[q.venue] = side.sign * touch + fee / snap.tick_size
            touches[q.venue] = touch
            depths[q.venue] = q.ask_depth if side is Side.BUY else q.bid_depth
        if not scores:
            return  # no lit liquidity on our side right now: try again next interval
        ranked = sorted(scores, key=lambda v: (scores[v], v))
        left = qty
        plan: list[tuple[str, int]] = []
        for venue in ranked:
            take = min(left, ledger.round_lot(depths[venue]) if venue != ranked[-1] else left)
            if take > 0:
                plan.append((venue, take))
                left -= take
            if left == 0:
                break
        if left > 0:  # more than all the visible depth: the best venue gets the rest
            plan[0] = (plan[0][0], plan[0][1] + left) if plan else (ranked[0], left)
        alternatives = {f"{v}_cost_ticks": side.sign * scores[v] for v in ranked}
        limit_ticks = ledger.parent.limit_ticks
        for venue, take in plan:
            touch = touches[venue]
            limit = touch + side.sign * reach_ticks
            if limit_ticks is not None:
                if side.sign * (touch - limit_ticks) > 0:
                    continue  # the market is through our limit here: wait
                limit = ledger.within_limit(limit)
            ledger.send(
                venue,
                take,
                OrdType.LIMIT,
                TimeInForce.IOC,
                limit,
                snap,
                chosen=f"take {take} on {venue} ({why})",
                inputs={
                    "qty": float(take),
                    "limit_ticks": float(limit),
                    "touch_ticks": float(touch),
                    "venue_depth": float(depths[venue]),
                    "filled": float(ledger.filled),
                    "remaining": float(ledger.remaining),
                },
                alternatives=alternatives,
                aggressive=True,
                exempt=exempt,
                owner=self,
            )
