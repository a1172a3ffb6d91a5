"""`blockroute bench memory`: the desk's memory with open parent orders.

A desk on QDI's simulated market (sim speed 20) takes `parents` block orders of
20,000-80,000 shares over an hour, alternating twap, sor and ml, lets them trade for a
few simulated minutes, and reports the process's resident memory before and after.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from router.desk_api import NewOrder
from router.domain import NANOS_PER_SECOND, Side
from router.service import simulated_desk

STRATEGIES = ("twap", "sor", "ml")


def rss_mb() -> float:
    """Resident set size now (Linux /proc), MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def run_memory_bench(parents: int, trade_s: float = 10.0) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="blockroute-bench-mem-") as folder:
            async with simulated_desk(Path(folder), 20.0) as desk:
                await asyncio.sleep(0.5)
                empty = rss_mb()
                for i in range(parents):
                    desk.submit(
                        NewOrder(
                            "BENCH",
                            f"M{i}",
                            "QDI",
                            Side.SELL if i % 2 else Side.BUY,
                            20_000 + 20_000 * (i % 4),
                            expire_ns=desk.now_ns() + 3600 * NANOS_PER_SECOND,
                            strategy=STRATEGIES[i % len(STRATEGIES)],
                        )
                    )
                await asyncio.sleep(trade_s)
                full = rss_mb()
                m = desk.metrics()
                working = sum(1 for v in desk.parents() if not v.status.terminal)
                return {
                    "parents": parents,
                    "parents_working": working,
                    "rss_mb_empty": empty,
                    "rss_mb": full,
                    "kb_per_parent": (full - empty) * 1024.0 / parents,
                    "child_orders": int(m["child_orders_total"]),
                    "fills": int(m["fills_total"]),
                    "simulated_s": trade_s * 20.0,
                }

    return asyncio.run(main())
