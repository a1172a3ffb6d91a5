"""`blockroute serve`: the service's composition root.

Builds, in one process and on one asyncio loop: the service clock, the journal
(SQLite or PostgreSQL), the desk (router/desk/) on the simulator's markets, and the
edges that listen to it: the FIX 4.4 acceptor (router/fix/), the HTTP API and dashboard
(router/api/) and the MQTT publisher (router/bus.py). Only this module (and the CLI)
reads the wall clock and the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from models.catalog import CHALLENGER, CHAMPION
from router.api import make_app
from router.bus import MqttBus
from router.config import DEFAULT_CONFIG_DIR, ConfigError, ConfigTable, load_toml
from router.desk import Desk, DeskConfig
from router.desk.outbox import CLOCK_SAVE_S
from router.desk.sim import SimMarkets
from router.desk_api import DeskEvent
from router.domain import NANOS_PER_SECOND, DomainError
from router.drift import DriftConfig, DriftError
from router.fix.gateway import FixGateway
from router.fix.settings import GatewaySettings, load_acceptor_config, load_credentials
from router.hotswap import ModelSwapper
from router.journal import Journal
from router.model_admin import ModelAdmin, open_admin
from router.registry import ModelRegistry, ServedSet
from router.risk import RiskLimits
from router.runtime import LoopClock
from router.store import DbTimeouts
from router.telemetry import FigureCollector
from router.wheel import ModelArms
from simulators.scenario import Scenario, available_scenarios

log = structlog.get_logger("blockroute.service")


def tune_gc() -> None:
    """A long-lived service holds many objects that never die (markets, models, open
    parents): full collections of them stall the loop for tens of milliseconds, which is
    most of the FIX acknowledgement's p99. Move what exists now out of the collector's
    sight and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def service_clock(
    loop: asyncio.AbstractEventLoop, speed: float, journal: Journal | None = None
) -> LoopClock:
    """Epoch nanoseconds, starting at the wall clock's now and running `speed` times
    faster (CONTRACT.md: `--sim-speed`).

    With a `journal` the clock never goes back across a restart. At a speed above 1 it
    runs ahead of the wall; restarted at the wall clock it went back in time, behind
    the parents' own times, and they stalled until the wall caught up. It starts no
    earlier than its last committed reading (every fact reported was committed with a
    reading at least as late), nor than any reading the previous process can have
    shown: its desk commits the clock at least every CLOCK_SAVE_S, so that is at most
    two of those later than the last one, or where the old clock (its epoch and speed
    are kept in the journal) would be now if that is sooner. Time the service was down
    beyond that does not pass for the parents: the simulation pauses."""
    wall = time.time_ns()
    origin = wall
    if journal is not None:
        last = journal.last_clock_ns()
        origin = max(origin, last + 1)
        epoch = journal.clock_epoch()
        if epoch is not None:
            clock0, wall0, speed0 = epoch
            would_be = clock0 + round((wall - wall0) * speed0)
            most_shown = last + round(2 * CLOCK_SAVE_S * speed0 * NANOS_PER_SECOND)
            origin = max(origin, min(would_be, most_shown))
        journal.save_clock_epoch(origin, wall, speed)
    return LoopClock(loop, origin_ns=origin, speed=speed)


@contextlib.asynccontextmanager
async def simulated_desk(
    folder: Path,
    sim_speed: float = 100.0,
    *,
    symbols: Mapping[str, str] | None = None,
    db_url: str | None = None,
    scenarios: Mapping[str, Scenario] | None = None,
    db_timeouts: DbTimeouts | None = None,
    registry: CollectorRegistry | None = None,
    wheel: ModelArms | None = None,
    **config: object,
) -> AsyncIterator[Desk]:
    """A running desk on simulated markets with its journal in `folder` (SQLite) or at
    `db_url`, its metrics in `registry` (default: one of its own), the models of
    `wheel` (default: the process's, no wheel): for tests, benchmarks and examples.
    Stops it cleanly on exit."""
    loop = asyncio.get_running_loop()
    cfg = DeskConfig(
        symbols=dict(symbols or {"QDI": "calm"}),
        sim_speed=sim_speed,
        **config,  # type: ignore[arg-type]
    )
    journal = Journal.open(db_url or f"sqlite:///{folder / 'blockroute.db'}", db_timeouts)
    try:
        clock = service_clock(loop, sim_speed, journal)
        models = wheel.champion.registry if wheel is not None else None
        markets = SimMarkets(cfg, scenarios, models=models)
        desk = Desk(cfg, journal, clock.now_ns, markets, registry, models, wheel)
        desk.start()
        try:
            yield desk
        finally:
            await desk.stop()
    finally:
        journal.close()


