"""The live desk's vocabulary: commands in, views and events out.

The service's edges (FIX gateway, REST API and dashboard, MQTT bus) talk to the desk
(router/desk/) only through these types. Commands are what a client asks for; a view
is a parent order as the client sees it now; desk events are what the edges report,
one per fact, each published after it is committed to the database. Times are integer
nanoseconds since the Unix epoch on the service clock (which runs `--sim-speed` times
faster than the wall clock from the moment the service started); prices are floats in
the instrument's currency. Nothing here imports the engine or the simulators.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol

from router.domain import OrdType, Side

ML_STRATEGY = "ml"  # what a client gets when it names no strategy


class OrdRejReason(enum.IntEnum):
    """FIX OrdRejReason (103)."""

    BROKER_OPTION = 0
    UNKNOWN_SYMBOL = 1
    EXCHANGE_CLOSED = 2
    ORDER_EXCEEDS_LIMIT = 3
    TOO_LATE_TO_ENTER = 4
    UNKNOWN_ORDER = 5
    DUPLICATE_ORDER = 6
    UNSUPPORTED_ORDER_CHARACTERISTIC = 11
    INCORRECT_QUANTITY = 13
    OTHER = 99


class CxlRejReason(enum.IntEnum):
    """FIX CxlRejReason (102)."""

    TOO_LATE_TO_CANCEL = 0
    UNKNOWN_ORDER = 1
    BROKER_OPTION = 2
    ALREADY_PENDING = 3
    DUPLICATE_CLORDID = 6
    OTHER = 99


class OrderStatus(enum.StrEnum):
    """A parent order's state. Terminal: canceled, filled, expired (horizon reached with
    quantity left; FIX OrdStatus C)."""

    WORKING = "working"
    PAUSED = "paused"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    FILLED = "filled"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        return self in (OrderStatus.CANCELED, OrderStatus.FILLED, OrderStatus.EXPIRED)


# ------------------------------------------------------------------------------ errors


class DeskError(Exception):
    """A request the desk refuses; the message says why and changes nothing."""


class OrderRejectedError(DeskError):
    """`field` names the request's field at fault (REST field names: "qty",
    "limit_price", ...), None when the order as a whole is refused."""

    def __init__(self, reason: OrdRejReason, text: str, field: str | None = None) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text
        self.field = field


class CancelRejectedError(DeskError):
    def __init__(self, reason: CxlRejReason, text: str, field: str | None = None) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text
        self.field = field


class UnknownOrderError(DeskError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidStateError(DeskError):
    """The order exists but cannot do that now (pause a filled order, TCA of a working one)."""


class JournalUnavailableError(DeskError):
    """The database cannot be written or read now (down, or too slow): a change already
    made is kept and is stored and reported once the database is back; a read can be
    tried again later. An HTTP edge answers 503."""


# ---------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A parent order from a client (FIX NewOrderSingle, or POST /api/orders).

    `client` is who sent it: the FIX SenderCompID, or "api" for the REST API; ClOrdIDs
    are unique per client. `expire_ns` None means the configured default horizon.
    `strategy` is a strategy name (twap, vwap, pov, ac, sor, ml ...), None for ML.
    `participation` is POV's rate (FIX ParticipationRate 849), in (0, 1].
    """

    client: str
    cl_ord_id: str
    symbol: str
    side: Side
    qty: int
    ord_type: OrdType = OrdType.MARKET
    limit_price: float | None = None
    expire_ns: int | None = None
    strategy: str | None = None
    participation: float | None = None
    poss_resend: bool = False  # FIX PossResend(97)=Y: never execute a known ClOrdID twice


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """Cancel a parent: by the client's original ClOrdID (FIX), or by `parent_id` (API)."""

    client: str
    cl_ord_id: str  # this request's own id (FIX ClOrdID of the OrderCancelRequest)
    orig_cl_ord_id: str | None = None
    parent_id: str | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ReplaceRequest:
    """Change a working parent: quantity (up or down, never below what is filled), limit
    price (None keeps it; `ord_type` MARKET drops it), horizon (`expire_ns`)."""

    client: str
    cl_ord_id: str
    orig_cl_ord_id: str | None = None
    parent_id: str | None = None
    qty: int | None = None
    ord_type: OrdType | None = None
    limit_price: float | None = None
    expire_ns: int | None = None


