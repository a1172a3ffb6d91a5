"""Behaviour tests of the simulated dark pool (simulators/dark.py) on a real market.

Every test drives a `SimDarkPool` over a real `SimMarket` (scenario "calm") through the
real kernel, and reads what the router would read: the events published to the sink.
The contra log and the market's mid path are evaluation-only views used to check them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np
import pytest

from router.domain import (
    NANOS_PER_SECOND,
    ChildId,
    ChildOrder,
    ChildOrderAccepted,
    ChildOrderCanceled,
    ChildOrderExpired,
    ChildOrderFilled,
    ChildOrderRejected,
    Event,
    FirmUpRequested,
    OrdType,
    ParentId,
    Side,
    TimeInForce,
    VenueId,
)
from simulators.dark import SimDarkPool
from simulators.flow import M_SIGNED_CUM
from simulators.kernel import Kernel, SimClock, rng_for
from simulators.market import SimMarket
from simulators.scenario import DarkVenueSpec, Scenario, load_scenario
from simulators.world import SimWorld

S = NANOS_PER_SECOND
HOUR = 3600 * S
TICK = 0.01  # QDI


@pytest.fixture(scope="module")
def calm() -> Scenario:
    return load_scenario("calm")


def spec_of(scenario: Scenario, venue: str) -> DarkVenueSpec:
    return next(d for d in scenario.dark if d.venue_id == venue)


E = TypeVar("E", bound=Event)


class Sink:
    """Collects events; `on_event` lets a test play the router's part."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.on_event: Callable[[Event], None] | None = None

    def publish(self, event: Event) -> None:
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]


@dataclass
class World:
    market: SimMarket
    kernel: Kernel
    pool: SimDarkPool
    sink: Sink = field(default_factory=Sink)

    def run_for(self, seconds: float) -> None:
        self.kernel.run_until(self.kernel.clock.now_ns() + int(seconds * S))

    def mid_at(self, ts: int) -> float:
        """Consolidated lit mid (ticks) at `ts`: the state after the step running at ts."""
        return float(self.market.mid_path()[self.market.step_of(ts)])


# Busier pools than the shipped calibration, so that the statistical tests see enough
# contra in a short run.
BUSY = {
    "DARKX": {"contra_per_hour": 12.0, "contra_median": 6000},
    "DARKY": {"contra_per_hour": 4.0, "contra_median": 40000},
}


def make_world(scenario: Scenario, venue: str = "DARKX", seed: int = 1, **changes: Any) -> World:
    market = SimMarket(scenario, rng_for(seed, "market"))
    kernel = Kernel(SimClock(0), market)
    sink = Sink()
    spec = replace(spec_of(scenario, venue), **{**BUSY.get(venue, {}), **changes})
    pool = SimDarkPool(spec, market, kernel, sink, rng_for(seed, f"dark/{venue}"))
    return World(market, kernel, pool, sink)


def child(
    cid: str,
    venue: str,
    side: Side,
    qty: int,
    *,
    tif: TimeInForce = TimeInForce.DAY,
    limit: int | None = None,
    min_qty: int = 0,
    conditional: bool = False,
) -> ChildOrder:
    return ChildOrder(
        ChildId(cid),
        ParentId("P1"),
        VenueId(venue),
        side,
        qty,
        OrdType.MARKET if limit is None else OrdType.LIMIT,
        tif,
        limit_ticks=limit,
        min_qty=min_qty,
        conditional=conditional,
    )


def check_fill_reports(w: World, qty: int) -> list[ChildOrderFilled]:
    """Common checks on one child's fills; returns them."""
    fills = w.sink.of(ChildOrderFilled)
    leaves = qty
    for f in fills:
        leaves -= f.qty
        assert f.qty > 0 and f.leaves_qty == leaves
        assert f.liquidity == "midpoint"
        assert f.fee == pytest.approx(w.pool.spec.fee * f.qty)
        # crossed exactly at the consolidated lit midpoint of the moment (may be x.5 ticks)
        assert f.price / TICK == pytest.approx(w.mid_at(f.ts_ns), abs=1e-6)
    assert w.pool.fill_count == len(fills)
    return fills


# ------------------------------------------------------------------------ resting orders


