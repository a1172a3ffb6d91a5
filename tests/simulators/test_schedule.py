import numpy as np
import pytest

from router.domain import NANOS_PER_SECOND
from simulators import flow
from simulators.scenario import SESSION_CLOSE_S, SESSION_OPEN_S, load_scenario
from simulators.schedule import STEP_S, TAIL_S, WARMUP_S, StepGrid, build_schedule, volume_profile


def test_u_shaped_volume_profile():
    tod = np.linspace(SESSION_OPEN_S, SESSION_CLOSE_S, 391)
    p = volume_profile(tod)
    assert p.mean() == pytest.approx(1.0, abs=0.02)
    assert p[0] > 1.5 * p[195] and p[-1] > 1.5 * p[195]


def test_the_grid_spans_the_warm_up_the_horizon_and_the_tail():
    g = StepGrid.for_horizon(3600.0)
    assert g.n_steps == round((WARMUP_S + 3600.0 + TAIL_S) / STEP_S)
    assert g.step_of(g.t0_ns) == 0 and g.step_of(0) == round(WARMUP_S / STEP_S)
    assert g.end_ns == int((3600.0 + TAIL_S) * NANOS_PER_SECOND)
    # ten steps to the tape's bar; a time past the end reads the last bar
    assert g.bar_of(0) == g.step_of(0) // 10 and g.bar_of(10 * g.end_ns) == g.n_bars - 1
    assert g.step_time_s()[g.step_of(0)] == pytest.approx(STEP_S)


def test_a_seed_gives_the_same_schedule_and_the_law_of_its_path():
    sc = load_scenario("news-shock")
    g = StepGrid.for_horizon(sc.horizon_s)
    px = sc.market.price / sc.instrument.tick_size
    a = build_schedule(sc, g, px, np.random.default_rng(5))
    b = build_schedule(sc, g, px, np.random.default_rng(5))
    assert a.sched.tobytes() == b.sched.tobytes() and a.params.tobytes() == b.params.tobytes()
    assert a.sched.shape == (flow.N_SCHEDULE_ROWS, g.n_steps)
    # the drift carries the news jump: the law a branch redraws the path from
    i = np.argmin(a.exo.drift)
    assert a.exo.drift[i] < -10.0 and a.sched[flow.S_EXO, i] < a.sched[flow.S_EXO, i - 1] - 10.0