# ------------------------------------------------------------------------------- views


@dataclass(frozen=True, slots=True)
class ParentView:
    """A parent order as its client sees it now."""

    parent_id: str
    client: str
    cl_ord_id: str  # the latest accepted ClOrdID (changes with each replace)
    orig_cl_ord_id: str  # the ClOrdID it was created with
    symbol: str
    side: Side
    qty: int
    ord_type: OrdType
    limit_price: float | None
    strategy: str
    participation: float | None
    status: OrderStatus
    start_ns: int
    end_ns: int
    filled_qty: int
    avg_price: float  # 0.0 before the first fill
    arrival_mid: float
    n_children: int
    updated_ns: int
    text: str = ""  # why it ended, when it did not fill
    # the algo wheel's arm that runs it ("champion", "challenger"; None: not in the
    # wheel) and the versions of the models it started on (None: it reads none, or
    # none from the model registry): router.wheel
    model_arm: str | None = None
    model_versions: dict[str, int] | None = None

    @classmethod
    def accepted(
        cls, order: NewOrder, parent_id: str, now_ns: int, end_ns: int, arrival_mid: float
    ) -> ParentView:
        """`order` just accepted as `parent_id`: working, nothing sent or filled yet."""
        return cls(
            parent_id=parent_id,
            client=order.client,
            cl_ord_id=order.cl_ord_id,
            orig_cl_ord_id=order.cl_ord_id,
            symbol=order.symbol,
            side=order.side,
            qty=order.qty,
            ord_type=order.ord_type,
            limit_price=order.limit_price,
            strategy=order.strategy or ML_STRATEGY,
            participation=order.participation,
            status=OrderStatus.WORKING,
            start_ns=now_ns,
            end_ns=end_ns,
            filled_qty=0,
            avg_price=0.0,
            arrival_mid=arrival_mid,
            n_children=0,
            updated_ns=now_ns,
        )

    @property
    def leaves_qty(self) -> int:
        return 0 if self.status.terminal else self.qty - self.filled_qty

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(
            side=self.side.value,
            ord_type=self.ord_type.value,
            status=self.status.value,
            leaves_qty=self.leaves_qty,
        )
        return d


# ------------------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class DeskEvent:
    """Base of everything the desk reports; `type` names it in MQTT and WebSocket
    payloads; `parent_id` is None for events about no parent (rejects, kill switch)."""

    type: ClassVar[str] = "event"
    ts_ns: int

    @property
    def parent_id(self) -> str | None:
        view = getattr(self, "view", None)
        return view.parent_id if isinstance(view, ParentView) else None

    def payload(self) -> dict[str, Any]:
        """The JSON payload: `type`, `ts_ns`, `parent_id` and the event's own fields."""
        out: dict[str, Any] = {"type": self.type, "ts_ns": self.ts_ns, "parent_id": self.parent_id}
        for name in self.__dataclass_fields__:
            if name == "ts_ns":
                continue
            value = getattr(self, name)
            if isinstance(value, ParentView):
                out["order"] = value.to_json()
            elif isinstance(value, enum.Enum):
                out[name] = value.value if not isinstance(value, enum.IntEnum) else int(value)
            else:
                out[name] = value
        return out


@dataclass(frozen=True, slots=True)
class OrderAccepted(DeskEvent):
    """FIX ExecutionReport ExecType 0 (New)."""

    type: ClassVar[str] = "order_accepted"
    view: ParentView