# ------------------------------------------------------------------------------ config

DEFAULT_SERVICE_CONFIG = DEFAULT_CONFIG_DIR / "service.toml"
API_TOKEN_ENV = "BLOCKROUTE_API_TOKEN"


@dataclass(frozen=True)
class ServiceConfig:
    """Everything `blockroute serve` needs, checked at start (ConfigError names the
    file and the key)."""

    source: Path
    data_dir: Path
    db_url: str
    desk: DeskConfig
    http_host: str
    http_port: int
    api_token: str | None
    mqtt_url: str | None  # None: no publisher
    mqtt_root: str
    fix_cfg: Path
    fix_port: int | None
    fix_file_log: bool
    fix_table: Mapping[str, Any]  # [fix] as read: clients and allow_no_password
    db_timeouts: DbTimeouts = field(default_factory=DbTimeouts)
    # [models]: serve the model registry's champions (router.model_admin) instead of
    # the files under models/; the registry's artifacts (None: its default place)
    model_registry: bool = False
    model_artifacts: str | None = None
    # how often the running service reads the champions, to serve a move made outside
    # its API (router.hotswap); 0: only its own API's moves are served at once
    model_poll_s: float = 2.0
    # the algo wheel (router.wheel): the share of new parents that the challenger's
    # models run (0: off), and the seed of the draw
    wheel_share: float = 0.0
    wheel_seed: int = 1
    # shadow mode (router.shadow): ask each family's challenger beside its champion
    model_shadow: bool = True


