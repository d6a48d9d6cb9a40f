"""All content queries, scoped to one tenant through TenantRepository."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func
from sqlalchemy.orm import Session

from aethercrown.content.models import ContentEvent, ContentItem, ContentProfile, ContentVersion
from aethercrown.core.tenancy import TenantRepository


class ProfileRepository(TenantRepository[ContentProfile]):
    model = ContentProfile
    noun = "Content profile"

    def current(self) -> ContentProfile | None:
        return self.session.scalars(self.select()).first()


class ItemRepository(TenantRepository[ContentItem]):
    model = ContentItem
    noun = "Content item"

    def filtered(
        self,
        kind: str | None = None,
        channel: str | None = None,
        status: str | None = None,
        scheduled_from: datetime | None = None,
        scheduled_to: datetime | None = None,
    ) -> Select[Any]:
        stmt = self.select()
        if kind is not None:
            stmt = stmt.where(ContentItem.kind == kind)
        if channel is not None:
            stmt = stmt.where(ContentItem.channel == channel)
        if status is not None:
            stmt = stmt.where(ContentItem.status == status)
        if scheduled_from is not None:
            stmt = stmt.where(ContentItem.scheduled_at >= scheduled_from)
        if scheduled_to is not None:
            stmt = stmt.where(ContentItem.scheduled_at < scheduled_to)
        return stmt

    def due(self, now: datetime) -> Sequence[ContentItem]:
        stmt = (
            self.select()
            .where(ContentItem.status == "scheduled", ContentItem.scheduled_at <= now)
            .order_by(ContentItem.scheduled_at, ContentItem.id)
        )
        return self.session.scalars(stmt).all()


class VersionRepository(TenantRepository[ContentVersion]):
    model = ContentVersion
    noun = "Content version"

    def of(self, item_id: uuid.UUID, version: int) -> ContentVersion | None:
        stmt = self.select().where(
            ContentVersion.item_id == item_id, ContentVersion.version == version
        )
        return self.session.scalars(stmt).first()

    def history(self, item_id: uuid.UUID) -> Sequence[ContentVersion]:
        stmt = (
            self.select().where(ContentVersion.item_id == item_id).order_by(ContentVersion.version)
        )
        return self.session.scalars(stmt).all()


class EventRepository(TenantRepository[ContentEvent]):
    model = ContentEvent
    noun = "Content event"

    def by_event_id(self, event_id: str) -> ContentEvent | None:
        return self.session.scalars(self.select().where(ContentEvent.event_id == event_id)).first()

    def counts_by_item(self, item_id: uuid.UUID | None = None) -> list[tuple[uuid.UUID, str, int]]:
        stmt = self.select(ContentEvent.item_id, ContentEvent.kind, func.count()).group_by(
            ContentEvent.item_id, ContentEvent.kind
        )
        if item_id is not None:
            stmt = stmt.where(ContentEvent.item_id == item_id)
        return [(row[0], row[1], int(row[2])) for row in self.session.execute(stmt)]


def items_by_id(
    session: Session, tenant_id: uuid.UUID, ids: set[uuid.UUID]
) -> dict[uuid.UUID, ContentItem]:
    repo = ItemRepository(session, tenant_id)
    if not ids:
        return {}
    rows = session.scalars(repo.select().where(ContentItem.id.in_(ids))).all()
    return {row.id: row for row in rows}
