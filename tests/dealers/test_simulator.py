"""The simulated dealer panel: how dealers price, the oracle of true probabilities, refused
requests, last look, information leakage and determinism.

Quotes are compared across worlds built from the same seed: every dealer draws from its
own generator and nothing trades before the request, so two such worlds see the same
fair price, the same latency and the same noise, and differ only by what a test changed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np
import pytest

from dealers.config import DealerPanel, load_panel
from dealers.simulator import SimRfqVenue
from dealers.truth import DealerTruth
from router.app import apply_overrides
from router.domain import (
    NANOS_PER_SECOND,
    ChildId,
    ChildOrder,
    ChildOrderFilled,
    ChildOrderRejected,
    DealerId,
    DomainError,
    Event,
    LastLookRejected,
    OrdType,
    ParentId,
    Quote,
    QuoteIgnored,
    QuoteReceived,
    QuoteRejectReason,
    QuoteRequest,
    QuoteRequestRejected,
    QuoteResponseSent,
    QuoteRespType,
    RfqClosed,
    RfqEnded,
    RfqId,
    RfqRequested,
    RfqTraded,
    Side,
    Symbol,
    TimeInForce,
    VenueId,
)
from simulators.scenario import Scenario, load_scenario
from simulators.world import SimWorld

S = NANOS_PER_SECOND
T_REQ = 60 * S  # when the tests send their first request
SEED = 7
ALPHA, BRAVO = DealerId("ALPHA"), DealerId("BRAVO")
QDI = Symbol("QDI")
ADV = 2_000_000  # QDI's ADV (config/instruments.toml)
E = TypeVar("E", bound=Event)


# --------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def calm() -> Scenario:
    """The calm equity scenario over 20 minutes."""
    return apply_overrides(load_scenario("calm"), 100_000, None, 1200.0)


@pytest.fixture(scope="module")
def equities() -> DealerPanel:
    return load_panel("equities")


class Desk:
    """The test's event sink and client. For the RFQs in `plans` it acts at the close:
    hits the best quote for the planned side (`hit`) or finishes at once (`pass`); after
    a hit it finishes once the dealer has answered."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.world: SimWorld | None = None
        self.plans: dict[RfqId, tuple[str, Side]] = {}
        self._hits: dict[ChildId, RfqId] = {}

    @property
    def venue(self) -> SimRfqVenue:
        assert self.world is not None and self.world.rfq is not None
        return self.world.rfq

    def publish(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, RfqClosed) and event.rfq_id in self.plans:
            self._decide(event.rfq_id, event.ts_ns)
        elif isinstance(event, ChildOrderFilled | ChildOrderRejected):
            rfq_id = self._hits.pop(event.child_id, None)
            if rfq_id is not None:
                self.venue.finish(rfq_id)

    def _decide(self, rfq_id: RfqId, now: int) -> None:
        action, side = self.plans[rfq_id]
        session = self.venue.session(rfq_id)
        quotes = [] if session.terminal else session.best_quotes(now, side)
        if action != "hit" or not quotes:
            self.venue.finish(rfq_id)
            return
        child = hit_order(quotes[0], side, ChildId(f"{rfq_id}-hit"))
        self._hits[child.child_id] = rfq_id
        self.venue.hit(child)

    def of(self, kind: type[E]) -> list[E]:
        """The events of one type, in order."""
        return [e for e in self.events if isinstance(e, kind)]


def hit_order(quote: Quote, side: Side, child_id: ChildId, qty: int | None = None) -> ChildOrder:
    """The child order that hits (or lifts) `quote` for the client's `side`."""
    return ChildOrder(
        child_id=child_id,
        parent_id=ParentId("p1"),
        venue=VenueId(quote.dealer),
        side=side,
        qty=qty or quote.qty,
        ord_type=OrdType.MARKET,
        tif=TimeInForce.IOC,
        quote_id=quote.quote_id,
    )


def build(scenario: Scenario, panel: DealerPanel, seed: int = SEED) -> tuple[SimWorld, Desk]:
    desk = Desk()
    world = SimWorld.build(scenario, seed, desk, panel=panel)
    desk.world = world
    return world, desk


def venue_of(world: SimWorld) -> SimRfqVenue:
    assert world.rfq is not None
    return world.rfq


def rfq(
    rfq_id: str,
    dealers: tuple[DealerId, ...],
    side: Side | None = Side.BUY,
    qty: int = 20_000,
    limit_s: float = 10.0,
    symbol: Symbol = QDI,
) -> QuoteRequest:
    return QuoteRequest(RfqId(rfq_id), symbol, side, qty, dealers, int(limit_s * S))


def send_at(world: SimWorld, ts: int, request: QuoteRequest) -> None:
    """Schedules `request` to be sent to the world's dealers at `ts`."""

    def send() -> None:
        venue_of(world).request(request)

    world.kernel.schedule(ts, send)


def with_dealer(panel: DealerPanel, dealer: DealerId, **changes: Any) -> DealerPanel:
    """`panel` with one dealer's spec changed."""
    specs = tuple(replace(d, **changes) if d.dealer_id == dealer else d for d in panel.dealers)
    return replace(panel, dealers=specs)


def with_all(panel: DealerPanel, **changes: Any) -> DealerPanel:
    """`panel` with every dealer's spec changed."""
    return replace(panel, dealers=tuple(replace(d, **changes) for d in panel.dealers))


def always_quotes(panel: DealerPanel, **changes: Any) -> DealerPanel:
    """ALPHA answers every request with a quote (plus `changes`)."""
    return with_dealer(
        panel, ALPHA, response_prob=1.0, pass_prob=0.0, no_inventory_prob=0.0, **changes
    )