def load_service_config(
    path: Path = DEFAULT_SERVICE_CONFIG,
    environ: Mapping[str, str] | None = None,
    *,
    sim_speed: float | None = None,
    fix_port: int | None = None,
    http_port: int | None = None,
    http_host: str | None = None,
    db_url: str | None = None,
    mqtt_url: str | None = None,
    data_dir: Path | None = None,
) -> ServiceConfig:
    """The service config at `path` with the command line's overrides applied."""
    env = dict(environ if environ is not None else os.environ)
    if not path.is_file():
        raise ConfigError(f"service config {path} does not exist")
    t = load_toml(path)
    svc = t.table("service")
    # every key is read (so that typos fail) before the command line overrides it
    folder = Path(svc.get_str("data_dir", "."))
    if data_dir is not None:
        folder = data_dir
    if not folder.is_dir():
        where = "--data-dir" if data_dir is not None else svc.where("data_dir")
        raise ConfigError(f"{where}: folder {folder} does not exist")
    url = svc.get_str("db_url", "") or f"sqlite:///{folder / 'blockroute.db'}"
    if db_url is not None:
        url = db_url
    speed = svc.get_float("sim_speed", 1.0, gt=0.0)
    if sim_speed is not None:
        speed = sim_speed
    if not speed > 0:
        raise ConfigError(f"--sim-speed must be > 0, got {speed:g}")
    symbols_t = t.table("symbols")
    symbols = {sym: symbols_t.get_str(sym) for sym in _keys(t, "symbols")}
    known = set(available_scenarios())
    for sym, name in symbols.items():
        if name not in known:
            raise symbols_t.error(
                sym, f"unknown scenario {name!r} (known: {', '.join(sorted(known))})"
            )
    db_timeouts, journal_desk = _journal_config(t)
    drift = _drift_config(t)
    risk_t = t.table("risk") if "risk" in t else None
    risk = RiskLimits()
    if risk_t is not None:
        risk = RiskLimits(
            max_child_qty=risk_t.get_int("max_child_qty", risk.max_child_qty, gt=0),
            max_block_qty=risk_t.get_int("max_block_qty", risk.max_block_qty, gt=0),
            collar_bps=risk_t.get_float("collar_bps", risk.collar_bps, gt=0.0),
            max_participation=risk_t.get_float(
                "max_participation", risk.max_participation, gt=0.0, max=1.0
            ),
        )
        risk_t.check_no_unknown_keys()
    try:
        desk = DeskConfig(
            symbols=symbols,
            seed=svc.get_int("seed", 1),
            sim_speed=speed,
            default_horizon_s=svc.get_duration("default_horizon", 1800.0, gt=0.0),
            default_strategy=svc.get_str("default_strategy", "ml"),
            max_order_adv=svc.get_float("max_order_adv", 0.5, gt=0.0),
            risk=risk,
            model_fallback=_bool(svc, "model_fallback", False),
            drift=drift,
            **journal_desk,
        )
    except DomainError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    svc.check_no_unknown_keys()
    http = t.table("http")
    configured_token = http.get_str("token", "")
    token = env.get(API_TOKEN_ENV) or configured_token or None
    port = http.get_int("port", 8080, min=0, max=65535)
    if http_port is not None:
        port = http_port
    host = http.get_str("host", "127.0.0.1")
    if http_host is not None:
        host = http_host
    http.check_no_unknown_keys()
    mqtt = t.table("mqtt")
    murl = mqtt.get_str("url", "mqtt://127.0.0.1:1883")
    if mqtt_url is not None:
        murl = mqtt_url
    root = mqtt.get_str("root", "blockroute/")
    mqtt.check_no_unknown_keys()
    fixt = t.table("fix")
    fix_cfg = path.parent / fixt.get_str("config", "fix/acceptor.cfg")
    if not fix_cfg.is_file():
        raise fixt.error("config", f"{fix_cfg} does not exist")
    file_log = _bool(fixt, "file_log", False)
    raw_fix = {k: fixt._raw(k, None) for k in ("clients", "allow_no_password") if k in fixt}
    fixt.check_no_unknown_keys()
    use_registry, model_artifacts, model_poll_s, model_shadow = False, None, 2.0, True
    wheel_share, wheel_seed = 0.0, 1
    if "models" in t:
        mt = t.table("models")
        use_registry = _bool(mt, "registry", False)
        model_shadow = _bool(mt, "shadow", True)
        model_artifacts = mt.get_str("artifacts", "") or None
        model_poll_s = mt.get_duration("poll_interval", model_poll_s)
        if model_poll_s < 0:
            raise mt.error("poll_interval", f"must be >= 0, got {model_poll_s:g}")
        wheel_share = mt.get_probability("wheel_share", 0.0)
        wheel_seed = mt.get_int("wheel_seed", 1)
        if wheel_share > 0 and not use_registry:
            raise mt.error(
                "wheel_share",
                f"{wheel_share:g} needs registry = true: the algo wheel splits parents "
                "between the model registry's champion and challenger",
            )
        mt.check_no_unknown_keys()
    t.check_no_unknown_keys()
    return ServiceConfig(
        source=path,
        data_dir=folder,
        db_url=url,
        desk=desk,
        http_host=host,
        http_port=port,
        api_token=token,
        mqtt_url=None if murl.strip().lower() == "none" else murl,
        mqtt_root=root,
        fix_cfg=fix_cfg,
        fix_port=fix_port,
        fix_file_log=file_log,
        fix_table=raw_fix,
        db_timeouts=db_timeouts,
        model_registry=use_registry,
        model_artifacts=model_artifacts,
        model_poll_s=model_poll_s,
        wheel_share=wheel_share,
        wheel_seed=wheel_seed,
        model_shadow=model_shadow,
    )


