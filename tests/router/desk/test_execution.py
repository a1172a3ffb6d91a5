"""Executions wired on the desk's markets: every strategy a client may name, and the
served models (loaded and compiled at start, or a fallback the config asks for)."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.desk_api import (
    OrderStatus,
)
from router.service import simulated_desk
from tests.router.desk.support import (
    SPEED,
    order,
    until,
)


async def test_every_strategy_a_client_may_name_runs(tmp_path: Path) -> None:
    async with simulated_desk(tmp_path, SPEED) as desk:
        before = desk.metrics()
        ids = []
        for name in ("twap", "vwap", "ac", "sor", "ml", None):
            ids.append(desk.submit(order(desk, f"S-{name}", qty=10_000, strategy=name)).parent_id)
        pov = desk.submit(order(desk, "S-pov", qty=5_000, strategy="pov", participation=0.2))
        ids.append(pov.parent_id)
        await until(lambda: all(desk.parent(p).status.terminal for p in ids), timeout=40)
        views = [desk.parent(p) for p in ids]
        assert [v.strategy for v in views] == ["twap", "vwap", "ac", "sor", "ml", "ml", "pov"]
        assert all(v.status is OrderStatus.FILLED for v in views), [v.status for v in views]
        # the ml orders scored their passive options with the fill model; every served
        # model reports the rows it scored and the feature values it clipped
        after = desk.metrics()
        assert after["model_fill_rows_total"] > before["model_fill_rows_total"]
        for name in ("dealer_respond", "dealer_best", "dealer_hit", "fill"):
            rows, clipped = after[f"model_{name}_rows_total"], after[f"model_{name}_clipped_total"]
            assert clipped >= before[f"model_{name}_clipped_total"] >= 0
            assert rows >= before[f"model_{name}_rows_total"]


async def test_missing_models_stop_the_start_unless_the_config_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.serving import artifacts
    from models.serving.artifacts import ModelError
    from router import app

    monkeypatch.setattr(artifacts, "MODELS_DIR", tmp_path / "nothing")
    app.MODELS.clear()
    try:
        with pytest.raises(ModelError, match="blockroute train"):
            async with simulated_desk(tmp_path, SPEED):
                pass
        async with simulated_desk(tmp_path, SPEED, model_fallback=True) as desk:
            assert "nothing" in desk.models_missing
            assert desk.metrics()["models_fallback"] == 1.0
            view = desk.submit(order(desk, "F1", qty=5_000, strategy="ml"))
            assert view.strategy == "ml"  # as asked; routed by the heuristic router
            await until(lambda: desk.parent(view.parent_id).status.terminal)
            assert desk.parent(view.parent_id).filled_qty == 5_000
    finally:
        app.MODELS.clear()


async def test_the_start_compiles_the_ml_decision_before_any_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # with an empty numba cache the first ml decision would otherwise compile for about
    # a second inside the event loop
    from router import app

    warmed: list[bool] = []
    monkeypatch.setattr(app.MODELS, "warm_up", lambda: warmed.append(True))
    async with simulated_desk(tmp_path, SPEED) as desk:
        assert warmed == [True] and desk.ready
