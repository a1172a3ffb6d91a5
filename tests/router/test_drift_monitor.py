"""The drift monitor's logic (router.drift) on hand-made inputs: out-of-range counting per
feature over a window of rows, ECE on known cases, alerts raised once and cleared with
hysteresis, the IS figure, and the fallback's engage and resume."""

from __future__ import annotations

import math

import pytest

from router.drift import (
    CalibrationWindow,
    DriftConfig,
    DriftError,
    DriftMonitor,
    IsWindow,
    RangeWindow,
    pre_trade_cost_bps,
)
from router.ports import MarketHistory

SMALL = DriftConfig(window=10, min_samples=10, range_window=100, is_window=5, is_min_parents=3)


def test_out_of_range_values_are_counted_per_feature_over_the_last_rows() -> None:
    w = RangeWindow(100)
    w.add(60, {"spread_bps": 6, "tod": 0})
    w.add(40, {"spread_bps": 2, "log_qty": 4})
    assert w.rows == 100
    assert w.shares() == {"log_qty": 0.04, "spread_bps": 0.08}
    assert w.worst() == ("spread_bps", 0.08)
    # 50 more: without the first chunk only 90 would be left, < 100: it stays
    w.add(50, {"log_qty": 10})
    assert w.rows == 150 and w.counts == {"spread_bps": 8, "log_qty": 14}
    w.add(60, {})
    # 60 more: the oldest chunks leave while at least 100 rows stay (50 + 60)
    assert w.rows == 110 and w.counts == {"log_qty": 10}
    assert w.rows_total == 210 and w.counts_total == {"spread_bps": 8, "log_qty": 14}
    assert w.worst() == ("log_qty", pytest.approx(10 / 110))
    w.add(0, {"tod": 3})  # no rows: nothing (a model that scored nothing clipped nothing)
    assert w.rows_total == 210


def test_ece_on_known_cases_and_the_window_keeps_the_last_outcomes() -> None:
    w = CalibrationWindow(10)
    assert w.ece() is None
    for y in (1, 0) * 5:  # P = 0.8 said ten times, half happened: off by 0.3
        w.add(0.8, y)
    assert w.ece() == pytest.approx(0.3)
    for y in (0, 0, 0, 0, 1):  # then P = 0.2 five times, one in five happened
        w.add(0.2, y)
    # the window: the last five at 0.8 (0, 1, 0, 1, 0: two happened) and the five at
    # 0.2 (one): bins 8 and 2 each half the rows, |0.8 - 0.4| and |0.2 - 0.2|
    assert w.n == 10 and w.total == 15
    assert w.ece() == pytest.approx(0.5 * 0.4 + 0.5 * 0.0)
    assert w.means() == (pytest.approx(0.5), pytest.approx(0.3))


def test_is_figure_z_is_the_mean_difference_over_its_standard_error() -> None:
    w = IsWindow(3)
    w.add(10.0, 8.0)
    f = w.figures()
    assert f["mean_diff_bps"] == 2.0 and f["sd_diff_bps"] is None and f["z"] is None
    w.add(14.0, 8.0)
    w.add(12.0, 8.0)
    w.add(13.0, 9.0)  # the first leaves: diffs 6, 4, 4
    f = w.figures()
    assert f["mean_diff_bps"] == pytest.approx(14 / 3)
    sd = math.sqrt(((6 - 14 / 3) ** 2 + 2 * (4 - 14 / 3) ** 2) / 2)
    assert f["sd_diff_bps"] == pytest.approx(sd)
    assert f["z"] == pytest.approx((14 / 3) / (sd / math.sqrt(3)))


