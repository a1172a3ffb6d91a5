"""Adapter for captures of Bitstamp's WebSocket order and trade channels
(`live_orders_<pair>`, `live_trades_<pair>`) in the layout that ob-analytics' collector
writes and ships as its sample: `orders.csv.gz`, `trades.csv`, `meta.json`.

The files are read exactly (decimal text to integers) and checked against meta.json's
counts, so a truncated or cut file is an error, not a shorter replay. What the adapter
decides about the feed's spelling (its handling of the book's quirks is l3.py's):

- the first `synthetic_created` rows are the collector's start snapshot (REST
  `order_book?group=2`, one row per resting order, in the order the REST book lists
  each level), the last `synthetic_deleted` rows its synthetic end deletes (everything
  it still had resting): the end deletes are no events of the market and are kept apart
  as the capture's own end state (`Capture.end_state`);
- a live `created` at price 0 on a sell or 999,999,999 on a buy is a market order whose
  price is a placeholder: MARKET, without a price (a buy's size may be 0: it was sized in
  dollars);
- times are the exchange's clock (`exchange_timestamp`, whole milliseconds); the receive
  clock (`timestamp`) is kept only to measure the lag.
"""

from __future__ import annotations

import csv
import gzip
import json
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from simulators.replay.decimals import DecimalColumn, find_grid
from simulators.replay.errors import ReplayDataError
from simulators.replay.events import (
    ADD,
    ASK,
    BID,
    DELETE,
    I32,
    MARKET,
    MODIFY,
    NO_PRICE,
    Capture,
    Instrument,
    Listing,
    OrderEvents,
    Trades,
)

ProgressFn = Callable[[int, int], None]

ORDER_COLUMNS = ("id", "timestamp", "exchange_timestamp", "price", "volume", "action", "direction")
TRADE_COLUMNS = (
    "trade_id",
    "timestamp",
    "exchange_timestamp",
    "price",
    "amount",
    "buy_order_id",
    "sell_order_id",
    "side",
)
_ACTIONS = {"created": ADD, "changed": MODIFY, "deleted": DELETE}
_SIDES = {"bid": BID, "ask": ASK}
_AGGRESSOR = {"buy": BID, "sell": ASK}
#: Bitstamp prints a market order's missing limit as these prices (dollars)
SELL_PLACEHOLDER = 0
BUY_PLACEHOLDER = 999_999_999
_MS = 1_000_000  # ns
_PROGRESS_EVERY = 50_000


class BitstampCapture:
    """One capture directory of Bitstamp's live order and trade channels."""

    def __init__(self, name: str, directory: Path, symbol: str, currency: str) -> None:
        self.name = name
        self.directory = directory
        self.symbol = symbol
        self.currency = currency

    @property
    def description(self) -> str:
        return f"Bitstamp {self.symbol} live orders and trades ({self.directory.name})"

    def load(self, progress: ProgressFn | None = None) -> Capture:
        """Read and check the capture. Raises `ReplayDataError` naming the file (and
        line) if a file is missing, truncated or malformed."""
        meta = self._meta()
        total = _meta_int(meta, "total_order_rows")
        n_snap = _meta_int(meta, "synthetic_created")
        n_end = _meta_int(meta, "synthetic_deleted")
        rows = _OrderRows.read(self.directory / "orders.csv.gz", total, progress)
        if len(rows) != total:
            raise ReplayDataError(
                f"orders.csv.gz: {len(rows):,} rows where meta.json says {total:,}: "
                "the file is truncated or not this capture's"
            )
        trades = _TradeRows.read(self.directory / "trades.csv")
        if len(trades) != _meta_int(meta, "trades"):
            raise ReplayDataError(
                f"trades.csv: {len(trades)} trades where meta.json says {meta['trades']}"
            )
        return _build(self, rows, trades, n_snap, n_end)

    def _meta(self) -> dict[str, Any]:
        path = self.directory / "meta.json"
        try:
            meta = json.loads(path.read_text())
        except FileNotFoundError:
            raise ReplayDataError(
                f"{self.name}: {path.name} is missing in {self.directory}"
            ) from None
        except (OSError, ValueError) as exc:
            raise ReplayDataError(f"{self.name}: {path.name} is unreadable: {exc}") from None
        if not isinstance(meta, dict):
            raise ReplayDataError(f"{self.name}: {path.name} is not a JSON object")
        return meta


def _meta_int(meta: dict[str, Any], key: str) -> int:
    value = meta.get(key)
    if not isinstance(value, int) or value < 0:
        raise ReplayDataError(f"meta.json: {key!r} missing or not a count")
    return value


