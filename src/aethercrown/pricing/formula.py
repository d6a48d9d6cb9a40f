"""The seed pricing formula and plan cost arithmetic, in integer minor units. Pure: no database.

    final price = base price × usage multiplier × enterprise multiplier × (1 − engagement discount)

Every factor is a basis-point value (10,000 = ×1.0) looked up in a band table: a list of
``[threshold, value_bp]`` sorted by threshold, where the band that applies is the last one whose
threshold the input reaches. Each step multiplies the running amount and rounds half up to a
whole minor unit, and the quote lists every step, so the result can be re-done by hand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aethercrown.core.numbers import plain

BP = 10_000

# Usage metrics the seed formula prices on, and the customer figures behind the others.
USAGE_FACTOR_METRICS = ("api_calls", "storage_gb", "seats")
ENTERPRISE_FACTORS = ("company_size", "annual_revenue")
ENGAGEMENT_FACTORS = ("activity_rate_bp", "tenure_months", "feature_adoption_bp")

DEFAULT_FACTORS: dict[str, Any] = {
    # metric -> bands of usage over one billing period (projected) -> multiplier
    "usage_multipliers": {
        "api_calls": [[0, 10_000], [50_000, 11_000], [250_000, 12_500], [1_000_000, 15_000]],
        "storage_gb": [[0, 10_000], [100, 10_500], [500, 11_500]],
        "seats": [[0, 10_000], [25, 11_000], [100, 12_500]],
    },
    "enterprise_multipliers": {
        # employees
        "company_size": [[0, 10_000], [50, 11_000], [250, 12_500], [1_000, 15_000]],
        # annual revenue in minor units: $1M, $10M, $100M
        "annual_revenue": [
            [0, 10_000],
            [100_000_000, 10_500],
            [1_000_000_000, 11_500],
            [10_000_000_000, 13_000],
        ],
    },
    "engagement_discounts": {
        # share of the last 30 days on which the customer's users were active (bp)
        "activity_rate_bp": [[0, 0], [5_000, 500], [8_000, 1_000]],
        # whole months since signup
        "tenure_months": [[0, 0], [12, 500], [24, 1_000], [36, 1_500]],
        # share of the tenant's features (seen in the last 30 days) this customer used (bp)
        "feature_adoption_bp": [[0, 0], [3_000, 250], [6_000, 500]],
    },
    "max_engagement_discount_bp": 2_500,
}

DEFAULT_OVERAGE: dict[str, dict[str, int]] = {
    "api_calls": {"unit_amount": 50, "per": 1_000},
    "storage_gb": {"unit_amount": 25, "per": 1},
    "compute_units": {"unit_amount": 10, "per": 10},
    "seats": {"unit_amount": 800, "per": 1},
}

DEFAULT_PLANS: list[dict[str, Any]] = [
    {
        "slug": "starter",
        "name": "Starter",
        "rank": 1,
        "monthly_price": 2_900,
        "capacities": {"api_calls": 10_000, "storage_gb": 10, "compute_units": 1_000, "seats": 5},
    },
    {
        "slug": "professional",
        "name": "Professional",
        "rank": 2,
        "monthly_price": 9_900,
        "capacities": {
            "api_calls": 100_000,
            "storage_gb": 100,
            "compute_units": 10_000,
            "seats": 25,
        },
    },
    {
        "slug": "enterprise",
        "name": "Enterprise",
        "rank": 3,
        "monthly_price": 49_900,
        "capacities": {
            "api_calls": 1_000_000,
            "storage_gb": 1_000,
            "compute_units": 100_000,
            "seats": 250,
        },
    },
]


def apply_bp(amount: int, bp: int) -> int:
    """amount × bp / 10,000, rounded half up to a whole minor unit (exact integer arithmetic)."""
    return (amount * bp + BP // 2) // BP


def band(bands: Sequence[Sequence[float]], value: float) -> tuple[float, int]:
    """The band that applies to ``value``: the last whose threshold it reaches."""
    chosen = bands[0]
    for entry in bands:
        if value >= entry[0]:
            chosen = entry
        else:
            break
    return chosen[0], int(chosen[1])


@dataclass
class QuoteLine:
    step: str
    factor: str
    input: float | None
    band_from: float | None
    value_bp: int
    amount_before: int
    amount_after: int
    explanation: str


@dataclass
class Quote:
    base_price: int
    usage_multiplier_bp: int
    enterprise_multiplier_bp: int
    engagement_discount_bp: int
    final_price: int
    lines: list[QuoteLine] = field(default_factory=list)


def _fmt_bp(bp: int) -> str:
    return f"×{bp / BP:.4f}"


def quote(
    base_price: int,
    usage: Mapping[str, float],
    enterprise: Mapping[str, float | None],
    engagement: Mapping[str, float | None],
    tables: Mapping[str, Any],
) -> Quote:
    """Apply the formula to a base price; every multiplication is one explained line."""
    lines: list[QuoteLine] = []
    amount = base_price
    usage_bp = BP
    for metric, bands in sorted(tables["usage_multipliers"].items()):
        used = float(usage.get(metric, 0.0))
        start, bp = band(bands, used)
        after = apply_bp(amount, bp)
        lines.append(
            QuoteLine(
                "usage multiplier",
                metric,
                used,
                start,
                bp,
                amount,
                after,
                f"{metric} projected at {plain(used)} per period is in the band from "
                f"{plain(start)}: {_fmt_bp(bp)}; {amount} × {bp} / 10000 = {after}",
            )
        )
        usage_bp = usage_bp * bp // BP
        amount = after
    enterprise_bp = BP
    for name, bands in sorted(tables["enterprise_multipliers"].items()):
        raw = enterprise.get(name)
        given = float(raw) if raw is not None else 0.0
        start, bp = band(bands, given)
        after = apply_bp(amount, bp)
        known = "unknown, taken as 0" if raw is None else plain(given)
        lines.append(
            QuoteLine(
                "enterprise multiplier",
                name,
                raw if raw is None else given,
                start,
                bp,
                amount,
                after,
                f"{name} {known} is in the band from {plain(start)}: {_fmt_bp(bp)}; "
                f"{amount} × {bp} / 10000 = {after}",
            )
        )
        enterprise_bp = enterprise_bp * bp // BP
        amount = after
    discount_bp = 0
    parts = []
    for name, bands in sorted(tables["engagement_discounts"].items()):
        raw = engagement.get(name)
        given = float(raw) if raw is not None else 0.0
        start, bp = band(bands, given)
        discount_bp += bp
        parts.append(f"{name} {plain(given)} → {bp} bp (band from {plain(start)})")
    cap = int(tables.get("max_engagement_discount_bp", BP))
    capped = min(discount_bp, cap)
    after = apply_bp(amount, BP - capped)
    cap_note = f", capped at {cap}" if capped < discount_bp else ""
    lines.append(
        QuoteLine(
            "engagement discount",
            "engagement",
            None,
            None,
            capped,
            amount,
            after,
            f"{'; '.join(parts)}: {discount_bp} bp{cap_note}; "
            f"{amount} × (10000 − {capped}) / 10000 = {after}",
        )
    )
    return Quote(base_price, usage_bp, enterprise_bp, capped, after, lines)


@dataclass
class OverageLine:
    metric: str
    usage: float
    capacity: float
    excess: float
    packages: int
    unit_amount: int
    per: float
    amount: int


@dataclass
class PlanCost:
    slug: str
    name: str
    rank: int
    base: int
    overage: list[OverageLine]
    total: int
    covers: bool


def overage_lines(
    usage: Mapping[str, float], capacities: Mapping[str, float], prices: Mapping[str, Any]
) -> list[OverageLine]:
    """Each started package of ``per`` units beyond capacity costs ``unit_amount``.

    A metric the plan gives no capacity for is unlimited on it."""
    out = []
    for metric, used in sorted(usage.items()):
        if metric not in capacities:
            continue
        capacity = float(capacities[metric])
        excess = max(0.0, float(used) - capacity)
        price = prices.get(metric)
        if price is None:
            unit_amount, per = 0, 1.0
        else:
            unit_amount, per = int(price["unit_amount"]), float(price["per"])
        # A tolerance so float noise (100.00000001 GB) does not bill a whole package.
        packages = math.ceil(excess / per - 1e-9) if excess > 0 else 0
        out.append(
            OverageLine(
                metric,
                float(used),
                capacity,
                excess,
                packages,
                unit_amount,
                per,
                packages * unit_amount,
            )
        )
    return out


def plan_cost(plan: Mapping[str, Any], usage: Mapping[str, float]) -> PlanCost:
    lines = overage_lines(usage, plan["capacities"], plan["overage"])
    covers = all(line.excess == 0 for line in lines)
    total = int(plan["monthly_price"]) + sum(line.amount for line in lines)
    return PlanCost(
        plan["slug"],
        plan["name"],
        int(plan["rank"]),
        int(plan["monthly_price"]),
        lines,
        total,
        covers,
    )


def recommend(
    plans: Sequence[Mapping[str, Any]], usage: Mapping[str, float]
) -> tuple[PlanCost, list[PlanCost], PlanCost]:
    """(recommended, every plan's cost, cheapest in total).

    Recommended is the cheapest plan whose capacities cover the usage; when none does, the one
    with the lowest total including overage."""
    costs = [plan_cost(p, usage) for p in sorted(plans, key=lambda p: (p["rank"], p["slug"]))]
    covering = [c for c in costs if c.covers]
    cheapest_total = min(costs, key=lambda c: (c.total, c.rank))
    recommended = min(covering, key=lambda c: (c.base, c.rank)) if covering else cheapest_total
    return recommended, costs, cheapest_total
