"""Assembles one simulated world from a scenario and a master seed: clock, kernel,
market, lit venues and dark pools, each with its own generator from the seed tree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from router.domain import Nanos, VenueId
from router.ports import EventSink, Venue
from simulators.dark import SimDarkPool
from simulators.kernel import Kernel, SimClock, rng_for
from simulators.lit import OwnerRegistry, SimLitVenue
from simulators.markets import LitMarket, open_market
from simulators.scenario import Scenario

if TYPE_CHECKING:
    from dealers.config import DealerPanel
    from dealers.simulator import SimRfqVenue


@dataclass
class SimWorld:
    scenario: Scenario
    seed: int
    clock: SimClock
    kernel: Kernel
    market: LitMarket
    lit: dict[VenueId, SimLitVenue]
    dark: dict[VenueId, SimDarkPool]
    rfq: SimRfqVenue | None = None  # the dealers, when the world has a panel

    @property
    def venues(self) -> dict[VenueId, Venue]:
        dealers = self.rfq.venues if self.rfq is not None else {}
        return {**self.lit, **self.dark, **dealers}

    @classmethod
    def build(
        cls,
        scenario: Scenario,
        seed: int,
        sink: EventSink,
        market: LitMarket | None = None,
        panel: DealerPanel | None = None,
    ) -> SimWorld:
        """A world for one seed. `market`, when given, is a copy of this seed's market
        at the parent's arrival (made by `fork`): the same state a fresh one would
        reach, without running its warm-up again. `panel` adds the dealers."""
        if market is None:
            market = open_market(scenario, seed)
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
        rfq = None
        if panel is not None:
            from dealers.simulator import SimRfqVenue  # dealers build on the simulators

            rfq = SimRfqVenue(
                panel,
                scenario.instrument,
                scenario.market.daily_vol,
                market,
                kernel,
                sink,
                lambda name: rng_for(seed, name),
            )
        return cls(scenario, seed, clock, kernel, market, lit, dark, rfq)
