"""The model catalog: every trained artifact family (dealer, fill, slicer) as numbered
versions with metrics, parameters and lineage, and the aliases `champion` (what the
service serves) and `challenger` (the next candidate).

This module holds what the catalog means, with no storage: the version record, the
errors (each names the field at fault, so that the CLI and the HTTP API can say which
input was wrong), the `Catalog` protocol that a store implements (MLflow's registry:
models/mlflow_catalog.py), and what a version records of a family's metadata file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from math import isfinite
from pathlib import Path
from typing import Any, Protocol

FAMILIES = ("dealer", "fill", "slicer")
CHAMPION = "champion"
CHALLENGER = "challenger"
ALIASES = (CHAMPION, CHALLENGER)
# The first version of each family: the artifacts shipped under models/
SHIPPED_VERSION = 1


class CatalogError(ValueError):
    """Bad input to the catalog: `field` names the input at fault ("family", "version",
    "alias", "reason", ...). `kind`: "missing" (it names something that does not
    exist), "invalid" (it is not acceptable, e.g. a version whose files do not load) or
    "conflict" (it cannot be done now: nothing to roll back to)."""

    def __init__(self, message: str, field: str, *, kind: str = "missing") -> None:
        super().__init__(message)
        self.field = field
        self.kind = kind


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a family. `source`: where its files are (an artifact
    URI); `created`: ISO 8601, UTC; `params`: the training's seeds and arguments;
    `lineage`: what it came from (the command, the champion it was meant to replace,
    the code version)."""

    family: str
    version: int
    aliases: tuple[str, ...]
    metrics: dict[str, float]
    source: str
    created: str
    description: str = ""
    params: dict[str, str] = field(default_factory=dict)
    lineage: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The row of `models list` (CONTRACT.md)."""
        return {
            "family": self.family,
            "version": self.version,
            "aliases": list(self.aliases),
            "metrics": dict(self.metrics),
            "source": self.source,
            "created": self.created,
        }

    def to_json(self) -> dict[str, Any]:
        """Everything: `models show`, GET /api/models/{family}/versions/{version}."""
        return {
            **self.summary(),
            "description": self.description,
            "params": dict(self.params),
            "lineage": dict(self.lineage),
        }


class Catalog(Protocol):
    """A store of versions and aliases. Reads raise CatalogError for an unknown family
    or version; writes change one thing or nothing."""

    def versions(self, family: str) -> list[ModelVersion]:
        """Oldest first; [] if the family has none yet."""
        ...

    def version(self, family: str, version: int) -> ModelVersion: ...

    def alias(self, family: str, alias: str) -> int | None:
        """The version that holds `alias`, None if none does."""
        ...

    def set_alias(self, family: str, alias: str, version: int) -> None: ...

    def delete_alias(self, family: str, alias: str) -> None: ...

    def register(self, family: str, files: Sequence[Path], record: VersionRecord) -> int:
        """Copy a family's `files` into the store as a new version; returns its number."""
        ...

    def files(self, family: str, version: int) -> Path:
        """A local folder holding the version's files (the store's own where it is
        local, else a download)."""
        ...


@dataclass(frozen=True)
class VersionRecord:
    """What a new version records besides its files."""

    description: str
    metrics: dict[str, float]
    params: dict[str, str]
    lineage: dict[str, str]


def check_family(family: str) -> str:
    if family not in FAMILIES:
        raise CatalogError(
            f"unknown model family {family!r} (known: {', '.join(FAMILIES)})", "family"
        )
    return family


def check_alias(alias: str) -> str:
    if alias not in ALIASES:
        raise CatalogError(f"unknown alias {alias!r} (known: {', '.join(ALIASES)})", "alias")
    return alias


