"""Enterprise onboarding: eight steps that each do their real work, resumable after a crash.

Every step but the support-channel ping runs in one short write unit that does the step's work
and marks it done together, so a crash either keeps both or neither, and a rerun finds the work
already there (each step is idempotent besides). The ping is network I/O: its step is claimed
under a lease in one unit, the request is sent with no transaction open, the answer recorded in
another unit (by the lease holder only). A step that waits on the customer (its webhook not
answering, no usage yet) is ``waiting`` with a blocker and its next attempt, retried with
``core.backoff`` by the ``onboarding_advance`` job. Services never commit except ``advance``
and ``create``, which are flows of units of work (like ``webhooks.deliver_due``).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.clock import utcnow
from aethercrown.core.auth import PORTAL_SCOPE
from aethercrown.core.backoff import exponential_backoff
from aethercrown.core.crypto import SecretBox, secret_box
from aethercrown.core.errors import Conflict, InvalidInput, NotFound, field_error
from aethercrown.core.jobs import job_settings
from aethercrown.core.key_repository import find_key
from aethercrown.core.ledger import audit, audit_trail, record_decision
from aethercrown.core.tenant_repository import find_tenant
from aethercrown.data import service as data
from aethercrown.data.models import Customer, SupportTicket
from aethercrown.db.session import read_transaction, write_transaction
from aethercrown.metering import service as metering
from aethercrown.metering.schemas import MeterIn
from aethercrown.onboarding import channel, schemas, sla, training
from aethercrown.onboarding.models import (
    Onboarding,
    OnboardingStep,
    SlaBreach,
    SlaTier,
    TicketFirstResponse,
)
from aethercrown.onboarding.repository import (
    BreachRepository,
    CustomerReads,
    FirstResponseRepository,
    OnboardingRepository,
    SlaTierRepository,
    StepRepository,
)
from aethercrown.onboarding.schemas import STEPS
from aethercrown.security import service as security
from aethercrown.webhooks import service as webhooks

PING_STEP = STEPS.index("support_channel_setup") + 1
HEALTH_STEP = len(STEPS)
# Waiting steps retry after 1 min, 2, 4 … at most every 6 h.
RETRY_BASE_SECONDS = 60.0
RETRY_MAX_SECONDS = 6 * 3600.0
# The ping's lease: longer than its timeout, so a crashed sender's step is taken up again soon.
PING_LEASE = timedelta(seconds=channel.TIMEOUT_SECONDS + 55)
DOCS_LINK_DAYS = 30
DEFAULT_DOCS_PATH = "/docs"
PING_EVENT = "onboarding.support_channel.test"
BREACH_EVENT = "sla.breach"

# The default SLA tiers, a row each, and each one's service credits as (below_bp,
# credit_percent) steps.
_TIER_COLUMNS = (
    "slug",
    "name",
    "rank",
    "response_minutes",
    "uptime_target_bp",
    "dedicated_support",
    "custom_integration",
    "onboarding_target_hours",
)
_TIER_ROWS: tuple[tuple[Any, ...], ...] = (
    ("standard", "Standard", 1, 24 * 60, 9950, False, False, 14 * 24),
    ("premium", "Premium", 2, 4 * 60, 9990, True, False, 7 * 24),
    ("enterprise", "Enterprise", 3, 60, 9995, True, True, 3 * 24),
)
_TIER_CREDITS = {
    "standard": ((9950, 10), (9900, 25), (9500, 50)),
    "premium": ((9990, 10), (9950, 25), (9900, 50)),
    "enterprise": ((9995, 10), (9990, 25), (9950, 50), (9900, 100)),
}
DEFAULT_TIERS: tuple[dict[str, Any], ...] = tuple(
    {
        **dict(zip(_TIER_COLUMNS, row, strict=True)),
        "credits": [
            {"below_bp": below, "credit_percent": percent}
            for below, percent in _TIER_CREDITS[row[0]]
        ],
    }
    for row in _TIER_ROWS
)


# --- SLA tiers -------------------------------------------------------------------------------


def ensure_tiers(session: Session, tenant_id: uuid.UUID) -> Sequence[SlaTier]:
    """The tenant's SLA tiers, the three defaults stored on first use."""
    repo = SlaTierRepository(session, tenant_id)
    tiers = repo.ordered()
    if tiers:
        return tiers
    for row in DEFAULT_TIERS:
        repo.add(SlaTier(**row))
    session.flush()
    return repo.ordered()


def tier_out(tier: SlaTier) -> schemas.SlaTierOut:
    return schemas.SlaTierOut(
        slug=tier.slug,
        name=tier.name,
        rank=tier.rank,
        response_minutes=tier.response_minutes,
        uptime_target_bp=tier.uptime_target_bp,
        uptime_target_percent=tier.uptime_target_bp / 100,
        dedicated_support=tier.dedicated_support,
        custom_integration=tier.custom_integration,
        onboarding_target_hours=tier.onboarding_target_hours,
        credits=[schemas.CreditRow(**c) for c in tier.credits],
    )


def list_tiers(session: Session, tenant_id: uuid.UUID) -> list[schemas.SlaTierOut]:
    """Read-only callers (GET) see the defaults without storing them."""
    tiers = SlaTierRepository(session, tenant_id).ordered()
    if not tiers:
        return [tier_out(SlaTier(**row)) for row in DEFAULT_TIERS]
    return [tier_out(t) for t in tiers]


def update_tier(
    session: Session, tenant_id: uuid.UUID, slug: str, body: schemas.SlaTierIn, actor: str
) -> schemas.SlaTierOut:
    ensure_tiers(session, tenant_id)
    tier = SlaTierRepository(session, tenant_id).by_slug(slug)
    if tier is None:
        raise NotFound("SLA tier", slug)
    changes = body.model_dump(exclude_none=True)
    for name, value in changes.items():
        setattr(tier, name, value)
    audit(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="sla_tier.update",
        target_type="sla_tier",
        target_id=slug,
        details=changes,
    )
    session.flush()
    return tier_out(tier)


