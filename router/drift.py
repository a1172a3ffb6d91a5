"""Drift of the learned models on the live desk, the alerts it raises, and the fallback
to the heuristic router.

Pure logic: no clock, no I/O, no models. The desk feeds it (router/desk/drift.py) with
what it sees and asks it, after each step of the markets, what changed (`evaluate`).

Figures:
- out of range (families "dealer" and "fill"): of the last `range_window` rows a
  family's models scored, the share in which each feature lay outside its training
  range (the [min, max] of the training rows, which every artifact's metadata keeps as
  its clipping range), counted per feature name; the figure judged is the largest
  share of any one feature.
- calibration: the expected calibration error (models.training.metrics.ece, the one
  the held-out metrics of the metadata use) of each model's probabilities against
  what happened, over the last `window` outcomes: P(fill within 30 s) of the
  model-guided parents' passive children ("fill", model "passive"); P(respond) and
  P(best quote) of the dealers the model-guided panel asked ("dealer", models
  "respond" and "best").
- IS against the pre-trade estimate ("router"): for each model-guided parent that
  ended (filled, or at its horizon), its implementation shortfall minus the estimate
  made from what was known at its arrival (`pre_trade_cost_bps`); the mean of that
  difference over the last `is_window` parents and the z-score of the mean (mean over
  its standard error). Only a positive z (dearer than estimated) raises an alert.

An alert is raised once, when a figure with at least its minimum of samples goes above
its threshold, and cleared once, when that figure is back at or under `clear_ratio`
times the threshold: a figure hovering about its threshold does not flap. With
`fallback`, a raised alert withdraws the models (the desk routes their decisions
with the heuristic router, and still has them score in the shadow, so that the figures
go on); they come back when an operator says so (`resume`), or, with `resume = "auto"`,
once every alert has cleared.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from models.training.metrics import ece
from router.allocation import twap_impact_share
from router.ports import MarketHistory

#: the model families whose inputs and probabilities are watched, with their models
MODELS: Mapping[str, tuple[str, ...]] = {"dealer": ("respond", "best"), "fill": ("passive",)}
ROUTER = "router"  # the family of the IS figure: the model-guided router as a whole
RESUME_MODES = ("operator", "auto")
#: what each calibrated model predicts, for the messages
_PREDICTS = {
    ("dealer", "respond"): "P(respond) of the dealers asked",
    ("dealer", "best"): "P(best quote) of the dealers asked",
    ("fill", "passive"): "P(fill within 30 s) of the passive children",
}


class DriftError(ValueError):
    """A drift setting out of range, or a request the monitor cannot do now."""


@dataclass(frozen=True, slots=True)
class DriftConfig:
    """The [drift] section of the service config (config/service.toml explains each
    key). Raises DriftError for a value out of range."""

    enabled: bool = True
    window: int = 500  # outcomes per calibration figure
    min_samples: int = 200  # rows or outcomes before a figure is judged
    range_window: int = 5000  # rows per family for the out-of-range share
    max_out_of_range: float = 0.05
    max_ece: float = 0.10
    is_window: int = 50  # parents
    is_min_parents: int = 20
    max_is_z: float = 3.0
    clear_ratio: float = 0.8
    fallback: bool = False
    resume: str = "operator"

    def __post_init__(self) -> None:
        for name in ("window", "min_samples", "range_window", "is_window", "is_min_parents"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DriftError(f"{name} must be a whole number >= 1, got {value!r}")
        if self.min_samples > self.window or self.min_samples > self.range_window:
            raise DriftError(
                f"min_samples ({self.min_samples}) must not exceed window ({self.window}) "
                f"or range_window ({self.range_window}): no figure would ever be judged"
            )
        if self.is_min_parents > self.is_window:
            raise DriftError(
                f"is_min_parents ({self.is_min_parents}) must not exceed is_window "
                f"({self.is_window})"
            )
        if self.is_min_parents < 2:
            raise DriftError("is_min_parents must be >= 2: a z-score needs a spread")
        for name, top in (("max_out_of_range", 1.0), ("max_ece", 1.0), ("clear_ratio", 1.0)):
            value = getattr(self, name)
            if not (_number(value) and 0.0 < value <= top):
                raise DriftError(f"{name} must be in (0, {top:g}], got {value!r}")
        if not (_number(self.max_is_z) and self.max_is_z > 0):
            raise DriftError(f"max_is_z must be a finite number > 0, got {self.max_is_z!r}")
        if self.resume not in RESUME_MODES:
            raise DriftError(
                f"resume must be one of {', '.join(RESUME_MODES)}, got {self.resume!r}"
            )

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# ------------------------------------------------------------------------------ figures


class RangeWindow:
    """The rows a family's models scored and, per feature, how many of them lay outside
    its training range: over the last `window` rows (in the chunks they came in, so the
    window is at least `window` rows, and less than one chunk more) and in total."""

    def __init__(self, window: int) -> None:
        self.window = window
        self._chunks: deque[tuple[int, Counter[str]]] = deque()
        self.rows = 0
        self.counts: Counter[str] = Counter()
        self.rows_total = 0
        self.counts_total: Counter[str] = Counter()

    def add(self, rows: int, counts: Mapping[str, int]) -> None:
        if rows <= 0:
            return
        chunk = Counter({k: int(v) for k, v in counts.items() if v})
        self._chunks.append((rows, chunk))
        self.rows += rows
        self.counts.update(chunk)
        self.rows_total += rows
        self.counts_total.update(chunk)
        while self._chunks and self.rows - self._chunks[0][0] >= self.window:
            old_rows, old = self._chunks.popleft()
            self.rows -= old_rows
            self.counts.subtract(old)
        self.counts = +self.counts  # drop the features back at zero

    def shares(self) -> dict[str, float]:
        """Each feature's share of the window's rows outside its range (those with any)."""
        if not self.rows:
            return {}
        return {k: v / self.rows for k, v in sorted(self.counts.items())}

    def worst(self) -> tuple[str, float] | None:
        shares = self.shares()
        if not shares:
            return None
        name = max(shares, key=lambda k: (shares[k], k))
        return name, shares[name]


class CalibrationWindow:
    """The last `window` (probability, outcome) pairs of one model."""

    def __init__(self, window: int) -> None:
        self._p: deque[float] = deque(maxlen=window)
        self._y: deque[float] = deque(maxlen=window)
        self.total = 0
        self._ece: float | None = None  # kept until the next pair: judged every step

    def add(self, p: float, y: float) -> None:
        self._p.append(float(p))
        self._y.append(float(y))
        self.total += 1
        self._ece = None

    @property
    def n(self) -> int:
        return len(self._p)

    def ece(self) -> float | None:
        if not self._p:
            return None
        if self._ece is None:
            self._ece = float(ece(np.fromiter(self._y, float), np.fromiter(self._p, float)))
        return self._ece

    def means(self) -> tuple[float | None, float | None]:
        """(mean probability, share that happened)."""
        if not self._p:
            return None, None
        return float(np.mean(self._p)), float(np.mean(self._y))


class IsWindow:
    """The last `window` parents' IS and pre-trade estimate (bps)."""

    def __init__(self, window: int) -> None:
        self._is: deque[float] = deque(maxlen=window)
        self._est: deque[float] = deque(maxlen=window)
        self.total = 0

    def add(self, is_bps: float, estimate_bps: float) -> None:
        self._is.append(float(is_bps))
        self._est.append(float(estimate_bps))
        self.total += 1

    @property
    def n(self) -> int:
        return len(self._is)

    def figures(self) -> dict[str, float | None]:
        """The means, the mean difference (IS minus estimate), its standard deviation
        and the z-score of the mean (None until two parents, or with no spread)."""
        n = self.n
        if not n:
            return {
                "mean_is_bps": None,
                "mean_estimate_bps": None,
                "mean_diff_bps": None,
                "sd_diff_bps": None,
                "z": None,
            }
        diff = np.fromiter(self._is, float) - np.fromiter(self._est, float)
        mean = float(diff.mean())
        sd = float(diff.std(ddof=1)) if n >= 2 else None
        z = mean / (sd / math.sqrt(n)) if sd else None
        return {
            "mean_is_bps": float(np.mean(self._is)),
            "mean_estimate_bps": float(np.mean(self._est)),
            "mean_diff_bps": mean,
            "sd_diff_bps": sd,
            "z": z,
        }


