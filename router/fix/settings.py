"""The FIX gateway's settings: the acceptor's session file and the clients' credentials.

`acceptor.cfg` is quickfix's own format (a [DEFAULT] section and one [SESSION] per
client); it is parsed here, without quickfix, so that mistakes surface at start-up with
a message naming the file, and so that the service can override the port and the
directories before quickfix sees the settings. Nothing here opens a socket.

The [DEFAULT] section also holds the FIX listener's limits (`ListenerSettings`), read by
router.fix.listener and never passed to quickfix. LogonTimeout keeps quickfix's name
(the time a logon may take) but is the listener's: quickfix's acceptor does not use it.
"""

from __future__ import annotations

import hmac
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router.config import DEFAULT_CONFIG_DIR, ConfigError
from router.fix.wire import BEGIN_STRING

DEFAULT_ACCEPTOR_CFG = DEFAULT_CONFIG_DIR / "fix" / "acceptor.cfg"
PASSWORD_ENV_PREFIX = "BLOCKROUTE_FIX_PASSWORD_"

_SECTION = re.compile(r"^\[(\w+)\]$")


@dataclass(frozen=True)
class AcceptorConfig:
    """acceptor.cfg as read: the [DEFAULT] values and each [SESSION]'s own values."""

    path: Path
    defaults: Mapping[str, str]
    sessions: tuple[Mapping[str, str], ...]

    def session_value(self, index: int, key: str) -> str | None:
        return self.sessions[index].get(key, self.defaults.get(key))

    @property
    def sender_comp_id(self) -> str:
        return self.defaults["SenderCompID"]

    @property
    def compids(self) -> list[str]:
        """The clients' CompIDs (each session's TargetCompID), in file order."""
        return [s["TargetCompID"] for s in self.sessions]

    @property
    def port(self) -> int:
        return int(self.defaults["SocketAcceptPort"])


def parse_acceptor_cfg(text: str, path: Path) -> AcceptorConfig:
    """Parse quickfix's settings format; raises ConfigError naming the file and line."""
    defaults: dict[str, str] = {}
    sessions: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _SECTION.match(line)
        if m:
            name = m.group(1).upper()
            if name == "DEFAULT":
                current = defaults
            elif name == "SESSION":
                current = {}
                sessions.append(current)
            else:
                raise ConfigError(f"{path}:{lineno}: unknown section [{m.group(1)}]")
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{lineno}: expected Key=Value, got {line!r}")
        if current is None:
            raise ConfigError(f"{path}:{lineno}: {key.strip()} is outside a section")
        current[key.strip()] = value.strip()
    cfg = AcceptorConfig(path, defaults, tuple(sessions))
    _check(cfg)
    return cfg


def _check(cfg: AcceptorConfig) -> None:
    where = str(cfg.path)
    if cfg.defaults.get("ConnectionType", "acceptor") != "acceptor":
        raise ConfigError(f"{where}: ConnectionType must be acceptor")
    for key in ("SenderCompID", "SocketAcceptPort"):
        if key not in cfg.defaults:
            raise ConfigError(f"{where}: [DEFAULT] {key} is missing")
    if not cfg.defaults["SocketAcceptPort"].isdigit():
        raise ConfigError(f"{where}: SocketAcceptPort must be a port number")
    listener_settings(cfg.defaults, where)
    if not cfg.sessions:
        raise ConfigError(f"{where}: no [SESSION]: list at least one client")
    seen: set[str] = set()
    for i, s in enumerate(cfg.sessions):
        target = s.get("TargetCompID")
        if not target:
            raise ConfigError(f"{where}: [SESSION] #{i + 1} has no TargetCompID")
        if target in seen:
            raise ConfigError(f"{where}: TargetCompID {target} is listed twice")
        seen.add(target)
        if cfg.session_value(i, "BeginString") != BEGIN_STRING:
            raise ConfigError(f"{where}: [SESSION] {target}: BeginString must be {BEGIN_STRING}")
        if cfg.session_value(i, "SenderCompID") != cfg.sender_comp_id:
            raise ConfigError(f"{where}: [SESSION] {target}: one SenderCompID for all sessions")


def load_acceptor_config(path: Path = DEFAULT_ACCEPTOR_CFG) -> AcceptorConfig:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    return parse_acceptor_cfg(text, path)


# ------------------------------------------------------------------------ the listener


