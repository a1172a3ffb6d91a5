"""One simulated dealer's own state: its position, its credit line with the client, what
the client has asked it for lately, and its book of client trades and their hedges.

A dealer opens the day with an inventory drawn from its own generator (flat within its
`inventory_sd`, or with probability `axe_prob` an axe of `axe_size` ADV either way). Its
trades with the client and on the lit screen move the position; each client trade is
booked for the dealer's P&L (dealers/pnl.py). The same generator then draws everything
the dealer decides (dealers/quoting.py, dealers/leakage.py), so runs are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dealers.config import DealerSpec
from dealers.pnl import DealerBook
from dealers.pricing import FLOW_HALF_LIFE_S
from router.domain import NANOS_PER_SECOND, Nanos, QuoteRequest, Side


@dataclass
class SimDealer:
    spec: DealerSpec
    rng: np.random.Generator
    owner: int  # book owner id of the dealer's own lit orders
    inventory: float  # units; > 0 long
    book: DealerBook
    credit_used: float = 0.0
    # what the client has asked this dealer for, per side (units, decayed with
    # FLOW_HALF_LIFE_S), and when that was last brought up to date
    asked: dict[Side, float] = field(default_factory=lambda: {Side.BUY: 0.0, Side.SELL: 0.0})
    asked_ns: Nanos = 0

    @classmethod
    def open(cls, spec: DealerSpec, rng: np.random.Generator, owner: int, adv: int) -> SimDealer:
        """The dealer at the start of the day, its inventory drawn from `rng`."""
        inventory = float(rng.normal(0.0, spec.inventory_sd * adv))
        if rng.random() < spec.axe_prob:
            sign = 1.0 if rng.random() < 0.5 else -1.0
            inventory = sign * spec.axe_size * adv
        return cls(spec, rng, owner, inventory, DealerBook(spec.dealer_id, inventory, float(adv)))

    def _decay(self, now: Nanos) -> float:
        return float(0.5 ** ((now - self.asked_ns) / NANOS_PER_SECOND / FLOW_HALF_LIFE_S))

    def flow(self, client: Side, now: Nanos) -> float:
        """The client's net recent requests on side `client` (units, >= 0)."""
        net = self.asked[client] - self.asked[client.opposite]
        return max(0.0, net * self._decay(now))

    def remember(self, request: QuoteRequest, now: Nanos) -> None:
        decay = self._decay(now)
        for side in self.asked:
            self.asked[side] *= decay
        self.asked_ns = now
        if request.side is not None:  # a two-sided request does not say which
            self.asked[request.side] += request.qty

    def short_of_inventory(self, request: QuoteRequest) -> bool:
        # a client buy is a dealer sale: without the bonds it must borrow or decline
        return request.side is not Side.SELL and self.inventory < request.qty

    def trade(self, ts_ns: Nanos, client_side: Side, qty: int, price: float, fair: float) -> int:
        """Take the other side of a client trade: position, credit line and book.
        Returns the booked trade's index (for its hedges)."""
        self.inventory -= client_side.sign * qty
        self.credit_used += qty * price
        return self.book.trade(ts_ns, client_side, qty, price, fair)
