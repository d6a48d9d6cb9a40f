"""Numbers for people: grouped, at most two decimals, never scientific notation; percentiles."""

import pytest

from aethercrown.core.numbers import percentiles, plain


def test_plain_numbers() -> None:
    assert plain(2e9) == "2,000,000,000"
    assert plain(1.44568e06) == "1,445,680"
    assert plain(16.25) == "16.25"
    assert plain(10.0) == "10"
    assert plain(0.5) == "0.5"
    assert plain(1 / 3) == "0.33"
    assert plain(1 / 3, 6) == "0.333333"
    assert plain(-0.001) == "0"
    assert plain(0) == "0"
    assert plain(-1234.5) == "-1,234.5"
    assert plain(None) == "–"
    assert plain(float("inf")) == "inf"


def test_percentiles_interpolate_linearly() -> None:
    assert percentiles([], 50, 95) == [None, None]
    assert percentiles([4.0], 95) == [4.0]
    assert percentiles([1, 2, 3, 4], 50) == [2.5]
    assert percentiles(list(range(1, 101)), 95) == [pytest.approx(95.05)]