@dataclass(frozen=True)
class ListenerSettings:
    """The FIX listener's limits (acceptor.cfg [DEFAULT] keys in brackets).

    Nothing reaches quickfix before it passed these: a connection gets `logon_timeout_s`
    to send a well-formed Logon [LogonTimeout]; at most `max_pending` connections
    [MaxPendingLogons], `max_pending_per_address` of them from one address
    [MaxPendingLogonsPerAddress], may be waiting for that at once, and more are closed as
    they arrive. After `max_failed_logons` [MaxFailedLogons] failed logons within
    `failed_logon_window_s` [FailedLogonWindow], a CompID is refused (with a Logout that
    says until when) and an address is disconnected on connect, until the oldest failure
    in the window has aged out (0 turns this off). A message of more than
    `max_message_size` bytes [MaxMessageSize] is never read: a Logon is dropped with its
    connection, a later message gets a session Reject. `host` [SocketAcceptHost] is the
    address to listen on; 0.0.0.0 (or ::) listens on every interface.
    """

    host: str = "127.0.0.1"
    logon_timeout_s: float = 5.0
    max_pending: int = 32
    max_pending_per_address: int = 8
    max_failed_logons: int = 5
    failed_logon_window_s: float = 60.0
    max_message_size: int = 16384


# acceptor.cfg key -> (ListenerSettings field, smallest value allowed)
LISTENER_KEYS: Mapping[str, tuple[str, float]] = {
    "SocketAcceptHost": ("host", 0),
    "LogonTimeout": ("logon_timeout_s", 0.1),
    "MaxPendingLogons": ("max_pending", 1),
    "MaxPendingLogonsPerAddress": ("max_pending_per_address", 1),
    "MaxFailedLogons": ("max_failed_logons", 0),
    "FailedLogonWindow": ("failed_logon_window_s", 1),
    "MaxMessageSize": ("max_message_size", 1024),
}
# quickfix never sees these: its acceptor has no bind address, no limits of this kind,
# and reads LogonTimeout (an initiator's wait for the answer to its Logon) as whole
# seconds, where the listener takes fractions
LISTENER_ONLY_KEYS = frozenset(LISTENER_KEYS)


def listener_settings(values: Mapping[str, str], where: str) -> ListenerSettings:
    """The listener's limits from [DEFAULT] values (defaults where a key is absent);
    raises ConfigError naming `where` and the key."""
    kwargs: dict[str, Any] = {}
    defaults = ListenerSettings()
    for key, (name, least) in LISTENER_KEYS.items():
        text = values.get(key)
        if text is None:
            continue
        text = text.strip()
        if name == "host":
            if not text or any(c.isspace() for c in text):
                raise ConfigError(f"{where}: {key} must be an address or host name, got {text!r}")
            kwargs[name] = text
            continue
        whole = isinstance(getattr(defaults, name), int)
        try:
            number: float = int(text) if whole else float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < least:
            kind = "a whole number" if whole else "a number of seconds"
            raise ConfigError(f"{where}: {key} must be {kind} >= {least:g}, got {text!r}")
        kwargs[name] = number
    return ListenerSettings(**kwargs)


# ------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class Credentials:
    """What a client must send on Logon: Password(554), and Username(553) if set.
    `password` None means the client logs on without one (allow_no_password)."""

    password: str | None
    username: str | None = None

    def __repr__(self) -> str:  # never print a secret into a log
        hidden = "***" if self.password else None
        return f"Credentials(username={self.username!r}, password={hidden})"

    def check(self, username: str | None, password: str | None) -> str | None:
        """None if these match, else why not (the Logout's Text: says which field)."""
        if self.username is not None and username != self.username:
            return "Username(553) missing" if username is None else "Username(553) is wrong"
        if self.password is None:
            return None
        if password is None:
            return "Password(554) missing"
        if not hmac.compare_digest(password.encode(), self.password.encode()):
            return "Password(554) is wrong"
        return None


def password_env_var(compid: str) -> str:
    """BLOCKROUTE_FIX_PASSWORD_<COMPID>, with characters a shell name cannot hold as _."""
    return PASSWORD_ENV_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", compid).upper()


