"""All content queries, scoped to one tenant through TenantRepository."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from aethercrown.content.models import ContentEvent, ContentItem, ContentProfile, ContentVersion
from aethercrown.core.tenancy import TenantRepository, where_given


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
        campaign_kind: str | None = None,
        campaign_id: uuid.UUID | None = None,
    ) -> Select[Any]:
        stmt = where_given(
            self.select(),
            (ContentItem.campaign_kind, campaign_kind),
            (ContentItem.campaign_id, campaign_id),
            (ContentItem.kind, kind),
            (ContentItem.channel, channel),
            (ContentItem.status, status),
        )
        if scheduled_from is not None:
            stmt = stmt.where(ContentItem.scheduled_at >= scheduled_from)
        if scheduled_to is not None:
            stmt = stmt.where(ContentItem.scheduled_at < scheduled_to)
        return stmt

    def of_campaigns(self, kind: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ContentItem]:
        """The email items of these campaigns, by campaign id (those that have one)."""
        out: dict[uuid.UUID, ContentItem] = {}
        for start in range(0, len(ids), 500):
            stmt = self.select().where(
                ContentItem.campaign_kind == kind,
                ContentItem.campaign_id.in_(list(ids[start : start + 500])),
            )
            for item in self.session.scalars(stmt):
                assert item.campaign_id is not None
                out[item.campaign_id] = item
        return out

    def counts_by_kind(self) -> dict[str, int]:
        stmt = self.select(ContentItem.kind, func.count()).group_by(ContentItem.kind)
        return {row[0]: int(row[1]) for row in self.session.execute(stmt)}

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
        stmt = where_given(stmt, (ContentEvent.item_id, item_id))
        return [(row[0], row[1], int(row[2])) for row in self.session.execute(stmt)]


def items_by_id(
    session: Session, tenant_id: uuid.UUID, ids: set[uuid.UUID]
) -> dict[uuid.UUID, ContentItem]:
    repo = ItemRepository(session, tenant_id)
    if not ids:
        return {}
    rows = session.scalars(repo.select().where(ContentItem.id.in_(ids))).all()
    return {row.id: row for row in rows}


def insert_events(session: Session, rows: list[dict[str, Any]]) -> int:
    """INSERT … ON CONFLICT DO NOTHING on (tenant_id, event_id); returns how many were new."""

    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(ContentEvent)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["tenant_id", "event_id"])
        .returning(ContentEvent.id)
    )
    return len(session.execute(stmt).all())


class MetricsRepository(TenantRepository[ContentEvent]):
    model = ContentEvent
    noun = "Content event"

    def counts(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        item_id: uuid.UUID | None = None,
    ) -> list[tuple[uuid.UUID, str, str, str, int]]:
        """(item id, item title, channel, event kind, count) over the window."""
        stmt = (
            self.select(
                ContentEvent.item_id,
                ContentItem.title,
                ContentItem.channel,
                ContentEvent.kind,
                func.count(),
            )
            .join(ContentItem, ContentItem.id == ContentEvent.item_id)
            .group_by(
                ContentEvent.item_id, ContentItem.title, ContentItem.channel, ContentEvent.kind
            )
        )
        if since is not None:
            stmt = stmt.where(ContentEvent.occurred_at >= since)
        if until is not None:
            stmt = stmt.where(ContentEvent.occurred_at < until)
        stmt = where_given(stmt, (ContentEvent.item_id, item_id))
        return [(r[0], r[1], r[2], r[3], int(r[4])) for r in self.session.execute(stmt)]
