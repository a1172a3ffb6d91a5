"""simulators.jit.kernel: compiled without reference counting, so it cannot allocate."""

from collections.abc import Callable

import numpy as np
import pytest
from numba.core.errors import NumbaError

from simulators import book
from simulators.jit import kernel


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
