"""Queries over the connectors' own tables, each scoped to one tenant by ``TenantRepository``."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import Row, Table, Text, bindparam, case, delete, func, or_, select
from sqlalchemy import cast as sql_cast
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
    StripeSubscriptionSegment,
)
from aethercrown.core.models import Tenant, Tier
from aethercrown.core.tenancy import TenantRepository
from aethercrown.data.models import Customer, Subscription
from aethercrown.db.base import in_strings, new_id
from aethercrown.db.bulk import postgres_upsert
from aethercrown.db.tenant_scope import scope_to_all_tenants

IN_CHUNK = 1_000
MAPPING_COUNTS = ("received", "mapped", "pending", "failed", "dead", "discarded")


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _chunks(items: Sequence[Any], size: int = IN_CHUNK) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@dataclass(frozen=True)
class ClaimedEvent:
    id: int
    object_type: str
    object_id: str
    map_attempts: int


@dataclass(frozen=True)
class StoredEvent:
    event_id: str
    event_type: str
    object_type: str
    object_id: str
    created: datetime
    payload: dict[str, Any]


def tenants_with_unmapped_events(session: Session, now: datetime) -> list[uuid.UUID]:
    """Tenants with Stripe events due for mapping (the installation-wide mapping job's list:
    crosses tenants by design)."""
    scope_to_all_tenants(session)
    stmt = (
        select(StripeEvent.tenant_id)
        .where(
            StripeEvent.mapped_at.is_(None),
            StripeEvent.dead_at.is_(None),
            or_(StripeEvent.retry_at.is_(None), StripeEvent.retry_at <= now),
        )
        .distinct()
    )
    return list(session.scalars(stmt))


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
        table = cast(Table, StripeEvent.__table__)
        now = utcnow()
        for row in rows:
            row["tenant_id"] = self.tenant_id
            row["received_at"] = now
        replaced = ("created", "payload", "received_at")
        conflict = ["tenant_id", "event_id"]
        if self.session.get_bind().dialect.name == "postgresql" and postgres_upsert(
            self.session, table, rows, conflict, replaced
        ):
            return
        stmt = _insert(self.session)(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=conflict, set_={c: stmt.excluded[c] for c in replaced}
        )
        for chunk in _chunks(rows):
            self.session.execute(stmt, list(chunk))

    def lock_mapping(self) -> None:
        """Take the tenant's mapping lock until the transaction ends (PostgreSQL; SQLite has one
        writer at a time anyway). One mapper per tenant at a time: a batch re-derives whole
        objects from all their stored events, so two batches that touched one object at once
        could each write it from a different set of events, the staler one last. Another
        mapper of the same tenant waits for this batch to commit, then claims what is left."""
        if self.session.get_bind().dialect.name != "postgresql":
            return
        digest = hashlib.blake2b(f"stripe-mapping:{self.tenant_id}".encode(), digest_size=8)
        key = int.from_bytes(digest.digest(), "big", signed=True)
        # Plans made for this transaction's tables as they are now, not reused: a mapping run
        # grows customers, subscriptions and payments by thousands of rows while the pooled
        # connection keeps the generic plans of its foreign-key checks and of psycopg's
        # prepared statements, made when the tables were small (sequential scans). Until an
        # ANALYZE invalidated them, every check scanned the whole table: the job slowed as it
        # went (708 events/s over 20,000 events, 1,100 with fresh plans; planning a lookup costs
        # tens of microseconds).
        self.session.execute(
            select(
                func.pg_advisory_xact_lock(key),
                func.set_config("plan_cache_mode", "force_custom_plan", True),
            )
        )

    def claim_unmapped(self, now: datetime, limit: int) -> list[ClaimedEvent]:
        """Up to ``limit`` unmapped events due now (new ones, and failed ones whose retry time
        has come), oldest arrival first, locked until the transaction ends (``FOR UPDATE SKIP
        LOCKED`` on PostgreSQL: rows another transaction holds are passed over)."""
        stmt = (
            self.select(
                StripeEvent.id,
                StripeEvent.object_type,
                StripeEvent.object_id,
                StripeEvent.map_attempts,
            )
            .where(
                StripeEvent.mapped_at.is_(None),
                StripeEvent.dead_at.is_(None),
                or_(StripeEvent.retry_at.is_(None), StripeEvent.retry_at <= now),
            )
            .order_by(StripeEvent.id)
            .limit(limit)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        return [ClaimedEvent(*row) for row in self.session.execute(stmt)]

    def mark_mapped(self, ids: Sequence[int], now: datetime) -> None:
        for chunk in _chunks(sorted(ids)):
            self.session.execute(
                self.update()
                .where(StripeEvent.id.in_(chunk))
                .values(mapped_at=now, map_error=None, retry_at=None)
            )

    def mark_failed(
        self, failures: Sequence[tuple[int, int, str, datetime | None, datetime | None]]
    ) -> None:
        """Each (id, attempts so far, error, when to retry, when it died) stays unmapped until
        its retry time, or for good once dead (until retried by hand)."""
        for event_id, attempts, error, retry_at, dead_at in failures:
            self.session.execute(
                self.update()
                .where(StripeEvent.id == event_id)
                .values(
                    map_attempts=attempts,
                    map_error=error[:2000],
                    retry_at=retry_at,
                    dead_at=dead_at,
                )
            )

    @staticmethod
    def _mapping_columns() -> list[Any]:
        live = StripeEvent.mapped_at.is_(None) & StripeEvent.dead_at.is_(None)
        dead = StripeEvent.dead_at.is_not(None) & StripeEvent.discarded_at.is_(None)
        return [
            func.count(),
            func.count(StripeEvent.mapped_at),
            func.coalesce(func.sum(case((live & StripeEvent.map_error.is_(None), 1))), 0),
            func.coalesce(func.sum(case((live & StripeEvent.map_error.is_not(None), 1))), 0),
            func.coalesce(func.sum(case((dead, 1))), 0),
            func.count(StripeEvent.discarded_at),
        ]

    def mapping_counts(self) -> dict[str, int]:
        """Events stored (webhooks and backfill reads), mapped, pending, failed (retried with
        backoff), dead (set aside) and discarded."""
        row = self.session.execute(self.select(*self._mapping_columns())).one()
        return {name: int(value) for name, value in zip(MAPPING_COUNTS, row, strict=True)}

    def console_counts(self, since: datetime) -> dict[str, Any]:
        """``mapping_counts`` and, in the same single pass over the tenant's events (the
        console's page; two passes cost twice on a large tenant), webhook events (all, and
        received since ``since``), backfill reads (ids ``snapshot:…``), the last webhook
        event's arrival and the oldest arrival still waiting to be mapped."""
        webhook = ~StripeEvent.event_id.startswith("snapshot:")
        waiting = StripeEvent.mapped_at.is_(None) & StripeEvent.dead_at.is_(None)
        row = self.session.execute(
            self.select(
                *self._mapping_columns(),
                func.coalesce(func.sum(case((webhook, 1))), 0),
                func.coalesce(func.sum(case((webhook & (StripeEvent.received_at >= since), 1))), 0),
                func.max(case((webhook, StripeEvent.received_at))),
                func.min(case((waiting, StripeEvent.received_at))),
                func.max(StripeEvent.id),
            )
        ).one()
        counts: dict[str, Any] = {
            name: int(value) for name, value in zip(MAPPING_COUNTS, row[:6], strict=True)
        }
        return {
            **counts,
            "webhook_events": int(row[6]),
            "webhook_events_recent": int(row[7]),
            "backfill_reads": counts["received"] - int(row[6]),
            "last_received_at": row[8],
            "oldest_waiting_at": row[9],
            "newest_id": row[10],
        }

    def livemode(self, row_id: int) -> bool | None:
        """Whether this stored event (the newest: ``console_counts``' ``newest_id``) came from
        live mode (Stripe writes ``livemode`` on every event and object): the account's mode,
        without reading its secret key. By primary key: an ``ORDER BY id DESC LIMIT 1`` under
        the row-level security policy read every row of the tenant (113 ms at 100,000)."""
        payload = self.session.scalar(
            self.select(StripeEvent.payload).where(StripeEvent.id == row_id)
        )
        mode = payload.get("livemode") if isinstance(payload, dict) else None
        return mode if isinstance(mode, bool) else None

    def dead(self, limit: int) -> list[StripeEvent]:
        """The latest events set aside as dead (not discarded)."""
        return list(
            self.session.scalars(
                self.select()
                .where(StripeEvent.dead_at.is_not(None), StripeEvent.discarded_at.is_(None))
                .order_by(StripeEvent.dead_at.desc(), StripeEvent.id.desc())
                .limit(limit)
            )
        )

    def update_dead(self, event_type: str | None, object_id: str | None, **values: Any) -> int:
        """Set ``values`` on the dead (not discarded) events of this type and of this object,
        each filter when given (every dead event when neither is); returns how many changed."""
        stmt = self.update().where(
            StripeEvent.dead_at.is_not(None), StripeEvent.discarded_at.is_(None)
        )
        if event_type is not None:
            stmt = stmt.where(StripeEvent.event_type == event_type)
        if object_id is not None:
            stmt = stmt.where(StripeEvent.object_id == object_id)
        result = self.session.execute(
            stmt.values(**values).execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def by_event_id(self, event_id: str) -> StripeEvent | None:
        return self.session.scalar(self.select().where(StripeEvent.event_id == event_id))

    def failures(self, limit: int) -> list[tuple[str, str, int, str | None, datetime | None]]:
        """The latest events that failed to map: (event id, type, attempts, error, retry at)."""
        stmt = (
            self.select(
                StripeEvent.event_id,
                StripeEvent.event_type,
                StripeEvent.map_attempts,
                StripeEvent.map_error,
                StripeEvent.retry_at,
            )
            .where(
                StripeEvent.mapped_at.is_(None),
                StripeEvent.dead_at.is_(None),
                StripeEvent.map_error.is_not(None),
            )
            .order_by(StripeEvent.id.desc())
            .limit(limit)
        )
        return [tuple(row) for row in self.session.execute(stmt)]

    def for_objects(
        self, object_ids: Collection[str], without: int | None = None
    ) -> list[StoredEvent]:
        """Every stored event of these objects, oldest first (arrival order among equals), as
        plain rows: a batch reads hundreds, and only reads them. Dead and discarded events are
        left out: the object is mapped from the others; so is the event ``without`` (a row id)."""
        out: list[StoredEvent] = []
        for chunk in _chunks(sorted(set(object_ids))):
            stmt = (
                self.select(
                    StripeEvent.event_id,
                    StripeEvent.event_type,
                    StripeEvent.object_type,
                    StripeEvent.object_id,
                    StripeEvent.created,
                    # As text, decoded by orjson: the driver's own JSON decoding (the standard
                    # json module) was the largest Python cost of reading a batch's events.
                    sql_cast(StripeEvent.payload, Text),
                )
                .where(StripeEvent.object_id.in_(chunk), StripeEvent.dead_at.is_(None))
                .order_by(StripeEvent.created, StripeEvent.id)
            )
            if without is not None:
                stmt = stmt.where(StripeEvent.id != without)
            out.extend(
                StoredEvent(event_id, kind, object_type, object_id, created, orjson.loads(text))
                for event_id, kind, object_type, object_id, created, text in self.session.execute(
                    stmt
                )
            )
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
        table = cast(Table, StripeInvoice.__table__)
        now = utcnow()
        for row in rows:
            row["tenant_id"] = self.tenant_id
            row["id"] = new_id()
            row["created_at"] = now
            row["updated_at"] = now
        changed = [c.name for c in table.columns if c.name not in ("id", "tenant_id", "created_at")]
        conflict = ["tenant_id", "external_id"]
        newer = lambda given: table.c.as_of <= given.as_of  # noqa: E731
        if self.session.get_bind().dialect.name == "postgresql" and postgres_upsert(
            self.session, table, rows, conflict, changed, newer
        ):
            return
        stmt = _insert(self.session)(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=conflict,
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


class StripeSegmentRepository(TenantRepository[StripeSubscriptionSegment]):
    """The business-data subscriptions (segments) the mapping wrote, by Stripe subscription."""

    model = StripeSubscriptionSegment
    noun = "Stripe subscription segment"

    def recorded(self, subscriptions: Collection[str]) -> set[str]:
        """The segments recorded for these Stripe subscriptions."""
        if not subscriptions:
            return set()
        stmt = self.select(StripeSubscriptionSegment.segment).where(
            in_strings(self.session, StripeSubscriptionSegment.subscription, subscriptions)
        )
        return set(self.session.scalars(stmt))

    def stored(self, subscriptions: Collection[str]) -> list[tuple[str, str]]:
        """(Stripe subscription, segment) of these subscriptions' segments still stored in
        ``subscriptions`` (one deleted through the data API is not named again)."""
        if not subscriptions:
            return []
        segment = StripeSubscriptionSegment
        stmt = (
            self.select(segment.subscription, segment.segment)
            .join(
                Subscription,
                (Subscription.tenant_id == segment.tenant_id)
                & (Subscription.external_id == segment.segment),
            )
            .where(in_strings(self.session, segment.subscription, subscriptions))
        )
        return [(sub, seg) for sub, seg in self.session.execute(stmt)]

    def record(self, added: Sequence[tuple[str, str]], removed: Collection[str]) -> None:
        """Record segments written (Stripe subscription, segment) and forget removed ones."""
        table = cast(Table, StripeSubscriptionSegment.__table__)
        for chunk in _chunks(sorted(removed)):
            self.session.execute(self.delete().where(StripeSubscriptionSegment.segment.in_(chunk)))
        if not added:
            return
        rows = [
            {"tenant_id": self.tenant_id, "subscription": sub, "segment": seg} for sub, seg in added
        ]
        conflict = ["tenant_id", "segment"]
        if self.session.get_bind().dialect.name == "postgresql" and postgres_upsert(
            self.session, table, rows, conflict, ["subscription"]
        ):
            return
        stmt = _insert(self.session)(table).on_conflict_do_nothing(index_elements=conflict)
        for chunk in _chunks(rows):
            self.session.execute(stmt, list(chunk))


class SegmentSourceRepository(TenantRepository[SegmentSource]):
    model = SegmentSource
    noun = "Segment source"

    def oldest_first(self) -> Sequence[SegmentSource]:
        return self.all(self.select().order_by(SegmentSource.created_at, SegmentSource.id))


# The live source a write key opens, with its tenant's tier (the quota of what it writes).
_WRITE_KEY_LOOKUP = (
    select(SegmentSource.tenant_id, SegmentSource.id, Tier.slug, Tier.max_stored_rows)
    .join(Tenant, Tenant.id == SegmentSource.tenant_id)
    .join(Tier, Tier.slug == Tenant.tier_slug)
    .where(SegmentSource.key_hash == bindparam("key_hash"), SegmentSource.revoked_at.is_(None))
)


def segment_source_by_hash(
    session: Session, key_hash: str
) -> Row[uuid.UUID, uuid.UUID, str, int] | None:
    """The live source a write key opens (tenant_id, id, slug and max_stored_rows of the
    tenant's tier), looked up before any tenant is known: the key names it."""
    return session.connection().execute(_WRITE_KEY_LOOKUP, {"key_hash": key_hash}).first()


class SegmentUserRepository(TenantRepository[SegmentUser]):
    model = SegmentUser
    noun = "Tracked user"

    def customers_of(self, user_ids: Collection[str]) -> dict[str, tuple[str, uuid.UUID | None]]:
        """The customer each user is linked to, with that customer's id when it is stored: one
        statement for what a batch of tracks needs (the customers table is the data domain's;
        its id is read here rather than in a second round trip)."""
        if not user_ids:
            return {}
        stmt = (
            self.select(SegmentUser.user_id, SegmentUser.customer, Customer.id)
            .outerjoin(
                Customer,
                (Customer.tenant_id == SegmentUser.tenant_id)
                & (Customer.external_id == SegmentUser.customer),
            )
            .where(
                in_strings(self.session, SegmentUser.user_id, set(user_ids)),
                SegmentUser.customer.is_not(None),
            )
        )
        # Plain columns through the connection: the ORM's result machinery cost more than the
        # query for a batch's hundreds of rows (nothing is pending: no flush is skipped).
        rows = self.session.connection().execute(stmt).all()
        return {user: (customer, ident) for user, customer, ident in rows}

    def summary(self) -> tuple[int, datetime | None]:
        """How many users the tenant's tracking calls named, and when one last changed."""
        count, last = self.session.execute(
            self.select(func.count(), func.max(SegmentUser.updated_at))
        ).one()
        return int(count), last

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

    def per_source(self, since: datetime) -> dict[uuid.UUID, tuple[int, int, datetime | None]]:
        """Per source: identify and group calls kept (until the daily prune), those received
        since ``since``, and the last one's arrival: one grouped aggregate."""
        stmt = self.select(
            SegmentMessage.source_id,
            func.count(),
            func.coalesce(func.sum(case((SegmentMessage.received_at >= since, 1))), 0),
            func.max(SegmentMessage.received_at),
        ).group_by(SegmentMessage.source_id)
        return {
            source: (int(total), int(recent), last)
            for source, total, recent, last in self.session.execute(stmt)
        }


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

    def delete_all(self) -> None:
        """Every rule of the tenant, in one statement (a replacement set follows)."""
        self.session.execute(self.delete())
