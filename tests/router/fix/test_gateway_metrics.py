"""The gateway's metrics end to end: a real quickfix client, a fake desk."""

from __future__ import annotations

from .env import FixEnv
from .fakes import FakeDesk


async def test_the_gateway_counts_messages_sessions_and_the_ack_latency(
    env: FixEnv, desk: FakeDesk
):
    gw = env.gateway(desk)
    oms = await env.logged_on_client("OMS")
    oms.new_order("M1", qty="100")
    await oms.expect(f35="8", f11="M1", f150="0")
    oms.new_order("M2", qty="-5")  # refused by the gateway itself: answered all the same
    await oms.expect(f35="8", f11="M2", f150="8")
    value = gw.metrics.registry.get_sample_value
    assert value("blockroute_fix_messages_received_total", {"msg_type": "D"}) == 2
    assert value("blockroute_fix_messages_sent_total", {"msg_type": "8"}) == 2
    assert value("blockroute_fix_sessions_logged_on") == 1
    assert value("blockroute_fix_ack_latency_seconds_count") == 2
    assert 0 < value("blockroute_fix_ack_latency_seconds_sum") < 10
