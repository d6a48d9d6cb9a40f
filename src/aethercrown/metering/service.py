"""Metering orchestration: ingest events, keep rollups, report, alert, analyse upsell.
Never commits: the request or job boundary does."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aethercrown.clock import utcnow
from aethercrown.core.errors import Conflict, InvalidInput, NotFound, field_error
from aethercrown.core.ledger import audit, record_decision
from aethercrown.core.limits import MAX_YEAR, MIN_YEAR, PERIOD_PATTERN
from aethercrown.core.numbers import plain
from aethercrown.core.pagination import PageParams, paginate
from aethercrown.data.models import Customer
from aethercrown.db.base import new_id
from aethercrown.metering import schemas, stats
from aethercrown.metering.models import Meter, MeteringSettings, UpsellCampaign, UsageAlert
from aethercrown.metering.repository import (
    AlertRepository,
    CampaignRepository,
    CustomerRepository,
    DailyRepository,
    FoldRepository,
    MeterRepository,
    SettingsRepository,
    SubscriptionRepository,
    UniqueValueRepository,
    UsageRepository,
)
from aethercrown.metering.repository import upsell_fingerprint as repository_upsell_fingerprint
from aethercrown.pricing import formula
from aethercrown.pricing.models import PricePlan
from aethercrown.pricing.repository import PlanRepository
from aethercrown.webhooks.service import enqueue_webhook

# Metrics every tenant has; a tenant adds its own meters next to them.
BUILTIN_METERS: dict[str, tuple[str, str]] = {
    "api_calls": ("sum", "call"),
    "storage_gb": ("max", "GB"),
    "compute_units": ("sum", "unit"),
    "seats": ("max", "seat"),
}
# Clocks drift: an event may be this far in the future of the server's clock.
FUTURE_SKEW = timedelta(minutes=5)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
BP = 10_000


@dataclass(frozen=True)
class MeterDef:
    name: str
    aggregation: str
    unit: str
    unique_property: str | None = None
    description: str | None = None
    builtin: bool = False


def meter_catalog(session: Session, tenant_id: uuid.UUID) -> dict[str, MeterDef]:
    out = {
        name: MeterDef(name, agg, unit, builtin=True)
        for name, (agg, unit) in BUILTIN_METERS.items()
    }
    for name, aggregation, unit, unique_property, description in MeterRepository(
        session, tenant_id
    ).definitions():
        out[name] = MeterDef(name, aggregation, unit, unique_property, description)
    return out


def list_meters(session: Session, tenant_id: uuid.UUID) -> list[schemas.MeterOut]:
    return [
        schemas.MeterOut(**vars(m))
        for m in sorted(meter_catalog(session, tenant_id).values(), key=lambda m: m.name)
    ]


def create_meter(
    session: Session, tenant_id: uuid.UUID, body: schemas.MeterIn, actor: str
) -> schemas.MeterOut:
    repo = MeterRepository(session, tenant_id)
    if body.name in BUILTIN_METERS or repo.by_name(body.name) is not None:
        raise Conflict(f"A meter named {body.name} already exists", slug="meter-exists")
    meter = repo.add(Meter(**body.model_dump()))
    session.flush()
    audit(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="meter.create",
        target_type="meter",
        target_id=meter.id,
        details=body.model_dump(),
    )
    return schemas.MeterOut(**body.model_dump(), builtin=False)


def current_settings(session: Session, tenant_id: uuid.UUID) -> MeteringSettings:
    row = SettingsRepository(session, tenant_id).current()
    if row is None:
        # Not stored until changed: the defaults are the model's column defaults.
        row = MeteringSettings(
            tenant_id=tenant_id,
            warning_bp=8000,
            critical_bp=9500,
            upsell_growth_bp=5000,
            upsell_high_usage_bp=8500,
            upsell_sustained_days=7,
        )
    return row


def update_settings(
    session: Session, tenant_id: uuid.UUID, body: schemas.SettingsIn, actor: str
) -> MeteringSettings:
    repo = SettingsRepository(session, tenant_id)
    row = repo.current()
    if row is None:
        row = repo.add(current_settings(session, tenant_id))
    for name, value in body.model_dump(exclude_none=True).items():
        setattr(row, name, value)
    if row.warning_bp >= row.critical_bp:
        raise InvalidInput(
            "The warning threshold must be below the critical one",
            [field_error(["warning_bp"], "must be below critical_bp")],
        )
    audit(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="metering.settings",
        target_type="metering_settings",
        target_id=tenant_id,
        details=body.model_dump(exclude_none=True),
    )
    session.flush()
    return row


# --- ingestion -------------------------------------------------------------------------------


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is UTC:
        return ts
    offset = ts.utcoffset()
    if offset is None or not offset:  # naive (read as UTC) or already UTC: no conversion
        return ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


def _event_row(
    tenant_id: uuid.UUID,
    event_id: str,
    customer_id: uuid.UUID,
    metric: str,
    value: float,
    occurred_at: datetime,
    properties: Mapping[str, Any],
    received_at: datetime,
) -> dict[str, Any]:
    """A usage_events row as UsageRepository.insert_events takes it."""
    return {
        "tenant_id": tenant_id,
        "event_id": event_id,
        "customer_id": customer_id,
        "metric": metric,
        "value": value,
        "occurred_at": occurred_at,
        "properties": properties,
        "received_at": received_at,
    }


def track(
    session: Session,
    tenant_id: uuid.UUID,
    events: Sequence[schemas.UsageEventIn],
    *,
    batch: bool = True,
    now: datetime | None = None,
) -> schemas.TrackOut:
    """Store events once each, all or nothing. Acknowledged events are durable; the folder
    adds them to the rollups and checks alerts right after (see fold_pending)."""
    now = now or utcnow()
    meters = meter_catalog(session, tenant_id)
    customers = CustomerRepository(session, tenant_id).ids_by_external_id(
        list({e.customer for e in events})
    )
    errors: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    batch_duplicates: list[str] = []
    latest_allowed = now + FUTURE_SKEW

    def loc(i: int, name: str) -> list[str | int]:
        return ["events", i, name] if batch else [name]

    for i, event in enumerate(events):
        meter = meters.get(event.metric)
        customer_id = customers.get(event.customer)
        ts = _utc(event.timestamp) if event.timestamp is not None else now
        if meter is None:
            errors.append(field_error(loc(i, "metric"), f"unknown metric {event.metric!r}"))
        if customer_id is None:
            errors.append(field_error(loc(i, "customer"), f"unknown customer {event.customer!r}"))
        if ts > latest_allowed:
            errors.append(field_error(loc(i, "timestamp"), "is in the future"))
        elif ts < EARLIEST:
            errors.append(field_error(loc(i, "timestamp"), "is before 2000-01-01"))
        if meter is not None and meter.aggregation in stats.CUMULATIVE and event.value < 0:
            errors.append(field_error(loc(i, "value"), f"{meter.name} counts: must be ≥ 0"))
        if (
            meter is not None
            and meter.unique_property
            and meter.unique_property not in event.properties
        ):
            errors.append(
                field_error(loc(i, "properties"), f"needs the property {meter.unique_property!r}")
            )
        if errors or customer_id is None:
            continue
        if event.id in seen:
            batch_duplicates.append(event.id)
            continue
        seen.add(event.id)
        rows.append(
            _event_row(
                tenant_id,
                event.id,
                customer_id,
                event.metric,
                event.value,
                ts,
                event.properties,
                now,
            )
        )
    if errors:
        raise InvalidInput(
            f"{len(errors)} problem(s) in the events; nothing was recorded", errors[:1000]
        )
    inserted = UsageRepository(session, tenant_id).insert_events(rows)
    return schemas.TrackOut(
        received=len(events),
        accepted=len(inserted),
        duplicates=[r["event_id"] for r in rows if r["event_id"] not in inserted]
        + batch_duplicates,
    )


def load_events(session: Session, tenant_id: uuid.UUID, events: Sequence[Mapping[str, Any]]) -> int:
    """Store events a trusted generator made (the demo company's), in the API's shape with
    ISO timestamps: the customer and metric are checked, the per-field checks of ``track``
    are not. Returns how many were new."""
    meters = meter_catalog(session, tenant_id)
    customers = CustomerRepository(session, tenant_id).ids_by_external_id(
        sorted({e["customer"] for e in events})
    )
    now = utcnow()
    rows = []
    for e in events:
        customer_id = customers.get(e["customer"])
        if customer_id is None or e["metric"] not in meters:
            raise InvalidInput(f"Event {e['id']!r} names an unknown customer or metric")
        occurred_at = _utc(datetime.fromisoformat(e["timestamp"]))
        rows.append(
            _event_row(
                tenant_id,
                e["id"],
                customer_id,
                e["metric"],
                float(e["value"]),
                occurred_at,
                e.get("properties") or {},
                now,
            )
        )
    return len(UsageRepository(session, tenant_id).insert_events(rows))


@dataclass(frozen=True)
class EventColumns:
    """Usage events column by column, as a trusted generator holds them (the demo company's):
    event i is ``(ids[i], customers[i], metrics[i], values[i], occurred_at[i])``. The customer
    is its external id; ``occurred_at`` is UTC, as numpy ``datetime64``."""

    ids: Sequence[str]
    customers: Sequence[str]
    metrics: Sequence[str]
    values: Sequence[float]
    occurred_at: Any  # NDArray[np.datetime64]

    def __len__(self) -> int:
        return len(self.ids)


def load_event_columns(session: Session, tenant_id: uuid.UUID, events: EventColumns) -> int:
    """``load_events`` for events held as columns: the customer and metric are checked, the
    rest trusted as generated; returns how many were new. Stores what ``load_events`` stores
    for the same events, without a dict, a parsed and a re-rendered timestamp per event (a
    third of a million of them in the demo company)."""
    meters = meter_catalog(session, tenant_id)
    customers = CustomerRepository(session, tenant_id).ids_by_external_id(
        sorted(set(events.customers))
    )
    unknown_customers = set(events.customers) - customers.keys()
    unknown_metrics = set(events.metrics) - meters.keys()
    if unknown_customers or unknown_metrics:
        first = next(
            event_id
            for event_id, customer, metric in zip(
                events.ids, events.customers, events.metrics, strict=True
            )
            if customer in unknown_customers or metric in unknown_metrics
        )
        raise InvalidInput(f"Event {first!r} names an unknown customer or metric")
    customer_ids = [customers[c] for c in events.customers]
    return UsageRepository(session, tenant_id).insert_event_columns(
        events.ids, customer_ids, events.metrics, events.values, events.occurred_at, utcnow()
    )


# --- folding stored events into the rollups -------------------------------------------------

FOLD_CHUNK = 50_000


def fold_pending(
    session: Session, *, limit: int = FOLD_CHUNK, now: datetime | None = None
) -> schemas.FoldOut:
    """Add up to ``limit`` stored but unfolded events, oldest first, to their tenants' daily
    rollups, fire the alerts they cross, and advance the fold cursor, all in the caller's
    transaction: committed together, so each event counts exactly once.

    Folding after the request is acknowledged, many batches at a time and aggregated by the
    database in one statement, is what makes ingestion fast: the events never travel back to
    Python, and a rollup row touched by many batches is written once per fold."""
    now = now or utcnow()
    folds = FoldRepository(session)
    after = folds.lock_cursor()
    bound = folds.safe_bound()
    if bound is None:  # a long transaction storing events is open: fold once it ends
        return schemas.FoldOut(
            events=0, tenants=0, alerts=0, last_event_id=after, caught_up=False, blocked=True
        )
    if bound <= after:
        return schemas.FoldOut(events=0, tenants=0, alerts=0, last_event_id=after, caught_up=True)
    upto = folds.window_end(after, bound, limit)
    events = folds.count_window(after, upto)
    period_start, _ = stats.period_bounds(now)
    tenants, touched = folds.fold_daily(after, upto, period_start)
    _fold_distinct_values(session, folds, after, upto)
    by_tenant: dict[uuid.UUID, set[tuple[uuid.UUID, str]]] = {t: set() for t in tenants}
    for tenant_id, customer_id, metric, _day in touched:
        by_tenant[tenant_id].add((customer_id, metric))
    fired = 0
    for tenant_id, pairs in sorted(by_tenant.items(), key=lambda kv: str(kv[0])):
        if pairs:
            meters = meter_catalog(session, tenant_id)
            fired += len(evaluate_alerts(session, tenant_id, sorted(pairs, key=str), meters, now))
    folds.advance(upto, now)
    return schemas.FoldOut(
        events=events,
        tenants=len(by_tenant),
        alerts=fired,
        last_event_id=upto,
        caught_up=upto == bound,
    )


def has_unfolded(session: Session, tenant_id: uuid.UUID) -> bool:
    folds = FoldRepository(session)
    return folds.tenant_has_pending(tenant_id, folds.last_folded())


def _fold_distinct_values(session: Session, folds: FoldRepository, after: int, upto: int) -> None:
    """Unique meters: record each (customer, metric, day)'s values not seen before, and add
    how many there were to the rollup's distinct count."""
    keyed = folds.unique_meters()
    if not keyed:
        return
    values: dict[uuid.UUID, dict[tuple[uuid.UUID, str, date, str], dict[str, Any]]] = {}
    for e in folds.window_events(after, upto, sorted(keyed, key=str)):
        prop = keyed[(e.tenant_id, e.metric)]
        if prop is not None and prop not in e.properties:
            continue  # track refuses these; an event stored before its meter existed
        key = str(e.properties[prop])[:200] if prop is not None else repr(float(e.value))
        day = e.occurred_at.date()
        values.setdefault(e.tenant_id, {})[(e.customer_id, e.metric, day, key)] = {
            "tenant_id": e.tenant_id,
            "customer_id": e.customer_id,
            "metric": e.metric,
            "day": day,
            "value_key": key,
        }
    added: dict[tuple[uuid.UUID, uuid.UUID, str, date], int] = {}
    for tenant_id, rows in values.items():
        ordered = [rows[k] for k in sorted(rows, key=str)]
        for cid, metric, day in UsageRepository(session, tenant_id).insert_unique_values(ordered):
            group = (tenant_id, cid, metric, stats_day(day))
            added[group] = added.get(group, 0) + 1
    folds.add_unique_counts(added)


def stats_day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


# --- plans and period totals ------------------------------------------------------------------


def plan_for(plans: Sequence[PricePlan], subscription_plan: str | None) -> PricePlan | None:
    """The tenant's plan a subscription's plan name refers to (slug or name, any case)."""
    if subscription_plan is None:
        return None
    wanted = subscription_plan.strip().lower()
    for plan in plans:
        if plan.slug == wanted or plan.name.lower() == wanted:
            return plan
    return None


def customer_plans(
    session: Session, tenant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID], at: datetime
) -> tuple[Sequence[PricePlan], dict[uuid.UUID, PricePlan]]:
    plans = PlanRepository(session, tenant_id).ensure()
    named = SubscriptionRepository(session, tenant_id).active_plans(customer_ids, at)
    out = {}
    for cid, name in named.items():
        plan = plan_for(plans, name)
        if plan is not None:
            out[cid] = plan
    return plans, out


def plan_names(
    session: Session, tenant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID], at: datetime
) -> dict[uuid.UUID, str]:
    """Each customer's current plan as the tenant names it (the subscription's own plan name
    when no plan of the tenant's matches it). Reads only: never seeds the default plans."""
    plans = PlanRepository(session, tenant_id).list()
    named = SubscriptionRepository(session, tenant_id).active_plans(customer_ids, at)
    out: dict[uuid.UUID, str] = {}
    for cid, name in named.items():
        if name is None:
            continue
        plan = plan_for(plans, name)
        out[cid] = plan.name if plan is not None else name
    return out


