"""Small captures in Bitstamp's layout, written by hand: for tests and examples that must
run without the `data` extra, and for bad-input cases (cut or edited files).

`write_bitstamp_capture` writes the three files with a meta.json that fits them;
`tiny_bitstamp_capture` writes one canonical two-second market that has each of the real
capture's quirks once (see its docstring for what the replay must make of it).
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Sequence
from pathlib import Path

from simulators.replay.bitstamp import ORDER_COLUMNS, TRADE_COLUMNS, BitstampCapture

Row = Sequence[str | int | float]


def write_bitstamp_capture(
    folder: Path,
    snapshot: Sequence[Row],
    live: Sequence[Row],
    end: Sequence[Row],
    trades: Sequence[Row],
) -> Path:
    """Write orders.csv.gz (snapshot rows, live rows, synthetic end deletes), trades.csv
    and meta.json into `folder`. Order rows: (id, recv_ms, exchange_ms, price, volume,
    action, direction); trade rows: (trade_id, recv_ms, exchange_ms, price, amount,
    buy_order_id, sell_order_id, side). Returns `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / "orders.csv.gz", "wt", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(ORDER_COLUMNS)
        w.writerows([*snapshot, *live, *end])
    with (folder / "trades.csv").open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(TRADE_COLUMNS)
        w.writerows(trades)
    meta = {
        "pair": "btcusd",
        "snapshot_microtimestamp": int(snapshot[0][2]) * 1000 if snapshot else 0,
        "synthetic_created": len(snapshot),
        "synthetic_deleted": len(end),
        "live_orders": len(live),
        "trades": len(trades),
        "total_order_rows": len(snapshot) + len(live) + len(end),
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    return folder


#: what `tiny_bitstamp_capture` holds, for the tests' expectations
TINY_TRADES = 5
TINY_SKIPPED = {
    "unknown_order": 1,
    "negative_size": 1,
    "outside_price_band": 1,
    "removed_as_stale": 1,
}
TINY_HANDLED = {
    "marketable_rejected": 1,
    "aggressor_filled": 1,
    "aggressor_rested": 1,
    "crossing_rested": 1,
    "market_orders": 1,
    "stale_snapshot_removed": 1,
}


def tiny_bitstamp_capture(folder: Path) -> Path:
    """A two-second BTC/USD market with each quirk of the real capture once:

    - snapshot (exchange 1000 ms, received 1500 ms): bids 100 (ids 101, 102), 99; asks
      102 (id 201: stale, already gone), 103 (202, 203), and a stub at 999,999;
    - 1100: bid 101 rests; 1200: an ask at 100 crosses and is deleted at once (post-only);
    - 1300: a market sell (placeholder price 0) takes 0.2 at 101 and 0.05 at 100;
    - 1400: a delete of an order never seen; 1500: a bid at 102.5 crosses the stale
      ask and stays, so at 1600 the stale ask goes and the bid rests;
    - 1700: a bid limit 103.5 takes both asks at 103 (its changes print 103) and rests
      0.25 at 103.5; 1800: an ask at 103 takes 0.1 of it;
    - 1900: the stale ask's own delete; 2000: an order with a negative size;
    - 2100: the synthetic end deletes of what the collector still had.

    Tick 0.5 (prices on half dollars), lot 0.01; the five trades all match."""
    snapshot = [
        (101, 1500, 1000, "100.0", "1.0", "created", "bid"),
        (102, 1500, 1000, "100.0", "0.5", "created", "bid"),
        (103, 1500, 1000, "99.0", "2.0", "created", "bid"),
        (201, 1500, 1000, "102.0", "0.3", "created", "ask"),
        (202, 1500, 1000, "103.0", "1.0", "created", "ask"),
        (203, 1500, 1000, "103.0", "0.25", "created", "ask"),
        (204, 1500, 1000, "999999.0", "0.01", "created", "ask"),
    ]
    live = [
        (301, 1180, 1100, "101.0", "0.2", "created", "bid"),
        (302, 1290, 1200, "100.0", "0.1", "created", "ask"),
        (302, 1290, 1200, "100.0", "0.1", "deleted", "ask"),
        (303, 1390, 1300, "0.0", "0.25", "created", "ask"),
        (301, 1390, 1300, "101.0", "0.0", "deleted", "bid"),
        (303, 1390, 1300, "101.0", "0.05", "changed", "ask"),
        (101, 1390, 1300, "100.0", "0.95", "changed", "bid"),
        (303, 1390, 1300, "100.0", "0.0", "changed", "ask"),
        (303, 1391, 1300, "100.0", "0.0", "deleted", "ask"),
        (999, 1480, 1400, "101.0", "0.1", "deleted", "bid"),
        (304, 1580, 1500, "102.5", "0.1", "created", "bid"),
        (305, 1680, 1600, "104.0", "0.5", "created", "ask"),
        (306, 1790, 1700, "103.5", "1.5", "created", "bid"),
        (202, 1790, 1700, "103.0", "0.0", "deleted", "ask"),
        (306, 1790, 1700, "103.0", "0.5", "changed", "bid"),
        (203, 1790, 1700, "103.0", "0.0", "deleted", "ask"),
        (306, 1790, 1700, "103.0", "0.25", "changed", "bid"),
        (307, 1880, 1800, "103.0", "0.1", "created", "ask"),
        (306, 1880, 1800, "103.5", "0.15", "changed", "bid"),
        (307, 1880, 1800, "103.5", "0.0", "changed", "ask"),
        (307, 1881, 1800, "103.5", "0.0", "deleted", "ask"),
        (201, 1980, 1900, "102.0", "0.3", "deleted", "ask"),
        (308, 2080, 2000, "105.0", "-0.5", "created", "ask"),
    ]
    end = [
        (101, 2100, 2100, "100.0", "0.95", "deleted", "bid"),
        (102, 2100, 2100, "100.0", "0.5", "deleted", "bid"),
        (103, 2100, 2100, "99.0", "2.0", "deleted", "bid"),
        (304, 2100, 2100, "102.5", "0.1", "deleted", "bid"),
        (306, 2100, 2100, "103.5", "0.15", "deleted", "bid"),
        (204, 2100, 2100, "999999.0", "0.01", "deleted", "ask"),
        (305, 2100, 2100, "104.0", "0.5", "deleted", "ask"),
    ]
    trades = [
        (9001, 1385, 1300, "101.0", "0.2", 301, 303, "sell"),
        (9002, 1386, 1300, "100.0", "0.05", 101, 303, "sell"),
        (9003, 1785, 1700, "103.0", "1.0", 306, 202, "buy"),
        (9004, 1786, 1700, "103.0", "0.25", 306, 203, "buy"),
        (9005, 1875, 1800, "103.5", "0.1", 306, 307, "sell"),
    ]
    return write_bitstamp_capture(folder, snapshot, live, end, trades)


def tiny_source(folder: Path, name: str = "tiny") -> BitstampCapture:
    """The adapter over a folder written by `tiny_bitstamp_capture` (or any other)."""
    return BitstampCapture(name, folder, symbol="BTC/USD", currency="USD")
