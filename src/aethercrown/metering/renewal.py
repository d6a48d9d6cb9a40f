"""Renewal odds orchestration: build training outcomes from subscription history, train and
store the model, score a customer with its drivers and next renewal date. Never commits."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy.orm import Session

from aethercrown.clock import utcnow
from aethercrown.core.errors import ProblemError
from aethercrown.core.ledger import record_decision, record_outcome
from aethercrown.data.models import Subscription
from aethercrown.metering import renewal_model, schemas
from aethercrown.metering.models import RenewalModel
from aethercrown.metering.repository import (
    ActivityRepository,
    CustomerRepository,
    DailyRepository,
    DecisionRepository,
    PaymentRepository,
    RenewalModelRepository,
    SubscriptionRepository,
    TicketRepository,
)
from aethercrown.metering.service import resolve_customer

MODEL_MAX_AGE = timedelta(hours=24)
# An ended subscription followed within this long by another one is a plan change, not a lapse.
CONTINUATION_GAP = timedelta(days=2)
# The most recent renewals kept per subscription, so long-lived accounts do not dominate.
MAX_POINTS_PER_SUBSCRIPTION = 12


def renewal_points(sub: Subscription, until: datetime) -> list[datetime]:
    """The subscription's renewal dates from its first up to ``until`` (exclusive)."""
    step = 12 if sub.interval == "year" else 1
    points: list[datetime] = []
    k = 1
    while True:
        point = sub.started_at + relativedelta(months=step * k)
        if point >= until:
            return points
        points.append(point)
        k += 1


def next_renewal(sub: Subscription, now: datetime) -> date:
    step = 12 if sub.interval == "year" else 1
    k = 1
    while True:
        point = sub.started_at + relativedelta(months=step * k)
        if point > now:
            return point.date()
        k += 1


def histories(
    session: Session, tenant_id: uuid.UUID, customer_id: uuid.UUID | None = None
) -> dict[uuid.UUID, renewal_model.History]:
    """Every customer's dated signals (or one customer's), loaded in a few grouped queries."""
    activity: dict[uuid.UUID, list[tuple[date, int]]] = defaultdict(list)
    for cid, day, n in ActivityRepository(session, tenant_id).active_days(None, customer_id):
        activity[cid].append((day, n))
    usage: dict[uuid.UUID, list[tuple[date, int]]] = defaultdict(list)
    for cid, day, n in DailyRepository(session, tenant_id).usage_events_by_day(customer_id):
        usage[cid].append((day, n))
    tickets: dict[uuid.UUID, list[datetime]] = defaultdict(list)
    for cid, at in TicketRepository(session, tenant_id).opened(customer_id):
        tickets[cid].append(at)
    failed: dict[uuid.UUID, list[datetime]] = defaultdict(list)
    for cid, at in PaymentRepository(session, tenant_id).failed(customer_id):
        failed[cid].append(at)
    customers = CustomerRepository(session, tenant_id)
    rows = customers.all_rows() if customer_id is None else [customers.get_or_404(customer_id)]
    return {
        c.id: renewal_model.History.build(
            c.signup_date, activity[c.id], usage[c.id], tickets[c.id], failed[c.id]
        )
        for c in rows
    }


def outcomes(
    subscriptions: Sequence[Subscription], now: datetime
) -> list[tuple[uuid.UUID, datetime, int]]:
    """(customer, moment, renewed?) for every renewal decision already made.

    A live subscription renewed at each past renewal date; an ended one renewed at those before
    its end and lapsed at its end, unless the customer started another subscription by then
    (an upgrade or downgrade is a continuation)."""
    by_customer: dict[uuid.UUID, list[Subscription]] = defaultdict(list)
    for s in subscriptions:
        by_customer[s.customer_id].append(s)
    out: list[tuple[uuid.UUID, datetime, int]] = []
    for cid, subs in by_customer.items():
        for s in subs:
            end = s.ended_at if s.ended_at is not None and s.ended_at <= now else None
            points = renewal_points(s, end or now)[-MAX_POINTS_PER_SUBSCRIPTION:]
            out.extend((cid, p, 1) for p in points)
            if end is None:
                continue
            continued = any(
                o is not s
                and o.started_at <= end + CONTINUATION_GAP
                and (o.ended_at is None or o.ended_at > end)
                for o in subs
            )
            if not continued:
                out.append((cid, end, 0))
    return out


def training_set(
    session: Session, tenant_id: uuid.UUID, now: datetime
) -> tuple[list[list[float]], list[int], list[tuple[uuid.UUID, datetime]]]:
    history = histories(session, tenant_id)
    subs = SubscriptionRepository(session, tenant_id).all_rows()
    x, y, keys = [], [], []
    for cid, at, label in outcomes(subs, now):
        if cid in history:
            x.append(renewal_model.features_at(history[cid], at))
            y.append(label)
            keys.append((cid, at))
    return x, y, keys


