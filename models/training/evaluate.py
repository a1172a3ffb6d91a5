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

Each ratio of AUCs comes with a bootstrap spread over whole episodes and days, resampled
within their scenario: the rows of one episode share its market, so a bootstrap over rows
would understate how much the ratio moves from one set of episodes to the next.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from models.serving.artifacts import MODELS_DIR, load_family
from models.training.boosting import SCENARIOS
from models.training.dealer_data import DaySpec, DealerRows, merge_days, run_days, scenario_days
from models.training.fill_data import HORIZON_S, FillRows, rows_from_events
from models.training.metrics import auc, cluster_bootstrap, scores, stratified_auc
from router.app import Episode
from router.domain import ChildOrder
from router.parallel import ordered_map
from simulators.market import SimMarket
from simulators.oracle import lit_fill_probability
from simulators.scenario import load_scenario
from simulators.world import SimWorld

EVAL_SEED = 900_000
DEALER_WARMUP_DAYS = 3  # per scenario: history only, not scored
DEALER_DAYS = 4  # per scenario, scored (AUC to about +-0.005)
FILL_EPISODES = 4  # per scenario
ORACLE_EVERY = 2  # about 6,500 orders with an oracle: the AUC ratio to about +-0.01
ORACLE_PATHS = 32
FAIR_STRATA = 5
FILL_EPISODE_WORK = 25  # a fill episode's time in dealer days, for the progress bar
BOOTSTRAP_REPLICATES = 500


