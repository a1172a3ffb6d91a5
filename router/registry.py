"""The learned models a decision reads, held for the composition roots that build
executions (router.app, the desk) and handed to them as one object."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from models.catalog import FAMILIES
from models.serving import artifacts
from models.serving.artifacts import ServedModel, load_family
from models.serving.predictors import FillPredictor
from models.serving.predictors import warm_up as warm_up_models
from router.strategies.learned import OBS_SIZE, OnnxPolicy, Policy, ShippedSlicer
from router.strategies.learned import warm_up as warm_up_slicer


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
        self, directory: Path | None = None, *, families: Mapping[str, Path] | None = None
    ) -> None:
        self._directory = directory
        self._families = dict(families or {})
        self._loaded: tuple[dict[str, ServedModel], FillPredictor] | None = None
        # apart from the others: sor-ml runs on the models without the slicer
        self._slicer: ShippedSlicer | None = None

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
        if family == "dealer":
            load_family("dealer", directory)
        elif family == "fill":
            FillPredictor.load(directory)
        else:
            ShippedSlicer.load(directory)

    def _models(self) -> tuple[dict[str, ServedModel], FillPredictor]:
        if self._loaded is None:
            # the dealer models first: the first missing artifact named is theirs
            dealer = load_family("dealer", self._dir("dealer"))
            self._loaded = (dealer, FillPredictor.load(self._dir("fill")))
        return self._loaded

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
        return self._loaded

    def adopt(self, loaded: tuple[dict[str, ServedModel], FillPredictor]) -> None:
        """Take the dealer and fill models another process loaded (`loaded`), in place of
        reading this registry's artifacts."""
        self._loaded = loaded

    def clear(self) -> None:
        """Forget what was loaded: the next use loads the artifacts again."""
        self._loaded = None
        self._slicer = None
