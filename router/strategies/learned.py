"""The learned slicer: a policy that sets the pace of the parent every few minutes.

The policy sees what a trader sees (`observe`): inventory and time left, the gap to a
uniform schedule, spread, depth imbalance, short-term volatility and returns, the
market's volume rate and the parent's own fill rate, all normalised by the instrument's
history. Never the scenario, its phases or the simulator's state.

Its action a in [-1, 1] is a pace for the parent's schedule (its cumulative target):
over the next `step_s` the schedule advances at `PACE_RANGE ** a` times the rate that
would take what it has left evenly to the horizon. The schedule's lead over the TWAP line
is the policy's own state: a = 0 lets a lead (or a lag) shrink evenly to nothing at the
horizon, and a = 0 throughout is the TWAP line itself, so `ml` with a policy that always
answers 0 is `sor-ml` to the bit. Fills off the schedule (a dealer's block) put the
parent ahead of it, as they put sor-ml ahead of its line; the policy sees both (the
schedule's lead and the fills' gap to the line) and decides whether to give the block's
lead back or keep it. Where each slice goes (passive, aggressive, dark, dealers) stays
with the model-guided router, which prices those choices by expected cost better than a
policy could learn them from a few thousand episodes; so the action is timing only.

The same code serves training and trading: the execution environment
(models/training/execenv.py) and the ONNX policy at run time both drive `PacedSlicer`
through a `Policy` callable, so an observation means the same in both.

At run time the policy is `OnnxPolicy` (ONNX Runtime only: serving never imports
torch), loaded from models/slicer.onnx with its metadata by `load_slicer_policy`, which
checks that the policy was trained on this module's observation and pacing. The model
registry (router.registry) holds the one a process serves (`ShippedSlicer`); the `ml`
strategy asks the registry its composition root gives it.

It is served only once it has earned it (`promotion`): on the paired validation
episodes that `blockroute train slicer` runs after training (held out from training,
the same markets with a = 0, which is sor-ml), its mean IS must beat sor-ml's by
PROMOTION_Z standard errors. Until then `ml` runs sor-ml's TWAP line and says why: a
learned timing that has not shown it saves money is not allowed to spend it.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from numba import njit

from router.domain import NANOS_PER_SECOND, Nanos, ShadowAnswer
from router.ports import ExecutionState, MarketHistory
from router.shadow import challenger_of, compare_pace

#: maps an observation (float32, OBS_SIZE) to an action in [-1, 1]
Policy = Callable[[np.ndarray], float]

STEP_S = 300.0  # the policy acts every 5 minutes of the parent's life
PACE_RANGE = 3.0  # a = +1: three times the even rate; a = -1: a third of it
#: what the action paces (checked against a policy's metadata): the schedule, around the
#: TWAP line (an earlier pacing re-spread the parent's unfilled rest at every step)
PACING = "schedule-lead"
SESSION_S = 6.5 * 3600.0  # trading day, for per-day statistics

OBS_NAMES = (
    "inventory_left",  # remaining / qty
    "time_left",  # share of the horizon left
    "schedule_gap",  # (filled - uniform target) / qty: > 0 ahead of schedule
    "spread",  # log(spread / the instrument's typical spread)
    "imbalance",  # depth on our contra side minus our side, over both: > 0 helps us
    "volatility",  # log(realised vol over 5 min / the daily vol scaled to 5 min)
    "return_5m",  # mid move over 5 min in our favour, in 5-min sigmas
    "return_30s",  # the same over the last 30 s, in 30-s sigmas
    "price_vs_arrival",  # mid vs arrival in our favour, in sigmas of the time elapsed
    "volume_rate",  # log(market volume over 5 min / the expected 5-min volume)
    "fill_rate",  # own fills over 5 min / the even rate's 5 minutes of fills
    "pace",  # the action last taken
    "schedule_lead",  # (own schedule - uniform target) / qty: what the past paces built up
    # +1 buy, -1 sell: the other features are signed in the parent's favour, so this is
    # the only way a market that is not symmetric between its sides (thin bids after
    # news, say) can show; training draws both sides 50/50 on markets of either sign
    "side",
)
OBS_SIZE = len(OBS_NAMES)
CLIP = 5.0


def pace_multiplier(action: float) -> float:
    a = min(1.0, max(-1.0, float(action)))
    return float(PACE_RANGE**a)


@dataclass(slots=True)
class _Sample:
    t_ns: Nanos
    mid: float
    volume: int
    filled: int


class ObservationBuilder:
    """The observation of one parent order; remembers the market at each decision."""

    def __init__(self, history: MarketHistory, memory_s: float = 600.0) -> None:
        self.history = history
        self._memory_ns = int(memory_s * NANOS_PER_SECOND)
        self._samples: deque[_Sample] = deque()
        self.arrival_mid: float | None = None
        self.last_action = 0.0
        self.lead = 0.0  # the slicer's schedule ahead of the uniform one, share of qty

    def record(self, state: ExecutionState) -> None:
        """Called at each real decision time (not for look-ahead targets)."""
        mid = state.market.mid
        if mid is None:
            return
        if self.arrival_mid is None:
            self.arrival_mid = mid
        self._samples.append(_Sample(state.now_ns, mid, state.market.volume, state.filled_qty))
        while self._samples and self._samples[0].t_ns < state.now_ns - self._memory_ns:
            self._samples.popleft()

    def _at(self, t_ns: Nanos) -> _Sample | None:
        """The newest sample at or before `t_ns` (else the oldest)."""
        # from the newest back: the times asked are recent, the memory ten minutes long
        for s in reversed(self._samples):
            if s.t_ns <= t_ns:
                return s
        return self._samples[0] if self._samples else None

    def _mids_since(self, t_ns: Nanos) -> list[float]:
        """The mids of the samples at or after `t_ns`, oldest first."""
        mids = []
        for s in reversed(self._samples):
            if s.t_ns < t_ns:
                break
            mids.append(s.mid)
        mids.reverse()
        return mids

    def observe(self, state: ExecutionState) -> np.ndarray:
        h = self.history
        p = state.parent
        snap = state.market
        sign = p.side.sign  # +1 buy: a falling price helps
        horizon_s = p.horizon_ns / NANOS_PER_SECOND
        elapsed = state.elapsed_fraction
        mid = snap.mid if snap.mid is not None else h.price
        arrival = self.arrival_mid or mid
        day_sigma = h.daily_vol  # fraction of price per day

        def sigma_over(seconds: float) -> float:
            return max(1e-9, day_sigma * math.sqrt(max(seconds, 1.0) / SESSION_S))

        obs = np.zeros(OBS_SIZE, dtype=np.float32)
        obs[0] = state.remaining_qty / p.qty
        obs[1] = 1.0 - elapsed
        obs[2] = (state.filled_qty - p.qty * elapsed) / p.qty
        if snap.bid_ticks is not None and snap.ask_ticks is not None:
            spread = (snap.ask_ticks - snap.bid_ticks) * snap.tick_size
            obs[3] = math.log(max(spread, snap.tick_size) / max(h.spread, snap.tick_size))
        depth = snap.bid_depth + snap.ask_depth
        if depth > 0:
            ours, theirs = (
                (snap.ask_depth, snap.bid_depth) if sign < 0 else (snap.bid_depth, snap.ask_depth)
            )
            # a seller wants bids (contra) deep and asks (competition) thin
            obs[4] = (theirs - ours) / depth
        now = state.now_ns
        five = self._at(now - int(STEP_S * NANOS_PER_SECOND))
        thirty = self._at(now - int(30 * NANOS_PER_SECOND))
        recent = self._mids_since(now - int(STEP_S * NANOS_PER_SECOND))
        if len(recent) >= 3:
            dt = STEP_S / max(1, len(recent) - 1)
            realised = _log_return_sd(np.asarray(recent)) / math.sqrt(dt / SESSION_S)
            obs[5] = math.log(max(realised, 1e-6) / max(day_sigma, 1e-9))
        if five is not None:
            obs[6] = -sign * (mid / five.mid - 1.0) / sigma_over(STEP_S)
            seconds = (now - five.t_ns) / NANOS_PER_SECOND
            expected = h.horizon_volume * seconds / max(horizon_s, 1.0)
            if seconds > 0 and expected > 0:
                obs[9] = math.log(max(snap.volume - five.volume, 1) / expected)
            even = p.qty * seconds / max(horizon_s, 1.0)
            if seconds > 0 and even > 0:
                obs[10] = (state.filled_qty - five.filled) / even
        if thirty is not None:
            obs[7] = -sign * (mid / thirty.mid - 1.0) / sigma_over(30.0)
        obs[8] = -sign * (mid / arrival - 1.0) / sigma_over(elapsed * horizon_s)
        obs[11] = self.last_action
        obs[12] = self.lead
        obs[13] = sign
        np.clip(obs, -CLIP, CLIP, out=obs)
        return obs


def warm_up() -> None:
    """Compile the observation's code now (see models.serving.predictors.warm_up)."""
    _log_return_sd(np.array([100.0, 100.5, 100.25]))