@dataclass(frozen=True, slots=True)
class OrderRejected(DeskEvent):
    """FIX ExecutionReport ExecType 8 (Rejected): no parent order was created."""

    type: ClassVar[str] = "order_rejected"
    client: str
    cl_ord_id: str
    symbol: str
    side: str  # as received ("buy"/"sell", or what the client sent)
    qty: int
    reason: OrdRejReason
    text: str

    @classmethod
    def of(cls, ts_ns: int, order: NewOrder, reason: OrdRejReason, text: str) -> OrderRejected:
        """The reject of `order`, with its fields as received."""
        return cls(
            ts_ns,
            order.client,
            order.cl_ord_id,
            order.symbol,
            order.side.value,
            order.qty,
            reason,
            text,
        )


@dataclass(frozen=True, slots=True)
class OrderFilled(DeskEvent):
    """One child fill: FIX ExecutionReport ExecType F (LastMkt = `venue`). `view` is the
    parent after this fill (cum qty, avg price, status FILLED on the last one).
    `exec_id` is unique and stable across restarts."""

    type: ClassVar[str] = "child_order_filled"
    view: ParentView
    exec_id: str
    child_id: str
    venue: str
    venue_kind: str  # "lit", "dark" or "rfq"
    last_qty: int
    last_px: float
    liquidity: str
    fee: float


@dataclass(frozen=True, slots=True)
class OrderCanceled(DeskEvent):
    """FIX ExecutionReport ExecType 4: every child is pulled; `cl_ord_id` is the cancel
    request's (or "" when the desk itself canceled, e.g. the kill switch)."""

    type: ClassVar[str] = "order_canceled"
    view: ParentView
    cl_ord_id: str
    orig_cl_ord_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderReplaced(DeskEvent):
    """FIX ExecutionReport ExecType 5; `view.cl_ord_id` is now `cl_ord_id`."""

    type: ClassVar[str] = "order_replaced"
    view: ParentView
    cl_ord_id: str
    orig_cl_ord_id: str


@dataclass(frozen=True, slots=True)
class CancelRejected(DeskEvent):
    """FIX OrderCancelReject (9); `response_to` is "cancel" or "replace" (CxlRejResponseTo
    1 or 2). `status` is the order's current status, or None if it is unknown."""

    type: ClassVar[str] = "cancel_rejected"
    client: str
    cl_ord_id: str
    orig_cl_ord_id: str
    order_id: str | None
    status: OrderStatus | None
    reason: CxlRejReason
    response_to: str
    text: str


@dataclass(frozen=True, slots=True)
class OrderExpired(DeskEvent):
    """The horizon passed with quantity left: FIX ExecType C (Expired)."""

    type: ClassVar[str] = "order_expired"
    view: ParentView


@dataclass(frozen=True, slots=True)
class OrderCompleted(DeskEvent):
    """The parent is done (filled, expired or canceled): its TCA summary."""

    type: ClassVar[str] = "order_completed"
    view: ParentView
    tca: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OrderPaused(DeskEvent):
    type: ClassVar[str] = "order_paused"
    view: ParentView


@dataclass(frozen=True, slots=True)
class OrderResumed(DeskEvent):
    type: ClassVar[str] = "order_resumed"
    view: ParentView


@dataclass(frozen=True, slots=True)
class ChildOrderUpdated(DeskEvent):
    """A child order was sent, accepted, canceled, expired or rejected (`what`)."""

    type: ClassVar[str] = "child_order"
    view: ParentView
    child_id: str
    venue: str
    what: str  # "sent", "accepted", "canceled", "expired", "rejected"
    qty: int  # ordered (sent) or ended (canceled/expired) quantity
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DecisionMade(DeskEvent):
    """A routing decision with its inputs and alternatives ("why this venue?")."""

    type: ClassVar[str] = "decision_recorded"
    view: ParentView
    decision_id: str
    chosen: str
    inputs: dict[str, float]
    alternatives: dict[str, float]
    # why the heuristic router made it ("" when the parent's own router did): the drift
    # monitor had the models withdrawn (router.drift)
    fallback: str = ""
    #: shadow mode: what the challengers of the models asked would have answered, by
    #: family (router.domain.ShadowAnswer.to_json); None without a challenger
    shadow: dict[str, Any] | None = None

    def payload(self) -> dict[str, Any]:
        out = DeskEvent.payload(self)
        if self.shadow is None:
            del out["shadow"]  # the payload without a challenger is as it always was
        return out


