"""Alert channels: their settings, routing each event to the channels whose filter takes it
(stored in the emitting unit of work, through the shared outbox), delivery by the automation
runner, and a test send.

Any domain's event reaches here through ``webhooks.enqueue_webhook``, which stores the signed
webhook and calls ``route_event`` in the same unit of work: an alert exists exactly when the
decision that caused it does. ``deliver_due`` sends what is due with no transaction open
(``core.outbox``: a lease per row, so two runners never send one message twice; retries with
backoff, a 429's Retry-After honoured)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.alerts import catalogue, mail, slack
from aethercrown.alerts.models import AlertChannel, AlertDelivery
from aethercrown.alerts.repository import ChannelRepository, DeliveryRepository, channels_by_id
from aethercrown.alerts.schemas import (
    AlertChannelCreate,
    AlertChannelOut,
    AlertChannelUpdate,
    TestResult,
)
from aethercrown.clock import utcnow
from aethercrown.core.crypto import SecretBox, secret_box
from aethercrown.core.errors import Conflict, InvalidInput, field_error
from aethercrown.core.outbound import Resolver, url_problem_after_lookup
from aethercrown.core.outbox import Attempt, Outbox, RetryPolicy, sanitise
from aethercrown.core.tenant_repository import find_tenant
from aethercrown.core.urls import public_url_problem
from aethercrown.db.session import write_transaction
from aethercrown.settings import Settings

POLICY = RetryPolicy(max_attempts=8, base_seconds=30, max_seconds=6 * 3600)
OUTBOX = Outbox(AlertDelivery, POLICY, "alerts")
SEND_TIMEOUT_SECONDS = 10.0
_CACHE = "aethercrown_alert_channels"  # session.info: the enabled channels, per transaction


# ---------------------------------------------------------------------------- the channels


def mask_url(url: str) -> str:
    """How a Slack webhook URL is shown: its host and the last four characters of its path
    (the path is the credential)."""
    parts = urlsplit(url)
    tail = parts.path[-4:] if len(parts.path) > 12 else ""
    return f"{parts.scheme}://{parts.hostname or ''}/…{tail}"


def channel_out(channel: AlertChannel) -> AlertChannelOut:
    return AlertChannelOut(
        id=channel.id,
        name=channel.name,
        kind=channel.kind,
        enabled=channel.enabled,
        event_types=list(channel.event_types or []),
        min_severity=channel.min_severity,
        webhook_url=channel.webhook_hint,
        recipients=list(channel.recipients or []),
        created_at=channel.created_at,
        updated_at=channel.updated_at,
    )


def _invalid(title: str, errors: list[dict[str, Any]]) -> InvalidInput:
    # The reasons in the detail too: the CLI prints the detail alone.
    reasons = "; ".join(f"{e['field']}: {e['msg']}" for e in errors)
    return InvalidInput(f"{title}: {reasons}", errors)


def webhook_url_problem(
    webhook_url: str | None, settings: Settings, resolver: Resolver | None = None
) -> str | None:
    """Why a Slack webhook URL may not be saved: the URL alone (https, no literal private
    address), then what its host resolves to (``core.outbound``, the rule onboarding's support
    webhooks follow). Network I/O: call with no transaction open, before the unit that saves."""
    if webhook_url is None:
        return None
    allow = settings.alerts_allow_loopback_webhooks
    return public_url_problem(webhook_url, allow) or url_problem_after_lookup(
        webhook_url, allow, resolver
    )


def _check(
    *,
    webhook_url: str | None,
    event_types: Sequence[str] | None,
    url_problem: str | None,
) -> None:
    errors = []
    if webhook_url is not None and url_problem:
        errors.append(field_error(["webhook_url"], url_problem))
    for i, pattern in enumerate(event_types or []):
        problem = catalogue.pattern_problem(pattern)
        if problem:
            errors.append(field_error(["event_types", i], f"{pattern!r} {problem}"))
    if errors:
        raise _invalid("The alert channel is not valid", errors)


def _set_url(channel: AlertChannel, url: str, box: SecretBox) -> None:
    channel.webhook_url = box.seal(url)
    channel.webhook_hint = mask_url(url)


def _flush_named(session: Session, name: str) -> None:
    # A concurrent create (or rename) with the same name hits the unique constraint here.
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"An alert channel named {name!r} exists", slug="channel-exists") from exc


def create_channel(
    session: Session,
    tenant_id: uuid.UUID,
    body: AlertChannelCreate,
    settings: Settings,
    url_problem: str | None,
) -> AlertChannel:
    """``url_problem``: ``webhook_url_problem(body.webhook_url, …)``, found before this unit."""
    _check(webhook_url=body.webhook_url, event_types=body.event_types, url_problem=url_problem)
    repo = ChannelRepository(session, tenant_id)
    if repo.by_name(body.name) is not None:
        raise Conflict(f"An alert channel named {body.name!r} exists", slug="channel-exists")
    channel = AlertChannel(
        name=body.name,
        kind=body.kind,
        enabled=body.enabled,
        event_types=list(dict.fromkeys(body.event_types or [])),
        min_severity=body.min_severity or "info",
        recipients=list(dict.fromkeys(body.recipients or [])),
    )
    if body.webhook_url is not None:
        _set_url(channel, body.webhook_url, secret_box(settings))
    repo.add(channel)
    _flush_named(session, body.name)
    session.info.pop(_CACHE, None)
    return channel


def get_channel(session: Session, tenant_id: uuid.UUID, channel_id: uuid.UUID) -> AlertChannel:
    return ChannelRepository(session, tenant_id).get_or_404(channel_id)


def list_channels(session: Session, tenant_id: uuid.UUID) -> list[AlertChannel]:
    return list(ChannelRepository(session, tenant_id).listed())


def update_channel(
    session: Session,
    tenant_id: uuid.UUID,
    channel_id: uuid.UUID,
    body: AlertChannelUpdate,
    settings: Settings,
    url_problem: str | None,
) -> AlertChannel:
    """``url_problem`` as for ``create_channel``."""
    repo = ChannelRepository(session, tenant_id)
    channel = repo.get_or_404(channel_id)
    sent = body.model_fields_set
    errors = []
    if "webhook_url" in sent and channel.kind != "slack":
        errors.append(field_error(["webhook_url"], "an email channel has no webhook_url"))
    if "recipients" in sent and channel.kind != "email":
        errors.append(field_error(["recipients"], "a slack channel has no recipients"))
    for name in ("name", "enabled", "webhook_url", "recipients", "min_severity"):
        if name in sent and getattr(body, name) is None:
            errors.append(field_error([name], "may not be null"))
    if errors:
        raise _invalid("The alert channel change is not valid", errors)
    _check(webhook_url=body.webhook_url, event_types=body.event_types, url_problem=url_problem)
    if body.name is not None and body.name != channel.name:
        if repo.by_name(body.name) is not None:
            raise Conflict(f"An alert channel named {body.name!r} exists", slug="channel-exists")
        channel.name = body.name
    if body.enabled is not None:
        channel.enabled = body.enabled
    if "event_types" in sent:
        channel.event_types = list(dict.fromkeys(body.event_types or []))
    if body.min_severity is not None:
        channel.min_severity = body.min_severity
    if body.webhook_url is not None:
        _set_url(channel, body.webhook_url, secret_box(settings))
    if body.recipients is not None:
        channel.recipients = list(dict.fromkeys(body.recipients))
    channel.updated_at = utcnow()
    _flush_named(session, channel.name)
    session.info.pop(_CACHE, None)
    return channel


def delete_channel(session: Session, tenant_id: uuid.UUID, channel_id: uuid.UUID) -> None:
    """The channel and its delivery log go; messages still owed are not sent."""
    channel = ChannelRepository(session, tenant_id).get_or_404(channel_id)
    session.delete(channel)
    session.flush()
    session.info.pop(_CACHE, None)


# ---------------------------------------------------------------------------- routing


@dataclass(frozen=True)
class _Route:
    id: uuid.UUID
    kind: str
    event_types: list[str]
    min_severity: str
    recipients: list[str]


def _enabled_routes(session: Session, tenant_id: uuid.UUID) -> list[_Route]:
    """The tenant's enabled channels, read once per transaction (a scoring run that opens a
    thousand campaigns asks once)."""
    transaction = session.get_transaction()
    cached = session.info.get(_CACHE)
    if cached is not None and cached[0] is transaction and tenant_id in cached[1]:
        routes: list[_Route] = cached[1][tenant_id]
        return routes
    routes = [
        _Route(c.id, c.kind, list(c.event_types or []), c.min_severity, list(c.recipients or []))
        for c in ChannelRepository(session, tenant_id).enabled()
    ]
    if cached is None or cached[0] is not transaction:
        per_tenant: dict[uuid.UUID, list[_Route]] = {}
        cached = (transaction, per_tenant)
        session.info[_CACHE] = cached
    cached[1][tenant_id] = routes
    return routes


def route_event(
    session: Session,
    tenant_id: uuid.UUID,
    event_type: str,
    payload: dict[str, Any],
    decision_id: uuid.UUID | None = None,
) -> int:
    """Queue the event for every enabled channel of the tenant whose filter takes it, in the
    caller's unit of work. Returns how many channels it was queued for."""
    routes = _enabled_routes(session, tenant_id)
    if not routes:
        return 0
    level = catalogue.severity(event_type, payload)
    chosen = [
        r for r in routes if catalogue.wanted(r.event_types, r.min_severity, event_type, level)
    ]
    if not chosen:
        return 0
    stored = orjson.loads(orjson.dumps(payload, default=str))
    event_id = uuid.uuid4()
    for route in chosen:
        session.add(
            AlertDelivery(
                tenant_id=tenant_id,
                channel_id=route.id,
                event_id=event_id,
                event_type=event_type,
                severity=level,
                payload=stored,
                pending_recipients=route.recipients,
                decision_id=decision_id,
            )
        )
    return len(chosen)


