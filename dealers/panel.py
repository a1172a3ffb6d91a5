"""Heuristic panel selection from the desk's own RFQ history (`router.ports.PanelSelector`).

Each dealer gets a score from what the desk has seen of it, recent RFQs weighing more
(counts decay by `decay` per RFQ):

    score = response rate * hit ratio - price_weight * mean distance of its quotes
            from the best quote of the same RFQ (bps)

with a prior for each term, so a dealer with no history starts at the prior rather than
at zero. The best `n` are asked, except that with probability `explore` the last seat
goes to a dealer outside the top n, drawn with weight 1 / (1 + times asked): rarely
asked dealers keep producing data. The models issue replaces the score with learned
probabilities; selection and exploration stay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from router.domain import (
    DealerId,
    Event,
    Quote,
    QuoteReceived,
    RfqEnded,
    RfqId,
    RfqRequested,
    RfqTraded,
    Side,
)


@dataclass
class DealerHistory:
    asked: float = 0.0
    quotes: float = 0.0
    wins: float = 0.0
    distance_sum: float = 0.0  # bps behind the best quote, summed over its quotes
    distance_n: float = 0.0


@dataclass
class _Open:
    side: Side | None
    dealers: tuple[DealerId, ...]
    quotes: dict[DealerId, Quote] = field(default_factory=dict)
    traded_side: Side | None = None


class HeuristicPanel:
    def __init__(
        self,
        dealers: Sequence[str],
        *,
        explore: float = 0.1,
        decay: float = 0.995,
        price_weight: float = 0.02,
        prior_response: float = 0.8,
        prior_hit: float = 0.25,
        prior_distance_bps: float = 5.0,
        prior_weight: float = 2.0,
    ) -> None:
        if not dealers:
            raise ValueError("a panel selector needs at least one dealer")
        if not 0.0 <= explore <= 1.0:
            raise ValueError(f"explore must be within [0, 1], got {explore}")
        self.dealers = tuple(DealerId(d) for d in dealers)
        self.explore = explore
        self.decay = decay
        self.price_weight = price_weight
        self._prior = (prior_response, prior_hit, prior_distance_bps, prior_weight)
        self.history: dict[DealerId, DealerHistory] = {d: DealerHistory() for d in self.dealers}
        self._open: dict[RfqId, _Open] = {}

    @classmethod
    def from_log(
        cls, dealers: Sequence[str], events: Iterable[Event], **kw: float
    ) -> HeuristicPanel:
        """A selector that has already seen a log (the desk's history)."""
        panel = cls(dealers, **kw)
        for e in events:
            panel.observe(e)
        return panel

    def copy(self) -> HeuristicPanel:
        twin = HeuristicPanel(self.dealers, explore=self.explore, decay=self.decay)
        twin.price_weight = self.price_weight
        twin._prior = self._prior
        twin.history = {d: DealerHistory(**vars(h)) for d, h in self.history.items()}
        twin._open = {
            k: _Open(o.side, o.dealers, dict(o.quotes), o.traded_side)
            for k, o in self._open.items()
        }
        return twin

    # ------------------------------------------------------------------ scoring

    def response_rate(self, d: DealerId) -> float:
        h, (r0, _, _, w) = self.history[d], self._prior
        return (h.quotes + w * r0) / (h.asked + w)

    def hit_ratio(self, d: DealerId) -> float:
        h, (_, k0, _, w) = self.history[d], self._prior
        return (h.wins + w * k0) / (h.quotes + w)

    def distance_bps(self, d: DealerId) -> float:
        h, (_, _, d0, w) = self.history[d], self._prior
        return (h.distance_sum + w * d0) / (h.distance_n + w)

    def score(self, d: DealerId) -> float:
        return self.response_rate(d) * self.hit_ratio(d) - self.price_weight * self.distance_bps(d)

    def stats(self, d: DealerId) -> tuple[float, float, float, float]:
        """(response rate, hit ratio, distance bps, times asked) in one call."""
        return self.response_rate(d), self.hit_ratio(d), self.distance_bps(d), self.history[d].asked

    def select(
        self, side: Side, qty: int, n: int, rng: np.random.Generator, two_sided: bool = False
    ) -> tuple[list[DealerId], dict[str, float]]:
        """The heuristic ranks by the dealers' history alone: side, size and whether the
        request is two-sided change nothing."""
        if n < 1:
            raise ValueError(f"a panel needs at least one dealer, asked for {n}")
        scores = {d: self.score(d) for d in self.dealers}
        ranked = sorted(self.dealers, key=lambda d: (-scores[d], d))
        n = min(n, len(ranked))
        panel = ranked[:n]
        explored = 0.0
        outside = ranked[n:]
        if outside and rng.random() < self.explore:
            weights = np.array([1.0 / (1.0 + self.history[d].asked) for d in outside])
            pick = outside[int(rng.choice(len(outside), p=weights / weights.sum()))]
            panel = [*panel[:-1], pick]
            explored = 1.0
        out = {str(d): round(scores[d], 4) for d in ranked}
        out["explore"] = explored
        return panel, out

    # ------------------------------------------------------------------ learning

    def observe(self, event: Event) -> None:
        if isinstance(event, RfqRequested):
            r = event.request
            for h in self.history.values():
                h.asked *= self.decay
                h.quotes *= self.decay
                h.wins *= self.decay
                h.distance_sum *= self.decay
                h.distance_n *= self.decay
            for d in r.dealers:
                if d in self.history:
                    self.history[d].asked += 1
            self._open[r.rfq_id] = _Open(r.side, r.dealers)
        elif isinstance(event, QuoteReceived):
            o = self._open.get(event.quote.rfq_id)
            if o is not None and event.quote.dealer in self.history:
                o.quotes[event.quote.dealer] = event.quote
                self.history[event.quote.dealer].quotes += 1
        elif isinstance(event, RfqTraded):
            o = self._open.get(event.rfq_id)
            if o is not None and event.dealer in self.history:
                o.traded_side = event.side
                self.history[event.dealer].wins += 1
        elif isinstance(event, RfqEnded):
            o = self._open.pop(event.rfq_id, None)
            if o is not None:
                self._score_prices(o)

    def _score_prices(self, o: _Open) -> None:
        side = o.side or o.traded_side
        if side is None:
            return
        for d, dist in distances_behind_best(o.quotes, side).items():
            h = self.history[d]
            h.distance_sum += dist
            h.distance_n += 1


def distances_behind_best(quotes: Mapping[DealerId, Quote], side: Side) -> dict[DealerId, float]:
    """How far each quote of one RFQ is behind the best for the client's `side`, bps of
    the best price (0 for the best); empty with fewer than two prices to compare."""
    prices = {d: p for d, q in quotes.items() if (p := q.price_for(side)) is not None}
    if len(prices) < 2:
        return {}
    best = min(prices.values()) if side is Side.BUY else max(prices.values())
    return {d: side.sign * (p - best) / best * 1e4 for d, p in prices.items()}
