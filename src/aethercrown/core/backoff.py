"""The one retry delay every retrying part uses (task attempts, webhook deliveries, content
providers): exponential, doubling per failure, capped."""

from __future__ import annotations


def exponential_backoff(attempt: int, base_seconds: float, max_seconds: float) -> float:
    """Seconds to wait after the ``attempt``-th failure (1-based): ``base_seconds`` after the
    first, doubled after each later one, never more than ``max_seconds``."""
    return min(max_seconds, base_seconds * 2 ** max(0, attempt - 1))
