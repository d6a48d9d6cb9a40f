"""Stripe: the per-tenant connection, signed webhooks, the backfill, and the mapping of stored
events into business data (customers, subscriptions, payments) through ``data.service``.

The webhook endpoint is ``POST /api/v1/connectors/stripe/webhook/{tenant_id}``: the tenant is in
the path (Stripe sends no credentials but its signature), and each tenant's endpoint has its own
signing secret, so one tenant's events can never be verified, stored or mapped as another's.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import stripe
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.clock import utcnow
from aethercrown.connectors import stripe_mapping as mapping
from aethercrown.connectors.models import StripeConnection, StripeEvent
from aethercrown.connectors.repository import (
    ClaimedEvent,
    StoredEvent,
    StripeConnectionRepository,
    StripeEventRepository,
    StripeInvoiceRepository,
    StripeSegmentRepository,
    tenants_with_unmapped_events,
)
from aethercrown.core.backoff import exponential_backoff
from aethercrown.core.crypto import SecretBox
from aethercrown.core.errors import Conflict, InvalidInput, NotFound, ProblemError, field_error
from aethercrown.data import service as data
from aethercrown.db.session import read_transaction, write_transaction
from aethercrown.settings import get_settings

log = logging.getLogger(__name__)

# Stripe's own default tolerance; measured on the platform's clock (see verify_signature).
SIGNATURE_TOLERANCE_SECONDS = 300
SIGNATURE_HEADER = "Stripe-Signature"
# Rows per data.ingest_rows call when a batch maps many objects.
INGEST_CHUNK = 5_000
# Events claimed per mapping transaction.
MAPPING_BATCH = 500
# Retry delay of an event whose object failed to map: 30 s, doubling, at most 6 hours.
MAPPING_BACKOFF = (30.0, 6 * 3600.0)
# How long after a webhook the API process maps (deliveries arriving meanwhile join the batch).
KICK_DELAY_SECONDS = 1.0
# The list endpoints a backfill reads, in the order references need them.
BACKFILL_RESOURCES = ("customers", "subscriptions", "invoices")
BACKFILL_PAGE_SIZE = 100
# Retries the official client makes itself (429 with Stripe-Should-Retry, 409, 5xx, network).
MAX_NETWORK_RETRIES = 4
# Rate-limit answers the client gave up on, retried here from the stored cursor.
MAX_RATE_LIMIT_ROUNDS = 6


class BadSignature(ProblemError):
    def __init__(self, detail: str) -> None:
        super().__init__(400, "bad-signature", "Bad signature", detail)


class BackfillFailed(ProblemError):
    """The Stripe API (or the server at api_base) failed; progress so far is kept."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(424, "upstream-failed", "Stripe backfill failed", detail, **extra)


# ---- the connection ---------------------------------------------------------------------------


def connect(
    session: Session,
    tenant_id: uuid.UUID,
    box: SecretBox,
    *,
    webhook_secret: str,
    api_key: str | None = None,
    api_base: str | None = None,
) -> StripeConnection:
    """Create or replace the tenant's Stripe connection (secrets are stored encrypted)."""
    repo = StripeConnectionRepository(session, tenant_id)
    conn = repo.current()
    if conn is None:
        conn = repo.add(StripeConnection(webhook_secret=b"", backfill={}))
    conn.webhook_secret = box.seal(webhook_secret)
    conn.api_key = box.seal(api_key) if api_key else None
    if conn.api_base != api_base:
        conn.backfill = {}
    conn.api_base = api_base
    session.flush()
    return conn


def connection(session: Session, tenant_id: uuid.UUID) -> StripeConnection:
    conn = StripeConnectionRepository(session, tenant_id).current()
    if conn is None:
        raise NotFound("Stripe connection")
    return conn


def disconnect(session: Session, tenant_id: uuid.UUID) -> None:
    session.delete(connection(session, tenant_id))


# ---- webhooks ---------------------------------------------------------------------------------