def test_the_pre_trade_estimate_is_half_spread_fee_and_the_slow_schedules_impact() -> None:
    history = MarketHistory(
        symbol="QDI",
        tick_size=0.01,
        price=100.0,
        adv=2_000_000.0,
        daily_vol=0.02,
        spread=0.05,
        impact_y=0.84,
        bucket_s=300.0,
        volume_profile=(1.0,),
        horizon_volume=1.0,
        taker_fee=0.003,
    )
    # 30 minutes: the whole 2/3 of the peak; 200,000 is 10% of ADV
    impact = 2 / 3 * 0.84 * 0.02 * 1e4 * math.sqrt(0.1)
    expected = (0.025 + 0.003) / 100 * 1e4 + impact
    assert pre_trade_cost_bps(history, 200_000, 1800.0) == pytest.approx(expected)
    # 3 hours: half of it (router.allocation.twap_impact_share)
    slow = (0.025 + 0.003) / 100 * 1e4 + 0.5 * impact
    assert pre_trade_cost_bps(history, 200_000, 10_800.0) == pytest.approx(slow)


def _feed_fill(m: DriftMonitor, p: float, happened: list[int]) -> None:
    for y in happened:
        m.outcome("fill", "passive", p, bool(y))


def test_an_alert_is_raised_once_and_cleared_once_with_hysteresis() -> None:
    m = DriftMonitor(SMALL)  # window 10, judged from 10 outcomes, ECE above 0.10
    _feed_fill(m, 0.35, [1] * 5 + [0] * 4)  # 9 outcomes: too few to judge
    assert m.evaluate(1) == ([], None)
    _feed_fill(m, 0.35, [0])  # 10 at P 0.35, half happened: ECE 0.15
    changes, fallback = m.evaluate(2)
    assert [(c.family, c.figure, c.raised) for c in changes] == [("fill", "ece_passive", True)]
    assert changes[0].value == pytest.approx(0.15) and changes[0].n == 10
    assert "P(fill within 30 s)" in changes[0].message and "above 0.100" in changes[0].message
    assert fallback is None  # fallback is off by default
    assert m.alerts[("fill", "ece_passive")].since_ns == 2
    assert m.evaluate(3) == ([], None)  # still above: raised once only
    # ECE 0.09: under the threshold, but not under 0.8 x 0.10: still active (no flapping)
    _feed_fill(m, 0.41, [1] * 5 + [0] * 5)
    assert m.evaluate(4) == ([], None)
    assert ("fill", "ece_passive") in m.alerts
    _feed_fill(m, 0.45, [1] * 5 + [0] * 5)  # ECE 0.05 <= 0.08: cleared
    changes, _ = m.evaluate(5)
    assert [(c.figure, c.raised) for c in changes] == [("ece_passive", False)]
    assert changes[0].value == pytest.approx(0.05) and "cleared" in changes[0].message
    assert not m.alerts
    assert m.evaluate(6) == ([], None)
    assert m.raised_total[("fill", "ece_passive")] == 1


def test_out_of_range_and_is_alerts() -> None:
    m = DriftMonitor(SMALL)
    m.rows("dealer", 9, {"log_size_adv": 9})
    assert m.evaluate(1) == ([], None)  # 9 rows < min_samples
    m.rows("dealer", 91, {"log_size_adv": 1, "notional_m": 3})
    changes, _ = m.evaluate(2)
    assert [(c.family, c.figure) for c in changes] == [("dealer", "out_of_range")]
    assert changes[0].value == pytest.approx(0.10)
    assert "log_size_adv outside its training range in 10.0% of the last 100 rows" in (
        changes[0].message
    )
    report = m.report()["models"]["dealer"]
    assert report["out_of_range"]["notional_m"] == {"count": 3, "share": 0.03, "total": 3}
    assert report["worst_feature"] == "log_size_adv"
    # IS: dearer than estimated alerts, cheaper does not
    for is_bps in (-20.0, -25.0, -22.0):
        m.parent(is_bps, 10.0)
    assert [c.figure for c in m.evaluate(3)[0]] == []
    m2 = DriftMonitor(SMALL)
    for is_bps in (20.0, 25.0, 22.0):
        m2.parent(is_bps, 10.0)
    m2.parent(float("nan"), 10.0)  # no IS (nothing to measure): left out
    changes, _ = m2.evaluate(1)
    assert [(c.family, c.figure) for c in changes] == [("router", "is_z")]
    assert m2.report()["is_vs_estimate"]["parents"] == 3


