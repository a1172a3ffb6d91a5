"""The algo wheel's statistics (router.wheel_stats) on hand-made journal rows, every
figure worked out by hand in the comments: the arms, the Welch difference matched by
symbol and side, the sample size and the recommendation, which parents count."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import pytest

from models.catalog import CatalogError
from router.journal import Batch, Journal, SvcParentRow
from router.wheel_stats import WheelError, WheelParent, parse_since, wheel_report

T0 = 1_800_000_000_000_000_000
S = 1_000_000_000
CHAMP = {"dealer": 1, "fill": 1, "slicer": 1}
CHALL = {"dealer": 2, "fill": 1, "slicer": 1}


def row(
    n: int,
    arm: str,
    symbol: str,
    side: str,
    is_bps: float | None,
    *,
    versions: dict[str, int] | None = None,
    status: str = "filled",
) -> dict[str, Any]:
    """svc_parents row `n` (created n seconds after T0) of the wheel's `arm`."""
    tca = {} if is_bps is None else {"is_bps": is_bps}
    return {
        "parent_id": f"P{n:07d}", "client": "OMS", "cl_ord_id": f"C{n}",
        "orig_cl_ord_id": f"C{n}", "symbol": symbol, "side": side, "qty": 10_000,
        "ord_type": "market", "limit_price": None, "strategy": "ml", "participation": None,
        "status": status, "start_ns": T0 + n * S, "end_ns": T0 + (n + 600) * S,
        "filled_qty": 10_000, "notional": 1e6, "fees": 0.0, "arrival_mid": 100.0,
        "n_children": 1, "n_fills": 1, "n_rfqs": 0, "text": "",
        "created_ns": T0 + n * S, "updated_ns": T0 + (n + 600) * S,
        "tca_json": json.dumps(tca) if status in ("filled", "expired", "canceled") else "",
        "model_arm": arm,
        "model_versions": json.dumps(versions or (CHALL if arm == "challenger" else CHAMP)),
    }  # fmt: skip


def write(journal: Journal, rows: Sequence[dict[str, Any]]) -> None:
    batch = Batch()
    for r in rows:
        batch.upsert(SvcParentRow, r)
    journal.commit(batch)


# Two matched strata and one that the champion has a single parent of:
#   QDI sell:    champion 10, 12, 14 (mean 12, sd 2); challenger 8, 10 (mean 9, sd sqrt 2)
#   QBOND27 buy: champion 30, 34 (mean 32, sd 2 sqrt 2); challenger 20, 24, 28 (24, sd 4)
#   QDI buy:     champion 5; challenger 7, 9: not matched (one champion parent)
HAND = [
    ("champion", "QDI", "sell", 10.0), ("champion", "QDI", "sell", 12.0),
    ("champion", "QDI", "sell", 14.0), ("challenger", "QDI", "sell", 8.0),
    ("challenger", "QDI", "sell", 10.0), ("champion", "QBOND27", "buy", 30.0),
    ("champion", "QBOND27", "buy", 34.0), ("challenger", "QBOND27", "buy", 20.0),
    ("challenger", "QBOND27", "buy", 24.0), ("challenger", "QBOND27", "buy", 28.0),
    ("champion", "QDI", "buy", 5.0), ("challenger", "QDI", "buy", 7.0),
    ("challenger", "QDI", "buy", 9.0),
]  # fmt: skip


def parents(rows: Sequence[dict[str, Any]]) -> list[WheelParent]:
    return [WheelParent.of(SvcParentRow(**r)) for r in rows]


def hand_rows() -> list[dict[str, Any]]:
    return [row(i, arm, sym, side, v) for i, (arm, sym, side, v) in enumerate(HAND, 1)]


