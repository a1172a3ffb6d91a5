"""Shadow mode on the desk: what it keeps of the comparisons (ShadowBook); and with a
real model registry (MLflow on SQLite): challengers registered as a training run
registers them, loaded by the service's hot swap, asked at every decision that asks a
model; the journal's decision rows carry both answers, the desk counts agreement
(Prometheus, GET /api/models/shadow's report), and the champion's decisions are the
rows it journals without a challenger.

The desk runs on a clock the test moves (one simulated second at a time, from the same
instant each time), so that three runs of the same parent can be compared row for row."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from router.api.responses import DecisionList, ShadowReport
from router.desk import Desk, DeskConfig
from router.desk.shadow import KEEP_DISAGREEMENTS, ShadowBook
from router.desk.sim import SimMarkets
from router.desk_api import DecisionMade
from router.domain import NANOS_PER_SECOND
from router.journal import Journal
from router.model_admin import ModelAdmin, open_admin
from router.registry import ModelRegistry
from router.shadow import Challenger, compare_pace
from tests.router.challengers import FAMILIES, altered, copy_of
from tests.router.desk.support import order, record

T0 = 1_800_000_000_000_000_000  # the service clock at each run's start
HORIZON_S = 1800


@dataclass
class Traded:
    parent_id: str
    rows: list[Any]  # SvcDecisionRow, in seq order
    api: list[dict[str, Any]]  # GET /api/orders/{id}/decisions's
    report: dict[str, Any]
    counters: dict[tuple[str, str], float]  # (series, family) -> value
    events: list[DecisionMade]

    def without_shadow(self) -> list[tuple[Any, ...]]:
        return [
            (r.seq, r.decision_id, r.ts_ns, r.chosen, r.inputs_json, r.alternatives_json)
            for r in self.rows
        ]

    def shadows(self) -> dict[str, dict[str, Any]]:
        """decision_id -> its shadow, for the rows that have one."""
        return {r.decision_id: json.loads(r.shadow_json) for r in self.rows if r.shadow_json}

    def family(self, name: str) -> dict[str, Any]:
        return next(f for f in self.report["families"] if f["family"] == name)


async def _trade(folder: Path, name: str, served: ModelRegistry) -> Traded:
    """One ml sell of 200,000 QDI over 30 minutes on a fresh desk and journal."""
    config = DeskConfig(symbols={"QDI": "calm"}, sim_speed=400.0)
    journal = Journal.open(f"sqlite:///{folder / name}.db")
    metrics = CollectorRegistry()
    now = [T0]
    desk = Desk(config, journal, lambda: now[0], SimMarkets(config, models=served), metrics, served)
    desk.start()
    try:
        events = record(desk)
        view = desk.submit(order(desk, "S1", qty=200_000, horizon_s=HORIZON_S, strategy="ml"))
        for _ in range(HORIZON_S + 60):
            now[0] += NANOS_PER_SECOND
            desk._pump.advance(now[0])
        await desk.sync()
        assert desk.parent(view.parent_id).status.terminal
        rows = sorted(journal.decisions(view.parent_id, 100_000), key=lambda r: r.seq)
        counters = {
            (s.name, s.labels["family"]): s.value
            for family in metrics.collect()
            if family.name.startswith("blockroute_shadow")
            for s in family.samples
            if s.name.endswith(("_total", "_count"))
        }
        return Traded(
            view.parent_id,
            rows,
            desk.decisions(view.parent_id, 1000),
            desk.shadow_report(),
            counters,
            [e for e in events if isinstance(e, DecisionMade)],
        )
    finally:
        await desk.stop()
        journal.close()


# ------------------------------------------------------------------ the book


def _answer(agree: bool, challenger: int = 3, champion: int = 2, latency_us: float = 10.0) -> Any:
    ch = Challenger(None, challenger, champion, lambda: 0.0)
    theirs = (0.0, 1.0) if agree else (0.5, 1.7)
    return compare_pace(ch, (0.0, 1.0), theirs, latency_us / 1e6)


def test_the_book_counts_agreement_latency_and_the_latest_disagreements() -> None:
    book = ShadowBook()
    for i in range(30):
        book.observe(i, f"P{i}", _answer(agree=i % 3 != 0, latency_us=float(i)), (f"P{i}-1-d",))
    (slicer,) = (f for f in book.report({"slicer": 2}, {"slicer": 3})["families"] if f["decisions"])
    assert slicer["family"] == "slicer" and slicer["shadowing"]
    assert (slicer["decisions"], slicer["agreements"]) == (30, 20)
    assert slicer["agreement_rate"] == pytest.approx(20 / 30)
    assert slicer["latency_p50_us"] == pytest.approx(14.5)
    assert slicer["latency_p99_us"] == pytest.approx(28.71)
    assert slicer["compared"] == {"champion_version": 2, "challenger_version": 3}
    assert slicer["since_ns"] == 0
    # the latest first, at most KEEP_DISAGREEMENTS
    assert [d["parent_id"] for d in slicer["disagreements"]] == [
        f"P{i}" for i in (27, 24, 21, 18, 15, 12, 9, 6, 3, 0)
    ]
    latest = slicer["disagreements"][0]
    assert latest["decision_ids"] == ["P27-1-d"] and latest["diffs"]["action"] == [0.0, 0.5]
    assert latest["champion"] == {"action": 0.0, "pace": 1.0}
    for i in range(KEEP_DISAGREEMENTS + 5):
        book.observe(100 + i, "Q", _answer(agree=False), ())
    report = book.report({"slicer": 2}, {"slicer": 3})["families"]
    assert len(report[2]["disagreements"]) == KEEP_DISAGREEMENTS


def test_the_figures_start_again_with_another_pair_of_versions() -> None:
    book = ShadowBook()
    book.observe(1, "P", _answer(agree=False), ())
    book.observe(2, "P", _answer(agree=True, challenger=4), ())
    (fam,) = (f for f in book.report({}, {})["families"] if f["decisions"])
    assert (fam["decisions"], fam["agreement_rate"], fam["since_ns"]) == (1, 1.0, 2)
    assert fam["compared"]["challenger_version"] == 4 and fam["disagreements"] == []
    # versions served now come from the registry, not from what was compared
    assert (fam["champion_version"], fam["challenger_version"], fam["shadowing"]) == (
        None,
        None,
        False,
    )


def test_an_empty_book_reports_every_family_with_nothing_measured() -> None:
    families = ShadowBook().report({"dealer": 1, "fill": 1, "slicer": 1}, {})["families"]
    assert [f["family"] for f in families] == ["dealer", "fill", "slicer"]
    for f in families:
        assert f["decisions"] == 0 and f["agreement_rate"] is None
        assert f["latency_p50_us"] is None and f["compared"] is None


# ------------------------------------------------------------------ a desk


@pytest.fixture
def admin(registry_db_url: str) -> Iterator[ModelAdmin]:
    clock = itertools.count(T0, NANOS_PER_SECOND)
    a = open_admin(registry_db_url, lambda: next(clock))
    yield a
    a.close()


@pytest.mark.requires_extra("registry", "mlflow")
async def test_decisions_record_both_answers_and_the_champion_trades_as_alone(
    admin: ModelAdmin, tmp_path: Path
) -> None:
    from router.hotswap import ModelSwapper

    served = admin.serving()
    swapper = ModelSwapper(admin, served, now_ns=time.time_ns, timer=time.perf_counter, shadow=True)
    await swapper.sync()
    assert swapper.shadowed == {}  # a fresh registry: champions only
    alone = await _trade(tmp_path, "alone", served)

    # byte-identical challengers, registered as `train ... --register` registers them
    for family in FAMILIES:
        admin.register(family, copy_of(tmp_path, family), "ci", "the same files", {"seed": 1})
    await swapper.sync()
    assert swapper.shadowed == dict.fromkeys(FAMILIES, 2)
    same = await _trade(tmp_path, "same", served)

    # challengers that answer otherwise (tests/router/challengers.py)
    for family in FAMILIES:
        admin.register(family, altered(tmp_path, family), "ci", "answers otherwise", {})
    await swapper.sync()
    assert swapper.shadowed == dict.fromkeys(FAMILIES, 3)
    other = await _trade(tmp_path, "other", served)

    # the champion's decisions, row for row, whatever the challenger
    assert len(alone.rows) > 100
    assert same.without_shadow() == alone.without_shadow()
    assert other.without_shadow() == alone.without_shadow()
    assert alone.shadows() == {} and all("shadow" not in d for d in alone.api)
    assert all(f["decisions"] == 0 and not f["shadowing"] for f in alone.report["families"])
    assert all("shadow" not in e.payload() for e in alone.events)

    # identical: every shadowed decision agrees, on every family
    shadows = same.shadows()
    assert {family for s in shadows.values() for family in s} == set(FAMILIES)
    for s in shadows.values():
        for answer in s.values():
            assert answer["agree"] and answer["diffs"] == {}
            assert answer["champion"] == answer["challenger"]
            assert (answer["champion_version"], answer["challenger_version"]) == (1, 2)
    for row in same.rows:  # the decisions the models made carry their challengers'
        if row.chosen.startswith("request quotes"):
            assert "dealer" in shadows[row.decision_id]
        if row.chosen.startswith("post "):
            assert "fill" in shadows[row.decision_id]
    for family in FAMILIES:
        f = same.family(family)
        assert f["shadowing"] and (f["champion_version"], f["challenger_version"]) == (1, 2)
        assert f["decisions"] > 0 and f["agreement_rate"] == 1.0 and f["disagreements"] == []
        assert 0 < f["latency_p50_us"] <= f["latency_p99_us"]
        assert same.counters[("blockroute_shadow_decisions_total", family)] == f["decisions"]
        assert same.counters[("blockroute_shadow_agreements_total", family)] == f["decisions"]
        assert same.counters[("blockroute_shadow_latency_seconds_count", family)] == f["decisions"]
    assert same.family("slicer")["decisions"] == HORIZON_S // 300  # a pace every 5 minutes
    # on the API and the bus as in the journal
    ShadowReport.model_validate(same.report)
    DecisionList.model_validate({"parent_id": same.parent_id, "decisions": same.api})
    assert {d["decision_id"] for d in same.api if "shadow" in d} == set(shadows)
    published = {e.decision_id: e.shadow for e in same.events if e.shadow is not None}
    assert published == shadows

    # otherwise: each family disagrees somewhere, and says where
    shadows = other.shadows()
    decisions = {r.decision_id for r in other.rows}
    for family in FAMILIES:
        f = other.family(family)
        assert (f["champion_version"], f["challenger_version"]) == (1, 3)
        assert f["decisions"] == same.family(family)["decisions"]  # asked at the same points
        assert f["agreement_rate"] < 1.0 and f["disagreements"]
        agreed = other.counters[("blockroute_shadow_agreements_total", family)]
        assert agreed == f["agreements"] < f["decisions"]
        for d in f["disagreements"]:
            assert d["champion"] != d["challenger"] and d["diffs"]
            for decision_id in d["decision_ids"]:
                assert decision_id in decisions
                assert shadows[decision_id][family]["agree"] is False
    ShadowReport.model_validate(other.report)
