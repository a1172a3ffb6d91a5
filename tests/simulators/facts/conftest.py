import pytest


@pytest.fixture(scope="session")
def bitstamp():
    """The real capture (the `data` extra), parsed once per session; its tests carry
    `requires_extra("data", "ob_analytics")`, so they skip without it."""
    from simulators.replay.sources import load_replay

    return load_replay("bitstamp-btcusd")
