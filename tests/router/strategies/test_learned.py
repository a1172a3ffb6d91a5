"""The learned slicer: its observation, its pacing, the ONNX policy that serves it, the
loading of the shipped artifacts, the `ml` strategy end to end without torch, and the
report's chart of its behaviour."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import router.app as app
from models.serving import artifacts
from models.serving.artifacts import ModelError
from router.cli import main
from router.domain import NANOS_PER_SECOND, ParentId, ParentOrder, Side, Symbol, VenueId
from router.ports import ExecutionState, MarketHistory, MarketSnapshot, VenueQuote
from router.registry import ModelRegistry
from router.reporting import render_simulate_html
from router.strategies import strategy_spec
from router.strategies.learned import (
    CLIP,
    OBS_NAMES,
    OBS_SIZE,
    PACE_RANGE,
    PACING,
    SESSION_S,
    STEP_S,
    EvenPace,
    ObservationBuilder,
    OnnxPolicy,
    PacedSlicer,
    _log_return_sd,
    load_slicer_policy,
    promotion,
)
from router.strategies.twap import TwapSlicer

REPO = Path(__file__).resolve().parents[3]
S = NANOS_PER_SECOND
QTY = 100_000
HORIZON_S = 3600.0
HISTORY = MarketHistory(
    symbol=Symbol("QDI"),
    tick_size=0.01,
    price=100.0,
    adv=2_000_000.0,
    daily_vol=0.015,
    spread=0.05,
    impact_y=0.84,
    bucket_s=300.0,
    volume_profile=(1.0,),
    horizon_volume=36_000.0,  # 10 shares/s
)
OBS = {name: i for i, name in enumerate(OBS_NAMES)}


def _parent(side: Side = Side.SELL) -> ParentOrder:
    return ParentOrder(ParentId("P-1"), Symbol("QDI"), side, QTY, 0, int(HORIZON_S * S))


def _snap(
    t_s: float,
    bid: int | None = 9_998,
    ask: int | None = 10_002,
    volume: int = 0,
    bid_depth: int = 2_000,
    ask_depth: int = 2_000,
) -> MarketSnapshot:
    quote = VenueQuote(VenueId("LITA"), bid, 500, ask, 500, bid_depth, ask_depth)
    return MarketSnapshot(
        int(t_s * S),
        Symbol("QDI"),
        0.01,
        bid,
        ask,
        bid_depth,
        ask_depth,
        (quote,),
        None,
        volume,
        0.0,
    )


def _state(side: Side, t_s: float, filled: int, snap: MarketSnapshot) -> ExecutionState:
    return ExecutionState(_parent(side), int(t_s * S), filled, snap)


# ----------------------------------------------------------------------------- observation


def _observe_after_a_drop(side: Side) -> np.ndarray:
    """Mid 100.00 at arrival, 99.50 five minutes later; 6,000 shares traded (twice the
    expected volume), 10,000 filled, bids three times as deep as asks."""
    builder = ObservationBuilder(HISTORY)
    builder.record(_state(side, 0.0, 0, _snap(0.0)))
    later = _state(side, 300.0, 10_000, _snap(300.0, 9_948, 9_952, 6_000, 3_000, 1_000))
    builder.record(later)
    return builder.observe(later)


def test_observation_values_on_a_hand_made_market():
    obs = _observe_after_a_drop(Side.SELL)
    sigma_5m = 0.015 * math.sqrt(STEP_S / SESSION_S)
    expected = {
        "inventory_left": 0.9,
        "time_left": 1 - 300 / 3600,
        "schedule_gap": (10_000 - QTY * 300 / 3600) / QTY,
        "spread": math.log(0.04 / 0.05),
        "imbalance": (3_000 - 1_000) / 4_000,  # a seller wants the bids (contra) deep
        "volatility": 0.0,  # two samples are too few to measure it
        "return_5m": -0.005 / sigma_5m,  # a falling price hurts a seller
        "return_30s": -CLIP,  # -9.3 thirty-second sigmas, clipped
        "price_vs_arrival": -0.005 / sigma_5m,
        "volume_rate": math.log(6_000 / 3_000),
        "fill_rate": 10_000 / (QTY * 300 / 3600),
        "pace": 0.0,
        "schedule_lead": 0.0,  # the slicer sets it; a bare builder has none
        "side": -1.0,  # a sell: the one feature not signed in the parent's favour
    }
    assert obs.dtype == np.float32 and obs.shape == (OBS_SIZE,)
    assert set(expected) == set(OBS_NAMES)
    for name, value in expected.items():
        assert obs[OBS[name]] == pytest.approx(value, rel=1e-5, abs=1e-6), name


def test_observation_reads_the_samples_of_its_windows_from_a_long_memory():
    """A sample every 10 s for 15 minutes, the mid zigzagging up: the 5-minute return
    compares with the sample 300 s back, the 30-s one with that 30 s back, and the
    volatility reads exactly the samples of the last 5 minutes."""
    builder = ObservationBuilder(HISTORY)  # ten minutes of memory

    def up(k: int) -> int:  # ticks
        return k + 3 * (k % 2)

    for k in range(91):
        t = 10.0 * k
        builder.record(_state(Side.SELL, t, 0, _snap(t, 9_998 + up(k), 10_002 + up(k))))
    now = _state(Side.SELL, 905.0, 0, _snap(905.0, 9_998 + up(90), 10_002 + up(90)))
    obs = builder.observe(now)

    def mid(k: int) -> float:
        return (9_998 + 10_002 + 2 * up(k)) / 2 * 0.01

    def sigma(seconds: float) -> float:
        return 0.015 * math.sqrt(seconds / SESSION_S)

    # a seller: a rising price helps. 905 s: the samples at 600 s and 870 s
    assert obs[OBS["return_5m"]] == pytest.approx((mid(90) / mid(60) - 1) / sigma(STEP_S))
    assert obs[OBS["return_30s"]] == pytest.approx(min(CLIP, (mid(90) / mid(87) - 1) / sigma(30.0)))
    recent = np.array([mid(k) for k in range(61, 91)])  # 610 s to 900 s
    realised = _log_return_sd(recent) / math.sqrt(STEP_S / 29 / SESSION_S)
    assert obs[OBS["volatility"]] == pytest.approx(math.log(realised / 0.015), rel=1e-5)


def test_observation_signs_mirror_for_a_buyer():
    sell, buy = _observe_after_a_drop(Side.SELL), _observe_after_a_drop(Side.BUY)
    for name in ("imbalance", "return_5m", "return_30s", "price_vs_arrival"):
        assert sell[OBS[name]] == pytest.approx(-buy[OBS[name]]), name
    assert buy[OBS["return_5m"]] > 0  # a falling price helps a buyer
    assert buy[OBS["imbalance"]] < 0  # deep bids are competition for a buyer
    for name in ("inventory_left", "time_left", "schedule_gap", "spread", "volume_rate"):
        assert sell[OBS[name]] == buy[OBS[name]], name


def test_observation_is_clipped_and_finite_on_wild_or_empty_markets():
    builder = ObservationBuilder(HISTORY)
    builder.record(_state(Side.BUY, 0.0, 0, _snap(0.0)))
    for k in range(1, 11):  # swings of 30% every 30 s, ending up; a torrent of volume
        t, up = 30.0 * k, 3_000 * (k % 2 or k == 10)
        builder.record(_state(Side.BUY, t, 0, _snap(t, 9_998 + up, 10_002 + up, 10**9)))
    obs = builder.observe(_state(Side.BUY, 300.0, 0, _snap(300.0, 12_998, 13_002, 10**9)))
    assert np.all(np.abs(obs) <= CLIP)
    assert obs[OBS["return_5m"]] == -CLIP and obs[OBS["volume_rate"]] == CLIP
    assert obs[OBS["volatility"]] == CLIP
    # no book at all, nothing recorded yet: still numbers
    empty = _snap(60.0, None, None, 0, 0, 0)
    fresh = ObservationBuilder(HISTORY)
    fresh.record(_state(Side.SELL, 60.0, 0, empty))
    obs = fresh.observe(_state(Side.SELL, 60.0, 0, empty))
    assert np.all(np.isfinite(obs))


# ----------------------------------------------------------------------------- pacing


class _Policy:
    def __init__(self, *actions: float) -> None:
        self.actions = list(actions)
        self.seen: list[np.ndarray] = []

    def __call__(self, obs: np.ndarray) -> float:
        self.seen.append(obs.copy())
        return self.actions[min(len(self.seen), len(self.actions)) - 1]


def _target(slicer: PacedSlicer, t_s: float, filled: int, snap_s: float | None = None) -> int:
    """A real decision (snapshot taken now) or, with `snap_s`, a look-ahead call."""
    snap = _snap(t_s if snap_s is None else snap_s)
    return slicer.target_filled(_state(Side.SELL, t_s, filled, snap))


def test_pace_zero_is_the_twap_line_to_the_bit_whatever_the_fills():
    slicer, twap = PacedSlicer(HISTORY, _Policy(0.0)), TwapSlicer()
    # decisions every 30 s, look-aheads 30 s on, fills behind, on and ahead of the line
    # (a dealer's block): the targets are TwapSlicer's at every call
    for k in range(121):
        t, filled = 30.0 * k, (0, 5_000, 60_000)[k % 3]
        for now, snap in ((t, None), (t + 30.0, t)):
            got = _target(slicer, now, filled, snap_s=snap)
            state = _state(Side.SELL, now, filled, _snap(t if snap is None else snap))
            assert got == twap.target_filled(state)
    assert {m for _, _, m in slicer.paces} == {1.0} and len(slicer.paces) == 13  # 0 to 3600 s


def test_a_lead_built_by_fast_steps_shrinks_evenly_to_the_horizon():
    slicer = PacedSlicer(HISTORY, _Policy(1.0, 0.0))
    _target(slicer, 0.0, 0)  # three times the even rate for 5 minutes
    assert _target(slicer, 300.0, 0, snap_s=0.0) == int(QTY * 3 * 300 / 3600)
    _target(slicer, 300.0, 0)  # then a = 0: the lead of 2 x 300 s of the line decays
    lead0 = 2 * 300 / 3600
    for t in (300.0, 1200.0, 2400.0, 3300.0, 3600.0):
        expected = lead0 * (3600 - t) / 3300
        assert slicer.lead(int(t * S)) == pytest.approx(expected, abs=1e-12)
    assert _target(slicer, 3600.0, 0, snap_s=300.0) == QTY


def test_a_slow_step_lags_the_line_and_a_fills_lead_does_not_move_the_schedule():
    slicer = PacedSlicer(HISTORY, _Policy(-1.0))
    _target(slicer, 0.0, 0)
    # a third of the even rate; the parent's own fills (50,000 ahead) change nothing
    assert _target(slicer, 300.0, 50_000, snap_s=0.0) == int(QTY * 100 / 3600)
    assert slicer.lead(300 * S) == pytest.approx(-200 / 3600)


def test_look_ahead_calls_do_not_consult_the_policy():
    policy = _Policy(0.5)
    slicer = PacedSlicer(HISTORY, policy)
    # before the first real decision: the even schedule, no policy
    assert _target(slicer, 30.0, 0, snap_s=0.0) == int(QTY * 30 / 3600)
    assert policy.seen == []
    _target(slicer, 0.0, 0)
    for t in (30.0, 400.0, 900.0):  # even past the step: only a real decision acts
        _target(slicer, t, 0, snap_s=0.0)
    assert len(policy.seen) == 1


def test_the_policy_is_queried_every_step_and_sees_its_last_action():
    policy = _Policy(0.5, -0.5, 1.0, 0.0, 0.25)
    slicer = PacedSlicer(HISTORY, policy)
    for k in range(41):  # decisions every 30 s for 20 minutes
        _target(slicer, 30.0 * k, 0)
    assert [t / S for t, _, _ in slicer.paces] == [0.0, 300.0, 600.0, 900.0, 1200.0]
    assert [a for _, a, _ in slicer.paces] == [0.5, -0.5, 1.0, 0.0, 0.25]
    assert [m for _, _, m in slicer.paces] == pytest.approx(
        [PACE_RANGE**a for a in (0.5, -0.5, 1.0, 0.0, 0.25)]
    )
    assert [o[OBS["pace"]] for o in policy.seen] == [0.0, 0.5, -0.5, 1.0, 0.0]
    # and the lead those paces built: the schedule's share done f moves at m times the
    # rate that ends it at the horizon, f' = f + m (1 - f) 300 / (time left)
    f, leads = 0.0, []
    for t, _, m in slicer.paces:
        t_s = t / S
        leads.append(f - t_s / 3600)
        f += m * (1 - f) * 300 / (3600 - t_s)
    assert [o[OBS["schedule_lead"]] for o in policy.seen] == pytest.approx(leads, abs=1e-7)
    assert leads[0] == 0.0 and leads[1] > 0.0


def test_target_is_capped_at_the_parent_and_bad_actions_are_tamed():
    slicer = PacedSlicer(HISTORY, _Policy(7.0))  # out of range: read as +1, three times
    _target(slicer, 3000.0, 0)
    assert slicer.paces[-1][1:] == (1.0, PACE_RANGE)
    assert _target(slicer, 3500.0, 0, snap_s=3000.0) == QTY  # 3 x the rest by then: capped
    slicer = PacedSlicer(HISTORY, _Policy(math.nan))
    _target(slicer, 0.0, 0)
    assert slicer.paces[-1][1:] == (0.0, 1.0)


# ----------------------------------------------------------------------------- ONNX


def _policy_model(
    weights: np.ndarray, bias: float = 0.0, width: int = OBS_SIZE, input_name: str = "obs"
) -> bytes:
    """action = clip(obs @ weights + bias, -1, 1) as an ONNX graph, as the trained
    policy's export looks from outside: "obs" float32 [batch, width] -> "action"."""
    inits = [
        numpy_helper.from_array(weights.astype(np.float32).reshape(width, 1), "W"),
        numpy_helper.from_array(np.array([bias], dtype=np.float32), "b"),
        numpy_helper.from_array(np.array(-1.0, dtype=np.float32), "lo"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "hi"),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", [input_name, "W", "b"], ["raw"]),
            helper.make_node("Clip", ["raw", "lo", "hi"], ["action"]),
        ],
        "slicer",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", 1])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime the project allows
    onnx.checker.check_model(model)
    return model.SerializeToString()