def verify_signature(payload: bytes, header: str | None, secret: str, now: float) -> None:
    """Stripe's check, by the official library: a ``v1`` HMAC-SHA256 of ``"{t}.{payload}"``
    under the endpoint's secret. The age of ``t`` is measured here against the platform's clock
    (the library reads the wall clock, which a test or replay cannot move) with Stripe's 300 s
    tolerance either way."""
    if not header:
        raise BadSignature(f"The {SIGNATURE_HEADER} header is missing")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadSignature("The payload is not UTF-8") from exc
    try:
        stripe.WebhookSignature.verify_header(text, header, secret, tolerance=None)
    except stripe.SignatureVerificationError as exc:
        raise BadSignature(f"Signature verification failed: {exc.user_message or exc}") from exc
    stamps = [p[2:] for p in header.split(",") if p.startswith("t=")]
    if not stamps or not stamps[0].isdigit():
        raise BadSignature("The signature header has no timestamp")
    age = now - int(stamps[0])
    if abs(age) > SIGNATURE_TOLERANCE_SECONDS:
        raise BadSignature(
            f"The signature's timestamp is {int(abs(age))} s "
            f"{'old' if age > 0 else 'in the future'} (tolerance {SIGNATURE_TOLERANCE_SECONDS} s)"
        )


def receive_webhook(
    session: Session,
    tenant_id: uuid.UUID,
    payload: bytes,
    signature: str | None,
    box: SecretBox,
) -> dict[str, Any]:
    """Verify and store (once per event id) one webhook delivery; the mapping job maps it
    later. Anything wrong raises before a row is written: the request's unit of work then
    stores nothing. The answer goes out once the request's unit of work has committed, so an
    acknowledged event is durably stored."""
    conn = connection(session, tenant_id)
    secret = box.open(conn.webhook_secret)
    verify_signature(payload, signature, secret, utcnow().timestamp())
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput("The payload is not JSON", [field_error(["body"], str(exc))]) from exc
    return store_events(session, tenant_id, [event])


def _event_row(index: int, event: Any) -> dict[str, Any]:
    def bad(msg: str) -> InvalidInput:
        return InvalidInput(
            f"Event {index} is not a Stripe event: {msg}", [field_error([index], msg)]
        )

    if not isinstance(event, Mapping) or event.get("object") != "event":
        raise bad('expected an object with "object": "event"')
    ident, kind, created = event.get("id"), event.get("type"), event.get("created")
    data_obj = event.get("data")
    obj = data_obj.get("object") if isinstance(data_obj, Mapping) else None
    if not isinstance(ident, str) or not 0 < len(ident) <= 255 or "\x00" in ident:
        raise bad("id must be a string of 1 to 255 characters")
    if not isinstance(kind, str) or not 0 < len(kind) <= 100:
        raise bad("type must be a string of 1 to 100 characters")
    if not isinstance(created, int) or isinstance(created, bool) or created < 0:
        raise bad("created must be a Unix timestamp")
    if not isinstance(obj, Mapping):
        raise bad("data.object must be an object")
    object_id, object_type = obj.get("id"), obj.get("object")
    if not isinstance(object_id, str) or not 0 < len(object_id) <= 200 or ":" in object_id:
        raise bad("data.object.id must be a Stripe id")
    if not isinstance(object_type, str) or not 0 < len(object_type) <= 50:
        raise bad("data.object.object must name the object's type")
    if b"\\u0000" in orjson.dumps(event):
        raise bad("must not contain NUL characters")
    return {
        "event_id": ident,
        "event_type": kind,
        "object_type": object_type,
        "object_id": object_id,
        "created": mapping.epoch_time(created),
        "payload": dict(event),
    }


def store_events(session: Session, tenant_id: uuid.UUID, events: Sequence[Any]) -> dict[str, Any]:
    """Store events new to the tenant, unmapped (``map_pending`` maps them). A redelivered
    event is counted as a duplicate and changes nothing."""
    rows = [_event_row(i, e) for i, e in enumerate(events)]
    stored = StripeEventRepository(session, tenant_id).insert_new(rows)
    return {"received": len(rows), "stored": len(stored), "duplicates": len(rows) - len(stored)}


