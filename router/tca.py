"""Transaction cost analysis on fills and the market path.

Implementation shortfall (IS) is in basis points of the arrival mid, positive = cost,
for buys and sells alike; quantity left unfilled at the horizon is charged at the
horizon's mid (opportunity cost). Fees count as cost (rebates reduce it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from router.domain import ChildOrderFilled, Side, VenueId, VenueKind


@dataclass(frozen=True, slots=True)
class TcaSummary:
    is_bps: float
    filled_qty: int
    avg_price: float
    vwap_slippage_bps: float
    completion: float
    venue_mix: dict[str, float]


def implementation_shortfall_bps(
    side: Side,
    qty: int,
    arrival_mid: float,
    end_mid: float,
    fills: Iterable[ChildOrderFilled],
) -> float:
    filled = 0
    cost = 0.0
    for f in fills:
        filled += f.qty
        cost += f.qty * (f.price - arrival_mid) * side.sign + f.fee
    unfilled = qty - filled
    cost += unfilled * (end_mid - arrival_mid) * side.sign
    return 1e4 * cost / (qty * arrival_mid)


def summarize(
    side: Side,
    qty: int,
    arrival_mid: float,
    end_mid: float,
    market_vwap: float | None,
    fills: list[ChildOrderFilled],
    venue_kinds: Mapping[VenueId, VenueKind],
) -> TcaSummary:
    filled = sum(f.qty for f in fills)
    avg = sum(f.qty * f.price for f in fills) / filled if filled else 0.0
    mix = {k.value: 0.0 for k in VenueKind}
    for f in fills:
        mix[venue_kinds[f.venue].value] += f.qty / filled
    slip = 0.0
    if filled and market_vwap:
        slip = 1e4 * side.sign * (avg - market_vwap) / market_vwap
    return TcaSummary(
        is_bps=implementation_shortfall_bps(side, qty, arrival_mid, end_mid, fills),
        filled_qty=filled,
        avg_price=avg,
        vwap_slippage_bps=slip,
        completion=filled / qty,
        venue_mix=mix,
    )