def _tier_or_none(session: Session, tenant_id: uuid.UUID, slug: str) -> SlaTier | None:
    return SlaTierRepository(session, tenant_id).by_slug(slug)


# --- starting --------------------------------------------------------------------------------


def start(
    session: Session,
    tenant_id: uuid.UUID,
    body: schemas.OnboardingCreate,
    actor: str,
    *,
    allow_loopback: bool,
    resolved_problem: str | None = None,
) -> Onboarding:
    """Validate the request against the tenant's tiers and plans and store the onboarding
    with its eight pending steps. 422 names what is wrong; 409 if the customer already has one.
    ``resolved_problem`` is what ``channel`` found of the webhook host's addresses (looked up
    by the caller before this unit of work: DNS is network I/O)."""
    errors = []
    tiers = ensure_tiers(session, tenant_id)
    if body.sla_tier not in {t.slug for t in tiers}:
        known = ", ".join(t.slug for t in tiers)
        errors.append(field_error(["sla_tier"], f"unknown SLA tier; the tenant has {known}"))
    plans, _ = metering.customer_plans(session, tenant_id, [], utcnow())
    if metering.plan_for(plans, body.plan) is None:
        errors.append(field_error(["plan"], "not one of the tenant's plans"))
    problem = schemas.webhook_url_problem(body.support_webhook_url, allow_loopback)
    if problem is not None or resolved_problem is not None:
        errors.append(field_error(["support_webhook_url"], problem or str(resolved_problem)))
    if errors:
        raise InvalidInput(
            "The onboarding request is not valid: " + ", ".join(e["field"] for e in errors),
            errors,
        )
    repo = OnboardingRepository(session, tenant_id)
    if repo.by_customer(body.customer.external_id) is not None:
        raise Conflict(
            f"Customer {body.customer.external_id} already has an onboarding",
            slug="onboarding-exists",
        )
    now = utcnow()
    onboarding = repo.add(
        Onboarding(
            customer_external_id=body.customer.external_id,
            sla_tier=body.sla_tier,
            request=body.model_dump(mode="json"),
            status="running",
            current_step=1,
            started_at=now,
            created_by=actor,
        )
    )
    session.flush()
    steps = StepRepository(session, tenant_id)
    for position, name in enumerate(STEPS, start=1):
        steps.add(OnboardingStep(onboarding_id=onboarding.id, position=position, name=name))
    audit(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="onboarding.create",
        target_type="onboarding",
        target_id=onboarding.id,
        details={"customer": body.customer.external_id, "sla_tier": body.sla_tier},
    )
    session.flush()
    return onboarding


def create(
    factory: sessionmaker[Session],
    tenant_id: uuid.UUID,
    body: schemas.OnboardingCreate,
    actor: str,
    *,
    allow_loopback: bool,
    client: httpx.Client | None = None,
    resolver: channel.Resolver | None = None,
) -> schemas.OnboardingCreated:
    """Start an onboarding and take it as far as it goes now (each step its own unit of work,
    the ping outside any). The portal key's secret is in this answer only."""
    resolved_problem = None
    if schemas.webhook_url_problem(body.support_webhook_url, allow_loopback) is None:
        resolved_problem = channel.url_problem_after_lookup(
            body.support_webhook_url, allow_loopback, resolver
        )
    with write_transaction(factory) as session:
        onboarding_id = start(
            session,
            tenant_id,
            body,
            actor,
            allow_loopback=allow_loopback,
            resolved_problem=resolved_problem,
        ).id
    flow = advance(
        factory,
        tenant_id,
        onboarding_id,
        allow_loopback=allow_loopback,
        client=client,
        resolver=resolver,
    )
    with read_transaction(factory) as session:
        out = status(session, tenant_id, onboarding_id)
    return schemas.OnboardingCreated(**out.model_dump(), portal_api_key=flow.portal_secret)


# --- the flow --------------------------------------------------------------------------------


@dataclass
class StepOutcome:
    done: bool
    result: dict[str, Any] = field(default_factory=dict)
    blocker: str | None = None
    portal_secret: str | None = None


@dataclass
class FlowResult:
    steps_done: list[str] = field(default_factory=list)
    portal_secret: str | None = None


@dataclass(frozen=True)
class _Ping:
    url: str
    body: bytes
    headers: dict[str, str]
    token: str


# Called inside a step's unit of work, after its work and before the commit (tests kill the
# process there to prove a crash keeps neither).
StepHook = Callable[[int], None]


def _workable(step: OnboardingStep, now: datetime) -> bool:
    if step.status == "pending":
        return True
    if step.status == "waiting":
        return step.next_attempt_at is None or step.next_attempt_at <= now
    if step.status == "running":
        return step.claimed_until is None or step.claimed_until <= now
    return False


def advance(
    factory: sessionmaker[Session],
    tenant_id: uuid.UUID,
    onboarding_id: uuid.UUID,
    *,
    allow_loopback: bool,
    client: httpx.Client | None = None,
    resolver: channel.Resolver | None = None,
    box: SecretBox | None = None,
    before_commit: StepHook | None = None,
) -> FlowResult:
    """Work the onboarding's steps in order until it completes or a step has to wait."""
    box = box or secret_box(job_settings())
    flow = FlowResult()
    for _ in range(len(STEPS) + 1):
        ping: _Ping | None = None
        with write_transaction(factory) as session:
            found = OnboardingRepository(session, tenant_id).locked_at_current_step(onboarding_id)
            if found is None or found[0].status == "completed":
                break
            onboarding, step = found
            now = utcnow()
            if not _workable(step, now):
                break
            if step.position == PING_STEP:
                ping = _claim_ping(session, onboarding, step, now, box, allow_loopback)
            else:
                outcome = _run_local_step(session, tenant_id, onboarding, step, now, box)
                _settle(session, onboarding, step, outcome, now)
                if outcome.portal_secret:
                    flow.portal_secret = outcome.portal_secret
                if outcome.done:
                    flow.steps_done.append(step.name)
                if before_commit is not None:
                    before_commit(step.position)
                if not outcome.done:
                    break
                continue
        if ping is None:
            break  # the URL was refused before sending: the step waits
        # The host is resolved and checked again here and the request sent to that address.
        answer = channel.ping(
            ping.url,
            ping.body,
            ping.headers,
            allow_loopback=allow_loopback,
            client=client,
            resolver=resolver,
        )
        with write_transaction(factory) as session:
            done = _record_ping(session, tenant_id, onboarding_id, ping, answer)
        if not done:
            break
        flow.steps_done.append("support_channel_setup")
    return flow


