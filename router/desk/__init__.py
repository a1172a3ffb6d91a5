"""The live desk: parent orders from clients, executed in real time on market sessions.

One `Desk` per service process. For each configured symbol it trades a `MarketSession`
(market.py), opened at its start by the `MarketSource` that the service's composition
root gives it: today the simulator's worlds (sim.py), whose clocks follow the service
clock. Each parent order runs on one `ParentExecution` built by
`router.execution.build_execution`, the same router that runs the backtests, on the
ports its market session hands it; only the scheduler differs: the asyncio loop
advances each market to the service clock (`MarketPump`).

Every fact goes the same way: the engine or a client command produces it, the desk
turns it into journal rows (router/journal.py) and a desk event (router/desk_api.py),
commits the rows of one step in one transaction, then hands the events to the
listeners (FIX gateway, MQTT bus, WebSocket). Nothing is reported before it is stored.
On the first failed write the desk engages the kill switch (reason and time published
at once, source "journal"), halts every parent and says it is not `ready`; once the
journal writes again it is ready, and the kill switch is released automatically only if
`auto_release_kill` says so (default: a person releases it).

The parts, one job each:
- commands.py: the clients' commands; admission.py: a new order checked, all or
  nothing, before anything is journaled; cancel.py: the cancel workflow's requests;
- execution.py: a parent's execution built and wired to its market session's ports;
- projection.py: the engine's events to journal rows and desk events;
- outbox.py: commit, then publish: the journal's writer thread, its retries and health;
- recovery.py: the desk rebuilt from its journal at start, bad rows quarantined;
- queries.py: the reads (parents, fills, decisions, schedules, TCA, scorecard);
- metrics.py: the desk's Prometheus metrics, in the registry the service hands it
  (counters, gauges read at each scrape, the latency of each parent's decisions);
- orders.py: the parents in memory; desk.py: `Desk`, the parts put together.

Times: the service clock is epoch nanoseconds running `sim_speed` times the wall clock;
a market session's clock (world time) runs from 0 when it opened. Domain events carry
world time; desk events and the journal carry service time.
"""

from router.desk.config import DeskConfig
from router.desk.desk import Desk
from router.desk.market import MarketSession, MarketSource, ParentPorts

__all__ = ["Desk", "DeskConfig", "MarketSession", "MarketSource", "ParentPorts"]
