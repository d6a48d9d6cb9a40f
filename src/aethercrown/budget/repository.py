"""Queries of the budget optimizer: the tenant's marketing rows and its allocation decisions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from aethercrown.budget.models import BudgetFitCache
from aethercrown.clock import utcnow
from aethercrown.core.models import Decision
from aethercrown.core.tenancy import TenantRepository
from aethercrown.data.models import MarketingSpend

DECISION_KIND = "budget_allocation"


class MarketingRepository(TenantRepository[MarketingSpend]):
    model = MarketingSpend
    noun = "Marketing row"

    def latest_day(self) -> date | None:
        day: date | None = self.session.scalar(self.select(func.max(MarketingSpend.day)))
        return day

    def between(self, first: date, last: date) -> Sequence[MarketingSpend]:
        stmt = (
            self.select()
            .where(MarketingSpend.day >= first, MarketingSpend.day <= last)
            .order_by(MarketingSpend.day, MarketingSpend.channel)
        )
        return self.all(stmt)

    def points_between(self, first: date, last: date) -> Sequence[Any]:
        """The columns a budget fit reads, as plain rows (day, channel, currency, spend,
        attributed_revenue, conversions): a 548-day window is thousands of rows, and building
        an ORM object (and its UUIDs) for each was most of a warm request's time."""
        stmt = (
            self.select(
                MarketingSpend.day,
                MarketingSpend.channel,
                MarketingSpend.currency,
                MarketingSpend.spend,
                MarketingSpend.attributed_revenue,
                MarketingSpend.conversions,
            )
            .where(MarketingSpend.day >= first, MarketingSpend.day <= last)
            .order_by(MarketingSpend.day, MarketingSpend.channel)
        )
        return self.session.execute(stmt).all()

    def has_rows_between(self, after: date, before: date) -> bool:
        """Whether any day strictly between the two has a row."""
        stmt = self.select(func.count()).where(
            MarketingSpend.day > after, MarketingSpend.day < before
        )
        return bool(self.session.scalar(stmt))


class DecisionRepository(TenantRepository[Decision]):
    model = Decision
    noun = "Allocation"

    def allocations(self) -> Select[Any]:
        return self.select().where(Decision.kind == DECISION_KIND)

    def open_allocations(self) -> Sequence[Decision]:
        stmt = self.allocations().where(Decision.outcome_at.is_(None)).order_by(Decision.id)
        return self.all(stmt)

    def for_period(self, subject_id: str) -> Decision | None:
        stmt = self.allocations().where(Decision.subject_id == subject_id).limit(1)
        return self.session.scalars(stmt).first()


class FitCacheRepository(TenantRepository[BudgetFitCache]):
    model = BudgetFitCache
    noun = "Fit"

    def payloads(self, fingerprints: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not fingerprints:
            return {}
        stmt = self.select().where(BudgetFitCache.fingerprint.in_(list(fingerprints)))
        return {row.fingerprint: row.payload for row in self.all(stmt)}

    def store(self, rows: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        """Insert (fingerprint, channel, payload) rows; one a concurrent request stored first
        is kept (same data, same fit)."""
        if not rows:
            return
        dialect = self.session.get_bind().dialect.name
        builder = pg_insert if dialect == "postgresql" else sqlite_insert
        now = utcnow()
        stmt = (
            builder(BudgetFitCache)
            .values(
                [
                    {
                        "tenant_id": self.tenant_id,
                        "fingerprint": fingerprint,
                        "channel": channel,
                        "payload": payload,
                        "computed_at": now,
                    }
                    for fingerprint, channel, payload in rows
                ]
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "fingerprint"])
        )
        self.session.execute(stmt)


def plan_fingerprint(session: Any, tenant_id: Any) -> tuple[Any, ...]:
    """What ``current_plan`` is computed from, in one round trip: the marketing days (count,
    last id, and the sums an in-place correction changes) and the stored fits (count, last)."""
    days = MarketingRepository(session, tenant_id)
    fits = FitCacheRepository(session, tenant_id)
    m = MarketingSpend
    parts = [
        days.select(func.count()).scalar_subquery(),
        days.select(func.max(m.id)).scalar_subquery(),
        days.select(func.sum(m.spend)).scalar_subquery(),
        days.select(func.sum(m.attributed_revenue)).scalar_subquery(),
        days.select(func.sum(m.conversions)).scalar_subquery(),
        days.select(func.max(m.day)).scalar_subquery(),
        fits.select(func.count()).scalar_subquery(),
        fits.select(func.max(BudgetFitCache.id)).scalar_subquery(),
    ]
    return tuple(session.execute(select(*parts)).one())
