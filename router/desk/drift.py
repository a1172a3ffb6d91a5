"""The desk's drift monitor: router.drift fed with what the desk sees, and what its alerts
and fallback do.

What it is fed, from the parents of the model-guided strategies (routing "ml": `ml`,
`sor-ml`) only:
- the rows the served models scored, and per feature those outside the training range:
  the models count both themselves (models.serving.features.Clipper), and the feed
  reads the counts' increase after every step of the markets (a swapped-in version
  counts from zero);
- each passive child (post-only lit, dark minimum-quantity) with the fill model's
  P(fill) of its context as its decision record keeps it (scored here, counting
  nothing), and whether it filled within the label's 30 s (models/fill.meta.json): a
  fill decides it, or the first fact of its market more than 30 s after it was sent;
- each RFQ whose decision record holds P(respond) and P(best) of the asked dealers, the
  panel scored as asked (models.serving.predictors.MlPanel, `monitored`), and at its
  end who answered and whose
  quote was the best for the client's side (the labels of the dealer models' training,
  models/training/dealer_data.py);
- each parent that ended filled or at its horizon: its IS (the desk's TCA) and the
  pre-trade estimate from its market history at arrival (router.drift.pre_trade_cost_bps).

What an alert does: a structlog warning (an info line when it clears), a row of
svc_drift_events, a `DriftAlertChanged` desk event (MQTT `alerts/drift`, the WebSocket
and the dashboard), the Prometheus series below. A fallback change withdraws the models
(or gives them back) through the live views every execution reads
(router.registry.LiveModels.withdrawn): working parents go on, their next decisions made
the heuristic router's way, each recorded with why (`fallback`). An engaged fallback is
journaled, and at a restart the models stay withdrawn until an operator resumes them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from models.serving.artifacts import ServedModel
from models.serving.features import context_from_inputs, fill_row
from models.serving.predictors import FillPredictor
from models.training.fill_data import HORIZON_S as FILL_HORIZON_S
from router.desk.orders import Order
from router.desk.outbox import Outbox
from router.desk_api import DriftAlertChanged, DriftFallbackChanged, OrderStatus
from router.domain import (
    NANOS_PER_SECOND,
    ChildOrderFilled,
    ChildOrderSent,
    DecisionRecorded,
    Event,
    Quote,
    QuoteReceived,
    RfqEnded,
    RfqRequested,
    RfqTraded,
    Side,
)
from router.drift import (
    MODELS,
    AlertChange,
    DriftConfig,
    DriftMonitor,
    FallbackChange,
    pre_trade_cost_bps,
)
from router.journal import Journal, SvcDriftEventRow
from router.registry import ModelRegistry
from router.strategies import strategy_spec
from router.telemetry import PREFIX

log = structlog.get_logger("blockroute.drift")

_HORIZON_NS = int(FILL_HORIZON_S * NANOS_PER_SECOND)
_REQUEST_SUFFIX = "-request-d"  # an RFQ's decision id: f"{rfq_id}-request-d"
_P_RESPOND, _P_BEST = "score_p_respond_", "score_p_best_asked_"
_HISTORY = 50  # the latest changes kept for GET /api/drift


@dataclass
class _Rfq:
    """One model-guided RFQ: the panel's probabilities, then what happened."""

    p_respond: dict[str, float]
    p_best: dict[str, float]
    dealers: tuple[str, ...] = ()
    side: Side | None = None
    quotes: dict[str, Quote] = field(default_factory=dict)
    traded_side: Side | None = None


