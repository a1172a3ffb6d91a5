"""A simulated dealer's own economics: does the price it shows keep it in business?

Each client trade is booked with what the dealer did about it, and valued at a mark (the
end of the simulated day):

    P&L = d * (F_end - P)                 the trade, marked to the fair value at the end
        + sum of h * (F_end - p_h)        its hedges, traded on the lit venues (they
                                          paid the spread and moved the price, as a
                                          client's orders would)
        - unwind charge                   what working out the rest would cost

with `d` the units the dealer took on (> 0: it bought), `P` the trade's price and `h`,
`p_h` each hedge fill (signed, and its price). The dealer's position left over after the
day is charged its square-root unwinding cost (dealers.pricing), shared out trade by
trade in the order they happened: each trade pays the change it made to the cost of
unwinding the whole book, `U(J_k) - U(J_k-1)`, with `J_k` the book after the first k
trades' residuals (the dealer's start-of-day inventory first). So the charges add up to
what the day did to the book's unwinding cost, and a trade that worked off an axe is
credited what it saved. What the dealer gained or lost on the inventory it already held
is not any trade's doing and is left out, as are its front-running trades (its own
book, not the client's).

Everything is in the instrument's currency and bps of each trade's notional at the fair
value when it traded. Pure bookkeeping: the simulator feeds it, nothing here trades.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dealers.pricing import CarryCost
from router.domain import DealerId, Nanos, Side

#: the size buckets of the P&L report, share of ADV: (label, upper bound)
SIZE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("<2%", 0.02),
    ("2-5%", 0.05),
    ("5-10%", 0.10),
    ("10-25%", 0.25),
)


def size_bucket(size_adv: float) -> str | None:
    """The report's bucket of a trade of `size_adv` of ADV; None past the largest."""
    for label, upper in SIZE_BUCKETS:
        if size_adv < upper:
            return label
    return None


@dataclass(frozen=True, slots=True)
class TradePnl:
    """One client trade's P&L to the dealer at the mark."""

    dealer: DealerId
    ts_ns: Nanos
    client_side: Side
    qty: int
    size_adv: float
    notional: float  # qty * the fair value when it traded
    edge: float  # d * (fair - price) at the trade: what the quote earned on the spot
    market: float  # the trade's position and its hedges, marked to the end
    unwind: float  # the unwinding charge (positive = a cost)

    @property
    def pnl(self) -> float:
        return self.edge + self.market - self.unwind

    @property
    def pnl_bps(self) -> float:
        return self.pnl / self.notional * 1e4


@dataclass
class _Booked:
    ts_ns: Nanos
    client_side: Side
    qty: int
    price: float
    fair: float
    delta: float  # units the dealer took on: > 0 it bought
    hedged: float = 0.0  # signed units its hedges traded
    hedge_cost: float = 0.0  # sum of h * p_h over its hedge fills


@dataclass
class DealerBook:
    """One dealer's client trades and the hedges of each."""

    dealer: DealerId
    start_inventory: float
    adv: float
    trades: list[_Booked] = field(default_factory=list)

    def trade(self, ts_ns: Nanos, client_side: Side, qty: int, price: float, fair: float) -> int:
        """Book a fill on the dealer's quote; returns the trade's index for its hedges."""
        if qty <= 0 or price <= 0 or fair <= 0:
            raise ValueError(f"a trade needs qty, price and fair > 0, got {qty}, {price}, {fair}")
        # a client buy is a dealer sale
        self.trades.append(_Booked(ts_ns, client_side, qty, price, fair, -client_side.sign * qty))
        return len(self.trades) - 1

    def hedge_fill(self, index: int, side: Side, qty: int, price: float) -> None:
        """A lit fill of trade `index`'s hedge: `side` is the dealer's, `price` its own."""
        if qty <= 0:
            return
        t = self.trades[index]
        t.hedged += side.sign * qty
        t.hedge_cost += side.sign * qty * price

    def mark(self, fair_end: float, cost: CarryCost) -> list[TradePnl]:
        """Every trade's P&L with the book valued at `fair_end`, what it still holds
        charged `cost.unwind_bps`."""
        out = []
        book = self.start_inventory
        for t in self.trades:
            residual = t.delta + t.hedged
            market = t.delta * (fair_end - t.fair) + (t.hedged * fair_end - t.hedge_cost)
            before = cost.unwind_bps(book)
            book += residual
            unwind = (cost.unwind_bps(book) - before) * fair_end / 1e4
            out.append(
                TradePnl(
                    dealer=self.dealer,
                    ts_ns=t.ts_ns,
                    client_side=t.client_side,
                    qty=t.qty,
                    size_adv=t.qty / self.adv,
                    notional=t.qty * t.fair,
                    edge=t.delta * (t.fair - t.price),
                    market=market,
                    unwind=unwind,
                )
            )
        return out
