"""What the simulated dealers do on the lit screen with what an RFQ told them.

Every dealer asked learns the size, and the side of a one-sided request. When the RFQ
ends, each dealer that did not trade front-runs with `front_run_prob`: it buys (for a
client buy) `front_run_share` of the size in the lit market over `front_run_s`. On a
two-sided request it knows the side only if the client traded, and guesses it right with
the panel's `side_guess`. The dealer that traded hedges `hedge_share` of what the trade
added to its position (none of a trade that shrank it) over `hedge_s`. Both are programs
of IOC slices through `SimMarket.take`, so they move later lit prices like any
aggressor's flow: the leakage a desk pays for asking too many dealers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from dealers.axes import AxeFeed
from dealers.config import DealerPanel
from dealers.dealer import SimDealer
from dealers.rfq import LegState, RfqSession
from router.domain import NANOS_PER_SECOND, DealerId, Instrument, Side
from simulators.kernel import Kernel
from simulators.markets import LitMarket

FRONT_RUN_SLICES = 5
HEDGE_SLICES = 10
REACH_TICKS = 2  # how far past the touch a dealer's lit IOC may reach


class LitLeakage:
    def __init__(
        self,
        panel: DealerPanel,
        instrument: Instrument,
        dealers: Mapping[DealerId, SimDealer],
        market: LitMarket,
        kernel: Kernel,
        axes: AxeFeed,
    ) -> None:
        self._panel = panel
        self._instrument = instrument
        self._dealers = dealers
        self._market = market
        self._kernel = kernel
        self._axes = axes

    def front_run(self, session: RfqSession, traded_side: Side | None) -> None:
        """The dealers that did not trade on the ended RFQ `session` (on which the client
        traded `traded_side`, if at all) each draw whether, which way and when to run
        ahead of the client."""
        request = session.request
        for dealer_id, leg in session.legs.items():
            if leg.state is LegState.FILLED:
                continue
            dealer = self._dealers[dealer_id]
            u_run, u_side, u_t = dealer.rng.random(3)
            if u_run >= dealer.spec.front_run_prob:
                continue
            side = request.side
            if side is None:  # two-sided: only a trade reveals the side, and not surely
                if traded_side is None:
                    continue
                right = u_side < self._panel.side_guess
                side = traded_side if right else traded_side.opposite
            qty = self._round_lot(dealer.spec.front_run_share * request.qty)
            self._program(dealer, side, qty, dealer.spec.front_run_s, FRONT_RUN_SLICES, u_t)

    def hedge(self, dealer: SimDealer, client: Side, before: float, trade: int) -> None:
        """The dealer now holds the client's risk (its position was `before` the client's
        trade `trade`) and lays part of what the trade added to it off on the screen; a
        trade that shrank the position needs no hedge."""
        added = max(0.0, abs(dealer.inventory) - abs(before))
        qty = self._round_lot(dealer.spec.hedge_share * added)
        self._program(dealer, client, qty, dealer.spec.hedge_s, HEDGE_SLICES, trade=trade)

    def _program(
        self,
        dealer: SimDealer,
        side: Side,
        qty: int,
        over_s: float,
        slices: int,
        phase: float = 0.5,
        trade: int | None = None,
    ) -> None:
        """Trade `qty` on the lit screen in equal IOC slices spread over `over_s`, on
        the client's side (a front-run ahead of it, or the hedge of a trade against
        it); a hedge's fills are booked against `trade`."""
        if qty <= 0:
            return
        lot = self._instrument.lot_size
        each = max(lot, qty // slices // lot * lot)
        now = self._kernel.clock.now_ns()
        step = over_s / slices
        left = qty
        k = 0
        while left > 0 and k < slices:
            q = min(each, left) if k < slices - 1 else left
            at = now + int((k + phase) * step * NANOS_PER_SECOND)
            self._kernel.schedule(at, self._take_cb(dealer, side, q, trade))
            left -= q
            k += 1

    def _take_cb(
        self, dealer: SimDealer, side: Side, qty: int, trade: int | None
    ) -> Callable[[], None]:
        def take() -> None:
            now = self._kernel.clock.now_ns()
            filled, paid = self._market.take(now, side, qty, REACH_TICKS, dealer.owner)
            dealer.inventory += side.sign * filled
            if trade is not None and filled > 0:
                price = paid / filled * self._instrument.tick_size
                dealer.book.hedge_fill(trade, side, filled, price)
            self._axes.update(dealer)

        return take

    def _round_lot(self, qty: float) -> int:
        lot = self._instrument.lot_size
        return int(qty) // lot * lot
