"""A plain Python limit order book, written as a competent Python developer would
(dict of levels, heaps with lazy deletion, deques, lazy cancels): the reference that
`blockroute bench book` compares the compiled book against. Same event semantics as
`simulators.book.apply_events`."""

from __future__ import annotations

import heapq
from collections import deque

import numpy as np

BID, ASK = 0, 1
EV_ADD, EV_CANCEL, EV_MARKET = 0, 1, 2


class PyBook:
    def __init__(self, n_ticks: int) -> None:
        self.n_ticks = n_ticks
        self.levels: tuple[dict[int, deque[list[int]]], dict[int, deque[list[int]]]] = ({}, {})
        self.heaps: tuple[list[int], list[int]] = ([], [])  # bids stored negated
        self.orders: dict[int, list[int]] = {}  # id -> [id, qty, side, price]
        self.live: list[int] = []
        self.live_pos: dict[int, int] = {}
        self.next_id = 0

    def best_bid(self) -> int:
        h, lv = self.heaps[BID], self.levels[BID]
        while h and -h[0] not in lv:
            heapq.heappop(h)
        return -h[0] if h else -1

    def best_ask(self) -> int:
        h, lv = self.heaps[ASK], self.levels[ASK]
        while h and h[0] not in lv:
            heapq.heappop(h)
        return h[0] if h else self.n_ticks

    def _drop_live(self, oid: int) -> None:
        pos = self.live_pos.pop(oid)
        last = self.live.pop()
        if last != oid:
            self.live[pos] = last
            self.live_pos[last] = pos

    def _remove_level_if_empty(self, side: int, price: int) -> None:
        q = self.levels[side][price]
        while q and q[0][1] == 0:
            q.popleft()
        if not q:
            del self.levels[side][price]

    def rest(self, side: int, price: int, qty: int) -> None:
        oid = self.next_id
        self.next_id += 1
        entry = [oid, qty, side, price]
        self.orders[oid] = entry
        lv = self.levels[side]
        if price not in lv:
            lv[price] = deque()
            heapq.heappush(self.heaps[side], -price if side == BID else price)
        lv[price].append(entry)
        self.live_pos[oid] = len(self.live)
        self.live.append(oid)

    def market(self, side: int, qty: int) -> None:
        opp = 1 - side
        while qty > 0:
            best = self.best_ask() if side == BID else self.best_bid()
            if best < 0 or best >= self.n_ticks:
                break
            q = self.levels[opp][best]
            while q and qty > 0:
                entry = q[0]
                if entry[1] == 0:
                    q.popleft()
                    continue
                take = min(qty, entry[1])
                entry[1] -= take
                qty -= take
                if entry[1] == 0:
                    q.popleft()
                    del self.orders[entry[0]]
                    self._drop_live(entry[0])
            self._remove_level_if_empty(opp, best)

    def cancel_random(self, u: float) -> None:
        if not self.live:
            return
        oid = self.live[int(u * len(self.live))]
        entry = self.orders.pop(oid)
        entry[1] = 0  # lazy: the level drops it when it reaches the front
        self._drop_live(oid)
        self._remove_level_if_empty(entry[2], entry[3])

    def apply_events(
        self,
        kinds: np.ndarray,
        sides: np.ndarray,
        offsets: np.ndarray,
        qtys: np.ndarray,
        uniforms: np.ndarray,
        mid0: int,
    ) -> int:
        k_list, s_list, o_list = kinds.tolist(), sides.tolist(), offsets.tolist()
        q_list, u_list = qtys.tolist(), uniforms.tolist()
        for i in range(len(k_list)):
            k, s = k_list[i], s_list[i]
            if k == EV_ADD:
                if s == BID:
                    bb = self.best_bid()
                    p = (bb if bb >= 0 else mid0) - o_list[i]
                    ba = self.best_ask()
                    if p >= ba:
                        p = ba - 1
                else:
                    ba = self.best_ask()
                    p = (ba if ba < self.n_ticks else mid0 + 1) + o_list[i]
                    bb = self.best_bid()
                    if p <= bb:
                        p = bb + 1
                if 0 <= p < self.n_ticks:
                    self.rest(s, p, q_list[i])
            elif k == EV_CANCEL:
                self.cancel_random(u_list[i])
            else:
                self.market(s, q_list[i])
        return len(k_list)
