"""`blockroute train ... --register`: the trained family becomes a new version in the
model registry, the challenger, with its held-out metrics, seeds, arguments and
lineage; the champion stays. The registry's flags without --register are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.training import boosting
from router.cli import main


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
