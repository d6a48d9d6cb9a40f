"""Every churn query: set-based aggregates over the business data, the registry, scores and
campaigns. Aggregates are computed for all customers at once, never per customer."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, and_, case, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from aethercrown.churn import features as F
from aethercrown.churn.features import FORTNIGHT_DAYS, QUARTER_DAYS, RECENT_DAYS, FloatArray
from aethercrown.churn.models import ChurnModel, ChurnScore, RetentionCampaign
from aethercrown.churn.renewal import Life
from aethercrown.clock import utcnow
from aethercrown.core.models import Decision, Tenant
from aethercrown.core.tenancy import TenantRepository
from aethercrown.data.models import ActivityEvent, Customer, Payment, Subscription, SupportTicket
from aethercrown.db.base import new_id


@dataclass
class CustomerTable:
    ids: list[uuid.UUID]
    external_ids: list[str]
    signup: FloatArray  # epoch seconds at midnight UTC of the signup date
    company_size: FloatArray
    annual_revenue: FloatArray
    attributes: list[dict[str, Any]]

    def index(self) -> dict[uuid.UUID, int]:
        return {cid: i for i, cid in enumerate(self.ids)}


@dataclass
class SubscriptionTable:
    """Every subscription as parallel arrays (customer index, times in epoch seconds)."""

    customer: np.ndarray
    started: FloatArray
    ended: FloatArray  # +inf while open
    mrr_minor: FloatArray


def _epoch(value: datetime | date | None) -> float:
    if value is None:
        return float("nan")
    if isinstance(value, datetime):
        return value.timestamp()
    return (value - date(1970, 1, 1)).days * 86400.0


class CustomerRepository(TenantRepository[Customer]):
    model = Customer
    noun = "Customer"

    def table(self, customer_ids: Sequence[uuid.UUID] | None = None) -> CustomerTable:
        stmt = self.select(
            Customer.id,
            Customer.external_id,
            Customer.signup_date,
            Customer.company_size,
            Customer.annual_revenue,
            Customer.attributes,
        ).order_by(Customer.id)
        if customer_ids is not None:
            stmt = stmt.where(Customer.id.in_(list(customer_ids)))
        rows = self.session.execute(stmt).all()
        return CustomerTable(
            ids=[r[0] for r in rows],
            external_ids=[r[1] for r in rows],
            signup=np.array([_epoch(r[2]) for r in rows], dtype=np.float64),
            company_size=np.array(
                [np.nan if r[3] is None else r[3] for r in rows], dtype=np.float64
            ),
            annual_revenue=np.array(
                [np.nan if r[4] is None else r[4] for r in rows], dtype=np.float64
            ),
            attributes=[r[5] or {} for r in rows],
        )

    def existing(self, customer_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        return set(
            self.session.scalars(self.select(Customer.id).where(Customer.id.in_(customer_ids)))
        )


# Up to this many customers, their rows are read by customer rather than all at once.
FEW_CUSTOMERS = 500


class SubscriptionRepository(TenantRepository[Subscription]):
    model = Subscription

    def table(self, index: dict[uuid.UUID, int]) -> SubscriptionTable:
        rows = self.session.execute(
            self.select(
                Subscription.customer_id,
                Subscription.started_at,
                Subscription.ended_at,
                Subscription.amount,
                Subscription.quantity,
                Subscription.interval,
                Subscription.discount_percent,
                Subscription.discount_amount,
            ).where(*_among(Subscription.customer_id, _few(index)))
        ).all()
        keep = [r for r in rows if r[0] in index]
        amount = np.array([r[3] * r[4] for r in keep], dtype=np.float64)
        percent = np.array([r[6] or 0.0 for r in keep], dtype=np.float64)
        off = np.array([r[7] or 0 for r in keep], dtype=np.float64)
        per_interval = np.maximum(amount * (1 - percent / 100.0) - off, 0.0)
        months = np.array([12.0 if r[5] == "year" else 1.0 for r in keep])
        return SubscriptionTable(
            customer=np.array([index[r[0]] for r in keep], dtype=np.int64),
            started=np.array([r[1].timestamp() for r in keep], dtype=np.float64),
            ended=np.array(
                [np.inf if r[2] is None else r[2].timestamp() for r in keep], dtype=np.float64
            ),
            mrr_minor=per_interval / months,
        )

    def lives(self, currency: str, customer_ids: Sequence[uuid.UUID] | None = None) -> list[Life]:
        """The subscriptions in ``currency`` (of ``customer_ids`` when given) that renewals and
        MRR are read from."""
        stmt = self.select(
            Subscription.customer_id,
            Subscription.plan,
            Subscription.amount,
            Subscription.quantity,
            Subscription.interval,
            Subscription.discount_percent,
            Subscription.discount_amount,
            Subscription.started_at,
            Subscription.ended_at,
            Subscription.trial_end,
        ).where(Subscription.currency == currency)
        if customer_ids is not None:
            stmt = stmt.where(Subscription.customer_id.in_(list(customer_ids)))
        return [
            Life(
                customer_id=r[0],
                plan=r[1],
                amount=int(r[2]),
                quantity=int(r[3] or 1),
                interval=r[4],
                discount_percent=float(r[5] or 0.0),
                discount_amount=int(r[6] or 0),
                started_at=r[7],
                ended_at=r[8],
                trial_end=r[9],
            )
            for r in self.session.execute(stmt)
        ]

    def data_span(self) -> tuple[datetime | None, datetime | None]:
        row = self.session.execute(
            self.select(func.min(Subscription.started_at), func.max(Subscription.started_at))
        ).one()
        return row[0], row[1]


class ActivityRepository(TenantRepository[ActivityEvent]):
    model = ActivityEvent

    def last_logins(
        self, customer_ids: Sequence[uuid.UUID], at_or_before: datetime
    ) -> dict[uuid.UUID, datetime]:
        """Each customer's latest login or session at or before the moment (customers with none
        are left out): one backward step on the (tenant, customer, time) index per customer,
        instead of an aggregate over their whole history."""
        e = ActivityEvent
        out: dict[uuid.UUID, datetime] = {}
        for start in range(0, len(customer_ids), 500):
            chunk = list(customer_ids[start : start + 500])
            latest = (
                self.select(e.occurred_at)
                .where(
                    e.customer_id == Customer.id,
                    e.kind.in_(("login", "session")),
                    e.occurred_at <= at_or_before,
                )
                .order_by(e.occurred_at.desc())
                .limit(1)
                .scalar_subquery()
            )
            stmt = CustomerRepository(self.session, self.tenant_id).select(Customer.id, latest)
            for cid, moment in self.session.execute(stmt.where(Customer.id.in_(chunk))):
                if moment is not None:
                    out[cid] = moment
        return out

    def latest(self) -> datetime | None:
        return self.session.scalar(self.select(func.max(ActivityEvent.occurred_at)))

    def earliest(self) -> datetime | None:
        return self.session.scalar(self.select(func.min(ActivityEvent.occurred_at)))


class EventAggregateQueries:
    """The three set-based aggregate queries (activity, tickets, payments) at one moment."""

    def __init__(self, session: Any, tenant_id: uuid.UUID) -> None:
        self.activity = ActivityRepository(session, tenant_id)
        self.tickets = _TicketRepository(session, tenant_id)
        self.payments = _PaymentRepository(session, tenant_id)
        self.session = session

    def at(self, as_of: datetime, index: dict[uuid.UUID, int]) -> F.EventAggregates:
        n = len(index)
        only = _few(index)
        activity = self._activity_rows(as_of, only)
        tickets = self._ticket_rows(as_of, only)
        payments = self._failed_payment_rows(as_of, only)

        def column(rows: Sequence[Any], pos: int, fill: float) -> FloatArray:
            out = np.full(n, fill, dtype=np.float64)
            for row in rows:
                i = index.get(row[0])
                if i is not None and row[pos] is not None:
                    out[i] = float(row[pos])
            return out

        last = np.full(n, np.nan, dtype=np.float64)
        for row in activity:
            i = index.get(row[0])
            if i is not None and row[1] is not None:
                last[i] = row[1].timestamp()
        quiet = [cid for cid, i in index.items() if np.isnan(last[i])]
        prior = as_of - timedelta(days=2 * RECENT_DAYS)
        for cid, moment in self.activity.last_logins(quiet, prior).items():
            last[index[cid]] = moment.timestamp()
        return F.EventAggregates(
            last_activity=last,
            sessions_recent=column(activity, 2, 0.0),
            sessions_prior=column(activity, 3, 0.0),
            session_seconds_recent=column(activity, 4, 0.0),
            features_recent=column(activity, 5, 0.0),
            features_prior=column(activity, 6, 0.0),
            tickets_quarter=column(tickets, 1, 0.0),
            open_tickets=column(tickets, 2, 0.0),
            satisfaction_quarter=column(tickets, 3, np.nan),
            failed_payments_quarter=column(payments, 1, 0.0),
            sessions_fortnight=column(activity, 7, 0.0),
            sessions_fortnight_prior=column(activity, 8, 0.0),
            unhappy_tickets_quarter=column(tickets, 4, 0.0),
            failed_payments_recent=column(payments, 2, 0.0),
        )

    def _activity_rows(self, as_of: datetime, only: list[uuid.UUID] | None) -> Sequence[Any]:
        """Per customer: last login or session, sessions, session seconds and distinct features
        in the recent and prior windows, sessions in the last two fortnights."""
        recent = as_of - timedelta(days=RECENT_DAYS)
        prior = as_of - timedelta(days=2 * RECENT_DAYS)
        fortnight = as_of - timedelta(days=FORTNIGHT_DAYS)
        fortnight_prior = as_of - timedelta(days=2 * FORTNIGHT_DAYS)
        e = ActivityEvent
        is_session = e.kind == "session"
        in_recent = e.occurred_at > recent
        in_prior = and_(e.occurred_at > prior, e.occurred_at <= recent)
        in_fortnight_prior = and_(e.occurred_at > fortnight_prior, e.occurred_at <= fortnight)
        # Every window lies in the 60 days before the moment, so only those rows are read (the
        # time index); the last login of a customer quiet for longer is looked up on its own.
        return self.session.execute(
            self.activity.select(
                e.customer_id,
                func.max(case((e.kind.in_(("login", "session")), e.occurred_at))),
                func.sum(case((and_(is_session, in_recent), 1), else_=0)),
                func.sum(case((and_(is_session, in_prior), 1), else_=0)),
                func.sum(case((and_(is_session, in_recent), e.duration_seconds), else_=0)),
                func.count(func.distinct(case((and_(e.kind == "feature", in_recent), e.feature)))),
                func.count(func.distinct(case((and_(e.kind == "feature", in_prior), e.feature)))),
                func.sum(case((and_(is_session, e.occurred_at > fortnight), 1), else_=0)),
                func.sum(case((and_(is_session, in_fortnight_prior), 1), else_=0)),
            )
            .where(e.occurred_at <= as_of, e.occurred_at > prior, *_among(e.customer_id, only))
            .group_by(e.customer_id)
        ).all()

    def _ticket_rows(self, as_of: datetime, only: list[uuid.UUID] | None) -> Sequence[Any]:
        """Per customer: tickets opened this quarter, open at the moment, their satisfaction,
        and the unhappy ones (rated 1 or 2)."""
        quarter = as_of - timedelta(days=QUARTER_DAYS)
        t = SupportTicket
        closed_by_then = and_(t.closed_at.is_not(None), t.closed_at <= as_of)
        unhappy = and_(t.opened_at > quarter, closed_by_then, t.satisfaction <= 2)
        return self.session.execute(
            self.tickets.select(
                t.customer_id,
                func.sum(case((t.opened_at > quarter, 1), else_=0)),
                func.sum(case((or_(t.closed_at.is_(None), t.closed_at > as_of), 1), else_=0)),
                func.avg(case((and_(t.opened_at > quarter, closed_by_then), t.satisfaction))),
                func.sum(case((unhappy, 1), else_=0)),
            )
            .where(t.opened_at <= as_of, *_among(t.customer_id, only))
            .group_by(t.customer_id)
        ).all()

    def _failed_payment_rows(self, as_of: datetime, only: list[uuid.UUID] | None) -> Sequence[Any]:
        """Per customer: failed payments this quarter and in the recent window."""
        recent = as_of - timedelta(days=RECENT_DAYS)
        quarter = as_of - timedelta(days=QUARTER_DAYS)
        p = Payment
        return self.session.execute(
            self.payments.select(
                p.customer_id, func.count(), func.sum(case((p.occurred_at > recent, 1), else_=0))
            )
            .where(
                p.occurred_at <= as_of,
                p.occurred_at > quarter,
                p.status == "failed",
                *_among(p.customer_id, only),
            )
            .group_by(p.customer_id)
        ).all()


def _few(index: dict[uuid.UUID, int]) -> list[uuid.UUID] | None:
    """The customers to filter on when they are few (a prediction on request: read through
    the customer indexes); None for the whole base (scoring, training: one pass over a window)."""
    return list(index) if len(index) <= FEW_CUSTOMERS else None


def _among(column: Any, only: list[uuid.UUID] | None) -> list[Any]:
    return [] if only is None else [column.in_(only)]


class _TicketRepository(TenantRepository[SupportTicket]):
    model = SupportTicket


class _PaymentRepository(TenantRepository[Payment]):
    model = Payment


class ModelRepository(TenantRepository[ChurnModel]):
    model = ChurnModel
    noun = "Churn model"

    def promoted(self, feature_set: str) -> ChurnModel | None:
        return self.session.scalar(
            self.select()
            .where(ChurnModel.feature_set == feature_set, ChurnModel.promoted.is_(True))
            .order_by(ChurnModel.version.desc())
            .limit(1)
        )

    def next_version(self, feature_set: str) -> int:
        current = self.session.scalar(
            self.select(func.max(ChurnModel.version)).where(ChurnModel.feature_set == feature_set)
        )
        return int(current or 0) + 1

    def demote_all(self, feature_set: str) -> None:
        self.session.execute(
            self.update()
            .where(ChurnModel.feature_set == feature_set, ChurnModel.promoted.is_(True))
            .values(promoted=False)
        )


class ScoreRepository(TenantRepository[ChurnScore]):
    model = ChurnScore

    def insert_many(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            for row in rows:
                row["tenant_id"] = self.tenant_id
            # Core executemany on the table: the ORM's bulk path builds per-row state first.
            table = cast(Table, ChurnScore.__table__)
            for start in range(0, len(rows), 10_000):
                self.session.execute(table.insert(), rows[start : start + 10_000])

    def latest_factors(self, customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
        """Each customer's factors from its latest score."""
        if not customer_ids:
            return {}
        latest = (
            self.select(ChurnScore.customer_id, func.max(ChurnScore.id).label("last"))
            .where(ChurnScore.customer_id.in_(customer_ids))
            .group_by(ChurnScore.customer_id)
            .subquery()
        )
        stmt = select(ChurnScore.customer_id, ChurnScore.factors).join(
            latest, ChurnScore.id == latest.c.last
        )
        return {cid: list(factors or []) for cid, factors in self.session.execute(stmt)}

    def latest_probabilities(
        self, customer_ids: Sequence[uuid.UUID] | None = None
    ) -> dict[uuid.UUID, tuple[float, datetime]]:
        """Each customer's latest churn probability and when it was scored."""
        latest = self.select(ChurnScore.customer_id, func.max(ChurnScore.id).label("last"))
        if customer_ids is not None:
            if not customer_ids:
                return {}
            latest = latest.where(ChurnScore.customer_id.in_(list(customer_ids)))
        last = latest.group_by(ChurnScore.customer_id).subquery()
        stmt = select(ChurnScore.customer_id, ChurnScore.probability, ChurnScore.scored_at).join(
            last, ChurnScore.id == last.c.last
        )
        return {cid: (float(p), at) for cid, p, at in self.session.execute(stmt)}


