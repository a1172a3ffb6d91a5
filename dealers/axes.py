"""The axe feed: what the simulated dealers publish of their positions to clients.

Each dealer shows its inventory rounded to `AXE_STEP_ADV` of ADV (> 0 long: it wants the
client to buy; 0 = no axe), and the feed logs every change of what is shown, with its
time: the desk's view of who wants to unwind what.
"""

from __future__ import annotations

from dealers.dealer import SimDealer
from router.domain import DealerId, Nanos
from router.ports import Clock

AXE_STEP_ADV = 0.025  # granularity of the published axes


class AxeFeed:
    def __init__(self, adv: int, clock: Clock) -> None:
        self._step = AXE_STEP_ADV * adv
        self._clock = clock
        self._published: dict[DealerId, float] = {}
        self.log: list[tuple[Nanos, DealerId, float]] = []  # (ts, dealer, units) per change

    def axes(self) -> dict[DealerId, float]:
        """Each dealer's published position now, in units."""
        return dict(self._published)

    def update(self, dealer: SimDealer) -> None:
        """Publish the dealer's position anew, if its rounding changed."""
        dealer_id = dealer.spec.dealer_id
        published = round(dealer.inventory / self._step) * self._step
        if self._published.get(dealer_id) != published:
            self._published[dealer_id] = published
            self.log.append((self._clock.now_ns(), dealer_id, published))
