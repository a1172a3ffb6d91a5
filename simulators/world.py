"""Assembles one simulated world from a scenario and a master seed: clock, kernel,
market, lit venues and dark pools, each with its own generator from the seed tree."""

from __future__ import annotations

from dataclasses import dataclass

from router.domain import Nanos, VenueId
from router.ports import EventSink, Venue
from simulators.dark import SimDarkPool
from simulators.kernel import Kernel, SimClock, rng_for
from simulators.lit import OwnerRegistry, SimLitVenue
from simulators.market import SimMarket
from simulators.scenario import Scenario


@dataclass
class SimWorld:
    scenario: Scenario
    seed: int
    clock: SimClock
    kernel: Kernel
    market: SimMarket
    lit: dict[VenueId, SimLitVenue]
    dark: dict[VenueId, SimDarkPool]

    @property
    def venues(self) -> dict[VenueId, Venue]:
        return {**self.lit, **self.dark}

    @classmethod
    def build(
        cls, scenario: Scenario, seed: int, sink: EventSink, market: SimMarket | None = None
    ) -> SimWorld:
        """A world for one seed. `market`, when given, is a copy of this seed's market
        at the parent's arrival (made by `SimMarket.fork`): the same state a fresh one
        would reach, without running its warm-up again."""
        if market is None:
            market = SimMarket(scenario, rng_for(seed, "market"))
        clock = SimClock(0)
        kernel = Kernel(clock, market)
        owners = OwnerRegistry()
        lit = {
            spec.venue_id: SimLitVenue(
                spec,
                i,
                market,
                kernel,
                sink,
                rng_for(seed, f"lit/{spec.venue_id}"),
                owners,
            )
            for i, spec in enumerate(scenario.lit)
        }

        def route_fill(
            owner: int, ts: Nanos, _venue: int, price: int, qty: int, maker: bool, leaves: int
        ) -> None:
            venue = owners.venues.get(owner)
            if venue is not None:
                venue.on_fill(owner, ts, price, qty, maker, leaves)

        market.on_client_fill(route_fill)
        dark = {
            spec.venue_id: SimDarkPool(
                spec,
                market,
                kernel,
                sink,
                rng_for(seed, f"dark/{spec.venue_id}"),
            )
            for spec in scenario.dark
        }
        return cls(scenario, seed, clock, kernel, market, lit, dark)
