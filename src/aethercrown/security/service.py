"""Issuing, registering, rotating and revoking keys.

Never commits: the caller's unit of work does.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from aethercrown.clock import utcnow
from aethercrown.core.auth import (
    Principal,
    display_prefix,
    generate_secret,
    hash_secret,
)
from aethercrown.core.crypto import SecretBox
from aethercrown.core.errors import Conflict, InvalidInput, NotFound, ProblemError, field_error
from aethercrown.core.ledger import audit, audit_trail, record_decision
from aethercrown.core.models import ApiKey, AuditEvent
from aethercrown.core.tenant_repository import tenant_or_404
from aethercrown.db.base import new_id
from aethercrown.security import schemas
from aethercrown.security.repository import KeyRepository

ROTATION_DAYS = schemas.ROTATION_DAYS


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str | None


def due_at(key: ApiKey) -> datetime | None:
    if not key.managed or key.rotation_interval_days is None:
        return None
    return key.created_at + timedelta(days=key.rotation_interval_days)


def issue_key(
    session: Session,
    *,
    tenant_id: uuid.UUID | None,
    name: str,
    scopes: list[str],
    kind: str = "api_key",
    actor: str = "system",
    security_level: str | None = None,
    box: SecretBox | None = None,
    secret: str | None = None,
    enforce_seats: bool = True,
) -> IssuedKey:
    """Create a key and return it with its secret (the only time the secret is available)."""
    if kind == "api_key" and tenant_id is not None and enforce_seats:
        _check_seat_quota(session, tenant_id)
    prefix_kind = "admin" if tenant_id is None and kind == "api_key" else kind
    if kind == "external":
        if secret is None:
            raise InvalidInput(
                "An external key needs the secret to track",
                [field_error(["secret"], "required for kind 'external'")],
            )
        plaintext = secret
    else:
        plaintext = secret or generate_secret(prefix_kind)
    key_id = new_id()
    key = ApiKey(
        id=key_id,
        tenant_id=tenant_id,
        name=name,
        kind=kind,
        scopes=sorted(set(scopes)) if kind == "api_key" else [],
        key_hash=hash_secret(plaintext),
        display_prefix=display_prefix(plaintext) if kind != "external" else "external",
        managed=security_level is not None,
        security_level=security_level,
        rotation_interval_days=ROTATION_DAYS[security_level] if security_level else None,
        lineage_id=key_id,
        generation=1,
        created_by=actor,
        created_at=utcnow(),
    )
    if kind == "webhook_secret":
        if box is None:
            raise RuntimeError("webhook secrets need the installation's SecretBox")
        key.encrypted_secret = box.seal(plaintext)
    # Across the installation: a hash identifies one key whoever holds it.
    if KeyRepository(session, None).by_hash(key.key_hash) is not None:
        raise Conflict("This secret is already registered", slug="duplicate-secret")
    session.add(key)
    audit(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="key.created",
        target_type="api_key",
        target_id=key.lineage_id,
        details={"key_id": str(key.id), "kind": kind, "scopes": key.scopes, "name": name},
    )
    return IssuedKey(key, None if kind == "external" else plaintext)


def _check_seat_quota(session: Session, tenant_id: uuid.UUID) -> None:
    tenant = tenant_or_404(session, tenant_id)
    used = seats_used(session, tenant_id)
    if used >= tenant.tier.max_seats:
        raise ProblemError(
            403,
            "quota-exceeded",
            "Seat quota reached",
            f"The {tenant.tier.name} tier allows {tenant.tier.max_seats} active API keys; "
            f"{used} are in use. Revoke one or scale the tenant to a larger tier.",
        )


def register(
    session: Session,
    principal: Principal,
    tenant_id: uuid.UUID,
    body: schemas.KeyRegister,
    box: SecretBox,
) -> IssuedKey:
    scopes: list[str] = []
    if body.kind == "api_key":
        own = principal.scopes
        asked: list[str] = list(body.scopes) if body.scopes is not None else _tenant_scopes(own)
        if not asked:
            raise InvalidInput(
                "An API key needs at least one scope", [field_error(["scopes"], "empty")]
            )
        too_wide = [s for s in asked if s not in own]
        if too_wide:
            raise ProblemError(
                403,
                "forbidden",
                "Forbidden",
                f"A key cannot grant scopes its creator lacks: {', '.join(too_wide)}",
            )
        scopes = asked
    elif body.scopes:
        raise InvalidInput(
            "Only api_key keys carry scopes", [field_error(["scopes"], "only for kind 'api_key'")]
        )
    if body.secret is not None and body.kind != "external":
        raise InvalidInput(
            "Only external keys take a given secret; others are generated",
            [field_error(["secret"], "only for kind 'external'")],
        )
    return issue_key(
        session,
        tenant_id=tenant_id,
        name=body.name,
        scopes=scopes,
        kind=body.kind,
        actor=principal.actor,
        security_level=body.security_level,
        box=box,
        secret=body.secret,
    )


def _tenant_scopes(scopes: frozenset[str]) -> list[str]:
    # The narrowest list that still implies everything the caller has within a tenant.
    for scope in ("tenant:write", "tenant:read", "investor"):
        if scope in scopes:
            return [scope]
    return []


def rotate(
    session: Session,
    repo: KeyRepository,
    key_id: uuid.UUID,
    *,
    grace_seconds: int,
    actor: str,
    box: SecretBox,
    new_secret: str | None = None,
    automated: bool = False,
) -> tuple[ApiKey, IssuedKey]:
    now = utcnow()
    old = _rotatable(repo, key_id, new_secret, now)
    plaintext = new_secret or generate_secret("admin" if old.tenant_id is None else old.kind)
    new = ApiKey(
        id=new_id(),
        tenant_id=old.tenant_id,
        name=old.name,
        kind=old.kind,
        scopes=list(old.scopes),
        key_hash=hash_secret(plaintext),
        display_prefix=display_prefix(plaintext) if old.kind != "external" else "external",
        managed=old.managed,
        security_level=old.security_level,
        rotation_interval_days=old.rotation_interval_days,
        lineage_id=old.lineage_id,
        generation=old.generation + 1,
        created_by=actor,
        created_at=now,
    )
    if old.kind == "webhook_secret":
        new.encrypted_secret = box.seal(plaintext)
    # A given secret that some key already has (the old one's own, say) would break the unique
    # hash: a 409, as at registration, not an IntegrityError.
    if KeyRepository(session, None).by_hash(new.key_hash) is not None:
        raise Conflict("This secret is already registered", slug="duplicate-secret")
    session.add(new)
    session.flush()
    grace_end = now + timedelta(seconds=grace_seconds)
    old.expires_at = grace_end if old.expires_at is None else min(old.expires_at, grace_end)
    old.rotated_to_id = new.id
    details = {
        "from_key_id": str(old.id),
        "to_key_id": str(new.id),
        "generation": new.generation,
        "grace_seconds": grace_seconds,
        "old_expires_at": old.expires_at.isoformat(),
        "automated": automated,
    }
    audit(
        session,
        tenant_id=old.tenant_id,
        actor=actor,
        action="key.rotated",
        target_type="api_key",
        target_id=old.lineage_id,
        details=details,
    )
    if automated and old.tenant_id is not None:
        due = due_at(old)
        record_decision(
            session,
            tenant_id=old.tenant_id,
            kind="key_rotation",
            subject_type="api_key",
            subject_id=old.lineage_id,
            inputs={"key_id": str(old.id), "due_at": due.isoformat() if due else None},
            output=details,
            model="rotation-schedule",
            model_version="1",
            actor=actor,
        )
    return old, IssuedKey(new, None if old.kind == "external" else plaintext)


def _rotatable(
    repo: KeyRepository, key_id: uuid.UUID, new_secret: str | None, now: datetime
) -> ApiKey:
    """The key, if it can be rotated now with ``new_secret`` (given only for external keys)."""
    old = repo.get(key_id)
    if old is None:
        raise NotFound("Key", key_id)
    if old.rotated_to_id is not None:
        raise Conflict(
            f"Key {key_id} was already rotated to {old.rotated_to_id}", slug="already-rotated"
        )
    if old.revoked_at is not None or (old.expires_at is not None and old.expires_at <= now):
        raise Conflict(f"Key {key_id} is revoked or expired", slug="key-inactive")
    if old.kind == "external" and new_secret is None:
        raise InvalidInput(
            "Rotating an external key needs the new secret",
            [field_error(["secret"], "required for kind 'external'")],
        )
    if old.kind != "external" and new_secret is not None:
        raise InvalidInput(
            "Only external keys take a given secret", [field_error(["secret"], "not allowed")]
        )
    return old


def revoke(session: Session, repo: KeyRepository, key_id: uuid.UUID, actor: str) -> ApiKey:
    key = repo.get(key_id)
    if key is None:
        raise NotFound("Key", key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit(
            session,
            tenant_id=key.tenant_id,
            actor=actor,
            action="key.revoked",
            target_type="api_key",
            target_id=key.lineage_id,
            details={"key_id": str(key.id)},
        )
    return key


def due_keys(
    repo: KeyRepository, within_days: int, now: datetime | None = None
) -> list[schemas.DueKey]:
    now = now or utcnow()
    horizon = now + timedelta(days=within_days)
    out = []
    for key in repo.current_managed():
        due = due_at(key)
        if due is None or due > horizon:
            continue
        if key.expires_at is not None and key.expires_at <= now:
            continue  # already dead; nothing left to rotate
        out.append(_due_entry(key, due, now))
    out.sort(key=lambda d: d.due_at)
    return out


def _due_entry(key: ApiKey, due: datetime, now: datetime) -> schemas.DueKey:
    overdue = due <= now
    return schemas.DueKey(
        **key_out(key).model_dump(),
        due_at=due,
        overdue=overdue,
        overdue_days=(now - due).days if overdue else 0,
        days_until_due=0 if overdue else (due - now).days,
    )


def auto_rotate(
    session: Session,
    repo: KeyRepository,
    *,
    grace_seconds: int,
    actor: str,
    box: SecretBox,
    dry_run: bool = False,
    kinds: frozenset[str] | None = None,
) -> schemas.AutoRotateResult:
    """Rotate every key that is due now (of ``kinds``, when given). External keys are only
    reported: their new secret comes from the third party, so a person must rotate them with it."""
    due = due_keys(repo, within_days=0)
    rotated: list[schemas.RotatedKey] = []
    if not dry_run:
        for entry in due:
            if entry.kind == "external" or (kinds is not None and entry.kind not in kinds):
                continue
            old, issued = rotate(
                session,
                repo,
                entry.id,
                grace_seconds=grace_seconds,
                actor=actor,
                box=box,
                automated=True,
            )
            rotated.append(
                schemas.RotatedKey(
                    previous_id=old.id,
                    previous_expires_at=old.expires_at,
                    key=with_secret(issued),
                )
            )
    return schemas.AutoRotateResult(dry_run=dry_run, rotated=rotated, due=due)


def report(session: Session, repo: KeyRepository, now: datetime | None = None) -> schemas.KeyReport:
    now = now or utcnow()
    current = list(repo.current_managed())
    history = repo.lineages([k.lineage_id for k in current])
    by_lineage: dict[uuid.UUID, list[ApiKey]] = {}
    for key in history:
        by_lineage.setdefault(key.lineage_id, []).append(key)
    trail = audit_trail(session, repo.tenant_id, "api_key", [str(k.lineage_id) for k in current])
    trail_by_lineage: dict[str, list[AuditEvent]] = {}
    for event in trail:
        trail_by_lineage.setdefault(event.target_id, []).append(event)

    entries = []
    overdue = due_soon = 0
    levels: Counter[str] = Counter()
    for key in current:
        chain = by_lineage.get(key.lineage_id, [key])
        first = min(k.created_at for k in chain)
        due = due_at(key)
        overdue_days = (now - due).days if due is not None and due <= now else 0
        if due is not None and due <= now:
            overdue += 1
        elif due is not None and due <= now + timedelta(days=7):
            due_soon += 1
        levels[key.security_level or "unmanaged"] += 1
        entries.append(
            schemas.KeyReportEntry(
                lineage_id=key.lineage_id,
                current=key_out(key),
                first_created_at=first,
                age_days=(now - key.created_at).days,
                next_due=due,
                overdue_days=overdue_days,
                rotations=len(chain) - 1,
                history=[key_out(k) for k in chain],
                audit=[
                    schemas.AuditEntry.model_validate(e)
                    for e in trail_by_lineage.get(str(key.lineage_id), [])
                ],
            )
        )
    return schemas.KeyReport(
        generated_at=now,
        total=len(current),
        managed=sum(1 for k in current if k.managed),
        overdue=overdue,
        due_within_7_days=due_soon,
        by_security_level=dict(levels),
        keys=entries,
    )


def key_out(key: ApiKey) -> schemas.KeyOut:
    out = schemas.KeyOut.model_validate(key)
    out.next_rotation_due = due_at(key)
    return out


def with_secret(issued: IssuedKey) -> schemas.KeyWithSecret:
    return schemas.KeyWithSecret(**key_out(issued.key).model_dump(), secret=issued.secret)


def reveal_webhook_secret(repo: KeyRepository, key_id: uuid.UUID, box: SecretBox) -> str:
    key = repo.get(key_id)
    if key is None:
        raise NotFound("Key", key_id)
    if key.kind != "webhook_secret" or key.encrypted_secret is None:
        raise ProblemError(
            409, "not-revealable", "Not revealable", "Only webhook secrets can be read back"
        )
    return box.open(key.encrypted_secret)


def live_keys(session: Session, tenant_id: uuid.UUID, kind: str) -> Sequence[ApiKey]:
    """The tenant's live keys of one kind (not revoked, not expired), newest first."""
    return KeyRepository(session, tenant_id).live(kind)


def seats_used(session: Session, tenant_id: uuid.UUID) -> int:
    return KeyRepository(session, tenant_id).seats()


def ensure_bootstrap_admin(session: Session, given: str | None) -> str | None:
    """Make sure an operator key exists. Returns a newly generated secret to print once, or None.

    A given AETHERCROWN_BOOTSTRAP_ADMIN_KEY is stored hashed (once); without one, a key is
    generated only when the installation has no operator key yet.
    """
    keys = KeyRepository(session, None)
    if given:
        if keys.by_hash(hash_secret(given)) is None:
            issue_key(
                session,
                tenant_id=None,
                name="bootstrap admin",
                scopes=["admin"],
                secret=given,
                actor="bootstrap",
            )
        return None
    if keys.has_operator_key():
        return None
    issued = issue_key(
        session, tenant_id=None, name="bootstrap admin", scopes=["admin"], actor="bootstrap"
    )
    return issued.secret


def tenant_due_keys(
    session: Session, tenant_id: uuid.UUID, within_days: int
) -> list[schemas.DueKey]:
    """The tenant's managed keys due for rotation within ``within_days`` (the console's list)."""
    return due_keys(KeyRepository(session, tenant_id), within_days)
