"""Queries over the business-data tables, all scoped to one tenant through ``TenantRepository``."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
from dateutil.relativedelta import relativedelta
from sqlalchemy import (
    ColumnElement,
    Date,
    Row,
    Select,
    cast,
    delete,
    false,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from aethercrown.clock import utcnow
from aethercrown.core.tenancy import TenantRepository
from aethercrown.data.kinds import KINDS, KindSpec
from aethercrown.data.models import (
    ActiveUserDay,
    ActiveUserMonth,
    ActivityEvent,
    Customer,
    MarketingSpend,
    Payment,
    Subscription,
    SupportTicket,
)
from aethercrown.db.base import in_strings, new_id
from aethercrown.db.bulk import postgres_upsert, sqlite_executemany
from aethercrown.db.session import WROTE

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

    def existing(self, keys: Collection[Any]) -> dict[Any, tuple[Any, ...]]:
        """Stored ``data_columns`` values per upsert key (keys not stored are left out).

        A key is the bare value for a one-column key, else a tuple, as ``itemgetter`` makes them.
        """
        columns = self.data_columns()
        table = self.model.__table__
        single = len(self.spec.key) == 1
        positions = [columns.index(k) for k in self.spec.key]
        wanted = set(keys)
        first = wanted if single else {k[0] for k in wanted}
        stmt = self.select(*[table.c[c] for c in columns]).where(
            in_strings(self.session, table.c[self.spec.key[0]], first)
        )
        found: dict[Any, tuple[Any, ...]] = {}
        for row in self.session.execute(stmt):
            values = tuple(row)
            key = values[positions[0]] if single else tuple(values[p] for p in positions)
            # Composite keys (channel, day) are narrowed by their first part only above.
            if key in wanted:
                found[key] = values
        return found

    def last_id(self) -> int:
        """The highest id stored (every tenant's; 0 for none): rows inserted after this call
        get higher ones (integer ids only)."""
        return int(self.session.scalar(select(func.max(self.model.id))) or 0)

    def upsert(self, rows: Sequence[dict[str, Any]], *, all_new: bool = False) -> bool:
        """INSERT … ON CONFLICT (tenant, key) DO UPDATE, as executemany in chunks. ``all_new``
        says none of the keys was stored when the caller looked (a fresh load): on SQLite the
        rows then go in as a plain insert first, and only a batch that met a conflict after all
        (a concurrent writer) is upserted again — SQLite's DO UPDATE checks the foreign keys of
        every row as if updating it, which doubles the cost of a bulk insert. Returns True when
        every row is known to have gone in as a new row (that plain insert took them all)."""
        if not rows:
            return True
        table = self.model.__table__
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(table)
        plain = insert(table).on_conflict_do_nothing(index_elements=["tenant_id", *self.spec.key])
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
        if dialect == "sqlite":
            if all_new and sqlite_executemany(self.session, plain, table, rows) == len(rows):
                return True
            if sqlite_executemany(self.session, stmt, table, rows) is not None:
                return False
        if dialect == "postgresql" and postgres_upsert(
            self.session, table, rows, ["tenant_id", *self.spec.key], updated
        ):
            return False
        for chunk in chunked(rows, WRITE_CHUNK):
            self.session.execute(stmt, list(chunk))
        return False

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

    def export_rows(
        self, filters: Mapping[str, Any], customer_id: Any, batch: int
    ) -> Iterator[Row[*tuple[Any, ...]]]:
        """The list's rows in id order, streamed ``batch`` at a time, each followed by the
        external ids of its customer and subscription where the kind has them."""
        stmt = self.list_statement(filters, customer_id)
        model: Any = self.model
        extra: list[Any] = []
        if self.spec.has_customer:
            stmt = stmt.join(Customer, Customer.id == model.customer_id)
            extra.append(Customer.external_id.label("customer__ext"))
        if self.spec.name == "payments":
            stmt = stmt.outerjoin(Subscription, Subscription.id == model.subscription_id)
            extra.append(Subscription.external_id.label("subscription__ext"))
        stmt = stmt.add_columns(*extra).order_by(model.id).execution_options(yield_per=batch)
        yield from self.session.execute(stmt)

    def by_external(self, external_id: str) -> Any:
        return self.session.scalar(self.select().where(self.model.external_id == external_id))

    def external_ids_starting(self, prefixes: Collection[str]) -> list[str]:
        """Stored external ids that begin with any of ``prefixes`` (rows a source derives from
        one of its own objects, named ``<object id>:…``)."""
        out: list[str] = []
        column = self.model.external_id
        ordered = sorted(set(prefixes))
        for chunk in chunked(ordered, 256):
            # Padded (repeating the last prefix) to a power of two: a handful of statement
            # shapes, each compiled once and cached, instead of one compile per count.
            padded = [*chunk, *[chunk[-1]] * ((1 << (len(chunk) - 1).bit_length()) - len(chunk))]
            stmt = self.select(column).where(
                or_(*[column.startswith(p, autoescape=True) for p in padded])
            )
            out.extend(self.session.scalars(stmt))
        return out

    def delete_external(self, external_ids: Collection[str]) -> int:
        deleted = 0
        for chunk in chunked(sorted(set(external_ids)), IN_CHUNK):
            result = self.session.execute(self.delete().where(self.model.external_id.in_(chunk)))
            deleted += int(getattr(result, "rowcount", 0) or 0)
        return deleted


class CustomerRepository(RowRepository):
    model = Customer
    noun = "Customer"
    spec = KINDS["customers"]

    def by_externals(self, external_ids: Iterable[str]) -> Sequence[Customer]:
        return self.all(self.select().where(Customer.external_id.in_(sorted(set(external_ids)))))

    def ids_by_external(self, external_ids: Iterable[str]) -> dict[str, uuid.UUID]:
        stmt = self.select(Customer.external_id, Customer.id).where(
            in_strings(self.session, Customer.external_id, set(external_ids))
        )
        return {ext: ident for ext, ident in self.session.execute(stmt)}

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
        stmt = self.select(
            Subscription.external_id, Subscription.id, Subscription.customer_id
        ).where(in_strings(self.session, Subscription.external_id, set(external_ids)))
        return {ext: (ident, cust) for ext, ident, cust in self.session.execute(stmt)}

    def external_by_ids(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        out: dict[uuid.UUID, str] = {}
        for chunk in chunked(sorted(set(ids)), IN_CHUNK):
            stmt = self.select(Subscription.id, Subscription.external_id).where(
                Subscription.id.in_(chunk)
            )
            out.update({ident: ext for ident, ext in self.session.execute(stmt)})
        return out


# One round trip on PostgreSQL for a batch of new activity events: the rows travel as one JSON
# parameter (orjson writes it in C; seven typed arrays cost the driver more to adapt than the
# database to insert), the events whose external id is stored already are skipped (ON CONFLICT
# DO NOTHING: a concurrent writer's uncommitted duplicate is waited for, then skipped), and the
# user-day and user-month rollups are recorded from the rows the insert returns rather than by
# reading the table back. Rows are sorted by key in each insert so that two batches naming the
# same users take the rollup rows' locks in one order (no deadlock between them).
_APPEND_ACTIVITY = text(
    """
WITH inserted AS (
    INSERT INTO activity_events
        (tenant_id, external_id, customer_id, user_id, kind, occurred_at, duration_seconds,
         feature)
    SELECT CAST(:tenant_id AS uuid), external_id, customer_id, user_id, kind, occurred_at,
           duration_seconds, feature
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(
        external_id varchar, customer_id uuid, user_id varchar, kind varchar,
        occurred_at timestamptz, duration_seconds integer, feature varchar
    )
    ORDER BY external_id
    ON CONFLICT (tenant_id, external_id) DO NOTHING
    RETURNING customer_id, user_id, occurred_at
), user_days AS (
    INSERT INTO active_user_days (tenant_id, day, customer_id, user_id)
    SELECT DISTINCT CAST(:tenant_id AS uuid), CAST(timezone('UTC', occurred_at) AS date),
           customer_id, user_id
    FROM inserted ORDER BY 2, 3, 4
    ON CONFLICT DO NOTHING
), user_months AS (
    INSERT INTO active_user_months (tenant_id, month, customer_id, user_id)
    SELECT DISTINCT CAST(:tenant_id AS uuid),
           CAST(date_trunc('month', timezone('UTC', occurred_at)) AS date), customer_id, user_id
    FROM inserted ORDER BY 2, 3, 4
    ON CONFLICT DO NOTHING
)
SELECT count(*) FROM inserted
"""
)


class ActivityRepository(RowRepository):
    model = ActivityEvent
    noun = "Activity event"
    spec = KINDS["activity"]

    def table_is_empty(self) -> bool:
        """No activity event of any tenant is stored."""
        return self.session.scalar(select(ActivityEvent.id).limit(1)) is None

    def drop_secondary_indexes(self) -> list[str]:
        """SQLite only: drop the table's non-unique indexes (the unique ones stay: an insert's
        ON CONFLICT names them) and return the statements that made them, exactly as SQLite
        stored them, for ``create_indexes`` — so the recreated schema is the migrated one."""
        table = ActivityEvent.__tablename__
        listed = self.session.execute(text(f"PRAGMA index_list('{table}')")).all()
        # index_list's columns: seq, name, unique, origin (c: CREATE INDEX), partial.
        names = [row[1] for row in listed if not row[2] and row[3] == "c"]
        made: list[str] = []
        for name in names:
            sql = self.session.scalar(
                text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"),
                {"name": name},
            )
            if sql:
                made.append(sql)
                self.session.execute(text(f'DROP INDEX "{name}"'))
        return made

    def create_indexes(self, statements: Sequence[str]) -> None:
        for sql in statements:
            self.session.execute(text(sql))

    def append_new(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert the rows (validated, ``customer_id`` resolved) whose external id is not
        stored, leaving stored ones as they are, and record the new events' user-days and
        user-months; returns how many were inserted."""
        if not rows:
            return 0
        if self.session.get_bind().dialect.name == "postgresql":
            # The validated rows as they are, not copied down to the columns first: they hold
            # those keys only, and jsonb_to_recordset reads only the columns it lists anyway.
            inserted = self.session.execute(
                _APPEND_ACTIVITY,
                {"rows": orjson.dumps(list(rows)).decode(), "tenant_id": self.tenant_id},
            ).scalar_one()
            self.session.info[WROTE] = True
            return int(inserted)
        # SQLite has one writer at a time: the events stored after the highest id seen now are
        # this batch's (see ActiveUserDayRepository.record_inserted_after).
        last_id = self.last_id()
        table: Any = self.model.__table__
        plain = sqlite.insert(table).on_conflict_do_nothing(
            index_elements=["tenant_id", "external_id"]
        )
        for row in rows:
            row["tenant_id"] = self.tenant_id
        inserted = sqlite_executemany(self.session, plain, table, list(rows)) or 0
        if inserted:
            ActiveUserDayRepository(self.session, self.tenant_id).record_inserted_after(last_id)
        return inserted


