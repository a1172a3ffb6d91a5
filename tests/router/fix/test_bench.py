"""`blockroute bench fix` (bench/fix.py): a short run of each mode."""

from __future__ import annotations

import pytest

from bench.fix import fix_bench

KEYS = {"orders", "orders_per_s", "ack_p50_ms", "ack_p99_ms"}


def test_unpaced_run_reports_the_contract_figures():
    seen: list[tuple[int, int]] = []
    doc = fix_bench(300, window=16, progress=lambda done, total: seen.append((done, total)))
    assert set(doc) == KEYS and doc["orders"] == 300
    assert doc["orders_per_s"] > 50
    assert 0 < doc["ack_p50_ms"] <= doc["ack_p99_ms"] < 1000
    assert seen[-1] == (300, 300)


def test_paced_run_keeps_to_its_rate():
    doc = fix_bench(100, rate=400.0)
    assert doc["orders"] == 100
    assert doc["orders_per_s"] == pytest.approx(400.0, rel=0.25)


def test_bad_arguments():
    with pytest.raises(ValueError, match="orders"):
        fix_bench(0)
    with pytest.raises(ValueError, match="rate"):
        fix_bench(10, rate=0.0)