def _settle(
    session: Session,
    onboarding: Onboarding,
    step: OnboardingStep,
    outcome: StepOutcome,
    now: datetime,
) -> None:
    """Mark the step done (and move the onboarding on) or waiting with its next attempt."""
    step.attempts += 1
    step.started_at = step.started_at or now
    step.claimed_until = None
    step.claim_token = None
    if outcome.done:
        step.status = "done"
        step.finished_at = now
        step.blocker = None
        step.next_attempt_at = None
        step.result = outcome.result
        if step.position == len(STEPS):
            onboarding.status = "completed"
            onboarding.completed_at = now
        else:
            onboarding.status = "running"
            onboarding.current_step = step.position + 1
        action = "onboarding.step.done"
    else:
        step.status = "waiting"
        step.blocker = outcome.blocker
        step.result = outcome.result
        delay = exponential_backoff(step.attempts, RETRY_BASE_SECONDS, RETRY_MAX_SECONDS)
        step.next_attempt_at = now + timedelta(seconds=delay)
        onboarding.status = "blocked"
        action = "onboarding.step.waiting"
    audit(
        session,
        tenant_id=onboarding.tenant_id,
        actor="onboarding",
        action=action,
        target_type="onboarding",
        target_id=onboarding.id,
        details={
            "step": step.name,
            "attempt": step.attempts,
            "blocker": step.blocker,
            "next_attempt_at": step.next_attempt_at,
        },
    )


def _request(onboarding: Onboarding) -> schemas.OnboardingCreate:
    return schemas.OnboardingCreate.model_validate(onboarding.request)


def _run_local_step(
    session: Session,
    tenant_id: uuid.UUID,
    onboarding: Onboarding,
    step: OnboardingStep,
    now: datetime,
    box: SecretBox,
) -> StepOutcome:
    body = _request(onboarding)
    runners: dict[str, Callable[[], StepOutcome]] = {
        "account_creation": lambda: _account(session, tenant_id, onboarding, body, now),
        "sla_assignment": lambda: _sla_assignment(session, tenant_id, onboarding),
        "environment_setup": lambda: _environment(session, tenant_id, onboarding, body, now),
        "api_key_generation": lambda: _portal_key(session, tenant_id, onboarding),
        "documentation_access": lambda: _docs_link(session, tenant_id, onboarding, body, now, box),
        "training_schedule": lambda: _training(onboarding, body, now),
        "initial_health_check": lambda: _health_check(session, tenant_id, onboarding, body, now),
    }
    return runners[step.name]()


def _account(
    session: Session,
    tenant_id: uuid.UUID,
    onboarding: Onboarding,
    body: schemas.OnboardingCreate,
    now: datetime,
) -> StepOutcome:
    reads = CustomerReads(session, tenant_id)
    customer = reads.by_external_id(body.customer.external_id)
    created = customer is None
    admin = body.admin
    if customer is None:
        row: dict[str, Any] = {
            "external_id": body.customer.external_id,
            "name": body.customer.name,
            "email": admin.email,
            "signup_date": now.date(),
            "attributes": {"onboarding": str(onboarding.id), "sla_tier": body.sla_tier},
        }
        if body.customer.company_size is not None:
            row["company_size"] = body.customer.company_size
        if body.customer.country is not None:
            row["country"] = body.customer.country
        data.ingest_rows(session, tenant_id, "customers", [row])
        customer = reads.by_external_id(body.customer.external_id)
        assert customer is not None
    onboarding.customer_id = customer.id
    return StepOutcome(
        True,
        {
            "customer_id": str(customer.id),
            "customer": customer.external_id,
            "created": created,
            "admin_contact": admin.model_dump(),
            "contacts": len(body.contacts),
        },
    )


def _sla_assignment(session: Session, tenant_id: uuid.UUID, onboarding: Onboarding) -> StepOutcome:
    tier = _tier_or_none(session, tenant_id, onboarding.sla_tier)
    if tier is None:
        return StepOutcome(False, blocker=f"SLA tier {onboarding.sla_tier} no longer exists")
    return StepOutcome(True, tier_out(tier).model_dump(mode="json"))


def _environment(
    session: Session,
    tenant_id: uuid.UUID,
    onboarding: Onboarding,
    body: schemas.OnboardingCreate,
    now: datetime,
) -> StepOutcome:
    assert onboarding.customer_id is not None
    plans, current = metering.customer_plans(session, tenant_id, [onboarding.customer_id], now)
    plan = metering.plan_for(plans, body.plan)
    if plan is None:
        return StepOutcome(False, blocker=f"plan {body.plan} no longer exists")
    on_plan = current.get(onboarding.customer_id)
    subscription = None
    if on_plan is None or on_plan.slug != plan.slug:
        subscription = f"onboarding-{onboarding.id.hex[:16]}"
        data.ingest_rows(
            session,
            tenant_id,
            "subscriptions",
            [
                {
                    "external_id": subscription,
                    "customer": body.customer.external_id,
                    "plan": plan.slug,
                    "amount": plan.monthly_price,
                    "currency": plan.currency,
                    "interval": "month",
                    "started_at": now,
                }
            ],
        )
    catalog = metering.meter_catalog(session, tenant_id)
    created = []
    for meter in body.meters:
        if meter.name not in catalog:
            metering.create_meter(
                session,
                tenant_id,
                MeterIn(
                    name=meter.name,
                    aggregation=meter.aggregation,
                    unit=meter.unit,
                    description=f"Agreed in the onboarding of {body.customer.external_id}",
                ),
                actor="onboarding",
            )
            created.append(meter.name)
    capacities = {
        m.name: {"agreed": m.capacity, "plan": plan.capacities.get(m.name)} for m in body.meters
    }
    return StepOutcome(
        True,
        {
            "plan": plan.slug,
            "subscription": subscription,
            "already_on_plan": subscription is None,
            "meters_created": created,
            "capacities": capacities,
        },
    )


