"""`blockroute models list|show|promote|rollback`: the model registry (router.model_admin);
`compare` (router/cli/models_compare.py) and `wheel` (router/cli/models_wheel.py).

The registry lives beside the project database (`--db-url`, default blockroute.db here,
the service's default): MLflow's tables in a file or schema of their own, the versions'
files under `--artifacts`, each alias move journaled in the database itself. Every
command needs the `registry` extra (MLflow); a fresh registry starts with the shipped
artifacts as version 1, the champion of each family.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time
from typing import TYPE_CHECKING, Any

from router.cli import models_compare, models_wheel
from router.cli.args import Parser, Subparsers, add_json, positive_int
from router.cli.console import left, print_table
from router.cli.output import check_json_path, emit_json

if TYPE_CHECKING:
    from router.desk_api import ModelAliasChanged

_DB_HELP = (
    "the project database the registry lives beside: sqlite:///file.db or "
    "postgresql://user@host/db (default: blockroute.db here, as `serve`)"
)


def _mqtt_url(text: str) -> str:
    from router.bus import parse_mqtt_url

    try:
        parse_mqtt_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_mqtt(p: argparse.ArgumentParser, when: str = "") -> None:
    """--mqtt-url and --mqtt-root: where a move of an alias is also published."""
    p.add_argument(
        "--mqtt-url",
        type=_mqtt_url,
        help=f"{when}also publish the move on this broker (mqtt://host[:port]), as the "
        "service does",
    )
    p.add_argument("--mqtt-root", default="blockroute/", help=f"{when}the topic root")


def announce(event: ModelAliasChanged, url: str | None, root: str) -> None:
    """Publish a move of an alias on the broker at `url` (nothing without one). The move
    stands and is journaled whatever happens here: a failure is a warning."""
    if not url:
        return
    from router.bus import publish_once  # aiomqtt: only when asked to publish

    try:
        asyncio.run(publish_once(url, event, root))
    except Exception as exc:  # aiomqtt's errors, a timeout, a refused connection
        print(
            f"blockroute: warning: moved and journaled, not published on MQTT: {exc}",
            file=sys.stderr,
        )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db-url", default=None, help=_DB_HELP)
    p.add_argument(
        "--artifacts",
        help="folder or URI of the versions' files (default: beside the SQLite file, or "
        "blockroute-registry-artifacts here for PostgreSQL)",
    )
    add_json(p, "write JSON here ('-' = stdout)")


def _mover(p: argparse.ArgumentParser) -> None:
    p.add_argument("family", help="dealer, fill or slicer")
    p.add_argument("--by", help="who moves the alias (default: this user's login name)")
    p.add_argument("--reason", required=True, help="why: kept in the journal")
    add_mqtt(p)
    _common(p)


def register(sub: Subparsers) -> None:
    """Add `models list|show|promote|rollback` to the top-level subcommands."""
    m = sub.add_parser("models", help="the model registry: versions, champion and challenger")
    msub = m.add_subparsers(dest="what", required=True, parser_class=Parser)

    ml = msub.add_parser("list", help="every version of every family, with its aliases")
    _common(ml)
    ml.set_defaults(func=run_list)

    ms = msub.add_parser("show", help="one version's metrics, parameters and lineage")
    ms.add_argument("family", help="dealer, fill or slicer")
    ms.add_argument("--version", type=positive_int, help="default: the champion")
    _common(ms)
    ms.set_defaults(func=run_show)

    mp = msub.add_parser("promote", help="give a version the champion (or challenger) alias")
    mp.add_argument(
        "--version", type=positive_int, help="default: the challenger (to make it champion)"
    )
    mp.add_argument("--alias", choices=("champion", "challenger"), default="champion")
    mp.add_argument(
        "--force",
        action="store_true",
        help="make it champion even if it is worse than the champion on the held-out set "
        "(held-out AUC or ECE of a dealer/fill model, the slicer's validation IS difference); "
        "the move is journaled as forced, with what it overrode",
    )
    _mover(mp)
    mp.set_defaults(func=run_promote)

    mr = msub.add_parser("rollback", help="give the champion back to the previous champion")
    mr.add_argument(
        "--version",
        type=positive_int,
        help="an earlier champion still in force to go back to (default: the one before)",
    )
    _mover(mr)
    mr.set_defaults(func=run_rollback)

    models_compare.add_compare_parser(msub)
    models_wheel.add_wheel_parser(msub)


def _admin(args: argparse.Namespace) -> Any:
    from router.model_admin import open_admin
    from router.store import DEFAULT_URL

    check_json_path(args.json_path)
    return open_admin(args.db_url or DEFAULT_URL, time.time_ns, artifacts_at=args.artifacts)


def run_list(args: argparse.Namespace) -> None:
    admin = _admin(args)
    try:
        versions = admin.models()
    finally:
        admin.close()
    doc = {"models": [v.summary() for v in versions]}
    if args.json_path != "-":
        rows = [
            [v.family, str(v.version), ", ".join(v.aliases), _headline(v.metrics), v.created]
            for v in versions
        ]
        print_table(
            [left("family"), "version", left("aliases"), left("metrics"), left("created")], rows
        )
        print(f"registry: {admin.catalog.location.shown}")
    emit_json(args.json_path, doc)


def _headline(metrics: dict[str, float]) -> str:
    """The figures a person compares versions by: each model's held-out AUC (dealer,
    fill), the slicer's paired IS difference against the even pace."""
    keys = [k for k in sorted(metrics) if k.endswith(".auc") or k == "diff_is_bps"]
    return " ".join(f"{k}={metrics[k]:.3f}" for k in keys)


def run_show(args: argparse.Namespace) -> None:
    admin = _admin(args)
    try:
        version = admin.show(args.family, args.version)
    finally:
        admin.close()
    doc = version.to_json()
    if args.json_path != "-":
        for key in ("family", "version", "aliases", "source", "created", "description"):
            value = doc[key]
            print(f"{key}: {', '.join(value) if isinstance(value, list) else value}")
        for group in ("lineage", "params", "metrics"):
            for k, v in sorted(doc[group].items()):
                print(f"{group}.{k}: {v:.6g}" if isinstance(v, float) else f"{group}.{k}: {v}")
    emit_json(args.json_path, doc)


def run_promote(args: argparse.Namespace) -> None:
    _move(
        args,
        lambda admin, by: admin.promote(
            args.family, args.version, by, args.reason, args.alias, force=args.force
        ),
    )


def run_rollback(args: argparse.Namespace) -> None:
    _move(args, lambda admin, by: admin.rollback(args.family, by, args.reason, args.version))


def _move(args: argparse.Namespace, act: Any) -> None:
    from router.model_admin import change_json

    by = args.by if args.by is not None else getpass.getuser()
    admin = _admin(args)
    try:
        event = act(admin, by)
    finally:
        admin.close()
    doc = change_json(event)
    if args.json_path != "-":
        before = "none" if event.from_version is None else f"version {event.from_version}"
        print(
            f"{event.family} {event.alias}: {before} -> version {event.to_version} "
            f"({event.action} by {event.by}: {event.reason})"
        )
        if event.forced:
            print(f"forced over the guard rail: {event.override}")
    announce(event, args.mqtt_url, args.mqtt_root)
    emit_json(args.json_path, doc)