class DriftFeed:
    """One per desk: feeds the monitor, and acts on what it says (see the module)."""

    def __init__(
        self,
        config: DriftConfig,
        models: ModelRegistry,
        outbox: Outbox,
        now_ns: Callable[[], int],
        registry: CollectorRegistry,
        also: Sequence[ModelRegistry] = (),
    ) -> None:
        self.config = config
        self.monitor = DriftMonitor(config)
        self._models = models
        self._live = models.live()
        # the other sets the desk trades on (the algo wheel's challenger's): a fallback
        # withdraws them too, so that no parent of the desk keeps acting on a model
        self._also = [m.live() for m in also]
        self._outbox = outbox
        self._now_ns = now_ns
        self._guided: dict[str, bool] = {}  # engine strategy -> routes with the models
        # the served models' counts as last read: (model, rows, clipped per feature)
        self._seen: dict[tuple[str, str], tuple[ServedModel, int, np.ndarray]] = {}
        self._decision: tuple[str, Mapping[str, float]] | None = None  # the last child's
        # passive children waiting for their label, per symbol in the order sent:
        # child id -> (P(fill), sent at)
        self._pending: dict[str, dict[str, tuple[float, int]]] = {}
        self._rfqs: dict[str, _Rfq] = {}
        self.history: deque[dict[str, Any]] = deque(maxlen=_HISTORY)
        self._raised = Counter(
            f"{PREFIX}drift_alerts",
            "Drift alerts raised, by model family and figure",
            ("family", "figure"),
            registry=registry,
        )
        registry.register(DriftCollector(self))

    # ---------------------------------------------------------------- lifecycle

    def start(self, journal: Journal | None) -> None:
        """At the desk's start: count the models' use from now on, and keep the models
        withdrawn if the journal's last word on the fallback is that it was engaged."""
        if not self.config.enabled:
            return
        self._counts()  # the baseline: what the process scored before is not this desk's
        last = journal.last_fallback() if journal is not None else None
        if last is None or last.kind != "fallback_engaged":
            return
        if not self.config.fallback:
            log.warning(
                "the journal has the models withdrawn, but [drift] fallback is off: served",
                reason=last.message,
            )
            return
        self.monitor.restore(last.message, last.ts_ns, last.by)
        self._withdraw(last.message)
        log.warning(
            "models still withdrawn since before the restart: resume them with "
            "POST /api/drift/resume",
            reason=last.message,
        )

    def stop(self) -> None:
        """The live views may outlive this desk (the process's registry): leave them
        serving. The journal keeps the fallback for the next start."""
        self._withdraw("")

    def _withdraw(self, reason: str) -> None:
        """Every set's live views: withdrawn for `reason`, or serving again ("")."""
        for live in (self._live, *self._also):
            live.withdrawn = reason

    # ---------------------------------------------------------------- what the desk sees

    def guided(self, rec: Order) -> bool:
        """`rec` runs a strategy that routes with the learned models."""
        known = self._guided.get(rec.engine_strategy)
        if known is None:
            known = self._guided[rec.engine_strategy] = (
                bool(rec.engine_strategy) and strategy_spec(rec.engine_strategy).routing == "ml"
            )
        return known

    def fallback_for(self, rec: Order) -> str:
        """Why `rec`'s decisions are the heuristic router's now ("" if they are not)."""
        reason = self._live.withdrawn
        return reason if reason and self.guided(rec) else ""

    def on_event(self, rec: Order, e: Event, ts: int) -> None:
        """One engine event of `rec`, at `ts` on the service clock."""
        if not self.config.enabled or not self.guided(rec):
            return
        symbol = rec.row.symbol
        if isinstance(e, DecisionRecorded):
            self._on_decision(e)
        elif isinstance(e, ChildOrderSent):
            self._on_sent(e, ts, symbol)
        elif isinstance(e, ChildOrderFilled):
            sent = self._pending.get(symbol, {}).pop(e.child_id, None)
            if sent is not None:
                self.monitor.outcome("fill", "passive", sent[0], ts - sent[1] <= _HORIZON_NS)
        else:
            self._on_rfq(e)
        self._expire(symbol, ts)

    def _on_decision(self, e: DecisionRecorded) -> None:
        decision = str(e.decision_id)
        if decision.endswith(_REQUEST_SUFFIX):
            a = e.alternatives
            p_respond = {k[len(_P_RESPOND) :]: v for k, v in a.items() if k.startswith(_P_RESPOND)}
            if p_respond:  # the model-guided panel's (the heuristic's has none)
                p_best = {k[len(_P_BEST) :]: v for k, v in a.items() if k.startswith(_P_BEST)}
                self._rfqs[decision[: -len(_REQUEST_SUFFIX)]] = _Rfq(p_respond, p_best)
        elif decision.endswith("-d"):
            # a child's decision comes just before the child is sent (or blocked)
            self._decision = (decision[:-2], e.inputs)

    def _on_sent(self, e: ChildOrderSent, ts: int, symbol: str) -> None:
        c = e.child
        decision, self._decision = self._decision, None
        if decision is None or decision[0] != c.child_id:
            return
        if c.quote_id is not None or not (c.post_only or c.min_qty > 0):
            return  # not a passive child: the fill model says nothing of it
        ctx = context_from_inputs(c.venue, c.side, decision[1])
        fill = self._models.loaded_family("fill")
        if ctx is None or not isinstance(fill, FillPredictor):
            return
        p = float(fill.model.score(np.array([fill_row(ctx)]))[0])
        self._pending.setdefault(symbol, {})[c.child_id] = (p, ts)

    def _expire(self, symbol: str, ts: int) -> None:
        """The passive children of `symbol` sent more than 30 s before `ts` and not
        filled since: negatives (the label's censoring, models/training/fill_data.py)."""
        pending = self._pending.get(symbol)
        while pending:
            child_id, (p, sent) = next(iter(pending.items()))
            if ts - sent <= _HORIZON_NS:
                break
            del pending[child_id]
            self.monitor.outcome("fill", "passive", p, False)

    def _on_rfq(self, e: Event) -> None:
        if isinstance(e, RfqRequested):
            r = self._rfqs.get(e.request.rfq_id)
            if r is not None:
                r.dealers, r.side = tuple(e.request.dealers), e.request.side
        elif isinstance(e, QuoteReceived):
            r = self._rfqs.get(e.quote.rfq_id)
            if r is not None:
                r.quotes[e.quote.dealer] = e.quote
        elif isinstance(e, RfqTraded):
            r = self._rfqs.get(e.rfq_id)
            if r is not None:
                r.traded_side = e.side
        elif isinstance(e, RfqEnded):
            r = self._rfqs.pop(e.rfq_id, None)
            if r is not None:
                self._label_rfq(r)

    def _label_rfq(self, r: _Rfq) -> None:
        """The dealer models' labels (models/training/dealer_data.py `_label`): answered
        within the time limit; the best price for the client's side (its own, or the
        traded one of a two-sided request; unknown otherwise), ties to the earlier
        quote, then to the panel's order."""
        side = r.side or r.traded_side
        winner = None
        if side is not None:
            prices = {d: p for d, q in r.quotes.items() if (p := q.price_for(side)) is not None}
            order = {d: i for i, d in enumerate(r.dealers)}
            if prices:
                winner = min(
                    prices,
                    key=lambda d: (side.sign * prices[d], r.quotes[d].ts_ns, order.get(d, 0)),
                )
        for d in r.dealers:
            if d in r.p_respond:
                self.monitor.outcome("dealer", "respond", r.p_respond[d], d in r.quotes)
            if side is not None and d in r.p_best:
                self.monitor.outcome("dealer", "best", r.p_best[d], d == winner)

    def completed(self, rec: Order, status: OrderStatus, tca: Mapping[str, Any]) -> None:
        """`rec` ended: a model-guided parent filled or at its horizon counts (one
        canceled was cut short: its IS says nothing of the router)."""
        if not self.config.enabled or not self.guided(rec) or rec.history is None:
            return
        if status not in (OrderStatus.FILLED, OrderStatus.EXPIRED):
            return
        is_bps = tca.get("is_bps")
        if not isinstance(is_bps, int | float) or not math.isfinite(is_bps):
            return
        horizon_s = (rec.row.end_ns - rec.row.start_ns) / NANOS_PER_SECOND
        self.monitor.parent(float(is_bps), pre_trade_cost_bps(rec.history, rec.row.qty, horizon_s))

    # ---------------------------------------------------------------- after each step

    def step(self) -> None:
        """Read the models' counts, judge the figures, and act on what changed."""
        if not self.config.enabled:
            return
        for family, (rows, counts) in self._counts().items():
            self.monitor.rows(family, rows, counts)
        now = self._now_ns()
        changes, fallback = self.monitor.evaluate(now)
        for change in changes:
            self._alert(change, now)
        if fallback is not None:
            self._fallback(fallback, now)

    def _counts(self) -> dict[str, tuple[int, dict[str, int]]]:
        """Per family, the rows its served models scored since the last read and how
        many had each feature outside its training range."""
        out: dict[str, tuple[int, dict[str, int]]] = {}
        for family in MODELS:
            loaded = self._models.loaded_family(family)
            if loaded is None:
                continue
            if isinstance(loaded, FillPredictor):
                served: Mapping[str, ServedModel] = {"passive": loaded.model}
            elif isinstance(loaded, dict):
                served = loaded
            else:
                continue
            rows = 0
            counts: dict[str, int] = {}
            for name, model in served.items():
                c = model.clipper
                seen = self._seen.get((family, name))
                if seen is not None and seen[0] is model:
                    new_rows, new_counts = c.rows - seen[1], c.counts - seen[2]
                else:  # first read, or a version swapped in: its own counts from zero
                    new_rows, new_counts = c.rows, c.counts.copy()
                self._seen[(family, name)] = (model, c.rows, c.counts.copy())
                rows += new_rows
                for j in np.flatnonzero(new_counts):
                    counts[c.names[j]] = counts.get(c.names[j], 0) + int(new_counts[j])
            out[family] = (rows, counts)
        return out

    def _alert(self, ch: AlertChange, now: int) -> None:
        kind = "alert_raised" if ch.raised else "alert_cleared"
        self._journal(now, kind, ch.family, ch.figure, ch.value, ch.threshold, ch.n, ch.message)
        self._outbox.events.append(
            DriftAlertChanged(
                now,
                ch.family,
                ch.figure,
                ch.raised,
                ch.value,
                ch.threshold,
                ch.n,
                ch.message,
                bool(self.monitor.fallback),
            )
        )
        if ch.raised:
            self._raised.labels(ch.family, ch.figure).inc()
            log.warning(
                "drift alert raised",
                family=ch.family,
                figure=ch.figure,
                value=ch.value,
                threshold=ch.threshold,
                n=ch.n,
                message=ch.message,
            )
        else:
            log.info(
                "drift alert cleared",
                family=ch.family,
                figure=ch.figure,
                value=ch.value,
                threshold=ch.threshold,
                n=ch.n,
                message=ch.message,
            )

    def _fallback(self, fb: FallbackChange, now: int) -> None:
        self._withdraw(fb.reason if fb.engaged else "")
        kind = "fallback_engaged" if fb.engaged else "fallback_released"
        self._journal(now, kind, "", "", None, None, 0, fb.reason, fb.by)
        self._outbox.events.append(DriftFallbackChanged(now, fb.engaged, fb.reason, fb.by))
        if fb.engaged:
            log.warning(
                "models withdrawn: ml decisions run on the heuristic router", reason=fb.reason
            )
        else:
            log.warning("models served again", by=fb.by, reason=fb.reason)

    def _journal(
        self,
        now: int,
        kind: str,
        family: str,
        figure: str,
        value: float | None,
        threshold: float | None,
        n: int,
        message: str,
        by: str = "drift",
    ) -> None:
        row = {
            "ts_ns": now,
            "kind": kind,
            "family": family,
            "figure": figure,
            "value": value if value is None or math.isfinite(value) else None,
            "threshold": threshold,
            "n": n,
            "by": by,
            "message": message,
        }
        self._outbox.batch.insert(SvcDriftEventRow, row)
        self.history.appendleft(row)

    # ---------------------------------------------------------------- the operator

    def resume(self, by: str, reason: str) -> None:
        """Give the models back (router.drift.DriftError if they are not withdrawn);
        staged for the next commit."""
        self._fallback(self.monitor.resume(by, reason), self._now_ns())

    def report(self) -> dict[str, Any]:
        """GET /api/drift: the monitor's report, whether it is on, the latest changes."""
        return {
            "enabled": self.config.enabled,
            **self.monitor.report(),
            "history": list(self.history),
        }


