"""FIX <-> desk mapping (router.fix.wire): pure functions, no sockets."""

from __future__ import annotations

import dataclasses

import pytest

from router.desk_api import (
    CancelRejected,
    CxlRejReason,
    NewOrder,
    OrderAccepted,
    OrderCanceled,
    OrderCompleted,
    OrderFilled,
    OrderRejected,
    OrderStatus,
    OrdRejReason,
    ParentView,
)
from router.domain import OrdType, Side
from router.fix import wire

SOH = "\x01"


def _raw(*pairs: tuple[int, str]) -> str:
    return "".join(f"{t}={v}{SOH}" for t, v in pairs)


NOS = {11: "A1", 55: "QDI", 54: "2", 38: "500000", 40: "1", 35: "D", 49: "OMS"}


def _view(**kw) -> ParentView:
    base = dict(
        parent_id="P7",
        client="OMS",
        cl_ord_id="A1",
        orig_cl_ord_id="A1",
        symbol="QDI",
        side=Side.SELL,
        qty=1000,
        ord_type=OrdType.LIMIT,
        limit_price=99.5,
        strategy="twap",
        participation=None,
        status=OrderStatus.WORKING,
        start_ns=1_000_000_000,
        end_ns=2_000_000_000,
        filled_qty=0,
        avg_price=0.0,
        arrival_mid=100.0,
        n_children=0,
        updated_ns=1_500_000_000,
    )
    base.update(kw)
    return ParentView(**base)


def test_parse_fields_keeps_the_first_of_a_repeated_tag_and_skips_junk():
    f = wire.parse_fields(_raw((8, "FIX.4.4"), (35, "D"), (11, "X"), (11, "Y")) + "garbage" + SOH)
    assert f == {8: "FIX.4.4", 35: "D", 11: "X"}


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("20261121-13:30:00", 1_795_267_800_000_000_000),
        ("20261121-13:30:00.250", 1_795_267_800_250_000_000),
        ("20261121-13:30:00.000001", 1_795_267_800_000_001_000),
        ("20261121-13:30:00.123456789", 1_795_267_800_123_456_789),
    ],
)
def test_utc_timestamps_parse_to_epoch_nanoseconds(text, ns):
    assert wire.parse_utc_timestamp(text) == ns


@pytest.mark.parametrize(
    "text", ["2026-11-21 13:30:00", "20261321-13:30:00", "20261121-25:00:00", ""]
)
def test_bad_utc_timestamps_raise(text):
    with pytest.raises(ValueError):
        wire.parse_utc_timestamp(text)


def test_timestamps_round_trip_to_the_microsecond():
    ns = 1_795_267_800_123_456_789
    assert wire.format_utc_timestamp(ns) == "20261121-13:30:00.123456"
    assert wire.parse_utc_timestamp(wire.format_utc_timestamp(ns)) == ns - 789


def test_new_order_maps_every_field():
    fields = {
        **NOS,
        40: "2",
        44: "99.5",
        126: "20261121-16:30:00",
        847: "2",
        849: "0.1",
        97: "Y",
    }
    order = wire.parse_new_order(fields, "OMS")
    assert order == NewOrder(
        client="OMS",
        cl_ord_id="A1",
        symbol="QDI",
        side=Side.SELL,
        qty=500_000,
        ord_type=OrdType.LIMIT,
        limit_price=99.5,
        expire_ns=wire.parse_utc_timestamp("20261121-16:30:00"),
        strategy="pov",
        participation=0.1,
        poss_resend=True,
    )


def test_defaults_of_a_new_order():
    order = wire.parse_new_order({**NOS, 44: "12"}, "OMS")  # a Price on a market order is ignored
    assert (order.strategy, order.expire_ns, order.limit_price, order.poss_resend) == (
        None,
        None,
        None,
        False,
    )
    assert wire.parse_new_order({**NOS, 38: "100.0"}, "OMS").qty == 100


@pytest.mark.parametrize(
    ("change", "reason", "field"),
    [
        ({38: "0"}, OrdRejReason.INCORRECT_QUANTITY, "OrderQty(38)"),
        ({38: "1.5"}, OrdRejReason.INCORRECT_QUANTITY, "OrderQty(38)"),
        ({38: "nan"}, OrdRejReason.INCORRECT_QUANTITY, "OrderQty(38)"),
        ({54: "5"}, OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC, "Side(54)"),
        ({40: "3"}, OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC, "OrdType(40)"),
        ({40: "2"}, OrdRejReason.OTHER, "Price(44)"),
        ({40: "2", 44: "-1"}, OrdRejReason.OTHER, "Price(44)"),
        ({847: "3"}, OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC, "TargetStrategy(847)"),
        ({849: "0"}, OrdRejReason.OTHER, "ParticipationRate(849)"),
        ({126: "tomorrow"}, OrdRejReason.OTHER, "ExpireTime(126)"),
        ({55: ""}, OrdRejReason.OTHER, "Symbol(55)"),
    ],
)
def test_unusable_fields_raise_a_field_error_naming_the_field(change, reason, field):
    with pytest.raises(wire.FieldError) as err:
        wire.parse_new_order({**NOS, **change}, "OMS")
    assert err.value.reason is reason and field in err.value.text


def test_cancel_and_replace_requests():
    cancel = wire.parse_cancel({11: "C2", 41: "A1", 58: "changed my mind"}, "OMS")
    assert (cancel.cl_ord_id, cancel.orig_cl_ord_id, cancel.reason) == (
        "C2",
        "A1",
        "changed my mind",
    )
    rep = wire.parse_replace({11: "A2", 41: "A1", 38: "2000", 40: "1", 44: "10"}, "OMS")
    assert (rep.qty, rep.ord_type, rep.limit_price, rep.expire_ns) == (
        2000,
        OrdType.MARKET,
        None,
        None,
    )
    with pytest.raises(wire.FieldError, match="OrigClOrdID"):
        wire.parse_cancel({11: "C2"}, "OMS")


