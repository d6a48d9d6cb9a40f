"""Queries over tiers, tenants and what a tenant has stored."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from functools import cache
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Select,
    Uuid,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session

from aethercrown.core.models import Tenant, TenantRequestCount, TenantStoredRows, Tier
from aethercrown.core.tenancy import TenantScoped, where_given
from aethercrown.db.base import Base
from aethercrown.db.prepared import PreparedRead, ReadUnit
from aethercrown.db.tenant_scope import scope_to_tenant


class TierRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, slug: str) -> Tier | None:
        return self.session.get(Tier, slug)

    def all(self) -> Sequence[Tier]:
        return self.session.scalars(select(Tier).order_by(Tier.rank)).all()


_TIER_COLUMNS = (
    Tier.slug,
    Tier.name,
    Tier.rank,
    Tier.monthly_price,
    Tier.currency,
    Tier.requests_per_minute,
    Tier.max_stored_rows,
    Tier.max_seats,
    Tier.max_ai_agents,
    Tier.automation_min_interval_seconds,
)
# Built once: reading a tenant for display is a plain query (no ORM identity map or instance
# state), compiled once and run on the driver's cursor: the authenticated read's hot path.
# Not the id: it is the one asked for (a primary-key read), which saves parsing it back.
_TENANT_VIEW = PreparedRead(
    select(
        Tenant.name,
        Tenant.slug,
        Tenant.tier_slug,
        Tenant.status,
        Tenant.webhook_url,
        Tenant.created_at,
        Tenant.updated_at,
        *(c.label(f"quota_{c.key}") for c in _TIER_COLUMNS),
    )
    .join(Tier, Tier.slug == Tenant.tier_slug)
    .where(Tenant.id == bindparam("tenant_id"))
)

_QUOTA_LABELS = tuple((c.key, f"quota_{c.key}") for c in _TIER_COLUMNS)


def tenant_view(unit: ReadUnit, tenant_id: uuid.UUID) -> dict[str, Any] | None:
    """The tenant with its tier's quotas as plain values, shaped like ``TenantOut``, read in a
    read unit without loading ORM objects (the authenticated tenant read's hot path)."""
    values = unit.first(_TENANT_VIEW, {"tenant_id": tenant_id})
    if values is None:
        return None
    quotas = {key: values.pop(label) for key, label in _QUOTA_LABELS}
    values["id"] = tenant_id
    values["tier"] = values.pop("tier_slug")
    values["quotas"] = quotas
    return values


class TenantRepository:
    """Tenants themselves (operator scope): the one repository that is not tenant-scoped."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, tenant_id: uuid.UUID) -> Tenant | None:
        return self.session.get(Tenant, tenant_id)

    def slugs(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        rows = self.session.execute(select(Tenant.id, Tenant.slug).where(Tenant.id.in_(ids)))
        return {row.id: row.slug for row in rows}

    def by_slug(self, slug: str) -> Tenant | None:
        return self.session.scalar(select(Tenant).where(Tenant.slug == slug))

    def any(self) -> bool:
        return self.session.scalar(select(Tenant.id).limit(1)) is not None

    def list_statement(self, *, tier: str | None, status: str | None, q: str | None) -> Select[Any]:
        # An empty tier, status or q means "any", as None does.
        stmt = where_given(
            select(Tenant), (Tenant.tier_slug, tier or None), (Tenant.status, status or None)
        )
        if q:
            pattern = f"%{q.lower()}%"
            stmt = stmt.where(func.lower(Tenant.name).like(pattern) | Tenant.slug.like(pattern))
        return stmt


def all_tenants(session: Session) -> Sequence[Tenant]:
    """Every tenant of the installation, in id order (the operator's CLI)."""
    stmt = TenantRepository(session).list_statement(tier=None, status=None, q=None)
    return session.scalars(stmt.order_by(Tenant.id)).all()


def read_one_snapshot(session: Session) -> None:
    """Make the unit of work's transaction read one snapshot throughout (PostgreSQL's
    REPEATABLE READ; SQLite's transactions already do). Must be its first statement."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))


class TenantUsageRepository:
    def __init__(self, session: Session, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id
        scope_to_tenant(session, tenant_id)

    def requests_by_day(self, since: date) -> Sequence[TenantRequestCount]:
        return self.session.scalars(
            select(TenantRequestCount)
            .where(TenantRequestCount.tenant_id == self.tenant_id, TenantRequestCount.day >= since)
            .order_by(TenantRequestCount.day, TenantRequestCount.status)
        ).all()

    def stored_rows(self) -> dict[str, int]:
        """Rows per domain over every tenant-scoped table (every domain listed, 0 included).
        Flushes first (autoflush), so it counts the unit of work's own pending rows."""
        per_domain = dict.fromkeys(sorted(set(_domains().values())), 0)
        for table, rows in self._per_table().items():
            domain = _domains().get(table)
            if domain is not None:
                per_domain[domain] += rows
        return per_domain

    def stored_rows_total(self, *, fold: bool = False) -> int:
        """All the tenant's stored rows (the quota's figure). With ``fold`` (a unit of work that
        writes), the tenant's accumulated deltas are folded into one row per table once there
        are more than ``FOLD_AFTER`` of them, so the sum read here stays short."""
        if not self._kept():
            return sum(self._counted().values())
        rows = self.session.execute(self._kept_statement()).all()
        if fold and sum(r.deltas for r in rows) > FOLD_AFTER:
            self.fold()
        return sum(int(r.total) for r in rows if r.table_name in _domains())

    def _kept(self) -> bool:
        """Whether the database keeps the counts (PostgreSQL's triggers, ``db.row_counts``);
        on SQLite they are counted when read."""
        return self.session.get_bind().dialect.name == "postgresql"

    def _kept_statement(self) -> Select[str, int, int]:
        # An ORM statement: the session autoflushes before it, as before any count.
        return (
            select(
                TenantStoredRows.table_name,
                func.sum(TenantStoredRows.row_count).label("total"),
                func.count().label("deltas"),
            )
            .where(TenantStoredRows.tenant_id == self.tenant_id)
            .group_by(TenantStoredRows.table_name)
        )

    def _per_table(self) -> dict[str, int]:
        if not self._kept():
            return self._counted()
        rows = self.session.execute(self._kept_statement())
        return {r.table_name: int(r.total) for r in rows}

    def _counted(self) -> dict[str, int]:
        """Every counted table's rows of the tenant, counted now: one statement."""
        rows = self.session.execute(_count_statement(), {"tenant_id": self.tenant_id})
        return {r.table_name: int(r.n) for r in rows}

    def fold(self) -> bool:
        """Fold the tenant's delta rows into one row per table (PostgreSQL; exact under
        concurrent writers, which only ever append deltas: rows another transaction appends
        meanwhile are not visible to the delete and stay as they are). One folder per tenant at
        a time (a transaction-scoped advisory lock, tried, not waited for); False when another
        held it."""
        if not self._kept():
            return False
        got = self.session.execute(_TRY_FOLD_LOCK, {"tenant": str(self.tenant_id)}).scalar()
        if not got:
            return False
        self.session.execute(_FOLD, {"tenant_id": self.tenant_id})
        return True

    def recount(self) -> dict[str, tuple[int, int]]:
        """Rebuild the tenant's counts from the tables themselves; returns, per table whose
        count was wrong, (kept, actual). On PostgreSQL the caller's transaction must read one
        snapshot (REPEATABLE READ, ``recount_rows`` in the service sets it), so rows committed
        by others while it counts are either in both the deletion and the count, or in
        neither; the fold lock keeps folders out meanwhile. SQLite keeps no counts: nothing to
        rebuild."""
        if not self._kept():
            return {}
        self.session.execute(_FOLD_LOCK, {"tenant": str(self.tenant_id)})
        kept = self._per_table()
        actual = self._counted()
        self.session.execute(
            delete(TenantStoredRows).where(TenantStoredRows.tenant_id == self.tenant_id)
        )
        fresh = [
            {"tenant_id": self.tenant_id, "table_name": t, "row_count": n}
            for t, n in sorted(actual.items())
            if n
        ]
        if fresh:
            self.session.execute(insert(TenantStoredRows), fresh)
        wrong = {}
        for table_name in sorted(set(kept) | set(actual)):
            if kept.get(table_name, 0) != actual.get(table_name, 0):
                wrong[table_name] = (kept.get(table_name, 0), actual.get(table_name, 0))
        return wrong


# Above this many delta rows for a tenant, a writing unit folds them (PostgreSQL): reading the
# quota then sums at most about this many short rows.
FOLD_AFTER = 256
# An arbitrary constant naming the advisory locks of the stored-row folder (with the tenant).
_FOLD_LOCK_CLASS = 0x5EED
_TRY_FOLD_LOCK = text(f"SELECT pg_try_advisory_xact_lock({_FOLD_LOCK_CLASS}, hashtext(:tenant))")
_FOLD_LOCK = text(f"SELECT pg_advisory_xact_lock({_FOLD_LOCK_CLASS}, hashtext(:tenant))")
_FOLD = text(
    "WITH folded AS (DELETE FROM tenant_stored_rows WHERE tenant_id = :tenant_id "
    "RETURNING tenant_id, table_name, row_count) "
    "INSERT INTO tenant_stored_rows (tenant_id, table_name, row_count) "
    "SELECT tenant_id, table_name, sum(row_count) FROM folded GROUP BY tenant_id, table_name"
)


@cache
def counted_models() -> dict[str, type[TenantScoped]]:
    """Table name -> model of every tenant-scoped table (what the quota counts)."""
    found: dict[str, type[TenantScoped]] = {}
    for mapper in Base.registry.mappers:
        cls = mapper.class_
        if issubclass(cls, TenantScoped):
            found.setdefault(cls.__table__.name, cls)  # type: ignore[attr-defined]
    return found


@cache
def _count_statement() -> CompoundSelect[Any]:
    """One statement counting the tenant's rows in every counted table (``:tenant_id``), one
    result row per table: a single round trip instead of one per table."""
    tenant = bindparam("tenant_id", type_=Uuid())
    return union_all(
        *(
            select(literal(name).label("table_name"), func.count().label("n"))
            .select_from(cls)
            .where(cls.tenant_id == tenant)
            for name, cls in sorted(counted_models().items())
        )
    )


@cache
def _domains() -> dict[str, str]:
    """Table name -> the domain (package) its model lives in."""
    return {t: cls.__module__.split(".")[1] for t, cls in counted_models().items()}