def _journal_config(t: ConfigTable) -> tuple[DbTimeouts, dict[str, Any]]:
    """[journal] (optional): the database's timeouts and what the desk does when the
    journal fails (config/service.toml explains each key)."""
    if "journal" not in t:
        return DbTimeouts(), {}
    j = t.table("journal")
    d = DbTimeouts()
    timeouts = DbTimeouts(
        connect_s=j.get_duration("connect_timeout", d.connect_s, gt=0.0),
        statement_s=j.get_duration("statement_timeout", d.statement_s, gt=0.0),
        keepalive_s=j.get_duration("keepalive", d.keepalive_s, gt=0.0),
    )
    desk: dict[str, Any] = {
        "journal_read_s": j.get_duration("read_timeout", 1.0, gt=0.0),
        "journal_stall_s": j.get_duration("stall_after", 1.0, gt=0.0),
        "journal_retry_max_s": j.get_duration("retry_max", 2.0, gt=0.0),
        "auto_release_kill": _bool(j, "auto_release_kill_switch", False),
    }
    j.check_no_unknown_keys()
    return timeouts, desk


def _drift_config(t: ConfigTable) -> DriftConfig:
    """[drift] (optional): the drift monitor's windows, thresholds and fallback
    (config/service.toml explains each key; router.drift)."""
    if "drift" not in t:
        return DriftConfig()
    d, base = t.table("drift"), DriftConfig()
    values: dict[str, Any] = {"enabled": _bool(d, "enabled", base.enabled)}
    for key in ("window", "min_samples", "range_window", "is_window", "is_min_parents"):
        values[key] = d.get_int(key, getattr(base, key), min=1)
    for key in ("max_out_of_range", "max_ece", "clear_ratio"):
        values[key] = d.get_float(key, getattr(base, key), gt=0.0, max=1.0)
    values["max_is_z"] = d.get_float("max_is_z", base.max_is_z, gt=0.0)
    values["fallback"] = _bool(d, "fallback", base.fallback)
    values["resume"] = d.get_str("resume", base.resume)
    d.check_no_unknown_keys()
    try:
        return DriftConfig(**values)
    except DriftError as exc:  # a rule across keys (min_samples <= window, ...)
        raise ConfigError(f"{d.file}: drift: {exc}") from None


def _bool(t: ConfigTable, key: str, default: bool) -> bool:
    value = t._raw(key, default)
    if not isinstance(value, bool):
        raise t.error(key, f"must be true or false, got {value!r}")
    return value


def _keys(t: ConfigTable, name: str) -> list[str]:
    t.table(name)
    raw = t._raw(name, {})
    return list(raw) if isinstance(raw, dict) else []


# ------------------------------------------------------------------------------ serve