@dataclass(frozen=True, slots=True)
class RfqUpdated(DeskEvent):
    """One RFQ protocol fact (`what`: requested, quote_received, declined, late, closed,
    response, traded, last_look_rejected, ended) with its fields in `detail`."""

    type: ClassVar[str] = "rfq"
    view: ParentView
    rfq_id: str
    what: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class KillSwitchChanged(DeskEvent):
    """Engaged (by a person, or by the desk when its journal stopped taking writes:
    `reason` says which) or released; published at once, ahead of facts still waiting
    for the journal (it is not a journaled fact)."""

    type: ClassVar[str] = "kill_switch"
    engaged: bool
    reason: str
    canceled_parents: int = 0


@dataclass(frozen=True, slots=True)
class ModelAliasChanged(DeskEvent):
    """A model alias moved (router/model_admin.py): `family`'s `alias` from version
    `from_version` (None: no version held it) to `to_version`, by `by` because
    `reason`; `action` is register, promote or rollback. Published once journaled."""

    type: ClassVar[str] = "model_alias_changed"
    family: str
    alias: str
    from_version: int | None
    to_version: int
    action: str
    by: str
    reason: str
    # the promotion overrode the guard rail (a challenger worse than the champion on the
    # held-out set): `override` names the metric and both values
    forced: bool = False
    override: str | None = None


@dataclass(frozen=True, slots=True)
class ModelServed(DeskEvent):
    """A running service swapped `family`'s models to the champion's version
    `to_version` (router.hotswap), after `load_s` seconds of loading it off the loop;
    or, `ok` false, could not (`error` says why) and serves `from_version` still."""

    type: ClassVar[str] = "model_served"
    family: str
    from_version: int | None
    to_version: int
    ok: bool
    load_s: float
    error: str = ""


@dataclass(frozen=True, slots=True)
class DriftAlertChanged(DeskEvent):
    """The drift monitor (router.drift) raised or cleared an alert: `family`'s
    `figure` (out_of_range, ece_<model>, is_z) at `value` against `threshold`, over
    `n` samples; `fallback`: whether the desk routes without the models now.
    Journaled, then published."""

    type: ClassVar[str] = "drift_alert"
    family: str
    figure: str
    raised: bool
    value: float
    threshold: float
    n: int
    message: str
    fallback: bool = False


@dataclass(frozen=True, slots=True)
class DriftFallbackChanged(DeskEvent):
    """The desk withdrew the learned models (`engaged`: a drift alert, with the config's
    `fallback`) and routes their decisions with the heuristic router, or gave them back
    (an operator's resume, or every alert cleared). Journaled, then published."""

    type: ClassVar[str] = "drift_fallback"
    engaged: bool
    reason: str
    by: str


@dataclass(frozen=True, slots=True)
class ModelShadowed(DeskEvent):
    """A running service changed the challenger it asks beside `family`'s champion
    (shadow mode, router.hotswap): from `from_version` to `to_version` (None: no
    challenger is asked now: the alias was removed or now names the champion), after
    `load_s` seconds of loading it off the loop; or, `ok` false, could not load it
    (`error` says why) and asks none."""

    type: ClassVar[str] = "model_shadowed"
    family: str
    from_version: int | None
    to_version: int | None
    ok: bool
    load_s: float
    error: str = ""


# ------------------------------------------------------------------------------- port

Listener = Callable[[DeskEvent], None]


