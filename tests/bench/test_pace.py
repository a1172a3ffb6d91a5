"""`blockroute bench pace`: sor-ml's routing on fixed paces, and the hindsight best."""

from __future__ import annotations

import pytest

from bench.pace import run_pace_study


def test_fixed_paces_are_paired_against_the_twap_line_and_hindsight_is_a_floor() -> None:
    doc = run_pace_study(["calm"], 1, actions=(0.0, 1.0))
    rows = {r["side"]: r for r in doc["rows"]}
    assert set(rows) == {"buy", "sell", "both"} and rows["both"]["episodes"] == 2
    for row in rows.values():
        even, lead = row["by_action"]
        assert even["vs_even_pace"]["mean_bps"] == 0.0
        best = row["hindsight_best"]["is"]["mean_bps"]
        # the per-episode best of the paces costs no more than any one of them
        assert best <= min(even["is"]["mean_bps"], lead["is"]["mean_bps"]) + 1e-9
    # leading the TWAP line trades earlier: on the same market it is a different run
    assert (
        rows["buy"]["by_action"][1]["is"]["mean_bps"]
        != rows["buy"]["by_action"][0]["is"]["mean_bps"]
    )


def test_the_twap_line_is_required() -> None:
    with pytest.raises(ValueError, match="include 0"):
        run_pace_study(["calm"], 1, actions=(1.0,))
