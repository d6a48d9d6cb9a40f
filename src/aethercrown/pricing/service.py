"""Pricing orchestration: the tenant's catalog, quotes by the seed formula, tier
recommendations, upsell analysis and invoice previews. Never commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.orm import Session

from aethercrown.clock import utcnow
from aethercrown.core.errors import InvalidInput, NotFound, field_error
from aethercrown.core.ledger import audit, record_decision
from aethercrown.metering import service as metering
from aethercrown.metering.repository import ActivityRepository
from aethercrown.pricing import formula, schemas
from aethercrown.pricing.models import PricePlan
from aethercrown.pricing.repository import FactorRepository, PlanRepository

MODEL_VERSION = "seed-formula-1"


def tiers(session: Session, tenant_id: uuid.UUID) -> schemas.TiersOut:
    plans = PlanRepository(session, tenant_id).ensure()
    factors = FactorRepository(session, tenant_id).ensure()
    return schemas.TiersOut(
        plans=[schemas.PlanOut.model_validate(p) for p in plans], factors=dict(factors.tables)
    )


def replace_tiers(
    session: Session, tenant_id: uuid.UUID, body: schemas.TiersPut, actor: str
) -> schemas.TiersOut:
    repo = PlanRepository(session, tenant_id)
    existing = {p.slug: p for p in repo.ensure()}
    for slug, plan in existing.items():
        if slug not in {p.slug for p in body.plans}:
            session.delete(plan)
    for item in body.plans:
        values = item.model_dump()
        values["overage"] = {k: v for k, v in values["overage"].items()}
        found = existing.get(item.slug)
        if found is None:
            repo.add(PricePlan(**values))
        else:
            for name, value in values.items():
                setattr(found, name, value)
    if body.factors is not None:
        FactorRepository(session, tenant_id).ensure().tables = _json(body.factors.model_dump())
    session.flush()
    audit(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="pricing.tiers.replace",
        target_type="price_plans",
        target_id=tenant_id,
        details=body.model_dump(mode="json"),
    )
    return tiers(session, tenant_id)


def patch_tiers(
    session: Session, tenant_id: uuid.UUID, body: schemas.TiersPatch, actor: str
) -> schemas.TiersOut:
    repo = PlanRepository(session, tenant_id)
    existing = {p.slug: p for p in repo.ensure()}
    for i, item in enumerate(body.plans):
        values = item.model_dump(exclude_none=True, exclude={"slug"})
        plan = existing.get(item.slug)
        if plan is None:
            missing = [f for f in ("name", "rank", "monthly_price") if f not in values]
            if missing:
                raise InvalidInput(
                    f"A new plan {item.slug} needs {', '.join(missing)}",
                    [field_error(["plans", i, f], "required for a new plan") for f in missing],
                )
            repo.add(PricePlan(slug=item.slug, currency="USD", capacities={}, overage={}, **values))
        else:
            for name, value in values.items():
                setattr(plan, name, value)
    if body.factors is not None:
        row = FactorRepository(session, tenant_id).ensure()
        merged = {**row.tables, **body.factors.model_dump(exclude_none=True)}
        try:
            row.tables = _json(schemas.FactorTables.model_validate(merged).model_dump())
        except ValueError as exc:
            raise InvalidInput(str(exc), [field_error(["factors"], str(exc))]) from exc
    session.flush()
    audit(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="pricing.tiers.patch",
        target_type="price_plans",
        target_id=tenant_id,
        details=body.model_dump(mode="json", exclude_none=True),
    )
    return tiers(session, tenant_id)


def _json(value: Any) -> Any:

    return orjson.loads(orjson.dumps(value))


def _plan_by_slug(session: Session, tenant_id: uuid.UUID, slug: str) -> PricePlan:
    for plan in PlanRepository(session, tenant_id).ensure():
        if plan.slug == slug:
            return plan
    raise InvalidInput(f"Unknown plan {slug}", [field_error(["plan"], f"unknown plan {slug!r}")])


def engagement(
    session: Session, tenant_id: uuid.UUID, customer_id: uuid.UUID, signup: Any, now: datetime
) -> dict[str, float]:
    """Activity rate and feature adoption over the last 30 days, tenure in whole months."""
    since = now - timedelta(days=30)
    activity = ActivityRepository(session, tenant_id)
    active_days = activity.customer_active_days(customer_id, since)
    all_features = activity.customer_features_used(since)
    used = activity.customer_features_used(since, customer_id)
    months = (now.year - signup.year) * 12 + now.month - signup.month - (now.day < signup.day)
    return {
        "activity_rate": min(active_days / 30, 1.0),
        "feature_adoption": len(used) / len(all_features) if all_features else 0.0,
        "tenure_months": float(max(months, 0)),
    }


@dataclass
class QuoteInputs:
    """What a quote is computed from: the customer's own figures, overridden by the request's."""

    plan: PricePlan | None = None
    customer: str | None = None
    usage: dict[str, float] = field(default_factory=dict)
    enterprise: dict[str, float | None] = field(
        default_factory=lambda: {"company_size": None, "annual_revenue": None}
    )
    engaged: dict[str, float | None] = field(
        default_factory=lambda: {
            "activity_rate": None,
            "feature_adoption": None,
            "tenure_months": None,
        }
    )


def calculate(
    session: Session,
    tenant_id: uuid.UUID,
    body: schemas.QuoteRequest,
    actor: str,
    now: datetime | None = None,
) -> schemas.QuoteOut:
    """Price a plan by the seed formula; figures not given come from the customer's data."""
    now = now or utcnow()
    plans = PlanRepository(session, tenant_id).ensure()
    tables = FactorRepository(session, tenant_id).ensure().tables
    given = _quote_inputs(session, tenant_id, body, now)
    plan = given.plan or plans[0]

    def bp(value: float | None) -> float | None:
        return None if value is None else round(value * 10_000)

    engagement_inputs = {
        "activity_rate_bp": bp(given.engaged["activity_rate"]),
        "tenure_months": given.engaged["tenure_months"],
        "feature_adoption_bp": bp(given.engaged["feature_adoption"]),
    }
    q = formula.quote(plan.monthly_price, given.usage, given.enterprise, engagement_inputs, tables)
    inputs = {"plan": plan.slug, "usage": given.usage, **given.enterprise, **engagement_inputs}
    decision = record_decision(
        session,
        tenant_id=tenant_id,
        kind="price_quote",
        subject_type="customer",
        subject_id=given.customer or "-",
        inputs=inputs,
        output={"plan": plan.slug, "final_price": q.final_price, "currency": plan.currency},
        model="pricing.seed_formula",
        model_version=MODEL_VERSION,
        predicted_value=float(q.final_price),
        actor=actor,
    )
    session.flush()
    return schemas.QuoteOut(
        plan=plan.slug,
        currency=plan.currency,
        customer=given.customer,
        base_price=q.base_price,
        usage_multiplier_bp=q.usage_multiplier_bp,
        enterprise_multiplier_bp=q.enterprise_multiplier_bp,
        engagement_discount_bp=q.engagement_discount_bp,
        final_price=q.final_price,
        inputs=inputs,
        lines=[schemas.QuoteLineOut(**vars(line)) for line in q.lines],
        decision_id=str(decision.id),
    )