def _portal_key(session: Session, tenant_id: uuid.UUID, onboarding: Onboarding) -> StepOutcome:
    if onboarding.portal_key_id is not None:
        key = find_key(session, onboarding.portal_key_id)
        if key is not None and key.revoked_at is None:
            return StepOutcome(True, {"key_id": str(key.id), "display_prefix": key.display_prefix})
    issued = _issue_portal_key(session, tenant_id, onboarding)
    return StepOutcome(
        True,
        {"key_id": str(issued.key.id), "display_prefix": issued.key.display_prefix},
        portal_secret=issued.secret,
    )


def _issue_portal_key(
    session: Session, tenant_id: uuid.UUID, onboarding: Onboarding
) -> security.IssuedKey:
    # Not a seat of the tenant's staff: the customer's own read-only key.
    issued = security.issue_key(
        session,
        tenant_id=tenant_id,
        name=f"customer portal: {onboarding.customer_external_id}"[:200],
        scopes=[PORTAL_SCOPE],
        actor="onboarding",
        enforce_seats=False,
    )
    session.flush()
    onboarding.portal_key_id = issued.key.id
    return issued


def reissue_portal_key(
    session: Session, tenant_id: uuid.UUID, onboarding_id: uuid.UUID, actor: str
) -> schemas.PortalKeyOut:
    """A lost portal key is replaced, never shown again: the old one is revoked."""
    onboarding = OnboardingRepository(session, tenant_id).get_or_404(onboarding_id)
    if onboarding.customer_id is None or onboarding.current_step <= STEPS.index(
        "api_key_generation"
    ):
        raise Conflict("The onboarding has not generated its portal key yet", slug="not-yet")
    if onboarding.portal_key_id is not None:
        old = find_key(session, onboarding.portal_key_id)
        if old is not None and old.revoked_at is None:
            old.revoked_at = utcnow()
    issued = _issue_portal_key(session, tenant_id, onboarding)
    audit(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="onboarding.portal_key.reissue",
        target_type="onboarding",
        target_id=onboarding.id,
        details={"key_id": str(issued.key.id)},
    )
    assert issued.secret is not None
    return schemas.PortalKeyOut(
        key_id=issued.key.id, display_prefix=issued.key.display_prefix, portal_api_key=issued.secret
    )


def _docs_base(session: Session, tenant_id: uuid.UUID, body: schemas.OnboardingCreate) -> str:
    tenant = find_tenant(session, tenant_id)
    configured = (tenant.settings or {}).get("docs_url") if tenant is not None else None
    return body.docs_url or (configured if isinstance(configured, str) else DEFAULT_DOCS_PATH)


def _docs_signature(secret: str, customer: str, expires: int, base: str) -> str:
    message = f"{customer}\n{expires}\n{base}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_docs_link(secret: str, base: str, customer: str, expires: datetime) -> str:
    stamp = int(expires.timestamp())
    query = urlencode(
        {
            "customer": customer,
            "expires": stamp,
            "signature": _docs_signature(secret, customer, stamp, base),
        }
    )
    return f"{base}{'&' if '?' in base else '?'}{query}"


def _docs_link(
    session: Session,
    tenant_id: uuid.UUID,
    onboarding: Onboarding,
    body: schemas.OnboardingCreate,
    now: datetime,
    box: SecretBox,
) -> StepOutcome:
    # The tenant's signing secret (the one its webhooks are signed with): per tenant, kept
    # sealed, rotated with the tenant's keys.
    secret = webhooks.signing_secrets(session, tenant_id, box)[0]
    expires = now + timedelta(days=DOCS_LINK_DAYS)
    base = _docs_base(session, tenant_id, body)
    link = signed_docs_link(secret, base, onboarding.customer_external_id, expires)
    return StepOutcome(True, {"url": link, "expires_at": expires.isoformat()})


def verify_docs_link(
    session: Session, tenant_id: uuid.UUID, link: str, now: datetime | None = None
) -> schemas.DocsLinkCheck:
    """What the docs site does with a link: a valid signature by one of the tenant's live
    secrets, and not expired."""
    parts = urlsplit(link)
    query = dict(parse_qsl(parts.query))
    base_query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query) if k not in ("customer", "expires", "signature")]
    )
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, base_query, ""))
    customer, expires, signature = (
        query.get("customer"),
        query.get("expires"),
        query.get("signature"),
    )
    if not customer or not expires or not expires.isdigit() or not signature:
        return schemas.DocsLinkCheck(valid=False, reason="not a signed link")
    box = secret_box(job_settings())
    secrets = webhooks.signing_secrets(session, tenant_id, box)
    if not any(
        hmac.compare_digest(_docs_signature(s, customer, int(expires), base), signature)
        for s in secrets
    ):
        return schemas.DocsLinkCheck(valid=False, reason="bad signature")
    if int(expires) <= (now or utcnow()).timestamp():
        return schemas.DocsLinkCheck(valid=False, reason="expired")
    return schemas.DocsLinkCheck(valid=True, reason=None)


