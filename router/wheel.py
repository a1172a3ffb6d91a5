"""The algo wheel: live parents split at random between the champion's models and the
challenger's, so that the two can be compared on the same days' markets and flow
(router.wheel_stats: `blockroute models wheel`, GET /api/models/wheel).

Who gets which. With `[models] wheel_share` = s > 0 and a challenger's set of models
that differs from the champions' (some family's `challenger` alias on another version
than its champion; a family without a challenger serves its champion in both sets, as
`models compare FAMILY` runs it), each new parent whose strategy reads the models (`ml`,
`sor-ml`) is drawn once: u = the first 8 bytes of BLAKE2b("<wheel_seed>:<parent_id>")
as a fraction of 2^64, uniform on [0, 1); the challenger's models if u < s, else the
champion's. The draw depends on the parent's id and the seed alone, so it is the same
in every process and after any restart. The arm and the versions of its models are
journaled with the parent (svc_parents.model_arm, .model_versions); recovery takes the
arm from there and does not draw again. A parent whose strategy reads no model (twap,
sor, ...) has no arm: the wheel would only add noise to its results.

What an arm serves. The champion's arm reads the service's model registry, which a
promotion or rollback swaps live (router.hotswap); the challenger's a second registry
(`ServedSet`), loaded off the loop at the start and kept on the catalog's challengers by
the same swapper. A parent's execution (its slicer, its lit tactic's fill model, its RFQ
panel's dealer models) holds its arm's `live()` views from start to end: the wheel never
moves a parent from one set to the other. A move of an alias changes what that arm
serves to its working parents, as a promotion does today.

The wheel stops (new parents get the champion's models and no arm) while the share is
0, there is no challenger, the challenger's set is the champions', or a family of it did
not load. A recovered challenger parent that finds no challenger's set loaded (the
service restarted with the wheel off) finishes on the champion's models and leaves the
wheel: its arm is cleared (logged), so that the statistics count only what each arm ran.
"""

from __future__ import annotations

import hashlib

import structlog

from models.catalog import CHALLENGER, CHAMPION, FAMILIES
from router.domain import DomainError
from router.registry import LiveModels, ModelRegistry, ServedSet
from router.strategies import strategy_spec

log = structlog.get_logger("blockroute.models")


def wheel_draw(parent_id: str, seed: int) -> float:
    """The parent's uniform draw on [0, 1): a hash of the seed and the id (see the
    module's docstring), the same in every process (Python's own hash() is salted)."""
    digest = hashlib.blake2b(f"{seed}:{parent_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def draw_arm(parent_id: str, seed: int, share: float) -> str:
    """CHALLENGER with probability `share`, else CHAMPION, for this parent and seed."""
    return CHALLENGER if wheel_draw(parent_id, seed) < share else CHAMPION


def reads_models(strategy: str) -> bool:
    """Whether the strategy's decisions read the learned models: the model-guided
    routing (fill model, dealer models) or a slicer that loads one."""
    spec = strategy_spec(strategy)
    return spec.routing == "ml" or spec.preload is not None


def check_share(share: float) -> float:
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise DomainError(f"wheel_share must be a number from 0 to 1, got {share!r}")
    return float(share)


class ModelArms:
    """The sets of models a desk serves, and which one each parent gets.

    `champion`: the service's models (`versions` empty where they do not come from the
    model registry: then nothing is journaled of them); `challenger`: the challenger's
    set, which the service's swapper loads and keeps (None: no wheel); `share`, `seed`:
    the draw's."""

    def __init__(
        self,
        champion: ServedSet | ModelRegistry,
        challenger: ServedSet | None = None,
        *,
        share: float = 0.0,
        seed: int = 0,
    ) -> None:
        if isinstance(champion, ModelRegistry):
            champion = ServedSet(CHAMPION, champion)
        self.champion = champion
        self.challenger = challenger
        self.share = check_share(share)
        self.seed = seed

    @property
    def challenger_ready(self) -> bool:
        """The challenger's set is loaded, every family of it."""
        return self.challenger is not None and set(self.challenger.versions) >= set(FAMILIES)

    @property
    def running(self) -> bool:
        """New parents are drawn (see the module's docstring for when they are not)."""
        return (
            self.share > 0
            and self.challenger_ready
            and self.challenger is not None
            and self.challenger.versions != self.champion.versions
        )

    def assign(self, parent_id: str, strategy: str) -> tuple[str | None, dict[str, int] | None]:
        """A new parent's arm (None: not in the wheel) and the versions of the models
        it starts on (None: it reads none, or they are not the registry's).
        `strategy`: the engine strategy that runs it."""
        if not reads_models(strategy):
            return None, None
        arm = draw_arm(parent_id, self.seed, self.share) if self.running else None
        served = self.challenger if arm == CHALLENGER else self.champion
        assert served is not None
        return arm, dict(served.versions) or None

    def resume(self, parent_id: str, arm: str | None, strategy: str) -> str | None:
        """A recovered parent's arm: the journaled one, unless it is the challenger's and
        no challenger's set is loaded (see the module's docstring), or its strategy now
        reads no model (the service fell back to the heuristic router): then None."""
        if arm is None:
            return None
        why = ""
        if not reads_models(strategy):
            why = f"it runs on {strategy}, which reads no model"
        elif arm == CHALLENGER and not self.challenger_ready:
            why = "the challenger's models are not loaded: it finishes on the champion's"
        if why:
            log.warning("recovered parent leaves the algo wheel", parent_id=parent_id, why=why)
            return None
        return arm

    def models(self, arm: str | None) -> LiveModels:
        """What an execution of `arm` holds: the views of that set's models as served at
        each call (the champion's for no arm)."""
        if arm == CHALLENGER and self.challenger is not None:
            return self.challenger.registry.live()
        return self.champion.registry.live()