def period_totals(
    session: Session,
    tenant_id: uuid.UUID,
    pairs: Sequence[tuple[uuid.UUID, str]],
    meters: Mapping[str, MeterDef],
    start: date,
    end: date,
) -> dict[tuple[uuid.UUID, str], float]:
    """Each (customer, metric)'s aggregate over [start, end)."""
    if not pairs:
        return {}
    daily = DailyRepository(session, tenant_id)
    by_kind: dict[str, list[tuple[uuid.UUID, str]]] = {}
    for pair in pairs:
        by_kind.setdefault(meters[pair[1]].aggregation, []).append(pair)
    out: dict[tuple[uuid.UUID, str], float] = {}
    simple = by_kind.get("count", []) + by_kind.get("sum", []) + by_kind.get("max", [])
    if simple:
        sums = daily.period_sums(
            sorted({c for c, _ in simple}, key=str), sorted({m for _, m in simple}), start, end
        )
        index = {"count": 0, "sum": 1, "max": 2}
        for pair in simple:
            figures = sums.get(pair)
            out[pair] = float(figures[index[meters[pair[1]].aggregation]]) if figures else 0.0
    latest = by_kind.get("latest", [])
    if latest:
        rows = daily.daily(
            sorted({c for c, _ in latest}, key=str), start, end, sorted({m for _, m in latest})
        )
        for pair in latest:
            out[pair] = stats.combine("latest", rows.get(pair, []))
    unique = by_kind.get("unique", [])
    if unique:
        distinct = UniqueValueRepository(session, tenant_id).distinct_values(unique, start, end)
        for pair in unique:
            out[pair] = float(distinct.get(pair, 0))
    return out


