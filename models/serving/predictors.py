"""The learned models behind the router's ports: `FillPredictor` (router.ports.FillModel)
and `MlPanel` (router.ports.PanelSelector) for `ml` routing.

`MlPanel` ranks the dealers by the dealer models' P(best quote) and asks the top ones;
exploration, as in the heuristic selector, keeps data coming on the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from models.serving.artifacts import MODELS_DIR, ServedModel, load_family
from models.serving.desk import DeskState, MidAt
from models.serving.features import MarketContext, fill_order_columns, fill_recent_columns
from router.domain import DealerId, Event, RfqRequested, Side
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
        # `fill_row` of each, the recent past's columns built once per decision
        recent: dict[int, list[float]] = {}
        rows = []
        for o in orders:
            tail = recent.get(id(o.recent))
            if tail is None:
                tail = recent[id(o.recent)] = fill_recent_columns(o.recent)
            rows.append(fill_order_columns(o) + tail)
        return self.model.predict(np.array(rows)).tolist()


class Classifier(Protocol):
    """What the panel asks of a dealer model: P(yes) per row (a ServedModel, or a
    running service's view of the one served now, router.registry.LiveModels)."""

    def predict(self, x: np.ndarray) -> np.ndarray: ...


class MlPanel:
    def __init__(
        self,
        models: Mapping[str, Classifier],
        desk: DeskState,
        market: Callable[[], MarketContext],
        mid_at: MidAt,
        *,
        explore: float = 0.1,
        axes: Callable[[], dict[DealerId, float]] | None = None,
        withdrawn: Callable[[], str] | None = None,
        monitored: bool = False,
    ) -> None:
        """`withdrawn`: why the models are withdrawn now ("" while they choose; a live
        desk's drift fallback, router.registry.LiveModels.withdrawal). `monitored`: also
        score the panel as asked, for a live desk's drift monitor (below)."""
        self.respond = models["respond"]
        self.best = models["best"]
        self.desk = desk
        self._market = market
        self._mid_at = mid_at
        self.explore = explore
        self._axes = axes  # the dealers' axe feed, read at each selection
        self._withdrawn = withdrawn
        self._monitored = monitored
        self._score_keys = {d: f"p_best_{d}" for d in desk.dealers}

    def select(
        self, side: Side, qty: int, n: int, rng: np.random.Generator, two_sided: bool = False
    ) -> tuple[list[DealerId], dict[str, float]]:
        """Rank every dealer by its modelled P(best quote) in a panel of its own size
        (with the heuristic's favourites as the others, so the rows look like those
        the model learned from), and ask the top `n`, one seat sometimes explored.

        `monitored`, the panel asked is scored once more, as one panel (the rows that
        training builds of a request, models/training/dealer_data.py): the scores keep
        each asked dealer's P(respond) and P(best) there (`p_respond_<d>`,
        `p_best_asked_<d>`), which the live desk's drift monitor holds against the
        answers (router.drift). The candidates' own P(best) each come from a panel of
        its own, and need not add up over the panel asked.

        Models withdrawn (`withdrawn`), the heuristic's history of the same dealers
        (the desk's tracker, dealers.panel.HeuristicPanel) picks the panel, as the
        heuristic router would; the models still score it, in the shadow, and the
        scores say so (`fallback` 1, with the heuristic's own scores)."""
        if n < 1:
            raise ValueError(f"a panel needs at least one dealer, asked for {n}")
        market = self._market()
        if self._axes is not None:
            self.desk.set_axes(self._axes())
        tracker = self.desk.tracker
        dealers = list(self.desk.dealers)
        n = min(n, len(dealers))
        usual = self.desk.usual()
        top = list(usual[:n])
        outside_top = [d for d in dealers if d not in top]
        # the top n as a panel, then each other dealer in the place of the n-th
        x = self.desk.rows(qty, side, top, market, instead_of_last=outside_top, two_sided=two_sided)
        order = [*top, *outside_top]
        best = self.best.predict(x).tolist()  # one call for every candidate
        p_best = dict(zip(order, best, strict=True))
        scores = {key: round(p_best[d], 4) for d, key in self._score_keys.items()}
        why = self._withdrawn() if self._withdrawn is not None else ""
        if why:
            chosen, heuristic = tracker.select(side, qty, n, rng, two_sided)
            explored = heuristic.pop("explore")
            scores.update({f"heuristic_{d}": v for d, v in heuristic.items()})
        else:
            ranked = sorted(dealers, key=lambda d: (-p_best[d], d))
            chosen = ranked[:n]
            outside = ranked[n:]
            explored = 0.0
            if outside and rng.random() < self.explore:
                weights = np.array([1.0 / (1.0 + tracker.history[d].asked) for d in outside])
                pick = outside[int(rng.choice(len(outside), p=weights / weights.sum()))]
                chosen = [*chosen[:-1], pick]
                explored = 1.0
        # the rows already built (each in a panel like the one asked), not a new scoring
        row_of = {d: i for i, d in enumerate(order)}
        p_resp = self.respond.predict(x[[row_of[d] for d in chosen]])
        scores["p_any_quote"] = round(1.0 - float(np.prod(1.0 - p_resp)), 4)
        scores["explore"] = explored
        if self._monitored:
            asked = self.desk.rows(qty, side, chosen, market, two_sided=two_sided)
            p_respond, p_best_asked = self.respond.predict(asked), self.best.predict(asked)
            for i, d in enumerate(chosen):
                scores[f"p_respond_{d}"] = round(float(p_respond[i]), 4)
                scores[f"p_best_asked_{d}"] = round(float(p_best_asked[i]), 4)
        if why:
            scores["fallback"] = 1.0
        return chosen, scores

    def observe(self, event: Event) -> None:
        self.desk.observe(event, self._mid_at, self._market_for(event))
        self.desk.refresh()  # now, as the event arrives, rather than in the next decision

    def _market_for(self, event: Event) -> MarketContext | None:
        return self._market() if isinstance(event, RfqRequested) else None


def warm_up(models: Mapping[str, ServedModel]) -> None:
    """Run the compiled code of an ml decision once, on made-up input: with an empty
    numba cache (a fresh install) a live service's first ml decision would compile it
    and stall the event loop for a second or more. Counts nothing: the models' clip
    counters and rows are untouched."""
    for model in models.values():
        forest, clip = model.forest, model.clipper
        x = np.zeros((1, forest.n_features))
        forest.clipped_predict(x, clip.lo, clip.hi, np.zeros_like(clip.counts))
    # a panel and one candidate for its last seat: the desk's feature rows and the
    # P(best) integrals behind them
    desk = DeskState(("A", "B", "C"), "warm-up", adv=1e6)
    market = MarketContext(vol_bps=1.0, spread_bps=1.0, tod=0.5, mid=100.0)
    desk.rows(1_000, Side.BUY, desk.dealers[:2], market, instead_of_last=desk.dealers[2:])
