"""The execution environment of the learned slicer: gymnasium's checker, determinism per
seed, the same run as the `ml` strategy in a backtest, the reward identity against
router.tca, the regime draws, and the refusal of the held-out evaluation seeds.

gymnasium is the `train` extra: without it these tests skip, except in CI (env CI set)
where they fail, since CI must install the extra."""

from __future__ import annotations

import dataclasses
import threading
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from router.domain import ChildOrderFilled, ParentOrder, Side
from router.strategies.learned import OBS_SIZE
from simulators.scenario import load_scenario, mirrored

# skipped without the extra, failed in CI (tests/conftest.py)
pytestmark = pytest.mark.requires_extra("train", "gymnasium")


# the cheapest regime to simulate (a thin bond book): seconds for the whole file
BOND = ("illiquid-bond",)
SEED = 5_000_123


def _env(*args: Any, **kwargs: Any) -> Any:
    from models.training.execenv import ExecutionEnv

    return ExecutionEnv(*args, **kwargs)


def _episode(env: Any, seed: int, actions: np.ndarray, **reset: Any) -> dict[str, Any]:
    obs, info = env.reset(seed=seed, **reset)
    seen, rewards, done, k = [obs], [], False, 0
    while not done:
        obs, r, done, truncated, info = env.step(actions[k : k + 1])
        assert not truncated
        rewards.append(r)
        seen.append(obs)
        k += 1
    return {"obs": np.array(seen), "rewards": np.array(rewards), "info": info, "env": env}


# -------------------------------------------------------------------------- the API


def test_check_env_passes() -> None:
    from gymnasium.utils.env_checker import check_env

    env = _env(BOND)
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (OBS_SIZE,) == (14,)
    assert env.action_space.shape == (1,)
    assert env.action_space.low[0] == -1.0 and env.action_space.high[0] == 1.0
    env.close()


def test_an_episode_is_one_query_per_five_minutes_and_ends_at_the_horizon() -> None:
    from router.strategies.learned import CLIP, STEP_S

    env = _env(BOND)
    ep = _episode(env, SEED, np.zeros(64, dtype=np.float32))
    info = ep["info"]
    horizon = info["regime"]["horizon_s"]
    # a query every 5 min from arrival while before the final sweep (the last minute)
    assert len(ep["rewards"]) == int(np.ceil((horizon - 60.0) / STEP_S))
    assert info["t_s"] == pytest.approx(horizon)
    assert np.all(np.abs(ep["obs"]) <= CLIP) and ep["obs"].dtype == np.float32
    assert info["completion"] == pytest.approx(1.0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(1, dtype=np.float32))
    env.close()


def test_held_out_evaluation_seeds_are_refused() -> None:
    env = _env(BOND)
    for seed in (1000, 1500, 1999):
        with pytest.raises(ValueError, match="held-out"):
            env.reset(seed=seed)
    env.reset(seed=999)  # the neighbours are fine
    env.close()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="reward"):
        _env(BOND, reward="pnl")
    with pytest.raises(ValueError, match="seed_stride"):
        _env(BOND, seed_stride=0)
    env = _env(BOND)
    with pytest.raises(ValueError, match="not one of"):
        env.reset(seed=SEED, options={"scenario": "calm"})


# -------------------------------------------------------------------------- determinism


def test_same_seed_same_episode_and_another_seed_another() -> None:
    actions = np.random.default_rng(3).uniform(-1, 1, 64).astype(np.float32)
    a = _episode(_env(BOND), SEED, actions)
    fills_a = a["env"].fills
    b = _episode(_env(BOND), SEED, actions)
    assert np.array_equal(a["obs"], b["obs"])
    assert np.array_equal(a["rewards"], b["rewards"])
    assert fills_a == b["env"].fills and len(fills_a) > 0
    assert a["info"]["regime"] == b["info"]["regime"]
    c = _episode(_env(BOND), SEED + 1, actions)
    assert c["env"].fills != fills_a


def test_resets_without_a_seed_continue_seed_stride_apart() -> None:
    env = _env(BOND, seed_stride=3)
    _, info = env.reset(seed=SEED)
    assert info["sim_seed"] == SEED
    assert [env.reset()[1]["sim_seed"] for _ in range(2)] == [SEED + 3, SEED + 6]
    env.close()


