"""The desk's settings: what it trades, how it admits orders, how it treats its journal."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from router.desk_api import ML_STRATEGY
from router.domain import DomainError
from router.drift import DriftConfig
from router.risk import RiskLimits
from router.strategies import strategy_spec


@dataclass(frozen=True, slots=True)
class DeskConfig:
    """Raises DomainError for a value out of range or an unknown default strategy."""

    symbols: Mapping[str, str]  # symbol -> the scenario whose market, venues, dealers it trades
    seed: int = 1
    sim_speed: float = 1.0
    default_horizon_s: float = 1800.0
    min_horizon_s: float = 30.0  # an ExpireTime 60 s ahead passes at any sim speed
    default_strategy: str = ML_STRATEGY
    max_order_adv: float = 0.5  # a parent above this share of ADV is refused
    limit_collar_bps: float = 1000.0  # a limit further than this through the mid: refused
    # a limit further than this from the mid on its own side (a buy below, a sell
    # above): refused as a typo; it could never trade in the order's horizon anyway
    limit_band_bps: float = 5000.0
    risk: RiskLimits = field(default_factory=RiskLimits)
    max_step_s: float = 0.02  # the markets advance at least this often (wall seconds)
    step_budget_s: float = 0.002  # the longest the markets hold the loop at a time
    model_fallback: bool = False  # models missing or corrupt: run ml as sor (else: refuse)
    # the journal (wall seconds): a commit under way longer than journal_stall_s makes
    # the desk not ready; a failed one is retried after journal_retry_s, doubling up to
    # journal_retry_max_s; the API's reads of it wait at most journal_read_s; a stop
    # waits at most stop_timeout_s for the last writes
    journal_stall_s: float = 1.0
    journal_retry_s: float = 0.25
    journal_retry_max_s: float = 2.0
    journal_read_s: float = 1.0
    stop_timeout_s: float = 10.0
    # release the kill switch that a journal outage engaged once the journal writes
    # again (off: a person looks first and releases it)
    auto_release_kill: bool = False
    # the drift monitor of the learned models, its alerts and fallback (router.drift)
    drift: DriftConfig = field(default_factory=DriftConfig)

    def __post_init__(self) -> None:
        if not self.symbols:
            raise DomainError("the desk needs at least one symbol")
        if self.sim_speed <= 0:
            raise DomainError(f"sim_speed must be > 0, got {self.sim_speed:g}")
        if self.default_horizon_s < self.min_horizon_s:
            raise DomainError("default_horizon_s must be >= min_horizon_s")
        if not self.max_order_adv > 0:
            raise DomainError("max_order_adv must be > 0")
        for name in (
            "limit_collar_bps",
            "limit_band_bps",
            "journal_stall_s",
            "journal_retry_s",
            "journal_retry_max_s",
            "journal_read_s",
            "stop_timeout_s",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise DomainError(f"{name} must be a finite number > 0, got {value!r}")
        self.resolve_strategy(self.default_strategy)

    @staticmethod
    def resolve_strategy(name: str) -> str:
        """The engine strategy that serves a client strategy name (DomainError if none)."""
        strategy_spec(name)  # raises, naming the known ones
        return name
