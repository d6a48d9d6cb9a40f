"""Orchestration of the dashboard views: load the tenant's data, compute the monthly series (or
reuse the stored snapshot of it), and cut the period asked for. Never commits."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from aethercrown.analytics import forecast as fc
from aethercrown.analytics import metrics
from aethercrown.analytics.kpis import EXECUTIVE_SUMMARY, pick
from aethercrown.analytics.repository import (
    ActivityData,
    CustomerData,
    DecisionData,
    MarketingData,
    SnapshotStore,
    SubscriptionData,
    TaskData,
    data_fingerprint,
)
from aethercrown.analytics.schemas import PeriodRequest
from aethercrown.churn import service as churn_service
from aethercrown.clock import utcnow
from aethercrown.core.errors import InvalidInput, field_error
from aethercrown.core.ledger import digest
from aethercrown.health.service import health_trends
from aethercrown.health.trends import worst
from aethercrown.tenants.service import requests_by_day

# A snapshot is reused while the data is unchanged, but the current month's figures also move
# with the clock (a subscription scheduled to end passes its end), so snapshots expire.
SNAPSHOT_MAX_AGE = timedelta(minutes=5)
MAX_PERIOD_MONTHS = 240
ACTIVE_USER_WINDOW = timedelta(days=30)
# Health is summarised over at most this much of a period (hourly samples per component).
HEALTH_WINDOW = timedelta(days=30)
FORECAST_HORIZON = 6
BACKTEST_HORIZON = 3
DEFAULT_CURRENCY = "USD"
# Decision kinds are matched by prefix, so "churn_prediction" and "churn.score" both count.
CHURN_PREFIX = "churn"
# Retention campaigns carry the score that triggered them and the same outcome: counted once,
# as campaigns (treated against held out), not again as scores.
CAMPAIGN_KIND = "churn.campaign"
SCORE_KIND = "churn.score"
BUDGET_PREFIX = "budget"
EXPERIMENT_PREFIX = "experiment"
VERDICT_KIND = "experiment_verdict"
TASK_PREFIX = "task"
# Churn scores are aggregated in SQL by their value rounded to 1/SCORE_RESOLUTION.
SCORE_RESOLUTION = 200


# ---------------------------------------------------------------------------------------------
# Periods


def resolve_period(body: PeriodRequest, now: datetime) -> tuple[str, str]:
    end = body.end or metrics.month_of(now)
    start = body.start or metrics.add_months(end, -11)
    if end < start:
        raise InvalidInput(
            "The period ends before it starts",
            [field_error(["end"], f"end {end} is before start {start}")],
        )
    if metrics.months_between(start, end) >= MAX_PERIOD_MONTHS:
        raise InvalidInput(
            "The period is too long",
            [field_error(["end"], f"a period may span at most {MAX_PERIOD_MONTHS} months")],
        )
    return start, end


def month_bounds(start: str, end: str) -> tuple[datetime, datetime]:
    return metrics.month_start(start), metrics.month_start(metrics.add_months(end, 1))


# ---------------------------------------------------------------------------------------------
# The monthly series and its snapshot


def reporting_currency(session: Session, tenant_id: uuid.UUID, asked: str | None) -> str:
    if asked is not None:
        return asked
    currencies = SubscriptionData(session, tenant_id).currencies()
    return currencies[0][0] if currencies else DEFAULT_CURRENCY


def _fingerprint(session: Session, tenant_id: uuid.UUID, view: str, now: datetime) -> str:
    return digest(
        {
            "view": view,
            "month": metrics.month_of(now),
            "data": data_fingerprint(session, tenant_id),
            # Snapshots computed under an earlier definition are not reused after an upgrade.
            "rules": metrics.RULES_VERSION,
        }
    )


def compute_view(
    session: Session,
    tenant_id: uuid.UUID,
    currency: str,
    plan: str | None,
    segment: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The full monthly series and forecasts for one view, computed from the stored rows."""
    records = SubscriptionData(session, tenant_id).records(currency, plan)
    segments = CustomerData(session, tenant_id).segments()
    if segment is not None:
        records = [r for r in records if segments.get(r.customer, "unknown") == segment]
    activity = ActivityData(session, tenant_id)
    inputs = metrics.RevenueInputs(
        subscriptions=records,
        segments=segments,
        marketing_spend=MarketingData(session, tenant_id).spend_by_month(currency),
        daily_active_users=activity.daily_active_users(),
        monthly_active_users=activity.monthly_active_users(),
    )
    series = metrics.revenue_series(inputs, now)
    return {
        "currency": currency,
        "as_of": now.isoformat(),
        "active_users_30d": activity.active_users_since(now - ACTIVE_USER_WINDOW),
        "health_30d": health_summary(session, tenant_id, now - HEALTH_WINDOW, now),
        "series": series,
        "forecasts": forecasts(series, now),
    }