def alpha_quote(
    scenario: Scenario,
    panel: DealerPanel,
    *,
    side: Side | None = Side.BUY,
    qty: int = 20_000,
    n_dealers: int = 1,
    inventory: float = 0.0,
) -> tuple[Quote, float]:
    """ALPHA's quote to a request sent at T_REQ to the first `n_dealers` of the panel,
    with ALPHA's inventory set to `inventory`; and the fair price when it quoted."""
    world, desk = build(scenario, panel)
    venue = venue_of(world)
    venue._dealers[ALPHA].inventory = inventory
    world.kernel.run_until(T_REQ)
    venue.request(rfq("r1", panel.ids[:n_dealers], side, qty))
    world.kernel.run_until(T_REQ + 10 * S)
    (quote,) = [e.quote for e in desk.of(QuoteReceived) if e.quote.dealer == ALPHA]
    fair = world.market.fair_ticks(quote.ts_ns) * scenario.instrument.tick_size
    return quote, fair


def offer_of(q: Quote) -> float:
    assert q.offer is not None
    return q.offer


def bid_of(q: Quote) -> float:
    assert q.bid is not None
    return q.bid


# --------------------------------------------------------------------------------------
# Pricing
# --------------------------------------------------------------------------------------


def exact_panel(equities: DealerPanel, **changes: Any) -> DealerPanel:
    """ALPHA without noise, volatility scaling or risk premium, so its prices follow by
    hand: each side = tier * 5 + its marginal unwinding cost (`unwind` below, the panel's
    impact_y 0.84 at calm's 150 bps of daily volatility) + 1.0 * (asked - 1)
    [+ 3 two-sided]."""
    exact: dict[str, Any] = {
        "client_tier": 2,
        "spread_bps": 5.0,
        "vol_sensitivity": 0.0,
        "competition_bps": 1.0,
        "risk_aversion": 0.0,
        "quote_noise_bps": 0.0,
    }
    return always_quotes(equities, **{**exact, **changes})


def unwind(x: float) -> float:
    """Two thirds of the square-root law's peak on `x` units, bps x units: 2/3 * 0.84 *
    150 * |x| * sqrt(|x| / ADV) = 84 * |x| * sqrt(|x| / ADV)."""
    return 84.0 * abs(x) * math.sqrt(abs(x) / ADV)


def marginal(inventory: float, delta: float) -> float:
    return (unwind(inventory + delta) - unwind(inventory)) / abs(delta)


@pytest.mark.parametrize(
    ("kw", "offer_bps", "bid_bps"),
    [
        # flat: 5 + 84 * sqrt(20k / 2M) = 5 + 8.4
        ({}, 13.4, None),
        # sqrt(80k / 2M) = 0.2: 5 + 16.8
        ({"qty": 80_000}, 21.8, None),
        # five dealers asked: 13.4 + 1.0 * 4
        ({"n_dealers": 5}, 17.4, None),
        # a client sell: the bid, the same cost from a flat book
        ({"side": Side.SELL}, None, 13.4),
        # two-sided: 13.4 + 3.0 on both sides
        ({"side": None}, 16.4, 16.4),
        # long 5% of ADV: selling 20k lowers its cost, buying 20k raises it
        (
            {"side": None, "inventory": 100_000.0},
            8.0 + marginal(100_000.0, -20_000.0),
            8.0 + marginal(100_000.0, 20_000.0),
        ),
        # short 5% of ADV: the other way round
        (
            {"side": None, "inventory": -100_000.0},
            8.0 + marginal(-100_000.0, -20_000.0),
            8.0 + marginal(-100_000.0, 20_000.0),
        ),
    ],
)
def test_quote_follows_the_pricing_formula(
    calm: Scenario,
    equities: DealerPanel,
    kw: dict[str, object],
    offer_bps: float | None,
    bid_bps: float | None,
) -> None:
    quote, fair = alpha_quote(calm, exact_panel(equities), **kw)  # type: ignore[arg-type]
    if offer_bps is None:
        assert quote.offer is None
    else:
        assert quote.offer == pytest.approx(fair * (1 + offer_bps / 1e4), abs=1e-6)
    if bid_bps is None:
        assert quote.bid is None
    else:
        assert quote.bid == pytest.approx(fair * (1 - bid_bps / 1e4), abs=1e-6)


def test_an_axed_dealer_quotes_through_fair_value(calm: Scenario, equities: DealerPanel) -> None:
    # long 5% of ADV, a client buying 20k takes 26.7 bps of unwinding cost off its book:
    # it can sell below the fair price and still be better off than keeping the position
    quote, fair = alpha_quote(calm, exact_panel(equities), inventory=100_000.0)
    assert marginal(100_000.0, -20_000.0) == pytest.approx(-26.71, abs=0.01)
    assert offer_of(quote) < fair


def test_the_risk_premium_grows_with_size_and_hedging_time(
    calm: Scenario, equities: DealerPanel
) -> None:
    # risk_aversion 2 * 150 bps * sqrt(15 min / 6.5 h) * 20k / 2M = 0.588 bps on top
    quote, fair = alpha_quote(calm, exact_panel(equities, risk_aversion=2.0))
    premium = 2.0 * 150.0 * math.sqrt(900.0 / 23_400.0) * 0.01
    assert offer_of(quote) == pytest.approx(fair * (1 + (13.4 + premium) / 1e4), abs=1e-6)
    slow, _ = alpha_quote(calm, exact_panel(equities, risk_aversion=2.0, hedge_s=3600.0))
    assert offer_of(slow) == pytest.approx(fair * (1 + (13.4 + 2 * premium) / 1e4), abs=1e-6)


