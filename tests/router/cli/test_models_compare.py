"""`blockroute models compare`: the model set compared with itself end to end, and bad
input refused with one line before any episode runs."""

from __future__ import annotations

import json

import pytest

from router import model_compare
from router.cli import main, models_compare
from tests.router.test_model_compare import BOND, copy_models


def model_compare_models_dir():
    from models.serving.artifacts import MODELS_DIR

    return MODELS_DIR


def test_the_parser_defaults_are_the_modules():
    assert models_compare._MIN_EFFECT_BPS == model_compare.MIN_EFFECT_BPS
    assert models_compare._ALPHA == model_compare.ALPHA
    assert models_compare._POWER == model_compare.POWER


def test_a_model_set_against_itself_differs_by_exactly_nothing(tmp_path, capsys):
    challenger = copy_models(tmp_path / "same")
    out = tmp_path / "compare.json"
    argv = ["models", "compare", "--challenger", str(challenger), "--scenarios", BOND]
    code = main([*argv, "--episodes", "2", "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    doc = json.loads(out.read_text())
    assert doc["families_changed"] == [] and doc["seeds"] == [1000, 1001]
    assert doc["slicer_served"] == {"champion": False, "challenger": False}
    assert doc["strategy"] == "ml" and doc["held_out"] is True
    assert len(doc["pairs"]) == 4 and all(p["diff_bps"] == 0.0 for p in doc["pairs"])
    for r in (*doc["rows"], doc["pooled"]):
        assert r["champion_is_bps_mean"] == r["challenger_is_bps_mean"]
        assert (r["diff_bps_mean"], r["diff_bps_sd"], r["diff_bps_stderr"], r["t"]) == (0, 0, 0, 0)
    assert [(r["side"], r["episodes"]) for r in doc["rows"]] == [
        ("buy", 2),
        ("sell", 2),
        ("both", 4),
    ]
    assert (doc["is_diff_bps_mean"], doc["is_diff_bps_stderr"]) == (0.0, 0.0)
    assert doc["recommendation"] == "keep"
    assert doc["sample_size"]["pairs_needed"] == 0
    text = captured.out
    assert "recommendation: keep" in text and "families changed: none" in text
    assert "all" in text and "episodes per scenario and side (ran 2)" in text


def test_seeds_outside_the_held_out_range_are_flagged(tmp_path, capsys, monkeypatch):
    # the run itself is not the point: stub it, keep the command's own checks
    def fake(*args, **kwargs):
        return {"stub": True, "families_changed": [], "recommendation": "inconclusive"}

    monkeypatch.setattr(model_compare, "compare_models", fake)
    argv = ["models", "compare", "--challenger", str(tmp_path), "--seed0", "5000000"]
    assert main([*argv, "--episodes", "3", "--json", "-"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {
        "stub": True,
        "held_out": False,
        "families_changed": [],
        "family": None,
        "champion": str(model_compare_models_dir()),
        "challenger": str(tmp_path),
        # CONTRACT.md's promote|keep: too small a run keeps the champion, and says why
        "recommendation": "keep",
        "verdict": "inconclusive",
    }
    assert "seeds 5000000-5000002 leave the held-out range 1000-1999" in captured.err


def _spoil_slicer(d):
    (d / "slicer.onnx").write_bytes(b"")


@pytest.mark.parametrize(
    ("extra", "spoil", "message"),
    [
        ([], None, "no such folder (the challenger's models)"),
        ([], _spoil_slicer, "slicer.onnx: empty policy file"),
        (["--champion", "{missing}"], None, "no such folder (the champion's models)"),
        (["--scenarios", "calm,nowhere"], None, "nowhere"),
        (["--scenarios", " , "], None, "--scenarios: no scenario given"),
        (["--strategy", "frob"], None, "frob"),
        (["--episodes", "1"], None, "--episodes: at least 2"),
        (["--alpha", "1.5"], None, "--alpha: must lie between 0 and 1"),
        (["--power", "0"], None, "--power: must lie between 0 and 1"),
        (["--min-effect-bps", "0"], None, "--min-effect-bps"),
        (["--json", "{missing}/out.json"], None, "--json: folder"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, extra, spoil, message):
    challenger = tmp_path / "missing"
    if spoil is not None:
        challenger = copy_models(tmp_path / "spoilt")
        spoil(challenger)
    elif extra:
        challenger = copy_models(tmp_path / "fine")
    extra = [e.replace("{missing}", str(tmp_path / "missing")) for e in extra]
    argv = ["models", "compare", "--challenger", str(challenger), "--scenarios", BOND]
    assert main([*argv, "--episodes", "2", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("blockroute: error: ") and message in err
    assert len(err.splitlines()) == 1


@pytest.mark.requires_extra("registry", "mlflow")
def test_contracts_form_compares_registry_versions_of_one_family(tmp_path, capsys, registry_db_url):
    """`models compare FAMILY --challenger V` (CONTRACT.md): the challenger a version of
    the family in the registry, every other family the champions'."""
    import shutil

    from models.serving.artifacts import MODELS_DIR, family_files
    from router.model_admin import open_admin

    folder = tmp_path / "trained"
    folder.mkdir()
    for path in family_files("dealer", MODELS_DIR):  # the same models: d must be 0
        shutil.copy(path, folder / path.name)
    admin = open_admin(registry_db_url, lambda: 1)
    try:
        admin.register("dealer", folder, "ci", "trained", {"seed": 7})
    finally:
        admin.close()
    argv = ["models", "compare", "dealer", "--challenger", "2", "--db-url", registry_db_url]
    code = main([*argv, "--scenarios", BOND, "--episodes", "2", "--json", "-"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert {"family", "champion", "challenger", "episodes", "is_diff_bps_mean"} <= set(doc)
    assert (doc["family"], doc["champion"], doc["challenger"]) == ("dealer", 1, 2)
    assert doc["episodes"] == 2 and doc["is_diff_bps_stderr"] == 0.0
    assert doc["recommendation"] == "keep" and doc["families_changed"] == []
    for bad, message in (("0", "a version number"), ("9", "dealer has no version 9")):
        code = main([*argv[:3], "--challenger", bad, "--db-url", registry_db_url])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
