"""The reconstruction check: replay a capture with no client orders and test every real
trade against the rebuilt book.

A trade matches when, just before the feed shows its maker's fill (the maker's next
change or delete at or after the trade's time), the trade's price is the best price on
the maker's side and the maker rests there with at least the traded size. At the end,
the rebuilt book is compared order by order with what the capture itself lists as
resting (its synthetic end deletes), where it has such a list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog

from simulators.book import ASK, BID
from simulators.replay import l3
from simulators.replay.events import DELETE, MODIFY, Capture
from simulators.replay.replayer import Replayer

log = structlog.get_logger("blockroute.replay")

#: levels a side in `final_book`
BOOK_LEVELS = 10


def align_trades(capture: Capture) -> tuple[l3.TradeChecks, np.ndarray]:
    """Each trade's check point: the maker's first fill event (change or delete) at or
    after the trade's time, each event used by one trade of that maker, in print order.

    Returns the checks for the kernel (sorted by event) and, per trade in print order,
    its index in the checks (-1: the feed never shows the maker's fill).
    """
    ev, tr = capture.events, capture.trades
    fills = np.flatnonzero((ev.action == MODIFY) | (ev.action == DELETE))
    by_order = fills[np.argsort(ev.order[fills], kind="stable")]
    owners = ev.order[by_order]
    event = np.full(len(tr), -1, dtype=np.int64)
    next_free: dict[int, int] = {}
    for j in range(len(tr)):
        m = int(tr.maker[j])
        lo = int(np.searchsorted(owners, m, side="left"))
        hi = int(np.searchsorted(owners, m, side="right"))
        pos = max(lo, next_free.get(m, lo))
        while pos < hi and ev.ts_ns[by_order[pos]] < tr.ts_ns[j]:
            pos += 1
        if pos < hi:
            event[j] = by_order[pos]
            next_free[m] = pos + 1
    found = np.flatnonzero(event >= 0)
    order = found[np.argsort(event[found], kind="stable")]
    index = np.full(len(tr), -1, dtype=np.int64)
    index[order] = np.arange(order.size)
    n = order.size
    checks = l3.TradeChecks(
        event=event[order],
        maker=tr.maker[order].astype(np.int32),
        maker_side=(1 - tr.aggressor[order]).astype(np.int8),
        price=tr.price[order].astype(np.int64),
        qty=tr.qty[order].astype(np.int64),
        code=np.full(n, l3.CHK_NOT_REACHED, dtype=np.int8),
        best=np.zeros(n, dtype=np.int64),
        ahead=np.full(n, -1, dtype=np.int64),
        maker_qty=np.full(n, -1, dtype=np.int64),
    )
    return checks, index


@dataclass(frozen=True, slots=True)
class Unmatched:
    trade_id: int
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class CheckReport:
    """The check's figures; `to_json` is the `replay check` document (CONTRACT.md)."""

    replay: str
    literal: bool
    events: int
    applied: int
    skipped: dict[str, int]
    handled: dict[str, int]
    crossed_seconds: float
    trades: int
    trades_matched: int
    unmatched: list[Unmatched]
    makers_at_queue_front: int
    final_book: dict[str, list[list[float]]]
    end_state: dict[str, Any] | None
    instrument: dict[str, Any]
    capture: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "replay": self.replay,
            "events": self.events,
            "applied": self.applied,
            "skipped": self.skipped,
            "crossed_seconds": self.crossed_seconds,
            "trades": self.trades,
            "trades_matched": self.trades_matched,
            "unmatched": [
                {"trade_id": str(u.trade_id), "reason": u.reason, "detail": u.detail}
                for u in self.unmatched
            ],
            "final_book": self.final_book,
            # beyond the contract's keys
            "literal": self.literal,
            "handled": self.handled,
            "makers_at_queue_front": self.makers_at_queue_front,
            "end_state": self.end_state,
            "instrument": self.instrument,
            "capture": self.capture,
        }


