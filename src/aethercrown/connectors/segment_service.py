"""Tracking calls in Segment's format (``/v1/track``, ``/v1/identify``, ``/v1/group``,
``/v1/batch``), authenticated as Segment's HTTP API is: HTTP basic auth with the source's write key
as the user name. An app instrumented with a Segment SDK sends here by changing its host.

What each call becomes:

- ``group`` (a user's account): the customer ``groupId``, created or updated with the traits
  given (name, email, employees, country, createdAt), and the user linked to it;
- ``identify``: the user's traits; ``traits.company.id`` links the user to that customer;
- ``track``: one activity event of the user's customer (``context.groupId`` if sent, else the
  customer the user was linked to): ``Signed In``/``Logged In`` are logins, an event with a
  ``duration`` (seconds) property is a session, any other event is use of the feature it names.
  The churn model and the analytics read these. A track whose user belongs to no customer yet is
  skipped and counted, with the reason;
- ``page``, ``screen`` and ``alias`` are accepted and counted, not stored.

``messageId`` deduplicates, so a retried batch (the SDKs retry on 5xx and 429) changes nothing
the first delivery did not: an activity event's external id is its message id, and the message
ids of each source's identify and group calls are kept (``segment_messages``): a replayed one is
acknowledged and counted as a duplicate, and applies nothing.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from aethercrown.clock import utcnow
from aethercrown.connectors.models import SegmentSource
from aethercrown.connectors.repository import (
    SegmentMessageRepository,
    SegmentSourceRepository,
    SegmentUserRepository,
    prune_segment_messages,
    segment_source_by_hash,
)
from aethercrown.core.errors import InvalidInput, NotFound, ProblemError, field_error
from aethercrown.core.keycache import KeyCache, watch_tables
from aethercrown.data import service as data
from aethercrown.db.tenant_scope import across_tenants

WRITE_KEY_PREFIX = "seg_"
MESSAGE_TYPES = ("track", "identify", "group", "page", "screen", "alias")
LOGIN_EVENTS = frozenset({"signed in", "logged in", "login", "log in", "sign in", "user signed in"})
MAX_MESSAGES = 2_500
# A write key's tenant and source.
SourceRef = tuple[uuid.UUID, uuid.UUID]
_TIME = TypeAdapter(datetime)


class WriteKeyRejected(ProblemError):
    def __init__(self, detail: str) -> None:
        super().__init__(
            401,
            "unauthorized",
            "Unauthorized",
            detail,
            headers={"WWW-Authenticate": 'Basic realm="segment"'},
        )


def create_source(session: Session, tenant_id: uuid.UUID, name: str) -> tuple[SegmentSource, str]:
    """A new write key for the tenant (shown once; only its SHA-256 is kept)."""
    key = WRITE_KEY_PREFIX + secrets.token_urlsafe(24)
    source = SegmentSource(
        name=name, key_hash=hashlib.sha256(key.encode()).hexdigest(), display_prefix=key[:10]
    )
    SegmentSourceRepository(session, tenant_id).add(source)
    session.flush()
    return source, key


def list_sources(session: Session, tenant_id: uuid.UUID) -> Sequence[SegmentSource]:
    return SegmentSourceRepository(session, tenant_id).all()


def revoke_source(session: Session, tenant_id: uuid.UUID, source_id: uuid.UUID) -> None:
    source = SegmentSourceRepository(session, tenant_id).get_or_404(source_id)
    if source.revoked_at is None:
        source.revoked_at = utcnow()


def console_summary(session: Session, tenant_id: uuid.UUID, since: datetime) -> dict[str, Any]:
    """What the console's Connectors page shows of Segment-format tracking: each source (its
    key's prefix only) with the identify and group calls it sent that are still kept (7 days),
    those since ``since`` and the last one's arrival; and the users the calls named. Three
    queries. Track calls become activity rows, which do not record their source."""
    calls = SegmentMessageRepository(session, tenant_id).per_source(since)
    users, users_updated_at = SegmentUserRepository(session, tenant_id).summary()
    sources = []
    for source in SegmentSourceRepository(session, tenant_id).oldest_first():
        total, recent, last = calls.get(source.id, (0, 0, None))
        sources.append(
            {
                "id": source.id,
                "name": source.name,
                "display_prefix": source.display_prefix,
                "created_at": source.created_at,
                "revoked_at": source.revoked_at,
                "calls_kept": total,
                "calls_recent": recent,
                "last_call_at": last,
            }
        )
    return {"sources": sources, "users": users, "users_updated_at": users_updated_at}


@dataclass(slots=True)
class WriteKey:
    """What a live write key opens: its tenant and source, and the tenant's tier (the quota of
    the rows its calls store). Cached per process (``core.keycache``): see ``write_key``."""

    tenant_id: uuid.UUID
    source_id: uuid.UUID
    quota: data.TierQuota
    loaded_at: float

    @property
    def source(self) -> SourceRef:
        return self.tenant_id, self.source_id


# A revocation (or a tier change) empties the write-key caches like an API key's change does.
watch_tables("segment_sources")


def write_key_hash(authorization: str | None) -> str:
    """The SHA-256 of the write key sent as the HTTP basic auth user name (the password is
    unused); WriteKeyRejected when there is none."""
    if not authorization or not authorization.lower().startswith("basic "):
        raise WriteKeyRejected("Send the write key as the HTTP basic auth user name")
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise WriteKeyRejected("Malformed basic auth credentials") from exc
    return hashlib.sha256(decoded.split(":", 1)[0].encode()).hexdigest()


def write_key(session: Session, key_hash: str, cache: KeyCache[WriteKey]) -> WriteKey:
    """The live write key with this hash, read and put in ``cache`` (callers ask the cache
    first). An entry lives at most ``keycache.TTL_SECONDS`` in other processes after a
    revocation (milliseconds with Redis), none in the process that commits it; unknown and
    revoked keys are never cached."""
    generation = cache.generation
    # Taken before the query: the entry's lifetime counts from the oldest state it may hold.
    loaded_at = time.monotonic()
    with across_tenants(session):  # the key's tenant is what this finds out
        row = segment_source_by_hash(session, key_hash)
    if row is None:
        raise WriteKeyRejected("Unknown or revoked write key")
    key = WriteKey(row.tenant_id, row.id, data.TierQuota(row.slug, row.max_stored_rows), loaded_at)
    cache.put(key_hash, key, generation)
    return key


def _text(value: Any, limit: int = 200) -> str | None:
    # The common case first (this runs several times on every message of a batch): a str,
    # checked without the isinstance chain below; what it returns is the same.
    if type(value) is str:
        if len(value) > limit or "\x00" in value:
            return None
        return value.strip() or None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > limit or "\x00" in value:
        return None
    return value.strip()


def _time(value: Any) -> datetime:
    """A message's time: the SDKs' ISO-8601 text read by ``datetime.fromisoformat`` (several
    times cheaper than a validator, and this runs on every message), anything else as pydantic
    reads a datetime (which raises ValidationError)."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            at = datetime.fromisoformat(value)
            if at.tzinfo is not None:
                return at
    return _TIME.validate_python(value)


