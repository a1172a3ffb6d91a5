"""What the desk can tell of each dealer's position beyond its published axe.

The axe feed shows a dealer's position rounded to `AXE_STEP_ADV` of ADV, so the desk
knows the position only to within half a step either way, and a dealer prices off the
exact position (dealers price risk transfer by their own cost of carrying it): within
one step of the feed the position still moves a quote by several bps, more for a small
request. Three things the desk sees narrow it down, as a belief (weights on a grid of
offsets from the published axe, within half a step):

- its own trades with the dealer: the position moved by exactly that much, and the feed
  shows where it landed, so the two intervals intersect (a vernier);
- a change of the feed it did not cause (the dealer's hedges and other business): the
  position has just crossed into the new step, from the side it came from;
- the dealer's quotes: a quote cheaper than its pricing predicts on the client's side
  says it is longer (for a client buy) than the axe shows; each quote weighs the offsets
  by how well they explain it, against the dealer's own price noise.

What the dealer does on the screen meanwhile (hedges, other clients) blurs the belief
back towards even odds within the step, with a half-life of `BLUR_HALF_LIFE_TOD`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from dealers.axes import AXE_STEP_ADV

GRID = 21  # offsets within half a step either way: 1/16 of a step apart
#: how long what the desk learned of a position stays true, as a share of the session:
#: the dealers hedge within 15-60 minutes and do other business besides. On training days
#: (seed 100000) 20, 40 and 80 minutes gave the implied P(best) AUCs within 0.0004 of
#: one another, 40 the highest
BLUR_HALF_LIFE_TOD = 2400.0 / (6.5 * 3600.0)
#: where a position enters a new step of the feed that the desk did not cause: close to
#: the edge it crossed, decaying into the step over this share of it
ENTRY_SCALE = 0.25
MIN_MASS = 1e-9


def offsets(adv: float) -> np.ndarray:
    """The grid of offsets from the published axe, units."""
    half = 0.5 * AXE_STEP_ADV * adv
    return np.linspace(-half, half, GRID)


def uniform() -> np.ndarray:
    return np.full(GRID, 1.0 / GRID)


def entered(from_below: bool) -> np.ndarray:
    """A position that has just crossed into a step from below (or above)."""
    u = np.linspace(0.0, 1.0, GRID)
    w = np.exp(-(u if from_below else 1.0 - u) / ENTRY_SCALE)
    return np.asarray(w / w.sum())


def shifted(w: np.ndarray, grid: np.ndarray, shift: float) -> np.ndarray | None:
    """The belief `w` of a position that then moved by `shift` units, as offsets on the
    same grid (what falls outside the step is impossible); None if nothing is left."""
    if shift == 0.0:
        return w
    if abs(shift) > (grid[-1] - grid[0]) - 0.5 * (grid[1] - grid[0]):
        return None  # the two steps touch at an edge at most
    moved = np.interp(grid - shift, grid, w, left=0.0, right=0.0)
    total = float(moved.sum())
    if total < MIN_MASS:
        return None
    return np.asarray(moved / total)


def blur(w: np.ndarray, elapsed_tod: float) -> np.ndarray:
    """`w` after `elapsed_tod` of the dealer's unseen business."""
    keep = 0.5 ** (max(elapsed_tod, 0.0) / BLUR_HALF_LIFE_TOD)
    return np.asarray(keep * w + (1.0 - keep) / GRID)


class PositionBeliefs:
    """One belief per dealer (see the module docstring), kept by the desk. The belief
    refers to the axe it was last reconciled with (`_center`); trades the desk did since
    wait in `_moved` until the feed is read again (`current`)."""

    def __init__(self, adv: float) -> None:
        self.adv = adv
        self.grid = offsets(adv)
        self._step = AXE_STEP_ADV * adv
        self.new_day()

    def new_day(self) -> None:
        # dealers open the day with a new position: nothing carries over
        self._w: dict[str, np.ndarray] = {}
        self._center: dict[str, float] = {}
        self._moved: dict[str, float] = {}
        self._tod: dict[str, float] = {}

    def traded(self, dealer: str, units: float) -> None:
        """The dealer's position moved by `units` in a trade with the desk."""
        self._moved[dealer] = self._moved.get(dealer, 0.0) + units

    def current(self, dealer: str, axe: float, tod: float | None = None) -> np.ndarray:
        """The belief now, the feed showing `axe` (units), at `tod` (None: no blur).
        Nothing is changed."""
        w = self._w.get(dealer)
        if w is None:
            return uniform()
        center = self._center[dealer]
        moved = self._moved.get(dealer, 0.0)
        if tod is not None:
            w = blur(w, tod - self._tod[dealer])
        expected = center + moved  # where the position is, as far as the desk caused it
        if abs(axe - center) < 1e-9 * self._step and moved == 0.0:
            return w
        out = shifted(w, self.grid, expected - axe)
        if out is not None:
            return out
        # the feed moved where the desk's trades alone cannot take it: unseen business
        # carried the position across the edge towards the new step
        if abs(axe - expected) < 1e-9 * self._step:
            return uniform()
        return entered(from_below=axe > expected)

    def commit(self, dealer: str, axe: float, tod: float) -> np.ndarray:
        """Bring the belief up to now (`current`) and keep it: at a request, whose
        quotes will be weighed against it."""
        w = self.current(dealer, axe, tod)
        self._w[dealer] = w
        self._center[dealer] = axe
        self._moved[dealer] = 0.0
        self._tod[dealer] = tod
        return w

    def kept_tod(self, dealer: str) -> float:
        """When the dealer's belief was last kept (0: never, it is even odds)."""
        return self._tod.get(dealer, 0.0)

    def weigh(self, dealer: str, center: float, likelihood: np.ndarray) -> None:
        """Weigh the kept belief by a quote's `likelihood` of each offset; the quote was
        priced against the belief kept at `center` (skipped if it has been replaced)."""
        w = self._w.get(dealer)
        if w is None or self._center.get(dealer) != center:
            return
        post = w * likelihood
        total = float(post.sum())
        if total >= MIN_MASS and math.isfinite(total):
            self._w[dealer] = post / total


@njit(cache=True)
def gaussian_likelihood(residuals: np.ndarray, sd: float) -> np.ndarray:
    """exp(-r^2 / 2 sd^2) for each offset's residual, scaled so the largest is 1."""
    out = np.empty(residuals.shape[0])
    best = np.inf
    for g in range(residuals.shape[0]):
        best = min(best, abs(residuals[g]))
    for g in range(residuals.shape[0]):
        r = residuals[g]
        out[g] = math.exp(-0.5 * (r * r - best * best) / (sd * sd))
    return out