async def run_service(
    cfg: ServiceConfig,
    stop: asyncio.Event | None = None,
    environ: Mapping[str, str] | None = None,
    on_ready: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Run the service until `stop` is set (or SIGTERM/SIGINT), then shut down cleanly:
    open child orders pulled, the journal flushed, FIX clients logged out."""
    env = dict(environ if environ is not None else os.environ)
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    # configuration first: nothing starts if any part of it is wrong
    acceptor = load_acceptor_config(cfg.fix_cfg)
    credentials = load_credentials(acceptor.compids, cfg.fix_table, env)
    gw_settings = GatewaySettings(
        acceptor=acceptor,
        credentials=credentials,
        data_dir=cfg.data_dir,
        port=cfg.fix_port,
        file_log=cfg.fix_file_log,
    )
    bus = MqttBus(cfg.mqtt_url, root=cfg.mqtt_root) if cfg.mqtt_url else None

    # the model registry first: a champion that cannot be found stops the start early
    admin = open_models(cfg) if cfg.model_registry else None
    journal = Journal.open(cfg.db_url, cfg.db_timeouts)
    clock = service_clock(loop, cfg.desk.sim_speed, journal)
    # one registry for the instance: GET /metrics shows every part's series
    registry = CollectorRegistry()
    served = admin.serving() if admin is not None else None
    markets = SimMarkets(cfg.desk, models=served)
    wheel: ModelArms | None = None
    swapper: ModelSwapper | None = None
    if admin is not None and served is not None:
        wheel = model_arms(admin, served, cfg.wheel_share, cfg.wheel_seed)
        swapper = ModelSwapper(
            admin,
            served,
            now_ns=time.time_ns,
            timer=time.perf_counter,
            publish=bus.publish if bus is not None else None,
            challenger=wheel.challenger,
            shadow=cfg.model_shadow,
        )
    desk = Desk(cfg.desk, journal, clock.now_ns, markets, registry, served, wheel)
    runner: web.AppRunner | None = None
    gateway: FixGateway | None = None
    unsubscribe: Callable[[], None] | None = None
    watching: asyncio.Task[None] | None = None
    try:
        if swapper is not None and wheel is not None and wheel.challenger is not None:
            await swapper.sync()  # the challenger's set, loaded off the loop, then served
        desk.start()
        if swapper is not None and cfg.model_shadow:
            # the challengers, loaded off the loop before the first order (the champions
            # were loaded by the desk's start); later moves are followed by the watch
            try:
                await swapper.sync()
            except Exception as exc:  # the desk trades on its champions meanwhile
                log.warning("challengers not read: the watch tries again", error=str(exc))
        tune_gc()
        if bus is not None:
            unsubscribe = desk.subscribe(bus.publish)
            registry.register(FigureCollector(bus.metrics, lambda raw: f"MQTT bus {raw}"))
            if admin is not None:
                # a move runs on an executor thread (the API's) or this one; the bus is
                # the loop's
                publish = bus.publish

                def publish_on_loop(event: DeskEvent) -> None:
                    loop.call_soon_threadsafe(publish, event)

                admin.listeners.append(publish_on_loop)
            bus.start()
        gateway = FixGateway(desk, gw_settings, loop, registry=registry)
        gateway.start()
        app = make_app(
            desk,
            cfg.api_token,
            registry=registry,
            models=admin,
            swapper=swapper,
            shadow=desk.shadow_report if admin is not None else None,
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, cfg.http_host, cfg.http_port)
        await site.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        info = {
            "fix_port": gateway.port,
            "http": f"http://{cfg.http_host}:{_bound_port(site, cfg.http_port)}/",
            "db": journal.url,
            "mqtt": cfg.mqtt_url or "off",
            "symbols": desk.symbols(),
            "sim_speed": cfg.desk.sim_speed,
            "recovered": len([v for v in desk.parents() if not v.status.terminal]),
        }
        log.info("serving", **info)
        if swapper is not None and cfg.model_poll_s > 0:
            watching = asyncio.create_task(swapper.watch(cfg.model_poll_s, stop))
        if on_ready is not None:
            on_ready(info)
        await stop.wait()
        log.info("stopping")
    finally:
        if watching is not None:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if desk.started:  # (also with the journal failing: stop retries its last writes)
            await desk.stop()  # pulls the children; the edges still hear the last events
        if gateway is not None and gateway.running:
            await gateway.stop()
        if runner is not None:
            await runner.cleanup()
        if bus is not None:
            await bus.stop()
            if unsubscribe is not None:
                unsubscribe()
        journal.close()
        if admin is not None:
            admin.close()
        log.info("stopped")


def model_arms(admin: ModelAdmin, served: ModelRegistry, share: float, seed: int) -> ModelArms:
    """The sets of models of a service on the model registry: `served`, the champions'
    (admin.serving()), and with a wheel `share` > 0 the challenger's, empty until the
    swapper loads it (ModelSwapper(challenger=...).sync())."""
    champion = ServedSet(CHAMPION, served, admin.served)  # the swapper updates `served`
    challenger = ServedSet(CHALLENGER, ModelRegistry()) if share > 0 else None
    return ModelArms(champion, challenger, share=share, seed=seed)


def open_models(cfg: ServiceConfig) -> ModelAdmin:
    """The model registry beside the service's database ([models] registry = true)."""
    return open_admin(
        cfg.db_url, time.time_ns, artifacts_at=cfg.model_artifacts, workdir=cfg.data_dir
    )


def _bound_port(site: Any, configured: int) -> int:
    """The port actually bound (configured 0 picks a free one)."""
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else configured