def _training(onboarding: Onboarding, body: schemas.OnboardingCreate, now: datetime) -> StepOutcome:
    # The sessions are what the step decides; their iCalendar file is rendered from them when
    # it is asked for (``training_ics``), not here: building the VTIMEZONE and the file was a
    # quarter of the step's CPU time, spent on every onboarding whether or not it is fetched.
    prefs = body.training
    zone = prefs.time_zone or body.admin.time_zone
    sessions = training.propose_sessions(
        now,
        zone,
        prefs.sessions,
        prefs.duration_minutes,
        prefs.working_hours_start,
        prefs.working_hours_end,
    )
    return StepOutcome(
        True,
        {
            "time_zone": zone,
            "sessions": [
                {
                    "number": s.number,
                    "start": s.start.isoformat(),
                    "end": s.end.isoformat(),
                    "start_utc": s.start_utc.isoformat(),
                }
                for s in sessions
            ],
        },
    )


def training_ics(session: Session, tenant_id: uuid.UUID, onboarding_id: uuid.UUID) -> bytes:
    """The training sessions as an RFC 5545 file, in the contact's zone, stamped with the
    step's time (the same file each time it is asked for: stable UIDs and DTSTAMP)."""
    onboarding = OnboardingRepository(session, tenant_id).get_or_404(onboarding_id)
    step = StepRepository(session, tenant_id).at(
        onboarding.id, STEPS.index("training_schedule") + 1
    )
    if step is None or step.status != "done":
        raise NotFound("Training schedule of onboarding", onboarding_id)
    if "ics" in step.result:  # rendered and stored by the step before it stopped doing so
        return str(step.result["ics"]).encode()
    body = _request(onboarding)
    zone = ZoneInfo(str(step.result["time_zone"]))
    sessions = [
        training.Session(
            int(s["number"]),
            datetime.fromisoformat(s["start"]).astimezone(zone),
            datetime.fromisoformat(s["end"]).astimezone(zone),
        )
        for s in step.result["sessions"]
    ]
    return training.to_icalendar(
        sessions,
        uid_prefix=str(onboarding.id),
        summary=f"{body.customer.name} onboarding training",
        organizer_email=None,
        attendee_email=body.admin.email,
        stamp=step.finished_at or step.started_at or onboarding.started_at,
    )


def _claim_ping(
    session: Session,
    onboarding: Onboarding,
    step: OnboardingStep,
    now: datetime,
    box: SecretBox,
    allow_loopback: bool,
) -> _Ping | None:
    body = _request(onboarding)
    problem = schemas.webhook_url_problem(body.support_webhook_url, allow_loopback)
    if problem is not None:
        _settle(
            session, onboarding, step, StepOutcome(False, blocker=f"URL refused: {problem}"), now
        )
        return None
    token = uuid.uuid4().hex
    step.status = "running"
    step.started_at = step.started_at or now
    step.claim_token = token
    step.claimed_until = now + PING_LEASE
    secrets = webhooks.signing_secrets(session, onboarding.tenant_id, box)
    payload = {
        "onboarding": str(onboarding.id),
        "customer": onboarding.customer_external_id,
        "attempt": step.attempts + 1,
        "message": "Test ping: answer 2xx to confirm this support channel.",
    }
    # The step's id is the event id: a receiver sees every retry as the same event.
    signed_body, headers = webhooks.signed_request(secrets, step.id, PING_EVENT, now, payload)
    return _Ping(body.support_webhook_url, signed_body, headers, token)


def _record_ping(
    session: Session,
    tenant_id: uuid.UUID,
    onboarding_id: uuid.UUID,
    ping: _Ping,
    answer: channel.PingAnswer,
) -> bool:
    onboarding = OnboardingRepository(session, tenant_id).locked(onboarding_id)
    if onboarding is None:
        return False
    step = StepRepository(session, tenant_id).at(onboarding_id, PING_STEP)
    if step is None or step.claim_token != ping.token:
        return False  # the lease expired and another runner took the step over
    now = utcnow()
    # Only the endpoint's origin and a fixed reason are kept: the URL's path may hold a token,
    # and an exception's text or the answer's body may hold URLs, credentials or addresses.
    result = {
        "endpoint": channel.origin(ping.url),
        "status_code": answer.status_code,
        "reason": answer.reason,
        "at": now.isoformat(),
    }
    if answer.ok:
        outcome = StepOutcome(True, result)
    elif answer.status_code is None:
        outcome = StepOutcome(False, result, blocker=channel.NO_ANSWER + answer.reason)
    else:
        outcome = StepOutcome(
            False, result, blocker=f"support webhook answered {answer.status_code}"
        )
    _settle(session, onboarding, step, outcome, now)
    return outcome.done


def _health_check(
    session: Session,
    tenant_id: uuid.UUID,
    onboarding: Onboarding,
    body: schemas.OnboardingCreate,
    now: datetime,
) -> StepOutcome:
    assert onboarding.customer_id is not None
    first = CustomerReads(session, tenant_id).first_usage_at(onboarding.customer_id)
    _, current = metering.customer_plans(session, tenant_id, [onboarding.customer_id], now)
    plan = current.get(onboarding.customer_id)
    missing = [m.name for m in body.meters if plan is None or m.name not in plan.capacities]
    result = {
        "first_usage_at": first.isoformat() if first else None,
        "plan": plan.slug if plan else None,
        "quotas": dict(plan.capacities) if plan else {},
        "quotas_missing": missing,
    }
    if plan is None:
        return StepOutcome(False, result, blocker="no active subscription on the agreed plan")
    if missing:
        return StepOutcome(
            False, result, blocker=f"plan {plan.slug} has no quota for {', '.join(missing)}"
        )
    if first is None:
        return StepOutcome(False, result, blocker="no usage event from the customer yet")
    return StepOutcome(True, result)


