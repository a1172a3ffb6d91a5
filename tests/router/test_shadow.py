"""Shadow mode in the execution core (router.shadow): when a challenger's answer agrees
with the champion's, which numbers differ, the copy of the random stream the
challenger's side of a decision draws from; and whole `ml` episodes with challengers of
every family beside the champions, whose decisions are exactly those made without."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from router.app import Episode, StrategyRun, apply_overrides
from router.domain import DecisionRecorded, Event, ShadowCompared
from router.shadow import (
    PACE_TOLERANCE,
    Challenger,
    Split,
    challenger_of,
    clone_rng,
    compare_pace,
    compare_panel,
    compare_split,
    differing,
    take_shadow,
)
from simulators.scenario import load_scenario
from tests.router.challengers import FAMILIES, altered, copy_of, shadowing


def _challenger(version: int = 3) -> Challenger[Any]:
    return Challenger(model=None, version=version, champion_version=2, timer=lambda: 0.0)


def test_panels_agree_when_they_ask_the_same_dealers_in_any_order() -> None:
    ch = _challenger()
    same = compare_panel(
        ch,
        (["A", "B"], {"A": 0.6, "B": 0.3, "C": 0.1}, 0.9),
        (["B", "A"], {"A": 0.6, "B": 0.3, "C": 0.1}, 0.9),
        12e-6,
    )
    assert same.agree and same.diffs == {}
    assert (same.family, same.champion_version, same.challenger_version) == ("dealer", 2, 3)
    assert same.latency_us == 12.0
    assert same.champion == {"panel": ["A", "B"], "p_any_quote": 0.9}
    assert same.challenger == {"panel": ["B", "A"], "p_any_quote": 0.9}


def test_panels_disagree_on_another_dealer_and_say_which_numbers_moved() -> None:
    answer = compare_panel(
        _challenger(),
        (["A", "B"], {"A": 0.6, "B": 0.3, "C": 0.1}, 0.9),
        (["A", "C"], {"A": 0.6, "B": 0.1, "C": 0.3}, 0.85),
        0.0,
    )
    assert not answer.agree
    assert answer.diffs == {
        "p_any_quote": (0.9, 0.85),
        "p_best_B": (0.3, 0.1),
        "p_best_C": (0.1, 0.3),
    }
    assert answer.to_json()["diffs"]["p_best_B"] == [0.3, 0.1]


def test_splits_agree_only_on_the_same_shares_in_the_same_places() -> None:
    ch = _challenger()
    champion = Split(100, {"X join": 200}, 1.5)
    same = compare_split(
        ch, (champion, {"X": 0.4}), (Split(100, {"X join": 200}, 1.5), {"X": 0.4}), 0
    )
    assert same.agree and same.diffs == {} and same.family == "fill"
    assert same.champion == {"take": 100, "post": {"X join": 200}, "cost_ticks": 1.5}
    # the same places, other model numbers: still the same action
    close = compare_split(
        ch, (champion, {"X": 0.4}), (Split(100, {"X join": 200}, 1.4), {"X": 0.5}), 0
    )
    assert close.agree and close.diffs == {"p_fill_X": (0.4, 0.5)}
    # a post moved to another venue
    moved = compare_split(
        ch, (champion, {"X": 0.4}), (Split(100, {"Y join": 200}, 1.5), {"X": 0.4}), 0
    )
    assert not moved.agree
    assert moved.diffs == {"post X join": (200.0, 0.0), "post Y join": (0.0, 200.0)}
    taken = compare_split(ch, (champion, {}), (Split(300, {}, 2.0), {}), 0)
    assert not taken.agree and taken.diffs["take"] == (100.0, 300.0)


def test_paces_agree_within_the_tolerance() -> None:
    ch = _challenger()
    near = compare_pace(ch, (0.2, 1.25), (0.2 + PACE_TOLERANCE / 2, 1.28), 5e-6)
    assert near.agree and near.family == "slicer" and set(near.diffs) == {"action", "pace"}
    far = compare_pace(ch, (0.2, 1.25), (0.2 + 2 * PACE_TOLERANCE, 1.39), 5e-6)
    assert not far.agree
    exact = compare_pace(ch, (0.0, 1.0), (0.0, 1.0), 0.0)
    assert exact.agree and exact.diffs == {}


def test_differences_below_the_records_precision_are_none() -> None:
    assert differing({"a": 0.1234564}, {"a": 0.1234561}) == {}
    assert differing({"a": 0.12346}, {"a": 0.12345}) == {"a": (0.12346, 0.12345)}
    assert differing({"a": 1.0}, {}) == {"a": (1.0, 0.0)}


def test_the_cloned_stream_draws_what_the_original_draws_next_and_leaves_it_be() -> None:
    rng = np.random.default_rng(11)
    rng.random(5)
    state = rng.bit_generator.state
    copy = clone_rng(state)
    assert copy.exponential(1.0, 8).tolist() == rng.exponential(1.0, 8).tolist()
    # drawing from a copy moves the original nowhere
    reference = np.random.default_rng(11)
    reference.random(5)
    clone_rng(reference.bit_generator.state).random(100)
    assert reference.random() == clone_rng(state).random()


def test_plain_models_and_parts_have_no_challenger_and_no_shadow() -> None:
    assert challenger_of(lambda obs: 0.0) is None
    assert challenger_of({"best": object()}) is None
    assert take_shadow(object()) is None

    class Source:
        def __init__(self) -> None:
            self.left = ["answer"]

        def take_shadow(self) -> Any:
            return self.left.pop() if self.left else None

    source = Source()
    assert take_shadow(source) == "answer" and take_shadow(source) is None


@pytest.mark.parametrize("family", ["dealer", "fill", "slicer"])
def test_an_answer_is_json_ready(family: str) -> None:
    import json

    answer = {
        "dealer": lambda: compare_panel(
            _challenger(), (["A"], {"A": 0.5}, 0.5), (["B"], {"B": 0.5}, 0.4), 1e-6
        ),
        "fill": lambda: compare_split(
            _challenger(), (Split(0, {}, 0.0), {}), (Split(1, {}, 0.1), {}), 1e-6
        ),
        "slicer": lambda: compare_pace(_challenger(), (0.0, 1.0), (1.0, 3.0), 1e-6),
    }[family]()
    doc = json.loads(json.dumps(answer.to_json()))
    assert doc["agree"] is False and doc["challenger_version"] == 3 and doc["latency_us"] == 1.0


# ------------------------------------------------------------------ whole decisions


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, StrategyRun]:
    """One `ml` episode (calm, 200,000 over 30 minutes: lit posts scored by the fill
    model, RFQ panels by the dealer models, a pace every 5 minutes) three times: with no
    challenger, with byte-identical challengers of all three families, and with
    challengers that answer otherwise (tests/router/challengers.py)."""
    folder = tmp_path_factory.mktemp("challengers")
    sc = apply_overrides(load_scenario("calm"), 200_000, None, 1800.0)
    registries = {
        "none": shadowing({}),
        "same": shadowing({f: copy_of(folder, f) for f in FAMILIES}),
        "other": shadowing({f: altered(folder, f) for f in FAMILIES}),
    }
    return {
        name: Episode(sc, 7, models=registry.live()).run("ml")  # type: ignore[arg-type]
        for name, registry in registries.items()
    }


def _as_without_shadow(run: StrategyRun) -> list[Event]:
    """The run's events as a run without a challenger has them: no ShadowCompared, no
    decision's `shadow`."""
    return [
        dataclasses.replace(e, shadow=()) if isinstance(e, DecisionRecorded) else e
        for e in run.events
        if not isinstance(e, ShadowCompared)
    ]


