"""The algo wheel (router.wheel): the draw is reproducible and has the configured share;
and on a desk over a real model registry (SQLite, a challenger registered as a copy of
the shipped files), parents are split, each one's execution runs on its arm's models to
the end, the journal and the parent's view say which, and recovery keeps the arm."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from models.catalog import CHALLENGER, CHAMPION
from models.serving.artifacts import MODELS_DIR, family_files
from router.domain import DomainError, Side
from router.registry import ModelRegistry, ServedSet
from router.wheel import ModelArms, check_share, draw_arm, reads_models, wheel_draw

NOW_NS = 1_800_000_000_000_000_000

# ------------------------------------------------------------------ the draw


def test_the_draw_is_a_function_of_the_id_and_the_seed() -> None:
    ids = [f"P{i:07d}" for i in range(1, 201)]
    first = [wheel_draw(pid, 7) for pid in ids]
    assert first == [wheel_draw(pid, 7) for pid in ids]  # again: the same
    assert all(0.0 <= u < 1.0 for u in first)
    other = [wheel_draw(pid, 8) for pid in ids]
    assert sum(a != b for a, b in zip(first, other, strict=True)) == len(ids)
    # the documented formula, so that a change of the hash (which would move every
    # parent of a running wheel at its next start) cannot pass unseen
    digest = hashlib.blake2b(b"1:P0000001", digest_size=8).digest()
    assert wheel_draw("P0000001", 1) == int.from_bytes(digest, "big") / 2**64


@pytest.mark.parametrize(("share", "seed"), [(0.5, 1), (0.2, 2), (0.05, 3)])
def test_the_share_drawn_is_the_configured_one_within_three_sigma(share: float, seed: int) -> None:
    n = 10_000
    drawn = sum(draw_arm(f"P{i:07d}", seed, share) == CHALLENGER for i in range(1, n + 1))
    sigma = math.sqrt(n * share * (1 - share))
    assert abs(drawn - n * share) <= 3 * sigma, (drawn, n * share, sigma)


def test_no_share_draws_nobody_and_a_whole_share_everybody() -> None:
    ids = [f"P{i:07d}" for i in range(1, 1001)]
    assert {draw_arm(pid, 1, 0.0) for pid in ids} == {CHAMPION}
    assert {draw_arm(pid, 1, 1.0) for pid in ids} == {CHALLENGER}


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, "0.5", True])
def test_a_share_outside_zero_to_one_is_refused(bad: Any) -> None:
    with pytest.raises(DomainError, match="wheel_share must be a number from 0 to 1"):
        check_share(bad)


def test_only_strategies_that_read_the_models_are_in_the_wheel() -> None:
    assert [
        s for s in ("twap", "vwap", "pov", "ac", "sor", "sor-lit", "risk-bid") if reads_models(s)
    ] == []
    assert reads_models("ml") and reads_models("sor-ml")


# ------------------------------------------------------------------ the arms


def _arms(share: float, challenger: dict[str, int] | None) -> ModelArms:
    """Arms on two unloaded registries with these versions (the draw needs no model)."""
    champion = ServedSet(CHAMPION, ModelRegistry(), {"dealer": 1, "fill": 1, "slicer": 1})
    chall = None if challenger is None else ServedSet(CHALLENGER, ModelRegistry(), challenger)
    return ModelArms(champion, chall, share=share, seed=5)


def test_a_parent_is_drawn_only_while_a_different_challenger_is_loaded() -> None:
    v2 = {"dealer": 2, "fill": 1, "slicer": 1}
    running = _arms(1.0, v2)
    assert running.running
    assert running.assign("P0000001", "ml") == (CHALLENGER, v2)
    assert running.assign("P0000001", "twap") == (None, None)  # reads no model
    champion = {"dealer": 1, "fill": 1, "slicer": 1}
    for arms in (
        _arms(0.0, v2),  # off
        _arms(1.0, None),  # no challenger's set
        _arms(1.0, dict(champion)),  # the challenger's set is the champions'
        _arms(1.0, {"dealer": 2, "fill": 1}),  # a family did not load
    ):
        assert not arms.running
        assert arms.assign("P0000001", "ml") == (None, champion)
    # the service without a model registry: no versions to journal
    plain = ModelArms(ModelRegistry())
    assert plain.assign("P0000001", "ml") == (None, None)


def test_a_recovered_parent_keeps_its_arm_unless_its_models_are_gone() -> None:
    arms = _arms(0.5, {"dealer": 2, "fill": 1, "slicer": 1})
    assert arms.resume("P1", CHALLENGER, "ml") == CHALLENGER
    assert arms.models(CHALLENGER) is arms.challenger.registry.live()  # type: ignore[union-attr]
    assert arms.resume("P2", CHAMPION, "ml") == CHAMPION
    assert arms.models(CHAMPION) is arms.champion.registry.live()
    assert arms.resume("P3", None, "ml") is None
    # the service fell back to the heuristic router: the parent reads no model any more
    assert arms.resume("P4", CHALLENGER, "sor") is None
    # restarted with the wheel off: the challenger's parent finishes on the champion's
    off = _arms(0.0, None)
    assert off.resume("P1", CHALLENGER, "ml") is None
    assert off.resume("P2", CHAMPION, "ml") == CHAMPION


# ------------------------------------------------------------------ on a desk


def copy_of(folder: Path, family: str) -> Path:
    """A training run's output: the shipped files of `family`."""
    out = folder / f"trained-{family}"
    out.mkdir(parents=True)
    for path in family_files(family, MODELS_DIR):
        shutil.copy(path, out / path.name)
    return out


