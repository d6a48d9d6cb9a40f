"""Queries over the connectors' own tables, each scoped to one tenant by ``TenantRepository``."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from aethercrown.clock import utcnow
from aethercrown.connectors.models import (
    ChannelRule,
    SegmentMessage,
    SegmentSource,
    SegmentUser,
    StripeConnection,
    StripeEvent,
    StripeInvoice,
)
from aethercrown.core.tenancy import TenantRepository
from aethercrown.db.base import new_id

IN_CHUNK = 1_000


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _chunks(items: Sequence[Any], size: int = IN_CHUNK) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class StripeConnectionRepository(TenantRepository[StripeConnection]):
    model = StripeConnection
    noun = "Stripe connection"

    def current(self) -> StripeConnection | None:
        return self.session.scalar(self.select())


class StripeEventRepository(TenantRepository[StripeEvent]):
    model = StripeEvent
    noun = "Stripe event"

    def insert_new(self, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Insert events not stored yet (deduplicated on the event id); returns the new ids."""
        if not rows:
            return set()
        table = StripeEvent.__table__
        now = utcnow()
        for row in rows:
            row["tenant_id"] = self.tenant_id
            row["received_at"] = now
        stmt = (
            _insert(self.session)(table)
            .on_conflict_do_nothing(index_elements=["tenant_id", "event_id"])
            .returning(table.c.event_id)
        )
        inserted: set[str] = set()
        for chunk in _chunks(rows):
            inserted.update(self.session.scalars(stmt, list(chunk)).all())
        return inserted

    def replace_snapshots(self, rows: Sequence[dict[str, Any]]) -> None:
        """Store a backfill's reads: one row per object, the latest read replacing the last."""
        if not rows:
            return
        table = StripeEvent.__table__
        now = utcnow()
        for row in rows:
            row["tenant_id"] = self.tenant_id
            row["received_at"] = now
        stmt = _insert(self.session)(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["tenant_id", "event_id"],
            set_={c: stmt.excluded[c] for c in ("created", "payload", "received_at")},
        )
        for chunk in _chunks(rows):
            self.session.execute(stmt, list(chunk))

    def for_objects(self, object_ids: Collection[str]) -> Sequence[StripeEvent]:
        """Every stored event of these objects, oldest first (arrival order among equals)."""
        out: list[StripeEvent] = []
        for chunk in _chunks(sorted(set(object_ids))):
            stmt = (
                self.select()
                .where(StripeEvent.object_id.in_(chunk))
                .order_by(StripeEvent.created, StripeEvent.id)
            )
            out.extend(self.session.scalars(stmt))
        return out

    def list_statement(self, event_type: str | None) -> Any:
        stmt = self.select()
        if event_type is not None:
            stmt = stmt.where(StripeEvent.event_type == event_type)
        return stmt


class StripeInvoiceRepository(TenantRepository[StripeInvoice]):
    model = StripeInvoice
    noun = "Stripe invoice"

    def upsert(self, rows: Sequence[dict[str, Any]]) -> None:
        """Write each invoice's state unless a newer one (``as_of``) is stored already."""
        if not rows:
            return
        table = StripeInvoice.__table__
        now = utcnow()
        for row in rows:
            row["tenant_id"] = self.tenant_id
            row["id"] = new_id()
            row["created_at"] = now
            row["updated_at"] = now
        stmt = _insert(self.session)(table)
        changed = [c.name for c in table.columns if c.name not in ("id", "tenant_id", "created_at")]
        stmt = stmt.on_conflict_do_update(
            index_elements=["tenant_id", "external_id"],
            set_={c: stmt.excluded[c] for c in changed},
            where=table.c.as_of <= stmt.excluded.as_of,
        )
        for chunk in _chunks(rows):
            self.session.execute(stmt, list(chunk))

    def ids_for_subscriptions(self, subscriptions: Collection[str]) -> set[str]:
        out: set[str] = set()
        for chunk in _chunks(sorted(subscriptions)):
            stmt = self.select(StripeInvoice.external_id).where(
                StripeInvoice.subscription.in_(chunk)
            )
            out.update(self.session.scalars(stmt))
        return out

    def list_statement(self, customer: str | None) -> Any:
        stmt = self.select()
        if customer is not None:
            stmt = stmt.where(StripeInvoice.customer == customer)
        return stmt