def pre_trade_cost_bps(history: MarketHistory, qty: int, horizon_s: float) -> float:
    """What a parent of `qty` worked evenly over `horizon_s` is expected to cost, bps of
    the arrival price, from what the desk knew at its arrival: half the spread, the
    taker fee, and the part of the square-root law's impact (`impact_y` x daily
    volatility x sqrt(qty / ADV), 2/3 of it on average over the working) that a
    schedule that slow pays (router.allocation.twap_impact_share). The same model as
    the risk bid's agency cost (router.allocation.agency_cost_bps), on the parent's
    history rather than a live snapshot."""
    price = history.price
    half = 0.5 * history.spread
    impact = history.impact_y * history.daily_vol * 1e4 * math.sqrt(max(qty, 0) / history.adv)
    share = twap_impact_share(horizon_s)
    return (half + history.taker_fee) / price * 1e4 + share * 2.0 / 3.0 * impact


# ------------------------------------------------------------------------------- alerts


@dataclass(frozen=True, slots=True)
class Alert:
    """One figure above its threshold: raised at `since_ns`, active until cleared."""

    family: str
    figure: str  # "out_of_range", "ece_<model>" or "is_z"
    value: float
    threshold: float
    n: int
    message: str
    since_ns: int

    def to_json(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "figure": self.figure,
            "value": self.value,
            "threshold": self.threshold,
            "n": self.n,
            "message": self.message,
            "since_ns": self.since_ns,
        }