class DriftCollector(Collector):
    """The drift figures as Prometheus series, read at each scrape."""

    def __init__(self, feed: DriftFeed) -> None:
        self._feed = feed

    def collect(self) -> Iterator[Metric]:
        monitor = self._feed.monitor
        report = monitor.report()
        share = GaugeMetricFamily(
            f"{PREFIX}drift_out_of_range_share",
            "Share of the last rows a model family scored with the feature outside its "
            "training range",
            labels=("family", "feature"),
        )
        values = CounterMetricFamily(
            f"{PREFIX}drift_out_of_range_values",
            "Feature values outside the training range that a model family was asked about",
            labels=("family", "feature"),
        )
        ece = GaugeMetricFamily(
            f"{PREFIX}drift_ece",
            "Expected calibration error of a model over its last outcomes",
            labels=("family", "model"),
        )
        for family, m in report["models"].items():
            for feature, v in m["out_of_range"].items():
                share.add_metric((family, feature), v["share"])
                values.add_metric((family, feature), v["total"])
            for model, cal in m["calibration"].items():
                if cal["ece"] is not None:
                    ece.add_metric((family, model), cal["ece"])
        yield share
        yield values
        yield ece
        figures = report["is_vs_estimate"]
        for name, key, text in (
            ("drift_is_diff_bps", "mean_diff_bps", "Mean IS minus the pre-trade estimate, bps"),
            ("drift_is_z", "z", "z-score of the mean IS minus the pre-trade estimate"),
        ):
            if figures[key] is not None:
                yield GaugeMetricFamily(
                    f"{PREFIX}{name}", f"{text}, last parents", value=figures[key]
                )
        active = GaugeMetricFamily(
            f"{PREFIX}drift_alert_active",
            "1 while a drift alert is raised",
            labels=("family", "figure"),
        )
        for family, figure in monitor.alerts:
            active.add_metric((family, figure), 1.0)
        yield active
        yield GaugeMetricFamily(
            f"{PREFIX}drift_fallback",
            "1 while the learned models are withdrawn (the heuristic router decides for them)",
            value=1.0 if monitor.fallback else 0.0,
        )
