"""The learned models a decision reads, held for the composition roots that build
executions (router.app, the desk) and handed to them as one object.

A running service swaps a family's models while parents work (`ModelRegistry.swap`,
router.hotswap): the new version is loaded and warmed up off the event loop
(`load_family_now`), then put in place in one assignment on the loop, between two
decisions. The desk's executions read the models through `live()`, whose objects ask
the registry for the family's current models at every call, so that a working parent's
next decision uses what is served then. The same views carry the desk's fallback
(`LiveModels.withdrawn`, router.drift): while the models are withdrawn they still score
(in the shadow: their answers keep the drift figures going) but give the decision
nothing to act on, so that it is made the heuristic router's way.

In shadow mode (router.shadow) the registry also holds a family's challenger, loaded and
put in place the same way (`set_challenger`, `clear_challenger`); the live objects hand
it to the decisions that ask them (`challenger()`), which ask it beside the champion and
act on the champion's answer only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.catalog import FAMILIES
from models.serving import artifacts
from models.serving.artifacts import ServedModel, load_family
from models.serving.predictors import FillPredictor
from models.serving.predictors import warm_up as warm_up_models
from router.ports import PassiveOrderContext
from router.shadow import Challenger
from router.strategies.learned import OBS_SIZE, OnnxPolicy, Policy, ShippedSlicer
from router.strategies.learned import warm_up as warm_up_slicer

# One family as loaded: the dealer models, the fill model, or the slicer policy
Loaded = dict[str, ServedModel] | FillPredictor | ShippedSlicer


@dataclass(frozen=True)
class Shadowed:
    """A family's challenger as the registry holds it (`ModelRegistry.set_challenger`):
    its version, its folder, the models loaded, and what a decision asks (`asked`: the
    slicer's served pace, else the models themselves)."""

    version: int
    folder: Path
    loaded: Loaded
    timer: Callable[[], float]

    @property
    def asked(self) -> Any:
        return self.loaded.served if isinstance(self.loaded, ShippedSlicer) else self.loaded


class ModelRegistry:
    """The dealer models, the fill model and the slicer policy, each loaded on first use
    from its family's folder and kept. Loading raises ModelError naming the missing or
    corrupt file and the command that rebuilds it.

    `directory`: the models' folder; None, models.serving.artifacts.MODELS_DIR as it is at the
    load (tests point it elsewhere). `families`: a folder per family ("dealer", "fill",
    "slicer") that overrides it, e.g. each family's champion in the model registry
    (router.model_admin). `repoint` changes them: what is loaded is forgotten and the
    next use loads from the new folders."""

    def __init__(
        self,
        directory: Path | None = None,
        *,
        families: Mapping[str, Path] | None = None,
        versions: Mapping[str, int] | None = None,
    ) -> None:
        self._directory = directory
        self._families = dict(families or {})
        # the registry's version of each family served, where known (the model registry's)
        self.versions: dict[str, int] = dict(versions or {})
        # shadow mode: each family's challenger, and what decisions are handed of it
        self._shadowed: dict[str, Shadowed] = {}
        self._challengers: dict[str, Challenger[Any]] = {}
        # each family loaded on its first use (sor-ml runs without the slicer)
        self._dealer: dict[str, ServedModel] | None = None
        self._fill: FillPredictor | None = None
        self._slicer: ShippedSlicer | None = None
        self._live: LiveModels | None = None

    def _dir(self, family: str) -> Path:
        if family in self._families:
            return self._families[family]
        if self._directory is not None:
            return self._directory
        return artifacts.MODELS_DIR  # read now, not at import: tests point it elsewhere

    def folders(self) -> dict[str, Path]:
        """The folder each family is (or will be) loaded from."""
        return {family: self._dir(family) for family in FAMILIES}

    def repoint(self, families: Mapping[str, Path]) -> None:
        """Load these families from these folders from now on (the others as before).
        Nothing is read here: a caller that must not serve a broken version checks it
        first (`check`)."""
        self._families.update(families)
        self.clear()

    @staticmethod
    def check(family: str, directory: Path) -> None:
        """Load one family from `directory` as serving would, and drop it: raises
        ModelError naming what is missing or corrupt."""
        ModelRegistry.load_family_now(family, directory, warm=False)

    @staticmethod
    def load_family_now(family: str, directory: Path, *, warm: bool = True) -> Loaded:
        """One family loaded from `directory` as serving loads it and, with `warm`, its
        compiled code run once (`warm_up`): what `swap` puts in place. Reads files and
        compiles for up to seconds: a running service calls it off its event loop.
        Raises ModelError naming what is missing or corrupt."""
        if family == "dealer":
            dealer = load_family("dealer", directory)
            if warm:
                warm_up_models(dealer)
            return dealer
        if family == "fill":
            fill = FillPredictor.load(directory)
            if warm:
                warm_up_models({"fill": fill.model})
            return fill
        slicer = ShippedSlicer.load(directory)
        if warm:
            obs = np.zeros(OBS_SIZE, dtype=np.float32)
            for _ in range(3):  # ONNX Runtime's first runs take milliseconds
                slicer.served(obs)
        return slicer

    def swap(
        self, family: str, directory: Path, loaded: Loaded, *, version: int | None = None
    ) -> None:
        """Serve `loaded` (`load_family_now(family, directory)`) as `family` from now on:
        one assignment, so a decision sees the old models or the new, never a mix. The
        other families stay as they are (loaded or not). `version`: its version in the
        model registry."""
        self._families[family] = directory
        if version is not None:
            self.versions[family] = version
            self._hand_out(family)
        if family == "dealer":
            assert isinstance(loaded, dict)
            self._dealer = loaded
        elif family == "fill":
            assert isinstance(loaded, FillPredictor)
            self._fill = loaded
        else:
            assert isinstance(loaded, ShippedSlicer)
            self._slicer = loaded

    # ------------------------------------------------------------------ shadow mode

    def set_challenger(
        self,
        family: str,
        version: int,
        directory: Path,
        loaded: Loaded,
        timer: Callable[[], float],
    ) -> None:
        """Ask `loaded` (`load_family_now(family, directory)`, version `version`) beside
        `family`'s champion from now on, in one assignment as `swap`; `timer`: seconds,
        for its latency."""
        self._shadowed[family] = Shadowed(version, directory, loaded, timer)
        self._hand_out(family)

    def clear_challenger(self, family: str) -> None:
        """Stop asking `family`'s challenger (if it has one)."""
        self._shadowed.pop(family, None)
        self._challengers.pop(family, None)

    def challengers(self) -> dict[str, Shadowed]:
        """The challenger of each family that has one, as held now."""
        return dict(self._shadowed)

    def challenger(self, family: str) -> Challenger[Any] | None:
        """What a decision asks of `family`'s challenger, None without one."""
        return self._challengers.get(family)

    def _hand_out(self, family: str) -> None:
        """Make what decisions are handed of `family`'s challenger (its champion's
        version with it)."""
        held = self._shadowed.get(family)
        if held is not None:
            self._challengers[family] = Challenger(
                held.asked, held.version, self.versions.get(family), held.timer
            )

    def loaded_family(self, family: str) -> Loaded | None:
        """`family`'s models as loaded now (None if they are not: nothing is read)."""
        return {"dealer": self._dealer, "fill": self._fill, "slicer": self._slicer}[family]

    def live(self) -> LiveModels:
        """The models as a running desk's executions hold them: each call asks this
        registry for the family's current models (see the module's docstring)."""
        if self._live is None:
            self._live = LiveModels(self)
        return self._live

    def _models(self) -> tuple[dict[str, ServedModel], FillPredictor]:
        # the dealer models first: the first missing artifact named is theirs
        if self._dealer is None:
            self._dealer = load_family("dealer", self._dir("dealer"))
        if self._fill is None:
            self._fill = FillPredictor.load(self._dir("fill"))
        return self._dealer, self._fill

    def _shipped_slicer(self) -> ShippedSlicer:
        if self._slicer is None:
            self._slicer = ShippedSlicer.load(self._dir("slicer"))
        return self._slicer

    def dealer_models(self) -> dict[str, ServedModel]:
        return self._models()[0]

    def fill_model(self) -> FillPredictor:
        return self._models()[1]

    def slicer_policy(self) -> Policy:
        """The pace `ml` runs: the shipped ONNX policy if its validation promotes it
        (router.strategies.learned.promotion), else the even pace (`EvenPace`)."""
        return self._shipped_slicer().served

    def shipped_slicer_policy(self) -> OnnxPolicy:
        """The shipped ONNX policy, served or not (`bench decide` times it)."""
        return self._shipped_slicer().policy

    def load(self) -> None:
        """Load the dealer and fill models now (a service at its start, a command
        before any work); the slicer policy loads on its own first use."""
        self._models()

    def warm_up(self) -> None:
        """Load everything and compile an ml decision's code before the first decision
        needs it (a live service, at its start): models.serving.predictors.warm_up, the slicer's
        observation, and the slicer policy's first runs (ONNX Runtime's take milliseconds)."""
        dealer, fill = self._models()
        warm_up_models({**dealer, "fill": fill.model})
        warm_up_slicer()
        policy, obs = self.slicer_policy(), np.zeros(OBS_SIZE, dtype=np.float32)
        for _ in range(3):
            policy(obs)

    def loaded(self) -> tuple[dict[str, ServedModel], FillPredictor] | None:
        """The dealer and fill models if they are loaded, else None: what a driver hands
        to its workers (router.backtest_ray) so that they need not read the artifacts."""
        if self._dealer is None or self._fill is None:
            return None
        return self._dealer, self._fill

    def adopt(self, loaded: tuple[dict[str, ServedModel], FillPredictor]) -> None:
        """Take the dealer and fill models another process loaded (`loaded`), in place of
        reading this registry's artifacts."""
        self._dealer, self._fill = loaded

    def clear(self) -> None:
        """Forget what was loaded: the next use loads the artifacts again."""
        self._dealer = self._fill = None
        self._slicer = None


@dataclass(eq=False)
class ServedSet:
    """One set of models a service serves under a model-registry alias: `registry`
    holds them, `versions` says which version of each family it holds now (updated in
    place when the service swaps one: router.hotswap). The champion's set trades every
    parent that the algo wheel does not give the challenger's (router.wheel)."""

    alias: str
    registry: ModelRegistry
    versions: dict[str, int] = field(default_factory=dict)
    # versions that did not load, by family: {"version": int, "error": str}
    unserved: dict[str, dict[str, Any]] = field(default_factory=dict)


class _LiveClassifier:
    """One dealer model (`name`) as served now: predicts with the registry's current one."""

    __slots__ = ("_name", "_registry")

    def __init__(self, registry: ModelRegistry, name: str) -> None:
        self._registry = registry
        self._name = name

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._registry.dealer_models()[self._name].predict(x)


class _LiveDealers(Mapping[str, _LiveClassifier]):
    """The dealer models by name, each as served now (the names of the version loaded)."""

    def __init__(self, registry: ModelRegistry) -> None:
        self._registry = registry

    def challenger(self) -> Challenger[Any] | None:
        """The dealer models' challenger (shadow mode), None without one."""
        return self._registry.challenger("dealer")

    def __getitem__(self, name: str) -> _LiveClassifier:
        if name not in self._registry.dealer_models():
            raise KeyError(name)
        return _LiveClassifier(self._registry, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry.dealer_models())

    def __len__(self) -> int:
        return len(self._registry.dealer_models())


class _LiveFill:
    """router.ports.FillModel on the registry's current fill model. Withdrawn, it
    answers NaN (no estimate): the lit tactic then takes the volume's prior, as the
    heuristic router does."""

    __slots__ = ("_registry", "_withdrawn")

    def __init__(self, registry: ModelRegistry, withdrawn: Callable[[], str]) -> None:
        self._registry = registry
        self._withdrawn = withdrawn

    def p_fill(self, orders: Sequence[PassiveOrderContext]) -> list[float]:
        p = self._registry.fill_model().p_fill(orders)  # scored in the shadow if withdrawn
        if self._withdrawn():
            return [math.nan] * len(p)
        return p

    def challenger(self) -> Challenger[Any] | None:
        """The fill model's challenger (shadow mode), None without one."""
        return self._registry.challenger("fill")


class _LivePace:
    """The slicer policy (router.strategies.learned.Policy) served now: the learned one,
    or the even pace (a = 0, the TWAP line) while the served version has not earned it
    or the models are withdrawn. An `ml` parent on it follows the pace of whatever
    version is served at each step."""

    __slots__ = ("_registry", "_withdrawn")

    def __init__(self, registry: ModelRegistry, withdrawn: Callable[[], str]) -> None:
        self._registry = registry
        self._withdrawn = withdrawn

    def __call__(self, obs: np.ndarray) -> float:
        a = self._registry.slicer_policy()(obs)
        return 0.0 if self._withdrawn() else a

    def challenger(self) -> Challenger[Any] | None:
        """The slicer's challenger's pace (shadow mode), None without one."""
        return self._registry.challenger("slicer")


class LiveModels:
    """`ModelRegistry.live()`: what a parent's execution keeps (the fill model, the
    dealer models of its RFQ panel, the slicer's pace) as objects that read the
    registry's current models at every call, so a swap reaches working parents at their
    next decision. The same methods as ModelRegistry's that executions call.

    `withdrawn`: why the desk routes without the models now ("" while it routes with
    them; router.drift's fallback sets it). Every view reads it at each call: the fill
    model answers NaN, the pace is the even one, and the model-guided panel
    (models.serving.predictors.MlPanel, given `withdrawal`) picks its dealers the
    heuristic's way; working parents go on, their next decisions made without the
    models."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.withdrawn = ""
        self._fill = _LiveFill(registry, self.withdrawal)
        self._dealers = _LiveDealers(registry)
        self._pace = _LivePace(registry, self.withdrawal)

    def withdrawal(self) -> str:
        """`withdrawn`, read now (what the views and the panel call)."""
        return self.withdrawn

    def fill_model(self) -> _LiveFill:
        return self._fill

    def dealer_models(self) -> _LiveDealers:
        return self._dealers

    def slicer_policy(self) -> Policy:
        return self._pace
