"""The one place where queries are scoped to a tenant.

Every tenant-owned table mixes in ``TenantScoped``; every repository over such a table extends
``TenantRepository``, whose ``select()`` already carries the tenant filter. Nothing else filters
``tenant_id`` by hand, so a forgotten filter cannot leak another tenant's rows.

On PostgreSQL the repository also scopes its session's transactions to its tenant
(``db.tenant_scope``), so row-level security hides every other tenant's rows even from a query
that forgets the filter.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Generic, TypeVar, TypeVarTuple

from sqlalchemy import ColumnElement, ForeignKey, Select, delete, func, select, update
from sqlalchemy.orm import Mapped, QueryableAttribute, Session, declared_attr, mapped_column
from sqlalchemy.sql.dml import Delete, Update

from aethercrown.core.errors import NotFound
from aethercrown.db.tenant_scope import scope_to_all_tenants, scope_to_tenant


class TenantScoped:
    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:
        return mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)


M = TypeVar("M", bound=TenantScoped)
Row = TypeVarTuple("Row")


def where_given(
    stmt: Select[*Row],
    *filters: tuple[QueryableAttribute[Any] | ColumnElement[Any], object],
) -> Select[*Row]:
    """``stmt`` narrowed to ``column == value`` for each (column, value) whose value is given:
    a list's optional filters, where None means "any". In the order given, so the SQL is what
    the hand-written ``if value is not None: stmt = stmt.where(...)`` chain made. A caller whose
    filter also skips empty strings passes ``value or None``."""
    for column, value in filters:
        if value is not None:
            stmt = stmt.where(column == value)
    return stmt


class TenantRepository(Generic[M]):
    model: type[M]
    # Human name used in 404 answers.
    noun: str = "Resource"

    def __init__(self, session: Session, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id
        if tenant_id is None:
            # The operator's installation-wide view (a subclass taking ``tenant_id=None``).
            scope_to_all_tenants(session)
        else:
            scope_to_tenant(session, tenant_id)

    def select(self, *columns: Any) -> Select[Any]:
        stmt = select(*columns) if columns else select(self.model)
        return stmt.where(self.model.tenant_id == self.tenant_id)

    def update(self) -> Update:
        return update(self.model).where(self.model.tenant_id == self.tenant_id)

    def delete(self) -> Delete:
        return delete(self.model).where(self.model.tenant_id == self.tenant_id)

    def get(self, ident: Any) -> M | None:
        obj = self.session.get(self.model, ident)
        if obj is None or obj.tenant_id != self.tenant_id:
            return None
        return obj

    def get_or_404(self, ident: Any) -> M:
        obj = self.get(ident)
        if obj is None:
            raise NotFound(self.noun, ident)
        return obj

    def add(self, obj: M) -> M:
        obj.tenant_id = self.tenant_id
        self.session.add(obj)
        return obj

    def count(self) -> int:
        return int(self.session.scalar(self.select(func.count())) or 0)

    def all(self, stmt: Select[Any] | None = None) -> Sequence[M]:
        return self.session.scalars(stmt if stmt is not None else self.select()).all()

    def all_by(self, column: QueryableAttribute[Any], *, descending: bool = False) -> Sequence[M]:
        """Every row of the tenant's, ordered by ``column``."""
        return self.all(self.select().order_by(column.desc() if descending else column))

    def newest(
        self, column: QueryableAttribute[Any], limit: int, stmt: Select[Any] | None = None
    ) -> Sequence[M]:
        """At most ``limit`` rows of ``stmt`` (default: all the tenant's), newest first by
        ``column``: the consoles' "latest" lists."""
        base = stmt if stmt is not None else self.select()
        return self.all(base.order_by(column.desc()).limit(limit))