@dataclass(frozen=True, slots=True)
class AlertChange:
    """An alert raised (`raised`) or cleared, with the figure's value then."""

    family: str
    figure: str
    raised: bool
    value: float
    threshold: float
    n: int
    message: str


@dataclass(frozen=True, slots=True)
class FallbackChange:
    """The models withdrawn (`engaged`) or given back; `by`: "drift" or the operator."""

    engaged: bool
    reason: str
    by: str


@dataclass(frozen=True, slots=True)
class _Figure:
    family: str
    figure: str
    value: float | None
    threshold: float
    n: int
    minimum: int
    what: str  # the figure in words, for the messages


@dataclass
class _Fallback:
    reason: str = ""  # why the models are withdrawn ("": they are not)
    since_ns: int | None = None
    by: str = ""


@dataclass
class DriftMonitor:
    """The figures, the active alerts and the fallback's state (see the module)."""

    config: DriftConfig
    alerts: dict[tuple[str, str], Alert] = field(default_factory=dict)
    raised_total: Counter[tuple[str, str]] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        c = self.config
        self._range = {family: RangeWindow(c.range_window) for family in MODELS}
        self._calibration = {
            (family, model): CalibrationWindow(c.window)
            for family, models in MODELS.items()
            for model in models
        }
        self._is = IsWindow(c.is_window)
        self._fallback = _Fallback()

    # ---------------------------------------------------------------- what is seen

    def rows(self, family: str, rows: int, counts: Mapping[str, int]) -> None:
        """`rows` more rows scored by `family`'s models, `counts[feature]` of them with
        that feature outside its training range."""
        self._range[family].add(rows, counts)

    def outcome(self, family: str, model: str, p: float, happened: bool) -> None:
        """One probability of `family`'s `model` and whether the event happened."""
        self._calibration[(family, model)].add(p, 1.0 if happened else 0.0)

    def parent(self, is_bps: float, estimate_bps: float) -> None:
        """One model-guided parent that ended: its IS and its pre-trade estimate."""
        if math.isfinite(is_bps) and math.isfinite(estimate_bps):
            self._is.add(is_bps, estimate_bps)

    # ---------------------------------------------------------------- judging

    def _figures(self) -> Iterable[_Figure]:
        c = self.config
        for family, window in self._range.items():
            worst = window.worst()
            what = (
                f"{worst[0]} outside its training range in {worst[1]:.1%} of the last "
                f"{window.rows} rows"
                if worst is not None
                else f"no feature outside its training range in the last {window.rows} rows"
            )
            value = worst[1] if worst is not None else (0.0 if window.rows else None)
            yield _Figure(
                family,
                "out_of_range",
                value,
                c.max_out_of_range,
                window.rows,
                c.min_samples,
                what,
            )
        for (family, model), calibration in self._calibration.items():
            value = calibration.ece()
            what = f"ECE of {_PREDICTS[(family, model)]} over the last {calibration.n}"
            yield _Figure(
                family,
                f"ece_{model}",
                value,
                c.max_ece,
                calibration.n,
                c.min_samples,
                what + (f": {value:.3f}" if value is not None else ""),
            )
        f = self._is.figures()
        z = f["z"]
        what = "IS against the pre-trade estimate"
        if f["mean_diff_bps"] is not None:
            what += f": {f['mean_diff_bps']:+.2f} bps on average over the last {self._is.n} parents"
        if z is not None:
            what += f" (z {z:+.2f})"
        yield _Figure(ROUTER, "is_z", z, c.max_is_z, self._is.n, c.is_min_parents, what)

    def evaluate(self, now_ns: int) -> tuple[list[AlertChange], FallbackChange | None]:
        """Raise the alerts whose figure crossed its threshold, clear those back under
        `clear_ratio` of it; then engage the fallback (a new alert, with `fallback`)
        or, with `resume = "auto"`, give the models back once no alert is left."""
        c = self.config
        changes: list[AlertChange] = []
        for f in self._figures():
            key = (f.family, f.figure)
            active = self.alerts.get(key)
            if f.value is None:
                continue
            if active is None and f.n >= f.minimum and f.value > f.threshold:
                message = f"{f.family}: {f.what}, above {_limit(f)}"
                self.alerts[key] = Alert(
                    f.family, f.figure, f.value, f.threshold, f.n, message, now_ns
                )
                self.raised_total[key] += 1
                changes.append(
                    AlertChange(f.family, f.figure, True, f.value, f.threshold, f.n, message)
                )
            elif active is not None and f.value <= c.clear_ratio * f.threshold:
                del self.alerts[key]
                message = (
                    f"{f.family}: {f.what}, back under {c.clear_ratio:g} x {_limit(f)}: cleared"
                )
                changes.append(
                    AlertChange(f.family, f.figure, False, f.value, f.threshold, f.n, message)
                )
        return changes, self._fallback_change(changes, now_ns)

    def _fallback_change(self, changes: list[AlertChange], now_ns: int) -> FallbackChange | None:
        c = self.config
        raised = [ch for ch in changes if ch.raised]
        if c.fallback and not self._fallback.reason and raised:
            reason = "drift alert: " + raised[0].message
            self._fallback = _Fallback(reason, now_ns, "drift")
            return FallbackChange(True, reason, "drift")
        if self._fallback.reason and c.resume == "auto" and not self.alerts and changes:
            self._fallback = _Fallback()
            return FallbackChange(False, "every drift alert has cleared", "drift")
        return None

    # ---------------------------------------------------------------- the fallback

    @property
    def fallback(self) -> str:
        """Why the models are withdrawn now ("" while they are served)."""
        return self._fallback.reason

    def resume(self, by: str, reason: str) -> FallbackChange:
        """An operator gives the models back. Raises DriftError if they are not
        withdrawn. Alerts still active stay active, and engage the fallback again only
        once they have cleared and are raised anew: the operator has looked at them."""
        if not self._fallback.reason:
            raise DriftError("the models are not withdrawn: nothing to resume")
        still = ", ".join(f"{f}/{g}" for f, g in self.alerts)
        self._fallback = _Fallback()
        why = reason + (f" (alerts still active: {still})" if still else "")
        return FallbackChange(False, why, by)

    def restore(self, reason: str, since_ns: int, by: str) -> None:
        """The fallback as the journal last recorded it (engaged), at a restart: the
        figures start again from nothing, the models stay withdrawn until resumed."""
        self._fallback = _Fallback(reason, since_ns, by)

    # ---------------------------------------------------------------- reading

    def report(self) -> dict[str, Any]:
        """Every figure, the active alerts and the fallback, as JSON (GET /api/drift)."""
        c = self.config
        models: dict[str, Any] = {}
        for family, window in self._range.items():
            worst = window.worst()
            models[family] = {
                "rows": window.rows,
                "rows_total": window.rows_total,
                "out_of_range": {
                    name: {
                        "count": int(window.counts.get(name, 0)),
                        "share": window.counts.get(name, 0) / window.rows if window.rows else 0.0,
                        "total": int(total),
                    }
                    for name, total in sorted(window.counts_total.items())
                },
                "worst_feature": None if worst is None else worst[0],
                "worst_share": None if worst is None else worst[1],
                "calibration": {
                    model: _calibration_json(self._calibration[(family, model)])
                    for model in MODELS[family]
                },
            }
        return {
            "config": c.to_json(),
            "models": models,
            "is_vs_estimate": {
                "parents": self._is.n,
                "parents_total": self._is.total,
                **self._is.figures(),
            },
            "alerts": [a.to_json() for a in self.alerts.values()],
            "fallback": {
                "engaged": bool(self._fallback.reason),
                "reason": self._fallback.reason,
                "since_ns": self._fallback.since_ns,
                "by": self._fallback.by,
            },
        }


def _limit(f: _Figure) -> str:
    if f.figure == "out_of_range":
        return f"{f.threshold:.1%}"
    if f.figure == "is_z":
        return f"z {f.threshold:g}"
    return f"{f.threshold:.3f}"


def _calibration_json(w: CalibrationWindow) -> dict[str, Any]:
    mean_p, rate = w.means()
    return {"n": w.n, "total": w.total, "ece": w.ece(), "mean_p": mean_p, "rate": rate}