@dataclass(frozen=True)
class CapacityUse:
    """One customer's use of one capped meter this billing period."""

    customer_id: uuid.UUID
    external_id: str
    name: str
    plan: str
    metric: str
    usage: float
    capacity: float

    @property
    def share(self) -> float:
        return self.usage / self.capacity


def capacity_use(session: Session, tenant_id: uuid.UUID, now: datetime) -> list[CapacityUse]:
    """Every customer on a live plan with a capacity, against each capped meter this period
    (usage 0 when nothing was used), the fullest first. Set-based: one query for the plans,
    one per aggregation kind for the totals, one for the names."""
    meters = meter_catalog(session, tenant_id)
    plans = PlanRepository(session, tenant_id).ensure()
    live = SubscriptionRepository(session, tenant_id).live_plans(now)
    plan_of: dict[uuid.UUID, PricePlan] = {}
    by_name: dict[str, PricePlan | None] = {}
    for cid, name in live.items():
        if name not in by_name:
            by_name[name] = plan_for(plans, name)
        plan = by_name[name]
        if plan is not None:
            plan_of[cid] = plan
    pairs = sorted(
        (
            (cid, metric)
            for cid, plan in plan_of.items()
            for metric, capacity in plan.capacities.items()
            if metric in meters and float(capacity or 0) > 0
        ),
        key=lambda p: (str(p[0]), p[1]),
    )
    start, end = stats.period_bounds(now)
    totals = period_totals(session, tenant_id, pairs, meters, start, end)
    names = customer_names(session, tenant_id, sorted({c for c, _ in pairs}, key=str))
    out = []
    for cid, metric in pairs:
        ref = names.get(cid)
        plan = plan_of[cid]
        out.append(
            CapacityUse(
                cid,
                ref.external_id if ref else str(cid),
                ref.name if ref else "",
                plan.slug,
                metric,
                totals.get((cid, metric), 0.0),
                float(plan.capacities[metric]),
            )
        )
    out.sort(key=lambda r: (-r.share, r.external_id, r.metric))
    return out