def test_the_statistics_of_hand_made_rows() -> None:
    doc = wheel_report(parents(hand_rows()))
    assert doc["families_changed"] == ["dealer"]
    arms = doc["arms"]
    assert arms["champion"]["versions"] == CHAMP and arms["challenger"]["versions"] == CHALL
    # champion: 10 12 14 30 34 5 -> mean 105/6 = 17.5; challenger 8 10 20 24 28 7 9 -> 106/7
    assert (arms["champion"]["n"], arms["challenger"]["n"]) == (6, 7)
    assert arms["champion"]["is_bps_mean"] == pytest.approx(17.5)
    assert arms["challenger"]["is_bps_mean"] == pytest.approx(106 / 7)
    # champion: sum of squares about 17.5 = 56.25+30.25+12.25+156.25+272.25+156.25 = 683.5
    assert arms["champion"]["is_bps_sd"] == pytest.approx(math.sqrt(683.5 / 5))
    assert arms["champion"]["is_bps_stderr"] == pytest.approx(math.sqrt(683.5 / 5 / 6))
    assert arms["champion"]["by_status"] == {"filled": 6}
    assert doc["challenger_share"] == pytest.approx(7 / 13)

    strata = {(s["symbol"], s["side"]): s for s in doc["strata"]}
    sell = strata[("QDI", "sell")]
    # -3 +- sqrt(4/3 + 2/2) = sqrt(7/3); df (7/3)^2 / ((4/3)^2/2 + 1^2/1) = 49/9 / (17/9)
    assert sell["matched"] and sell["diff_bps_mean"] == pytest.approx(-3.0)
    assert sell["diff_bps_stderr"] == pytest.approx(math.sqrt(7 / 3))
    assert sell["df"] == pytest.approx(49 / 17)
    assert sell["t"] == pytest.approx(-3 / math.sqrt(7 / 3))
    assert (sell["champion"]["n"], sell["challenger"]["is_bps_mean"]) == (3, 9.0)
    bond = strata[("QBOND27", "buy")]
    # -8 +- sqrt(8/2 + 16/3) = sqrt(28/3)
    assert bond["diff_bps_mean"] == pytest.approx(-8.0)
    assert bond["diff_bps_stderr"] == pytest.approx(math.sqrt(28 / 3))
    buy = strata[("QDI", "buy")]
    assert not buy["matched"] and "diff_bps_mean" not in buy
    assert buy["champion"] == {"n": 1, "is_bps_mean": 5.0, "is_bps_sd": None, "is_bps_stderr": None}

    # matched: 5 parents a stratum, weights 1/2: D = -5.5, se^2 = (7/3 + 28/3) / 4 = 35/12;
    # df: a = w^2 sd^2 / n = 1/3 (n 3), 1/4 (n 2), 1 (n 2), 4/3 (n 3):
    # (35/12)^2 / (1/18 + 1/16 + 1 + 8/9)
    pooled = doc["pooled"]
    assert (pooled["parents"], pooled["strata"]) == (10, 2)
    assert pooled["diff_bps_mean"] == pytest.approx(-5.5)
    assert pooled["diff_bps_stderr"] == pytest.approx(math.sqrt(35 / 12))
    assert pooled["df"] == pytest.approx((35 / 12) ** 2 / (1 / 18 + 1 / 16 + 1 + 8 / 9))
    assert pooled["t"] == pytest.approx(-5.5 / math.sqrt(35 / 12))  # -3.22
    assert (doc["is_diff_bps_mean"], doc["is_diff_bps_stderr"]) == (
        pooled["diff_bps_mean"],
        pooled["diff_bps_stderr"],
    )
    # unmatched, all 13: 106/7 - 17.5, se^2 = sd_c^2/7 + 683.5/5/6
    chall = [8, 10, 20, 24, 28, 7, 9]
    ss = sum((v - 106 / 7) ** 2 for v in chall)
    assert doc["overall"]["diff_bps_mean"] == pytest.approx(106 / 7 - 17.5)
    assert doc["overall"]["diff_bps_stderr"] == pytest.approx(math.sqrt(ss / 6 / 7 + 683.5 / 30))

    # the sample size: sd = se sqrt(10) = 5.40 bps a parent; (1.95996 + 0.84162)^2 *
    # 5.40^2 / 2^2 = 57.2 -> 58 parents
    s = doc["sample_size"]
    assert s["sd_bps"] == pytest.approx(math.sqrt(35 / 12 * 10))
    assert s["parents_needed"] == 58
    # cheaper by 3.2 se, no stratum worse: promote (the rule of `models compare`)
    assert (doc["recommendation"], doc["verdict"]) == ("promote", "promote")
    assert doc["reason"].startswith("pooled -5.50 +- 1.71 bps (t -3.2)")


def test_a_stratum_clearly_worse_keeps_the_champion() -> None:
    rows = hand_rows()
    # the bond's challenger parents dearer: 40, 44, 48 -> +12 +- sqrt(4 + 16/3) = 3.06
    for r, v in zip(rows[7:10], (40.0, 44.0, 48.0), strict=True):
        r["tca_json"] = json.dumps({"is_bps": v})
    doc = wheel_report(parents(rows))
    assert (doc["recommendation"], doc["verdict"]) == ("keep", "keep")
    assert "worse by more than 2 se on QBOND27 buy +12.00 bps" in doc["reason"]


