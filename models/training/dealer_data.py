"""Training rows for the dealer models, from RFQ logs.

A log is a day's RFQ events in time order (as the platform and the store record them)
and that day's lit top of book. Rows are built by replaying the log: at each request the
features are taken from the desk's history *before* that request (a `HeuristicPanel`
replaying the same events), the market up to that instant and the published axes; the
labels come from what followed. The simulator's true probabilities ride along for
evaluation only.

Labels per (request, dealer):
- `respond`: a quote within the time limit;
- `best`: a quote, and the best one for the client's side (unknown for a two-sided
  request that traded nothing: NaN);
- `hit`, on the dealer's quote (rows of quoted dealers only, with the quote's distance
  from the mid as a feature): the client traded on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from dealers.config import load_panel
from dealers.panel import HeuristicPanel
from dealers.stream import RfqDay, run_rfq_day
from dealers.truth import DealerTruth
from models.serving.desk import DeskState
from models.serving.features import (
    DEALER_FEATURES,
    HIT_FEATURES,
    MarketContext,
)
from router.domain import (
    NANOS_PER_SECOND,
    DealerId,
    Event,
    Quote,
    QuoteReceived,
    QuoteRequest,
    RfqEnded,
    RfqId,
    RfqRequested,
    RfqTraded,
    Side,
)
from router.parallel import ordered_map
from router.tca import PricePath
from simulators.scenario import SESSION_CLOSE_S, SESSION_OPEN_S, load_scenario

SESSION_S = SESSION_CLOSE_S - SESSION_OPEN_S
VOL_WINDOW_S = 600.0
PANEL_SIZES = (1, 2, 3, 4, 6, 8)  # varied so the models learn what the panel size does
TWO_SIDED_SHARE = 0.2
EXPLORE = 0.3
RFQS_PER_DAY = 80


@dataclass
class DealerRows:
    x: np.ndarray  # (n, len(DEALER_FEATURES))
    respond: np.ndarray  # 0/1
    best: np.ndarray  # 0/1, NaN where the side stayed unknown
    oracle_respond: np.ndarray
    oracle_best: np.ndarray  # NaN where the side stayed unknown
    day: np.ndarray  # order of the day in the generation: the time axis of the split
    x_hit: np.ndarray  # (m, len(HIT_FEATURES)) quoted dealers only
    hit: np.ndarray
    day_hit: np.ndarray

    @classmethod
    def concat(cls, parts: Sequence[DealerRows]) -> DealerRows:
        def cat(name: str, width: int | None = None) -> np.ndarray:
            arrays = [getattr(p, name) for p in parts]
            if not arrays:
                return np.zeros((0, width) if width else 0)
            return np.concatenate(arrays)

        return cls(
            cat("x", len(DEALER_FEATURES)),
            cat("respond"),
            cat("best"),
            cat("oracle_respond"),
            cat("oracle_best"),
            cat("day"),
            cat("x_hit", len(HIT_FEATURES)),
            cat("hit"),
            cat("day_hit"),
        )


@dataclass
class _Open:
    request: QuoteRequest
    ts_ns: int
    market: MarketContext
    rows: dict[DealerId, np.ndarray]
    day: int | None  # the rows' `day`; None: the desk learns from it, no row is kept
    quotes: dict[DealerId, Quote] = field(default_factory=dict)
    traded: set[DealerId] = field(default_factory=set)
    traded_side: Side | None = None


def market_context(path: PricePath, t_s: float, start_tod_s: float) -> MarketContext:
    """The screen at `t_s` seconds after the day's origin (the log's clock)."""
    times = t_s - VOL_WINDOW_S + np.arange(0.0, VOL_WINDOW_S + 1e-9, 10.0)
    mids = path.mids_at(times)
    tod = (start_tod_s + t_s - SESSION_OPEN_S) / SESSION_S
    bid, ask = path.bid_at(t_s), path.ask_at(t_s)
    return MarketContext.from_mids(
        [float(m) for m in mids],
        None if np.isnan(bid) else float(bid),
        None if np.isnan(ask) else float(ask),
        tod,
    )


class Screen(Protocol):
    """What a replay reads of the market at a logged instant (ns on the log's clock):
    the screen at a request and the lit mid. A simulated day's price path is one
    (`PathScreen`); a service journal, which records both with each request and quote,
    is another (models/training/journal_data.py)."""

    def context(self, ts_ns: int) -> MarketContext: ...

    def mid_at(self, ts_ns: int) -> float: ...


@dataclass(frozen=True)
class PathScreen:
    """The screen of a simulated day, from its price path (`market_context`)."""

    path: PricePath
    start_tod_s: float

    def context(self, ts_ns: int) -> MarketContext:
        return market_context(self.path, ts_ns / NANOS_PER_SECOND, self.start_tod_s)

    def mid_at(self, ts_ns: int) -> float:
        return self.path.mid_at(ts_ns / NANOS_PER_SECOND)


def rows_from_log(
    events: Sequence[Event],
    path: PricePath | Screen,
    *,
    desk: DeskState,
    start_tod_s: float = 0.0,
    axe_log: Sequence[tuple[int, DealerId, float]],
    day: int,
    truth: Sequence[DealerTruth] = (),
    sides: Mapping[RfqId, Side] | None = None,
    day_of: Callable[[RfqRequested], int | None] | None = None,
) -> DealerRows:
    """Replay one day's log; `desk` carries the desk's knowledge across days. `path`:
    the day's price path (its clock starting at `start_tod_s` in the day) or another
    `Screen`. `sides`: the client's own side of its requests (from its order records),
    which a two-sided request does not show; the rows of such a request compare prices
    on that side. `day_of`: each request's `day` in the rows (default: `day`), None to
    keep no row of it while the desk still learns from it (a journal's requests before
    the range asked for)."""
    screen = PathScreen(path, start_tod_s) if isinstance(path, PricePath) else path
    oracle = {(t.rfq_id, t.dealer): t for t in truth}
    desk.new_day()
    feed = iter(sorted(axe_log, key=lambda a: a[0]))
    pending = next(feed, None)
    open_: dict[RfqId, _Open] = {}
    xs: list[np.ndarray] = []
    respond: list[float] = []
    best: list[float] = []
    o_resp: list[float] = []
    o_best: list[float] = []
    x_hit: list[list[float]] = []
    hit: list[float] = []
    days: list[int] = []
    days_hit: list[int] = []
    mid_at = screen.mid_at
    for e in events:
        while pending is not None and pending[0] <= e.ts_ns:
            desk.set_axe(pending[1], pending[2])
            pending = next(feed, None)
        ctx = None
        if isinstance(e, RfqRequested):
            r = e.request
            ctx = screen.context(e.ts_ns)
            if r.side is None:
                own_side = None if sides is None else sides.get(r.rfq_id)
                x = desk.rows(r.qty, own_side, r.dealers, ctx, two_sided=True)
            else:
                x = desk.rows(r.qty, r.side, r.dealers, ctx)
            keep = day if day_of is None else day_of(e)
            open_[r.rfq_id] = _Open(r, e.ts_ns, ctx, dict(zip(r.dealers, x, strict=True)), keep)
        elif isinstance(e, QuoteReceived):
            o = open_.get(e.quote.rfq_id)
            if o is not None:
                o.quotes[e.quote.dealer] = e.quote
        elif isinstance(e, RfqTraded):
            o = open_.get(e.rfq_id)
            if o is not None:
                o.traded.add(e.dealer)
                o.traded_side = e.side
        elif isinstance(e, RfqEnded):
            o = open_.pop(e.rfq_id, None)
            if o is not None and o.day is not None:
                n_hit = len(x_hit)
                _label(o, mid_at, oracle, xs, respond, best, o_resp, o_best, x_hit, hit)
                days.extend([o.day] * len(o.request.dealers))
                days_hit.extend([o.day] * (len(x_hit) - n_hit))
        desk.observe(e, mid_at, ctx)
    n, m = len(xs), len(x_hit)
    return DealerRows(
        np.asarray(xs, dtype=np.float64).reshape(n, len(DEALER_FEATURES)),
        np.asarray(respond),
        np.asarray(best),
        np.asarray(o_resp),
        np.asarray(o_best),
        np.asarray(days, dtype=np.int64),
        np.asarray(x_hit, dtype=np.float64).reshape(m, len(HIT_FEATURES)),
        np.asarray(hit),
        np.asarray(days_hit, dtype=np.int64),
    )


def _label(
    o: _Open,
    mid_at: Callable[[int], float],
    oracle: dict[tuple[RfqId, DealerId], DealerTruth],
    xs: list[np.ndarray],
    respond: list[float],
    best: list[float],
    o_resp: list[float],
    o_best: list[float],
    x_hit: list[list[float]],
    hit: list[float],
) -> None:
    side = o.request.side or o.traded_side
    prices: dict[DealerId, float] = {}
    if side is not None:
        for d, q in o.quotes.items():
            p = q.price_for(side)
            if p is not None:
                prices[d] = p
    winner = None
    ranked: list[DealerId] = []
    if side is not None and prices:
        sign = side.sign  # lower is better for the client, for both sides
        order = {d: i for i, d in enumerate(o.request.dealers)}
        # best price; ties to the earlier quote, then panel order
        ranked = sorted(prices, key=lambda d: (sign * prices[d], o.quotes[d].ts_ns, order[d]))
        winner = ranked[0]
    for d in o.request.dealers:
        xs.append(o.rows[d])
        respond.append(1.0 if d in o.quotes else 0.0)
        best.append(float("nan") if side is None else (1.0 if d == winner else 0.0))
        t = oracle.get((o.request.rfq_id, d))
        o_resp.append(t.p_respond if t is not None else float("nan"))
        o_best.append(t.p_best(side) if t is not None and side is not None else float("nan"))
        if d in prices and side is not None:
            q = o.quotes[d]
            mid = mid_at(q.ts_ns)
            cost = side.sign * (prices[d] - mid) / mid * 1e4
            x_hit.append([*o.rows[d], cost, float(ranked.index(d) + 1), float(len(prices))])
            hit.append(1.0 if d in o.traded else 0.0)


@dataclass(frozen=True, slots=True)
class DaySpec:
    scenario: str
    seed: int


def generate(
    days: Sequence[DaySpec],
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
    executor: str = "local",
    ray_address: str | None = None,
) -> DealerRows:
    """Simulate the RFQ days and turn their logs into rows, in the order of `days`. One
    desk history per scenario runs across that scenario's days, in order, as it would at
    a desk; the scenarios' histories are independent of one another, so each scenario's
    days are one job (`scenario_days`), on `workers` processes or Ray
    (router.parallel.ordered_map), and the rows are the same on any number of them."""
    chains = scenario_days(days)
    if workers <= 1 and executor == "local":
        # one process: progress day by day
        done = 0

        def day_done() -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, len(days))

        parts = [run_days(chain, day_done) for chain in chains]
    else:
        parts = ordered_map(
            run_days, chains, workers, executor, ray_address, progress, weight=len, max_batch=1
        )
    return merge_days(parts)


#: days numbered by their place among all (the rows' `day`), with their specs
NumberedDays = list[tuple[int, DaySpec]]


def scenario_days(days: Sequence[DaySpec]) -> list[NumberedDays]:
    """Each scenario's days, numbered by their place in `days`, in order."""
    chains: dict[str, NumberedDays] = {}
    for i, spec in enumerate(days):
        chains.setdefault(spec.scenario, []).append((i, spec))
    return list(chains.values())


def merge_days(parts: Sequence[list[tuple[int, DealerRows]]]) -> DealerRows:
    """The rows of every scenario's days (`run_days`), in the days' original order."""
    return DealerRows.concat(
        [rows for _, rows in sorted((p for part in parts for p in part), key=lambda p: p[0])]
    )


def run_days(
    chain: NumberedDays, day_done: Callable[[], None] | None = None
) -> list[tuple[int, DealerRows]]:
    """One scenario's days in order, a desk history running through them: each day's
    number and rows."""
    scenario = load_scenario(chain[0][1].scenario)
    if scenario.dealer_panel is None:
        raise ValueError(f"scenario {scenario.name!r} has no dealer panel")
    panel = load_panel(scenario.dealer_panel)
    desk = DeskState(panel.ids, panel.name, float(scenario.instrument.adv))
    selector = HeuristicPanel(panel.ids, explore=EXPLORE)
    parts = []
    for i, spec in chain:
        day: RfqDay = run_rfq_day(
            scenario,
            panel,
            spec.seed,
            RFQS_PER_DAY,
            selector,
            panel_size=PANEL_SIZES,
            two_sided_share=TWO_SIDED_SHARE,
        )
        rows = rows_from_log(
            day.events,
            day.path,
            desk=desk,
            start_tod_s=scenario.start_tod_s,
            axe_log=day.axe_log,
            day=i,
            truth=day.truth,
            sides=day.sides,
        )
        parts.append((i, rows))
        if day_done is not None:
            day_done()
    return parts