def evaluate_alerts(
    session: Session,
    tenant_id: uuid.UUID,
    pairs: Sequence[tuple[uuid.UUID, str]],
    meters: Mapping[str, MeterDef],
    now: datetime,
) -> list[uuid.UUID]:
    """Fire each threshold crossed this period that has not fired yet; a webhook per alert."""
    if not pairs:
        return []
    _, plan_of = customer_plans(session, tenant_id, sorted({c for c, _ in pairs}, key=str), now)
    capped = [
        (cid, metric)
        for cid, metric in pairs
        if cid in plan_of and float(plan_of[cid].capacities.get(metric, 0) or 0) > 0
    ]
    if not capped:
        return []
    settings = current_settings(session, tenant_id)
    start, end = stats.period_bounds(now)
    totals = period_totals(session, tenant_id, capped, meters, start, end)
    rows: list[dict[str, Any]] = []
    for (cid, metric), used in sorted(totals.items(), key=lambda kv: str(kv[0])):
        plan = plan_of[cid]
        capacity = float(plan.capacities[metric])
        for level, bp in (("warning", settings.warning_bp), ("critical", settings.critical_bp)):
            if used * BP >= capacity * bp:
                rows.append(
                    {
                        "id": new_id(),
                        "tenant_id": tenant_id,
                        "customer_id": cid,
                        "metric": metric,
                        "period_start": start,
                        "level": level,
                        "threshold_bp": bp,
                        "usage": used,
                        "capacity": capacity,
                        "plan": plan.slug,
                        "fired_at": now,
                    }
                )
    if not rows:
        return []
    alerts = AlertRepository(session, tenant_id)
    # Most crossings of a busy period have fired already: skip those before writing. The
    # insert still ignores conflicts, so a concurrent batch cannot fire one twice.
    fired_before = alerts.fired(sorted({r["customer_id"] for r in rows}, key=str), start)
    rows = [r for r in rows if (r["customer_id"], r["metric"], r["level"]) not in fired_before]
    new_ids = set(alerts.insert_new(rows))
    if not new_ids:
        return []
    external = CustomerRepository(session, tenant_id).external_ids(
        [r["customer_id"] for r in rows if r["id"] in new_ids]
    )
    fired = []
    for row in rows:
        if row["id"] not in new_ids:
            continue
        payload = _alert_payload(row, external[row["customer_id"]])
        delivery = enqueue_webhook(session, tenant_id, f"usage.alert.{row['level']}", payload)
        if delivery is not None:
            session.flush()
            alerts.link_delivery(row["id"], delivery.id)
        fired.append(row["id"])
    return fired