@pytest.mark.parametrize(("tier", "half_bps"), [(1, 0.85 * 5 + 8.4), (3, 1.25 * 5 + 8.4)])
def test_client_tier_scales_the_margin_not_the_cost(
    calm: Scenario, equities: DealerPanel, tier: int, half_bps: float
) -> None:
    quote, fair = alpha_quote(calm, exact_panel(equities, client_tier=tier))
    assert offer_of(quote) == pytest.approx(fair * (1 + half_bps / 1e4), abs=1e-6)


def test_quote_validity_and_size_cap(calm: Scenario, equities: DealerPanel) -> None:
    # ALPHA quotes at most max_qty_adv 0.12 * 2M = 240_000, valid for 15 s
    panel = always_quotes(equities)
    small, _ = alpha_quote(calm, panel, qty=20_000)
    big, _ = alpha_quote(calm, panel, qty=300_000)
    assert (small.qty, big.qty) == (20_000, 240_000)
    assert big.valid_until_ns - big.ts_ns == 15 * S
    assert big.quote_id == "r1-ALPHA"
    assert T_REQ < big.ts_ns < T_REQ + 10 * S


def test_quotes_widen_with_size(calm: Scenario, equities: DealerPanel) -> None:
    panel = always_quotes(equities)
    offers = [offer_of(alpha_quote(calm, panel, qty=q)[0]) for q in (10_000, 50_000, 200_000)]
    assert offers[0] < offers[1] < offers[2]
    bids = [bid_of(alpha_quote(calm, panel, side=Side.SELL, qty=q)[0]) for q in (10_000, 200_000)]
    assert bids[0] > bids[1]


def test_quotes_widen_with_the_number_of_dealers_asked(
    calm: Scenario, equities: DealerPanel
) -> None:
    panel = always_quotes(equities)
    quotes = [alpha_quote(calm, panel, n_dealers=n) for n in (1, 4, 8)]
    offers = [offer_of(q) for q, _ in quotes]
    assert offers[0] < offers[1] < offers[2]
    # ALPHA's competition_bps 0.6 per extra dealer: 7 * 0.6 = 4.2 bps between 1 and 8
    fair = quotes[0][1]
    assert quotes[2][1] == fair  # the same moment
    assert offers[2] - offers[0] == pytest.approx(fair * 4.2e-4, abs=2e-6)


def test_two_sided_quotes_are_wider(calm: Scenario, equities: DealerPanel) -> None:
    panel = always_quotes(equities)
    one_buy, _ = alpha_quote(calm, panel, side=Side.BUY)
    one_sell, _ = alpha_quote(calm, panel, side=Side.SELL)
    two, fair = alpha_quote(calm, panel, side=None)
    assert offer_of(two) > offer_of(one_buy)
    assert bid_of(two) < bid_of(one_sell)
    # the panel's two_sided_bps 3.0 on each side
    assert offer_of(two) - offer_of(one_buy) == pytest.approx(fair * 3e-4, abs=2e-6)
    assert bid_of(one_sell) - bid_of(two) == pytest.approx(fair * 3e-4, abs=2e-6)


def test_a_long_dealer_offers_cheaper_and_bids_lower(calm: Scenario, equities: DealerPanel) -> None:
    panel = always_quotes(equities)
    flat, fair = alpha_quote(calm, panel, side=None, inventory=0.0)
    long, fair_long = alpha_quote(calm, panel, side=None, inventory=0.05 * ADV)
    assert fair_long == fair
    assert offer_of(long) < offer_of(flat)
    assert bid_of(long) < bid_of(flat)
    exact_flat, fair = alpha_quote(calm, exact_panel(equities), side=None, inventory=0.0)
    exact_long, _ = alpha_quote(calm, exact_panel(equities), side=None, inventory=0.05 * ADV)
    # the marginal cost of selling 20k: 8.4 bps flat, -26.7 bps from a 100k long
    shift = marginal(0.0, -20_000.0) - marginal(100_000.0, -20_000.0)
    assert offer_of(exact_flat) - offer_of(exact_long) == pytest.approx(
        fair * shift / 1e4, abs=2e-6
    )


def test_a_dealer_declines_past_its_credit_line(calm: Scenario, equities: DealerPanel) -> None:
    # 20_000 * ~100 = ~2M notional against a 1M line
    world, desk = build(calm, always_quotes(equities, credit_limit=1_000_000.0))
    world.kernel.run_until(T_REQ)
    venue_of(world).request(rfq("r1", (ALPHA,)))
    world.kernel.run_until(T_REQ + 10 * S)
    (reject,) = desk.of(QuoteRequestRejected)
    assert (reject.dealer, reject.reason) == (ALPHA, QuoteRejectReason.INSUFFICIENT_CREDIT)
    assert desk.of(QuoteReceived) == []


def test_a_short_dealer_declines_a_client_buy(calm: Scenario, equities: DealerPanel) -> None:
    panel = always_quotes(equities)
    panel = with_dealer(panel, ALPHA, no_inventory_prob=1.0)
    world, desk = build(calm, panel)
    venue = venue_of(world)
    venue._dealers[ALPHA].inventory = 0.0
    world.kernel.run_until(T_REQ)
    venue.request(rfq("buy", (ALPHA,), Side.BUY))
    venue.request(rfq("sell", (ALPHA,), Side.SELL))  # a sale to the dealer needs no stock
    world.kernel.run_until(T_REQ + 10 * S)
    rejects = desk.of(QuoteRequestRejected)
    assert [(e.rfq_id, e.reason) for e in rejects] == [("buy", QuoteRejectReason.NO_INVENTORY)]
    assert [e.quote.rfq_id for e in desk.of(QuoteReceived)] == ["sell"]


