"""Backtests: many episodes per scenario, every strategy paired on the same paths.

An episode (one scenario, one seed) runs every strategy and the hindsight oracle on the
same market; episodes are independent, so they spread over worker processes. Results
are aggregated per scenario and strategy (mean, standard deviation, standard error), and
each strategy is compared with a baseline by paired differences per seed, whose
standard error is much smaller than the unpaired one because the market's own moves
cancel out.

Every configured scenario drifts against its parent (news-shock sells into bad news), so
a strategy that merely hurries looks good on it. With `both_sides` each seed also runs
on the scenario's mirror, the same market with the parent's side flipped, and results
come per side ("buy", "sell") and pooled ("both"), where hurrying gains on one side
what it loses on the other.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from router.app import (
    HINDSIGHT,
    MODELS,
    DeskHistory,
    Episode,
    adopt_desk_history,
    check_strategies,
    desk_history,
)
from router.config import DEFAULT_CONFIG_DIR
from router.domain import DomainError, Side
from router.registry import ModelRegistry
from router.strategies import strategy_spec
from router.tca import gap_captured
from simulators.scenario import Scenario, load_scenario

if TYPE_CHECKING:
    from router.store import Store

Progress = Callable[[int, int], None]
BOTH = "both"  # the side of the rows that pool the two sides


@dataclass(frozen=True, slots=True)
class EpisodeOutcome:
    scenario: str
    seed: int
    is_bps: dict[str, float]
    completion: dict[str, float]
    run_ids: dict[str, int] = field(default_factory=dict)
    side: str | None = None  # the parent's, "buy" or "sell"
    # per strategy: its share of fills by venue kind, and the dealers' P&L on their
    # trades with it with those trades' notional (currency), marked at the horizon
    venue_mix: dict[str, dict[str, float]] = field(default_factory=dict)
    dealer_pnl: dict[str, tuple[float, float]] = field(default_factory=dict)
    # on a replayed market only, per strategy: what its run changed of the replay
    # (StrategyRun.replay) and its resting lit children (StrategyRun.passive_lit)
    replay: dict[str, dict[str, int]] = field(default_factory=dict)
    passive_lit: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Job:
    scenario: str
    seed: int
    strategies: tuple[str, ...]
    config_dir: str
    db_url: str | None
    batch: str | None
    created_at: datetime
    hindsight: bool = True
    store_orders: bool = False
    side: Side | None = None  # the parent's side; None: the scenario's
    # the folder of the model artifacts the strategies run on; None: the process's
    # (router.app.MODELS, the shipped ones)
    models_dir: str | None = None


def run_episode(job: _Job, scenarios: Mapping[str, Scenario] | None = None) -> EpisodeOutcome:
    """One episode in a worker: every strategy, then the oracle; stored if asked. The
    scenario is `scenarios`' (loaded by the driver) or else read from the job's folder;
    the models are those of the job's folder, if it names one."""
    if scenarios is not None and job.scenario in scenarios:
        scenario = scenarios[job.scenario]
    else:
        scenario = load_scenario(job.scenario, Path(job.config_dir))
    if job.side is not None:
        # the market never reads the parent's side: the same seed, the same market
        scenario = dataclasses.replace(scenario, side=job.side)
    episode = Episode(
        scenario, job.seed, models=models_of(job.models_dir), config_dir=Path(job.config_dir)
    )
    names = (*job.strategies, HINDSIGHT) if job.hindsight else job.strategies
    runs = [episode.run(s) for s in names]
    run_ids: dict[str, int] = {}
    if job.db_url is not None:
        from router.store import RunMeta  # the database's code: only for a run that stores

        store = _worker_store(job.db_url)
        for r in runs:
            meta = RunMeta(
                "backtest", job.scenario, job.seed, r.strategy, job.created_at, job.batch
            )
            run_ids[r.strategy] = r.record(store, meta, detail=job.store_orders)
    return EpisodeOutcome(
        job.scenario,
        job.seed,
        {r.strategy: r.tca.is_bps for r in runs},
        {r.strategy: r.tca.completion for r in runs},
        run_ids,
        scenario.side.value,
        {r.strategy: dict(r.tca.venue_mix) for r in runs},
        {
            r.strategy: (sum(p.pnl for p in r.dealer_pnl), sum(p.notional for p in r.dealer_pnl))
            for r in runs
        },
        {r.strategy: dict(r.replay) for r in runs if r.replay is not None},
        {r.strategy: r.passive_lit(episode.venue_kinds) for r in runs if r.replay is not None},
    )


