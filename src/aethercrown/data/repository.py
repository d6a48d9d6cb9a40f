"""Queries over the business-data tables, all scoped to one tenant through ``TenantRepository``."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, false
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from aethercrown.core.tenancy import TenantRepository
from aethercrown.data.kinds import KINDS, KindSpec
from aethercrown.data.models import (
    ActivityEvent,
    Customer,
    MarketingSpend,
    Payment,
    Subscription,
    SupportTicket,
)
from aethercrown.db.base import new_id, utcnow

# Keys per IN (...) list: far below SQLite's 32,766 bound variables and PostgreSQL's 65,535.
IN_CHUNK = 5_000
# Rows per executemany call.
WRITE_CHUNK = 2_000


def chunked(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class RowRepository(TenantRepository[Any]):
    spec: KindSpec

    # ---- writes ---------------------------------------------------------------------------------

    def data_columns(self) -> list[str]:
        """Columns a row sets (everything but the surrogate id, tenant and timestamps)."""
        skip = {"id", "tenant_id", "created_at", "updated_at"}
        return [c.name for c in self.model.__table__.columns if c.name not in skip]

    def existing(self, keys: Sequence[tuple[Any, ...]]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
        """Stored ``data_columns`` values per upsert key (keys not stored are left out)."""
        columns = self.data_columns()
        table = self.model.__table__
        key_cols = [table.c[k] for k in self.spec.key]
        found: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        wanted = set(keys)
        for chunk in chunked(sorted({k[0] for k in keys}, key=str), IN_CHUNK):
            stmt = self.select(*[table.c[c] for c in columns]).where(key_cols[0].in_(chunk))
            for row in self.session.execute(stmt):
                values = tuple(row)
                key = tuple(values[columns.index(k)] for k in self.spec.key)
                # Composite keys (channel, day) are narrowed by their first part only above.
                if key in wanted:
                    found[key] = values
        return found

    def upsert(self, rows: Sequence[dict[str, Any]]) -> None:
        """INSERT … ON CONFLICT (tenant, key) DO UPDATE, as executemany in chunks."""
        if not rows:
            return
        table = self.model.__table__
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(table)
        updated = [*self.data_columns()]
        has_timestamps = "updated_at" in table.c
        if has_timestamps:
            updated.append("updated_at")
        stmt = stmt.on_conflict_do_update(
            index_elements=["tenant_id", *self.spec.key],
            set_={c: stmt.excluded[c] for c in updated if c not in self.spec.key},
        )
        now = utcnow()
        # UUIDv7s made in one millisecond are not ordered among themselves; sorting a batch's
        # fresh ids keeps the stored (id) order equal to the batch order. Updated rows keep theirs.
        fresh_ids: Iterator[Any] = iter(
            sorted(new_id() for _ in rows) if self.spec.id_type is uuid.UUID else ()
        )
        for row in rows:
            row["tenant_id"] = self.tenant_id
            if self.spec.id_type is uuid.UUID:
                row["id"] = next(fresh_ids)
            if has_timestamps:
                row["created_at"] = now
                row["updated_at"] = now
        for chunk in chunked(rows, WRITE_CHUNK):
            self.session.execute(stmt, list(chunk))

    # ---- reads ----------------------------------------------------------------------------------

    def list_statement(self, filters: Mapping[str, Any], customer_id: Any = None) -> Select[Any]:
        stmt = self.select()
        model = self.model
        time_col = getattr(model, self.spec.time_column)
        if filters.get("since") is not None:
            stmt = stmt.where(time_col >= filters["since"])
        if filters.get("until") is not None:
            stmt = stmt.where(time_col < filters["until"])
        for name in self.spec.exact_filters:
            if filters.get(name) is not None:
                stmt = stmt.where(getattr(model, name) == filters[name])
        if self.spec.has_customer and filters.get("customer") is not None:
            cond: ColumnElement[bool] = (
                model.customer_id == customer_id if customer_id is not None else false()
            )
            stmt = stmt.where(cond)
        return stmt

    def by_external(self, external_id: str) -> Any:
        return self.session.scalar(self.select().where(self.model.external_id == external_id))


class CustomerRepository(RowRepository):
    model = Customer
    noun = "Customer"
    spec = KINDS["customers"]

    def ids_by_external(self, external_ids: Iterable[str]) -> dict[str, uuid.UUID]:
        out: dict[str, uuid.UUID] = {}
        for chunk in chunked(sorted(set(external_ids)), IN_CHUNK):
            stmt = self.select(Customer.external_id, Customer.id).where(
                Customer.external_id.in_(chunk)
            )
            out.update({ext: ident for ext, ident in self.session.execute(stmt)})
        return out

    def external_by_ids(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        out: dict[uuid.UUID, str] = {}
        for chunk in chunked(sorted(set(ids)), IN_CHUNK):
            stmt = self.select(Customer.id, Customer.external_id).where(Customer.id.in_(chunk))
            out.update({ident: ext for ident, ext in self.session.execute(stmt)})
        return out


class SubscriptionRepository(RowRepository):
    model = Subscription
    noun = "Subscription"
    spec = KINDS["subscriptions"]

    def refs_by_external(
        self, external_ids: Iterable[str]
    ) -> dict[str, tuple[uuid.UUID, uuid.UUID]]:
        """external_id -> (subscription id, customer id)."""
        out: dict[str, tuple[uuid.UUID, uuid.UUID]] = {}
        for chunk in chunked(sorted(set(external_ids)), IN_CHUNK):
            stmt = self.select(
                Subscription.external_id, Subscription.id, Subscription.customer_id
            ).where(Subscription.external_id.in_(chunk))
            out.update({ext: (ident, cust) for ext, ident, cust in self.session.execute(stmt)})
        return out

    def external_by_ids(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        out: dict[uuid.UUID, str] = {}
        for chunk in chunked(sorted(set(ids)), IN_CHUNK):
            stmt = self.select(Subscription.id, Subscription.external_id).where(
                Subscription.id.in_(chunk)
            )
            out.update({ident: ext for ident, ext in self.session.execute(stmt)})
        return out


class ActivityRepository(RowRepository):
    model = ActivityEvent
    noun = "Activity event"
    spec = KINDS["activity"]


class TicketRepository(RowRepository):
    model = SupportTicket
    noun = "Ticket"
    spec = KINDS["tickets"]


class PaymentRepository(RowRepository):
    model = Payment
    noun = "Payment"
    spec = KINDS["payments"]


class MarketingRepository(RowRepository):
    model = MarketingSpend
    noun = "Marketing day"
    spec = KINDS["marketing"]


REPOSITORIES: dict[str, type[RowRepository]] = {
    repo.spec.name: repo
    for repo in (
        CustomerRepository,
        SubscriptionRepository,
        ActivityRepository,
        TicketRepository,
        PaymentRepository,
        MarketingRepository,
    )
}


def repository_for(session: Session, tenant_id: uuid.UUID, kind: str) -> RowRepository:
    return REPOSITORIES[kind](session, tenant_id)