def test_the_env_runs_what_the_ml_strategy_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same scenario and seed, same actions: the environment's fills and observations are
    those of `Episode.run("ml")` in a backtest with a policy giving those actions."""
    from router.app import Episode
    from router.registry import ModelRegistry

    actions = np.random.default_rng(5).uniform(-1, 1, 64).astype(np.float32)
    env = _env(("news-shock",))
    ep = _episode(env, SEED, actions, options={"randomize": False})
    served: list[np.ndarray] = []
    answers = iter(actions.tolist())

    def policy(obs: np.ndarray) -> float:
        served.append(obs.copy())
        return next(answers)

    models = ModelRegistry()
    monkeypatch.setattr(models, "slicer_policy", lambda: policy)
    run = Episode(load_scenario("news-shock"), SEED, models=models).run("ml")
    assert tuple(run.fills) == env.fills
    assert np.array_equal(np.array(served), ep["obs"][:-1])  # the last: after the horizon
    assert run.tca.is_bps == pytest.approx(ep["info"]["is_bps"], abs=1e-9)
    env.close()


@pytest.mark.parametrize("scenario", ["news-shock", "illiquid-bond"])
def test_the_even_pace_is_sor_ml_to_the_bit(scenario: str) -> None:
    """a = 0 throughout is sor-ml's TWAP line: the same fills as `Episode.run("sor-ml")`
    (so the paired reward and the slicer's validation measure the policy against the
    strategy it has to beat, not against a pace of its own)."""
    from router.app import Episode

    env = _env((scenario,))
    ep = _episode(env, SEED, np.zeros(64, dtype=np.float32), options={"randomize": False})
    run = Episode(load_scenario(scenario), SEED).run("sor-ml")
    assert len(run.fills) > 10 and tuple(run.fills) == env.fills
    # the same fills; the env's ledger sums them in its own order (last bits)
    assert run.tca.is_bps == pytest.approx(ep["info"]["is_bps"], abs=1e-9)
    env.close()


def test_closing_midway_ends_the_worker_thread() -> None:
    before = threading.active_count()
    env = _env(BOND)
    env.reset(seed=SEED)
    env.step(np.zeros(1, dtype=np.float32))
    env.reset(seed=SEED + 1)  # abandons the first episode midway
    env.close()
    assert threading.active_count() == before


# -------------------------------------------------------------------------- reward


@pytest.mark.parametrize("reward", ["arrival", "mark", "paired"])
def test_rewards_sum_to_minus_the_tca_is(reward: str) -> None:
    actions = np.random.default_rng(7).uniform(-1, 1, 64).astype(np.float32)
    env = _env(("news-shock", "illiquid-bond"), reward=reward)
    for seed in (SEED, SEED + 1):
        ep = _episode(env, seed, actions)
        info, tca = ep["info"], env.tca()
        total = ep["rewards"].sum() * 10.0  # REWARD_SCALE: back to bps
        expected = -(tca.is_bps + info["penalty_bps"])
        if reward == "paired":  # against the even pace run on the same episode
            even = info["even_pace_is_bps"] + info["even_pace_penalty_bps"]
            expected += even
            assert even != 0.0
        assert total == pytest.approx(expected, abs=1e-9)
        assert info["is_bps"] == pytest.approx(tca.is_bps, abs=1e-9)
        assert tca.is_bps != 0.0
    env.close()


def test_paired_runs_beside_it_the_even_pace_on_the_same_episode() -> None:
    """With a = 0 the agent is the even pace itself: every paired reward is zero and
    the two runs fill alike. (Whether pairing makes the rewards less noisy depends on
    the episode: on this one it does not, so no such claim is tested.)"""
    zero = np.zeros(64, dtype=np.float32)
    ep = _episode(_env(("news-shock",), reward="paired"), SEED, zero)
    assert np.all(ep["rewards"] == 0.0)
    assert ep["info"]["is_bps"] == ep["info"]["even_pace_is_bps"]


class _FakeStepper:
    """Three steps of scripted fills leaving 300 of 1,000 unfilled; mids scripted."""

    def __init__(self, scenario: Any, seed: int, episode: Any = None) -> None:
        self.episode = episode
        self.parent = ParentOrder("P", "X", Side.SELL, 1000, 0, 900 * 10**9)
        self.arrival_mid = 100.0
        self._k = 0
        self._mids = [100.0, 99.0, 98.0]
        self.world = SimpleNamespace(clock=SimpleNamespace(now_ns=lambda: self._k * 300 * 10**9))
        self.execution = SimpleNamespace(result=SimpleNamespace(fills=[]))

    @property
    def done(self) -> bool:
        return self._k == 3

    def observe(self) -> np.ndarray:
        return np.zeros(OBS_SIZE, dtype=np.float32)

    def mid(self) -> float:
        return self._mids[self._k]

    def end_mid(self) -> float:
        return 97.0

    def advance(self, action: float) -> Any:
        # sell 300 at 99.5 (fee 1.0), then 400 at 98.5 (rebate 0.5), then nothing
        fills = [
            (ChildOrderFilled(1, "c1", "V", Side.SELL, 300, 99.5, 1.0, "taker", 0),),
            (ChildOrderFilled(2, "c2", "V", Side.SELL, 400, 98.5, -0.5, "maker", 0),),
            (),
        ][self._k]
        self._k += 1
        return SimpleNamespace(fills=fills, done=self.done)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("reward", ["arrival", "mark", "paired"])
def test_reward_arithmetic_and_the_unfilled_penalty(
    monkeypatch: pytest.MonkeyPatch, reward: str
) -> None:
    import models.training.execenv as execenv

    monkeypatch.setattr(execenv, "app", SimpleNamespace(ExecutionStepper=_FakeStepper))
    env = _env(BOND, reward=reward, reward_scale=10.0, unfilled_penalty_bps=100.0)
    ep = _episode(env, SEED, np.zeros(3, dtype=np.float32), options={"randomize": False})
    notional = 1000 * 100.0
    # costs (currency): 300*0.5+1 = 151; 400*1.5-0.5 = 599.5; unfilled 300 at 97: 900
    cost = [151.0, 599.5, 900.0]
    penalty = 100e-4 * 300 * 100.0  # 100 bps of the unfilled notional
    info = ep["info"]
    assert info["is_bps"] == pytest.approx(1e4 * sum(cost) / notional)
    assert info["penalty_bps"] == pytest.approx(1e4 * penalty / notional)
    assert info["completion"] == pytest.approx(0.7)
    if reward == "paired":  # the even pace beside it filled the same: no difference
        assert list(ep["rewards"]) == [0.0, 0.0, 0.0]
        assert info["even_pace_is_bps"] == pytest.approx(info["is_bps"])
        return
    if reward == "arrival":
        expected = [-1e4 * c / notional / 10 for c in cost[:2]]
        expected.append(-1e4 * (cost[2] + penalty) / notional / 10)
        assert ep["rewards"] == pytest.approx(expected)
    else:  # marked: each step also pays the mid's move on what it still holds
        phi = [0.0, -700 * 1.0, -300 * 2.0, 0.0]  # minus the cost of the rest at the mid
        step_cost = [cost[0], cost[1], cost[2] + penalty]
        expected = [
            -1e4 * (c - (phi[k + 1] - phi[k])) / notional / 10 for k, c in enumerate(step_cost)
        ]
        assert ep["rewards"] == pytest.approx(expected)
    assert ep["rewards"].sum() * 10 == pytest.approx(-(info["is_bps"] + info["penalty_bps"]))


# -------------------------------------------------------------------------- regimes


def _capacity(qty: float) -> Any:
    return lambda sc: qty


def test_regime_draws_stay_in_their_ranges() -> None:
    from models.training.execenv import RegimeRanges, draw_regime
    from router.app import MAX_SHARE_OF_HORIZON_VOLUME, expected_volume
    from simulators.kernel import rng_for

    ranges = RegimeRanges()
    for name in ("news-shock", "trending", "illiquid-bond"):
        base = load_scenario(name)
        for seed in range(5_000_000, 5_000_040):

            def cap(sc: Any) -> float:
                return MAX_SHARE_OF_HORIZON_VOLUME * expected_volume(
                    sc, sc.start_tod_s, sc.horizon_s
                )

            r = draw_regime(base, rng_for(seed, "execenv/regime"), cap, ranges)
            sc = r.scenario
            assert 3600.0 <= sc.horizon_s <= 10800.0 and sc.horizon_s % 300.0 == 0.0
            assert 0.7 <= r.vol_mult <= 1.4 and 0.8 <= r.spread_mult <= 1.5
            assert 0.5 <= r.phase_strength <= 1.5 and abs(r.phase_shift_s) <= 1800.0
            assert sc.market.daily_vol == pytest.approx(base.market.daily_vol * r.vol_mult)
            assert sc.qty % sc.instrument.lot_size == 0 and 0 < sc.qty <= cap(sc)
            if not r.capped:
                assert sc.qty / base.qty == pytest.approx(r.size_mult, rel=0.01)
            assert sc.name == base.name and sc.side in (Side.BUY, Side.SELL)
            assert r.market_sign in (1, -1) and r.describe()["market_sign"] == r.market_sign
            assert r.describe()["side"] == sc.side.value
            for p, b in zip(sc.phases, base.phases, strict=True):
                assert 0.0 <= p.start_s < p.end_s <= sc.horizon_s + 1e-6  # inside the horizon
                # one sign for the whole episode: every directional move follows it
                for f in ("jump_bps", "drift_bps_per_h", "buy_pressure"):
                    assert np.sign(getattr(p, f)) == r.market_sign * np.sign(getattr(b, f))
            # the same seed draws the same regime
            again = draw_regime(base, rng_for(seed, "execenv/regime"), cap, ranges)
            assert again == r


def test_phases_move_together_and_scale_their_strength() -> None:
    from models.training.execenv import RegimeRanges, draw_regime

    base = load_scenario("news-shock")  # news 60-120 min, buying window 95-103 min
    # a 3 h horizon: no squeeze; shift and strength pinned by the ranges
    ranges = RegimeRanges(
        horizon_s=(10800.0, 10800.0),
        phase_shift_s=600.0,
        phase_strength=(1.5, 1.5),
    )
    r = draw_regime(base, np.random.default_rng(0), _capacity(1e12), ranges)
    # seen as configured (the draw may have mirrored the market)
    news, window = (p if r.market_sign > 0 else mirrored(p) for p in r.scenario.phases)
    assert news.start_s - 3600.0 == pytest.approx(r.phase_shift_s)
    assert window.start_s - news.start_s == pytest.approx(5700.0 - 3600.0)
    assert news.jump_bps == pytest.approx(-40 * 1.5)
    assert news.spread == pytest.approx(3.0**1.5) and news.bid_depth == pytest.approx(0.35**1.5)
    assert window.buy_pressure == pytest.approx(0.45 * 1.5)
    # a 1 h horizon squeezes the phases into it, a third of the way in as configured
    short = dataclasses.replace(ranges, horizon_s=(3600.0, 3600.0), phase_shift_s=0.0)
    r = draw_regime(base, np.random.default_rng(0), _capacity(1e12), short)
    assert [p.start_s for p in r.scenario.phases] == pytest.approx([1200.0, 1900.0])
    # a phase spanning the day spans the drawn horizon
    trend = draw_regime(load_scenario("trending"), np.random.default_rng(1), _capacity(1e12))
    (p,) = trend.scenario.phases
    assert (p.start_s, p.end_s) == (0.0, trend.scenario.horizon_s)


def test_side_and_market_sign_are_drawn_50_50_and_independently() -> None:
    from models.training.execenv import draw_regime
    from simulators.kernel import rng_for

    base = load_scenario("news-shock")  # a sell into bad news, as configured
    seeds = range(5_000_000, 5_002_000)
    cells: dict[tuple[Side, int], int] = {}
    for seed in seeds:
        r = draw_regime(base, rng_for(seed, "execenv/regime"), _capacity(1e12))
        key = (r.scenario.side, r.market_sign)
        cells[key] = cells.get(key, 0) + 1
    assert set(cells) == {(s, m) for s in (Side.BUY, Side.SELL) for m in (1, -1)}
    for key, n in cells.items():  # 25% each: 3 pp is about 3 standard errors
        assert abs(n / len(seeds) - 0.25) <= 0.03, (key, n)
    # reproducible: a seed draws the same side, sign and everything else again
    a, b = (draw_regime(base, rng_for(SEED, "execenv/regime"), _capacity(1e12)) for _ in "ab")
    assert a == b and a.describe() == b.describe()


def test_a_mirrored_market_mirrors_every_phase_of_the_episode() -> None:
    from models.training.execenv import draw_regime

    base = load_scenario("news-shock")
    drawn = {}
    for seed in range(40):
        r = draw_regime(base, np.random.default_rng(seed), _capacity(1e12))
        drawn.setdefault(r.market_sign, r)
    assert set(drawn) == {1, -1}
    for sign, r in drawn.items():
        news, window = r.scenario.phases
        k = r.phase_strength
        # configured: a decline on a thin bid, then a buying window; mirrored: a rally on a
        # thin ask, then a selling window
        assert news.jump_bps == pytest.approx(-40 * k * sign)
        assert news.drift_bps_per_h == pytest.approx(-90 * k * sign)
        assert window.buy_pressure == pytest.approx(0.45 * k * sign)
        thin, full = (news.bid_depth, news.ask_depth)[::sign]
        assert thin == pytest.approx(0.35**k) and full == 1.0
        assert news.vol == pytest.approx(2.5**k) and news.spread == pytest.approx(3.0**k)
        assert window.flow == pytest.approx(1.5**k)


def test_an_unrandomized_episode_runs_the_scenario_as_configured() -> None:
    env = _env(BOND)
    _, info = env.reset(seed=SEED, options={"randomize": False})
    regime = info["regime"]
    assert regime["market_sign"] == 1
    assert regime["side"] == load_scenario(BOND[0]).side.value
    env.close()


def test_quantity_is_cut_to_capacity() -> None:
    from models.training.execenv import RegimeRanges, draw_regime

    base = load_scenario("calm")
    ranges = RegimeRanges(size=(2.0, 2.0))
    r = draw_regime(base, np.random.default_rng(0), _capacity(123_456.0), ranges)
    assert r.capped and r.scenario.qty == 123_400  # whole lots of 100
    assert r.describe()["capped"] is True