def store_snapshots(session: Session, tenant_id: uuid.UUID, objects: Sequence[Any]) -> int:
    """A backfill's page: each object stored as its own latest read, then mapped."""
    now = utcnow()
    rows = []
    for i, obj in enumerate(objects):
        event = {
            "object": "event",
            "id": f"snapshot:{obj.get('id') if isinstance(obj, Mapping) else i}",
            "type": f"{obj.get('object') if isinstance(obj, Mapping) else 'unknown'}.snapshot",
            "created": int(now.timestamp()),
            "data": {"object": obj},
        }
        rows.append(_event_row(i, event))
    repo = StripeEventRepository(session, tenant_id)
    repo.lock_mapping()  # mapped here: no mapping job may write these objects meanwhile
    for row in rows:
        row["mapped_at"] = now
    repo.replace_snapshots(rows)
    return map_objects(session, tenant_id, {r["object_id"] for r in rows})


# ---- the mapping job --------------------------------------------------------------------------


@dataclass
class MappingReport:
    batches: int = 0
    mapped: int = 0  # events marked mapped (objects written, or of a type nothing maps)
    failed: int = 0  # events whose object failed to map (kept for a retry)
    objects: int = 0
    dead: int = 0  # of the failed, those set aside for good (too many attempts)

    def add(self, other: MappingReport) -> None:
        self.batches += other.batches
        self.mapped += other.mapped
        self.failed += other.failed
        self.objects += other.objects
        self.dead += other.dead


def map_pending(
    factory: sessionmaker[Session],
    tenant_id: uuid.UUID,
    *,
    batch_size: int = MAPPING_BATCH,
    max_batches: int | None = None,
) -> MappingReport:
    """Map the tenant's unmapped events, ``batch_size`` a transaction, until none is due (or
    ``max_batches`` ran). Each batch commits on its own: a crash loses at most the batch in
    hand, whose events stay unmapped and are claimed again."""
    total = MappingReport()
    while max_batches is None or total.batches < max_batches:
        with write_transaction(factory) as session:
            report = map_batch(session, tenant_id, batch_size)
        if report.batches == 0:
            break
        total.add(report)
    return total


def map_batch(session: Session, tenant_id: uuid.UUID, batch_size: int) -> MappingReport:
    """Claim up to ``batch_size`` due events and map the objects they touch in one pass: each
    object re-derived from all its stored events in Stripe's order (``created``, then
    arrival), written with set-based upserts. An object that fails is rolled back to a
    savepoint and its events keep the error with a retry time; the others are mapped."""
    repo = StripeEventRepository(session, tenant_id)
    repo.lock_mapping()
    now = utcnow()
    claimed = repo.claim_unmapped(now, batch_size)
    if not claimed:
        return MappingReport()
    objects = sorted({c.object_id for c in claimed if c.object_type in mapping.MAPPED_OBJECTS})
    errors: dict[int, str] = {}  # claimed event id -> why its object failed to map
    if objects:
        try:
            with session.begin_nested():
                map_objects(session, tenant_id, objects)
        except Exception:  # one bad object must not hold up the rest: map them one by one
            errors = _map_one_by_one(session, tenant_id, objects, claimed)
    failures = [_failure(c, errors[c.id], now) for c in claimed if c.id in errors]
    repo.mark_mapped([c.id for c in claimed if c.id not in errors], now)
    repo.mark_failed(failures)
    # An object with a bad event isolated was mapped from its other events: it counts.
    failed_objects = {c.object_id for c in claimed if c.id in errors} - {
        c.object_id for c in claimed if c.id not in errors
    }
    return MappingReport(
        batches=1,
        mapped=len(claimed) - len(failures),
        failed=len(failures),
        objects=len(objects) - len(failed_objects),
        dead=sum(1 for f in failures if f[4] is not None),
    )