# A user of a customer active on a UTC day.
UserDay = tuple[date, uuid.UUID, str]


def utc_day(moment: datetime) -> date:
    """The UTC calendar day of an aware instant (a naive one is taken as UTC)."""
    return (moment if moment.tzinfo is None else moment.astimezone(UTC)).date()


class ActiveUserDayRepository(TenantRepository[ActiveUserDay]):
    """The distinct-active-user rollup of the activity events (``ActiveUserDay``)."""

    model = ActiveUserDay

    def record_events(self, external_ids: Collection[str]) -> None:
        """Record the user-days of these stored events (those already recorded are left as
        they are). One INSERT … SELECT DISTINCT in the database: no per-event work in Python."""
        if not external_ids:
            return
        e = ActivityEvent
        for chunk in chunked(list(external_ids), IN_CHUNK * 10):
            self._record(in_strings(self.session, e.external_id, chunk))

    def record_inserted_after(self, last_id: int) -> None:
        """Record the user-days of the tenant's events stored with an id above ``last_id``
        (``RowRepository.last_id`` taken before inserting them): a range of the table read in
        order, instead of a lookup of each event by its external id — a bulk load's batch is
        read back in a fraction of the time. Any stored event's user-day is a right one to
        record, so rows another writer added in that range do no harm."""
        self._record(ActivityEvent.id > last_id)

    def record_first_load(self, last_id: int) -> None:
        """``record_inserted_after`` for a load into an activity table that was empty (of every
        tenant, so the tenant's rollups held nothing either): the user-days from the events,
        then the user-months from those user-days — a third as many rows to group as the
        events (the demo's 957,000 events hold 431,000 user-days), the same months."""
        self._record(ActivityEvent.id > last_id, months=False)
        d = ActiveUserDay
        if self.session.get_bind().dialect.name == "postgresql":
            month: Any = cast(func.date_trunc("month", d.day), Date)
            insert: Any = postgresql.insert
        else:
            month, insert = func.date(d.day, "start of month"), sqlite.insert
        users = (
            select(d.tenant_id, month, d.customer_id, d.user_id)
            .where(d.tenant_id == self.tenant_id)
            .distinct()
        )
        columns = ["tenant_id", "month", "customer_id", "user_id"]
        self.session.execute(
            insert(ActiveUserMonth).from_select(columns, users).on_conflict_do_nothing()
        )

    def _record(self, events: ColumnElement[bool], *, months: bool = True) -> None:
        e = ActivityEvent
        if self.session.get_bind().dialect.name == "postgresql":
            utc = func.timezone("UTC", e.occurred_at)
            day: Any = cast(utc, Date)
            month: Any = cast(func.date_trunc("month", utc), Date)
            insert: Any = postgresql.insert
        else:
            day, insert = func.date(e.occurred_at), sqlite.insert
            month = func.date(e.occurred_at, "start of month")
        grains = [(ActiveUserDay, day, "day"), (ActiveUserMonth, month, "month")]
        for model, grain, column in grains if months else grains[:1]:
            users = (
                select(e.tenant_id, grain, e.customer_id, e.user_id)
                .where(e.tenant_id == self.tenant_id)
                .where(events)
                .distinct()
            )
            columns = ["tenant_id", column, "customer_id", "user_id"]
            self.session.execute(insert(model).from_select(columns, users).on_conflict_do_nothing())

    def prune(self, user_days: Iterable[UserDay]) -> None:
        """Forget each of these user-days that no stored event keeps any more (an event moved
        to another day or user by an upsert)."""
        e = ActivityEvent
        for day, customer_id, user_id in user_days:
            begins = datetime.combine(day, time.min, UTC)
            kept = self.session.scalar(
                select(e.id)
                .where(
                    e.tenant_id == self.tenant_id,
                    e.customer_id == customer_id,
                    e.user_id == user_id,
                    e.occurred_at >= begins,
                    e.occurred_at < begins + timedelta(days=1),
                )
                .limit(1)
            )
            if kept is not None:
                continue
            self.session.execute(
                self.delete().where(
                    ActiveUserDay.day == day,
                    ActiveUserDay.customer_id == customer_id,
                    ActiveUserDay.user_id == user_id,
                )
            )
            # The month goes too when no other day of it keeps the user.
            first = day.replace(day=1)
            month_kept = self.session.scalar(
                self.select(ActiveUserDay.day)
                .where(
                    ActiveUserDay.customer_id == customer_id,
                    ActiveUserDay.user_id == user_id,
                    ActiveUserDay.day >= first,
                    ActiveUserDay.day < first + relativedelta(months=1),
                )
                .limit(1)
            )
            if month_kept is None:
                self.session.execute(
                    delete(ActiveUserMonth).where(
                        ActiveUserMonth.tenant_id == self.tenant_id,
                        ActiveUserMonth.month == first,
                        ActiveUserMonth.customer_id == customer_id,
                        ActiveUserMonth.user_id == user_id,
                    )
                )


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