WEIGHTS = np.linspace(-0.2, 0.4, OBS_SIZE)


def _write_policy(directory: Path, model: bytes | None = None, **meta_changes: object) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "slicer.onnx").write_bytes(model if model is not None else _policy_model(WEIGHTS))
    meta = {
        "obs_names": list(OBS_NAMES),
        "step_s": STEP_S,
        "pace_range": PACE_RANGE,
        "pacing": PACING,
        "onnx": {"input": "obs", "output": "action"},
        # a policy that beat the even pace on its validation: served
        "validation": {"episodes": 100, "diff_is_bps": -3.0, "diff_stderr_bps": 1.0},
        **meta_changes,
    }
    (directory / "slicer.meta.json").write_text(json.dumps(meta))
    return directory


def test_onnx_policy_computes_the_graph_and_reuses_its_buffers():
    policy = OnnxPolicy(_policy_model(WEIGHTS, bias=0.1))
    rng = np.random.default_rng(3)
    for _ in range(20):
        obs = rng.normal(0.0, 2.0, OBS_SIZE).astype(np.float32)
        expected = float(np.clip(obs.astype(np.float64) @ WEIGHTS + 0.1, -1.0, 1.0))
        got = policy(obs)
        assert isinstance(got, float) and got == pytest.approx(expected, abs=1e-5)
        obs[:] = 99.0  # the caller's array is not kept: the next call sees its own input
    push = (50.0 * np.sign(WEIGHTS)).astype(np.float32)
    assert policy(push) == 1.0 and policy(-push) == -1.0  # clipped by the graph