def test_resting_day_sell_fills_at_the_midpoint_and_never_below_its_limit(calm: Scenario) -> None:
    w = make_world(calm, "DARKX", seed=1)
    limit = int(w.market.mid_ticks() or 0)
    qty = 1_000_000
    w.pool.submit(child("c1", "DARKX", Side.SELL, qty, limit=limit))
    w.run_for(3600)

    assert isinstance(w.sink.events[0], ChildOrderAccepted)
    fills = check_fill_reports(w, qty)
    assert len(fills) >= 5
    assert all(f.price / TICK >= limit - 1e-9 for f in fills)
    assert all(f.side is Side.SELL for f in fills)
    # the limit mattered: some buy contra arrived while the mid was below it
    blocked = [t for t, side, _, _ in w.pool.contra_log if side is Side.BUY and w.mid_at(t) < limit]
    assert blocked
    # only buy contra trades with a sell, and no fill is bigger than its contra
    buys = [q for _, side, q, _ in w.pool.contra_log if side is Side.BUY]
    assert all(f.qty <= max(buys) for f in fills)
    assert sum(f.qty for f in fills) <= sum(buys)


def test_a_dark_fill_counts_as_the_clients_own_flow_in_the_price_reaction(
    calm: Scenario,
) -> None:
    # as a passive lit fill does: the contra would have traded elsewhere without us, so
    # the square-root law applies to a metaorder worked in the dark too
    w = make_world(calm, "DARKX", seed=1)
    counted: list[tuple[Side, int, float]] = []
    record = w.market.record_passive_client_fill

    def spy(side: Side, qty: int) -> None:
        before = float(w.market.state.meta[M_SIGNED_CUM])
        record(side, qty)
        counted.append((side, qty, float(w.market.state.meta[M_SIGNED_CUM]) - before))

    w.market.record_passive_client_fill = spy  # type: ignore[method-assign]
    w.pool.submit(child("c1", "DARKX", Side.SELL, 1_000_000))
    w.run_for(1800)
    fills = w.sink.of(ChildOrderFilled)
    assert fills
    assert counted == [(Side.SELL, f.qty, -float(f.qty)) for f in fills]


def test_contra_is_consumed_and_shared_in_time_priority(calm: Scenario) -> None:
    w = make_world(calm, "DARKX", seed=1)
    w.pool.submit(child("first", "DARKX", Side.SELL, 2_000))
    w.run_for(1)
    w.pool.submit(child("second", "DARKX", Side.SELL, 1_000_000))
    w.run_for(3600)
    first = [f for f in w.sink.of(ChildOrderFilled) if f.child_id == "first"]
    assert sum(f.qty for f in first) == 2_000
    buy_contra = {t: q for t, side, q, _ in w.pool.contra_log if side is Side.BUY}
    by_ts: dict[int, list[ChildOrderFilled]] = {}
    for f in w.sink.of(ChildOrderFilled):
        by_ts.setdefault(f.ts_ns, []).append(f)
    assert len(by_ts) >= 5
    first_open = True
    for ts, group in by_ts.items():
        # a resting order trades when a contra arrives, and takes it whole, once
        assert sum(f.qty for f in group) == buy_contra[ts]
        if first_open:
            assert group[0].child_id == "first"
            first_open = group[0].leaves_qty > 0
    assert not first_open
    assert any(len(g) == 2 for g in by_ts.values())  # one contra split between the two


def test_fills_respect_the_orders_min_qty(calm: Scenario) -> None:
    qty, min_qty = 200_000, 10_000
    w = make_world(calm, "DARKX", seed=2)
    w.pool.submit(child("c1", "DARKX", Side.SELL, qty, min_qty=min_qty))
    w.run_for(3 * 3600)
    fills = check_fill_reports(w, qty)
    assert fills
    for f in fills:  # once fewer than min_qty are left, the minimum is what is left
        assert f.qty >= min(min_qty, f.qty + f.leaves_qty)

    # the same world without a minimum trades smaller pieces: the rule was exercised
    free = make_world(calm, "DARKX", seed=2)
    free.pool.submit(child("c1", "DARKX", Side.SELL, qty))
    free.run_for(3 * 3600)
    assert any(f.qty < min_qty for f in free.sink.of(ChildOrderFilled))


def test_order_below_the_pool_minimum_is_rejected_and_changes_nothing(calm: Scenario) -> None:
    w = make_world(calm, "DARKY", seed=3)
    control = make_world(calm, "DARKY", seed=3)
    w.pool.submit(child("small", "DARKY", Side.SELL, 4_000))  # DARKY minimum: 5000
    w.run_for(3600)
    control.run_for(3600)

    [rej] = w.sink.events
    assert isinstance(rej, ChildOrderRejected) and rej.child_id == "small"
    assert "minimum" in rej.reason and "5000" in rej.reason
    assert w.pool.open_orders() == [] and w.pool.fill_count == 0
    assert w.pool.contra_log == control.pool.contra_log  # the contra stream did not move
    assert w.pool.contra_log


