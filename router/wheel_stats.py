"""The algo wheel's live results (router.wheel): the challenger's models against the
champion's on the parents that the wheel split between them, from the service's journal
(`blockroute models wheel`, GET /api/models/wheel).

Which parents. Those the wheel drew (an arm journaled), created since `since`, that are
done (filled, expired or canceled: all of them, as drawn, so that an arm whose parents a
trader cancels more is not flattered by leaving those out) with a finite IS in their
TCA; parents still working are counted, not used. One comparison is one pair of model
sets: the parents since either arm last changed versions (a promotion, a new
challenger), each arm on the versions it serves in its latest parent; earlier parents
are left out and counted. With a FAMILY, those arms must differ in that family.

The statistics. A parent's result is its implementation shortfall in bps (TCA's
`is_bps`; higher is dearer). Unlike `models compare`, no two parents share a market
and a seed, so the two arms are independent samples, and the difference of their means
has the Welch standard error sqrt(sd_c^2 / n_c + sd_h^2 / n_h) (c: challenger, h:
champion), with the Welch-Satterthwaite degrees of freedom. Parents of different
symbols and sides differ by far more than models do (a bond's spread against an
equity's, a trending market bought or sold), so they are matched: the difference is
taken within each (symbol, side) stratum with at least two completed parents of each
arm, and the pooled difference is the strata's, weighted by their parents:
D = sum_s w_s d_s, se = sqrt(sum_s w_s^2 se_s^2), w_s = N_s / N. The random draw makes
every stratum a fair comparison; matching only removes the noise of the mix. Strata
that one arm lacks are left out of D and listed. The unmatched difference of all the
completed parents is reported beside it (`overall`).

Sample size and the recommendation: router.model_compare's rule, on parents. With
sd = se * sqrt(N) the spread of one parent's result in this mix and share (so that
se = sd / sqrt(N), as for N paired differences), the minimum effect declared before
(default MIN_EFFECT_BPS) needs `pairs_needed(sd, min_effect)` completed parents of both
arms at this share; "promote" if D < 0 with t <= -2 and no stratum worse by more than
two of its standard errors, "keep" if the challenger is shown not to be better (or the
wheel had the parents to find the effect and did not), else "inconclusive" (the
recommendation is then keep, and the verdict and reason say how many parents it needs).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.catalog import CHALLENGER, CHAMPION, FAMILIES, check_family
from router.config import epoch_ns, parse_duration
from router.desk_api import OrderStatus
from router.domain import DomainError
from router.journal import SvcParentRow
from router.model_compare import (
    ALPHA,
    INCONCLUSIVE,
    MIN_EFFECT_BPS,
    POWER,
    PROMOTE,
    Paired,
    json_t,
    pairs_needed,
    recommend,
)

MIN_PER_ARM = 2  # a standard deviation needs two parents of an arm in a stratum
UNIT = "completed parents"
ARMS = (CHAMPION, CHALLENGER)


class WheelError(DomainError):
    """The wheel's statistics cannot be computed as asked: `field` names the input at
    fault ("since", "family", "min_effect_bps", ...; None: the journal's content)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class WheelParent:
    """A parent of the wheel as the statistics read it."""

    parent_id: str
    symbol: str
    side: str
    status: str
    arm: str
    versions: dict[str, int]
    created_ns: int
    is_bps: float | None  # None: not done, or no finite IS

    @classmethod
    def of(cls, row: SvcParentRow) -> WheelParent:
        done = OrderStatus(row.status).terminal
        tca = json.loads(row.tca_json) if done and row.tca_json else {}
        value = tca.get("is_bps")
        finite = isinstance(value, int | float) and math.isfinite(value)
        is_bps = float(value) if finite and value is not None else None
        return cls(
            row.parent_id,
            row.symbol,
            row.side,
            row.status,
            str(row.model_arm),
            json.loads(row.model_versions) if row.model_versions else {},
            row.created_ns,
            is_bps,
        )


def parse_since(text: str, now_ns: int) -> int:
    """`--since`: a duration back from `now_ns` (the service clock: "90m", "24h") or an
    ISO 8601 date or time ("2026-12-08", "2026-12-08T09:30", UTC unless it says)."""
    text = text.strip()
    try:
        return now_ns - round(parse_duration(text) * 1e9)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise WheelError(
            f"since: {text!r} is neither a duration (90m, 24h) nor an ISO 8601 time "
            "(2026-12-08T09:30)",
            "since",
        ) from None
    return epoch_ns(when)


@dataclass(frozen=True, slots=True)
class Sample:
    """n results, their mean and standard deviation (n - 1 in the denominator; 0 for one)."""

    n: int
    mean: float
    sd: float

    @property
    def var_of_mean(self) -> float:
        return self.sd**2 / self.n

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "is_bps_mean": self.mean,
            "is_bps_sd": self.sd,
            "is_bps_stderr": math.sqrt(self.var_of_mean),
        }