def test_accepted_order_becomes_execution_report_new():
    out = wire.report_for_event(OrderAccepted(1_795_267_800_000_000_000, _view()))
    assert out is not None and out.msg_type == "8"
    f = dict(out.fields)
    assert (f[37], f[11], f[17], f[150], f[39]) == ("P7", "A1", "P7-N", "0", "0")
    assert (f[55], f[54], f[38], f[40], f[44]) == ("QDI", "2", "1000", "2", "99.5")
    assert (f[14], f[151], f[6], f[60]) == ("0", "1000", "0.0", "20261121-13:30:00.000000")
    assert out.exec_id == "P7-N"


def test_fill_report_carries_last_and_cumulative_quantities():
    view = _view(filled_qty=1000, avg_price=99.75, status=OrderStatus.FILLED)
    event = OrderFilled(5, view, "X-9", "c1", "DEALER-3", "rfq", 600, 99.9, "taker", 0.0)
    f = dict(wire.report_for_event(event).fields)
    assert (f[150], f[39], f[17], f[30], f[32], f[31]) == (
        "F",
        "2",
        "X-9",
        "DEALER-3",
        "600",
        "99.9",
    )
    assert (f[14], f[151], f[6]) == ("1000", "0", "99.75")


def test_canceled_report_names_the_cancel_request():
    view = _view(status=OrderStatus.CANCELED, filled_qty=200, avg_price=99.0)
    f = dict(wire.report_for_event(OrderCanceled(5, view, "C2", "A1", "client")).fields)
    assert (f[150], f[39], f[11], f[41], f[17], f[14], f[151]) == (
        "4",
        "4",
        "C2",
        "A1",
        "P7-C",
        "200",
        "0",
    )


def test_rejected_order_report():
    event = OrderRejected(
        5, "OMS", "A9", "QDI", "buy", 10, OrdRejReason.ORDER_EXCEEDS_LIMIT, "too big"
    )
    f = dict(wire.report_for_event(event).fields)
    assert (f[150], f[39], f[37], f[54], f[103], f[58]) == ("8", "8", "NONE", "1", "3", "too big")


def test_cancel_reject_uses_the_orders_status_when_known():
    event = CancelRejected(
        5,
        "OMS",
        "C3",
        "A1",
        "P7",
        OrderStatus.WORKING,
        CxlRejReason.TOO_LATE_TO_CANCEL,
        "replace",
        "no",
    )
    out = wire.report_for_event(event, _view(filled_qty=10))
    f = dict(out.fields)
    assert out.msg_type == "9"
    assert (f[39], f[434], f[102], f[37]) == ("1", "2", "0", "P7")
    assert dict(wire.report_for_event(event).fields)[39] == "0"
    unknown = dataclasses.replace(event, order_id=None, status=None, response_to="cancel")
    assert dict(wire.report_for_event(unknown).fields)[39] == "8"


def test_events_that_are_not_client_facts_send_nothing():
    assert wire.report_for_event(OrderCompleted(5, _view())) is None


def test_event_client():
    assert wire.event_client(OrderAccepted(5, _view(client="api"))) == "api"
    rej = OrderRejected(5, "OMS2", "A9", "QDI", "buy", 10, OrdRejReason.OTHER, "x")
    assert wire.event_client(rej) == "OMS2"


def test_business_reject_names_the_message():
    out = wire.business_reject({35: "R", 34: "17"}, "no RFQs here")
    assert out.msg_type == "j"
    assert dict(out.fields) == {45: "17", 58: "no RFQs here", 372: "R", 380: "3"}


def test_expected_reports_rebuild_running_totals_and_the_end():
    view = _view(
        status=OrderStatus.FILLED,
        filled_qty=1000,
        avg_price=99.8,
        ord_type=OrdType.MARKET,
        limit_price=None,
    )
    fills = [
        {"exec_id": "E2", "ts_ns": 20, "venue": "B", "qty": 600, "price": 100.0},
        {"exec_id": "E1", "ts_ns": 10, "venue": "A", "qty": 400, "price": 99.5},
    ]
    reports = wire.expected_reports(view, fills)
    assert [r.exec_id for r in reports] == ["P7-N", "E1", "E2"]
    first, last = dict(reports[1].fields), dict(reports[2].fields)
    assert (first[14], first[151], first[39], first[6]) == ("400", "600", "1", "99.5")
    assert (last[14], last[151], last[39]) == ("1000", "0", "2")
    assert float(last[6]) == pytest.approx(99.8)


def test_expected_reports_of_a_replaced_then_canceled_order():
    view = _view(cl_ord_id="A2", status=OrderStatus.CANCELED, text="client")
    ids = [r.exec_id for r in wire.expected_reports(view, [])]
    assert ids == ["P7-N", "P7-R-A2", "P7-C"]
    expired = _view(status=OrderStatus.EXPIRED)
    assert [r.exec_id for r in wire.expected_reports(expired, [])] == ["P7-N", "P7-X"]


def test_prices_are_written_in_fixed_point():
    view = _view(limit_price=0.00001, avg_price=100.60000000000001, filled_qty=10)
    f = dict(wire.status_report(view, 5).fields)
    assert (f[44], f[6], f[150], f[39]) == ("0.00001", "100.6", "I", "1")


def test_outbound_text_is_one_fix_message():
    out = wire.Outbound("8", ((11, "A1"), (58, "a\x01b")))
    assert out.to_text() == "8=FIX.4.4\x019=0\x0135=8\x0111=A1\x0158=a b\x0110=000\x01"