def _alert_payload(row: Mapping[str, Any], customer: str) -> dict[str, Any]:
    return {
        "alert_id": str(row["id"]),
        "customer": customer,
        "metric": row["metric"],
        "level": row["level"],
        "threshold_percent": row["threshold_bp"] / 100,
        "usage": row["usage"],
        "capacity": row["capacity"],
        "percent_of_capacity": round(row["usage"] / row["capacity"] * 100, 2),
        "plan": row["plan"],
        "period_start": row["period_start"].isoformat(),
    }


def list_alerts(
    session: Session,
    tenant_id: uuid.UUID,
    customer: str | None,
    level: str | None,
    limit: int,
    cursor: Any,
) -> tuple[list[schemas.AlertOut], Any]:
    customer_id = None
    if customer is not None:
        found = CustomerRepository(session, tenant_id).by_external_id(customer)
        if found is None:
            raise NotFound("Customer", customer)
        customer_id = found.id
    stmt = AlertRepository(session, tenant_id).list_statement(customer_id=customer_id, level=level)
    rows, next_cursor = paginate(
        session,
        stmt,
        UsageAlert.id,
        PageParams(limit=limit, cursor=cursor),
        parse=uuid.UUID,
        descending=True,
    )
    named = customer_names(session, tenant_id, [r.customer_id for r in rows])
    items = [
        schemas.AlertOut(
            id=r.id,
            customer=named[r.customer_id].external_id if r.customer_id in named else "",
            customer_name=named[r.customer_id].name if r.customer_id in named else None,
            metric=r.metric,
            period_start=r.period_start,
            level=r.level,
            threshold_bp=r.threshold_bp,
            usage=r.usage,
            capacity=r.capacity,
            plan=r.plan,
            fired_at=r.fired_at,
            webhook_delivery_id=r.webhook_delivery_id,
        )
        for r in rows
    ]
    return items, next_cursor


# --- reports ---------------------------------------------------------------------------------


@dataclass
class MetricState:
    report: schemas.MetricReport
    # Each day's figure with gauges carried forward, from the previous period's start.
    series: dict[date, float] = field(default_factory=dict)


@dataclass
class CustomerUsage:
    customer_id: uuid.UUID
    external_id: str
    plan: PricePlan | None
    period_start: date
    period_end: date
    as_of: datetime
    metrics: dict[str, MetricState]

    def projected(self) -> dict[str, float]:
        return {m: s.report.projected for m, s in self.metrics.items()}

    def projected_low(self) -> dict[str, float]:
        """The usage the customer will reach with 90 % confidence (the interval's low end)."""
        return {m: s.report.projected_low for m, s in self.metrics.items()}

    def projected_high(self) -> dict[str, float]:
        return {m: s.report.projected_high for m, s in self.metrics.items()}

    def to_date(self) -> dict[str, float]:
        return {m: s.report.usage for m, s in self.metrics.items()}


def parse_period(value: str | None) -> date | None:
    """A billing period named YYYY-MM, as its first day."""
    if value is None:
        return None
    match = re.fullmatch(PERIOD_PATTERN, value)
    if not match or not MIN_YEAR <= int(match.group(1)) <= MAX_YEAR:
        raise InvalidInput(
            f"period must be YYYY-MM between {MIN_YEAR}-01 and {MAX_YEAR}-12",
            [field_error(["period"], f"expected YYYY-MM, {MIN_YEAR}-01 to {MAX_YEAR}-12")],
        )
    return date(int(match.group(1)), int(match.group(2)), 1)


# --- naming customers: the one place a customer reference is resolved --------------------------


@dataclass(frozen=True)
class CustomerRef:
    id: uuid.UUID
    external_id: str
    name: str


def resolve_customer(session: Session, tenant_id: uuid.UUID, ref: str) -> Customer:
    """The customer named by ``ref``: its external id, or else its internal UUID; 404."""
    repo = CustomerRepository(session, tenant_id)
    customer = repo.by_external_id(ref)
    if customer is None:
        found = repo.by_refs([ref]).get(ref)
        customer = repo.get(found[0]) if found is not None else None
    if customer is None:
        raise NotFound("Customer", ref)
    return customer


def resolve_customers(
    session: Session, tenant_id: uuid.UUID, refs: Sequence[str], field: str = "customers"
) -> list[CustomerRef]:
    """Each ref (external id, or else internal UUID) in the order given, duplicates once;
    422 naming every unknown one by its position in ``field``."""
    found = CustomerRepository(session, tenant_id).by_refs(list(dict.fromkeys(refs)))
    missing = [i for i, ref in enumerate(refs) if ref not in found]
    if missing:
        names = ", ".join(refs[i] for i in missing[:10])
        raise InvalidInput(
            f"Unknown customers: {names}",
            [field_error([field, i], "unknown customer") for i in missing[:100]],
        )
    out: dict[uuid.UUID, CustomerRef] = {}
    for ref in refs:
        cid, external, name = found[ref]
        out.setdefault(cid, CustomerRef(cid, external, name))
    return list(out.values())