def _failure(
    claimed: ClaimedEvent, error: str, now: datetime
) -> tuple[int, int, str, datetime | None, datetime | None]:
    """(id, attempts, error, retry at, dead at) of a claimed event whose object failed: retried
    with backoff, or set aside as dead after ``stripe_mapping_max_attempts`` attempts."""
    attempts = claimed.map_attempts + 1
    if attempts >= get_settings().stripe_mapping_max_attempts:
        return claimed.id, attempts, error, None, now
    retry_at = now + timedelta(seconds=exponential_backoff(attempts, *MAPPING_BACKOFF))
    return claimed.id, attempts, error, retry_at, None


def _map_one_by_one(
    session: Session, tenant_id: uuid.UUID, objects: Sequence[str], claimed: Sequence[ClaimedEvent]
) -> dict[int, str]:
    """Each object in its own savepoint; returns the claimed events that failed, with why. When
    an object with several events in the batch fails, it is tried without each of them in turn:
    if leaving one out maps it, only that one fails (kept for a retry, and dead in the end as
    any other) and the object is mapped from the rest, so a bad event does not take the good
    events of its object down with it."""
    by_object: dict[str, list[int]] = defaultdict(list)
    for event in claimed:
        by_object[event.object_id].append(event.id)
    errors: dict[int, str] = {}
    for object_id in objects:
        error = _try_mapping(session, tenant_id, object_id, None)
        if error is None:
            continue
        events = by_object[object_id]
        culprit = None
        if len(events) > 1:
            culprit = next(
                (e for e in events if _try_mapping(session, tenant_id, object_id, e) is None), None
            )
        for event_id in [culprit] if culprit is not None else events:
            errors[event_id] = error
    return errors


def _try_mapping(
    session: Session, tenant_id: uuid.UUID, object_id: str, without: int | None
) -> str | None:
    """Map one object in a savepoint (leaving out the stored event ``without``); its error, or
    None when it mapped."""
    try:
        with session.begin_nested():
            map_objects(session, tenant_id, [object_id], without=without)
    except ProblemError as exc:
        return exc.detail or exc.title
    except Exception as exc:  # a database refusal (a value too long…) is the object's too
        return f"{type(exc).__name__}: {exc}"
    return None


def mapping_status(
    session: Session, tenant_id: uuid.UUID, failures: int = 10, dead: int = 50
) -> dict[str, Any]:
    """Events received (webhooks and backfill reads), mapped, pending, failed, dead and
    discarded, with the latest failures' errors and the latest dead events."""
    repo = StripeEventRepository(session, tenant_id)
    return {
        **repo.mapping_counts(),
        "dead_events": [_dead_event(e) for e in repo.dead(dead)],
        "recent_failures": [
            {
                "event_id": event_id,
                "event_type": event_type,
                "attempts": attempts,
                "error": error,
                "retry_at": retry_at,
            }
            for event_id, event_type, attempts, error, retry_at in repo.failures(failures)
        ],
    }


def _dead_event(event: StripeEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "attempts": event.map_attempts,
        "error": event.map_error,
        "dead_at": event.dead_at,
    }


def _dead(session: Session, tenant_id: uuid.UUID, event_id: str) -> StripeEvent:
    event = StripeEventRepository(session, tenant_id).by_event_id(event_id)
    if event is None:
        raise NotFound("Stripe event", event_id)
    if event.dead_at is None or event.discarded_at is not None:
        state = "discarded" if event.discarded_at is not None else _state(event)
        raise Conflict(
            f"Stripe event {event_id} is {state}: only a dead event can be retried or discarded",
            slug="stripe-event-not-dead",
        )
    return event


def _state(event: StripeEvent) -> str:
    if event.mapped_at is not None:
        return "mapped"
    return "failed (retried with backoff)" if event.map_error else "pending"


# What a retry resets: the event is pending again, with a fresh count of attempts.
_RETRIED: dict[str, Any] = {"dead_at": None, "retry_at": None, "map_attempts": 0, "map_error": None}


def retry_dead_event(session: Session, tenant_id: uuid.UUID, event_id: str) -> dict[str, Any]:
    """Put a dead event back in the queue with a fresh count of attempts: the mapping job (or
    ``map_pending``) maps it, and its object, with it again."""
    event = _dead(session, tenant_id, event_id)
    for name, value in _RETRIED.items():
        setattr(event, name, value)
    session.flush()
    return {"event_id": event.event_id, "status": "pending"}