def advance_due(
    factory: sessionmaker[Session],
    tenant_id: uuid.UUID,
    *,
    allow_loopback: bool,
    client: httpx.Client | None = None,
    resolver: channel.Resolver | None = None,
) -> dict[str, Any]:
    """The job: every onboarding of the tenant whose step is due (waiting past its next
    attempt, or running under a lease that expired) is taken as far as it goes."""
    with read_transaction(factory) as session:
        due = OnboardingRepository(session, tenant_id).due(utcnow())
    advanced = completed = 0
    for onboarding_id in due:
        flow = advance(
            factory,
            tenant_id,
            onboarding_id,
            allow_loopback=allow_loopback,
            client=client,
            resolver=resolver,
        )
        advanced += bool(flow.steps_done)
        completed += "initial_health_check" in flow.steps_done
    return {"due": len(due), "advanced": advanced, "completed": completed}


# --- reading ---------------------------------------------------------------------------------


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def _status_of(onboarding: Onboarding, steps: Sequence[OnboardingStep]) -> schemas.OnboardingStatus:
    current = next((s for s in steps if s.position == onboarding.current_step), None)
    blockers = [
        schemas.BlockerOut(
            step=s.name,
            reason=str(channel.shown_blocker(s.blocker)),
            attempts=s.attempts,
            next_attempt_at=s.next_attempt_at,
        )
        for s in steps
        if s.status in ("waiting", "running") and s.blocker
    ]
    return schemas.OnboardingStatus(
        id=onboarding.id,
        customer=onboarding.customer_external_id,
        sla_tier=onboarding.sla_tier,
        status=onboarding.status,
        current_step=None if onboarding.status == "completed" or current is None else current.name,
        started_at=onboarding.started_at,
        completed_at=onboarding.completed_at,
        duration_seconds=_seconds(onboarding.started_at, onboarding.completed_at),
        steps=[
            schemas.StepOut(
                position=s.position,
                name=s.name,
                status=s.status,
                attempts=s.attempts,
                started_at=s.started_at,
                finished_at=s.finished_at,
                duration_seconds=_seconds(s.started_at, s.finished_at),
                blocker=channel.shown_blocker(s.blocker),
                next_attempt_at=s.next_attempt_at,
            )
            for s in steps
        ],
        blockers=blockers,
    )


def status(
    session: Session, tenant_id: uuid.UUID, onboarding_id: uuid.UUID
) -> schemas.OnboardingStatus:
    onboarding = OnboardingRepository(session, tenant_id).get_or_404(onboarding_id)
    return _status_of(onboarding, StepRepository(session, tenant_id).of(onboarding.id))


def list_onboardings(
    session: Session, tenant_id: uuid.UUID, status_filter: str | None = None
) -> list[schemas.OnboardingSummary]:
    rows = OnboardingRepository(session, tenant_id).listing(status_filter)
    steps: dict[uuid.UUID, dict[int, str]] = {}
    for s in StepRepository(session, tenant_id).of_many([o.id for o in rows]):
        steps.setdefault(s.onboarding_id, {})[s.position] = s.name
    return [
        schemas.OnboardingSummary(
            id=o.id,
            customer=o.customer_external_id,
            sla_tier=o.sla_tier,
            status=o.status,
            current_step=None
            if o.status == "completed"
            else steps.get(o.id, {}).get(o.current_step),
            started_at=o.started_at,
            completed_at=o.completed_at,
        )
        for o in rows
    ]


def report(
    session: Session, tenant_id: uuid.UUID, onboarding_id: uuid.UUID, now: datetime | None = None
) -> schemas.OnboardingReport:
    """Time to complete against the tier's target, each step's timing, blockers, who acted
    (the audit log) and what was provisioned."""
    now = now or utcnow()
    onboarding = OnboardingRepository(session, tenant_id).get_or_404(onboarding_id)
    steps = StepRepository(session, tenant_id).of(onboarding.id)
    base = _status_of(onboarding, steps)
    tier = _tier_or_none(session, tenant_id, onboarding.sla_tier)
    target = (
        tier.onboarding_target_hours
        if tier is not None
        else next(
            int(t["onboarding_target_hours"]) for t in DEFAULT_TIERS if t["slug"] == "standard"
        )
    )
    hours = (
        round((onboarding.completed_at - onboarding.started_at).total_seconds() / 3600, 3)
        if onboarding.completed_at
        else None
    )
    elapsed = round(
        ((onboarding.completed_at or now) - onboarding.started_at).total_seconds() / 3600, 3
    )
    provisioned = {
        # Older rows kept the training file and the ping's URL and answer text: not shown.
        s.name: channel.shown_result({k: v for k, v in s.result.items() if k != "ics"})
        if s.position == PING_STEP
        else {k: v for k, v in s.result.items() if k != "ics"}
        for s in steps
        if s.status == "done"
    }
    events = audit_trail(session, tenant_id, "onboarding", [str(onboarding.id)])
    return schemas.OnboardingReport(
        **base.model_dump(),
        target_hours=target,
        time_to_complete_hours=hours,
        elapsed_hours=elapsed,
        within_target=None if hours is None else hours <= target,
        provisioned=provisioned,
        audit=[
            schemas.AuditOut(at=e.created_at, actor=e.actor, action=e.action, details=e.details)
            for e in events
        ],
    )


# --- the customer portal ---------------------------------------------------------------------


def portal_onboarding(session: Session, tenant_id: uuid.UUID, key_id: uuid.UUID) -> Onboarding:
    """The onboarding a customer-portal key was issued by: what that key may read."""
    onboarding = OnboardingRepository(session, tenant_id).by_portal_key(key_id)
    if onboarding is None:
        raise NotFound("Customer portal of this key")
    return onboarding


# --- SLA measurement -------------------------------------------------------------------------


