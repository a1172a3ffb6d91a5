"""Strategies: a slicer (how much by when) and a tuple of tactics (where and how), each
with its own config (router.execution.config).

The schedule baselines (twap, vwap, pov, ac) route as takers, so they differ only in
timing; `sor` follows the TWAP schedule with the smart router (passive, dark, taking by
expected cost, and blocks from a dealer panel by RFQ), so `sor` vs `twap` isolates what
routing is worth; `sor-lit` is `sor` without the dealers, so `sor` vs `sor-lit` isolates
what the RFQ venue is worth. `ml` is `sor-ml` with the learned slicer (an ONNX policy
setting the pace every 5 minutes) in place of TWAP, so `ml` vs `sor-ml` isolates what
the learned timing is worth. `risk-bid` is the trader's first alternative to an
algorithm: the whole parent to the dealer panel at arrival, the rest by TWAP; what the
router must beat before it is worth its complexity.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from router.domain import DomainError
from router.execution.config import (
    DarkRestConfig,
    LitPostConfig,
    PlanConfig,
    RfqConfig,
    RiskBidConfig,
    TacticConfig,
    TakeConfig,
)
from router.ports import ExecutionState, MarketHistory, SlicerPolicy
from router.strategies.almgren_chriss import AcSlicer
from router.strategies.learned import EvenPace, PacedSlicer, Policy
from router.strategies.pov import PovSlicer
from router.strategies.twap import TwapSlicer
from router.strategies.vwap import VwapSlicer


class SlicerModels(Protocol):
    """What a slicer may ask of the model registry its composition root gives it
    (router.registry.ModelRegistry)."""

    def slicer_policy(self) -> Policy: ...


#: a parent's slicer from the market's history, the parent's quantity and horizon (s),
#: and the model registry
SlicerFactory = Callable[[MarketHistory, int, float, SlicerModels], SlicerPolicy]


class TwapOfRestSlicer:
    """TWAP of what is left: equal slices from the parent's start until fills off the
    schedule (a dealer's block) put the parent ahead of its line; from then on, what was
    left in equal slices over the time left. (`TwapSlicer` would wait, idle, until its
    line caught up with the block, and then trade the rest in the horizon's last part.)"""

    name = "twap-of-rest"

    def __init__(self) -> None:
        self._from: tuple[int, int] | None = None  # (time, filled) the line restarted at

    def target_filled(self, state: ExecutionState) -> int:
        parent = state.parent
        t0, done0 = self._from or (parent.start_ns, 0)
        end = parent.end_ns
        frac = min(1.0, max(0.0, (state.now_ns - t0) / (end - t0))) if end > t0 else 1.0
        line = done0 + (parent.qty - done0) * frac
        if state.filled_qty > line:
            self._from = (state.now_ns, state.filled_qty)
            return state.filled_qty
        return int(line)


# The tactics of each way of routing. `smart`: the lit allocation takes or posts each
# slice, dark orders rest for part of what is ahead, and blocks come from the dealer
# panel when there is one; `ml` is `smart` guided by the learned models (the fill model
# here, the dealer models in the panel selector the composition root gives it); the
# risk bid acts before the taker at its decision, so that the shares it asks for are
# held back from the taker.
TAKER: tuple[TacticConfig, ...] = (TakeConfig(),)
SMART: tuple[TacticConfig, ...] = (RfqConfig(), LitPostConfig(), DarkRestConfig())
ML: tuple[TacticConfig, ...] = (RfqConfig(), LitPostConfig(fill_model=True), DarkRestConfig())
RISK_BID: tuple[TacticConfig, ...] = (RiskBidConfig(), TakeConfig())
DEFAULT_PLAN = PlanConfig()


@dataclass(frozen=True, slots=True)
class StrategySpec:
    name: str
    # how the strategy routes (taker, smart, ml, risk-bid): it keys the router's random
    # stream (strategies that route alike draw alike), and `ml` asks for the
    # model-guided dealer panel
    routing: str
    description: str
    slicer: SlicerFactory
    tactics: tuple[TacticConfig, ...]
    # loads what the slicer needs (a model) from the registry: run before any work, so
    # that a missing or corrupt artifact fails the command at once
    # (models.serving.artifacts.ModelError)
    preload: Callable[[SlicerModels], object] | None = None
    plan: PlanConfig = DEFAULT_PLAN

    @property
    def rfq(self) -> bool:
        """May request quotes from the dealer panel."""
        return any(isinstance(t, RfqConfig | RiskBidConfig) for t in self.tactics)

    def with_tactic(self, config: TacticConfig) -> StrategySpec:
        """This strategy with `config` in place of its tactic of the same kind.

        Raises DomainError if it has none of that kind."""
        kind = type(config)
        if not any(type(t) is kind for t in self.tactics):
            raise DomainError(f"strategy {self.name!r} has no {kind.__name__} tactic")
        tactics = tuple(config if type(t) is kind else t for t in self.tactics)
        return dataclasses.replace(self, tactics=tactics)


STRATEGIES: dict[str, StrategySpec] = {
    s.name: s
    for s in (
        StrategySpec(
            "twap", "taker", "equal slices over the horizon", lambda h, q, t, m: TwapSlicer(), TAKER
        ),
        StrategySpec(
            "vwap",
            "taker",
            "slices on the historical intraday volume profile",
            lambda h, q, t, m: VwapSlicer.from_history(h, q),
            TAKER,
        ),
        StrategySpec(
            "pov",
            "taker",
            "a fixed share of the observed market volume",
            lambda h, q, t, m: PovSlicer.from_history(h, q),
            TAKER,
        ),
        StrategySpec(
            "ac",
            "taker",
            "Almgren-Chriss optimal trajectory calibrated on history",
            lambda h, q, t, m: AcSlicer.from_history(h, q, t),
            TAKER,
        ),
        StrategySpec(
            "sor",
            "smart",
            "TWAP schedule, Cont-Kukanov lit/dark placement, dealer RFQ for blocks",
            lambda h, q, t, m: TwapSlicer(),
            SMART,
        ),
        StrategySpec(
            "sor-ml",
            "ml",
            "sor's tactics guided by the learned models: fill model for the lit queues, "
            "dealer models for the RFQ panel",
            lambda h, q, t, m: TwapSlicer(),
            ML,
        ),
        StrategySpec(
            "ml",
            "ml",
            "sor-ml's model-guided tactics on a learned schedule: an ONNX policy sets the "
            "pace every 5 minutes from what the market and its own fills show",
            lambda h, q, t, m: _ml_slicer(h, m),
            ML,
            preload=lambda m: m.slicer_policy(),
        ),
        StrategySpec(
            "sor-lit",
            "smart",
            "sor without the dealers: lit and dark only",
            lambda h, q, t, m: TwapSlicer(),
            (LitPostConfig(), DarkRestConfig()),
        ),
        StrategySpec(
            "risk-bid",
            "risk-bid",
            "the whole parent out for quotes to the dealer panel at arrival, the best quotes "
            "hit while they beat the screen, the rest worked by TWAP over the time left",
            lambda h, q, t, m: TwapOfRestSlicer(),
            RISK_BID,
        ),
    )
}


def _ml_slicer(history: MarketHistory, models: SlicerModels) -> SlicerPolicy:
    """The learned pace if it is served (`learned.promotion`); else sor-ml's own TWAP
    schedule, so that `ml` without a proven policy is `sor-ml` exactly (PacedSlicer at
    a = 0 is the same schedule; TwapSlicer saves the observations)."""
    policy = models.slicer_policy()
    if isinstance(policy, EvenPace):
        return TwapSlicer()
    return PacedSlicer(history, policy)


def strategy_spec(name: str) -> StrategySpec:
    try:
        return STRATEGIES[name]
    except KeyError:
        known = ", ".join(STRATEGIES)
        raise DomainError(f"unknown strategy {name!r} (known: {known})") from None
