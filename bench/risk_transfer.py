"""What a risk bid costs against working the block: the price of certainty.

For each block size (share of ADV) and seed, on the same market: the desk asks three
dealers (its usual panel choice) for the whole block at arrival and takes the best
quote; separately, TWAP works the same block over the scenario's horizon. Both are in
bps of the arrival mid, positive = cost. Dealers quote at most their own size limit, so
a large block may be only partly covered: `quoted_share` says how much of it the best
quote covers, and `fill_bps` is the cost of filling as much as the three quotes cover,
best first. Each seed runs on both sides of the parent (the mirror), since a dealer
prices buying and selling alike only when flat.

In a calm market a risk bid should cost more than the expected agency cost (the client
pays for certainty and the dealer for its risk); the gap narrows as the size grows,
because TWAP's own risk (the spread of its IS over seeds) grows with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dealers.config import load_panel
from router.app import Episode, EventForwarder, apply_overrides, desk_selector
from router.domain import NANOS_PER_SECOND, QuoteReceived, QuoteRequest, RfqId, Side
from simulators.kernel import rng_for
from simulators.scenario import Scenario, load_scenario
from simulators.world import SimWorld

DEFAULT_SIZES = (0.02, 0.05, 0.10, 0.25)
PANEL_SIZE = 3
SEED0 = 1000  # the held-out evaluation seeds


def _quotes(scenario: Scenario, seed: int) -> tuple[float, list[tuple[float, int]]]:
    """(arrival mid, [(cost bps, quoted qty)] of the dealers' answers, best first)."""
    assert scenario.dealer_panel is not None
    panel = load_panel(scenario.dealer_panel)
    sink = EventForwarder()
    quotes: list[QuoteReceived] = []
    sink.target = lambda e: quotes.append(e) if isinstance(e, QuoteReceived) else None
    world = SimWorld.build(scenario, seed, sink, panel=panel)
    assert world.rfq is not None
    snap = world.market.snapshot(0)
    assert snap.mid is not None
    mid = snap.mid
    side = scenario.side
    chosen, _ = desk_selector(scenario, panel).select(
        side, scenario.qty, PANEL_SIZE, rng_for(seed, "bench/risk-transfer")
    )
    limit_ns = int(panel.time_limit_s * NANOS_PER_SECOND)
    request = QuoteRequest(
        RfqId(f"RT-{seed}"), scenario.instrument.symbol, side, scenario.qty, tuple(chosen), limit_ns
    )
    world.rfq.request(request)
    world.kernel.run_until(limit_ns)
    out = []
    for e in quotes:
        price = e.quote.price_for(side)
        if price is not None and e.ts_ns <= limit_ns:
            out.append((side.sign * (price - mid) / mid * 1e4, e.quote.qty))
    return mid, sorted(out)


def run_risk_transfer(
    scenario_name: str = "calm",
    sizes: Sequence[float] = DEFAULT_SIZES,
    seeds: int = 12,
    seed0: int = SEED0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    base = load_scenario(scenario_name)
    if base.dealer_panel is None:
        raise ValueError(f"scenario {scenario_name!r} has no dealer panel")
    lot = base.instrument.lot_size
    total = len(sizes) * seeds * 2
    done = 0
    rows = []
    for size in sizes:
        qty = max(lot, round(size * base.instrument.adv / lot) * lot)
        best, share, fill, twap, answered = [], [], [], [], 0
        # per seed, the mean of its two sides: they share one market, whose moves cancel
        # in the pair, so the standard errors are over seeds, not over episodes
        best_by_seed, twap_by_seed, premium_by_seed = [], [], []
        for seed in range(seed0, seed0 + seeds):
            seed_best, seed_twap = [], []
            for side in (Side.SELL, Side.BUY):
                sc = apply_overrides(base, qty, side, None)
                _, quotes = _quotes(sc, seed)
                if quotes:
                    answered += 1
                    best.append(quotes[0][0])
                    seed_best.append(quotes[0][0])
                    share.append(min(1.0, quotes[0][1] / qty))
                    left, paid = qty, 0.0
                    for cost, q in quotes:
                        take = min(left, q)
                        paid += cost * take
                        left -= take
                    fill.append(paid / (qty - left))
                twap.append(Episode(sc, seed).run("twap").tca.is_bps)
                seed_twap.append(twap[-1])
                done += 1
                if progress:
                    progress(done, total)
            if seed_best:
                best_by_seed.append(float(np.mean(seed_best)))
            twap_by_seed.append(float(np.mean(seed_twap)))
            if len(seed_best) == len(seed_twap):  # both sides answered: a paired premium
                premium_by_seed.append(best_by_seed[-1] - twap_by_seed[-1])
        tw = np.array(twap)
        rows.append(
            {
                "size_adv": size,
                "qty": qty,
                "episodes": len(twap),
                "answered": answered,
                "best_quote_bps": _mean(best),
                "best_quote_bps_stderr": _stderr(best_by_seed),
                "quoted_share": _mean(share),
                "fill_bps": _mean(fill),
                "twap_is_bps": float(tw.mean()),
                "twap_is_bps_stderr": _stderr(twap_by_seed),
                "twap_is_bps_std": float(tw.std(ddof=1)),
                "premium_bps": _mean(best) - float(tw.mean()),
                "premium_bps_stderr": _stderr(premium_by_seed),
            }
        )
    return {
        "scenario": scenario_name,
        "horizon_s": base.horizon_s,
        "panel_size": PANEL_SIZE,
        "seeds": [seed0, seed0 + seeds - 1],
        "rows": rows,
    }


def _mean(xs: Sequence[float]) -> float:
    return float(np.mean(xs)) if xs else float("nan")


def _stderr(xs: Sequence[float]) -> float:
    return float(np.std(xs, ddof=1) / math.sqrt(len(xs))) if len(xs) > 1 else float("nan")
