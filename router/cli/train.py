"""`blockroute train dealer|fill|slicer`: regenerate a shipped model from simulated
history. The defaults are the shipped training runs (the metadata's `created_by` names
the command that made it). With `--register` the result also becomes a new version in
the model registry, its challenger (router.model_admin), with its held-out metrics and
its seeds and arguments."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

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
from router.cli.console import Progress, left, print_table
from router.cli.models import add_mqtt, announce
from router.cli.output import check_json_path, emit_json
from router.config import epoch_ns

Trained = TypeVar("Trained")  # what a training returns: (files written, metadata)

_JSON_HELP = "write the metadata here ('-' = stdout)"
_OUT_HELP = "folder for the artifacts (default: models/)"


def register(sub: Subparsers) -> None:
    """Add `train dealer`, `train fill` and `train slicer` to the top-level subcommands."""
    tr = sub.add_parser("train", help="regenerate a shipped model from simulated history")
    tsub = tr.add_subparsers(dest="model", required=True, parser_class=Parser)
    td = tsub.add_parser("dealer", help="dealer models: P(respond), P(best quote), P(hit)")
    td.add_argument("--out", type=Path, help=_OUT_HELP)
    td.add_argument(
        "--days",
        type=positive_int,
        # models.training.boosting.DEALER_DAYS_PER_SCENARIO (not imported: xgboost is slow)
        default=20,
        help="simulated RFQ days per scenario",
    )
    td.add_argument("--seed", type=integer, default=100_000, help="seed of the first day")
    add_executor(td, "worker processes, one scenario's days each (the same rows on any number)")
    add_json(td, _JSON_HELP)
    _add_journal(td, "--days")
    _add_register(td)
    td.set_defaults(func=run_dealer)

    tf = tsub.add_parser("fill", help="fill model: P(a passive lit or dark order fills in 30 s)")
    tf.add_argument("--out", type=Path, help=_OUT_HELP)
    tf.add_argument(
        "--episodes",
        type=positive_int,
        default=288,  # models.training.boosting.FILL_EPISODES_PER_SCENARIO
        help="sor-lit episodes per scenario",
    )
    tf.add_argument("--seed", type=integer, default=200_000, help="seed of the first episode")
    add_executor(tf, "processes that run the episodes (the same rows on any number)")
    add_json(tf, _JSON_HELP)
    _add_journal(tf, "--episodes")
    _add_register(tf)
    tf.set_defaults(func=run_fill)

    _add_slicer(tsub)


def _add_slicer(tsub: Subparsers) -> None:
    tl = tsub.add_parser(
        "slicer", help="learned slicer: PPO on the execution environment, exported to ONNX"
    )
    tl.add_argument("--out", type=Path, help=_OUT_HELP)
    tl.add_argument(
        "--timesteps", type=positive_int, default=32_768, help="environment steps (5 min each)"
    )
    tl.add_argument(
        "--envs", type=positive_int, default=2, help="environments, one worker process each"
    )
    tl.add_argument(
        "--seed",
        type=integer,
        default=5_000_000,
        help="seed of the first training episode (never 1000-1999: the evaluation seeds)",
    )
    tl.add_argument(
        "--reward",
        choices=("arrival", "mark", "paired"),
        default="mark",
        help="the IS against arrival, marked to market each step, or marked and paired "
        "with sor-ml's schedule on the same episode (less noise, twice the simulation)",
    )
    tl.add_argument(
        "--algorithm",
        choices=("ppo", "ars"),
        default="ppo",
        help="ppo: an MLP by PPO (--timesteps, --reward); ars: a linear policy by random "
        "search on paired episodes (--iterations; --envs is then the worker processes)",
    )
    tl.add_argument(
        "--iterations", type=positive_int, default=30, help="ars: iterations of 6 episodes"
    )
    tl.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local worker processes (default) or Ray (the `ray` extra): ppo's environments "
        "as Ray actors, ars's episodes as Ray tasks; --envs is then the local cluster's CPUs",
    )
    tl.add_argument(
        "--ray-address",
        help="with --executor ray: 'auto' or ray://HOST:10001 (default: a local cluster "
        "started for this run)",
    )
    add_json(tl, _JSON_HELP)
    _add_register(tl)
    tl.set_defaults(func=run_slicer)


def _add_journal(p: argparse.ArgumentParser, simulated: str) -> None:
    p.add_argument(
        "--from-journal",
        metavar="DB_URL",
        help="train on what `blockroute serve` journaled in this database (SQLite or "
        "PostgreSQL URL) instead of simulated history; with --mix-simulated, on both",
    )
    p.add_argument(
        "--since",
        metavar="ISO-TIME",
        help="with --from-journal: only what was sent from then on (ISO 8601, UTC unless "
        "it says; the service clock), e.g. 2026-12-01T09:30",
    )
    p.add_argument(
        "--mix-simulated",
        action="store_true",
        help=f"with --from-journal: add the simulated history of {simulated} (split apart, "
        "each source 70/15/15 in its own time order)",
    )


def _add_register(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--register",
        action="store_true",
        help="register the result in the model registry as a new version, the challenger "
        "(the `registry` extra; `blockroute models promote` makes it champion)",
    )
    p.add_argument(
        "--db-url",
        help="with --register: the project database the registry lives beside "
        "(default: blockroute.db here)",
    )
    p.add_argument("--artifacts", help="with --register: the registry's artifact folder or URI")
    p.add_argument("--by", help="with --register: who registers it (default: this user)")
    add_mqtt(p, "with --register: ")


def _registry(args: argparse.Namespace) -> Any:
    """With --register, the model registry, opened before any training: a bad --db-url
    fails before the work, and the shipped files become version 1 before --out (models/
    by default) is overwritten. None without --register."""
    if not args.register:
        for flag in ("db_url", "artifacts", "by", "mqtt_url"):
            if getattr(args, flag) is not None:
                raise UsageError(f"--{flag.replace('_', '-')}: only with --register")
        return None
    from router.model_admin import open_admin
    from router.store import DEFAULT_URL

    admin = open_admin(args.db_url or DEFAULT_URL, time.time_ns, artifacts_at=args.artifacts)
    try:
        admin.ensure_shipped()
    except BaseException:
        admin.close()
        raise
    return admin


def _register(
    admin: Any, args: argparse.Namespace, out: Path, command: str, params: dict[str, object]
) -> None:
    """Register what training wrote to `out` as the family's challenger."""
    if admin is None:
        return
    by = args.by if args.by is not None else getpass.getuser()
    try:
        event = admin.register(args.model, out, by, f"trained: {command}", params)
    finally:
        admin.close()
    # beside a JSON document on standard output, the note goes to standard error
    print(
        f"registered {event.family} version {event.to_version} as the challenger",
        file=sys.stderr if args.json_path == "-" else sys.stdout,
    )
    announce(event, args.mqtt_url, args.mqtt_root)


