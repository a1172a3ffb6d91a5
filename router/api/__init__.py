"""The HTTP edge of `blockroute serve`: REST API, WebSocket events and the dashboard.

`make_app(desk, token)` is all the service needs; see router/api/app.py.
"""

from router.api.app import make_app

__all__ = ["make_app"]
