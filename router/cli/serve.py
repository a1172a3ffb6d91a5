"""`blockroute serve`: the service in one process (FIX acceptor, HTTP API and dashboard,
MQTT events, the database) until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import errno
from pathlib import Path
from typing import Any

from router.cli.args import Subparsers, UsageError, port, positive_float


def register(sub: Subparsers) -> None:
    """Add `serve` to the top-level subcommands; its flags override the config file."""
    sv = sub.add_parser(
        "serve", help="the service: FIX 4.4 acceptor, HTTP API and dashboard, MQTT events"
    )
    sv.add_argument("--config", type=Path, default=None, help="default: config/service.toml")
    sv.add_argument("--sim-speed", type=positive_float, default=None)
    sv.add_argument("--fix-port", type=port, default=None)
    sv.add_argument("--http-port", type=port, default=None)
    sv.add_argument("--http-host", default=None, help="default 127.0.0.1 (this machine only)")
    sv.add_argument("--db-url", default=None, help="sqlite:///file.db or postgresql://...")
    sv.add_argument("--mqtt-url", default=None, help="mqtt://host:port, or 'none'")
    sv.add_argument("--data-dir", type=Path, default=None, help="journal and FIX store folder")
    sv.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> None:
    """`serve`: returns once the service has stopped cleanly. A bad service config
    raises `ConfigError`."""
    import asyncio
    import faulthandler

    # A native crash (SIGSEGV, SIGBUS, SIGFPE, SIGABRT, SIGILL) would otherwise end the
    # service with an exit status alone: print every thread's Python stack to stderr
    # first, into the log the operator keeps.
    faulthandler.enable(all_threads=True)

    from router.service import DEFAULT_SERVICE_CONFIG, load_service_config, run_service

    cfg = load_service_config(
        args.config or DEFAULT_SERVICE_CONFIG,
        sim_speed=args.sim_speed,
        fix_port=args.fix_port,
        http_port=args.http_port,
        http_host=args.http_host,
        db_url=args.db_url,
        mqtt_url=args.mqtt_url,
        data_dir=args.data_dir,
    )

    def ready(info: dict[str, Any]) -> None:
        print(
            f"blockroute serving {', '.join(info['symbols'])} at {info['sim_speed']:g}x: "
            f"FIX on port {info['fix_port']}, dashboard {info['http']}, "
            f"database {info['db']}, MQTT {info['mqtt']}"
            + (f"; {info['recovered']} open orders recovered" if info["recovered"] else ""),
            flush=True,
        )

    from router.fix.gateway import FixGatewayError

    try:
        asyncio.run(run_service(cfg, on_ready=ready))
    except FixGatewayError as exc:
        # a port that another process holds is the user's to change, not a crash
        raise UsageError(f"{exc} (another service on that port? --fix-port)") from None
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise UsageError(
            f"HTTP on {cfg.http_host} port {cfg.http_port}: address already in use "
            "(another service on that port? --http-port)"
        ) from None
    print("blockroute stopped: open child orders pulled, state flushed", flush=True)
