"""acceptor.cfg, credentials and the gateway's settings (router.fix.settings)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from router.config import ConfigError
from router.fix.settings import (
    DEFAULT_ACCEPTOR_CFG,
    LISTENER_KEYS,
    Credentials,
    GatewaySettings,
    ListenerSettings,
    listener_settings,
    load_acceptor_config,
    load_credentials,
    parse_acceptor_cfg,
    password_env_var,
)

CFG = """
# comment
[DEFAULT]
ConnectionType=acceptor
SenderCompID=BLOCKROUTE
SocketAcceptPort=9878
FileStorePath=fix/store
FileLogPath=fix/log
DataDictionary=FIX44.xml

[SESSION]
BeginString=FIX.4.4
TargetCompID=OMS

[SESSION]
BeginString=FIX.4.4
TargetCompID=DESK-2
"""


def test_the_shipped_config_is_the_contracts():
    cfg = load_acceptor_config(DEFAULT_ACCEPTOR_CFG)
    assert (cfg.port, cfg.sender_comp_id, cfg.compids) == (9878, "BLOCKROUTE", ["OMS"])
    assert cfg.defaults["NonStopSession"] == "Y"
    assert (DEFAULT_ACCEPTOR_CFG.parent / cfg.defaults["DataDictionary"]).is_file()


def test_shipped_dictionary_accepts_the_user_defined_strategies():
    text = (DEFAULT_ACCEPTOR_CFG.parent / "FIX44.xml").read_text()
    for code, name in [
        ("1000", "TWAP"),
        ("1001", "ALMGREN_CHRISS"),
        ("1002", "SOR"),
        ("1003", "ML"),
    ]:
        assert f"<value enum='{code}' description='{name}' />" in text


def test_parse_sessions_and_defaults():
    cfg = parse_acceptor_cfg(CFG, Path("/etc/br/acceptor.cfg"))
    assert cfg.compids == ["OMS", "DESK-2"]
    assert cfg.session_value(1, "SocketAcceptPort") == "9878"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[DEFAULT]\nSenderCompID=B\nSocketAcceptPort=1\n", "no \\[SESSION\\]"),
        ("SenderCompID=B\n", "outside a section"),
        (
            "[DEFAULT]\nSenderCompID=B\nSocketAcceptPort=x\n[SESSION]\nBeginString=FIX.4.4\nTargetCompID=A\n",
            "port number",
        ),
        (
            "[DEFAULT]\nSenderCompID=B\nSocketAcceptPort=1\n[SESSION]\nBeginString=FIX.4.2\nTargetCompID=A\n",
            "BeginString",
        ),
        (
            "[DEFAULT]\nSenderCompID=B\nSocketAcceptPort=1\n[SESSION]\nBeginString=FIX.4.4\n",
            "TargetCompID",
        ),
        ("[DEFAULT]\nConnectionType=initiator\n", "acceptor"),
        ("[DEFAULT]\njunk line\n", "Key=Value"),
        ("[OTHER]\n", "unknown section"),
    ],
)
def test_config_errors_name_the_file_and_the_problem(text, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_acceptor_cfg(text, Path("acc.cfg"))
    assert str(err.value).startswith("acc.cfg")


def test_missing_config_file():
    with pytest.raises(ConfigError, match="file not found"):
        load_acceptor_config(Path("/nonexistent/acceptor.cfg"))


def test_environment_password_wins_over_the_config():
    creds = load_credentials(
        ["OMS", "DESK-2"],
        {
            "clients": {
                "OMS": {"username": "u", "password": "from-config"},
                "DESK-2": {"password": "p2"},
            }
        },
        {"BLOCKROUTE_FIX_PASSWORD_OMS": "from-env"},
    )
    assert creds["OMS"] == Credentials("from-env", "u")
    assert creds["DESK-2"] == Credentials("p2", None)
    assert password_env_var("DESK-2") == "BLOCKROUTE_FIX_PASSWORD_DESK_2"


def test_a_client_without_a_password_is_a_startup_error():
    with pytest.raises(ConfigError, match="BLOCKROUTE_FIX_PASSWORD_OMS"):
        load_credentials(["OMS"], {}, {})
    with pytest.raises(ConfigError, match="no password"):
        load_credentials(
            ["OMS"], {"clients": {"OMS": {"password": ""}}}, {"BLOCKROUTE_FIX_PASSWORD_OMS": ""}
        )


def test_no_password_only_when_explicitly_allowed():
    assert load_credentials(["OMS"], {"allow_no_password": True}, {}) == {"OMS": Credentials(None)}
    with pytest.raises(ConfigError, match="true or false"):
        load_credentials(["OMS"], {"allow_no_password": "yes"}, {})


def test_credentials_for_an_unknown_client_are_a_typo():
    with pytest.raises(ConfigError, match=r"fix\.clients\.OSM"):
        load_credentials(["OMS"], {"clients": {"OSM": {"password": "x"}}}, {})


def test_credentials_check():
    c = Credentials("pw", "user")
    assert c.check("user", "pw") is None
    assert c.check("user", "nope") == "Password(554) is wrong"
    assert c.check("user", None) == "Password(554) missing"
    assert c.check(None, "pw") == "Username(553) missing"
    assert c.check("other", "pw") == "Username(553) is wrong"
    assert Credentials(None).check(None, None) is None
    assert "pw" not in repr(c)


def test_gateway_settings_resolve_paths_and_overrides(tmp_path):
    cfg = parse_acceptor_cfg(CFG, Path("/etc/br/acceptor.cfg"))
    creds = {"OMS": Credentials("a"), "DESK-2": Credentials("b")}
    s = GatewaySettings(cfg, creds, tmp_path)
    d = s.quickfix_defaults()
    assert d["FileStorePath"] == str(tmp_path / "fix/store")
    assert d["DataDictionary"] == "/etc/br/FIX44.xml"
    assert "FileLogPath" not in d and s.log_path is None
    s = GatewaySettings(cfg, creds, tmp_path, port=1234, store_dir=tmp_path / "s", file_log=True)
    d = s.quickfix_defaults()
    assert (d["SocketAcceptPort"], d["FileStorePath"]) == ("1234", str(tmp_path / "s"))
    assert d["FileLogPath"] == str(tmp_path / "fix/log")
    with pytest.raises(ConfigError, match="DESK-2 has no credentials"):
        GatewaySettings(cfg, {"OMS": Credentials("a")}, tmp_path)


def test_the_listener_defaults_are_safe_and_the_shipped_file_states_them() -> None:
    cfg = load_acceptor_config(DEFAULT_ACCEPTOR_CFG)
    assert listener_settings({}, "x") == ListenerSettings()
    shipped = listener_settings(cfg.defaults, "x")
    assert shipped == ListenerSettings()  # the file documents the defaults as they are
    assert shipped.host == "127.0.0.1"
    assert set(LISTENER_KEYS) <= set(cfg.defaults)


def test_listener_keys_are_read_and_never_reach_quickfix(tmp_path: Path) -> None:
    text = CFG.replace(
        "DataDictionary=FIX44.xml",
        "DataDictionary=FIX44.xml\nSocketAcceptHost=0.0.0.0\nLogonTimeout=0.5\n"
        "MaxPendingLogons=4\nMaxPendingLogonsPerAddress=2\nMaxFailedLogons=0\n"
        "FailedLogonWindow=30\nMaxMessageSize=4096",
    )
    cfg = parse_acceptor_cfg(text, Path("/etc/br/acceptor.cfg"))
    creds = {c: Credentials("x") for c in cfg.compids}
    gs = GatewaySettings(cfg, creds, tmp_path, extra={"MaxMessageSize": "2048"})
    assert gs.listener == ListenerSettings("0.0.0.0", 0.5, 4, 2, 0, 30.0, 2048)
    assert GatewaySettings(cfg, creds, tmp_path, host="::1").listener.host == "::1"
    assert not set(LISTENER_KEYS) & set(gs.quickfix_defaults())


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("LogonTimeout=0", "LogonTimeout must be a number of seconds >= 0.1, got '0'"),
        ("LogonTimeout=soon", "LogonTimeout must be a number of seconds"),
        ("MaxPendingLogons=0", "MaxPendingLogons must be a whole number >= 1"),
        ("MaxMessageSize=100", "MaxMessageSize must be a whole number >= 1024, got '100'"),
        ("MaxFailedLogons=-1", "MaxFailedLogons must be a whole number >= 0"),
        ("FailedLogonWindow=inf", "FailedLogonWindow must be a number of seconds"),
        ("SocketAcceptHost=", "SocketAcceptHost must be an address or host name"),
    ],
)
def test_bad_listener_limits_are_startup_errors_naming_the_key(line: str, message: str) -> None:
    text = CFG.replace("DataDictionary=FIX44.xml", f"DataDictionary=FIX44.xml\n{line}")
    with pytest.raises(ConfigError, match=re.escape(f"/etc/br/acceptor.cfg: {message}")):
        parse_acceptor_cfg(text, Path("/etc/br/acceptor.cfg"))
