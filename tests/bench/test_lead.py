"""`blockroute bench lead`: the dealer blocks' lead capped, beside the baselines."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from bench.lead import BASELINES, capped, mean_lead, run_lead_study
from router.execution.config import RfqConfig


def _run(fills: list[tuple[int, int]], qty: int = 100) -> Any:
    parent = SimpleNamespace(start_ns=1_000, horizon_ns=1_000, qty=qty)
    return SimpleNamespace(
        parent=parent, fills=[SimpleNamespace(ts_ns=1_000 + t, qty=q) for t, q in fills]
    )


def test_the_mean_lead_is_the_fills_area_over_the_twap_lines() -> None:
    assert mean_lead(cast(Any, _run([(0, 100)]))) == pytest.approx(0.5)  # all at arrival
    assert mean_lead(cast(Any, _run([(1_000, 100)]))) == pytest.approx(-0.5)  # all at the end
    # half at arrival, half at mid-horizon: area 0.5 + 0.25
    assert mean_lead(cast(Any, _run([(0, 50), (500, 50)]))) == pytest.approx(0.25)
    # ten even slices at the start of each tenth: a step just above the line
    even = [(100 * k, 10) for k in range(10)]
    assert mean_lead(cast(Any, _run(even))) == pytest.approx(0.05)


def test_a_cap_changes_only_the_rfq_blocks_lead() -> None:
    spec = capped(0.05)
    rfq = [t for t in spec.tactics if isinstance(t, RfqConfig)]
    assert [t.max_ahead for t in rfq] == [0.05]
    assert rfq[0].block_share == RfqConfig().block_share
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        capped(1.5)


def test_the_study_pairs_every_cap_with_the_same_episodes() -> None:
    doc = run_lead_study(["calm"], 1, caps=(0.35, 0.0))
    rows = {r["side"]: r for r in doc["rows"]}
    assert set(rows) == {"buy", "sell", "both"} and rows["both"]["episodes"] == 2
    for row in rows.values():
        base = row["baselines"]
        assert set(base) == set(BASELINES)
        assert row["best_baseline"] == min(base, key=lambda b: base[b]["mean_bps"])
        shipped, none = row["caps"]
        assert shipped["vs_shipped"]["mean_bps"] == 0.0
        best = base[row["best_baseline"]]["mean_bps"]
        assert shipped["vs_best_baseline"]["mean_bps"] == pytest.approx(
            shipped["is"]["mean_bps"] - best
        )
        assert sum(none["venue_mix"].values()) == pytest.approx(1.0)
        # calm's panel quotes these parents: the dealers' side of the trades is reported
        assert shipped["dealer_pnl"] is not None and shipped["venue_mix"]["rfq"] > 0
    # no lead for the blocks: the parent runs closer to its schedule than at 0.35
    assert rows["both"]["caps"][1]["mean_lead"] < rows["both"]["caps"][0]["mean_lead"]


def test_a_study_without_caps_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        run_lead_study(["calm"], 1, caps=())
