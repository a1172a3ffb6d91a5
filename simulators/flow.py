"""Background order flow over the lit books, compiled: one call advances many steps.

The market moves around a reference ("fair") price in ticks:

    ref[i] = exo[i] + perm + Y_sigma * sign(S) * sqrt(|S| / ADV)

- `exo` is the exogenous path (stochastic volatility, drift, news jumps), precomputed
  by simulators/schedule.py from the scenario;
- `S` is net aggressor volume (buyer- minus seller-initiated, ours included) with an
  exponential memory: everybody reacts to order-flow imbalance, nobody can tell whose it
  is. The square root is the latent-liquidity response (Toth et al. 2011; Donier et al.
  2015): a metaorder of Q shares executed within the memory moves the price by about
  Y * sigma_daily * sqrt(Q / ADV), and part of it relaxes once the flow stops;
- `perm` locks a slice of the transient reaction in each step, so the relaxation is
  only partial (the permanent impact that information leakage leaves behind).

Participants each step (all Poisson, rates from the schedule):
- liquidity providers add limit orders `half_spread + Exp(depth_scale)` ticks from ref;
  they never cross (a crossing price is moved one tick behind the opposite touch);
- every background resting order is canceled with a constant hazard (zero-intelligence
  cancels), and quotes that the reference price has moved through are pulled at once;
- a client order left stale on the wrong side of ref is picked off by arbitrageurs,
  who lay it off at ref: no aggressor in S (the client's side of the fill is, as for
  every passive client fill: simulators/market.py `record_passive_client_fill`);
- noise takers (random side, with the scenario's buy pressure), momentum takers (side
  of the last minute's move of ref) and informed takers (side of the next minute's
  exogenous move) send marketable orders to the venue with the best price.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from simulators.book import ASK, BID, IOC, BookState, FillBuffer, cancel, submit
from simulators.jit import kernel

# rows of the per-step schedule
S_EXO = 0  # exogenous reference price, ticks
S_HALF_SPREAD = 1  # liquidity providers' half spread, ticks
S_ADD_BID = 2  # expected limit adds per step, bid side (all venues)
S_ADD_ASK = 3
S_NOISE_BUY = 4  # expected noise taker orders per step, buy side
S_NOISE_SELL = 5
S_MOMENTUM = 6  # expected momentum taker orders per step
S_INFORMED = 7  # expected informed taker orders per step
N_SCHEDULE_ROWS = 8

# scalar parameters
P_ADV = 0
P_Y_SIGMA = 1  # Y * daily sigma, ticks
P_MEMORY_DECAY = 2  # per-step decay factor of S
P_LOCK_RATE = 3  # share of the transient reaction made permanent per step
P_CANCEL_HAZARD = 4  # probability per step that a resting background order is canceled
P_LOG_SIZE = 5  # log of the median order size in lots
P_SIZE_SIGMA = 6
P_DEPTH_SCALE = 7  # mean extra distance of limit adds behind the quote, ticks
P_LOOKAHEAD = 8  # informed traders' horizon, steps
P_LOOKBACK = 9  # momentum traders' horizon, steps
P_MAX_SLIPPAGE = 10  # background takers never pay more than this beyond the quote, ticks
P_LOT = 11
P_STEP_NS = 12
N_PARAMS = 13

# impact state
I_S = 0
I_PERM = 1
I_LAST_SIGNED = 2  # cumulative signed volume already folded into S
N_IMPACT = 3

# book meta slots used here (simulators.book keeps 0 and 1)
M_SIGNED_CUM = 2


@njit(cache=True, inline="always")
def _size(gen: np.random.Generator, params: np.ndarray) -> int:
    lots = int(np.exp(params[P_LOG_SIZE] + params[P_SIZE_SIGMA] * gen.standard_normal()) + 0.5)
    if lots < 1:
        lots = 1
    return lots * int(params[P_LOT])


# Stirling series coefficients of numba's (and numpy's) log-gamma, as a tuple: numba's own
# keeps them in a list, which a kernel cannot build
_LOGGAM = (
    8.333333333333333e-02,
    -2.777777777777778e-03,
    7.936507936507937e-04,
    -5.952380952380952e-04,
    8.417508417508418e-04,
    -1.917526917526918e-03,
    6.410256410256410e-03,
    -2.955065359477124e-02,
    1.796443723688307e-01,
    -1.39243221690590e00,
)


@njit(cache=True, inline="always")
def _loggam(x: float) -> float:
    if x == 1.0 or x == 2.0:
        return 0.0
    n = int(7 - x) if x < 7.0 else 0
    x0 = x + n
    x2 = (1.0 / x0) * (1.0 / x0)
    gl0 = _LOGGAM[9]
    for k in range(9):
        gl0 *= x2
        gl0 += _LOGGAM[8 - k]
    gl = gl0 / x0 + 0.5 * 1.8378770664093453e00 + (x0 - 0.5) * np.log(x0) - x0
    if x < 7.0:
        for _ in range(n):
            gl = gl - np.log(x0 - 1.0)
            x0 = x0 - 1.0
    return gl


@njit(cache=True, inline="always")
def _poisson(gen: np.random.Generator, lam: float) -> int:
    """`gen.poisson(lam)`, the same draws from the same generator (numba's sampler,
    numba/np/random/distributions.py `random_poisson`, which is numpy's; `gen.random()`
    is its `next_double`), but without the list its log-gamma builds for lam >= 10: a
    kernel cannot allocate (tests/simulators/test_flow.py compares the two)."""
    if lam >= 10:
        # transformed rejection (Hormann 1993)
        slam = np.sqrt(lam)
        loglam = np.log(lam)
        b = 0.931 + 2.53 * slam
        a = -0.059 + 0.02483 * b
        invalpha = 1.1239 + 1.1328 / (b - 3.4)
        vr = 0.9277 - 3.6224 / (b - 2)
        while True:
            u = gen.random() - 0.5
            v = gen.random()
            us = 0.5 - np.fabs(u)
            k = int((2 * a / us + b) * u + lam + 0.43)
            if us >= 0.07 and v <= vr:
                return k
            if k < 0 or (us < 0.013 and v > us):
                continue
            if (np.log(v) + np.log(invalpha) - np.log(a / (us * us) + b)) <= (
                -lam + k * loglam - _loggam(k + 1)
            ):
                return k
    if lam == 0:
        return 0
    enlam = np.exp(-lam)
    x = 0
    prod = 1.0
    while True:
        prod *= gen.random()
        if prod > enlam:
            x += 1
        else:
            return x


@njit(cache=True, inline="always")
def _pick_venue(cum_share: np.ndarray, u: float) -> int:
    v = 0
    while v < cum_share.shape[0] - 1 and u > cum_share[v]:
        v += 1
    return v


@kernel
def _best_venue(st: BookState, side: int, start: int) -> int:
    """The venue with the best opposite price for a taker of `side`; ties rotate."""
    n_v = st.best.shape[0]
    best_v = -1
    for k in range(n_v):
        v = (start + k) % n_v
        if side == BID:
            if st.best[v, ASK] < st.depth.shape[2] and (
                best_v < 0 or st.best[v, ASK] < st.best[best_v, ASK]
            ):
                best_v = v
        elif st.best[v, BID] >= 0 and (best_v < 0 or st.best[v, BID] > st.best[best_v, BID]):
            best_v = v
    return best_v


@njit(cache=True, inline="always")
def _consolidated(st: BookState, side: int) -> int:
    """Best price of one side across all venues (-1 / n_ticks when empty)."""
    if side == BID:
        best = -1
        for v in range(st.best.shape[0]):
            if st.best[v, BID] > best:
                best = st.best[v, BID]
    else:
        best = st.depth.shape[2]
        for v in range(st.best.shape[0]):
            if st.best[v, ASK] < best:
                best = st.best[v, ASK]
    return best


@kernel
def _pull_stale(st: BookState, v: int, side: int, bound: int) -> None:
    """Cancel background quotes at or through `bound`; client orders stay."""
    if side == BID:
        p = st.best[v, BID]
        while p >= 0 and p >= bound:
            m = st.head[v, BID, p]
            while m != -1:
                nxt = st.o_next[m]
                if st.o_owner[m] == 0:
                    cancel(st, m)
                m = nxt
            if st.head[v, BID, p] != -1:
                return  # a client order remains at the top: arbitrageurs deal with it
            p = st.best[v, BID]
    else:
        p = st.best[v, ASK]
        n_ticks = st.depth.shape[2]
        while p < n_ticks and p <= bound:
            m = st.head[v, ASK, p]
            while m != -1:
                nxt = st.o_next[m]
                if st.o_owner[m] == 0:
                    cancel(st, m)
                m = nxt
            if st.head[v, ASK, p] != -1:
                return
            p = st.best[v, ASK]


@kernel
def _taker(
    st: BookState,
    fb: FillBuffer,
    gen: np.random.Generator,
    side: int,
    ref: float,
    hs: float,
    params: np.ndarray,
    ts: int,
    bar: int,
) -> None:
    v = _best_venue(st, side, int(gen.random() * st.best.shape[0]))
    if v < 0:
        return
    qty = _size(gen, params)
    if side == BID:
        limit = int(np.floor(ref + hs + params[P_MAX_SLIPPAGE]))
        if limit >= st.depth.shape[2]:
            limit = st.depth.shape[2] - 1
    else:
        limit = int(np.ceil(ref - hs - params[P_MAX_SLIPPAGE]))
        if limit < 0:
            limit = 0
    submit(st, fb, v, side, limit, qty, 0, 0, IOC, ts, bar)


@njit(cache=True)
def advance(
    st: BookState,
    fb: FillBuffer,
    gen: np.random.Generator,
    sched: np.ndarray,
    params: np.ndarray,
    cum_share: np.ndarray,
    impact: np.ndarray,
    ref_out: np.ndarray,
    bid_out: np.ndarray,
    ask_out: np.ndarray,
    i0: int,
    i1: int,
    t0_ns: int,
    step0_bar: int,
    steps_per_bar: int,
) -> None:
    """Run background steps [i0, i1). Step i starts at t0_ns + i * step_ns.

    `ref_out`, `bid_out`, `ask_out` receive the reference price and the consolidated
    best bid/ask (ticks; -1 / n_ticks when a side is empty) at the end of each step.
    """
    # Called from Python, so compiled with reference counting: a kernel's Python entry
    # takes a reference to the generator that it never gives back (one leaked reference
    # per call, tests/simulators/test_jit.py). From here on, no counting.
    _advance(
        st,
        fb,
        gen,
        sched,
        params,
        cum_share,
        impact,
        ref_out,
        bid_out,
        ask_out,
        i0,
        i1,
        t0_ns,
        step0_bar,
        steps_per_bar,
    )


@kernel
def _advance(
    st: BookState,
    fb: FillBuffer,
    gen: np.random.Generator,
    sched: np.ndarray,
    params: np.ndarray,
    cum_share: np.ndarray,
    impact: np.ndarray,
    ref_out: np.ndarray,
    bid_out: np.ndarray,
    ask_out: np.ndarray,
    i0: int,
    i1: int,
    t0_ns: int,
    step0_bar: int,
    steps_per_bar: int,
) -> None:
    """`advance`, without reference counting."""
    n_ticks = st.depth.shape[2]
    n_v = st.best.shape[0]
    step_ns = int(params[P_STEP_NS])
    n_steps = sched.shape[1]
    lookahead = int(params[P_LOOKAHEAD])
    lookback = int(params[P_LOOKBACK])
    for i in range(i0, i1):
        ts = t0_ns + i * step_ns
        bar = step0_bar + i // steps_per_bar
        # 1. fold the last step's net aggressor volume (ours included) into the reaction
        signed = st.meta[M_SIGNED_CUM]
        s = impact[I_S] * params[P_MEMORY_DECAY] + (signed - impact[I_LAST_SIGNED])
        impact[I_S] = s
        impact[I_LAST_SIGNED] = signed
        transient = params[P_Y_SIGMA] * np.sign(s) * np.sqrt(abs(s) / params[P_ADV])
        impact[I_PERM] += params[P_LOCK_RATE] * transient
        ref = sched[S_EXO, i] + impact[I_PERM] + transient
        hs = sched[S_HALF_SPREAD, i]

        # 2. market makers pull quotes the reference price moved through, then
        #    arbitrageurs pick off client orders left on the wrong side
        for v in range(n_v):
            _pull_stale(st, v, BID, int(np.ceil(ref - 0.5)))
            _pull_stale(st, v, ASK, int(np.floor(ref + 0.5)))
            # The arbitrageur lays the position off at the reference price at once: its
            # net flow is nil, so it is no aggressor in the price reaction. Counted, it
            # pushed the price back up after every client sell it picked off, and a
            # metaorder worked passively paid about half the impact of the same one
            # worked by taking (sor-lit against TWAP on calm: 22.5 against 37.7 bps).
            signed_before = st.meta[M_SIGNED_CUM]
            if st.best[v, BID] >= 0 and st.best[v, BID] > ref + 1.0:
                submit(st, fb, v, ASK, int(np.ceil(ref + 1.0)), 1 << 40, 0, 0, IOC, ts, bar)
            if st.best[v, ASK] < n_ticks and st.best[v, ASK] < ref - 1.0:
                submit(st, fb, v, BID, int(np.floor(ref - 1.0)), 1 << 40, 0, 0, IOC, ts, bar)
            st.meta[M_SIGNED_CUM] = signed_before

        # 3. cancels: each resting background order with the same hazard
        n_live = st.meta[1]
        if n_live > 0:
            n_cancel = gen.binomial(n_live, params[P_CANCEL_HAZARD])
            for _ in range(n_cancel):
                n_live = st.meta[1]
                if n_live == 0:
                    break
                slot = st.live_list[int(gen.random() * n_live)]
                if st.o_owner[slot] == 0:
                    cancel(st, slot)

        # 4. liquidity providers
        for side in range(2):
            n_add = _poisson(gen, sched[S_ADD_BID + side, i])
            for _ in range(n_add):
                v = _pick_venue(cum_share, gen.random())
                d = hs + gen.exponential(params[P_DEPTH_SCALE])
                # never lock or cross the consolidated market (any venue's opposite touch)
                if side == BID:
                    p = int(np.floor(ref - d))
                    ba = _consolidated(st, ASK)
                    if p >= ba:
                        p = ba - 1
                else:
                    p = int(np.ceil(ref + d))
                    bb = _consolidated(st, BID)
                    if p <= bb:
                        p = bb + 1
                if 0 <= p < n_ticks:
                    submit(st, fb, v, side, p, _size(gen, params), 0, 0, 0, ts, bar)

        # 5. takers
        n_buy = _poisson(gen, sched[S_NOISE_BUY, i])
        n_sell = _poisson(gen, sched[S_NOISE_SELL, i])
        for _ in range(n_buy):
            _taker(st, fb, gen, BID, ref, hs, params, ts, bar)
        for _ in range(n_sell):
            _taker(st, fb, gen, ASK, ref, hs, params, ts, bar)
        n_mom = _poisson(gen, sched[S_MOMENTUM, i])
        if n_mom > 0 and i >= lookback:
            move = ref - ref_out[i - lookback]
            if move != 0.0:
                side = BID if move > 0 else ASK
                for _ in range(n_mom):
                    _taker(st, fb, gen, side, ref, hs, params, ts, bar)
        n_inf = _poisson(gen, sched[S_INFORMED, i])
        if n_inf > 0:
            j = i + lookahead if i + lookahead < n_steps else n_steps - 1
            move = sched[S_EXO, j] - sched[S_EXO, i]
            if move != 0.0:
                side = BID if move > 0 else ASK
                for _ in range(n_inf):
                    _taker(st, fb, gen, side, ref, hs, params, ts, bar)

        # 6. record the step's end state
        ref_out[i] = ref
        bid_out[i] = _consolidated(st, BID)
        ask_out[i] = _consolidated(st, ASK)
