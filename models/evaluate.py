"""`blockroute evaluate models`: the shipped models scored on freshly simulated days and
episodes they never saw, next to the simulator's own true probabilities on the same rows
(the best any model could do).

- dealer: P(best quote) on held-out RFQ days; the first `DEALER_WARMUP_DAYS` of each
  scenario only build the desk's history up, as a desk has one. Extras: P(quote in
  time) and P(hit).
- fill: P(any fill within 30 s) of the post-only lit orders of `sor-lit` on held-out
  episodes; the oracle is the simulator's Monte Carlo fill probability
  (simulators/oracle.py) for every `oracle_every`-th such order. Extra: all passive
  orders, dark ones included (no oracle for the dark pools).
- fill_given_fair: both AUCs again, within `FAIR_STRATA` equal-count strata of the
  simulator's hidden fair price relative to the mid (averaged by rows). The oracle knows
  that price, no screen shows it: where the model matches the oracle within the strata,
  the gap above is that knowledge, not a weakness of the model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from models.artifacts import MODELS_DIR, load_family
from models.dealer_data import DaySpec
from models.dealer_data import generate as dealer_rows
from models.fill_data import HORIZON_S, FillRows, rows_from_events
from models.metrics import scores, stratified_auc
from models.train import SCENARIOS
from router.domain import ChildOrder

EVAL_SEED = 900_000
DEALER_WARMUP_DAYS = 3  # per scenario: history only, not scored
DEALER_DAYS = 4  # per scenario, scored (AUC to about +-0.005)
FILL_EPISODES = 4  # per scenario
ORACLE_EVERY = 2  # about 6,500 orders with an oracle: the AUC ratio to about +-0.01
ORACLE_PATHS = 32
FAIR_STRATA = 5
FILL_EPISODE_WORK = 25  # a fill episode's time in dealer days, for the progress bar


def evaluate(
    seed: int = EVAL_SEED,
    directory: Path = MODELS_DIR,
    progress: Callable[[int, int], None] | None = None,
    dealer_days: int = DEALER_DAYS,
    fill_episodes: int = FILL_EPISODES,
) -> dict[str, Any]:
    dealer = load_family("dealer", directory)
    fill = load_family("fill", directory)["passive"]
    all_days = DEALER_WARMUP_DAYS + dealer_days
    n_days = all_days * len(SCENARIOS)
    # the progress bar counts in dealer days (FILL_EPISODE_WORK)
    total = n_days + FILL_EPISODE_WORK * fill_episodes * len(SCENARIOS)

    def step(done: int, _n: int) -> None:
        if progress is not None:
            progress(done, total)

    days = [
        DaySpec(sc, seed + k * len(SCENARIOS) + i)
        for k in range(all_days)
        for i, sc in enumerate(SCENARIOS)
    ]
    rows = dealer_rows(days, step)
    scored = DEALER_WARMUP_DAYS * len(SCENARIOS)
    keep = rows.day >= scored
    known = keep & ~np.isnan(rows.best)
    doc: dict[str, Any] = {
        "dealer": scores(
            rows.best[known], dealer["best"].predict(rows.x[known]), rows.oracle_best[known]
        ),
        "dealer_respond": scores(
            rows.respond[keep], dealer["respond"].predict(rows.x[keep]), rows.oracle_respond[keep]
        ),
    }
    hit_keep = rows.day_hit >= scored
    doc["dealer_hit"] = scores(rows.hit[hit_keep], dealer["hit"].predict(rows.x_hit[hit_keep]))
    fill_rows = _fill_rows(
        seed, fill_episodes, lambda i: step(n_days + FILL_EPISODE_WORK * i, total)
    )
    lit = ~fill_rows.dark & ~np.isnan(fill_rows.oracle)
    p = fill.predict(fill_rows.x)
    doc["fill"] = scores(fill_rows.y[lit], p[lit], fill_rows.oracle[lit])
    doc["fill_all"] = scores(fill_rows.y, p)
    known = lit & ~np.isnan(fill_rows.fair_gap)
    gap, y = fill_rows.fair_gap[known], fill_rows.y[known]
    model_auc, n = stratified_auc(y, p[known], gap, FAIR_STRATA)
    oracle_auc, _ = stratified_auc(y, fill_rows.oracle[known], gap, FAIR_STRATA)
    doc["fill_given_fair"] = {
        "auc": model_auc,
        "oracle_auc": oracle_auc,
        "strata": FAIR_STRATA,
        "n": n,
        "fair_gap_sd_ticks": float(np.std(gap)) if gap.size else float("nan"),
    }
    doc["meta"] = {
        "seed": seed,
        "dealer_days": {
            "warm_up": DEALER_WARMUP_DAYS * len(SCENARIOS),
            "scored": dealer_days * len(SCENARIOS),
        },
        "fill_episodes": fill_episodes * len(SCENARIOS),
        "fill_horizon_s": HORIZON_S,
        "oracle_paths": ORACLE_PATHS,
        "oracle_every": ORACLE_EVERY,
        "clipped": {
            "dealer": dealer["best"].clipper.clipped,
            "fill": fill.clipper.clipped,
        },
    }
    return doc


def _fill_rows(seed: int, episodes: int, step: Callable[[int], None]) -> FillRows:
    from router.app import Episode  # the composition root runs the episodes
    from simulators.oracle import lit_fill_probability
    from simulators.scenario import load_scenario
    from simulators.world import SimWorld

    parts = []
    k = 0
    for e in range(episodes):
        for i, name in enumerate(SCENARIOS):
            oracle: dict[str, float] = {}
            fair_gap: dict[str, float] = {}
            ep_seed = seed + 50_000 + e * len(SCENARIOS) + i

            def instrument(
                world: SimWorld,
                oracle: dict[str, float] = oracle,
                fair_gap: dict[str, float] = fair_gap,
            ) -> None:
                lit_ids = list(world.lit)
                count = [0]
                for venue_id, venue in world.lit.items():
                    submit = venue.submit

                    def wrapped(
                        child: ChildOrder,
                        submit: Callable[[ChildOrder], None] = submit,
                        index: int = lit_ids.index(venue_id),
                    ) -> None:
                        if child.post_only and child.limit_ticks is not None:
                            count[0] += 1
                            if count[0] % ORACLE_EVERY == 0:
                                now = world.clock.now_ns()
                                oracle[child.child_id] = lit_fill_probability(
                                    world.market,
                                    now,
                                    index,
                                    child.side,
                                    child.limit_ticks,
                                    child.qty,
                                    HORIZON_S,
                                    n_paths=ORACLE_PATHS,
                                    seed=count[0],
                                )
                                mid = world.market.mid_ticks()
                                if mid is not None:
                                    fair = world.market.fair_ticks(now)
                                    # > 0: fair lies beyond the mid on the takers' side
                                    gap = -child.side.sign * (fair - mid)
                                    fair_gap[child.child_id] = gap
                        submit(child)

                    venue.submit = wrapped  # type: ignore[method-assign]

            run = Episode(load_scenario(name), ep_seed).run("sor-lit", on_world=instrument)
            parts.append(rows_from_events(run.events, k, oracle, fair_gap))
            k += 1
            step(k)
    return FillRows.concat(parts)
