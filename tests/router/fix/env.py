"""The gateway tests' environment: the shipped acceptor.cfg plus a second client, a free
loopback port, temporary stores, and everything started stopped again by `close`."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

from router.desk_api import DeskPort
from router.fix.gateway import FixGateway
from router.fix.settings import (
    DEFAULT_ACCEPTOR_CFG,
    Credentials,
    GatewaySettings,
    parse_acceptor_cfg,
)

from .client import FixTestClient

PASSWORDS = {"OMS": "s3cret", "OMS2": "two-secret"}
USERNAMES = {"OMS": "oms-user", "OMS2": None}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FixEnv:
    """The shipped acceptor.cfg plus a second client (OMS2), on a free port."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.store_dir = tmp / "store"
        self.gateways: list[FixGateway] = []
        self.clients: list[FixTestClient] = []
        text = (
            DEFAULT_ACCEPTOR_CFG.read_text()
            + "\n[SESSION]\nBeginString=FIX.4.4\nTargetCompID=OMS2\n"
        )
        self.acceptor = parse_acceptor_cfg(text, DEFAULT_ACCEPTOR_CFG)
        self.credentials = {c: Credentials(PASSWORDS[c], USERNAMES[c]) for c in PASSWORDS}

    def gateway(self, desk: DeskPort, **overrides: Any) -> FixGateway:
        settings = GatewaySettings(
            acceptor=self.acceptor,
            credentials=overrides.pop("credentials", self.credentials),
            data_dir=self.tmp,
            port=overrides.pop("port", self.port),
            store_dir=self.store_dir,
            **overrides,
        )
        gw = FixGateway(desk, settings, asyncio.get_running_loop())
        gw.start()
        self.gateways.append(gw)
        return gw

    def client(
        self, sender: str = "OMS", password: str | None = "default", **kw: Any
    ) -> FixTestClient:
        if password == "default":
            password = PASSWORDS.get(sender)
        kw.setdefault("username", USERNAMES.get(sender))
        c = FixTestClient(
            self.port, self.tmp / f"client-{sender}", sender=sender, password=password, **kw
        )
        self.clients.append(c)
        return c.start()

    async def logged_on_client(self, sender: str = "OMS") -> FixTestClient:
        c = self.client(sender)
        await c.wait_logged_on()
        return c

    async def close(self) -> None:
        for c in self.clients:
            c.stop()
        for gw in self.gateways:
            await gw.stop(timeout=0.5)