_STORES: dict[str, Store] = {}
_REGISTRIES: dict[str, ModelRegistry] = {}


def models_of(directory: str | Path | None) -> ModelRegistry:
    """The model registry of a folder of artifacts, one per folder and process (each
    loads its artifacts on first use and keeps them, as the process's own does); None:
    the process's own (router.app.MODELS)."""
    if directory is None:
        return MODELS
    key = str(directory)
    if key not in _REGISTRIES:
        _REGISTRIES[key] = ModelRegistry(Path(key))
    return _REGISTRIES[key]


def _worker_store(url: str) -> Store:
    # one connection pool per worker process, opened on its first episode
    if url not in _STORES:
        from router.store import Store

        _STORES[url] = Store.open(url)
    return _STORES[url]


def desk_histories_needed(
    scenarios: Mapping[str, Scenario], strategies: Sequence[str]
) -> list[tuple[str, str]]:
    """The (scenario, dealer panel) pairs whose desk history (router.app.desk_history)
    the episodes read: those of the scenarios with a panel, if a strategy asks dealers
    for quotes."""
    if not any(strategy_spec(s).rfq for s in strategies):
        return []
    return [(name, sc.dealer_panel) for name, sc in scenarios.items() if sc.dealer_panel]


def _run_local(
    jobs: Sequence[_Job],
    workers: int,
    progress: Progress | None,
    histories: Sequence[tuple[str, str]] = (),
) -> list[EpisodeOutcome]:
    """The episodes in this process (one worker) or a pool of `workers` processes, in
    their finishing order. A pool first simulates each desk history the episodes read
    (`histories`: (scenario, panel) pairs) once, one per worker at a time, and hands it
    to the episodes of its scenario, rather than each worker simulating every one."""
    outcomes: list[EpisodeOutcome] = []
    if workers == 1:
        for i, job in enumerate(jobs):
            outcomes.append(run_episode(job))
            if progress:
                progress(i + 1, len(jobs))
        return outcomes
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        # the histories of the jobs' configuration folder (one for all of a backtest)
        config_dir = Path(jobs[0].config_dir) if jobs else DEFAULT_CONFIG_DIR
        made = {key: pool.submit(desk_history, *key, config_dir) for key in histories}
        by_scenario: dict[str, list[tuple[tuple[str, str], DeskHistory]]] = {}
        for key, future in made.items():
            by_scenario.setdefault(key[0], []).append((key, future.result()))
        pending: set[Future[EpisodeOutcome]] = {
            pool.submit(_run_with_histories, j, by_scenario.get(j.scenario, [])) for j in jobs
        }
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                outcomes.append(f.result())
            if progress:
                progress(len(outcomes), len(jobs))
    return outcomes


def _run_with_histories(
    job: _Job, histories: Sequence[tuple[tuple[str, str], DeskHistory]]
) -> EpisodeOutcome:
    """One episode in a pool's worker, on desk histories simulated by another."""
    for (scenario, panel), history in histories:
        adopt_desk_history(scenario, panel, history, Path(job.config_dir))
    return run_episode(job)


def _stats(values: Sequence[float], seeds: Sequence[int]) -> tuple[float, float, float]:
    """Mean and standard deviation over the episodes; the standard error over the seeds'
    means, since the two sides of a seed share one market and are not independent
    draws (with one episode a seed, the usual std / sqrt(n))."""
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    std = math.sqrt(var)
    by_seed: dict[int, list[float]] = {}
    for s, v in zip(seeds, values, strict=True):
        by_seed.setdefault(s, []).append(v)
    if all(len(vs) == 1 for vs in by_seed.values()):
        return mean, std, std / math.sqrt(n) if n else 0.0
    means = [sum(vs) / len(vs) for vs in by_seed.values()]
    k = len(means)
    m = sum(means) / k
    se = math.sqrt(sum((x - m) ** 2 for x in means) / (k - 1) / k) if k > 1 else 0.0
    return mean, std, se


