"""simulators.flow: its kernels draw what numba's generator methods draw."""

import numpy as np
import pytest
from numba import njit

from simulators import flow
from simulators.jit import kernel


@kernel
def _kernel_draws(gen: np.random.Generator, lam: float, out: np.ndarray) -> None:
    for i in range(out.shape[0]):
        out[i] = flow._poisson(gen, lam)


@njit
def _numba_draws(gen: np.random.Generator, lam: float, out: np.ndarray) -> None:
    for i in range(out.shape[0]):
        out[i] = gen.poisson(lam)


@pytest.mark.parametrize("lam", [0.0, 1e-3, 0.7, 3.0, 9.999, 10.0, 12.5, 80.0, 5000.0])
def test_the_kernels_poisson_draws_as_numbas_does(lam: float) -> None:
    # both branches of the sampler (lam < 10 and the rejection one with its log-gamma),
    # and the generator left in the same state
    g1, g2 = np.random.default_rng(7), np.random.default_rng(7)
    a, b = np.empty(20_000, dtype=np.int64), np.empty(20_000, dtype=np.int64)
    _kernel_draws(g1, lam, a)
    _numba_draws(g2, lam, b)
    assert a.tolist() == b.tolist()
    assert g1.random() == g2.random()
