"""`blockroute train ... --register`: the trained family becomes a new version in the
model registry, the challenger, with its held-out metrics, seeds, arguments and
lineage; the champion stays. The registry's flags without --register are refused."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.engine import make_url

from models.serving.artifacts import load_family
from models.serving.desk import DeskState
from models.serving.features import DEALER_FEATURES
from models.training import boosting
from models.training.dealer_data import DealerRows, rows_from_log
from models.training.fill_data import FillRows, rows_from_events
from router.cli import main
from router.domain import Event, RfqRequested, Side
from router.service import simulated_desk
from router.store import mask_url
from tests.router.desk.support import SPEED, journal_url, order, until


@pytest.mark.requires_extra("registry", "mlflow")
def test_train_fill_register_makes_the_result_the_challenger(
    tmp_path: Path, registry_db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    from router.model_admin import open_admin

    monkeypatch.setattr(boosting, "FILL_MAX_ROUNDS", 30)
    monkeypatch.setattr(boosting, "SCENARIOS", ("calm", "illiquid-bond"))
    argv = ["train", "fill", "--episodes", "3", "--seed", "9000", "--out", str(tmp_path / "out")]
    code = main([*argv, "--register", "--db-url", registry_db_url, "--by", "ci"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "registered fill version 2 as the challenger" in out
    admin = open_admin(registry_db_url, lambda: 1)
    try:
        v2 = admin.show("fill", 2)
        assert v2.aliases == ("challenger",)
        assert (v2.params["episodes"], v2.params["seed"]) == ("3", "9000")
        meta = json.loads((tmp_path / "out" / "fill.meta.json").read_text())
        assert v2.metrics["passive.auc"] == meta["metrics"]["passive"]["auc"]
        assert v2.lineage["created_by"] == "blockroute train fill --episodes 3 --seed 9000"
        assert v2.lineage["replaces"] == "1"
        assert admin.show("fill").version == 1  # the champion is untouched
        row = admin.journal.alias_changes("fill")[-1]
        assert (row.alias, row.from_version, row.to_version, row.action, row.by) == (
            "challenger",
            None,
            2,
            "register",
            "ci",
        )
    finally:
        admin.close()


def test_the_registry_flags_need_register(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "fill", "--db-url", "sqlite:///x.db"]) == 2
    err = capsys.readouterr().err
    assert err == "blockroute: error: --db-url: only with --register\n"


# ---------------------------------------------------------------- --from-journal


@dataclass
class Reference:
    """What the simulated-history path computes on the same events the desk journaled:
    `dealer_data.rows_from_log` on the world's own RFQ events, price path and axe log,
    `fill_data.rows_from_events` on the executions' own events (world time, NaNs and
    all, as the engine made them)."""

    dealer: DealerRows
    fill: FillRows


async def _journal_by_desk(tmp_path: Path, db_url: str) -> Reference:
    """A desk on QDI's calm market, trading smart-routed parents (heuristic and model
    panels, both sides) until all are done; its journal at `db_url`."""
    async with simulated_desk(tmp_path, SPEED, db_url=db_url) as desk:
        projector = desk._projector
        events: list[Event] = []
        journaled = projector.on_engine_event

        def on_engine_event(rec: Any, e: Event) -> None:
            events.append(e)
            journaled(rec, e)

        projector.on_engine_event = on_engine_event  # type: ignore[method-assign]
        pids = [
            desk.submit(
                order(
                    desk,
                    f"L{i}",
                    qty=300_000,
                    horizon_s=3600.0,
                    strategy=("sor", "ml")[i % 2],
                    side=(Side.SELL, Side.BUY)[i // 2 % 2],
                )
            ).parent_id
            for i in range(8)
        ]
        await until(lambda: all(desk.parent(p).status.terminal for p in pids), 60)
        await desk.sync()
        session = desk._markets["QDI"]
        panel = session.panel
        assert panel is not None and session.world.rfq is not None
        rfq_events = projector.rfq_events["QDI"]
        requests = [e for e in rfq_events if isinstance(e, RfqRequested)]
        number = {e.request.rfq_id: i for i, e in enumerate(requests)}
        sides = {r: desk.parent(r.rsplit("-", 1)[0]).side for r in number}
        dealer = rows_from_log(
            rfq_events,
            # the world's whole path: a request's 10-minute window may reach before its
            # clock's 0 (the market runs before the session opens)
            session.price_path(-1e12),
            desk=DeskState(panel.ids, panel.name, float(session.instrument.adv)),
            start_tod_s=session.scenario.start_tod_s,
            axe_log=session.world.rfq.axe_log,
            day=0,
            sides=sides,
            day_of=lambda e: number[e.request.rfq_id],
        )
    return Reference(dealer, rows_from_events(events, 0))


def _in_request_order(rows: DealerRows) -> DealerRows:
    by, hit = np.argsort(rows.day, kind="stable"), np.argsort(rows.day_hit, kind="stable")
    return DealerRows(
        rows.x[by],
        rows.respond[by],
        rows.best[by],
        rows.oracle_respond[by],
        rows.oracle_best[by],
        rows.day[by],
        rows.x_hit[hit],
        rows.hit[hit],
        rows.day_hit[hit],
    )


def _sorted_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The rows with their labels, in an order that does not depend on how ties in
    time were broken."""
    both = np.column_stack([x, y])
    return both[np.lexsort(both.T[::-1])]