def _out_dir(args: argparse.Namespace) -> Path:
    """The artifacts' folder (default: the shipped models' own), checked with --json
    before any training. Raises `UsageError` if either cannot be written to."""
    from models.serving.artifacts import MODELS_DIR

    out: Path = args.out or MODELS_DIR
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: {out} exists and is not a folder")
    check_json_path(args.json_path)
    return out


#: the fewest requests for quotes (passive child orders) in range that a training on a
#: journal takes: split 70/15/15 in time, 20 requests leave 3 to choose the number of
#: trees and the calibration, and 3 to score the result (each a handful of dealer rows);
#: passive orders are one row each and fill less than half the time, so 40 leave 6 and 6
MIN_JOURNAL_REQUESTS = 20
MIN_JOURNAL_PASSIVE = 40


def _since_ns(args: argparse.Namespace) -> int:
    """--since as ns since the epoch (0 without it). Raises `UsageError`."""
    for flag in ("since", "mix_simulated"):
        if getattr(args, flag) not in (None, False) and args.from_journal is None:
            raise UsageError(f"--{flag.replace('_', '-')}: only with --from-journal")
    if args.since is None:
        return 0
    try:
        when = dt.datetime.fromisoformat(args.since)
    except ValueError:
        raise UsageError(
            f"--since: {args.since!r} is not an ISO 8601 time (e.g. 2026-12-01T09:30)"
        ) from None
    return epoch_ns(when)