def test_two_sided_quotes_are_never_crossed(calm: Scenario, equities: DealerPanel) -> None:
    # the shipped HOTEL, 100 two-sided requests: its half spread is about 1.25 * (3 + 5.25)
    # + 3 = 13.3 bps and its noise 7 bps, so about 3% of its draws would cross the quote
    # (bid - offer = -2 * (half + noise) * fair / 1e4); a floor keeps them 1 bps apart
    hotel = DealerId("HOTEL")
    world, desk = build(calm, equities, seed=2)
    for k in range(100):
        send_at(world, T_REQ + k * 10 * S, rfq(f"r{k}", (hotel,), None))
    world.kernel.run_until(T_REQ + 1010 * S)
    quotes = [e.quote for e in desk.of(QuoteReceived)]
    assert len(quotes) > 20  # about 41% of requests get a quote in time
    assert all(bid_of(q) < offer_of(q) for q in quotes)


# --------------------------------------------------------------------------------------
# The oracle
# --------------------------------------------------------------------------------------


def oracle_panel(equities: DealerPanel) -> DealerPanel:
    """ALPHA with hand-checkable odds: answers 0.9 * 0.95 (tier 2), in time half the time
    (median latency = the 10 s limit), passes 10%, lacks stock for a buy half the time;
    BRAVO always answers but has no credit line to speak of."""
    panel = with_dealer(
        equities,
        ALPHA,
        client_tier=2,
        response_prob=0.9,
        latency_ms=10_000.0,
        pass_prob=0.1,
        no_inventory_prob=0.5,
    )
    return with_dealer(panel, BRAVO, client_tier=1, response_prob=1.0, credit_limit=1.0)


def test_truth_rows_per_request(calm: Scenario, equities: DealerPanel) -> None:
    panel = oracle_panel(equities)
    world, desk = build(calm, panel)
    venue = venue_of(world)
    venue._dealers[ALPHA].inventory = 0.0  # short of any buy
    world.kernel.run_until(T_REQ)
    requests = [
        rfq("buy", panel.ids, Side.BUY),
        rfq("sell", panel.ids[:5], Side.SELL),
        rfq("two", panel.ids[:3], None),
    ]
    for r in requests:
        venue.request(r)
    truth = venue.truth
    assert [(t.rfq_id, t.dealer) for t in truth] == [
        (r.rfq_id, d) for r in requests for d in r.dealers
    ]
    assert all(t.ts_ns == T_REQ for t in truth)
    for t in truth:
        for p in (t.p_respond, t.p_best_buy, t.p_best_sell):
            assert 0.0 <= p <= 1.0
        # best means it answered first of all
        assert t.p_best_buy <= t.p_respond + 1e-9
        assert t.p_best_sell <= t.p_respond + 1e-9
    by: dict[str, list[DealerTruth]] = defaultdict(list)
    for t in truth:
        by[t.rfq_id].append(t)
    assert all(t.p_best_sell == 0.0 for t in by["buy"])
    assert all(t.p_best_buy == 0.0 for t in by["sell"])
    assert all(t.p_best_buy > 0.0 and t.p_best_sell > 0.0 for t in by["two"] if t.dealer != BRAVO)
    # ALPHA: 0.9 * 0.95 * 0.5 (in time) * 0.9 (no pass) = 0.38475, times 0.5 (stock) on a buy
    alpha = {rid: next(t for t in rows if t.dealer == ALPHA) for rid, rows in by.items()}
    assert alpha["buy"].p_respond == pytest.approx(0.1923750, abs=1e-9)
    assert alpha["sell"].p_respond == pytest.approx(0.38475, abs=1e-9)
    assert alpha["two"].p_respond == pytest.approx(0.1923750, abs=1e-9)  # may be a buy
    # BRAVO's line is 1 currency unit: it never quotes
    assert all(
        t.p_respond == t.p_best_buy == t.p_best_sell == 0.0 for t in truth if t.dealer == BRAVO
    )
    # one of them is best exactly when at least one quotes: sum = 1 - prod(1 - p_respond)
    for rid, side in (
        ("buy", Side.BUY),
        ("sell", Side.SELL),
        ("two", Side.BUY),
        ("two", Side.SELL),
    ):
        rows = by[rid]
        total = sum(t.p_best(side) for t in rows)
        assert total <= 1 + 1e-6
        anyone = 1 - math.prod(1 - t.p_respond for t in rows)
        assert total == pytest.approx(anyone, abs=1e-3)
    # and BRAVO, asked, does answer: with a credit reject
    world.kernel.run_until(T_REQ + 10 * S)
    rejects = [e for e in desk.of(QuoteRequestRejected) if e.dealer == BRAVO]
    assert [e.reason for e in rejects] == [QuoteRejectReason.INSUFFICIENT_CREDIT] * 3


@dataclass
class _Flow:
    """What a batch of RFQs produced: the truth rows, the request of each RFQ, and for
    each RFQ the dealers that quoted in time and the dealer with the best quote; how
    many answers came too late."""

    truth: list[DealerTruth]
    requests: dict[RfqId, QuoteRequest]
    quoted: set[tuple[RfqId, DealerId]]
    best: dict[RfqId, DealerId]
    n_late: int


def _cost(quote: Quote, side: Side) -> float:
    price = quote.price_for(side)
    assert price is not None
    return side.sign * price


