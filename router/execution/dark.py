"""Resting in the dark: midpoint orders in the dark pools for what the lit orders do not
cover of the next slice plus a capped amount ahead of the schedule (midpoint fills save
the spread and print nowhere), split evenly among the pools whose minimum it meets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from router.domain import OrdType, Side, TimeInForce, VenueId, VenueKind
from router.execution.config import DarkRestConfig
from router.execution.ledger import ChildOrderLedger
from router.execution.signals import Screen
from router.execution.tactic import Decision, Tactic
from router.ports import MarketSnapshot, PassiveOrderContext


class DarkRestTactic(Tactic):
    """`pools`: the dark pools, in the ports' order; `min_qty`: each pool's minimum."""

    rests = True

    def __init__(
        self,
        config: DarkRestConfig,
        ledger: ChildOrderLedger,
        pools: Sequence[VenueId],
        min_qty: Mapping[VenueId, int],
    ) -> None:
        self.config = config
        self._ledger = ledger
        self._pools = tuple(pools)
        self._min = dict(min_qty)

    def on_decision(self, d: Decision) -> None:
        self._refresh(d.target_next, d.snap, d.screen)

    def _refresh(self, target_next: int, snap: MarketSnapshot, screen: Screen) -> None:
        ledger = self._ledger
        side = ledger.parent.side
        assert snap.bid_ticks is not None and snap.ask_ticks is not None
        # never cross in the dark at a worse price than the lit touch we would hit
        limit = ledger.within_limit(snap.bid_ticks if side is Side.SELL else snap.ask_ticks)
        if not ledger.price_ok(limit):
            return
        ahead_cap = int(self.config.max_ahead * ledger.parent.qty)
        uncovered = max(0, target_next - ledger.filled - ledger.working(VenueKind.LIT))
        total = ledger.round_lot(min(ledger.uncommitted, uncovered + ahead_cap))
        pools = list(self._pools)
        while pools:
            share = ledger.round_lot(total // len(pools))
            small = [v for v in pools if share < self._min.get(v, 0)]
            if not small:
                break
            pools.remove(max(small, key=lambda v: (self._min.get(v, 0), v)))
        spread = float(snap.ask_ticks - snap.bid_ticks)
        ours = snap.ask_depth if side is Side.SELL else snap.bid_depth
        other = snap.bid_depth if side is Side.SELL else snap.ask_depth
        for venue_id in pools:
            qty = ledger.round_lot(min(total // len(pools), ledger.uncommitted))
            pool_min = self._min.get(venue_id, 0)
            if qty <= 0:
                continue
            context = PassiveOrderContext(
                venue=venue_id,
                dark=True,
                improve=False,
                side=side,
                spread_ticks=spread,
                queue_ahead=0.0,
                qty=float(qty),
                depth_ours=float(ours),
                depth_other=float(other),
                venue_share=0.0,
                volume_rate=screen.volume_rate,
                vol_bps=screen.vol_bps,
                touch_imbalance=screen.touch_imbalance,
                momentum_bps=screen.momentum_bps,
                recent=screen.recent,
            )
            ledger.send(
                venue_id,
                qty,
                OrdType.LIMIT,
                TimeInForce.DAY,
                limit,
                snap,
                chosen=f"rest {qty} at the midpoint in {venue_id} (limit {limit})",
                inputs={
                    **context.as_inputs(),
                    "spread_ticks": spread,
                    "volume_rate": screen.volume_rate,
                    "qty": float(qty),
                    "limit_ticks": float(limit),
                    "pool_min_qty": float(pool_min),
                    "ahead_cap": float(ahead_cap),
                    "uncovered": float(uncovered),
                    "filled": float(ledger.filled),
                    "remaining": float(ledger.remaining),
                },
                alternatives={"dark_saving_vs_taking_ticks": 0.5 * spread},
                passive=True,
                min_qty=min(pool_min, qty),
                owner=self,
            )
