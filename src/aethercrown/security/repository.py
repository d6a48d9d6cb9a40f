"""Queries over API keys and managed secrets."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from aethercrown.clock import utcnow
from aethercrown.core.models import ApiKey
from aethercrown.core.tenancy import TenantRepository, where_given


class KeyRepository(TenantRepository[ApiKey]):  # type: ignore[type-var]
    """A tenant's keys; with ``tenant_id=None`` the operator's view of every key."""

    model = ApiKey
    noun = "Key"

    def __init__(self, session: Session, tenant_id: uuid.UUID | None) -> None:
        super().__init__(session, tenant_id)  # type: ignore[arg-type]

    def select(self, *columns: Any) -> Select[Any]:
        if self.tenant_id is None:
            return select(*columns) if columns else select(ApiKey)
        return super().select(*columns)

    def list_statement(self, *, kind: str | None, active: bool | None) -> Select[Any]:
        """The keys of one kind (None: every kind); ``active=True``: neither revoked nor rotated."""
        # An empty kind means every kind, as None does.
        stmt = where_given(self.select(), (ApiKey.kind, kind or None))
        if active is True:
            stmt = stmt.where(ApiKey.revoked_at.is_(None), ApiKey.rotated_to_id.is_(None))
        return stmt

    def get(self, ident: Any) -> ApiKey | None:
        if self.tenant_id is None:
            return self.session.get(ApiKey, ident)
        return super().get(ident)

    def by_hash(self, key_hash: str) -> ApiKey | None:
        return self.session.scalar(self.select().where(ApiKey.key_hash == key_hash))

    def current_managed(self) -> Sequence[ApiKey]:
        """The live generation of every managed lineage."""
        return self.session.scalars(
            self.select()
            .where(
                ApiKey.managed.is_(True),
                ApiKey.rotated_to_id.is_(None),
                ApiKey.revoked_at.is_(None),
            )
            .order_by(ApiKey.created_at)
        ).all()

    def lineages(self, lineage_ids: Sequence[uuid.UUID]) -> Sequence[ApiKey]:
        return self.session.scalars(
            self.select()
            .where(ApiKey.lineage_id.in_(lineage_ids))
            .order_by(ApiKey.lineage_id, ApiKey.generation)
        ).all()

    def first_created(self, lineage_id: uuid.UUID) -> Any:
        return self.session.scalar(
            self.select(func.min(ApiKey.created_at)).where(ApiKey.lineage_id == lineage_id)
        )

    def seats(self) -> int:
        """Live API keys of the tenant: each is a seat."""
        now = utcnow()
        return int(
            self.session.scalar(
                select(func.count())
                .select_from(ApiKey)
                .where(
                    ApiKey.tenant_id == self.tenant_id,
                    ApiKey.kind == "api_key",
                    *_live(now),
                    # A key inside its rotation grace period is the same seat as its successor.
                    ApiKey.rotated_to_id.is_(None),
                )
            )
            or 0
        )

    def live(self, kind: str) -> Sequence[ApiKey]:
        """The tenant's keys of one kind that are neither revoked nor expired, newest first
        (a rotated key inside its grace period included)."""
        return self.session.scalars(
            self.select()
            .where(ApiKey.kind == kind, *_live(utcnow()))
            .order_by(ApiKey.created_at.desc())
        ).all()

    def has_operator_key(self) -> bool:
        return (
            self.session.scalar(
                select(func.count()).select_from(ApiKey).where(ApiKey.tenant_id.is_(None))
            )
            or 0
        ) > 0


def _live(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """A key still accepted at ``now``: not revoked, and not expired."""
    return (
        ApiKey.revoked_at.is_(None),
        or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
    )
