"""The REST answers as pydantic models: the OpenAPI document's response schemas are
generated from them (openapi.py), as the request bodies' are from bodies.py.

The handlers build their JSON as before (ParentView.to_json, the desk's rows); these
models describe it, and the tests hold the two together: real answers validate against
the models and send no key the models leave out (tests/router/api/test_openapi.py), and
schemathesis checks every answer of the real service against the document.

A model's class name is its component name; its docstring is the schema's description.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import JsonDict, JsonValue

from router.desk_api import CxlRejReason, OrderStatus, OrdRejReason

Ns = Annotated[int, Field(description="nanoseconds since the Unix epoch, service clock")]


def _sometimes(description: str | None = None, enum: Sequence[str] | None = None) -> Any:
    """A key that some answers leave out: not required, and no default in the schema (a
    client gets no value for it when it is absent)."""

    def update(schema: JsonDict) -> None:
        schema.pop("default", None)
        if enum is not None:
            values: list[JsonValue] = [*enum]
            schema["enum"] = values

    return Field(None, description=description, json_schema_extra=update)


class ParentView(BaseModel):
    """A parent order as its client sees it now."""

    parent_id: str
    client: str = Field(description='FIX SenderCompID, or "api"')
    cl_ord_id: str = Field(description="the latest accepted ClOrdID")
    orig_cl_ord_id: str = Field(description="the ClOrdID it was created with")
    symbol: str
    side: Literal["buy", "sell"]
    qty: int
    ord_type: Literal["market", "limit"]
    limit_price: float | None
    strategy: str
    participation: float | None
    status: OrderStatus
    start_ns: Ns
    end_ns: Ns
    filled_qty: int
    avg_price: float = Field(description="0 before the first fill")
    arrival_mid: float
    n_children: int
    updated_ns: Ns
    text: str = Field(description="why it ended, when it did not fill")
    leaves_qty: int
    model_arm: Literal["champion", "challenger"] | None = Field(
        description="the algo wheel's arm that runs it; null: not in the wheel"
    )
    model_versions: dict[str, int] | None = Field(
        description="the version of each model family it started on (the model registry's); "
        "null: it reads no model, or the service serves no registry"
    )


class Error(BaseModel):
    """Every error answer."""

    error: str = Field(description="a short code: validation_error, not_found, ...")
    field: str | None = Field(description="the field at fault")
    message: str
    reason: str = _sometimes(
        "OrdRejReason or CxlRejReason name, for desk refusals",
        enum=sorted({r.name for r in OrdRejReason} | {r.name for r in CxlRejReason}),
    )


class OrderList(BaseModel):
    orders: list[ParentView]


class Fill(BaseModel):
    """A child fill, as journaled."""

    exec_id: str
    child_id: str
    ts_ns: Ns
    venue: str
    venue_kind: Literal["lit", "dark", "rfq"]
    qty: int
    price: float
    fee: float = _sometimes()
    liquidity: str = _sometimes()


class FillList(BaseModel):
    parent_id: str
    fills: list[Fill]


_FAMILY = Literal["dealer", "fill", "slicer"]
_ANSWER = (
    "as the decision reads it: dealer {panel, p_any_quote}; fill {take, post: shares by "
    "'<venue> <level>', cost_ticks}; slicer {action, pace}"
)


class ShadowAnswer(BaseModel):
    """What a model family's challenger answered beside its champion in a decision
    (shadow mode: the router acts on the champion's answer only)."""

    champion_version: int | None
    challenger_version: int
    agree: bool = Field(description="the challenger's answer would have acted alike")
    champion: dict[str, Any] = Field(description=f"the champion's answer, {_ANSWER}")
    challenger: dict[str, Any] = Field(description="the challenger's answer, alike")
    diffs: dict[str, list[float | None]] = Field(
        description="the key numbers that differ: name -> [champion's, challenger's]"
    )
    latency_us: float = Field(description="the challenger's model calls, microseconds")


class Decision(BaseModel):
    """A routing decision: why this venue."""

    decision_id: str
    ts_ns: Ns
    chosen: str = Field(description="the venue or action chosen")
    inputs: dict[str, float]
    alternatives: dict[str, float] = Field(
        description="every candidate with its score (expected cost)"
    )
    fallback: str = _sometimes(
        "why the heuristic router made it in the learned models' place (drift fallback)"
    )
    shadow: dict[str, ShadowAnswer] | None = _sometimes(
        "shadow mode: the challengers' answers by model family, where one was asked"
    )


class DecisionList(BaseModel):
    parent_id: str
    decisions: list[Decision]


class SchedulePoint(BaseModel):
    ts_ns: Ns
    target_qty: float
    filled_qty: float


class Schedule(BaseModel):
    """Schedule vs realised at each decision."""

    parent_id: str
    qty: int
    start_ns: Ns
    end_ns: Ns
    schedule: list[SchedulePoint]


class Tca(BaseModel):
    parent_id: str
    tca: dict[str, Any] = Field(
        description="implementation shortfall (bps, positive = cost) and parts"
    )


# null where there is nothing to measure yet (no answer, no trade): a rate of 0 would
# say something false, and JSON has no NaN
_RATIO = "null until there is data"


class Dealer(BaseModel):
    """One dealer's line of the scorecard."""

    dealer: str
    rfqs: int
    response_rate: float | None = _sometimes(_RATIO)
    hit_ratio: float | None = _sometimes(_RATIO)
    cover_rate: float | None = _sometimes(_RATIO)
    avg_response_ms: float | None = _sometimes(_RATIO)
    price_improvement_bps: float | None = _sometimes(_RATIO)
    markout_bps: float | None = _sometimes(_RATIO)


class Scorecard(BaseModel):
    dealers: list[Dealer]


class KillSwitch(BaseModel):
    engaged: bool
    reason: str
    changed_ns: int | None
    canceled_parents: int


class Info(BaseModel):
    symbols: list[str]
    strategies: list[str]
    default_strategy: str
    client: str = _sometimes()
    token_configured: bool
    now_ns: Ns


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    ready: bool


class Snapshot(BaseModel):
    """The first message of the WebSocket."""

    type: Literal["snapshot"]
    orders: list[ParentView]
    kill_switch: KillSwitch
    now_ns: Ns


class ModelVersion(BaseModel):
    """One registered version of a model family (the model registry)."""

    family: Literal["dealer", "fill", "slicer"]
    version: int
    aliases: list[Literal["champion", "challenger"]]
    metrics: dict[str, float] = Field(description="held-out metrics, e.g. respond.auc")
    source: str = Field(description="where its files are (artifact URI)")
    created: str = Field(description="ISO 8601, UTC")
    description: str = _sometimes("the training data")
    params: dict[str, str] | None = _sometimes("seeds and arguments of its training")
    lineage: dict[str, str] | None = _sometimes("created_by, replaces, code_version, origin")


class ModelList(BaseModel):
    models: list[ModelVersion]
    served: dict[str, int] | None = _sometimes(
        "the version of each family the service serves now (its champions)"
    )
    unserved: dict[str, dict[str, Any]] | None = _sometimes(
        "champions the service could not load (it serves the version before): "
        '{family: {"version", "error"}}'
    )
    shadowed: dict[str, int] | None = _sometimes(
        "shadow mode: the challenger version asked beside each family's champion"
    )
    wheel_challenger: dict[str, int] | None = _sometimes(
        "the algo wheel: the version of each family its challenger arm serves"
    )


class ModelAliasChange(BaseModel):
    """A move of a model alias, as journaled (and published on MQTT)."""

    family: Literal["dealer", "fill", "slicer"]
    alias: Literal["champion", "challenger"]
    from_version: int | None = Field(description="null: no version held it")
    to_version: int
    action: Literal["register", "promote", "rollback"]
    by: str
    reason: str
    ts_ns: int = Field(description="nanoseconds since the Unix epoch, wall clock")


Family = Literal["dealer", "fill", "slicer"]


class WheelSample(BaseModel):
    """The implementation shortfall (bps) of n completed parents; sd and se need two."""

    n: int
    is_bps_mean: float | None
    is_bps_sd: float | None
    is_bps_stderr: float | None


class WheelArm(WheelSample):
    """One arm of the algo wheel: its models and its completed parents (`n` of them)."""

    versions: dict[str, int] | None = Field(description="the versions its latest parent ran")
    completed: int
    open: int = Field(description="parents still working: not in the statistics yet")
    by_status: dict[str, int] = Field(description="completed parents by final status")


class WheelDifference(BaseModel):
    """Challenger minus champion (bps; < 0: the challenger is cheaper), Welch."""

    parents: int = Field(description="completed parents of both arms it is computed on")
    diff_bps_mean: float
    diff_bps_stderr: float
    df: float = Field(description="Welch-Satterthwaite degrees of freedom")
    t: float | None = Field(description="null: infinite (a zero standard error)")


class WheelPooled(WheelDifference):
    """The difference matched by symbol and side: the strata's, weighted by parents."""

    strata: int


class WheelStratum(BaseModel):
    """One symbol and side; the difference where both arms have two completed parents."""

    symbol: str
    side: Literal["buy", "sell"]
    champion: WheelSample
    challenger: WheelSample
    matched: bool
    diff_bps_mean: float = _sometimes()
    diff_bps_stderr: float = _sometimes()
    df: float = _sometimes()
    t: float | None = _sometimes()


class WheelWindow(BaseModel):
    """Which parents: created since `since_ns`, and since either arm last changed models."""

    since_ns: int | None
    first_ns: Ns
    last_ns: Ns
    left_out_earlier_versions: int = Field(description="parents of an arm's earlier models")
    no_result: int = Field(description="completed parents without a finite IS")


class WheelSampleSize(BaseModel):
    """The minimum effect declared before, and the completed parents that find it."""

    min_effect_bps: float
    alpha: float
    power: float
    sd_bps: float | None
    parents_needed: int | None
    formula: str


class WheelArms(BaseModel):
    champion: WheelArm
    challenger: WheelArm


class WheelReport(BaseModel):
    """The algo wheel's live results: challenger against champion on the parents it
    split between them (`blockroute models wheel`)."""

    family: Family | None
    families_changed: list[Family]
    arms: WheelArms
    challenger_share: float | None = Field(description="of the completed parents")
    window: WheelWindow
    strata: list[WheelStratum]
    overall: WheelDifference | None = Field(description="unmatched: all completed parents")
    pooled: WheelPooled | None
    sample_size: WheelSampleSize
    is_diff_bps_mean: float | None
    is_diff_bps_stderr: float | None
    recommendation: Literal["promote", "keep"]
    verdict: Literal["promote", "keep", "inconclusive"]
    reason: str


class DriftConfig(BaseModel):
    """The [drift] section of the service config in force."""

    enabled: bool
    window: int = Field(description="outcomes per calibration figure")
    min_samples: int = Field(description="rows or outcomes before a figure is judged")
    range_window: int = Field(description="rows per family for the out-of-range shares")
    max_out_of_range: float
    max_ece: float
    is_window: int = Field(description="parents")
    is_min_parents: int
    max_is_z: float
    clear_ratio: float = Field(description="an alert clears under this share of its threshold")
    fallback: bool
    resume: Literal["operator", "auto"]


class OutOfRange(BaseModel):
    """One feature's values outside the training range."""

    count: int = Field(description="in the window's rows")
    share: float = Field(description="of the window's rows")
    total: int = Field(description="since the desk started")


class Calibration(BaseModel):
    """One model's probabilities against what happened, over its window."""

    n: int
    total: int = Field(description="outcomes since the desk started")
    ece: float | None = Field(description="expected calibration error; null without outcomes")
    mean_p: float | None
    rate: float | None = Field(description="share of the outcomes that happened")


class ModelDrift(BaseModel):
    """One model family's live inputs and calibration."""

    rows: int = Field(description="rows its models scored, in the window")
    rows_total: int
    out_of_range: dict[str, OutOfRange] = Field(description="by feature name")
    worst_feature: str | None
    worst_share: float | None
    calibration: dict[str, Calibration] = Field(description="by model")


class IsVsEstimate(BaseModel):
    """The model-guided parents' IS against the pre-trade estimate (bps)."""

    parents: int
    parents_total: int
    mean_is_bps: float | None
    mean_estimate_bps: float | None
    mean_diff_bps: float | None = Field(description="IS minus the estimate, mean")
    sd_diff_bps: float | None
    z: float | None = Field(description="the mean over its standard error")


class DriftAlert(BaseModel):
    """A drift alert raised and not cleared."""

    family: Literal["dealer", "fill", "router"]
    figure: str = Field(description="out_of_range, ece_<model> or is_z")
    value: float
    threshold: float
    n: int
    message: str
    since_ns: Ns


class DriftFallback(BaseModel):
    engaged: bool = Field(description="the learned models are withdrawn")
    reason: str
    since_ns: int | None
    by: str


class DriftChange(BaseModel):
    """An alert raised or cleared, or the fallback engaged or released, as journaled."""

    ts_ns: Ns
    kind: Literal["alert_raised", "alert_cleared", "fallback_engaged", "fallback_released"]
    family: str
    figure: str
    value: float | None
    threshold: float | None
    n: int
    by: str
    message: str


class Drift(BaseModel):
    """The drift monitor: figures per model family, IS against the estimate, the alerts
    raised, the fallback, the latest changes."""

    enabled: bool
    config: DriftConfig
    models: dict[str, ModelDrift] = Field(description="dealer, fill")
    is_vs_estimate: IsVsEstimate
    alerts: list[DriftAlert]
    fallback: DriftFallback
    history: list[DriftChange] = Field(description="newest first")


class ShadowVersions(BaseModel):
    champion_version: int | None
    challenger_version: int


class ShadowDisagreement(BaseModel):
    """A shadowed decision where the challenger would have acted otherwise."""

    ts_ns: Ns
    parent_id: str
    decision_ids: list[str] = Field(description="the records it rode on (none: nothing sent)")
    champion: dict[str, Any] = Field(description=f"the champion's answer, {_ANSWER}")
    challenger: dict[str, Any]
    diffs: dict[str, list[float | None]] = Field(
        description="the key numbers that differ: name -> [champion's, challenger's]"
    )


class ShadowFamily(BaseModel):
    """One model family in shadow mode. The figures are those of the pair of versions
    last compared (`compared`), since the service started or the pair changed."""

    family: _FAMILY
    champion_version: int | None = Field(description="served now")
    challenger_version: int | None = Field(description="asked beside it now; null: none")
    shadowing: bool
    compared: ShadowVersions | None = Field(description="null: nothing compared yet")
    since_ns: Ns | None
    decisions: int = Field(description="askings of the challenger (one per decision)")
    agreements: int
    agreement_rate: float | None = Field(description=_RATIO)
    latency_p50_us: float | None = Field(description="the challenger's model calls")
    latency_p99_us: float | None
    disagreements: list[ShadowDisagreement] = Field(description="the latest first")


class ShadowReport(BaseModel):
    """Shadow mode: how each family's challenger compares with its champion."""

    families: list[ShadowFamily]


# In the document's order; each model's $defs (ParentView, OrderStatus...) come with it.
ANSWERS: tuple[type[BaseModel], ...] = (
    ParentView,
    Error,
    OrderList,
    Fill,
    FillList,
    Decision,
    DecisionList,
    SchedulePoint,
    Schedule,
    Tca,
    Scorecard,
    Dealer,
    KillSwitch,
    Info,
    Health,
    Ready,
    Snapshot,
    ModelVersion,
    ModelList,
    ModelAliasChange,
    WheelReport,
    Drift,
    ShadowReport,
)