def list_statement(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    status: str | None = None,
    event_type: str | None = None,
    channel_id: uuid.UUID | None = None,
) -> Any:
    return DeliveryRepository(session, tenant_id).list_statement(
        status=status, event_type=event_type, channel_id=channel_id
    )


def recent_deliveries(session: Session, tenant_id: uuid.UUID, limit: int) -> list[AlertDelivery]:
    """The tenant's latest alert deliveries, newest first (the console's list)."""
    return list(DeliveryRepository(session, tenant_id).recent(limit))


# ---------------------------------------------------------------------------- delivery


@dataclass(frozen=True)
class _Claimed:
    """A delivery taken under lease, with everything sending needs (read in the claim's unit)."""

    id: uuid.UUID
    attempts: int
    kind: str
    message: catalogue.Message
    url: str | None
    recipients: list[str]


def smtp_server(settings: Settings) -> mail.SmtpServer:
    return mail.SmtpServer(
        host=settings.smtp_host,
        port=settings.smtp_port,
        starttls=settings.smtp_starttls,
        username=settings.smtp_username,
        password=settings.smtp_password,
        sender=settings.smtp_from,
        timeout=settings.smtp_timeout_seconds,
    )


def _prepare(session: Session, rows: list[AlertDelivery], settings: Settings) -> list[_Claimed]:
    box = secret_box(settings)
    channels = channels_by_id(session, {r.channel_id for r in rows})
    names: dict[uuid.UUID, str] = {}
    claimed = []
    for row in rows:
        channel = channels[row.channel_id]  # a deleted channel's deliveries went with it
        if row.tenant_id not in names:
            tenant = find_tenant(session, row.tenant_id)
            names[row.tenant_id] = tenant.name if tenant else str(row.tenant_id)
        message = catalogue.message(
            row.event_type,
            row.payload,
            event_severity=row.severity,
            tenant=names[row.tenant_id],
            console_base=settings.console_base_url,
            created=row.created_at.strftime("%Y-%m-%d %H:%M UTC"),
        )
        url = box.open(channel.webhook_url) if channel.webhook_url is not None else None
        claimed.append(
            _Claimed(
                id=row.id,
                attempts=row.attempts,
                kind=channel.kind,
                message=message,
                url=url,
                recipients=list(row.pending_recipients or channel.recipients or []),
            )
        )
    return claimed


