"""Queries over the tenant's plans and factor tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from aethercrown.clock import utcnow
from aethercrown.core.tenancy import TenantRepository
from aethercrown.db.base import new_id
from aethercrown.pricing.formula import DEFAULT_FACTORS, DEFAULT_OVERAGE, DEFAULT_PLANS
from aethercrown.pricing.models import PricePlan, PricingFactors


def insert_ignoring_conflicts(
    session: Session, table: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> None:
    """INSERT … ON CONFLICT DO NOTHING on both backends (concurrent first uses both seed)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    session.execute(stmt, list(rows))


class PlanRepository(TenantRepository[PricePlan]):
    model = PricePlan
    noun = "Plan"

    def list(self) -> Sequence[PricePlan]:
        return self.all(self.select().order_by(PricePlan.rank, PricePlan.slug))

    def by_slug(self, slug: str) -> PricePlan | None:
        return self.session.scalar(self.select().where(PricePlan.slug == slug))

    def ensure(self) -> Sequence[PricePlan]:
        """The tenant's plans, seeded with the defaults on first use."""
        plans = self.list()
        if not plans:
            self.seed([{**p, "currency": "USD", "overage": DEFAULT_OVERAGE} for p in DEFAULT_PLANS])
            plans = self.list()
        return plans

    def seed(self, plans: Sequence[dict[str, Any]]) -> None:
        now = utcnow()
        rows = [
            {**p, "id": new_id(), "tenant_id": self.tenant_id, "created_at": now, "updated_at": now}
            for p in plans
        ]
        insert_ignoring_conflicts(
            self.session,
            PricePlan.__table__,
            rows,
            ["tenant_id", "slug"],
        )


class FactorRepository(TenantRepository[PricingFactors]):
    model = PricingFactors
    noun = "Pricing factors"

    def current(self) -> PricingFactors | None:
        return self.session.scalar(self.select())

    def ensure(self) -> PricingFactors:
        row = self.current()
        if row is None:
            self.seed(DEFAULT_FACTORS)
            row = self.current()
        assert row is not None
        return row

    def seed(self, tables: dict[str, Any]) -> None:
        now = utcnow()
        insert_ignoring_conflicts(
            self.session,
            PricingFactors.__table__,
            [{"tenant_id": self.tenant_id, "tables": tables, "created_at": now, "updated_at": now}],
            ["tenant_id"],
        )
