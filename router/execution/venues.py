"""What the execution knows about its venues beyond the `Venue` port: the lit venues'
fees, and the dealer side (the RFQ venue and how to price a block's lit alternative)."""

from __future__ import annotations

from dataclasses import dataclass

from router.ports import PanelSelector, RfqChannel


@dataclass(frozen=True, slots=True)
class LitFees:
    taker_fee: float  # per share, negative = rebate
    maker_fee: float


@dataclass(frozen=True, slots=True)
class RfqRouting:
    """The dealer side of the router: the RFQ venue, the panel selector, and what the
    router needs to price the lit alternative of a block (the square-root law)."""

    channel: RfqChannel
    selector: PanelSelector
    impact_bps: float  # Y * daily vol in bps: impact of q is impact_bps * sqrt(q / adv)
    adv: float
    time_limit_s: float | None = None  # the venue's usual time limit, unless configured
