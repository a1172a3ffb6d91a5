"""Does the unimpacted market drift, and does it know the parent's side?

The learned slicer trains on the regime draw of models.training.execenv: each episode a scenario,
randomised, the parent's side and the market's direction drawn 50/50. If the market's
own move over an episode had a mean, or one that depends on the parent's side, a policy
could earn it by pace alone (sell early when prices fall on average), which no real
market pays. This study measures the move of the market that nobody trades in, over the
same draws, split into its parts:

- the exogenous path's scheduled part: the phases' drifts and jumps (news, a trend),
  which the draw mirrors at random, so its mean is 0 by design, though any one draw
  leaves a residue;
- its random part: stochastic-volatility diffusion and random jumps, drawn from the
  market's own generator with symmetric laws: its mean is 0 whatever the side;
- the background flow's reaction (the square-root response to net aggressor volume,
  which an exogenous move brings in through momentum and informed takers): measured
  on the first `flow_regimes` draws by running the flow, which costs a simulation each.

Each part is reported plain and signed by the parent's side (positive: the market moved
against the parent, a cost to a patient one), in bps of the arrival price, with its
standard error. A mean that is several standard errors from 0 is a free lunch to find
before any result is believed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from models.training.execenv import SCENARIOS, draw_regime
from router import app
from router.domain import NANOS_PER_SECOND
from simulators.kernel import rng_for
from simulators.market import SimMarket
from simulators.scenario import Scenario, load_scenario

SEED0 = 7_000_000  # beyond the training episodes' usual range and the held-out seeds

Progress = Callable[[int, int], None]


def _max_qty(sc: Scenario) -> float:
    return float(
        app.MAX_SHARE_OF_HORIZON_VOLUME * app.expected_volume(sc, sc.start_tod_s, sc.horizon_s)
    )


def _one(seed: int, bases: dict[str, Scenario], run_flow: bool) -> dict[str, Any]:
    # the same draw as models.training.execenv's reset for this seed, and the same market seed
    # as the episode's world (simulators.world)
    rng = rng_for(seed, "execenv/regime")
    base = bases[SCENARIOS[int(rng.integers(len(SCENARIOS)))]]
    regime = draw_regime(base, rng, _max_qty)
    sc = regime.scenario
    market = SimMarket(sc, rng_for(seed, "market"))
    i0 = market.step_of(0)
    end_ns = int(sc.horizon_s * NANOS_PER_SECOND)
    i1 = market.step_of(end_ns)
    to_bps = 1e4 / market.price_ticks0
    exo = market.sched[0]
    scheduled = float(market.scheduled_move(i0, i1))
    total = float(exo[i1] - exo[i0])
    row: dict[str, Any] = {
        "seed": seed,
        "scenario": regime.base,
        "side_sign": sc.side.sign,
        "market_sign": regime.market_sign,
        "scheduled_bps": scheduled * to_bps,
        "random_bps": (total - scheduled) * to_bps,
    }
    if run_flow:
        market.advance_to(end_ns)
        ref = market.record.ref_path
        reaction = (ref[i1] - exo[i1]) - (ref[i0] - exo[i0])
        row["flow_bps"] = float(reaction) * to_bps
    return row


def _stat(x: Sequence[float]) -> dict[str, float | None]:
    """Mean, standard error and z of at least two values; z is None where the values
    do not vary (a part that is 0 by construction), so that the document stays JSON."""
    a = np.asarray(x, dtype=np.float64)
    mean, se = float(a.mean()), float(a.std(ddof=1) / math.sqrt(len(a)))
    return {"mean_bps": mean, "stderr_bps": se, "z": mean / se if se > 0 else None}


def run_drift_study(
    regimes: int,
    flow_regimes: int,
    seed0: int = SEED0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The parts of the unimpacted move over `regimes` draws (seeds from `seed0`), the
    flow's reaction over the first `flow_regimes` of them."""
    bases = {name: load_scenario(name) for name in SCENARIOS}
    rows = []
    for k in range(regimes):
        rows.append(_one(seed0 + k, bases, run_flow=k < flow_regimes))
        if progress is not None:
            progress(k + 1, regimes)

    def parts(sel: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"regimes": len(sel)}
        for part in ("scheduled", "random", "flow"):
            vals = [r[f"{part}_bps"] for r in sel if f"{part}_bps" in r]
            if len(vals) < 2:
                continue
            out[part] = _stat(vals)
            out[f"{part}_against_parent"] = _stat(
                [r[f"{part}_bps"] * r["side_sign"] for r in sel if f"{part}_bps" in r]
            )
        if len(sel) < 2:
            return out
        total = [r["scheduled_bps"] + r["random_bps"] for r in sel]
        out["exogenous"] = _stat(total)
        out["exogenous_against_parent"] = _stat(
            [t * r["side_sign"] for t, r in zip(total, sel, strict=True)]
        )
        return out

    return {
        "regimes": regimes,
        "flow_regimes": min(flow_regimes, regimes),
        "seed0": seed0,
        "buy_share": sum(r["side_sign"] > 0 for r in rows) / max(1, len(rows)),
        "mirrored_share": sum(r["market_sign"] < 0 for r in rows) / max(1, len(rows)),
        "pooled": parts(rows),
        "by_scenario": {
            name: parts([r for r in rows if r["scenario"] == name])
            for name in SCENARIOS
            if sum(r["scenario"] == name for r in rows) > 1
        },
    }