def record_first_response(
    session: Session,
    tenant_id: uuid.UUID,
    ticket_ref: str,
    body: schemas.FirstResponseIn,
    actor: str,
    now: datetime | None = None,
) -> schemas.FirstResponseOut:
    """Record when a support ticket was first answered (its external id or id). Only the
    first counts: a ticket that has one keeps it (answered with ``recorded_now`` false). 404
    for a ticket the tenant does not have; 422 for a time before the ticket was opened or in
    the future."""
    now = now or utcnow()
    reads = CustomerReads(session, tenant_id)
    ticket = reads.ticket(ticket_ref)
    if ticket is None:
        raise NotFound("Ticket", ticket_ref)
    repo = FirstResponseRepository(session, tenant_id)
    existing = repo.of_ticket(ticket.id)
    recorded_now = existing is None
    if existing is None:
        at = body.responded_at or now
        if at < ticket.opened_at:
            raise InvalidInput(
                "The first response is before the ticket was opened",
                [field_error(["responded_at"], "must not be before the ticket's opened_at")],
            )
        if at > now:
            raise InvalidInput(
                "The first response is in the future",
                [field_error(["responded_at"], "must not be in the future")],
            )
        try:
            # Two recorders at once: the unique (tenant, ticket) lets one in, the other reads it.
            with session.begin_nested():
                existing = repo.add(
                    TicketFirstResponse(ticket_id=ticket.id, responded_at=at, recorded_by=actor)
                )
                session.flush()
        except IntegrityError:
            existing = repo.of_ticket(ticket.id)
            if existing is None:
                raise
            return _first_response_out(reads, ticket, existing, recorded_now=False)
        audit(
            session,
            tenant_id=tenant_id,
            actor=actor,
            action="ticket.first_response",
            target_type="support_ticket",
            target_id=ticket.external_id,
            details={"responded_at": at},
        )
        session.flush()
    return _first_response_out(reads, ticket, existing, recorded_now=recorded_now)


def _first_response_out(
    reads: CustomerReads,
    ticket: SupportTicket,
    response: TicketFirstResponse,
    *,
    recorded_now: bool,
) -> schemas.FirstResponseOut:
    waited = response.responded_at - ticket.opened_at
    return schemas.FirstResponseOut(
        ticket=ticket.external_id,
        customer=reads.external_id_of(ticket.customer_id),
        opened_at=ticket.opened_at,
        responded_at=response.responded_at,
        response_minutes=round(waited.total_seconds() / 60, 2),
        recorded_by=response.recorded_by,
        recorded_now=recorded_now,
    )


def _measure(
    session: Session, tenant_id: uuid.UUID, onboarding: Onboarding, now: datetime
) -> tuple[SlaTier | None, list[sla.ResponseMonth], list[sla.UptimeMonth]]:
    tier = _tier_or_none(session, tenant_id, onboarding.sla_tier)
    if tier is None or onboarding.completed_at is None or onboarding.customer_id is None:
        return tier, [], []
    since = onboarding.completed_at
    reads = CustomerReads(session, tenant_id)
    # Measured on each ticket's recorded first response, never on its close: a ticket closed
    # with no first response recorded was never answered within any target.
    tickets = [
        sla.Ticket(external_id, opened_at, responded_at)
        for external_id, opened_at, responded_at in reads.tickets(onboarding.customer_id, since)
    ]
    response = sla.response_compliance(tickets, tier.response_minutes, now)
    uptime = sla.uptime_by_month(
        reads.health_samples(since, now), tier.uptime_target_bp, tier.credits
    )
    return tier, response, uptime


def sla_status(
    session: Session, tenant_id: uuid.UUID, onboarding: Onboarding, now: datetime | None = None
) -> schemas.SlaStatus:
    now = now or utcnow()
    tier, response, uptime = _measure(session, tenant_id, onboarding, now)
    if tier is None:
        raise NotFound("SLA tier", onboarding.sla_tier)
    return schemas.SlaStatus(
        customer=onboarding.customer_external_id,
        tier=tier_out(tier),
        since=onboarding.completed_at,
        response=[
            schemas.ResponseMonthOut(
                month=m.month,
                tickets=m.tickets,
                within_target=m.within_target,
                compliance=m.compliance,
                breaches=m.breaches,
            )
            for m in response
        ],
        uptime=[
            schemas.UptimeMonthOut(
                month=u.month,
                samples=u.samples,
                uptime_percent=round(u.uptime_bp / 100, 4),
                target_percent=u.target_bp / 100,
                breached=u.breached,
                credit_percent=u.credit_percent,
            )
            for u in uptime
        ],
        breaches_raised=0,
    )


def sla_status_of(
    session: Session, tenant_id: uuid.UUID, onboarding_id: uuid.UUID
) -> schemas.SlaStatus:
    onboarding = OnboardingRepository(session, tenant_id).get_or_404(onboarding_id)
    return sla_status(session, tenant_id, onboarding)


def raise_breaches(
    session: Session, tenant_id: uuid.UUID, now: datetime | None = None
) -> dict[str, Any]:
    """Measure every completed onboarding's SLA and raise each new breach once: a ledger
    decision and a signed ``sla.breach`` webhook, stored in this unit of work. Uptime is
    judged on months that have ended (a month in progress may still recover)."""
    now = now or utcnow()
    this_month = sla.month_of(now)
    repo = BreachRepository(session, tenant_id)
    raised = 0
    for onboarding in OnboardingRepository(session, tenant_id).completed():
        tier, response, uptime = _measure(session, tenant_id, onboarding, now)
        if tier is None:
            continue
        seen = repo.keys(onboarding.id)
        found: list[tuple[str, Any, str, float, float, float]] = []
        for month in response:
            for b in month.breaches:
                found.append(
                    (
                        "response",
                        month.month,
                        b["ticket"],
                        b["response_minutes"],
                        float(tier.response_minutes),
                        0.0,
                    )
                )
        for u in uptime:
            if u.breached and u.month < this_month:
                found.append(
                    (
                        "uptime",
                        u.month,
                        u.month.isoformat(),
                        u.uptime_bp / 100,
                        tier.uptime_target_bp / 100,
                        u.credit_percent,
                    )
                )
        for kind, month, subject, measured, target, credit in found:
            if (kind, month.isoformat(), subject[:200]) in seen:
                continue
            raised += 1
            _raise(
                session, tenant_id, onboarding, tier, kind, month, subject, measured, target, credit
            )
    return {"raised": raised}


