"""The FIX gateway end to end: real quickfix clients over loopback, a fake desk.

One gateway and two logged-on clients (OMS, OMS2) serve every test in this module (a
quickfix connection takes a second to close); each test uses its own ClOrdIDs.
Start/stop, logon refusals and restarts are in test_gateway_lifecycle.py.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
import pytest_asyncio

from router.desk_api import NewOrder
from router.domain import OrdType, Side

from .env import FixEnv
from .fakes import FakeDesk

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory):
    env = FixEnv(tmp_path_factory.mktemp("fix"))
    desk = FakeDesk()
    gw = env.gateway(desk)
    oms = await env.logged_on_client("OMS")
    oms2 = await env.logged_on_client("OMS2")
    yield SimpleNamespace(env=env, desk=desk, gw=gw, oms=oms, oms2=oms2)
    await env.close()


async def _accepted(net, cl_ord_id: str, **kw) -> dict[int, str]:
    net.oms.new_order(cl_ord_id, **kw)
    return await net.oms.expect(f35="8", f11=cl_ord_id, f150="0")


async def test_new_order_is_acknowledged_with_an_execution_report_new(net):
    net.oms.new_order("A1", qty="1500", extra=[(847, "1000"), (126, "20261121-13:30:00.250")])
    er = await net.oms.expect(f35="8", f11="A1")
    assert er[150] == "0" and er[39] == "0"
    pid = er[37]
    assert er[17] == f"{pid}-N"
    assert (er[55], er[54], er[38], er[40]) == ("QDI", "1", "1500", "1")
    assert (er[14], er[151], er[6]) == ("0", "1500", "0.0")
    assert er[60].startswith("20261118-")  # the desk's clock, not the wall clock
    order = net.desk.submitted[-1]
    assert (order.client, order.cl_ord_id, order.symbol) == ("OMS", "A1", "QDI")
    assert order.side is Side.BUY and order.qty == 1500 and order.ord_type is OrdType.MARKET
    assert order.strategy == "twap"
    assert order.expire_ns == 1_795_267_800_250_000_000  # 2026-11-21 13:30:00.250 UTC
    assert order.poss_resend is False


@pytest.mark.parametrize(
    ("code", "name"), [("1", "vwap"), ("1001", "ac"), ("1002", "sor"), ("1003", "ml")]
)
async def test_target_strategy_names_the_strategy(net, code, name):
    await _accepted(net, f"S{code}", extra=[(847, code)])
    assert net.desk.submitted[-1].strategy == name


async def test_pov_carries_its_participation_rate_and_no_strategy_means_the_default(net):
    await _accepted(net, "POV1", extra=[(847, "2"), (849, "0.15")])
    assert (net.desk.submitted[-1].strategy, net.desk.submitted[-1].participation) == ("pov", 0.15)
    await _accepted(net, "DEF1")
    assert net.desk.submitted[-1].strategy is None


async def test_limit_order_carries_its_price(net):
    er = await _accepted(net, "L1", side="2", extra=[(40, "2"), (44, "99.25")])
    assert (er[40], er[44], er[54]) == ("2", "99.25", "2")
    order = net.desk.submitted[-1]
    assert order.ord_type is OrdType.LIMIT and order.limit_price == 99.25
    assert order.side is Side.SELL


async def test_fills_report_last_and_running_totals(net):
    pid = (await _accepted(net, "F1", qty="1000"))[37]
    net.desk.fill(pid, 400, 100.0, "LIT-A")
    net.desk.fill(pid, 600, 101.0, "DARK-1")
    first = await net.oms.expect(f35="8", f11="F1", f150="F")
    second = await net.oms.expect(f35="8", f11="F1", f150="F")
    assert (first[17], first[32], first[31], first[30]) == (f"{pid}-F1", "400", "100.0", "LIT-A")
    assert (first[14], first[151], first[6], first[39]) == ("400", "600", "100.0", "1")
    assert (second[32], second[31], second[30]) == ("600", "101.0", "DARK-1")
    assert (second[14], second[151], second[39]) == ("1000", "0", "2")
    assert float(second[6]) == pytest.approx(100.6)


async def test_duplicate_clordid_is_rejected_with_reason_6(net):
    await _accepted(net, "DUP1")
    net.oms.new_order("DUP1")
    er = await net.oms.expect(f35="8", f11="DUP1", f150="8")
    assert (er[39], er[103], er[37]) == ("8", "6", "NONE")
    assert "duplicate" in er[58]
    assert len(net.oms.all_app(f11="DUP1")) == 2  # one New, one Rejected


@pytest.mark.parametrize("qty", ["0", "-5", "12.5"])
async def test_bad_quantity_is_rejected_by_the_gateway_naming_the_field(net, qty):
    before = len(net.desk.submitted)
    net.oms.new_order(f"Q{qty}", qty=qty)
    er = await net.oms.expect(f35="8", f11=f"Q{qty}")
    assert (er[150], er[39], er[103]) == ("8", "8", "13")
    assert "OrderQty(38)" in er[58]
    assert len(net.desk.submitted) == before  # the desk never saw it


@pytest.mark.parametrize(
    ("extra", "field", "reason"),
    [
        ([(40, "2")], "Price(44)", "99"),
        ([(40, "3")], "OrdType(40)", "11"),
        ([(847, "3")], "TargetStrategy(847)", "11"),
        ([(849, "1.5")], "ParticipationRate(849)", "99"),
    ],
)
async def test_fields_the_desk_cannot_use_are_rejected(net, extra, field, reason):
    before = len(net.desk.submitted)
    cl = f"BAD-{field}"
    net.oms.send(
        "D",
        [(11, cl), (55, "QDI"), (54, "1"), (38, "100"), (60, "20261121-12:00:00")]
        + [(40, "1")] * (not any(t == 40 for t, _ in extra))
        + extra,
    )
    er = await net.oms.expect(f35="8", f11=cl)
    assert (er[150], er[39], er[103]) == ("8", "8", reason)
    assert field in er[58]
    assert len(net.desk.submitted) == before


async def test_unsupported_side_is_rejected(net):
    net.oms.new_order("SS1", side="5")  # sell short
    er = await net.oms.expect(f35="8", f11="SS1")
    assert (er[150], er[103], er[54]) == ("8", "11", "5")
    assert "Side(54)" in er[58]


async def test_unknown_symbol_is_reported_from_the_desks_reject(net):
    net.oms.new_order("SYM1", symbol="NOPE")
    er = await net.oms.expect(f35="8", f11="SYM1")
    assert (er[150], er[39], er[103], er[55]) == ("8", "8", "1", "NOPE")


async def test_cancel_reports_canceled(net):
    pid = (await _accepted(net, "C1"))[37]
    net.oms.send("F", [(11, "C1-x"), (41, "C1"), (55, "QDI"), (54, "1"), (60, "20261121-12:00:01")])
    er = await net.oms.expect(f35="8", f11="C1-x")
    assert (er[150], er[39], er[41], er[37], er[17]) == ("4", "4", "C1", pid, f"{pid}-C")
    assert (er[151], net.desk.cancels[-1].orig_cl_ord_id) == ("0", "C1")


async def test_cancel_of_an_unknown_order_gets_an_order_cancel_reject(net):
    net.oms.send("F", [(11, "C9-x"), (41, "C9"), (55, "QDI"), (54, "1"), (60, "20261121-12:00:01")])
    rej = await net.oms.expect(f35="9", f11="C9-x")
    assert (rej[434], rej[102], rej[39], rej[41], rej[37]) == ("1", "1", "8", "C9", "NONE")


async def test_replace_reports_replaced(net):
    pid = (await _accepted(net, "R1", qty="1000"))[37]
    net.oms.send(
        "G",
        [
            (11, "R1-b"),
            (41, "R1"),
            (55, "QDI"),
            (54, "1"),
            (38, "2000"),
            (40, "2"),
            (44, "99.5"),
            (60, "20261121-12:00:02"),
        ],
    )
    er = await net.oms.expect(f35="8", f11="R1-b")
    assert (er[150], er[39], er[41], er[38], er[44], er[40]) == (
        "5",
        "0",
        "R1",
        "2000",
        "99.5",
        "2",
    )
    assert er[17] == f"{pid}-R-R1-b"
    req = net.desk.replaces[-1]
    assert (req.qty, req.ord_type, req.limit_price) == (2000, OrdType.LIMIT, 99.5)


async def test_replace_with_a_bad_quantity_gets_an_order_cancel_reject(net):
    await _accepted(net, "R2")
    before = len(net.desk.replaces)
    net.oms.send(
        "G",
        [
            (11, "R2-b"),
            (41, "R2"),
            (55, "QDI"),
            (54, "1"),
            (38, "0"),
            (40, "1"),
            (60, "20261121-12:00:02"),
        ],
    )
    rej = await net.oms.expect(f35="9", f11="R2-b")
    assert (rej[434], rej[39]) == ("2", "0")
    assert "OrderQty(38)" in rej[58]
    assert len(net.desk.replaces) == before


async def test_order_status_of_known_and_unknown_orders(net):
    pid = (await _accepted(net, "ST1", qty="1000"))[37]
    net.desk.fill(pid, 250, 100.5)
    await net.oms.expect(f35="8", f11="ST1", f150="F")
    net.oms.send("H", [(11, "ST1"), (55, "QDI"), (54, "1")])
    st = await net.oms.expect(f35="8", f11="ST1", f150="I")
    assert (st[39], st[14], st[151], st[37]) == ("1", "250", "750", pid)
    net.oms.send("H", [(11, "ST-none"), (55, "QDI"), (54, "1")])
    st = await net.oms.expect(f35="8", f11="ST-none", f150="I")
    assert (st[39], st[103]) == ("8", "5")


async def test_expiry_is_reported(net):
    pid = (await _accepted(net, "X1"))[37]
    net.desk.expire(pid)
    er = await net.oms.expect(f35="8", f11="X1", f150="C")
    assert (er[39], er[17], er[151]) == ("C", f"{pid}-X", "0")


async def test_unsupported_message_type_gets_a_business_message_reject(net):
    net.oms.send("AF", [(584, "MS1"), (585, "7")])  # OrderMassStatusRequest
    rej = await net.oms.expect(f35="j", f372="AF")
    assert rej[380] == "3" and "AF" in rej[58] and 45 in rej


async def test_poss_resend_of_a_known_order_is_not_executed_twice(net):
    await _accepted(net, "PR1")
    n = len(net.desk.submitted)
    net.oms.new_order("PR1", header=[(97, "Y")])
    st = await net.oms.expect(f35="8", f11="PR1", f150="I")
    assert st[39] == "0"
    assert len(net.desk.submitted) == n
    assert not net.oms.all_app(f11="PR1", f150="8")
    # a PossResend the desk never saw is a new order
    net.oms.new_order("PR2", header=[(97, "Y")])
    await net.oms.expect(f35="8", f11="PR2", f150="0")
    assert net.desk.submitted[-1].poss_resend is True


async def test_each_client_gets_only_its_own_reports(net):
    net.oms2.new_order("O2-1")
    er = await net.oms2.expect(f35="8", f11="O2-1", f150="0")
    pid = er[37]
    net.desk.fill(pid, 10, 100.0)
    await net.oms2.expect(f35="8", f11="O2-1", f150="F")
    net.desk.submit(NewOrder("api", "API-1", "QDI", Side.BUY, 100))  # a REST API order
    await asyncio.sleep(0.2)
    assert not net.oms.all_app(f11="O2-1")
    assert not net.oms.all_app(f11="API-1") and not net.oms2.all_app(f11="API-1")
    assert "OMS" in net.gw.logged_on and "OMS2" in net.gw.logged_on
