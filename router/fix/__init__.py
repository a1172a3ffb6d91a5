"""The FIX 4.4 gateway of `blockroute serve` (a quickfix acceptor in front of the desk).

- `settings`: acceptor.cfg, the clients' credentials, the gateway's and the listener's
  settings;
- `wire`: FIX fields <-> the desk's commands, views and events (pure functions);
- `framing`: FIX messages cut from a byte stream, garbled and oversized ones named;
- `listener`: the socket clients connect to, in front of quickfix (the limits, the
  Logon checks, the failed-logon throttle);
- `ledger`: which ExecutionReports a client already has (restart reconciliation);
- `gateway`: `FixGateway`, the quickfix acceptor and its bridge to the asyncio loop.

Import `router.fix.gateway` for the gateway itself; the other modules do not load
quickfix.
"""
