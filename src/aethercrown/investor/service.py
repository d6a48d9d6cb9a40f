"""The investor view (seed section 8), built on the analytics series and the decision ledger.
Never commits."""

from __future__ import annotations

import math
import uuid
from typing import Any

from sqlalchemy.orm import Session

from aethercrown.analytics import forecast as fc
from aethercrown.analytics import metrics
from aethercrown.analytics import service as analytics
from aethercrown.analytics.kpis import INVESTOR_REPORT, INVESTOR_SERIES, pick
from aethercrown.clock import utcnow
from aethercrown.core import money
from aethercrown.core.errors import InvalidInput, NotFound, field_error
from aethercrown.core.ledger import audit
from aethercrown.core.models import Decision
from aethercrown.core.pagination import PageParams, paginate
from aethercrown.investor import report as rendering
from aethercrown.investor.schemas import FeedItem, FeedPage, PublicMetricsSettings
from aethercrown.tenants.service import get_tenant, tenant_by_slug

# Milestones are crossings of these levels (MRR in major currency units, customers in units).
MRR_MILESTONES = (1_000, 10_000, 50_000, 100_000, 500_000, 1_000_000, 5_000_000, 10_000_000)
CUSTOMER_MILESTONES = (10, 100, 500, 1_000, 5_000, 10_000, 50_000, 100_000)


def live(session: Session, tenant_id: uuid.UUID) -> dict[str, Any]:
    now = utcnow()
    payload = analytics.load_view(session, tenant_id, now=now)
    current = payload["series"][-1] if payload["series"] else None
    return {
        "as_of": now.isoformat(),
        "currency": payload["currency"],
        "mrr": current["mrr"] if current else 0,
        "arr": current["arr"] if current else 0,
        "customers": current["customers"] if current else 0,
        "mrr_growth_rate": current["mrr_growth_rate"] if current else None,
        # Distinct users in the 30 days before the snapshot's time (at most minutes old).
        "active_users_30d": payload["active_users_30d"],
        "ai_tasks_running": analytics.running_tasks(session, tenant_id),
        # From the health samples of the 30 days before the snapshot's time.
        "uptime": {
            "status": payload["health_30d"]["status"],
            "value": payload["health_30d"]["uptime"],
            "samples": payload["health_30d"]["samples"],
        },
    }


def activity_feed(
    session: Session, tenant_id: uuid.UUID, page: PageParams, kind: str | None
) -> FeedPage:
    stmt = analytics.decision_feed(session, tenant_id, kind)
    rows, cursor = paginate(session, stmt, Decision.id, page, parse=uuid.UUID, descending=True)
    return FeedPage(items=[_feed_item(d) for d in rows], next_cursor=cursor)


def _feed_item(decision: Decision) -> FeedItem:
    what = decision.kind.replace("_", " ").replace(".", " ")
    summary = f"{what} on a {decision.subject_type} by {decision.model} {decision.model_version}"
    if decision.outcome_at is not None:
        summary += "; outcome recorded"
    return FeedItem(
        id=decision.id,
        kind=decision.kind,
        subject_type=decision.subject_type,
        model=decision.model,
        model_version=decision.model_version,
        created_at=decision.created_at,
        outcome_recorded=decision.outcome_at is not None,
        outcome_at=decision.outcome_at,
        summary=summary,
    )


def kpis(session: Session, tenant_id: uuid.UUID, months: int) -> dict[str, Any]:
    now = utcnow()
    payload = analytics.load_view(session, tenant_id, now=now)
    end = metrics.month_of(now)
    start = metrics.add_months(end, -(months - 1))
    rows = analytics.months_in(payload, start, end)
    year_ago = metrics.add_months(end, -12)
    by_month = {row["month"]: row for row in payload["series"]}
    latest = rows[-1] if rows else None
    first = rows[0] if rows else None
    return {
        "as_of": payload["as_of"],
        "currency": payload["currency"],
        "start": start,
        "end": end,
        "months": [pick(row, INVESTOR_SERIES) for row in rows],
        "latest": pick(latest, (*INVESTOR_SERIES, "nrr_12m", "grr_12m")),
        "mrr_cmgr": (
            metrics.cmgr(first["mrr"], latest["mrr"], len(rows) - 1) if first and latest else None
        ),
        "mrr_yoy_growth": (
            metrics.rate(latest["mrr"] - by_month[year_ago]["mrr"], by_month[year_ago]["mrr"])
            if latest and year_ago in by_month
            else None
        ),
        "forecasts": payload["forecasts"],
    }


# ---------------------------------------------------------------------------------------------
# Monthly report


def validate_month(month: str) -> None:
    try:
        metrics.parse_month(month)
    except ValueError as exc:
        raise InvalidInput("Malformed month", [field_error(["month"], str(exc))]) from exc


def last_complete_month() -> str:
    return metrics.add_months(metrics.month_of(utcnow()), -1)