class DeskPort(Protocol):
    """What the edges may call. Every method runs on the asyncio loop's thread, returns
    at once (it never waits on a venue) and either does what it says, publishing the
    events, or raises a `DeskError` subclass and changes nothing."""

    def now_ns(self) -> int:
        """The service clock (epoch nanoseconds, `--sim-speed` times the wall clock)."""
        ...

    @property
    def ready(self) -> bool:
        """True once the markets run and while the journal takes writes (readiness
        probe): false while the database is down or too slow."""
        ...

    @property
    def kill_engaged(self) -> bool: ...

    def symbols(self) -> list[str]: ...

    @property
    def default_strategy(self) -> str:
        """The strategy of a parent order that names none (the service config's)."""
        ...

    def submit(self, order: NewOrder) -> ParentView:
        """Accept a parent order (publishes OrderAccepted) or raise OrderRejectedError
        (publishes OrderRejected). A PossResend of a known (client, ClOrdID) returns the
        existing order's view and executes nothing."""
        ...

    def cancel(self, request: CancelRequest) -> ParentView:
        """Pull every child; OrderCanceled follows once the venues confirmed (usually
        within milliseconds of simulated time). Raises CancelRejectedError (publishes
        CancelRejected): unknown order, already done, duplicate ClOrdID."""
        ...

    def replace(self, request: ReplaceRequest) -> ParentView:
        """Publishes OrderReplaced, or raises CancelRejectedError (publishes
        CancelRejected with response_to "replace")."""
        ...

    def pause(self, parent_id: str) -> ParentView:
        """Pull the children and stop trading (UnknownOrderError, InvalidStateError)."""
        ...

    def resume(self, parent_id: str) -> ParentView: ...

    def engage_kill(self, reason: str) -> int:
        """Cancel every working parent and refuse new orders; returns how many it canceled."""
        ...

    def release_kill(self) -> None:
        """Trade again. InvalidStateError while the journal cannot write (an outage
        engages the switch; see Desk: it is released once the journal writes, by a
        person or, if configured, automatically)."""
        ...

    def find(self, client: str, cl_ord_id: str) -> ParentView | None:
        """The parent that any of this client's ClOrdIDs (new or replace) names."""
        ...

    def parent(self, parent_id: str) -> ParentView:
        """Raises UnknownOrderError."""
        ...

    def parents(self, status: OrderStatus | None = None) -> list[ParentView]:
        """Newest first."""
        ...

    def fills(self, parent_id: str) -> list[dict[str, Any]]:
        """exec_id, child_id, ts_ns, venue, venue_kind, qty, price, fee, liquidity (as
        journaled). Like decisions and schedule, read from the journal: raises
        JournalUnavailableError at once while it is down or slow."""
        ...

    def decisions(self, parent_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first: decision_id, ts_ns, chosen, inputs, alternatives, and fallback
        (why) on a decision the heuristic router made in the models' place."""
        ...

    def schedule(self, parent_id: str) -> list[dict[str, Any]]:
        """Schedule vs realised: ts_ns, target_qty, filled_qty at each decision."""
        ...

    def tca(self, parent_id: str) -> dict[str, Any]:
        """Implementation shortfall and its parts; InvalidStateError while working."""
        ...

    def scorecard(self) -> dict[str, Any]:
        """The dealer scorecard of this service's RFQs (CONTRACT.md shape)."""
        ...

    def metrics(self) -> dict[str, float]:
        """Counters and gauges for Prometheus (names without the blockroute_ prefix)."""
        ...

    def drift(self) -> dict[str, Any]:
        """The drift monitor's figures, active alerts and fallback (router.drift's
        `DriftMonitor.report`, plus `enabled` and the latest journaled changes)."""
        ...

    def resume_models(self, by: str, reason: str) -> dict[str, Any]:
        """Give the models back after a drift fallback (journaled and published, then
        `drift()`). InvalidStateError if they are not withdrawn."""
        ...

    async def sync(self) -> None:
        """Return once everything the calls so far changed is committed (commands are
        committed together at the end of the loop's turn; events follow the commit).
        Raises JournalUnavailableError while the journal cannot write: the change is
        kept and committed, and its events published, once it can."""
        ...

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every event after it is committed (on the loop thread,
        in order; a listener must not block). Returns the unsubscribe function."""
        ...
