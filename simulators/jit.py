"""How the simulators' numba kernels are compiled.

`kernel` compiles a function without numba's reference counting (`_nrt=False`, an
option numba keeps for its own code of this kind). The kernels take their arrays from
a caller that holds them, allocate nothing and keep no array past their call, so the
counting bought nothing, and it took most of their time: a call, and a helper inlined
with several returns, increfs every array it is handed (the book's state alone has 22)
on the way in and decrefs them on the way out. It was 68 calls to numba's runtime per
event and nine tenths of the L3 replay's time (simulators/replay/l3.py), and it held the
matching engine's `bench book` to a sixth or less of its speed now (simulators/book.py).
A kernel that would allocate (an array, a list) does not compile, so it cannot run
wrong. Helpers inlined into a kernel (`inline="always"`) are compiled with their
caller's flags; a kernel called from code that counts references is compiled with its
own. numba's on-disk cache keys a function on its own file only: code cached in another
file (simulators/flow.py calls the book's submit and cancel) keeps the kernels it was
compiled with until that file changes or its cache (`__pycache__/*.nbi`, `*.nbc`) is
removed.

A kernel called from Python with a numba `np.random.Generator` keeps a reference to it
that it never gives back (numba's entry wraps the generator for counting, and without
counting nothing releases it): such a kernel is called through an `njit` function that
counts references (simulators/flow.py `advance`). Generator methods that allocate
(`poisson`: its log-gamma builds a list) do not compile in a kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from numba import njit
from numba.core.typing.typeof import Purpose, typeof

_F = TypeVar("_F", bound=Callable[..., Any])


def kernel(fn: _F) -> _F:
    """`njit(cache=True)` without reference counting (numba's stubs omit the option)."""
    return njit(cache=True, _nrt=False)(fn)  # type: ignore[call-overload]


def machine_code(dispatcher: Any, args: tuple[Any, ...]) -> Callable[..., Any]:
    """The machine code that the compiled function `dispatcher` runs for arguments of the
    types of `args`: compiled, or loaded from numba's cache, as a first call would.

    A call through the dispatcher types every argument first, to pick that code (most
    types in C, a numpy `Generator` in Python): about half of the 20 us that a call of
    the background flow's `advance` costs before it runs a step, and a backtest run
    calls it about 400 times. The machine code checks no type: an
    argument of another dtype, number of dimensions or memory layout than it was
    compiled for would be read wrongly. Call it only with arguments made as `args`
    were (a market's own arrays, simulators/market.py)."""
    return dispatcher.compile(tuple(typeof(a, Purpose.argument) for a in args))