def _journal_source(args: argparse.Namespace, since_ns: int) -> tuple[Any, str, dict[str, str]]:
    """With --from-journal: the journal's rows for `args.model` (a JournalSource), the
    command line's part that says so and the registry's parameters for it; checked in
    full before anything is trained or written. Raises `UsageError` for a journal that
    cannot be opened, has no rows in range, or too few (MIN_JOURNAL_*)."""
    if args.from_journal is None:
        return None, "", {}
    from models.training import journal_data
    from models.training.boosting import JournalSource
    from router.journal import Journal
    from router.store import DbTimeouts, StoreError

    in_range = f"since {args.since}" if args.since else "in the journal"
    try:
        # a training reads a whole journal at once: a generous bound on each read
        journal = Journal.open_existing(args.from_journal, DbTimeouts(statement_s=600.0))
    except StoreError as exc:
        raise UsageError(f"--from-journal: {exc}") from None
    try:
        if args.model == "dealer":
            got = journal_data.dealer_rows(journal, since_ns)
            counts = {
                "requests": got.requests,
                "dealer": got.rows.x.shape[0],
                "hit": got.rows.x_hit.shape[0],
                "requests_without_screen": got.skipped,
            }
            what = "requests for quotes with their screen journaled"
            journal_data.check_enough(got.requests, MIN_JOURNAL_REQUESTS, what, in_range)
        else:
            got_fill = journal_data.fill_rows(journal, since_ns)
            counts = {"passive": got_fill.rows.x.shape[0], "pending": got_fill.pending}
            what = "passive child orders with a known outcome"
            journal_data.check_enough(counts["passive"], MIN_JOURNAL_PASSIVE, what, in_range)
            got = got_fill  # type: ignore[assignment]
        url = journal.url  # its password masked
    except StoreError as exc:
        raise UsageError(f"--from-journal: {exc}") from None
    except journal_data.JournalDataError as exc:
        raise UsageError(f"--from-journal: {exc}") from None
    finally:
        journal.close()
    description = journal_data.describe(url, since_ns, got.first_ns, got.last_ns, counts)
    command = f" --from-journal {url}" + (f" --since {args.since}" if args.since else "")
    command += " --mix-simulated" if args.mix_simulated else ""
    params = {"from_journal": url, "mix_simulated": str(bool(args.mix_simulated))}
    if args.since:
        params["since"] = args.since
    return JournalSource(got.rows, description), command, params


def run_dealer(args: argparse.Namespace) -> None:
    """`train dealer`: the three dealer models on simulated RFQ days, or on a service
    journal's requests (with --from-journal), or both."""
    from models.training.boosting import SCENARIOS, train_dealer

    since_ns = _since_ns(args)
    check_executor(args.executor, args.ray_address)
    out = _out_dir(args)
    journal, journal_command, journal_params = _journal_source(args, since_ns)
    days = args.days if journal is None or args.mix_simulated else 0
    admin = _registry(args)
    n = days * len(SCENARIOS)
    command = f"blockroute train dealer --days {args.days} --seed {args.seed}" + journal_command
    label = f"train dealer: {n} RFQ days" + (" and the journal" if journal is not None else "")
    written, meta = _train(
        admin,
        out,
        label,
        lambda bar: train_dealer(
            out,
            days,
            args.seed,
            bar,
            command,
            workers=args.workers,
            executor=args.executor,
            ray_address=args.ray_address,
            journal=journal,
        ),
    )
    if args.json_path != "-":
        _print_metrics(meta, written)
    params = {"days": days, "seed": args.seed, **journal_params}
    _register(admin, args, out, command, params)
    emit_json(args.json_path, meta)


def _close(admin: Any) -> None:
    if admin is not None:
        admin.close()


