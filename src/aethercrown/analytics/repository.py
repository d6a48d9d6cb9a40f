"""Every query the analytics views make. Tenant scoping comes from TenantRepository."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Date, Engine, Select, String, case, cast, func, select, union
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, load_only
from sqlalchemy.sql.elements import ColumnElement

from aethercrown.analytics.metrics import SubscriptionRecord, segment_for_size
from aethercrown.analytics.models import AnalyticsSnapshot
from aethercrown.clock import utcnow
from aethercrown.core.models import Decision
from aethercrown.core.tenancy import TenantRepository, where_given
from aethercrown.data.models import (
    ActiveUserDay,
    ActiveUserMonth,
    ActivityEvent,
    Customer,
    MarketingSpend,
    Subscription,
)
from aethercrown.db.engine import make_session_factory
from aethercrown.db.session import write_transaction, wrote
from aethercrown.tasks.models import COMPLETED, FAILED, RUNNING, Task


def _month(session: Session, column: Any) -> ColumnElement[Any]:
    """'YYYY-MM' of a timestamp or date column (UTC), on either backend."""
    if session.get_bind().dialect.name == "postgresql":
        if isinstance(column.type, Date):
            return func.to_char(column, "YYYY-MM")
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    return cast(func.strftime("%Y-%m", column), String)


class SubscriptionData(TenantRepository[Subscription]):
    model = Subscription

    def currencies(self) -> list[tuple[str, int]]:
        rows = self.session.execute(
            self.select(Subscription.currency, func.count())
            .group_by(Subscription.currency)
            .order_by(func.count().desc(), Subscription.currency)
        ).all()
        return [(str(c), int(n)) for c, n in rows]

    def plans(self) -> list[str]:
        stmt = self.select(Subscription.plan).distinct().order_by(Subscription.plan)
        return [str(p) for p in self.session.scalars(stmt)]

    def records(self, currency: str, plan: str | None) -> list[SubscriptionRecord]:
        stmt = self.select(
            Subscription.customer_id,
            Subscription.plan,
            Subscription.amount,
            Subscription.interval,
            Subscription.started_at,
            Subscription.ended_at,
            Subscription.quantity,
            Subscription.discount_percent,
            Subscription.discount_amount,
            Subscription.trial_end,
        ).where(Subscription.currency == currency)
        stmt = where_given(stmt, (Subscription.plan, plan))
        return [
            SubscriptionRecord(
                customer=str(r[0]),
                plan=r[1],
                amount=int(r[2]),
                interval=r[3],
                started_at=r[4],
                ended_at=r[5],
                quantity=int(r[6] or 1),
                discount_percent=float(r[7] or 0.0),
                discount_amount=int(r[8] or 0),
                trial_end=r[9],
            )
            for r in self.session.execute(stmt)
        ]

    def fingerprint_parts(self) -> list[Any]:
        return [
            self.select(func.count()).scalar_subquery(),
            self.select(func.max(Subscription.updated_at)).scalar_subquery(),
        ]


class CustomerData(TenantRepository[Customer]):
    model = Customer

    def segments(self) -> dict[str, str]:
        rows = self.session.execute(self.select(Customer.id, Customer.company_size))
        return {str(cid): segment_for_size(size) for cid, size in rows}

    def fingerprint_parts(self) -> list[Any]:
        # A deleted customer takes its subscriptions with it (that count changes); an edited
        # one (a new company size moves its segment) bumps updated_at.
        return [self.select(func.max(Customer.updated_at)).scalar_subquery()]


class ActivityData(TenantRepository[ActivityEvent]):
    """Active users, read from the per-day distinct-user rollup (``ActiveUserDay``, kept by
    ingestion) rather than from every event: the same counts as the distinct users of the
    events, from a table a few times smaller that needs no date arithmetic per event."""

    model = ActivityEvent

    def _user_days(self, *columns: Any) -> Select[Any]:
        return select(*columns).where(ActiveUserDay.tenant_id == self.tenant_id)

    def daily_active_users(self) -> dict[date, int]:
        day = ActiveUserDay.day
        rows = self.session.execute(self._user_days(day, func.count()).group_by(day)).all()
        return {_as_date(d): int(n) for d, n in rows}

    def monthly_active_users(self) -> dict[str, int]:
        month = ActiveUserMonth.month
        rows = self.session.execute(
            select(month, func.count())
            .where(ActiveUserMonth.tenant_id == self.tenant_id)
            .group_by(month)
        )
        return {_as_date(m).strftime("%Y-%m"): int(n) for m, n in rows}

    def active_users_since(self, since: datetime) -> int:
        """Distinct users with an event at or after ``since``: the rollup's whole days after
        since's day, and the events of since's own day from since on."""
        next_day = since.astimezone(UTC).date() + timedelta(days=1)
        whole_days = self._user_days(ActiveUserDay.customer_id, ActiveUserDay.user_id).where(
            ActiveUserDay.day >= next_day
        )
        first_day = self.select(ActivityEvent.customer_id, ActivityEvent.user_id).where(
            ActivityEvent.occurred_at >= since,
            ActivityEvent.occurred_at < datetime.combine(next_day, time.min, UTC),
        )
        users = union(whole_days, first_day).subquery()  # UNION: distinct pairs
        return int(self.session.scalar(select(func.count()).select_from(users)) or 0)

    def fingerprint_parts(self) -> list[Any]:
        # Events are appended, not edited: the newest id says whether any arrived (a count
        # would read the whole index). Deleting a customer's events shows in the customers part.
        return [self.select(func.max(ActivityEvent.id)).scalar_subquery()]


class MarketingData(TenantRepository[MarketingSpend]):
    model = MarketingSpend

    def spend_by_month(self, currency: str) -> dict[str, int]:
        month = _month(self.session, MarketingSpend.day)
        rows = self.session.execute(
            self.select(month, func.sum(MarketingSpend.spend))
            .where(MarketingSpend.currency == currency)
            .group_by(month)
        ).all()
        return {str(m): int(s or 0) for m, s in rows}

    def fingerprint_parts(self) -> list[Any]:
        return [
            self.select(func.count()).scalar_subquery(),
            self.select(func.max(MarketingSpend.id)).scalar_subquery(),
            self.select(func.sum(MarketingSpend.spend)).scalar_subquery(),
        ]


def data_fingerprint(session: Session, tenant_id: Any) -> tuple[Any, ...]:
    """Row counts and last changes of every table the monthly series is computed from, in one
    round trip (each part an indexed aggregate carrying its repository's tenant filter)."""
    parts = [
        *SubscriptionData(session, tenant_id).fingerprint_parts(),
        *CustomerData(session, tenant_id).fingerprint_parts(),
        *ActivityData(session, tenant_id).fingerprint_parts(),
        *MarketingData(session, tenant_id).fingerprint_parts(),
    ]
    return tuple(session.execute(select(*parts)).one())


class DecisionData(TenantRepository[Decision]):
    model = Decision

    def _period(self, stmt: Select[Any], start: datetime, end: datetime) -> Select[Any]:
        return stmt.where(Decision.created_at >= start, Decision.created_at < end)

    def counts_by_kind(self, start: datetime, end: datetime) -> list[tuple[str, int, int]]:
        """(kind, decisions, decisions with a known outcome) in the period."""
        return [(k["kind"], k["decisions"], k["with_outcome"]) for k in self.by_kind(start, end)]

    def by_kind(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Per decision kind in the period, in one pass over the ledger: decisions, with an
        outcome, and over those with both a prediction and an outcome: their count, Σ predicted,
        Σ realised, Σ |predicted − realised| / |realised| (non-zero realised) and its count; the
        mean seconds from decision to outcome; and Σ outcome over every decision with one."""
        both = Decision.predicted_value.is_not(None) & Decision.outcome_value.is_not(None)
        ape = case(
            (
                both & (Decision.outcome_value != 0),
                func.abs(Decision.predicted_value - Decision.outcome_value)
                / func.abs(Decision.outcome_value),
            ),
            else_=None,
        )
        if self.session.get_bind().dialect.name == "postgresql":
            seconds: Any = func.extract("epoch", Decision.outcome_at - Decision.created_at)
        else:
            seconds = (
                func.julianday(Decision.outcome_at) - func.julianday(Decision.created_at)
            ) * 86400.0
        stmt = self._period(
            self.select(
                Decision.kind,
                func.count(),
                func.count(Decision.outcome_at),
                func.sum(case((both, 1), else_=0)),
                func.sum(case((both, Decision.predicted_value), else_=None)),
                func.sum(case((both, Decision.outcome_value), else_=None)),
                func.sum(ape),
                func.count(ape),
                func.avg(seconds),
                func.sum(Decision.outcome_value),
            ),
            start,
            end,
        ).group_by(Decision.kind)
        return [
            {
                "kind": str(kind),
                "decisions": int(n),
                "with_outcome": int(done),
                "scored": int(scored or 0),
                "predicted": float(predicted or 0.0),
                "realised": float(realised or 0.0),
                "ape_sum": float(ape_sum or 0.0),
                "ape_count": int(ape_n or 0),
                "mean_seconds": None if mean is None else float(mean),
                "outcome_total": float(outcomes or 0.0),
            }
            for kind, n, done, scored, predicted, realised, ape_sum, ape_n, mean, outcomes in (
                self.session.execute(stmt)
            )
        ]

    def groups(self, start: datetime, end: datetime) -> list[tuple[str, str, int, int, int]]:
        """(kind, subject type, decisions, distinct subjects, with an outcome) in the period."""
        stmt = self._period(
            self.select(
                Decision.kind,
                Decision.subject_type,
                func.count(),
                func.count(func.distinct(Decision.subject_id)),
                func.count(Decision.outcome_at),
            ),
            start,
            end,
        ).group_by(Decision.kind, Decision.subject_type)
        return [
            (str(k), str(t), int(n), int(s), int(o)) for k, t, n, s, o in self.session.execute(stmt)
        ]

    def _label(self) -> ColumnElement[Any]:
        return case((Decision.outcome_value >= 0.5, 1), else_=0)

    def _scored_with_outcome(
        self, prefix: str, exclude: Sequence[str]
    ) -> tuple[ColumnElement[bool], ...]:
        """The decisions a calibration reads: of kinds under ``prefix`` (less ``exclude``),
        with a predicted value and a known outcome."""
        return (
            Decision.kind.startswith(prefix, autoescape=True),
            Decision.kind.not_in(list(exclude)),
            Decision.predicted_value.is_not(None),
            Decision.outcome_value.is_not(None),
        )

    def score_histogram(
        self,
        prefix: str,
        start: datetime,
        end: datetime,
        resolution: int,
        exclude: Sequence[str] = (),
    ) -> list[tuple[int, int, int, float, float]]:
        """Decisions of the kinds starting with ``prefix`` (less the ``exclude``d kinds) with a
        prediction and a known outcome, grouped by the prediction rounded to 1/resolution and by
        the outcome label (outcome_value ≥ 0.5): rows of (bin, label, count, sum of predictions,
        sum of squared errors). Aggregated in SQL, so the ledger's size does not reach Python."""
        label = self._label()
        bucket = func.round(Decision.predicted_value * resolution)
        stmt = self._period(
            self.select(
                bucket,
                label,
                func.count(),
                func.sum(Decision.predicted_value),
                func.sum((Decision.predicted_value - label) * (Decision.predicted_value - label)),
            ).where(*self._scored_with_outcome(prefix, exclude)),
            start,
            end,
        ).group_by(bucket, label)
        return [
            (int(b), int(lab), int(n), float(sp), float(se))
            for b, lab, n, sp, se in self.session.execute(stmt)
        ]

    def monthly_score_histogram(
        self,
        prefix: str,
        start: datetime,
        end: datetime,
        resolution: int,
        exclude: Sequence[str] = (),
    ) -> list[tuple[str, int, int, int]]:
        """The decisions ``score_histogram`` counts, grouped also by the month they were made
        in ('YYYY-MM', UTC): rows of (month, bin, label, count), in one aggregate query."""
        label = self._label()
        bucket = func.round(Decision.predicted_value * resolution)
        month = _month(self.session, Decision.created_at)
        stmt = self._period(
            self.select(month, bucket, label, func.count()).where(
                *self._scored_with_outcome(prefix, exclude)
            ),
            start,
            end,
        ).group_by(month, bucket, label)
        return [(str(m), int(b), int(lab), int(n)) for m, b, lab, n in self.session.execute(stmt)]

    def scored_in(
        self, kind: str, start: datetime, end: datetime, limit: int
    ) -> tuple[tuple[int, int, int], list[tuple[str, float, float | None, datetime]]]:
        """``kind``'s decisions made in ``[start, end)`` with a prediction: (how many, how many
        with an outcome, how many positive), and the ``limit`` highest predictions as (subject
        id, predicted, outcome value, made at)."""
        where = (Decision.kind == kind, Decision.predicted_value.is_not(None))
        label = case((Decision.outcome_value >= 0.5, 1), else_=0)
        counts = self.session.execute(
            self._period(
                self.select(
                    func.count(), func.count(Decision.outcome_value), func.sum(label)
                ).where(*where),
                start,
                end,
            )
        ).one()
        stmt = (
            self._period(
                self.select(
                    Decision.subject_id,
                    Decision.predicted_value,
                    Decision.outcome_value,
                    Decision.created_at,
                ).where(*where),
                start,
                end,
            )
            .order_by(Decision.predicted_value.desc(), Decision.subject_id)
            .limit(limit)
        )
        rows = [(str(s), float(p), o, at) for s, p, o, at in self.session.execute(stmt)]
        total, known, positive = counts
        return (int(total or 0), int(known or 0), int(positive or 0)), rows

    def holdout_outcomes(
        self, kind: str, start: datetime, end: datetime
    ) -> list[tuple[bool, bool, int]]:
        """Decisions of ``kind`` (campaigns) with a known outcome, counted by whether they were
        held out (``output.holdout``) and whether the outcome was positive (≥ 0.5: churned):
        rows of (holdout, positive, count)."""
        holdout = Decision.output["holdout"].as_boolean()
        # One expression object in the select and the GROUP BY: two would bind their constants
        # as separate parameters, which PostgreSQL cannot tell are the grouped expression.
        label = self._label()
        stmt = self._period(
            self.select(holdout, label, func.count()).where(
                Decision.kind == kind, Decision.outcome_value.is_not(None)
            ),
            start,
            end,
        ).group_by(holdout, label)
        return [(bool(h), bool(p), int(n)) for h, p, n in self.session.execute(stmt)]

    def feed_statement(self, kind: str | None) -> Select[Any]:
        # Only what the sanitised feed shows: inputs, outputs and outcomes are never loaded.
        stmt = self.select().options(
            load_only(
                Decision.id,
                Decision.kind,
                Decision.subject_type,
                Decision.model,
                Decision.model_version,
                Decision.created_at,
                Decision.outcome_at,
            )
        )
        if kind is not None:
            stmt = stmt.where(Decision.kind.startswith(kind, autoescape=True))
        return stmt


class TaskData(TenantRepository[Task]):
    """The AI task queue (tasks domain): what is running now and what finished in a period."""

    model = Task

    def running(self) -> int:
        return int(
            self.session.scalar(self.select(func.count()).where(Task.status == RUNNING)) or 0
        )

    def finished(self, start: datetime, end: datetime) -> dict[str, Any]:
        if self.session.get_bind().dialect.name == "postgresql":
            seconds: Any = func.extract("epoch", Task.finished_at - Task.started_at)
        else:
            seconds = (func.julianday(Task.finished_at) - func.julianday(Task.started_at)) * 86400.0
        done = Task.status == COMPLETED
        stmt = self.select(
            func.sum(case((done, 1), else_=0)),
            func.sum(case((Task.status == FAILED, 1), else_=0)),
            func.avg(case((done, seconds), else_=None)),
        ).where(Task.finished_at >= start, Task.finished_at < end)
        completed, failed, mean = self.session.execute(stmt).one()
        return {
            "completed": int(completed or 0),
            "failed": int(failed or 0),
            "mean_run_seconds": None if mean is None else round(float(mean), 1),
        }


class SnapshotStore(TenantRepository[AnalyticsSnapshot]):
    model = AnalyticsSnapshot

    def find(self, view: str) -> AnalyticsSnapshot | None:
        return self.session.scalars(self.select().where(AnalyticsSnapshot.view == view)).first()

    def save(self, view: str, fingerprint: str, payload: dict[str, Any]) -> None:
        """Insert or replace, best effort: a snapshot is a cache, so a concurrent writer of the
        same view (it computed the same figures) or a busy writer lock only means this request's
        figures are not kept; the answer is already computed.

        On SQLite the request's read transaction cannot take the write lock while another
        writer holds it (an upgrade fails at once instead of waiting), so the snapshot is
        written in its own short BEGIN IMMEDIATE transaction, which waits its turn. Unless the
        request has already written in its transaction (a default row created on first use):
        then that transaction holds the write lock, a second one would wait on it for nothing,
        and the snapshot goes in with the request's own writes."""
        bind = self.session.get_bind()
        if bind.dialect.name == "sqlite" and isinstance(bind, Engine) and not wrote(self.session):
            try:
                with write_transaction(make_session_factory(bind)) as own:
                    SnapshotStore(own, self.tenant_id).upsert(view, fingerprint, payload)
            except (IntegrityError, OperationalError):
                pass
            return
        try:
            with self.session.begin_nested():
                self.upsert(view, fingerprint, payload)
        except (IntegrityError, OperationalError):
            pass

    def upsert(self, view: str, fingerprint: str, payload: dict[str, Any]) -> None:
        existing = self.find(view)
        if existing is not None:
            existing.fingerprint = fingerprint
            existing.payload = payload
            existing.computed_at = utcnow()
        else:
            self.add(AnalyticsSnapshot(view=view, fingerprint=fingerprint, payload=payload))
        self.session.flush()

    def all_views(self) -> Sequence[AnalyticsSnapshot]:
        return self.all()

    def prune(self, prefix: str, computed_before: datetime) -> None:
        self.session.execute(
            self.delete().where(
                AnalyticsSnapshot.view.startswith(prefix, autoescape=True),
                AnalyticsSnapshot.computed_at < computed_before,
            )
        )


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))
