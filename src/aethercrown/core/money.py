"""Money is stored as integer minor units of an ISO 4217 currency; this is the one place that
knows how many minor units make a major one.

The exponents come from the ISO 4217 list (the ``iso4217`` package, which ships the maintenance
agency's table). Not Babel/CLDR: CLDR's digits are a display precision, which for some currencies
differ from the minor unit amounts are counted in (HUF: CLDR 0 digits, ISO 4217 exponent 2).
"""

from __future__ import annotations

from functools import cache

from iso4217 import Currency

# For a code the ISO list does not know, or one without a minor unit (gold, SDR): the common case.
DEFAULT_EXPONENT = 2


@cache
def exponent(currency: str) -> int:
    """How many decimal digits the currency's minor unit has (USD 2, JPY 0, BHD 3, HUF 2)."""
    try:
        value = Currency(currency.upper()).exponent
    except ValueError:
        return DEFAULT_EXPONENT
    return DEFAULT_EXPONENT if value is None else int(value)


def major(amount: int | float | None, currency: str) -> float | None:
    """Minor units as a number of major units (1999 USD cents -> 19.99); None stays None."""
    return None if amount is None else float(amount) / 10 ** exponent(currency)


def from_major(amount: int | float, currency: str) -> int:
    """Major units as whole minor units (19.99 USD -> 1999)."""
    return round(amount * 10 ** exponent(currency))


def money(amount: int | float | None, currency: str) -> str:
    """``USD 1,234.50``: the code and the amount with the currency's own decimals ("–" for
    none)."""
    if amount is None:
        return "–"
    digits = exponent(currency)
    return f"{currency} {float(amount) / 10**digits:,.{digits}f}"