def run_flow(scenario_name: str, panel_name: str, qty: int, seed: int, n: int = 100) -> _Flow:
    """`n` one-sided RFQs, 20 s apart, each to a random 3.. dealers, lognormal size
    around `qty`; the client never trades, so nothing but front-running moves prices."""
    scenario = apply_overrides(load_scenario(scenario_name), qty, None, 2400.0)
    panel = load_panel(panel_name)
    world, desk = build(scenario, panel, seed)
    rng = np.random.default_rng(seed)
    lot = scenario.instrument.lot_size
    requests: dict[RfqId, QuoteRequest] = {}
    for k in range(n):
        size = int(rng.integers(3, len(panel.ids) + 1))
        dealers = tuple(DealerId(str(d)) for d in rng.choice(panel.ids, size, replace=False))
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        q = max(lot, int(qty * math.exp(0.5 * rng.standard_normal())) // lot * lot)
        request = QuoteRequest(
            RfqId(f"r{k}"),
            scenario.instrument.symbol,
            side,
            q,
            dealers,
            int(panel.time_limit_s * S),
        )
        requests[request.rfq_id] = request
        send_at(world, (30 + 20 * k) * S, request)
    world.kernel.run_until((60 + 20 * n) * S)
    quotes: dict[RfqId, list[Quote]] = defaultdict(list)
    for e in desk.of(QuoteReceived):
        quotes[e.quote.rfq_id].append(e.quote)
    best: dict[RfqId, DealerId] = {}
    for rid, qs in quotes.items():
        asked = requests[rid].side
        assert asked is not None
        best[rid] = min(qs, key=lambda q: _cost(q, asked)).dealer
    quoted = {(q.rfq_id, q.dealer) for qs in quotes.values() for q in qs}
    n_late = len(desk.of(QuoteIgnored))
    return _Flow(venue_of(world).truth, requests, quoted, best, n_late)


@pytest.fixture(scope="module")
def flows() -> list[_Flow]:
    """400 RFQs: 2 equity days and 2 bond days (bond answers are slow: some come late)."""
    return [
        *(run_flow("calm", "equities", 20_000, seed) for seed in (1, 2)),
        *(run_flow("illiquid-bond", "bonds", 300_000, seed) for seed in (1, 2)),
    ]


def z_score(outcomes: list[tuple[bool, float]]) -> float:
    """(observed - expected) / standard error for independent Bernoulli outcomes."""
    hits = sum(o for o, _ in outcomes)
    expected = sum(p for _, p in outcomes)
    var = sum(p * (1 - p) for _, p in outcomes)
    return (hits - expected) / math.sqrt(var)


def test_quote_frequency_matches_p_respond(flows: list[_Flow]) -> None:
    outcomes = [((t.rfq_id, t.dealer) in f.quoted, t.p_respond) for f in flows for t in f.truth]
    assert len(outcomes) > 2000
    # some answers came late and were ignored: the oracle must account for the latency
    assert all(f.n_late > 0 for f in flows)
    assert abs(z_score(outcomes)) < 4


def test_best_quote_frequency_matches_p_best(flows: list[_Flow]) -> None:
    # calibration per band of p_best: each band's count of best quotes is what it predicts
    bands: dict[int, list[tuple[bool, float]]] = defaultdict(list)
    for f in flows:
        for t in f.truth:
            side = f.requests[t.rfq_id].side
            assert side is not None
            p = t.p_best(side)
            bands[min(int(p * 4), 3)].append((f.best.get(t.rfq_id) == t.dealer, p))
    assert sorted(bands) == [0, 1, 2, 3]
    for band, outcomes in bands.items():
        assert len(outcomes) > 50, band
        assert abs(z_score(outcomes)) < 4, band


# --------------------------------------------------------------------------------------
# Refused requests and hits
# --------------------------------------------------------------------------------------


def _state(world: SimWorld) -> tuple[object, ...]:
    venue = venue_of(world)
    rngs = tuple(str(d.rng.bit_generator.state) for d in venue._dealers.values())
    return (
        list(venue.log),
        list(venue.truth),
        {rid: list(r.session.log) for rid, r in venue._rfqs.items()},
        world.kernel.next_event_ns(),
        len(world.kernel._queue),
        rngs,
    )


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (rfq("bad", (ALPHA, DealerId("ZULU"))), "RFQ bad: unknown dealer 'ZULU'"),
        (rfq("bad", (ALPHA,), symbol=Symbol("QBOND27")), "RFQ bad: unknown symbol 'QBOND27'"),
    ],
)
def test_bad_requests_change_nothing(
    calm: Scenario, equities: DealerPanel, request_: QuoteRequest, message: str
) -> None:
    world, desk = build(calm, equities)
    world.kernel.run_until(T_REQ)
    venue = venue_of(world)
    venue.request(rfq("ok", (ALPHA, BRAVO)))
    before, n_events = _state(world), len(desk.events)
    with pytest.raises(DomainError, match=message):
        venue.request(request_)
    assert _state(world) == before
    assert len(desk.events) == n_events
    # the id is still free
    venue.request(rfq("bad", (ALPHA,)))
    assert venue.session(RfqId("bad")).request.dealers == (ALPHA,)


def test_duplicate_rfq_id_is_refused(calm: Scenario, equities: DealerPanel) -> None:
    world, _ = build(calm, equities)
    world.kernel.run_until(T_REQ)
    venue = venue_of(world)
    venue.request(rfq("r1", (ALPHA,)))
    before = _state(world)
    with pytest.raises(DomainError, match="RFQ r1: duplicate RFQ id"):
        venue.request(rfq("r1", (BRAVO,)))
    assert _state(world) == before
    with pytest.raises(DomainError, match="unknown RFQ 'nope'"):
        venue.finish(RfqId("nope"))


