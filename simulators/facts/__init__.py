"""Stylized facts of a market: the real capture's and the simulator's, measured alike.

- measures.py: the figures (`MarketFacts`) and the statistics they are made of
- capture.py: a replayed order-by-order capture (simulators/replay/), its book sampled
  every 100 ms of exchange time and its events
- simulated.py: a run of the simulated market (simulators/market.py), observed step by
  step from outside: its books before and after each 100 ms step, nothing changed
"""
