"""`blockroute models compare`: a challenger's model artifacts against the champion's,
on the same paired seeds and markets, both sides of every scenario
(router.model_compare), with a recommendation to promote, to keep, or to run more
episodes."""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Any

from router.cli.args import (
    Subparsers,
    UsageError,
    add_json,
    integer,
    positive_float,
    positive_int,
)
from router.cli.console import Col, Progress, left, print_table
from router.cli.output import check_json_path, emit_json

# router.model_compare's defaults, repeated so that building the parser loads no
# simulator (tests/router/cli/test_models_compare.py checks that they agree)
_MIN_EFFECT_BPS = 2.0
_ALPHA = 0.05
_POWER = 0.8


def add_compare_parser(subparsers: Subparsers) -> None:
    """Add `compare` to a `models` group's subcommands."""
    mc = subparsers.add_parser(
        "compare",
        help="a challenger's models against the champion's on paired seeds, both sides",
        description="Run one strategy on the champion's and the challenger's model "
        "artifacts on the same seeds and markets, both sides of every scenario, and "
        "recommend promote, keep, or more episodes. Promote: the pooled paired IS "
        "difference (challenger - champion) < 0 with t <= -2, and no scenario and side "
        "worse by more than 2 standard errors.",
    )
    mc.add_argument(
        "family",
        nargs="?",
        help="dealer, fill or slicer: --challenger (and --champion) are then versions of "
        "it in the model registry, the other families the registry's champions",
    )
    mc.add_argument(
        "--champion",
        help="with FAMILY: a version (default: the champion); without: a folder of "
        "artifacts as models/ holds them (default: the shipped models/)",
    )
    mc.add_argument(
        "--challenger",
        required=True,
        help="with FAMILY: a version of it in the registry; without: a folder of artifacts",
    )
    mc.add_argument("--db-url", default=None, help="with FAMILY: the registry's database")
    mc.add_argument("--artifacts", default=None, help="with FAMILY: the registry's files")
    mc.add_argument(
        "--scenarios",
        default="calm,news-shock,liquidity-squeeze,trending,high-vol,illiquid-bond",
        help="comma-separated scenario names (default: the six of config/scenarios)",
    )
    mc.add_argument(
        "--episodes",
        type=positive_int,
        default=24,
        help="seeds per scenario, each run on both sides (default: 24; at least 2)",
    )
    mc.add_argument(
        "--seed0",
        type=integer,
        help="first seed (default: the first of the held-out seeds 1000-1999, which "
        "training refuses)",
    )
    mc.add_argument(
        "--strategy",
        default="ml",
        help="the strategy both run: ml (default), sor-ml or risk-bid read the models",
    )
    mc.add_argument(
        "--min-effect-bps",
        type=positive_float,
        default=_MIN_EFFECT_BPS,
        help="the smallest saving worth a change, declared before the run; sets the "
        f"episodes needed (default: {_MIN_EFFECT_BPS:g})",
    )
    mc.add_argument(
        "--alpha", type=float, default=_ALPHA, help=f"two-sided test level (default {_ALPHA})"
    )
    mc.add_argument(
        "--power", type=float, default=_POWER, help=f"power to find the effect (default {_POWER})"
    )
    mc.add_argument(
        "--workers", type=positive_int, default=1, help="worker processes (the same rows on any)"
    )
    add_json(mc, "write JSON here ('-' = stdout)")
    mc.set_defaults(func=run_compare)


def run_compare(args: argparse.Namespace) -> None:
    """`models compare`. Bad input (a missing folder, a missing or corrupt artifact, an
    unknown scenario or strategy, fewer than two episodes, a level or power outside
    (0, 1)) raises before any episode runs."""
    from models.serving.artifacts import MODELS_DIR
    from router.model_compare import MIN_EPISODES

    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if not scenarios:
        raise UsageError("--scenarios: no scenario given")
    if args.episodes < MIN_EPISODES:
        raise UsageError(
            f"--episodes: at least {MIN_EPISODES} (a standard error needs two seeds), "
            f"got {args.episodes}"
        )
    for flag, value in (("--alpha", args.alpha), ("--power", args.power)):
        if not 0 < value < 1:
            raise UsageError(f"{flag}: must lie between 0 and 1, got {value:g}")
    check_json_path(args.json_path)
    with contextlib.ExitStack() as stack:
        if args.family is None:
            champion = Path(args.champion) if args.champion else MODELS_DIR
            challenger = Path(args.challenger)
            labels: tuple[Any, Any] = (str(champion), str(challenger))
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="blockroute-")))
            champion, challenger, labels = _from_registry(args, folder)
        doc = _compare(args, scenarios, champion, challenger)
    # CONTRACT.md: which family, which versions (or folders), and promote or keep; a run
    # too small to decide keeps the champion, and says so in `verdict` and `reason`
    changed = doc["families_changed"]
    doc["family"] = args.family or (",".join(changed) or None)
    doc["champion"], doc["challenger"] = labels
    doc["verdict"] = doc["recommendation"]
    if doc["recommendation"] != "promote":
        doc["recommendation"] = "keep"
    if args.json_path != "-":
        _print_compare(doc)
    emit_json(args.json_path, doc)


