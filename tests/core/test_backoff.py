"""The retry delay: doubling per failure from the base, capped."""

from aethercrown.core.backoff import exponential_backoff


def test_backoff_doubles_from_the_base_and_stops_at_the_cap() -> None:
    assert [exponential_backoff(n, 30, 300) for n in range(1, 7)] == [30, 60, 120, 240, 300, 300]
    assert exponential_backoff(0, 0.5, 10) == 0.5  # before any failure: the base
