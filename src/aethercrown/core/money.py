"""Amounts are integer minor units plus a currency; this turns them into figures for people."""

from __future__ import annotations

# Currencies whose minor unit is the major unit (ISO 4217 exponent 0).
ZERO_DECIMAL = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF", "PYG", "HUF"})


def major(amount: int | float | None, currency: str) -> float | None:
    if amount is None:
        return None
    return float(amount) if currency in ZERO_DECIMAL else float(amount) / 100


def money(amount: int | float | None, currency: str) -> str:
    value = major(amount, currency)
    if value is None:
        return "–"
    digits = 0 if currency in ZERO_DECIMAL else 2
    return f"{currency} {value:,.{digits}f}"