def sample(values: Sequence[float]) -> Sample:
    n = len(values)
    mean = math.fsum(values) / n
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return Sample(n, mean, sd)


@dataclass(frozen=True, slots=True)
class Difference:
    """Challenger minus champion: the mean difference, its standard error and the
    Welch-Satterthwaite degrees of freedom, over `n` parents of both arms."""

    mean: float
    se: float
    df: float
    n: int

    def paired(self) -> Paired:
        """As router.model_compare's statistics of n units: sd = se * sqrt(n)."""
        return Paired(self.mean, self.se * math.sqrt(self.n), self.se, self.n)

    def to_json(self) -> dict[str, Any]:
        return {
            "parents": self.n,
            "diff_bps_mean": self.mean,
            "diff_bps_stderr": self.se,
            "df": self.df,
            "t": json_t(self.paired().t),
        }


def weighted_difference(parts: Sequence[tuple[float, Sample, Sample]]) -> Difference:
    """sum_s w_s (mean_c - mean_h) over (w_s, challenger, champion) parts, its standard
    error sqrt(sum_s w_s^2 (sd_c^2 / n_c + sd_h^2 / n_h)) and the Welch-Satterthwaite
    degrees of freedom (sum a)^2 / sum a^2 / (n - 1), a = w^2 sd^2 / n of each sample
    (n_c + n_h - 2 per part when every sd is 0). One part of weight 1: Welch's test."""
    mean = math.fsum(w * (c.mean - h.mean) for w, c, h in parts)
    terms = [(w * w * s.var_of_mean, s.n) for w, c, h in parts for s in (c, h)]
    var = math.fsum(a for a, _ in terms)
    spread = math.fsum(a * a / (n - 1) for a, n in terms)
    df = var * var / spread if spread > 0 else float(sum(n - 1 for _, n in terms))
    n = sum(c.n + h.n for _, c, h in parts)
    return Difference(mean, math.sqrt(var), df, n)


def wheel_report(
    parents: Iterable[WheelParent],
    *,
    family: str | None = None,
    since_ns: int | None = None,
    min_effect_bps: float = MIN_EFFECT_BPS,
    alpha: float = ALPHA,
    power: float = POWER,
) -> dict[str, Any]:
    """The statistics of the module's docstring over the wheel's `parents` (the
    journal's, created since `since_ns`), as a JSON document. Raises WheelError (a
    level, power or effect out of range, no parent of the wheel, a FAMILY the arms do
    not differ in) and CatalogError (an unknown FAMILY)."""
    if family is not None:
        check_family(family)
    if not (math.isfinite(min_effect_bps) and min_effect_bps > 0):
        raise WheelError(
            f"min_effect_bps must be > 0 bps, got {min_effect_bps:g}", "min_effect_bps"
        )
    for name, value in (("alpha", alpha), ("power", power)):
        if not 0 < value < 1:
            raise WheelError(f"{name} must lie between 0 and 1, got {value:g}", name)
    rows = sorted(parents, key=lambda p: (p.created_ns, p.parent_id))
    if not rows:
        where = "" if since_ns is None else " in the time asked (--since)"
        raise WheelError(
            f"no parent of the algo wheel{where}: the wheel runs with [models] wheel_share "
            "> 0, registry = true and a challenger registered"
        )
    latest = {arm: next((p.versions for p in reversed(rows) if p.arm == arm), None) for arm in ARMS}
    kept = _since_last_change(rows, latest)
    changed = _families_changed(latest)
    if family is not None and family not in changed:
        versions = {arm: (v or {}).get(family) for arm, v in latest.items()}
        raise WheelError(
            f"the wheel's arms run the same {family} version ({_versions_text(versions)}): "
            f"{family} is not under test (the arms differ in: {', '.join(changed) or 'nothing'})",
            "family",
        )
    done = {arm: [p for p in kept if p.arm == arm and p.is_bps is not None] for arm in ARMS}
    arms_doc = {
        arm: {
            "versions": latest[arm],
            "completed": len(done[arm]),
            "open": sum(1 for p in kept if p.arm == arm and not OrderStatus(p.status).terminal),
            "by_status": _count(p.status for p in done[arm]),
            **_sample_json([p.is_bps for p in done[arm] if p.is_bps is not None]),
        }
        for arm in ARMS
    }
    strata_doc, parts, cells = _strata(done)
    total = sum(len(v) for v in done.values())
    doc: dict[str, Any] = {
        "family": family,
        "families_changed": changed,
        "arms": arms_doc,
        "challenger_share": len(done[CHALLENGER]) / total if total else None,
        "window": {
            "since_ns": since_ns,
            "first_ns": kept[0].created_ns,
            "last_ns": kept[-1].created_ns,
            "left_out_earlier_versions": len(rows) - len(kept),
            "no_result": sum(
                1 for p in kept if OrderStatus(p.status).terminal and p.is_bps is None
            ),
        },
        "strata": strata_doc,
        "overall": None,
        "pooled": None,
    }
    if all(len(done[arm]) >= MIN_PER_ARM for arm in ARMS):
        overall = weighted_difference(
            [(1.0, _sample_of(done[CHALLENGER]), _sample_of(done[CHAMPION]))]
        )
        doc["overall"] = overall.to_json()
    sample_size: dict[str, Any] = {
        "min_effect_bps": min_effect_bps,
        "alpha": alpha,
        "power": power,
        "sd_bps": None,
        "parents_needed": None,
        "formula": "parents_needed = ((z_{1-alpha/2} + z_{power}) * sd / min_effect)^2, "
        "sd = se * sqrt(parents) of the matched difference: completed parents of both arms "
        "at this share and mix",
    }
    doc["sample_size"] = sample_size
    if not parts:
        reason = (
            f"need {MIN_PER_ARM} {UNIT} of each arm in one symbol and side (have "
            f"{_counts_text(done)})"
        )
        return {
            **doc,
            "is_diff_bps_mean": None,
            "is_diff_bps_stderr": None,
            "recommendation": "keep",
            "verdict": INCONCLUSIVE,
            "reason": reason,
        }
    n = sum(c.n + h.n for _, c, h in parts)
    pooled = weighted_difference([(w / n, c, h) for w, c, h in parts])
    stat = pooled.paired()
    needed = max(2 * MIN_PER_ARM, pairs_needed(stat.sd, min_effect_bps, alpha, power))
    sample_size.update(sd_bps=stat.sd, parents_needed=needed)
    verdict = recommend(stat, cells, n, needed, unit=UNIT)
    doc["pooled"] = {**pooled.to_json(), "strata": len(parts)}
    return {
        **doc,
        "is_diff_bps_mean": pooled.mean,
        "is_diff_bps_stderr": pooled.se,
        # CONTRACT.md's two answers, as `models compare`: a run too small to decide keeps
        # the champion, and says so in `verdict` and `reason`
        "recommendation": PROMOTE if verdict.recommendation == PROMOTE else "keep",
        "verdict": verdict.recommendation,
        "reason": verdict.reason,
    }


