"""Admission: every field of a new order checked, and its execution started, before
anything of it is recorded; all or nothing. The checks of a price or an expiry serve the
replace command too, and those that do not depend on the market serve recovery."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import structlog

from router.desk.config import DeskConfig
from router.desk.execution import ExecutionWiring
from router.desk.market import MarketSession
from router.desk.metrics import DeskMetrics
from router.desk.orders import Order, OrderBook
from router.desk_api import NewOrder, OrderRejectedError, OrderStatus, OrdRejReason
from router.domain import NANOS_PER_SECOND, DomainError, OrdType, Side
from router.journal import ParentRecord, dumps
from router.risk import KillSwitch

log = structlog.get_logger("blockroute.desk")

_MAX_LIMIT_TICKS = 2**53  # a price whose tick count a float still holds exactly


class Admission:
    """Turns a client's NewOrder into a started parent, or refuses it."""

    def __init__(
        self,
        config: DeskConfig,
        book: OrderBook,
        markets: Mapping[str, MarketSession],
        wiring: ExecutionWiring,
        kill: KillSwitch,
        started: Callable[[], bool],
        now_ns: Callable[[], int],
        metrics: DeskMetrics,
    ) -> None:
        self._config = config
        self._book = book
        self._markets = markets
        self._wiring = wiring
        self._kill = kill
        self._started = started
        self._now_ns = now_ns
        self._metrics = metrics

    def admit(self, order: NewOrder, known: str | None) -> Order:
        """Check every field of `order` and start its execution, or raise
        OrderRejectedError having changed nothing: all or nothing. `known`: the parent
        that the order's ClOrdID already names, if any. The caller records and
        journals what this returns; nothing is recorded before it returns."""
        reject = OrderRejectedError
        if known is not None:
            raise reject(
                OrdRejReason.DUPLICATE_ORDER,
                f"duplicate ClOrdID {order.cl_ord_id!r} (order {known})",
                "cl_ord_id",
            )
        if self._kill.engaged:
            raise reject(OrdRejReason.BROKER_OPTION, f"kill switch engaged: {self._kill.reason}")
        if not self._started():
            raise reject(
                OrdRejReason.EXCHANGE_CLOSED, "the desk is not ready (starting or stopping)"
            )
        market = self._markets.get(order.symbol)
        if market is None:
            known_syms = ", ".join(self._markets)
            raise reject(
                OrdRejReason.UNKNOWN_SYMBOL,
                f"unknown symbol {order.symbol!r} (traded: {known_syms})",
                "symbol",
            )
        if not order.cl_ord_id:
            raise reject(OrdRejReason.OTHER, "ClOrdID is empty", "cl_ord_id")
        if isinstance(order.qty, bool) or not isinstance(order.qty, int) or order.qty <= 0:
            raise reject(
                OrdRejReason.INCORRECT_QUANTITY,
                f"quantity must be a positive integer, got {order.qty!r}",
                "qty",
            )
        max_qty = self.max_qty(market)
        if order.qty > max_qty:
            raise reject(
                OrdRejReason.ORDER_EXCEEDS_LIMIT,
                f"quantity {order.qty} is above the limit of {max_qty} "
                f"({self._config.max_order_adv:.0%} of ADV)",
                "qty",
            )
        name = order.strategy or self._config.default_strategy
        try:
            strategy = self._wiring.engine_strategy(name)
        except DomainError as exc:
            raise reject(
                OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC, str(exc), "strategy"
            ) from None
        p = order.participation
        if p is not None and not (is_number(p) and 0 < p <= 1):  # NaN fails 0 < p
            raise reject(
                OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC,
                f"participation rate must be a number in (0, 1], got {p!r}",
                "participation",
            )
        # the market as of the last step (at most max_step_s of wall time old): stepping
        # it for each order of a burst would cost more than the order itself
        now = self._now_ns()
        mid = market.mid()
        if mid is None:
            raise reject(OrdRejReason.EXCHANGE_CLOSED, f"{order.symbol}: no two-sided market now")
        limit: float | None = None
        if order.ord_type is OrdType.LIMIT:
            if order.limit_price is None:
                raise reject(
                    OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC,
                    "a limit order needs a limit price",
                    "limit_price",
                )
            limit = self.check_limit(market, order.side, order.limit_price, mid)
        end_ns = order.expire_ns
        if end_ns is None:
            end_ns = now + int(self._config.default_horizon_s * NANOS_PER_SECOND)
        self.check_expiry(market, end_ns, now)
        history = market.history((end_ns - now) / NANOS_PER_SECOND)
        pid = f"P{self._book.next_parent:07d}"
        # the algo wheel's draw (router.wheel): the arm whose models run it to the end
        arm, versions = self._wiring.arms.assign(pid, strategy)
        row = ParentRecord(
            parent_id=pid,
            client=order.client,
            cl_ord_id=order.cl_ord_id,
            orig_cl_ord_id=order.cl_ord_id,
            symbol=order.symbol,
            side=order.side.value,
            qty=order.qty,
            ord_type=order.ord_type.value,
            limit_price=limit,
            strategy=name,
            participation=p,
            status=OrderStatus.WORKING.value,
            start_ns=now,
            end_ns=end_ns,
            filled_qty=0,
            notional=0.0,
            fees=0.0,
            arrival_mid=mid,
            n_children=0,
            n_fills=0,
            n_rfqs=0,
            created_ns=now,
            updated_ns=now,
            model_arm=arm,
            model_versions=None if versions is None else dumps(versions),
        )
        rec = Order(row, market, history=history, engine_strategy=strategy)
        try:
            self._wiring.start(rec, market.world_ns(row.start_ns), None)
        except Exception as exc:
            # whatever broke, the order never existed: its execution is taken back
            self._wiring.drop(rec)
            self._metrics.pump_errors.inc()
            log.exception("order could not be started", client=order.client, parent_id=pid)
            raise reject(
                OrdRejReason.OTHER,
                f"the order could not be started ({type(exc).__name__}); nothing was done",
            ) from None
        self._book.next_parent += 1
        return rec

    def max_qty(self, market: MarketSession) -> int:
        return int(self._config.max_order_adv * market.instrument.adv)

    def check_limit(
        self, market: MarketSession, side: Side, price: object, reference: float
    ) -> float:
        """`price` as a limit of `side` on `market`, or OrderRejectedError: a finite
        number, a whole number of ticks (at least one), not more than limit_collar_bps
        through `reference` (the mid) and not more than limit_band_bps away from it on
        its own side. Returns it as a float."""
        why = limit_problem(price, market.instrument.tick_size)
        if why is not None:
            raise OrderRejectedError(
                OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC, why, "limit_price"
            )
        assert isinstance(price, int | float)
        value = float(price)
        through = side.sign * (value - reference) / reference * 1e4  # > 0: marketable side
        if through > self._config.limit_collar_bps:
            raise OrderRejectedError(
                OrdRejReason.ORDER_EXCEEDS_LIMIT,
                f"limit {value:g} is {through:.0f} bps through the mid {reference:g} "
                f"(collar {self._config.limit_collar_bps:g} bps): price or side wrong?",
                "limit_price",
            )
        if -through > self._config.limit_band_bps:
            raise OrderRejectedError(
                OrdRejReason.ORDER_EXCEEDS_LIMIT,
                f"limit {value:g} is {-through:.0f} bps from the mid {reference:g} "
                f"(band {self._config.limit_band_bps:g} bps): price or side wrong?",
                "limit_price",
            )
        return value

    def check_expiry(self, market: MarketSession, end_ns: int, now: int) -> None:
        """OrderRejectedError unless `end_ns` is a whole number of nanoseconds at least
        min_horizon_s after `now` and not after the market's close."""
        if isinstance(end_ns, bool) or not isinstance(end_ns, int):
            raise OrderRejectedError(
                OrdRejReason.OTHER,
                f"ExpireTime must be a whole number of nanoseconds, got {end_ns!r}",
                "expire_ns",
            )
        horizon_s = (end_ns - now) / NANOS_PER_SECOND
        if horizon_s < self._config.min_horizon_s:
            raise OrderRejectedError(
                OrdRejReason.TOO_LATE_TO_ENTER,
                f"ExpireTime is {horizon_s:.0f} s from now; "
                f"at least {self._config.min_horizon_s:g} s needed",
                "expire_ns",
            )
        if end_ns > market.end_ns:
            left = (market.end_ns - now) / NANOS_PER_SECOND
            raise OrderRejectedError(
                OrdRejReason.EXCHANGE_CLOSED,
                f"ExpireTime is after the simulated session's close ({left:.0f} s from now)",
                "expire_ns",
            )


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def limit_problem(price: object, tick: float) -> str | None:
    """Why `price` cannot be a limit on a book of `tick` (None: it can): it must be a
    finite number, a whole number of ticks, at least one."""
    if not is_number(price):
        return f"limit price must be a number, got {price!r}"
    assert isinstance(price, int | float)
    try:
        value = float(price)
    except OverflowError:  # an int beyond any float
        return f"limit price {price} is not representable in ticks of {tick:g}"
    if not math.isfinite(value):
        return f"limit price must be a finite number, got {value}"
    if value <= 0:
        return f"limit price must be > 0, got {value:g}"
    ticks = value / tick
    if not ticks < _MAX_LIMIT_TICKS:  # also an overflow to infinity
        return f"limit price {value:g} is not representable in ticks of {tick:g}"
    n = round(ticks)
    if n < 1:
        return f"limit price {value:g} is below one tick ({tick:g})"
    if abs(ticks - n) > 1e-6:
        return f"limit price {value:g} is not a multiple of the tick size {tick:g}"
    return None