@pytest.mark.parametrize(
    "model",
    [
        _policy_model(np.zeros(OBS_SIZE - 1), width=OBS_SIZE - 1),
        _policy_model(WEIGHTS, input_name="x"),
    ],
    ids=["narrower observation", "another input name"],
)
def test_onnx_policy_refuses_a_graph_for_another_observation(model):
    with pytest.raises(ValueError, match="expected"):
        OnnxPolicy(model)


def test_the_loader_reads_the_policy_and_its_metadata(tmp_path):
    policy = load_slicer_policy(_write_policy(tmp_path))
    obs = np.full(OBS_SIZE, 0.5, np.float32)
    assert policy(obs) == pytest.approx(float(0.5 * WEIGHTS.sum()), abs=1e-6)


def _corrupt_meta(d: Path) -> None:
    (d / "slicer.meta.json").write_text("{not json")


def _meta_text(d: Path, meta: dict[str, Any]) -> None:
    (d / "slicer.meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("spoil", "file", "why"),
    [
        (lambda d: (d / "slicer.meta.json").unlink(), "slicer.meta.json", "missing"),
        (_corrupt_meta, "slicer.meta.json", "corrupt"),
        (lambda d: _meta_text(d, {"obs_names": [], "pace_range": 3}), "slicer.meta.json", "step_s"),
        (
            lambda d: _meta_text(d, {"obs_names": 3, "step_s": 300, "pace_range": 3}),
            "slicer.meta.json",
            "not a list",
        ),
        (
            lambda d: _write_policy(d, obs_names=list(reversed(OBS_NAMES))),
            "slicer.meta.json",
            "observation",
        ),
        (lambda d: _write_policy(d, step_s=60.0), "slicer.meta.json", "step_s"),
        (lambda d: _write_policy(d, pace_range=2.0), "slicer.meta.json", "pace_range"),
        # a policy of the earlier pacing (it re-spread the unfilled rest): no "pacing"
        (lambda d: _write_policy(d, pacing=None), "slicer.meta.json", "the unfilled rest"),
        (lambda d: (d / "slicer.onnx").unlink(), "slicer.onnx", "missing"),
        (lambda d: (d / "slicer.onnx").write_bytes(b""), "slicer.onnx", "empty"),
        (lambda d: (d / "slicer.onnx").write_bytes(b"\x08garbage" * 40), "slicer.onnx", ""),
        (
            lambda d: _write_policy(d, _policy_model(np.zeros(5), width=5)),
            "slicer.onnx",
            "expected",
        ),
    ],
    ids=[
        "meta missing",
        "meta corrupt",
        "meta without a step",
        "meta with odd names",
        "other observation",
        "other step",
        "other pace range",
        "other pacing",
        "model missing",
        "model empty",
        "model corrupt",
        "model for another observation",
    ],
)
def test_the_loader_names_the_file_and_the_command_that_rebuilds_it(tmp_path, spoil, file, why):
    d = _write_policy(tmp_path)
    spoil(d)
    with pytest.raises(ModelError) as err:
        load_slicer_policy(d)
    msg = str(err.value)
    assert str(d / file) in msg and "blockroute train slicer" in msg and why in msg
    assert "\n" not in msg


