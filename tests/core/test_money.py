"""Minor units per currency from the ISO 4217 list, not a hand-typed table."""

import pytest

from aethercrown.core import money


@pytest.mark.parametrize(
    ("currency", "digits"),
    [("USD", 2), ("EUR", 2), ("HUF", 2), ("JPY", 0), ("KRW", 0), ("BHD", 3), ("KWD", 3)],
)
def test_exponents_follow_iso_4217(currency: str, digits: int) -> None:
    assert money.exponent(currency) == digits


def test_conversions_and_formatting() -> None:
    assert money.major(1999, "USD") == 19.99
    assert money.major(1999, "JPY") == 1999.0
    assert money.from_major(12.345, "BHD") == 12345
    assert money.money(123450, "USD") == "USD 1,234.50"
    assert money.money(123450, "JPY") == "JPY 123,450"
    assert money.money(1500, "HUF") == "HUF 15.00"
    assert money.major(None, "USD") is None and money.money(None, "USD") == "–"
    # A code the list does not know, or gold (no minor unit), counts in hundredths.
    assert money.exponent("ZZZ") == money.exponent("XAU") == 2
