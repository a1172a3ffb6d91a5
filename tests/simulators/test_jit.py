"""simulators.jit.kernel: compiled without reference counting, so it cannot allocate."""

import sys
from collections.abc import Callable

import numpy as np
import pytest
from numba.core.errors import NumbaError

from simulators import book, flow
from simulators.jit import kernel
from simulators.kernel import rng_for
from simulators.market import SimMarket
from simulators.scenario import load_scenario


@kernel
def _sum_in_place(a: np.ndarray) -> int:
    total = 0
    for i in range(a.shape[0]):
        a[i] += 1
        total += a[i]
    return total


@kernel
def _allocates(n: int) -> float:
    return np.zeros(n).sum()


@kernel
def _grows_a_list(n: int) -> int:
    out = [0]
    for i in range(n):
        out.append(i)
    return len(out)


def test_a_kernel_works_on_the_arrays_its_caller_holds() -> None:
    a = np.arange(4, dtype=np.int64)
    assert _sum_in_place(a) == 10
    assert a.tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize("fn", [_allocates, _grows_a_list])
def test_a_kernel_that_allocates_does_not_compile(fn: Callable[[int], object]) -> None:
    with pytest.raises(NumbaError):
        fn(3)


def test_the_books_compiled_operations_are_kernels() -> None:
    # the inlined building blocks take their caller's flags; every operation compiled on
    # its own runs without reference counting
    for name in (
        "submit",
        "cancel",
        "reduce",
        "replace",
        "depth_near",
        "cancel_random",
        "apply_events",
        "_match",
        "_rest",
        "_fix_best_after_empty",
    ):
        assert getattr(book, name).targetoptions.get("_nrt") is False, name


def test_the_background_flows_compiled_steps_are_kernels() -> None:
    for name in ("_advance", "_taker", "_pull_stale", "_best_venue"):
        assert getattr(flow, name).targetoptions.get("_nrt") is False, name
    # the entry point called from Python counts references: see the next test
    assert flow.advance.targetoptions.get("_nrt") is not False


@kernel
def _draw(gen: np.random.Generator) -> float:
    return gen.random()


def test_a_kernel_called_from_python_keeps_a_reference_to_a_generator() -> None:
    # why flow.advance, called from Python with the market's generator, is not a kernel
    # itself: each call of a kernel from Python takes a reference to the generator that
    # is never given back
    gen = np.random.default_rng(1)
    _draw(gen)
    before = sys.getrefcount(gen)
    for _ in range(10):
        _draw(gen)
    assert sys.getrefcount(gen) == before + 10


def test_advancing_the_market_keeps_no_reference_to_its_generator() -> None:
    m = SimMarket(load_scenario("calm"), rng_for(1, "market"))
    gen = m._gen
    m.advance_to(60 * 10**9)
    before = sys.getrefcount(gen)
    for k in range(2, 12):
        m.advance_to(k * 60 * 10**9)
    assert sys.getrefcount(gen) == before
