"""`blockroute bench risk-transfer`: a dealer's price for a block against TWAP's cost."""

from __future__ import annotations

import math

from bench.risk_transfer import run_risk_transfer


def test_quotes_cost_more_per_share_for_bigger_blocks() -> None:
    doc = run_risk_transfer("calm", sizes=(0.02, 0.10), seeds=2)
    small, big = doc["rows"]
    assert (small["qty"], big["qty"]) == (40_000, 200_000)
    assert small["episodes"] == big["episodes"] == 4  # two seeds, both sides
    # a flat dealer's cost grows with sqrt(size): five times the size, about 2.2x the cost
    assert big["best_quote_bps"] > small["best_quote_bps"] + 5.0
    assert big["twap_is_bps"] > small["twap_is_bps"]
    assert 0.0 < big["quoted_share"] <= 1.0
    assert big["premium_bps"] == big["best_quote_bps"] - big["twap_is_bps"]
    assert not math.isnan(big["twap_is_bps_stderr"])