class CampaignRepository(TenantRepository[RetentionCampaign]):
    model = RetentionCampaign
    noun = "Campaign"

    def tenant_slug(self) -> str:
        slug = self.session.scalar(select(Tenant.slug).where(Tenant.id == self.tenant_id))
        assert slug is not None, self.tenant_id
        return slug

    def recent_customers(self, since: datetime) -> set[uuid.UUID]:
        """Customers who already had a campaign (or a holdout record) since ``since``."""
        return set(
            self.session.scalars(
                self.select(RetentionCampaign.customer_id).where(
                    RetentionCampaign.created_at > since
                )
            )
        )

    def insert_new(self, rows: list[dict[str, Any]]) -> set[uuid.UUID]:
        """Insert campaigns, skipping any (customer, cooldown bucket) that already has one, even
        one a concurrent scorer just wrote; returns the ids actually inserted."""
        if not rows:
            return set()
        for row in rows:
            row["tenant_id"] = self.tenant_id
        dialect = self.session.get_bind().dialect.name
        builder = pg_insert if dialect == "postgresql" else sqlite_insert
        inserted: set[uuid.UUID] = set()
        chunk = 2000
        for start in range(0, len(rows), chunk):
            stmt = (
                builder(RetentionCampaign)
                .values(rows[start : start + chunk])
                .on_conflict_do_nothing(
                    index_elements=["tenant_id", "customer_id", "cooldown_bucket"]
                )
                .returning(RetentionCampaign.id)
            )
            inserted.update(self.session.scalars(stmt))
        return inserted

    def treated_since(self, since: datetime, limit: int) -> list[uuid.UUID]:
        """Campaigns that act on their customer (not held out) opened since ``since``, newest
        first: the ones an email is written for."""
        stmt = (
            self.select(RetentionCampaign.id)
            .where(RetentionCampaign.created_at >= since, RetentionCampaign.holdout.is_(False))
            .order_by(RetentionCampaign.created_at.desc(), RetentionCampaign.id)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def mark_queued(self, ids: Sequence[uuid.UUID]) -> None:
        for start in range(0, len(ids), 2000):
            self.session.execute(
                self.update()
                .where(RetentionCampaign.id.in_(list(ids[start : start + 2000])))
                .values(status="queued")
            )

    def by_ids(self, ids: Sequence[uuid.UUID]) -> Sequence[RetentionCampaign]:
        return self.session.scalars(self.select().where(RetentionCampaign.id.in_(list(ids)))).all()

    def awaiting_outcome(self, created_before: datetime) -> Sequence[RetentionCampaign]:
        return self.session.scalars(
            self.select().where(
                RetentionCampaign.outcome.is_(None), RetentionCampaign.created_at <= created_before
            )
        ).all()

    def created_between(self, since: datetime, until: datetime) -> Sequence[Any]:
        """The campaigns created in ``[since, until)``, newest first, as plain rows of what a
        reader shows (no ORM objects: a month of a large tenant's campaigns)."""
        c = RetentionCampaign
        return self.session.execute(
            self.select(
                c.id, c.customer_id, c.risk_level, c.probability, c.holdout, c.status, c.outcome,
                c.created_at,
            )
            .where(c.created_at >= since, c.created_at < until)
            .order_by(c.created_at.desc(), c.id)
        ).all()  # fmt: skip

    def outcome_counts(self) -> list[tuple[str, bool, str, int]]:
        rows = self.session.execute(
            self.select(
                RetentionCampaign.risk_level,
                RetentionCampaign.holdout,
                RetentionCampaign.outcome,
                func.count(),
            )
            .where(RetentionCampaign.outcome.is_not(None))
            .group_by(
                RetentionCampaign.risk_level, RetentionCampaign.holdout, RetentionCampaign.outcome
            )
        ).all()
        return [(r[0], bool(r[1]), r[2], int(r[3])) for r in rows]


SCORE_KIND = "churn.score"
CAMPAIGN_KIND = "churn.campaign"


class DecisionRepository(TenantRepository[Decision]):
    """The churn scorer's decisions in the ledger, for joining their outcomes."""

    model = Decision

    def open_customer_scores(
        self, created_before: datetime
    ) -> list[tuple[uuid.UUID, str, datetime]]:
        """(id, customer id, when) of every customer score made by ``created_before`` whose
        outcome is not joined yet."""
        d = Decision
        rows = self.session.execute(
            self.select(d.id, d.subject_id, d.created_at).where(
                d.kind == SCORE_KIND,
                d.subject_type == "customer",
                d.outcome_at.is_(None),
                d.created_at <= created_before,
            )
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def campaign_decisions(self, campaign_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Decision]:
        """The ledger decision that created each campaign (its output names the campaign)."""
        out: dict[uuid.UUID, Decision] = {}
        wanted = [str(i) for i in campaign_ids]
        campaign = Decision.output["campaign_id"].as_string()
        for start in range(0, len(wanted), 1000):
            stmt = self.select().where(
                Decision.kind == CAMPAIGN_KIND, campaign.in_(wanted[start : start + 1000])
            )
            for decision in self.session.scalars(stmt):
                out[uuid.UUID(decision.output["campaign_id"])] = decision
        return out


def _instant(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def load_company_rows(session: Any, tenant_id: uuid.UUID, company: Any) -> dict[str, uuid.UUID]:
    """Bulk-write a simulated company's business-data rows (``simulate.SimulatedCompany.rows``,
    the row contract) for one tenant with Core inserts; returns external_id -> customer id.

    The same rows ``data.service.ingest_rows`` would store, without its per-row validation (the
    simulator's rows are valid by construction): for the simulator prior, tests and benchmarks,
    where ingestion's validation would dominate the run time."""

    now = utcnow()
    ids: dict[str, uuid.UUID] = {}
    sub_ids: dict[str, uuid.UUID] = {}
    owned = {"tenant_id": tenant_id}
    stamped = {"created_at": now, "updated_at": now}

    def customer(row: dict[str, Any]) -> dict[str, Any]:
        ids[row["external_id"]] = cid = new_id()
        return {
            "id": cid, **owned, **stamped, "external_id": row["external_id"], "name": row["name"],
            "email": row.get("email"), "company_size": row.get("company_size"),
            "annual_revenue": row.get("annual_revenue"), "currency": row.get("currency", "USD"),
            "country": row.get("country"), "signup_date": date.fromisoformat(row["signup_date"]),
            "attributes": row.get("attributes", {}),
        }  # fmt: skip

    def subscription(row: dict[str, Any]) -> dict[str, Any]:
        sub_ids[row["external_id"]] = sid = new_id()
        return {
            "id": sid, **owned, **stamped, "external_id": row["external_id"],
            "customer_id": ids[row["customer"]], "plan": row["plan"], "amount": row["amount"],
            "currency": row.get("currency", "USD"), "interval": row["interval"],
            "quantity": row.get("quantity", 1), "started_at": _instant(row["started_at"]),
            "ended_at": _instant(row.get("ended_at")),
            "discount_percent": row.get("discount_percent", 0.0),
            "discount_amount": row.get("discount_amount", 0),
            "trial_end": _instant(row.get("trial_end")),
        }  # fmt: skip

    def activity(row: dict[str, Any]) -> dict[str, Any]:
        return {
            **owned, "external_id": row["external_id"], "customer_id": ids[row["customer"]],
            "user_id": row["user_id"], "kind": row["kind"],
            "occurred_at": _instant(row["occurred_at"]),
            "duration_seconds": row.get("duration_seconds"), "feature": row.get("feature"),
        }  # fmt: skip

    def ticket(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": new_id(), **owned, **stamped, "external_id": row["external_id"],
            "customer_id": ids[row["customer"]], "opened_at": _instant(row["opened_at"]),
            "closed_at": _instant(row.get("closed_at")), "priority": row.get("priority", "normal"),
            "satisfaction": row.get("satisfaction"), "subject": row.get("subject"),
        }  # fmt: skip

    def payment(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": new_id(), **owned, **stamped, "external_id": row["external_id"],
            "customer_id": ids[row["customer"]],
            "subscription_id": sub_ids.get(row.get("subscription") or ""),
            "occurred_at": _instant(row["occurred_at"]), "status": row["status"],
            "amount": row["amount"], "currency": row.get("currency", "USD"),
            "reason": row.get("reason"),
        }  # fmt: skip

    for kind, model, convert in (
        ("customers", Customer, customer),
        ("subscriptions", Subscription, subscription),
        ("activity", ActivityEvent, activity),
        ("tickets", SupportTicket, ticket),
        ("payments", Payment, payment),
    ):
        for rows in company.rows[kind].batches(20_000):
            if rows:
                session.execute(cast(Table, model.__table__).insert(), [convert(r) for r in rows])
    return ids


def renewal_fingerprint(session: Any, tenant_id: uuid.UUID) -> tuple[Any, ...]:
    """What renewal outlooks are read from, in one round trip: the latest churn score and the
    subscriptions (count, last change)."""
    scores = ScoreRepository(session, tenant_id)
    subscriptions = SubscriptionRepository(session, tenant_id)
    parts = [
        scores.select(func.max(ChurnScore.id)).scalar_subquery(),
        subscriptions.select(func.count()).scalar_subquery(),
        subscriptions.select(func.max(Subscription.updated_at)).scalar_subquery(),
    ]
    return tuple(session.execute(select(*parts)).one())
