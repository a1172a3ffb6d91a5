"""Posting on the lit venues: each decision splits the next slice between taking now
and resting passively (join the touch, or improve it by a tick) on each lit venue by
the Cont-Kukanov expected cost (router.allocation), with outflows learned from its own
passive fills, and with `LitPostConfig.fill_model` the outflow priors from the learned
fill model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from router.allocation import AllocationProblem, OutflowEstimator, PassiveOption, allocate
from router.domain import NANOS_PER_SECOND, Nanos, OrdType, Side, TimeInForce, VenueId, VenueKind
from router.execution.config import LitPostConfig
from router.execution.ledger import ChildOrderLedger, WorkingChild
from router.execution.signals import Screen
from router.execution.tactic import Decision, Tactic
from router.execution.take import TakeTactic
from router.execution.venues import LitFees
from router.ports import FillModel, MarketSnapshot, PassiveOrderContext, VenueQuote


class LitPostTactic(Tactic):
    """`taker` takes the allocation's market part; `rng` draws the allocation's
    outflow samples; `interval_s` is the decision interval the outflows are over."""

    rests = True

    def __init__(
        self,
        config: LitPostConfig,
        ledger: ChildOrderLedger,
        fees: Mapping[VenueId, LitFees],
        taker: TakeTactic,
        rng: np.random.Generator,
        interval_s: float,
        fill_model: FillModel | None = None,
    ) -> None:
        self.config = config
        self._ledger = ledger
        self._fees = fees
        self._taker = taker
        self._rng = rng
        self._interval_s = interval_s
        self._fill_model = fill_model
        self._outflow = OutflowEstimator()

    def on_decision(self, d: Decision) -> None:
        ledger = self._ledger
        want = ledger.round_lot(d.target_next - d.filled - ledger.working(VenueKind.LIT))
        if want > 0:
            self._allocate(want, d.behind, d.snap, d.screen)

    def on_child_closed(self, child: WorkingChild, ts_ns: Nanos) -> None:
        """A posted order's life is a sample of its queue's outflow (the allocation's
        market part is the taker's child, not this tactic's)."""
        rested_s = (ts_ns - child.sent_ns) / NANOS_PER_SECOND
        self._outflow.observe(
            child.order.venue, child.queue_ahead, child.order.qty, child.filled, rested_s
        )

    def _allocate(self, want: int, behind: float, snap: MarketSnapshot, screen: Screen) -> None:
        cfg = self.config
        ledger = self._ledger
        side = ledger.parent.side
        assert snap.bid_ticks is not None and snap.ask_ticks is not None
        tick = snap.tick_size
        spread = snap.ask_ticks - snap.bid_ticks
        half = 0.5 * spread
        rate = screen.volume_rate
        depth_total = sum((q.ask_depth if side is Side.SELL else q.bid_depth) for q in snap.venues)
        options: list[PassiveOption] = []
        takers: list[float] = []
        other_total = sum((q.bid_depth if side is Side.SELL else q.ask_depth) for q in snap.venues)
        best_ours = snap.ask_ticks if side is Side.SELL else snap.bid_ticks
        contexts: dict[tuple[str, str], PassiveOrderContext] = {}
        # (quote, fees, touch, queue ahead, share of our side's depth) of each venue
        # with a price on our side
        live: list[tuple[VenueQuote, LitFees, int, int, float]] = []
        for q in snap.venues:
            fees = self._fees.get(q.venue, LitFees(0.0, 0.0))
            takers.append(fees.taker_fee)
            # we rest on the far side of a taker: a sell rests on the ask
            touch = q.ask_ticks if side is Side.SELL else q.bid_ticks
            queue = q.ask_qty if side is Side.SELL else q.bid_qty
            depth = q.ask_depth if side is Side.SELL else q.bid_depth
            if touch is None:
                continue
            share = depth / depth_total if depth_total > 0 else 1.0 / len(snap.venues)
            for level in ("join", "improve"):
                contexts[(q.venue, level)] = PassiveOrderContext(
                    venue=q.venue,
                    dark=False,
                    improve=level == "improve",
                    side=side,
                    spread_ticks=float(spread),
                    queue_ahead=float(queue if level == "join" else 0),
                    qty=float(want),
                    depth_ours=float(depth_total),
                    depth_other=float(other_total),
                    venue_share=share,
                    volume_rate=rate,
                    vol_bps=screen.vol_bps,
                    touch_gap_ticks=float(side.sign * (best_ours - touch))
                    - (1.0 if level == "improve" else 0.0),
                    touch_imbalance=screen.touch_imbalance,
                    momentum_bps=screen.momentum_bps,
                    recent=screen.recent,
                )
            live.append((q, fees, touch, queue, share))
        # half the traded volume hits each side; the venue's share of it by depth
        priors = self.outflow_priors(
            [contexts[(q.venue, "join")] for q, *_ in live],
            [0.5 * rate * share for *_, share in live],
        )
        for (q, fees, touch, queue, _), prior in zip(live, priors, strict=True):
            mean = self._outflow.rate(q.venue, prior) * self._interval_s
            maker = fees.maker_fee / tick
            # our price vs the consolidated mid, in ticks earned per share (sign-aware)
            earn_join = side.sign * ((snap.bid_ticks + snap.ask_ticks) / 2 - touch)
            options.append(
                PassiveOption(
                    q.venue, "join", ledger.within_limit(touch), queue, mean, maker - earn_join
                )
            )
            better = touch + 1 if side is Side.BUY else touch - 1
            crosses = better >= snap.ask_ticks if side is Side.BUY else better <= snap.bid_ticks
            if not crosses:
                earn = earn_join - 1.0
                options.append(
                    PassiveOption(
                        q.venue, "improve", ledger.within_limit(better), 0, mean, maker - earn
                    )
                )
        taker = min(takers) / tick if takers else 0.0
        market_cost = half + taker
        problem = AllocationProblem(
            slice_qty=want,
            max_qty=max(0, ledger.round_lot(ledger.uncommitted)),
            market_cost_ticks=market_cost,
            under_cost_ticks=market_cost + cfg.urgency_ticks + cfg.urgency_per_slice_ticks * behind,
            over_cost_ticks=cfg.ahead_cost_ticks,
            lot=ledger.lot,
            options=tuple(o for o in options if ledger.price_ok(o.price_ticks)),
        )
        best, candidates = allocate(problem, self._rng)
        alternatives = {
            f"{c.label}: take {c.market_qty}, post {sum(q for _, q in c.passive)}": (
                c.expected_cost_ticks
            )
            for c in candidates[:8]
        }
        inputs = {
            "slice_qty": float(want),
            "behind_slices": round(behind, 3),
            "spread_ticks": float(spread),
            "market_cost_ticks": market_cost,
            "under_cost_ticks": problem.under_cost_ticks,
            "volume_rate": rate,
            "filled": float(ledger.filled),
            "remaining": float(ledger.remaining),
            "expected_fill": best.expected_fill,
            **{f"{o.venue}_{o.level}_outflow": o.outflow_mean for o in problem.options},
            **{
                f"{o.venue}_queue": float(o.queue_ahead)
                for o in problem.options
                if o.level == "join"
            },
        }
        if best.market_qty > 0:
            taking = self._taker
            taking.take(best.market_qty, taking.reach(int(behind)), f"{best.label}: take part")
        for option, qty in best.passive:
            qty = min(qty, ledger.round_lot(ledger.uncommitted))
            if qty <= 0:
                break
            ledger.send(
                option.venue,
                qty,
                OrdType.LIMIT,
                TimeInForce.DAY,
                option.price_ticks,
                snap,
                chosen=(
                    f"post {qty} on {option.venue} at {option.price_ticks} "
                    f"({option.level}; {best.label})"
                ),
                inputs={
                    **inputs,
                    **contexts[(option.venue, option.level)].as_inputs(),
                    "qty": float(qty),
                    "limit_ticks": float(option.price_ticks),
                },
                alternatives=alternatives,
                passive=True,
                queue_ahead=option.queue_ahead,
                owner=self,
            )

    def outflow_priors(
        self, joins: Sequence[PassiveOrderContext], volume_priors: Sequence[float]
    ) -> list[float]:
        """Each venue's expected outflow rate (shares/s) before its own fills say more:
        from the volume, or from the fill model if the tactic has one, which scores
        every queue worth asking about in one call. An exponential outflow D over the
        interval fills an order behind Q shares with P(D > Q) = exp(-Q / mean), so the
        model's P(fill) of joining the queue gives mean = -Q / ln P."""
        asked = [j for j in joins if j.queue_ahead > 0]  # nobody ahead: nothing to learn
        if self._fill_model is None or not asked:
            return list(volume_priors)
        p_fill = iter(self._fill_model.p_fill(asked))
        priors = []
        for join, prior in zip(joins, volume_priors, strict=True):
            if join.queue_ahead > 0:
                p = next(p_fill)
                if 0.01 < p < 0.99:
                    prior = -join.queue_ahead / np.log(p) / self._interval_s
            priors.append(prior)
        return priors