def monthly_report(session: Session, tenant_id: uuid.UUID, month: str | None) -> dict[str, Any]:
    now = utcnow()
    month = month or last_complete_month()
    if month > metrics.month_of(now):
        raise InvalidInput(
            "The report month is in the future", [field_error(["month"], "must not be after now")]
        )
    tenant = get_tenant(session, tenant_id)
    payload = analytics.load_view(session, tenant_id, now=now)
    currency = payload["currency"]
    history = [row for row in payload["series"] if row["month"] <= month]
    row = history[-1] if history and history[-1]["month"] == month else None
    previous = history[-2] if row is not None and len(history) > 1 else None
    trend = (
        [
            {k: r[k] for k in ("month", "mrr", "customers", *metrics.MOVEMENTS)}
            for r in history[-12:]
        ]
        if row is not None
        else []
    )
    forecast: dict[str, Any] | None = None
    if row is not None:
        predicted = fc.damped_trend([float(r["mrr"]) for r in history], 3)
        forecast = {
            "months": [metrics.add_months(month, h) for h in (1, 2, 3)],
            "mean": [round(v) for v in predicted.mean],
            "lower": [None if v is None else round(v) for v in predicted.lower],
            "upper": [None if v is None else round(v) for v in predicted.upper],
            "level": predicted.level,
            "model": predicted.model,
        }
    since, until = analytics.month_bounds(month, month)
    decisions = analytics.decision_counts_by_kind(session, tenant_id, since, until)
    return {
        "tenant": tenant.name if tenant else str(tenant_id),
        "month": month,
        "currency": currency,
        "generated_at": now.isoformat(timespec="seconds"),
        "figures": pick(row, INVESTOR_REPORT),
        "previous": {k: previous[k] for k in ("month", "mrr", "customers")} if previous else None,
        "highlights": _highlights(row, previous, currency) if row else [],
        "trend": trend,
        "forecast": forecast,
        "decisions": [{"kind": k, "decisions": n, "with_outcome": o} for k, n, o in decisions],
    }


def _highlights(row: dict[str, Any], previous: dict[str, Any] | None, currency: str) -> list[str]:
    out = [
        f"MRR {money.money(row['mrr'], currency)} "
        f"(ARR {money.money(row['arr'], currency)}) from {row['customers']} paying customers."
    ]
    if previous is not None and row["mrr_growth_rate"] is not None:
        direction = "up" if row["mrr"] >= previous["mrr"] else "down"
        out.append(
            f"MRR {direction} {rendering.percent(abs(row['mrr_growth_rate']))} on "
            f"{previous['month']}: net new {money.money(row['net_new_mrr'], currency)}."
        )
    out.append(
        f"{row['new_customers']} new, {row['reactivated_customers']} reactivated and "
        f"{row['churned_customers']} churned customers."
    )
    if row["quick_ratio"] is not None:
        out.append(f"Quick ratio {row['quick_ratio']:.2f}.")
    return out


# ---------------------------------------------------------------------------------------------
# Public metrics


def public_settings(session: Session, tenant_id: uuid.UUID) -> PublicMetricsSettings:
    tenant = get_tenant(session, tenant_id)
    if tenant is None:
        raise NotFound("Tenant", tenant_id)
    return PublicMetricsSettings.model_validate(tenant.public_metrics or {})


def set_public_settings(
    session: Session, tenant_id: uuid.UUID, body: PublicMetricsSettings, actor: str
) -> PublicMetricsSettings:
    tenant = get_tenant(session, tenant_id)
    if tenant is None:
        raise NotFound("Tenant", tenant_id)
    tenant.public_metrics = body.model_dump(mode="json")
    audit(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="investor.public_metrics.set",
        target_type="tenant",
        target_id=tenant_id,
        details=tenant.public_metrics,
    )
    return body


def _round(value: float, step: float | None) -> float:
    if step is None:
        return value
    rounded = math.floor(value / step + 0.5) * step
    return int(rounded) if float(step).is_integer() else round(rounded, 6)


def public_metrics(session: Session, slug: str) -> dict[str, Any]:
    """The figures a tenant chose to publish, rounded as it chose; 404 alike for an unknown
    tenant and one that has not opted in, so the endpoint does not reveal which tenants exist."""
    tenant = tenant_by_slug(session, slug)
    settings = PublicMetricsSettings.model_validate(tenant.public_metrics or {}) if tenant else None
    if tenant is None or settings is None or not settings.enabled or not settings.figures:
        raise NotFound("Public metrics for", slug)
    now = utcnow()
    payload = analytics.load_view(session, tenant.id, now=now)
    current = payload["series"][-1] if payload["series"] else None
    currency = payload["currency"]
    figures: dict[str, Any] = {}
    for name, rule in settings.figures.items():
        step = rule.round_to
        if name == "milestones":
            figures[name] = milestones(payload["series"], currency)
        elif current is None:
            figures[name] = None
        elif name in ("mrr", "arr", "customers"):
            figures[name] = _round(current[name], step)
        elif name == "active_users":
            figures[name] = _round(current["mau"], step)
        else:
            value = current[name]
            figures[name] = None if value is None else _round(value * 100, step)
    return {
        "tenant": tenant.slug,
        "name": tenant.name,
        "currency": currency,
        "month": current["month"] if current else None,
        "as_of": payload["as_of"],
        "figures": figures,
        "units": {
            "mrr": "minor currency units",
            "arr": "minor currency units",
            "mrr_growth_rate": "percent",
            "nrr_12m": "percent",
        },
    }


def milestones(series: list[dict[str, Any]], currency: str) -> list[dict[str, Any]]:
    """The first month MRR and paying customers reached each milestone level."""
    out: list[dict[str, Any]] = []
    for level in MRR_MILESTONES:
        threshold = money.from_major(level, currency)
        month = next((r["month"] for r in series if r["mrr"] >= threshold), None)
        if month is not None:
            out.append({"metric": "mrr", "level": threshold, "month": month})
    for level in CUSTOMER_MILESTONES:
        month = next((r["month"] for r in series if r["customers"] >= level), None)
        if month is not None:
            out.append({"metric": "customers", "level": level, "month": month})
    return out