def _raise(
    session: Session,
    tenant_id: uuid.UUID,
    onboarding: Onboarding,
    tier: SlaTier,
    kind: str,
    month: Any,
    subject: str,
    measured: float,
    target: float,
    credit: float,
) -> None:
    details = {
        "onboarding": str(onboarding.id),
        "customer": onboarding.customer_external_id,
        "sla_tier": tier.slug,
        "kind": kind,
        "month": month.isoformat(),
        "subject": subject,
        "measured": measured,
        "target": target,
        "unit": "minutes" if kind == "response" else "percent",
        "credit_percent": credit,
    }
    decision = record_decision(
        session,
        tenant_id=tenant_id,
        kind="sla_breach",
        subject_type="customer",
        subject_id=onboarding.customer_external_id,
        inputs=details,
        output={"breach": kind, "credit_percent": credit},
        model="sla-measurement",
        model_version="1",
        predicted_value=credit,
    )
    BreachRepository(session, tenant_id).add(
        SlaBreach(
            onboarding_id=onboarding.id,
            kind=kind,
            month=month,
            subject=subject[:200],
            measured=measured,
            target=target,
            credit_percent=credit,
            decision_id=decision.id,
        )
    )
    session.flush()
    webhooks.enqueue_webhook(session, tenant_id, BREACH_EVENT, details, decision_id=decision.id)


# --- the demo company ------------------------------------------------------------------------

DEMO_ONBOARDINGS = 4
DEMO_TIERS = ("enterprise", "premium", "enterprise", "standard")
# The zone a demo contact works in, by the customer's country.
DEMO_ZONES = {
    "US": "America/New_York",
    "CA": "America/Toronto",
    "BR": "America/Sao_Paulo",
    "GB": "Europe/London",
    "DE": "Europe/Berlin",
    "FR": "Europe/Paris",
    "NL": "Europe/Amsterdam",
    "IN": "Asia/Kolkata",
    "JP": "Asia/Tokyo",
    "AU": "Australia/Sydney",
}


def _demo_support_endpoints(blocked: set[str]) -> httpx.Client:
    """The simulated company's customers' support endpoints (the demo has no network): each
    answers the ping 200, except those meant to show a blocked onboarding, which answer 503."""

    def answer(request: httpx.Request) -> httpx.Response:
        # The request goes to the checked address; the name is in its Host header.
        host = request.headers.get("host", "")
        if any(host == f"support.{slug}.example" for slug in blocked):
            return httpx.Response(503, text="support desk not live yet")
        return httpx.Response(200, text="ok: support channel confirmed")

    return httpx.Client(transport=httpx.MockTransport(answer), timeout=webhooks.TIMEOUT_SECONDS)


# In the simulated network every customer's support host has a public address (example.com's;
# nothing is ever sent to it: the transport above answers in memory).
DEMO_SUPPORT_ADDRESS = "93.184.215.14"


def _demo_resolver(host: str, port: int) -> list[str]:
    if host.startswith("support.") and host.endswith(".example"):
        return [DEMO_SUPPORT_ADDRESS]
    raise OSError("not a host of the simulated network")


def onboard_demo_customers(
    factory: sessionmaker[Session], tenant_id: uuid.UUID, count: int = DEMO_ONBOARDINGS
) -> dict[str, Any]:
    """Onboard a few of the demo company's enterprise customers through the real steps: all
    but the last finish, the last stays blocked on its support webhook. Idempotent: a customer
    already onboarded is left as it is."""
    now = utcnow()
    with read_transaction(factory) as session:
        reads = CustomerReads(session, tenant_id)
        customers = reads.all_by(Customer.external_id)
        _, plans = metering.customer_plans(session, tenant_id, [c.id for c in customers], now)
        chosen = [c for c in customers if (p := plans.get(c.id)) and p.slug == "enterprise"][:count]
        existing = {
            c.external_id
            for c in chosen
            if OnboardingRepository(session, tenant_id).by_customer(c.external_id)
        }
        requests: list[tuple[str, str, schemas.OnboardingCreate]] = []
        for index, customer in enumerate(chosen):
            plan = plans[customer.id]
            ext = customer.external_id
            slug = "".join(ch if ch.isalnum() else "-" for ch in ext.lower())
            requests.append(
                (
                    ext,
                    slug,
                    schemas.OnboardingCreate(
                        customer=schemas.CustomerIn(external_id=ext, name=customer.name),
                        sla_tier=DEMO_TIERS[index % len(DEMO_TIERS)],
                        contacts=[
                            schemas.ContactIn(
                                name=f"{customer.name} operations",
                                email=customer.email or f"ops@{slug}.example",
                                time_zone=DEMO_ZONES.get(customer.country or "", "UTC"),
                            )
                        ],
                        plan=plan.slug,
                        meters=[
                            schemas.MeterAgreement(name=name, capacity=float(capacity))
                            for name, capacity in sorted(plan.capacities.items())
                        ],
                        support_webhook_url=f"https://support.{slug}.example/hooks/aethercrown",
                    ),
                )
            )
    # The last one shows a blocked onboarding: its support desk does not answer yet.
    blocked = {requests[-1][1]} if requests else set()
    made = []
    with _demo_support_endpoints(blocked) as client:
        for ext, _, body in requests:
            if ext in existing:
                continue
            with write_transaction(factory) as session:
                onboarding_id = start(session, tenant_id, body, "simulate", allow_loopback=False).id
            advance(
                factory,
                tenant_id,
                onboarding_id,
                allow_loopback=False,
                client=client,
                resolver=_demo_resolver,
            )
            made.append(ext)
    return {"onboarded": made, "blocked": sorted(blocked)}