def test_hits_without_a_live_quote_are_rejected(calm: Scenario, equities: DealerPanel) -> None:
    world, desk = build(calm, always_quotes(equities))
    venue = venue_of(world)
    world.kernel.run_until(T_REQ)
    venue.request(rfq("r1", (ALPHA,)))
    world.kernel.run_until(T_REQ + 10 * S)
    (e,) = desk.of(QuoteReceived)
    quote = e.quote
    no_id = replace(hit_order(quote, Side.BUY, ChildId("k1")), quote_id=None)
    unknown = replace(hit_order(quote, Side.BUY, ChildId("k2")), quote_id="r9-ALPHA")
    wrong_venue = replace(hit_order(quote, Side.BUY, ChildId("k3")), venue=VenueId("BRAVO"))
    too_big = hit_order(quote, Side.BUY, ChildId("k4"), qty=quote.qty + 100)
    for child in (no_id, unknown, wrong_venue, too_big):
        venue.hit(child)
    world.kernel.run_until(T_REQ + 11 * S)
    reasons = {e.child_id: e.reason for e in desk.of(ChildOrderRejected)}
    assert reasons == {
        "k1": "needs the quote_id of a live quote",
        "k2": "unknown quote",
        "k3": "quote r1-ALPHA is ALPHA's, not BRAVO's",
        "k4": "RFQ r1: hit qty must be within [1, 20000], got 20100",
    }
    assert desk.of(QuoteResponseSent) == []
    # after its validity (15 s) the quote lapses, and a hit is refused
    world.kernel.run_until(quote.valid_until_ns + 1)
    venue.hit(hit_order(quote, Side.BUY, ChildId("k5")))
    world.kernel.run_until(quote.valid_until_ns + S)
    last = desk.of(ChildOrderRejected)[-1]
    assert last.child_id == "k5"
    assert "expired" in last.reason
    ended = desk.of(RfqEnded)
    assert [(e.state, e.traded_qty) for e in ended] == [("expired", 0)]


def test_a_hit_on_the_wrong_side_is_rejected(calm: Scenario, equities: DealerPanel) -> None:
    world, desk = build(calm, always_quotes(equities))
    venue = venue_of(world)
    world.kernel.run_until(T_REQ)
    venue.request(rfq("r1", (ALPHA,), Side.BUY))
    world.kernel.run_until(T_REQ + 10 * S)
    (e,) = desk.of(QuoteReceived)
    venue.hit(hit_order(e.quote, Side.SELL, ChildId("k1")))
    world.kernel.run_until(T_REQ + 11 * S)
    (rejected,) = desk.of(ChildOrderRejected)
    assert rejected.reason == "RFQ r1: the request is to buy, not sell"
    assert desk.of(QuoteResponseSent) == []


# --------------------------------------------------------------------------------------
# Last look
# --------------------------------------------------------------------------------------


def hit_alpha(
    calm: Scenario, panel: DealerPanel, inventory: float = 0.0
) -> tuple[SimWorld, Desk, Quote, ChildOrder, float]:
    """Requests ALPHA (holding `inventory`) alone for a client buy, lifts its offer
    through ALPHA's venue at the close; returns the world after the last look, the quote,
    the hit and ALPHA's inventory before it."""
    world, desk = build(calm, panel)
    venue = venue_of(world)
    venue._dealers[ALPHA].inventory = inventory
    venue._dealers[ALPHA].book.start_inventory = inventory
    world.kernel.run_until(T_REQ)
    venue.request(rfq("r1", (ALPHA,)))
    world.kernel.run_until(T_REQ + 10 * S)
    (e,) = desk.of(QuoteReceived)
    child = hit_order(e.quote, Side.BUY, ChildId("k1"))
    inventory = venue.inventory(ALPHA)
    venue.venues[VenueId("ALPHA")].submit(child)
    world.kernel.run_until(T_REQ + 11 * S)  # platform 2 ms + last look 100 ms
    return world, desk, e.quote, child, inventory


def test_last_look_reject(calm: Scenario, equities: DealerPanel) -> None:
    # last_look_bps so wide that only the coin decides, and the coin always says no
    panel = always_quotes(equities, last_look_prob=1.0, last_look_bps=1e6)
    world, desk, quote, child, inventory = hit_alpha(calm, panel)
    t_hit = T_REQ + 10 * S + 2_000_000  # the platform's latency
    t_look = t_hit + 100_000_000  # ALPHA's last_look_ms 100
    tail = desk.events[-3:]
    assert tail == [
        QuoteResponseSent(
            t_hit,
            RfqId("r1"),
            ALPHA,
            QuoteRespType.HIT_LIFT,
            quote.qty,
            quote.offer,
            child.child_id,
        ),
        LastLookRejected(t_look, RfqId("r1"), ALPHA, child.child_id, "last look: declined"),
        ChildOrderRejected(t_look, child.child_id, VenueId("ALPHA"), "last look: declined"),
    ]
    assert desk.of(RfqTraded) == [] and desk.of(ChildOrderFilled) == []
    venue = venue_of(world)
    assert venue.inventory(ALPHA) == inventory
    assert venue._dealers[ALPHA].credit_used == 0.0
    # the client gives up: the RFQ passes
    venue.finish(RfqId("r1"))
    world.kernel.run_until(T_REQ + 12 * S)
    (ended,) = desk.of(RfqEnded)
    assert (ended.state, ended.traded_qty) == ("passed", 0)


