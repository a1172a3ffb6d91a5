"""`ShadowBook`: what the desk has seen of its challengers in shadow mode (router.shadow),
for GET /api/models/shadow and the dashboard.

Per family: the champion and challenger versions compared, how many askings were
shadowed and how many agreed, the challenger's latency (its model calls, over the last
`window` askings) and its latest disagreements with the champion. The figures start
again when the pair of versions compared changes (a promotion, a new challenger): an
agreement rate mixes no two challengers. They are the process's since its start (the
journal keeps every comparison on its decision rows; Prometheus counts them too).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.catalog import FAMILIES
from router.domain import ShadowAnswer

KEEP_DISAGREEMENTS = 20
LATENCY_WINDOW = 10_000


@dataclass
class _Family:
    champion_version: int | None
    challenger_version: int
    since_ns: int
    decisions: int = 0
    agreements: int = 0
    latencies_us: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    disagreements: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=KEEP_DISAGREEMENTS)
    )


class ShadowBook:
    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}
        self.askings = 0  # every asking of a challenger seen, whatever the versions

    def observe(
        self, ts_ns: int, parent_id: str, answer: ShadowAnswer, decision_ids: tuple[str, ...]
    ) -> None:
        """One asking of a challenger (a ShadowCompared event) at `ts_ns` (service clock)."""
        seen = self._families.get(answer.family)
        pair = (answer.champion_version, answer.challenger_version)
        if seen is None or (seen.champion_version, seen.challenger_version) != pair:
            seen = self._families[answer.family] = _Family(*pair, since_ns=ts_ns)
        self.askings += 1
        seen.decisions += 1
        seen.agreements += answer.agree
        seen.latencies_us.append(answer.latency_us)
        if not answer.agree:
            seen.disagreements.appendleft(
                {
                    "ts_ns": ts_ns,
                    "parent_id": parent_id,
                    "decision_ids": list(decision_ids),
                    "champion": dict(answer.champion),
                    "challenger": dict(answer.challenger),
                    "diffs": {k: [a, b] for k, (a, b) in answer.diffs.items()},
                }
            )

    def report(
        self, champions: Mapping[str, int], challengers: Mapping[str, int]
    ) -> dict[str, Any]:
        """Per family (every one, in FAMILIES order): the versions served now
        (`challengers`: those asked in shadow now) and the figures of the pair last
        compared (see the module's docstring)."""
        out = []
        for family in FAMILIES:
            seen = self._families.get(family)
            row: dict[str, Any] = {
                "family": family,
                "champion_version": champions.get(family),
                "challenger_version": challengers.get(family),
                "shadowing": family in challengers,
                "compared": None,
                "since_ns": None,
                "decisions": 0,
                "agreements": 0,
                "agreement_rate": None,
                "latency_p50_us": None,
                "latency_p99_us": None,
                "disagreements": [],
            }
            if seen is not None:
                latencies = np.array(seen.latencies_us)
                row.update(
                    compared={
                        "champion_version": seen.champion_version,
                        "challenger_version": seen.challenger_version,
                    },
                    since_ns=seen.since_ns,
                    decisions=seen.decisions,
                    agreements=seen.agreements,
                    agreement_rate=seen.agreements / seen.decisions,
                    latency_p50_us=float(np.percentile(latencies, 50)),
                    latency_p99_us=float(np.percentile(latencies, 99)),
                    disagreements=list(seen.disagreements),
                )
            out.append(row)
        return {"families": out}
