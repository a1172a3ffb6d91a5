"""The settings of an execution: one frozen config for the plan and one per tactic.

A strategy lists the configs of its tactics (router.strategies); the builder
(router.execution.build) maps each config type to its tactic. The defaults are the
router's: every strategy of the shipped set runs on them.
"""

from __future__ import annotations

from dataclasses import dataclass

from router.domain import DomainError

DEFAULT_RFQ_TIME_LIMIT_S = 10.0  # when neither the config nor the RFQ venue says


@dataclass(frozen=True, slots=True)
class PlanConfig:
    """When the parent acts: decisions until the final sweep, then sweeps to the end."""

    decision_interval_s: float = 30.0
    final_sweep_s: float = 60.0  # start sweeping the remainder this long before the end
    sweep_interval_s: float = 5.0
    # tactics that rest orders re-place them this long after last interval's cancels,
    # so that the cancels have gone through
    replan_delay_s: float = 0.05
    warmup_s: float = 60.0  # participation is checked once this much volume was seen

    def __post_init__(self) -> None:
        if self.decision_interval_s <= 0 or self.sweep_interval_s <= 0:
            raise DomainError("decision and sweep intervals must be > 0")


@dataclass(frozen=True, slots=True)
class TakeConfig:
    """Marketable orders (router.execution.take): the schedule baselines' tactic, and
    how every strategy takes (a lit allocation's market part, the final sweep)."""

    aggression_ticks: int = 2  # a marketable limit may reach this far past the touch
    sweep_ticks: int = 15  # how far past the touch a catch-up or final sweep may reach


@dataclass(frozen=True, slots=True)
class LitPostConfig:
    """The Cont-Kukanov split of each slice between taking and resting on the lit
    venues (router.execution.lit)."""

    urgency_ticks: float = 0.5  # lambda_u over the cost of taking: patience has a price
    urgency_per_slice_ticks: float = 1.0  # ... which grows with every slice behind
    ahead_cost_ticks: float = 0.25  # lambda_o: a share done ahead of the slice
    # the queues' outflow priors from the learned fill model (the model registry's)
    fill_model: bool = False


@dataclass(frozen=True, slots=True)
class DarkRestConfig:
    """Midpoint orders resting in the dark pools (router.execution.dark)."""

    max_ahead: float = 0.2  # dark orders may work this share of the parent ahead


@dataclass(frozen=True, slots=True)
class RfqConfig:
    """Blocks from the dealer panel while the parent is worked (router.execution.rfq)."""

    panel_size: int = 4
    two_sided: bool = False
    time_limit_s: float | None = None  # None: the RFQ venue's usual time limit
    edge_bps: float = 0.0  # a quote must beat the lit alternative by this much
    block_share: float = 0.25  # ask for up to this share of the parent at a time
    max_ahead: float = 0.35  # never more than this share of the parent ahead of schedule
    min_share: float = 0.03  # not worth a request below this share of the parent
    cooldown_s: float = 300.0  # between requests; doubles after each one not traded

    def __post_init__(self) -> None:
        _check_dealer_settings(self.panel_size, self.time_limit_s)
        if self.cooldown_s < 0:
            raise DomainError(f"the RFQ cooldown must be >= 0, got {self.cooldown_s:g}")


@dataclass(frozen=True, slots=True)
class RiskBidConfig:
    """The risk bid: the whole parent to the dealer panel once, at arrival
    (router.execution.rfq). The block limits of RfqConfig do not apply."""

    panel_size: int = 4
    two_sided: bool = False
    time_limit_s: float | None = None  # None: the RFQ venue's usual time limit
    edge_bps: float = 0.0  # a quote must beat the lit alternative by this much

    def __post_init__(self) -> None:
        _check_dealer_settings(self.panel_size, self.time_limit_s)


TacticConfig = TakeConfig | LitPostConfig | DarkRestConfig | RfqConfig | RiskBidConfig


def _check_dealer_settings(panel_size: int, time_limit_s: float | None) -> None:
    if panel_size < 1:
        raise DomainError(f"the RFQ panel size must be >= 1, got {panel_size}")
    if time_limit_s is not None and time_limit_s <= 0:
        raise DomainError(f"the RFQ time limit must be > 0, got {time_limit_s:g}")