# ----------------------------------------------------------------------------- the strategy


def _models_dir(tmp_path: Path, with_policy: bool = True) -> Path:
    """The shipped dealer and fill models, and (optionally) a tiny test policy."""
    d = tmp_path / "models"
    d.mkdir()
    for family in ("dealer", "fill"):
        for f in Path(artifacts.MODELS_DIR).glob(f"{family}*"):
            if f.suffix == ".ubj" or f.name.endswith(".meta.json"):
                shutil.copy(f, d / f.name)
    return _write_policy(d) if with_policy else d


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    """MODELS_DIR pointed at a temp copy; the process's registry cleared around."""
    d = _models_dir(tmp_path, with_policy=False)
    monkeypatch.setattr(artifacts, "MODELS_DIR", d)
    app.MODELS.clear()
    yield d
    app.MODELS.clear()


def test_ml_is_the_model_guided_router_on_the_learned_slicer(models_dir):
    spec = strategy_spec("ml")
    assert (spec.routing, spec.rfq) == ("ml", True)
    _write_policy(models_dir)
    registry = ModelRegistry()
    slicer = spec.slicer(HISTORY, QTY, HORIZON_S, registry)
    assert isinstance(slicer, PacedSlicer) and isinstance(slicer.policy, OnnxPolicy)
    assert slicer.policy is registry.slicer_policy()
    assert spec.slicer(HISTORY, QTY, HORIZON_S, registry).policy is slicer.policy  # loaded once