def _csv_rows(path: Path, header: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each data row. Raises `ReplayDataError` if the file is
    missing, cut inside its compression, or has another header or a short row."""
    if not path.is_file():
        raise ReplayDataError(f"{path.name} is missing in {path.parent}")
    try:
        with _open_text(path) as f:
            reader = csv.reader(f)
            first = next(reader, None)
            if first is None or tuple(first) != header:
                raise ReplayDataError(f"{path.name}: header {first} is not {list(header)}")
            for lineno, row in enumerate(reader, start=2):
                if len(row) != len(header):
                    raise ReplayDataError(
                        f"{path.name} line {lineno}: {len(row)} fields, expected {len(header)}"
                        " (truncated?)"
                    )
                yield lineno, row
    except (EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError, csv.Error) as exc:
        raise ReplayDataError(f"{path.name}: truncated or corrupt ({exc})") from None
    except OSError as exc:
        raise ReplayDataError(f"{path.name}: cannot read ({exc})") from None


def _open_text(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", newline="")
    return path.open(newline="")


def _bad(path: Path, lineno: int, problem: str) -> ReplayDataError:
    return ReplayDataError(f"{path.name} line {lineno}: {problem}")


class _OrderRows:
    """The columns of orders.csv.gz as read, before ticks and lots are known."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.recv: list[int] = []
        self.exch: list[int] = []
        self.price = DecimalColumn()
        self.volume = DecimalColumn()
        self.action = bytearray()
        self.side = bytearray()
        self.lineno: list[int] = []

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def read(cls, path: Path, total: int, progress: ProgressFn | None) -> _OrderRows:
        out = cls()
        for lineno, row in _csv_rows(path, ORDER_COLUMNS):
            try:
                out.ids.append(int(row[0]))
                out.recv.append(int(row[1]))
                out.exch.append(int(row[2]))
                out.price.add(row[3])
                out.volume.add(row[4])
            except ValueError as exc:
                raise _bad(path, lineno, str(exc)) from None
            action = _ACTIONS.get(row[5])
            side = _SIDES.get(row[6])
            if action is None or side is None:
                raise _bad(path, lineno, f"unknown action or direction {row[5]!r}/{row[6]!r}")
            out.action.append(action)
            out.side.append(side)
            if progress is not None and len(out.ids) % _PROGRESS_EVERY == 0:
                progress(len(out.ids), total)
        if progress is not None:
            progress(len(out.ids), max(total, len(out.ids)))
        return out


class _TradeRows:
    def __init__(self) -> None:
        self.trade_id: list[int] = []
        self.recv: list[int] = []
        self.exch: list[int] = []
        self.price = DecimalColumn()
        self.amount = DecimalColumn()
        self.buy: list[int] = []
        self.sell: list[int] = []
        self.aggressor = bytearray()

    def __len__(self) -> int:
        return len(self.trade_id)

    @classmethod
    def read(cls, path: Path) -> _TradeRows:
        out = cls()
        for lineno, row in _csv_rows(path, TRADE_COLUMNS):
            try:
                out.trade_id.append(int(row[0]))
                out.recv.append(int(row[1]))
                out.exch.append(int(row[2]))
                out.price.add(row[3])
                out.amount.add(row[4])
                out.buy.append(int(row[5]))
                out.sell.append(int(row[6]))
            except ValueError as exc:
                raise _bad(path, lineno, str(exc)) from None
            aggressor = _AGGRESSOR.get(row[7])
            if aggressor is None:
                raise _bad(path, lineno, f"unknown side {row[7]!r}")
            out.aggressor.append(aggressor)
        return out


def _build(
    src: BitstampCapture, rows: _OrderRows, tr: _TradeRows, n_snap: int, n_end: int
) -> Capture:
    n = len(rows)
    if n_snap + n_end > n:
        raise ReplayDataError(f"meta.json: {n_snap} + {n_end} synthetic rows in {n} rows")
    action = np.frombuffer(bytes(rows.action), dtype=np.int8).copy()
    side = np.frombuffer(bytes(rows.side), dtype=np.int8).copy()
    if (action[:n_snap] != ADD).any() or (action[n - n_end :] != DELETE).any():
        raise ReplayDataError(
            "orders.csv.gz: the rows do not start with meta.json's snapshot (created) "
            "and end with its synthetic deletes"
        )
    exch = np.array(rows.exch, dtype=np.int64)
    live = slice(n_snap, n - n_end)
    back = np.flatnonzero(np.diff(exch[live]) < 0)
    if back.size:
        lineno = n_snap + int(back[0]) + 3  # header, 1-based, the row after the step
        raise ReplayDataError(f"orders.csv.gz line {lineno}: the exchange clock goes backwards")

    # prices: one decimal grid for orders and trades; market orders' placeholders aside
    decimals = max(rows.price.decimals, tr.price.decimals)
    try:
        price = rows.price.scaled(decimals)
        t_price = tr.price.scaled(decimals)
        vdec = max(rows.volume.decimals, tr.amount.decimals)
        volume = rows.volume.scaled(vdec)
        amount = tr.amount.scaled(vdec)
    except ValueError as exc:
        raise ReplayDataError(f"{src.name}: {exc}") from None
    unit = 10**decimals
    created = np.zeros(n, dtype=bool)
    created[live] = action[live] == ADD
    market = created & (
        ((side == ASK) & (price == SELL_PLACEHOLDER * unit))
        | ((side == BID) & (price == BUY_PLACEHOLDER * unit))
    )
    limit_prices = np.concatenate([price[~market], t_price])
    tick = find_grid(limit_prices, decimals)
    lot = find_grid(np.concatenate([volume, amount]), vdec)
    ticks = np.where(market, NO_PRICE, price // tick.step)
    action[market] = MARKET
    # a price that is off the grid cannot happen with a gcd grid; the guard keeps a
    # future published-tick grid honest
    if ((price[~market] % tick.step) != 0).any():
        raise ReplayDataError(f"{src.name}: prices off the tick grid")

    ids = np.array(rows.ids, dtype=np.int64)
    buy = np.array(tr.buy, dtype=np.int64)
    sell = np.array(tr.sell, dtype=np.int64)
    order_ids, dense = np.unique(np.concatenate([ids, buy, sell]), return_inverse=True)
    k = len(tr)
    o_dense: I32 = dense[:n].astype(np.int32)
    b_dense: I32 = dense[n : n + k].astype(np.int32)
    s_dense: I32 = dense[n + k :].astype(np.int32)
    aggressor = np.frombuffer(bytes(tr.aggressor), dtype=np.int8).copy()

    stop = n - n_end
    recv = np.array(rows.recv, dtype=np.int64)
    events = OrderEvents(
        ts_ns=exch[:stop] * _MS,
        recv_ns=recv[:stop] * _MS,
        order=o_dense[:stop].copy(),
        side=side[:stop].copy(),
        price=ticks[:stop].astype(np.int64),
        qty=(volume[:stop] // lot.step).astype(np.int64),
        action=action[:stop].copy(),
        n_snapshot=n_snap,
    )
    end_state = Listing(
        order=o_dense[stop:].copy(),
        side=side[stop:].copy(),
        price=ticks[stop:].astype(np.int64),
        qty=(volume[stop:] // lot.step).astype(np.int64),
    )
    trades = Trades(
        trade_id=np.array(tr.trade_id, dtype=np.int64),
        ts_ns=np.array(tr.exch, dtype=np.int64) * _MS,
        recv_ns=np.array(tr.recv, dtype=np.int64) * _MS,
        price=(t_price // tick.step).astype(np.int64),
        qty=(amount // lot.step).astype(np.int64),
        aggressor=aggressor,
        maker=np.where(aggressor == BID, s_dense, b_dense).astype(np.int32),
        taker=np.where(aggressor == BID, b_dense, s_dense).astype(np.int32),
    )
    base = src.symbol.split("/")[0]
    instrument = Instrument(
        symbol=src.symbol,
        currency=src.currency,
        tick_size=float(tick.size),
        lot_size=float(lot.size),
        how=(
            f"tick {tick.describe(src.currency)}: the greatest common divisor of the "
            f"{limit_prices.size:,} limit and trade prices (market orders' placeholders "
            f"left out); lot {lot.describe(base)}: that of the {volume.size + amount.size:,} "
            "order and trade sizes"
        ),
    )
    lag = (recv - exch)[live]
    notes = {
        "snapshot_orders": n_snap,
        "live_events": stop - n_snap,
        "synthetic_end_deletes": n_end,
        "market_orders": int(market.sum()),
        "receive_lag_ms_min": int(lag.min()) if lag.size else 0,
        "receive_lag_ms_median": int(np.median(lag)) if lag.size else 0,
        "receive_lag_ms_max": int(lag.max()) if lag.size else 0,
        "snapshot_receive_lag_ms": int(recv[0] - exch[0]) if n_snap else 0,
        "numbers_in_exponent_notation": sum(
            c.exponent_notation for c in (rows.price, rows.volume, tr.price, tr.amount)
        ),
    }
    return Capture(
        name=src.name,
        instrument=instrument,
        events=events,
        trades=trades,
        order_ids=order_ids,
        end_state=end_state,
        notes=notes,
    )
