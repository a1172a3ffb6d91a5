"""The smart router's dealer venue: when it asks, whom, when it trades on a quote and
why, what the RFQ costs in leakage."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from router.app import Episode, apply_overrides
from router.domain import (
    ChildOrderFilled,
    ChildOrderRejected,
    DecisionRecorded,
    LastLookRejected,
    RfqEnded,
    RfqRequested,
    RfqTraded,
    Side,
)
from router.execution import RfqConfig
from router.strategies import strategy_spec
from simulators.scenario import load_scenario

SEEDS = range(1000, 1008)


def _bond(qty: int | None = None, horizon_s: float | None = None):
    return apply_overrides(load_scenario("illiquid-bond"), qty, None, horizon_s)


def _events(run, kind):
    return [e for e in run.events if isinstance(e, kind)]


@pytest.fixture(scope="module")
def bond_sor():
    return Episode(_bond(), 1001).run("sor")


def test_sor_works_the_bond_mostly_with_dealers(bond_sor):
    run = bond_sor
    assert run.tca.completion == 1.0
    assert run.tca.filled_qty == run.parent.qty  # never more: RFQ shares are reserved
    # the screen is too thin and wide to matter; dealers and the block pool do the work
    # (this seed: 25% dealers, 73% dark, 2% lit, since dark fills pay their impact and
    # the router draws its exploration from the routing's stream)
    mix = run.tca.venue_mix
    assert mix["rfq"] > 0.2 and mix["rfq"] + mix["dark"] > 0.95 and mix["lit"] < 0.05, mix
    requests = _events(run, RfqRequested)
    assert requests and all(r.request.side is Side.BUY for r in requests)
    assert all(len(r.request.dealers) == 4 for r in requests)
    # every RFQ ends, and what traded is what was filled through the dealers
    ended = {e.rfq_id: e for e in _events(run, RfqEnded)}
    assert set(ended) == {r.request.rfq_id for r in requests}
    traded = sum(e.qty for e in _events(run, RfqTraded))
    rfq_fills = sum(f.qty for f in _events(run, ChildOrderFilled) if f.liquidity == "rfq")
    assert traded == rfq_fills == sum(e.traded_qty for e in ended.values())


def test_each_rfq_decision_says_why(bond_sor):
    decisions = _events(bond_sor, DecisionRecorded)
    requests = [d for d in decisions if d.chosen.startswith("request quotes")]
    hits = [d for d in decisions if d.chosen.startswith("hit ")]
    assert requests and hits
    for d in requests:
        assert {"qty", "panel_size", "lit_alternative_bps"} <= set(d.inputs)
        assert any(k.startswith("score_") for k in d.alternatives)
    for d in hits:
        # a quote is taken only when it beats working the block on the screen
        assert d.inputs["quote_bps"] <= d.inputs["lit_alternative_bps"]
        assert "lit_alternative_bps" in d.alternatives


def test_sor_lit_never_asks_dealers():
    run = Episode(_bond(), 1001).run("sor-lit")
    assert not _events(run, RfqRequested)
    assert run.tca.venue_mix["rfq"] == 0.0


def test_quotes_worse_than_the_screen_are_passed_and_requests_back_off():
    # an edge no quote can meet: every RFQ is passed, and the cooldown doubles each time
    sor = strategy_spec("sor").with_tactic(RfqConfig(edge_bps=1_000.0, cooldown_s=120.0))
    run = Episode(_bond(), 1002).run(sor)
    assert not _events(run, RfqTraded)
    passes = [d for d in _events(run, DecisionRecorded) if d.chosen.startswith("pass")]
    times = [r.ts_ns / 1e9 for r in _events(run, RfqRequested)]
    assert len(passes) == len(times) >= 3
    # 120 s, then doubling up to 16x (requests wait for the next 30 s decision tick)
    gaps = np.round(np.diff(times), 6)
    assert list(gaps[:5]) == [270.0, 510.0, 990.0, 1950.0, 1950.0], gaps
    assert run.tca.completion == 1.0  # the lit and dark venues did the work


def test_last_look_refusals_fall_back_to_the_next_quote_then_the_screen():
    ep = Episode(_bond(), 1003)
    assert ep.panel is not None
    refuse = tuple(dataclasses.replace(d, last_look_prob=1.0) for d in ep.panel.dealers)
    ep.panel = dataclasses.replace(ep.panel, dealers=refuse)
    run = ep.run("sor")
    refused = _events(run, LastLookRejected)
    assert refused and not _events(run, RfqTraded)
    rejected = {e.child_id for e in _events(run, ChildOrderRejected)}
    assert {e.child_id for e in refused} <= rejected
    # after a refusal the router hits the next quote of the same RFQ when there is one
    per_rfq: dict[str, int] = {}
    for e in refused:
        per_rfq[e.rfq_id] = per_rfq.get(e.rfq_id, 0) + 1
    assert max(per_rfq.values()) >= 2
    assert run.tca.completion == 1.0


def _is_by_panel_size(sizes, panel=None):
    out = []
    for seed in SEEDS:
        ep = Episode(_bond(), seed)
        if panel is not None:
            ep.panel = panel(ep.panel)
        sor = strategy_spec("sor")
        out.append([ep.run(sor.with_tactic(RfqConfig(panel_size=k))).tca.is_bps for k in sizes])
    return np.array(out)


def test_asking_every_dealer_pays_in_leakage():
    """Baldauf-Mollner: every dealer asked learns the order, and those that lose it may
    trade ahead of it. When they do, the parent pays: the same ten-dealer panel costs
    more with front-running dealers than with quiet ones, on the same seeds.

    The test makes the losers loud (each trades half the request ahead of the client):
    the shipped bond dealers' leakage costs the sor parent 0.7 +- 1.2 bps at a panel of
    ten over these seeds, too little for a test to tell from noise (and how much more a
    panel of ten costs than one of three with the shipped dealers than with quiet ones:
    0.0 +- 0.8 bps over 32 seeds, no effect a test could rely on either)."""

    def loud(p):
        return dataclasses.replace(
            p,
            dealers=tuple(
                dataclasses.replace(d, front_run_prob=1.0, front_run_share=0.5) for d in p.dealers
            ),
        )

    def quiet(p):
        return dataclasses.replace(
            p,
            dealers=tuple(
                dataclasses.replace(d, front_run_prob=0.0, hedge_share=0.0) for d in p.dealers
            ),
        )

    cost = _is_by_panel_size([10], loud)[:, 0] - _is_by_panel_size([10], quiet)[:, 0]
    # 10.9 +- 2.3 bps over these 8 seeds
    assert cost.mean() > 3.0 * cost.std(ddof=1) / np.sqrt(len(cost)), cost
    assert (cost > 0).sum() >= 7, cost
