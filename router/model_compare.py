"""Champion against challenger: the paired offline test that says whether one folder of
model artifacts (dealer_*.ubj, fill_passive.ubj, slicer.onnx and their metadata, as
models/ holds them) may replace another.

Both model sets run the same strategy on the same episodes: the same scenarios and
seeds, so the same markets, each seed on both sides of the market (the scenario's parent
and its mirror, router.backtest's `both_sides`), through router.backtest itself. Each
episode gives one paired difference, d = IS(challenger) - IS(champion) in bps (negative:
the challenger is cheaper), in which the market's own moves, tens of bps from episode to
episode, cancel.

The statistics, for k seeds per scenario and S scenarios:

- a (scenario, side) row: the k differences, independent draws (one seed each): their
  mean, standard deviation sd (n - 1 in the denominator), standard error sd / sqrt(k)
  and t = mean / se;
- a (scenario, "both") row: a seed's two sides share one market and are not independent,
  so the unit is the seed, its difference the mean of its two sides' (as
  router.backtest's rows); mean, sd and se over the k seeds;
- the pooled row ("all", "both"), stratified by scenario: the mean of the scenarios'
  means (all of them have k seeds, so the mean of every difference), its standard error
  sqrt(sum of the scenarios' se^2) / S, and the within-scenario sd of a seed's
  difference, sd_w = sqrt(mean of the scenarios' variances), so that se = sd_w /
  sqrt(S k). Differences between the scenarios' means are not noise and do not enter.

Sample size. The minimum effect is declared before the run (`min_effect_bps`, default
MIN_EFFECT_BPS): the smallest saving worth a change of models. The number of seeds
(pairs) that detects it with a two-sided test at level alpha and the given power is

    n = ((z_{1-alpha/2} + z_{power}) * sd_w / min_effect)^2

(the normal approximation, rounded up), sd_w taken from the run itself (it is its own
pilot); spread over the S scenarios, that is ceil(n / S) episodes per scenario and side
(`episodes_needed`, at least MIN_EPISODES), the figure `--episodes` takes.

The recommendation, for the pooled row's mean D and t, and the (scenario, side) rows:

1. "promote" if D < 0, t <= -2 (PROMOTE_T: about a two-sided 5% test) and no
   (scenario, side) row is worse by more than two of its standard errors
   (d > 2 se; with se = 0, any d > 0): cheaper overall by a significant margin, and
   no market and side that it clearly makes dearer;
2. else "keep" if the challenger is shown not to be better: some (scenario, side) row
   worse by more than 2 se, or t >= +2, or the run had the power to find the minimum
   effect (episodes >= episodes_needed) and did not;
3. else "inconclusive": the run was too small to tell; the reason says "need N
   episodes" (N = episodes_needed, per scenario and side).

Two folders of the same artifacts give d = 0 on every episode, bit for bit (the
simulation is deterministic), hence sd = 0, episodes_needed = MIN_EPISODES, and "keep".
"""

from __future__ import annotations

import filecmp
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

from router.backtest import BOTH, backtest, models_of
from router.domain import DomainError, Side
from router.strategies import strategy_spec
from router.strategies.learned import EvenPace

#: The minimum effect declared by default, in bps of IS: the smallest change of models
#: worth making. The learned routing models save 2.0-4.5 bps against the heuristic `sor`
#: (README, 200 seeds), and a passive order earns about half calm's 5-bps spread, 2.5:
#: a new model set that saves less than 2 bps is within what tuning the heuristics
#: moves, and on a 50 million block 2 bps is 10,000 in the currency, a level at which
#: the desk would rather keep what it knows.
MIN_EFFECT_BPS = 2.0
ALPHA = 0.05
POWER = 0.8
PROMOTE_T = 2.0  # |t| that counts as significant: about a two-sided test at 5%
WORSE_SE = 2.0  # a (scenario, side) row worse by more than this many se blocks promotion
MIN_EPISODES = 2  # a standard deviation needs two seeds a row

PROMOTE, KEEP, INCONCLUSIVE = "promote", "keep", "inconclusive"
POOLED = "all"  # the pooled row's scenario

Progress = Callable[[int, int], None]

# the artifacts of each family that a folder must hold (models/ as shipped)
FAMILY_FILES: dict[str, tuple[str, ...]] = {
    "dealer": ("dealer.meta.json", "dealer_respond.ubj", "dealer_best.ubj", "dealer_hit.ubj"),
    "fill": ("fill.meta.json", "fill_passive.ubj"),
    "slicer": ("slicer.meta.json", "slicer.onnx"),
}


