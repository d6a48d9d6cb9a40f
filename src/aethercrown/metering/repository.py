"""Every metering query: events, rollups, meters, alerts, campaigns, renewal models, and the
business rows (customers, subscriptions, activity, tickets, payments) metering reads."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray
from sqlalchemy import ColumnElement, Select, Table, and_, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from aethercrown.core.models import Decision
from aethercrown.core.tenancy import TenantRepository, where_given
from aethercrown.data.models import ActivityEvent, Customer, Payment, Subscription, SupportTicket
from aethercrown.db.session import WROTE
from aethercrown.db.tenant_scope import scope_to_all_tenants
from aethercrown.metering.models import (
    Meter,
    MeteringSettings,
    RenewalModel,
    UpsellCampaign,
    UsageAlert,
    UsageDaily,
    UsageEvent,
    UsageFoldCursor,
    UsageUniqueValue,
)
from aethercrown.metering.stats import DayRollup
from aethercrown.pricing.models import PricePlan

LOOKUP_CHUNK = 5_000


def _insert(session: Session, table: Any) -> Any:
    module: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(table)


def _chunks(items: Sequence[Any], size: int = LOOKUP_CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class CustomerRepository(TenantRepository[Customer]):
    model = Customer
    noun = "Customer"

    def by_external_id(self, external_id: str) -> Customer | None:
        return self.session.scalar(self.select().where(Customer.external_id == external_id))

    def ids_by_external_id(self, external_ids: Sequence[str]) -> dict[str, uuid.UUID]:
        # Core on the connection: on the ingestion path, the ORM's per-statement work showed.
        conn = self.session.connection()
        out: dict[str, uuid.UUID] = {}
        for chunk in _chunks(list(external_ids)):
            rows = conn.execute(
                self.select(Customer.external_id, Customer.id).where(
                    Customer.external_id.in_(chunk)
                )
            )
            out.update({ext: cid for ext, cid in rows})
        return out

    def named(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str]]:
        """id -> (external id, name)."""
        out: dict[uuid.UUID, tuple[str, str]] = {}
        for chunk in _chunks(list(ids)):
            rows = self.session.execute(
                self.select(Customer.id, Customer.external_id, Customer.name).where(
                    Customer.id.in_(chunk)
                )
            )
            out.update({cid: (ext, name) for cid, ext, name in rows})
        return out

    def by_refs(self, refs: Sequence[str]) -> dict[str, tuple[uuid.UUID, str, str]]:
        """ref -> (id, external id, name), a ref being an external id or, failing that, the
        internal id. The external id wins: a tenant's own ids may look like UUIDs."""
        out: dict[str, tuple[uuid.UUID, str, str]] = {}
        for chunk in _chunks(list(refs)):
            rows = self.session.execute(
                self.select(Customer.external_id, Customer.id, Customer.name).where(
                    Customer.external_id.in_(chunk)
                )
            )
            out.update({ext: (cid, ext, name) for ext, cid, name in rows})
        as_ids: dict[uuid.UUID, str] = {}
        for ref in refs:
            if ref in out:
                continue
            try:
                as_ids[uuid.UUID(ref)] = ref
            except ValueError:
                continue
        for cid, (ext, name) in self.named(list(as_ids)).items():
            out[as_ids[cid]] = (cid, ext, name)
        return out

    def external_ids(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        out: dict[uuid.UUID, str] = {}
        for chunk in _chunks(list(ids)):
            rows = self.session.execute(
                self.select(Customer.id, Customer.external_id).where(Customer.id.in_(chunk))
            )
            out.update({cid: ext for cid, ext in rows})
        return out

    def all_rows(self) -> Sequence[Customer]:
        return self.all(self.select().order_by(Customer.id))


class SubscriptionRepository(TenantRepository[Subscription]):
    model = Subscription

    def active_plans(self, customer_ids: Sequence[uuid.UUID], at: datetime) -> dict[uuid.UUID, str]:
        """Each customer's plan at ``at``: its most recently started live subscription."""
        out: dict[uuid.UUID, str] = {}
        for chunk in _chunks(list(customer_ids)):
            rows = self.session.execute(
                self.select(Subscription.customer_id, Subscription.plan)
                .where(
                    Subscription.customer_id.in_(chunk),
                    Subscription.live_at(at),
                )
                .order_by(Subscription.started_at)
            )
            out.update({cid: plan for cid, plan in rows})
        return out

    def live_plans(self, at: datetime) -> dict[uuid.UUID, str]:
        """Every customer's plan at ``at`` (its most recently started live subscription), in
        one query: for a list of every customer, where ``active_plans`` would need the ids."""
        rows = self.session.execute(
            self.select(Subscription.customer_id, Subscription.plan)
            .where(Subscription.live_at(at))
            .order_by(Subscription.started_at)
        )
        return {cid: plan for cid, plan in rows}

    def all_rows(self) -> Sequence[Subscription]:
        return self.all(self.select().order_by(Subscription.started_at))

    def for_customer(self, customer_id: uuid.UUID) -> Sequence[Subscription]:
        return self.all(
            self.select()
            .where(Subscription.customer_id == customer_id)
            .order_by(Subscription.started_at)
        )


def day_of(session: Session, column: Any) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp column, on both backends."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


class ActivityRepository(TenantRepository[ActivityEvent]):
    model = ActivityEvent

    def active_days(
        self, since: datetime | None = None, customer_id: uuid.UUID | None = None
    ) -> list[tuple[uuid.UUID, date, int]]:
        day = day_of(self.session, ActivityEvent.occurred_at)
        stmt = self.select(ActivityEvent.customer_id, day, func.count())
        if since is not None:
            stmt = stmt.where(ActivityEvent.occurred_at >= since)
        stmt = where_given(stmt, (ActivityEvent.customer_id, customer_id))
        rows = self.session.execute(stmt.group_by(ActivityEvent.customer_id, day))
        return [(cid, as_date(d), int(n)) for cid, d, n in rows]

    def customer_features_used(
        self, since: datetime, customer_id: uuid.UUID | None = None
    ) -> set[str]:
        stmt = self.select(ActivityEvent.feature).where(
            ActivityEvent.kind == "feature",
            ActivityEvent.feature.is_not(None),
            ActivityEvent.occurred_at >= since,
        )
        stmt = where_given(stmt, (ActivityEvent.customer_id, customer_id))
        return {f for f in self.session.scalars(stmt.distinct()) if f}

    def customer_active_days(self, customer_id: uuid.UUID, since: datetime) -> int:
        day = day_of(self.session, ActivityEvent.occurred_at)
        stmt = self.select(func.count(func.distinct(day))).where(
            ActivityEvent.customer_id == customer_id, ActivityEvent.occurred_at >= since
        )
        return int(self.session.scalar(stmt) or 0)


class TicketRepository(TenantRepository[SupportTicket]):
    model = SupportTicket

    def opened(self, customer_id: uuid.UUID | None = None) -> list[tuple[uuid.UUID, datetime]]:
        stmt = where_given(
            self.select(SupportTicket.customer_id, SupportTicket.opened_at),
            (SupportTicket.customer_id, customer_id),
        )
        rows = self.session.execute(stmt)
        return [(c, t) for c, t in rows]


class PaymentRepository(TenantRepository[Payment]):
    model = Payment

    def failed(self, customer_id: uuid.UUID | None = None) -> list[tuple[uuid.UUID, datetime]]:
        stmt = where_given(
            self.select(Payment.customer_id, Payment.occurred_at).where(Payment.status == "failed"),
            (Payment.customer_id, customer_id),
        )
        rows = self.session.execute(stmt)
        return [(c, t) for c, t in rows]


class MeterRepository(TenantRepository[Meter]):
    model = Meter
    noun = "Meter"

    def definitions(self) -> list[Any]:
        """(name, aggregation, unit, unique_property, description) of each, as plain rows."""
        m = Meter
        stmt = self.select(m.name, m.aggregation, m.unit, m.unique_property, m.description)
        return list(self.session.connection().execute(stmt.order_by(m.name)))

    def by_name(self, name: str) -> Meter | None:
        return self.session.scalar(self.select().where(Meter.name == name))


class SettingsRepository(TenantRepository[MeteringSettings]):
    model = MeteringSettings

    def current(self) -> MeteringSettings | None:
        return self.session.scalar(self.select())


class UsageRepository(TenantRepository[UsageEvent]):
    """Events and their rollups. Writes use INSERT … ON CONFLICT so that a retried or
    concurrent batch counts each event once."""

    model = UsageEvent

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def existing_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        """Which of the ids (SQLite) are stored: the ids go as one JSON array parameter, which
        costs far less to bind than thousands of IN parameters."""
        conn = self.session.connection()
        found: set[str] = set()
        for chunk in _chunks(list(event_ids), 50_000):
            rows = conn.exec_driver_sql(
                "SELECT event_id FROM usage_events WHERE tenant_id = ? AND event_id IN "
                "(SELECT value FROM json_each(?))",
                (self.tenant_id.hex, orjson.dumps(list(chunk)).decode()),
            )
            found.update(r[0] for r in rows)
        return found

    def insert_events(self, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Insert events, skipping ids already stored; returns the ids actually inserted.

        The hot path of ingestion, so it talks to the driver: on PostgreSQL one
        INSERT … SELECT FROM unnest(arrays) … ON CONFLICT DO NOTHING RETURNING (exact under
        concurrency: a conflicting concurrent insert waits, then is skipped); on SQLite a lookup
        of the ids then a plain executemany, inside a transaction that another writer cannot
        interleave with (a stale snapshot fails the INSERT rather than double counting)."""
        if not rows:
            return set()
        conn = self.session.connection()
        inserted: set[str] = set()
        if self.dialect == "postgresql":
            # Shared with every other ingesting transaction; the folder takes it exclusively
            # for an instant to learn which ids are safe to fold (see FoldRepository.safe_bound).
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock_shared({INGEST_LOCK})")
            # In id order, so two batches sharing ids take the index locks in one order and
            # the second waits for the first instead of deadlocking with it.
            ordered = sorted(rows, key=lambda r: r["event_id"])
            for chunk in _chunks(ordered):
                result = conn.exec_driver_sql(_PG_INSERT_EVENTS, _pg_event_arrays(chunk))
                inserted.update(r[0] for r in result)
        else:
            existing = self.existing_event_ids([r["event_id"] for r in rows])
            fresh = [r for r in rows if r["event_id"] not in existing]
            if fresh:
                conn.exec_driver_sql(_SQLITE_INSERT_EVENTS, _sqlite_events(fresh))
            inserted = {r["event_id"] for r in fresh}
        self.session.info[WROTE] = True
        return inserted

    def insert_event_columns(
        self,
        event_ids: Sequence[str],
        customer_ids: Sequence[uuid.UUID],
        metrics: Sequence[str],
        values: Sequence[float],
        occurred_at: NDArray[np.datetime64],
        received_at: datetime,
    ) -> int:
        """``insert_events`` for events given column by column (UTC times as ``datetime64``,
        no properties); returns how many were inserted. On SQLite the rows go to the driver
        as tuples whose times numpy renders in one pass, in the text ``_sqlite_time`` gives;
        PostgreSQL takes the rows ``insert_events`` takes."""
        if not len(event_ids):
            return 0
        if self.dialect == "postgresql":
            times = occurred_at.astype("datetime64[us]").tolist()
            dicts = [
                {
                    "tenant_id": self.tenant_id,
                    "event_id": event_id,
                    "customer_id": customer_id,
                    "metric": metric,
                    "value": float(value),
                    "occurred_at": moment.replace(tzinfo=UTC),
                    "properties": {},
                    "received_at": received_at,
                }
                for event_id, customer_id, metric, value, moment in zip(
                    event_ids, customer_ids, metrics, values, times, strict=True
                )
            ]
            return len(self.insert_events(dicts))
        existing = self.existing_event_ids(event_ids)
        keep = [i for i, event_id in enumerate(event_ids) if event_id not in existing]
        if not keep:
            return 0
        texts = np.char.replace(
            np.datetime_as_string(occurred_at.astype("datetime64[us]"), unit="us"), "T", " "
        ).tolist()
        hexes: dict[uuid.UUID, str] = {}
        tenant, received = self.tenant_id.hex, _sqlite_time(received_at)
        rows = [
            (
                tenant,
                event_ids[i],
                hexes.get(customer_ids[i])
                or hexes.setdefault(customer_ids[i], customer_ids[i].hex),
                metrics[i],
                float(values[i]),
                texts[i],
                "{}",
                received,
            )
            for i in keep
        ]
        self.session.connection().exec_driver_sql(_SQLITE_INSERT_EVENTS, rows)
        self.session.info[WROTE] = True
        return len(rows)

    def insert_unique_values(self, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """Insert distinct values; returns (customer_id, metric, day) of each new one."""
        if not rows:
            return []
        table: Table = UsageUniqueValue.__table__  # type: ignore[assignment]
        stmt = (
            _insert(self.session, table)
            .on_conflict_do_nothing(
                index_elements=["tenant_id", "customer_id", "metric", "day", "value_key"]
            )
            .returning(table.c.customer_id, table.c.metric, table.c.day)
        )
        out: list[tuple[Any, ...]] = []
        for chunk in _chunks(list(rows)):
            out.extend(tuple(r) for r in self.session.execute(stmt, list(chunk)).all())
        return out


class DailyRepository(TenantRepository[UsageDaily]):
    """The per-day rollups."""

    model = UsageDaily

    def daily(
        self,
        customer_ids: Sequence[uuid.UUID],
        start: date,
        end: date,
        metrics: Sequence[str] | None = None,
    ) -> dict[tuple[uuid.UUID, str], list[DayRollup]]:
        t = UsageDaily
        out: dict[tuple[uuid.UUID, str], list[DayRollup]] = {}
        for chunk in _chunks(list(customer_ids), 1_000):
            stmt = (
                self.select(
                    t.customer_id,
                    t.metric,
                    t.day,
                    t.event_count,
                    t.value_sum,
                    t.value_max,
                    t.latest_value,
                    t.latest_at,
                    t.unique_count,
                )
                .where(t.customer_id.in_(list(chunk)), t.day >= start, t.day < end)
                .order_by(t.day)
            )
            if metrics is not None:
                stmt = stmt.where(t.metric.in_(list(metrics)))
            for row in self.session.execute(stmt):
                out.setdefault((row.customer_id, row.metric), []).append(
                    DayRollup(
                        day=as_date(row.day),
                        event_count=int(row.event_count),
                        value_sum=float(row.value_sum),
                        value_max=float(row.value_max),
                        latest_value=float(row.latest_value),
                        latest_at=row.latest_at,
                        unique_count=int(row.unique_count),
                    )
                )
        return out

    def period_sums(
        self, customer_ids: Sequence[uuid.UUID], metrics: Sequence[str], start: date, end: date
    ) -> dict[tuple[uuid.UUID, str], tuple[int, float, float]]:
        """(event count, sum, max) per customer and metric over [start, end), aggregated in
        the database so a batch's alert check reads one row per pair."""
        t = UsageDaily
        out: dict[tuple[uuid.UUID, str], tuple[int, float, float]] = {}
        for chunk in _chunks(list(customer_ids), 1_000):
            stmt = (
                self.select(
                    t.customer_id,
                    t.metric,
                    func.sum(t.event_count),
                    func.sum(t.value_sum),
                    func.max(t.value_max),
                )
                .where(
                    t.customer_id.in_(list(chunk)),
                    t.metric.in_(list(metrics)),
                    t.day >= start,
                    t.day < end,
                )
                .group_by(t.customer_id, t.metric)
            )
            for cid, metric, n, total, peak in self.session.execute(stmt):
                out[(cid, metric)] = (int(n), float(total), float(peak))
        return out

    def customers_with_usage(self, start: date, end: date) -> list[uuid.UUID]:
        t = UsageDaily
        stmt = self.select(t.customer_id).where(t.day >= start, t.day < end).distinct()
        return [r[0] for r in self.session.execute(stmt)]

    def usage_events_by_day(
        self, customer_id: uuid.UUID | None = None
    ) -> list[tuple[uuid.UUID, date, int]]:
        t = UsageDaily
        stmt = self.select(t.customer_id, t.day, func.sum(t.event_count)).group_by(
            t.customer_id, t.day
        )
        stmt = where_given(stmt, (t.customer_id, customer_id))
        return [(c, as_date(d), int(n)) for c, d, n in self.session.execute(stmt)]


# An arbitrary constant naming the PostgreSQL advisory lock between ingestion and the folder.
INGEST_LOCK = 7_462_017_001
FOLD_CURSOR = "usage"
PENDING_WINDOW = 100_000
FOLD_LOCK_WAIT = "5s"


class FoldRepository:
    """The folder's queries. Not tenant-scoped: the folder folds every tenant's events in id
    order, and each event carries its tenant_id into the tenant's rollups."""

    def __init__(self, session: Session) -> None:
        self.session = session
        scope_to_all_tenants(session)

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def lock_cursor(self) -> int:
        """The last folded id, locked until this transaction ends so folders take turns (on
        SQLite the transaction's write lock does that)."""
        stmt = select(UsageFoldCursor.last_event_id).where(UsageFoldCursor.name == FOLD_CURSOR)
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        value = self.session.scalar(stmt)
        if value is None:  # the migration seeds the row; a wiped table starts from zero
            table: Table = UsageFoldCursor.__table__  # type: ignore[assignment]
            self.session.execute(
                _insert(self.session, table)
                .values(name=FOLD_CURSOR, last_event_id=0)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            value = self.session.scalar(stmt)
        return int(value or 0)

    def last_folded(self) -> int:
        stmt = select(UsageFoldCursor.last_event_id).where(UsageFoldCursor.name == FOLD_CURSOR)
        return int(self.session.scalar(stmt) or 0)

    def safe_bound(self) -> int | None:
        """The highest id below which every event is committed (or rolled back for good), or
        None when a long transaction that stored events is still open (see below).

        PostgreSQL hands out ids when rows are inserted, not when they commit, so a batch still
        in flight can hold a lower id than one already visible. Every ingesting transaction
        holds the advisory lock shared; taking it exclusively waits for those in flight, and
        new ones queue behind it, so the maximum id read under it has no gaps still to fill.
        The wait is capped (FOLD_LOCK_WAIT): a transaction storing events for longer — a demo
        load — would otherwise hold every other batch up behind the waiting fold.
        On SQLite writers are serialised and this transaction holds the write lock already."""
        top = select(func.coalesce(func.max(UsageEvent.id), 0))
        if self.dialect != "postgresql":
            return int(self.session.scalar(top) or 0)
        conn = self.session.connection()
        # In a savepoint, so a timed-out wait does not abort the fold's transaction.
        conn.exec_driver_sql("SAVEPOINT fold_bound")
        try:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{FOLD_LOCK_WAIT}'")
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({INGEST_LOCK})")
        except OperationalError as exc:
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT fold_bound")
            if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
                raise
            return None
        conn.exec_driver_sql("RELEASE SAVEPOINT fold_bound")
        conn.exec_driver_sql("SET LOCAL lock_timeout = 0")
        try:
            return int(self.session.scalar(top) or 0)
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({INGEST_LOCK})")

    def window_end(self, after: int, bound: int, limit: int) -> int:
        """The id of the ``limit``-th event after ``after`` (``bound`` when fewer wait)."""
        stmt = (
            select(UsageEvent.id)
            .where(UsageEvent.id > after, UsageEvent.id <= bound)
            .order_by(UsageEvent.id)
            .offset(limit - 1)
            .limit(1)
        )
        end = self.session.scalar(stmt)
        return bound if end is None else int(end)

    def count_window(self, after: int, upto: int) -> int:
        stmt = select(func.count()).where(UsageEvent.id > after, UsageEvent.id <= upto)
        return int(self.session.scalar(stmt) or 0)

    def fold_daily(
        self, after: int, upto: int, since: date
    ) -> tuple[set[uuid.UUID], list[tuple[uuid.UUID, uuid.UUID, str, date]]]:
        """Add the events after < id <= upto to usage_daily in one statement, aggregated by
        the database; return the tenants it touched and the (tenant, customer, metric, day)
        rows it touched on or after ``since`` (a history's older days need no alert check)."""
        conn = self.session.connection()
        params = {"after": after, "upto": upto}
        if self.dialect == "postgresql":
            rows = conn.exec_driver_sql(_PG_FOLD_DAILY, params).all()
            return {r[0] for r in rows}, [(t, c, m, d) for t, c, m, d in rows if d >= since]
        rows = conn.exec_driver_sql(_SQLITE_FOLD_DAILY, params).all()
        # Only the recent rows become UUIDs and dates: a fold of a long history returns
        # hundreds of thousands of rows, and parsing them all cost more than the fold itself.
        # ISO dates order as text.
        first = since.isoformat()
        tenants = {uuid.UUID(t) for t in {r[0] for r in rows}}
        recent = [
            (uuid.UUID(t), uuid.UUID(c), m, date.fromisoformat(d))
            for t, c, m, d in rows
            if d >= first
        ]
        return tenants, recent

    def unique_meters(self) -> dict[tuple[uuid.UUID, str], str | None]:
        """(tenant, meter) -> the property it counts (None: the value), every tenant's."""
        stmt = select(Meter.tenant_id, Meter.name, Meter.unique_property).where(
            Meter.aggregation == "unique"
        )
        return {(t, name): prop for t, name, prop in self.session.execute(stmt)}

    def window_events(
        self, after: int, upto: int, metrics: Sequence[tuple[uuid.UUID, str]]
    ) -> list[Any]:
        """The window's events of the given (tenant, metric) pairs, with their properties."""
        t = UsageEvent
        stmt = (
            select(t.tenant_id, t.customer_id, t.metric, t.value, t.occurred_at, t.properties)
            .where(t.id > after, t.id <= upto, tuple_(t.tenant_id, t.metric).in_(list(metrics)))
            .order_by(t.id)
        )
        return list(self.session.execute(stmt))

    def add_unique_counts(self, counts: dict[tuple[uuid.UUID, uuid.UUID, str, date], int]) -> None:
        t = UsageDaily
        for (tenant_id, customer_id, metric, day), n in sorted(counts.items(), key=str):
            self.session.execute(
                update(t)
                .where(
                    t.tenant_id == tenant_id,
                    t.customer_id == customer_id,
                    t.metric == metric,
                    t.day == day,
                )
                .values(unique_count=t.unique_count + n)
            )

    def tenant_has_pending(self, tenant_id: uuid.UUID, after: int) -> bool:
        """Whether the tenant has events above ``after``. Reads walk the primary key from the
        cursor — the subquery's ORDER BY id … LIMIT makes sure of it: filtered on tenant_id
        alone, a planner may take the (tenant_id, event_id) index through every event the
        tenant ever sent. A tail longer than the window counts as pending."""
        if not self.has_pending(after):
            return False
        window = (
            select(UsageEvent.tenant_id)
            .where(UsageEvent.id > after)
            .order_by(UsageEvent.id)
            .limit(PENDING_WINDOW)
            .subquery()
        )
        tenants = select(window.c.tenant_id).where(window.c.tenant_id == tenant_id).limit(1)
        if self.session.scalar(tenants) is not None:
            return True
        seen = select(func.count()).select_from(window)
        return int(self.session.scalar(seen) or 0) >= PENDING_WINDOW

    def has_pending(self, after: int) -> bool:
        # ORDER BY id: without it PostgreSQL may scan the whole table (seen: 88 ms at 1M rows).
        stmt = select(UsageEvent.id).where(UsageEvent.id > after).order_by(UsageEvent.id).limit(1)
        return self.session.scalar(stmt) is not None

    def advance(self, to: int, at: datetime) -> None:
        self.session.execute(
            update(UsageFoldCursor)
            .where(UsageFoldCursor.name == FOLD_CURSOR)
            .values(last_event_id=to, folded_at=at)
        )


class UniqueValueRepository(TenantRepository[UsageUniqueValue]):
    model = UsageUniqueValue

    def distinct_values(
        self, pairs: Sequence[tuple[uuid.UUID, str]], start: date, end: date
    ) -> dict[tuple[uuid.UUID, str], int]:
        if not pairs:
            return {}
        t = UsageUniqueValue
        rows = self.session.execute(
            self.select(t.customer_id, t.metric, func.count(func.distinct(t.value_key)))
            .where(tuple_(t.customer_id, t.metric).in_(list(pairs)), t.day >= start, t.day < end)
            .group_by(t.customer_id, t.metric)
        )
        return {(cid, metric): int(n) for cid, metric, n in rows}


class AlertRepository(TenantRepository[UsageAlert]):
    model = UsageAlert
    noun = "Alert"

    def list_statement(self, *, customer_id: uuid.UUID | None, level: str | None) -> Select[Any]:
        return where_given(
            self.select(), (UsageAlert.customer_id, customer_id), (UsageAlert.level, level)
        )

    def link_delivery(self, alert_id: uuid.UUID, delivery_id: uuid.UUID) -> None:
        self.session.execute(
            self.update().where(UsageAlert.id == alert_id).values(webhook_delivery_id=delivery_id)
        )

    def insert_new(self, rows: Sequence[dict[str, Any]]) -> list[uuid.UUID]:
        if not rows:
            return []
        table: Table = UsageAlert.__table__  # type: ignore[assignment]
        stmt = (
            _insert(self.session, table)
            .on_conflict_do_nothing(
                index_elements=["tenant_id", "customer_id", "metric", "period_start", "level"]
            )
            .returning(table.c.id)
        )
        return list(self.session.scalars(stmt, list(rows)).all())

    def fired(
        self, customer_ids: Sequence[uuid.UUID], period_start: date
    ) -> set[tuple[uuid.UUID, str, str]]:
        """(customer, metric, level) of the alerts already fired in a period."""
        out: set[tuple[uuid.UUID, str, str]] = set()
        t = UsageAlert
        for chunk in _chunks(list(customer_ids)):
            rows = self.session.execute(
                self.select(t.customer_id, t.metric, t.level).where(
                    t.customer_id.in_(list(chunk)), t.period_start == period_start
                )
            )
            out.update((c, m, lv) for c, m, lv in rows)
        return out

    def by_ids(self, ids: Sequence[uuid.UUID]) -> Sequence[UsageAlert]:
        return self.all(self.select().where(UsageAlert.id.in_(list(ids))))


class CampaignRepository(TenantRepository[UpsellCampaign]):
    model = UpsellCampaign
    noun = "Upsell campaign"

    def opened_since(self, since: datetime, limit: int) -> list[uuid.UUID]:
        """Campaigns opened since ``since``, newest first."""
        stmt = (
            self.select(UpsellCampaign.id)
            .where(UpsellCampaign.created_at >= since)
            .order_by(UpsellCampaign.created_at.desc(), UpsellCampaign.id)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def by_ids(self, ids: Sequence[uuid.UUID]) -> Sequence[UpsellCampaign]:
        if not ids:
            return []
        return self.all(self.select().where(UpsellCampaign.id.in_(list(ids))))

    def for_period(self, customer_id: uuid.UUID, period_start: date) -> UpsellCampaign | None:
        return self.session.scalar(
            self.select().where(
                and_(
                    UpsellCampaign.customer_id == customer_id,
                    UpsellCampaign.period_start == period_start,
                )
            )
        )


class DecisionRepository(TenantRepository[Decision]):
    model = Decision

    def open_renewal_scores(self) -> Sequence[Decision]:
        return self.all(
            self.select().where(
                Decision.kind == "renewal_probability", Decision.outcome_at.is_(None)
            )
        )


class RenewalModelRepository(TenantRepository[RenewalModel]):
    model = RenewalModel

    def latest(self) -> RenewalModel | None:
        return self.session.scalar(self.select().order_by(RenewalModel.trained_at.desc()).limit(1))


# --- driver-level statements of the ingestion hot path ---------------------------------------
# PostgreSQL parameters are sent in binary (%(name)b): psycopg's text form escapes every array
# element with regular expressions, which costs more than the insert itself.

_EVENT_COLUMNS = (
    "tenant_id, event_id, customer_id, metric, value, occurred_at, properties, received_at"
)
_PG_INSERT_EVENTS = f"""
INSERT INTO usage_events ({_EVENT_COLUMNS})
SELECT %(tenant)b, e.event_id, e.customer_id, e.metric, e.value, e.occurred_at,
       e.properties::jsonb, %(received)b
FROM unnest(%(ids)b::text[], %(customers)b::uuid[], %(metrics)b::text[], %(values)b::float8[],
            %(times)b::timestamptz[], %(props)b::text[])
     AS e(event_id, customer_id, metric, value, occurred_at, properties)
ON CONFLICT (tenant_id, event_id) DO NOTHING
RETURNING event_id
"""
_SQLITE_INSERT_EVENTS = (
    f"INSERT INTO usage_events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

_DAILY_COLUMNS = (
    "tenant_id, customer_id, metric, day, event_count, value_sum, value_max, latest_value,"
    " latest_at, unique_count"
)
# A window of events aggregated per tenant, customer, metric and UTC day: count, sum, max, and
# the value of the newest event (the later id on a tie, as arrival order would have it),
# added to the stored rollups. Distinct counts are the caller's (see fold_pending).
_FOLD_DAILY = """
INSERT INTO usage_daily ({columns})
SELECT tenant_id, customer_id, metric, day, count(*), sum(value), max(value),
       max(CASE WHEN newest = 1 THEN value END), max(occurred_at), 0
FROM (
    SELECT tenant_id, customer_id, metric, value, occurred_at, {day} AS day,
           row_number() OVER (PARTITION BY tenant_id, customer_id, metric, {day}
                              ORDER BY occurred_at DESC, id DESC) AS newest
    FROM usage_events
    WHERE id > {after} AND id <= {upto}
) AS e
WHERE true
GROUP BY tenant_id, customer_id, metric, day
ON CONFLICT (tenant_id, customer_id, metric, day) DO UPDATE SET
  event_count = usage_daily.event_count + excluded.event_count,
  value_sum = usage_daily.value_sum + excluded.value_sum,
  value_max = {bigger}(usage_daily.value_max, excluded.value_max),
  latest_value = CASE WHEN excluded.latest_at >= usage_daily.latest_at
                      THEN excluded.latest_value ELSE usage_daily.latest_value END,
  latest_at = {bigger}(usage_daily.latest_at, excluded.latest_at)
RETURNING tenant_id, customer_id, metric, day
"""
_PG_FOLD_DAILY = _FOLD_DAILY.format(
    columns=_DAILY_COLUMNS,
    day="(occurred_at AT TIME ZONE 'UTC')::date",
    after="%(after)s",
    upto="%(upto)s",
    bigger="GREATEST",
)
# SQLite keeps times as naive UTC text, so date() is the UTC day, and max() orders them.
_SQLITE_FOLD_DAILY = _FOLD_DAILY.format(
    columns=_DAILY_COLUMNS, day="date(occurred_at)", after=":after", upto=":upto", bigger="max"
)


def _sqlite_time(moment: datetime) -> str:
    # The text form SQLAlchemy's SQLite DateTime stores (naive UTC, always with microseconds),
    # so rows written here read back exactly like ORM-written ones.
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # Cutting "+00:00" off costs less than building a naive copy (a bulk load's hot path).
    return moment.isoformat(" ", "microseconds")[:26]


def _sqlite_events(rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    tenant, received = rows[0]["tenant_id"].hex, _sqlite_time(rows[0]["received_at"])
    return [
        (
            tenant,
            r["event_id"],
            r["customer_id"].hex,
            r["metric"],
            float(r["value"]),
            _sqlite_time(r["occurred_at"]),
            orjson.dumps(r["properties"]).decode(),
            received,
        )
        for r in rows
    ]


def _pg_event_arrays(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "tenant": rows[0]["tenant_id"],
        "received": rows[0]["received_at"],
        "ids": [r["event_id"] for r in rows],
        "customers": [r["customer_id"] for r in rows],
        "metrics": [r["metric"] for r in rows],
        "values": [float(r["value"]) for r in rows],
        "times": [r["occurred_at"] for r in rows],
        "props": [orjson.dumps(r["properties"]).decode() for r in rows],
    }


def upsell_fingerprint(session: Session, tenant_id: uuid.UUID) -> tuple[Any, ...]:
    """What an upsell analysis is computed from, in one round trip: the fold cursor (it moves
    whenever usage is added to the rollups), the tenant's meters, settings, plans
    and subscriptions (their counts and last changes). Equal fingerprints, equal analyses."""
    settings = SettingsRepository(session, tenant_id)
    meters = MeterRepository(session, tenant_id)
    subscriptions = SubscriptionRepository(session, tenant_id)
    plans = _PricePlans(session, tenant_id)
    parts = [
        select(func.max(UsageFoldCursor.last_event_id)).scalar_subquery(),
        meters.select(func.count()).scalar_subquery(),
        settings.select(func.max(MeteringSettings.updated_at)).scalar_subquery(),
        plans.select(func.count()).scalar_subquery(),
        plans.select(func.max(PricePlan.updated_at)).scalar_subquery(),
        subscriptions.select(func.count()).scalar_subquery(),
        subscriptions.select(func.max(Subscription.updated_at)).scalar_subquery(),
    ]
    return tuple(session.execute(select(*parts)).one())


class _PricePlans(TenantRepository[PricePlan]):
    model = PricePlan