def load_credentials(
    compids: Iterable[str], config: Mapping[str, Any], environ: Mapping[str, str]
) -> dict[str, Credentials]:
    """Each client's credentials from the service config's `fix` table:

        allow_no_password = false          # true: a client without a password may log on
        [fix.clients.OMS]
        username = "oms-desk"               # optional: then Username(553) is checked too
        password = "..."                    # BLOCKROUTE_FIX_PASSWORD_OMS overrides it

    A client with no password anywhere is a configuration error (an open door) unless
    `allow_no_password` is true. Raises ConfigError.
    """
    compids = list(compids)
    allow_none = config.get("allow_no_password", False)
    if not isinstance(allow_none, bool):
        raise ConfigError(f"fix.allow_no_password must be true or false, got {allow_none!r}")
    clients = config.get("clients", {})
    if not isinstance(clients, Mapping):
        raise ConfigError("fix.clients must be a table of client CompIDs")
    unknown = sorted(set(clients) - set(compids))
    if unknown:
        raise ConfigError(
            f"fix.clients.{unknown[0]}: no [SESSION] with TargetCompID={unknown[0]} in the "
            f"acceptor config (sessions: {', '.join(compids)})"
        )
    out: dict[str, Credentials] = {}
    for compid in compids:
        entry = clients.get(compid, {})
        if not isinstance(entry, Mapping):
            raise ConfigError(f"fix.clients.{compid} must be a table")
        username = _optional_str(entry, "username", compid)
        password = environ.get(password_env_var(compid)) or _optional_str(entry, "password", compid)
        if password is None and not allow_none:
            raise ConfigError(
                f"FIX client {compid} has no password: set {password_env_var(compid)} or "
                f"fix.clients.{compid}.password (or allow_no_password = true, for tests only)"
            )
        out[compid] = Credentials(password, username)
    return out


def _optional_str(entry: Mapping[str, Any], key: str, compid: str) -> str | None:
    value = entry.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"fix.clients.{compid}.{key} must be a string")
    return value


# ---------------------------------------------------------------------- the gateway's


@dataclass(frozen=True)
class GatewaySettings:
    """Everything the gateway needs besides the desk and the loop.

    `data_dir` holds the message store (acceptor.cfg's FileStorePath, relative to it)
    and, if `file_log` is true, the FIX message log (FileLogPath). `port`, `host`,
    `store_dir` and `log_dir` override the file. The file log holds every message as
    quickfix saw it; the listener replaces a Logon's Password(554) with a one-time token
    before quickfix sees it, so no password reaches the log.
    """

    acceptor: AcceptorConfig
    credentials: Mapping[str, Credentials]
    data_dir: Path
    port: int | None = None
    host: str | None = None
    store_dir: Path | None = None
    log_dir: Path | None = None
    file_log: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)  # more [DEFAULT] keys (tests)

    def __post_init__(self) -> None:
        missing = [c for c in self.acceptor.compids if c not in self.credentials]
        if missing:
            raise ConfigError(f"FIX client {missing[0]} has no credentials")
        self.listener  # noqa: B018  (checks `extra` now, not when the gateway starts)

    @property
    def listener(self) -> ListenerSettings:
        values = {**self.acceptor.defaults, **self.extra}
        if self.host is not None:
            values["SocketAcceptHost"] = self.host
        return listener_settings(values, str(self.acceptor.path))

    @property
    def store_path(self) -> Path:
        if self.store_dir is not None:
            return self.store_dir
        return self.data_dir / self.acceptor.defaults.get("FileStorePath", "fix/store")

    @property
    def log_path(self) -> Path | None:
        if self.log_dir is not None:
            return self.log_dir
        if not self.file_log:
            return None
        return self.data_dir / self.acceptor.defaults.get("FileLogPath", "fix/log")

    def quickfix_defaults(self) -> dict[str, str]:
        """The [DEFAULT] values as quickfix gets them: overrides applied, paths resolved."""
        d = dict(self.acceptor.defaults)
        d["ConnectionType"] = "acceptor"
        d.pop("FileLogPath", None)
        for key in LISTENER_ONLY_KEYS:
            d.pop(key, None)
        if self.port is not None:
            d["SocketAcceptPort"] = str(self.port)
        d["FileStorePath"] = str(self.store_path)
        if self.log_path is not None:
            d["FileLogPath"] = str(self.log_path)
        dictionary = d.get("DataDictionary")
        if dictionary:
            d["DataDictionary"] = str(self.acceptor.path.parent / dictionary)
        d.update((k, v) for k, v in self.extra.items() if k not in LISTENER_ONLY_KEYS)
        return d

    def quickfix_sessions(self) -> list[dict[str, str]]:
        """Each [SESSION]'s own values (a session's DataDictionary resolved too)."""
        out = []
        for s in self.acceptor.sessions:
            d = dict(s)
            if d.get("DataDictionary"):
                d["DataDictionary"] = str(self.acceptor.path.parent / d["DataDictionary"])
            out.append(d)
        return out