def _is_object(value: Any) -> bool:
    # orjson gives dicts: the exact type check skips the Mapping ABC's slower isinstance.
    return type(value) is dict or isinstance(value, Mapping)


_OBJECT_FIELDS = ("traits", "properties", "context")


def _check(index: int, message: Any, errors: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The message's fields that matter, or None (and errors) when it is malformed."""
    before = len(errors)
    if not _is_object(message):
        errors.append(field_error([index], "must be an object"))
        return None
    get = message.get
    kind = get("type")
    if kind not in MESSAGE_TYPES:
        errors.append(field_error([index, "type"], f"must be one of: {', '.join(MESSAGE_TYPES)}"))
    message_id = _text(get("messageId"))
    if message_id is None:
        errors.append(field_error([index, "messageId"], "must be a string of 1 to 200 characters"))
    user = _text(get("userId")) or _text(get("anonymousId"))
    if user is None:
        errors.append(field_error([index, "userId"], "userId or anonymousId is required"))
    stamp = get("timestamp")
    at = utcnow() if stamp is None else _stamp(index, stamp, errors)
    out: dict[str, Any] = {"type": kind, "messageId": message_id, "user": user, "at": at}
    for name in _OBJECT_FIELDS:
        value = get(name)
        if value is None:
            value = {}
        elif not _is_object(value):
            errors.append(field_error([index, name], "must be an object"))
            value = {}
        out[name] = value
    if kind == "track":
        out["event"] = _text(get("event"))
        if out["event"] is None:
            errors.append(field_error([index, "event"], "must be a string of 1 to 200 characters"))
    elif kind == "group":
        out["groupId"] = _text(get("groupId"))
        if out["groupId"] is None:
            errors.append(
                field_error([index, "groupId"], "must be a string of 1 to 200 characters")
            )
    return out if len(errors) == before else None


def _stamp(index: int, stamp: Any, errors: list[dict[str, Any]]) -> datetime | None:
    """A message's ``timestamp``, or None (and an error) when it is no aware ISO-8601 time."""
    try:
        at = _time(stamp)
    except ValidationError:
        errors.append(field_error([index, "timestamp"], "must be an ISO-8601 time"))
        return None
    if at.tzinfo is None:
        errors.append(field_error([index, "timestamp"], "must carry a UTC offset"))
    return at


def _customer_row(
    external_id: str, traits: Mapping[str, Any], at: datetime, stored: dict[str, Any] | None
) -> dict[str, Any]:
    row: dict[str, Any] = (
        dict(stored)
        if stored
        else {
            "external_id": external_id,
            "name": external_id,
            "email": None,
            "company_size": None,
            "annual_revenue": None,
            "currency": "USD",
            "country": None,
            "signup_date": at.date(),
            "attributes": {"source": "segment"},
        }
    )
    if _text(traits.get("name"), 300):
        row["name"] = _text(traits.get("name"), 300)
    if _text(traits.get("email"), 320):
        row["email"] = _text(traits.get("email"), 320)
    employees = traits.get("employees", traits.get("employee_count"))
    if isinstance(employees, int) and not isinstance(employees, bool) and 0 <= employees < 2**31:
        row["company_size"] = employees
    country = traits.get("country")
    if isinstance(country, str) and len(country) == 2 and country.isalpha():
        row["country"] = country.upper()
    created = traits.get("createdAt", traits.get("created_at"))
    if created is not None and not stored:
        with contextlib.suppress(ValidationError):
            row["signup_date"] = _TIME.validate_python(created).date()
    plan = _text(traits.get("plan"), 100)
    if plan:
        row["attributes"] = {**(row.get("attributes") or {}), "plan": plan}
    return row


def _activity(message: dict[str, Any], customer: str) -> dict[str, Any]:
    # One dict a track, built in its final shape (this runs on every track of a batch).
    event: str = message["event"]
    duration = message["properties"].get("duration")
    row = {
        "external_id": message["messageId"],
        "customer": customer,
        "user_id": message["user"],
        "occurred_at": message["at"],
        "kind": "feature",
        "duration_seconds": None,
        "feature": None,
    }
    if event.lower() in LOGIN_EVENTS:
        row["kind"] = "login"
    elif isinstance(duration, int | float) and not isinstance(duration, bool) and duration >= 0:
        row["kind"] = "session"
        row["duration_seconds"] = min(int(duration), 2**31 - 1)
    else:
        row["feature"] = event
    return row


@dataclass(frozen=True, slots=True)
class CheckedBatch:
    """A batch's messages checked, those repeated within it dropped; ``received``: how many
    it had."""

    received: int
    messages: list[dict[str, Any]]


def checked_batch(messages: Sequence[Any]) -> CheckedBatch:
    """Every message checked (all or nothing: one malformed message is a 400 that stores
    nothing), those repeated within the batch dropped. Pure: run it before a unit of work
    opens."""
    return CheckedBatch(len(messages), _validated(messages))


def _validated(messages: Sequence[Any]) -> list[dict[str, Any]]:
    if len(messages) > MAX_MESSAGES:
        raise ProblemError(
            413, "batch-too-large", "Batch too large", f"At most {MAX_MESSAGES} messages a batch"
        )
    errors: list[dict[str, Any]] = []
    checked = [_check(i, m, errors) for i, m in enumerate(messages)]
    if errors:
        raise InvalidInput(
            f"{len({e['loc'][0] for e in errors})} of {len(messages)} messages are malformed; "
            "nothing was stored",
            errors[:200],
        )
    unique: dict[str, dict[str, Any]] = {}
    for m in checked:
        if m is not None:
            unique.setdefault(m["messageId"], m)
    return list(unique.values())


def _without_replays(
    session: Session, tenant_id: uuid.UUID, source_id: uuid.UUID, unique: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The batch less the identify and group calls this source sent before (their message
    ids are recorded as they are applied, in the same unit of work)."""
    ids = [m["messageId"] for m in unique if m["type"] in ("identify", "group")]
    if not ids:
        return unique
    new = SegmentMessageRepository(session, tenant_id).claim_new(source_id, ids)
    return [m for m in unique if m["type"] not in ("identify", "group") or m["messageId"] in new]


@dataclass
class _People:
    """What a batch's identify and group calls say: user -> customer links, each customer's
    traits (and the time they were first sent), and the user rows to upsert."""

    links: dict[str, str] = field(default_factory=dict)
    traits: dict[str, tuple[dict[str, Any], datetime]] = field(default_factory=dict)
    users: list[dict[str, Any]] = field(default_factory=list)

    def link(self, user: str, customer: str, traits: Mapping[str, Any], at: datetime) -> None:
        self.links[user] = customer
        known, _ = self.traits.get(customer, ({}, at))
        self.traits[customer] = ({**known, **traits}, at)


def _people(unique: list[dict[str, Any]]) -> _People:
    people = _People()
    for m in unique:
        if m["type"] == "group":
            people.link(m["user"], m["groupId"], m["traits"], m["at"])
            people.users.append({"user_id": m["user"], "customer": m["groupId"], "traits": {}})
        elif m["type"] == "identify":
            company = m["traits"].get("company")
            company_id = _text(company.get("id")) if isinstance(company, Mapping) else None
            if company_id and isinstance(company, Mapping):
                people.link(m["user"], company_id, company, m["at"])
            traits = {k: v for k, v in m["traits"].items() if k != "company"}
            people.users.append({"user_id": m["user"], "customer": company_id, "traits": traits})
    return people


NO_CUSTOMER = "no customer (group) known for the user"


def _tracked(
    tracks: list[dict[str, Any]], links: Mapping[str, str]
) -> tuple[list[dict[str, Any]], dict[str, int], dict[str, datetime]]:
    """The activity rows of the track calls, the calls skipped (by reason) and the customers
    they name (with the first time each is seen, a new customer's signup date)."""
    activity: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}
    referenced: dict[str, datetime] = {}
    for m in tracks:
        customer = _text(m["context"].get("groupId")) or links.get(m["user"])
        if customer is None:
            skipped[NO_CUSTOMER] = skipped.get(NO_CUSTOMER, 0) + 1
            continue
        activity.append(_activity(m, customer))
        referenced.setdefault(customer, m["at"])
    return activity, skipped, referenced


def _store_customers(
    session: Session,
    tenant_id: uuid.UUID,
    traits: Mapping[str, tuple[dict[str, Any], datetime]],
    referenced: Mapping[str, datetime],
    linked_ids: Mapping[str, uuid.UUID],
) -> tuple[int, dict[str, uuid.UUID]]:
    """Customers the traits update (or create), and those only named by a track (created when
    new, left alone when stored). ``linked_ids``: stored customers' ids read with the users'
    links. Returns how many rows were written, and the ids of the named customers that were
    stored already (the activity rows need no second lookup of them)."""
    # Whole rows only of the customers whose traits change; of those a track merely names,
    # whether they exist (a batch of tracks names hundreds: ids are far cheaper than rows).
    stored = data.customer_rows(session, tenant_id, set(traits))
    named = {ext: at for ext, at in referenced.items() if ext not in traits}
    known = {ext: linked_ids[ext] for ext in named if ext in linked_ids}
    known.update(data.customer_ids(session, tenant_id, set(named) - set(known)))
    customers = [
        _customer_row(ext, sent, at, stored.get(ext)) for ext, (sent, at) in traits.items()
    ]
    customers += [_customer_row(ext, {}, at, None) for ext, at in named.items() if ext not in known]
    if customers:
        data.ingest_rows(session, tenant_id, "customers", customers, max_rows=len(customers))
    return len(customers), known


def ingest_messages(
    session: Session,
    source: SourceRef,
    messages: Sequence[Any] | CheckedBatch,
    quota: data.TierQuota | None = None,
) -> dict[str, Any]:
    """Validate a batch (all or nothing; ``checked_batch`` may have done it already), drop what
    was seen before (repeated message ids in the batch, identify/group calls the source sent
    already; tracks are deduplicated by their activity rows), then apply groups, identifies and
    tracks in that order. ``quota``: the tenant's tier, when the caller has it (a cached write
    key); else it is read."""
    tenant_id, source_id = source
    batch = messages if isinstance(messages, CheckedBatch) else checked_batch(messages)
    unique = _without_replays(session, tenant_id, source_id, batch.messages)
    people = _people(unique)
    tracks = [m for m in unique if m["type"] == "track"]
    unlinked = {m["user"] for m in tracks if m["user"] not in people.links}
    users = SegmentUserRepository(session, tenant_id)
    stored_links = users.customers_of(unlinked)
    links = {**{user: ext for user, (ext, _) in stored_links.items()}, **people.links}
    linked_ids = {ext: ident for ext, ident in stored_links.values() if ident is not None}
    activity, skipped, referenced = _tracked(tracks, links)
    customers, customer_ids = _store_customers(
        session, tenant_id, people.traits, referenced, linked_ids
    )
    users.upsert(people.users)
    result = None
    if activity:
        # Append-only: a track whose message id is stored is a replay, whatever it says.
        result = data.append_activity(
            session, tenant_id, activity, customer_ids=customer_ids, quota=quota
        )
    return {
        "success": True,
        "received": batch.received,
        "duplicates": batch.received - len(unique) + (result.unchanged if result else 0),
        "activity": (result.inserted if result else 0),
        "customers": customers,
        "users": len(people.users),
        "ignored": sum(1 for m in unique if m["type"] in ("page", "screen", "alias")),
        "skipped": skipped,
    }


def prune_message_ids(session: Session, before: datetime, limit: int) -> int:
    """Forget up to ``limit`` identify/group message ids received before ``before`` (every
    tenant's: for the installation-wide prune job); returns how many."""
    return prune_segment_messages(session, before, limit)


def source_or_404(session: Session, tenant_id: uuid.UUID, source_id: uuid.UUID) -> SegmentSource:
    source = SegmentSourceRepository(session, tenant_id).get(source_id)
    if source is None:
        raise NotFound("Segment source", source_id)
    return source
