"""Point-in-time churn features from per-customer aggregates (pure: arrays in, arrays out).

The repository computes, for every customer at once and with nothing after the as-of moment,
the aggregates in ``Aggregates``; this module turns them into the model's feature matrix.
Windows: "recent" is the 30 days before the as-of moment, "prior" the 30 days before that,
"quarter" the 90 days before it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

RECENT_DAYS = 30
FORTNIGHT_DAYS = 14
QUARTER_DAYS = 90

# The seed's six behaviour fields, in the order the six-field model uses them.
SEED_FEATURES: tuple[str, ...] = (
    "days_since_last_login",
    "session_frequency",
    "avg_session_duration",
    "feature_usage",
    "support_tickets",
    "payment_issues",
)

BEHAVIOUR_FEATURES: tuple[str, ...] = (
    *SEED_FEATURES,
    "session_trend",
    "feature_trend",
    "open_tickets",
    "satisfaction",
    "tenure_days",
    "mrr",
    "mrr_change_90d",
    "plan_changes_90d",
    "company_size",
    "annual_revenue",
    "session_trend_14d",
    "unhappy_tickets",
    "payment_issues_30d",
)

ATTRIBUTE_PREFIX = "attr:"

# What each feature means, for API answers and the docs.
DESCRIPTIONS: dict[str, str] = {
    "days_since_last_login": "days since the last login or session (tenure if none)",
    "session_frequency": "sessions per week over the last 30 days",
    "avg_session_duration": "average session length in minutes over the last 30 days",
    "feature_usage": "distinct features used in the last 30 days",
    "support_tickets": "support tickets opened in the last 90 days",
    "payment_issues": "failed payments in the last 90 days",
    "session_trend": "log change in sessions, last 30 days against the 30 before",
    "feature_trend": "change in distinct features used, last 30 days against the 30 before",
    "open_tickets": "tickets open at the as-of moment",
    "satisfaction": "mean ticket satisfaction (1-5) over the last 90 days",
    "tenure_days": "days since signup",
    "mrr": "monthly recurring revenue after discounts, major units",
    "mrr_change_90d": "relative MRR change against 90 days earlier",
    "plan_changes_90d": "subscriptions started in the last 90 days after the first one",
    "session_trend_14d": "log change in sessions, last 14 days against the 14 before",
    "unhappy_tickets": "tickets opened in the last 90 days and rated 1 or 2 when closed",
    "payment_issues_30d": "failed payments in the last 30 days",
}


@dataclass
class EventAggregates:
    """Aggregates of activity, tickets and payments at one as-of moment, by customer index."""

    last_activity: FloatArray  # epoch seconds, NaN if none
    sessions_recent: FloatArray
    sessions_prior: FloatArray
    session_seconds_recent: FloatArray
    features_recent: FloatArray
    features_prior: FloatArray
    tickets_quarter: FloatArray
    open_tickets: FloatArray
    satisfaction_quarter: FloatArray
    failed_payments_quarter: FloatArray
    sessions_fortnight: FloatArray
    sessions_fortnight_prior: FloatArray
    unhappy_tickets_quarter: FloatArray
    failed_payments_recent: FloatArray


@dataclass
class Aggregates:
    """Per-customer aggregates at one as-of moment; NaN where a customer has no such data:
    the events' (read by the repository) with what the subscriptions and the customer record
    say then."""

    events: EventAggregates
    tenure_days: FloatArray
    last_activity_age_days: FloatArray
    mrr_minor: FloatArray
    mrr_minor_quarter_ago: FloatArray
    starts_quarter: FloatArray
    company_size: FloatArray
    annual_revenue_minor: FloatArray
    attributes: dict[str, FloatArray] = field(default_factory=dict)


def feature_names(attribute_keys: Sequence[str]) -> list[str]:
    return [*BEHAVIOUR_FEATURES, *(ATTRIBUTE_PREFIX + k for k in attribute_keys)]


def feature_matrix(agg: Aggregates, attribute_keys: Sequence[str]) -> FloatArray:
    """The full feature matrix (rows = customers, columns = ``feature_names(attribute_keys)``)."""
    n = len(agg.tenure_days)
    no_activity = np.isnan(agg.last_activity_age_days)
    days_since = np.where(no_activity, agg.tenure_days, agg.last_activity_age_days)
    sessions = np.nan_to_num(agg.events.sessions_recent)
    prior_sessions = np.nan_to_num(agg.events.sessions_prior)
    seconds = np.nan_to_num(agg.events.session_seconds_recent)
    avg_minutes = np.divide(
        seconds / 60.0, sessions, out=np.zeros(n, dtype=np.float64), where=sessions > 0
    )
    features_recent = np.nan_to_num(agg.events.features_recent)
    mrr = np.nan_to_num(agg.mrr_minor) / 100.0
    mrr_before = np.nan_to_num(agg.mrr_minor_quarter_ago) / 100.0
    mrr_change = np.divide(
        mrr - mrr_before,
        mrr_before,
        out=np.where(mrr > 0, 1.0, 0.0),
        where=mrr_before > 0,
    )
    columns: list[FloatArray] = [
        days_since,
        sessions * 7.0 / RECENT_DAYS,
        avg_minutes,
        features_recent,
        np.nan_to_num(agg.events.tickets_quarter),
        np.nan_to_num(agg.events.failed_payments_quarter),
        np.log1p(sessions) - np.log1p(prior_sessions),
        features_recent - np.nan_to_num(agg.events.features_prior),
        np.nan_to_num(agg.events.open_tickets),
        agg.events.satisfaction_quarter,
        agg.tenure_days,
        mrr,
        mrr_change,
        np.maximum(np.nan_to_num(agg.starts_quarter) - 1.0, 0.0),
        agg.company_size,
        agg.annual_revenue_minor / 100.0,
        np.log1p(np.nan_to_num(agg.events.sessions_fortnight))
        - np.log1p(np.nan_to_num(agg.events.sessions_fortnight_prior)),
        np.nan_to_num(agg.events.unhappy_tickets_quarter),
        np.nan_to_num(agg.events.failed_payments_recent),
    ]
    for key in attribute_keys:
        columns.append(agg.attributes.get(key, np.full(n, np.nan)))
    if not columns:
        return np.zeros((n, 0))
    return np.column_stack(columns).astype(np.float64)


def numeric_attribute_keys(
    attributes: Sequence[Mapping[str, object]], min_share: float = 0.5, limit: int = 50
) -> list[str]:
    """Attribute keys holding a number (or boolean) for at least ``min_share`` of customers."""
    counts: dict[str, int] = {}
    for attrs in attributes:
        for key, value in attrs.items():
            if _as_number(value) is not None:
                counts[key] = counts.get(key, 0) + 1
    needed = max(1, int(np.ceil(min_share * len(attributes))))
    keys = sorted(k for k, c in counts.items() if c >= needed)
    return keys[:limit]


def attribute_columns(
    attributes: Sequence[Mapping[str, object]], keys: Sequence[str]
) -> dict[str, FloatArray]:
    out: dict[str, FloatArray] = {}
    for key in keys:
        values = [_as_number(a.get(key)) for a in attributes]
        out[key] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return out


def _as_number(value: object) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        number = float(value)
        return number if np.isfinite(number) else None
    return None