def aggregate(
    outcomes: Sequence[EpisodeOutcome],
    scenarios: Sequence[str],
    strategies: Sequence[str],
    baseline: str = "twap",
    both_sides: bool = False,
) -> dict[str, Any]:
    """CONTRACT.md's rows, plus paired differences, the hindsight schedule and the share of
    the baseline-to-oracle gap each strategy captured. With `both_sides` each of them
    comes per side ("side": "buy", "sell") and for the two sides pooled ("both")."""
    out: dict[str, list[dict[str, Any]]] = {
        "rows": [],
        "paired": [],
        "hindsight": [],
        "gap_captured": [],
    }
    for sc in scenarios:
        eps = sorted(
            (o for o in outcomes if o.scenario == sc), key=lambda o: (o.seed, o.side or "")
        )
        if not eps:
            continue
        if not both_sides:
            _aggregate_group(out, {"scenario": sc}, eps, strategies, baseline)
            continue
        for side in (Side.BUY.value, Side.SELL.value, BOTH):
            group = eps if side == BOTH else [o for o in eps if o.side == side]
            if group:
                key = {"scenario": sc, "side": side}
                _aggregate_group(out, key, group, strategies, baseline)
    return dict(out)


def _counterparties(eps: Sequence[EpisodeOutcome], strategy: str) -> dict[str, Any]:
    """Where a strategy's fills went (mean share by venue kind) and what the dealers
    made on their trades with it (bps of that notional, all episodes pooled): a gain
    that a counterparty pays for below its own cost would show here."""
    mixes = [o.venue_mix[strategy] for o in eps if strategy in o.venue_mix]
    if not mixes:
        return {}
    kinds = sorted({k for m in mixes for k in m})
    pnl = sum(o.dealer_pnl.get(strategy, (0.0, 0.0))[0] for o in eps)
    notional = sum(o.dealer_pnl.get(strategy, (0.0, 0.0))[1] for o in eps)
    return {
        "venue_mix_mean": {k: sum(m.get(k, 0.0) for m in mixes) / len(mixes) for k in kinds},
        "dealer_pnl_bps": pnl / notional * 1e4 if notional else None,
    }


def _replay_columns(eps: Sequence[EpisodeOutcome], strategy: str) -> dict[str, Any]:
    """On a replayed market (nothing elsewhere): what a strategy's runs changed of the
    replay, each count summed over the episodes, and its resting lit children pooled:
    quantity sent and filled as maker, the ratio of the two (None if none was sent), and
    the maker fills' markouts, each episode's weighted by its maker quantity (None where
    no episode had one)."""
    counts = [o.replay[strategy] for o in eps if strategy in o.replay]
    passive = [o.passive_lit[strategy] for o in eps if strategy in o.passive_lit]
    if not counts or not passive:
        return {}
    replay = {k: sum(c.get(k, 0) for c in counts) for k in counts[0]}
    sent = sum(p["sent"] for p in passive)
    filled = sum(p["filled"] for p in passive)
    markouts: dict[str, float | None] = {}
    for h in passive[0]["markouts_bps"]:
        pairs = [
            (p["markouts_bps"][h], p["filled"])
            for p in passive
            if p["markouts_bps"][h] is not None and p["filled"] > 0
        ]
        weight = sum(q for _, q in pairs)
        markouts[h] = sum(m * q for m, q in pairs) / weight if weight else None
    return {
        "replay": replay,
        "passive_lit": {
            "sent": sent,
            "filled": filled,
            "fill_rate": filled / sent if sent else None,
            "markouts_bps": markouts,
        },
    }


def _aggregate_group(
    out: dict[str, list[dict[str, Any]]],
    key: dict[str, Any],
    eps: Sequence[EpisodeOutcome],
    strategies: Sequence[str],
    baseline: str,
) -> None:
    """One scenario's (or one scenario and side's) rows, appended to `out`'s lists, each
    starting with `key`'s items."""
    seeds = [o.seed for o in eps]
    o_mean: float | None = None
    if all(HINDSIGHT in o.is_bps for o in eps):
        o_mean, _, o_se = _stats([o.is_bps[HINDSIGHT] for o in eps], seeds)
        out["hindsight"].append({**key, "is_bps_mean": o_mean, "is_bps_stderr": o_se})
    base = [o.is_bps[baseline] for o in eps] if baseline in strategies else None
    for st in strategies:
        vals = [o.is_bps[st] for o in eps]
        mean, std, se = _stats(vals, seeds)
        out["rows"].append(
            {
                **key,
                "strategy": st,
                "episodes": len(vals),
                "is_bps_mean": mean,
                "is_bps_std": std,
                "is_bps_stderr": se,
                "completion_mean": sum(o.completion[st] for o in eps) / len(eps),
                **_counterparties(eps, st),
                **_replay_columns(eps, st),
            }
        )
        if base is None:
            continue
        b_mean = sum(base) / len(base)
        if o_mean is not None:
            share = gap_captured(mean, b_mean, o_mean, min_gap_bps=0.5)
            out["gap_captured"].append({**key, "strategy": st, "share": share})
        if st != baseline:
            diffs = [v - b for v, b in zip(vals, base, strict=True)]
            d_mean, _, d_se = _stats(diffs, seeds)
            out["paired"].append(
                {
                    **key,
                    "strategy": st,
                    "baseline": baseline,
                    "diff_mean_bps": d_mean,
                    "diff_stderr_bps": d_se,
                    "n": len(vals),
                }
            )