def _quote_inputs(
    session: Session, tenant_id: uuid.UUID, body: schemas.QuoteRequest, now: datetime
) -> QuoteInputs:
    given = QuoteInputs(customer=body.customer)
    if body.customer is not None:
        customer = metering.resolve_customer(session, tenant_id, body.customer)
        given.customer = customer.external_id
        current = metering.customer_usage(
            session, tenant_id, [(customer.id, customer.external_id)], now
        )[0]
        given.usage = current.projected()
        given.plan = current.plan
        given.enterprise = {
            "company_size": customer.company_size,
            "annual_revenue": customer.annual_revenue,
        }
        given.engaged = dict(engagement(session, tenant_id, customer.id, customer.signup_date, now))
    if body.plan is not None:
        given.plan = _plan_by_slug(session, tenant_id, body.plan)
    if body.usage is not None:
        given.usage = dict(body.usage)
    for name in ("company_size", "annual_revenue"):
        if getattr(body, name) is not None:
            given.enterprise[name] = float(getattr(body, name))
    for name in ("activity_rate", "feature_adoption", "tenure_months"):
        if getattr(body, name) is not None:
            given.engaged[name] = float(getattr(body, name))
    return given


def _cost_out(cost: formula.PlanCost) -> schemas.PlanCostOut:
    return schemas.PlanCostOut(
        slug=cost.slug,
        name=cost.name,
        rank=cost.rank,
        base=cost.base,
        overage=[schemas.OverageOut(**vars(o)) for o in cost.overage],
        overage_total=sum(o.amount for o in cost.overage),
        total=cost.total,
        covers=cost.covers,
    )


