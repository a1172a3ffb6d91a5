"""Strategies: a slicer (how much by when) and a routing tactic (where and how).

The schedule baselines (twap, vwap, pov, ac) route as takers, so they differ only in
timing; `sor` follows the TWAP schedule with the smart router (passive, dark, taking by
expected cost, and blocks from a dealer panel by RFQ), so `sor` vs `twap` isolates what
routing is worth; `sor-lit` is `sor` without the dealers, so `sor` vs `sor-lit` isolates
what the RFQ venue is worth. `ml` is `sor-ml` with the learned slicer (an ONNX policy
setting the pace every 5 minutes) in place of TWAP, so `ml` vs `sor-ml` isolates what
the learned timing is worth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from router.domain import DomainError
from router.ports import MarketHistory, SlicerPolicy
from router.strategies.almgren_chriss import AcSlicer
from router.strategies.learned import PacedSlicer, served_slicer_policy
from router.strategies.pov import PovSlicer
from router.strategies.twap import TwapSlicer
from router.strategies.vwap import VwapSlicer

SlicerFactory = Callable[[MarketHistory, int, float], SlicerPolicy]


@dataclass(frozen=True, slots=True)
class StrategySpec:
    name: str
    routing: str  # router.engine.ROUTINGS
    description: str
    slicer: SlicerFactory
    rfq: bool = False  # may request quotes from the dealer panel
    # loads what the slicer needs (a model): run before any work, so that a missing or
    # corrupt artifact fails the command at once (models.artifacts.ModelError)
    preload: Callable[[], object] | None = None


STRATEGIES: dict[str, StrategySpec] = {
    s.name: s
    for s in (
        StrategySpec(
            "twap", "taker", "equal slices over the horizon", lambda h, q, t: TwapSlicer()
        ),
        StrategySpec(
            "vwap",
            "taker",
            "slices on the historical intraday volume profile",
            lambda h, q, t: VwapSlicer.from_history(h, q),
        ),
        StrategySpec(
            "pov",
            "taker",
            "a fixed share of the observed market volume",
            lambda h, q, t: PovSlicer.from_history(h, q),
        ),
        StrategySpec(
            "ac",
            "taker",
            "Almgren-Chriss optimal trajectory calibrated on history",
            lambda h, q, t: AcSlicer.from_history(h, q, t),
        ),
        StrategySpec(
            "sor",
            "smart",
            "TWAP schedule, Cont-Kukanov lit/dark placement, dealer RFQ for blocks",
            lambda h, q, t: TwapSlicer(),
            rfq=True,
        ),
        StrategySpec(
            "sor-ml",
            "ml",
            "sor's tactics guided by the learned models: fill model for the lit queues, "
            "dealer models for the RFQ panel",
            lambda h, q, t: TwapSlicer(),
            rfq=True,
        ),
        StrategySpec(
            "ml",
            "ml",
            "sor-ml's model-guided tactics on a learned schedule: an ONNX policy sets the "
            "pace every 5 minutes from what the market and its own fills show",
            lambda h, q, t: PacedSlicer(h, served_slicer_policy()),
            rfq=True,
            preload=served_slicer_policy,
        ),
        StrategySpec(
            "sor-lit",
            "smart",
            "sor without the dealers: lit and dark only",
            lambda h, q, t: TwapSlicer(),
        ),
    )
}


def strategy_spec(name: str) -> StrategySpec:
    try:
        return STRATEGIES[name]
    except KeyError:
        known = ", ".join(STRATEGIES)
        raise DomainError(f"unknown strategy {name!r} (known: {known})") from None
