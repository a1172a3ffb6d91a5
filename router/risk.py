"""Pre-trade risk checks, run before every child order leaves the router.

Checks, in order: the kill switch (nothing goes out while it is engaged), the price
collar around the current mid (a limit further from the mid than the collar is a fat
finger or a broken market), the largest child order, and the participation cap (own lit
fills plus this child over the trailing window, as a share of the market's volume). A
trade on a dealer's quote prints off-book: it has its own, larger size limit and is
outside the participation cap. A check either passes the child unchanged, shrinks it
(size and participation), or blocks it with a reason; the engine records the verdict in
its decision.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from router.domain import NANOS_PER_SECOND, ChildOrder, DomainError, Nanos, OrdType, Side


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_child_qty: int = 100_000
    max_block_qty: int = 2_000_000  # the largest trade on a dealer's quote (off-book)
    collar_bps: float = 500.0  # a limit may sit at most this far through the mid
    max_participation: float = 0.6  # own lit fills / market volume over the window
    participation_window_s: float = 600.0

    def __post_init__(self) -> None:
        if self.max_child_qty <= 0:
            raise DomainError(f"max_child_qty must be > 0, got {self.max_child_qty}")
        if self.max_block_qty <= 0:
            raise DomainError(f"max_block_qty must be > 0, got {self.max_block_qty}")
        if self.collar_bps <= 0:
            raise DomainError(f"collar_bps must be > 0, got {self.collar_bps:g}")
        if not 0.0 < self.max_participation <= 1.0:
            raise DomainError(
                f"max_participation must be in (0, 1], got {self.max_participation:g}"
            )
        if self.participation_window_s <= 0:
            raise DomainError("participation_window_s must be > 0")


class KillSwitch:
    """One per service: while engaged, no child order leaves and open ones are pulled.

    `source` says who engaged it: "manual" (a person, through the API) or "journal"
    (the desk, when the database stopped taking writes); only the latter may be released
    automatically. `changed_ns` is the service clock at the last change (None: never)."""

    MANUAL = "manual"
    JOURNAL = "journal"

    def __init__(self) -> None:
        self.engaged = False
        self.reason = ""
        self.source = ""
        self.changed_ns: int | None = None

    def engage(self, reason: str, ts_ns: int | None = None, source: str = MANUAL) -> None:
        self.engaged = True
        self.reason = reason
        self.source = source
        self.changed_ns = ts_ns

    def release(self, ts_ns: int | None = None) -> None:
        self.engaged = False
        self.reason = ""
        self.source = ""
        self.changed_ns = ts_ns


@dataclass(frozen=True, slots=True)
class RiskVerdict:
    qty: int  # what may go out (0 = blocked)
    reason: str  # "" when the child passes unchanged


class RiskGate:
    """The checks for one parent order. For participation it keeps its own lit volume
    over the window: aggressive children count in full when they pass (and give back
    what did not fill), passive ones when they fill."""

    def __init__(self, limits: RiskLimits | None = None, kill: KillSwitch | None = None) -> None:
        self.limits = limits or RiskLimits()
        self.kill = kill or KillSwitch()
        self._fills: deque[tuple[Nanos, int]] = deque()
        self._own = 0  # the sum of `_fills`' quantities, kept as they come and go
        self._window_ns = int(self.limits.participation_window_s * NANOS_PER_SECOND)
        self.blocked = 0
        self.shrunk = 0

    def record_lit_fill(self, ts_ns: Nanos, qty: int) -> None:
        """A passive lit fill: own volume on the tape (aggressive ones are reserved)."""
        self._add(ts_ns, qty)

    def release(self, ts_ns: Nanos, qty: int) -> None:
        """An aggressive child ended with `qty` unfilled: give its reservation back."""
        self._add(ts_ns, -qty)

    def own_volume(self, now_ns: Nanos) -> int:
        fills, start = self._fills, now_ns - self._window_ns
        while fills and fills[0][0] < start:
            self._own -= fills.popleft()[1]
        return self._own

    def _add(self, ts_ns: Nanos, qty: int) -> None:
        # a running sum (integers: exact), not a scan of the window at every child
        self._fills.append((ts_ns, qty))
        self._own += qty

    def check(
        self,
        child: ChildOrder,
        mid_ticks: float | None,
        now_ns: Nanos,
        market_volume_in_window: int,
        *,
        aggressive: bool,
        exempt_participation: bool = False,
    ) -> RiskVerdict:
        lim = self.limits
        if self.kill.engaged:
            return self._block(f"kill switch engaged: {self.kill.reason}")
        if child.ord_type is OrdType.LIMIT and mid_ticks is not None:
            assert child.limit_ticks is not None
            through = (child.limit_ticks - mid_ticks) * child.side.sign
            if through > mid_ticks * lim.collar_bps / 1e4:
                side = "above" if child.side is Side.BUY else "below"
                return self._block(
                    f"limit {child.limit_ticks} is more than {lim.collar_bps:g} bps {side} "
                    f"the mid {mid_ticks:g} (price collar)"
                )
        qty, reason = child.qty, ""
        if child.quote_id is not None:
            # a trade on a dealer's quote prints off-book: a block limit, no participation
            if qty > lim.max_block_qty:
                qty, reason = lim.max_block_qty, f"cut to the max block size {lim.max_block_qty}"
            if qty < child.qty:
                self.shrunk += 1
            return RiskVerdict(qty, reason)
        if qty > lim.max_child_qty:
            qty, reason = lim.max_child_qty, f"cut to the max child size {lim.max_child_qty}"
        if aggressive and not exempt_participation:
            # own + this child <= p * (market + this child): the child prints on the tape too
            own = self.own_volume(now_ns)
            p = lim.max_participation
            room = int((p * market_volume_in_window - own) / (1.0 - p)) if p < 1.0 else qty
            if room < qty:
                if room <= 0:
                    return self._block(
                        f"participation {own}/{market_volume_in_window} over the last "
                        f"{lim.participation_window_s:g} s is at the {p:.0%} cap"
                    )
                qty, reason = room, f"cut to {room} by the {p:.0%} participation cap"
        if qty < child.qty:
            self.shrunk += 1
        if aggressive:
            # reserved now, before its fills come back: the next child of the same
            # decision must see it, or each venue's child would get the whole room
            self._add(now_ns, qty)
        return RiskVerdict(qty, reason)

    def _block(self, reason: str) -> RiskVerdict:
        self.blocked += 1
        return RiskVerdict(0, reason)