def test_cancel_returns_the_open_quantity(calm: Scenario) -> None:
    qty = 1_000_000
    w = make_world(calm, "DARKX", seed=1)
    w.pool.submit(child("c1", "DARKX", Side.SELL, qty))
    w.run_for(1800)
    filled = sum(f.qty for f in w.sink.of(ChildOrderFilled))
    assert 0 < filled < qty
    w.pool.cancel(ChildId("c1"))
    w.run_for(1800)

    [canceled] = w.sink.of(ChildOrderCanceled)
    assert canceled.canceled_qty == qty - filled and canceled.reason == ""
    assert all(f.ts_ns < canceled.ts_ns for f in w.sink.of(ChildOrderFilled))
    assert w.pool.open_orders() == []

    w.pool.cancel(ChildId("c1"))  # already canceled
    w.pool.cancel(ChildId("nope"))  # never known
    w.run_for(1)
    again = w.sink.of(ChildOrderCanceled)[1:]
    assert [(c.child_id, c.canceled_qty, c.reason) for c in again] == [
        ("c1", 0, "too late: not open"),
        ("nope", 0, "too late: not open"),
    ]


def test_messages_are_not_reordered_by_latency_jitter(calm: Scenario) -> None:
    w = make_world(calm, "DARKY", seed=5)
    ids = [ChildId(f"c{i}") for i in range(30)]
    for cid in ids:  # a cancel sent right after its order must not overtake it
        w.pool.submit(child(cid, "DARKY", Side.BUY, 5_000 + int(cid[1:])))
        w.pool.cancel(cid)
    w.run_for(1)
    canceled = w.sink.of(ChildOrderCanceled)
    assert [(c.child_id, c.canceled_qty) for c in canceled] == [
        (cid, 5_000 + i) for i, cid in enumerate(ids)
    ]
    acks = [e.child_id for e in w.sink.events if isinstance(e, ChildOrderAccepted)]
    assert acks == ids
    assert [type(e) for e in w.sink.events[:2]] == [ChildOrderAccepted, ChildOrderCanceled]


def test_ioc_takes_live_contra_and_expires_the_rest(calm: Scenario) -> None:
    probe = make_world(calm, "DARKX", seed=4)
    probe.run_for(3600)
    arrival, _, contra_qty, _ = next(c for c in probe.pool.contra_log if c[1] is Side.BUY)

    # the contra stream does not depend on the client: the same buy contra appears again
    w = make_world(calm, "DARKX", seed=4)
    w.kernel.run_until(arrival + 1000)
    qty = contra_qty + 50_000
    w.pool.submit(child("ioc", "DARKX", Side.SELL, qty, tif=TimeInForce.IOC))
    w.run_for(3600)
    fills = check_fill_reports(w, qty)
    [expired] = w.sink.of(ChildOrderExpired)
    assert sum(f.qty for f in fills) == contra_qty
    assert expired.expired_qty == qty - contra_qty and expired.ts_ns == fills[-1].ts_ns
    assert w.pool.open_orders() == []  # nothing rested

    # an IOC with no contra on the other side expires whole, at once
    w.pool.submit(child("ioc2", "DARKX", Side.SELL, 5_000, tif=TimeInForce.IOC))
    w.run_for(1)
    assert [(e.child_id, e.expired_qty) for e in w.sink.of(ChildOrderExpired)][-1] == (
        "ioc2",
        5_000,
    )


# ------------------------------------------------------------------------ conditionals


def run_conditional(calm: Scenario, answer_delay_s: float | None) -> World:
    """A resting conditional sell; the router firms up every request after a delay
    (None: never answers, inf: answers one millisecond after the deadline)."""
    w = make_world(calm, "DARKX", seed=1)

    def router(e: Event) -> None:
        if not isinstance(e, FirmUpRequested) or answer_delay_s is None:
            return
        if answer_delay_s == float("inf"):
            at = e.deadline_ns + S // 1000
        else:
            at = w.kernel.clock.now_ns() + int(answer_delay_s * S)
        w.kernel.schedule(at, lambda: w.pool.firm_up(e.child_id, e.contra_qty))

    w.sink.on_event = router
    w.pool.submit(child("cond", "DARKX", Side.SELL, 1_000_000, conditional=True))
    w.run_for(3600)
    return w


