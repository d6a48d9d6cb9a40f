"""The outbox every outbound message goes through (signed webhooks, alert channels).

A domain stores one row per message in its outbox table inside the unit of work that decided
to send it, so a message exists exactly when its cause does. A runner then sends what is due in
three steps, so that no database transaction is open while a receiver is called (a slow one
would otherwise hold SQLite's write lock, or PostgreSQL row locks, for its timeout):

1. claim the due rows under a lease in one short write unit (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL, the write queue's ``BEGIN IMMEDIATE`` on SQLite: two runners never take the
   same row), and read what sending needs;
2. send them with no transaction open;
3. record each attempt in another short write unit, only for rows this runner still holds
   (a lease that expired because its runner stalled was taken over: the new holder records).

A failed attempt is retried after an exponential backoff (or the receiver's ``Retry-After``
when longer), up to the outbox's attempt limit; an attempt that cannot succeed by retrying
(``Attempt.final``) gives up at once. ``last_error`` is kept short and free of secrets
(``sanitise``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Generic, Protocol, TypeVar

from fastapi import Query
from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from aethercrown.clock import utcnow
from aethercrown.core.backoff import exponential_backoff
from aethercrown.core.jobs import JobSpec
from aethercrown.core.outbox_repository import due_rows, held_rows
from aethercrown.db.session import write_transaction
from aethercrown.db.tenant_scope import scope_to_all_tenants

ERROR_LIMIT = 500
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"

# The filters of a domain's list of its outbox deliveries (webhooks', alerts').
DeliveryStatusQuery = Annotated[str | None, Query(pattern=f"^({PENDING}|{DELIVERED}|{FAILED})$")]
EventTypeQuery = Annotated[str | None, Query(min_length=1, max_length=100)]


class OutboxRow:
    """The columns of an outbox table (mixed into each domain's delivery model)."""

    status: Mapped[str] = mapped_column(String(20), default=PENDING)  # pending|delivered|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The lease of the runner sending it: no other runner claims it before claimed_until, and
    # only the holder of claim_token records the outcome. A lease that expired (its runner
    # crashed mid-batch) is claimed again.
    claimed_until: Mapped[datetime | None] = mapped_column(nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(32), nullable=True)


class _Row(Protocol):
    id: Any
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    claimed_until: datetime | None
    claim_token: str | None


R = TypeVar("R", bound=OutboxRow)
C = TypeVar("C", bound="Claimed")


class Claimed(Protocol):
    """What a runner took under lease: the row's id and its attempts so far (plus whatever the
    sender needs, read while the claim's unit was open)."""

    @property
    def id(self) -> Any: ...

    @property
    def attempts(self) -> int: ...


@dataclass(frozen=True)
class Attempt:
    """The result of one send."""

    delivered: bool
    status_code: int | None = None
    error: str | None = None
    # Seconds the receiver asked to wait (HTTP Retry-After): the next attempt is not sooner.
    retry_after: float | None = None
    # Retrying cannot help (a recipient the mail server refused for good): give up now.
    final: bool = False
    # Columns of the row to set with this attempt (what is still owed, for instance).
    changes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_seconds: float = 30
    max_seconds: float = 6 * 3600
    # A Retry-After beyond this is taken as this (a receiver cannot park a message for days).
    max_retry_after_seconds: float = 6 * 3600

    def backoff(self, attempts: int) -> timedelta:
        return timedelta(seconds=exponential_backoff(attempts, self.base_seconds, self.max_seconds))

    def delay(self, attempts: int, retry_after: float | None) -> timedelta:
        wait = self.backoff(attempts)
        if retry_after is not None and retry_after > 0:
            wait = max(wait, timedelta(seconds=min(retry_after, self.max_retry_after_seconds)))
        return wait


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]+")


def sanitise(text: str | None, secrets: Iterable[str] = ()) -> str | None:
    """An error fit to store and show: every secret (a webhook URL whose path is its
    credential, a password) replaced, control characters dropped, at most ERROR_LIMIT
    characters."""
    if text is None:
        return None
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return _CONTROL.sub(" ", text)[:ERROR_LIMIT]