def train_model(
    session: Session, tenant_id: uuid.UUID, now: datetime | None = None
) -> RenewalModel:
    now = now or utcnow()
    x, y, _ = training_set(session, tenant_id, now)
    try:
        fitted = renewal_model.train(x, y)
    except renewal_model.InsufficientHistory as exc:
        raise ProblemError(
            409, "insufficient-history", "Not enough renewal history", str(exc)
        ) from exc
    model = RenewalModelRepository(session, tenant_id).add(
        RenewalModel(
            version=renewal_model.VERSION,
            params=fitted["params"],
            metrics=fitted["metrics"],
            samples=len(y),
            trained_at=now,
        )
    )
    return model


def current_model(session: Session, tenant_id: uuid.UUID, now: datetime) -> RenewalModel:
    model = RenewalModelRepository(session, tenant_id).latest()
    if model is None or now - model.trained_at > MODEL_MAX_AGE:
        model = train_model(session, tenant_id, now)
    return model


def predict_for_customer(
    session: Session,
    tenant_id: uuid.UUID,
    external_id: str,
    actor: str,
    now: datetime | None = None,
) -> schemas.RenewalOut:
    now = now or utcnow()
    customer = resolve_customer(session, tenant_id, external_id)
    external_id = customer.external_id  # a UUID ref is answered by its own id
    subs = SubscriptionRepository(session, tenant_id).for_customer(customer.id)
    live = [s for s in subs if s.live_at(now)]
    if not live:
        raise ProblemError(
            409,
            "no-active-subscription",
            "Nothing to renew",
            f"{external_id} has no active subscription",
        )
    sub = live[-1]
    model = current_model(session, tenant_id, now)
    history = histories(session, tenant_id, customer.id)[customer.id]
    features = renewal_model.features_at(history, now)
    probability, contributions = renewal_model.predict(model.params, features)
    probability = round(probability, 6)
    drivers = sorted(
        (
            schemas.Driver(
                feature=name,
                value=round(value, 6),
                contribution=round(c, 6),
                direction="raises" if c >= 0 else "lowers",
            )
            for name, value, c in zip(renewal_model.FEATURES, features, contributions, strict=True)
        ),
        key=lambda d: -abs(d.contribution),
    )
    renewal_date = next_renewal(sub, now)
    decision = record_decision(
        session,
        tenant_id=tenant_id,
        kind="renewal_probability",
        subject_type="customer",
        subject_id=external_id,
        inputs=dict(zip(renewal_model.FEATURES, features, strict=True)),
        output={"probability": probability, "next_renewal_date": renewal_date.isoformat()},
        model="metering.renewal",
        model_version=f"{model.version}:{model.trained_at:%Y%m%dT%H%M%S}",
        predicted_value=probability,
        actor=actor,
    )
    return schemas.RenewalOut(
        customer=external_id,
        probability=probability,
        next_renewal_date=renewal_date,
        plan=sub.plan,
        drivers=drivers,
        model_version=model.version,
        model_trained_at=model.trained_at,
        model_metrics=dict(model.metrics),
        decision_id=decision.id,
    )


def record_renewal_outcomes(
    session: Session, tenant_id: uuid.UUID, now: datetime | None = None
) -> int:
    """Join each renewal score whose renewal date has passed with what happened: renewed (1)
    when a subscription of the customer was live just after that date, lapsed (0) otherwise."""
    now = now or utcnow()
    subs_by_customer: dict[str, list[Subscription]] = defaultdict(list)
    customers = CustomerRepository(session, tenant_id).external_ids(
        [s.customer_id for s in SubscriptionRepository(session, tenant_id).all_rows()]
    )
    for sub in SubscriptionRepository(session, tenant_id).all_rows():
        subs_by_customer[customers[sub.customer_id]].append(sub)
    joined = 0
    for decision in DecisionRepository(session, tenant_id).open_renewal_scores():
        due = date.fromisoformat(decision.output["next_renewal_date"])
        moment = datetime.combine(due, datetime.min.time(), tzinfo=now.tzinfo) + CONTINUATION_GAP
        if moment > now:
            continue
        renewed = any(s.live_at(moment) for s in subs_by_customer.get(decision.subject_id, []))
        record_outcome(
            decision,
            {"renewed": renewed, "checked_at": moment.isoformat()},
            1.0 if renewed else 0.0,
            at=now,
        )
        joined += 1
    return joined


def retrain_job(
    session: Session, tenant_id: uuid.UUID | None, period_start: datetime
) -> dict[str, Any]:
    assert tenant_id is not None
    joined = record_renewal_outcomes(session, tenant_id)
    try:
        model = train_model(session, tenant_id)
    except ProblemError as exc:
        return {"trained": False, "reason": exc.detail, "outcomes_recorded": joined}
    return {
        "trained": True,
        "model_id": str(model.id),
        "outcomes_recorded": joined,
        **model.metrics,
    }
