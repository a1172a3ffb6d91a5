"""Scenarios, venues and instruments as read from config/ (TOML).

A scenario names an instrument, a venue set, the parent order of the reference case,
the market's base parameters and the phases (regime changes) that happen during the
horizon. Phases are the simulator's business: no strategy ever sees them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from router.config import DEFAULT_CONFIG_DIR, ConfigError, ConfigTable, load_toml
from router.domain import Instrument, Side, Symbol, VenueId

SESSION_OPEN_S = 9.5 * 3600
SESSION_CLOSE_S = 16.0 * 3600


@dataclass(frozen=True, slots=True)
class LitVenueSpec:
    venue_id: VenueId
    share: float  # share of background liquidity and flow
    maker_fee: float  # per share; negative = rebate
    taker_fee: float
    latency_us: float
    latency_jitter: float


@dataclass(frozen=True, slots=True)
class DarkVenueSpec:
    venue_id: VenueId
    contra_per_hour: float
    contra_median: int
    contra_sigma: float
    contra_lifetime_s: float
    min_qty: int
    toxicity: float
    fee: float
    latency_us: float
    latency_jitter: float
    firm_up_window_s: float


@dataclass(frozen=True, slots=True)
class MarketParams:
    price: float
    spread_ticks: float
    daily_vol: float
    vol_of_vol: float = 0.35  # standard deviation of log-volatility
    vol_reversion_s: float = 1800.0
    depth_scale_ticks: float = 4.0
    order_size_median: int = 300
    order_size_sigma: float = 0.8
    book_depth_adv: float = 0.03  # resting depth per side as a share of ADV
    order_lifetime_s: float = 180.0  # mean life of a background limit order
    informed_share: float = 0.08  # share of taker volume that is informed
    momentum_share: float = 0.08
    impact_y: float = 0.7  # Y of the square-root law
    impact_memory_s: float = 900.0
    impact_lock_s: float = 10800.0
    jumps_per_day: float = 4.0
    jump_bps: float = 15.0


@dataclass(frozen=True, slots=True)
class Phase:
    start_s: float
    end_s: float
    vol: float = 1.0
    spread: float = 1.0
    bid_depth: float = 1.0
    ask_depth: float = 1.0
    flow: float = 1.0
    informed: float = 1.0
    momentum: float = 1.0
    buy_pressure: float = 0.0  # -1..1: net share of noise flow moved to the buy side
    drift_bps_per_h: float = 0.0
    jump_bps: float = 0.0  # applied once at `start_s`


def mirrored(phase: Phase) -> Phase:
    """The phase with the market's direction reversed: jump, drift and buying pressure
    change sign and the thin side of the book changes side, so a decline on a thin bid
    becomes a rally on a thin ask. Volatility, spread, flow and the informed and
    momentum shares have no direction and stay. Mirroring twice gives the phase back."""
    return replace(
        phase,
        bid_depth=phase.ask_depth,
        ask_depth=phase.bid_depth,
        buy_pressure=-phase.buy_pressure,
        drift_bps_per_h=-phase.drift_bps_per_h,
        jump_bps=-phase.jump_bps,
    )


@dataclass(frozen=True, slots=True)
class ReplaySpec:
    """A scenario whose lit market is a real capture replayed (simulators/replay/): the
    capture's name and the parent's arrivals after the start of its live stream, one
    per seed in turn (episode `seed` starts at `offsets_s[seed % len(offsets_s)]`)."""

    capture: str
    offsets_s: tuple[float, ...]
    # the desk's size limits in the capture's lots (router.risk.RiskLimits), which for
    # the simulated instruments' shares are the defaults
    max_child_qty: int
    max_block_qty: int

    def offset_s(self, seed: int) -> float:
        return self.offsets_s[seed % len(self.offsets_s)]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    instrument: Instrument
    lit: tuple[LitVenueSpec, ...]
    dark: tuple[DarkVenueSpec, ...]
    start_tod_s: float  # time of day at the parent's arrival, seconds after midnight
    horizon_s: float
    side: Side
    qty: int
    market: MarketParams
    phases: tuple[Phase, ...] = field(default_factory=tuple)
    dealer_panel: str | None = None  # config/dealers/<name>.toml: the RFQ venue, if any
    replay: ReplaySpec | None = None  # the lit market replays a capture instead


def available_scenarios(config_dir: Path = DEFAULT_CONFIG_DIR) -> list[str]:
    return sorted(p.stem for p in (config_dir / "scenarios").glob("*.toml"))


#: scenario names that stand for a replayed capture: `replay:NAME`
REPLAY_PREFIX = "replay:"


def load_scenario(name: str, config_dir: Path = DEFAULT_CONFIG_DIR) -> Scenario:
    if name.startswith(REPLAY_PREFIX):
        # loading a replay reads its capture: only replayed scenarios import that code
        from simulators.replay.scenario import load_replay_scenario

        return load_replay_scenario(name.removeprefix(REPLAY_PREFIX), config_dir)
    path = config_dir / "scenarios" / f"{name}.toml"
    if not path.exists():
        known = ", ".join(available_scenarios(config_dir)) or "none"
        raise ConfigError(f"unknown scenario {name!r} (known: {known})")
    t = load_toml(path)
    instrument = load_instrument(t.get_str("instrument"), config_dir, where=t.where("instrument"))
    lit, dark = load_venues(t.get_str("venues"), config_dir, where=t.where("venues"))
    dealer_panel = t.get_str("dealers", "") or None
    if dealer_panel is not None and not (config_dir / "dealers" / f"{dealer_panel}.toml").exists():
        raise t.error("dealers", f"unknown dealer panel {dealer_panel!r}")
    start_tod = time_of_day(t, "start_time")
    horizon = t.get_duration("horizon", gt=0)
    if start_tod + horizon > SESSION_CLOSE_S:
        raise t.error("horizon", "runs past the session close (16:00)")
    p = t.table("parent")
    try:
        side = Side.parse(p.get_str("side"))
    except ValueError as exc:
        raise p.error("side", str(exc)) from None
    qty = p.get_int("qty", gt=0)
    p.check_no_unknown_keys()
    market = _market(t.table("market"))
    phases = tuple(_phase(ph, horizon) for ph in t.tables("phase"))
    description = t.get_str("description", "")
    t.check_no_unknown_keys()
    return Scenario(
        name=name,
        description=description,
        instrument=instrument,
        lit=lit,
        dark=dark,
        start_tod_s=start_tod,
        horizon_s=horizon,
        side=side,
        qty=qty,
        market=market,
        phases=phases,
        dealer_panel=dealer_panel,
    )


def load_instrument(symbol: str, config_dir: Path, where: str = "") -> Instrument:
    path = config_dir / "instruments.toml"
    t = load_toml(path)
    if symbol not in t:
        raise ConfigError(f"{where or path}: unknown instrument {symbol!r}")
    i = t.table(symbol)
    inst = Instrument(
        symbol=Symbol(symbol),
        tick_size=i.get_float("tick_size", gt=0),
        currency=i.get_str("currency"),
        adv=i.get_int("adv", gt=0),
        lot_size=i.get_int("lot_size", 1, gt=0),
    )
    i.check_no_unknown_keys()
    return inst


def load_venues(
    name: str, config_dir: Path, where: str = ""
) -> tuple[tuple[LitVenueSpec, ...], tuple[DarkVenueSpec, ...]]:
    path = config_dir / "venues" / f"{name}.toml"
    if not path.exists():
        raise ConfigError(f"{where or path}: unknown venue set {name!r}")
    t = load_toml(path)
    lit = []
    for v in t.tables("lit"):
        lit.append(
            LitVenueSpec(
                venue_id=VenueId(v.get_str("id")),
                share=v.get_float("share", gt=0, max=1),
                maker_fee=v.get_float("maker_fee"),
                taker_fee=v.get_float("taker_fee"),
                latency_us=v.get_float("latency_us", gt=0),
                latency_jitter=v.get_float("latency_jitter", 0.0, min=0),
            )
        )
        v.check_no_unknown_keys()
    dark = [dark_venue(v) for v in t.tables("dark")]
    t.check_no_unknown_keys()
    if not lit:
        raise ConfigError(f"{path}: needs at least one [[lit]] venue")
    ids = [v.venue_id for v in lit] + [v.venue_id for v in dark]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ConfigError(f"{path}: venue id {sorted(dup)[0]!r} is used twice")
    total = sum(v.share for v in lit)
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(f"{path}: lit venue shares must add up to 1, got {total:g}")
    return tuple(lit), tuple(dark)


def dark_venue(v: ConfigTable) -> DarkVenueSpec:
    """A `[[dark]]` table."""
    spec = DarkVenueSpec(
        venue_id=VenueId(v.get_str("id")),
        contra_per_hour=v.get_float("contra_per_hour", gt=0),
        contra_median=v.get_int("contra_median", gt=0),
        contra_sigma=v.get_float("contra_sigma", min=0),
        contra_lifetime_s=v.get_duration("contra_lifetime", gt=0),
        min_qty=v.get_int("min_qty", min=0),
        toxicity=v.get_probability("toxicity"),
        fee=v.get_float("fee"),
        latency_us=v.get_float("latency_us", gt=0),
        latency_jitter=v.get_float("latency_jitter", 0.0, min=0),
        firm_up_window_s=v.get_duration("firm_up_window", gt=0),
    )
    v.check_no_unknown_keys()
    return spec


def time_of_day(t: ConfigTable, key: str) -> float:
    text = t.get_str(key)
    try:
        hh, mm = text.split(":")
        seconds = int(hh) * 3600 + int(mm) * 60
    except ValueError:
        raise t.error(key, f"must be HH:MM, got {text!r}") from None
    if not SESSION_OPEN_S <= seconds < SESSION_CLOSE_S:
        raise t.error(key, f"must be within the session 09:30-16:00, got {text}")
    return float(seconds)


def _market(m: ConfigTable) -> MarketParams:
    d = MarketParams(price=1.0, spread_ticks=1.0, daily_vol=0.01)  # for the defaults
    params = MarketParams(
        price=m.get_float("price", gt=0),
        spread_ticks=m.get_float("spread_ticks", min=1),
        daily_vol=m.get_float("daily_vol", gt=0, max=1),
        vol_of_vol=m.get_float("vol_of_vol", d.vol_of_vol, min=0),
        vol_reversion_s=m.get_duration("vol_reversion", d.vol_reversion_s, gt=0),
        depth_scale_ticks=m.get_float("depth_scale_ticks", d.depth_scale_ticks, gt=0),
        order_size_median=m.get_int("order_size_median", d.order_size_median, gt=0),
        order_size_sigma=m.get_float("order_size_sigma", d.order_size_sigma, min=0),
        book_depth_adv=m.get_float("book_depth_adv", d.book_depth_adv, gt=0, max=1),
        order_lifetime_s=m.get_duration("order_lifetime", d.order_lifetime_s, gt=0),
        informed_share=m.get_probability("informed_share", d.informed_share),
        momentum_share=m.get_probability("momentum_share", d.momentum_share),
        impact_y=m.get_float("impact_y", d.impact_y, min=0),
        impact_memory_s=m.get_duration("impact_memory", d.impact_memory_s, gt=0),
        impact_lock_s=m.get_duration("impact_lock", d.impact_lock_s, gt=0),
        jumps_per_day=m.get_float("jumps_per_day", d.jumps_per_day, min=0),
        jump_bps=m.get_float("jump_bps", d.jump_bps, min=0),
    )
    if params.informed_share + params.momentum_share >= 1:
        raise m.error("informed_share", "informed_share + momentum_share must be < 1")
    m.check_no_unknown_keys()
    return params


def _phase(p: ConfigTable, horizon: float) -> Phase:
    start = p.get_duration("start")
    end = p.get_duration("end", gt=start)
    if end > horizon:
        raise p.error("end", f"is after the horizon ({horizon:g} s)")
    phase = Phase(
        start_s=start,
        end_s=end,
        vol=p.get_float("vol", 1.0, gt=0),
        spread=p.get_float("spread", 1.0, gt=0),
        bid_depth=p.get_float("bid_depth", 1.0, gt=0),
        ask_depth=p.get_float("ask_depth", 1.0, gt=0),
        flow=p.get_float("flow", 1.0, gt=0),
        informed=p.get_float("informed", 1.0, min=0),
        momentum=p.get_float("momentum", 1.0, min=0),
        buy_pressure=p.get_float("buy_pressure", 0.0, min=-1, max=1),
        drift_bps_per_h=p.get_float("drift_bps_per_h", 0.0),
        jump_bps=p.get_float("jump_bps", 0.0),
    )
    p.check_no_unknown_keys()
    return phase