def _from_registry(args: argparse.Namespace, folder: Path) -> tuple[Path, Path, tuple[int, int]]:
    """Two folders under `folder` that hold every family's files, as models/ does: the
    registry's champions, and in one of them FAMILY's --challenger version (in the
    other FAMILY's --champion, if given). Raises UsageError on a bad version."""
    import shutil
    import time

    from models.catalog import FAMILIES, check_family
    from models.serving.artifacts import family_files
    from router.model_admin import open_admin
    from router.store import DEFAULT_URL

    check_family(args.family)
    versions = {}
    for flag in ("champion", "challenger"):
        text = getattr(args, flag)
        if text is None:
            continue
        if not text.isdigit() or int(text) < 1:
            raise UsageError(f"--{flag}: with a FAMILY, a version number (1, 2, ...), got {text!r}")
        versions[flag] = int(text)
    admin = open_admin(args.db_url or DEFAULT_URL, time.time_ns, artifacts_at=args.artifacts)
    try:
        admin.ensure_shipped()
        champions = {f: admin.show(f).version for f in FAMILIES}
        for version in versions.values():
            admin.show(args.family, version)  # CatalogError names a version not there
        ours = {**champions, args.family: versions.get("champion", champions[args.family])}
        theirs = {**champions, args.family: versions["challenger"]}
        out = []
        for name, chosen in (("champion", ours), ("challenger", theirs)):
            target = folder / name
            target.mkdir()
            for family, version in chosen.items():
                for path in family_files(family, admin.catalog.files(family, version)):
                    shutil.copy2(path, target / path.name)
            out.append(target)
    finally:
        admin.close()
    return out[0], out[1], (ours[args.family], theirs[args.family])


def _compare(
    args: argparse.Namespace, scenarios: list[str], champion: Path, challenger: Path
) -> dict[str, Any]:
    from models.training.execenv import HELD_OUT_SEEDS
    from router.model_compare import compare_models

    seed0 = HELD_OUT_SEEDS.start if args.seed0 is None else args.seed0
    held_out = seed0 in HELD_OUT_SEEDS and seed0 + args.episodes - 1 in HELD_OUT_SEEDS
    n = 2 * len(scenarios) * args.episodes * 2
    with Progress(f"models compare {n} episodes") as bar:
        doc = compare_models(
            champion,
            challenger,
            scenarios,
            args.episodes,
            seed0,
            args.config_dir,
            strategy=args.strategy,
            workers=args.workers,
            min_effect_bps=args.min_effect_bps,
            alpha=args.alpha,
            power=args.power,
            progress=bar,
        )
    doc["held_out"] = held_out
    if not held_out:
        print(
            f"blockroute: warning: seeds {seed0}-{seed0 + args.episodes - 1} leave the "
            f"held-out range {HELD_OUT_SEEDS.start}-{HELD_OUT_SEEDS.stop - 1}: a model may "
            "have trained on them",
            file=sys.stderr,
        )
    return doc


def _t(t: float | None) -> str:
    return "" if t is None else f"{t:+.1f}"


def _print_compare(doc: dict[str, Any]) -> None:
    changed = ", ".join(doc["families_changed"]) or "none"
    first, last = doc["seeds"]
    print(
        f"{doc['strategy']}: challenger {doc['challenger']} against champion "
        f"{doc['champion']} (families changed: {changed}); seeds {first}-{last}, both sides"
    )
    rows = [
        [
            r["scenario"],
            r["side"],
            str(r["episodes"]),
            f"{r['champion_is_bps_mean']:.2f}",
            f"{r['challenger_is_bps_mean']:.2f}",
            f"{r['diff_bps_mean']:+.2f}",
            f"{r['diff_bps_stderr']:.2f}",
            f"{r['diff_bps_sd']:.2f}",
            _t(r["t"]),
        ]
        for r in (*doc["rows"], doc["pooled"])
    ]
    head: list[Col | str] = [left("scenario"), left("side"), "episodes"]
    print_table([*head, "champion IS", "challenger IS", "diff", "+-se", "sd", "t"], rows)
    served = doc["slicer_served"]
    if "slicer" in doc["families_changed"] and not (served["champion"] or served["challenger"]):
        print("neither slicer is served (its validation did not promote it): ml paces as sor-ml")
    s = doc["sample_size"]
    print(
        f"minimum effect {s['min_effect_bps']:g} bps at alpha {s['alpha']:g}, power "
        f"{s['power']:g}: paired sd {s['sd_bps']:.2f} bps a seed -> {s['pairs_needed']} "
        f"seeds, {s['episodes_needed']} episodes per scenario and side (ran {doc['episodes']})"
    )
    print(f"recommendation: {doc['recommendation']} ({doc['verdict']}: {doc['reason']})")
    n = 2 * 2 * len(doc["scenarios"]) * doc["episodes"]
    print(f"{n} episodes (champion and challenger) in {doc['meta']['wall_s']:.1f} s")
