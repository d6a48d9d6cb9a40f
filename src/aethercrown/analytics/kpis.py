"""The KPIs every page, summary and report shows: each one's name for people and its unit, and
which of them each view reads. Defined once here; the metrics themselves are computed in
``analytics.metrics``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aethercrown.core.money import money
from aethercrown.core.numbers import percent, plain

Unit = Literal["money", "percent", "count", "ratio", "months"]


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    unit: Unit


KPIS: dict[str, Kpi] = {
    kpi.key: kpi
    for kpi in (
        Kpi("mrr", "MRR", "money"),
        Kpi("arr", "ARR", "money"),
        Kpi("customers", "Paying customers", "count"),
        Kpi("net_new_mrr", "Net new MRR", "money"),
        Kpi("new", "New MRR", "money"),
        Kpi("expansion", "Expansion MRR", "money"),
        Kpi("contraction", "Contraction MRR", "money"),
        Kpi("churn", "Churned MRR", "money"),
        Kpi("reactivation", "Reactivation MRR", "money"),
        Kpi("mrr_growth_rate", "MRR growth (month)", "percent"),
        Kpi("nrr", "NRR (month)", "percent"),
        Kpi("grr", "GRR (month)", "percent"),
        Kpi("nrr_12m", "NRR (12 months)", "percent"),
        Kpi("grr_12m", "GRR (12 months)", "percent"),
        Kpi("logo_churn_rate", "Logo churn (month)", "percent"),
        Kpi("revenue_churn_rate", "Revenue churn (month)", "percent"),
        Kpi("arpa", "ARPA", "money"),
        Kpi("ltv", "LTV", "money"),
        Kpi("cac", "CAC", "money"),
        Kpi("cac_payback_months", "CAC payback (months)", "months"),
        Kpi("quick_ratio", "Quick ratio", "ratio"),
        Kpi("trial_conversion_rate", "Trial conversion", "percent"),
        Kpi("dau_mau", "DAU / MAU", "percent"),
        Kpi("new_customers", "New customers", "count"),
        Kpi("churned_customers", "Churned customers", "count"),
    )
}

# What each view reads, in the order it shows them.
EXECUTIVE_SUMMARY = (
    "mrr",
    "arr",
    "customers",
    "net_new_mrr",
    "mrr_growth_rate",
    "nrr",
    "grr",
    "nrr_12m",
    "grr_12m",
    "logo_churn_rate",
    "revenue_churn_rate",
    "arpa",
    "ltv",
    "quick_ratio",
    "cac",
    "cac_payback_months",
    "trial_conversion_rate",
    "dau_mau",
)
INVESTOR_SERIES = (
    "mrr",
    "arr",
    "customers",
    "mrr_growth_rate",
    "nrr",
    "grr",
    "logo_churn_rate",
    "revenue_churn_rate",
    "arpa",
    "ltv",
    "cac",
    "cac_payback_months",
    "quick_ratio",
    "dau_mau",
)
INVESTOR_REPORT = (
    *EXECUTIVE_SUMMARY,
    "new",
    "expansion",
    "contraction",
    "churn",
    "reactivation",
    "new_customers",
    "churned_customers",
)
EXECUTIVE_TILES = (
    "mrr",
    "arr",
    "customers",
    "mrr_growth_rate",
    "nrr_12m",
    "logo_churn_rate",
    "arpa",
    "ltv",
    "quick_ratio",
    "cac",
)


def pick(row: Mapping[str, Any] | None, keys: tuple[str, ...]) -> dict[str, Any] | None:
    """A month's row cut to ``keys``, with its month; None for no row."""
    if row is None:
        return None
    return {"month": row["month"], **{key: row[key] for key in keys}}


def display(key: str, value: float | int | None, currency: str) -> str:
    """A KPI's value written for people, in its unit ("–" when undefined)."""
    if value is None:
        return "–"
    unit = KPIS[key].unit
    if unit == "money":
        return money(value, currency)
    if unit == "percent":
        return percent(value)
    if unit == "count":
        return plain(value, 0)
    return plain(value)