def discard_dead_event(session: Session, tenant_id: uuid.UUID, event_id: str) -> dict[str, Any]:
    """Give up on a dead event: it stays stored (a redelivery of its id is still a duplicate)
    and is never mapped; its object is mapped from its other events, as it was while dead."""
    event = _dead(session, tenant_id, event_id)
    event.discarded_at = utcnow()
    session.flush()
    return {"event_id": event.event_id, "status": "discarded"}


def retry_dead_events(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    event_type: str | None = None,
    object_id: str | None = None,
) -> dict[str, Any]:
    """Put the tenant's dead events back in the queue, those of ``event_type`` and of
    ``object_id`` when given (every one when neither is), as ``retry_dead_event`` does one by
    one; answers how many. One statement: a thousand dead events are not a thousand round
    trips."""
    repo = StripeEventRepository(session, tenant_id)
    affected = repo.update_dead(event_type, object_id, **_RETRIED)
    return {"status": "pending", "affected": affected}


def discard_dead_events(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    event_type: str | None = None,
    object_id: str | None = None,
) -> dict[str, Any]:
    """Give up on the tenant's dead events (filtered as ``retry_dead_events``); answers how
    many."""
    repo = StripeEventRepository(session, tenant_id)
    affected = repo.update_dead(event_type, object_id, discarded_at=utcnow())
    return {"status": "discarded", "affected": affected}


def map_all_tenants(factory: sessionmaker[Session]) -> dict[str, Any]:
    """The mapping job: every tenant with events due, each mapped until none is left."""
    with read_transaction(factory) as session:
        tenants = tenants_with_unmapped_events(session, utcnow())
    total = MappingReport()
    for tenant_id in tenants:
        total.add(map_pending(factory, tenant_id))
    return {
        "tenants": len(tenants),
        "events_mapped": total.mapped,
        "events_failed": total.failed,
        "events_dead": total.dead,
        "objects": total.objects,
        "batches": total.batches,
    }


class MappingKicker:
    """Maps a tenant's events a moment after its webhooks arrive, in the API process (the
    mapping job catches up with anything this misses: a restart, another process's webhooks).
    ``kick`` only records the tenant; a daemon thread waits ``delay`` seconds, so a burst of
    deliveries is mapped in a few batches rather than one by one, then maps every tenant
    kicked meanwhile."""

    def __init__(self, factory: sessionmaker[Session], delay: float = KICK_DELAY_SECONDS) -> None:
        self._factory = factory
        self._delay = delay
        self._tenants: set[uuid.UUID] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stripe-mapping", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def kick(self, tenant_id: uuid.UUID) -> None:
        with self._lock:
            self._tenants.add(tenant_id)
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.wait(self._delay):
                return
            self._wake.clear()
            with self._lock:
                tenants, self._tenants = self._tenants, set()
            for tenant_id in sorted(tenants):
                try:
                    map_pending(self._factory, tenant_id)
                except Exception:  # the job retries; a failed kick only delays the data
                    log.warning("stripe mapping after a webhook failed", exc_info=True)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)


# ---- mapping ----------------------------------------------------------------------------------


@dataclass
class _Batch:
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    referenced: dict[str, datetime] = field(default_factory=dict)
    segments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    invoices: list[dict[str, Any]] = field(default_factory=list)
    payments: list[dict[str, Any]] = field(default_factory=list)

    def refer(self, customer: str, seen: datetime) -> None:
        known = self.referenced.get(customer)
        self.referenced[customer] = seen if known is None else min(known, seen)


def _snapshots(events: Iterable[StoredEvent]) -> dict[str, list[mapping.Snapshot]]:
    out: dict[str, list[mapping.Snapshot]] = defaultdict(list)
    for e in events:
        obj = e.payload.get("data", {}).get("object", {})
        out[e.object_id].append(mapping.Snapshot(e.created, e.event_id, e.event_type, obj))
    return out