def test_last_look_reject_when_the_price_moved(calm: Scenario, equities: DealerPanel) -> None:
    # a threshold that any move (or none) exceeds, and no coin
    panel = always_quotes(equities, last_look_prob=0.0, last_look_bps=-1e6)
    _, desk, _, _, _ = hit_alpha(calm, panel)
    (rejected,) = desk.of(LastLookRejected)
    assert rejected.reason.startswith("last look: price moved ")


def test_last_look_accept_fills_and_the_dealer_hedges(
    calm: Scenario, equities: DealerPanel
) -> None:
    panel = always_quotes(equities, last_look_prob=0.0, last_look_bps=1e6)
    world, desk, quote, child, inventory = hit_alpha(calm, panel)
    price = offer_of(quote)
    t_fill = T_REQ + 10 * S + 2_000_000 + 100_000_000
    (traded,) = desk.of(RfqTraded)
    assert traded == RfqTraded(t_fill, RfqId("r1"), ALPHA, child.child_id, Side.BUY, 20_000, price)
    (fill,) = desk.of(ChildOrderFilled)
    assert fill == ChildOrderFilled(
        t_fill, child.child_id, VenueId("ALPHA"), Side.BUY, 20_000, price, 0.0, "rfq", 0
    )
    venue = venue_of(world)
    # the dealer sold 20_000 to the client
    assert venue.inventory(ALPHA) == inventory - 20_000
    assert venue._dealers[ALPHA].credit_used == pytest.approx(20_000 * price)
    venue.finish(RfqId("r1"))
    world.kernel.run_until(T_REQ + 12 * S)
    (ended,) = desk.of(RfqEnded)
    assert (ended.state, ended.traded_qty) == ("done", 20_000)
    # ALPHA hedges 80% of it (hedge_share 0.8) on the screen over 15 minutes: it buys back
    world.kernel.run_until(T_REQ + 20 * 60 * S)
    bought_back = venue.inventory(ALPHA) - (inventory - 20_000)
    assert 0 < bought_back <= 16_000


# --------------------------------------------------------------------------------------
# Information leakage
# --------------------------------------------------------------------------------------


def untraded_rfq_world(
    scenario: Scenario, panel: DealerPanel, side: Side, end: str, seed: int
) -> SimWorld:
    """A 200_000 request to the whole panel at T_REQ that trades nothing: the client
    passes at the close (`end` "passed") or lets every quote lapse ("expired"); the world
    run to 15 minutes after."""
    world, desk = build(scenario, panel, seed)
    request = rfq("r1", panel.ids, side, qty=200_000)
    if end == "passed":
        desk.plans[request.rfq_id] = ("pass", side)
    send_at(world, T_REQ, request)
    world.kernel.run_until(T_REQ + 15 * 60 * S)
    assert [(e.state, e.traded_qty) for e in desk.of(RfqEnded)] == [(end, 0)]
    return world


@pytest.mark.parametrize("end", ["passed", "expired"])
@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
@pytest.mark.parametrize("seed", [1, 2])
def test_front_running_moves_the_market_against_the_client(
    calm: Scenario, equities: DealerPanel, side: Side, seed: int, end: str
) -> None:
    leaky = untraded_rfq_world(calm, with_all(equities, front_run_prob=1.0), side, end, seed)
    quiet = untraded_rfq_world(calm, with_all(equities, front_run_prob=0.0), side, end, seed)
    # every dealer traded the client's side on the screen: 8 * ~10% of 200_000
    moved = {d: venue_of(leaky).inventory(d) - venue_of(quiet).inventory(d) for d in equities.ids}
    assert all(side.sign * m > 0 for m in moved.values()), moved
    # 12 minutes after the request (front_run 8-10 minutes): the mid moved the client's way
    t = T_REQ + 12 * 60 * S
    diff_ticks = leaky.market.mid_at(t) - quiet.market.mid_at(t)
    assert side.sign * diff_ticks >= 5.0  # 5 ticks = 5 bps at 100


def test_without_leakage_rfqs_leave_the_market_untouched(
    calm: Scenario, equities: DealerPanel
) -> None:
    panel = with_all(equities, front_run_prob=0.0, hedge_share=0.0)
    world, desk = build(calm, panel)
    for k, (action, side) in enumerate(
        [("hit", Side.BUY), ("pass", Side.SELL), ("hit", Side.SELL), ("pass", Side.BUY)]
    ):
        request = rfq(f"r{k}", panel.ids, side, qty=100_000)
        desk.plans[request.rfq_id] = (action, side)
        send_at(world, T_REQ + k * 60 * S, request)
    end = T_REQ + 15 * 60 * S
    world.kernel.run_until(end)
    # the RFQs did happen, trades included
    assert len(desk.of(RfqEnded)) == 4
    assert len(desk.of(RfqTraded)) >= 1
    untouched, _ = build(calm, panel)
    untouched.kernel.run_until(end)
    for a, b in zip(world.market.top_of_book(), untouched.market.top_of_book(), strict=True):
        assert a.tobytes() == b.tobytes()
    assert world.market.record.ref_path.tobytes() == untouched.market.record.ref_path.tobytes()
    assert world.market.state.tape_vol.tobytes() == untouched.market.state.tape_vol.tobytes()


# --------------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------------


def scripted_day(scenario: Scenario, panel: DealerPanel, seed: int) -> tuple[Desk, SimWorld]:
    """Six RFQs of both sides, traded or passed, two-sided or not."""
    world, desk = build(scenario, panel, seed)
    plans: list[tuple[str, Side, Side | None]] = [
        ("hit", Side.BUY, Side.BUY),
        ("pass", Side.SELL, Side.SELL),
        ("hit", Side.SELL, None),
        ("hit", Side.SELL, Side.SELL),
        ("pass", Side.BUY, None),
        ("hit", Side.BUY, Side.BUY),
    ]
    for k, (action, side, asked) in enumerate(plans):
        request = rfq(f"r{k}", panel.ids[k % 3 : k % 3 + 5], asked, qty=50_000)
        desk.plans[request.rfq_id] = (action, side)
        send_at(world, T_REQ + k * 45 * S, request)
    world.kernel.run_until(T_REQ + 15 * 60 * S)
    return desk, world