def customer_names(
    session: Session, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, CustomerRef]:
    """How each customer is shown in a list: its external id and name."""
    named = CustomerRepository(session, tenant_id).named(ids)
    return {cid: CustomerRef(cid, ext, name) for cid, (ext, name) in named.items()}


def _filled(
    aggregation: str, rows: Sequence[stats.DayRollup], first: date, last: date
) -> dict[date, float]:
    by_day = {r.day: stats.daily_value(aggregation, r) for r in rows}
    out: dict[date, float] = {}
    carry = 0.0
    day = first
    while day <= last:
        if day in by_day:
            carry = by_day[day]
            out[day] = carry
        else:
            out[day] = 0.0 if aggregation in stats.CUMULATIVE else carry
        day += timedelta(days=1)
    return out


@dataclass(frozen=True)
class _Window:
    """A usage report's days: the period, the previous period's same span, the last day with
    data and the time of the report."""

    start: date
    end: date
    prev_start: date
    prev_span_end: date
    last_day: date
    as_of: datetime


def _metric_state(
    meter: MeterDef,
    name: str,
    rows: Sequence[Any],
    plan: PricePlan | None,
    w: _Window,
    distinct_now: int,
    distinct_prev: int,
) -> MetricState:
    """One metric of one customer: usage, capacity, daily series, growth and projection."""
    current = [r for r in rows if w.start <= r.day < w.end]
    previous = [r for r in rows if w.prev_start <= r.day < w.prev_span_end]
    used = stats.combine(meter.aggregation, current, distinct_now)
    before = stats.combine(meter.aggregation, previous, distinct_prev)
    series = _filled(
        meter.aggregation, [r for r in rows if r.day <= w.last_day], w.prev_start, w.last_day
    )
    current_series = {d: v for d, v in series.items() if d >= w.start}
    projection = (
        stats.project(meter.aggregation, used, series, w.start, w.end, w.as_of)
        if w.as_of < stats.day_start(w.end)
        else stats.Projection(used, used, used)
    )
    projected = projection.point
    capacity_raw = plan.capacities.get(name) if plan is not None else None
    capacity = float(capacity_raw) if capacity_raw is not None else None
    pct = used / capacity * 100 if capacity else None
    report = schemas.MetricReport(
        metric=name,
        aggregation=meter.aggregation,
        unit=meter.unit,
        usage=used,
        capacity=capacity,
        percent_of_capacity=round(pct, 2) if pct is not None else None,
        daily=[schemas.DayPoint(day=d, value=v) for d, v in current_series.items()],
        previous_period_same_span=before,
        growth_rate=stats.growth_rate(used, before),
        projected=round(projected, 6),
        projected_low=round(projection.low, 6),
        projected_high=round(projection.high, 6),
        projected_percent_of_capacity=(round(projected / capacity * 100, 2) if capacity else None),
    )
    return MetricState(report, series)


def customer_usage(
    session: Session,
    tenant_id: uuid.UUID,
    customers: Sequence[tuple[uuid.UUID, str]],
    now: datetime,
    period_start: date | None = None,
) -> list[CustomerUsage]:
    """Per-metric usage, capacity, series, growth and projection for each customer."""
    meters = meter_catalog(session, tenant_id)
    start, end = stats.period_bounds(stats.day_start(period_start) if period_start else now)
    as_of = min(now, stats.day_start(end))
    if as_of < stats.day_start(start):
        raise InvalidInput("The period is in the future", [field_error(["period"], "future")])
    prev_start, prev_end = stats.previous_period(start)
    last_day = (
        (as_of - timedelta(microseconds=1)).date()
        if as_of == stats.day_start(end)
        else as_of.date()
    )
    span_days = (last_day - start).days + 1
    prev_span_end = min(prev_end, prev_start + timedelta(days=span_days))
    window = _Window(start, end, prev_start, prev_span_end, last_day, as_of)
    ids = [c for c, _ in customers]
    daily = DailyRepository(session, tenant_id).daily(ids, prev_start, end)
    _, plan_of = customer_plans(session, tenant_id, ids, as_of)
    unique_pairs = [
        (cid, name) for cid in ids for name, m in meters.items() if m.aggregation == "unique"
    ]
    uniques = UniqueValueRepository(session, tenant_id)
    distinct_now = uniques.distinct_values(unique_pairs, start, end)
    distinct_prev = uniques.distinct_values(unique_pairs, prev_start, prev_span_end)
    # The metrics each customer has daily rows for, indexed once: scanning every key for every
    # customer was quadratic in the customers (seconds for the usage page of 1,300 customers).
    metrics_of: dict[uuid.UUID, set[str]] = {}
    for c, m in daily:
        if m in meters:
            metrics_of.setdefault(c, set()).add(m)
    out = []
    for cid, external in customers:
        plan = plan_of.get(cid)
        names = set(metrics_of.get(cid, ()))
        if plan is not None:
            names |= {m for m in plan.capacities if m in meters}
        states: dict[str, MetricState] = {}
        for name in sorted(names):
            states[name] = _metric_state(
                meters[name],
                name,
                daily.get((cid, name), []),
                plan,
                window,
                distinct_now.get((cid, name), 0),
                distinct_prev.get((cid, name), 0),
            )
        out.append(CustomerUsage(cid, external, plan, start, end, as_of, states))
    return out