_PAIRWISE_BLOCK = 128  # numpy sums up to this many values in one unrolled block


def _log_return_sd(mids: np.ndarray) -> float:
    """np.std(np.diff(logs)) of the mids' libm logs: compiled for the few dozen mids of a
    step, numpy's own sums for longer paths. The logs are libm's on both paths (numpy's
    vectorised log may differ in the last bit on AVX-512): the observation is the same
    whatever the path or the machine's vector unit, as the policy saw it in training."""
    if mids.size - 1 > _PAIRWISE_BLOCK:
        return float(np.std(np.diff(_logs(mids))))
    return float(_small_log_return_sd(mids))


@njit(cache=True)
def _logs(a: np.ndarray) -> np.ndarray:
    out = np.empty(a.shape[0])
    for i in range(a.shape[0]):
        out[i] = math.log(a[i])
    return out


@njit(cache=True)
def _small_log_return_sd(mids: np.ndarray) -> float:
    # numpy's own arithmetic, sums in its order (8 running sums per block of up to 128
    # values), so that both paths give np.std's bits
    n = mids.shape[0] - 1
    rets = np.empty(n)
    logs = _logs(mids)
    for i in range(n):
        rets[i] = logs[i + 1] - logs[i]
    mean = _numpy_sum(rets) / n
    for i in range(n):
        rets[i] = (rets[i] - mean) * (rets[i] - mean)
    return math.sqrt(_numpy_sum(rets) / n)


