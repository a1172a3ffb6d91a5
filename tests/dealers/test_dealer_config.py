"""Dealer panels from config/dealers/*.toml: the shipped panels, every refusal with the
file and the key in its message, and the domain's own checks on RFQ values."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dealers.config import MIN_DEALERS, DealerPanel, available_panels, load_panel, parse_panel
from router.config import DEFAULT_CONFIG_DIR, ConfigError, load_toml
from router.domain import DealerId, DomainError, Quote, QuoteRequest, RfqId, Side, Symbol
from simulators.scenario import available_scenarios, load_scenario

# --------------------------------------------------------------------------------------
# Helpers: a valid panel written as TOML, with any key of any table replaced or dropped.
# --------------------------------------------------------------------------------------

PANEL: dict[str, Any] = {
    "two_sided_bps": 3.0,
    "side_guess": 0.6,
    "time_limit": "10s",
    "impact_y": 0.84,
}

DEALER: dict[str, Any] = {
    "description": "test dealer",
    "client_tier": 1,
    "spread_bps": 3.0,
    "vol_sensitivity": 1.5,
    "competition_bps": 0.6,
    "risk_aversion": 1.0,
    "quote_noise_bps": 3.0,
    "inventory_sd": 0.05,
    "axe_prob": 0.2,
    "axe_size": 0.1,
    "max_qty_adv": 0.12,
    "credit_limit": 400_000_000,
    "response_prob": 0.95,
    "pass_prob": 0.05,
    "no_inventory_prob": 0.1,
    "latency_ms": 300.0,
    "latency_jitter": 0.5,
    "quote_ttl": "15s",
    "last_look_ms": 100.0,
    "last_look_bps": 5.0,
    "last_look_prob": 0.01,
    "front_run_prob": 0.1,
    "front_run_share": 0.1,
    "front_run": "10m",
    "hedge_share": 0.8,
    "hedge": "30m",
}

_DROP = object()  # a value that removes the key


def _value(v: Any) -> str:
    if isinstance(v, str):
        return '"' + v + '"'
    return repr(v)


def _table(header: str, values: dict[str, Any]) -> str:
    lines = [header]
    lines += [f"{k} = {_value(v)}" for k, v in values.items() if v is not _DROP]
    return "\n".join(lines) + "\n"


def panel_toml(
    n: int = MIN_DEALERS,
    *,
    panel: dict[str, Any] | None = None,
    dealer: dict[int, dict[str, Any]] | None = None,
    with_panel: bool = True,
    extra: str = "",
) -> str:
    """A panel of `n` dealers D0..D{n-1}; `dealer[i]` overrides keys of dealer i; `extra`
    is top-level TOML (it goes first: keys after a table header belong to that table)."""
    parts = [extra]
    if with_panel:
        parts.append(_table("[panel]", {**PANEL, **(panel or {})}))
    for i in range(n):
        values = {"id": f"D{i}", **DEALER, **(dealer or {}).get(i, {})}
        parts.append(_table("[[dealer]]", values))
    return "\n".join(parts)


def write(tmp_path: Path, text: str, name: str = "x") -> Path:
    """Writes config_dir/dealers/<name>.toml; returns the file's path."""
    folder = tmp_path / "dealers"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def refused(tmp_path: Path, text: str, message: str) -> None:
    """Loading `text` raises ConfigError with exactly `<file>: <message>`."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_panel("x", tmp_path)
    assert str(info.value) == f"{path}: {message}"


# --------------------------------------------------------------------------------------
# The shipped panels
# --------------------------------------------------------------------------------------


def test_the_shipped_panels_are_listed() -> None:
    assert available_panels() == ["bonds", "crypto", "equities"]


@pytest.mark.parametrize(
    ("name", "n", "time_limit_s", "two_sided_bps"),
    [("equities", 8, 10.0, 3.0), ("bonds", 10, 30.0, 4.0), ("crypto", 8, 5.0, 1.0)],
)
def test_shipped_panels_load(name: str, n: int, time_limit_s: float, two_sided_bps: float) -> None:
    panel = load_panel(name)
    assert panel.name == name
    assert len(panel.dealers) == n >= MIN_DEALERS
    assert len(set(panel.ids)) == len(panel.ids)
    assert panel.time_limit_s == time_limit_s
    assert panel.two_sided_bps == two_sided_bps
    assert 0.5 <= panel.side_guess <= 1.0


@pytest.mark.parametrize("name", ["equities", "bonds", "crypto"])
def test_shipped_dealers_have_distinct_personalities(name: str) -> None:
    panel = load_panel(name)
    # no two dealers are the same numbers under a different name
    numbers = {replace(d, dealer_id=DealerId(""), description="") for d in panel.dealers}
    assert len(numbers) == len(panel.dealers)
    for key in ("spread_bps", "response_prob", "latency_ms", "front_run_prob"):
        assert len({getattr(d, key) for d in panel.dealers}) > 1, key
    assert len({d.client_tier for d in panel.dealers}) > 1
    assert all(d.description for d in panel.dealers)


@pytest.mark.parametrize("name", available_scenarios())
def test_every_scenario_names_a_loadable_panel(name: str) -> None:
    panel_name = load_scenario(name).dealer_panel
    if panel_name is not None:
        assert isinstance(load_panel(panel_name), DealerPanel)


def test_panel_lookup_by_id() -> None:
    panel = load_panel("equities")
    assert panel.ids[0] == "ALPHA"
    assert panel.dealer("ALPHA") is panel.dealers[0]
    with pytest.raises(KeyError):
        panel.dealer("NOPE")


def test_parse_panel_reads_a_table_directly() -> None:
    path = DEFAULT_CONFIG_DIR / "dealers" / "bonds.toml"
    assert parse_panel(load_toml(path), "bonds") == load_panel("bonds")


# --------------------------------------------------------------------------------------
# A valid file, read back value by value
# --------------------------------------------------------------------------------------


def test_values_defaults_and_durations(tmp_path: Path) -> None:
    dropped = {
        k: _DROP
        for k in (
            "description",
            "client_tier",
            "vol_sensitivity",
            "axe_size",
            "latency_jitter",
            "last_look_ms",
        )
    }
    write(tmp_path, panel_toml(dealer={1: dropped}, panel={"time_limit": "1m"}))
    panel = load_panel("x", tmp_path)
    assert panel.name == "x"
    assert panel.ids == tuple(f"D{i}" for i in range(8))
    assert (panel.two_sided_bps, panel.side_guess, panel.time_limit_s) == (3.0, 0.6, 60.0)
    assert panel.impact_y == 0.84
    d0, d1 = panel.dealers[0], panel.dealers[1]
    assert d0.client_tier == 1
    assert d0.vol_sensitivity == 1.5
    assert d0.quote_ttl_s == 15.0
    assert d0.front_run_s == 600.0  # "10m"
    assert d0.hedge_s == 1800.0  # "30m"
    assert d0.credit_limit == 400_000_000.0
    assert d0.last_look_ms == 100.0
    # the optional keys' defaults
    assert d1.description == ""
    assert d1.client_tier == 2
    assert d1.vol_sensitivity == 1.0
    assert d1.axe_size == 0.0
    assert d1.latency_jitter == 0.0
    assert d1.last_look_ms == 0.0


def test_ids_are_stripped(tmp_path: Path) -> None:
    write(tmp_path, panel_toml(dealer={0: {"id": "  D0  "}}))
    assert load_panel("x", tmp_path).ids[0] == "D0"


# --------------------------------------------------------------------------------------
# Refusals: the message names the file and the key
# --------------------------------------------------------------------------------------


def test_negative_spread(tmp_path: Path) -> None:
    text = panel_toml(dealer={3: {"spread_bps": -1.0}})
    refused(tmp_path, text, "dealer[3].spread_bps: must be >= 0, got -1")


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("response_prob", 1.2, "must be <= 1, got 1.2"),
        ("pass_prob", -0.1, "must be >= 0, got -0.1"),
        ("no_inventory_prob", 2, "must be <= 1, got 2"),
        ("axe_prob", -0.5, "must be >= 0, got -0.5"),
        ("last_look_prob", 1.01, "must be <= 1, got 1.01"),
        ("front_run_prob", 3.0, "must be <= 1, got 3"),
        ("front_run_share", 1.5, "must be <= 1, got 1.5"),
        ("hedge_share", -0.2, "must be >= 0, got -0.2"),
    ],
)
def test_probability_out_of_range(tmp_path: Path, key: str, value: float, problem: str) -> None:
    refused(tmp_path, panel_toml(dealer={5: {key: value}}), f"dealer[5].{key}: {problem}")


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("client_tier", 4, "must be <= 3, got 4"),
        ("client_tier", 0, "must be >= 1, got 0"),
        ("client_tier", 1.5, "must be an integer, got 1.5"),
        ("max_qty_adv", 0.0, "must be > 0, got 0"),
        ("credit_limit", -5, "must be > 0, got -5"),
        ("latency_ms", 0, "must be > 0, got 0"),
        ("latency_jitter", -0.1, "must be >= 0, got -0.1"),
        ("quote_ttl", "soon", "not a duration: 'soon' (use e.g. 90, 90s, 15m, 3h)"),
        ("quote_ttl", 0, "must be > 0, got 0"),
        ("spread_bps", "wide", "must be a number, got 'wide'"),
        ("risk_aversion", -0.3, "must be >= 0, got -0.3"),
        ("description", 7, "must be a string, got 7"),
    ],
)
def test_bad_dealer_values(tmp_path: Path, key: str, value: Any, problem: str) -> None:
    refused(tmp_path, panel_toml(dealer={2: {key: value}}), f"dealer[2].{key}: {problem}")


def test_missing_dealer_key(tmp_path: Path) -> None:
    text = panel_toml(dealer={4: {"hedge": _DROP}})
    refused(tmp_path, text, "dealer[4].hedge: missing")


@pytest.mark.parametrize("bad_id", ["", "   ", "A B", "A,B"])
def test_bad_dealer_id(tmp_path: Path, bad_id: str) -> None:
    problem = f"must be a non-empty word without spaces or commas, got {bad_id.strip()!r}"
    refused(tmp_path, panel_toml(dealer={0: {"id": bad_id}}), f"dealer[0].id: {problem}")


def test_too_few_dealers(tmp_path: Path) -> None:
    refused(tmp_path, panel_toml(7), "a panel needs at least 8 dealers, got 7")


def test_no_dealers_at_all(tmp_path: Path) -> None:
    refused(tmp_path, panel_toml(0), "a panel needs at least 8 dealers, got 0")


def test_duplicate_dealer_id(tmp_path: Path) -> None:
    text = panel_toml(dealer={6: {"id": "D2"}})
    refused(tmp_path, text, "dealer id 'D2' is used twice")


def test_unknown_dealer_key(tmp_path: Path) -> None:
    text = panel_toml(dealer={2: {"colour": "red"}})
    refused(tmp_path, text, "dealer[2].colour: unknown key")


def test_misspelt_dealer_key_reports_the_missing_one(tmp_path: Path) -> None:
    text = panel_toml(dealer={1: {"spread_bps": _DROP, "sprad_bps": 3.0}})
    refused(tmp_path, text, "dealer[1].spread_bps: missing")


def test_unknown_panel_key(tmp_path: Path) -> None:
    refused(tmp_path, panel_toml(panel={"timelimit": "5s"}), "panel.timelimit: unknown key")


def test_unknown_top_level_key(tmp_path: Path) -> None:
    refused(tmp_path, panel_toml(extra="owner = 'desk'\n"), "owner: unknown key")


def test_missing_panel_table(tmp_path: Path) -> None:
    refused(tmp_path, panel_toml(with_panel=False), "panel: missing")


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("side_guess", 0.4, "must be >= 0.5, got 0.4"),
        ("side_guess", 1.1, "must be <= 1, got 1.1"),
        ("two_sided_bps", -1.0, "must be >= 0, got -1"),
        ("time_limit", "0s", "must be > 0, got 0"),
        ("time_limit", _DROP, "missing"),
        ("impact_y", 0.0, "must be > 0, got 0"),
        ("impact_y", _DROP, "missing"),
    ],
)
def test_bad_panel_values(tmp_path: Path, key: str, value: Any, problem: str) -> None:
    refused(tmp_path, panel_toml(panel={key: value}), f"panel.{key}: {problem}")


def test_dealer_must_be_an_array_of_tables(tmp_path: Path) -> None:
    text = "dealer = 3\n" + _table("[panel]", PANEL)
    refused(tmp_path, text, "dealer: must be an array of tables ([[...]])")


def test_not_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[panel\n")
    with pytest.raises(ConfigError, match="^" + re.escape(f"{path}: not valid TOML")):
        load_panel("x", tmp_path)


def test_unknown_panel_name_lists_the_known_ones(tmp_path: Path) -> None:
    write(tmp_path, panel_toml(), "alpha")
    write(tmp_path, panel_toml(), "beta")
    with pytest.raises(ConfigError) as info:
        load_panel("gamma", tmp_path)
    expected = f"{tmp_path / 'dealers' / 'gamma.toml'}: unknown dealer panel 'gamma' "
    assert str(info.value) == expected + "(known: alpha, beta)"
    with pytest.raises(ConfigError, match=r"^scenario\.toml: dealers: unknown dealer panel"):
        load_panel("gamma", tmp_path, where="scenario.toml: dealers")


def test_unknown_panel_name_with_no_panels(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown dealer panel 'x' \(known: none\)$"):
        load_panel("x", tmp_path)


# --------------------------------------------------------------------------------------
# The domain's own checks on RFQ values
# --------------------------------------------------------------------------------------

RID = RfqId("r1")
A, B = DealerId("A"), DealerId("B")


def request(**kw: Any) -> QuoteRequest:
    args: dict[str, Any] = {
        "rfq_id": RID,
        "symbol": Symbol("QDI"),
        "side": Side.BUY,
        "qty": 1000,
        "dealers": (A, B),
        "time_limit_ns": 10,
    }
    return QuoteRequest(**{**args, **kw})


def quote(**kw: Any) -> Quote:
    args: dict[str, Any] = {
        "quote_id": "q1",
        "rfq_id": RID,
        "dealer": A,
        "qty": 1000,
        "bid": 99.0,
        "offer": 101.0,
        "ts_ns": 5,
        "valid_until_ns": 50,
    }
    return Quote(**{**args, **kw})


def test_valid_request_and_quote() -> None:
    assert request().dealers == (A, B)
    assert request(side=None).side is None  # two-sided
    q = quote()
    assert (q.price_for(Side.BUY), q.price_for(Side.SELL)) == (101.0, 99.0)
    assert quote(bid=None).price_for(Side.SELL) is None


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"qty": 0}, "RFQ r1: quantity must be > 0, got 0"),
        ({"qty": -5}, "RFQ r1: quantity must be > 0, got -5"),
        ({"dealers": ()}, "RFQ r1: needs at least one dealer"),
        ({"dealers": (A, B, A)}, "RFQ r1: dealer 'A' is asked twice"),
        ({"dealers": (B, A, B, A)}, "RFQ r1: dealer 'A' is asked twice"),  # first by name
        ({"time_limit_ns": 0}, "RFQ r1: time limit must be > 0"),
    ],
)
def test_bad_quote_requests(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(DomainError, match="^" + re.escape(message) + "$"):
        request(**kw)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"bid": None, "offer": None}, "quote q1: needs a bid or an offer"),
        ({"bid": 0.0}, "quote q1: bid must be > 0, got 0.0"),
        ({"offer": -1.0}, "quote q1: offer must be > 0, got -1.0"),
        ({"bid": None, "offer": 0}, "quote q1: offer must be > 0, got 0"),
        ({"offer": float("nan")}, "quote q1: offer must be > 0, got nan"),
        ({"qty": 0}, "quote q1: quantity must be > 0, got 0"),
    ],
)
def test_bad_quotes(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(DomainError, match="^" + re.escape(message) + "$"):
        quote(**kw)
