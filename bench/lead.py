"""What the dealers' blocks' lead is worth (`blockroute bench lead`).

`sor-ml` (and `ml`, which is `sor-ml` until a slicer is served) asks the dealer panel
for blocks while it works the parent, and a block may take the parent up to
`RfqConfig.max_ahead` of it ahead of its TWAP schedule (0.35 by default). Being ahead
is risk transfer: less of the parent is left exposed to the market's move. On a market
that does not know the parent's side that costs nothing on average, and it narrows the
spread of outcomes; on a market that runs one way all day it wins on one side and loses
on the other, by more than the routing saves. The per-side target of issue 23 (on no
scenario and side is `ml` worse than the best baseline by more than 2 standard errors)
reads that second effect, with the best baseline chosen per side after the fact.

This study runs the same episodes, both sides of every seed, with the lead capped at
each of `caps`, beside the baselines, and reports per (scenario, side) and pooled:

- per cap: mean IS and its standard error, the standard deviation of IS across
  episodes (the risk a desk carries), the mean lead over the parent's life (how far
  ahead of the TWAP line its fills ran, share of the parent), the venue mix, and the
  dealers' P&L on the router's trades with them (whether they would keep quoting);
- its paired difference against the best baseline of that side, and against the
  first cap (the shipped setting).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bench.pace import mean_stderr
from router.app import Episode, StrategyRun
from router.domain import Side
from router.execution.config import RfqConfig
from router.parallel import ordered_map
from router.strategies import StrategySpec, strategy_spec
from simulators.scenario import load_scenario

CAPS = (0.35, 0.05)  # the shipped setting first: the others are paired against it
BASELINES = ("twap", "vwap", "pov", "ac", "risk-bid")
ROUTER = "sor-ml"  # `ml` is `sor-ml` while no slicer is served (router.strategies)
SEED0 = 1000  # the held-out evaluation seeds: rows comparable with `backtest`'s

Progress = Callable[[int, int], None]


def capped(cap: float) -> StrategySpec:
    """`ROUTER` with its dealer blocks allowed `cap` of the parent ahead of schedule."""
    if not 0.0 <= cap <= 1.0:
        raise ValueError(f"a lead cap is a share of the parent in [0, 1], got {cap:g}")
    spec = strategy_spec(ROUTER)
    rfq = next(t for t in spec.tactics if isinstance(t, RfqConfig))
    return spec.with_tactic(dataclasses.replace(rfq, max_ahead=cap))


def mean_lead(run: StrategyRun) -> float:
    """The parent's fills ahead of the TWAP line, averaged over its horizon, as a share
    of the parent (> 0: ahead). Exact for the step function the fills make."""
    p = run.parent
    t = [min(max((f.ts_ns - p.start_ns) / p.horizon_ns, 0.0), 1.0) for f in run.fills]
    q = [f.qty / p.qty for f in run.fills]
    # integral of filled(t) over [0, 1]: each fill counts from its time to the end
    filled_area = sum(qi * (1.0 - ti) for qi, ti in zip(q, t, strict=True))
    return filled_area - 0.5  # the TWAP line's area is one half


def _episode(job: tuple[str, int, str, tuple[float, ...]]) -> dict[str, Any]:
    """One episode (scenario, seed, side): every baseline and every cap on it."""
    name, seed, side, caps = job
    episode = Episode(dataclasses.replace(load_scenario(name), side=Side(side)), seed)
    row: dict[str, Any] = {"scenario": name, "seed": seed, "side": side, "is": {}}
    for b in BASELINES:
        row["is"][b] = episode.run(b).tca.is_bps
    row["caps"] = []
    for cap in caps:
        run = episode.run(capped(cap))
        row["caps"].append(
            {
                "is": run.tca.is_bps,
                "lead": mean_lead(run),
                "venue_mix": run.tca.venue_mix,
                "dealer_pnl_bps": run.dealer_pnl_bps,
            }
        )
    return row


def _stat(x: np.ndarray) -> dict[str, float | None]:
    """`mean_stderr` and the standard deviation across episodes (the risk)."""
    return {**mean_stderr(x), "sd_bps": float(x.std(ddof=1)) if len(x) > 1 else None}


def _summary(rows: list[dict[str, Any]], caps: Sequence[float]) -> dict[str, Any]:
    base = {b: np.array([r["is"][b] for r in rows]) for b in BASELINES}
    best = min(BASELINES, key=lambda b: float(base[b].mean()))
    first = np.array([r["caps"][0]["is"] for r in rows])
    out: dict[str, Any] = {
        "episodes": len(rows),
        "baselines": {b: _stat(x) for b, x in base.items()},
        "best_baseline": best,
        "caps": [],
    }
    for k, cap in enumerate(caps):
        x = np.array([r["caps"][k]["is"] for r in rows])
        pnl = [r["caps"][k]["dealer_pnl_bps"] for r in rows]
        mixes = [r["caps"][k]["venue_mix"] for r in rows]
        out["caps"].append(
            {
                "cap": cap,
                "is": _stat(x),
                "vs_best_baseline": _stat(x - base[best]),
                "vs_shipped": _stat(x - first),
                "mean_lead": float(np.mean([r["caps"][k]["lead"] for r in rows])),
                "venue_mix": {v: float(np.mean([m[v] for m in mixes])) for v in mixes[0]},
                # the dealers' P&L on this router's trades with them, bps of their
                # notional, per episode that traded with any: a lower cost that came
                # out of the dealers' pockets would not last in a real market
                "dealer_pnl": _stat(np.array([p for p in pnl if p is not None]))
                if any(p is not None for p in pnl)
                else None,
            }
        )
    return out


def run_lead_study(
    scenarios: Sequence[str],
    seeds: int,
    caps: Sequence[float] = CAPS,
    seed0: int = SEED0,
    workers: int = 1,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The study on `seeds` seeds from `seed0`, both sides of each of `scenarios`."""
    if not caps:
        raise ValueError("give at least one lead cap")
    for cap in caps:
        capped(cap)  # validates before any simulation
    caps = tuple(float(c) for c in caps)
    jobs = [
        (name, seed, side.value, caps)
        for name in scenarios
        for seed in range(seed0, seed0 + seeds)
        for side in (Side.BUY, Side.SELL)
    ]
    rows = ordered_map(_episode, jobs, workers=workers, progress=progress)
    doc: dict[str, Any] = {
        "router": ROUTER,
        "caps": list(caps),
        "baselines": list(BASELINES),
        "seeds": seeds,
        "seed0": seed0,
        "rows": [],
    }
    for name in scenarios:
        mine = [r for r in rows if r["scenario"] == name]
        for side in (Side.BUY.value, Side.SELL.value, "both"):
            sel = [r for r in mine if side == "both" or r["side"] == side]
            doc["rows"].append({"scenario": name, "side": side, **_summary(sel, caps)})
    return doc
