"""A replayed capture as a scenario (`replay:NAME`): config/replay/NAME.toml says how the
parent is sized and what surrounds the replayed book; the instrument and the market's
figures come from the capture itself.

- tick and lot: the capture's (its adapter finds them from the data); quantities are
  counted in lots, prices in ticks of the capture's currency per unit;
- ADV: the capture's traded volume per second, scaled to the desk's 6.5-hour session and
  divided by the intraday profile's mean over the horizon, so that the volume the desk
  expects over the horizon (router.app `expected_volume`) is the capture's own rate;
- the parent: `share_of_volume` of what the capture trades over the horizon at that rate;
- daily volatility: the mid's 1-minute log returns over the capture, scaled to the
  session; spread: the median of the mid's spread, second by second;
- fees: given in bps of notional, turned into the per-unit fees the venues charge at the
  capture's opening price;
- dealers (`dealers`, a panel of config/dealers/): sized in shares of that ADV, they
  price off the replayed mid with that daily volatility (dealers/quoting.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from router.config import ConfigError, load_toml, parse_duration
from router.domain import Instrument, Side, Symbol, VenueId
from simulators.replay.market import replay_data
from simulators.scenario import (
    SESSION_CLOSE_S,
    LitVenueSpec,
    MarketParams,
    ReplaySpec,
    Scenario,
    dark_venue,
    time_of_day,
)
from simulators.schedule import SESSION_S, volume_profile


def available_replays(config_dir: Path) -> list[str]:
    return sorted(p.stem for p in (config_dir / "replay").glob("*.toml"))


def load_replay_scenario(name: str, config_dir: Path) -> Scenario:
    """The scenario `replay:NAME`. Raises `ConfigError` for an unknown name or a bad
    file, and the replay's own errors (simulators/replay/errors.py) if its capture is
    not installed or unreadable."""
    path = config_dir / "replay" / f"{name}.toml"
    if not path.exists():
        known = ", ".join(f"replay:{n}" for n in available_replays(config_dir)) or "none"
        raise ConfigError(f"unknown replay scenario {name!r} (known: {known})")
    t = load_toml(path)
    data = replay_data(name)
    cap = data.capture.instrument
    start_tod = time_of_day(t, "start_time")
    horizon = t.get_duration("horizon", gt=0)
    if start_tod + horizon > SESSION_CLOSE_S:
        raise t.error("horizon", "runs past the session close (16:00)")
    offsets = _offsets(t.get_str("offsets"), t.where("offsets"))
    if max(offsets) + horizon > data.span_s:
        raise t.error(
            "offsets", f"a horizon from the last runs past the capture's end ({data.span_s:.0f} s)"
        )
    grid = start_tod + (np.arange(120) + 0.5) * horizon / 120
    profile = float(volume_profile(grid).mean())
    rate = data.volume_per_s
    adv = max(1, round(rate * SESSION_S / profile))
    p = t.table("parent")
    try:
        side = Side.parse(p.get_str("side"))
    except ValueError as exc:
        raise p.error("side", str(exc)) from None
    share = p.get_float("share_of_volume", gt=0, max=1)
    p.check_no_unknown_keys()
    mid0 = data.mid_at(0.0)
    price = mid0 * cap.tick_size
    lit_t = t.table("lit")
    lit = LitVenueSpec(
        venue_id=VenueId(t.get_str("venue")),
        share=1.0,
        maker_fee=lit_t.get_float("maker_fee_bps") * 1e-4 * price,
        taker_fee=lit_t.get_float("taker_fee_bps") * 1e-4 * price,
        latency_us=lit_t.get_float("latency_us", gt=0),
        latency_jitter=lit_t.get_float("latency_jitter", 0.0, min=0),
    )
    lit_t.check_no_unknown_keys()
    dark = tuple(dark_venue(v) for v in t.tables("dark"))
    risk = t.table("risk")
    max_child = risk.get_int("max_child_qty", gt=0)
    max_block = risk.get_int("max_block_qty", gt=0)
    risk.check_no_unknown_keys()
    description = t.get_str("description", "")
    dealer_panel = t.get_str("dealers", "") or None
    if dealer_panel is not None and not (config_dir / "dealers" / f"{dealer_panel}.toml").exists():
        raise t.error("dealers", f"unknown dealer panel {dealer_panel!r}")
    t.check_no_unknown_keys()
    spreads = data.spread_per_s[~np.isnan(data.spread_per_s)]
    return Scenario(
        name=f"replay:{name}",
        description=description,
        instrument=Instrument(
            symbol=Symbol(cap.symbol),
            tick_size=cap.tick_size,
            currency=cap.currency,
            adv=adv,
        ),
        lit=(lit,),
        dark=dark,
        dealer_panel=dealer_panel,
        start_tod_s=start_tod,
        horizon_s=horizon,
        side=side,
        qty=max(1, round(share * rate * horizon)),
        market=MarketParams(
            price=price,
            spread_ticks=max(1.0, float(np.median(spreads)) if spreads.size else 1.0),
            daily_vol=data.daily_vol(),
        ),
        replay=ReplaySpec(
            name,
            offsets,
            max_child_qty=max_child,
            max_block_qty=max_block,
        ),
    )


def _offsets(text: str, where: str) -> tuple[float, ...]:
    try:
        out = tuple(parse_duration(x.strip()) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not out or min(out) <= 0:
        raise ConfigError(f"{where}: needs one or more positive durations")
    return out