def _send(item: _Claimed, settings: Settings) -> Attempt:
    if item.kind == "slack":
        if item.url is None:
            return Attempt(delivered=False, error="the channel has no webhook URL", final=True)
        attempt = slack.send(
            item.url,
            item.message,
            SEND_TIMEOUT_SECONDS,
            allow_loopback=settings.alerts_allow_loopback_webhooks,
        )
        secrets = [item.url, urlsplit(item.url).path]
    else:
        attempt = mail.send(smtp_server(settings), item.message, item.recipients)
        secrets = [settings.smtp_password or ""]
    return dataclasses.replace(attempt, error=sanitise(attempt.error, secrets))


def lease_for(limit: int, settings: Settings) -> timedelta:
    """Long enough to send a whole batch, each receiver taking its full timeout."""
    per = max(SEND_TIMEOUT_SECONDS, settings.smtp_timeout_seconds)
    return timedelta(seconds=limit * per + 60)


def deliver_due(
    factory: sessionmaker[Session],
    settings: Settings,
    now: datetime | None = None,
    *,
    limit: int = 50,
    lease: timedelta | None = None,
) -> dict[str, int]:
    """Send every alert delivery that is due; record each attempt. Counts by outcome."""
    return OUTBOX.deliver_due(
        factory,
        lambda session, rows: _prepare(session, rows, settings),
        lambda item: _send(item, settings),
        now=now,
        limit=limit,
        lease=lease or lease_for(limit, settings),
    )


