"""Dealer panels as read from config/dealers/<name>.toml.

Each dealer is a personality: how wide it quotes against fair value and how that grows
with size, volatility and the number of competitors (winner's curse), how its
inventory skews its prices, how often and how fast it answers, why it declines, how it
uses its last look, and what it does with what an RFQ tells it (front-running when it
loses, hedging when it wins). Every number is checked on load; an error names the file
and the key, and nothing is half-loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from router.config import DEFAULT_CONFIG_DIR, ConfigError, ConfigTable, load_toml
from router.domain import DealerId

#: How a dealer treats the client by the tier it has put the client in: spread
#: multiplier and response-probability multiplier (tier 1 = the dealer's best clients).
TIER_SPREAD = {1: 0.85, 2: 1.0, 3: 1.25}
TIER_RESPONSE = {1: 1.0, 2: 0.95, 3: 0.8}
MIN_DEALERS = 8


@dataclass(frozen=True, slots=True)
class DealerSpec:
    dealer_id: DealerId
    description: str
    client_tier: int  # 1..3, see TIER_SPREAD
    # pricing: half spread vs fair value in bps, each side =
    #   tier * spread + the marginal cost of the trade to the dealer (dealers/pricing.py:
    #   unwinding at the panel's impact_y, and risk_aversion's premium for carrying it over
    #   hedge_s, at daily_vol * vol_ratio^vol_sensitivity)
    #   + competition * (n_asked - 1) + N(0, quote_noise)
    spread_bps: float  # the margin over its cost, before the client's tier
    vol_sensitivity: float
    competition_bps: float  # winner's curse: widening per extra dealer asked
    risk_aversion: float  # premium per unit of the position's risk while it unwinds
    quote_noise_bps: float
    # inventory at the start of the day, as a share of ADV
    inventory_sd: float
    axe_prob: float  # chance of holding an axe (a large position it wants to unwind)
    axe_size: float  # that position, share of ADV
    max_qty_adv: float  # largest quote, share of ADV (bigger requests get partial size)
    credit_limit: float  # notional the dealer will trade with the client per day
    # answering
    response_prob: float
    pass_prob: float  # declines with reason "pass"
    no_inventory_prob: float  # declines a client buy larger than its long position
    latency_ms: float  # median time to answer
    latency_jitter: float  # lognormal sigma of that time
    quote_ttl_s: float  # how long a quote stays firm
    # last look
    last_look_ms: float
    last_look_bps: float  # rejects if fair value moved this far against it meanwhile
    last_look_prob: float  # rejects anyway with this probability
    # what it does with the information
    front_run_prob: float  # when it did not trade: trades ahead of the client
    front_run_share: float  # ... this share of the RFQ's size, in the lit market
    front_run_s: float  # ... over this long
    hedge_share: float  # when it traded: hedges this share of the trade in the lit market
    hedge_s: float


@dataclass(frozen=True, slots=True)
class DealerPanel:
    name: str
    dealers: tuple[DealerSpec, ...]
    two_sided_bps: float  # extra half spread on a two-sided request (side unknown)
    side_guess: float  # chance a dealer guesses the side of a two-sided request right
    time_limit_s: float  # the usual time limit of an RFQ on this panel
    # the dealers' estimate of the square-root law's Y for unwinding what they buy, from
    # their own past hedges (dealers/pricing.py)
    impact_y: float = 0.84

    @property
    def ids(self) -> tuple[DealerId, ...]:
        return tuple(d.dealer_id for d in self.dealers)

    def dealer(self, dealer_id: str) -> DealerSpec:
        for d in self.dealers:
            if d.dealer_id == dealer_id:
                return d
        raise KeyError(dealer_id)


def available_panels(config_dir: Path = DEFAULT_CONFIG_DIR) -> list[str]:
    return sorted(p.stem for p in (config_dir / "dealers").glob("*.toml"))


def load_panel(name: str, config_dir: Path = DEFAULT_CONFIG_DIR, where: str = "") -> DealerPanel:
    path = config_dir / "dealers" / f"{name}.toml"
    if not path.exists():
        known = ", ".join(available_panels(config_dir)) or "none"
        raise ConfigError(f"{where or path}: unknown dealer panel {name!r} (known: {known})")
    return parse_panel(load_toml(path), name)


def parse_panel(t: ConfigTable, name: str) -> DealerPanel:
    panel = t.table("panel")
    two_sided = panel.get_float("two_sided_bps", min=0)
    side_guess = panel.get_float("side_guess", min=0.5, max=1.0)
    time_limit = panel.get_duration("time_limit", gt=0)
    impact_y = panel.get_float("impact_y", gt=0)
    panel.check_no_unknown_keys()
    dealers = tuple(_dealer(d) for d in t.tables("dealer"))
    t.check_no_unknown_keys()
    if len(dealers) < MIN_DEALERS:
        raise ConfigError(
            f"{t.file}: a panel needs at least {MIN_DEALERS} dealers, got {len(dealers)}"
        )
    ids = [d.dealer_id for d in dealers]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ConfigError(f"{t.file}: dealer id {dup[0]!r} is used twice")
    return DealerPanel(name, dealers, two_sided, side_guess, time_limit, impact_y)


def _dealer(d: ConfigTable) -> DealerSpec:
    dealer_id = d.get_str("id").strip()
    if not dealer_id or any(c.isspace() or c == "," for c in dealer_id):
        raise d.error("id", f"must be a non-empty word without spaces or commas, got {dealer_id!r}")
    tier = d.get_int("client_tier", 2, min=1, max=3)
    spec = DealerSpec(
        dealer_id=DealerId(dealer_id),
        description=d.get_str("description", ""),
        client_tier=tier,
        spread_bps=d.get_float("spread_bps", min=0),
        vol_sensitivity=d.get_float("vol_sensitivity", 1.0, min=0),
        competition_bps=d.get_float("competition_bps", min=0),
        risk_aversion=d.get_float("risk_aversion", min=0),
        quote_noise_bps=d.get_float("quote_noise_bps", min=0),
        inventory_sd=d.get_float("inventory_sd", min=0),
        axe_prob=d.get_probability("axe_prob"),
        axe_size=d.get_float("axe_size", 0.0, min=0),
        max_qty_adv=d.get_float("max_qty_adv", gt=0),
        credit_limit=d.get_float("credit_limit", gt=0),
        response_prob=d.get_probability("response_prob"),
        pass_prob=d.get_probability("pass_prob"),
        no_inventory_prob=d.get_probability("no_inventory_prob"),
        latency_ms=d.get_float("latency_ms", gt=0),
        latency_jitter=d.get_float("latency_jitter", 0.0, min=0),
        quote_ttl_s=d.get_duration("quote_ttl", gt=0),
        last_look_ms=d.get_float("last_look_ms", 0.0, min=0),
        last_look_bps=d.get_float("last_look_bps", min=0),
        last_look_prob=d.get_probability("last_look_prob"),
        front_run_prob=d.get_probability("front_run_prob"),
        front_run_share=d.get_float("front_run_share", min=0, max=1),
        front_run_s=d.get_duration("front_run", gt=0),
        hedge_share=d.get_probability("hedge_share"),
        hedge_s=d.get_duration("hedge", gt=0),
    )
    d.check_no_unknown_keys()
    return spec
