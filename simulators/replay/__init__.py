"""Order-by-order (L3) replays of real market data.

- events.py: the normalized, columnar event stream every source adapter produces
- sources.py: the captures by name (`bitstamp-btcusd`) and the adapter port
- bitstamp.py: the adapter for Bitstamp's live order and trade channels
- decimals.py: exact decimal text to integers; the tick and lot grids
- l3.py: the compiled kernels applying a stream to the project's book (simulators/book.py)
- replayer.py: a capture applied in steps, and the book it gives
- check.py: the reconstruction check against the capture's own trades
- market.py: a capture as the lit market of a simulated world, client orders in its book
- scenario.py: `replay:NAME` scenarios (config/replay/NAME.toml), sized from the capture

This module imports nothing, so that the CLI can name the errors (errors.py) cheaply.
"""