def test_conditional_trades_only_when_firmed_up_in_time(calm: Scenario) -> None:
    w = run_conditional(calm, answer_delay_s=0.0)
    requests = w.sink.of(FirmUpRequested)
    fills = check_fill_reports(w, 1_000_000)
    assert len(requests) >= 3 and len(fills) >= 3
    assert w.pool.firm_up_requests == len(requests)
    assert w.pool.firm_ups_firmed == len(fills)
    window = int(w.pool.spec.firm_up_window_s * S)
    for r in requests:
        assert r.deadline_ns == r.ts_ns + window and r.contra_qty >= w.pool.spec.min_qty
    for f in fills:  # each fill answers the request just before it, for its quantity
        r = max((r for r in requests if r.ts_ns <= f.ts_ns), key=lambda r: r.ts_ns)
        assert f.ts_ns <= r.deadline_ns and f.qty == r.contra_qty

    silent = run_conditional(calm, answer_delay_s=None)
    assert len(silent.sink.of(FirmUpRequested)) >= 3
    assert silent.sink.of(ChildOrderFilled) == []  # a conditional never trades on its own


def test_late_firm_up_does_not_trade_and_the_conditional_keeps_resting(calm: Scenario) -> None:
    w = run_conditional(calm, answer_delay_s=float("inf"))
    requests = w.sink.of(FirmUpRequested)
    rejects = w.sink.of(ChildOrderRejected)
    assert len(requests) >= 3
    assert w.sink.of(ChildOrderFilled) == [] and w.pool.firm_ups_firmed == 0
    assert rejects and all("too late" in r.reason for r in rejects)
    assert requests[-1].ts_ns > rejects[0].ts_ns  # still asked after a failed firm-up
    assert w.pool.open_orders() == [ChildId("cond")]


# ------------------------------------------------------------------------ determinism


def world_events(scenario: Scenario, seed: int) -> list[str]:
    sink = Sink()
    world = SimWorld.build(scenario, seed, sink)
    x, y = world.dark[VenueId("DARKX")], world.dark[VenueId("DARKY")]

    def router(e: Event) -> None:
        if isinstance(e, FirmUpRequested):
            y.firm_up(e.child_id, e.contra_qty)

    sink.on_event = router
    x.submit(child("x1", "DARKX", Side.SELL, 300_000, min_qty=1_000))
    y.submit(child("y1", "DARKY", Side.SELL, 300_000, conditional=True))
    world.kernel.run_until(HOUR)
    x.cancel(ChildId("x1"))
    world.kernel.run_until(2 * HOUR)
    return [repr(e) for e in sink.events]


def test_same_seed_same_events(calm: Scenario) -> None:
    first = world_events(calm, 7)
    assert any("ChildOrderFilled" in e for e in first)
    assert world_events(calm, 7) == first
    assert world_events(calm, 8) != first


# ------------------------------------------------------------------------ adverse selection


def test_toxic_contra_moves_the_price_against_the_seller(calm: Scenario) -> None:
    """Sell fills in DARKY (toxicity 0.35) are followed by a rise of the mid over the
    next 60 s; the same pool with toxicity 0 shows no such drift.

    The two pools run side by side on one market with the same generator, so they see
    the same contra arrivals, sizes and lifetimes; only the informed flags differ.
    """
    toxic = replace(spec_of(calm, "DARKY"), **BUSY["DARKY"])
    clean = replace(toxic, toxicity=0.0)
    horizon = 2 * HOUR
    after = 60 * S
    moves: dict[float, list[float]] = {toxic.toxicity: [], 0.0: []}
    informed = {toxic.toxicity: 0, 0.0: 0}
    for seed in range(10):
        market = SimMarket(calm, rng_for(seed, "market"))
        kernel = Kernel(SimClock(0), market)
        runs = []
        for j in range(4):
            for spec in (toxic, clean):
                sink = Sink()
                pool = SimDarkPool(spec, market, kernel, sink, rng_for(seed, f"dark/{j}"))
                pool.submit(child("c", "DARKY", Side.SELL, 100_000_000))
                runs.append((spec.toxicity, pool, sink))
        kernel.run_until(horizon + after)
        mid = market.mid_path()
        for tox, pool, sink in runs:
            informed[tox] += pool.informed_fill_count
            moves[tox] += [
                mid[market.step_of(f.ts_ns + after)] - f.price / TICK
                for f in sink.of(ChildOrderFilled)
                if f.ts_ns <= horizon
            ]
    assert informed[0.0] == 0 and informed[toxic.toxicity] > 50
    assert min(len(v) for v in moves.values()) > 200
    with_tox = float(np.nanmean(moves[toxic.toxicity]))
    without = float(np.nanmean(moves[0.0]))
    # measured before dark fills moved the price: with 1.3-3.0 ticks, without -0.4-0.6
    # ticks; since, with -4.4 and without -6.2 on these seeds: the same difference
    assert with_tox - without > 0.8
    # the clean pool's fills are followed by a fall: the sellers' own impact (eight
    # pools selling into one market), which the toxic contra's rise only offsets
    assert without < 0.0
