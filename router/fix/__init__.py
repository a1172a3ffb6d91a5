"""The FIX 4.4 gateway of `blockroute serve` (a quickfix acceptor in front of the desk).

- `settings`: acceptor.cfg, the clients' credentials, the gateway's settings;
- `wire`: FIX fields <-> the desk's commands, views and events (pure functions);
- `ledger`: which ExecutionReports a client already has (restart reconciliation);
- `gateway`: `FixGateway`, the quickfix acceptor and its bridge to the asyncio loop.

Import `router.fix.gateway` for the gateway itself; the other modules do not load
quickfix.
"""