def _since_last_change(
    rows: Sequence[WheelParent], latest: Mapping[str, dict[str, int] | None]
) -> list[WheelParent]:
    """The parents after the last one of either arm on other versions than that arm's
    latest: one pair of model sets."""
    start = 0
    for i, p in enumerate(rows):
        if p.versions != latest[p.arm]:
            start = i + 1
    return list(rows[start:])


def _families_changed(latest: Mapping[str, dict[str, int] | None]) -> list[str]:
    a, b = latest[CHAMPION], latest[CHALLENGER]
    if a is None or b is None:
        return []
    return [f for f in FAMILIES if a.get(f) != b.get(f)]


def _strata(
    done: Mapping[str, Sequence[WheelParent]],
) -> tuple[list[dict[str, Any]], list[tuple[float, Sample, Sample]], dict[tuple[str, str], Paired]]:
    """Each (symbol, side)'s samples and difference (where both arms have enough); the
    matched strata as (parents, challenger, champion), and their differences as
    router.model_compare's cells."""
    keys = sorted({(p.symbol, p.side) for arm in ARMS for p in done[arm]})
    out, parts, cells = [], [], {}
    for symbol, side in keys:
        mine = {arm: [p for p in done[arm] if (p.symbol, p.side) == (symbol, side)] for arm in ARMS}
        row: dict[str, Any] = {"symbol": symbol, "side": side}
        for arm in ARMS:
            row[arm] = _sample_json([p.is_bps for p in mine[arm] if p.is_bps is not None])
        row["matched"] = all(len(mine[arm]) >= MIN_PER_ARM for arm in ARMS)
        if row["matched"]:
            c, h = _sample_of(mine[CHALLENGER]), _sample_of(mine[CHAMPION])
            diff = weighted_difference([(1.0, c, h)])
            row.update({k: v for k, v in diff.to_json().items() if k != "parents"})
            parts.append((float(c.n + h.n), c, h))
            cells[(symbol, side)] = diff.paired()
        out.append(row)
    return out, parts, cells


def _sample_of(parents: Sequence[WheelParent]) -> Sample:
    return sample([p.is_bps for p in parents if p.is_bps is not None])


def _sample_json(values: Sequence[float | None]) -> dict[str, Any]:
    found = [v for v in values if v is not None]
    if not found:
        return {"n": 0, "is_bps_mean": None, "is_bps_sd": None, "is_bps_stderr": None}
    s = sample(found)
    out = s.to_json()
    if s.n < 2:
        out.update(is_bps_sd=None, is_bps_stderr=None)
    return out


def _count(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def _counts_text(done: Mapping[str, Sequence[WheelParent]]) -> str:
    return ", ".join(f"{arm} {len(done[arm])}" for arm in ARMS)


def _versions_text(versions: Mapping[str, int | None]) -> str:
    return ", ".join(f"{arm} {v if v is not None else 'none'}" for arm, v in versions.items())