def record_from_meta(
    family: str, meta: Mapping[str, Any], params: Mapping[str, object] | None = None
) -> VersionRecord:
    """What a family's metadata file (`<family>.meta.json`, written by `blockroute
    train`) says of its version: the held-out metrics (dealer and fill: per model, e.g.
    `respond.auc`; slicer: its paired validation and the ONNX parity), the training
    data's description, and the seeds and arguments (`params` adds to those the meta
    names)."""
    source = meta.get("validation", {}) if family == "slicer" else meta.get("metrics", {})
    metrics = _numbers(source)
    if family == "slicer":
        metrics.update(_numbers(meta.get("parity", {}), "parity."))
    training = meta.get("training", {})
    found: dict[str, str] = {}
    for key in ("seed", "seeds", "episode_seeds", "days_per_scenario", "episodes_per_scenario"):
        if key in training:
            found[key] = _text(training[key])
    if "rounds" in meta:
        found["rounds"] = _text(meta["rounds"])
    found.update({k: _text(v) for k, v in (params or {}).items()})
    command = str(meta.get("created_by", ""))
    lineage = {"created_by": command} if command else {}
    # trained on a service journal (`train ... --from-journal`): which one (its URL
    # without a password), the time range and the rows it gave
    journal = training.get("journal")
    if isinstance(journal, Mapping):
        lineage.update({f"journal.{k}": _text(v) for k, v in journal.items() if v is not None})
        if "rows_simulated" in training:
            lineage["rows_simulated"] = _text(training["rows_simulated"])
    return VersionRecord(
        description=json.dumps(training, sort_keys=True)[:5000],  # MLflow's text limit
        metrics=metrics,
        params=found,
        lineage=lineage,
    )


def _numbers(table: object, prefix: str = "") -> dict[str, float]:
    """The finite numbers of a (nested) table, keyed by dotted path; lists are left out
    (seed ranges, curves)."""
    out: dict[str, float] = {}
    if not isinstance(table, Mapping):
        return out
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_numbers(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool) and isfinite(value):
            out[name] = float(value)
    return out


def _text(value: object) -> str:
    # MLflow keeps a parameter as text of at most 6000 characters
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text[:6000]


# ------------------------------------------------------------------ the guard rail

# What "worse on the held-out set" means, per family, from the metrics a version records
# (`record_from_meta`): (how a metric's key ends, True if higher is better, the margin
# that still counts as a tie). Dealer and fill: every model's held-out AUC (ranking:
# which dealers to ask, which queues to join) and its ECE, which counts as well because
# the panel and the lit tactic use the probabilities as numbers (expected fills), not
# only their order. Slicer: the paired validation's mean IS difference against the even
# pace on the same episodes (bps, lower is better). The margins only absorb ties and
# rounding (a version retrained on the same data): the guard errs on the side of asking
# a person, who can promote with force and a reason.
GUARDS: dict[str, tuple[tuple[str, bool, float], ...]] = {
    "dealer": ((".auc", True, 0.001), (".ece", False, 0.005)),
    "fill": ((".auc", True, 0.001), (".ece", False, 0.005)),
    "slicer": (("diff_is_bps", False, 0.05),),
}


@dataclass(frozen=True)
class Shortfall:
    """A held-out metric on which a challenger is worse than the champion."""

    metric: str
    challenger: float | None  # None: the challenger has no such figure
    champion: float

    def __str__(self) -> str:
        if self.challenger is None:
            return f"{self.metric}: none recorded (the champion's is {self.champion:.4f})"
        return f"{self.metric} {self.challenger:.4f} vs the champion's {self.champion:.4f}"


def shortfalls(
    family: str, challenger: Mapping[str, float], champion: Mapping[str, float]
) -> list[Shortfall]:
    """Every guarded metric (GUARDS) of the champion on which `challenger` is worse, in
    key order; a figure the champion has and the challenger lacks counts as worse (it
    cannot show it is not). Metrics the champion lacks are not compared."""
    out = []
    for key in sorted(champion):
        for suffix, higher_better, margin in GUARDS[check_family(family)]:
            if key != suffix and not key.endswith(suffix):
                continue
            theirs, ours = champion[key], challenger.get(key)
            if ours is None:
                out.append(Shortfall(key, None, theirs))
            elif (theirs - ours if higher_better else ours - theirs) > margin:
                out.append(Shortfall(key, ours, theirs))
    return out
