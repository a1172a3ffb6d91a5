"""What a block costs the dealer who takes it on: the price of risk transfer.

A dealer that buys a block from a client must get rid of it, and the market charges it
for that as it would charge the client: working `x` units out through the lit venues
moves the price by the square-root law, peak `Y * sigma * sqrt(x / ADV)`, of which the
one trading pays about two thirds on average. While it unwinds it also carries the
position's price risk, for which a dealer with capital to protect wants a premium
(mean-variance: risk aversion x volatility x size x sqrt(holding time)). So the cost of
holding an inventory `x` (signed units), in bps of notional times units, is

    C(x) = 2/3 * Y * sigma_bps * |x| * sqrt(|x| / ADV)                  unwinding it
         + risk_aversion * sigma_bps * sqrt(hold / day) * x^2 / ADV     carrying it

and a trade that moves the dealer's inventory from I to I + d costs it, per unit, the
change of C over |d| (the premium only where the trade adds risk). From a flat book
that is the square-root cost of the size plus its risk premium; a dealer already long
and selling to a buyer lowers its own cost, so it can show a price through the others
(an axe), and one short and buying too. Its quote adds a margin to this cost; it never
quotes below it, apart from the noise of its own pricing. `Y` is the dealer's estimate
of the market's impact, measured from its own past hedges as the router measures its
own (the panel's `impact_y`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: two thirds of the peak: what the one trading pays on average over its own metaorder
PAID_SHARE_OF_PEAK = 2.0 / 3.0
#: how long a dealer remembers what a client asked it for (half-life of the memory)
FLOW_HALF_LIFE_S = 1800.0
TRADING_DAY_S = 6.5 * 3600.0  # the risk premium's unit of time


@dataclass(frozen=True, slots=True)
class CarryCost:
    """One dealer's cost of holding inventory now (see the module docstring)."""

    adv: float
    sigma_bps: float  # the daily volatility the dealer prices with, in bps
    impact_y: float
    risk_aversion: float
    hold_s: float  # how long it carries a position while it unwinds it

    def of(self, x: float) -> float:
        """C(x), bps of notional x units."""
        return self.unwind_bps(x) + self.risk_bps(x)

    def unwind_bps(self, x: float) -> float:
        """The unwinding part of C(x): what working `x` out on the screen is expected to
        cost, and what the dealer is charged at the end of the day for what it still
        holds (the risk is over by then)."""
        a = abs(x)
        return PAID_SHARE_OF_PEAK * self.impact_y * self.sigma_bps * a * math.sqrt(a / self.adv)

    def risk_bps(self, x: float) -> float:
        """The premium part of C(x): for carrying `x` while it unwinds."""
        per_unit = self.risk_aversion * self.sigma_bps * math.sqrt(self.hold_s / TRADING_DAY_S)
        return per_unit * x * x / self.adv

    def flow_bps(self, same_side_units: float, hedge_share: float) -> float:
        """What a client's recent requests on this side tell the dealer, in bps: a
        client that keeps asking to sell is working a parent that will go on selling,
        and the price will move against whatever the dealer still holds (the part it
        does not hedge at once) by about the square-root law's peak on that flow."""
        if same_side_units <= 0.0:
            return 0.0
        peak = self.impact_y * self.sigma_bps * math.sqrt(same_side_units / self.adv)
        return peak * (1.0 - hedge_share)

    def marginal_bps(self, inventory: float, delta: float) -> float:
        """Cost per unit, in bps, of moving the inventory by `delta` (> 0: the dealer
        buys). Negative when the trade shrinks a position it would otherwise pay to
        unwind, by what that saves it in unwinding and no more: the risk premium is
        asked for risk taken on, never paid out for risk shed, so that no quote lies
        below the dealer's expected cost (what its P&L, dealers/pnl.py, will show)."""
        if delta == 0.0:
            return 0.0
        after = inventory + delta
        unwind = self.unwind_bps(after) - self.unwind_bps(inventory)
        risk = max(0.0, self.risk_bps(after) - self.risk_bps(inventory))
        return (unwind + risk) / abs(delta)