def _compared(run: StrategyRun) -> list[ShadowCompared]:
    return [e for e in run.events if isinstance(e, ShadowCompared)]


@pytest.mark.parametrize("challenger", ["same", "other"])
def test_the_champion_decides_exactly_as_without_a_challenger(
    runs: dict[str, StrategyRun], challenger: str
) -> None:
    alone, shadowed = runs["none"], runs[challenger]
    assert _compared(shadowed)  # the challengers were asked
    # every decision, child order, fill and RFQ fact, in the same order at the same time
    assert _as_without_shadow(shadowed) == list(alone.events)
    assert shadowed.schedule == alone.schedule and shadowed.tca == alone.tca


def test_without_a_challenger_nothing_is_shadowed(runs: dict[str, StrategyRun]) -> None:
    alone = runs["none"]
    assert _compared(alone) == []
    assert all(not e.shadow for e in alone.events if isinstance(e, DecisionRecorded))


def test_a_byte_identical_challenger_agrees_on_every_decision(
    runs: dict[str, StrategyRun],
) -> None:
    run = runs["same"]
    compared = _compared(run)
    assert {c.answer.family for c in compared} == set(FAMILIES)
    for c in compared:
        assert c.answer.agree and c.answer.diffs == {}
        assert c.answer.champion == c.answer.challenger
        assert (c.answer.champion_version, c.answer.challenger_version) == (1, 2)
        assert c.answer.latency_us > 0
    decisions = {e.decision_id: e for e in run.events if isinstance(e, DecisionRecorded)}
    # each asking rides on the records it led to, and only those
    for c in compared:
        for d in c.decision_ids:
            assert c.answer in decisions[d].shadow
    carried = {a.family for d in decisions.values() for a in d.shadow}
    assert carried == set(FAMILIES)
    for d in decisions.values():
        families = {a.family for a in d.shadow}
        if d.chosen.startswith("request quotes"):
            assert "dealer" in families  # the panel the dealer models chose
        if d.chosen.startswith("post "):
            assert "fill" in families  # the split the fill model's priors made
    # an ml pace asked every 5 minutes of the half hour
    assert sum(c.answer.family == "slicer" for c in compared) == 6


def test_a_challenger_that_answers_otherwise_disagrees_and_says_where(
    runs: dict[str, StrategyRun],
) -> None:
    compared = _compared(runs["other"])
    by_family = {f: [c.answer for c in compared if c.answer.family == f] for f in FAMILIES}
    for family, answers in by_family.items():
        assert answers, family
        assert any(not a.agree for a in answers), family
    dealer = next(a for a in by_family["dealer"] if not a.agree)
    assert set(dealer.champion["panel"]) != set(dealer.challenger["panel"])
    assert any(k.startswith("p_best_") for k in dealer.diffs)
    # P(fill) at 30%: every queue's probability differs, and some splits with it
    fill = [a for a in by_family["fill"] if any(k.startswith("p_fill_") for k in a.diffs)]
    assert fill
    for a in fill:
        for key, (champion, challenger) in a.diffs.items():
            if key.startswith("p_fill_"):
                assert challenger == pytest.approx(0.3 * champion, abs=2e-6)
    split = next(a for a in by_family["fill"] if not a.agree)
    assert split.champion["post"] != split.challenger["post"] or (
        split.champion["take"] != split.challenger["take"]
    )
    # the even pace (0) against the learned one
    slicer = next(a for a in by_family["slicer"] if not a.agree)
    assert slicer.champion == {"action": 0.0, "pace": 1.0} and slicer.challenger["action"] != 0.0