@dataclass(frozen=True, slots=True)
class Paired:
    """Mean, standard deviation, standard error and t of paired differences over n
    independent units. t is infinite when se is 0 and the mean is not (every unit the
    same nonzero difference), 0 when both are 0."""

    mean: float
    sd: float
    se: float
    n: int

    @property
    def t(self) -> float:
        if self.se > 0:
            return self.mean / self.se
        return 0.0 if self.mean == 0 else math.copysign(math.inf, self.mean)


def paired(diffs: Sequence[float]) -> Paired:
    """The statistics of independent paired differences (at least two)."""
    n = len(diffs)
    if n < MIN_EPISODES:
        raise DomainError(f"paired statistics need {MIN_EPISODES} differences, got {n}")
    mean = math.fsum(diffs) / n
    sd = math.sqrt(math.fsum((d - mean) ** 2 for d in diffs) / (n - 1))
    return Paired(mean, sd, sd / math.sqrt(n), n)


def pairs_needed(
    sd: float, min_effect_bps: float, alpha: float = ALPHA, power: float = POWER
) -> int:
    """Independent pairs that detect a mean difference of `min_effect_bps` with a two-sided
    test at level `alpha` with probability `power`, for pairs whose differences spread by
    `sd`: ceil(((z_{1-alpha/2} + z_{power}) * sd / min_effect)^2)."""
    if not min_effect_bps > 0:
        raise DomainError(f"the minimum effect must be > 0 bps, got {min_effect_bps:g}")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise DomainError(f"alpha and power must lie in (0, 1), got {alpha:g} and {power:g}")
    z = NormalDist().inv_cdf
    n = ((z(1 - alpha / 2) + z(power)) * sd / min_effect_bps) ** 2
    # a hair under an integer is that integer, not the next one (floating point)
    return math.ceil(n - 1e-9)


@dataclass(frozen=True, slots=True)
class Verdict:
    recommendation: str  # PROMOTE, KEEP or INCONCLUSIVE
    reason: str


def recommend(
    pooled: Paired,
    cells: Mapping[tuple[str, str], Paired],
    episodes: int,
    episodes_needed: int,
    unit: str = "episodes per scenario and side",
) -> Verdict:
    """The rule of this module's docstring: `pooled`, the pooled row; `cells`, the
    (scenario, side) rows; `episodes` run and `episodes_needed`, counted in `unit` (the
    algo wheel's live statistics count completed parents: router.wheel_stats)."""
    worse = [
        f"{sc} {side} {c.mean:+.2f} bps ({_t_text(c.t)})"
        for (sc, side), c in cells.items()
        if (c.mean > WORSE_SE * c.se if c.se > 0 else c.mean > 0)
    ]
    said = f"pooled {pooled.mean:+.2f} +- {pooled.se:.2f} bps ({_t_text(pooled.t)})"
    if pooled.mean < 0 and pooled.t <= -PROMOTE_T and not worse:
        return Verdict(PROMOTE, f"{said}: cheaper by more than {PROMOTE_T:g} se, no side worse")
    if worse:
        return Verdict(KEEP, f"{said}; worse by more than {WORSE_SE:g} se on {', '.join(worse)}")
    if pooled.t >= PROMOTE_T:
        return Verdict(KEEP, f"{said}: dearer by more than {PROMOTE_T:g} se")
    if episodes >= episodes_needed:
        return Verdict(
            KEEP,
            f"{said}: not significant, and {episodes} {unit} had the "
            f"power to find the minimum effect ({episodes_needed} needed)",
        )
    return Verdict(INCONCLUSIVE, f"need {episodes_needed} {unit} (ran {episodes}): {said}")


def _t_text(t: float) -> str:
    return f"t {t:+.1f}" if math.isfinite(t) else "t " + ("-inf" if t < 0 else "+inf")


def json_t(t: float) -> float | None:
    return t if math.isfinite(t) else None  # JSON has no infinity: null, with se 0


def check_models_dir(directory: Path, role: str) -> None:
    """Raises ModelError naming the folder, or the first missing or corrupt artifact in
    it (each loader names its file and the command that rebuilds it), before any
    episode runs: `role` ("champion", "challenger") says which."""
    from models.serving.artifacts import ModelError  # the serving code, only when checked

    if not directory.is_dir():
        raise ModelError(f"{directory}: no such folder (the {role}'s models)")
    registry = models_of(directory)
    registry.load()  # the dealer and fill models
    registry.shipped_slicer_policy()  # the slicer, served or not