def usage_report(
    session: Session,
    tenant_id: uuid.UUID,
    external_id: str,
    period: date | None = None,
    now: datetime | None = None,
) -> schemas.UsageReport:
    customer = resolve_customer(session, tenant_id, external_id)
    external_id = customer.external_id  # a UUID ref is answered by its own id
    usage = customer_usage(
        session, tenant_id, [(customer.id, customer.external_id)], now or utcnow(), period
    )[0]
    return schemas.UsageReport(
        customer=external_id,
        plan=usage.plan.slug if usage.plan else None,
        period_start=usage.period_start,
        period_end=usage.period_end,
        as_of=usage.as_of,
        metrics=[s.report for s in usage.metrics.values()],
    )


# --- upsell ----------------------------------------------------------------------------------


def upsell_reasons(usage: CustomerUsage, settings: MeteringSettings) -> list[schemas.UpsellReason]:
    reasons: list[schemas.UpsellReason] = []
    growth_floor = settings.upsell_growth_bp / BP
    high = settings.upsell_high_usage_bp / BP
    n = settings.upsell_sustained_days
    today = usage.as_of.date()
    last_days = [today - timedelta(days=k) for k in range(n, 0, -1)]
    for name, state in usage.metrics.items():
        r = state.report
        if r.growth_rate is not None and r.growth_rate > growth_floor and r.usage > 0:
            reasons.append(
                schemas.UpsellReason(
                    trigger="growth",
                    metric=name,
                    value=round(r.growth_rate, 4),
                    detail=f"{name} grew {r.growth_rate:.0%} against the same days of the previous "
                    f"period (trigger: over {growth_floor:.0%})",
                )
            )
        if not r.capacity:
            continue
        loads = stats.utilisation_by_day(r.aggregation, state.series, r.capacity, last_days)
        if len(loads) == n and all(load > high for load in loads):
            reasons.append(
                schemas.UpsellReason(
                    trigger="sustained_high_usage",
                    metric=name,
                    value=round(min(loads), 4),
                    detail=f"{name} ran above {high:.0%} of capacity on each of the last {n} days "
                    f"(lowest {min(loads):.0%})",
                )
            )
        # Only the interval's low end decides: early in a period the point can run far ahead
        # of what is known, and an upsell offered on a guess costs the customer's trust.
        if r.projected_low > r.capacity:
            reasons.append(
                schemas.UpsellReason(
                    trigger="projected_over_capacity",
                    metric=name,
                    value=round(r.projected_low / r.capacity, 4),
                    detail=f"{name} will reach at least {plain(r.projected_low)} by "
                    f"{usage.period_end} (projected {plain(r.projected)}, 80 % interval "
                    f"{plain(r.projected_low)}–{plain(r.projected_high)}), over the capacity "
                    f"of {plain(r.capacity)}",
                )
            )
    return reasons


def plan_dict(plan: PricePlan) -> dict[str, Any]:
    return {
        "slug": plan.slug,
        "name": plan.name,
        "rank": plan.rank,
        "monthly_price": plan.monthly_price,
        "currency": plan.currency,
        "capacities": dict(plan.capacities),
        "overage": dict(plan.overage),
    }


def upsell_candidate(
    usage: CustomerUsage, plans: Sequence[PricePlan], settings: MeteringSettings
) -> schemas.UpsellCandidate:
    reasons = upsell_reasons(usage, settings)
    projected = usage.projected()
    at_least = usage.projected_low()
    current_rank = usage.plan.rank if usage.plan else -1
    higher = [plan_dict(p) for p in plans if p.rank > current_rank]
    # A plan is recommended only when the usage is sure (the interval's low end) to outgrow
    # the current one; growth and sustained load alone are signals, listed but not sold on.
    # The plan is the cheapest that covers that sure usage, not the point (see stats.project).
    over = any(r.trigger == "projected_over_capacity" for r in reasons)
    recommended = formula.recommend(higher, at_least)[0] if higher and over else None
    currency = usage.plan.currency if usage.plan else (plans[0].currency if plans else "USD")
    return schemas.UpsellCandidate(
        customer=usage.external_id,
        current_plan=usage.plan.slug if usage.plan else None,
        reasons=reasons,
        recommended_plan=recommended.slug if recommended else None,
        recommended_price=recommended.base if recommended else None,
        current_price=usage.plan.monthly_price if usage.plan else None,
        currency=currency,
        projected_usage={k: round(v, 6) for k, v in projected.items()},
        projected_usage_low={k: round(v, 6) for k, v in at_least.items()},
        projected_usage_high={k: round(v, 6) for k, v in usage.projected_high().items()},
    )


def upsell_fingerprint(session: Session, tenant_id: uuid.UUID) -> list[str]:
    """Changes whenever an upsell analysis could (see ``repository.upsell_fingerprint``), so a
    reader may keep an analysis while it is unchanged."""
    return [str(part) for part in repository_upsell_fingerprint(session, tenant_id)]


def analyse_upsell(
    session: Session,
    tenant_id: uuid.UUID,
    external_ids: Sequence[str] | None,
    now: datetime | None = None,
) -> schemas.UpsellAnalysis:
    now = now or utcnow()
    start, end = stats.period_bounds(now)
    if external_ids is None:
        ids = DailyRepository(session, tenant_id).customers_with_usage(start, end)
        refs = sorted(customer_names(session, tenant_id, ids).values(), key=lambda r: r.external_id)
    else:
        refs = resolve_customers(session, tenant_id, external_ids)
    pairs = [(r.id, r.external_id) for r in refs]
    name_of = {r.id: r.name for r in refs}
    plans = PlanRepository(session, tenant_id).ensure()
    settings = current_settings(session, tenant_id)
    candidates = []
    for chunk_start in range(0, len(pairs), 500):
        for usage in customer_usage(
            session, tenant_id, pairs[chunk_start : chunk_start + 500], now
        ):
            candidate = upsell_candidate(usage, plans, settings)
            if candidate.reasons:
                candidate.customer_name = name_of.get(usage.customer_id)
                candidates.append(candidate)
    return schemas.UpsellAnalysis(period_start=start, analysed=len(pairs), candidates=candidates)


