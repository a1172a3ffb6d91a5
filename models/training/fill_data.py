"""Training rows for the fill model, from the router's own log of passive orders.

Every passive child (post-only lit, or midpoint in a dark pool) has a decision record
whose inputs hold the order's context at sending (router.ports.PassiveOrderContext).
The label is whether the order got any fill within `HORIZON_S` of being sent: the
router re-plans every 30 s, so that is the life of a passive order. Only own fills are
seen: a cancelled order is a negative whatever would have happened later (censoring at
the horizon, which is the question the router asks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from models.serving.features import FILL_FEATURES, context_from_inputs, fill_row
from router.app import Episode
from router.domain import (
    NANOS_PER_SECOND,
    ChildOrderFilled,
    ChildOrderSent,
    DecisionRecorded,
    Event,
)
from router.parallel import ordered_map
from simulators.scenario import load_scenario

HORIZON_S = 30.0


@dataclass
class FillRows:
    x: np.ndarray
    y: np.ndarray
    day: np.ndarray  # the episode's order in generation: the time axis of the split
    dark: np.ndarray  # bool
    oracle: np.ndarray  # NaN where none was computed
    #: where the oracle was computed, the simulator's hidden fair price beyond the
    #: consolidated mid, towards the order's fills, in ticks (for evaluation only)
    fair_gap: np.ndarray

    @classmethod
    def concat(cls, parts: Sequence[FillRows]) -> FillRows:
        if not parts:
            e = np.zeros(0)
            return cls(np.zeros((0, len(FILL_FEATURES))), e, e, e.astype(bool), e, e)
        return cls(
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.y for p in parts]),
            np.concatenate([p.day for p in parts]),
            np.concatenate([p.dark for p in parts]),
            np.concatenate([p.oracle for p in parts]),
            np.concatenate([p.fair_gap for p in parts]),
        )


def rows_from_events(
    events: Sequence[Event],
    day: int,
    oracle: dict[str, float] | None = None,
    fair_gap: dict[str, float] | None = None,
) -> FillRows:
    """`oracle`: the simulator's P(fill) per child id, where computed; `fair_gap`: the
    hidden fair price's gap there (FillRows.fair_gap)."""
    sent: dict[str, ChildOrderSent] = {}
    decisions: dict[str, DecisionRecorded] = {}
    first_fill: dict[str, int] = {}
    for e in events:
        if isinstance(e, ChildOrderSent):
            sent[e.child.child_id] = e
        elif isinstance(e, DecisionRecorded):
            decisions[e.decision_id] = e
        elif isinstance(e, ChildOrderFilled):
            first_fill.setdefault(e.child_id, e.ts_ns)
    xs, ys, darks, oracles, gaps = [], [], [], [], []
    for child_id, s in sent.items():
        c = s.child
        d = decisions.get(f"{child_id}-d")
        if d is None or c.quote_id is not None or not (c.post_only or c.min_qty > 0):
            continue
        ctx = context_from_inputs(c.venue, c.side, d.inputs)
        if ctx is None:
            continue
        xs.append(fill_row(ctx))
        filled_at = first_fill.get(child_id)
        ys.append(
            1.0
            if filled_at is not None and filled_at - s.ts_ns <= HORIZON_S * NANOS_PER_SECOND
            else 0.0
        )
        darks.append(ctx.dark)
        oracles.append((oracle or {}).get(child_id, float("nan")))
        gaps.append((fair_gap or {}).get(child_id, float("nan")))
    n = len(xs)
    return FillRows(
        np.asarray(xs, dtype=np.float64).reshape(n, len(FILL_FEATURES)),
        np.asarray(ys),
        np.full(n, day),
        np.asarray(darks, dtype=bool),
        np.asarray(oracles, dtype=np.float64),
        np.asarray(gaps, dtype=np.float64),
    )


@dataclass(frozen=True, slots=True)
class EpisodeSpec:
    scenario: str
    seed: int


def generate(
    episodes: Sequence[EpisodeSpec],
    progress: Callable[[int, int], None] | None = None,
    strategy: str = "sor-lit",
    workers: int = 1,
    executor: str = "local",
    ray_address: str | None = None,
) -> FillRows:
    """Run `strategy` (a smart-routed strategy) on each episode and log its passive
    orders, on `workers` processes or Ray (router.parallel.ordered_map): every episode
    has its own seed, so the rows are the same on any number of them."""
    # an episode's day: its index
    jobs = [(spec, day) for day, spec in enumerate(episodes)]
    parts = ordered_map(
        partial(_episode_job, strategy=strategy),
        jobs,
        workers,
        executor,
        ray_address,
        progress,
    )
    return FillRows.concat(parts)


def _episode_job(job: tuple[EpisodeSpec, int], strategy: str) -> FillRows:
    return _episode_rows(*job, strategy)


def _episode_rows(spec: EpisodeSpec, day: int, strategy: str) -> FillRows:
    """One episode's rows, run by the composition root (data generation, not serving)."""
    run = Episode(load_scenario(spec.scenario), spec.seed).run(strategy)
    return rows_from_events(run.events, day)