@pytest.fixture
def admin(registry_db_url: str, tmp_path: Path) -> Iterator[Any]:
    """A model registry whose dealer and fill challengers are version 2 (copies of the
    shipped files: what differs is which loaded objects serve them)."""
    from router.model_admin import open_admin

    clock = itertools.count(NOW_NS, 1_000_000_000)
    a = open_admin(registry_db_url, lambda: next(clock))
    a.register("dealer", copy_of(tmp_path / "v2", "dealer"), "ci", "trained", {})
    a.register("fill", copy_of(tmp_path / "v2", "fill"), "ci", "trained", {})
    yield a
    a.close()


async def _wheel(admin: Any, share: float) -> tuple[ModelArms, Any]:
    """The service's arms (router.service.model_arms) and its swapper, synced once: the
    challenger's set loaded, as `serve` does before its desk starts."""
    import time

    from router.hotswap import ModelSwapper
    from router.service import model_arms

    served = admin.serving()
    arms = model_arms(admin, served, share, seed=11)
    swapper = ModelSwapper(
        admin, served, now_ns=time.time_ns, timer=time.perf_counter, challenger=arms.challenger
    )
    await swapper.sync()
    return arms, swapper


class Built:
    """Which models each parent's execution was built with: the wiring's calls to the
    one builder (and to the market session's ports, for the ml panel's dealer models)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import router.desk.execution as wiring
        from router.desk.sim import SimMarketSession

        self.execution: dict[str, Any] = {}
        self.panel: dict[str, Any] = {}
        build, ports = wiring.build_execution, SimMarketSession.parent_ports

        def spy_build(parent: Any, slicer: Any, spec: Any, p: Any, models: Any, **kw: Any) -> Any:
            self.execution[str(parent.parent_id)] = models
            return build(parent, slicer, spec, p, models, **kw)

        def spy_ports(session: Any, pid: str, routing: str, rfq: bool, models: Any = None) -> Any:
            self.panel[pid] = models
            return ports(session, pid, routing, rfq, models)

        monkeypatch.setattr(wiring, "build_execution", spy_build)
        monkeypatch.setattr(SimMarketSession, "parent_ports", spy_ports)


def _rows(url: str) -> dict[str, Any]:
    from router.journal import Journal

    journal = Journal.open(url)
    try:
        return {r.parent_id: r for r in journal.parents()}
    finally:
        journal.close()


def _fill_rows(registry: ModelRegistry) -> int:
    """Rows the registry's loaded fill model has scored (its own counter)."""
    fill = registry.loaded_family("fill")
    assert fill is not None
    return int(fill.model.clipper.rows)  # type: ignore[union-attr]


def _dealer_rows(registry: ModelRegistry) -> int:
    """Rows the registry's loaded dealer models have scored (the ml panel's choices)."""
    dealer = registry.loaded_family("dealer")
    assert isinstance(dealer, dict)
    return sum(int(m.clipper.rows) for m in dealer.values())