def test_same_seed_same_log(calm: Scenario, equities: DealerPanel) -> None:
    desk1, world1 = scripted_day(calm, equities, 11)
    desk2, world2 = scripted_day(calm, equities, 11)
    assert len(desk1.of(RfqEnded)) == 6
    assert desk1.of(RfqTraded)
    assert desk1.events == desk2.events
    assert venue_of(world1).log == venue_of(world2).log
    assert venue_of(world1).truth == venue_of(world2).truth
    assert world1.market.record.ref_path.tobytes() == world2.market.record.ref_path.tobytes()
    # every event the venue logged reached the sink, in order
    assert desk1.events == venue_of(world1).log
    assert isinstance(desk1.events[0], RfqRequested)
    # and another seed tells another story
    desk3, _ = scripted_day(calm, equities, 12)
    assert desk3.events != desk1.events


# --------------------------------------------------------------------------------------
# Hedging and the dealer's own book
# --------------------------------------------------------------------------------------


def test_a_trade_that_shrinks_the_position_is_not_hedged(
    calm: Scenario, equities: DealerPanel
) -> None:
    # long 100k, it sells 20k to the client: nothing to lay off
    panel = always_quotes(equities, last_look_prob=0.0, last_look_bps=1e6)
    world, _, _, _, inventory = hit_alpha(calm, panel, inventory=100_000.0)
    assert inventory == 100_000.0
    world.kernel.run_until(T_REQ + 20 * 60 * S)
    assert venue_of(world).inventory(ALPHA) == 80_000.0


def test_every_trade_is_booked_with_its_hedges(calm: Scenario, equities: DealerPanel) -> None:
    panel = always_quotes(equities, last_look_prob=0.0, last_look_bps=1e6)
    world, desk, quote, _, _ = hit_alpha(calm, panel)
    venue = venue_of(world)
    world.kernel.run_until(T_REQ + 20 * 60 * S)
    (fill,) = desk.of(ChildOrderFilled)
    fair_then = world.market.fair_ticks(fill.ts_ns) * calm.instrument.tick_size
    fair_now = world.market.fair_ticks(world.clock.now_ns()) * calm.instrument.tick_size
    (trade,) = [p for p in venue.pnl() if p.dealer == ALPHA]
    book = venue._dealers[ALPHA].book.trades[0]
    # it sold 20k at its offer: the edge is the offer over the fair price then
    assert trade.edge == pytest.approx(20_000 * (offer_of(quote) - fair_then))
    assert trade.notional == pytest.approx(20_000 * fair_then)
    # the hedges bought back what the book says, at what they paid on the screen
    assert 0 < book.hedged <= 16_000
    assert venue.inventory(ALPHA) == -20_000 + book.hedged
    avg = book.hedge_cost / book.hedged
    assert fair_then * 0.99 < avg < fair_then * 1.01
    # marked now: the short 20k and the hedges at the fair price, what is left charged
    left = -20_000 + book.hedged
    assert trade.market == pytest.approx(
        -20_000 * (fair_now - fair_then) + book.hedged * fair_now - book.hedge_cost
    )
    assert trade.unwind == pytest.approx(
        84.0 * abs(left) * math.sqrt(abs(left) / ADV) * fair_now / 1e4
    )


def _two_requests(
    calm: Scenario, panel: DealerPanel, first: Side | None, second: Side
) -> tuple[float, float]:
    """ALPHA (flat) asked for 20k on `first`, then a minute later on `second`: the
    second quote's distance from fair, bps."""
    world, desk = build(calm, panel)
    venue = venue_of(world)
    venue._dealers[ALPHA].inventory = 0.0
    send_at(world, T_REQ, rfq("r1", (ALPHA,), first))
    send_at(world, T_REQ + 60 * S, rfq("r2", (ALPHA,), second))
    world.kernel.run_until(T_REQ + 80 * S)
    (q,) = [e.quote for e in desk.of(QuoteReceived) if e.quote.rfq_id == "r2"]
    fair = world.market.fair_ticks(q.ts_ns) * calm.instrument.tick_size
    price = q.price_for(second)
    assert price is not None
    return second.sign * (price - fair) / fair * 1e4, fair


def test_a_client_asking_again_on_its_side_pays_for_what_it_reveals(
    calm: Scenario, equities: DealerPanel
) -> None:
    panel = exact_panel(equities)  # ALPHA hedges 80% at once
    again, _ = _two_requests(calm, panel, Side.BUY, Side.BUY)
    # the first 20k, a minute old (half-life 30 min), says more buying is to come: the
    # square-root law's peak on it, on the 20% ALPHA keeps
    remembered = 20_000 * 0.5 ** (60 / 1800)
    flow = 0.84 * 150 * math.sqrt(remembered / ADV) * (1 - 0.8)
    assert again == pytest.approx(13.4 + flow, abs=1e-4)
    # a request the other way first says nothing about more buying
    after_sell, _ = _two_requests(calm, panel, Side.SELL, Side.BUY)
    assert after_sell == pytest.approx(13.4, abs=1e-4)
    # nor does a two-sided one, which hides the side
    after_two, _ = _two_requests(calm, panel, None, Side.BUY)
    assert after_two == pytest.approx(13.4, abs=1e-4)
