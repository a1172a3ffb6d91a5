"""The smart order router: one parent order becomes child orders across venues.

One `ParentExecution` (parent.py) holds the plan and the lifecycle of one parent
order: a scheduler wakes it at each decision time, and the venues' events come back
through `publish`. It never reads a clock of its own and never touches a transport:
everything arrives through the ports (`ExecutionPorts`). Its parts:

- `ChildOrderLedger` (ledger.py): child and RFQ ids, what is done and what is working,
  the risk-gated send (router.risk) and the fill accounting. No tactic can have more
  shares working or done than the parent's quantity.
- `MarketSignals` (signals.py): the volume and mids the parent has seen, and the
  recent market its passive orders share at one decision.
- The tactics (tactic.py: one interface), each with its own config (config.py):
  `TakeTactic` (take.py: marketable IOC limits on the lit venues, fee-ranked and split
  by depth), `LitPostTactic` (lit.py: the Cont-Kukanov split of each slice between
  taking and resting on the lit venues), `DarkRestTactic` (dark.py: midpoint orders in
  the dark pools), and the RFQ workflow with the dealer panel (rfq.py: blocks while the
  parent is worked, or one risk bid at arrival).

A strategy (router.strategies) is a slicer (how much by when) plus a tuple of tactic
configs (where and how); `build_execution` (build.py) is the one place that turns a
strategy, the ports and the models into an execution. Every execution sweeps what is
left before the horizon, never prices through the parent's limit, passes every child
through the risk gate and records every decision with the alternatives it weighed.
"""

from router.execution.build import ExecutionModels, ExecutionPorts, ExecutionSpec, build_execution
from router.execution.config import (
    DarkRestConfig,
    LitPostConfig,
    PlanConfig,
    RfqConfig,
    RiskBidConfig,
    TacticConfig,
    TakeConfig,
)
from router.execution.ledger import ChildOrderLedger, ExecutionResult
from router.execution.parent import ParentExecution, Scheduler
from router.execution.tactic import Decision, Tactic
from router.execution.venues import LitFees, RfqRouting

__all__ = [
    "ChildOrderLedger",
    "DarkRestConfig",
    "Decision",
    "ExecutionModels",
    "ExecutionPorts",
    "ExecutionResult",
    "ExecutionSpec",
    "LitFees",
    "LitPostConfig",
    "ParentExecution",
    "PlanConfig",
    "RfqConfig",
    "RfqRouting",
    "RiskBidConfig",
    "Scheduler",
    "Tactic",
    "TacticConfig",
    "TakeConfig",
    "build_execution",
]
