import argparse
import shutil
import subprocess
import sys

import pytest

from router.cli import build_parser, main
from router.config import DEFAULT_CONFIG_DIR


def run_cli(*args: str) -> int:
    return main(list(args))


def test_malformed_config_exits_2(tmp_path, capsys):
    cfg = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, cfg)
    (cfg / "scenarios" / "calm.toml").write_text("this is not toml = = \n")
    assert run_cli("--config-dir", str(cfg), "simulate", "--scenario", "calm") == 2
    err = capsys.readouterr().err.strip()
    assert "calm.toml: not valid TOML" in err and len(err.splitlines()) == 1


def test_console_script_runs_and_reports_usage_errors():
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "router.cli",
            "simulate",
            "--scenario",
            "calm",
            "--horizon",
            "10m",
            "--qty",
            "10000",
            "--strategies",
            "twap",
        ],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "twap" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "router.cli", "simulate"], capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert "--scenario" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


# every command of the contract (CONTRACT.md) and the rest of the README's tour
COMMANDS = {
    "simulate",
    "backtest",
    "dealers scorecard",
    "dealers pnl",
    "train dealer",
    "train fill",
    "train slicer",
    "models list",
    "models show",
    "models promote",
    "models rollback",
    "evaluate models",
    "models compare",
    "models wheel",
    "schedule ac",
    "serve",
    "bench book",
    "bench impact",
    "bench risk-transfer",
    "bench drift",
    "bench pace",
    "bench lead",
    "bench scenario",
    "bench fix",
    "bench memory",
    "bench decide",
    "bench shadow",
    "bench scale",
    "bench all",
    "bench startup",
    "replay check",
    "replay facts",
    "replay report",
}


def _leaves(parser: argparse.ArgumentParser, path: str = "") -> dict[str, argparse.ArgumentParser]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {path: parser}
    return {
        leaf: p
        for name, child in subs[0].choices.items()
        for leaf, p in _leaves(child, f"{path} {name}".strip()).items()
    }


def test_every_command_is_bound_to_the_function_that_runs_it():
    leaves = _leaves(build_parser())
    assert set(leaves) == COMMANDS
    for name, parser in leaves.items():
        assert callable(parser.get_default("func")), name


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: command"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["dealers"], "blockroute dealers: the following arguments are required: dealers"),
        (["bench", "fix", "--desk", "fake"], "blockroute bench fix: argument --desk"),
        (["serve", "--fix-port", "70000"], "not a TCP port: 70000"),
        (["simulate", "--scenario", "calm", "--frob"], "unrecognized arguments: --frob"),
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys, argv, message):
    assert run_cli(*argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("blockroute: error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_a_bad_log_level_is_a_usage_error(capsys):
    assert run_cli("--log-level", "loud", "bench", "book", "--events", "10") == 2
    assert capsys.readouterr().err == "blockroute: error: --log-level: unknown log level 'loud'\n"


def test_an_internal_failure_exits_1_with_one_line(monkeypatch, capsys):
    import router.cli.bench

    def broken(args: argparse.Namespace) -> None:
        raise RuntimeError("the book is on fire")

    monkeypatch.setattr(router.cli.bench, "run_book", broken)
    assert run_cli("bench", "book") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "blockroute: internal error: RuntimeError: the book is on fire"


def test_an_interrupt_exits_130(monkeypatch, capsys):
    import router.cli.bench

    def interrupted(args: argparse.Namespace) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(router.cli.bench, "run_book", interrupted)
    assert run_cli("bench", "book") == 130
    assert capsys.readouterr().err == "blockroute: interrupted\n"


@pytest.mark.parametrize(
    "error",
    [
        "router.store:StoreError",
        "models.serving.artifacts:ModelError",
        "simulators.replay.errors:ReplayError",
        "models.catalog:CatalogError",
    ],
)
def test_the_store_models_and_replay_errors_exit_2_with_one_line(monkeypatch, capsys, error):
    # their classes are imported only once such an error reaches main (below)
    import importlib

    import router.cli.bench

    module, name = error.split(":")
    cls = getattr(importlib.import_module(module), name)

    def failing(args: argparse.Namespace) -> None:
        # CatalogError names the input at fault too
        raise cls("no such thing", "family") if name == "CatalogError" else cls("no such thing")

    monkeypatch.setattr(router.cli.bench, "run_book", failing)
    assert run_cli("bench", "book") == 2
    assert capsys.readouterr().err == "blockroute: error: no such thing\n"


def test_help_and_usage_errors_import_neither_the_store_nor_the_models():
    # main's error clauses are tried in order, and the one for the store's and the
    # models' errors imports them (0.7 s): --help (SystemExit) and the command line's
    # own errors end before it
    code = (
        "import sys\n"
        "from router.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0\n"
        "assert main(['simulate', '--bogus']) == 2\n"
        "assert main(['--log-level', 'loud', 'bench', 'book']) == 2\n"
        "print(sorted(m for m in ('router.store', 'models.serving.artifacts', 'numba')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert "unrecognized arguments: --bogus" in out.stderr
