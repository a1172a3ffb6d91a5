"""The learned models a decision reads, held for the composition roots that build
executions (router.app, the desk) and handed to them as one object."""

from __future__ import annotations

from models.artifacts import ServedModel, load_family
from models.serving import FillPredictor
from models.serving import warm_up as warm_up_models
from router.strategies.learned import warm_up as warm_up_slicer


class ModelRegistry:
    """The dealer models and the fill model, loaded together on first use from
    models.artifacts.MODELS_DIR (read then: tests point it elsewhere) and kept.
    Loading raises ModelError naming the missing or corrupt file and the command that
    rebuilds it."""

    def __init__(self) -> None:
        self._loaded: tuple[dict[str, ServedModel], FillPredictor] | None = None

    def _models(self) -> tuple[dict[str, ServedModel], FillPredictor]:
        if self._loaded is None:
            from models import artifacts

            # the dealer models first: the first missing artifact named is theirs
            dealer = load_family("dealer", artifacts.MODELS_DIR)
            self._loaded = (dealer, FillPredictor.load(artifacts.MODELS_DIR))
        return self._loaded

    def dealer_models(self) -> dict[str, ServedModel]:
        return self._models()[0]

    def fill_model(self) -> FillPredictor:
        return self._models()[1]

    def load(self) -> None:
        """Load the models now (a service at its start, a command before any work)."""
        self._models()

    def warm_up(self) -> None:
        """Compile an ml decision's code before the first decision needs it (a live
        service, at its start): models.serving.warm_up and the slicer's observation."""
        dealer, fill = self._models()
        warm_up_models({**dealer, "fill": fill.model})
        warm_up_slicer()

    def clear(self) -> None:
        """Forget what was loaded: the next use loads the artifacts again."""
        self._loaded = None
