"""The FIX gateway's start, stop, logon checks and restarts: a gateway per test."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest
import quickfix as fix

from router.fix.gateway import FixGateway, FixGatewayError
from router.fix.settings import Credentials, GatewaySettings, parse_acceptor_cfg
from tests.router.posix_locks import WAL_INDEX_DMS, locks_held, needs_proc_locks

from .client import until
from .env import PASSWORDS, FixEnv
from .fakes import FakeDesk


async def _refused(env: FixEnv, **client) -> str:
    """The Text of the Logout that refused this client's logon."""
    c = env.client(**client)
    await until(lambda: any(m.get(35) == "5" for m in c.admin), 3.0, "no Logout came back")
    assert c.logons == 0 and not c.logged_on
    return next(m[58] for m in c.admin if m.get(35) == "5")


async def test_logon_with_the_right_credentials_and_the_file_log(env: FixEnv, desk: FakeDesk):
    gw = env.gateway(desk, file_log=True)
    await env.logged_on_client("OMS")
    await until(lambda: "OMS" in gw.logged_on, 2.0, "the gateway did not see the logon")
    messages = env.tmp / "fix" / "log" / "FIX.4.4-BLOCKROUTE-OMS.messages.current.log"
    assert "\x0135=A\x01" in messages.read_text()
    assert PASSWORDS["OMS"] not in messages.read_text()  # quickfix got a token instead


async def test_wrong_password_is_refused(env: FixEnv, desk: FakeDesk):
    env.gateway(desk)
    assert "Password(554) is wrong" in await _refused(env, password="guess")


async def test_missing_password_is_refused(env: FixEnv, desk: FakeDesk):
    env.gateway(desk)
    assert "Password(554) missing" in await _refused(env, password=None)


async def test_wrong_username_is_refused(env: FixEnv, desk: FakeDesk):
    env.gateway(desk)
    assert "Username(553)" in await _refused(env, username="someone-else")


async def test_no_username_is_needed_where_none_is_configured(env: FixEnv, desk: FakeDesk):
    env.gateway(desk)
    await env.logged_on_client("OMS2")


async def test_unknown_compid_never_logs_on(env: FixEnv, desk: FakeDesk):
    gw = env.gateway(desk)
    c = env.client("EVIL", password="s3cret")
    await asyncio.sleep(1.2)  # a reconnect attempt included
    assert c.logons == 0 and not c.logged_on and not gw.logged_on


async def test_a_client_without_a_password_may_log_on_only_when_allowed(env, desk):
    creds = {"OMS": Credentials(None), "OMS2": Credentials("x")}
    env.gateway(desk, credentials=creds)
    await env.logged_on_client("OMS")


async def test_stop_logs_clients_out(env: FixEnv, desk: FakeDesk):
    gw = env.gateway(desk)
    c = await env.logged_on_client("OMS")
    await gw.stop(timeout=3.0)
    logout = next(m for m in c.admin if m.get(35) == "5")
    assert "shutting down" in logout[58]
    assert c.logouts >= 1 and not gw.running


async def test_port_in_use_is_a_clear_error(env: FixEnv, desk: FakeDesk):
    env.gateway(desk)
    text = "[DEFAULT]\nSenderCompID=BLOCKROUTE\nSocketAcceptPort=1\n[SESSION]\n"
    acceptor = parse_acceptor_cfg(text + "BeginString=FIX.4.4\nTargetCompID=OTHER\n", Path("a.cfg"))
    settings = GatewaySettings(acceptor, {"OTHER": Credentials("x")}, env.tmp / "o", port=env.port)
    other = FixGateway(FakeDesk(), settings, asyncio.get_running_loop())
    with pytest.raises(FixGatewayError, match=f"port {env.port}"):
        other.start()
    assert not other.running
    assert not fix.Session.doesSessionExist(fix.SessionID("FIX.4.4", "BLOCKROUTE", "OTHER"))


async def test_port_zero_picks_a_free_port(env: FixEnv, desk: FakeDesk):
    gw = env.gateway(desk, port=0)
    assert gw.port not in (0, 9878)
    env.port = gw.port
    await env.logged_on_client()


async def test_one_gateway_per_session_in_a_process(env: FixEnv, desk: FakeDesk):
    env.gateway(desk)
    second = FixEnv(env.tmp / "second")
    with pytest.raises(FixGatewayError, match=r"FIX\.4\.4:BLOCKROUTE->OMS is already served"):
        second.gateway(FakeDesk())


async def test_reports_sent_while_logged_out_arrive_after_the_next_logon(env, desk):
    env.gateway(desk)
    c = await env.logged_on_client()
    c.new_order("LO1", qty="1000")
    pid = (await c.expect(f35="8", f11="LO1", f150="0"))[37]
    c.stop()
    desk.fill(pid, 300, 100.0)
    desk.fill(pid, 700, 100.2)
    c2 = await env.logged_on_client()  # same CompID and store: it asks for the gap
    fills = [await c2.expect(f35="8", f11="LO1", f150="F") for _ in range(2)]
    assert [f[17] for f in fills] == [f"{pid}-F1", f"{pid}-F2"]
    assert fills[1][39] == "2"
    await asyncio.sleep(0.2)
    assert len(c2.all_app(f11="LO1")) == 2  # no duplicate