def slicer_served(directory: Path) -> bool:
    """Whether `ml` runs the folder's slicer policy (its validation promotes it,
    router.strategies.learned.promotion) rather than the even pace."""
    return not isinstance(models_of(directory).slicer_policy(), EvenPace)


def families_changed(champion: Path, challenger: Path) -> list[str]:
    """The model families whose artifacts differ, byte for byte, between two folders (a
    file that only one of them holds differs)."""

    def same(name: str) -> bool:
        a, b = champion / name, challenger / name
        if not (a.is_file() and b.is_file()):
            return a.exists() == b.exists()
        return filecmp.cmp(a, b, shallow=False)

    return [family for family, files in FAMILY_FILES.items() if not all(map(same, files))]


def compare_models(
    champion: Path,
    challenger: Path,
    scenarios: Sequence[str],
    episodes: int,
    seed0: int,
    config_dir: Path,
    strategy: str = "ml",
    workers: int = 1,
    min_effect_bps: float = MIN_EFFECT_BPS,
    alpha: float = ALPHA,
    power: float = POWER,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run `strategy` on the champion's models and on the challenger's (each a folder of
    artifacts) on the same `episodes` seeds from `seed0` per scenario, both sides of each,
    and compare them pair by pair; see the module's docstring for the statistics and the
    rule. Returns the document (`rows`, `pooled`, `recommendation`, every pair in
    `pairs`, ...).

    Raises DomainError for a bad count, effect, level or strategy, ConfigError for an
    unknown scenario, ModelError for a missing folder or a missing or corrupt artifact:
    all before any episode runs."""
    from router.app import check_strategies
    from simulators.scenario import load_scenario

    if episodes < MIN_EPISODES:
        raise DomainError(
            f"--episodes must be >= {MIN_EPISODES} (a standard error needs two seeds), got "
            f"{episodes}"
        )
    if not scenarios:
        raise DomainError("no scenario given")
    if len(set(scenarios)) != len(scenarios):
        raise DomainError("a scenario is given twice")
    pairs_needed(1.0, min_effect_bps, alpha, power)  # checks the three
    champion, challenger = champion.resolve(), challenger.resolve()  # as backtest reads them
    strategy_spec(strategy)  # an unknown name, before the folders
    for sc in scenarios:
        load_scenario(sc, config_dir)
    check_models_dir(champion, "champion")
    check_models_dir(challenger, "challenger")
    check_strategies([strategy], models_of(champion))

    per_run = len(scenarios) * episodes * 2
    start = time.perf_counter()
    docs = []
    for i, directory in enumerate((champion, challenger)):

        def step(done: int, total: int, offset: int = i * per_run) -> None:
            if progress is not None:
                progress(offset + done, 2 * per_run)

        docs.append(
            backtest(
                scenarios,
                [strategy],
                episodes,
                seed0,
                workers,
                config_dir,
                progress=step,
                hindsight=False,
                both_sides=True,
                models_dir=directory,
            )
        )
    found = pair_episodes(docs[0]["episodes"], docs[1]["episodes"], scenarios, strategy)
    return {
        "champion": str(champion),
        "challenger": str(challenger),
        "families_changed": families_changed(champion, challenger),
        # a slicer its own validation does not promote leaves `ml` on sor-ml's pace: a
        # challenger that changes only such a slicer changes nothing `ml` does
        "slicer_served": {
            "champion": slicer_served(champion),
            "challenger": slicer_served(challenger),
        },
        "strategy": strategy,
        "scenarios": list(scenarios),
        "episodes": episodes,
        "seeds": [seed0, seed0 + episodes - 1],
        **found.report(episodes, min_effect_bps, alpha, power),
        "meta": {"workers": workers, "wall_s": time.perf_counter() - start},
    }


@dataclass(frozen=True, slots=True)
class Comparison:
    """Every pair of a comparison, and the statistics of its rows (the module's
    docstring): `cells` by (scenario, side), `scenarios` by scenario (both sides),
    `pooled` over all."""

    pairs: tuple[dict[str, Any], ...]
    cells: dict[tuple[str, str], Paired]
    scenarios: dict[str, Paired]
    pooled: Paired

    def report(
        self, episodes: int, min_effect_bps: float, alpha: float, power: float
    ) -> dict[str, Any]:
        """The document's rows, sample size and recommendation, for `episodes` per
        scenario and side and the declared minimum effect, level and power."""
        n = pairs_needed(self.pooled.sd, min_effect_bps, alpha, power)
        needed = max(MIN_EPISODES, math.ceil(n / len(self.scenarios)))
        verdict = recommend(self.pooled, self.cells, episodes, needed)
        rows = []
        for sc, stat in self.scenarios.items():
            for side in (Side.BUY.value, Side.SELL.value):
                rows.append(self._row(sc, side, self.cells[(sc, side)]))
            rows.append(self._row(sc, BOTH, stat))
        return {
            "rows": rows,
            "pooled": self._row(POOLED, BOTH, self.pooled),
            "sample_size": {
                "min_effect_bps": min_effect_bps,
                "alpha": alpha,
                "power": power,
                "sd_bps": self.pooled.sd,
                "pairs_needed": n,
                "episodes_needed": needed,
                "formula": "pairs_needed = ((z_{1-alpha/2} + z_{power}) * sd / min_effect)^2; "
                "episodes_needed = ceil(pairs_needed / scenarios) per scenario and side",
            },
            # CONTRACT.md's names for the pooled figures
            "is_diff_bps_mean": self.pooled.mean,
            "is_diff_bps_stderr": self.pooled.se,
            "recommendation": verdict.recommendation,
            "reason": verdict.reason,
            "pairs": list(self.pairs),
        }

    def _row(self, scenario: str, side: str, stat: Paired) -> dict[str, Any]:
        group = [
            p
            for p in self.pairs
            if scenario in (POOLED, p["scenario"]) and side in (BOTH, p["side"])
        ]
        return {
            "scenario": scenario,
            "side": side,
            "episodes": len(group),
            "n": stat.n,  # the independent units: seeds
            "champion_is_bps_mean": math.fsum(p["champion_is_bps"] for p in group) / len(group),
            "challenger_is_bps_mean": math.fsum(p["challenger_is_bps"] for p in group) / len(group),
            "diff_bps_mean": stat.mean,
            "diff_bps_sd": stat.sd,
            "diff_bps_stderr": stat.se,
            "t": json_t(stat.t),
        }


def pair_episodes(
    champion: Sequence[Mapping[str, Any]],
    challenger: Sequence[Mapping[str, Any]],
    scenarios: Sequence[str],
    strategy: str,
) -> Comparison:
    """Pair two runs' episodes (router.backtest's document's `episodes`, both sides of
    every seed) by scenario, seed and side, and compute the rows' statistics. Raises
    DomainError if the two did not play the same episodes."""

    def key(e: Mapping[str, Any]) -> tuple[str, int, str]:
        return e["scenario"], e["seed"], e["side"]

    champ = {key(e): float(e["is_bps"][strategy]) for e in champion}
    chall = {key(e): float(e["is_bps"][strategy]) for e in challenger}
    if set(champ) != set(chall):
        raise DomainError("the champion's and the challenger's runs played different episodes")
    order = {name: i for i, name in enumerate(scenarios)}
    pairs: tuple[dict[str, Any], ...] = tuple(
        {
            "scenario": k[0],
            "seed": k[1],
            "side": k[2],
            "champion_is_bps": champ[k],
            "challenger_is_bps": chall[k],
            "diff_bps": chall[k] - champ[k],
        }
        for k in sorted(champ, key=lambda k: (order[k[0]], k[1], k[2]))
    )
    cells: dict[tuple[str, str], Paired] = {}
    by_scenario: dict[str, Paired] = {}
    for sc in scenarios:
        mine = [p for p in pairs if p["scenario"] == sc]
        for side in (Side.BUY.value, Side.SELL.value):
            cells[(sc, side)] = paired([p["diff_bps"] for p in mine if p["side"] == side])
        # a seed's two sides share one market: the unit is the seed, its difference the
        # mean of its sides' (as router.backtest's rows)
        by_seed: dict[int, list[float]] = {}
        for p in mine:
            by_seed.setdefault(p["seed"], []).append(p["diff_bps"])
        by_scenario[sc] = paired([math.fsum(d) / len(d) for d in by_seed.values()])
    return Comparison(pairs, cells, by_scenario, pooled_stats(list(by_scenario.values())))


def pooled_stats(scenarios: Sequence[Paired]) -> Paired:
    """The pooled row of scenarios with as many seeds each (see the module's docstring):
    the mean of their means, se = sqrt(sum se^2) / S, sd = sqrt(mean of variances), n =
    all their seeds."""
    s = len(scenarios)
    mean = math.fsum(p.mean for p in scenarios) / s
    se = math.sqrt(math.fsum(p.se**2 for p in scenarios)) / s
    sd = math.sqrt(math.fsum(p.sd**2 for p in scenarios) / s)
    return Paired(mean, sd, se, sum(p.n for p in scenarios))
