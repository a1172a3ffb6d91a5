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
        "the version of each family the service loaded at its start"
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
    ShadowReport,
)