def _train(admin: Any, out: Path, label: str, train: Callable[[Progress], Trained]) -> Trained:
    """`train(bar)` under a progress bar labelled `label`. What fails for the user's
    reasons (an unreachable --ray-address, a journal with too few rows for a model, a
    training's own checks, an --out that cannot be written) as one line; the registry
    (`admin`, opened by --register) closed whatever fails."""
    try:
        with Progress(label) as bar:
            return train(bar)
    except BaseException as exc:
        _close(admin)
        from models.training.boosting import TooFewRows
        from models.training.slicer import TrainingError
        from router.ray_tasks import ExecutorUnavailable

        if isinstance(exc, (ExecutorUnavailable, TrainingError)):
            raise UsageError(str(exc)) from None
        if isinstance(exc, TooFewRows):  # the journal's rows of one model (e.g. hits)
            raise UsageError(f"--from-journal: too few rows for a model: {exc}") from None
        if isinstance(exc, OSError):
            raise UsageError(f"--out: cannot write {out}: {exc.strerror or exc}") from None
        raise


def run_fill(args: argparse.Namespace) -> None:
    """`train fill`: the fill model on simulated sor-lit episodes, or on a service
    journal's passive orders (with --from-journal), or both."""
    from models.training.boosting import SCENARIOS, train_fill

    since_ns = _since_ns(args)
    check_executor(args.executor, args.ray_address)
    out = _out_dir(args)
    journal, journal_command, journal_params = _journal_source(args, since_ns)
    episodes = args.episodes if journal is None or args.mix_simulated else 0
    admin = _registry(args)
    n = episodes * len(SCENARIOS)
    command = (
        f"blockroute train fill --episodes {args.episodes} --seed {args.seed}" + journal_command
    )
    label = f"train fill: {n} sor-lit episodes" + (
        " and the journal" if journal is not None else ""
    )
    written, meta = _train(
        admin,
        out,
        label,
        lambda bar: train_fill(
            out,
            episodes,
            args.seed,
            bar,
            command,
            workers=args.workers,
            executor=args.executor,
            ray_address=args.ray_address,
            journal=journal,
        ),
    )
    if args.json_path != "-":
        _print_metrics(meta, written)
    params = {"episodes": episodes, "seed": args.seed, **journal_params}
    _register(admin, args, out, command, params)
    emit_json(args.json_path, meta)


def _print_metrics(meta: dict[str, Any], written: list[Path]) -> None:
    rows = []
    for name, m in meta["metrics"].items():
        oracle = m.get("oracle_auc")
        rows.append(
            [
                name,
                f"{m['auc']:.3f}",
                f"{oracle:.3f}" if oracle is not None else "",
                f"{m['brier']:.4f}",
                f"{m['ece']:.4f}",
                str(m["n"]),
                str(meta["rounds"][name]),
            ]
        )
    print_table([left("model"), "AUC", "oracle", "Brier", "ECE", "rows", "trees"], rows)
    print("test days only (the last 15%); wrote " + ", ".join(p.name for p in written))


def run_slicer(args: argparse.Namespace) -> None:
    """`train slicer`: PPO on the execution environment, exported to ONNX and validated.

    Raises `UsageError` without the `train` extra, or if training fails its checks.
    """
    out = _out_dir(args)
    check_executor(args.executor, args.ray_address)
    if args.algorithm == "ars":
        _run_slicer_ars(args, out)
        return
    try:
        import stable_baselines3  # noqa: F401  (the `train` extra)
        import torch  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            f"train slicer needs the training extra ({exc.name} is missing): "
            "python3 -m pip install -e '.[train]'"
        ) from None
    admin = _registry(args)
    from models.training.slicer import train_slicer

    command = (
        f"blockroute train slicer --timesteps {args.timesteps} --envs {args.envs} "
        f"--seed {args.seed} --reward {args.reward}"
        + (" --executor ray" if args.executor == "ray" else "")
    )
    label = f"train slicer: {args.timesteps:,} steps in {args.envs} environments"
    written, meta = _train(
        admin,
        out,
        label,
        lambda bar: train_slicer(
            out,
            args.timesteps,
            args.envs,
            args.seed,
            bar,
            command,
            reward=args.reward,
            executor=args.executor,
            ray_address=args.ray_address,
        ),
    )
    if args.json_path != "-":
        _print_slicer(meta, written)
    params = {"algorithm": "ppo", "timesteps": args.timesteps, "envs": args.envs}
    _register(admin, args, out, command, {**params, "seed": args.seed, "reward": args.reward})
    emit_json(args.json_path, meta)