@pytest.mark.requires_extra("registry", "mlflow")
async def test_parents_are_split_and_each_runs_on_its_arms_models(
    admin: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from router.service import simulated_desk
    from tests.router.desk.support import SPEED, order, until

    arms, _ = await _wheel(admin, 0.5)
    assert arms.running
    assert arms.champion.versions == {"dealer": 1, "fill": 1, "slicer": 1}
    assert arms.challenger is not None
    assert arms.challenger.versions == {"dealer": 2, "fill": 2, "slicer": 1}
    registries = {CHAMPION: arms.champion.registry, CHALLENGER: arms.challenger.registry}
    assert registries[CHALLENGER].loaded_family("fill") is not (
        registries[CHAMPION].loaded_family("fill")
    )
    built = Built(monkeypatch)
    async with simulated_desk(tmp_path, SPEED, wheel=arms) as desk:
        scored = {a: _fill_rows(r) for a, r in registries.items()}  # their warm-ups'
        views = [
            desk.submit(order(desk, f"W{i}", qty=40_000, horizon_s=180, strategy=s, side=side))
            for i, (s, side) in enumerate(
                itertools.islice(
                    itertools.cycle(itertools.product(("ml", "sor-ml"), (Side.BUY, Side.SELL))),
                    16,
                )
            )
        ]
        views.append(desk.submit(order(desk, "T1", strategy="twap")))
        pids = [v.parent_id for v in views]
        await until(lambda: all(desk.parent(p).status.terminal for p in pids), 60)
        shown = {p: desk.parent(p) for p in pids}
    rows = _rows(f"sqlite:///{tmp_path / 'blockroute.db'}")
    drawn = {p: draw_arm(p, 11, 0.5) for p in pids[:-1]}
    assert set(drawn.values()) == {CHAMPION, CHALLENGER}  # both arms have parents
    versions = {CHAMPION: arms.champion.versions, CHALLENGER: arms.challenger.versions}
    for pid, arm in drawn.items():
        # journaled, shown, and what the execution and its dealer panel read
        assert rows[pid].model_arm == arm
        assert json.loads(rows[pid].model_versions) == versions[arm]
        assert (shown[pid].model_arm, shown[pid].model_versions) == (arm, versions[arm])
        assert shown[pid].to_json()["model_versions"] == versions[arm]
        assert built.execution[pid] is registries[arm].live()
        assert built.panel[pid] is registries[arm].live()
    # the twap parent reads no model: not in the wheel
    assert (rows[pids[-1]].model_arm, rows[pids[-1]].model_versions) == (None, None)
    # both arms' own loaded models scored their parents' passive orders
    assert all(_fill_rows(r) > scored[a] for a, r in registries.items())


@pytest.mark.requires_extra("registry", "mlflow")
async def test_at_a_whole_share_the_champions_models_score_nothing(
    admin: Any, tmp_path: Path
) -> None:
    """Every ml parent on the challenger's arm: nothing reads the champion's models
    behind the wheel's back (the panel's selector, the slicer, the lit tactic)."""
    from router.service import simulated_desk
    from tests.router.desk.support import SPEED, order, until

    arms, _ = await _wheel(admin, 1.0)
    assert arms.challenger is not None
    registries = (arms.champion.registry, arms.challenger.registry)
    async with simulated_desk(tmp_path, SPEED, wheel=arms) as desk:
        scored = [(f(r), f, r) for f in (_fill_rows, _dealer_rows) for r in registries]
        pids = [
            desk.submit(order(desk, f"A{i}", qty=q, horizon_s=180, strategy="ml")).parent_id
            for i, q in enumerate((40_000, 40_000, 300_000, 300_000))
        ]
        await until(lambda: all(desk.parent(p).status.terminal for p in pids), 60)
        assert {desk.parent(p).model_arm for p in pids} == {CHALLENGER}
        for before, count, registry in scored:
            if registry is arms.champion.registry:
                assert count(registry) == before, count.__name__
            else:  # the lit tactic's fill model, the ml panel's dealer models
                assert count(registry) > before, count.__name__


@pytest.mark.requires_extra("registry", "mlflow")
async def test_recovery_keeps_each_parents_arm_and_its_models(
    admin: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from router.service import simulated_desk
    from tests.router.desk.support import SPEED, order

    arms, _ = await _wheel(admin, 0.5)
    assert arms.challenger is not None
    async with simulated_desk(tmp_path, SPEED, wheel=arms) as desk:
        # long enough to be working when the desk stops: recovered at the next start
        pids = [
            desk.submit(order(desk, f"R{i}", qty=40_000, horizon_s=3600, strategy="ml")).parent_id
            for i in range(8)
        ]
    before = {p: r.model_arm for p, r in _rows(f"sqlite:///{tmp_path / 'blockroute.db'}").items()}
    assert set(before.values()) == {CHAMPION, CHALLENGER}
    registries = {CHAMPION: arms.champion.registry, CHALLENGER: arms.challenger.registry}

    built = Built(monkeypatch)
    async with simulated_desk(tmp_path, SPEED, wheel=arms) as desk:
        for pid in pids:
            assert not desk.parent(pid).status.terminal
            assert desk.parent(pid).model_arm == before[pid]
            assert built.execution[pid] is registries[before[pid]].live()

    # restarted with the wheel off (no challenger's set): the challenger's parents
    # finish on the champion's models and leave the wheel; the champion's keep theirs
    off = ModelArms(arms.champion)
    built = Built(monkeypatch)
    async with simulated_desk(tmp_path, SPEED, wheel=off) as desk:
        for pid in pids:
            expected = CHAMPION if before[pid] == CHAMPION else None
            assert desk.parent(pid).model_arm == expected
            assert built.execution[pid] is arms.champion.registry.live()
    after = _rows(f"sqlite:///{tmp_path / 'blockroute.db'}")
    assert {p: after[p].model_arm for p in pids} == {
        p: (CHAMPION if a == CHAMPION else None) for p, a in before.items()
    }
