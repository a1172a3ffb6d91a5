"""The one interface of the router's tactics.

A tactic decides where and how to work the shares its parent's plan says are due; the
ledger (router.execution.ledger) sends, accounts and guards. The plan
(router.execution.parent) calls the hooks: `on_decision` at each decision, `on_event`
with every venue event after the ledger has accounted for it, `on_pull` when every
child is pulled (pause, cancel, replace, horizon), and the ledger calls
`on_child_closed` when a child the tactic sent is done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from router.domain import Event, Nanos
from router.execution.ledger import WorkingChild
from router.execution.signals import Screen
from router.ports import MarketSnapshot


@dataclass(frozen=True)
class Decision:
    """What the plan hands its tactics at one decision."""

    now: Nanos
    snap: MarketSnapshot
    filled: int  # done when the decision began
    target: int  # the slicer's target now
    # the slicer's target at the next decision (decisions that re-place resting
    # orders), and how many slices behind the target now is; else `target` and 0
    target_next: int
    behind: float
    slice_qty: float  # the parent's quantity per decision interval, evenly spread
    read_screen: Callable[[], Screen]

    @cached_property
    def screen(self) -> Screen:
        """The market as the decision's passive orders share it, read once when first
        asked for (it reads the feed's recent past)."""
        return self.read_screen()


class Tactic:
    """Base of the tactics: every hook but `on_decision` does nothing.

    `rests`: the tactic leaves orders resting between decisions. A plan with such a
    tactic pulls them at each decision and has its tactics act a moment later
    (PlanConfig.replan_delay_s), on a two-sided market, with both targets known."""

    rests = False

    def on_decision(self, d: Decision) -> None:
        """Act on a decision of the plan (every tactic does)."""
        raise NotImplementedError

    def on_event(self, event: Event, may_trade: bool) -> None:
        """A venue event, after the ledger's accounting. `may_trade`: the plan would
        let the tactic send now (not paused, stopped, done or in the final sweep)."""

    def on_child_closed(self, child: WorkingChild, ts_ns: Nanos) -> None:
        """A child this tactic sent is done (filled, canceled, expired, rejected)."""

    def on_pull(self) -> None:
        """The plan pulled every child: give up what waits on an answer."""