class SegmentSourceRepository(TenantRepository[SegmentSource]):
    model = SegmentSource
    noun = "Segment source"


def segment_source_by_hash(session: Session, key_hash: str) -> SegmentSource | None:
    """The live source a write key opens (before any tenant is known: the key names it)."""
    return session.scalar(
        select(SegmentSource).where(
            SegmentSource.key_hash == key_hash, SegmentSource.revoked_at.is_(None)
        )
    )


class SegmentUserRepository(TenantRepository[SegmentUser]):
    model = SegmentUser
    noun = "Tracked user"

    def customers_of(self, user_ids: Collection[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for chunk in _chunks(sorted(set(user_ids))):
            stmt = self.select(SegmentUser.user_id, SegmentUser.customer).where(
                SegmentUser.user_id.in_(chunk), SegmentUser.customer.is_not(None)
            )
            out.update({user: customer for user, customer in self.session.execute(stmt)})
        return out

    def upsert(self, rows: Sequence[dict[str, Any]]) -> None:
        """Rows of user_id, customer (None keeps the stored one) and traits (merged)."""
        if not rows:
            return
        stored = {
            u.user_id: u
            for chunk in _chunks(sorted({r["user_id"] for r in rows}))
            for u in self.session.scalars(self.select().where(SegmentUser.user_id.in_(chunk)))
        }
        now = utcnow()
        for row in rows:
            user = stored.get(row["user_id"])
            if user is None:
                user = SegmentUser(user_id=row["user_id"], customer=None, traits={})
                self.add(user)
                stored[row["user_id"]] = user
            if row.get("customer"):
                user.customer = row["customer"]
            if row.get("traits"):
                user.traits = {**(user.traits or {}), **row["traits"]}
            user.updated_at = now


class SegmentMessageRepository(TenantRepository[SegmentMessage]):
    model = SegmentMessage
    noun = "Segment message"

    def claim_new(self, source_id: uuid.UUID, message_ids: Collection[str]) -> set[str]:
        """Record these message ids of the source; returns those not recorded before. Two
        requests replaying one id at once: the second waits on the unique index until the
        first commits, then finds it there (so exactly one of them applies the message)."""
        if not message_ids:
            return set()
        table = SegmentMessage.__table__
        now = utcnow()
        rows = [
            {
                "tenant_id": self.tenant_id,
                "source_id": source_id,
                "message_id": message_id,
                "received_at": now,
            }
            for message_id in sorted(set(message_ids))
        ]
        stmt = (
            _insert(self.session)(table)
            .on_conflict_do_nothing(index_elements=["tenant_id", "source_id", "message_id"])
            .returning(table.c.message_id)
        )
        new: set[str] = set()
        for chunk in _chunks(rows):
            new.update(self.session.scalars(stmt, list(chunk)).all())
        return new


def prune_segment_messages(session: Session, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` message ids (every tenant's: the caller's unit of work crosses
    tenants) received before ``before``; returns how many went."""
    oldest = (
        select(SegmentMessage.id)
        .where(SegmentMessage.received_at < before)
        .order_by(SegmentMessage.received_at)
        .limit(limit)
    )
    result = session.execute(delete(SegmentMessage).where(SegmentMessage.id.in_(oldest)))
    return int(getattr(result, "rowcount", 0) or 0)


class ChannelRuleRepository(TenantRepository[ChannelRule]):
    model = ChannelRule
    noun = "Channel rule"

    def ordered(self) -> Sequence[ChannelRule]:
        return self.all(self.select().order_by(ChannelRule.priority, ChannelRule.created_at))