def _run_slicer_ars(args: argparse.Namespace, out: Path) -> None:
    """`train slicer --algorithm ars`: a linear policy by Augmented Random Search."""
    try:
        import gymnasium  # noqa: F401  (the `train` extra: the validation's environment)
        import onnx  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            f"train slicer needs the training extra ({exc.name} is missing): "
            "python3 -m pip install -e '.[train]'"
        ) from None
    from models.training.ars import ArsSettings, train_slicer_ars

    admin = _registry(args)

    settings = ArsSettings(iterations=args.iterations)
    command = (
        f"blockroute train slicer --algorithm ars --iterations {args.iterations} "
        f"--envs {args.envs} --seed {args.seed}"
        + (" --executor ray" if args.executor == "ray" else "")
    )
    label = f"train slicer (ars): {args.iterations} iterations on {args.envs} workers"
    written, meta = _train(
        admin,
        out,
        label,
        lambda bar: train_slicer_ars(
            out,
            settings,
            args.envs,
            args.seed,
            bar,
            command,
            executor=args.executor,
            ray_address=args.ray_address,
        ),
    )
    if args.json_path != "-":
        _print_slicer_ars(meta, written)
    params = {"algorithm": "ars", "iterations": args.iterations, "envs": args.envs}
    _register(admin, args, out, command, {**params, "seed": args.seed})
    emit_json(args.json_path, meta)


def _print_slicer_ars(meta: dict[str, Any], written: list[Path]) -> None:
    t, c, v = meta["training"], meta["curve"], meta["validation"]
    print(
        f"trained {len(c)} iterations, {t['episodes']:,} episodes ({t['policy_runs']:,} "
        f"policy runs) in {t['wall_s']:.0f} s on {t['workers']} workers"
    )
    tenth = max(1, len(c) // 5)
    first = statistics.fmean([r["centre_vs_even_bps"] for r in c[:tenth]])
    last = statistics.fmean([r["centre_vs_even_bps"] for r in c[-tenth:]])
    print(
        f"policy minus sor-ml's schedule (a = 0) on the training episodes: {first:+.2f} bps "
        f"over the first {tenth} iterations, {last:+.2f} over the last {tenth}"
    )
    _print_validation(v)
    weights = sorted(meta["policy"]["weights"].items(), key=lambda kv: -abs(kv[1]))
    print("largest weights: " + ", ".join(f"{n} {w:+.3f}" for n, w in weights[:5]))
    print(
        f"ONNX vs numpy: max |diff| {meta['parity']['max_abs_diff']:.1g}; wrote "
        + ", ".join(p.name for p in written)
    )


def _print_validation(v: dict[str, Any]) -> None:
    """The paired validation's line, whichever algorithm trained the policy."""
    if v.get("episodes"):
        print(
            f"validation, {v['episodes']} paired episodes: policy {v['policy_is_bps']:.1f} "
            f"bps, sor-ml's schedule (a = 0) {v['even_pace_is_bps']:.1f} bps, difference "
            f"{v['diff_is_bps']:+.2f} +- {v['diff_stderr_bps']:.2f} bps"
        )


def _print_slicer(meta: dict[str, Any], written: list[Path]) -> None:
    t, c, v = meta["training"], meta["curve"], meta["validation"]
    print(
        f"trained {t['timesteps']:,} steps, {t['episodes']:,} episodes in {t['wall_s']:.0f} s "
        f"({t['steps_per_s']:.0f} steps/s, {t['n_envs']} environments)"
    )
    if c.get("episodes"):
        print(
            f"mean IS {c['first_10pct_is_bps']:.1f} bps over the first 10% of episodes, "
            f"{c['last_10pct_is_bps']:.1f} over the last 10%"
        )
    if "first_10pct_vs_even_pace_bps" in c:
        print(
            f"IS minus sor-ml's schedule's (a = 0) on the same episodes: "
            f"{c['first_10pct_vs_even_pace_bps']:+.2f} bps over the first 10%, "
            f"{c['last_10pct_vs_even_pace_bps']:+.2f} over the last 10%"
        )
    _print_validation(v)
    print(
        f"ONNX vs torch: max |diff| {meta['parity']['max_abs_diff']:.1g} on "
        f"{meta['parity']['rows']} observations; wrote " + ", ".join(p.name for p in written)
    )