def _collect(
    object_type: str, object_id: str, snaps: list[mapping.Snapshot], batch: _Batch
) -> None:
    if object_type == "customer":
        newest = mapping.latest(snaps)
        row = mapping.customer_row(newest.obj, deleted=newest.event_type == "customer.deleted")
        batch.customers[object_id] = row
    elif object_type == "subscription":
        customer, segments = mapping.subscription_segments(snaps)
        batch.segments[object_id] = mapping.segment_rows(object_id, customer, segments)
        batch.refer(customer, mapping.first_seen(snaps))
    elif object_type == "invoice":
        found = mapping.invoice_mapping(snaps)
        batch.invoices.append(found.invoice)
        batch.payments.extend(found.payments)
        batch.refer(found.invoice["customer"], mapping.first_seen(snaps))
    elif object_type == "charge":
        for payment in mapping.charge_payments(snaps):
            batch.payments.append(payment)
            batch.refer(payment["customer"], payment["occurred_at"])


def map_objects(
    session: Session, tenant_id: uuid.UUID, object_ids: Iterable[str], without: int | None = None
) -> int:
    """Re-derive the business rows of these Stripe objects from all their stored events (but
    the one whose row id is ``without``) and write them; returns how many objects were
    mapped."""
    wanted = set(object_ids)
    if not wanted:
        return 0
    # A subscription that arrives after its invoices gives their payments a segment to name.
    wanted |= StripeInvoiceRepository(session, tenant_id).ids_for_subscriptions(wanted)
    events = StripeEventRepository(session, tenant_id).for_objects(wanted, without)
    types = {e.object_id: e.object_type for e in events}
    batch = _Batch()
    for object_id, snaps in _snapshots(events).items():
        try:
            _collect(types[object_id], object_id, snaps, batch)
        except mapping.StripeShapeError as exc:
            raise InvalidInput(
                f"Stripe {types[object_id]} {object_id} cannot be mapped: {exc}",
                [field_error(["data", "object"], str(exc))],
            ) from exc
    _write(session, tenant_id, batch)
    return len(types)


def _ingest(session: Session, tenant_id: uuid.UUID, kind: str, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), INGEST_CHUNK):
        chunk = rows[start : start + INGEST_CHUNK]
        data.ingest_rows(session, tenant_id, kind, chunk, max_rows=len(chunk))


def _write(session: Session, tenant_id: uuid.UUID, batch: _Batch) -> None:
    missing = set(batch.referenced) - set(batch.customers)
    missing -= data.known_customers(session, tenant_id, missing)
    customers = [
        *batch.customers.values(),
        *(mapping.placeholder_customer(c, batch.referenced[c]) for c in sorted(missing)),
    ]
    _ingest(session, tenant_id, "customers", customers)

    # Segments the subscriptions' events no longer yield (a plan change re-derived, an item
    # removed) go; those written before are found in the connector's own record of them.
    segments = StripeSegmentRepository(session, tenant_id)
    desired = [row for rows in batch.segments.values() for row in rows]
    recorded = segments.recorded(batch.segments)
    stale = recorded - {row["external_id"] for row in desired}
    if stale:
        data.delete_by_external(session, tenant_id, "subscriptions", sorted(stale))
    _ingest(session, tenant_id, "subscriptions", desired)
    added = [
        (sub, row["external_id"])
        for sub, rows in batch.segments.items()
        for row in rows
        if row["external_id"] not in recorded
    ]
    segments.record(added, stale)

    StripeInvoiceRepository(session, tenant_id).upsert(batch.invoices)
    _ingest(session, tenant_id, "payments", _with_segments(session, tenant_id, batch))


def _with_segments(session: Session, tenant_id: uuid.UUID, batch: _Batch) -> list[dict[str, Any]]:
    """Payments naming the business-data subscription (segment) in force when they happened."""
    subs = {p["stripe_subscription"] for p in batch.payments if p["stripe_subscription"]}
    known: dict[str, list[str]] = defaultdict(list)
    for sub, rows in batch.segments.items():
        known[sub] = [r["external_id"] for r in rows]
    unseen = [s for s in subs if s not in batch.segments]
    for sub, ext in StripeSegmentRepository(session, tenant_id).stored(unseen):
        known[sub].append(ext)
    out = []
    for payment in batch.payments:
        row = dict(payment)
        sub = row.pop("stripe_subscription")
        candidates = sorted(known.get(sub, []) if sub else [], key=mapping.segment_start)
        at = row["occurred_at"].timestamp()
        before = [c for c in candidates if mapping.segment_start(c) <= at]
        row["subscription"] = before[-1] if before else (candidates[0] if candidates else None)
        out.append(row)
    return out