@pytest.mark.parametrize(
    ("validation", "served"),
    [
        ({"episodes": 100, "diff_is_bps": -3.0, "diff_stderr_bps": 1.0}, True),
        ({"episodes": 100, "diff_is_bps": -2.0, "diff_stderr_bps": 1.0}, True),  # just
        ({"episodes": 100, "diff_is_bps": -1.31, "diff_stderr_bps": 1.39}, False),
        ({"episodes": 100, "diff_is_bps": 2.0, "diff_stderr_bps": 0.5}, False),
        ({"episodes": 100, "diff_is_bps": -3.0, "diff_stderr_bps": 0.0}, False),
        ({"episodes": 0}, False),
        ({"episodes": 100, "diff_is_bps": "nan", "diff_stderr_bps": 1.0}, False),
        (None, False),
    ],
)
def test_a_policy_is_served_only_once_it_beat_the_even_pace(validation, served):
    verdict = promotion({} if validation is None else {"validation": validation})
    assert verdict.served is served
    assert ("against the even pace" in verdict.reason) or ("no validation" in verdict.reason)


def test_an_unproven_policy_leaves_ml_on_the_even_pace(models_dir):
    validation = {"episodes": 100, "diff_is_bps": -1.31, "diff_stderr_bps": 1.39}
    _write_policy(models_dir, validation=validation)
    registry = ModelRegistry()
    # ml without a proven policy is sor-ml: its TWAP schedule, not the policy's a = 0
    assert isinstance(strategy_spec("ml").slicer(HISTORY, QTY, HORIZON_S, registry), TwapSlicer)
    policy = registry.slicer_policy()
    assert isinstance(policy, EvenPace)
    assert "-1.31 +- 1.39 bps against the even pace over 100" in policy.reason
    assert policy(np.ones(OBS_SIZE, np.float32)) == 0.0
    # a broken policy is an error whether or not it would be served
    (models_dir / "slicer.onnx").write_bytes(b"")
    registry.clear()
    with pytest.raises(ModelError, match="empty policy file"):
        strategy_spec("ml").slicer(HISTORY, QTY, HORIZON_S, registry)


