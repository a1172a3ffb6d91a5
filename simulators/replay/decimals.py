"""Exact decimal text to integers, and the grid (tick or lot) that a column lives on.

Feeds print prices and sizes as decimal text ("78318.0", "0.06384146"). Going through
binary floats would round 8-decimal sizes and 9-digit prices wrongly now and then, so
the text is read exactly: each distinct string once (a capture repeats its prices and
sizes many times), as an integer mantissa and a count of decimals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

#: more decimals than any feed prints: a longer fraction is a malformed number
MAX_DECIMALS = 12


class DecimalColumn:
    """Collects one column's decimal strings; `scaled` gives them as integers on the
    column's finest decimal grid (10 ** -decimals)."""

    __slots__ = ("_cache", "_dec", "_mant", "exponent_notation")

    def __init__(self) -> None:
        self._cache: dict[str, tuple[int, int]] = {}
        self._mant: list[int] = []
        self._dec: list[int] = []
        #: values printed with an exponent (e.g. 7.18e-06)
        self.exponent_notation = 0

    def add(self, text: str) -> None:
        """Raises ValueError if `text` is not a decimal number."""
        hit = self._cache.get(text)
        if hit is None:
            hit = parse_decimal(text)
            self._cache[text] = hit
        if "e" in text or "E" in text:
            self.exponent_notation += 1
        self._mant.append(hit[0])
        self._dec.append(hit[1])

    def __len__(self) -> int:
        return len(self._mant)

    @property
    def decimals(self) -> int:
        return max(self._dec, default=0)

    def scaled(self, decimals: int) -> npt.NDArray[np.int64]:
        """The values times 10 ** decimals, exactly. Raises ValueError on overflow."""
        if decimals < self.decimals:
            raise ValueError(f"{decimals} decimals cannot hold values with {self.decimals}")
        try:
            mant = np.array(self._mant, dtype=np.int64)
        except OverflowError:
            raise ValueError("number too large for 64-bit integers") from None
        shift = np.array(self._dec, dtype=np.int64)
        out = np.empty(len(self._mant), dtype=np.int64)
        for d in np.unique(shift):
            sel = shift == d
            factor = 10 ** (decimals - int(d))
            if np.abs(mant[sel]).max() >= 2**62 // factor:
                raise ValueError("number too large for 64-bit integers")
            out[sel] = mant[sel] * factor
        return out


def parse_decimal(text: str) -> tuple[int, int]:
    """`"-12.3400"` -> (-1234, 2): the mantissa and the decimals, trailing zeros dropped;
    exponent notation too (`"7.18e-06"` -> (718, 8)), as Python prints small floats.

    Raises ValueError if `text` is not a decimal number (spaces, signs or digits amiss).
    """
    s = text
    exp = 0
    if "e" in s or "E" in s:
        s, _, e = s.lower().partition("e")
        try:
            exp = int(e)
        except ValueError:
            raise ValueError(f"not a decimal number: {text!r}") from None
    sign = -1 if s[:1] == "-" else 1
    body = s[1:] if s[:1] in ("+", "-") else s
    whole, _, frac = body.partition(".")
    if not (whole or frac) or (whole and not whole.isdigit()) or (frac and not frac.isdigit()):
        raise ValueError(f"not a decimal number: {text!r}")
    mant = int((whole or "0") + frac)
    dec = len(frac) - exp
    if mant == 0:
        return 0, 0
    while dec > 0 and mant % 10 == 0:
        mant //= 10
        dec -= 1
    if dec < 0:
        mant *= 10**-dec
        dec = 0
    if dec > MAX_DECIMALS:
        raise ValueError(f"more than {MAX_DECIMALS} decimals: {text!r}")
    return sign * mant, dec


@dataclass(frozen=True, slots=True)
class Grid:
    """A column's grid: values are whole multiples of `step` units of 10 ** -decimals."""

    decimals: int
    step: int

    @property
    def size(self) -> Fraction:
        return Fraction(self.step, 10**self.decimals)

    def describe(self, unit: str) -> str:
        return f"{_fmt(self.size)} {unit}"


def find_grid(scaled: npt.NDArray[np.int64], decimals: int) -> Grid:
    """The coarsest grid every value sits on: the greatest common divisor of the values
    (zeros aside). A capture of one instrument over half an hour gives the venue's tick
    (or lot) unless every price happens to share a larger factor, which the caller can
    check against the venue's published rule."""
    nz = np.abs(scaled[scaled != 0])
    step = int(np.gcd.reduce(nz)) if nz.size else 1
    return Grid(decimals=decimals, step=max(step, 1))


def _fmt(x: Fraction) -> str:
    if x.denominator == 1:
        return str(x.numerator)
    digits = max(0, math.ceil(math.log10(x.denominator)))
    return f"{float(x):.{digits}f}".rstrip("0").rstrip(".")
