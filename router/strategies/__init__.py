"""Slicers: how much of the parent should be done by now."""

from __future__ import annotations

from router.ports import SlicerPolicy
from router.strategies.twap import TwapSlicer

SLICERS: dict[str, type[SlicerPolicy]] = {"twap": TwapSlicer}


def make_slicer(name: str) -> SlicerPolicy:
    try:
        return SLICERS[name]()
    except KeyError:
        known = ", ".join(sorted(SLICERS))
        raise ValueError(f"unknown strategy {name!r} (known: {known})") from None