# ---- backfill ---------------------------------------------------------------------------------


@dataclass
class BackfillReport:
    status: str
    resources: dict[str, dict[str, Any]]
    fetched: int
    rate_limited: int


Progress = Callable[[str, int], None]


def _client(api_key: str, api_base: str | None) -> stripe.StripeClient:
    addresses: Any = {"api": api_base.rstrip("/")} if api_base else {}
    return stripe.StripeClient(
        api_key, base_addresses=addresses, max_network_retries=MAX_NETWORK_RETRIES
    )


def _pages(
    client: stripe.StripeClient, resource: str, params: dict[str, Any]
) -> Iterator[list[dict[str, Any]]]:
    """The list endpoint's pages as plain dicts, following ``has_more`` with ``starting_after``
    as the client's auto-pagination does. Through ``raw_request`` (the official client's
    requests, retries and errors) rather than the typed list call: building its StripeObjects
    and turning them back into dicts was about 40 % of a backfill's time."""
    params = dict(params)
    while True:
        response = client.raw_request("get", f"/v1/{resource}", **params)
        body = orjson.loads(response.body)
        objects = body.get("data") if isinstance(body, dict) else None
        if not isinstance(objects, list):
            raise BackfillFailed(f"{resource}: the list answer has no data")
        yield objects
        if not body.get("has_more") or not objects:
            return
        params["starting_after"] = objects[-1]["id"]


def _params(resource: str, cursor: str | None, page_size: int) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": page_size}
    if resource == "subscriptions":
        params["status"] = "all"  # canceled ones too: they are churn history
    if cursor:
        params["starting_after"] = cursor
    return params


def run_backfill(
    factory: sessionmaker[Session],
    tenant_id: uuid.UUID,
    box: SecretBox,
    *,
    restart: bool = False,
    progress: Progress | None = None,
    page_size: int = BACKFILL_PAGE_SIZE,
    sleep: Callable[[float], None] = time.sleep,
) -> BackfillReport:
    """Read every customer, subscription and invoice through the official client's
    auto-pagination. Each page is stored and mapped in its own short unit of work, with the
    cursor (the page's last id), so a stopped backfill resumes after the last page it stored;
    no transaction is open while Stripe is called."""
    with write_transaction(factory) as session:
        conn = connection(session, tenant_id)
        if conn.api_key is None:
            raise InvalidInput(
                "The Stripe connection has no api_key; set one to backfill",
                [field_error(["api_key"], "required for a backfill")],
            )
        api_key, api_base = box.open(conn.api_key), conn.api_base
        state: dict[str, Any] = {} if restart else dict(conn.backfill or {})
        conn.backfill = state
        conn.backfill_status = "running"
    client = _client(api_key, api_base)
    rate_limited = 0
    for resource in BACKFILL_RESOURCES:
        rounds = 0
        while not state.get(resource, {}).get("done"):
            try:
                _backfill_resource(factory, tenant_id, client, resource, state, page_size, progress)
            except stripe.RateLimitError as exc:
                rate_limited += 1
                rounds += 1
                if rounds > MAX_RATE_LIMIT_ROUNDS:
                    _fail(factory, tenant_id, state, f"rate limited {rounds} times on {resource}")
                retry_after = _retry_after(exc)
                sleep(
                    retry_after if retry_after is not None else exponential_backoff(rounds, 1, 30)
                )
            except stripe.StripeError as exc:
                _fail(factory, tenant_id, state, f"{resource}: {type(exc).__name__}: {exc}")
    with write_transaction(factory) as session:
        conn = connection(session, tenant_id)
        conn.backfill = dict(state)
        conn.backfill_status = "complete"
    return BackfillReport(
        status="complete",
        resources=state,
        fetched=sum(int(s.get("fetched", 0)) for s in state.values()),
        rate_limited=rate_limited,
    )


