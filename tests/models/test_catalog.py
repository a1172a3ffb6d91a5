"""The guard rail's meaning of "worse on the held-out set" (models.catalog.shortfalls):
held-out AUC and ECE of every dealer and fill model, the slicer's paired validation IS
difference against the even pace."""

from __future__ import annotations

import pytest

from models.catalog import CatalogError, Shortfall, shortfalls

DEALER = {
    "respond.auc": 0.78, "respond.ece": 0.018, "respond.oracle_auc": 0.79,
    "respond.ece_uncalibrated": 0.02, "best.auc": 0.918, "best.ece": 0.006, "hit.auc": 0.99,
}  # fmt: skip


def test_an_equal_or_better_challenger_passes() -> None:
    better = DEALER | {"respond.auc": 0.80, "best.ece": 0.001}
    assert shortfalls("dealer", DEALER, DEALER) == []
    assert shortfalls("dealer", better, DEALER) == []
    # within the margins (ties and rounding): AUC 0.001, ECE 0.005
    assert shortfalls("dealer", DEALER | {"best.auc": 0.9175, "best.ece": 0.0105}, DEALER) == []


def test_a_lower_auc_or_a_higher_ece_of_any_model_is_worse() -> None:
    worse = DEALER | {"hit.auc": 0.97, "respond.ece": 0.03}
    assert shortfalls("dealer", worse, DEALER) == [
        Shortfall("hit.auc", 0.97, 0.99),
        Shortfall("respond.ece", 0.03, 0.018),
    ]
    assert str(Shortfall("hit.auc", 0.97, 0.99)) == "hit.auc 0.9700 vs the champion's 0.9900"
    assert shortfalls("fill", {"passive.auc": 0.85}, {"passive.auc": 0.898}) == [
        Shortfall("passive.auc", 0.85, 0.898)
    ]


def test_the_oracle_and_uncalibrated_figures_are_not_guarded() -> None:
    # the oracle's AUC is the simulator's, not the model's; the uncalibrated ECE is not served
    other = DEALER | {"respond.oracle_auc": 0.5, "respond.ece_uncalibrated": 0.5}
    assert shortfalls("dealer", other, DEALER) == []


def test_a_figure_the_challenger_lacks_counts_as_worse() -> None:
    lacking = {k: v for k, v in DEALER.items() if k != "best.auc"}
    (found,) = shortfalls("dealer", lacking, DEALER)
    assert found == Shortfall("best.auc", None, 0.918)
    assert "none recorded" in str(found)
    # what the champion lacks is not compared
    assert shortfalls("dealer", DEALER | {"extra.auc": 0.1}, DEALER) == []


def test_a_slicer_that_saves_less_against_the_even_pace_is_worse() -> None:
    champion = {"diff_is_bps": -1.31, "diff_stderr_bps": 1.17, "policy_is_bps": 13.0}
    assert shortfalls("slicer", champion | {"diff_is_bps": -2.0}, champion) == []
    assert shortfalls("slicer", champion | {"diff_is_bps": -1.28}, champion) == []  # a tie
    assert shortfalls("slicer", champion | {"diff_is_bps": 0.4}, champion) == [
        Shortfall("diff_is_bps", 0.4, -1.31)
    ]


def test_an_unknown_family_is_refused() -> None:
    with pytest.raises(CatalogError, match="unknown model family"):
        shortfalls("nope", {}, {"x.auc": 1.0})