def backtest(
    scenarios: Sequence[str],
    strategies: Sequence[str],
    episodes: int,
    seed0: int,
    workers: int,
    config_dir: Path,
    db_url: str | None = None,
    batch: str | None = None,
    created_at: datetime | None = None,
    progress: Progress | None = None,
    hindsight: bool = True,
    store_orders: bool = False,
    baseline: str = "twap",
    side: Side | None = None,
    both_sides: bool = False,
    executor: str = "local",
    ray_address: str | None = None,
    models_dir: Path | None = None,
) -> dict[str, Any]:
    """`episodes` seeds from `seed0` per scenario, each run by every strategy (the
    parent on `side`, by default the scenario's; with `both_sides` on either side, the
    same market for both); see `aggregate` for the document. The episodes run on
    `executor`: "local", a pool of `workers` processes, or "ray", tasks on the Ray
    cluster at `ray_address` (None: an in-process one with `workers` CPUs); the
    document is the same whichever runs them, but for `meta`'s wall time and executor.

    `models_dir`: the folder of model artifacts (as models/ holds them) that the
    model-guided strategies run on, read where the episodes run; None: the process's
    own, the shipped ones. A missing or corrupt artifact a strategy needs raises
    ModelError before any episode runs."""
    if models_dir is not None:
        models_dir = models_dir.resolve()  # the workers' working folder may be another
    check_strategies(strategies, models_of(models_dir))
    if episodes <= 0:
        raise DomainError(f"--episodes must be > 0, got {episodes}")
    if workers <= 0:
        raise DomainError(f"--workers must be > 0, got {workers}")
    if executor not in ("local", "ray"):
        raise DomainError(f"--executor must be local or ray, got {executor!r}")
    if side is not None and both_sides:
        raise DomainError("--side and --both-sides exclude each other: --both-sides runs both")
    # fail fast on a bad name, before any worker starts
    loaded = {sc: load_scenario(sc, config_dir) for sc in scenarios}
    jobs = [
        _Job(
            sc,
            seed0 + k,
            tuple(strategies),
            str(config_dir),
            db_url,
            batch,
            created_at or datetime.now(UTC),
            hindsight,
            store_orders,
            sd,
            None if models_dir is None else str(models_dir),
        )
        for sc in scenarios
        for k in range(episodes)
        for sd in ((Side.BUY, Side.SELL) if both_sides else (side,))
    ]
    start = time.perf_counter()
    ray_meta: dict[str, Any] | None = None
    if executor == "ray":
        # the optional `ray` extra: imported on this path only, so that the default
        # install and the local executor never need it
        from router.backtest_ray import RayEpisodes

        on_ray = RayEpisodes(workers, ray_address)
        outcomes = on_ray.run(jobs, loaded, desk_histories_needed(loaded, strategies), progress)
        ray_meta = on_ray.report
    else:
        outcomes = _run_local(jobs, workers, progress, desk_histories_needed(loaded, strategies))
    doc = aggregate(outcomes, scenarios, strategies, baseline, both_sides)
    # every episode's own figures, for paired comparisons the rows do not make (any two
    # strategies, per side); in a fixed order, whatever the workers' finishing order
    order = {name: i for i, name in enumerate(scenarios)}
    doc["episodes"] = [
        {
            "scenario": o.scenario,
            "seed": o.seed,
            "side": o.side,
            "is_bps": dict(o.is_bps),
            "completion": dict(o.completion),
        }
        for o in sorted(outcomes, key=lambda o: (order[o.scenario], o.seed, o.side or ""))
    ]
    doc["meta"] = {
        "episodes": episodes,
        "side": None if side is None else side.value,
        "both_sides": both_sides,
        "seed0": seed0,
        "workers": workers,
        "executor": executor,
        "wall_s": time.perf_counter() - start,
        "cpus": os.cpu_count(),
        "hindsight": hindsight,
        "baseline": baseline,
    }
    if models_dir is not None:
        doc["meta"]["models_dir"] = str(models_dir)
    if ray_meta is not None:
        doc["meta"]["ray"] = ray_meta  # where the tasks ran, the object store's share
    return doc