def test_a_missing_policy_stops_ml_before_any_work(models_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["simulate", "--scenario", "calm", "--strategies", "twap,ml", "--db-url", "none"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "slicer.meta.json" in err and "blockroute train slicer" in err


def test_bench_decide_times_the_slicer_with_the_models(models_dir):
    from bench.decide import run_decide_bench

    _write_policy(models_dir)
    doc = run_decide_bench(iterations=20)
    parts = ("slicer", "onnx_policy", "fill_model", "dealer_panel", "no_rfq", "decision")
    for part in parts:
        assert 0 < doc[part]["p50_us"] <= doc[part]["p99_us"] <= doc[part]["max_us"], part
    assert doc["onnx_policy"]["p50_us"] <= doc["slicer"]["p50_us"]  # inference is a part
    whole = doc["decision"]
    assert (doc["n"], doc["p50_us"], doc["p99_us"]) == (20, whole["p50_us"], whole["p99_us"])
    assert doc["at_s"] == 3600.0 and doc["lit_options"] == 3 and doc["dealers"] == 8


# Serving must not need torch (the training extra): block it the way an uninstalled
# package fails, then run the CLI with MODELS_DIR at argv[1].
NO_TORCH = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, NoTorch())
try:
    import torch  # noqa: F401
except ImportError:
    pass
else:
    sys.exit("torch is importable: the test proves nothing")
from pathlib import Path
from models.serving import artifacts
artifacts.MODELS_DIR = Path(sys.argv[1])
from router.cli import main
code = main(sys.argv[2:])
assert "torch" not in sys.modules
sys.exit(code)
"""


def test_ml_runs_end_to_end_without_torch(tmp_path):
    d = _models_dir(tmp_path)
    args = ["simulate", "--scenario", "calm", "--strategies", "ml", "--horizon", "30m"]
    args += ["--qty", "50000", "--db-url", "none", "--json", "-"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(d), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row,) = json.loads(proc.stdout)["results"]
    assert row["strategy"] == "ml" and row["completion"] == 1.0
    assert row["filled_qty"] == 50_000 and math.isfinite(row["is_bps"])


# ----------------------------------------------------------------------------- report


def _report_doc(with_ml: bool = True) -> dict[str, Any]:
    """Two strategies over 10 minutes: ml sold 600 in the first 5 minutes (half of it
    as taker, half in the dark) and set two paces; twap took 300 in each bucket."""
    ml = {
        "strategy": "ml",
        "fills": {
            "t_s": [10.0, 100.0, 200.0],
            "qty": [300, 100, 200],
            "price": [100.0, 100.0, 100.0],
            "venue": ["LITA", "LITA", "DARKX"],
            "kind": ["lit", "lit", "dark"],
            "liquidity": ["taker", "maker", "midpoint"],
        },
        "market_volume": {"bucket_s": 60.0, "qty": [200] * 10},
        "paces": {"t_s": [0.0, 300.0], "action": [0.5, -1.0], "multiplier": [1.7, 0.33]},
    }
    twap = {
        "strategy": "twap",
        "fills": {
            "t_s": [150.0, 450.0],
            "qty": [300, 300],
            "price": [100.0, 100.0],
            "venue": ["LITA", "LITA"],
            "kind": ["lit", "lit"],
            "liquidity": ["taker", "taker"],
        },
        "market_volume": {"bucket_s": 60.0, "qty": [100] * 10},
    }
    return {
        "scenario": "news-shock",
        "parent": {"symbol": "QDI", "side": "sell", "qty": 600, "horizon_s": 600.0},
        "results": [ml, twap] if with_ml else [twap],
        "phases": [{"start_s": 240.0, "end_s": 480.0}],
    }


def test_the_report_charts_the_policy_next_to_twap():
    from router.reporting.policy import participation as _participation
    from router.reporting.policy import taker_share as _taker_share

    doc = _report_doc()
    ml, twap = doc["results"]
    edges = [0.0, 300.0, 600.0]
    # ml: 600 own of 1,000 lit + 200 of its own dark = 50% then nothing of 1,000
    assert _participation(ml, edges) == pytest.approx([50.0, 0.0])
    assert _participation(twap, edges) == pytest.approx([60.0, 60.0])
    assert _taker_share(ml, edges) == pytest.approx([50.0, None])
    html = render_simulate_html(doc)
    assert "The learned slicer over time" in html
    for title in ("Participation rate", "Aggressiveness", "The pace the policy chose"):
        assert title in html
    assert "market phase 4–8 min" in html and "action -1.00, pace ×0.33" in html
    assert "The learned slicer over time" not in render_simulate_html(_report_doc(False))
    del ml["paces"]  # a document from before the learned slicer: no section at all
    assert "The learned slicer over time" not in render_simulate_html(doc)
    ml["paces"], twap["market_volume"] = {}, None  # what is missing says so
    html = render_simulate_html(doc)
    assert "The policy&#x27;s pace: not available" in html and "could not be drawn" not in html


@pytest.mark.parametrize("n", [3, 7, 8, 9, 21, 129, 130, 400])
def test_realised_volatility_is_numpys_to_the_bit(n: int) -> None:
    # the observation must stay the one the shipped policy was trained on: np.std of the
    # log returns, the logs libm's (Python's math.log) on every path
    rng = np.random.default_rng(n)
    for _ in range(200):
        mids = 100.0 * np.exp(np.cumsum(rng.normal(0.0, rng.uniform(1e-5, 1e-2), n)))
        logs = np.array([math.log(m) for m in mids])
        assert _log_return_sd(mids) == float(np.std(np.diff(logs)))