def trigger_upsell(
    session: Session,
    tenant_id: uuid.UUID,
    external_id: str,
    actor: str,
    now: datetime | None = None,
) -> schemas.CampaignOut:
    """Open this period's upsell campaign for a customer, once; a repeat returns the first."""
    now = now or utcnow()
    customer = resolve_customer(session, tenant_id, external_id)
    external_id = customer.external_id  # a UUID ref is answered by its own id
    start, _ = stats.period_bounds(now)
    campaigns = CampaignRepository(session, tenant_id)
    existing = campaigns.for_period(customer.id, start)
    if existing is not None:
        return _campaign_out(existing, external_id, created=False)
    usage = customer_usage(session, tenant_id, [(customer.id, external_id)], now)[0]
    plans = PlanRepository(session, tenant_id).ensure()
    candidate = upsell_candidate(usage, plans, current_settings(session, tenant_id))
    _require_recommendation(candidate, external_id)
    decision = record_decision(
        session,
        tenant_id=tenant_id,
        kind="upsell_campaign",
        subject_type="customer",
        subject_id=external_id,
        inputs=candidate.model_dump(mode="json"),
        output={
            "recommended_plan": candidate.recommended_plan,
            "monthly_price": candidate.recommended_price,
            "reasons": [r.trigger for r in candidate.reasons],
        },
        model="metering.upsell_triggers",
        model_version="1",
        actor=actor,
    )
    session.flush()
    campaign = campaigns.add(
        UpsellCampaign(
            customer_id=customer.id,
            period_start=start,
            current_plan=candidate.current_plan,
            recommended_plan=candidate.recommended_plan,
            monthly_price=candidate.recommended_price or 0,
            currency=candidate.currency,
            reasons=[r.model_dump() for r in candidate.reasons],
            decision_id=decision.id,
            created_by=actor,
        )
    )
    # A concurrent trigger for the same customer and period hits the unique constraint here
    # and its request fails with 409 rather than opening a second campaign.
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "An upsell campaign was opened concurrently", slug="campaign-exists"
        ) from exc
    enqueue_webhook(
        session,
        tenant_id,
        "upsell.campaign.created",
        {
            "campaign_id": str(campaign.id),
            "customer": external_id,
            "recommended_plan": campaign.recommended_plan,
            "monthly_price": campaign.monthly_price,
            "currency": campaign.currency,
            "reasons": campaign.reasons,
        },
        decision_id=decision.id,
    )
    return _campaign_out(campaign, external_id, created=True)


def upsell_email_campaigns(
    session: Session, tenant_id: uuid.UUID, since: datetime, limit: int
) -> list[uuid.UUID]:
    """Upsell campaigns opened since ``since``, newest first: the ones an email is written for."""
    return CampaignRepository(session, tenant_id).opened_since(since, limit)


def upsell_briefs(
    session: Session, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[dict[str, Any]]:
    """What each upsell campaign's email is about, as plain values: its customer (external id,
    name), the current and recommended plans by the tenant's names, the recommended plan's
    monthly price and the triggers that held (usage against capacity). Unknown ids are left
    out."""
    rows = CampaignRepository(session, tenant_id).by_ids(ids)
    named = customer_names(session, tenant_id, [r.customer_id for r in rows])
    plans = PlanRepository(session, tenant_id).list()

    def display(slug: str | None) -> str | None:
        plan = plan_for(plans, slug)
        return plan.name if plan is not None else slug

    out = []
    for row in rows:
        ref = named.get(row.customer_id)
        out.append(
            {
                "campaign": "upsell",
                "campaign_id": str(row.id),
                "customer": ref.external_id if ref else str(row.customer_id),
                "name": (ref.name if ref else None) or "",
                "plan": display(row.current_plan),
                "recommended_plan": display(row.recommended_plan),
                "monthly_price": row.monthly_price,
                "currency": row.currency,
                "reasons": list(row.reasons),
            }
        )
    return out


def _require_recommendation(candidate: schemas.UpsellCandidate, external_id: str) -> None:
    """A campaign opens only for a customer with a trigger and a plan to move to (409 else)."""
    if candidate.reasons and candidate.recommended_plan is not None:
        return
    if not candidate.reasons:
        reason = f"No upsell trigger holds for {external_id} this period"
    elif not any(r.trigger == "projected_over_capacity" for r in candidate.reasons):
        reason = (
            f"No plan to recommend to {external_id}: its projected usage is not yet sure to "
            "exceed its plan's capacity"
        )
    else:
        reason = f"No plan to recommend to {external_id}: it is already on the highest plan"
    raise Conflict(reason, slug="no-upsell-trigger")


def _campaign_out(c: UpsellCampaign, external_id: str, *, created: bool) -> schemas.CampaignOut:
    return schemas.CampaignOut(
        id=c.id,
        customer=external_id,
        period_start=c.period_start,
        current_plan=c.current_plan,
        recommended_plan=c.recommended_plan,
        monthly_price=c.monthly_price,
        currency=c.currency,
        reasons=list(c.reasons),
        status=c.status,
        decision_id=c.decision_id,
        created=created,
    )
