"""`blockroute evaluate models`: the shipped models scored on freshly simulated held-out
data, against the simulator's own probabilities (the oracle)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from router.cli.args import (
    Parser,
    Subparsers,
    UsageError,
    add_executor,
    add_json,
    check_executor,
    integer,
    positive_int,
)
from router.cli.console import Col, Progress, left, print_table
from router.cli.output import check_json_path, emit_json


def register(sub: Subparsers) -> None:
    """Add `evaluate models` to the top-level subcommands."""
    ev = sub.add_parser("evaluate", help="score the shipped models on held-out simulations")
    esub = ev.add_subparsers(dest="what", required=True, parser_class=Parser)
    em = esub.add_parser("models", help="dealer and fill models vs the simulator's oracle")
    em.add_argument(
        "--seed",
        type=integer,
        default=900_000,  # models.training.evaluate.EVAL_SEED
        help="first held-out seed",
    )
    add_json(em, "write JSON here ('-' = stdout)")
    em.add_argument("--models", type=Path, help="folder of the artifacts (default: models/)")
    em.add_argument(
        "--dealer-days",
        type=positive_int,
        default=4,  # models.training.evaluate.DEALER_DAYS
        help="scored RFQ days per scenario (after 3 days of history)",
    )
    em.add_argument(
        "--fill-episodes",
        type=positive_int,
        default=4,  # models.training.evaluate.FILL_EPISODES
        help="sor-lit episodes per scenario",
    )
    add_executor(em, "worker processes (the same rows on any number)")
    em.set_defaults(func=run_models)


def run_models(args: argparse.Namespace) -> None:
    """`evaluate models`. A missing or unreadable artifact raises
    `models.serving.artifacts.ModelError`."""
    from models.serving.artifacts import MODELS_DIR
    from models.training.evaluate import evaluate
    from router.ray_tasks import ExecutorUnavailable

    check_executor(args.executor, args.ray_address)
    check_json_path(args.json_path)
    try:
        with Progress("evaluate models") as bar:
            doc = evaluate(
                args.seed,
                args.models or MODELS_DIR,
                bar,
                dealer_days=args.dealer_days,
                fill_episodes=args.fill_episodes,
                workers=args.workers,
                executor=args.executor,
                ray_address=args.ray_address,
            )
    except ExecutorUnavailable as exc:  # e.g. an unreachable --ray-address
        raise UsageError(str(exc)) from None
    if args.json_path != "-":
        _print_evaluation(doc)
    emit_json(args.json_path, doc)


def _print_evaluation(doc: dict[str, Any]) -> None:
    rows = []
    for name in ("dealer", "dealer_respond", "dealer_hit", "fill", "fill_all"):
        m = doc[name]
        oracle = m.get("oracle_auc")
        against = (
            [f"{oracle:.3f}", f"{m['ratio']:.3f}", f"{m['ratio_sd']:.3f}"]
            if oracle
            else ["", "", ""]
        )
        rows.append(
            [name, f"{m['auc']:.3f}", *against, f"{m['brier']:.4f}", f"{m['ece']:.4f}", str(m["n"])]
        )
    columns: list[Col | str] = [
        left("model"),
        "AUC",
        "oracle",
        "ratio",
        "± sd",
        "Brier",
        "ECE",
        "rows",
    ]
    print_table(columns, rows)
    given = doc["fill_given_fair"]
    if given["n"]:
        print(
            f"fill, within {given['strata']} strata of the simulator's hidden fair price: "
            f"AUC {given['auc']:.3f}, oracle {given['oracle_auc']:.3f}, "
            f"ratio {given['ratio']:.3f} ± {given['ratio_sd']:.3f} ({given['n']} rows)"
        )
    print(
        "± sd: bootstrap over whole days and episodes within their scenario "
        f"({doc['meta']['bootstrap']['replicates']} replicates)"
    )
    clipped = doc["meta"]["clipped"]
    if any(clipped.values()):
        print(f"features clipped to the training range: {clipped}")