@njit(cache=True)
def _numpy_sum(a: np.ndarray) -> float:
    """np.sum of at most 128 float64 values, in numpy's order (its pairwise sum's base
    case)."""
    n = a.shape[0]
    if n < 8:
        total = 0.0
        for i in range(n):
            total += a[i]
        return total
    r = a[:8].copy()
    i = 8
    while i < n - n % 8:
        for j in range(8):
            r[j] += a[i + j]
        i += 8
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while i < n:
        total += a[i]
        i += 1
    return total


class PacedSlicer:
    """The schedule a policy paces every `step_s`, as a lead over the TWAP line.

    Between decisions the schedule's share done f moves from f0 towards 1 at m times the
    even rate, f(t) = f0 + m (1 - f0) s, with s the share of the time left at the step's
    start that has passed and m = PACE_RANGE ** a. The TWAP line e(t) = e0 + (1 - e0) s
    moves the same way at m = 1, so the lead L = f - e is

        L(t) = L0 + ((m - 1)(1 - e0) - m L0) s,

    exactly 0.0 while every action has been 0: the target is then TwapSlicer's, bit for
    bit. The engine asks for targets at each decision and one interval ahead (look-ahead
    calls carry a future `now_ns` with today's snapshot); the policy is consulted only
    at a real decision (snapshot time = now) once the step is over.
    """

    name = "ml"

    def __init__(self, history: MarketHistory, policy: Policy, step_s: float = STEP_S) -> None:
        self.obs = ObservationBuilder(history)
        self.policy = policy
        self._step_ns = int(step_s * NANOS_PER_SECOND)
        self._t0: Nanos | None = None  # start of the current step
        self._span_ns = 1  # from it to the horizon
        self._e0 = 0.0  # the TWAP line's share done at the step's start
        self._lead0 = 0.0  # the schedule's lead then
        self._m = 1.0  # the step's pace multiplier
        self.paces: list[tuple[Nanos, float, float]] = []  # (time, action, multiplier)
        self._shadow: ShadowAnswer | None = None

    def target_filled(self, state: ExecutionState) -> int:
        p = state.parent
        if state.market.ts_ns == state.now_ns:  # a real decision, not a look-ahead
            self.obs.record(state)
            if self._t0 is None or state.now_ns >= self._t0 + self._step_ns:
                self._act(state)
        # a lead of 0.0 leaves elapsed_fraction (in [0, 1]) as it is: TwapSlicer's target
        return int(p.qty * min(1.0, max(0.0, state.elapsed_fraction + self.lead(state.now_ns))))

    def lead(self, now_ns: Nanos) -> float:
        """The schedule's lead over the TWAP line at `now_ns`, as a share of the qty."""
        if self._t0 is None:
            return 0.0
        s = min(1.0, max(0.0, (now_ns - self._t0) / self._span_ns))
        return self._lead0 + ((self._m - 1.0) * (1.0 - self._e0) - self._m * self._lead0) * s

    def take_shadow(self) -> ShadowAnswer | None:
        """The pace the slicer's challenger would have set at the last step, compared
        with the one set (router.shadow.ShadowSource), once."""
        answer, self._shadow = self._shadow, None
        return answer

    def _act(self, state: ExecutionState) -> None:
        lead = self.lead(state.now_ns)
        self.obs.lead = lead
        obs = self.obs.observe(state)
        action = _action(self.policy(obs))
        challenger = challenger_of(self.policy)
        if challenger is not None:  # shadow mode: the same observation, not acted on
            start = challenger.timer()
            theirs = _action(challenger.model(obs))
            spent = challenger.timer() - start
            self._shadow = compare_pace(
                challenger,
                (action, pace_multiplier(action)),
                (theirs, pace_multiplier(theirs)),
                spent,
            )
        self.obs.last_action = action
        m = pace_multiplier(action)
        self._t0 = state.now_ns
        self._span_ns = max(1, state.parent.end_ns - state.now_ns)
        self._e0 = state.elapsed_fraction
        self._lead0 = lead
        self._m = m
        self.paces.append((state.now_ns, action, m))