def load_view(
    session: Session,
    tenant_id: uuid.UUID,
    currency: str | None = None,
    plan: str | None = None,
    segment: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The view's payload from its snapshot when the data is unchanged, else freshly computed
    (and stored)."""
    now = now or utcnow()
    # Without an asked currency the view is the default one; which currency that is (the most
    # used) is decided when it is computed, from the same data the fingerprint covers.
    view = f"revenue:{currency or '*'}:{plan or '*'}:{segment or '*'}"
    return cached(
        session,
        tenant_id,
        view,
        now,
        lambda: compute_view(
            session, tenant_id, reporting_currency(session, tenant_id, currency), plan, segment, now
        ),
        _fingerprint(session, tenant_id, view, now),
    )


def refresh_snapshots(session: Session, tenant_id: uuid.UUID, now: datetime) -> int:
    """Recompute every stored view of the tenant (the periodic job), plus the default one."""
    store = SnapshotStore(session, tenant_id)
    # Clock-based entries (health summaries of a period) are dropped once expired.
    store.prune("health:", now - SNAPSHOT_MAX_AGE)
    store.prune("ai:", now - SNAPSHOT_MAX_AGE)
    views = {snap.view for snap in store.all_views() if snap.view.startswith("revenue:")}
    views.add("revenue:*:*:*")
    for view in sorted(views):
        _, currency, plan, segment = view.split(":", 3)
        payload = compute_view(
            session,
            tenant_id,
            reporting_currency(session, tenant_id, None if currency == "*" else currency),
            None if plan == "*" else plan,
            None if segment == "*" else segment,
            now,
        )
        store = SnapshotStore(session, tenant_id)
        # The job's own unit of work writes the snapshot (it is the point of the job).
        store.upsert(view, _fingerprint(session, tenant_id, view, now), payload)
    return len(views)


def forecasts(series: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """MRR, paying customers and logo churn rate, forecast from the completed months, each with
    its prediction interval and the rolling-origin 3-month-ahead backtest."""
    current = metrics.month_of(now)
    complete = [row for row in series if row["month"] < current]
    out: dict[str, Any] = {}
    for name, key in (
        ("mrr", "mrr"),
        ("customers", "customers"),
        ("churn_rate", "logo_churn_rate"),
    ):
        rows = [row for row in complete if row[key] is not None]
        if not rows:
            continue
        values = [float(row[key]) for row in rows]
        predicted = fc.damped_trend(values, FORECAST_HORIZON)
        tested = fc.backtest(values, BACKTEST_HORIZON)
        last = rows[-1]["month"]
        digits = 4 if key == "logo_churn_rate" else 0
        out[name] = {
            "months": [metrics.add_months(last, h) for h in range(1, FORECAST_HORIZON + 1)],
            "mean": [round(v, digits) for v in predicted.mean],
            # None where the interval is unknown (too little history to measure it).
            "lower": [None if v is None else round(v, digits) for v in predicted.lower],
            "upper": [None if v is None else round(v, digits) for v in predicted.upper],
            "level": predicted.level,
            "model": predicted.model,
            "params": {k: round(v, 4) for k, v in predicted.params.items()},
            "backtest": {
                "horizon_months": tested.horizon,
                "origins": tested.origins,
                "mape": tested.mape,
                "interval_coverage": tested.coverage,
            },
        }
    return out


def months_in(payload: dict[str, Any], start: str, end: str) -> list[dict[str, Any]]:
    return [row for row in payload["series"] if start <= row["month"] <= end]


# ---------------------------------------------------------------------------------------------
# Views


def _period_view(
    session: Session, tenant_id: uuid.UUID, body: PeriodRequest
) -> tuple[dict[str, Any], str, str, list[dict[str, Any]]]:
    """The stored view the request names (currency, plan, segment), the period it asks for as
    (start, end) months, and the view's months in that period."""
    now = utcnow()
    start, end = resolve_period(body, now)
    payload = load_view(session, tenant_id, body.currency, body.plan, body.segment, now)
    return payload, start, end, months_in(payload, start, end)


def revenue(session: Session, tenant_id: uuid.UUID, body: PeriodRequest) -> dict[str, Any]:
    payload, start, end, rows = _period_view(session, tenant_id, body)
    return {
        "currency": payload["currency"],
        "start": start,
        "end": end,
        "as_of": payload["as_of"],
        "months": rows,
        "totals": period_totals(rows),
    }


def period_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    totals: dict[str, Any] = {
        name: sum(r[name] for r in rows) for name in (*metrics.MOVEMENTS, "net_new_mrr")
    }
    totals["new_customers"] = sum(r["new_customers"] for r in rows)
    totals["churned_customers"] = sum(r["churned_customers"] for r in rows)
    totals["marketing_spend"] = sum(r["marketing_spend"] for r in rows)
    totals["ending_mrr"] = rows[-1]["mrr"] if rows else None
    totals["ending_arr"] = rows[-1]["arr"] if rows else None
    return totals


def growth(session: Session, tenant_id: uuid.UUID, body: PeriodRequest) -> dict[str, Any]:
    payload, start, end, rows = _period_view(session, tenant_id, body)
    keys = (
        "month",
        "mrr",
        "customers",
        "mrr_growth_rate",
        "new_customers",
        "churned_customers",
        "reactivated_customers",
        "trials_started",
        "trials_ended",
        "trials_converted",
        "trial_conversion_rate",
        "dau",
        "mau",
        "dau_mau",
        "quick_ratio",
    )
    first, last = (rows[0], rows[-1]) if rows else (None, None)
    periods = metrics.months_between(first["month"], last["month"]) if first and last else 0
    return {
        "currency": payload["currency"],
        "start": start,
        "end": end,
        "months": [{k: row[k] for k in keys} for row in rows],
        "mrr_cmgr": metrics.cmgr(first["mrr"], last["mrr"], periods) if first and last else None,
        "customers_cmgr": (
            metrics.cmgr(first["customers"], last["customers"], periods) if first and last else None
        ),
        "forecasts": payload["forecasts"],
    }


def decisions_fingerprint(session: Session, tenant_id: uuid.UUID) -> str:
    """Changes when a decision is added or the business data changes (subscriptions,
    customers, activity, marketing): a reader of the ledger that also reads MRR may keep its
    figure meanwhile (outcomes recorded later show within the snapshot's five minutes)."""
    return digest([DecisionData(session, tenant_id).count(), *data_fingerprint(session, tenant_id)])


def ai_performance(session: Session, tenant_id: uuid.UUID, body: PeriodRequest) -> dict[str, Any]:
    """Cached per period while no decision or task is added (and for at most five minutes, so
    outcomes recorded on existing decisions show within that)."""
    now = utcnow()
    start, end = resolve_period(body, now)
    fingerprint = digest(
        [DecisionData(session, tenant_id).count(), TaskData(session, tenant_id).count()]
    )
    return cached(
        session,
        tenant_id,
        # v2: churn_model.by_month was added; earlier snapshots lack it.
        f"ai:v2:{start}:{end}",
        now,
        lambda: _ai_performance(session, tenant_id, start, end),
        fingerprint,
    )


def _ai_performance(session: Session, tenant_id: uuid.UUID, start: str, end: str) -> dict[str, Any]:
    since, until = month_bounds(start, end)
    ledger = DecisionData(session, tenant_id)
    by_kind = sorted(ledger.by_kind(since, until), key=lambda k: k["kind"])
    histogram = ledger.score_histogram(
        CHURN_PREFIX, since, until, SCORE_RESOLUTION, exclude=[CAMPAIGN_KIND]
    )
    scores = [(b / SCORE_RESOLUTION, label, n, sp, se) for b, label, n, sp, se in histogram]
    budget = _combine([k for k in by_kind if k["kind"].startswith(BUDGET_PREFIX)])
    tasks = _combine([k for k in by_kind if k["kind"].startswith(TASK_PREFIX)])
    kinds = [(k["kind"], k["decisions"], k["with_outcome"]) for k in by_kind]
    weeks = max((until - since).days / 7, 1 / 7)
    queue = TaskData(session, tenant_id)
    finished = queue.finished(since, until)
    experiments = [k for k in kinds if k[0].startswith(EXPERIMENT_PREFIX)]
    verdicts = [k for k in by_kind if k["kind"] == VERDICT_KIND]
    return {
        "start": start,
        "end": end,
        "decisions": {
            "total": sum(n for _, n, _ in kinds),
            "with_outcome": sum(o for _, _, o in kinds),
            "by_kind": [{"kind": k, "decisions": n, "with_outcome": o} for k, n, o in kinds],
        },
        "churn_model": {
            "scored_with_outcome": sum(r[2] for r in scores),
            "churned": sum(r[2] for r in scores if r[1]),
            "auc": metrics.auc_from_histogram(
                [(score, n if label else 0, 0 if label else n) for score, label, n, _, _ in scores]
            ),
            "calibration": metrics.calibration_from_histogram(scores),
            "score_resolution": 1 / SCORE_RESOLUTION,
            "by_month": _auc_by_month(ledger, since, until),
        },
        "campaigns": _campaign_uplift(ledger.holdout_outcomes(CAMPAIGN_KIND, since, until)),
        "budget": {
            "decisions_with_outcome": budget["scored"],
            "predicted_total": round(budget["predicted"], 2),
            "realised_total": round(budget["realised"], 2),
            "bias": metrics.rate(budget["predicted"] - budget["realised"], budget["realised"]),
            "mape": metrics.rate(budget["ape_sum"], budget["ape_count"]),
        },
        "experiments": {
            "decided": sum(n for _, n, _ in experiments),
            "with_outcome": sum(o for _, _, o in experiments),
            # A verdict's outcome is 1 when the true effect bore it out (known for a simulated
            # company's experiments), 0 when not.
            "verdicts_judged": sum(k["with_outcome"] for k in verdicts),
            "verdicts_right": round(sum(k["outcome_total"] for k in verdicts)),
        },
        "tasks": {
            # Assignments are the scheduler's ledger decisions; the rest is the task queue.
            "assigned": tasks["decisions"],
            "running": queue.running(),
            **finished,
            "completed_per_week": round(finished["completed"] / weeks, 2),
        },
    }


def _month_or_422(month: str) -> None:
    try:
        metrics.parse_month(month)
    except ValueError as exc:
        raise InvalidInput("Months are YYYY-MM", [field_error(["month"], str(exc))]) from None


def churn_auc_by_month(
    session: Session, tenant_id: uuid.UUID, body: PeriodRequest
) -> list[dict[str, Any]]:
    """The churn model's discrimination per scoring month (``ai_performance``'s
    ``churn_model.by_month``, reused with it while the ledger is unchanged)."""
    return list(ai_performance(session, tenant_id, body)["churn_model"]["by_month"])


def _auc_by_month(ledger: DecisionData, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """For the scores made in each month of ``[since, until)`` whose outcome is known (churned
    within the horizon or not): how many, how many churned, and their ROC AUC (None while a
    month has only one class). The same scores as the overall AUC (campaigns excluded)."""
    rows = ledger.monthly_score_histogram(
        CHURN_PREFIX, since, until, SCORE_RESOLUTION, exclude=[CAMPAIGN_KIND]
    )
    by_month: dict[str, list[tuple[float, int, int]]] = {}
    for month, bucket, label, n in rows:
        by_month.setdefault(month, []).append(
            (bucket / SCORE_RESOLUTION, n if label else 0, 0 if label else n)
        )
    return [
        {
            "month": month,
            "scored": sum(p + q for _, p, q in hist),
            "churned": sum(p for _, p, _ in hist),
            "auc": metrics.auc_from_histogram(hist),
        }
        for month, hist in sorted(by_month.items())
    ]


def scores_of_month(
    session: Session, tenant_id: uuid.UUID, month: str, limit: int
) -> dict[str, Any]:
    """The rows behind one month of the churn AUC: the customer scores made in ``month`` (how
    many, how many with an outcome, how many churned) and the ``limit`` highest, each with its
    probability and, once known, whether the customer churned within the horizon."""
    _month_or_422(month)
    since, until = month_bounds(month, month)
    (total, known, churned), rows = DecisionData(session, tenant_id).scored_in(
        SCORE_KIND, since, until, limit
    )
    return {
        "month": month,
        "scored": total,
        "with_outcome": known,
        "churned": churned,
        "rows": [
            {
                "customer_id": subject,
                "probability": predicted,
                "churned": None if outcome is None else outcome >= 0.5,
                "scored_at": at,
            }
            for subject, predicted, outcome, at in rows
        ],
    }


def _campaign_uplift(rows: list[tuple[bool, bool, int]]) -> dict[str, Any]:
    """Retention campaigns whose outcome is known: the retention of the treated customers minus
    that of the randomly held-out ones (the campaigns' measured effect), with its interval."""
    counts = {(holdout, churned): n for holdout, churned, n in rows}
    treated = counts.get((False, False), 0) + counts.get((False, True), 0)
    held = counts.get((True, False), 0) + counts.get((True, True), 0)
    return churn_service.retention_uplift(
        treated, counts.get((False, False), 0), held, counts.get((True, False), 0)
    )


def _combine(kinds: list[dict[str, Any]]) -> dict[str, Any]:
    """The per-kind ledger sums of several kinds (one prefix) added up."""
    total: dict[str, Any] = {
        name: sum(k[name] for k in kinds)
        for name in (
            "decisions",
            "with_outcome",
            "scored",
            "predicted",
            "realised",
            "ape_sum",
            "ape_count",
        )
    }
    timed = [(k["mean_seconds"], k["with_outcome"]) for k in kinds if k["mean_seconds"] is not None]
    weight = sum(n for _, n in timed)
    total["mean_seconds"] = sum(m * n for m, n in timed) / weight if weight else None
    return total


def cached(
    session: Session,
    tenant_id: uuid.UUID,
    view: str,
    now: datetime,
    compute: Callable[[], dict[str, Any]],
    fingerprint: str = "time",
) -> dict[str, Any]:
    """A figure reused while its ``fingerprint`` is unchanged, for at most SNAPSHOT_MAX_AGE
    (what the fingerprint cannot see — the clock, an outcome recorded later — shows after that)."""
    store = SnapshotStore(session, tenant_id)
    snapshot = store.find(view)
    if (
        snapshot is not None
        and snapshot.fingerprint == fingerprint
        and now - snapshot.computed_at < SNAPSHOT_MAX_AGE
    ):
        return snapshot.payload
    payload = compute()
    store.save(view, fingerprint, payload)
    return payload


def health_summary(
    session: Session, tenant_id: uuid.UUID, since: datetime, until: datetime
) -> dict[str, Any]:
    """Uptime over the health samples in [since, until] (at most the last HEALTH_WINDOW of it):
    the share of samples, over all components, that were not "down"; per component its
    uptime, p95 latency, last status and incidents. Without samples: "no samples yet"."""
    since = max(since, until - HEALTH_WINDOW)
    hours = math.ceil((until - since).total_seconds() / 3600)
    if hours <= 0:
        return {"status": "no samples yet", "samples": 0, "uptime": None, "components": []}
    found = health_trends(session, tenant_id, hours, now=until)
    samples = sum(c.samples for c in found.components)
    if samples == 0:
        return {"status": "no samples yet", "samples": 0, "uptime": None, "components": []}
    up = sum((c.uptime_percent or 0.0) * c.samples / 100 for c in found.components)
    return {
        "status": worst([c.last_status or "ok" for c in found.components]),
        "samples": samples,
        "uptime": round(up / samples, 6),
        "since": found.since.isoformat(),
        "until": found.until.isoformat(),
        "components": [
            {
                "component": c.component,
                "samples": c.samples,
                "uptime_percent": c.uptime_percent,
                "latency_p95_ms": c.latency_p95_ms,
                "last_status": c.last_status,
                "incidents": len(c.incidents),
            }
            for c in found.components
        ],
    }


def system_health(session: Session, tenant_id: uuid.UUID, body: PeriodRequest) -> dict[str, Any]:
    now = utcnow()
    start, end = resolve_period(body, now)
    since, until = month_bounds(start, end)
    rows = [r for r in requests_by_day(session, tenant_id, since.date()) if r.day < until.date()]
    total = sum(r.count for r in rows)
    server_errors = sum(r.count for r in rows if r.status >= 500)
    client_errors = sum(r.count for r in rows if 400 <= r.status < 500)
    rate_limited = sum(r.count for r in rows if r.status == 429)
    by_day: dict[str, int] = {}
    for r in rows:
        by_day[r.day.isoformat()] = by_day.get(r.day.isoformat(), 0) + r.count
    return {
        "start": start,
        "end": end,
        # Uptime and latency from the health domain's samples (its API checks and hourly job),
        # summarised at most every SNAPSHOT_MAX_AGE: samples arrive hourly.
        "health_samples": cached(
            session,
            tenant_id,
            f"health:{start}:{end}",
            now,
            lambda: health_summary(session, tenant_id, since, min(until, now)),
        ),
        "api": {
            "requests": total,
            "server_errors": server_errors,
            "client_errors": client_errors,
            "rate_limited": rate_limited,
            "server_error_rate": metrics.rate(server_errors, total),
            "requests_by_day": [{"day": d, "requests": n} for d, n in sorted(by_day.items())],
        },
    }


def executive_summary(
    session: Session, tenant_id: uuid.UUID, body: PeriodRequest
) -> dict[str, Any]:
    payload, start, end, rows = _period_view(session, tenant_id, body)
    latest = rows[-1] if rows else None
    ai = ai_performance(session, tenant_id, body)
    health = system_health(session, tenant_id, body)
    return {
        "currency": payload["currency"],
        "start": start,
        "end": end,
        "as_of": payload["as_of"],
        "latest": pick(latest, EXECUTIVE_SUMMARY),
        "period": period_totals(rows),
        "forecast_mrr": payload["forecasts"].get("mrr"),
        "ai": {
            "decisions": ai["decisions"]["total"],
            "churn_model_auc": ai["churn_model"]["auc"],
            "tasks_running": ai["tasks"]["running"],
            "experiments_decided": ai["experiments"]["decided"],
        },
        "health": {
            "status": health["health_samples"]["status"],
            "server_error_rate": health["api"]["server_error_rate"],
        },
    }


# Reads the investor pages share with these dashboards.


def running_tasks(session: Session, tenant_id: uuid.UUID) -> int:
    return TaskData(session, tenant_id).running()


def decision_feed(session: Session, tenant_id: uuid.UUID, kind: str | None) -> Select[Any]:
    """The ledger's decisions, for a paginated feed (newest first by the caller)."""
    return DecisionData(session, tenant_id).feed_statement(kind)


def decision_counts_by_kind(
    session: Session, tenant_id: uuid.UUID, start: datetime, end: datetime
) -> list[tuple[str, int, int]]:
    """(kind, decisions, with an outcome) made in ``[start, end)``."""
    return DecisionData(session, tenant_id).counts_by_kind(start, end)


def plan_names(session: Session, tenant_id: uuid.UUID) -> list[str]:
    """The plans the tenant's subscriptions name (the values the plan filter takes)."""
    return SubscriptionData(session, tenant_id).plans()


def decision_groups(
    session: Session, tenant_id: uuid.UUID, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """The ledger's decisions in ``[start, end)`` grouped by kind and subject type, most first:
    how many, on how many distinct subjects, how many with an outcome (the readable feed)."""
    rows = DecisionData(session, tenant_id).groups(start, end)
    rows.sort(key=lambda r: (-r[2], r[0], r[1]))
    return [
        {"kind": k, "subject_type": t, "decisions": n, "subjects": s, "with_outcome": o}
        for k, t, n, s, o in rows
    ]


# ---------------------------------------------------------------------------------------------
# The customers behind the figures (the console's drill-downs)

DRILL_MOVEMENTS = ("paying", "new", "expansion", "contraction", "churn", "reactivation")


def _customer_matrix(
    session: Session,
    tenant_id: uuid.UUID,
    currency: str | None,
    plan: str | None,
    segment: str | None,
    end: str,
    now: datetime,
) -> metrics.MrrMatrix | None:
    """Each customer's MRR at each month end, from the first month anyone paid to ``end``."""
    records = SubscriptionData(session, tenant_id).records(
        reporting_currency(session, tenant_id, currency), plan
    )
    if segment is not None:
        segments = CustomerData(session, tenant_id).segments()
        records = [r for r in records if segments.get(r.customer, "unknown") == segment]
    first = min((metrics.month_of(r.started_at) for r in records), default=None)
    if first is None or first > end:
        return None
    return metrics.build_matrix(records, metrics.month_range(first, end), now)


def customers_behind(
    session: Session,
    tenant_id: uuid.UUID,
    month: str,
    movement: str,
    body: PeriodRequest,
    limit: int | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """How many customers one figure of ``month`` counts (paying at its end, or one MRR
    movement of the month) and the first ``limit`` of them, each with its MRR at the end of
    the month before and of the month, largest first; the same rules as the monthly series
    (``metrics.movements``)."""
    if movement not in DRILL_MOVEMENTS:
        raise InvalidInput(
            "Unknown movement", [field_error(["movement"], f"one of {', '.join(DRILL_MOVEMENTS)}")]
        )
    _month_or_422(month)
    now = utcnow()
    currency = reporting_currency(session, tenant_id, body.currency)
    view = f"behind:{currency}:{body.plan or '*'}:{body.segment or '*'}:{month}"
    # Building the customer × month MRR matrix is most of a drill-down's time (tens of ms on
    # the demo, hundreds under load): every movement of the month is kept at once, like the
    # monthly series, while the data it came from is unchanged.
    kept = cached(
        session,
        tenant_id,
        view,
        now,
        lambda: _movements_of_month(session, tenant_id, currency, body, month, now),
        _fingerprint(session, tenant_id, view, now),
    )
    found = kept[movement]
    return len(found), [
        {"customer_id": uuid.UUID(cid), "mrr": mrr, "previous_mrr": previous}
        for cid, mrr, previous in found[:limit]
    ]


def _movements_of_month(
    session: Session,
    tenant_id: uuid.UUID,
    currency: str,
    body: PeriodRequest,
    month: str,
    now: datetime,
) -> dict[str, list[tuple[str, int, int]]]:
    """For each drill-down movement of ``month``: (customer id, MRR at its end, MRR at the end
    of the month before), largest first."""
    matrix = _customer_matrix(session, tenant_id, currency, body.plan, body.segment, month, now)
    if matrix is None or matrix.months[-1] != month:
        return {m: [] for m in DRILL_MOVEMENTS}
    now_mrr = matrix.mrr[-1]
    before = matrix.mrr[-2] if len(matrix.months) > 1 else now_mrr * 0
    ever_before = (matrix.mrr[:-1] > 0).any(axis=0) if len(matrix.months) > 1 else now_mrr < 0
    paying, was = now_mrr > 0, before > 0
    masks = {
        "paying": paying,
        "new": paying & ~was & ~ever_before,
        "reactivation": paying & ~was & ever_before,
        "churn": was & ~paying,
        "expansion": was & paying & (now_mrr > before),
        "contraction": was & paying & (now_mrr < before),
    }
    out = {}
    for movement, mask in masks.items():
        # Ordered on the ids as stored (strings): the same order as on the UUIDs.
        found = sorted(
            ((matrix.customers[j], int(now_mrr[j]), int(before[j])) for j in mask.nonzero()[0]),
            key=lambda r: (-max(r[1], r[2]), r[0]),
        )
        out[movement] = found
    return out


def cohort_retention(
    session: Session, tenant_id: uuid.UUID, body: PeriodRequest
) -> list[dict[str, Any]]:
    """Logo retention by cohort (the month a customer first paid), for the cohorts of the
    period: the share of the cohort still paying 0, 1, 2 … months later, up to the period's
    end."""
    now = utcnow()
    start, end = resolve_period(body, now)
    view = f"cohorts:{body.currency or '*'}:{body.plan or '*'}:{body.segment or '*'}:{start}:{end}"
    # Reused, like the monthly series, while the data it came from is unchanged.
    fingerprint = _fingerprint(session, tenant_id, view, now)
    payload = cached(
        session,
        tenant_id,
        view,
        now,
        lambda: {"cohorts": _cohorts(session, tenant_id, body, start, end, now)},
        fingerprint,
    )
    return list(payload["cohorts"])


def _cohorts(
    session: Session,
    tenant_id: uuid.UUID,
    body: PeriodRequest,
    start: str,
    end: str,
    now: datetime,
) -> list[dict[str, Any]]:
    matrix = _customer_matrix(session, tenant_id, body.currency, body.plan, body.segment, end, now)
    if matrix is None:
        return []
    paying = matrix.mrr > 0
    started = paying.any(axis=0)
    first = paying.argmax(axis=0)
    out = []
    for i, month in enumerate(matrix.months):
        if month < start:
            continue
        members = started & (first == i)
        size = int(members.sum())
        if size == 0:
            continue
        shares = [
            round(float(paying[k, members].sum()) / size, 4) for k in range(i, len(matrix.months))
        ]
        out.append({"cohort": month, "customers": size, "retention": shares})
    return out