def _retry_after(exc: stripe.StripeError) -> float | None:
    headers = exc.headers or {}
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return min(float(value), 60.0) if value is not None else None
    except ValueError:
        return None


def _fail(
    factory: sessionmaker[Session], tenant_id: uuid.UUID, state: dict[str, Any], detail: str
) -> None:
    with write_transaction(factory) as session:
        conn = connection(session, tenant_id)
        conn.backfill = dict(state)
        conn.backfill_status = "failed"
    raise BackfillFailed(
        f"{detail}; the pages stored so far are kept and the next run resumes after them",
        resources=state,
    )


def _backfill_resource(
    factory: sessionmaker[Session],
    tenant_id: uuid.UUID,
    client: stripe.StripeClient,
    resource: str,
    state: dict[str, Any],
    page_size: int,
    progress: Progress | None,
) -> None:
    entry = state.setdefault(resource, {"cursor": None, "fetched": 0, "done": False})
    page: list[dict[str, Any]] = []
    for objects in _pages(client, resource, _params(resource, entry["cursor"], page_size)):
        page.extend(objects)
        if len(page) >= page_size:
            _store_page(factory, tenant_id, resource, state, page)
            if progress is not None:
                progress(resource, entry["fetched"])
            page = []
    entry["done"] = True
    _store_page(factory, tenant_id, resource, state, page)
    if progress is not None:
        progress(resource, entry["fetched"])


def _store_page(
    factory: sessionmaker[Session],
    tenant_id: uuid.UUID,
    resource: str,
    state: dict[str, Any],
    page: list[dict[str, Any]],
) -> None:
    entry = state[resource]
    with write_transaction(factory) as session:
        if page:
            store_snapshots(session, tenant_id, page)
            entry["cursor"] = page[-1]["id"]
            entry["fetched"] += len(page)
        conn = connection(session, tenant_id)
        conn.backfill = {k: dict(v) for k, v in state.items()}


def backfill_state(session: Session, tenant_id: uuid.UUID) -> dict[str, Any]:
    conn = connection(session, tenant_id)
    return {"status": conn.backfill_status, "resources": conn.backfill or {}}


# The console's "received lately" window.
RECENT = timedelta(hours=24)


def console_summary(session: Session, tenant_id: uuid.UUID, dead: int = 50) -> dict[str, Any]:
    """What the console's Connectors page shows of Stripe, in at most four queries (one pass
    over the events): the connection (never its secrets), events received and their mapping's
    state, the latest dead events and the backfill's progress. ``connection`` is None for a
    tenant that never connected."""
    now = utcnow()
    conn = StripeConnectionRepository(session, tenant_id).current()
    repo = StripeEventRepository(session, tenant_id)
    counts = repo.console_counts(now - RECENT)
    oldest = counts.pop("oldest_waiting_at")
    newest = counts.pop("newest_id")
    return {
        "connection": None
        if conn is None
        else {
            "connected_at": conn.created_at,
            "updated_at": conn.updated_at,
            "has_api_key": conn.api_key is not None,
            "api_base": conn.api_base,
            "backfill_status": conn.backfill_status,
            "backfill": conn.backfill or {},
        },
        "webhook_path": webhook_path(tenant_id),
        "livemode": repo.livemode(newest) if newest is not None else None,
        **counts,
        "oldest_waiting_age": (now - oldest) if oldest is not None else None,
        "dead_events": [_dead_event(e) for e in repo.dead(dead)] if counts["dead"] else [],
    }


def webhook_path(tenant_id: uuid.UUID) -> str:
    return f"/api/v1/connectors/stripe/webhook/{tenant_id}"


def sign_payload(secret: str, payload: bytes, timestamp: int) -> str:
    """A ``Stripe-Signature`` header as Stripe makes it (for tests, benchmarks and tools)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, "sha256").hexdigest()
    return f"t={timestamp},v1={mac}"