def test_too_few_parents_is_inconclusive_and_says_how_many_it_needs() -> None:
    # one stratum: champion 10, 14 (var 8), challenger 9, 13 (var 8): -1 +- sqrt(8/2 + 8/2)
    rows = [
        row(1, "champion", "QDI", "sell", 10.0), row(2, "champion", "QDI", "sell", 14.0),
        row(3, "challenger", "QDI", "sell", 9.0), row(4, "challenger", "QDI", "sell", 13.0),
    ]  # fmt: skip
    doc = wheel_report(parents(rows), min_effect_bps=1.0)
    assert doc["pooled"]["diff_bps_mean"] == pytest.approx(-1.0)
    assert doc["pooled"]["diff_bps_stderr"] == pytest.approx(math.sqrt(8))
    # sd = sqrt 8 sqrt 4 = sqrt 32 a parent: 2.80159^2 * 32 / 1^2 = 251.2 -> 252
    assert doc["sample_size"]["parents_needed"] == 252
    assert (doc["recommendation"], doc["verdict"]) == ("keep", "inconclusive")
    assert doc["reason"].startswith("need 252 completed parents (ran 4)")


def test_no_matched_stratum_yet_is_inconclusive_without_figures() -> None:
    rows = [row(1, "champion", "QDI", "sell", 10.0), row(2, "challenger", "QDI", "sell", 9.0)]
    doc = wheel_report(parents(rows))
    assert doc["pooled"] is None and doc["overall"] is None
    assert doc["is_diff_bps_mean"] is None and doc["sample_size"]["parents_needed"] is None
    assert (doc["recommendation"], doc["verdict"]) == ("keep", "inconclusive")
    assert doc["reason"] == (
        "need 2 completed parents of each arm in one symbol and side (have champion 1, "
        "challenger 1)"
    )


def test_which_parents_count() -> None:
    rows = [
        # an earlier challenger (dealer 3, then replaced by 2): left out with the champion's
        # parents before the change
        row(1, "champion", "QDI", "sell", 99.0),
        row(2, "challenger", "QDI", "sell", -99.0, versions={**CHALL, "dealer": 3}),
        row(3, "champion", "QDI", "sell", 10.0),
        row(4, "champion", "QDI", "sell", 14.0, status="canceled"),  # canceled: counted
        row(5, "challenger", "QDI", "sell", 9.0, status="expired"),
        row(6, "challenger", "QDI", "sell", 13.0),
        row(7, "challenger", "QDI", "sell", None, status="working"),  # open: not yet
        row(8, "champion", "QDI", "sell", None, status="filled"),  # no IS: left out
    ]
    doc = wheel_report(parents(rows))
    assert doc["window"] == {
        "since_ns": None, "first_ns": T0 + 3 * S, "last_ns": T0 + 8 * S,
        "left_out_earlier_versions": 2, "no_result": 1,
    }  # fmt: skip
    assert doc["arms"]["champion"]["by_status"] == {"canceled": 1, "filled": 1}
    assert doc["arms"]["challenger"]["open"] == 1
    assert doc["pooled"]["diff_bps_mean"] == pytest.approx(-1.0)  # 11 - 12


def test_bad_requests_are_named() -> None:
    rows = parents(hand_rows())
    with pytest.raises(WheelError, match="no parent of the algo wheel") as empty:
        wheel_report([])
    assert empty.value.field is None
    with pytest.raises(CatalogError, match="unknown model family 'nope'"):
        wheel_report(rows, family="nope")
    with pytest.raises(WheelError, match=r"same fill version \(champion 1, challenger 1\)") as exc:
        wheel_report(rows, family="fill")
    assert exc.value.field == "family" and "differ in: dealer" in str(exc.value)
    assert wheel_report(rows, family="dealer")["family"] == "dealer"
    for kwargs, field in (
        ({"alpha": 1.0}, "alpha"),
        ({"power": 0.0}, "power"),
        ({"min_effect_bps": 0.0}, "min_effect_bps"),
    ):
        with pytest.raises(WheelError) as bad:
            wheel_report(rows, **kwargs)
        assert bad.value.field == field


def test_since_is_a_duration_back_or_a_time() -> None:
    now = T0 + 7200 * S
    assert parse_since("90m", now) == now - 5400 * S
    assert parse_since("2026-12-08T09:30", now) == 1_796_722_200 * S  # UTC
    assert parse_since("2026-12-08T10:30+01:00", now) == 1_796_722_200 * S
    with pytest.raises(WheelError, match="since: 'yesterday' is neither") as bad:
        parse_since("yesterday", now)
    assert bad.value.field == "since"


def test_the_journal_gives_the_wheels_parents_since_a_time(tmp_path: Any) -> None:
    journal = Journal.open(f"sqlite:///{tmp_path / 'j.db'}")
    try:
        rows = hand_rows()
        outside = {**row(99, "champion", "QDI", "sell", 1.0), "model_arm": None}
        write(journal, [*rows, outside])
        found = journal.wheel_parents()
        assert [r.parent_id for r in found] == [r["parent_id"] for r in rows]
        assert [r.parent_id for r in journal.wheel_parents(T0 + 12 * S)] == [
            "P0000012",
            "P0000013",
        ]
        from_journal = wheel_report(WheelParent.of(r) for r in found)
        assert from_journal == wheel_report(parents(rows))
    finally:
        journal.close()
