"""The learned models behind the router's ports: `FillPredictor` (router.ports.FillModel)
and `MlPanel` (router.ports.PanelSelector) for `ml` routing.

`MlPanel` asks the dealer models, for each candidate panel, each dealer's P(quote in
time) and P(best quote), and asks the smallest panel of the likeliest winners whose
chance that somebody quotes reaches `min_any_response`: every extra dealer asked is one
more that learns the order (leakage), so the panel is as small as the models say is
safe. Exploration, as in the heuristic selector, keeps data coming on the others.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from models.artifacts import MODELS_DIR, ServedModel, load_family
from models.desk import DeskState, MidAt
from models.features import MarketContext, fill_row
from router.domain import DealerId, Event, Side
from router.ports import PassiveOrderContext


class FillPredictor:
    def __init__(self, model: ServedModel) -> None:
        self.model = model

    @classmethod
    def load(cls, directory: Path = MODELS_DIR) -> FillPredictor:
        return cls(load_family("fill", directory)["passive"])

    def p_fill(self, orders: Sequence[PassiveOrderContext]) -> list[float]:
        if not orders:
            return []
        x = np.array([fill_row(o) for o in orders])
        return [float(p) for p in self.model.predict(x)]


class MlPanel:
    def __init__(
        self,
        models: dict[str, ServedModel],
        desk: DeskState,
        market: Callable[[], MarketContext],
        mid_at: MidAt,
        *,
        min_panel: int = 2,
        min_any_response: float = 0.97,
        explore: float = 0.1,
    ) -> None:
        self.respond = models["respond"]
        self.best = models["best"]
        self.desk = desk
        self._market = market
        self._mid_at = mid_at
        self.min_panel = min_panel
        self.min_any_response = min_any_response
        self.explore = explore

    @classmethod
    def load(
        cls,
        desk: DeskState,
        market: Callable[[], MarketContext],
        mid_at: MidAt,
        directory: Path = MODELS_DIR,
    ) -> MlPanel:
        return cls(load_family("dealer", directory), desk, market, mid_at)

    def copy(self) -> MlPanel:
        twin = copy.copy(self)
        twin.desk = copy.deepcopy(self.desk)
        return twin

    def score(
        self, side: Side, qty: int, panel: Sequence[DealerId], market: MarketContext
    ) -> tuple[np.ndarray, np.ndarray]:
        """(P(quote in time), P(best quote)) of each dealer if `panel` is asked."""
        rows, _ = self.desk.rows(qty, side, panel, market)
        x = np.array([rows[d] for d in panel])
        return self.respond.predict(x), self.best.predict(x)

    def select(
        self, side: Side, qty: int, n: int, rng: np.random.Generator
    ) -> tuple[list[DealerId], dict[str, float]]:
        if n < 1:
            raise ValueError(f"a panel needs at least one dealer, asked for {n}")
        market = self._market()
        dealers = list(self.desk.dealers)
        _, p_best_all = self.score(side, qty, dealers, market)
        ranked = [d for _, d in sorted(zip(-p_best_all, dealers, strict=True))]
        n = min(n, len(ranked))
        chosen = ranked[:n]
        scores: dict[str, float] = {}
        for k in range(min(self.min_panel, n), n + 1):
            panel = ranked[:k]
            p_resp, _ = self.score(side, qty, panel, market)
            p_any = 1.0 - float(np.prod(1.0 - p_resp))
            scores[f"p_any_{k}"] = round(p_any, 4)
            chosen = panel
            if p_any >= self.min_any_response:
                break
        outside = [d for d in ranked if d not in chosen]
        explored = 0.0
        if outside and rng.random() < self.explore:
            weights = np.array([1.0 / (1.0 + self.desk.tracker.history[d].asked) for d in outside])
            pick = outside[int(rng.choice(len(outside), p=weights / weights.sum()))]
            chosen = [*chosen[:-1], pick] if len(chosen) > 1 else [*chosen, pick]
            explored = 1.0
        for d, p in zip(dealers, p_best_all, strict=True):
            scores[f"p_best_{d}"] = round(float(p), 4)
        scores["explore"] = explored
        return chosen, scores

    def observe(self, event: Event) -> None:
        self.desk.observe(event, self._mid_at, self._market_for(event))

    def _market_for(self, event: Event) -> MarketContext | None:
        from router.domain import RfqRequested

        return self._market() if isinstance(event, RfqRequested) else None