def _exec_ids(*clients) -> list[str]:
    return [m[17] for c in clients for m in c.all_app(f35="8")]


async def test_restart_sends_exactly_the_report_a_crash_lost(env: FixEnv, desk: FakeDesk):
    gw = env.gateway(desk)
    c = await env.logged_on_client()
    c.new_order("RC1", qty="1000")
    pid = (await c.expect(f35="8", f11="RC1", f150="0"))[37]
    desk.fill(pid, 400, 100.0)
    await c.expect(f35="8", f11="RC1", f150="F")
    c.new_order("RC2", qty="50")
    pid2 = (await c.expect(f35="8", f11="RC2", f150="0"))[37]

    desk.mute = True  # the desk commits the last fill; the process dies before sending
    desk.fill(pid, 600, 101.0)
    desk.mute = False
    await gw.stop(timeout=0)  # the crash: no clean logout is waited for

    gw2 = env.gateway(desk)  # same store: reconcile runs in start()
    er = await c.expect(f35="8", f11="RC1", f150="F", f17=f"{pid}-F2", timeout=5.0)
    assert (er[14], er[151], er[39], er[32], er[31]) == ("1000", "0", "2", "600", "101.0")
    assert float(er[6]) == pytest.approx(100.6)
    await asyncio.sleep(0.3)
    ids = _exec_ids(c)
    assert sorted(ids) == sorted([f"{pid}-N", f"{pid}-F1", f"{pid2}-N", f"{pid}-F2"])
    assert gw2.reconcile() == 0  # and a second check finds nothing left to send
    assert pid2 and gw2.sent_exec_ids("OMS") >= set(ids)


async def test_restart_without_a_crash_sends_nothing(env: FixEnv, desk: FakeDesk):
    gw = env.gateway(desk)
    c = await env.logged_on_client()
    c.new_order("NC1", qty="100")
    pid = (await c.expect(f35="8", f11="NC1", f150="0"))[37]
    desk.fill(pid, 100, 99.0)
    await c.expect(f35="8", f11="NC1", f150="F")
    await gw.stop(timeout=0)
    gw2 = env.gateway(desk)
    assert gw2.reconcile() == 0
    await asyncio.sleep(0.3)
    assert sorted(_exec_ids(c)) == [f"{pid}-F1", f"{pid}-N"]


async def test_reconcile_survives_a_sequence_reset_of_the_store(env: FixEnv, desk: FakeDesk):
    """A client's ResetSeqNumFlag makes quickfix delete the store; the ledger remembers."""
    gw = env.gateway(desk)
    c = await env.logged_on_client()
    c.new_order("SR1", qty="100")
    pid = (await c.expect(f35="8", f11="SR1", f150="0"))[37]
    c.stop()
    await gw.stop(timeout=0)
    for p in env.store_dir.glob("*.body"):
        p.write_bytes(b"")  # what a reset leaves
    gw2 = env.gateway(desk)
    assert f"{pid}-N" in gw2.sent_exec_ids("OMS")
    assert gw2.reconcile() == 0


async def test_a_failed_reconcile_leaves_nothing_running(env: FixEnv, desk: FakeDesk):
    def broken(status=None):
        raise RuntimeError("database is gone")

    desk.parents = broken
    with pytest.raises(RuntimeError, match="database is gone"):
        env.gateway(desk)
    assert not fix.Session.doesSessionExist(fix.SessionID("FIX.4.4", "BLOCKROUTE", "OMS"))
    env.gateway(FakeDesk())  # the port and the sessions are free again


@needs_proc_locks
async def test_starting_leaves_the_process_s_locks_on_its_database(
    env: FixEnv, desk: FakeDesk, tmp_path: Path
):
    # The service holds its journal open (SQLite, WAL) when the gateway starts, and the
    # gateway looks through the process's descriptors for quickfix's listening socket.
    # Closing a copy of the journal's descriptor there dropped SQLite's locks: the next
    # process to open the journal reset its wal-index under the service (SIGBUS).
    db = tmp_path / "journal.db"
    journal = sqlite3.connect(db, isolation_level=None)
    journal.execute("PRAGMA journal_mode = WAL")
    journal.execute("CREATE TABLE t (x)")
    journal.execute("INSERT INTO t VALUES (1)")
    shm = tmp_path / "journal.db-shm"
    before = (locks_held(os.getpid(), db), locks_held(os.getpid(), shm))
    assert WAL_INDEX_DMS in before[1]
    env.gateway(desk)
    await env.logged_on_client("OMS")
    assert (locks_held(os.getpid(), db), locks_held(os.getpid(), shm)) == before
    journal.close()
