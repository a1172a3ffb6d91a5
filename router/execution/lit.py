"""Posting on the lit venues: each decision splits the next slice between taking now
and resting passively (join the touch, or improve it by a tick) on each lit venue by
the Cont-Kukanov expected cost (router.allocation), with outflows learned from its own
passive fills, and with `LitPostConfig.fill_model` the outflow priors from the learned
fill model."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from router.allocation import (
    Allocation,
    AllocationProblem,
    OutflowEstimator,
    PassiveOption,
    allocate,
)
from router.domain import (
    NANOS_PER_SECOND,
    Nanos,
    OrdType,
    ShadowAnswer,
    Side,
    TimeInForce,
    VenueId,
    VenueKind,
)
from router.execution.config import LitPostConfig
from router.execution.ledger import ChildOrderLedger, WorkingChild
from router.execution.signals import Screen
from router.execution.tactic import Decision, Tactic
from router.execution.take import TakeTactic
from router.execution.venues import LitFees
from router.ports import FillModel, MarketSnapshot, PassiveOrderContext, VenueQuote
from router.shadow import Challenger, Split, challenger_of, clone_rng, compare_split

# each lit venue with a price on our side: (quote, fees, touch, queue ahead, share of our
# side's depth)
_Live = tuple[VenueQuote, LitFees, int, int, float]


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
        takers: list[float] = []
        other_total = sum((q.bid_depth if side is Side.SELL else q.ask_depth) for q in snap.venues)
        best_ours = snap.ask_ticks if side is Side.SELL else snap.bid_ticks
        contexts: dict[tuple[str, str], PassiveOrderContext] = {}
        live: list[_Live] = []
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
        joins = [contexts[(q.venue, "join")] for q, *_ in live]
        volume_priors = [0.5 * rate * share for *_, share in live]
        p_fill = _ask(self._fill_model, joins)
        options = self._options(live, self._priors(joins, volume_priors, p_fill), snap)
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
        challenger = None if self._fill_model is None else challenger_of(self._fill_model)
        # shadow mode: the challenger's split draws the champion's outflow samples from a
        # copy of the random stream taken now
        rng_state = None if challenger is None else self._rng.bit_generator.state
        best, candidates = allocate(problem, self._rng, keep=8)
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
        if challenger is None:
            self._send(best, behind, snap, contexts, inputs, alternatives)
            return
        assert rng_state is not None
        answer = self._shadow(
            challenger, joins, volume_priors, live, snap, problem, rng_state, (best, p_fill)
        )
        ledger.begin_shadow(answer)
        try:
            self._send(best, behind, snap, contexts, inputs, alternatives)
        finally:
            ledger.end_shadow(answer)

    def _send(
        self,
        best: Allocation,
        behind: float,
        snap: MarketSnapshot,
        contexts: Mapping[tuple[str, str], PassiveOrderContext],
        inputs: dict[str, float],
        alternatives: dict[str, float],
    ) -> None:
        """Send the allocation: its market part through the taker, then each post."""
        ledger = self._ledger
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

    def _options(
        self, live: Sequence[_Live], priors: Sequence[float], snap: MarketSnapshot
    ) -> list[PassiveOption]:
        """Joining and improving each venue's touch, with the outflow expected there over
        the interval (`priors`: each venue's rate before its own fills say more)."""
        assert snap.bid_ticks is not None and snap.ask_ticks is not None
        ledger = self._ledger
        side = ledger.parent.side
        options = []
        for (q, fees, touch, queue, _), prior in zip(live, priors, strict=True):
            mean = self._outflow.rate(q.venue, prior) * self._interval_s
            maker = fees.maker_fee / snap.tick_size
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
        return options

    def outflow_priors(
        self, joins: Sequence[PassiveOrderContext], volume_priors: Sequence[float]
    ) -> list[float]:
        """Each venue's expected outflow rate (shares/s) before its own fills say more:
        from the volume, or from the fill model if the tactic has one, which scores
        every queue worth asking about in one call (`_priors`)."""
        return self._priors(joins, volume_priors, _ask(self._fill_model, joins))

    def _priors(
        self,
        joins: Sequence[PassiveOrderContext],
        volume_priors: Sequence[float],
        p_fill: Sequence[float] | None,
    ) -> list[float]:
        """The priors from the fill model's P(fill) of each join with somebody ahead
        (`_ask`; None: the volume's). An exponential outflow D over the interval fills
        an order behind Q shares with P(D > Q) = exp(-Q / mean), so the model's P(fill)
        of joining the queue gives mean = -Q / ln P."""
        if p_fill is None:
            return list(volume_priors)
        answers = iter(p_fill)
        priors = []
        for join, prior in zip(joins, volume_priors, strict=True):
            if join.queue_ahead > 0:
                p = next(answers)
                if 0.01 < p < 0.99:
                    prior = -join.queue_ahead / np.log(p) / self._interval_s
            priors.append(prior)
        return priors

    def _shadow(
        self,
        challenger: Challenger[FillModel],
        joins: Sequence[PassiveOrderContext],
        volume_priors: Sequence[float],
        live: Sequence[_Live],
        snap: MarketSnapshot,
        problem: AllocationProblem,
        rng_state: Mapping[str, Any],
        champion: tuple[Allocation, Sequence[float] | None],
    ) -> ShadowAnswer:
        """The split the challenger's P(fill) would make of the same decision, on the
        champion's outflow samples (`rng_state`: the random stream before the champion
        drew them), compared with the champion's (router.shadow). The latency is the
        challenger model's call alone."""
        start = challenger.timer()
        p_fill = _ask(challenger.model, joins)
        latency_s = challenger.timer() - start  # the model's call: what it would cost
        options = self._options(live, self._priors(joins, volume_priors, p_fill), snap)
        theirs = dataclasses.replace(
            problem, options=tuple(o for o in options if self._ledger.price_ok(o.price_ticks))
        )
        if theirs == problem:
            best = champion[0]  # the same problem on the same draws: the same split
        else:
            best, _ = allocate(theirs, clone_rng(rng_state), keep=1)
        asked = [j.venue for j in joins if j.queue_ahead > 0]
        return compare_split(
            challenger,
            (_split(champion[0]), dict(zip(asked, champion[1] or (), strict=False))),
            (_split(best), dict(zip(asked, p_fill or (), strict=False))),
            latency_s,
        )


def _ask(model: FillModel | None, joins: Sequence[PassiveOrderContext]) -> list[float] | None:
    """The fill model's P(fill) of each join with somebody ahead, in one call (nobody
    ahead: nothing to learn); None without a model or such a join."""
    asked = [j for j in joins if j.queue_ahead > 0]
    if model is None or not asked:
        return None
    return model.p_fill(asked)


def _split(allocation: Allocation) -> Split:
    return Split(
        allocation.market_qty,
        {f"{o.venue} {o.level}": q for o, q in allocation.passive},
        allocation.expected_cost_ticks,
    )