def _action(answer: float) -> float:
    """A policy's answer as the action taken: clipped to [-1, 1], 0 if not finite."""
    action = float(answer)
    return min(1.0, max(-1.0, action)) if math.isfinite(action) else 0.0


# ----------------------------------------------------------------------------- serving

log = structlog.get_logger(__name__)

SLICER_ONNX = "slicer.onnx"
SLICER_META = "slicer.meta.json"
ONNX_INPUT = "obs"  # float32 [batch, OBS_SIZE]
ONNX_OUTPUT = "action"  # float32 [batch, 1], in [-1, 1]


class OnnxPolicy:
    """The trained policy as served: one ONNX Runtime session on one thread.

    The observation is copied into an input buffer bound to the session once, and the
    action is written into a bound output buffer: a call allocates nothing of its own
    (about 4 us for a 64x64 MLP, against 7 us through `InferenceSession.run`). The
    buffers make it unsafe to call from two threads at once; an engine calls its slicer
    from one. `source` is the model's bytes or path; a graph whose input or output does
    not match the observation raises ValueError, an unreadable one ONNX Runtime's error.
    """

    def __init__(
        self, source: bytes | Path, input_name: str = ONNX_INPUT, output_name: str = ONNX_OUTPUT
    ) -> None:
        import onnxruntime as ort  # only the `ml` strategy pays for the import

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # one row: threads only add hand-over latency
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        model = source if isinstance(source, bytes) else str(source)
        self._session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        _check_signature(self._session, input_name, output_name)
        self._x = np.zeros((1, OBS_SIZE), dtype=np.float32)
        self._y = np.zeros((1, 1), dtype=np.float32)
        self._binding = self._session.io_binding()
        self._binding.bind_cpu_input(input_name, self._x)
        self._binding.bind_output(
            output_name, "cpu", 0, np.float32, list(self._y.shape), self._y.ctypes.data
        )

    def __call__(self, obs: np.ndarray) -> float:
        self._x[0] = obs
        self._session.run_with_iobinding(self._binding)
        return float(self._y[0, 0])