def recommend_tier(
    session: Session,
    tenant_id: uuid.UUID,
    body: schemas.RecommendRequest,
    now: datetime | None = None,
) -> schemas.RecommendOut:
    now = now or utcnow()
    plans = PlanRepository(session, tenant_id).ensure()
    current_plan: PricePlan | None = None
    usage: dict[str, float] = {}
    interval: dict[str, list[float]] | None = None
    named = body.customer
    if body.customer is not None:
        customer = metering.resolve_customer(session, tenant_id, body.customer)
        named = customer.external_id
        current = metering.customer_usage(
            session, tenant_id, [(customer.id, customer.external_id)], now
        )[0]
        # A tier is compared on expected cost, so on the point projection; its interval is
        # shown beside it (an upsell, a sales action, acts on the low end instead).
        usage, current_plan = current.projected(), current.plan
        low, high = current.projected_low(), current.projected_high()
        interval = {m: [round(low[m], 6), round(high[m], 6)] for m in usage}
    if body.usage is not None:
        usage = dict(body.usage)
        interval = None
    recommended, costs, cheapest = formula.recommend([metering.plan_dict(p) for p in plans], usage)
    current_cost = next((c for c in costs if current_plan and c.slug == current_plan.slug), None)
    if recommended.covers:
        reason = (
            f"{recommended.name} is the cheapest plan whose capacities cover the "
            f"projected usage ({recommended.base} a month)"
        )
    else:
        reason = (
            f"No plan covers the projected usage; {recommended.name} costs least "
            f"including overage ({recommended.total})"
        )
    if cheapest.slug != recommended.slug:
        reason += (
            f"; paying overage on {cheapest.name} would cost {cheapest.total}, "
            f"{recommended.total - cheapest.total} less, without headroom"
        )
    return schemas.RecommendOut(
        currency=plans[0].currency,
        customer=named,
        current_plan=current_plan.slug if current_plan else None,
        usage={k: round(v, 6) for k, v in usage.items()},
        usage_interval=interval,
        recommended=_cost_out(recommended),
        cheapest_total=_cost_out(cheapest),
        comparison=[_cost_out(c) for c in costs],
        savings_vs_current=(current_cost.total - recommended.total) if current_cost else None,
        reason=reason,
    )


def upsell_analyze(session: Session, tenant_id: uuid.UUID, customers: list[str] | None) -> Any:
    return metering.analyse_upsell(session, tenant_id, customers)


def invoice_preview(
    session: Session, tenant_id: uuid.UUID, external_id: str, now: datetime | None = None
) -> schemas.InvoicePreviewOut:
    """This period's invoice so far: the plan's base price plus overage on usage to date, and
    the same on the projection to the period's end."""
    now = now or utcnow()
    customer = metering.resolve_customer(session, tenant_id, external_id)
    external_id = customer.external_id  # a UUID ref is answered by its own id
    current = metering.customer_usage(session, tenant_id, [(customer.id, external_id)], now)[0]
    if current.plan is None:
        raise NotFound("Active subscription on one of the tenant's plans for customer", external_id)
    plan = metering.plan_dict(current.plan)
    to_date = formula.plan_cost(plan, current.to_date())
    projected = formula.plan_cost(plan, current.projected())
    overage_total = sum(o.amount for o in to_date.overage)
    return schemas.InvoicePreviewOut(
        customer=external_id,
        plan=current.plan.slug,
        currency=current.plan.currency,
        period_start=current.period_start.isoformat(),
        period_end=current.period_end.isoformat(),
        base=to_date.base,
        overage=[schemas.OverageOut(**vars(o)) for o in to_date.overage],
        overage_total=overage_total,
        total_to_date=to_date.total,
        projected_overage_total=sum(o.amount for o in projected.overage),
        projected_total=projected.total,
    )