def retry_after_seconds(value: str | None) -> float | None:
    """HTTP ``Retry-After`` as seconds (its delta-seconds form; a date form is ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class Outbox(Generic[R]):
    """Claiming and recording for one outbox table."""

    def __init__(self, model: type[R], policy: RetryPolicy, name: str) -> None:
        self.model = model
        self.policy = policy
        self.name = name

    def claim(
        self, session: Session, now: datetime, limit: int, until: datetime, token: str
    ) -> list[R]:
        """The due rows (oldest due first), leased to ``token`` until ``until``."""
        rows = due_rows(session, self.model, PENDING, now, limit)
        for row in rows:
            row.claimed_until = until
            row.claim_token = token
        return rows

    def record(
        self,
        session: Session,
        outcomes: Sequence[tuple[Claimed, Attempt]],
        token: str,
        now: datetime,
    ) -> dict[str, int]:
        """Store each attempt on the rows ``token`` still holds; counts by outcome."""
        counts = {"delivered": 0, "retrying": 0, "failed": 0}
        if not outcomes:
            return counts
        rows: dict[Any, _Row] = held_rows(session, self.model, [c.id for c, _ in outcomes], token)
        for claimed, attempt in outcomes:
            row = rows.get(claimed.id)
            if row is None:
                continue  # the lease expired and another runner took it over: its outcome counts
            row.claimed_until = None
            row.claim_token = None
            row.attempts = claimed.attempts + 1
            row.last_status_code = attempt.status_code
            row.last_error = None if attempt.delivered else attempt.error
            for column, value in attempt.changes.items():
                setattr(row, column, value)
            if attempt.delivered:
                row.status = DELIVERED
                row.delivered_at = now
                counts["delivered"] += 1
            elif attempt.final or row.attempts >= self.policy.max_attempts:
                row.status = FAILED
                counts["failed"] += 1
            else:
                row.next_attempt_at = now + self.policy.delay(row.attempts, attempt.retry_after)
                counts["retrying"] += 1
        return counts

    def deliver_due(
        self,
        factory: sessionmaker[Session],
        prepare: Callable[[Session, list[R]], list[C]],
        send: Callable[[C], Attempt],
        *,
        now: datetime | None = None,
        limit: int = 100,
        lease: timedelta,
    ) -> dict[str, int]:
        """Claim what is due, ``prepare`` it (in the claim's unit: decrypt, sign, render),
        ``send`` each with no transaction open, record the attempts. Counts by outcome."""
        now = now or utcnow()
        token = uuid.uuid4().hex
        with write_transaction(factory) as session:
            scope_to_all_tenants(session)  # the runner sends every tenant's messages
            claimed = prepare(session, self.claim(session, now, limit, now + lease, token))
        if not claimed:
            return {"delivered": 0, "retrying": 0, "failed": 0}
        outcomes = [(item, send(item)) for item in claimed]
        with write_transaction(factory) as session:
            scope_to_all_tenants(session)
            return self.record(session, outcomes, token, now)


def headline(summary: Mapping[str, Any], nothing: str) -> str:
    """A delivery run's headline for the automation history."""
    if not any(summary.values()):
        return nothing
    return (
        f"{summary.get('delivered', 0):,} delivered, {summary.get('retrying', 0):,} to retry, "
        f"{summary.get('failed', 0):,} given up"
    )


def delivery_job(
    name: str,
    deliver: Callable[[sessionmaker[Session]], dict[str, Any]],
    description: str,
    nothing: str,
) -> JobSpec:
    """An outbox's periodic job: every minute, across tenants, send what is due (``deliver``,
    which opens its own short units) and sum it up with ``headline``."""

    def run(
        factory: sessionmaker[Session], tenant_id: uuid.UUID | None, period_start: datetime
    ) -> dict[str, Any]:
        return deliver(factory)

    return JobSpec(
        name=name,
        interval_seconds=60,
        run_in_units=run,
        per_tenant=False,
        description=description,
        headline=lambda summary: headline(summary, nothing),
    )