def _check_signature(session: Any, input_name: str, output_name: str) -> None:
    """One float input [batch, OBS_SIZE] and a float output [batch, 1], by name."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    if set(inputs) != {input_name}:
        raise ValueError(f"inputs {sorted(inputs)}, expected only {input_name!r}")
    if output_name not in outputs:
        raise ValueError(f"outputs {sorted(outputs)}, expected {output_name!r}")
    for arg, width in ((inputs[input_name], OBS_SIZE), (outputs[output_name], 1)):
        shape = list(arg.shape)
        batch_ok = len(shape) == 2 and (not isinstance(shape[0], int) or shape[0] == 1)
        if arg.type != "tensor(float)" or not batch_ok or shape[1] != width:
            raise ValueError(f"{arg.name!r} is {arg.type} {shape}, expected float [batch, {width}]")


def load_slicer_policy(models_dir: Path) -> OnnxPolicy:
    """The shipped slicer policy from `models_dir` (slicer.onnx + slicer.meta.json).

    A missing, empty or unreadable file, or metadata that describes another observation
    or pacing than this module's, raises ModelError naming the file and the command that
    rebuilds it.
    """
    return _load_slicer(models_dir)[0]


def _load_slicer(models_dir: Path) -> tuple[OnnxPolicy, dict[str, Any]]:
    """`load_slicer_policy`, with the metadata it checked."""
    # imported here: router.strategies stays light (models.serving.artifacts compiles trees)
    from models.serving.artifacts import ModelError, regenerate_hint

    hint = regenerate_hint("slicer")
    meta_path = models_dir / SLICER_META
    meta = _read_slicer_meta(meta_path)
    path = models_dir / SLICER_ONNX
    if not path.exists():
        raise ModelError(f"{path}: policy file missing; {hint}")
    if path.stat().st_size == 0:
        raise ModelError(f"{path}: empty policy file; {hint}")
    onnx_meta = meta.get("onnx") or {}
    try:
        policy = OnnxPolicy(
            path.read_bytes(),
            str(onnx_meta.get("input", ONNX_INPUT)),
            str(onnx_meta.get("output", ONNX_OUTPUT)),
        )
    except Exception as exc:  # onnxruntime raises its own error types for bad graphs
        why = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        raise ModelError(
            f"{path}: not a usable ONNX policy ({type(exc).__name__}: {why}); {hint}"
        ) from None
    return policy, meta


def _read_slicer_meta(path: Path) -> dict[str, Any]:
    """The metadata, checked against this module: the same observation and pacing."""
    # as in _load_slicer: router.strategies stays light
    from models.serving.artifacts import ModelError, regenerate_hint

    hint = regenerate_hint("slicer")
    if not path.exists():
        raise ModelError(f"{path}: metadata missing; {hint}")
    try:
        meta = json.loads(path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
        missing = [k for k in ("obs_names", "step_s", "pace_range") if k not in meta]
        if missing:
            raise ValueError(f"no {', '.join(missing)}")
        if not isinstance(meta["obs_names"], list) or not isinstance(meta.get("onnx", {}), dict):
            raise ValueError("'obs_names' is not a list or 'onnx' not a table")
    except ValueError as exc:  # json's decode error is one
        raise ModelError(f"{path}: corrupt metadata ({exc}); {hint}") from None
    if meta["obs_names"] != list(OBS_NAMES):
        raise ModelError(
            f"{path}: the policy was trained on observation {meta['obs_names']}, this code "
            f"builds {list(OBS_NAMES)}; {hint}"
        )
    if meta.get("pacing") != PACING:
        # metadata without the key is of the first pacing, which re-spread the unfilled rest
        theirs = meta.get("pacing") or "the unfilled rest"
        raise ModelError(f"{path}: the policy paces {theirs!r}, this code {PACING!r}; {hint}")
    for key, ours in (("step_s", STEP_S), ("pace_range", PACE_RANGE)):
        value = meta[key]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isclose(value, ours):
            raise ModelError(f"{path}: {key} is {value!r}, this code uses {ours:g}; {hint}")
    return meta


#: how many standard errors a policy's validation must beat the even pace by
PROMOTION_Z = 2.0


@dataclass(frozen=True, slots=True)
class Promotion:
    served: bool
    reason: str


def promotion(meta: dict[str, Any]) -> Promotion:
    """Whether a trained policy may set the pace, from its metadata's `validation`:
    its mean IS minus that of a = 0 (sor-ml's TWAP line) on the same episodes, and that
    difference's standard error. No validation (or an empty one) is no evidence: not served."""
    v = meta.get("validation")
    n = v.get("episodes", 0) if isinstance(v, dict) else 0
    if not isinstance(v, dict) or not n:
        return Promotion(False, "no validation against the even pace")
    try:
        diff, se = float(v["diff_is_bps"]), float(v["diff_stderr_bps"])
    except (KeyError, TypeError, ValueError):
        return Promotion(False, "its validation has no diff_is_bps and diff_stderr_bps")
    said = f"{diff:+.2f} +- {se:.2f} bps against the even pace over {n} validation episodes"
    if math.isfinite(diff) and math.isfinite(se) and se > 0 and diff <= -PROMOTION_Z * se:
        return Promotion(True, said)
    return Promotion(False, f"{said}; serving needs {-PROMOTION_Z:g} standard errors or better")


class EvenPace:
    """The pace when the learned policy is not served: a = 0, the TWAP line (`ml` then
    runs TwapSlicer itself, which is the same schedule). `reason`: why."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __call__(self, obs: np.ndarray) -> float:
        return 0.0


@dataclass(frozen=True, slots=True)
class ShippedSlicer:
    """The slicer policy of a models directory: the ONNX policy itself, and the pace
    `ml` runs with it (`served`: the policy if its validation promotes it, else
    `EvenPace`). Loaded and kept by the model registry (router.registry)."""

    policy: OnnxPolicy
    served: Policy

    @classmethod
    def load(cls, models_dir: Path) -> ShippedSlicer:
        """A missing or corrupt policy raises ModelError, served or not: the shipped
        artifacts must be whole."""
        policy, meta = _load_slicer(models_dir)
        verdict = promotion(meta)
        if verdict.served:
            log.info("learned slicer served", validation=verdict.reason)
            return cls(policy, policy)
        log.info("learned slicer not served: ml runs the even pace", why=verdict.reason)
        return cls(policy, EvenPace(verdict.reason))
