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
from router.domain import DealerId, Event, RfqRequested, ShadowAnswer, Side
from router.ports import PassiveOrderContext
from router.shadow import Challenger, challenger_of, clone_rng, compare_panel


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
    """`models`: the dealer models by name ("respond", "best"); with a challenger
    (router.shadow: a running service's view of the served models in shadow mode),
    each selection also works out the panel the challenger would ask (`take_shadow`)."""

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
        self.models = models
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
        self._shadow: ShadowAnswer | None = None

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
        scores say so (`fallback` 1, with the heuristic's own scores).

        With a challenger (shadow mode), the panel its models would ask on the same rows
        and random numbers is worked out too and kept for `take_shadow`."""
        if n < 1:
            raise ValueError(f"a panel needs at least one dealer, asked for {n}")
        market = self._market()
        if self._axes is not None:
            self.desk.set_axes(self._axes())
        dealers = list(self.desk.dealers)
        n = min(n, len(dealers))
        usual = self.desk.usual()
        top = list(usual[:n])
        outside_top = [d for d in dealers if d not in top]
        # the top n as a panel, then each other dealer in the place of the n-th
        x = self.desk.rows(qty, side, top, market, instead_of_last=outside_top, two_sided=two_sided)
        order = [*top, *outside_top]
        challenger = challenger_of(self.models)
        # shadow mode: the challenger explores with the champion's random numbers, drawn
        # from a copy of the stream taken now
        rng_state = None if challenger is None else rng.bit_generator.state
        best = self.best.predict(x).tolist()  # one call for every candidate
        p_best = dict(zip(order, best, strict=True))
        scores = {key: round(p_best[d], 4) for d, key in self._score_keys.items()}
        why = self._withdrawn() if self._withdrawn is not None else ""
        if why:
            chosen, heuristic = self.desk.tracker.select(side, qty, n, rng, two_sided)
            explored = heuristic.pop("explore")
            scores.update({f"heuristic_{d}": v for d, v in heuristic.items()})
            # the rows already built (each in a panel like the one asked)
            row_of = {d: i for i, d in enumerate(order)}
            p_resp = self.respond.predict(x[[row_of[d] for d in chosen]])
            p_any = 1.0 - float(np.prod(1.0 - p_resp))
        else:
            chosen, p_any, explored = self._choose(x, order, best, n, rng, self.respond)
        scores["p_any_quote"] = round(p_any, 4)
        scores["explore"] = explored
        if self._monitored:
            asked = self.desk.rows(qty, side, chosen, market, two_sided=two_sided)
            p_respond, p_best_asked = self.respond.predict(asked), self.best.predict(asked)
            for i, d in enumerate(chosen):
                scores[f"p_respond_{d}"] = round(float(p_respond[i]), 4)
                scores[f"p_best_asked_{d}"] = round(float(p_best_asked[i]), 4)
        if why:
            scores["fallback"] = 1.0
        if challenger is not None:
            # against what was acted on: the heuristic's panel while the models are out
            assert rng_state is not None
            self._shadow = self._shadow_panel(
                challenger, x, order, n, clone_rng(rng_state), (chosen, p_best, p_any)
            )
        return chosen, scores

    def _choose(
        self,
        x: np.ndarray,
        order: list[DealerId],
        best: list[float],
        n: int,
        rng: np.random.Generator,
        respond: Classifier,
    ) -> tuple[list[DealerId], float, float]:
        """The panel by P(best) (`best`, of the rows `x` of the dealers in `order`), one
        seat sometimes explored; its P(any quote) by `respond`; 1.0 if it explored."""
        p_best = dict(zip(order, best, strict=True))
        dealers = list(self.desk.dealers)
        ranked = sorted(dealers, key=lambda d: (-p_best[d], d))
        chosen = ranked[:n]
        outside = ranked[n:]
        explored = 0.0
        if outside and rng.random() < self.explore:
            tracker = self.desk.tracker
            weights = np.array([1.0 / (1.0 + tracker.history[d].asked) for d in outside])
            pick = outside[int(rng.choice(len(outside), p=weights / weights.sum()))]
            chosen = [*chosen[:-1], pick]
            explored = 1.0
        # the rows already built (each in a panel like the one asked), not a new scoring
        row_of = {d: i for i, d in enumerate(order)}
        p_resp = respond.predict(x[[row_of[d] for d in chosen]])
        return chosen, 1.0 - float(np.prod(1.0 - p_resp)), explored

    def _shadow_panel(
        self,
        challenger: Challenger[Mapping[str, Classifier]],
        x: np.ndarray,
        order: list[DealerId],
        n: int,
        rng: np.random.Generator,
        champion: tuple[list[DealerId], dict[DealerId, float], float],
    ) -> ShadowAnswer:
        """The panel the challenger's models would ask on the same rows and random
        numbers, compared with the champion's. The latency is the challenger's two
        model calls."""
        models = challenger.model
        start = challenger.timer()
        best = models["best"].predict(x).tolist()
        spent = challenger.timer() - start
        # the choice itself, timed apart: the same code as the champion's, not the model
        respond = _Timed(models["respond"], challenger.timer)
        chosen, p_any, _ = self._choose(x, order, best, n, rng, respond)
        return compare_panel(
            challenger,
            champion,
            (chosen, dict(zip(order, best, strict=True)), p_any),
            spent + respond.spent,
        )

    def take_shadow(self) -> ShadowAnswer | None:
        """The comparison of the last selection, once (router.shadow.ShadowSource)."""
        answer, self._shadow = self._shadow, None
        return answer

    def observe(self, event: Event) -> None:
        self.desk.observe(event, self._mid_at, self._market_for(event))
        self.desk.refresh()  # now, as the event arrives, rather than in the next decision

    def _market_for(self, event: Event) -> MarketContext | None:
        return self._market() if isinstance(event, RfqRequested) else None


class _Timed:
    """A classifier whose calls' wall time adds up in `spent` (seconds)."""

    def __init__(self, model: Classifier, timer: Callable[[], float]) -> None:
        self._model = model
        self._timer = timer
        self.spent = 0.0

    def predict(self, x: np.ndarray) -> np.ndarray:
        start = self._timer()
        try:
            return self._model.predict(x)
        finally:
            self.spent += self._timer() - start


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