def check_reconstruction(capture: Capture, *, literal: bool = False) -> CheckReport:
    """Replay `capture` (no client orders) and check its trades against the book."""
    checks, index = align_trades(capture)
    rp = Replayer(capture.events, len(capture.order_ids), literal=literal)
    rp.run(checks=checks)
    rp.finish()
    log_skips(rp, capture)
    unmatched = _unmatched(capture, checks, index)
    reached = checks.code != l3.CHK_NOT_REACHED
    inst = capture.instrument

    def side_levels(side: int) -> list[list[float]]:
        return [[inst.price(p), inst.size(q)] for p, q in rp.levels(side, BOOK_LEVELS)]

    return CheckReport(
        replay=capture.name,
        literal=literal,
        events=len(capture.events),
        applied=rp.applied,
        skipped=rp.skipped(),
        handled=rp.handled(),
        crossed_seconds=rp.crossed_seconds,
        trades=len(capture.trades),
        trades_matched=int(np.count_nonzero(checks.code == l3.CHK_OK)),
        unmatched=unmatched,
        makers_at_queue_front=int(np.count_nonzero(reached & (checks.ahead == 0))),
        final_book={"bids": side_levels(BID), "asks": side_levels(ASK)},
        end_state=None if capture.end_state is None else compare_end_state(rp, capture),
        instrument={
            "symbol": inst.symbol,
            "currency": inst.currency,
            "tick_size": inst.tick_size,
            "lot_size": inst.lot_size,
            "how": inst.how,
            "price_band_ticks": rp.n_ticks,
        },
        capture=dict(capture.notes),
    )


def _unmatched(capture: Capture, checks: l3.TradeChecks, index: np.ndarray) -> list[Unmatched]:
    inst = capture.instrument
    tr = capture.trades
    out = []
    for j in range(len(tr)):
        k = int(index[j])
        code = l3.CHK_NO_MAKER_EVENT if k < 0 else int(checks.code[k])
        if code == l3.CHK_OK:
            continue
        price = inst.price(int(tr.price[j]))
        side = "ask" if tr.aggressor[j] == BID else "bid"
        if code == l3.CHK_PRICE_NOT_BEST:
            detail = f"trade at {price:g}, best {side} {inst.price(int(checks.best[k])):g}"
        elif code == l3.CHK_MAKER_TOO_SMALL:
            detail = (
                f"maker rests {inst.size(int(checks.maker_qty[k])):g}, "
                f"trade {inst.size(int(tr.qty[j])):g}"
            )
        else:
            detail = f"maker order {int(capture.order_ids[tr.maker[j]])}"
        out.append(Unmatched(int(tr.trade_id[j]), l3.CHECK_REASONS[code], detail))
    return out


def compare_end_state(rp: Replayer, capture: Capture) -> dict[str, Any]:
    """The rebuilt book against the capture's own list of resting orders at its end:
    orders in both (and how many differ in size or price), and those only in one, the
    capture's own by what the replay did with them."""
    assert capture.end_state is not None
    theirs = capture.end_state
    ours = rp.resting()
    common, i_ours, i_theirs = np.intersect1d(ours.order, theirs.order, return_indices=True)
    only_theirs = np.setdiff1d(theirs.order, ours.order)
    st = rp.state
    why: dict[str, int] = {}
    for o in only_theirs:
        s = int(st.status[o])
        if s == l3.IGNORED:
            name = l3.SKIP_REASONS[int(st.why[o])]
        else:
            name = {l3.UNSEEN: "never_seen", l3.DELETED: "deleted", l3.FILLED: "filled"}.get(
                s, "other"
            )
        why[name] = why.get(name, 0) + 1
    return {
        "capture_orders": len(theirs.order),
        "replay_orders": len(ours.order),
        "in_both": int(common.size),
        "size_differs": int(np.count_nonzero(ours.qty[i_ours] != theirs.qty[i_theirs])),
        "price_differs": int(np.count_nonzero(ours.price[i_ours] != theirs.price[i_theirs])),
        "only_in_replay": int(len(ours.order) - common.size),
        "only_in_capture": int(only_theirs.size),
        "only_in_capture_why": why,
    }


def log_skips(rp: Replayer, capture: Capture) -> None:
    """One log line per skip reason: the count and the first event skipped for it."""
    outcome = rp.outcome[: rp.position]
    for code in np.unique(outcome):
        if code == l3.APPLIED:
            continue
        first = int(np.flatnonzero(outcome == code)[0])
        log.warning(
            "replay events skipped",
            replay=capture.name,
            reason=l3.SKIP_REASONS[int(code)],
            count=int(np.count_nonzero(outcome == code)),
            first_event=first,
            order_id=int(capture.order_ids[capture.events.order[first]]),
        )
