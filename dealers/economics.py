"""`blockroute dealers pnl`: do the simulated dealers stay in business?

Days of RFQ flow (dealers/stream.py) with block sizes spread log-uniformly from 0.5% to
25% of ADV, either side, against the scenario's panel; each dealer's client trades are
valued at the end of their day (dealers/pnl.py). Reported per dealer and size bucket in
bps of notional, with 95% intervals from a bootstrap over whole days: the trades of one
day share its market moves, so resampling trades would make the intervals too narrow.
Days run on worker processes with the same rows on any number of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dealers.config import load_panel
from dealers.panel import HeuristicPanel
from dealers.pnl import SIZE_BUCKETS, size_bucket
from dealers.stream import run_rfq_day
from router.config import DEFAULT_CONFIG_DIR
from simulators.scenario import load_scenario

RFQS_PER_DAY = 80
SIZE_ADV = (0.005, 0.25)  # log-uniform request sizes, share of ADV
PANEL_SIZES = (3, 4, 5)
EXPLORE = 0.3  # the desk asks every dealer now and then, so each has trades to judge
BOOTSTRAP = 2000
SEED0 = 8_000_000  # far from the desk's history and the models' training days


@dataclass(frozen=True, slots=True)
class PnlRow:
    """One client trade, as the report needs it."""

    scenario: str
    day: int
    dealer: str
    size_adv: float
    pnl_bps: float
    edge_bps: float
    market_bps: float
    unwind_bps: float


def _day(scenario_name: str, seed: int, day: int, config_dir: Path) -> list[PnlRow]:
    sc = load_scenario(scenario_name, config_dir)
    if sc.dealer_panel is None:
        raise ValueError(f"scenario {scenario_name!r} has no dealer panel")
    panel = load_panel(sc.dealer_panel, config_dir)
    # a fresh selector per day: a day's rows must not depend on the days before it, so
    # that any split of the days between workers gives the same rows
    selector = HeuristicPanel(panel.ids, explore=EXPLORE)
    out = run_rfq_day(
        sc, panel, seed, RFQS_PER_DAY, selector, panel_size=PANEL_SIZES, size_adv=SIZE_ADV
    )
    name = panel.name
    return [
        PnlRow(
            scenario_name,
            day,
            f"{name}:{p.dealer}",
            p.size_adv,
            p.pnl_bps,
            p.edge / p.notional * 1e4,
            p.market / p.notional * 1e4,
            p.unwind / p.notional * 1e4,
        )
        for p in out.pnl
    ]


def _day_job(job: tuple[str, int, int, Path]) -> list[PnlRow]:
    return _day(*job)


def collect(
    scenarios: Sequence[str],
    rfqs: int,
    seed: int = SEED0,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    config_dir: Path = DEFAULT_CONFIG_DIR,
) -> list[PnlRow]:
    """Every dealer trade of ceil(rfqs / RFQS_PER_DAY) days per scenario, days seeded
    `seed`, `seed + 1`, ... (the same seeds in every scenario: paired markets)."""
    days = max(1, math.ceil(rfqs / RFQS_PER_DAY))
    jobs = [(s, seed + k, k, config_dir) for s in scenarios for k in range(days)]
    rows: list[PnlRow] = []
    if progress:
        progress(0, len(jobs))
    if workers <= 1:
        for i, job in enumerate(jobs):
            rows.extend(_day_job(job))
            if progress:
                progress(i + 1, len(jobs))
        return rows
    with ProcessPoolExecutor(workers) as pool:
        for i, part in enumerate(pool.map(_day_job, jobs)):  # in order: the same rows
            rows.extend(part)
            if progress:
                progress(i + 1, len(jobs))
    return rows


def mean_ci(rows: Sequence[PnlRow], seed: int = 0) -> tuple[float, list[float]]:
    """Mean P&L (bps) of `rows` and its 95% interval by a bootstrap over whole days."""
    if not rows:
        return float("nan"), [float("nan"), float("nan")]
    keys = sorted({(r.scenario, r.day) for r in rows})
    index = {k: i for i, k in enumerate(keys)}
    sums = np.zeros(len(keys))
    counts = np.zeros(len(keys))
    for r in rows:
        i = index[(r.scenario, r.day)]
        sums[i] += r.pnl_bps
        counts[i] += 1
    mean = float(sums.sum() / counts.sum())
    if len(keys) < 2:
        return mean, [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(keys), size=(BOOTSTRAP, len(keys)))
    n = counts[pick].sum(axis=1)
    boot = sums[pick].sum(axis=1) / np.where(n > 0, n, np.nan)
    lo, hi = np.nanpercentile(boot, [2.5, 97.5])
    return mean, [float(lo), float(hi)]


def report(rows: Sequence[PnlRow], scenarios: Sequence[str], rfqs: int, seed: int) -> dict:
    """The JSON document of `blockroute dealers pnl` (CONTRACT.md), with the mean parts
    of each dealer's P&L and the panel's per scenario as additions."""
    by_dealer: dict[str, list[PnlRow]] = {}
    for r in rows:
        by_dealer.setdefault(r.dealer, []).append(r)
    panels = {d.split(":", 1)[0] for d in by_dealer}
    dealers = []
    for name, rs in by_dealer.items():
        mean, ci = mean_ci(rs)
        by_size: dict[str, float | None] = {}
        counts: dict[str, int] = {}
        for label, _ in SIZE_BUCKETS:
            inside = [r.pnl_bps for r in rs if size_bucket(r.size_adv) == label]
            by_size[label] = float(np.mean(inside)) if inside else None
            counts[label] = len(inside)
        dealers.append(
            {
                # one panel: the dealer's own name; several: prefixed with its panel's
                "dealer": name.split(":", 1)[1] if len(panels) == 1 else name,
                "trades": len(rs),
                "pnl_bps_mean": mean,
                "pnl_bps_ci95": ci,
                "by_size": by_size,
                "by_size_trades": counts,
                "parts_bps": {
                    "edge": float(np.mean([r.edge_bps for r in rs])),
                    "market": float(np.mean([r.market_bps for r in rs])),
                    "unwind": float(np.mean([r.unwind_bps for r in rs])),
                },
            }
        )
    mean, ci = mean_ci(rows)
    per_scenario = {}
    for s in scenarios:
        rs = [r for r in rows if r.scenario == s]
        m, c = mean_ci(rs)
        per_scenario[s] = {"trades": len(rs), "pnl_bps_mean": m, "pnl_bps_ci95": c}
    return {
        "scenarios": list(scenarios),
        "rfqs_per_scenario": max(1, math.ceil(rfqs / RFQS_PER_DAY)) * RFQS_PER_DAY,
        "seed": seed,
        "size_adv": list(SIZE_ADV),
        "dealers": dealers,
        "panel": {"trades": len(rows), "pnl_bps_mean": mean, "pnl_bps_ci95": ci},
        "by_scenario": per_scenario,
    }