def evaluate(
    seed: int = EVAL_SEED,
    directory: Path = MODELS_DIR,
    progress: Callable[[int, int], None] | None = None,
    dealer_days: int = DEALER_DAYS,
    fill_episodes: int = FILL_EPISODES,
    workers: int = 1,
    replicates: int = BOOTSTRAP_REPLICATES,
    executor: str = "local",
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Simulate the held-out days and episodes (on `workers` processes, or Ray with
    `executor` "ray": every day and episode has its own seed, so the rows do not depend
    on the number of workers or where they ran) and score the models on them."""
    dealer = load_family("dealer", directory)
    fill = load_family("fill", directory)["passive"]
    scenarios = tuple(SCENARIOS)
    all_days = DEALER_WARMUP_DAYS + dealer_days
    days = [
        DaySpec(sc, seed + k * len(scenarios) + i)
        for k in range(all_days)
        for i, sc in enumerate(scenarios)
    ]
    episodes = [
        partial(
            _fill_episode,
            scenario=name,
            seed=seed + 50_000 + e * len(scenarios) + i,
            index=e * len(scenarios) + i,
            oracle_every=ORACLE_EVERY,
            oracle_paths=ORACLE_PATHS,
        )
        for e in range(fill_episodes)
        for i, name in enumerate(scenarios)
    ]
    rows, fill_rows = _simulate(days, episodes, workers, progress, executor, ray_address)

    scored = DEALER_WARMUP_DAYS * len(scenarios)
    keep = rows.day >= scored
    known = keep & ~np.isnan(rows.best)
    spread = partial(_spread, n_scenarios=len(scenarios), replicates=replicates, seed=seed)
    boot = partial(_with_ratio, spread=spread)
    doc: dict[str, Any] = {
        "dealer": boot(
            rows.best[known],
            dealer["best"].predict(rows.x[known]),
            rows.oracle_best[known],
            rows.day[known],
        ),
        "dealer_respond": boot(
            rows.respond[keep],
            dealer["respond"].predict(rows.x[keep]),
            rows.oracle_respond[keep],
            rows.day[keep],
        ),
    }
    hit_keep = rows.day_hit >= scored
    doc["dealer_hit"] = scores(rows.hit[hit_keep], dealer["hit"].predict(rows.x_hit[hit_keep]))
    lit = ~fill_rows.dark & ~np.isnan(fill_rows.oracle)
    p = fill.predict(fill_rows.x)
    doc["fill"] = boot(fill_rows.y[lit], p[lit], fill_rows.oracle[lit], fill_rows.day[lit])
    doc["fill_all"] = scores(fill_rows.y, p)
    known = lit & ~np.isnan(fill_rows.fair_gap)
    doc["fill_given_fair"] = _given_fair(
        fill_rows.y[known],
        p[known],
        fill_rows.oracle[known],
        fill_rows.fair_gap[known],
        fill_rows.day[known],
        spread,
    )
    doc["meta"] = {
        "seed": seed,
        "dealer_days": {
            "warm_up": DEALER_WARMUP_DAYS * len(scenarios),
            "scored": dealer_days * len(scenarios),
        },
        "fill_episodes": fill_episodes * len(scenarios),
        "fill_horizon_s": HORIZON_S,
        "oracle_paths": ORACLE_PATHS,
        "oracle_every": ORACLE_EVERY,
        "bootstrap": {
            "replicates": replicates,
            "resamples": "whole days (dealer) and episodes (fill), within their scenario",
        },
        "clipped": {
            "dealer": dealer["best"].clipper.clipped,
            "fill": fill.clipper.clipped,
        },
    }
    return doc


#: the (model, oracle) AUCs of some rows (indices)
PairedAucs = Callable[[np.ndarray], tuple[float, float]]
#: `_spread` with the design's constants bound: the ratio's spread from PairedAucs
Spread = Callable[[PairedAucs, np.ndarray], dict[str, Any]]


def _with_ratio(
    y: np.ndarray, p: np.ndarray, oracle: np.ndarray, clusters: np.ndarray, spread: Spread
) -> dict[str, Any]:
    """`scores` plus the AUC ratio to the oracle, its bootstrap standard deviation and
    95% percentile interval."""
    out: dict[str, Any] = scores(y, p, oracle)
    out["ratio"] = _ratio(out["auc"], out["oracle_auc"])
    out.update(spread(lambda rows: (auc(y[rows], p[rows]), auc(y[rows], oracle[rows])), clusters))
    return out


def _given_fair(
    y: np.ndarray,
    p: np.ndarray,
    oracle: np.ndarray,
    gap: np.ndarray,
    clusters: np.ndarray,
    spread: Spread,
) -> dict[str, Any]:
    def both(rows: np.ndarray) -> tuple[float, float, int]:
        model_auc, n = stratified_auc(y[rows], p[rows], gap[rows], FAIR_STRATA)
        oracle_auc, _ = stratified_auc(y[rows], oracle[rows], gap[rows], FAIR_STRATA)
        return model_auc, oracle_auc, n

    model_auc, oracle_auc, n = both(np.arange(y.size))
    out: dict[str, Any] = {
        "auc": model_auc,
        "oracle_auc": oracle_auc,
        "ratio": _ratio(model_auc, oracle_auc),
        "strata": FAIR_STRATA,
        "n": n,
        "fair_gap_sd_ticks": float(np.std(gap)) if gap.size else float("nan"),
    }
    if n:
        out.update(spread(lambda rows: both(rows)[:2], clusters))
    return out


def _ratio(model_auc: float, oracle_auc: float) -> float:
    # NaN, not inf, where a tiny resample leaves the oracle no ordered pair
    return model_auc / oracle_auc if oracle_auc > 0 else float("nan")


def _spread(
    aucs: PairedAucs,
    clusters: np.ndarray,
    n_scenarios: int,
    replicates: int,
    seed: int,
) -> dict[str, Any]:
    # days and episodes are numbered scenario by scenario in turn (see `evaluate`)
    reps = cluster_bootstrap(
        lambda rows: _ratio(*aucs(rows)), clusters, clusters % n_scenarios, replicates, seed
    )
    if reps.size < 2:
        return {"ratio_sd": float("nan"), "ratio_ci95": [float("nan")] * 2, "clusters": 0}
    lo, hi = np.percentile(reps, [2.5, 97.5])
    return {
        "ratio_sd": float(np.std(reps, ddof=1)),
        "ratio_ci95": [float(lo), float(hi)],
        "clusters": int(np.unique(clusters).size),
    }


def _simulate(
    days: Sequence[DaySpec],
    episodes: Sequence[Callable[[], FillRows]],
    workers: int,
    progress: Callable[[int, int], None] | None,
    executor: str = "local",
    ray_address: str | None = None,
) -> tuple[DealerRows, FillRows]:
    """The dealer days (one job per scenario: a desk's history runs through its
    scenario's days) and the fill episodes (one job each), on `workers` processes or Ray
    (router.parallel.ordered_map). Progress counts in dealer days."""
    chains = scenario_days(days)
    # each job with its work in dealer days, for the progress bar
    jobs: list[tuple[Callable[[], Any], int]] = [
        (partial(run_days, chain), len(chain)) for chain in chains
    ]
    jobs += [(episode, FILL_EPISODE_WORK) for episode in episodes]
    results = ordered_map(
        _run_job,
        jobs,
        workers,
        executor,
        ray_address,
        progress,
        weight=lambda job: job[1],
        max_batch=1,  # a scenario's days, an episode with its oracle: long enough alone
    )
    return merge_days(results[: len(chains)]), FillRows.concat(results[len(chains) :])


def _run_job(job: tuple[Callable[[], Any], int]) -> Any:
    return job[0]()


def _fill_episode(
    scenario: str, seed: int, index: int, oracle_every: int, oracle_paths: int
) -> FillRows:
    """One `sor-lit` episode's passive orders, with the simulator's Monte Carlo fill
    probability for every `oracle_every`-th post-only lit order and its hidden fair
    price's gap from the mid there."""
    oracle: dict[str, float] = {}
    fair_gap: dict[str, float] = {}

    def instrument(world: SimWorld) -> None:
        # the oracle redraws the simulated flow's future: a simulated market only
        assert isinstance(world.market, SimMarket)
        market = world.market
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
                    if count[0] % oracle_every == 0:
                        now = world.clock.now_ns()
                        oracle[child.child_id] = lit_fill_probability(
                            market,
                            now,
                            index,
                            child.side,
                            child.limit_ticks,
                            child.qty,
                            HORIZON_S,
                            n_paths=oracle_paths,
                            seed=count[0],
                        )
                        mid = world.market.mid_ticks()
                        if mid is not None:
                            fair = world.market.fair_ticks(now)
                            # > 0: fair lies beyond the mid on the takers' side
                            fair_gap[child.child_id] = -child.side.sign * (fair - mid)
                submit(child)

            venue.submit = wrapped  # type: ignore[method-assign]

    run = Episode(load_scenario(scenario), seed).run("sor-lit", on_world=instrument)
    return rows_from_events(run.events, index, oracle, fair_gap)
