"""Reading the reports' JSON documents defensively.

Documents come from different versions of the code, so every key beyond the contract is
optional: these readers turn a missing or malformed value into None, an empty mapping or
an empty list instead of raising. Both TCA layouts in use are read: the decomposition
flat in ``tca`` or nested under ``tca["decomposition"]``; markout horizons keyed "60" or
"60s".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def as_num(value: object) -> float | None:
    """A finite number, or None (bools, strings, NaN and infinities are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def as_dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def as_nums(value: object) -> list[float | None]:
    return [as_num(v) for v in as_list(value)]


def as_text(value: object, default: str = "") -> str:
    return default if value is None else str(value)


def decomposition(tca: Mapping[str, Any]) -> Mapping[str, Any]:
    """The IS parts, flat in `tca` or nested under "decomposition" (both layouts exist)."""
    nested = as_dict(tca.get("decomposition"))
    return {**tca, **nested}


def _horizon_key(key: str) -> float:
    """'60' or '60s' -> 60.0, for sorting markout horizons; unknown shapes sort last."""
    try:
        return float(key.rstrip("s"))
    except ValueError:
        return math.inf


def markout_keys(*maps: Mapping[str, Any]) -> list[str]:
    keys = {str(k) for m in maps for k in m}
    return sorted(keys, key=lambda k: (_horizon_key(k), k))


def horizon_label(key: str) -> str:
    h = _horizon_key(key)
    return f"{h:g} s" if math.isfinite(h) else key


def seconds_label(t_s: float) -> str:
    """Seconds since the start as h:mm:ss (or m:ss under an hour)."""
    total = round(t_s)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def duration(t_s: float) -> str:
    h, rest = divmod(round(t_s), 3600)
    m, s = divmod(rest, 60)
    parts = [f"{h} h" if h else "", f"{m} min" if m else "", f"{s} s" if s else ""]
    return " ".join(p for p in parts if p) or "0 s"


def sim_results(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [r for r in as_list(doc.get("results")) if isinstance(r, Mapping)]


def strategy_name(result: Mapping[str, Any], i: int) -> str:
    return as_text(result.get("strategy"), f"strategy {i + 1}")