def send_test(
    factory: sessionmaker[Session],
    tenant_id: uuid.UUID,
    channel_id: uuid.UUID,
    settings: Settings,
    actor: str,
) -> TestResult:
    """Send a test message to the channel now (enabled or not) and report what happened. It
    is kept in the delivery log like any other, but never retried: the answer is the result."""
    now = utcnow()
    token = uuid.uuid4().hex
    with write_transaction(factory) as session:
        channel = ChannelRepository(session, tenant_id).get_or_404(channel_id)
        row = AlertDelivery(
            tenant_id=tenant_id,
            channel_id=channel.id,
            event_id=uuid.uuid4(),
            event_type=catalogue.TEST_EVENT,
            severity="info",
            payload={"channel": channel.name, "actor": actor[:100]},
            pending_recipients=list(channel.recipients or []),
            next_attempt_at=now,
            created_at=now,
            # Leased to this request from the start: no runner picks it up meanwhile.
            claimed_until=now + lease_for(1, settings),
            claim_token=token,
        )
        session.add(row)
        session.flush()
        [claimed] = _prepare(session, [row], settings)
    attempt = _send(claimed, settings)
    if not attempt.delivered:
        attempt = dataclasses.replace(attempt, final=True)
    with write_transaction(factory) as session:
        DeliveryRepository(session, tenant_id)  # scopes the unit to the tenant
        OUTBOX.record(session, [(claimed, attempt)], token, utcnow())
    return TestResult(
        delivered=attempt.delivered,
        delivery_id=claimed.id,
        status_code=attempt.status_code,
        error=attempt.error,
    )
