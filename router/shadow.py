"""Shadow mode: a model family's challenger asked beside its champion, never acted on.

A running service with a challenger set (the model registry's `challenger` alias on a
version other than the champion, `[models] shadow = true`) serves it beside the champion
(router.hotswap, router.registry). Each decision that asks a model then asks the
challenger too, with the same inputs, and works out what the challenger's answer would
have made the decision do, without doing it:

- the dealer models (models.serving.predictors.MlPanel): P(best quote) of every
  candidate and the panel it would ask, then P(any quote) of that panel;
- the fill model (router.execution.lit): P(fill) of joining each lit queue, and the
  venue split (take now, post where) that the allocation would make of it, on the same
  outflow samples as the champion's (a copy of the random stream: the champion's own
  draws are untouched, so its decisions are those it makes without a challenger);
- the slicer (router.strategies.learned.PacedSlicer): the pace of the next step.

The comparison (`ShadowAnswer`, router.domain) rides on the decision records the
champion's answer led to, and once per asking in a `ShadowCompared` event, which the
desk counts (agreement, the challenger's latency) and keeps for the dashboard.

This module is the core's side of it: what a served model offers of its challenger
(`Challenger`, through `challenger_of`) and the comparisons. Of the project it imports
only the domain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from router.domain import ShadowAnswer

M = TypeVar("M", covariant=True)

#: two paces agree within this much of the action (the action is in [-1, 1]; 0.05 is a
#: pace multiplier within 6% of the champion's)
PACE_TOLERANCE = 0.05
#: decimals of the numbers a comparison records (and compares: a difference smaller
#: than the record can show is no difference)
DIGITS = 6


@dataclass(frozen=True, slots=True)
class Challenger(Generic[M]):
    """A family's challenger as a decision asks it: `model` answers like the champion's
    (a dealer model mapping, a fill model, a slicer policy); `timer` reads seconds (the
    composition root's monotonic clock): a comparison's latency is the wall time of the
    challenger's model calls, what serving it would cost the decision."""

    model: M
    version: int
    champion_version: int | None
    timer: Callable[[], float]


class HasChallenger(Protocol[M]):
    """A served model (router.registry's live views) that can hand out its challenger."""

    def challenger(self) -> Challenger[M] | None: ...


class ShadowSource(Protocol):
    """A part that asks a model on its own (a panel selector, a slicer) and keeps the
    comparison of its last asking for the decision that called it to record."""

    def take_shadow(self) -> ShadowAnswer | None:
        """The comparison of the last call, once (None: no challenger was asked)."""
        ...


def challenger_of(model: object) -> Challenger[Any] | None:
    """`model`'s challenger, if it has one now (HasChallenger); a plain model has none.
    Asked at every decision: a lookup, nothing more, while no challenger is set."""
    ask = getattr(model, "challenger", None)
    return ask() if ask is not None else None


def take_shadow(source: object) -> ShadowAnswer | None:
    """`source.take_shadow()` if `source` keeps comparisons (ShadowSource), else None."""
    take = getattr(source, "take_shadow", None)
    return take() if take is not None else None


def clone_rng(state: Mapping[str, Any]) -> np.random.Generator:
    """A generator that draws what one with bit-generator `state` draws next: the
    challenger's side of a decision on the champion's random numbers, leaving the
    champion's generator where it was."""
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def _num(x: float) -> float:
    return round(float(x), DIGITS)


def differing(
    champion: Mapping[str, float], challenger: Mapping[str, float]
) -> dict[str, tuple[float, float]]:
    """The numbers (by name, both sides' names) that differ at the record's precision;
    a name one side lacks counts as 0 there (a venue one side posts on and the other
    does not)."""
    out = {}
    for key in sorted(set(champion) | set(challenger)):
        a, b = _num(champion.get(key, 0.0)), _num(challenger.get(key, 0.0))
        if a != b:
            out[key] = (a, b)
    return out


def _answer(
    family: str,
    challenger: Challenger[Any],
    champion_answer: dict[str, Any],
    challenger_answer: dict[str, Any],
    agree: bool,
    diffs: dict[str, tuple[float, float]],
    latency_s: float,
) -> ShadowAnswer:
    return ShadowAnswer(
        family=family,
        champion_version=challenger.champion_version,
        challenger_version=challenger.version,
        champion=champion_answer,
        challenger=challenger_answer,
        agree=agree,
        diffs=diffs,
        latency_us=round(latency_s * 1e6, 1),
    )


def compare_panel(
    challenger: Challenger[Any],
    champion: tuple[Sequence[str], Mapping[Any, float], float],
    theirs: tuple[Sequence[str], Mapping[Any, float], float],
    latency_s: float,
) -> ShadowAnswer:
    """The dealer family: (panel asked, P(best) by dealer, P(any quote)) of each side.
    They agree when they would ask the same dealers (in whatever order: the request
    goes to all at once)."""
    (panel_a, best_a, any_a), (panel_b, best_b, any_b) = champion, theirs
    numbers_a = {f"p_best_{d}": p for d, p in best_a.items()} | {"p_any_quote": any_a}
    numbers_b = {f"p_best_{d}": p for d, p in best_b.items()} | {"p_any_quote": any_b}
    return _answer(
        "dealer",
        challenger,
        {"panel": list(panel_a), "p_any_quote": _num(any_a)},
        {"panel": list(panel_b), "p_any_quote": _num(any_b)},
        set(panel_a) == set(panel_b),
        differing(numbers_a, numbers_b),
        latency_s,
    )


@dataclass(frozen=True, slots=True)
class Split:
    """One side's venue split of a lit decision: shares taken now, shares posted by
    "<venue> <level>", and the expected cost (ticks a share)."""

    take: int
    post: Mapping[str, int]
    cost_ticks: float

    def to_json(self) -> dict[str, Any]:
        return {"take": self.take, "post": dict(self.post), "cost_ticks": _num(self.cost_ticks)}

    def sizes(self) -> dict[str, float]:
        """The shares by place: "take", "post <venue> <level>"."""
        return {"take": float(self.take)} | {f"post {k}": float(q) for k, q in self.post.items()}


def compare_split(
    challenger: Challenger[Any],
    champion: tuple[Split, Mapping[str, float]],
    theirs: tuple[Split, Mapping[str, float]],
    latency_s: float,
) -> ShadowAnswer:
    """The fill family: each side's split and its P(fill) by venue queue. They agree
    when they would take and post the same shares in the same places."""
    (split_a, p_a), (split_b, p_b) = champion, theirs
    numbers_a = {f"p_fill_{v}": p for v, p in p_a.items()} | split_a.sizes()
    numbers_b = {f"p_fill_{v}": p for v, p in p_b.items()} | split_b.sizes()
    return _answer(
        "fill",
        challenger,
        split_a.to_json(),
        split_b.to_json(),
        split_a.take == split_b.take and dict(split_a.post) == dict(split_b.post),
        differing(numbers_a, numbers_b),
        latency_s,
    )


def compare_pace(
    challenger: Challenger[Any],
    champion: tuple[float, float],
    theirs: tuple[float, float],
    latency_s: float,
) -> ShadowAnswer:
    """The slicer family: each side's (action in [-1, 1], pace multiplier it sets). They
    agree within PACE_TOLERANCE of the action."""
    (action_a, pace_a), (action_b, pace_b) = champion, theirs
    return _answer(
        "slicer",
        challenger,
        {"action": _num(action_a), "pace": _num(pace_a)},
        {"action": _num(action_b), "pace": _num(pace_b)},
        abs(action_a - action_b) <= PACE_TOLERANCE,
        differing({"action": action_a, "pace": pace_a}, {"action": action_b, "pace": pace_b}),
        latency_s,
    )
