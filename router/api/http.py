"""What every handler of the API shares: JSON bodies in, JSON responses out, numbers
from the query string."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from aiohttp import web

from router.api.errors import ApiError, invalid
from router.api.ws import json_text

DIGITS = re.compile(r"^[0-9]{1,9}$")


def query_number(text: str, name: str) -> float:
    """A query parameter that must be a finite number (its range is checked where it is
    used, with a message naming it)."""
    try:
        value = float(text)
    except ValueError:
        raise invalid(name, f"{name} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise invalid(name, f"{name} must be a finite number, got {text!r}")
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")  # Python's json reads NaN and Infinity


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


async def read_object(request: web.Request, *, required: bool = True) -> dict[str, Any]:
    """The request body as a JSON object (400 if it is not one); {} for an empty optional
    body."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise ApiError(400, "bad_request", "the request body is empty: send a JSON object")
        return {}
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise ApiError(400, "bad_request", "the request body is nested too deeply") from None
    except ValueError as exc:  # not UTF-8, not JSON, NaN, an integer of 5,000 digits...
        raise ApiError(400, "bad_request", f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(
            400, "bad_request", f"the request body must be a JSON object, got {_type_name(data)}"
        )
    return data


def json_response(doc: object, status: int = 200) -> web.Response:
    return web.Response(text=json_text(doc), status=status, content_type="application/json")