@pytest.mark.requires_extra("registry", "mlflow")
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_train_from_the_journal_of_a_desk(
    tmp_path: Path,
    backend: str,
    request: pytest.FixtureRequest,
    registry_db_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from models.training import journal_data
    from router.journal import Journal
    from router.model_admin import open_admin

    url = journal_url(backend, tmp_path, request)
    ref = await _journal_by_desk(tmp_path, url)
    journal = Journal.open_existing(url)
    try:
        got = journal_data.dealer_rows(journal)
        fills = journal_data.fill_rows(journal)
        requested = [r for r in journal.rfq_history() if r.what == "requested"]
        passive = [c for c in journal.children_sent(0) if journal_data._is_passive(c)]
    finally:
        journal.close()
    # as many rows as the journal holds facts: a request gives one row per dealer asked
    assert got.requests == len(requested) >= 20 and got.skipped == 0
    asked = sum(len(json.loads(r.detail_json)["dealers"]) for r in requested)
    assert got.rows.x.shape == (asked, len(DEALER_FEATURES))
    assert fills.pending == 0 and fills.rows.x.shape[0] == len(passive) > 40
    # ... and the simulated history's replays give the same rows on the same events
    want = _in_request_order(ref.dealer)
    for name in ("x", "respond", "best", "day", "x_hit", "hit", "day_hit"):
        assert np.array_equal(getattr(got.rows, name), getattr(want, name), equal_nan=True), name
    assert np.array_equal(
        _sorted_rows(fills.rows.x, fills.rows.y), _sorted_rows(ref.fill.x, ref.fill.y)
    )

    # the dealer models from the journal alone, registered as the challenger
    out = tmp_path / "dealer"
    argv = ["train", "dealer", "--from-journal", url, "--out", str(out)]
    code = main([*argv, "--register", "--db-url", registry_db_url, "--by", "ci"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "registered dealer version 2 as the challenger" in captured.out
    served = load_family("dealer", out)  # as the service loads them
    assert set(served) == {"respond", "best", "hit"}
    meta = json.loads((out / "dealer.meta.json").read_text())
    source = meta["training"]["journal"]
    masked = mask_url(url)
    password = make_url(url).password
    assert source["url"] == masked
    assert not password or (f":{password}@" not in masked and ":***@" in masked)
    assert (source["rows_requests"], source["rows_dealer"]) == (got.requests, asked)
    assert source["first"] == journal_data.iso(got.first_ns)
    assert meta["training"]["rows_simulated"] == 0 and meta["training"]["seeds"] == []
    # the journal's latest requests are the test rows, scored on their own
    assert meta["metrics"]["respond"]["journal_n"] == meta["metrics"]["respond"]["n"] > 0
    admin = open_admin(registry_db_url, lambda: 1)
    try:
        v2 = admin.show("dealer", 2)
        assert v2.aliases == ("challenger",)
        assert v2.lineage["journal.url"] == masked
        assert v2.lineage["journal.rows_requests"] == str(got.requests)
        assert v2.lineage["journal.last"] == journal_data.iso(got.last_ns)
        assert v2.lineage["created_by"].endswith(f"--from-journal {masked}")
        assert v2.params["from_journal"] == masked
        assert admin.show("dealer").version == 1  # the champion stays
    finally:
        admin.close()

    # the fill model from the journal mixed with simulated episodes
    monkeypatch.setattr(boosting, "FILL_MAX_ROUNDS", 30)
    monkeypatch.setattr(boosting, "SCENARIOS", ("calm", "illiquid-bond"))
    out = tmp_path / "fill"
    argv = ["train", "fill", "--from-journal", url, "--mix-simulated", "--episodes", "3"]
    assert main([*argv, "--seed", "9000", "--out", str(out)]) == 0
    meta = json.loads((out / "fill.meta.json").read_text())
    passive_metrics = meta["metrics"]["passive"]
    assert meta["training"]["rows"] == meta["training"]["rows_simulated"] + len(passive)
    assert meta["training"]["journal"]["rows_passive"] == len(passive)
    # both sources in every split: the journal's last 15% are among the test rows
    assert 0 < passive_metrics["journal_n"] < passive_metrics["n"]
    assert 0 < passive_metrics["journal_n_train"] < passive_metrics["n_train"]
    load_family("fill", out)

    # too few requests in the range asked, or none: refused, nothing written
    late = journal_data.iso(got.last_ns)
    for since, says in ((late, "holds 1 requests"), ("2999-01-01T00:00", "holds no requests")):
        capsys.readouterr()
        out = tmp_path / "refused"
        assert (
            main(["train", "dealer", "--from-journal", url, "--since", since, "--out", str(out)])
            == 2
        )
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1, err
        assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (
            ["--from-journal", "sqlite:///missing.db"],
            "--from-journal: database sqlite:///missing.db: cannot open: no such file",
        ),
        (
            ["--from-journal", "mysql://u:secret@h/db"],
            "--from-journal: database mysql://u:***@h/db: cannot open",
        ),
        (
            ["--from-journal", "sqlite:///blank.db"],
            "not a blockroute journal (no table svc_parents)",
        ),
        (["--from-journal", "sqlite:///empty.db"], "the journal holds no requests for quotes"),
        (
            ["--from-journal", "sqlite:///empty.db", "--since", "yesterday"],
            "--since: 'yesterday' is not an ISO 8601 time",
        ),
        (["--since", "2026-12-01"], "--since: only with --from-journal"),
        (["--mix-simulated"], "--mix-simulated: only with --from-journal"),
    ],
)
def test_train_from_journal_refuses_bad_input_writing_nothing(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    from router.journal import Journal

    sqlite3.connect("blank.db").close()  # a database, not a journal
    Journal.open("sqlite:///empty.db").close()  # a journal with nothing in it
    before = sorted(p.name for p in Path().iterdir())
    code = main(
        ["train", "dealer", *argv, "--out", "out", "--register", "--db-url", "sqlite:///r.db"]
    )
    err = capsys.readouterr().err
    assert code == 2 and says in err and err.count("\n") == 1, err
    assert "secret" not in err
    assert sorted(p.name for p in Path().iterdir()) == before  # no model, no registry