def test_the_fallback_engages_on_an_alert_and_an_operator_resumes() -> None:
    m = DriftMonitor(DriftConfig(**{**SMALL.to_json(), "fallback": True}))
    with pytest.raises(DriftError, match="not withdrawn"):
        m.resume("ops", "nothing to resume")
    _feed_fill(m, 0.35, [1] * 5 + [0] * 5)
    changes, fb = m.evaluate(7)
    assert fb is not None and fb.engaged and fb.by == "drift"
    assert fb.reason == "drift alert: " + changes[0].message
    assert m.fallback == fb.reason
    assert m.report()["fallback"] == {"engaged": True, "reason": fb.reason, "since_ns": 7,
                                      "by": "drift"}  # fmt: skip
    # the alert clears: with resume = "operator" the models stay withdrawn
    _feed_fill(m, 0.5, [1] * 5 + [0] * 5)
    changes, fb2 = m.evaluate(8)
    assert [c.raised for c in changes] == [False] and fb2 is None and m.fallback
    back = m.resume("ops", "looked at it")
    assert not back.engaged and back.by == "ops" and back.reason == "looked at it"
    assert m.fallback == "" and not m.report()["fallback"]["engaged"]


def test_an_operator_resume_with_an_alert_still_active_says_so_and_does_not_reengage() -> None:
    m = DriftMonitor(DriftConfig(**{**SMALL.to_json(), "fallback": True}))
    _feed_fill(m, 0.35, [1] * 5 + [0] * 5)
    assert m.evaluate(1)[1] is not None
    back = m.resume("ops", "known: the dealers changed their quoting")
    assert "alerts still active: fill/ece_passive" in back.reason
    _feed_fill(m, 0.35, [1] * 5 + [0] * 5)
    assert m.evaluate(2) == ([], None)  # the same alert, still active: no new engage
    assert m.fallback == ""


def test_auto_resume_gives_the_models_back_when_the_last_alert_clears() -> None:
    m = DriftMonitor(DriftConfig(**{**SMALL.to_json(), "fallback": True, "resume": "auto"}))
    _feed_fill(m, 0.35, [1] * 5 + [0] * 5)
    m.rows("fill", 100, {"spread_ticks": 20})
    changes, fb = m.evaluate(1)
    assert len(changes) == 2 and fb is not None and fb.engaged
    _feed_fill(m, 0.5, [1] * 5 + [0] * 5)
    changes, fb = m.evaluate(2)
    assert [c.figure for c in changes] == ["ece_passive"] and fb is None  # one still active
    m.rows("fill", 100, {})
    changes, fb = m.evaluate(3)
    assert [c.figure for c in changes] == ["out_of_range"]
    assert fb is not None and not fb.engaged and fb.reason == "every drift alert has cleared"


def test_fallback_off_raises_alerts_and_withdraws_nothing() -> None:
    m = DriftMonitor(SMALL)
    _feed_fill(m, 0.35, [1] * 5 + [0] * 5)
    changes, fb = m.evaluate(1)
    assert changes and fb is None and m.fallback == ""


def test_a_restored_fallback_stays_until_resumed() -> None:
    m = DriftMonitor(DriftConfig(**{**SMALL.to_json(), "fallback": True, "resume": "auto"}))
    m.restore("drift alert: before the restart", 5, "drift")
    assert m.fallback == "drift alert: before the restart"
    assert m.evaluate(6) == ([], None)  # no alert to clear: still withdrawn
    assert not m.resume("ops", "checked").engaged


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"window": 0}, "window must be a whole number >= 1"),
        ({"min_samples": 600}, "must not exceed window"),
        ({"is_min_parents": 60}, "must not exceed is_window"),
        ({"is_min_parents": 1}, "a z-score needs a spread"),
        ({"max_ece": 0.0}, "max_ece must be in (0, 1]"),
        ({"max_out_of_range": 1.5}, "max_out_of_range must be in (0, 1]"),
        ({"max_is_z": float("inf")}, "max_is_z must be a finite number > 0"),
        ({"resume": "never"}, "resume must be one of operator, auto"),
    ],
)
def test_bad_settings_are_refused_by_name(change: dict[str, object], message: str) -> None:
    with pytest.raises(DriftError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DriftConfig(**change)  # type: ignore[arg-type]
